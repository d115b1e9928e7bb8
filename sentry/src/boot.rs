//! `sentry boot`: the sentry as the supervisor starts it. Reads the boot
//! message, opens what it needs from the host, confines itself (empty root,
//! no capabilities, no_new_privs, seccomp), tells the supervisor it is
//! ready, waits for `start` on the control socket and runs the application.
//! The sentry's exit status is the application's.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

use ipc::{Boot, ControlResponse, SandboxStatus};
use thiserror::Error;

use crate::control::Control;
use crate::kernel::{self, Credentials, ExitStatus, Kernel, ProcessSpec};
use crate::mm::memfile::MemoryFile;
use crate::platform::kvm::layout::PLATFORM_RESERVED;
use crate::platform::{Platform, PlatformKind};
use crate::vfs::gofer::path_string;
use crate::vfs::{Fs, GoferFs, OverlayFs, Vfs};

/// A failed boot step, named.
#[derive(Debug, Error)]
#[error("{step}: {message}")]
pub struct BootError {
    pub step: &'static str,
    pub message: String,
}

trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, BootError>;
}

impl<T, E: std::fmt::Display> Step<T> for Result<T, E> {
    fn step(self, step: &'static str) -> Result<T, BootError> {
        self.map_err(|e| BootError {
            step,
            message: e.to_string(),
        })
    }
}

fn fail(step: &'static str, message: impl Into<String>) -> BootError {
    BootError {
        step,
        message: message.into(),
    }
}

/// Takes ownership of the boot socket the supervisor placed at `fd`.
///
/// # Safety
/// `fd` must be an open descriptor that nothing else in the process owns.
pub unsafe fn boot_socket(fd: RawFd) -> UnixStream {
    // SAFETY: the caller guarantees `fd` is open and unowned.
    UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Boots and runs the sandbox; returns the application's shell exit code.
pub fn run(boot_sock: UnixStream) -> Result<i32, BootError> {
    match prepare(&boot_sock) {
        Ok(ready) => {
            // From here on the supervisor may have exited; a failed reply
            // only means nobody waits for it.
            let _ = ipc::send(&boot_sock, &ControlResponse::Ok, &[]);
            drop(boot_sock);
            ready.run()
        }
        Err(e) => {
            let _ = ipc::send(&boot_sock, &ControlResponse::Error(e.to_string()), &[]);
            Err(e)
        }
    }
}

/// Everything set up, the application not yet started.
struct Ready {
    control: Arc<Control>,
    kernel: Arc<Kernel>,
    platform: Arc<dyn Platform>,
    memory: Arc<MemoryFile>,
    spec: ProcessSpec,
    cwd: Vec<Vec<u8>>,
    wait_for_start: bool,
}

fn prepare(boot_sock: &UnixStream) -> Result<Ready, BootError> {
    let (boot, fds): (Boot, Vec<OwnedFd>) =
        ipc::recv(boot_sock).step("reading the boot message")?;
    tracing::debug!(id = %boot.id, args = ?boot.process.args, "boot message");
    let mut fds = fds.into_iter();
    let listener = UnixListener::from(
        fds.next()
            .ok_or_else(|| fail("boot message", "no control socket"))?,
    );
    let root_sock = UnixStream::from(
        fds.next()
            .ok_or_else(|| fail("boot message", "no gofer socket for the root"))?,
    );

    // Host resources first: after the jail, no path on the host is reachable.
    let memory_size = boot
        .memory_mib
        .checked_mul(1 << 20)
        .ok_or_else(|| fail("memory size", "overflows"))?;
    let memory = Arc::new(
        MemoryFile::new(PLATFORM_RESERVED + memory_size, PLATFORM_RESERVED)
            .step("creating the memory file")?,
    );
    let requested = <PlatformKind as clap::ValueEnum>::from_str(&boot.platform, true)
        .map_err(|_| std::io::Error::other(format!("unknown platform {:?}", boot.platform)))
        .step("choosing the platform")?;
    // Created before the seccomp filter goes on: systrap forks its stub here.
    let platform: Arc<dyn Platform> =
        crate::platform::create(requested, Arc::clone(&memory)).step("creating the platform")?;

    // Still one thread: capset below applies to the whole process.
    crate::jail::pivot_into_empty_root().step("confining the sentry")?;
    crate::jail::drop_privileges().step("confining the sentry")?;

    let root_gofer = GoferFs::mount(root_sock).step("mounting the root from the gofer")?;
    // A root the spec leaves writable gets the in-memory overlay: the
    // gofer itself always serves the root read-only.
    let root_writable = boot.mounts.first().is_some_and(|m| !m.read_only);
    let mut vfs = Vfs::new(if root_writable {
        Fs::Overlay(OverlayFs::new(root_gofer))
    } else {
        Fs::Gofer(root_gofer)
    });
    // The sentry's devices at /dev; volumes (e.g. at /dev/shm) go over it.
    vfs.mount_dev();
    // Volumes: one gofer connection each, in the order of mounts[1..].
    for mount in boot.mounts.iter().skip(1) {
        let sock = UnixStream::from(fds.next().ok_or_else(|| {
            fail(
                "boot message",
                format!("no gofer socket for {}", mount.destination),
            )
        })?);
        let volume = GoferFs::mount_with(sock, mount.read_only).step("mounting a volume")?;
        vfs.mount(mount.destination.as_bytes(), Fs::Gofer(volume));
    }
    let fs = Arc::new(vfs);
    let process = &boot.process;
    let cwd = fs
        .resolve(&[], process.cwd.as_bytes(), true)
        .map_err(|e| fail("process.cwd", format!("{}: {e}", process.cwd)))?;
    if !cwd.is_dir() {
        return Err(fail(
            "process.cwd",
            format!("{} is not a directory", process.cwd),
        ));
    }
    let program = process
        .args
        .first()
        .ok_or_else(|| fail("process.args", "empty"))?;
    let (image, exe) = find_executable(&fs, &cwd.path, program, &process.env)?;

    let kernel = Arc::new(Kernel::new(boot.strace, platform.cpu_features()));
    if kernel.set_root(fs).is_err() {
        return Err(fail("mounting the root", "already mounted"));
    }
    if let Some(name) = &boot.hostname {
        kernel.set_hostname(name.as_bytes()).map_err(|_| {
            fail(
                "hostname",
                format!("{name:?} is longer than {} bytes", kernel::UTS_NAME_MAX),
            )
        })?;
    }
    let rlimits =
        kernel::rlimits_with(process.rlimits.iter().map(|r| (r.resource, r.soft, r.hard)))
            .step("process.rlimits")?;
    let spec = ProcessSpec {
        image: image.into(),
        argv: process.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: process.env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        execfn: program.as_bytes().to_vec(),
        exe_path: exe,
        creds: Credentials {
            uid: process.user.uid,
            gid: process.user.gid,
        },
        rlimits,
        umask: process.user.umask.unwrap_or(kernel::DEFAULT_UMASK),
    };
    let status = if boot.wait_for_start {
        SandboxStatus::Created
    } else {
        SandboxStatus::Running
    };
    let control = Control::new(Arc::clone(&kernel), status);
    control.serve(listener).step("serving the control socket")?;
    forward_termination_signals(Arc::clone(&kernel)).step("installing signal handlers")?;
    // INVARIANT: the seccomp allowlist is in force before the first
    // application instruction; every thread the sentry needs before the
    // task thread (control, signals) exists, so the filter is applied to
    // all of them at once.
    crate::filter::install().step("installing the seccomp filter")?;
    Ok(Ready {
        control,
        kernel,
        platform,
        memory,
        spec,
        cwd: cwd.path,
        wait_for_start: boot.wait_for_start,
    })
}

/// Looks `program` up as execve would after a shell's PATH search: a name
/// with a slash is a path; a bare name is tried in each PATH directory.
fn find_executable(
    fs: &Vfs,
    cwd: &[Vec<u8>],
    program: &str,
    env: &[String],
) -> Result<(Vec<u8>, Vec<u8>), BootError> {
    let not_found = |e: String| fail("process.args[0]", e);
    if program.contains('/') {
        let (image, path) = fs
            .read_executable(cwd, program.as_bytes())
            .map_err(|e| not_found(format!("{program}: {e}")))?;
        return Ok((image, path_string(&path)));
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{program}");
        if let Ok((image, path)) = fs.read_executable(cwd, candidate.as_bytes()) {
            return Ok((image, path_string(&path)));
        }
    }
    Err(not_found(format!(
        "executable file not found in $PATH: {program}"
    )))
}

impl Ready {
    fn run(self) -> Result<i32, BootError> {
        if self.wait_for_start {
            self.control.wait_for_start();
        }
        let mut task = kernel::new_process(
            Arc::clone(&self.kernel),
            self.platform.as_ref(),
            self.memory,
            self.spec,
        )
        .step("starting the application")?;
        task.cwd = self.cwd;
        let kernel = Arc::clone(&self.kernel);
        let platform = self.platform;
        let runner = std::thread::Builder::new()
            .name("task-1".into())
            .spawn(move || -> Result<ExitStatus, BootError> {
                let mut context = platform.new_context().step("creating a vCPU")?;
                kernel.register_interrupter(context.interrupter());
                kernel::run_task(&mut task, context.as_mut()).step("running the application")
            })
            .step("starting the task thread")?;
        let status = runner
            .join()
            .map_err(|_| fail("running the application", "the task thread panicked"))??;
        self.control.set_status(SandboxStatus::Stopped);
        tracing::debug!(?status, "application finished");
        Ok(status.shell_code())
    }
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the sentry from the host
/// end the application with the same signal.
fn forward_termination_signals(kernel: Arc<Kernel>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signo in signals.forever() {
                tracing::debug!(signo, "signal from the host");
                kernel.kill_all(signo);
            }
        })?;
    Ok(())
}
