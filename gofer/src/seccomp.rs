//! The gofer's seccomp allowlist, kept as data: one row per system call
//! with the reason the gofer needs it. Anything else kills the process.
//!
//! Installed after setup (root opened, sockets bound, signal handler in
//! place) and before the first request is read.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use thiserror::Error;

/// A constraint on one argument.
#[derive(Debug, Clone, Copy)]
pub enum ArgRule {
    /// Any arguments.
    Any,
    /// Argument `arg` must have every bit of `mask` set.
    BitsSet { arg: u8, mask: u64 },
}

/// One allowed system call.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub nr: i64,
    pub args: ArgRule,
    pub why: &'static str,
}

const fn any(name: &'static str, nr: i64, why: &'static str) -> Rule {
    Rule {
        name,
        nr,
        args: ArgRule::Any,
        why,
    }
}

/// Every system call the gofer makes while serving.
pub const RULES: &[Rule] = &[
    // Serving requests.
    any("read", libc::SYS_read, "frames from the client; FIFO reads"),
    any("write", libc::SYS_write, "replies; FIFO writes; log lines"),
    any("pread64", libc::SYS_pread64, "Tread on regular files"),
    any("pwrite64", libc::SYS_pwrite64, "Twrite on regular files"),
    any(
        "recvfrom",
        libc::SYS_recvfrom,
        "frames from the client socket",
    ),
    any("sendto", libc::SYS_sendto, "replies on the client socket"),
    any(
        "openat",
        libc::SYS_openat,
        "walking (O_PATH|O_NOFOLLOW), Tlopen, Tlcreate",
    ),
    any("close", libc::SYS_close, "clunked fids"),
    any("newfstatat", libc::SYS_newfstatat, "Tgetattr, qids"),
    any("fstat", libc::SYS_fstat, "checking reopened files"),
    any("statx", libc::SYS_statx, "metadata through std"),
    any("lseek", libc::SYS_lseek, "Treaddir resume cookies"),
    any("getdents64", libc::SYS_getdents64, "Treaddir"),
    any(
        "fchmodat2",
        libc::SYS_fchmodat2,
        "Tsetattr mode on O_PATH fds",
    ),
    any(
        "fchownat",
        libc::SYS_fchownat,
        "Tsetattr uid/gid; owners of new files",
    ),
    any("utimensat", libc::SYS_utimensat, "Tsetattr atime/mtime"),
    any("ftruncate", libc::SYS_ftruncate, "Tsetattr size"),
    any("fsync", libc::SYS_fsync, "Tfsync"),
    any("fdatasync", libc::SYS_fdatasync, "Tfsync with datasync"),
    any("fstatfs", libc::SYS_fstatfs, "Tstatfs"),
    any("mkdirat", libc::SYS_mkdirat, "Tmkdir"),
    any(
        "mknodat",
        libc::SYS_mknodat,
        "Tmknod (regular, FIFO, socket only)",
    ),
    any("symlinkat", libc::SYS_symlinkat, "Tsymlink"),
    any("linkat", libc::SYS_linkat, "Tlink"),
    any("renameat", libc::SYS_renameat, "Trename, Trenameat"),
    any(
        "renameat2",
        libc::SYS_renameat2,
        "Trename, Trenameat (libc's renameat)",
    ),
    any("unlinkat", libc::SYS_unlinkat, "Tunlinkat, Tremove"),
    any("readlinkat", libc::SYS_readlinkat, "Treadlink"),
    any("fcntl", libc::SYS_fcntl, "OFD byte-range locks; fd flags"),
    any("fgetxattr", libc::SYS_fgetxattr, "Txattrwalk"),
    any(
        "flistxattr",
        libc::SYS_flistxattr,
        "Txattrwalk of the name list",
    ),
    any("fsetxattr", libc::SYS_fsetxattr, "Txattrcreate commit"),
    any(
        "fremovexattr",
        libc::SYS_fremovexattr,
        "Txattrcreate of size 0",
    ),
    any("accept4", libc::SYS_accept4, "new clients on --socket"),
    // Threads: one per connection and per blocking request.
    Rule {
        name: "clone",
        nr: libc::SYS_clone,
        args: ArgRule::BitsSet {
            arg: 0,
            mask: libc::CLONE_THREAD as u64,
        },
        why: "new threads only, never new processes",
    },
    any(
        "clone3",
        libc::SYS_clone3,
        "reaches only the ENOSYS filter, so libc falls back to clone",
    ),
    any("futex", libc::SYS_futex, "locks and condition variables"),
    any("set_robust_list", libc::SYS_set_robust_list, "thread start"),
    any("rseq", libc::SYS_rseq, "thread start"),
    any("mmap", libc::SYS_mmap, "allocation, thread stacks"),
    any("munmap", libc::SYS_munmap, "allocation, thread stacks"),
    any("mprotect", libc::SYS_mprotect, "thread stack guard pages"),
    any("mremap", libc::SYS_mremap, "growing large buffers"),
    any("madvise", libc::SYS_madvise, "allocator and thread exit"),
    any("brk", libc::SYS_brk, "allocation"),
    any(
        "sigaltstack",
        libc::SYS_sigaltstack,
        "Rust thread start/exit",
    ),
    any("rt_sigprocmask", libc::SYS_rt_sigprocmask, "thread start"),
    any(
        "rt_sigaction",
        libc::SYS_rt_sigaction,
        "libc installs its thread-cancel handler at the first thread",
    ),
    any(
        "rt_sigreturn",
        libc::SYS_rt_sigreturn,
        "return from the interrupt handler",
    ),
    any(
        "tgkill",
        libc::SYS_tgkill,
        "Tflush interrupting a blocked request",
    ),
    any("getpid", libc::SYS_getpid, "tgkill's target"),
    any("gettid", libc::SYS_gettid, "thread ids"),
    any("prctl", libc::SYS_prctl, "thread names"),
    any(
        "sched_getaffinity",
        libc::SYS_sched_getaffinity,
        "std's parallelism query",
    ),
    any("sched_yield", libc::SYS_sched_yield, "lock contention"),
    any(
        "getrandom",
        libc::SYS_getrandom,
        "hash map keys of new threads",
    ),
    any(
        "clock_gettime",
        libc::SYS_clock_gettime,
        "condition variable timeouts, log times",
    ),
    any("clock_nanosleep", libc::SYS_clock_nanosleep, "short sleeps"),
    any("nanosleep", libc::SYS_nanosleep, "short sleeps"),
    any("exit", libc::SYS_exit, "thread exit"),
    any("exit_group", libc::SYS_exit_group, "process exit"),
];

#[derive(Debug, Error)]
pub enum SeccompError {
    #[error("building seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("compiling seccomp filter: {0}")]
    Compile(#[from] seccompiler::Error),
}

fn program(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, SeccompError> {
    let filter = SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64)?;
    Ok(filter.try_into()?)
}

/// The compiled filters, in installation order: first clone3 → ENOSYS
/// (its flags live in memory, out of a filter's sight), then the allowlist.
pub fn filters() -> Result<Vec<BpfProgram>, SeccompError> {
    let clone3 = program(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
    )?;
    let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for rule in RULES {
        let conditions = match rule.args {
            ArgRule::Any => vec![],
            ArgRule::BitsSet { arg, mask } => vec![SeccompRule::new(vec![SeccompCondition::new(
                arg,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(mask),
                mask,
            )?])?],
        };
        allow.insert(rule.nr, conditions);
    }
    let allowlist = program(allow, SeccompAction::KillProcess, SeccompAction::Allow)?;
    Ok(vec![clone3, allowlist])
}

/// Locks every thread of the process into the allowlist (sets no_new_privs).
///
/// INVARIANT: called after setup and before the first client byte is read.
pub fn install() -> Result<(), SeccompError> {
    for prog in filters()? {
        seccompiler::apply_filter_all_threads(&prog)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_unique_and_compile() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.nr), "{} listed twice", r.name);
            assert!(!r.why.is_empty());
        }
        let progs = filters().unwrap();
        assert_eq!(progs.len(), 2);
        assert!(progs[1].len() > RULES.len());
    }

    #[test]
    fn no_process_creation_or_exec_is_allowed() {
        for nr in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_ptrace,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_open,
            libc::SYS_openat2,
        ] {
            assert!(
                RULES.iter().all(|r| r.nr != nr),
                "syscall {nr} must not be allowed"
            );
        }
    }
}
