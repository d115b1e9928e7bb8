//! Tasks, processes and the kernel-wide state they share.

mod exec;
mod run;
pub mod signal;
mod task;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::platform::{CpuFeatures, Interrupt};
use crate::vfs::Vfs;

pub use exec::{new_process, ExecError, ProcessSpec};
pub use run::run_task;
pub use task::{
    default_rlimits, rlimits_with, Credentials, ExitStatus, Rlimit, RlimitError, Task,
    DEFAULT_UMASK, RLIM_INFINITY, RLIM_NLIMITS,
};

/// Identity we report from uname(2): our own, not the host's. The node
/// and domain names are per sandbox ([`Kernel::hostname`]); these are
/// their defaults.
pub const SYSNAME: &str = "Linux";
pub const NODENAME: &str = "rvisor";
pub const RELEASE: &str = "6.6.0-rvisor";
pub const VERSION: &str = "#1 SMP rvisor";
pub const MACHINE: &str = "x86_64";
pub const DOMAINNAME: &str = "(none)";
/// __NEW_UTS_LEN: the longest host or domain name sethostname(2) takes.
pub const UTS_NAME_MAX: usize = 64;

/// The UTS namespace's names, as sethostname(2)/setdomainname(2) set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtsNames {
    pub hostname: Vec<u8>,
    pub domainname: Vec<u8>,
}

/// State shared by every task of the sandbox.
#[derive(Debug)]
pub struct Kernel {
    pub strace: bool,
    pub cpu: CpuFeatures,
    /// syscall number → how often the application called it unimplemented.
    unimplemented: Mutex<BTreeMap<u64, u64>>,
    /// A signal sent to the whole sandbox from outside (0: none).
    kill_signal: AtomicI32,
    /// Interrupters of running tasks, kicked when a kill arrives.
    interrupters: Mutex<Vec<Arc<dyn Interrupt>>>,
    /// Sleeping tasks wait on this so a kill wakes them.
    wakeup: (Mutex<()>, Condvar),
    /// The root filesystem; without one every path lookup is ENOENT.
    root: std::sync::OnceLock<Arc<Vfs>>,
    /// Host and domain name (the sandbox is one UTS namespace).
    uts: Mutex<UtsNames>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Kernel {
    pub fn new(strace: bool, cpu: CpuFeatures) -> Self {
        Self {
            strace,
            cpu,
            unimplemented: Mutex::new(BTreeMap::new()),
            kill_signal: AtomicI32::new(0),
            interrupters: Mutex::new(Vec::new()),
            wakeup: (Mutex::new(()), Condvar::new()),
            root: std::sync::OnceLock::new(),
            uts: Mutex::new(UtsNames {
                hostname: NODENAME.as_bytes().to_vec(),
                domainname: DOMAINNAME.as_bytes().to_vec(),
            }),
        }
    }

    /// The UTS names uname(2) reports.
    pub fn uts(&self) -> UtsNames {
        lock(&self.uts).clone()
    }

    /// Sets the host name (the spec's `hostname`, or sethostname(2)).
    pub fn set_hostname(&self, name: &[u8]) -> Result<(), crate::errno::Errno> {
        if name.len() > UTS_NAME_MAX {
            return Err(crate::errno::Errno::EINVAL);
        }
        lock(&self.uts).hostname = name.to_vec();
        Ok(())
    }

    /// Sets the NIS domain name (setdomainname(2)).
    pub fn set_domainname(&self, name: &[u8]) -> Result<(), crate::errno::Errno> {
        if name.len() > UTS_NAME_MAX {
            return Err(crate::errno::Errno::EINVAL);
        }
        lock(&self.uts).domainname = name.to_vec();
        Ok(())
    }

    /// Mounts the sandbox's root filesystem (once, before the first task runs).
    pub fn set_root(&self, fs: Arc<Vfs>) -> Result<(), Arc<Vfs>> {
        self.root.set(fs)
    }

    /// The root filesystem, or ENOENT for sandboxes without one.
    pub fn root(&self) -> Result<&Arc<Vfs>, crate::errno::Errno> {
        self.root.get().ok_or(crate::errno::Errno::ENOENT)
    }

    /// Counts an unimplemented syscall; the caller logs the event.
    pub fn count_unimplemented(&self, number: u64) {
        *lock(&self.unimplemented).entry(number).or_insert(0) += 1;
    }

    pub fn unimplemented_counts(&self) -> BTreeMap<u64, u64> {
        lock(&self.unimplemented).clone()
    }

    pub fn register_interrupter(&self, interrupter: Arc<dyn Interrupt>) {
        lock(&self.interrupters).push(interrupter);
    }

    /// Ends every task with `signo` (signal handlers are not run yet), kicking
    /// them out of the application and out of sleeps.
    pub fn kill_all(&self, signo: i32) {
        let _ = self
            .kill_signal
            .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst);
        for interrupter in lock(&self.interrupters).iter() {
            interrupter.interrupt();
        }
        let _guard = lock(&self.wakeup.0);
        self.wakeup.1.notify_all();
    }

    pub fn pending_kill(&self) -> Option<i32> {
        match self.kill_signal.load(Ordering::SeqCst) {
            0 => None,
            signo => Some(signo),
        }
    }

    /// Sleeps for `duration` unless a kill arrives; returns false if cut short.
    pub fn sleep(&self, duration: Duration) -> bool {
        // A deadline past what Instant can hold means "until killed".
        let deadline = Instant::now().checked_add(duration);
        let mut guard = lock(&self.wakeup.0);
        loop {
            if self.pending_kill().is_some() {
                return false;
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(deadline) if now >= deadline => return true,
                Some(deadline) => deadline - now,
                None => Duration::from_secs(3600),
            };
            guard = match self.wakeup.1.wait_timeout(guard, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}
