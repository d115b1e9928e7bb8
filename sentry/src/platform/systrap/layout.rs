//! Every stub address, memory-file page and shared-page field the systrap
//! platform uses, in one place.
//!
//! A stub process owns the top of the user address range, from
//! `STUB_REGION_START` up to the host's last user page. The platform reports
//! `STUB_REGION_START` as `max_user_address`, so no application mapping (stack
//! included) can ever land there.
//!
//! ```text
//! STUB_CODE_VA      one page, r-x: the stub's code (offset 0) and its init
//!                   data (offset INIT_DATA): signal mask, sigaction, seccomp
//!                   program. Same memory-file page for every stub.
//! STUB_THREADS_VA   one 2 MiB memory-file frame per stub process, rw-:
//!                   THREAD_AREA_SIZE bytes per stub thread = a control page
//!                   shared with the sentry + the thread's signal stack.
//! ```

/// The lowest stub address; also the systrap platform's max user address.
pub const STUB_REGION_START: u64 = 0x7fff_ff00_0000;
pub const STUB_CODE_VA: u64 = STUB_REGION_START;
pub const STUB_CODE_SIZE: u64 = 0x1000;
pub const STUB_THREADS_VA: u64 = STUB_REGION_START + 0x20_0000;
pub const STUB_THREADS_SIZE: u64 = 0x20_0000;
pub const STUB_REGION_END: u64 = STUB_THREADS_VA + STUB_THREADS_SIZE;
/// The host's TASK_SIZE on x86_64 with 4-level paging: the end of user space.
pub const HOST_USER_END: u64 = 0x7fff_ffff_f000;

/// One stub thread: a control page, then its alternate signal stack. Areas are
/// aligned to their size so the signal handler finds its control page by
/// masking its stack pointer.
pub const THREAD_AREA_SIZE: u64 = 0x1_0000;
pub const MAX_STUB_THREADS: u64 = STUB_THREADS_SIZE / THREAD_AREA_SIZE;
pub const SIGNAL_STACK_OFFSET: u64 = 0x1000;
pub const SIGNAL_STACK_SIZE: u64 = THREAD_AREA_SIZE - SIGNAL_STACK_OFFSET;

// Init data inside the code page (read by the stub's init code).
pub const INIT_DATA: u64 = 0x800;
/// u64: the signal mask the stub runs the application with.
pub const INIT_SIGMASK: u64 = INIT_DATA;
/// stack_t for thread 0's alternate signal stack.
pub const INIT_ALTSTACK: u64 = INIT_DATA + 0x08;
/// The kernel's struct sigaction shared by every trapped signal.
pub const INIT_SIGACTION: u64 = INIT_DATA + 0x20;
/// struct sock_fprog pointing at INIT_FILTER.
pub const INIT_FPROG: u64 = INIT_DATA + 0x40;
/// u32: the MXCSR value an application starts with.
pub const INIT_MXCSR: u64 = INIT_DATA + 0x50;
/// Zero-terminated list of signal numbers (one byte each) to install handlers for.
pub const INIT_SIGNALS: u64 = INIT_DATA + 0x58;
pub const INIT_FILTER: u64 = INIT_DATA + 0x80;
pub const MAX_FILTER_LEN: usize = ((STUB_CODE_SIZE - INIT_FILTER) / 8) as usize;

// Control page fields (offsets from the start of a thread area).
/// u32 futex word: whose turn it is (`STATE_*`), plus `STATE_SLEEPING`.
pub const CTL_STATE: u64 = 0x00;
/// u32: `pause` iterations the stub spins before sleeping on the futex.
pub const CTL_SPIN: u64 = 0x04;
/// Written by the signal handler: signal number, siginfo and ucontext pointers
/// (stub addresses inside the signal stack), FS and GS bases.
pub const CTL_SIGNO: u64 = 0x08;
pub const CTL_SIGINFO: u64 = 0x10;
pub const CTL_UCONTEXT: u64 = 0x18;
pub const CTL_FS_BASE: u64 = 0x20;
pub const CTL_GS_BASE: u64 = 0x28;
/// u64: number of valid entries at CTL_OPS.
pub const CTL_OP_COUNT: u64 = 0x30;
/// u64: the memory file's fd number in the stub.
pub const CTL_MEMFD: u64 = 0x38;
/// The forking sentry thread's rseq registration (address, length), which
/// the child inherits and must drop before unmapping the sentry's memory:
/// the kernel would otherwise write to it and kill the stub (SIGSEGV).
pub const CTL_RSEQ_ADDR: u64 = 0x40;
pub const CTL_RSEQ_LEN: u64 = 0x48;
pub const CTL_OPS: u64 = 0x100;

// One mapping request: kind u32, prot u32, addr, len, file offset, result.
pub const OP_KIND: u64 = 0;
pub const OP_PROT: u64 = 4;
pub const OP_ADDR: u64 = 8;
pub const OP_LEN: u64 = 16;
pub const OP_OFFSET: u64 = 24;
pub const OP_RESULT: u64 = 32;
pub const OP_SIZE: u64 = 40;
pub const OPS_CAPACITY: u64 = (0x1000 - CTL_OPS) / OP_SIZE;
pub const OP_MMAP: u32 = 1;
pub const OP_MUNMAP: u32 = 2;
pub const OP_MPROTECT: u32 = 3;

// Turn states. The stub's turn: APP (resume the application), OPS (run the
// requests, then hand back), OPS_THEN_APP (run them, then resume). The
// sentry's turn: TRAPPED. SLEEPING is or-ed in by a side that sleeps on the
// futex, so the other side knows a FUTEX_WAKE is needed.
pub const STATE_APP: u32 = 1;
pub const STATE_OPS: u32 = 2;
pub const STATE_OPS_THEN_APP: u32 = 3;
pub const STATE_TRAPPED: u32 = 4;
pub const STATE_SLEEPING: u32 = 0x100;

/// The host signal that kicks a stub thread out of application code.
pub const KICK_SIGNAL: i32 = libc::SIGUSR1;

// struct ucontext (x86_64): uc_mcontext.gregs starts at 40.
pub const UC_GREGS: u64 = 40;
/// The kernel's struct ucontext (flags, link, stack, sigcontext, mask).
pub const UC_SIZE: u64 = 304;
pub const REG_R8: usize = 0;
pub const REG_RDI: usize = 8;
pub const REG_RSI: usize = 9;
pub const REG_RBP: usize = 10;
pub const REG_RBX: usize = 11;
pub const REG_RDX: usize = 12;
pub const REG_RAX: usize = 13;
pub const REG_RCX: usize = 14;
pub const REG_RSP: usize = 15;
pub const REG_RIP: usize = 16;
pub const REG_EFL: usize = 17;
pub const REG_ERR: usize = 19;
pub const REG_TRAPNO: usize = 20;
pub const REG_CR2: usize = 22;
pub const NGREG: usize = 23;
/// siginfo: si_code at 8; for SIGSYS si_arch at 28.
pub const SI_CODE: u64 = 8;
pub const SI_ARCH: u64 = 28;
pub const SIGINFO_SIZE: u64 = 128;

pub const fn thread_area_va(index: u64) -> u64 {
    STUB_THREADS_VA + index * THREAD_AREA_SIZE
}

// The layout is checked when the crate compiles.
const _: () = {
    assert!(STUB_REGION_START.is_multiple_of(0x20_0000));
    assert!(STUB_THREADS_VA.is_multiple_of(0x20_0000));
    assert!(STUB_CODE_VA + STUB_CODE_SIZE <= STUB_THREADS_VA);
    assert!(STUB_REGION_END <= HOST_USER_END);
    // The seccomp filter checks the instruction pointer's high half once.
    assert!(STUB_CODE_VA >> 32 == (STUB_CODE_VA + STUB_CODE_SIZE) >> 32);
    assert!(INIT_SIGNALS + 8 <= INIT_FILTER);
    assert!(MAX_FILTER_LEN >= 64);
    assert!(CTL_RSEQ_LEN + 8 <= CTL_OPS);
    assert!(CTL_OPS + OPS_CAPACITY * OP_SIZE <= SIGNAL_STACK_OFFSET);
    assert!(THREAD_AREA_SIZE.is_power_of_two());
    assert!(STUB_THREADS_VA.is_multiple_of(THREAD_AREA_SIZE));
};
