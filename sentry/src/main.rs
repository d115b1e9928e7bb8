//! The sentry binary. Until the supervisor exists, `sentry exec` runs a host
//! static executable directly: inherited stdio, no filesystem.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

use sentry::kernel::{self, Credentials, ExitStatus, Kernel, ProcessSpec};
use sentry::mm::memfile::MemoryFile;
use sentry::platform::kvm::layout::PLATFORM_RESERVED;
use sentry::platform::{Platform, PlatformKind};
use sentry::vfs::gofer::path_string;
use sentry::vfs::{Fs, GoferFs, OverlayFs, Vfs};

#[derive(Debug, Parser)]
#[command(name = "sentry", version, about = "rvisor's application kernel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a host static x86_64 executable in the sandbox kernel.
    Exec(ExecArgs),
    /// Boot as the supervisor starts the sentry: boot message on --ipc-fd.
    Boot(BootArgs),
}

#[derive(Debug, clap::Args)]
struct BootArgs {
    /// The boot socket the supervisor placed in this process.
    #[arg(long)]
    ipc_fd: i32,
    /// Write a debug log here (opened before the sentry leaves the host's root).
    #[arg(long, value_name = "FILE")]
    debug_log: Option<PathBuf>,
    /// Print the strace lines (if the boot message asks for them) to stderr,
    /// for a supervisor run with --strace and no --debug-log.
    #[arg(long)]
    strace_to_stderr: bool,
}

fn boot(args: BootArgs) -> Result<i32> {
    let file = match &args.debug_log {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening debug log {}", path.display()))?,
        ),
        None => None,
    };
    let file_layer = file.map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_filter(LevelFilter::DEBUG)
    });
    let strace_layer = args.strace_to_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .without_time()
            .with_target(false)
            .with_level(false)
            .with_filter(Targets::new().with_target("strace", LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(file_layer)
        .with(strace_layer)
        .try_init()?;
    // SAFETY: the supervisor placed the boot socket at this number for us
    // alone; nothing else in this process has taken it.
    let sock = unsafe { sentry::boot::boot_socket(args.ipc_fd) };
    Ok(sentry::boot::run(sock)?)
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// Print one line per system call to stderr (and to the debug log).
    #[arg(long)]
    strace: bool,
    /// Write a debug log (every event, including unimplemented syscalls) here.
    #[arg(long, value_name = "FILE")]
    debug_log: Option<PathBuf>,
    /// Application memory in MiB (the size of the sparse memory file).
    #[arg(long, default_value_t = 4096)]
    memory_mib: u64,
    /// Extra environment entries (KEY=VALUE) on top of the sentry's own.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<OsString>,
    /// Start with an empty environment instead of the sentry's own.
    #[arg(long)]
    clear_env: bool,
    /// How application code runs: kvm, systrap (seccomp traps in a stub
    /// process), or auto (kvm only with hardware virtualization).
    #[arg(long, value_enum, default_value_t = PlatformKind::Auto)]
    platform: PlatformKind,
    /// Serve this host directory as the sandbox's read-only root through a
    /// gofer process; the program path is then looked up inside it.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Put an in-memory writable overlay over --root: the application may
    /// create and change files; the host directory is never written.
    #[arg(long, requires = "root")]
    overlay: bool,
    /// The working directory inside --root.
    #[arg(long, value_name = "PATH", default_value = "/", requires = "root")]
    cwd: String,
    /// The gofer binary (default: `gofer` next to this executable).
    #[arg(long, value_name = "PATH")]
    gofer: Option<PathBuf>,
    /// The executable on the host, then its arguments (argv[0] is the path).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

fn init_logging(args: &ExecArgs) -> Result<()> {
    let stderr_filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target(
            "strace",
            if args.strace {
                LevelFilter::INFO
            } else {
                LevelFilter::OFF
            },
        )
        .with_target("unimplemented_syscall", LevelFilter::OFF);
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_filter(stderr_filter);
    let file_layer = match &args.debug_log {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating debug log {}", path.display()))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_ansi(false)
                    .with_filter(LevelFilter::DEBUG),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init()?;
    Ok(())
}

fn exec(args: ExecArgs) -> Result<i32> {
    init_logging(&args)?;
    let Some(program) = args.command.first() else {
        bail!("no program given")
    };
    let mut gofer_process = None;
    let (image, execfn, exe_path, root) = match &args.root {
        None => {
            let host_path = PathBuf::from(program);
            let image: Arc<[u8]> = std::fs::read(&host_path)
                .with_context(|| format!("reading {}", host_path.display()))?
                .into();
            let exe_path = std::fs::canonicalize(&host_path).unwrap_or_else(|_| host_path.clone());
            let execfn = host_path.as_os_str().as_bytes().to_vec();
            (
                image,
                execfn,
                exe_path.as_os_str().as_bytes().to_vec(),
                None,
            )
        }
        Some(dir) => {
            let (child, stream) = start_gofer(args.gofer.as_deref(), dir)?;
            gofer_process = Some(child);
            let gofer = GoferFs::mount(stream).context("mounting the gofer's root")?;
            let mut vfs = Vfs::new(if args.overlay {
                Fs::Overlay(OverlayFs::new(gofer))
            } else {
                Fs::Gofer(gofer)
            });
            vfs.mount_dev();
            let fs = Arc::new(vfs);
            let cwd = fs
                .resolve(&[], args.cwd.as_bytes(), true)
                .map_err(|e| anyhow::anyhow!("working directory {}: {e}", args.cwd))?;
            if !cwd.is_dir() {
                bail!("working directory {} is not a directory", args.cwd);
            }
            let (image, path) = fs
                .read_executable(&cwd.path, program.as_bytes())
                .map_err(|e| {
                    anyhow::anyhow!("{} in {}: {e}", program.to_string_lossy(), dir.display())
                })?;
            let execfn = program.as_bytes().to_vec();
            (
                image.into(),
                execfn,
                path_string(&path),
                Some((fs, cwd.path)),
            )
        }
    };

    let mut envp: Vec<Vec<u8>> = if args.clear_env {
        Vec::new()
    } else {
        std::env::vars_os()
            .map(|(k, v)| {
                let mut entry = k.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(v.as_bytes());
                entry
            })
            .collect()
    };
    envp.extend(args.env.iter().map(|e| e.as_bytes().to_vec()));
    let argv: Vec<Vec<u8>> = args.command.iter().map(|a| a.as_bytes().to_vec()).collect();

    let memory_size = args
        .memory_mib
        .checked_mul(1 << 20)
        .context("memory size overflows")?;
    let memory = Arc::new(MemoryFile::new(
        PLATFORM_RESERVED + memory_size,
        PLATFORM_RESERVED,
    )?);
    let platform: Arc<dyn Platform> = sentry::platform::create(args.platform, Arc::clone(&memory))?;
    let kernel = Arc::new(Kernel::new(args.strace, platform.cpu_features()));
    let mut cwd = Vec::new();
    if let Some((fs, dir)) = root {
        if kernel.set_root(fs).is_err() {
            bail!("the root filesystem was already mounted");
        }
        cwd = dir;
    }

    let spec = ProcessSpec {
        image,
        argv,
        envp,
        execfn,
        exe_path,
        creds: Credentials::default(),
        rlimits: kernel::default_rlimits(),
        umask: kernel::DEFAULT_UMASK,
    };
    let mut task = kernel::new_process(Arc::clone(&kernel), platform.as_ref(), memory, spec)?;
    task.cwd = cwd;
    tracing::debug!(task = task.tid, name = %task.name, entry = task.regs.rip, "starting");

    forward_termination_signals(Arc::clone(&kernel))?;

    // Each task drives its vCPU from its own host thread.
    let task_kernel = Arc::clone(&kernel);
    let runner = std::thread::Builder::new().name("task-1".into()).spawn(
        move || -> Result<ExitStatus> {
            let mut context = platform.new_context()?;
            task_kernel.register_interrupter(context.interrupter());
            Ok(kernel::run_task(&mut task, context.as_mut())?)
        },
    )?;
    let status = match runner.join() {
        Ok(result) => result?,
        Err(_) => bail!("the task thread panicked"),
    };
    for (number, count) in kernel.unimplemented_counts() {
        let name = sentry::syscalls::lookup(number).map_or("unknown", |i| i.name);
        tracing::info!(number, name, count, "unimplemented syscall census");
    }
    tracing::debug!(?status, "application finished");
    if let Some(mut gofer) = gofer_process {
        // The gofer exits once its connection closes; don't leave it behind.
        drop(kernel);
        let _ = gofer.kill();
        let _ = gofer.wait();
    }
    Ok(status.shell_code())
}

/// Starts `gofer serve --read-only --root DIR` on one end of a socket pair
/// and returns the other end.
fn start_gofer(
    gofer: Option<&std::path::Path>,
    root: &std::path::Path,
) -> Result<(std::process::Child, std::os::unix::net::UnixStream)> {
    use std::os::fd::AsRawFd;
    let binary = match gofer {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("gofer"),
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    // The child's end must survive exec: clear close-on-exec on it alone.
    let flags = rustix::io::fcntl_getfd(&theirs)?;
    rustix::io::fcntl_setfd(&theirs, flags - rustix::io::FdFlags::CLOEXEC)?;
    let child = std::process::Command::new(&binary)
        .arg("serve")
        .arg("--read-only")
        .arg("--root")
        .arg(root)
        .arg("--fd")
        .arg(theirs.as_raw_fd().to_string())
        .spawn()
        .with_context(|| format!("starting gofer {}", binary.display()))?;
    Ok((child, ours))
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the sentry end the application
/// with the same signal, so the sentry then exits with 128+signo.
fn forward_termination_signals(kernel: Arc<Kernel>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signo in signals.forever() {
                tracing::debug!(signo, "termination signal from the host");
                kernel.kill_all(signo);
            }
        })?;
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Exec(args) => exec(args),
        Command::Boot(args) => boot(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("sentry: {error:#}");
            std::process::exit(125);
        }
    }
}
