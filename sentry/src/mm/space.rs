//! One process's memory: VMAs (what may be touched), PMAs (which frames back
//! what has been touched) and the platform mapping that mirrors the PMAs.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::memfile::{MemoryFile, HUGE_PAGE_SIZE, PAGE_SIZE};
use super::vma::{Backing, Vma, VmaSet};
use crate::errno::Errno;
use crate::platform::{AccessKind, AddressSpace, Perms};

/// Lowest address mmap hands out without MAP_FIXED (like vm.mmap_min_addr).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;
/// Top of the region mmap fills downwards; the stack lives above it.
pub const MMAP_BASE: u64 = 0x7fff_0000_0000;

/// A resident piece of memory: `len` (4 KiB or 2 MiB) bytes of the memory
/// file at `offset`.
#[derive(Debug, Clone, Copy)]
struct Pma {
    offset: u64,
    len: u64,
}

/// Why a fault could not be resolved (becomes SIGSEGV with this si_code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// No mapping at the address (SEGV_MAPERR).
    Unmapped,
    /// A mapping without the needed permission (SEGV_ACCERR).
    Protection,
    /// The sentry could not allocate memory or page tables.
    OutOfMemory,
}

#[derive(Debug)]
pub struct MmapRequest {
    pub addr: u64,
    pub len: u64,
    pub perms: Perms,
    pub fixed: bool,
    /// MAP_FIXED_NOREPLACE: fail with EEXIST instead of replacing.
    pub no_replace: bool,
    pub backing: Backing,
}

#[derive(Debug)]
pub struct MemoryManager {
    memory: Arc<MemoryFile>,
    space: Box<dyn AddressSpace>,
    vmas: VmaSet,
    pmas: BTreeMap<u64, Pma>,
    max_address: u64,
    brk_start: u64,
    brk: u64,
}

pub fn page_up(value: u64) -> Option<u64> {
    value
        .checked_add(PAGE_SIZE - 1)
        .map(|v| v & !(PAGE_SIZE - 1))
}

pub fn page_down(value: u64) -> u64 {
    value & !(PAGE_SIZE - 1)
}

impl MemoryManager {
    pub fn new(memory: Arc<MemoryFile>, space: Box<dyn AddressSpace>, max_address: u64) -> Self {
        Self {
            memory,
            space,
            vmas: VmaSet::default(),
            pmas: BTreeMap::new(),
            max_address,
            brk_start: 0,
            brk: 0,
        }
    }

    /// The largest user address plus one.
    pub fn max_address(&self) -> u64 {
        self.max_address
    }

    pub fn address_space(&mut self) -> &mut dyn AddressSpace {
        self.space.as_mut()
    }

    fn check_range(&self, addr: u64, len: u64) -> Result<u64, Errno> {
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > self.max_address {
            return Err(Errno::ENOMEM);
        }
        Ok(end)
    }

    /// Creates a mapping; returns its address.
    pub fn mmap(&mut self, request: MmapRequest) -> Result<u64, Errno> {
        if request.len == 0 || !request.addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(request.len).ok_or(Errno::ENOMEM)?;
        let addr = if request.fixed || request.no_replace {
            let end = self.check_range(request.addr, len)?;
            if request.addr < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            if request.no_replace && !self.vmas.is_free(request.addr, end) {
                return Err(Errno::EEXIST);
            }
            self.unmap_range(request.addr, end);
            request.addr
        } else {
            let hint_ok = request.addr >= MMAP_MIN_ADDR
                && self.check_range(request.addr, len).is_ok()
                && self.vmas.is_free(request.addr, request.addr + len);
            if hint_ok {
                request.addr
            } else {
                self.find_free(len)?
            }
        };
        self.vmas.insert(Vma {
            start: addr,
            end: addr + len,
            perms: request.perms,
            backing: request.backing,
        });
        Ok(addr)
    }

    fn find_free(&self, len: u64) -> Result<u64, Errno> {
        // 2 MiB alignment for big mappings lets faults use 2 MiB pages.
        let align = if len >= HUGE_PAGE_SIZE {
            HUGE_PAGE_SIZE
        } else {
            PAGE_SIZE
        };
        let top = MMAP_BASE.min(self.max_address);
        self.vmas
            .find_gap_below(top, MMAP_MIN_ADDR, len, align)
            .ok_or(Errno::ENOMEM)
    }

    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = self.check_range(addr, len).map_err(|_| Errno::EINVAL)?;
        self.unmap_range(addr, end);
        Ok(())
    }

    fn unmap_range(&mut self, start: u64, end: u64) {
        self.vmas.remove_range(start, end);
        self.release_pmas(start, end);
    }

    /// Drops the frames behind `[start, end)` and their platform mappings.
    fn release_pmas(&mut self, start: u64, end: u64) {
        self.split_pma_at(start);
        self.split_pma_at(end);
        let keys: Vec<u64> = self.pmas.range(start..end).map(|(k, _)| *k).collect();
        if keys.is_empty() {
            return;
        }
        for key in keys {
            if let Some(pma) = self.pmas.remove(&key) {
                self.memory.free(pma.offset, pma.len);
            }
        }
        if let Err(e) = self.space.unmap(start, end - start) {
            tracing::error!(start, end, error = %e, "platform unmap failed");
        }
    }

    /// Breaks a 2 MiB PMA that straddles `at` into 4 KiB PMAs.
    fn split_pma_at(&mut self, at: u64) {
        let Some((&va, &pma)) = self.pmas.range(..at).next_back() else {
            return;
        };
        if va < at && at < va + pma.len {
            self.pmas.remove(&va);
            for i in 0..pma.len / PAGE_SIZE {
                self.pmas.insert(
                    va + i * PAGE_SIZE,
                    Pma {
                        offset: pma.offset + i * PAGE_SIZE,
                        len: PAGE_SIZE,
                    },
                );
            }
        }
    }

    fn pma_at(&self, addr: u64) -> Option<(u64, Pma)> {
        self.pmas
            .range(..=addr)
            .next_back()
            .map(|(va, p)| (*va, *p))
            .filter(|(va, p)| addr < va + p.len)
    }

    pub fn mprotect(&mut self, addr: u64, len: u64, perms: Perms) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = self.check_range(addr, len)?;
        if !self.vmas.covers(addr, end) {
            return Err(Errno::ENOMEM);
        }
        self.vmas.split_at(addr);
        self.vmas.split_at(end);
        for vma in self.vmas.range_mut(addr, end) {
            vma.perms = perms;
        }
        // Resident pages keep their frames; only the permissions change.
        self.split_pma_at(addr);
        self.split_pma_at(end);
        let resident: Vec<(u64, Pma)> = self
            .pmas
            .range(addr..end)
            .map(|(va, p)| (*va, *p))
            .collect();
        for (va, pma) in resident {
            if let Err(e) = self.space.map(va, pma.len, pma.offset, perms) {
                tracing::error!(va, error = %e, "platform protect failed");
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }

    /// Linux mremap for a range inside one VMA.
    pub fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> Result<u64, Errno> {
        if !old.is_multiple_of(PAGE_SIZE) || new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        let old_end = self.check_range(old, old_len).map_err(|_| Errno::EFAULT)?;
        let vma = self.vmas.find(old).cloned().ok_or(Errno::EFAULT)?;
        if old_end > vma.end || old_len == 0 {
            return Err(Errno::EFAULT);
        }
        if let Some(target) = fixed {
            if target % PAGE_SIZE != 0 || !may_move {
                return Err(Errno::EINVAL);
            }
            let target_end = self.check_range(target, new_len)?;
            if target < old_end && old < target_end {
                return Err(Errno::EINVAL);
            }
            self.unmap_range(target, target_end);
            return self.move_mapping(&vma, old, old_len, target, new_len);
        }
        if new_len <= old_len {
            self.unmap_range(old + new_len, old_end);
            return Ok(old);
        }
        let new_end = self.check_range(old, new_len)?;
        if old_end == vma.end && self.vmas.is_free(old_end, new_end) {
            if let Some(v) = self.vmas.get_mut(vma.start) {
                v.end = new_end;
            }
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let target = self.find_free(new_len)?;
        self.move_mapping(&vma, old, old_len, target, new_len)
    }

    fn move_mapping(
        &mut self,
        vma: &Vma,
        old: u64,
        old_len: u64,
        target: u64,
        new_len: u64,
    ) -> Result<u64, Errno> {
        let old_end = old + old_len;
        self.split_pma_at(old);
        self.split_pma_at(old_end);
        let moved: Vec<(u64, Pma)> = self
            .pmas
            .range(old..old_end)
            .map(|(va, p)| (*va, *p))
            .collect();
        for (va, _) in &moved {
            self.pmas.remove(va);
        }
        let backing = match &vma.backing {
            Backing::Anonymous => Backing::Anonymous,
            Backing::File { data, offset } => Backing::File {
                data: Arc::clone(data),
                offset: offset + (old - vma.start),
            },
        };
        self.vmas.remove_range(old, old_end);
        if let Err(e) = self.space.unmap(old, old_len) {
            tracing::error!(old, error = %e, "platform unmap failed");
        }
        self.vmas.insert(Vma {
            start: target,
            end: target + new_len,
            perms: vma.perms,
            backing,
        });
        for (va, pma) in moved {
            let new_va = va - old + target;
            if va - old >= new_len {
                self.memory.free(pma.offset, pma.len);
                continue;
            }
            let pieces: Vec<Pma> =
                if pma.len == HUGE_PAGE_SIZE && !new_va.is_multiple_of(HUGE_PAGE_SIZE) {
                    (0..pma.len / PAGE_SIZE)
                        .map(|i| Pma {
                            offset: pma.offset + i * PAGE_SIZE,
                            len: PAGE_SIZE,
                        })
                        .collect()
                } else {
                    vec![pma]
                };
            let mut piece_va = new_va;
            for piece in pieces {
                if !vma.perms.is_none() {
                    self.space
                        .map(piece_va, piece.len, piece.offset, vma.perms)
                        .map_err(|_| Errno::ENOMEM)?;
                }
                self.pmas.insert(piece_va, piece);
                piece_va += piece.len;
            }
        }
        Ok(target)
    }

    /// MADV_DONTNEED: the next touch sees zeros (anonymous) or the file again.
    pub fn discard(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = self.check_range(addr, len).map_err(|_| Errno::EINVAL)?;
        self.release_pmas(addr, end);
        Ok(())
    }

    /// Sets where the heap starts (right after the loaded program).
    pub fn set_brk_start(&mut self, start: u64) {
        self.brk_start = start;
        self.brk = start;
    }

    /// Linux brk: returns the new break, or the old one when it cannot move.
    pub fn brk(&mut self, requested: u64) -> u64 {
        if requested < self.brk_start {
            return self.brk;
        }
        let (Some(old_top), Some(new_top)) = (page_up(self.brk), page_up(requested)) else {
            return self.brk;
        };
        if new_top > old_top {
            if self.check_range(old_top, new_top - old_top).is_err()
                || !self.vmas.is_free(old_top, new_top)
            {
                return self.brk;
            }
            let rw = Perms {
                read: true,
                write: true,
                execute: false,
            };
            self.vmas.insert(Vma {
                start: old_top,
                end: new_top,
                perms: rw,
                backing: Backing::Anonymous,
            });
        } else if new_top < old_top {
            self.unmap_range(new_top, old_top);
        }
        self.brk = requested;
        self.brk
    }

    /// Resolves an application page fault: allocate and map backing memory, or
    /// say why the access is not allowed.
    pub fn handle_fault(&mut self, addr: u64, access: AccessKind) -> Result<(), FaultError> {
        let vma = self.vmas.find(addr).ok_or(FaultError::Unmapped)?;
        if !vma.perms.allows(access) {
            return Err(FaultError::Protection);
        }
        let perms = vma.perms;
        if let Some((va, pma)) = self.pma_at(addr) {
            // Resident already: the platform mapping lags behind; push it again.
            return self
                .space
                .map(va, pma.len, pma.offset, perms)
                .map_err(|_| FaultError::OutOfMemory);
        }
        let (va, pma) = self.populate(addr)?;
        self.space
            .map(va, pma.len, pma.offset, perms)
            .map_err(|_| FaultError::OutOfMemory)
    }

    /// Allocates and fills the frame for the page at `addr` (which has a VMA
    /// but no PMA). Anonymous memory gets a 2 MiB frame when the VMA spans the
    /// whole aligned 2 MiB block and nothing in it is resident yet.
    fn populate(&mut self, addr: u64) -> Result<(u64, Pma), FaultError> {
        let vma = self.vmas.find(addr).ok_or(FaultError::Unmapped)?.clone();
        let block = addr & !(HUGE_PAGE_SIZE - 1);
        let huge_fits = matches!(vma.backing, Backing::Anonymous)
            && vma.start <= block
            && block + HUGE_PAGE_SIZE <= vma.end
            && self
                .pmas
                .range(block..block + HUGE_PAGE_SIZE)
                .next()
                .is_none();
        if huge_fits {
            if let Ok(offset) = self.memory.allocate_huge() {
                let pma = Pma {
                    offset,
                    len: HUGE_PAGE_SIZE,
                };
                self.pmas.insert(block, pma);
                return Ok((block, pma));
            }
        }
        let va = page_down(addr);
        let offset = self
            .memory
            .allocate_page()
            .map_err(|_| FaultError::OutOfMemory)?;
        if let Backing::File {
            data,
            offset: file_offset,
        } = &vma.backing
        {
            let start = file_offset + (va - vma.start);
            if let Ok(start) = usize::try_from(start) {
                if start < data.len() {
                    let end = (start + PAGE_SIZE as usize).min(data.len());
                    self.memory.write(offset, &data[start..end]);
                }
            }
        }
        let pma = Pma {
            offset,
            len: PAGE_SIZE,
        };
        self.pmas.insert(va, pma);
        Ok((va, pma))
    }

    /// The memory-file offset backing `addr`, faulting it in as an access of
    /// kind `access` would. Errors are EFAULT, as for a bad syscall pointer.
    fn resident_offset(&mut self, addr: u64, access: AccessKind) -> Result<u64, Errno> {
        let vma = self.vmas.find(addr).ok_or(Errno::EFAULT)?;
        if !vma.perms.allows(access) {
            return Err(Errno::EFAULT);
        }
        let (va, pma) = match self.pma_at(addr) {
            Some(found) => found,
            None => {
                let (va, pma) = self.populate(addr).map_err(|_| Errno::EFAULT)?;
                let perms = self.vmas.find(addr).map_or(Perms::NONE, |v| v.perms);
                self.space
                    .map(va, pma.len, pma.offset, perms)
                    .map_err(|_| Errno::EFAULT)?;
                (va, pma)
            }
        };
        Ok(pma.offset + (addr - va))
    }

    /// Walks `[addr, addr + len)` page by page, faulting each page in for
    /// `access`, and hands `f` the memory-file offset of each piece and the
    /// byte range of the caller's buffer it covers. `f` returns false when
    /// the memory file refused the offset (a sentry bug, reported as EFAULT
    /// rather than copying nothing silently).
    fn for_each_page(
        &mut self,
        addr: u64,
        len: usize,
        access: AccessKind,
        mut f: impl FnMut(u64, std::ops::Range<usize>) -> bool,
    ) -> Result<(), Errno> {
        self.check_range(addr, len as u64)
            .map_err(|_| Errno::EFAULT)?;
        let mut done = 0usize;
        while done < len {
            let at = addr + done as u64;
            let chunk = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - done);
            let offset = self.resident_offset(at, access)?;
            if !f(offset, done..done + chunk) {
                return Err(Errno::EFAULT);
            }
            done += chunk;
        }
        Ok(())
    }

    /// Copies application memory at `addr` into `dst`.
    pub fn copy_in(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        let memory = Arc::clone(&self.memory);
        self.for_each_page(addr, dst.len(), AccessKind::Read, |offset, range| {
            memory.read(offset, &mut dst[range])
        })
    }

    /// Copies `src` into application memory at `addr`.
    pub fn copy_out(&mut self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let memory = Arc::clone(&self.memory);
        self.for_each_page(addr, src.len(), AccessKind::Write, |offset, range| {
            memory.write(offset, &src[range])
        })
    }

    /// Writes into memory regardless of VMA permissions (the loader filling
    /// read-only segments is the only user).
    pub fn copy_out_forced(&mut self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        let memory = Arc::clone(&self.memory);
        self.for_each_page(addr, src.len(), AccessKind::Read, |offset, range| {
            memory.write(offset, &src[range])
        })
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn copy_in_string(&mut self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            let chunk = (PAGE_SIZE - at % PAGE_SIZE) as usize;
            let mut buf = vec![0u8; chunk];
            self.copy_in(at, &mut buf)?;
            if let Some(nul) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..nul]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            at += chunk as u64;
        }
    }

    pub fn read_u64(&mut self, addr: u64) -> Result<u64, Errno> {
        let mut bytes = [0u8; 8];
        self.copy_in(addr, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    pub fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), Errno> {
        self.copy_out(addr, &value.to_le_bytes())
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PlatformError;

    /// Records what the memory manager pushed to the platform.
    #[derive(Debug, Default)]
    struct RecordingSpace {
        pages: BTreeMap<u64, (u64, Perms)>,
    }

    impl AddressSpace for RecordingSpace {
        fn map(
            &mut self,
            va: u64,
            len: u64,
            file_offset: u64,
            perms: Perms,
        ) -> Result<(), PlatformError> {
            for page in (0..len).step_by(PAGE_SIZE as usize) {
                self.pages.insert(va + page, (file_offset + page, perms));
            }
            Ok(())
        }

        fn unmap(&mut self, va: u64, len: u64) -> Result<(), PlatformError> {
            let keys: Vec<u64> = self.pages.range(va..va + len).map(|(k, _)| *k).collect();
            for key in keys {
                self.pages.remove(&key);
            }
            Ok(())
        }

        fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
            self
        }
    }

    const RW: Perms = Perms {
        read: true,
        write: true,
        execute: false,
    };
    const RO: Perms = Perms {
        read: true,
        write: false,
        execute: false,
    };

    fn manager() -> MemoryManager {
        let memory = Arc::new(MemoryFile::new(64 << 20, 2 << 20).expect("memory file"));
        MemoryManager::new(
            memory,
            Box::new(RecordingSpace::default()),
            0x7fff_ffff_f000,
        )
    }

    fn anon(len: u64, perms: Perms) -> MmapRequest {
        MmapRequest {
            addr: 0,
            len,
            perms,
            fixed: false,
            no_replace: false,
            backing: Backing::Anonymous,
        }
    }

    #[test]
    fn big_anonymous_mappings_fault_in_2mib_pages() {
        let mut mm = manager();
        let addr = mm.mmap(anon(8 << 20, RW)).expect("mmap");
        assert_eq!(addr % HUGE_PAGE_SIZE, 0, "large mappings are 2 MiB aligned");
        mm.handle_fault(addr + 0x1234, AccessKind::Write)
            .expect("fault");
        let (va, pma) = mm.pma_at(addr + 0x1234).expect("resident");
        assert_eq!((va, pma.len), (addr, HUGE_PAGE_SIZE));
    }

    #[test]
    fn copies_fault_in_and_respect_protection() {
        let mut mm = manager();
        let addr = mm.mmap(anon(3 * PAGE_SIZE, RW)).expect("mmap");
        mm.copy_out(addr + PAGE_SIZE - 2, b"span")
            .expect("copy out across pages");
        let mut back = [0u8; 4];
        mm.copy_in(addr + PAGE_SIZE - 2, &mut back)
            .expect("copy in");
        assert_eq!(&back, b"span");
        mm.mprotect(addr, PAGE_SIZE, RO).expect("mprotect");
        assert_eq!(mm.copy_out(addr, b"x"), Err(Errno::EFAULT));
        assert_eq!(
            mm.handle_fault(addr, AccessKind::Write),
            Err(FaultError::Protection)
        );
        assert_eq!(mm.copy_in(0x1000, &mut back), Err(Errno::EFAULT));
        assert_eq!(mm.copy_in(u64::MAX - 1, &mut back), Err(Errno::EFAULT));
        assert_eq!(
            mm.handle_fault(0x1000, AccessKind::Read),
            Err(FaultError::Unmapped)
        );
    }

    #[test]
    fn munmap_middle_of_huge_page_keeps_the_rest() {
        let mut mm = manager();
        let addr = mm.mmap(anon(2 << 20, RW)).expect("mmap");
        mm.copy_out(addr, b"head").expect("touch");
        mm.copy_out(addr + (2 << 20) - 4, b"tail").expect("touch");
        mm.munmap(addr + PAGE_SIZE, PAGE_SIZE).expect("munmap");
        let mut buf = [0u8; 4];
        mm.copy_in(addr, &mut buf).expect("head still there");
        assert_eq!(&buf, b"head");
        mm.copy_in(addr + (2 << 20) - 4, &mut buf)
            .expect("tail still there");
        assert_eq!(&buf, b"tail");
        assert_eq!(mm.copy_in(addr + PAGE_SIZE, &mut buf), Err(Errno::EFAULT));
    }

    #[test]
    fn mremap_moves_contents_and_brk_grows_and_shrinks() {
        let mut mm = manager();
        let addr = mm.mmap(anon(PAGE_SIZE, RW)).expect("mmap");
        mm.copy_out(addr, b"data").expect("touch");
        let moved = mm
            .mremap(addr, PAGE_SIZE, 16 * PAGE_SIZE, true, None)
            .expect("mremap");
        let mut buf = [0u8; 4];
        mm.copy_in(moved, &mut buf).expect("moved contents");
        assert_eq!(&buf, b"data");

        mm.set_brk_start(0x60_0000);
        assert_eq!(mm.brk(0), 0x60_0000);
        assert_eq!(mm.brk(0x60_0000 + 3 * PAGE_SIZE), 0x60_0000 + 3 * PAGE_SIZE);
        mm.copy_out(0x60_0000 + 2 * PAGE_SIZE, b"heap")
            .expect("heap is writable");
        assert_eq!(mm.brk(0x60_0000), 0x60_0000);
        assert_eq!(mm.copy_out(0x60_0000, b"x"), Err(Errno::EFAULT));
    }

    #[test]
    fn bad_arguments_get_linux_errnos() {
        let mut mm = manager();
        assert_eq!(mm.mmap(anon(0, RW)), Err(Errno::EINVAL));
        assert_eq!(mm.munmap(0x1001, PAGE_SIZE), Err(Errno::EINVAL));
        assert_eq!(mm.mprotect(0x10_0000, PAGE_SIZE, RO), Err(Errno::ENOMEM));
        let huge = MmapRequest {
            len: u64::MAX - 10,
            ..anon(0, RW)
        };
        assert_eq!(mm.mmap(huge), Err(Errno::ENOMEM));
        let fixed = MmapRequest {
            addr: 0x7fff_ffff_e000,
            len: 3 * PAGE_SIZE,
            fixed: true,
            ..anon(0, RW)
        };
        assert_eq!(mm.mmap(fixed), Err(Errno::ENOMEM));
    }
}
