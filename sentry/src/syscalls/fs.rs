//! File syscalls. Only stdio exists so far; paths resolve to nothing.

use super::{copy_out, SyscallArgs, MAX_IO_CHUNK, PATH_MAX};
use crate::errno::Errno;
use crate::kernel::Task;

const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u32 = 0x1000;
const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_DUPFD_CLOEXEC: i32 = 1030;
const FD_CLOEXEC: u64 = 1;
const TCGETS: u32 = 0x5401;
const TIOCGWINSZ: u32 = 0x5413;
const IOV_MAX: u64 = 1024;

pub fn read(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    let len = (args.u64(2) as usize).min(MAX_IO_CHUNK);
    let mut buf = vec![0u8; len];
    let n = file.read(&mut buf)?;
    task.mm.copy_out(args.u64(1), &buf[..n])?;
    Ok(n as u64)
}

pub fn write(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    let len = (args.u64(2) as usize).min(MAX_IO_CHUNK);
    let mut buf = vec![0u8; len];
    task.mm.copy_in(args.u64(1), &mut buf)?;
    Ok(file.write(&buf)? as u64)
}

pub fn pread64(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    let offset = i64::try_from(args.u64(3)).map_err(|_| Errno::EINVAL)?;
    let len = (args.u64(2) as usize).min(MAX_IO_CHUNK);
    let mut buf = vec![0u8; len];
    let n = file.pread(&mut buf, offset as u64)?;
    task.mm.copy_out(args.u64(1), &buf[..n])?;
    Ok(n as u64)
}

pub fn pwrite64(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    let offset = i64::try_from(args.u64(3)).map_err(|_| Errno::EINVAL)?;
    let len = (args.u64(2) as usize).min(MAX_IO_CHUNK);
    let mut buf = vec![0u8; len];
    task.mm.copy_in(args.u64(1), &mut buf)?;
    Ok(file.pwrite(&buf, offset as u64)? as u64)
}

/// Reads an iovec array: (base, len) pairs.
fn read_iovecs(task: &mut Task, addr: u64, count: u64) -> Result<Vec<(u64, usize)>, Errno> {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 16];
    task.mm.copy_in(addr, &mut raw)?;
    let mut total = 0usize;
    let mut iovecs = Vec::with_capacity(count as usize);
    for chunk in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(chunk[0..8].try_into().map_err(|_| Errno::EFAULT)?);
        let len = u64::from_le_bytes(chunk[8..16].try_into().map_err(|_| Errno::EFAULT)?);
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= isize::MAX as usize)
            .ok_or(Errno::EINVAL)?;
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        iovecs.push((base, len));
    }
    Ok(iovecs)
}

pub fn writev(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    let iovecs = read_iovecs(task, args.u64(1), args.u64(2))?;
    // Gather into one buffer so the host sees a single write, as writev would.
    let mut buf = Vec::new();
    for (base, len) in iovecs {
        let take = len.min(MAX_IO_CHUNK - buf.len());
        let start = buf.len();
        buf.resize(start + take, 0);
        task.mm.copy_in(base, &mut buf[start..])?;
        if buf.len() == MAX_IO_CHUNK {
            break;
        }
    }
    Ok(file.write(&buf)? as u64)
}

pub fn readv(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    let iovecs = read_iovecs(task, args.u64(1), args.u64(2))?;
    let total: usize = iovecs
        .iter()
        .map(|(_, l)| *l)
        .sum::<usize>()
        .min(MAX_IO_CHUNK);
    let mut buf = vec![0u8; total];
    let n = file.read(&mut buf)?;
    let mut done = 0;
    for (base, len) in iovecs {
        if done >= n {
            break;
        }
        let take = len.min(n - done);
        task.mm.copy_out(base, &buf[done..done + take])?;
        done += take;
    }
    Ok(n as u64)
}

pub fn close(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    task.fds.close(args.i32(0))?;
    Ok(0)
}

pub fn dup(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    Ok(task.fds.install(file, 0, false)? as u64)
}

pub fn lseek(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    file.seek(args.u64(1) as i64, args.u32(2))
}

pub fn fstat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let stat = task.fds.get(args.i32(0))?.stat()?;
    copy_out(task, args.u64(1), &stat.to_bytes())?;
    Ok(0)
}

/// Reads a path argument; an empty path is ENOENT like in Linux.
fn read_path(task: &mut Task, addr: u64) -> Result<Vec<u8>, Errno> {
    task.mm.copy_in_string(addr, PATH_MAX)
}

/// No filesystem yet: every lookup fails after the path itself was checked.
fn lookup(task: &mut Task, addr: u64) -> Result<u64, Errno> {
    read_path(task, addr)?;
    Err(Errno::ENOENT)
}

pub fn stat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    lookup(task, args.u64(0))
}

pub fn newfstatat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let path = read_path(task, args.u64(1))?;
    if path.is_empty() && args.u32(3) & AT_EMPTY_PATH != 0 {
        let stat = task.fds.get(args.i32(0))?.stat()?;
        copy_out(task, args.u64(2), &stat.to_bytes())?;
        return Ok(0);
    }
    Err(Errno::ENOENT)
}

pub fn statx(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    read_path(task, args.u64(1))?;
    Err(Errno::ENOSYS)
}

pub fn open(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    lookup(task, args.u64(0))
}

pub fn openat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let dirfd = args.i32(0);
    let path = read_path(task, args.u64(1))?;
    if !path.starts_with(b"/") && dirfd != AT_FDCWD {
        task.fds.get(dirfd)?;
        return Err(Errno::ENOTDIR);
    }
    Err(Errno::ENOENT)
}

pub fn access(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    lookup(task, args.u64(0))
}

pub fn faccessat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    lookup(task, args.u64(1))
}

fn readlink_path(task: &mut Task, path: &[u8], buf: u64, size: u64) -> Result<u64, Errno> {
    if size == 0 || size > i32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    if path != b"/proc/self/exe" {
        return Err(Errno::ENOENT);
    }
    let target = task.exe_path.clone();
    // readlink truncates silently and does not NUL-terminate.
    let n = target.len().min(size as usize);
    task.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn readlink(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let path = read_path(task, args.u64(0))?;
    readlink_path(task, &path, args.u64(1), args.u64(2))
}

pub fn readlinkat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let path = read_path(task, args.u64(1))?;
    readlink_path(task, &path, args.u64(2), args.u64(3))
}

pub fn ioctl(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    match args.u32(1) {
        TCGETS => {
            let termios = file.termios()?;
            copy_out(task, args.u64(2), &termios)?;
            Ok(0)
        }
        TIOCGWINSZ => {
            let size = file.window_size()?;
            copy_out(task, args.u64(2), &size)?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

pub fn fcntl(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let fd = args.i32(0);
    match args.i32(1) {
        F_GETFD => Ok(u64::from(task.fds.close_on_exec(fd)?)),
        F_SETFD => {
            task.fds
                .set_close_on_exec(fd, args.u64(2) & FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(u64::from(task.fds.get(fd)?.status_flags())),
        cmd @ (F_DUPFD | F_DUPFD_CLOEXEC) => {
            let file = task.fds.get(fd)?;
            let min = i32::try_from(args.u64(2)).map_err(|_| Errno::EINVAL)?;
            Ok(task.fds.install(file, min, cmd == F_DUPFD_CLOEXEC)? as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn getcwd(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let cwd = b"/\0";
    if (args.u64(1) as usize) < cwd.len() {
        return Err(Errno::ERANGE);
    }
    copy_out(task, args.u64(0), cwd)?;
    Ok(cwd.len() as u64)
}
