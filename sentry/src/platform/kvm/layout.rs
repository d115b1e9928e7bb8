//! Every guest address and selector the KVM platform uses, in one place.
//!
//! Guest physical addresses are memory-file offsets. The platform owns the
//! first `PLATFORM_RESERVED` bytes; application frames come after them.

/// Descriptor tables, the task state segment, the ring-0 stubs and the kernel
/// stack all live in the first 2 MiB of guest physical memory.
pub const GDT_GPA: u64 = 0x0000;
pub const IDT_GPA: u64 = 0x1000;
pub const TSS_GPA: u64 = 0x2000;
/// One 16-byte entry stub per exception vector (256 * 16 = 4 KiB).
pub const VECTOR_STUBS_GPA: u64 = 0x3000;
pub const VECTOR_STUB_SIZE: u64 = 16;
/// The LSTAR target, followed by the page-table flush routine.
pub const SYSCALL_STUB_GPA: u64 = 0x4000;
pub const FLUSH_ROUTINE_GPA: u64 = 0x4100;
/// (PTE address, virtual address) pairs the flush routine walks.
pub const FLUSH_LIST_GPA: u64 = 0x8000;
pub const FLUSH_LIST_CAPACITY: usize = 0x8000 / 16;
pub const KERNEL_STACK_BOTTOM_GPA: u64 = 0x10000;
pub const KERNEL_STACK_TOP_GPA: u64 = 0x20000;
/// The ring-0 area must fit in the single executable 2 MiB kernel page.
pub const KERNEL_AREA_SIZE: u64 = 2 << 20;

/// Pages for page tables come from here; they are never reused as data frames,
/// because KVM's shadow MMU may still track a former page table.
pub const PAGE_TABLE_POOL_GPA: u64 = 2 << 20;
pub const PLATFORM_RESERVED: u64 = 64 << 20;

/// All guest physical memory is mapped here, supervisor-only, so ring-0 code
/// can reach descriptor tables and page tables.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// A kernel page backed by no memory slot: any store to it exits to the sentry
/// (KVM.md quirk 4). The offset of the store says which stub made it.
pub const EXIT_PAGE_VA: u64 = 0xffff_c000_0000_0000;
pub const EXIT_PAGE_GPA: u64 = 0x0000_0080_0000_0000;
/// Exit offsets 0..=255 are exception vectors; these follow them.
pub const EXIT_SYSCALL: u64 = 0x100;
pub const EXIT_FLUSH_DONE: u64 = 0x101;

/// User addresses are the lower canonical half minus its last page.
pub const USER_ADDRESS_END: u64 = 0x0000_7fff_ffff_f000;

pub const PML4_DIRECT_MAP_INDEX: usize = 256;
pub const PML4_EXIT_PAGE_INDEX: usize = 384;

/// Segment selectors, in the Linux GDT layout (KVM.md "Values that worked").
pub const KERNEL_CS: u16 = 0x10;
pub const KERNEL_DS: u16 = 0x18;
pub const USER_CS32: u16 = 0x23;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
pub const TSS_SELECTOR: u16 = 0x38;
pub const GDT_LIMIT: u16 = 0x47;
pub const IDT_LIMIT: u16 = 0xfff;
pub const TSS_LIMIT: u32 = 0x67;

pub const fn direct_map(gpa: u64) -> u64 {
    DIRECT_MAP_BASE + gpa
}

pub const fn syscall_entry_va() -> u64 {
    direct_map(SYSCALL_STUB_GPA)
}

// The layout is checked when the crate compiles.
const _: () = {
    assert!(GDT_GPA + 0x1000 <= IDT_GPA);
    assert!(IDT_GPA + (IDT_LIMIT as u64 + 1) <= TSS_GPA);
    assert!(VECTOR_STUBS_GPA + 256 * VECTOR_STUB_SIZE <= SYSCALL_STUB_GPA);
    assert!(SYSCALL_STUB_GPA + 16 <= FLUSH_ROUTINE_GPA);
    assert!(FLUSH_LIST_GPA + (FLUSH_LIST_CAPACITY as u64) * 16 <= KERNEL_STACK_BOTTOM_GPA);
    assert!(KERNEL_STACK_TOP_GPA <= KERNEL_AREA_SIZE);
    assert!(KERNEL_AREA_SIZE <= PAGE_TABLE_POOL_GPA);
    assert!(PAGE_TABLE_POOL_GPA < PLATFORM_RESERVED);
    assert!(PLATFORM_RESERVED.is_multiple_of(2 << 20));
    assert!((DIRECT_MAP_BASE >> 39) & 0x1ff == PML4_DIRECT_MAP_INDEX as u64);
    assert!((EXIT_PAGE_VA >> 39) & 0x1ff == PML4_EXIT_PAGE_INDEX as u64);
};
