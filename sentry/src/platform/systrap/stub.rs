//! The stub: a few hundred bytes of hand-written x86_64 code that run inside
//! every stub process, and the clone that starts one.
//!
//! The code is assembled into the sentry binary as data (a `.rodata` section,
//! never executed in the sentry), copied once into one memory-file page, and
//! mapped read+execute at `STUB_CODE_VA` in every stub. It uses no stack and
//! no relocations: stub addresses are absolute constants, jumps are relative.
//!
//! Three entry points:
//! - `init` (offset 0): reached from the clone trampoline in a fresh child
//!   that is still a copy of the sentry. It maps its thread areas, drops the
//!   inherited rseq registration, unmaps every other mapping, closes every fd
//!   but the memory file, asks to die with the sentry, turns off core dumps,
//!   sets its signal mask, alternate stack and handlers, sets
//!   no_new_privs, installs the seccomp filter, resets the FPU and executes
//!   `int3`: that first trap hands the thread to the sentry, which loads the
//!   application's registers into the signal frame. A failing step exits with
//!   the step's number as the status.
//! - `handler`: every trapped signal (SIGSYS from the filter, the CPU fault
//!   signals, the kick). The kernel has already saved the full register and
//!   XSAVE state in a frame on the thread's signal stack, which lives in
//!   memory shared with the sentry; the handler records where (plus the FS/GS
//!   bases, which the frame lacks), hands the turn to the sentry, waits (a
//!   bounded spin, then a futex wait), runs mapping requests if asked, restores
//!   the FS/GS bases and returns through `restorer` (rt_sigreturn).
//! - `restorer`: rt_sigreturn, which loads the (sentry-edited) frame.
//!
//! After the filter is in place the stub's only system calls are futex
//! (wait/wake), mmap/munmap/mprotect for requests, and rt_sigreturn.

use std::arch::global_asm;

use super::layout::*;

/// The kernel's flag for "sa_restorer is set" (x86_64).
const SA_RESTORER: u64 = 0x0400_0000;
const SYS_MMAP: u32 = 9;
const SYS_MPROTECT: u32 = 10;
const SYS_MUNMAP: u32 = 11;
const SYS_RT_SIGACTION: u32 = 13;
const SYS_RT_SIGPROCMASK: u32 = 14;
const SYS_RT_SIGRETURN: u32 = 15;
const SYS_SIGALTSTACK: u32 = 131;
const SYS_PRCTL: u32 = 157;
const SYS_FUTEX: u32 = 202;
const SYS_EXIT_GROUP: u32 = 231;
const SYS_SECCOMP: u32 = 317;
const SYS_CLOSE_RANGE: u32 = 436;
const SYS_RSEQ: u32 = 334;

global_asm!(
    ".pushsection .rodata.rvisor_systrap_stub,\"a\"",
    ".p2align 4",
    ".globl rvisor_systrap_stub_start",
    ".hidden rvisor_systrap_stub_start",
    "rvisor_systrap_stub_start:",
    // ---- init: r14 = memory file fd, r13 = file offset of the thread areas.
    // 1: map the thread areas (control pages + signal stacks).
    "movabs rdi, {threads_va}",
    "mov esi, {threads_size}",
    "mov edx, 3", // PROT_READ | PROT_WRITE
    "mov r10d, 0x11", // MAP_SHARED | MAP_FIXED
    "mov r8, r14",
    "mov r9, r13",
    "mov eax, {sys_mmap}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 1",
    "jae .Lrvisor_stub_fail",
    // 12, 13: drop the inherited rseq registration (glibc's, in the sentry's
    // TLS): with its length, else with glibc's initial 32 bytes.
    "movabs rax, {rseq_addr}",
    "mov rdi, [rax]",
    "test rdi, rdi",
    "jz .Lrvisor_stub_rseq_done",
    "movabs rax, {rseq_len}",
    "mov esi, [rax]",
    "mov edx, 1", // RSEQ_FLAG_UNREGISTER
    "mov r10d, 0x53053053", // RSEQ_SIG on x86
    "mov eax, {sys_rseq}",
    "syscall",
    "test rax, rax",
    "jz .Lrvisor_stub_rseq_done",
    "mov esi, 32",
    "mov eax, {sys_rseq}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 12",
    "jae .Lrvisor_stub_fail",
    ".Lrvisor_stub_rseq_done:",
    // 2: drop everything inherited from the sentry below the stub region...
    "xor edi, edi",
    "movabs rsi, {region_start}",
    "mov eax, {sys_munmap}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 2",
    "jae .Lrvisor_stub_fail",
    // 3: ...and above it (the sentry's stack, vDSO, vvar).
    "movabs rdi, {region_end}",
    "movabs rsi, {above_len}",
    "mov eax, {sys_munmap}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 3",
    "jae .Lrvisor_stub_fail",
    // 4, 5: close every fd but the memory file (the sentry checked it is >= 3).
    "xor edi, edi",
    "lea esi, [r14 - 1]",
    "xor edx, edx",
    "mov eax, {sys_close_range}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 4",
    "jae .Lrvisor_stub_fail",
    "lea edi, [r14 + 1]",
    "mov esi, -1",
    "xor edx, edx",
    "mov eax, {sys_close_range}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 5",
    "jae .Lrvisor_stub_fail",
    // 6: die with the sentry thread that made us: prctl(PR_SET_PDEATHSIG, SIGKILL).
    "mov edi, 1",
    "mov esi, 9",
    "mov eax, {sys_prctl}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 6",
    "jae .Lrvisor_stub_fail",
    // 14: no core dump of application memory when the stub dies of a signal
    // (a host file the application could cause): prctl(PR_SET_DUMPABLE, 0).
    "mov edi, 4",
    "xor esi, esi",
    "mov eax, {sys_prctl}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 14",
    "jae .Lrvisor_stub_fail",
    // 7: the application's signal mask: everything blocked but the trapped signals.
    "mov edi, 2", // SIG_SETMASK
    "movabs rsi, {init_sigmask}",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, {sys_rt_sigprocmask}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 7",
    "jae .Lrvisor_stub_fail",
    // 8: thread 0's alternate signal stack.
    "movabs rdi, {init_altstack}",
    "xor esi, esi",
    "mov eax, {sys_sigaltstack}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 8",
    "jae .Lrvisor_stub_fail",
    // 9: the handler for each signal in the zero-terminated list.
    "movabs r12, {init_signals}",
    ".Lrvisor_stub_next_signal:",
    "movzx edi, byte ptr [r12]",
    "test edi, edi",
    "jz .Lrvisor_stub_signals_done",
    "movabs rsi, {init_sigaction}",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, {sys_rt_sigaction}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 9",
    "jae .Lrvisor_stub_fail",
    "inc r12",
    "jmp .Lrvisor_stub_next_signal",
    ".Lrvisor_stub_signals_done:",
    // 10: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).
    "mov edi, 38",
    "mov esi, 1",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, {sys_prctl}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 10",
    "jae .Lrvisor_stub_fail",
    // 11: seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog).
    "mov edi, 1",
    "xor esi, esi",
    "movabs rdx, {init_fprog}",
    "mov eax, {sys_seccomp}",
    "syscall",
    "cmp rax, -4095",
    "mov edi, 11",
    "jae .Lrvisor_stub_fail",
    // INVARIANT: from here on every application system call traps.
    "fninit",
    "movabs rax, {init_mxcsr}",
    "ldmxcsr [rax]",
    "int3",
    "ud2",
    ".Lrvisor_stub_fail:",
    "mov eax, {sys_exit_group}",
    "syscall",
    "ud2",
    // ---- handler(signo = rdi, siginfo = rsi, ucontext = rdx), on the
    // thread's signal stack, every signal blocked. It may clobber any
    // register: the frame holds the application's.
    ".p2align 4",
    ".globl rvisor_systrap_stub_handler",
    ".hidden rvisor_systrap_stub_handler",
    "rvisor_systrap_stub_handler:",
    "mov r15, rsp",
    "and r15, -{area_size}", // this thread's control page
    "mov [r15 + {ctl_signo}], rdi",
    "mov [r15 + {ctl_siginfo}], rsi",
    "mov [r15 + {ctl_ucontext}], rdx",
    "rdfsbase rax",
    "mov [r15 + {ctl_fs_base}], rax",
    "rdgsbase rax",
    "mov [r15 + {ctl_gs_base}], rax",
    // Hand the turn to the sentry; wake it if it sleeps.
    ".Lrvisor_stub_notify:",
    "mov eax, {state_trapped}",
    "xchg [r15 + {ctl_state}], eax",
    "test eax, {state_sleeping}",
    "jz .Lrvisor_stub_wait",
    "lea rdi, [r15 + {ctl_state}]",
    "mov esi, 1", // FUTEX_WAKE
    "mov edx, 1",
    "mov eax, {sys_futex}",
    "syscall",
    // Wait for our turn: spin CTL_SPIN times, then sleep on the futex.
    ".Lrvisor_stub_wait:",
    "mov ecx, [r15 + {ctl_spin}]",
    ".Lrvisor_stub_poll:",
    "mov eax, [r15 + {ctl_state}]",
    "cmp eax, {state_trapped}",
    "jne .Lrvisor_stub_turn",
    "test ecx, ecx",
    "jz .Lrvisor_stub_sleep",
    "dec ecx",
    "pause",
    "jmp .Lrvisor_stub_poll",
    ".Lrvisor_stub_sleep:",
    "mov edx, {state_trapped_sleeping}",
    "lock cmpxchg [r15 + {ctl_state}], edx", // eax = TRAPPED
    "jne .Lrvisor_stub_poll",
    ".Lrvisor_stub_futex_wait:",
    "lea rdi, [r15 + {ctl_state}]",
    "xor esi, esi", // FUTEX_WAIT, for as long as the word holds edx
    "xor r10d, r10d",
    "mov eax, {sys_futex}",
    "syscall",
    "jmp .Lrvisor_stub_poll",
    ".Lrvisor_stub_turn:",
    "cmp eax, {state_trapped_sleeping}",
    "mov edx, eax",
    "je .Lrvisor_stub_futex_wait",
    // Our turn. The sentry may have or-ed in SLEEPING since; it only matters
    // at the next hand-over (the xchg there sees it and wakes the sentry).
    "and eax, {not_sleeping}",
    "cmp eax, {state_app}",
    "je .Lrvisor_stub_resume",
    "cmp eax, {state_ops}",
    "je .Lrvisor_stub_ops",
    "cmp eax, {state_ops_then_app}",
    "je .Lrvisor_stub_ops",
    // Anything else was not written by the sentry: sleep until it changes.
    "jmp .Lrvisor_stub_futex_wait",
    // Mapping requests: CTL_OP_COUNT entries at CTL_OPS, results in place.
    ".Lrvisor_stub_ops:",
    "mov ebx, eax", // remember which ops state we were given
    "mov r14, [r15 + {ctl_op_count}]",
    "lea r12, [r15 + {ctl_ops}]",
    "xor r13d, r13d",
    ".Lrvisor_stub_op:",
    "cmp r13, r14",
    "jae .Lrvisor_stub_ops_done",
    "cmp r13, {ops_capacity}",
    "jae .Lrvisor_stub_ops_done",
    "mov rdi, [r12 + {op_addr}]",
    "mov rsi, [r12 + {op_len}]",
    "mov edx, [r12 + {op_prot}]",
    "mov eax, [r12 + {op_kind}]",
    "cmp eax, {op_mmap}",
    "jne .Lrvisor_stub_op_not_mmap",
    "mov r10d, 0x11", // MAP_SHARED | MAP_FIXED
    "mov r8, [r15 + {ctl_memfd}]",
    "mov r9, [r12 + {op_offset}]",
    "mov eax, {sys_mmap}",
    "jmp .Lrvisor_stub_op_call",
    ".Lrvisor_stub_op_not_mmap:",
    "cmp eax, {op_munmap}",
    "jne .Lrvisor_stub_op_not_munmap",
    "mov eax, {sys_munmap}",
    "jmp .Lrvisor_stub_op_call",
    ".Lrvisor_stub_op_not_munmap:",
    "cmp eax, {op_mprotect}",
    "mov rax, -22", // EINVAL for an unknown request
    "jne .Lrvisor_stub_op_done",
    "mov eax, {sys_mprotect}",
    ".Lrvisor_stub_op_call:",
    "syscall",
    ".Lrvisor_stub_op_done:",
    "mov [r12 + {op_result}], rax",
    "add r12, {op_size}",
    "inc r13",
    "jmp .Lrvisor_stub_op",
    ".Lrvisor_stub_ops_done:",
    "cmp ebx, {state_ops_then_app}",
    "jne .Lrvisor_stub_notify",
    // Back to the application: FS/GS bases, then rt_sigreturn via the
    // restorer address the kernel left on top of the frame.
    ".Lrvisor_stub_resume:",
    "mov rax, [r15 + {ctl_fs_base}]",
    "wrfsbase rax",
    "mov rax, [r15 + {ctl_gs_base}]",
    "wrgsbase rax",
    "ret",
    ".p2align 4",
    ".globl rvisor_systrap_stub_restorer",
    ".hidden rvisor_systrap_stub_restorer",
    "rvisor_systrap_stub_restorer:",
    "mov eax, {sys_rt_sigreturn}",
    "syscall",
    "ud2",
    ".globl rvisor_systrap_stub_end",
    ".hidden rvisor_systrap_stub_end",
    "rvisor_systrap_stub_end:",
    ".popsection",
    threads_va = const STUB_THREADS_VA,
    threads_size = const STUB_THREADS_SIZE,
    region_start = const STUB_REGION_START,
    region_end = const STUB_REGION_END,
    above_len = const HOST_USER_END - STUB_REGION_END,
    init_sigmask = const STUB_CODE_VA + INIT_SIGMASK,
    init_altstack = const STUB_CODE_VA + INIT_ALTSTACK,
    init_signals = const STUB_CODE_VA + INIT_SIGNALS,
    init_sigaction = const STUB_CODE_VA + INIT_SIGACTION,
    init_fprog = const STUB_CODE_VA + INIT_FPROG,
    init_mxcsr = const STUB_CODE_VA + INIT_MXCSR,
    area_size = const THREAD_AREA_SIZE,
    ctl_state = const CTL_STATE,
    ctl_spin = const CTL_SPIN,
    ctl_signo = const CTL_SIGNO,
    ctl_siginfo = const CTL_SIGINFO,
    ctl_ucontext = const CTL_UCONTEXT,
    ctl_fs_base = const CTL_FS_BASE,
    ctl_gs_base = const CTL_GS_BASE,
    ctl_op_count = const CTL_OP_COUNT,
    ctl_memfd = const CTL_MEMFD,
    ctl_ops = const CTL_OPS,
    ops_capacity = const OPS_CAPACITY,
    op_kind = const OP_KIND,
    op_prot = const OP_PROT,
    op_addr = const OP_ADDR,
    op_len = const OP_LEN,
    op_offset = const OP_OFFSET,
    op_result = const OP_RESULT,
    op_size = const OP_SIZE,
    op_mmap = const OP_MMAP,
    op_munmap = const OP_MUNMAP,
    op_mprotect = const OP_MPROTECT,
    state_app = const STATE_APP,
    state_ops = const STATE_OPS,
    state_ops_then_app = const STATE_OPS_THEN_APP,
    state_trapped = const STATE_TRAPPED,
    state_sleeping = const STATE_SLEEPING,
    state_trapped_sleeping = const STATE_TRAPPED | STATE_SLEEPING,
    not_sleeping = const !STATE_SLEEPING,
    sys_mmap = const SYS_MMAP,
    sys_mprotect = const SYS_MPROTECT,
    sys_munmap = const SYS_MUNMAP,
    sys_rt_sigaction = const SYS_RT_SIGACTION,
    sys_rt_sigprocmask = const SYS_RT_SIGPROCMASK,
    sys_rt_sigreturn = const SYS_RT_SIGRETURN,
    sys_sigaltstack = const SYS_SIGALTSTACK,
    sys_prctl = const SYS_PRCTL,
    sys_futex = const SYS_FUTEX,
    sys_exit_group = const SYS_EXIT_GROUP,
    sys_seccomp = const SYS_SECCOMP,
    sys_close_range = const SYS_CLOSE_RANGE,
    sys_rseq = const SYS_RSEQ,
    rseq_addr = const STUB_THREADS_VA + CTL_RSEQ_ADDR,
    rseq_len = const STUB_THREADS_VA + CTL_RSEQ_LEN,
);

extern "C" {
    // glibc (>= 2.35): where each thread's rseq area sits relative to the
    // thread pointer, and its size (0: rseq not registered).
    static __rseq_offset: isize;
    static __rseq_size: libc::c_uint;
    static rvisor_systrap_stub_start: u8;
    static rvisor_systrap_stub_handler: u8;
    static rvisor_systrap_stub_restorer: u8;
    static rvisor_systrap_stub_end: u8;
}

/// The assembled stub code and the offsets of its entry points.
#[derive(Debug, Clone, Copy)]
pub struct StubCode {
    pub bytes: &'static [u8],
    pub handler: u64,
    pub restorer: u64,
}

pub fn stub_code() -> StubCode {
    // SAFETY: only the addresses of the symbols defined in the global_asm
    // above are taken; start..end is one contiguous read-only blob.
    unsafe {
        let start = std::ptr::addr_of!(rvisor_systrap_stub_start);
        let end = std::ptr::addr_of!(rvisor_systrap_stub_end) as usize;
        let handler = std::ptr::addr_of!(rvisor_systrap_stub_handler) as usize;
        let restorer = std::ptr::addr_of!(rvisor_systrap_stub_restorer) as usize;
        let base = start as usize;
        StubCode {
            bytes: std::slice::from_raw_parts(start, end - base),
            handler: (handler - base) as u64,
            restorer: (restorer - base) as u64,
        }
    }
}

/// The calling thread's rseq registration as glibc made it: (address, length),
/// or (0, 0) when there is none.
pub fn current_rseq() -> (u64, u64) {
    // SAFETY: reading two glibc constants set at startup.
    let (offset, size) = unsafe { (__rseq_offset, __rseq_size) };
    if size == 0 {
        return (0, 0);
    }
    let thread_pointer: u64;
    // SAFETY: reads FS base, glibc's thread pointer; no memory is touched.
    unsafe {
        std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) thread_pointer, options(nostack, readonly));
    }
    (thread_pointer.wrapping_add(offset as u64), u64::from(size))
}

/// The signals the stub handles: the filter's SIGSYS, the CPU faults, the kick.
pub const TRAPPED_SIGNALS: [i32; 7] = [
    libc::SIGSYS,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    KICK_SIGNAL,
];

/// The code page: stub code at 0, init data at INIT_DATA.
pub fn code_page(memfd: i32, filter: &[super::filter::SockFilter]) -> Vec<u8> {
    let code = stub_code();
    assert!(code.bytes.len() as u64 <= INIT_DATA, "stub code overflows");
    assert!(filter.len() <= MAX_FILTER_LEN, "stub filter overflows");
    let _ = memfd;
    let mut page = vec![0u8; STUB_CODE_SIZE as usize];
    page[..code.bytes.len()].copy_from_slice(code.bytes);
    let put = |page: &mut Vec<u8>, at: u64, bytes: &[u8]| {
        page[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    };
    // Signal mask: everything blocked except the trapped signals (bit n-1).
    let unblocked = TRAPPED_SIGNALS.iter().fold(0u64, |m, &s| m | 1 << (s - 1));
    put(&mut page, INIT_SIGMASK, &(!unblocked).to_le_bytes());
    // stack_t { ss_sp, ss_flags, ss_size } for thread 0.
    put(
        &mut page,
        INIT_ALTSTACK,
        &(thread_area_va(0) + SIGNAL_STACK_OFFSET).to_le_bytes(),
    );
    put(&mut page, INIT_ALTSTACK + 8, &0u64.to_le_bytes());
    put(
        &mut page,
        INIT_ALTSTACK + 16,
        &SIGNAL_STACK_SIZE.to_le_bytes(),
    );
    // struct sigaction (kernel) { handler, flags, restorer, mask }: every
    // signal blocked while the handler runs, which a fault inside the
    // handler turns into the death of the stub (never a loop).
    let flags = (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64 | SA_RESTORER;
    put(
        &mut page,
        INIT_SIGACTION,
        &(STUB_CODE_VA + code.handler).to_le_bytes(),
    );
    put(&mut page, INIT_SIGACTION + 8, &flags.to_le_bytes());
    put(
        &mut page,
        INIT_SIGACTION + 16,
        &(STUB_CODE_VA + code.restorer).to_le_bytes(),
    );
    put(&mut page, INIT_SIGACTION + 24, &u64::MAX.to_le_bytes());
    // struct sock_fprog { len: u16, filter: *const sock_filter }.
    put(&mut page, INIT_FPROG, &(filter.len() as u16).to_le_bytes());
    put(
        &mut page,
        INIT_FPROG + 8,
        &(STUB_CODE_VA + INIT_FILTER).to_le_bytes(),
    );
    put(&mut page, INIT_MXCSR, &0x1f80u32.to_le_bytes());
    let signals: Vec<u8> = TRAPPED_SIGNALS.iter().map(|&s| s as u8).collect();
    put(&mut page, INIT_SIGNALS, &signals);
    for (i, insn) in filter.iter().enumerate() {
        put(&mut page, INIT_FILTER + i as u64 * 8, &insn.to_bytes());
    }
    page
}

/// Forks a stub process that maps the code page at `code_offset` and runs
/// `init` with its thread areas at `threads_offset`. Returns the child's pid.
///
/// # Safety
/// `memfd` must be the memory file's fd (>= 3) and both offsets page-aligned
/// frames of it holding the code page and zeroed-then-initialised thread
/// areas. The child runs only the assembly below and the stub code.
pub unsafe fn clone_stub(memfd: i32, code_offset: u64, threads_offset: u64) -> libc::c_long {
    let ret: libc::c_long;
    // SAFETY: a raw clone(SIGCHLD) (a fork). The parent only gets the result
    // in rax. The child (rax = 0) never returns to Rust: without touching its
    // stack it maps the stub code page over whatever the copy of the sentry
    // had there and jumps to it, or exits with status 99 if the map fails.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 3f",
            "movabs rdi, {code_va}",
            "mov esi, {code_size}",
            "mov edx, 5", // PROT_READ | PROT_EXEC
            "mov r10d, 0x11", // MAP_SHARED | MAP_FIXED
            "mov r8, r14",
            "mov r9, r15",
            "mov eax, 9",
            "syscall",
            "cmp rax, -4095",
            "jae 2f",
            "movabs rax, {code_va}",
            "jmp rax",
            "2:",
            "mov edi, 99",
            "mov eax, 231",
            "syscall",
            "ud2",
            "3:",
            code_va = const STUB_CODE_VA,
            code_size = const STUB_CODE_SIZE,
            inlateout("rax") libc::SYS_clone => ret,
            in("rdi") libc::SIGCHLD as u64,
            in("rsi") 0u64,
            in("rdx") 0u64,
            in("r10") 0u64,
            in("r8") 0u64,
            in("r13") threads_offset,
            in("r14") memfd as u64,
            in("r15") code_offset,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_fits_before_the_init_data() {
        let code = stub_code();
        assert!(!code.bytes.is_empty());
        assert!(
            (code.bytes.len() as u64) <= INIT_DATA,
            "{}",
            code.bytes.len()
        );
        assert!(code.handler > 0 && code.handler < code.restorer);
        // The restorer is `mov eax, 15; syscall`.
        let r = code.restorer as usize;
        assert_eq!(&code.bytes[r..r + 7], &[0xb8, 15, 0, 0, 0, 0x0f, 0x05]);
    }

    #[test]
    fn init_data_is_laid_out_for_the_kernel() {
        let filter = super::super::filter::stub_filter(7);
        let page = code_page(7, &filter);
        let u64_at =
            |at: u64| u64::from_le_bytes(page[at as usize..at as usize + 8].try_into().unwrap());
        let code = stub_code();
        assert_eq!(u64_at(INIT_SIGACTION), STUB_CODE_VA + code.handler);
        assert_eq!(u64_at(INIT_SIGACTION + 16), STUB_CODE_VA + code.restorer);
        let mask = u64_at(INIT_SIGMASK);
        for s in TRAPPED_SIGNALS {
            assert_eq!(mask & (1 << (s - 1)), 0, "signal {s} blocked");
        }
        assert_ne!(mask & (1 << (libc::SIGINT - 1)), 0);
        assert_eq!(u64_at(INIT_ALTSTACK), STUB_THREADS_VA + SIGNAL_STACK_OFFSET);
        assert_eq!(
            u64_at(INIT_ALTSTACK) & !(THREAD_AREA_SIZE - 1),
            thread_area_va(0)
        );
        assert_eq!(page[INIT_FPROG as usize] as usize, filter.len());
        assert_eq!(u64_at(INIT_FPROG + 8), STUB_CODE_VA + INIT_FILTER);
        assert_eq!(
            &page[INIT_FILTER as usize..INIT_FILTER as usize + 8],
            &filter[0].to_bytes()
        );
        assert_eq!(page[INIT_SIGNALS as usize + TRAPPED_SIGNALS.len()], 0);
    }
}
