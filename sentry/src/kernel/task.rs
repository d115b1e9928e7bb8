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

/// A new process's file mode creation mask when the spec sets none.
pub const DEFAULT_UMASK: u32 = 0o022;

/// Error applying a spec's rlimit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RlimitError {
    #[error("rlimit {0} is not a resource this kernel has")]
    UnknownResource(u32),
    #[error("rlimit {resource}: soft limit {soft} is above the hard limit {hard}")]
    SoftAboveHard { resource: u32, soft: u64, hard: u64 },
}

/// [`default_rlimits`] with `(resource, soft, hard)` entries applied in
/// order, as runc's setrlimit calls for the spec's `process.rlimits`.
pub fn rlimits_with(
    entries: impl IntoIterator<Item = (u32, u64, u64)>,
) -> Result<[Rlimit; RLIM_NLIMITS], RlimitError> {
    let mut limits = default_rlimits();
    for (resource, soft, hard) in entries {
        let slot = limits
            .get_mut(resource as usize)
            .ok_or(RlimitError::UnknownResource(resource))?;
        if soft > hard {
            return Err(RlimitError::SoftAboveHard {
                resource,
                soft,
                hard,
            });
        }
        *slot = Rlimit { soft, hard };
    }
    Ok(limits)
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
    /// The file mode creation mask (umask(2)).
    pub umask: u32,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_rlimits_override_the_defaults() {
        let l = rlimits_with([(7, 256, 512), (4, 0, 0)]).unwrap();
        assert_eq!(
            l[7],
            Rlimit {
                soft: 256,
                hard: 512
            }
        );
        assert_eq!(l[4], Rlimit { soft: 0, hard: 0 });
        assert_eq!(l[3], default_rlimits()[3]);
        assert_eq!(
            rlimits_with([(16, 1, 1)]),
            Err(RlimitError::UnknownResource(16))
        );
        assert!(rlimits_with([(7, 2, 1)])
            .unwrap_err()
            .to_string()
            .contains("soft limit 2 is above the hard limit 1"));
    }
}
