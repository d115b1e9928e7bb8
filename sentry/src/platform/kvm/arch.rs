//! x86_64 structures the guest needs: descriptor tables, page-table entry bits,
//! MSR and control-register values, and the ring-0 stubs (as bytes).
//!
//! Everything here is pure data so it can be unit-tested without a guest.

use super::layout::*;

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_MP: u64 = 1 << 1;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_NE: u64 = 1 << 5;
pub const CR0_WP: u64 = 1 << 16;
pub const CR0_AM: u64 = 1 << 18;
pub const CR0_PG: u64 = 1 << 31;
pub const GUEST_CR0: u64 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;

pub const CR4_PAE: u64 = 1 << 5;
pub const CR4_OSFXSR: u64 = 1 << 9;
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
pub const CR4_FSGSBASE: u64 = 1 << 16;
pub const CR4_OSXSAVE: u64 = 1 << 18;
/// AT_HWCAP2 bit telling libcs that CR4.FSGSBASE is on.
pub const HWCAP2_FSGSBASE: u64 = 1 << 1;
/// No PCIDE: KVM_SET_SREGS rejects it under PVM (KVM.md quirk 7).
pub const GUEST_CR4: u64 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_FSGSBASE | CR4_OSXSAVE;

pub const EFER_SCE: u64 = 1 << 0;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
pub const EFER_NXE: u64 = 1 << 11;
pub const GUEST_EFER: u64 = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;

pub const MSR_EFER: u32 = 0xc000_0080;
pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
pub const MSR_FS_BASE: u32 = 0xc000_0100;
pub const MSR_GS_BASE: u32 = 0xc000_0101;
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

pub const RFLAGS_RESERVED_ONE: u64 = 1 << 1;
pub const RFLAGS_TF: u64 = 1 << 8;
pub const RFLAGS_IF: u64 = 1 << 9;
pub const RFLAGS_DF: u64 = 1 << 10;
pub const RFLAGS_IOPL: u64 = 3 << 12;
pub const RFLAGS_NT: u64 = 1 << 14;
pub const RFLAGS_AC: u64 = 1 << 18;
/// Flags an application may change: CF PF AF ZF SF TF DF OF AC ID.
pub const RFLAGS_USER_MASK: u64 = 0x0024_0dd5;
/// `syscall` clears these; same set as Linux.
pub const SYSCALL_RFLAGS_MASK: u64 =
    RFLAGS_TF | RFLAGS_DF | RFLAGS_IF | RFLAGS_IOPL | RFLAGS_NT | RFLAGS_AC;

/// `sysret` loads CS from STAR[63:48]+16 and SS from +8 (RPL forced to 3), so
/// the user base is the 32-bit code selector, as in Linux; `syscall` loads CS
/// from STAR[47:32] and SS from +8.
pub const fn star_value() -> u64 {
    ((USER_CS32 as u64) << 48) | ((KERNEL_CS as u64) << 32)
}

pub const XCR0_X87: u64 = 1 << 0;
pub const XCR0_SSE: u64 = 1 << 1;
pub const XCR0_AVX: u64 = 1 << 2;
pub const XCR0_OPMASK: u64 = 1 << 5;
pub const XCR0_ZMM_HI256: u64 = 1 << 6;
pub const XCR0_HI16_ZMM: u64 = 1 << 7;
/// The user state components we enable when the host supports them.
pub const XCR0_WANTED: u64 =
    XCR0_X87 | XCR0_SSE | XCR0_AVX | XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM;

/// The XCR0 to program: wanted features the host supports, keeping AVX-512's
/// three components all-or-nothing as the architecture requires.
pub fn xcr0_for(supported: u64) -> u64 {
    let mut xcr0 = supported & XCR0_WANTED;
    let avx512 = XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM;
    if xcr0 & avx512 != avx512 || xcr0 & XCR0_AVX == 0 {
        xcr0 &= !avx512;
    }
    if xcr0 & XCR0_SSE == 0 {
        xcr0 &= !XCR0_AVX;
    }
    xcr0 | XCR0_X87
}

// Page-table entry bits.
pub const PTE_PRESENT: u64 = 1 << 0;
pub const PTE_WRITABLE: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_ACCESSED: u64 = 1 << 5;
pub const PTE_DIRTY: u64 = 1 << 6;
pub const PTE_HUGE: u64 = 1 << 7;
pub const PTE_NO_EXECUTE: u64 = 1 << 63;
pub const PTE_ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
pub const PTE_HUGE_ADDRESS_MASK: u64 = 0x000f_ffff_ffe0_0000;

/// Flags of a non-leaf entry in the user half: permissive, the leaf decides.
pub const USER_TABLE_FLAGS: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED;
/// Flags of a non-leaf entry in the kernel half: never user-accessible.
pub const KERNEL_TABLE_FLAGS: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED;

/// Leaf flags for a user page. Accessed/dirty are preset so the guest never
/// has to write them back into the page tables.
pub fn user_leaf_flags(writable: bool, executable: bool) -> u64 {
    let mut flags = PTE_PRESENT | PTE_USER | PTE_ACCESSED;
    if writable {
        flags |= PTE_WRITABLE | PTE_DIRTY;
    }
    if !executable {
        flags |= PTE_NO_EXECUTE;
    }
    flags
}

/// A code or data segment descriptor in the packed GDT format.
pub const fn segment_descriptor(access: u8, flags: u8) -> u64 {
    // base 0, limit 0xfffff (ignored in long mode, but VMX checks it).
    0xffff | (0xf << 48) | ((access as u64) << 40) | ((flags as u64) << 52)
}

const ACCESS_PRESENT: u8 = 0x80;
const ACCESS_DPL3: u8 = 0x60;
const ACCESS_CODE_OR_DATA: u8 = 0x10;
const TYPE_CODE_READ_ACCESSED: u8 = 0xb;
const TYPE_DATA_WRITE_ACCESSED: u8 = 0x3;
const FLAG_GRANULARITY: u8 = 0x8;
const FLAG_DB: u8 = 0x4;
const FLAG_LONG: u8 = 0x2;

pub const KERNEL_CS_DESCRIPTOR: u64 = segment_descriptor(
    ACCESS_PRESENT | ACCESS_CODE_OR_DATA | TYPE_CODE_READ_ACCESSED,
    FLAG_GRANULARITY | FLAG_LONG,
);
pub const KERNEL_DS_DESCRIPTOR: u64 = segment_descriptor(
    ACCESS_PRESENT | ACCESS_CODE_OR_DATA | TYPE_DATA_WRITE_ACCESSED,
    FLAG_GRANULARITY | FLAG_DB,
);
pub const USER_CS32_DESCRIPTOR: u64 = segment_descriptor(
    ACCESS_PRESENT | ACCESS_DPL3 | ACCESS_CODE_OR_DATA | TYPE_CODE_READ_ACCESSED,
    FLAG_GRANULARITY | FLAG_DB,
);
pub const USER_DS_DESCRIPTOR: u64 = segment_descriptor(
    ACCESS_PRESENT | ACCESS_DPL3 | ACCESS_CODE_OR_DATA | TYPE_DATA_WRITE_ACCESSED,
    FLAG_GRANULARITY | FLAG_DB,
);
pub const USER_CS_DESCRIPTOR: u64 = segment_descriptor(
    ACCESS_PRESENT | ACCESS_DPL3 | ACCESS_CODE_OR_DATA | TYPE_CODE_READ_ACCESSED,
    FLAG_GRANULARITY | FLAG_LONG,
);
/// Type 11: 64-bit TSS, busy (KVM checks TR is busy on entry).
pub const TSS_TYPE_BUSY: u8 = 0xb;

/// The two 8-byte halves of a 64-bit TSS descriptor.
pub const fn tss_descriptor(base: u64, limit: u32) -> [u64; 2] {
    let low = (limit as u64 & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (((ACCESS_PRESENT | TSS_TYPE_BUSY) as u64) << 40)
        | (((limit as u64 >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

/// The GDT, as 9 entries (limit 0x47).
pub fn gdt_entries() -> [u64; 9] {
    let tss = tss_descriptor(direct_map(TSS_GPA), TSS_LIMIT);
    [
        0,
        0,
        KERNEL_CS_DESCRIPTOR,
        KERNEL_DS_DESCRIPTOR,
        USER_CS32_DESCRIPTOR,
        USER_DS_DESCRIPTOR,
        USER_CS_DESCRIPTOR,
        tss[0],
        tss[1],
    ]
}

/// A 64-bit interrupt gate to `handler` in the kernel code segment, DPL 0 so
/// `int N` from ring 3 raises #GP instead of reaching it.
pub fn interrupt_gate(handler: u64) -> [u8; 16] {
    let mut gate = [0u8; 16];
    gate[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    gate[2..4].copy_from_slice(&KERNEL_CS.to_le_bytes());
    gate[4] = 0; // IST: no stack switch beyond RSP0
    gate[5] = 0x8e; // present, DPL 0, 64-bit interrupt gate
    gate[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    gate[8..12].copy_from_slice(&((handler >> 32) as u32).to_le_bytes());
    gate
}

/// The 104-byte TSS: only RSP0 matters (the stack exceptions from ring 3 use).
pub fn tss_bytes(rsp0: u64) -> [u8; 104] {
    let mut tss = [0u8; 104];
    tss[4..12].copy_from_slice(&rsp0.to_le_bytes());
    // I/O permission bitmap offset past the limit: no port access from ring 3.
    tss[102..104].copy_from_slice(&104u16.to_le_bytes());
    tss
}

/// `movabs [exit_page + offset], al` — a single-instruction exit to the sentry
/// (ring-0 code is interpreted under PVM, KVM.md quirk 2, so stubs stay tiny).
pub fn exit_stub(offset: u64) -> [u8; 9] {
    let mut code = [0u8; 9];
    code[0] = 0xa2;
    code[1..9].copy_from_slice(&(EXIT_PAGE_VA + offset).to_le_bytes());
    code
}

/// Ring 0: for each (pte_va, va) pair at rsi (rcx pairs), store the PTE's own
/// value back and `invlpg` the address, then exit. KVM only notices a changed
/// present PTE when the guest itself writes it (KVM.md quirk 3).
pub fn flush_routine() -> Vec<u8> {
    let mut code = vec![
        0x48, 0x85, 0xc9, // 0: test rcx, rcx
        0x74, 0x19, // 3: jz done (30)
        0x48, 0x8b, 0x06, // 5: mov rax, [rsi]
        0x48, 0x8b, 0x10, // 8: mov rdx, [rax]
        0x48, 0x89, 0x10, // 11: mov [rax], rdx
        0x48, 0x8b, 0x46, 0x08, // 14: mov rax, [rsi+8]
        0x0f, 0x01, 0x38, // 18: invlpg [rax]
        0x48, 0x83, 0xc6, 0x10, // 21: add rsi, 16
        0x48, 0xff, 0xc9, // 25: dec rcx
        0xeb, 0xe2, // 28: jmp 0
    ];
    debug_assert_eq!(code.len(), 30);
    code.extend_from_slice(&exit_stub(EXIT_FLUSH_DONE)); // 30: done
    code
}

/// Exception vectors for which the CPU pushes an error code.
pub fn vector_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

pub use crate::platform::vector::PAGE_FAULT as VECTOR_PAGE_FAULT;

// #PF error-code bits.
pub const PF_PRESENT: u64 = 1 << 0;
pub const PF_WRITE: u64 = 1 << 1;
pub const PF_USER: u64 = 1 << 2;
pub const PF_INSTRUCTION: u64 = 1 << 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_matches_linux_layout() {
        let gdt = gdt_entries();
        // Well-known Linux values for the same selectors.
        assert_eq!(gdt[(KERNEL_CS >> 3) as usize], 0x00af_9b00_0000_ffff);
        assert_eq!(gdt[(KERNEL_DS >> 3) as usize], 0x00cf_9300_0000_ffff);
        assert_eq!(gdt[(USER_CS32 >> 3) as usize], 0x00cf_fb00_0000_ffff);
        assert_eq!(gdt[(USER_DS >> 3) as usize], 0x00cf_f300_0000_ffff);
        assert_eq!(gdt[(USER_CS >> 3) as usize], 0x00af_fb00_0000_ffff);
        assert_eq!((gdt.len() * 8 - 1) as u16, GDT_LIMIT);
    }

    #[test]
    fn tss_descriptor_encodes_base_limit_and_busy_type() {
        let [low, high] = tss_descriptor(0xffff_8000_0000_2000, 0x67);
        assert_eq!(low & 0xffff, 0x67);
        assert_eq!((low >> 40) & 0xff, 0x8b);
        let base = ((low >> 16) & 0xff_ffff) | (((low >> 56) & 0xff) << 24) | (high << 32);
        assert_eq!(base, 0xffff_8000_0000_2000);
    }

    #[test]
    fn star_puts_kernel_and_user_selectors_where_syscall_and_sysret_look() {
        let star = star_value();
        assert_eq!(star, 0x0023_0010_0000_0000);
        assert_eq!(((star >> 32) & 0xffff) as u16, KERNEL_CS);
        assert_eq!(((star >> 32) & 0xffff) as u16 + 8, KERNEL_DS);
        assert_eq!((((star >> 48) & 0xffff) as u16 + 16) | 3, USER_CS);
        assert_eq!((((star >> 48) & 0xffff) as u16 + 8) | 3, USER_DS);
    }

    #[test]
    fn pte_bits() {
        let rw = user_leaf_flags(true, false);
        assert_eq!(
            rw,
            PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED | PTE_DIRTY | PTE_NO_EXECUTE
        );
        let rx = user_leaf_flags(false, true);
        assert_eq!(rx, PTE_PRESENT | PTE_USER | PTE_ACCESSED);
        assert_eq!(KERNEL_TABLE_FLAGS & PTE_USER, 0);
        assert_eq!(PTE_ADDRESS_MASK & 0xfff, 0);
        assert_eq!(PTE_HUGE_ADDRESS_MASK & ((2 << 20) - 1), 0);
    }

    #[test]
    fn interrupt_gate_splits_handler_address() {
        let gate = interrupt_gate(0xffff_8000_0000_3010);
        assert_eq!(u16::from_le_bytes([gate[0], gate[1]]), 0x3010);
        assert_eq!(u16::from_le_bytes([gate[2], gate[3]]), KERNEL_CS);
        assert_eq!(gate[5], 0x8e);
        assert_eq!(u16::from_le_bytes([gate[6], gate[7]]), 0x0000);
        assert_eq!(
            u32::from_le_bytes([gate[8], gate[9], gate[10], gate[11]]),
            0xffff_8000
        );
    }

    #[test]
    fn stubs_fit_their_slots() {
        assert!(exit_stub(0).len() as u64 <= VECTOR_STUB_SIZE);
        let flush = flush_routine();
        assert_eq!(flush[30], 0xa2);
        assert_eq!(
            u64::from_le_bytes(flush[31..39].try_into().unwrap()),
            EXIT_PAGE_VA + EXIT_FLUSH_DONE
        );
    }

    #[test]
    fn xcr0_keeps_avx512_all_or_nothing() {
        assert_eq!(xcr0_for(0x2e7), 0xe7);
        assert_eq!(xcr0_for(0x7), 0x7);
        assert_eq!(xcr0_for(0x27), 0x7);
        assert_eq!(xcr0_for(0x3), 0x3);
    }

    #[test]
    fn tss_has_rsp0_and_no_io_bitmap() {
        let tss = tss_bytes(0x1234_5678);
        assert_eq!(
            u64::from_le_bytes(tss[4..12].try_into().unwrap()),
            0x1234_5678
        );
        assert_eq!(u16::from_le_bytes([tss[102], tss[103]]), 104);
    }
}
