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
use sentry::platform::kvm::{layout::PLATFORM_RESERVED, KvmPlatform};
use sentry::platform::Platform;

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
    let host_path = PathBuf::from(program);
    let image: Arc<[u8]> = std::fs::read(&host_path)
        .with_context(|| format!("reading {}", host_path.display()))?
        .into();
    let exe_path = std::fs::canonicalize(&host_path).unwrap_or_else(|_| host_path.clone());

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
    let platform: Arc<dyn Platform> = Arc::new(KvmPlatform::new(Arc::clone(&memory))?);
    let kernel = Arc::new(Kernel::new(args.strace, platform.cpu_features()));

    let spec = ProcessSpec {
        image,
        argv,
        envp,
        execfn: host_path.as_os_str().as_bytes().to_vec(),
        exe_path: exe_path.as_os_str().as_bytes().to_vec(),
        creds: Credentials::default(),
    };
    let mut task = kernel::new_process(Arc::clone(&kernel), platform.as_ref(), memory, spec)?;
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
    Ok(status.shell_code())
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
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("sentry: {error:#}");
            std::process::exit(125);
        }
    }
}
