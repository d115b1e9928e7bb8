//! The memory file: one sparse memfd that backs all application memory.
//!
//! The sentry maps the whole file once; the platform registers the same mapping
//! as guest physical memory, so a file offset is also a guest physical address.
//! Frames are handed out in 4 KiB or 2 MiB units; freed frames are punched out of
//! the file so the host reclaims them and a reused frame reads as zeros.
//!
//! A 2 MiB frame is backed by a host huge page where the host allows it
//! (`MADV_COLLAPSE`, see `back_with_huge_page`): the host mapping, and so the
//! hypervisor's, is then one 2 MiB page instead of 512 that each fault on first
//! touch (~20 µs apiece under PVM). `MADV_COLLAPSE` is honoured whatever
//! /sys/kernel/mm/transparent_hugepage/shmem_enabled says, except `deny`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use thiserror::Error;

pub const PAGE_SIZE: u64 = 4096;
pub const HUGE_PAGE_SIZE: u64 = 2 << 20;

#[derive(Debug, Error)]
pub enum MemoryFileError {
    #[error("memfd_create failed: {0}")]
    Create(std::io::Error),
    #[error("sizing the memory file to {size} bytes failed")]
    Resize { size: u64, source: std::io::Error },
    #[error("mapping the memory file failed: {0}")]
    Map(std::io::Error),
    #[error("memory file size {0:#x} is not a multiple of 2 MiB")]
    BadSize(u64),
    #[error("out of application memory")]
    OutOfMemory,
}

#[derive(Debug)]
struct FrameAllocator {
    /// Everything at or above this offset has never been handed out.
    next_unused: u64,
    end: u64,
    free_huge: Vec<u64>,
    free_small: Vec<u64>,
}

/// The memfd, its mapping in the sentry, and the frame allocator.
#[derive(Debug)]
pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    /// Offsets below this belong to the platform (page tables, descriptor tables).
    platform_reserved: u64,
    frames: Mutex<FrameAllocator>,
    /// Cleared once the host refuses `MADV_COLLAPSE` for good (old kernel, THP
    /// off or `deny`), so no further 2 MiB frame pays for the attempt.
    try_huge_pages: AtomicBool,
    huge_pages_logged: Once,
}

// SAFETY: `base` points to a MAP_SHARED mapping that lives as long as the
// MemoryFile; all accesses go through bounds-checked raw copies, never references,
// so sharing between threads cannot create aliasing references.
unsafe impl Send for MemoryFile {}
// SAFETY: see `Send`; the allocator state is behind a Mutex.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    /// Creates a sparse memory file of `size` bytes whose first
    /// `platform_reserved` bytes are kept out of the frame allocator.
    pub fn new(size: u64, platform_reserved: u64) -> Result<Self, MemoryFileError> {
        if !size.is_multiple_of(HUGE_PAGE_SIZE)
            || !platform_reserved.is_multiple_of(HUGE_PAGE_SIZE)
            || platform_reserved >= size
        {
            return Err(MemoryFileError::BadSize(size));
        }
        // SAFETY: the name is a valid NUL-terminated string; the result is checked.
        let raw = unsafe { libc::memfd_create(c"rvisor-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(MemoryFileError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let len = libc::off_t::try_from(size).map_err(|_| MemoryFileError::BadSize(size))?;
        // SAFETY: plain syscall on an fd we own; the result is checked.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len) } != 0 {
            return Err(MemoryFileError::Resize {
                size,
                source: std::io::Error::last_os_error(),
            });
        }
        let map_len = usize::try_from(size).map_err(|_| MemoryFileError::BadSize(size))?;
        let base = map_huge_aligned(&fd, map_len)?;
        Ok(Self {
            fd,
            base: base.cast(),
            size,
            platform_reserved,
            frames: Mutex::new(FrameAllocator {
                next_unused: platform_reserved,
                end: size,
                free_huge: Vec::new(),
                free_small: Vec::new(),
            }),
            try_huge_pages: AtomicBool::new(true),
            huge_pages_logged: Once::new(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn platform_reserved(&self) -> u64 {
        self.platform_reserved
    }

    /// The sentry's address of offset 0, for registering the file with a hypervisor.
    pub fn host_address(&self) -> u64 {
        self.base as u64
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Allocates a zeroed, 2 MiB-aligned 2 MiB frame, backed by a host huge
    /// page when the host allows it.
    pub fn allocate_huge(&self) -> Result<u64, MemoryFileError> {
        let offset = {
            let mut frames = self.lock_frames();
            match frames.free_huge.pop() {
                Some(offset) => offset,
                None => frames.take_unused_huge()?,
            }
        };
        self.back_with_huge_page(offset);
        Ok(offset)
    }

    /// Allocates a zeroed, 2 MiB-aligned 2 MiB frame left to ordinary 4 KiB
    /// host pages (no MADV_COLLAPSE, which costs ~5 ms here): for platform
    /// bookkeeping that is touched sparsely, such as systrap's stub areas.
    pub fn allocate_huge_sparse(&self) -> Result<u64, MemoryFileError> {
        let mut frames = self.lock_frames();
        match frames.free_huge.pop() {
            Some(offset) => Ok(offset),
            None => frames.take_unused_huge(),
        }
    }

    /// Asks the host to back the 2 MiB frame at `offset` with one huge page.
    /// Best effort: on failure the frame stays backed by 4 KiB pages.
    fn back_with_huge_page(&self, offset: u64) {
        if !self.try_huge_pages.load(Ordering::Relaxed) {
            return;
        }
        // The host refuses to collapse a range with no page at all, so give it
        // one; writing a zero keeps the frame zeroed.
        self.write_u64(offset, 0);
        // SAFETY: the range is one 2 MiB-aligned frame inside our mapping of the
        // memfd (mapped 2 MiB-aligned in `new`); MADV_COLLAPSE keeps its contents.
        let rc = unsafe {
            libc::madvise(
                self.base.add(offset as usize).cast(),
                HUGE_PAGE_SIZE as usize,
                libc::MADV_COLLAPSE,
            )
        };
        let error = (rc != 0).then(std::io::Error::last_os_error);
        self.huge_pages_logged.call_once(|| match &error {
            None => tracing::debug!("memory file: 2 MiB frames use host huge pages"),
            Some(e) => tracing::debug!(err = %e, "memory file: no host huge pages; 2 MiB frames use 4 KiB host pages"),
        });
        // EAGAIN/ENOMEM are transient (no free huge page right now); anything
        // else (EINVAL: kernel without MADV_COLLAPSE, THP off or `deny`) is not.
        if let Some(e) = error {
            if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM)) {
                self.try_huge_pages.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Allocates a zeroed 4 KiB frame.
    pub fn allocate_page(&self) -> Result<u64, MemoryFileError> {
        let mut frames = self.lock_frames();
        if let Some(offset) = frames.free_small.pop() {
            return Ok(offset);
        }
        let chunk = match frames.free_huge.pop() {
            Some(chunk) => chunk,
            None => frames.take_unused_huge()?,
        };
        // Hand out the first page now, keep the other 511 for later.
        frames.free_small.extend(
            (1..HUGE_PAGE_SIZE / PAGE_SIZE)
                .rev()
                .map(|i| chunk + i * PAGE_SIZE),
        );
        Ok(chunk)
    }

    /// Returns frames to the allocator; their contents are discarded.
    pub fn free(&self, offset: u64, len: u64) {
        if len == 0 || offset < self.platform_reserved || offset.saturating_add(len) > self.size {
            tracing::error!(
                offset,
                len,
                "free of a range outside the frame area ignored"
            );
            return;
        }
        self.discard(offset, len);
        let mut frames = self.lock_frames();
        if len == HUGE_PAGE_SIZE && offset.is_multiple_of(HUGE_PAGE_SIZE) {
            frames.free_huge.push(offset);
        } else {
            let pages = len / PAGE_SIZE;
            frames
                .free_small
                .extend((0..pages).map(|i| offset + i * PAGE_SIZE));
        }
    }

    /// Drops the host pages behind a range so it reads as zeros again.
    fn discard(&self, offset: u64, len: u64) {
        // SAFETY: plain syscall on our fd; the range is inside the file.
        let rc = unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as libc::off_t,
                len as libc::off_t,
            )
        };
        if rc != 0 {
            // Fall back to zeroing so the "reused frames are zero" rule holds.
            tracing::warn!(offset, len, err = %std::io::Error::last_os_error(), "punching a hole failed; zeroing");
            self.zero(offset, len);
        }
    }

    fn lock_frames(&self) -> std::sync::MutexGuard<'_, FrameAllocator> {
        // A poisoned lock only means another thread panicked; the free lists are
        // still consistent because every update is a single push or pop.
        self.frames
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_range(&self, offset: u64, len: usize) -> bool {
        offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= self.size)
    }

    /// Copies file bytes at `offset` into `dst`. Out-of-range reads are refused
    /// (they are sentry bugs, never guest input: callers translate addresses first).
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> bool {
        if !self.check_range(offset, dst.len()) {
            return false;
        }
        // SAFETY: the range is inside the mapping (checked above); raw copies
        // tolerate concurrent guest writes to the same bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.add(offset as usize),
                dst.as_mut_ptr(),
                dst.len(),
            )
        };
        true
    }

    /// Copies `src` into the file at `offset`.
    pub fn write(&self, offset: u64, src: &[u8]) -> bool {
        if !self.check_range(offset, src.len()) {
            return false;
        }
        // SAFETY: as in `read`.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(offset as usize), src.len())
        };
        true
    }

    pub fn zero(&self, offset: u64, len: u64) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        if !self.check_range(offset, len) {
            return false;
        }
        // SAFETY: as in `read`.
        unsafe { std::ptr::write_bytes(self.base.add(offset as usize), 0, len) };
        true
    }

    pub fn read_u64(&self, offset: u64) -> u64 {
        let mut bytes = [0u8; 8];
        self.read(offset, &mut bytes);
        u64::from_le_bytes(bytes)
    }

    pub fn write_u64(&self, offset: u64, value: u64) {
        self.write(offset, &value.to_le_bytes());
    }
}

/// Maps the whole memory file shared at a 2 MiB-aligned address, so each 2 MiB
/// frame can be one host huge page (file offset and address must be co-aligned).
fn map_huge_aligned(fd: &OwnedFd, map_len: usize) -> Result<*mut u8, MemoryFileError> {
    let huge = HUGE_PAGE_SIZE as usize;
    let reserve_len = map_len + huge;
    // SAFETY: reserves fresh address space at an address the kernel picks;
    // nothing else uses it.
    let reserved = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            reserve_len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if reserved == libc::MAP_FAILED {
        return Err(MemoryFileError::Map(std::io::Error::last_os_error()));
    }
    let start = reserved as usize;
    let aligned = (start + huge - 1) & !(huge - 1);
    // SAFETY: replaces part of the reservation made above (MAP_FIXED inside our
    // own range) with a shared mapping of the whole file; MAP_NORESERVE because
    // the file is sparse.
    let base = unsafe {
        libc::mmap(
            aligned as *mut libc::c_void,
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_NORESERVE | libc::MAP_FIXED,
            fd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        let error = std::io::Error::last_os_error();
        // SAFETY: releases the reservation made above, which nothing uses.
        unsafe { libc::munmap(reserved, reserve_len) };
        return Err(MemoryFileError::Map(error));
    }
    // Give back the unused reservation before and after the file mapping.
    let tail = aligned + map_len;
    // SAFETY: both ranges are leftovers of our own PROT_NONE reservation,
    // outside the file mapping; munmap of an empty range is skipped.
    unsafe {
        if aligned > start {
            libc::munmap(reserved, aligned - start);
        }
        if start + reserve_len > tail {
            libc::munmap(tail as *mut libc::c_void, start + reserve_len - tail);
        }
    }
    Ok(base.cast())
}

impl FrameAllocator {
    fn take_unused_huge(&mut self) -> Result<u64, MemoryFileError> {
        if self.next_unused + HUGE_PAGE_SIZE > self.end {
            return Err(MemoryFileError::OutOfMemory);
        }
        let offset = self.next_unused;
        self.next_unused += HUGE_PAGE_SIZE;
        Ok(offset)
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping the region mapped in `new`; nothing refers to it any more.
        unsafe { libc::munmap(self.base.cast(), self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_zero_after_reuse() {
        let file = MemoryFile::new(8 * HUGE_PAGE_SIZE, 2 * HUGE_PAGE_SIZE).expect("memfd");
        let page = file.allocate_page().expect("page");
        assert!(page >= 2 * HUGE_PAGE_SIZE);
        file.write_u64(page, 0xdead_beef);
        file.free(page, PAGE_SIZE);
        let again = file.allocate_page().expect("page");
        assert_eq!(again, page);
        assert_eq!(file.read_u64(again), 0);
        let huge = file.allocate_huge().expect("huge");
        assert_eq!(huge % HUGE_PAGE_SIZE, 0);
        assert!(!file.read(file.size() - 4, &mut [0u8; 8]));
    }

    #[test]
    fn huge_frames_are_aligned_zeroed_and_keep_data() {
        let file = MemoryFile::new(8 * HUGE_PAGE_SIZE, 2 * HUGE_PAGE_SIZE).expect("memfd");
        assert_eq!(file.host_address() % HUGE_PAGE_SIZE, 0);
        let huge = file.allocate_huge().expect("huge");
        let last = huge + HUGE_PAGE_SIZE - 8;
        assert_eq!((file.read_u64(huge), file.read_u64(last)), (0, 0));
        file.write_u64(huge, 1);
        file.write_u64(last, 2);
        assert_eq!((file.read_u64(huge), file.read_u64(last)), (1, 2));
        // Part of a (possibly huge-page-backed) frame freed, then all of it.
        file.free(huge + PAGE_SIZE, PAGE_SIZE);
        assert_eq!(file.read_u64(huge), 1);
        file.free(huge, PAGE_SIZE);
        file.free(huge + 2 * PAGE_SIZE, HUGE_PAGE_SIZE - 2 * PAGE_SIZE);
        assert_eq!((file.read_u64(huge), file.read_u64(last)), (0, 0));
        let again = file.allocate_huge().expect("huge");
        assert_eq!(file.read_u64(again + 4 * PAGE_SIZE), 0);
    }
}
