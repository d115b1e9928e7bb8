//! The sentry side of a trap: hand the turn to the stub, wait for it to trap
//! back, move registers between `UserRegs` and the signal frame, and turn the
//! signal into a platform event.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::layout::*;
use super::{StubProcess, SystrapAddressSpace, ThreadArea};
use crate::mm::memfile::MemoryFile;
use crate::platform::vector as v;
use crate::platform::{
    AccessKind, AddressSpace, Context, Event, Interrupt, PlatformError, UserRegs,
};

/// How long one futex wait lasts before the sentry checks the stub is alive.
const LIVENESS_POLL: Duration = Duration::from_millis(100);
const SYS_SECCOMP_CODE: i32 = 1;
const PF_PRESENT: u64 = 1 << 0;
const PF_WRITE: u64 = 1 << 1;
const PF_INSTRUCTION: u64 = 1 << 4;

fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
    };
    // SAFETY: a shared (not FUTEX_PRIVATE) wait on a word of the memory file
    // mapping, which outlives the call; EAGAIN/EINTR/ETIMEDOUT just return.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: as in futex_wait; waking has no memory effect.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

/// Gives the turn to the stub (`state` is APP, OPS or OPS_THEN_APP), waking
/// it if it sleeps.
pub(super) fn hand_to_stub(area: &ThreadArea, state: u32) {
    let old = area.state().swap(state, Ordering::AcqRel);
    if old & STATE_SLEEPING != 0 {
        futex_wake(area.state());
    }
}

/// Waits until the stub hands the turn back: `spin` polls, then futex waits
/// (flagging SLEEPING so the stub wakes us), checking now and then that the
/// stub still lives. Returns whether the turn came back during the spin.
pub(super) fn wait_for_trap(
    area: &ThreadArea,
    stub: &StubProcess,
    spin: u32,
    deadline: Option<Instant>,
) -> Result<bool, PlatformError> {
    let state = area.state();
    let trapped = |s: u32| s & !STATE_SLEEPING == STATE_TRAPPED;
    for _ in 0..spin {
        if trapped(state.load(Ordering::Acquire)) {
            return Ok(true);
        }
        std::hint::spin_loop();
    }
    loop {
        let s = state.load(Ordering::Acquire);
        if trapped(s) {
            return Ok(false);
        }
        if s & STATE_SLEEPING == 0
            && state
                .compare_exchange(s, s | STATE_SLEEPING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            continue;
        }
        futex_wait(state, s | STATE_SLEEPING, LIVENESS_POLL);
        if trapped(state.load(Ordering::Acquire)) {
            return Ok(false);
        }
        stub.check_alive()?;
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(PlatformError::Stub(
                "the stub did not answer in time".into(),
            ));
        }
    }
}

/// The kick: a flag checked before each entry, plus a signal to the stub
/// thread while it runs application code.
#[derive(Debug, Default)]
struct Kick {
    pending: AtomicBool,
    /// (pid, tid) of the stub thread while the context is in `switch`.
    target: Mutex<Option<(libc::pid_t, libc::pid_t)>>,
}

impl Kick {
    fn set_target(&self, target: Option<(libc::pid_t, libc::pid_t)>) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }
}

impl Interrupt for Kick {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let target = self.target.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((pid, tid)) = *target {
            // SAFETY: plain syscall. While the target is set the address space
            // (and so the unreaped stub) is borrowed by `switch`, so the ids
            // name our stub thread.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, KICK_SIGNAL) };
        }
    }
}

/// What this context did, for the debug log.
#[derive(Debug, Default)]
struct Counters {
    switches: u64,
    syscalls: u64,
    page_faults: u64,
    exceptions: u64,
    kicks: u64,
    ops: u64,
    op_batches: u64,
}

#[derive(Debug)]
pub struct SystrapContext {
    id: u64,
    memory: Arc<MemoryFile>,
    /// The most either side spins before sleeping.
    spin: u32,
    /// The spin in force now: spinning only pays while the other side has
    /// a CPU of its own, so it shrinks when turns keep arriving after it
    /// and grows back when they arrive during it.
    spin_now: u32,
    /// Turns in a row that arrived only after the spin.
    missed: u32,
    /// Switches since spinning was turned off, to try it again now and then.
    since_off: u32,
    kick: Arc<Kick>,
    counters: Counters,
}

/// Missed spins in a row that halve the spin.
const SPIN_MISSES_TO_SHRINK: u32 = 3;
/// Switches without spinning before a spin is tried again.
const SPIN_RETRY_AFTER: u32 = 128;

impl SystrapContext {
    pub(super) fn new(id: u64, memory: Arc<MemoryFile>, spin: u32) -> Self {
        Self {
            id,
            memory,
            spin,
            spin_now: spin,
            missed: 0,
            since_off: 0,
            kick: Arc::new(Kick::default()),
            counters: Counters::default(),
        }
    }

    /// Adjusts `spin_now` after a turn that came back during the spin
    /// (`caught`) or after it.
    fn adapt_spin(&mut self, caught: bool) {
        if self.spin == 0 {
            return;
        }
        if caught {
            self.missed = 0;
            self.spin_now = self.spin_now.saturating_mul(2).clamp(1, self.spin);
        } else if self.spin_now > 0 {
            self.missed += 1;
            if self.missed >= SPIN_MISSES_TO_SHRINK {
                self.missed = 0;
                self.spin_now /= 2;
            }
        } else {
            self.since_off += 1;
            if self.since_off >= SPIN_RETRY_AFTER {
                self.since_off = 0;
                self.spin_now = (self.spin / 4).max(1);
            }
        }
    }

    /// Writes queued mapping changes into the control page. All but the last
    /// batch run now; the last is left for STATE_OPS_THEN_APP and its count
    /// returned (0: nothing left).
    fn flush_ops(
        &mut self,
        space: &mut SystrapAddressSpace,
        thread: usize,
    ) -> Result<usize, PlatformError> {
        let ops = std::mem::take(&mut space.pending);
        let batches: Vec<&[super::Op]> = ops.chunks(OPS_CAPACITY as usize).collect();
        let area = &space.threads[thread].area;
        for (i, batch) in batches.iter().enumerate() {
            for (j, op) in batch.iter().enumerate() {
                let at = CTL_OPS + j as u64 * OP_SIZE;
                area.write(
                    at + OP_KIND,
                    u64::from(op.kind) | (u64::from(op.prot) << 32),
                );
                area.write(at + OP_ADDR, op.addr);
                area.write(at + OP_LEN, op.len);
                area.write(at + OP_OFFSET, op.offset);
                area.write(at + OP_RESULT, 0);
            }
            area.write(CTL_OP_COUNT, batch.len() as u64);
            self.counters.ops += batch.len() as u64;
            self.counters.op_batches += 1;
            if i + 1 == batches.len() {
                return Ok(batch.len());
            }
            hand_to_stub(area, STATE_OPS);
            wait_for_trap(area, &space.stub, self.spin, None)?;
            check_op_results(area, batch.len())?;
        }
        Ok(0)
    }
}

/// Fails if any of the first `count` requests in the control page failed.
fn check_op_results(area: &ThreadArea, count: usize) -> Result<(), PlatformError> {
    for j in 0..count.min(OPS_CAPACITY as usize) {
        let at = CTL_OPS + j as u64 * OP_SIZE;
        let result = area.read(at + OP_RESULT) as i64;
        if (-4095..0).contains(&result) {
            let kind = area.read(at + OP_KIND) as u32;
            let name = match kind {
                OP_MMAP => "mmap",
                OP_MUNMAP => "munmap",
                OP_MPROTECT => "mprotect",
                _ => "unknown request",
            };
            return Err(PlatformError::Stub(format!(
                "{name} of {:#x}+{:#x} failed in the stub: {}",
                area.read(at + OP_ADDR),
                area.read(at + OP_LEN),
                std::io::Error::from_raw_os_error(-result as i32)
            )));
        }
    }
    Ok(())
}

/// Reads the 23 saved general registers of the frame at `uc` (stub address).
fn read_gregs(
    memory: &MemoryFile,
    area: &ThreadArea,
) -> Result<(u64, [u64; NGREG]), PlatformError> {
    let uc = area.read(CTL_UCONTEXT);
    let offset = area.stack_offset(uc, UC_SIZE).ok_or_else(|| {
        PlatformError::Stub(format!("ucontext pointer {uc:#x} is off the signal stack"))
    })?;
    let mut bytes = [0u8; NGREG * 8];
    memory.read(offset + UC_GREGS, &mut bytes);
    let mut gregs = [0u64; NGREG];
    for (i, chunk) in bytes.chunks_exact(8).enumerate() {
        gregs[i] = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    Ok((offset + UC_GREGS, gregs))
}

fn gregs_to_user(gregs: &[u64; NGREG], fs_base: u64, gs_base: u64) -> UserRegs {
    UserRegs {
        r8: gregs[REG_R8],
        r9: gregs[REG_R8 + 1],
        r10: gregs[REG_R8 + 2],
        r11: gregs[REG_R8 + 3],
        r12: gregs[REG_R8 + 4],
        r13: gregs[REG_R8 + 5],
        r14: gregs[REG_R8 + 6],
        r15: gregs[REG_R8 + 7],
        rdi: gregs[REG_RDI],
        rsi: gregs[REG_RSI],
        rbp: gregs[REG_RBP],
        rbx: gregs[REG_RBX],
        rdx: gregs[REG_RDX],
        rax: gregs[REG_RAX],
        rcx: gregs[REG_RCX],
        rsp: gregs[REG_RSP],
        rip: gregs[REG_RIP],
        rflags: gregs[REG_EFL],
        fs_base,
        gs_base,
    }
}

fn user_to_gregs(regs: &UserRegs, gregs: &mut [u64; NGREG]) {
    gregs[REG_R8] = regs.r8;
    gregs[REG_R8 + 1] = regs.r9;
    gregs[REG_R8 + 2] = regs.r10;
    gregs[REG_R8 + 3] = regs.r11;
    gregs[REG_R8 + 4] = regs.r12;
    gregs[REG_R8 + 5] = regs.r13;
    gregs[REG_R8 + 6] = regs.r14;
    gregs[REG_R8 + 7] = regs.r15;
    gregs[REG_RDI] = regs.rdi;
    gregs[REG_RSI] = regs.rsi;
    gregs[REG_RBP] = regs.rbp;
    gregs[REG_RBX] = regs.rbx;
    gregs[REG_RDX] = regs.rdx;
    gregs[REG_RAX] = regs.rax;
    gregs[REG_RCX] = regs.rcx;
    gregs[REG_RSP] = regs.rsp;
    gregs[REG_RIP] = regs.rip;
    // rt_sigreturn itself keeps only the user-modifiable flags.
    gregs[REG_EFL] = regs.rflags;
}

/// Turns a trapped signal into a platform event. `si_code`/`si_arch` are the
/// siginfo fields; `gregs` the saved registers (for trapno, error, cr2).
pub fn decode_event(
    signo: i32,
    si_code: i32,
    si_arch: u32,
    gregs: &[u64; NGREG],
) -> Result<Event, PlatformError> {
    let trapno = gregs[REG_TRAPNO];
    let error_code = gregs[REG_ERR];
    let exception = |vector: u8| Event::Exception { vector, error_code };
    let event = match signo {
        libc::SIGSYS
            if si_code == SYS_SECCOMP_CODE && si_arch == super::filter::AUDIT_ARCH_X86_64 =>
        {
            Event::Syscall
        }
        // int 0x80 (or anything else foreign): the #GP Linux raises without
        // IA-32 emulation.
        libc::SIGSYS => Event::Exception {
            vector: v::GENERAL_PROTECTION,
            error_code: 0,
        },
        libc::SIGSEGV if trapno == u64::from(v::PAGE_FAULT) => {
            let access = if error_code & PF_INSTRUCTION != 0 {
                AccessKind::Execute
            } else if error_code & PF_WRITE != 0 {
                AccessKind::Write
            } else {
                AccessKind::Read
            };
            Event::PageFault {
                addr: gregs[REG_CR2],
                access,
                present: error_code & PF_PRESENT != 0,
            }
        }
        libc::SIGSEGV => exception(match trapno {
            4 | 5 | 12 | 13 => trapno as u8,
            _ => v::GENERAL_PROTECTION,
        }),
        libc::SIGBUS => exception(v::ALIGNMENT_CHECK),
        libc::SIGFPE => exception(match trapno {
            0 | 16 | 19 => trapno as u8,
            _ => v::DIVIDE_ERROR,
        }),
        libc::SIGILL => exception(v::INVALID_OPCODE),
        libc::SIGTRAP => exception(if trapno == 1 { v::DEBUG } else { v::BREAKPOINT }),
        KICK_SIGNAL => Event::Interrupted,
        other => {
            return Err(PlatformError::Stub(format!(
                "stub trapped with unexpected signal {other}"
            )))
        }
    };
    Ok(event)
}

impl Context for SystrapContext {
    fn switch(
        &mut self,
        address_space: &mut dyn AddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, PlatformError> {
        let space = address_space
            .as_any_mut()
            .downcast_mut::<SystrapAddressSpace>()
            .ok_or(PlatformError::ForeignAddressSpace)?;
        let thread = space.thread_for(self.id)?;
        self.counters.switches += 1;
        let deferred = self.flush_ops(space, thread)?;
        let pid = space.stub.pid;
        let tid = space.threads[thread].tid;
        let area = &space.threads[thread].area;

        self.kick.set_target(Some((pid, tid)));
        if self.kick.pending.swap(false, Ordering::SeqCst) {
            self.kick.set_target(None);
            self.counters.kicks += 1;
            if deferred > 0 {
                hand_to_stub(area, STATE_OPS);
                wait_for_trap(area, &space.stub, self.spin, None)?;
                check_op_results(area, deferred)?;
            }
            return Ok(Event::Interrupted);
        }
        let (gregs_offset, mut gregs) = read_gregs(&self.memory, area)?;
        user_to_gregs(regs, &mut gregs);
        let bytes: Vec<u8> = gregs.iter().flat_map(|r| r.to_le_bytes()).collect();
        self.memory.write(gregs_offset, &bytes);
        area.write(CTL_FS_BASE, regs.fs_base);
        area.write(CTL_GS_BASE, regs.gs_base);

        // The stub spins as long as we do while it waits for our answer.
        area.write(CTL_SPIN, u64::from(self.spin_now));
        hand_to_stub(
            area,
            if deferred > 0 {
                STATE_OPS_THEN_APP
            } else {
                STATE_APP
            },
        );
        let waited = wait_for_trap(area, &space.stub, self.spin_now, None);
        self.kick.set_target(None);
        let caught = waited?;
        self.adapt_spin(caught);
        if deferred > 0 {
            check_op_results(area, deferred)?;
        }

        let (_, gregs) = read_gregs(&self.memory, area)?;
        *regs = gregs_to_user(&gregs, area.read(CTL_FS_BASE), area.read(CTL_GS_BASE));
        let signo = area.read(CTL_SIGNO) as i32;
        let (si_code, si_arch) = match area.stack_offset(area.read(CTL_SIGINFO), SIGINFO_SIZE) {
            Some(info) => {
                let mut word = [0u8; 4];
                self.memory.read(info + SI_CODE, &mut word);
                let code = i32::from_le_bytes(word);
                self.memory.read(info + SI_ARCH, &mut word);
                (code, u32::from_le_bytes(word))
            }
            None => (0, 0),
        };
        let event = decode_event(signo, si_code, si_arch, &gregs)?;
        match event {
            Event::Syscall => self.counters.syscalls += 1,
            Event::PageFault { .. } => self.counters.page_faults += 1,
            Event::Exception { .. } => self.counters.exceptions += 1,
            Event::Interrupted => {
                self.counters.kicks += 1;
                self.kick.pending.store(false, Ordering::SeqCst);
            }
        }
        Ok(event)
    }

    fn interrupter(&self) -> Arc<dyn Interrupt> {
        Arc::clone(&self.kick) as Arc<dyn Interrupt>
    }
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        tracing::debug!(counters = ?self.counters, "systrap context retired");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_shrinks_when_turns_come_late_and_comes_back() {
        let memory = Arc::new(MemoryFile::new(8 << 20, 4 << 20).expect("memory file"));
        let mut ctx = SystrapContext::new(0, memory, 1000);
        for _ in 0..SPIN_MISSES_TO_SHRINK {
            ctx.adapt_spin(false);
        }
        assert_eq!(ctx.spin_now, 500, "three misses halve the spin");
        let mut misses = 0;
        while ctx.spin_now > 0 {
            ctx.adapt_spin(false);
            misses += 1;
            assert!(misses < 100, "a spin that never pays is turned off");
        }
        for _ in 0..SPIN_RETRY_AFTER {
            ctx.adapt_spin(false);
        }
        assert_eq!(ctx.spin_now, 250, "and tried again after a while");
        ctx.adapt_spin(true);
        ctx.adapt_spin(true);
        assert_eq!(ctx.spin_now, 1000, "catches grow it back to the budget");
        let mut off = SystrapContext::new(0, Arc::clone(&ctx.memory), 0);
        off.adapt_spin(true);
        assert_eq!(off.spin_now, 0, "no budget, no spin (one CPU)");
    }

    fn gregs(trapno: u64, err: u64, cr2: u64) -> [u64; NGREG] {
        let mut g = [0u64; NGREG];
        g[REG_TRAPNO] = trapno;
        g[REG_ERR] = err;
        g[REG_CR2] = cr2;
        g
    }

    #[test]
    fn signals_become_events() {
        let arch = super::super::filter::AUDIT_ARCH_X86_64;
        let none = gregs(0, 0, 0);
        assert_eq!(
            decode_event(libc::SIGSYS, 1, arch, &none).unwrap(),
            Event::Syscall
        );
        assert_eq!(
            decode_event(libc::SIGSYS, 1, 0x4000_0003, &none).unwrap(),
            Event::Exception {
                vector: v::GENERAL_PROTECTION,
                error_code: 0
            }
        );
        assert_eq!(
            decode_event(libc::SIGSEGV, 1, 0, &gregs(14, 0x6, 0x1234)).unwrap(),
            Event::PageFault {
                addr: 0x1234,
                access: AccessKind::Write,
                present: false
            }
        );
        assert_eq!(
            decode_event(libc::SIGSEGV, 2, 0, &gregs(14, 0x15, 0x5000)).unwrap(),
            Event::PageFault {
                addr: 0x5000,
                access: AccessKind::Execute,
                present: true
            }
        );
        assert_eq!(
            decode_event(libc::SIGSEGV, 0x80, 0, &gregs(13, 0, 0)).unwrap(),
            Event::Exception {
                vector: v::GENERAL_PROTECTION,
                error_code: 0
            }
        );
        assert_eq!(
            decode_event(libc::SIGFPE, 1, 0, &gregs(0, 0, 0)).unwrap(),
            Event::Exception {
                vector: v::DIVIDE_ERROR,
                error_code: 0
            }
        );
        assert_eq!(
            decode_event(libc::SIGILL, 2, 0, &gregs(6, 0, 0)).unwrap(),
            Event::Exception {
                vector: v::INVALID_OPCODE,
                error_code: 0
            }
        );
        assert_eq!(
            decode_event(libc::SIGTRAP, 0x80, 0, &gregs(3, 0, 0)).unwrap(),
            Event::Exception {
                vector: v::BREAKPOINT,
                error_code: 0
            }
        );
        assert_eq!(
            decode_event(KICK_SIGNAL, 0, 0, &none).unwrap(),
            Event::Interrupted
        );
        assert!(decode_event(libc::SIGCHLD, 0, 0, &none).is_err());
    }

    #[test]
    fn registers_round_trip_through_gregs() {
        let regs = UserRegs {
            rax: 1,
            rbx: 2,
            rcx: 3,
            rdx: 4,
            rsi: 5,
            rdi: 6,
            rsp: 7,
            rbp: 8,
            r8: 9,
            r9: 10,
            r10: 11,
            r11: 12,
            r12: 13,
            r13: 14,
            r14: 15,
            r15: 16,
            rip: 17,
            rflags: 0x246,
            fs_base: 19,
            gs_base: 20,
        };
        let mut g = [0u64; NGREG];
        g[18] = 0x33; // CSGSFS is left alone
        user_to_gregs(&regs, &mut g);
        assert_eq!(g[18], 0x33);
        assert_eq!(g[REG_RIP], 17);
        assert_eq!(g[REG_R8 + 7], 16);
        assert_eq!(gregs_to_user(&g, 19, 20), regs);
    }
}
