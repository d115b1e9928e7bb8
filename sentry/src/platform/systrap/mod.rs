//! The systrap platform: the application runs natively in a stub host process
//! whose every system call traps (seccomp SECCOMP_RET_TRAP) and whose every
//! fault is a signal; the stub's handler hands the saved state to the sentry
//! through memory both share, and waits.
//!
//! - One stub process per address space, forked by the sentry (clone without
//!   CLONE_VM), so it lives in the sandbox's namespaces. Its only memory is
//!   the stub region (`layout`) and views of the sentry's memory file, so the
//!   sentry reads and writes application memory directly, as with KVM.
//! - `stub` holds the stub's code (hand-written assembly, documented there) and
//!   the clone; `filter` the seccomp filter; `context` the sentry side of a
//!   trap: the futex hand-off, register transfer and event decoding.
//! - Mapping changes are queued by `AddressSpace::map`/`unmap` and run by the
//!   stub (mmap MAP_FIXED of the memory file, munmap, mprotect) in one batch
//!   right before the application resumes.
//!
//! Security: the filter traps every call whose instruction pointer is not in
//! the stub's code page. The application can jump into that page, so the calls
//! allowed there (futex wait/wake, rt_sigreturn, munmap, mprotect, and mmap of
//! the memory file only) must be, and are, harmless with any arguments to
//! anything but the application itself. One caveat, as in gVisor: such an mmap
//! can view any part of the memory file, i.e. other processes' memory of the
//! same sandbox; the sandbox, not the process, is the isolation boundary.
//!
//! The sentry's own seccomp filter: a stub must be forked before the sentry
//! installs it (a filter's KILL beats the stub's TRAP for every application
//! call), so the platform forks one spare stub when it is created, which the
//! first address space takes. Further address spaces (fork/exec, later) need
//! a stub factory forked before the filter, as gVisor does. While the
//! application runs the sentry itself needs, for this platform: futex
//! (shared wait/wake), tgkill (kicks), waitid (stub liveness), kill and wait4
//! (tearing a stub down), fallocate (freeing its frames).
//!
//! One stub thread per application thread: the thread areas, `StubThread`
//! and the per-context claim are there; creating a second stub thread (a
//! clone request run by the stub) is not, since the kernel runs one task.
//!
//! Requires the host to let user code use rd/wrfsbase (Linux >= 5.9 on a CPU
//! with FSGSBASE): the handler saves and restores FS/GS bases with them.

mod context;
pub mod filter;
pub mod layout;
pub mod stub;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use self::context::{decode_event, SystrapContext};
use self::layout::*;
use super::{AddressSpace, Context, CpuFeatures, Perms, PlatformError};
use crate::mm::memfile::{MemoryFile, HUGE_PAGE_SIZE, PAGE_SIZE};

/// Default bound on the busy-wait before sleeping on the futex, both in the
/// sentry and in the stub (overridden by RVISOR_SYSTRAP_SPIN_NS; 0 disables).
/// Only used when more than one CPU is available.
pub const DEFAULT_SPIN_NS: u64 = 20_000;
/// AT_HWCAP2 bit: the kernel lets user code use rd/wrfsbase.
const HWCAP2_FSGSBASE: u64 = 1 << 1;
const AT_MINSIGSTKSZ: libc::c_ulong = 51;

#[derive(Debug)]
pub struct SystrapPlatform {
    memory: Arc<MemoryFile>,
    /// Memory-file offset of the code page shared by every stub.
    code_offset: u64,
    /// `pause` iterations to spin before a futex wait.
    spin: u32,
    /// A stub forked when the platform was made, for the first address
    /// space: the sentry forks it before installing its own seccomp filter,
    /// which a stub must not inherit (a filter's KILL beats the stub's TRAP).
    spare: Mutex<Option<StubProcess>>,
    next_context_id: Mutex<u64>,
}

fn unavailable(why: impl Into<String>) -> PlatformError {
    PlatformError::Unavailable(format!("systrap: {}", why.into()))
}

impl SystrapPlatform {
    pub fn new(memory: Arc<MemoryFile>) -> Result<Self, PlatformError> {
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        if hwcap2 & HWCAP2_FSGSBASE == 0 {
            return Err(unavailable(
                "the host kernel does not enable FSGSBASE for user code",
            ));
        }
        // SAFETY: as above.
        let min_stack = unsafe { libc::getauxval(AT_MINSIGSTKSZ) };
        if min_stack + 4096 > SIGNAL_STACK_SIZE {
            return Err(unavailable(format!(
                "host signal frames ({min_stack} bytes) do not fit the stub's signal stack"
            )));
        }
        let memfd = memory.raw_fd();
        if memfd < 3 {
            return Err(unavailable("the memory file must not be fd 0, 1 or 2"));
        }
        let filter = filter::stub_filter(memfd);
        let page = stub::code_page(memfd, &filter);
        let code_offset = memory
            .allocate_page()
            .map_err(|e| unavailable(format!("allocating the stub code page: {e}")))?;
        memory.write(code_offset, &page);
        let spin = spin_iterations();
        let spare = StubProcess::spawn(&memory, code_offset, spin)?;
        tracing::debug!(
            code_bytes = stub::stub_code().bytes.len(),
            filter_len = filter.len(),
            spin,
            "systrap platform ready"
        );
        Ok(Self {
            memory,
            code_offset,
            spin,
            spare: Mutex::new(Some(spare)),
            next_context_id: Mutex::new(0),
        })
    }

    /// `pause` iterations spun before sleeping (0: always sleep at once).
    pub fn spin_iterations(&self) -> u32 {
        self.spin
    }
}

/// How many `pause` iterations make up the spin budget, if another CPU exists
/// to run the other side while this one spins.
fn spin_iterations() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let budget_ns = std::env::var("RVISOR_SYSTRAP_SPIN_NS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_SPIN_NS);
    if cpus < 2 || budget_ns == 0 {
        return 0;
    }
    const SAMPLES: u32 = 2_000;
    let start = Instant::now();
    for _ in 0..SAMPLES {
        std::hint::spin_loop();
    }
    let per_iteration = (start.elapsed().as_nanos() as f64 / f64::from(SAMPLES)).max(1.0);
    (budget_ns as f64 / per_iteration).min(f64::from(u32::MAX)) as u32
}

impl super::Platform for SystrapPlatform {
    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>, PlatformError> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Later stubs are forked from the sentry as it is then (see `spare`);
        // a pre-filter stub factory (gVisor's stub "zygote") is future work.
        let stub = match spare {
            Some(stub) => stub,
            None => StubProcess::spawn(&self.memory, self.code_offset, self.spin)?,
        };
        Ok(Box::new(SystrapAddressSpace {
            memory_size: self.memory.size(),
            threads: vec![StubThread {
                area: ThreadArea::new(Arc::clone(&self.memory), stub.threads_offset, 0),
                tid: stub.pid,
                owner: None,
            }],
            stub,
            pending: Vec::new(),
            mapped: BTreeMap::new(),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        let id = {
            let mut next = self
                .next_context_id
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        Ok(Box::new(SystrapContext::new(
            id,
            Arc::clone(&self.memory),
            self.spin,
        )))
    }

    fn max_user_address(&self) -> u64 {
        STUB_REGION_START
    }

    fn cpu_features(&self) -> CpuFeatures {
        // cpuid is available on every x86_64 CPU; leaf 0xd is only read when
        // leaf 1 reports XSAVE.
        let (leaf1, xsave_size) = {
            let leaf1 = std::arch::x86_64::__cpuid(1);
            let xsave = if leaf1.ecx & (1 << 26) != 0 {
                std::arch::x86_64::__cpuid_count(0xd, 0).ebx
            } else {
                512 + 64
            };
            (leaf1, xsave)
        };
        let min_signal_stack = (u64::from(xsave_size) + 1024 + 63) & !63;
        let cpu_count = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        CpuFeatures {
            hwcap: u64::from(leaf1.edx),
            hwcap2: HWCAP2_FSGSBASE,
            min_signal_stack,
            cpu_count,
        }
    }
}

// The application's stack goes right below the stub region (the loader uses
// min(STACK_TOP, max_user_address)), above where mmap fills downwards.
const _: () = {
    assert!(crate::loader::STACK_TOP > STUB_REGION_START);
    assert!(STUB_REGION_START - crate::loader::STACK_SIZE > 0x7fff_0000_0000);
    assert!(thread_area_va(MAX_STUB_THREADS - 1) + THREAD_AREA_SIZE <= STUB_REGION_END);
};

/// One stub process. Killed and reaped when dropped.
#[derive(Debug)]
pub(crate) struct StubProcess {
    pid: libc::pid_t,
    memory: Arc<MemoryFile>,
    /// Memory-file offset of the 2 MiB frame holding the thread areas.
    threads_offset: u64,
}

impl StubProcess {
    fn spawn(memory: &Arc<MemoryFile>, code_offset: u64, spin: u32) -> Result<Self, PlatformError> {
        let threads_offset = memory
            .allocate_huge_sparse()
            .map_err(|e| PlatformError::Stub(format!("allocating thread areas: {e}")))?;
        let area = ThreadArea::new(Arc::clone(memory), threads_offset, 0);
        area.write(CTL_SPIN, u64::from(spin));
        area.write(CTL_MEMFD, memory.raw_fd() as u64);
        let (rseq_addr, rseq_len) = stub::current_rseq();
        area.write(CTL_RSEQ_ADDR, rseq_addr);
        area.write(CTL_RSEQ_LEN, rseq_len);
        area.state().store(STATE_APP, Ordering::Release);
        // SAFETY: the memfd is the memory file's (>= 3, checked in new); the
        // code page was written in new and the thread areas just above.
        let pid = unsafe { stub::clone_stub(memory.raw_fd(), code_offset, threads_offset) };
        if pid < 0 {
            memory.free(threads_offset, HUGE_PAGE_SIZE);
            return Err(PlatformError::Setup {
                step: "clone of the stub process",
                source: std::io::Error::from_raw_os_error(-pid as i32),
            });
        }
        let process = Self {
            pid: pid as libc::pid_t,
            memory: Arc::clone(memory),
            threads_offset,
        };
        // The stub ends its init with `int3`: wait for that first trap.
        let deadline = Instant::now() + Duration::from_secs(10);
        context::wait_for_trap(&area, &process, spin, Some(deadline))?;
        let signo = area.read(CTL_SIGNO);
        if signo != libc::SIGTRAP as u64 {
            return Err(PlatformError::Stub(format!(
                "stub init trapped with signal {signo}, not SIGTRAP"
            )));
        }
        tracing::debug!(pid = process.pid, "systrap stub started");
        Ok(process)
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Fails if the stub has exited (it is not reaped here).
    fn check_alive(&self) -> Result<(), PlatformError> {
        // SAFETY: zeroed siginfo is valid; waitid only writes it. WNOWAIT
        // leaves the zombie for Drop to reap, so the pid cannot be reused.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall on our own child; the result is checked.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid/si_status are valid to read for a SIGCHLD siginfo,
        // and read as zero when nothing was reported.
        let (pid, status, code) = unsafe { (info.si_pid(), info.si_status(), info.si_code) };
        if rc == 0 && pid == 0 {
            return Ok(());
        }
        let status = match code {
            libc::CLD_EXITED => format!("exited with status {status} (failed init step {status})"),
            libc::CLD_KILLED | libc::CLD_DUMPED => format!("killed by signal {status}"),
            _ if rc != 0 => format!("waitid failed: {}", std::io::Error::last_os_error()),
            _ => format!("stopped or gone (code {code})"),
        };
        Err(PlatformError::StubDied {
            pid: self.pid,
            status,
        })
    }
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        // SAFETY: our own child, not yet reaped (only Drop reaps), so the pid
        // still names it; SIGKILL then a blocking wait for it.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
        self.memory.free(self.threads_offset, HUGE_PAGE_SIZE);
    }
}

/// A stub thread's control page and signal stack, seen from the sentry.
#[derive(Debug)]
pub(crate) struct ThreadArea {
    memory: Arc<MemoryFile>,
    /// Memory-file offset of the area.
    offset: u64,
    /// The area's address in the stub.
    va: u64,
}

impl ThreadArea {
    fn new(memory: Arc<MemoryFile>, threads_offset: u64, index: u64) -> Self {
        Self {
            memory,
            offset: threads_offset + index * THREAD_AREA_SIZE,
            va: thread_area_va(index),
        }
    }

    /// The futex word both sides hand the turn with.
    fn state(&self) -> &AtomicU32 {
        let address = self.memory.host_address() + self.offset + CTL_STATE;
        // SAFETY: the word is 4-byte aligned inside the memory file's mapping,
        // which lives as long as `self.memory`; the stub and the sentry only
        // touch it with atomic instructions (xchg, cmpxchg, aligned moves).
        unsafe { &*(address as *const AtomicU32) }
    }

    fn read(&self, field: u64) -> u64 {
        self.memory.read_u64(self.offset + field)
    }

    fn write(&self, field: u64, value: u64) {
        self.memory.write_u64(self.offset + field, value);
    }

    /// The memory-file offset of `[va, va+len)` if it lies inside this
    /// thread's signal stack. Pointers come from the shared page, which the
    /// application can scribble on: never trust them further.
    fn stack_offset(&self, va: u64, len: u64) -> Option<u64> {
        let low = self.va + SIGNAL_STACK_OFFSET;
        let high = self.va + THREAD_AREA_SIZE;
        let end = va.checked_add(len)?;
        (va >= low && end <= high).then(|| self.offset + (va - self.va))
    }
}

#[derive(Debug)]
struct StubThread {
    area: ThreadArea,
    tid: libc::pid_t,
    /// The context running on this thread.
    owner: Option<u64>,
}

/// A queued mapping change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Op {
    kind: u32,
    prot: u32,
    addr: u64,
    len: u64,
    offset: u64,
}

/// An application address space: one stub process.
#[derive(Debug)]
pub struct SystrapAddressSpace {
    stub: StubProcess,
    threads: Vec<StubThread>,
    /// Changes not yet run by the stub.
    pending: Vec<Op>,
    /// What the stub has mapped, by address: (length, file offset). A
    /// remap of exactly such a range with new permissions is an mprotect.
    mapped: BTreeMap<u64, (u64, u64)>,
    memory_size: u64,
}

impl SystrapAddressSpace {
    pub fn stub_pid(&self) -> libc::pid_t {
        self.stub.pid()
    }

    /// The thread context `id` runs on, claiming a free one on first use.
    fn thread_for(&mut self, id: u64) -> Result<usize, PlatformError> {
        if let Some(i) = self.threads.iter().position(|t| t.owner == Some(id)) {
            return Ok(i);
        }
        if let Some(i) = self.threads.iter().position(|t| t.owner.is_none()) {
            self.threads[i].owner = Some(id);
            return Ok(i);
        }
        // Each further application thread needs its own stub thread (and
        // thread area); the kernel runs one task per process so far.
        Err(PlatformError::Stub(
            "a second context in one address space needs a second stub thread, not implemented yet"
                .into(),
        ))
    }

    /// Forgets shadow entries overlapping `[va, va+len)`.
    fn forget(&mut self, va: u64, len: u64) {
        let end = va + len;
        let overlapping: Vec<u64> = self
            .mapped
            .range(..end)
            .rev()
            // Entries never overlap each other: the first one that ends at
            // or below `va` ends the overlapping run.
            .take_while(|(start, (l, _))| **start + *l > va)
            .map(|(start, _)| *start)
            .collect();
        for start in overlapping {
            self.mapped.remove(&start);
        }
    }

    fn check_user_range(&self, va: u64, len: u64) -> Result<(), PlatformError> {
        let end = va.checked_add(len);
        if !va.is_multiple_of(PAGE_SIZE)
            || !len.is_multiple_of(PAGE_SIZE)
            || len == 0
            || end.is_none_or(|e| e > STUB_REGION_START)
        {
            return Err(PlatformError::BadMapping {
                va,
                len,
                why: "outside the application's part of the stub address space",
            });
        }
        Ok(())
    }
}

fn prot(perms: Perms) -> u32 {
    // x86 has no write-only or execute-only pages; any access implies read.
    let mut prot = libc::PROT_READ;
    if perms.write {
        prot |= libc::PROT_WRITE;
    }
    if perms.execute {
        prot |= libc::PROT_EXEC;
    }
    prot as u32
}

impl AddressSpace for SystrapAddressSpace {
    fn map(
        &mut self,
        va: u64,
        len: u64,
        file_offset: u64,
        perms: Perms,
    ) -> Result<(), PlatformError> {
        self.check_user_range(va, len)?;
        let in_file = file_offset
            .checked_add(len)
            .is_some_and(|end| end <= self.memory_size);
        if !file_offset.is_multiple_of(PAGE_SIZE) || !in_file {
            return Err(PlatformError::BadMapping {
                va,
                len,
                why: "file range outside the memory file",
            });
        }
        if perms.is_none() {
            return self.unmap(va, len);
        }
        let prot = prot(perms);
        if self.mapped.get(&va) == Some(&(len, file_offset)) {
            self.pending.push(Op {
                kind: OP_MPROTECT,
                prot,
                addr: va,
                len,
                offset: 0,
            });
            return Ok(());
        }
        self.forget(va, len);
        self.mapped.insert(va, (len, file_offset));
        self.pending.push(Op {
            kind: OP_MMAP,
            prot,
            addr: va,
            len,
            offset: file_offset,
        });
        Ok(())
    }

    fn unmap(&mut self, va: u64, len: u64) -> Result<(), PlatformError> {
        self.check_user_range(va, len)?;
        self.forget(va, len);
        self.pending.push(Op {
            kind: OP_MUNMAP,
            prot: 0,
            addr: va,
            len,
            offset: 0,
        });
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_follows_perms() {
        let rw = Perms {
            read: true,
            write: true,
            execute: false,
        };
        assert_eq!(prot(rw), (libc::PROT_READ | libc::PROT_WRITE) as u32);
        let x = Perms {
            read: false,
            write: false,
            execute: true,
        };
        assert_eq!(prot(x), (libc::PROT_READ | libc::PROT_EXEC) as u32);
    }
}
