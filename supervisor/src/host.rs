//! Host side effects (spawning into namespaces, signals, process lookups)
//! behind one small trait, so the lifecycle policy in `container` can be
//! tested without root by a fake host.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use thiserror::Error;

use crate::cgroup::{CgroupFs, LinuxCgroupFs};

#[derive(Debug, Error)]
pub enum HostError {
    #[error("spawning {program}: {stage}: {errno}")]
    Spawn {
        program: String,
        stage: &'static str,
        errno: nix::Error,
    },
    #[error("opening namespace {path}: {source}")]
    Namespace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sending signal {signo} to pid {pid}: {errno}")]
    Kill {
        pid: i32,
        signo: i32,
        errno: nix::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where a spawned process's stdin/stdout/stderr go.
#[derive(Debug)]
pub enum Stdio {
    /// The runtime's own (the container's, for the sentry).
    Inherit,
    /// /dev/null in, this file (or /dev/null) out and err: never the
    /// caller's pipes, so a client waiting for EOF is not held up.
    Detached(Option<PathBuf>),
    /// A pty's replica as stdin/stdout/stderr and controlling terminal
    /// (in a new session).
    Terminal(OwnedFd),
}

/// A process to start in new (or joined) namespaces.
#[derive(Debug)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Namespaces created for the child.
    pub new_namespaces: CloneFlags,
    /// Namespaces joined (setns) before exec, e.g. a spec's network path.
    pub join: Vec<(PathBuf, CloneFlags)>,
    /// Descriptors handed over, each at the given number in the child.
    pub fds: Vec<(OwnedFd, RawFd)>,
    pub stdio: Stdio,
    /// Bring the loopback interface up in the child's network namespace
    /// before exec (a fresh namespace has `lo` down).
    pub loopback_up: bool,
}

/// What the host says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessInfo {
    Gone,
    /// Exited, not yet reaped by its parent.
    Zombie,
    /// Running; start time in clock ticks since boot.
    Alive {
        start: u64,
    },
}

pub trait Host {
    /// Starts `launch`; returns its pid once the program has been exec'd.
    fn spawn(&self, launch: Launch) -> Result<i32, HostError>;
    /// kill(2); a process already gone is not an error (returns false).
    fn kill(&self, pid: i32, signo: i32) -> Result<bool, HostError>;
    fn process(&self, pid: i32) -> ProcessInfo;
    /// The live children of `pid` (every thread's), in pid order.
    fn children(&self, pid: i32) -> Vec<i32>;
    /// The cgroup filesystem.
    fn cgroups(&self) -> &dyn CgroupFs;
}

/// The real host.
#[derive(Debug, Default)]
pub struct LinuxHost;

impl Host for LinuxHost {
    fn spawn(&self, launch: Launch) -> Result<i32, HostError> {
        spawn(launch)
    }

    fn kill(&self, pid: i32, signo: i32) -> Result<bool, HostError> {
        let sig = if signo == 0 {
            None
        } else {
            Some(
                nix::sys::signal::Signal::try_from(signo).map_err(|errno| HostError::Kill {
                    pid,
                    signo,
                    errno,
                })?,
            )
        };
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
            Ok(()) => Ok(true),
            Err(nix::Error::ESRCH) => Ok(false),
            Err(errno) => Err(HostError::Kill { pid, signo, errno }),
        }
    }

    fn process(&self, pid: i32) -> ProcessInfo {
        process_info(pid)
    }

    fn children(&self, pid: i32) -> Vec<i32> {
        children_of(pid)
    }

    fn cgroups(&self) -> &dyn CgroupFs {
        &LinuxCgroupFs
    }
}

/// Reads /proc/PID/stat: state (field 3) and start time (field 22).
pub fn process_info(pid: i32) -> ProcessInfo {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcessInfo::Gone;
    };
    // The command name may hold spaces and parentheses: split after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return ProcessInfo::Gone;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    match fields.first() {
        Some(&"Z") | Some(&"X") => ProcessInfo::Zombie,
        Some(_) => ProcessInfo::Alive {
            // Field 22 overall is index 19 after the state (field 3).
            start: fields.get(19).and_then(|s| s.parse().ok()).unwrap_or(0),
        },
        None => ProcessInfo::Gone,
    }
}

/// Every process whose parent (/proc/PID/stat field 4) is `pid`, in
/// pid order. A scan of /proc rather than /proc/PID/task/TID/children,
/// which kernels without CONFIG_PROC_CHILDREN lack.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut found: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&child| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                return false;
            };
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().collect())
                .unwrap_or_default();
            // After the command: state (field 3), then ppid (field 4).
            fields.first().is_some_and(|s| *s != "Z" && *s != "X")
                && fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid)
        })
        .collect();
    found.sort_unstable();
    found
}

/// Steps of the child between clone and exec, reported through a pipe.
const STAGES: &[&str] = &[
    "joining a namespace",
    "setting up descriptors",
    "exec",
    "bringing up the loopback interface",
];

/// `struct ifreq` as SIOCGIFFLAGS/SIOCSIFFLAGS use it: the interface
/// name, then the flags at the start of the 24-byte union.
#[repr(C)]
#[derive(Clone, Copy)]
struct IfreqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _union_rest: [u8; 22],
}

const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;

/// Sets IFF_UP on `lo` in the caller's network namespace. Async-signal-safe
/// (raw system calls on stack data only): runs between clone and exec.
///
/// # Safety
/// Only makes system calls; the caller must be prepared for errno to change.
unsafe fn loopback_up() -> bool {
    let mut req = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _union_rest: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: plain system calls; `req` is a live ifreq-sized buffer.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return false;
        }
        let ok = libc::ioctl(s, SIOCGIFFLAGS as _, &mut req as *mut IfreqFlags) == 0 && {
            req.flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s, SIOCSIFFLAGS as _, &req as *const IfreqFlags) == 0
        };
        libc::close(s);
        ok
    }
}

fn spawn(launch: Launch) -> Result<i32, HostError> {
    let program = launch.program.display().to_string();
    let fail = |stage: &'static str, errno: nix::Error| HostError::Spawn {
        program: program.clone(),
        stage,
        errno,
    };
    // Everything the child needs is prepared here: between clone and exec
    // it may not allocate (another thread could hold the allocator's lock).
    let cstr = |s: &std::ffi::OsStr| {
        CString::new(s.as_bytes()).map_err(|_| fail("arguments", nix::Error::EINVAL))
    };
    let path = cstr(launch.program.as_os_str())?;
    let mut argv = vec![path.clone()];
    for a in &launch.args {
        argv.push(cstr(a)?);
    }
    let argv_ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            CString::new(e).ok()
        })
        .collect();
    let env_ptrs: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain([std::ptr::null()])
        .collect();

    let mut joins = Vec::new();
    for (path, kind) in &launch.join {
        let f = std::fs::File::open(path).map_err(|source| HostError::Namespace {
            path: path.clone(),
            source,
        })?;
        joins.push((OwnedFd::from(f), kind.bits()));
    }
    // Park every handed-over fd above the targets so dup2 never clobbers one.
    let mut moves: Vec<(OwnedFd, RawFd)> = Vec::new();
    for (fd, target) in &launch.fds {
        let high = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100))
            .map_err(|e| fail("setting up descriptors", e))?;
        moves.push((owned_fd(high), *target));
    }
    let terminal = match &launch.stdio {
        Stdio::Terminal(fd) => Some(fd.as_raw_fd()),
        _ => None,
    };
    let (stdin, stdout) = match &launch.stdio {
        Stdio::Inherit | Stdio::Terminal(_) => (None, None),
        Stdio::Detached(log) => {
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?;
            let out = match log {
                Some(p) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
                None => null.try_clone()?,
            };
            (Some(OwnedFd::from(null)), Some(OwnedFd::from(out)))
        }
    };
    // The child starts with no signal blocked whatever this thread blocks
    // (signal masks survive execve).
    let mut empty_mask = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set it is given.
    let empty_mask = unsafe {
        libc::sigemptyset(empty_mask.as_mut_ptr());
        empty_mask.assume_init()
    };
    let (err_read, err_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("pipe", e))?;

    let flags = launch.new_namespaces.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child gets a
    // copy of this address space. It then only makes async-signal-safe
    // system calls on data prepared above, and execs or _exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(fail("clone", nix::Error::last()));
    }
    if pid == 0 {
        // SAFETY: in the child, with only the raw descriptors and C strings
        // prepared before the clone; every call is async-signal-safe.
        unsafe {
            let report = |stage: u32| -> ! {
                let msg = [stage, *libc::__errno_location() as u32];
                libc::write(err_write.as_raw_fd(), msg.as_ptr().cast(), 8);
                libc::_exit(127);
            };
            libc::sigprocmask(libc::SIG_SETMASK, &empty_mask, std::ptr::null_mut());
            for (fd, kind) in &joins {
                if libc::setns(fd.as_raw_fd(), *kind) != 0 {
                    report(0);
                }
            }
            if launch.loopback_up && !loopback_up() {
                report(3);
            }
            if let (Some(i), Some(o)) = (&stdin, &stdout) {
                if libc::dup2(i.as_raw_fd(), 0) < 0
                    || libc::dup2(o.as_raw_fd(), 1) < 0
                    || libc::dup2(o.as_raw_fd(), 2) < 0
                {
                    report(1);
                }
            }
            if let Some(tty) = terminal {
                if libc::setsid() < 0
                    || libc::ioctl(tty, libc::TIOCSCTTY, 0) < 0
                    || libc::dup2(tty, 0) < 0
                    || libc::dup2(tty, 1) < 0
                    || libc::dup2(tty, 2) < 0
                {
                    report(1);
                }
            }
            for (fd, target) in &moves {
                if libc::dup2(fd.as_raw_fd(), *target) < 0 {
                    report(1);
                }
            }
            libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
            report(2);
        }
    }
    drop(err_write);
    let mut buf = [0u8; 8];
    let n = read_full(&err_read, &mut buf);
    if n == 8 {
        let stage = u32::from_ne_bytes(buf[..4].try_into().unwrap_or_default()) as usize;
        let errno = i32::from_ne_bytes(buf[4..].try_into().unwrap_or_default());
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
        return Err(fail(
            STAGES.get(stage).copied().unwrap_or("setup"),
            nix::Error::from_raw(errno),
        ));
    }
    Ok(pid as i32)
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        }
    }
    got
}

fn owned_fd(fd: RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` was just returned by F_DUPFD_CLOEXEC; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_init_has_a_start_time() {
        let me = std::process::id() as i32;
        assert!(matches!(process_info(me), ProcessInfo::Alive { .. }));
        assert_eq!(process_info(i32::MAX), ProcessInfo::Gone);
    }

    #[test]
    fn spawn_reports_a_missing_program() {
        let err = LinuxHost
            .spawn(Launch {
                program: "/nonexistent/prog".into(),
                args: vec![],
                new_namespaces: CloneFlags::empty(),
                join: vec![],
                fds: vec![],
                stdio: Stdio::Detached(None),
                loopback_up: false,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("exec") && err.contains("ENOENT"), "{err}");
    }

    #[test]
    fn spawn_hands_over_a_descriptor() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let pid = LinuxHost
            .spawn(Launch {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), "echo hello >&5".into()],
                new_namespaces: CloneFlags::empty(),
                join: vec![],
                fds: vec![(b.into(), 5)],
                stdio: Stdio::Detached(None),
                loopback_up: false,
            })
            .unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut &a, &mut out).unwrap();
        assert_eq!(out, "hello\n");
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)));
    }

    #[test]
    fn children_of_lists_a_spawned_child() {
        let child = std::process::Command::new("/bin/sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let me = std::process::id() as i32;
        assert!(children_of(me).contains(&pid));
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!children_of(me).contains(&pid));
    }

    #[test]
    fn loopback_comes_up_in_a_new_network_namespace() {
        if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/usr/sbin/ip").exists() {
            eprintln!("needs root and /usr/sbin/ip: skipped");
            return;
        }
        let run = |loopback_up: bool| {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let pid = LinuxHost
                .spawn(Launch {
                    program: "/bin/sh".into(),
                    args: vec!["-c".into(), "/usr/sbin/ip -o link show lo >&5".into()],
                    new_namespaces: CloneFlags::CLONE_NEWNET,
                    join: vec![],
                    fds: vec![(b.into(), 5)],
                    stdio: Stdio::Detached(None),
                    loopback_up,
                })
                .unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(&mut &a, &mut out).unwrap();
            nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
            out
        };
        let up = run(true);
        assert!(up.contains(",UP"), "{up}");
        let down = run(false);
        assert!(!down.contains(",UP"), "{down}");
    }
}
