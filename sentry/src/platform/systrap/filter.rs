//! The stub's seccomp filter, as data, built once per platform.
//!
//! The rule: a system call made from anywhere but the stub's code page traps
//! (SECCOMP_RET_TRAP, so the stub's SIGSYS handler hands it to the sentry).
//! From the stub's code page only the calls the handler itself makes are
//! allowed, with their arguments pinned where that matters; anything else from
//! there kills the stub process. The application can jump into the stub's
//! code with registers of its choosing, so every allowed call must be
//! harmless with arbitrary arguments: see the comment on each rule.

use super::layout::{STUB_CODE_SIZE, STUB_CODE_VA};

// Classic BPF opcodes (linux/filter.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;

pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

// struct seccomp_data offsets.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_IP_LO: u32 = 8;
const DATA_IP_HI: u32 = 12;
const fn arg_lo(n: u32) -> u32 {
    16 + 8 * n
}
const fn arg_hi(n: u32) -> u32 {
    20 + 8 * n
}

/// The only flags the stub maps the memory file with.
pub const STUB_MMAP_FLAGS: u32 = (libc::MAP_SHARED | libc::MAP_FIXED) as u32;

/// One classic-BPF instruction, laid out as struct sock_filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl SockFilter {
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&self.code.to_le_bytes());
        b[2] = self.jt;
        b[3] = self.jf;
        b[4..8].copy_from_slice(&self.k.to_le_bytes());
        b
    }
}

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy)]
enum To {
    Next,
    Label(&'static str),
}

#[derive(Debug)]
enum Insn {
    Load(u32),
    Jump { ge: bool, k: u32, yes: To, no: To },
    Ret(u32),
    Label(&'static str),
}

fn load(offset: u32) -> Insn {
    Insn::Load(offset)
}
fn jeq(k: u32, yes: To, no: To) -> Insn {
    Insn::Jump {
        ge: false,
        k,
        yes,
        no,
    }
}
fn jge(k: u32, yes: To, no: To) -> Insn {
    Insn::Jump {
        ge: true,
        k,
        yes,
        no,
    }
}

/// Resolves labels into relative jump offsets.
fn assemble(program: &[Insn]) -> Vec<SockFilter> {
    let mut positions = std::collections::HashMap::new();
    let mut pc = 0usize;
    for insn in program {
        match insn {
            Insn::Label(name) => {
                positions.insert(*name, pc);
            }
            _ => pc += 1,
        }
    }
    let mut out = Vec::with_capacity(pc);
    for insn in program {
        let here = out.len();
        let offset = |to: To| -> u8 {
            match to {
                To::Next => 0,
                To::Label(name) => {
                    // Classic BPF only jumps forward.
                    let target = positions[name];
                    assert!(target > here, "bpf jump to {name} goes backwards");
                    u8::try_from(target - here - 1).expect("bpf jump too far")
                }
            }
        };
        match *insn {
            Insn::Label(_) => {}
            Insn::Load(k) => out.push(SockFilter {
                code: BPF_LD_W_ABS,
                jt: 0,
                jf: 0,
                k,
            }),
            Insn::Jump { ge, k, yes, no } => out.push(SockFilter {
                code: if ge { BPF_JGE_K } else { BPF_JEQ_K },
                jt: offset(yes),
                jf: offset(no),
                k,
            }),
            Insn::Ret(k) => out.push(SockFilter {
                code: BPF_RET_K,
                jt: 0,
                jf: 0,
                k,
            }),
        }
    }
    out
}

/// The stub filter for a memory file whose fd number (in the stub) is `memfd`.
pub fn stub_filter(memfd: i32) -> Vec<SockFilter> {
    use To::{Label as L, Next};
    let code_start = STUB_CODE_VA;
    let code_end = STUB_CODE_VA + STUB_CODE_SIZE;
    let nr = |n: libc::c_long| n as u32;
    let program = [
        // A foreign ABI (int 0x80 from the application) traps too; the sentry
        // turns it into the #GP a kernel without IA-32 emulation raises.
        load(DATA_ARCH),
        jeq(AUDIT_ARCH_X86_64, Next, L("trap")),
        // The instruction pointer (just past `syscall`) must be in the stub's
        // code page, else the call is the application's: trap it.
        load(DATA_IP_HI),
        jeq((code_start >> 32) as u32, Next, L("trap")),
        load(DATA_IP_LO),
        jge(code_start as u32, Next, L("trap")),
        jge(code_end as u32, L("trap"), Next),
        // From the stub's code: the handler's own calls only.
        load(DATA_NR),
        // Restores a signal frame: registers and mask of the stub's own
        // thread only, all of which the application controls anyway.
        jeq(nr(libc::SYS_rt_sigreturn), L("allow"), Next),
        jeq(nr(libc::SYS_futex), L("futex"), Next),
        jeq(nr(libc::SYS_mmap), L("mmap"), Next),
        // Unmapping or reprotecting the stub's own memory can only break the
        // stub, i.e. kill the application.
        jeq(nr(libc::SYS_munmap), L("allow"), Next),
        jeq(nr(libc::SYS_mprotect), L("allow"), L("kill")),
        // futex: plain wait and wake only (no PI, requeue or wake-op).
        Insn::Label("futex"),
        load(arg_lo(1)),
        jeq(libc::FUTEX_WAIT as u32, L("allow"), Next),
        jeq(libc::FUTEX_WAKE as u32, L("allow"), L("kill")),
        // mmap: only MAP_SHARED|MAP_FIXED views of the memory file, i.e. of
        // the sandbox's own application memory. No anonymous memory, no
        // other file.
        Insn::Label("mmap"),
        load(arg_hi(3)),
        jeq(0, Next, L("kill")),
        load(arg_lo(3)),
        jeq(STUB_MMAP_FLAGS, Next, L("kill")),
        load(arg_lo(4)),
        jeq(memfd as u32, L("allow"), L("kill")),
        Insn::Label("allow"),
        Insn::Ret(SECCOMP_RET_ALLOW),
        Insn::Label("trap"),
        Insn::Ret(SECCOMP_RET_TRAP),
        // Anything else from the stub's code page: the stub is not itself.
        Insn::Label("kill"),
        Insn::Ret(SECCOMP_RET_KILL_PROCESS),
    ];
    assemble(&program)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the instructions the filter uses.
    fn run(filter: &[SockFilter], data: &[u8; 64]) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let insn = filter[pc];
            pc += 1;
            match insn.code {
                BPF_LD_W_ABS => {
                    let k = insn.k as usize;
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                }
                BPF_JEQ_K | BPF_JGE_K => {
                    let taken = if insn.code == BPF_JEQ_K {
                        acc == insn.k
                    } else {
                        acc >= insn.k
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                BPF_RET_K => return insn.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn data(nr: libc::c_long, arch: u32, ip: u64, args: [u64; 6]) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        d[4..8].copy_from_slice(&arch.to_le_bytes());
        d[8..16].copy_from_slice(&ip.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        d
    }

    const MEMFD: i32 = 5;
    const IN_STUB: u64 = STUB_CODE_VA + 0x123;

    fn verdict(nr: libc::c_long, ip: u64, args: [u64; 6]) -> u32 {
        run(&stub_filter(MEMFD), &data(nr, AUDIT_ARCH_X86_64, ip, args))
    }

    #[test]
    fn application_calls_always_trap() {
        for ip in [
            0x40_1000,
            STUB_CODE_VA - 1,
            STUB_CODE_VA + STUB_CODE_SIZE,
            STUB_CODE_VA + STUB_CODE_SIZE + 2,
            STUB_CODE_VA + (1 << 32),
            STUB_CODE_VA & 0xffff_ffff,
        ] {
            for nr in [
                libc::SYS_getpid,
                libc::SYS_rt_sigreturn,
                libc::SYS_futex,
                libc::SYS_mmap,
                libc::SYS_execve,
            ] {
                let args = [0, 0, 0, u64::from(STUB_MMAP_FLAGS), MEMFD as u64, 0];
                assert_eq!(
                    verdict(nr, ip, args),
                    SECCOMP_RET_TRAP,
                    "nr {nr} ip {ip:#x}"
                );
            }
        }
        let i386 = data(20, 0x4000_0003, IN_STUB, [0; 6]);
        assert_eq!(run(&stub_filter(MEMFD), &i386), SECCOMP_RET_TRAP);
    }

    #[test]
    fn stub_calls_are_a_small_fixed_set() {
        let mmap_ok = [0, 0, 3, u64::from(STUB_MMAP_FLAGS), MEMFD as u64, 0];
        assert_eq!(verdict(libc::SYS_mmap, IN_STUB, mmap_ok), SECCOMP_RET_ALLOW);
        assert_eq!(
            verdict(libc::SYS_munmap, IN_STUB, [0; 6]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            verdict(libc::SYS_mprotect, IN_STUB, [0; 6]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            verdict(libc::SYS_rt_sigreturn, IN_STUB, [0; 6]),
            SECCOMP_RET_ALLOW
        );
        let wait = [0, libc::FUTEX_WAIT as u64, 0, 0, 0, 0];
        let wake = [0, libc::FUTEX_WAKE as u64, 0, 0, 0, 0];
        assert_eq!(verdict(libc::SYS_futex, IN_STUB, wait), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_futex, IN_STUB, wake), SECCOMP_RET_ALLOW);
        // The code page's last byte: `syscall` ending exactly at the page end.
        let at_end = STUB_CODE_VA + STUB_CODE_SIZE - 1;
        assert_eq!(verdict(libc::SYS_munmap, at_end, [0; 6]), SECCOMP_RET_ALLOW);

        let kill = SECCOMP_RET_KILL_PROCESS;
        for nr in [
            libc::SYS_execve,
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_clone,
            libc::SYS_kill,
            libc::SYS_ptrace,
            libc::SYS_getpid,
            libc::SYS_exit_group,
            libc::SYS_seccomp,
            libc::SYS_rt_sigaction,
            libc::SYS_sigaltstack,
            libc::SYS_mremap,
            libc::SYS_arch_prctl,
            libc::SYS_mmap | 0x4000_0000,
        ] {
            assert_eq!(verdict(nr, IN_STUB, [0; 6]), kill, "nr {nr}");
        }
        // futex: no requeue, PI or private-flagged tricks.
        for op in [
            libc::FUTEX_CMP_REQUEUE,
            libc::FUTEX_LOCK_PI,
            libc::FUTEX_WAKE_OP,
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
        ] {
            let args = [0, op as u64, 0, 0, 0, 0];
            assert_eq!(verdict(libc::SYS_futex, IN_STUB, args), kill, "op {op}");
        }
        // mmap: another fd, anonymous or private memory, extra flag bits.
        let flags = u64::from(STUB_MMAP_FLAGS);
        for args in [
            [0, 0, 3, flags, 4, 0],
            [0, 0, 3, flags | libc::MAP_ANONYMOUS as u64, u64::MAX, 0],
            [
                0,
                0,
                3,
                (libc::MAP_PRIVATE | libc::MAP_FIXED) as u64,
                MEMFD as u64,
                0,
            ],
            [0, 0, 3, flags | (1 << 40), MEMFD as u64, 0],
        ] {
            assert_eq!(verdict(libc::SYS_mmap, IN_STUB, args), kill, "{args:x?}");
        }
    }

    #[test]
    fn filter_fits_in_the_init_data() {
        assert!(stub_filter(MEMFD).len() <= super::super::layout::MAX_FILTER_LEN);
    }
}
