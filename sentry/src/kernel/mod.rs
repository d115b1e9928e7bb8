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
use crate::vfs::GoferFs;

pub use exec::{new_process, ExecError, ProcessSpec};
pub use run::run_task;
pub use task::{Credentials, ExitStatus, Rlimit, Task, RLIM_INFINITY, RLIM_NLIMITS};

/// Identity we report from uname(2): our own, not the host's.
pub const SYSNAME: &str = "Linux";
pub const NODENAME: &str = "rvisor";
pub const RELEASE: &str = "6.6.0-rvisor";
pub const VERSION: &str = "#1 SMP rvisor";
pub const MACHINE: &str = "x86_64";
pub const DOMAINNAME: &str = "(none)";

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
    root: std::sync::OnceLock<Arc<GoferFs>>,
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
        }
    }

    /// Mounts the sandbox's root filesystem (once, before the first task runs).
    pub fn set_root(&self, fs: Arc<GoferFs>) -> Result<(), Arc<GoferFs>> {
        self.root.set(fs)
    }

    /// The root filesystem, or ENOENT for sandboxes without one.
    pub fn root(&self) -> Result<&Arc<GoferFs>, crate::errno::Errno> {
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
