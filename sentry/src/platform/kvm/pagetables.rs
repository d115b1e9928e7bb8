//! Guest page tables, written by the sentry straight into guest memory.
//!
//! KVM.md quirk 3: the guest sees a host write only when it turns a
//! not-present entry into a present one. Every other change (unmap, downgrade,
//! upgrade, splitting a 2 MiB page) is written here too, and its entry is queued
//! so a ring-0 routine in the guest rewrites it and runs `invlpg` before the
//! application runs again (see `PendingFlush`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::arch::*;
use super::layout::*;
use crate::mm::memfile::{MemoryFile, HUGE_PAGE_SIZE, PAGE_SIZE};
use crate::platform::PlatformError;

/// Hands out zeroed 4 KiB pages from the platform's page-table area.
#[derive(Debug)]
pub struct TablePool {
    next: u64,
    end: u64,
}

impl Default for TablePool {
    fn default() -> Self {
        Self::new()
    }
}

impl TablePool {
    pub fn new() -> Self {
        Self {
            next: PAGE_TABLE_POOL_GPA,
            end: PLATFORM_RESERVED,
        }
    }

    /// Pages are never returned: a page KVM once shadowed as a page table must
    /// not come back with host-written contents it would not notice.
    pub fn allocate(&mut self, memory: &MemoryFile) -> Result<u64, PlatformError> {
        if self.next + PAGE_SIZE > self.end {
            return Err(PlatformError::OutOfPageTables);
        }
        let page = self.next;
        self.next += PAGE_SIZE;
        memory.zero(page, PAGE_SIZE);
        Ok(page)
    }
}

/// Entries whose present value changed since the guest last ran:
/// PTE guest-physical address → a virtual address it translates.
#[derive(Debug, Default)]
pub struct PendingFlush {
    entries: HashMap<u64, u64>,
}

impl PendingFlush {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn take(&mut self) -> Vec<(u64, u64)> {
        self.entries.drain().collect()
    }
}

/// One address space's four-level page tables.
#[derive(Debug)]
pub struct PageTables {
    root: u64,
    memory: Arc<MemoryFile>,
    pool: Arc<Mutex<TablePool>>,
    pending: PendingFlush,
}

fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * level)) & 0x1ff
}

impl PageTables {
    /// A new root that shares the kernel half (`kernel_entries`, PML4 index →
    /// entry) with every other address space.
    pub fn new(
        memory: Arc<MemoryFile>,
        pool: Arc<Mutex<TablePool>>,
        kernel_entries: &[(usize, u64)],
    ) -> Result<Self, PlatformError> {
        let root = lock(&pool).allocate(&memory)?;
        for &(slot, entry) in kernel_entries {
            memory.write_u64(root + slot as u64 * 8, entry);
        }
        Ok(Self {
            root,
            memory,
            pool,
            pending: PendingFlush::default(),
        })
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    pub fn pending_mut(&mut self) -> &mut PendingFlush {
        &mut self.pending
    }

    fn write_entry(&mut self, entry_gpa: u64, value: u64, va: u64) {
        let old = self.memory.read_u64(entry_gpa);
        if old == value {
            // Rewriting a present entry is a request to resynchronise the
            // guest (a fault on a page we consider mapped): queue it.
            if value & PTE_PRESENT != 0 {
                self.pending.entries.insert(entry_gpa, va);
            }
            return;
        }
        self.memory.write_u64(entry_gpa, value);
        if old & PTE_PRESENT != 0 || self.pending.entries.contains_key(&entry_gpa) {
            self.pending.entries.insert(entry_gpa, va);
        }
    }

    /// The address of the entry for `va` at `level` (0 = PT), creating the
    /// tables above it. Fails if a 2 MiB leaf sits above `level` and
    /// `split_huge` is false.
    fn entry_for(&mut self, va: u64, level: u32, split_huge: bool) -> Result<u64, PlatformError> {
        let mut table = self.root;
        for current in (level + 1..=3).rev() {
            let entry_gpa = table + index(va, current) * 8;
            let entry = self.memory.read_u64(entry_gpa);
            if entry & PTE_PRESENT == 0 {
                let next = lock(&self.pool).allocate(&self.memory)?;
                self.write_entry(entry_gpa, next | USER_TABLE_FLAGS, va);
                table = next;
            } else if entry & PTE_HUGE != 0 {
                if current != 1 || !split_huge {
                    return Err(PlatformError::BadMapping {
                        va,
                        len: 0,
                        why: "huge leaf in the way",
                    });
                }
                table = self.split_huge(entry_gpa, entry, va)?;
            } else {
                table = entry & PTE_ADDRESS_MASK;
            }
        }
        Ok(table + index(va, level) * 8)
    }

    /// Replaces a 2 MiB leaf by a table of 512 equivalent 4 KiB leaves.
    fn split_huge(&mut self, pde_gpa: u64, pde: u64, va: u64) -> Result<u64, PlatformError> {
        let table = lock(&self.pool).allocate(&self.memory)?;
        let frame = pde & PTE_HUGE_ADDRESS_MASK;
        let flags = pde & !PTE_HUGE_ADDRESS_MASK & !PTE_HUGE;
        for i in 0..512 {
            // A fresh table is not yet visible to the guest, so plain writes are enough.
            self.memory
                .write_u64(table + i * 8, (frame + i * PAGE_SIZE) | flags);
        }
        self.write_entry(
            pde_gpa,
            table | USER_TABLE_FLAGS,
            va & !(HUGE_PAGE_SIZE - 1),
        );
        Ok(table)
    }

    /// Maps `[va, va+len)` to guest physical `gpa`, using 2 MiB leaves where
    /// both addresses are 2 MiB aligned and the range covers the whole page.
    pub fn map(
        &mut self,
        va: u64,
        len: u64,
        gpa: u64,
        leaf_flags: u64,
    ) -> Result<(), PlatformError> {
        check_user_range(va, len)?;
        let mut offset = 0;
        while offset < len {
            let (v, p) = (va + offset, gpa + offset);
            if v % HUGE_PAGE_SIZE == 0 && p % HUGE_PAGE_SIZE == 0 && len - offset >= HUGE_PAGE_SIZE
            {
                let pde_gpa = self.entry_for(v, 1, true)?;
                self.write_entry(pde_gpa, p | leaf_flags | PTE_HUGE, v);
                offset += HUGE_PAGE_SIZE;
            } else {
                let pte_gpa = self.entry_for(v, 0, true)?;
                self.write_entry(pte_gpa, p | leaf_flags, v);
                offset += PAGE_SIZE;
            }
        }
        Ok(())
    }

    /// Clears every leaf in `[va, va+len)`, skipping absent tables.
    pub fn unmap(&mut self, va: u64, len: u64) -> Result<(), PlatformError> {
        check_user_range(va, len)?;
        let end = va + len;
        let mut v = va;
        'walk: while v < end {
            let mut table = self.root;
            for level in (1..=3).rev() {
                let entry_gpa = table + index(v, level) * 8;
                let entry = self.memory.read_u64(entry_gpa);
                let span = 1u64 << (12 + 9 * level);
                if entry & PTE_PRESENT == 0 {
                    v = (v & !(span - 1)) + span;
                    continue 'walk;
                }
                if entry & PTE_HUGE != 0 {
                    if v.is_multiple_of(span) && end - v >= span {
                        self.write_entry(entry_gpa, 0, v);
                        v += span;
                        continue 'walk;
                    }
                    table = self.split_huge(entry_gpa, entry, v)?;
                    continue;
                }
                table = entry & PTE_ADDRESS_MASK;
            }
            self.write_entry(table + index(v, 0) * 8, 0, v);
            v += PAGE_SIZE;
        }
        Ok(())
    }

    /// The leaf entry translating `va`, if any (for tests and debugging).
    pub fn lookup(&self, va: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (0..=3).rev() {
            let entry = self.memory.read_u64(table + index(va, level) * 8);
            if entry & PTE_PRESENT == 0 {
                return None;
            }
            if level == 0 || entry & PTE_HUGE != 0 {
                return Some(entry);
            }
            table = entry & PTE_ADDRESS_MASK;
        }
        None
    }
}

fn check_user_range(va: u64, len: u64) -> Result<(), PlatformError> {
    let aligned = va.is_multiple_of(PAGE_SIZE) && len.is_multiple_of(PAGE_SIZE);
    let in_user_half = va
        .checked_add(len)
        .is_some_and(|end| end <= USER_ADDRESS_END);
    if !aligned || !in_user_half {
        return Err(PlatformError::BadMapping {
            va,
            len,
            why: "unaligned or outside the user half",
        });
    }
    Ok(())
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> PageTables {
        let memory = Arc::new(
            MemoryFile::new(PLATFORM_RESERVED + (16 << 20), PLATFORM_RESERVED).expect("memfd"),
        );
        let pool = Arc::new(Mutex::new(TablePool::new()));
        PageTables::new(memory, pool, &[]).expect("root")
    }

    #[test]
    fn huge_mapping_and_split_on_partial_unmap() {
        let mut pt = tables();
        let flags = user_leaf_flags(true, false);
        pt.map(0x4000_0000, HUGE_PAGE_SIZE, PLATFORM_RESERVED, flags)
            .expect("map");
        let leaf = pt.lookup(0x4000_1000).expect("mapped");
        assert_ne!(leaf & PTE_HUGE, 0);
        // Fresh mappings need no guest flush: not-present → present is seen.
        assert!(pt.pending.is_empty());
        pt.unmap(0x4000_1000, PAGE_SIZE).expect("unmap");
        assert_eq!(pt.lookup(0x4000_1000), None);
        let neighbour = pt.lookup(0x4000_2000).expect("still mapped");
        assert_eq!(neighbour & PTE_ADDRESS_MASK, PLATFORM_RESERVED + 0x2000);
        assert_eq!(neighbour & PTE_HUGE, 0);
        // The PDE changed (split) and one PTE was cleared: both need the guest.
        assert_eq!(pt.pending.len(), 2);
    }

    #[test]
    fn small_mapping_downgrade_is_queued() {
        let mut pt = tables();
        pt.map(
            0x1000,
            PAGE_SIZE,
            PLATFORM_RESERVED,
            user_leaf_flags(true, false),
        )
        .expect("map");
        assert!(pt.pending.is_empty());
        pt.map(
            0x1000,
            PAGE_SIZE,
            PLATFORM_RESERVED,
            user_leaf_flags(false, false),
        )
        .expect("remap");
        assert_eq!(pt.pending.len(), 1);
        let leaf = pt.lookup(0x1000).expect("mapped");
        assert_eq!(leaf & PTE_WRITABLE, 0);
    }

    #[test]
    fn rejects_kernel_half() {
        let mut pt = tables();
        assert!(pt.map(DIRECT_MAP_BASE, PAGE_SIZE, 0, 0).is_err());
        assert!(pt.unmap(USER_ADDRESS_END, PAGE_SIZE).is_err());
    }
}
