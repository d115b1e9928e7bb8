//! File syscalls: stdio, and the gofer-served root (read-only for now).

use std::sync::Arc;

use super::{copy_out, SyscallArgs, MAX_IO_CHUNK, PATH_MAX};
use crate::errno::Errno;
use crate::kernel::Task;
use crate::vfs::gofer::{path_string, PathComponents, Resolved};
use crate::vfs::{File, GoferFs, Stat};

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

pub fn dup2(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let (old, new) = (args.i32(0), args.i32(1));
    let file = task.fds.get(old)?;
    if old != new {
        task.fds.install_at(new, file, false)?;
    }
    Ok(new as u64)
}

pub fn dup3(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let (old, new, flags) = (args.i32(0), args.i32(1), args.u32(2));
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    let file = task.fds.get(old)?;
    task.fds.install_at(new, file, flags & O_CLOEXEC != 0)?;
    Ok(new as u64)
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

/// Reads a path argument.
fn read_path(task: &mut Task, addr: u64) -> Result<Vec<u8>, Errno> {
    task.mm.copy_in_string(addr, PATH_MAX)
}

const O_ACCMODE: u32 = 0o3;
const O_RDONLY: u32 = 0o0;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_NONBLOCK: u32 = 0o4000;
const O_DIRECTORY: u32 = 0o200000;
const O_NOFOLLOW: u32 = 0o400000;
const O_CLOEXEC: u32 = 0o2000000;
const O_PATH: u32 = 0o10000000;
const O_TMPFILE: u32 = 0o20000000;
const O_LARGEFILE: u32 = 0o100000;
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
const AT_EACCESS: u32 = 0x200;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const F_OK: u32 = 0;
const X_OK: u32 = 1;
const W_OK: u32 = 2;
const R_OK: u32 = 4;

/// The directory a relative path starts from: the cwd, or `dirfd`'s path.
fn start_dir(task: &Task, dirfd: i32, path: &[u8]) -> Result<PathComponents, Errno> {
    if path.starts_with(b"/") || dirfd == AT_FDCWD {
        return Ok(task.cwd.clone());
    }
    match &*task.fds.get(dirfd)? {
        File::Gofer(dir) if dir.is_dir() => Ok(dir.path().to_vec()),
        _ => Err(Errno::ENOTDIR),
    }
}

/// Resolves `path` as the application named it.
fn resolve(
    task: &mut Task,
    dirfd: i32,
    path: &[u8],
    follow: bool,
) -> Result<(Arc<GoferFs>, Resolved), Errno> {
    let root = Arc::clone(task.kernel.root()?);
    let start = start_dir(task, dirfd, path)?;
    let resolved = root.resolve(&start, path, follow)?;
    Ok((root, resolved))
}

/// The stat of a path, or of `dirfd` itself with AT_EMPTY_PATH and "".
fn stat_at(task: &mut Task, dirfd: i32, path_addr: u64, flags: u32) -> Result<Stat, Errno> {
    if flags
        & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 /* AT_NO_AUTOMOUNT */ | 0x6000/* AT_STATX_SYNC_TYPE */)
        != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = read_path(task, path_addr)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            let root = Arc::clone(task.kernel.root()?);
            let cwd = task.cwd.clone();
            let resolved = root.resolve(&cwd, b".", true)?;
            return root.stat(&resolved.fid);
        }
        return task.fds.get(dirfd)?.stat();
    }
    let (root, resolved) = resolve(task, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    root.stat(&resolved.fid)
}

pub fn stat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let st = stat_at(task, AT_FDCWD, args.u64(0), 0)?;
    copy_out(task, args.u64(1), &st.to_bytes())?;
    Ok(0)
}

pub fn lstat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let st = stat_at(task, AT_FDCWD, args.u64(0), AT_SYMLINK_NOFOLLOW)?;
    copy_out(task, args.u64(1), &st.to_bytes())?;
    Ok(0)
}

pub fn newfstatat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let st = stat_at(task, args.i32(0), args.u64(1), args.u32(3))?;
    copy_out(task, args.u64(2), &st.to_bytes())?;
    Ok(0)
}

pub fn statx(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    const STATX_RESERVED: u32 = 0x8000_0000;
    if args.u32(3) & STATX_RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(task, args.i32(0), args.u64(1), args.u32(2))?;
    copy_out(task, args.u64(4), &st.to_statx())?;
    Ok(0)
}

fn open_at(task: &mut Task, dirfd: i32, path_addr: u64, flags: u32) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    if flags & O_TMPFILE == O_TMPFILE {
        // An unnamed file needs a writable filesystem.
        return Err(Errno::EROFS);
    }
    let follow = flags & O_NOFOLLOW == 0;
    let accmode = flags & O_ACCMODE;
    let (root, resolved) = match resolve(task, dirfd, &path, follow) {
        Ok(r) => r,
        Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
            // The name is missing: creating it needs a writable filesystem
            // if its directory exists.
            let parent = match path.iter().rposition(|&b| b == b'/') {
                Some(0) => b"/".to_vec(),
                Some(i) => path[..i].to_vec(),
                None => b".".to_vec(),
            };
            resolve(task, dirfd, &parent, true)?;
            return Err(Errno::EROFS);
        }
        Err(e) => return Err(e),
    };
    if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
        return Err(Errno::EEXIST);
    }
    let is_dir = resolved.qid.is_dir();
    if flags & O_PATH == 0 {
        if resolved.qid.is_symlink() {
            return Err(Errno::ELOOP);
        }
        if is_dir && (accmode != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0) {
            return Err(Errno::EISDIR);
        }
        if accmode != O_RDONLY || flags & O_TRUNC != 0 {
            return Err(Errno::EROFS);
        }
    }
    if flags & O_DIRECTORY != 0 && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    let status = O_LARGEFILE | (flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH));
    let file = if flags & O_PATH != 0 {
        root.open_path(resolved, status)
    } else {
        root.open(resolved, status)?
    };
    let fd = task
        .fds
        .install(Arc::new(File::Gofer(file)), 0, flags & O_CLOEXEC != 0)?;
    Ok(fd as u64)
}

pub fn open(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    open_at(task, AT_FDCWD, args.u64(0), args.u32(1))
}

pub fn openat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    open_at(task, args.i32(0), args.u64(1), args.u32(2))
}

/// Whether the task's credentials allow `mode` (R_OK/W_OK/X_OK) on a file.
/// The filesystem is read-only, so W_OK fails with EROFS.
fn check_access(creds: &crate::kernel::Credentials, st: &Stat, mode: u32) -> Result<(), Errno> {
    if mode & W_OK != 0 {
        return Err(Errno::EROFS);
    }
    let is_dir = st.mode & S_IFMT == S_IFDIR;
    let bits = if creds.uid == 0 {
        // Root reads anything and executes what has any execute bit.
        let x = if is_dir || st.mode & 0o111 != 0 {
            X_OK
        } else {
            0
        };
        R_OK | x
    } else if creds.uid == st.uid {
        (st.mode >> 6) & 7
    } else if creds.gid == st.gid {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    };
    if mode & !bits & (R_OK | X_OK) != 0 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

fn access_at(
    task: &mut Task,
    dirfd: i32,
    path_addr: u64,
    mode: u32,
    flags: u32,
) -> Result<u64, Errno> {
    if mode & !(R_OK | W_OK | X_OK) != 0
        || flags & !(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH) != 0
    {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(task, dirfd, path_addr, flags & !AT_EACCESS)?;
    if mode == F_OK {
        return Ok(0);
    }
    check_access(&task.creds, &st, mode)?;
    Ok(0)
}

pub fn access(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    access_at(task, AT_FDCWD, args.u64(0), args.u32(1), 0)
}

pub fn faccessat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    access_at(task, args.i32(0), args.u64(1), args.u32(2), 0)
}

pub fn faccessat2(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    access_at(task, args.i32(0), args.u64(1), args.u32(2), args.u32(3))
}

fn readlink_at(
    task: &mut Task,
    dirfd: i32,
    path_addr: u64,
    buf: u64,
    size: u64,
) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    if size == 0 || size > i32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let target = if path == b"/proc/self/exe" {
        task.exe_path.clone()
    } else {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let (root, resolved) = resolve(task, dirfd, &path, false)?;
        root.readlink(&resolved)?
    };
    // readlink truncates silently and does not NUL-terminate.
    let n = target.len().min(size as usize);
    task.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn readlink(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    readlink_at(task, AT_FDCWD, args.u64(0), args.u64(1), args.u64(2))
}

pub fn readlinkat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    readlink_at(task, args.i32(0), args.u64(1), args.u64(2), args.u64(3))
}

pub fn getdents64(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    let max = (args.u64(2) as usize).min(MAX_IO_CHUNK);
    let data = match &*file {
        File::Gofer(f) => f.getdents64(max)?,
        File::Stdio(_) => return Err(Errno::ENOTDIR),
    };
    task.mm.copy_out(args.u64(1), &data)?;
    Ok(data.len() as u64)
}

pub fn chdir(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let path = read_path(task, args.u64(0))?;
    let (root, resolved) = resolve(task, AT_FDCWD, &path, true)?;
    if !resolved.qid.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    check_access(&task.creds, &root.stat(&resolved.fid)?, X_OK)?;
    task.cwd = resolved.path;
    Ok(0)
}

pub fn fchdir(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    match &*file {
        File::Gofer(dir) if dir.is_dir() => {
            task.cwd = dir.path().to_vec();
            Ok(0)
        }
        _ => Err(Errno::ENOTDIR),
    }
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
    let mut cwd = path_string(&task.cwd);
    cwd.push(0);
    if (args.u64(1) as usize) < cwd.len() {
        return Err(Errno::ERANGE);
    }
    copy_out(task, args.u64(0), &cwd)?;
    Ok(cwd.len() as u64)
}

// ---- Changes to the tree. The root is read-only until the overlay exists:
// each call checks its paths as Linux would (ENOENT, ENOTDIR, EEXIST, ELOOP
// come first), then fails with EROFS.

/// A path naming an existing file to change.
fn erofs_existing(task: &mut Task, dirfd: i32, path_addr: u64, follow: bool) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    resolve(task, dirfd, &path, follow)?;
    Err(Errno::EROFS)
}

/// A path naming an entry to create: EEXIST if it exists, ENOENT if its
/// directory does not.
fn erofs_create(task: &mut Task, dirfd: i32, path_addr: u64) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    match resolve(task, dirfd, &path, false) {
        Ok(_) => Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {
            let trimmed = path.strip_suffix(b"/").unwrap_or(&path);
            let parent = match trimmed.iter().rposition(|&b| b == b'/') {
                Some(0) => b"/".to_vec(),
                Some(i) => trimmed[..i].to_vec(),
                None => b".".to_vec(),
            };
            let (_, dir) = resolve(task, dirfd, &parent, true)?;
            if !dir.qid.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            Err(Errno::EROFS)
        }
        Err(e) => Err(e),
    }
}

pub fn creat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    const O_WRONLY: u32 = 1;
    open_at(task, AT_FDCWD, args.u64(0), O_CREAT | O_WRONLY | O_TRUNC)
}

pub fn truncate_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if (args.u64(1) as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(task, args.u64(0))?;
    let (_, resolved) = resolve(task, AT_FDCWD, &path, true)?;
    if resolved.qid.is_dir() {
        return Err(Errno::EISDIR);
    }
    Err(Errno::EROFS)
}

pub fn mkdir_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_create(task, AT_FDCWD, args.u64(0))
}

pub fn mkdirat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_create(task, args.i32(0), args.u64(1))
}

pub fn symlink_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    read_path(task, args.u64(0))?;
    erofs_create(task, AT_FDCWD, args.u64(1))
}

pub fn symlinkat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    read_path(task, args.u64(0))?;
    erofs_create(task, args.i32(1), args.u64(2))
}

pub fn unlink_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_existing(task, AT_FDCWD, args.u64(0), false)
}

pub fn unlinkat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    const AT_REMOVEDIR: u32 = 0x200;
    if args.u32(2) & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    erofs_existing(task, args.i32(0), args.u64(1), false)
}

pub fn rename_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    read_path(task, args.u64(1))?;
    erofs_existing(task, AT_FDCWD, args.u64(0), false)
}

pub fn renameat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    read_path(task, args.u64(3))?;
    erofs_existing(task, args.i32(0), args.u64(1), false)
}

pub fn link_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let old = read_path(task, args.u64(0))?;
    resolve(task, AT_FDCWD, &old, false)?;
    erofs_create(task, AT_FDCWD, args.u64(1))
}

pub fn linkat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    const AT_SYMLINK_FOLLOW: u32 = 0x400;
    if args.u32(4) & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = read_path(task, args.u64(1))?;
    resolve(
        task,
        args.i32(0),
        &old,
        args.u32(4) & AT_SYMLINK_FOLLOW != 0,
    )?;
    erofs_create(task, args.i32(2), args.u64(3))
}

pub fn chmod_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_existing(task, AT_FDCWD, args.u64(0), true)
}

pub fn lchown_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_existing(task, AT_FDCWD, args.u64(0), false)
}

pub fn fchmodat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_existing(
        task,
        args.i32(0),
        args.u64(1),
        args.u32(3) & AT_SYMLINK_NOFOLLOW == 0,
    )
}

pub fn fchownat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.u32(4) & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    erofs_existing(
        task,
        args.i32(0),
        args.u64(1),
        args.u32(4) & AT_SYMLINK_NOFOLLOW == 0,
    )
}

pub fn futimesat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.u64(1) == 0 {
        return match &*task.fds.get(args.i32(0))? {
            File::Gofer(_) => Err(Errno::EROFS),
            File::Stdio(_) => Err(Errno::EPERM),
        };
    }
    erofs_existing(task, args.i32(0), args.u64(1), true)
}

pub fn utimensat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.u64(1) == 0 {
        // utimensat(fd, NULL, ...): the open file itself.
        return match &*task.fds.get(args.i32(0))? {
            File::Gofer(_) => Err(Errno::EROFS),
            // The sentry's stdio is not the application's to retime.
            File::Stdio(_) => Err(Errno::EPERM),
        };
    }
    erofs_existing(
        task,
        args.i32(0),
        args.u64(1),
        args.u32(3) & AT_SYMLINK_NOFOLLOW == 0,
    )
}

// ---- Waiting for readiness.

const POLLNVAL: i16 = 0x20;
/// How long one host wait lasts before the task checks for a kill.
const POLL_SLICE: std::time::Duration = std::time::Duration::from_millis(50);

/// Serves poll/ppoll: `timeout` None waits forever.
fn poll_fds(
    task: &mut Task,
    addr: u64,
    nfds: u64,
    timeout: Option<std::time::Duration>,
) -> Result<u64, Errno> {
    use std::time::{Duration, Instant};
    let limit = task.rlimits[7].soft.min(crate::vfs::MAX_FDS as u64);
    if nfds > limit {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; nfds as usize * 8];
    task.mm.copy_in(addr, &mut raw)?;
    let entries: Vec<(i32, i16)> = raw
        .chunks_exact(8)
        .map(|c| {
            (
                i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                i16::from_le_bytes([c[4], c[5]]),
            )
        })
        .collect();
    let files: Vec<Option<Arc<File>>> = entries
        .iter()
        .map(|&(fd, _)| if fd < 0 { None } else { task.fds.get(fd).ok() })
        .collect();
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let mut ready = 0u64;
        let mut revents = vec![0i16; entries.len()];
        for (i, (&(fd, events), file)) in entries.iter().zip(&files).enumerate() {
            revents[i] = match (fd, file) {
                (fd, _) if fd < 0 => 0,
                (_, None) => POLLNVAL,
                // POLLERR and POLLHUP are always reported, asked for or not.
                (_, Some(f)) => f.poll(events | 0x18, Duration::ZERO)? & (events | 0x18),
            };
            if revents[i] != 0 {
                ready += 1;
            }
        }
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if ready > 0 || remaining == Some(Duration::ZERO) || timeout == Some(Duration::ZERO) {
            for (i, r) in revents.iter().enumerate() {
                raw[i * 8 + 6..i * 8 + 8].copy_from_slice(&r.to_le_bytes());
            }
            task.mm.copy_out(addr, &raw)?;
            return Ok(ready);
        }
        if task.kernel.pending_kill().is_some() {
            return Err(Errno::EINTR);
        }
        let slice = remaining.map_or(POLL_SLICE, |r| r.min(POLL_SLICE));
        // Wait in the host on the first stdio stream asked about (the others
        // are checked again at the next slice); with none, only a kill or
        // the timeout can end the wait.
        let host = entries.iter().zip(&files).find_map(|(&(_, events), f)| {
            f.as_ref()
                .filter(|f| f.waits_in_host())
                .map(|f| (Arc::clone(f), events))
        });
        match host {
            Some((file, events)) => {
                file.poll(events | 0x18, slice)?;
            }
            None => {
                if !task.kernel.sleep(slice) {
                    return Err(Errno::EINTR);
                }
            }
        }
    }
}

pub fn poll(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let ms = args.i32(2);
    let timeout = (ms >= 0).then(|| std::time::Duration::from_millis(ms as u64));
    poll_fds(task, args.u64(0), args.u64(1), timeout)
}

pub fn ppoll(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let timeout = if args.u64(2) == 0 {
        None
    } else {
        let mut b = [0u8; 16];
        task.mm.copy_in(args.u64(2), &mut b)?;
        let sec = i64::from_le_bytes(b[0..8].try_into().map_err(|_| Errno::EFAULT)?);
        let nsec = i64::from_le_bytes(b[8..16].try_into().map_err(|_| Errno::EFAULT)?);
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Some(std::time::Duration::new(sec as u64, nsec as u32))
    };
    // The signal mask (argument 3) matters once signals are delivered.
    poll_fds(task, args.u64(0), args.u64(1), timeout)
}
