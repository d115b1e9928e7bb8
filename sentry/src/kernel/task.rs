//! A task: one application thread with its registers, memory, files and
//! signal state.

use std::sync::Arc;

use super::signal::{SignalState, SEGV_ACCERR, SEGV_MAPERR, SIGSEGV};
use super::Kernel;
use crate::mm::{FaultError, MemoryManager};
use crate::platform::UserRegs;
use crate::vfs::FdTable;

pub const RLIM_NLIMITS: usize = 16;
pub const RLIM_INFINITY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub soft: u64,
    pub hard: u64,
}

/// Linux's defaults for a fresh login, per RLIMIT_* index.
pub fn default_rlimits() -> [Rlimit; RLIM_NLIMITS] {
    let unlimited = Rlimit {
        soft: RLIM_INFINITY,
        hard: RLIM_INFINITY,
    };
    let mut limits = [unlimited; RLIM_NLIMITS];
    limits[3] = Rlimit {
        soft: 8 << 20,
        hard: RLIM_INFINITY,
    }; // RLIMIT_STACK
    limits[4] = Rlimit {
        soft: 0,
        hard: RLIM_INFINITY,
    }; // RLIMIT_CORE
    limits[6] = Rlimit {
        soft: 63_432,
        hard: 63_432,
    }; // RLIMIT_NPROC
    limits[7] = Rlimit {
        soft: 1024,
        hard: crate::vfs::MAX_FDS as u64,
    }; // RLIMIT_NOFILE
    limits[8] = Rlimit {
        soft: 8 << 20,
        hard: 8 << 20,
    }; // RLIMIT_MEMLOCK
    limits[11] = Rlimit {
        soft: 63_432,
        hard: 63_432,
    }; // RLIMIT_SIGPENDING
    limits[12] = Rlimit {
        soft: 819_200,
        hard: 819_200,
    }; // RLIMIT_MSGQUEUE
    limits[13] = Rlimit { soft: 0, hard: 0 }; // RLIMIT_NICE
    limits[14] = Rlimit { soft: 0, hard: 0 }; // RLIMIT_RTPRIO
    limits
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
}

/// How a process ended, as wait(2) would report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    Killed(i32),
}

impl ExitStatus {
    /// The status a shell (or a container runtime) shows: the code, or 128+signo.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => i32::from(code),
            ExitStatus::Killed(signo) => 128 + signo,
        }
    }
}

#[derive(Debug)]
pub struct Task {
    pub tid: i32,
    pub tgid: i32,
    pub ppid: i32,
    /// The command name (comm), for logs and strace.
    pub name: String,
    pub regs: UserRegs,
    pub mm: MemoryManager,
    pub fds: FdTable,
    pub creds: Credentials,
    pub signals: SignalState,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    /// What readlink("/proc/self/exe") returns.
    pub exe_path: Vec<u8>,
    /// The working directory, as components of a physical path from the root.
    pub cwd: crate::vfs::gofer::PathComponents,
    pub kernel: Arc<Kernel>,
    pub exit_status: Option<ExitStatus>,
}

impl Task {
    pub fn exit(&mut self, status: ExitStatus) {
        if self.exit_status.is_none() {
            self.exit_status = Some(status);
        }
    }

    /// A synchronous fault signal. Handlers are not run yet, so the default
    /// action applies: the process dies with the signal.
    pub fn force_signal(&mut self, signo: i32, code: i32, addr: u64) {
        let action = self
            .signals
            .actions
            .get((signo - 1) as usize)
            .map(|a| a.handler)
            .unwrap_or(0);
        tracing::info!(
            task = self.tid,
            signal = super::signal::signal_name(signo),
            code,
            addr = format_args!("{addr:#x}"),
            rip = format_args!("{:#x}", self.regs.rip),
            handler = format_args!("{action:#x}"),
            "fatal signal"
        );
        self.exit(ExitStatus::Killed(signo));
    }

    pub fn fault_signal(&mut self, error: FaultError, addr: u64) {
        let code = match error {
            FaultError::Unmapped => SEGV_MAPERR,
            FaultError::Protection => SEGV_ACCERR,
            FaultError::OutOfMemory => {
                tracing::error!(
                    task = self.tid,
                    addr,
                    "out of memory resolving a page fault"
                );
                SEGV_MAPERR
            }
        };
        self.force_signal(SIGSEGV, code, addr);
    }
}
