//! The sentry's own seccomp allowlist, kept as data: one row per host
//! system call the sentry makes while the application runs, with the
//! reason. Anything else kills the sentry (and so the sandbox): an
//! application that tricks the sentry into an unexpected host call gains
//! nothing.
//!
//! The gofer's list (gofer/src/seccomp.rs) has the same shape; the
//! seccomp-rules crate compiles and installs both.

use seccomp_rules::{any, clone3_refused, clone_threads_only};
pub use seccomp_rules::{ArgRule, FilterError, Rule};

/// Every host system call of a running sentry.
pub const RULES: &[Rule] = &[
    // Running the application.
    any(
        "ioctl",
        libc::SYS_ioctl,
        "KVM_RUN and vCPU/VM state; TCGETS/TIOCGWINSZ on stdio",
    ),
    any(
        "mmap",
        libc::SYS_mmap,
        "guest memory windows, vCPU run areas, allocation",
    ),
    any(
        "munmap",
        libc::SYS_munmap,
        "unmapping guest memory, allocation",
    ),
    any("mprotect", libc::SYS_mprotect, "thread stack guard pages"),
    any("mremap", libc::SYS_mremap, "growing buffers"),
    any(
        "madvise",
        libc::SYS_madvise,
        "releasing application memory, thread exit",
    ),
    any(
        "fallocate",
        libc::SYS_fallocate,
        "punching holes in the memory file",
    ),
    any("brk", libc::SYS_brk, "allocation"),
    // Host stdio the application writes and reads.
    any("read", libc::SYS_read, "stdio; 9P replies; signal pipe"),
    any(
        "write",
        libc::SYS_write,
        "stdio; 9P requests; log lines; signal pipe",
    ),
    any("pread64", libc::SYS_pread64, "stdio pread"),
    any("pwrite64", libc::SYS_pwrite64, "stdio pwrite"),
    any("readv", libc::SYS_readv, "buffered readers"),
    any("writev", libc::SYS_writev, "buffered writers"),
    any("lseek", libc::SYS_lseek, "stdio lseek"),
    any("fstat", libc::SYS_fstat, "stdio fstat"),
    any("newfstatat", libc::SYS_newfstatat, "fstat through std"),
    any("statx", libc::SYS_statx, "fstat through std"),
    any(
        "fcntl",
        libc::SYS_fcntl,
        "stdio status flags; close-on-exec",
    ),
    any("close", libc::SYS_close, "closing descriptors"),
    // The gofer connections and the control socket.
    any("sendto", libc::SYS_sendto, "9P requests"),
    any("recvfrom", libc::SYS_recvfrom, "9P replies"),
    any("sendmsg", libc::SYS_sendmsg, "control replies"),
    any("recvmsg", libc::SYS_recvmsg, "control requests"),
    any("accept4", libc::SYS_accept4, "control connections"),
    any("poll", libc::SYS_poll, "waiting on sockets"),
    any("ppoll", libc::SYS_ppoll, "waiting on sockets"),
    any("shutdown", libc::SYS_shutdown, "closing connections"),
    // Threads: the task threads, control and signals.
    clone_threads_only(),
    clone3_refused(),
    any(
        "futex",
        libc::SYS_futex,
        "locks, condition variables, thread joins",
    ),
    any("set_robust_list", libc::SYS_set_robust_list, "thread start"),
    any("rseq", libc::SYS_rseq, "thread start"),
    any(
        "sigaltstack",
        libc::SYS_sigaltstack,
        "Rust thread start/exit",
    ),
    any(
        "rt_sigprocmask",
        libc::SYS_rt_sigprocmask,
        "thread start; signal masks",
    ),
    any("rt_sigaction", libc::SYS_rt_sigaction, "vCPU kick handler"),
    any(
        "rt_sigreturn",
        libc::SYS_rt_sigreturn,
        "return from signal handlers",
    ),
    any(
        "tgkill",
        libc::SYS_tgkill,
        "kicking a vCPU thread out of KVM_RUN",
    ),
    any("getpid", libc::SYS_getpid, "tgkill's target"),
    // The systrap platform's stub processes (forked before this filter).
    any(
        "kill",
        libc::SYS_kill,
        "ending a systrap stub; the sentry's pid namespace holds only it and its stubs",
    ),
    any("wait4", libc::SYS_wait4, "reaping an ended systrap stub"),
    any(
        "waitid",
        libc::SYS_waitid,
        "noticing a systrap stub's death",
    ),
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
        "the application's getrandom, hash keys",
    ),
    any(
        "clock_gettime",
        libc::SYS_clock_gettime,
        "the application's clocks, log times",
    ),
    any("clock_nanosleep", libc::SYS_clock_nanosleep, "sleeps"),
    any("nanosleep", libc::SYS_nanosleep, "sleeps"),
    any("exit", libc::SYS_exit, "thread exit"),
    any(
        "exit_group",
        libc::SYS_exit_group,
        "the sentry's exit with the application's status",
    ),
];

/// Locks every thread of the sentry into the allowlist (and sets
/// no_new_privs).
pub fn install() -> Result<(), FilterError> {
    seccomp_rules::install(RULES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_unique_explained_and_leave_no_escape_hatch() {
        let forbidden = [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_ptrace,
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_mount,
            libc::SYS_setns,
            libc::SYS_unshare,
        ];
        seccomp_rules::check_table(RULES, &forbidden).unwrap();
        assert_eq!(seccomp_rules::compile(RULES).unwrap().len(), 2);
    }
}
