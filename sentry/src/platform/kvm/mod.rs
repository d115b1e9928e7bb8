//! The KVM platform: the application runs in guest ring 3 of one VM whose
//! physical memory is the sentry's memory file.
//!
//! Layout and bytes are in `layout` and `arch`; page tables in `pagetables`;
//! the vCPU run loop in `vcpu`. KVM.md lists the PVM quirks handled here.

pub mod arch;
pub mod layout;
pub mod pagetables;
mod vcpu;

use std::any::Any;
use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VmFd};

use self::arch::*;
use self::layout::*;
use self::pagetables::{lock, PageTables, TablePool};
use super::{AddressSpace, Context, CpuFeatures, Perms, PlatformError};
use crate::mm::memfile::{MemoryFile, HUGE_PAGE_SIZE, PAGE_SIZE};

/// One VM per sandbox.
#[derive(Debug)]
pub struct KvmPlatform {
    // Kept open for the lifetime of the VM.
    _kvm: Kvm,
    vm: VmFd,
    memory: Arc<MemoryFile>,
    pool: Arc<Mutex<TablePool>>,
    /// PML4 slots shared by every address space (the kernel half).
    kernel_entries: Vec<(usize, u64)>,
    cpuid: CpuId,
    /// The XCR0 value to program (host-supported subset of x87/SSE/AVX/AVX-512).
    xcr0: u64,
    next_vcpu_id: Mutex<u64>,
}

fn setup_err(step: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> PlatformError {
    move |e| PlatformError::Setup {
        step,
        source: std::io::Error::from_raw_os_error(e.errno()),
    }
}

impl KvmPlatform {
    pub fn new(memory: Arc<MemoryFile>) -> Result<Self, PlatformError> {
        if memory.platform_reserved() < PLATFORM_RESERVED {
            return Err(PlatformError::Unavailable(
                "memory file reserves too little for the platform".into(),
            ));
        }
        let kvm =
            Kvm::new().map_err(|e| PlatformError::Unavailable(format!("opening /dev/kvm: {e}")))?;
        if !kvm.check_extension(Cap::SyncRegs) {
            return Err(PlatformError::Unavailable(
                "KVM_CAP_SYNC_REGS is missing".into(),
            ));
        }
        let vm = kvm.create_vm().map_err(setup_err("KVM_CREATE_VM"))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: memory.size(),
            userspace_addr: memory.host_address(),
        };
        // SAFETY: the region is the memory file's mapping, which lives as long as
        // `memory`, and the platform keeps `memory` alive as long as the VM.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(setup_err("KVM_SET_USER_MEMORY_REGION"))?;
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(setup_err("KVM_GET_SUPPORTED_CPUID"))?;
        let xcr0 = xcr0_for(supported_xcr0(&cpuid));

        let pool = Arc::new(Mutex::new(TablePool::new()));
        write_kernel_area(&memory);
        let kernel_entries = build_kernel_tables(&memory, &mut lock(&pool))?;
        tracing::debug!(
            xcr0 = format_args!("{xcr0:#x}"),
            memory = memory.size(),
            "kvm platform ready"
        );
        Ok(Self {
            _kvm: kvm,
            vm,
            memory,
            pool,
            kernel_entries,
            cpuid,
            xcr0,
            next_vcpu_id: Mutex::new(0),
        })
    }

    pub fn cpuid(&self) -> &CpuId {
        &self.cpuid
    }
}

/// XCR0 bits the host lets the guest enable (CPUID leaf 0xD, sub-leaf 0).
fn supported_xcr0(cpuid: &CpuId) -> u64 {
    cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 0xd && e.index == 0)
        .map_or(XCR0_X87 | XCR0_SSE, |e| {
            u64::from(e.eax) | (u64::from(e.edx) << 32)
        })
}

/// Writes the GDT, IDT, TSS and ring-0 stubs into the kernel area.
fn write_kernel_area(memory: &MemoryFile) {
    for (i, entry) in gdt_entries().iter().enumerate() {
        memory.write_u64(GDT_GPA + i as u64 * 8, *entry);
    }
    for vector in 0..256u64 {
        let stub_gpa = VECTOR_STUBS_GPA + vector * VECTOR_STUB_SIZE;
        memory.write(IDT_GPA + vector * 16, &interrupt_gate(direct_map(stub_gpa)));
        memory.write(stub_gpa, &exit_stub(vector));
    }
    memory.write(TSS_GPA, &tss_bytes(direct_map(KERNEL_STACK_TOP_GPA)));
    memory.write(SYSCALL_STUB_GPA, &exit_stub(EXIT_SYSCALL));
    memory.write(FLUSH_ROUTINE_GPA, &flush_routine());
}

/// Builds the kernel half: the direct map of all guest memory (2 MiB pages,
/// only the first one executable) and the exit page. Returns the PML4 slots.
fn build_kernel_tables(
    memory: &MemoryFile,
    pool: &mut TablePool,
) -> Result<Vec<(usize, u64)>, PlatformError> {
    let direct_pdpt = pool.allocate(memory)?;
    let gib = 1u64 << 30;
    let mut gpa = 0;
    while gpa < memory.size() {
        let pdpt_slot = direct_pdpt + (gpa / gib) * 8;
        let pd = match memory.read_u64(pdpt_slot) {
            0 => {
                let pd = pool.allocate(memory)?;
                memory.write_u64(pdpt_slot, pd | KERNEL_TABLE_FLAGS);
                pd
            }
            entry => entry & PTE_ADDRESS_MASK,
        };
        let mut leaf = gpa | PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED | PTE_DIRTY | PTE_HUGE;
        if gpa >= KERNEL_AREA_SIZE {
            leaf |= PTE_NO_EXECUTE;
        }
        memory.write_u64(pd + ((gpa % gib) / HUGE_PAGE_SIZE) * 8, leaf);
        gpa += HUGE_PAGE_SIZE;
    }

    let exit_pdpt = pool.allocate(memory)?;
    let exit_pd = pool.allocate(memory)?;
    let exit_pt = pool.allocate(memory)?;
    memory.write_u64(
        exit_pdpt + ((EXIT_PAGE_VA >> 30) & 0x1ff) * 8,
        exit_pd | KERNEL_TABLE_FLAGS,
    );
    memory.write_u64(
        exit_pd + ((EXIT_PAGE_VA >> 21) & 0x1ff) * 8,
        exit_pt | KERNEL_TABLE_FLAGS,
    );
    memory.write_u64(
        exit_pt + ((EXIT_PAGE_VA >> 12) & 0x1ff) * 8,
        EXIT_PAGE_GPA | PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED | PTE_DIRTY | PTE_NO_EXECUTE,
    );
    Ok(vec![
        (PML4_DIRECT_MAP_INDEX, direct_pdpt | KERNEL_TABLE_FLAGS),
        (PML4_EXIT_PAGE_INDEX, exit_pdpt | KERNEL_TABLE_FLAGS),
    ])
}

impl super::Platform for KvmPlatform {
    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>, PlatformError> {
        let tables = PageTables::new(
            Arc::clone(&self.memory),
            Arc::clone(&self.pool),
            &self.kernel_entries,
        )?;
        Ok(Box::new(KvmAddressSpace {
            tables,
            memory_size: self.memory.size(),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        let id = {
            let mut next = lock(&self.next_vcpu_id);
            *next += 1;
            *next - 1
        };
        let context = vcpu::KvmContext::new(
            &self.vm,
            id,
            &self.cpuid,
            self.xcr0,
            Arc::clone(&self.memory),
        )?;
        Ok(Box::new(context))
    }

    fn max_user_address(&self) -> u64 {
        USER_ADDRESS_END
    }

    fn cpu_features(&self) -> CpuFeatures {
        let leaf = |function: u32, index: u32| {
            self.cpuid
                .as_slice()
                .iter()
                .find(|e| e.function == function && e.index == index)
                .copied()
        };
        let hwcap = leaf(1, 0).map_or(0, |e| u64::from(e.edx));
        // Leaf 0xD ECX: XSAVE area size for every supported component.
        let xsave_size = leaf(0xd, 0).map_or(512 + 64, |e| u64::from(e.ecx));
        // Linux's signal frame: XSAVE area plus ucontext/siginfo, rounded up.
        let min_signal_stack = (xsave_size + 1024 + 63) & !63;
        let cpu_count = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        CpuFeatures {
            hwcap,
            hwcap2: HWCAP2_FSGSBASE,
            min_signal_stack,
            cpu_count,
        }
    }
}

/// An application address space: its own PML4, kernel half shared.
#[derive(Debug)]
pub struct KvmAddressSpace {
    tables: PageTables,
    memory_size: u64,
}

impl KvmAddressSpace {
    pub fn page_tables(&self) -> &PageTables {
        &self.tables
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map(
        &mut self,
        va: u64,
        len: u64,
        file_offset: u64,
        perms: Perms,
    ) -> Result<(), PlatformError> {
        let in_file = file_offset
            .checked_add(len)
            .is_some_and(|end| end <= self.memory_size);
        if !file_offset.is_multiple_of(PAGE_SIZE) || file_offset < PLATFORM_RESERVED || !in_file {
            return Err(PlatformError::BadMapping {
                va,
                len,
                why: "file range outside application memory",
            });
        }
        if perms.is_none() {
            return self.tables.unmap(va, len);
        }
        // x86 has no write-only or execute-only pages; any access implies read.
        self.tables.map(
            va,
            len,
            file_offset,
            user_leaf_flags(perms.write, perms.execute),
        )
    }

    fn unmap(&mut self, va: u64, len: u64) -> Result<(), PlatformError> {
        self.tables.unmap(va, len)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
