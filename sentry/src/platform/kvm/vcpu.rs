//! A vCPU bound to one host thread, and the run loop that turns VM exits into
//! platform events.
//!
//! Every entry into the guest goes through kvm_run's sync_regs: the sentry
//! writes the full user register set (general and segment registers) and KVM
//! hands both back at the next exit, saving two ioctls per exit. Exits from the
//! guest are always stores to the exit page from a ring-0 stub; the sentry then
//! plays the part of `iretq`/`sysretq` by loading the user state itself.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Once};

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_xcrs, CpuId, Msrs};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd, VmFd};

use super::arch::*;
use super::layout::*;
use super::pagetables::lock;
use super::KvmAddressSpace;
use crate::mm::memfile::MemoryFile;
use crate::platform::{AccessKind, Context, Event, Interrupt, PlatformError, UserRegs};

/// The host signal used to kick a thread out of KVM_RUN.
pub fn kick_signal() -> i32 {
    libc::SIGRTMIN()
}

extern "C" fn ignore_kick(_signal: i32) {}

fn install_kick_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the
        // handler is an async-signal-safe no-op. No SA_RESTART, so KVM_RUN
        // returns EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore_kick as extern "C" fn(i32) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(kick_signal(), &action, std::ptr::null_mut());
        }
    });
}

/// Where to poke to make a running vCPU leave KVM_RUN.
#[derive(Debug)]
struct KickTarget {
    host_tid: libc::pid_t,
    immediate_exit: *const AtomicU8,
}

// SAFETY: the pointer targets the vCPU's kvm_run mapping; it is only used while
// the owning KvmContext is alive, which `Kick::target` being Some guarantees
// (cleared under the same mutex in `Drop`).
unsafe impl Send for KickTarget {}

#[derive(Debug)]
struct Kick {
    target: Mutex<Option<KickTarget>>,
}

impl Interrupt for Kick {
    fn interrupt(&self) {
        let target = lock(&self.target);
        if let Some(target) = target.as_ref() {
            // SAFETY: see `KickTarget`: the mapping is alive while the lock is held
            // and target is Some. immediate_exit is a byte KVM reads at entry.
            unsafe { (*target.immediate_exit).store(1, Ordering::SeqCst) };
            // SAFETY: plain syscall; a stale tid only yields ESRCH.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    libc::getpid(),
                    target.host_tid,
                    kick_signal(),
                )
            };
        }
    }
}

#[derive(Debug)]
pub struct KvmContext {
    vcpu: VcpuFd,
    memory: Arc<MemoryFile>,
    /// Segment and control state for ring 3; only cr3 and fs/gs bases vary.
    user_sregs: kvm_sregs,
    /// The same for the ring-0 flush routine.
    kernel_sregs: kvm_sregs,
    kick: Arc<Kick>,
    /// A kick arrived while ring-0 code ran; report it before entering ring 3.
    kick_absorbed: bool,
    counters: ExitCounters,
}

fn user_code_segment() -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: USER_CS,
        type_: 11,
        present: 1,
        dpl: 3,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

fn user_data_segment(selector: u16) -> kvm_segment {
    kvm_segment {
        selector,
        type_: 3,
        dpl: 3,
        db: 1,
        l: 0,
        ..user_code_segment()
    }
}

fn kernel_code_segment() -> kvm_segment {
    kvm_segment {
        selector: KERNEL_CS,
        dpl: 0,
        ..user_code_segment()
    }
}

fn kernel_data_segment() -> kvm_segment {
    kvm_segment {
        selector: KERNEL_DS,
        dpl: 0,
        ..user_data_segment(KERNEL_DS)
    }
}

fn map_kvm_err(step: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> PlatformError {
    move |e| PlatformError::Setup {
        step,
        source: std::io::Error::from_raw_os_error(e.errno()),
    }
}

impl KvmContext {
    pub fn new(
        vm: &VmFd,
        id: u64,
        cpuid: &CpuId,
        xcr0: u64,
        memory: Arc<MemoryFile>,
    ) -> Result<Self, PlatformError> {
        install_kick_handler();
        let mut vcpu = vm.create_vcpu(id).map_err(map_kvm_err("KVM_CREATE_VCPU"))?;
        // Without this every CPUID leaf reads 0 (KVM.md quirk 8) and glibc would
        // pick its slowest string routines.
        vcpu.set_cpuid2(cpuid)
            .map_err(map_kvm_err("KVM_SET_CPUID2"))?;

        let mut sregs = vcpu.get_sregs().map_err(map_kvm_err("KVM_GET_SREGS"))?;
        sregs.cr0 = GUEST_CR0;
        sregs.cr4 = GUEST_CR4;
        sregs.efer = GUEST_EFER;
        sregs.gdt.base = direct_map(GDT_GPA);
        sregs.gdt.limit = GDT_LIMIT;
        sregs.idt.base = direct_map(IDT_GPA);
        sregs.idt.limit = IDT_LIMIT;
        sregs.tr = kvm_segment {
            base: direct_map(TSS_GPA),
            limit: TSS_LIMIT,
            selector: TSS_SELECTOR,
            type_: TSS_TYPE_BUSY,
            present: 1,
            dpl: 0,
            db: 0,
            s: 0,
            l: 0,
            g: 0,
            avl: 0,
            unusable: 0,
            padding: 0,
        };
        sregs.ldt = kvm_segment {
            selector: 0,
            type_: 2,
            present: 0,
            unusable: 1,
            ..sregs.tr
        };
        sregs.cs = user_code_segment();
        sregs.ss = user_data_segment(USER_DS);
        sregs.ds = user_data_segment(USER_DS);
        sregs.es = user_data_segment(USER_DS);
        sregs.fs = user_data_segment(0);
        sregs.gs = user_data_segment(0);
        let user_sregs = sregs;
        let mut kernel_sregs = sregs;
        kernel_sregs.cs = kernel_code_segment();
        kernel_sregs.ss = kernel_data_segment();

        let msrs = Msrs::from_entries(&[
            msr(MSR_STAR, star_value()),
            msr(MSR_LSTAR, syscall_entry_va()),
            msr(MSR_CSTAR, 0),
            msr(MSR_SYSCALL_MASK, SYSCALL_RFLAGS_MASK),
            msr(MSR_KERNEL_GS_BASE, 0),
            msr(MSR_FS_BASE, 0),
            msr(MSR_GS_BASE, 0),
        ])
        .map_err(|_| PlatformError::Unavailable("MSR list too long".into()))?;
        let written = vcpu.set_msrs(&msrs).map_err(map_kvm_err("KVM_SET_MSRS"))?;
        if written != msrs.as_slice().len() {
            return Err(PlatformError::Unavailable(format!(
                "KVM_SET_MSRS accepted only {written} MSRs"
            )));
        }
        let mut xcrs = kvm_xcrs {
            nr_xcrs: 1,
            ..Default::default()
        };
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = xcr0;

        let kick = Arc::new(Kick {
            target: Mutex::new(None),
        });
        {
            let run = vcpu.get_kvm_run();
            let immediate_exit = std::ptr::addr_of_mut!(run.immediate_exit).cast::<AtomicU8>();
            // SAFETY: plain syscall returning the calling thread's id.
            let host_tid = unsafe { libc::gettid() };
            *lock(&kick.target) = Some(KickTarget {
                host_tid,
                immediate_exit,
            });
        }
        vcpu.set_sync_valid_reg(SyncReg::Register);
        vcpu.set_sync_valid_reg(SyncReg::SystemRegister);

        let context = Self {
            vcpu,
            memory,
            user_sregs,
            kernel_sregs,
            kick,
            kick_absorbed: false,
            counters: ExitCounters::default(),
        };
        // Segment state must be in long mode before XCR0 can hold AVX bits.
        context
            .vcpu
            .set_sregs(&context.kernel_sregs)
            .map_err(map_kvm_err("KVM_SET_SREGS"))?;
        context
            .vcpu
            .set_xcrs(&xcrs)
            .map_err(map_kvm_err("KVM_SET_XCRS"))?;
        Ok(context)
    }

    fn clear_immediate_exit(&mut self) {
        self.vcpu.set_kvm_immediate_exit(0);
    }

    /// Runs until the guest stores to the exit page or a kick arrives.
    ///
    /// A kick while the guest is in a ring-0 stub is remembered in
    /// `kick_absorbed` and the stub is finished first, so its exit is not lost.
    fn run_until_exit(&mut self) -> Result<RunOutcome, PlatformError> {
        loop {
            match self.vcpu.run() {
                Ok(VcpuExit::MmioWrite(addr, _)) => {
                    let offset = addr.wrapping_sub(EXIT_PAGE_GPA);
                    if offset >= 0x1000 {
                        return Err(PlatformError::UnexpectedExit(format!(
                            "store to unbacked address {addr:#x}"
                        )));
                    }
                    self.counters.exits += 1;
                    return Ok(RunOutcome::Exit(offset));
                }
                Ok(other) => {
                    let what = format!("{other:?}");
                    let rip = self.vcpu.sync_regs().regs.rip;
                    return Err(PlatformError::UnexpectedExit(format!(
                        "{what} at rip {rip:#x}"
                    )));
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    self.clear_immediate_exit();
                    self.counters.kicks += 1;
                    let run = self.vcpu.get_kvm_run();
                    if run.kvm_dirty_regs != 0 {
                        // Older kernels check immediate_exit before loading
                        // sync_regs: nothing ran and nothing was loaded.
                        run.kvm_dirty_regs = 0;
                        return Ok(RunOutcome::Kicked { entered: false });
                    }
                    if self.vcpu.sync_regs().sregs.cs.dpl == 0 {
                        self.kick_absorbed = true;
                        continue;
                    }
                    return Ok(RunOutcome::Kicked { entered: true });
                }
                Err(e) => {
                    return Err(PlatformError::Run(std::io::Error::from_raw_os_error(
                        e.errno(),
                    )))
                }
            }
        }
    }

    /// Lets the guest rewrite changed page-table entries and flush them from its
    /// TLB (KVM.md quirk 3), in batches the flush list can hold.
    fn flush_page_tables(&mut self, space: &mut KvmAddressSpace) -> Result<(), PlatformError> {
        let entries = space.tables.pending_mut().take();
        self.counters.flushed_entries += entries.len() as u64;
        for batch in entries.chunks(FLUSH_LIST_CAPACITY) {
            for (i, &(pte_gpa, va)) in batch.iter().enumerate() {
                let slot = FLUSH_LIST_GPA + i as u64 * 16;
                self.memory.write_u64(slot, direct_map(pte_gpa));
                self.memory.write_u64(slot + 8, va);
            }
            let root = space.tables.root();
            loop {
                let sync = self.vcpu.sync_regs_mut();
                sync.regs = kvm_regs {
                    rip: direct_map(FLUSH_ROUTINE_GPA),
                    rsp: direct_map(KERNEL_STACK_TOP_GPA),
                    rsi: direct_map(FLUSH_LIST_GPA),
                    rcx: batch.len() as u64,
                    rflags: RFLAGS_RESERVED_ONE,
                    ..Default::default()
                };
                sync.sregs = kvm_sregs {
                    cr3: root,
                    ..self.kernel_sregs
                };
                self.vcpu.set_sync_dirty_reg(SyncReg::Register);
                self.vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
                match self.run_until_exit()? {
                    RunOutcome::Exit(EXIT_FLUSH_DONE) => break,
                    // The routine only rewrites entries with their own values,
                    // so starting the batch again is harmless.
                    RunOutcome::Kicked { .. } => self.kick_absorbed = true,
                    RunOutcome::Exit(offset) => {
                        let sync = self.vcpu.sync_regs();
                        return Err(PlatformError::GuestKernelFault {
                            vector: offset.min(255) as u8,
                            rip: sync.regs.rip,
                            cr2: sync.sregs.cr2,
                            error_code: 0,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn load_user_state(&mut self, regs: &UserRegs, root: u64) {
        let sregs = {
            let mut s = kvm_sregs {
                cr3: root,
                ..self.user_sregs
            };
            s.fs.base = regs.fs_base;
            s.gs.base = regs.gs_base;
            s
        };
        let sync = self.vcpu.sync_regs_mut();
        sync.regs = kvm_regs {
            rax: regs.rax,
            rbx: regs.rbx,
            rcx: regs.rcx,
            rdx: regs.rdx,
            rsi: regs.rsi,
            rdi: regs.rdi,
            rsp: regs.rsp,
            rbp: regs.rbp,
            r8: regs.r8,
            r9: regs.r9,
            r10: regs.r10,
            r11: regs.r11,
            r12: regs.r12,
            r13: regs.r13,
            r14: regs.r14,
            r15: regs.r15,
            rip: regs.rip,
            rflags: (regs.rflags & RFLAGS_USER_MASK) | RFLAGS_IF | RFLAGS_RESERVED_ONE,
        };
        sync.sregs = sregs;
        self.vcpu.set_sync_dirty_reg(SyncReg::Register);
        self.vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
    }

    /// Copies the general registers and FS/GS bases KVM reported at the exit.
    fn store_user_state(&self, regs: &mut UserRegs) {
        let sync = self.vcpu.sync_regs();
        let r = sync.regs;
        *regs = UserRegs {
            rax: r.rax,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            rsp: r.rsp,
            rbp: r.rbp,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rip: r.rip,
            rflags: r.rflags,
            fs_base: sync.sregs.fs.base,
            gs_base: sync.sregs.gs.base,
        };
    }

    /// Reads the exception frame the CPU pushed on the kernel stack.
    fn exception_frame(&self, vector: u8) -> Result<ExceptionFrame, PlatformError> {
        let sync = self.vcpu.sync_regs();
        let rsp = sync.regs.rsp;
        let words = if vector_has_error_code(vector) { 6 } else { 5 };
        let frame_gpa = rsp.wrapping_sub(DIRECT_MAP_BASE);
        let fits = frame_gpa >= KERNEL_STACK_BOTTOM_GPA
            && frame_gpa.saturating_add(words * 8) <= KERNEL_STACK_TOP_GPA;
        if !fits {
            return Err(PlatformError::GuestKernelFault {
                vector,
                rip: sync.regs.rip,
                cr2: sync.sregs.cr2,
                error_code: 0,
            });
        }
        let word = |i: u64| self.memory.read_u64(frame_gpa + i * 8);
        let (error_code, base) = if words == 6 { (word(0), 1) } else { (0, 0) };
        Ok(ExceptionFrame {
            error_code,
            rip: word(base),
            cs: word(base + 1),
            rflags: word(base + 2),
            rsp: word(base + 3),
        })
    }

    fn decode_exit(&mut self, offset: u64, regs: &mut UserRegs) -> Result<Event, PlatformError> {
        self.store_user_state(regs);
        if offset == EXIT_SYSCALL {
            // Real hardware: `syscall` entered the LSTAR stub in ring 0 with the
            // user stack still loaded.
            regs.rip = regs.rcx;
            regs.rflags = regs.r11;
            self.counters.syscalls_via_lstar += 1;
            return Ok(Event::Syscall);
        }
        let Ok(vector) = u8::try_from(offset) else {
            return Err(PlatformError::UnexpectedExit(format!(
                "exit offset {offset:#x}"
            )));
        };
        let frame = self.exception_frame(vector)?;
        let cr2 = self.vcpu.sync_regs().sregs.cr2;
        if frame.cs & 3 != 3 {
            return Err(PlatformError::GuestKernelFault {
                vector,
                rip: frame.rip,
                cr2,
                error_code: frame.error_code,
            });
        }
        regs.rip = frame.rip;
        regs.rsp = frame.rsp;
        regs.rflags = frame.rflags;
        if vector != VECTOR_PAGE_FAULT {
            self.counters.exceptions += 1;
            return Ok(Event::Exception {
                vector,
                error_code: frame.error_code,
            });
        }
        if frame.rip == syscall_entry_va() && cr2 == syscall_entry_va() {
            // PVM: `syscall` jumped to LSTAR without leaving ring 3 and faulted
            // fetching it (KVM.md quirk 1). Same state as a real entry.
            regs.rip = regs.rcx;
            regs.rflags = regs.r11;
            self.counters.syscalls_via_page_fault += 1;
            return Ok(Event::Syscall);
        }
        self.counters.page_faults += 1;
        let access = if frame.error_code & PF_INSTRUCTION != 0 {
            AccessKind::Execute
        } else if frame.error_code & PF_WRITE != 0 {
            AccessKind::Write
        } else {
            AccessKind::Read
        };
        Ok(Event::PageFault {
            addr: cr2,
            access,
            present: frame.error_code & PF_PRESENT != 0,
        })
    }
}

enum RunOutcome {
    /// The guest stored to the exit page at this offset.
    Exit(u64),
    /// KVM_RUN returned EINTR; `entered` is false if the loaded state never ran.
    Kicked { entered: bool },
}

/// What this vCPU did, for the debug log.
#[derive(Debug, Default)]
struct ExitCounters {
    exits: u64,
    syscalls_via_lstar: u64,
    syscalls_via_page_fault: u64,
    page_faults: u64,
    exceptions: u64,
    kicks: u64,
    flushed_entries: u64,
}

#[derive(Debug)]
struct ExceptionFrame {
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
}

fn msr(index: u32, data: u64) -> kvm_msr_entry {
    kvm_msr_entry {
        index,
        data,
        ..Default::default()
    }
}

impl Context for KvmContext {
    fn switch(
        &mut self,
        address_space: &mut dyn crate::platform::AddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, PlatformError> {
        let space = address_space
            .as_any_mut()
            .downcast_mut::<KvmAddressSpace>()
            .ok_or(PlatformError::ForeignAddressSpace)?;
        if !space.tables.pending_mut().is_empty() {
            self.flush_page_tables(space)?;
        }
        if std::mem::take(&mut self.kick_absorbed) {
            return Ok(Event::Interrupted);
        }
        self.load_user_state(regs, space.tables.root());
        match self.run_until_exit()? {
            RunOutcome::Exit(offset) => self.decode_exit(offset, regs),
            RunOutcome::Kicked { entered: false } => Ok(Event::Interrupted),
            RunOutcome::Kicked { entered: true } => {
                self.store_user_state(regs);
                Ok(Event::Interrupted)
            }
        }
    }

    fn interrupter(&self) -> Arc<dyn Interrupt> {
        Arc::clone(&self.kick) as Arc<dyn Interrupt>
    }
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        tracing::debug!(counters = ?self.counters, "vcpu retired");
        *lock(&self.kick.target) = None;
    }
}
