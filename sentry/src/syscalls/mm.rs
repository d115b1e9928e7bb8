//! Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise.

use super::SyscallArgs;
use crate::errno::Errno;
use crate::kernel::Task;
use crate::mm::memfile::PAGE_SIZE;
use crate::mm::vma::Backing;
use crate::mm::MmapRequest;
use crate::platform::Perms;
use crate::vfs::File;

const O_PATH: u32 = 0o10000000;

const PROT_READ: u64 = 0x1;
const PROT_WRITE: u64 = 0x2;
const PROT_EXEC: u64 = 0x4;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

const MADV_DONTNEED: i32 = 4;
const MADV_FREE: i32 = 8;

fn perms_from_prot(prot: u64) -> Result<Perms, Errno> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Perms {
        read: prot & PROT_READ != 0,
        write: prot & PROT_WRITE != 0,
        execute: prot & PROT_EXEC != 0,
    })
}

pub fn brk(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    Ok(task.mm.brk(args.u64(0)))
}

pub fn mmap(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let (addr, len, prot, flags, fd, offset) = (
        args.u64(0),
        args.u64(1),
        args.u64(2),
        args.u64(3),
        args.i32(4),
        args.u64(5),
    );
    let perms = perms_from_prot(prot)?;
    match flags & MAP_TYPE {
        MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE => {}
        _ => return Err(Errno::EINVAL),
    }
    if offset % PAGE_SIZE != 0 || len == 0 {
        return Err(Errno::EINVAL);
    }
    let backing = if flags & MAP_ANONYMOUS == 0 {
        file_backing(task, fd, offset, flags & MAP_TYPE != MAP_PRIVATE, perms)?
    } else {
        // Without fork, shared anonymous memory behaves exactly like private.
        Backing::Anonymous
    };
    let request = MmapRequest {
        addr,
        len,
        perms,
        fixed: flags & MAP_FIXED != 0,
        no_replace: flags & MAP_FIXED_NOREPLACE != 0,
        backing,
    };
    task.mm.mmap(request)
}

/// A private copy of a file's contents. The root is read-only, so a
/// shared mapping is the same as a private one unless it asks to write.
fn file_backing(
    task: &mut Task,
    fd: i32,
    offset: u64,
    shared: bool,
    perms: Perms,
) -> Result<Backing, Errno> {
    let file = task.fds.get(fd)?;
    match &*file {
        File::Gofer(f) => {
            if f.status_flags() & O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            if shared && perms.write {
                // Opened read-only: a writable shared mapping is refused.
                return Err(Errno::EACCES);
            }
            if f.is_dir() {
                return Err(Errno::ENODEV);
            }
            Ok(Backing::File {
                data: f.contents()?,
                offset,
            })
        }
        File::Mem(f) => {
            if f.status_flags & O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            if shared && perms.write {
                // Shared writable mappings of overlay files are not served.
                return Err(Errno::EACCES);
            }
            Ok(Backing::File {
                data: f.contents()?,
                offset,
            })
        }
        File::OverlayDir(_) => Err(Errno::ENODEV),
        File::Stdio(_) => Err(Errno::ENODEV),
        // /dev/zero maps anonymous memory (shared is the same as private
        // without fork); no other device maps.
        File::Dev(d) => {
            if d.status_flags & O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            if d.node != Some(crate::vfs::dev::Device::Zero) {
                return Err(Errno::ENODEV);
            }
            let accmode = d.status_flags & 0o3;
            if accmode == 1 || (shared && perms.write && accmode != 2) {
                return Err(Errno::EACCES);
            }
            Ok(Backing::Anonymous)
        }
    }
}

pub fn munmap(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    task.mm.munmap(args.u64(0), args.u64(1))?;
    Ok(0)
}

pub fn mprotect(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let perms = perms_from_prot(args.u64(2))?;
    task.mm.mprotect(args.u64(0), args.u64(1), perms)?;
    Ok(0)
}

pub fn mremap(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let flags = args.u64(3);
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0 {
        return Err(Errno::EINVAL);
    }
    let fixed = (flags & MREMAP_FIXED != 0).then_some(args.u64(4));
    task.mm.mremap(
        args.u64(0),
        args.u64(1),
        args.u64(2),
        flags & MREMAP_MAYMOVE != 0,
        fixed,
    )
}

pub fn madvise(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let (addr, len) = (args.u64(0), args.u64(1));
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    match args.i32(2) {
        MADV_DONTNEED | MADV_FREE => task.mm.discard(addr, len)?,
        _ => {}
    }
    Ok(0)
}
