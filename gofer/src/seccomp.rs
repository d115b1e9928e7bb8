//! The gofer's seccomp allowlist, kept as data: one row per system call
//! with the reason the gofer needs it. Anything else kills the process.
//! The mechanism (compiling, installing) is the seccomp-rules crate's.
//!
//! Installed after setup (root opened, sockets bound, signal handler in
//! place) and before the first request is read.

use seccomp_rules::{any, clone3_refused, clone_threads_only};
pub use seccomp_rules::{ArgRule, FilterError, Rule};

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
    clone_threads_only(),
    clone3_refused(),
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

/// Locks every thread of the process into the allowlist (sets no_new_privs).
///
/// INVARIANT: called after setup and before the first client byte is read.
pub fn install() -> Result<(), FilterError> {
    seccomp_rules::install(RULES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_unique_explained_and_never_create_processes_or_sockets() {
        let forbidden = [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_ptrace,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_open,
            libc::SYS_openat2,
        ];
        seccomp_rules::check_table(RULES, &forbidden).unwrap();
        assert_eq!(seccomp_rules::compile(RULES).unwrap().len(), 2);
    }
}
