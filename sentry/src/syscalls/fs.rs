//! File syscalls: stdio, and the mounted filesystems (the gofer-served
//! root, read-only or under the in-memory overlay, and volumes).

use std::sync::Arc;

use super::{copy_out, SyscallArgs, MAX_IO_CHUNK, PATH_MAX};
use crate::errno::Errno;
use crate::kernel::Task;
use crate::vfs::gofer::{path_string, PathComponents};
use crate::vfs::mount::{Change, Resolved};
use crate::vfs::overlay::{Kind, Owner};
use crate::vfs::{File, Stat, Timespec, Vfs};

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
    match task.fds.get(dirfd)?.path() {
        Some((path, true)) => Ok(path.to_vec()),
        _ => Err(Errno::ENOTDIR),
    }
}

/// Resolves `path` as the application named it.
fn resolve(
    task: &mut Task,
    dirfd: i32,
    path: &[u8],
    follow: bool,
) -> Result<(Arc<Vfs>, Resolved), Errno> {
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
            return root.stat(&resolved.path);
        }
        return task.fds.get(dirfd)?.stat();
    }
    let (root, resolved) = resolve(task, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    root.stat(&resolved.path)
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

fn owner(task: &Task) -> Owner {
    Owner {
        uid: task.creds.uid,
        gid: task.creds.gid,
    }
}

/// Write (and search) permission on a directory, to add or remove names.
fn check_dir_write(task: &Task, root: &Vfs, dir: &Resolved) -> Result<(), Errno> {
    let st = root.stat(&dir.path)?;
    check_access(&task.creds, &st, W_OK | X_OK, false)
}

fn open_at(
    task: &mut Task,
    dirfd: i32,
    path_addr: u64,
    flags: u32,
    mode: u32,
) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    let root = Arc::clone(task.kernel.root()?);
    let start = start_dir(task, dirfd, &path)?;
    if flags & O_TMPFILE == O_TMPFILE {
        // An unnamed file needs a writable filesystem, and the overlay
        // does not make them.
        let dir = root.resolve(&start, &path, true)?;
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        return Err(if root.read_only(&dir.path) {
            Errno::EROFS
        } else {
            Errno::EOPNOTSUPP
        });
    }
    let excl = flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
    let follow = flags & O_NOFOLLOW == 0 && !excl;
    let accmode = flags & O_ACCMODE;
    if accmode == O_ACCMODE && flags & O_PATH == 0 {
        return Err(Errno::EINVAL);
    }
    let status = O_LARGEFILE | (flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH));
    let file = match root.resolve(&start, &path, follow) {
        Ok(resolved) => {
            if excl {
                return Err(Errno::EEXIST);
            }
            let is_dir = resolved.is_dir();
            if flags & O_PATH == 0 {
                if resolved.kind == Kind::Symlink {
                    return Err(Errno::ELOOP);
                }
                if is_dir && (accmode != O_RDONLY || flags & (O_CREAT | O_TRUNC) != 0) {
                    return Err(Errno::EISDIR);
                }
                let writes = accmode != O_RDONLY || flags & O_TRUNC != 0;
                if writes && root.read_only(&resolved.path) {
                    return Err(Errno::EROFS);
                }
                let st = root.stat(&resolved.path)?;
                let mut want = 0;
                if accmode != 1 {
                    want |= R_OK;
                }
                if writes {
                    want |= W_OK;
                }
                check_access(&task.creds, &st, want, false)?;
            }
            if flags & O_DIRECTORY != 0 && !is_dir {
                return Err(Errno::ENOTDIR);
            }
            root.open(&resolved, flags, status)?
        }
        Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
            let (dir, name) = root.resolve_parent(&start, &path)?;
            if path.ends_with(b"/") {
                return Err(Errno::EISDIR);
            }
            if name == b"." || name == b".." {
                return Err(Errno::EISDIR);
            }
            let mut abs = dir.path.clone();
            abs.push(name.clone());
            if root.lookup(&abs)?.is_some() {
                // A dangling symlink: creating its target is not served.
                return Err(Errno::ENOENT);
            }
            if root.read_only(&abs) {
                return Err(Errno::EROFS);
            }
            check_dir_write(task, &root, &dir)?;
            root.create(
                &dir,
                &name,
                flags,
                mode & !task.umask & 0o7777,
                owner(task),
                status,
            )?
        }
        Err(e) => return Err(e),
    };
    let fd = task
        .fds
        .install(Arc::new(file), 0, flags & O_CLOEXEC != 0)?;
    Ok(fd as u64)
}

pub fn open(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    open_at(task, AT_FDCWD, args.u64(0), args.u32(1), args.u32(2))
}

pub fn openat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    open_at(task, args.i32(0), args.u64(1), args.u32(2), args.u32(3))
}

/// Whether the task's credentials allow `mode` (R_OK/W_OK/X_OK) on a file;
/// W_OK on a read-only filesystem fails with EROFS.
fn check_access(
    creds: &crate::kernel::Credentials,
    st: &Stat,
    mode: u32,
    read_only: bool,
) -> Result<(), Errno> {
    if mode & W_OK != 0 && read_only {
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
        R_OK | W_OK | x
    } else if creds.uid == st.uid {
        (st.mode >> 6) & 7
    } else if creds.gid == st.gid {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    };
    if mode & !bits & (R_OK | W_OK | X_OK) != 0 {
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
    let path = read_path(task, path_addr)?;
    let st = stat_at(task, dirfd, path_addr, flags & !AT_EACCESS)?;
    if mode == F_OK {
        return Ok(0);
    }
    let read_only = if path.is_empty() {
        true
    } else {
        let (root, resolved) = resolve(task, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        root.read_only(&resolved.path)
    };
    check_access(&task.creds, &st, mode, read_only)?;
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
        File::OverlayDir(d) => d.getdents64(max)?,
        File::Dev(d) => d.getdents64(max)?,
        File::Stdio(_) | File::Mem(_) => return Err(Errno::ENOTDIR),
    };
    task.mm.copy_out(args.u64(1), &data)?;
    Ok(data.len() as u64)
}

pub fn chdir(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let path = read_path(task, args.u64(0))?;
    let (root, resolved) = resolve(task, AT_FDCWD, &path, true)?;
    if !resolved.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    check_access(&task.creds, &root.stat(&resolved.path)?, X_OK, false)?;
    task.cwd = resolved.path;
    Ok(0)
}

pub fn fchdir(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let file = task.fds.get(args.i32(0))?;
    match file.path() {
        Some((path, true)) => {
            task.cwd = path.to_vec();
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

// ---- Changes to the tree. Paths are checked as Linux would (ENOENT,
// ENOTDIR, EEXIST, ELOOP come first); a read-only mount then fails with
// EROFS. Owners, hard links and device nodes are not served on writable
// mounts yet (EPERM).

/// EROFS on a read-only mount, EPERM (not served) on a writable one.
fn unsupported_change(root: &Vfs, abs: &[Vec<u8>]) -> Errno {
    if root.read_only(abs) {
        Errno::EROFS
    } else {
        Errno::EPERM
    }
}

/// A path naming an existing file to change in a way not served.
fn erofs_existing(task: &mut Task, dirfd: i32, path_addr: u64, follow: bool) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    let (root, resolved) = resolve(task, dirfd, &path, follow)?;
    Err(unsupported_change(&root, &resolved.path))
}

/// The directory and name of an entry to create: EEXIST if it exists,
/// ENOENT if its directory does not, EROFS on a read-only mount.
fn new_entry(
    task: &mut Task,
    dirfd: i32,
    path: &[u8],
) -> Result<(Arc<Vfs>, Resolved, PathComponents), Errno> {
    let root = Arc::clone(task.kernel.root()?);
    let start = start_dir(task, dirfd, path)?;
    let (dir, name) = root.resolve_parent(&start, path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    let mut abs = dir.path.clone();
    abs.push(name);
    if root.lookup(&abs)?.is_some() {
        return Err(Errno::EEXIST);
    }
    if root.read_only(&abs) {
        return Err(Errno::EROFS);
    }
    check_dir_write(task, &root, &dir)?;
    Ok((root, dir, abs))
}

/// An entry to create in a way not served (mknod, link).
fn erofs_create(task: &mut Task, dirfd: i32, path_addr: u64) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    let (root, _, abs) = new_entry(task, dirfd, &path)?;
    Err(unsupported_change(&root, &abs))
}

/// An existing entry to remove or rename: its directory must be writable.
fn existing_entry(
    task: &mut Task,
    dirfd: i32,
    path: &[u8],
) -> Result<(Arc<Vfs>, PathComponents, Kind, Vec<u8>), Errno> {
    let root = Arc::clone(task.kernel.root()?);
    let start = start_dir(task, dirfd, path)?;
    let (dir, name) = root.resolve_parent(&start, path)?;
    let mut abs = dir.path.clone();
    abs.push(name.clone());
    let kind = match name.as_slice() {
        b"." | b".." => Kind::Dir,
        _ => root.lookup(&abs)?.ok_or(Errno::ENOENT)?,
    };
    if root.read_only(&abs) {
        return Err(Errno::EROFS);
    }
    check_dir_write(task, &root, &dir)?;
    Ok((root, abs, kind, name))
}

pub fn creat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    const O_WRONLY: u32 = 1;
    open_at(
        task,
        AT_FDCWD,
        args.u64(0),
        O_CREAT | O_WRONLY | O_TRUNC,
        args.u32(1),
    )
}

/// Changes what `path` names (following symlinks when `follow`).
fn change_at(
    task: &mut Task,
    dirfd: i32,
    path: &[u8],
    follow: bool,
    change: Change,
) -> Result<u64, Errno> {
    let (root, resolved) = resolve(task, dirfd, path, follow)?;
    if root.read_only(&resolved.path) {
        return Err(Errno::EROFS);
    }
    let st = root.stat(&resolved.path)?;
    match change {
        Change::Size(_) => {
            if resolved.is_dir() {
                return Err(Errno::EISDIR);
            }
            check_access(&task.creds, &st, W_OK, false)?;
        }
        // Only the owner (or root) changes modes and sets explicit times.
        _ if task.creds.uid != 0 && task.creds.uid != st.uid => return Err(Errno::EPERM),
        _ => {}
    }
    root.change(&resolved.path, change)?;
    Ok(0)
}

/// Changes an open file (ftruncate, fchmod, futimens).
fn change_fd(task: &mut Task, fd: i32, change: Change) -> Result<u64, Errno> {
    let file = task.fds.get(fd)?;
    match (&*file, change) {
        (File::Stdio(_), _) => Err(Errno::EINVAL),
        (File::Mem(f), Change::Size(len)) => {
            if !f.is_writable() {
                return Err(Errno::EINVAL);
            }
            crate::vfs::overlay::truncate(&f.inode, len)?;
            Ok(0)
        }
        (File::Gofer(f), Change::Size(_)) if !f.is_writable() => {
            let (path, _) = file.path().ok_or(Errno::EINVAL)?;
            if task.kernel.root()?.read_only(path) {
                Err(Errno::EROFS)
            } else {
                Err(Errno::EINVAL)
            }
        }
        (File::Gofer(f), change) if f.is_writable() => {
            f.setattr(crate::vfs::mount::gofer_setattr(change))?;
            Ok(0)
        }
        (File::OverlayDir(_), Change::Size(_)) => Err(Errno::EINVAL),
        _ => {
            let path = file.path().ok_or(Errno::EINVAL)?.0.to_vec();
            let root = Arc::clone(task.kernel.root()?);
            if root.read_only(&path) {
                return Err(Errno::EROFS);
            }
            root.change(&path, change)?;
            Ok(0)
        }
    }
}

pub fn truncate(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let len = args.u64(1) as i64;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(task, args.u64(0))?;
    change_at(task, AT_FDCWD, &path, true, Change::Size(len as u64))
}

pub fn ftruncate(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let len = args.u64(1) as i64;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    change_fd(task, args.i32(0), Change::Size(len as u64))
}

fn mkdir_at(task: &mut Task, dirfd: i32, path_addr: u64, mode: u32) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    let (root, _, abs) = new_entry(task, dirfd, &path)?;
    let owner = owner(task);
    root.mkdir(&abs, mode & !task.umask & 0o7777, owner)?;
    Ok(0)
}

pub fn mkdir(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    mkdir_at(task, AT_FDCWD, args.u64(0), args.u32(1))
}

pub fn mkdirat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    mkdir_at(task, args.i32(0), args.u64(1), args.u32(2))
}

/// mknod and mknodat: path checks, then EROFS or EPERM.
pub fn mkdir_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_create(task, AT_FDCWD, args.u64(0))
}

pub fn mkdirat_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_create(task, args.i32(0), args.u64(1))
}

fn symlink_at(task: &mut Task, target_addr: u64, dirfd: i32, path_addr: u64) -> Result<u64, Errno> {
    let target = read_path(task, target_addr)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = read_path(task, path_addr)?;
    let (root, _, abs) = new_entry(task, dirfd, &path)?;
    let owner = owner(task);
    root.symlink(&abs, &target, owner)?;
    Ok(0)
}

pub fn symlink(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    symlink_at(task, args.u64(0), AT_FDCWD, args.u64(1))
}

pub fn symlinkat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    symlink_at(task, args.u64(0), args.i32(1), args.u64(2))
}

fn remove_at(task: &mut Task, dirfd: i32, path_addr: u64, dir: bool) -> Result<u64, Errno> {
    let path = read_path(task, path_addr)?;
    let (root, abs, kind, name) = existing_entry(task, dirfd, &path)?;
    if dir && name == b"." {
        return Err(Errno::EINVAL);
    }
    if dir && name == b".." {
        return Err(Errno::ENOTEMPTY);
    }
    if !dir && path.ends_with(b"/") {
        return Err(if kind == Kind::Dir {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    root.remove(&abs, kind, dir)?;
    Ok(0)
}

pub fn unlink(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    remove_at(task, AT_FDCWD, args.u64(0), false)
}

pub fn rmdir(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    remove_at(task, AT_FDCWD, args.u64(0), true)
}

pub fn unlinkat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    const AT_REMOVEDIR: u32 = 0x200;
    let flags = args.u32(2);
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    remove_at(task, args.i32(0), args.u64(1), flags & AT_REMOVEDIR != 0)
}

fn rename_at(
    task: &mut Task,
    olddirfd: i32,
    old_addr: u64,
    newdirfd: i32,
    new_addr: u64,
    flags: u32,
) -> Result<u64, Errno> {
    const RENAME_NOREPLACE: u32 = 1;
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(Errno::EINVAL);
    }
    let old = read_path(task, old_addr)?;
    let new = read_path(task, new_addr)?;
    let (root, from, kind, name) = existing_entry(task, olddirfd, &old)?;
    if name == b"." || name == b".." {
        return Err(Errno::EBUSY);
    }
    let start = start_dir(task, newdirfd, &new)?;
    let (to_dir, to_name) = root.resolve_parent(&start, &new)?;
    if to_name == b"." || to_name == b".." {
        return Err(Errno::EBUSY);
    }
    let mut to = to_dir.path.clone();
    to.push(to_name);
    if (old.ends_with(b"/") || new.ends_with(b"/")) && kind != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    if flags & RENAME_NOREPLACE != 0 && root.lookup(&to)?.is_some() {
        return Err(Errno::EEXIST);
    }
    if root.read_only(&to) {
        return Err(Errno::EROFS);
    }
    check_dir_write(task, &root, &to_dir)?;
    root.rename(&from, &to)?;
    Ok(0)
}

pub fn rename(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    rename_at(task, AT_FDCWD, args.u64(0), AT_FDCWD, args.u64(1), 0)
}

pub fn renameat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    rename_at(task, args.i32(0), args.u64(1), args.i32(2), args.u64(3), 0)
}

pub fn renameat2(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    rename_at(
        task,
        args.i32(0),
        args.u64(1),
        args.i32(2),
        args.u64(3),
        args.u32(4),
    )
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

pub fn chmod(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let path = read_path(task, args.u64(0))?;
    change_at(task, AT_FDCWD, &path, true, Change::Mode(args.u32(1)))
}

pub fn fchmod(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    change_fd(task, args.i32(0), Change::Mode(args.u32(1)))
}

pub fn fchmodat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let flags = args.u32(3);
    if flags & !AT_SYMLINK_NOFOLLOW != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(task, args.u64(1))?;
    change_at(
        task,
        args.i32(0),
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        Change::Mode(args.u32(2)),
    )
}

/// chown, lchown (and utime, utimes): path checks, then EROFS or EPERM.
pub fn chmod_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_existing(task, AT_FDCWD, args.u64(0), true)
}

pub fn lchown_ro(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    erofs_existing(task, AT_FDCWD, args.u64(0), false)
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
            File::Stdio(_) => Err(Errno::EPERM),
            _ => Err(Errno::EROFS),
        };
    }
    erofs_existing(task, args.i32(0), args.u64(1), true)
}

/// One `struct timespec` of utimensat: None for UTIME_OMIT.
fn utime_spec(sec: i64, nsec: i64) -> Result<Option<Timespec>, Errno> {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    match nsec {
        UTIME_OMIT => Ok(None),
        UTIME_NOW => Ok(Some(crate::vfs::overlay::now())),
        0..=999_999_999 => Ok(Some(Timespec { sec, nsec })),
        _ => Err(Errno::EINVAL),
    }
}

pub fn utimensat(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let flags = args.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let change = if args.u64(2) == 0 {
        let t = crate::vfs::overlay::now();
        Change::Times(Some(t), Some(t))
    } else {
        let mut b = [0u8; 32];
        task.mm.copy_in(args.u64(2), &mut b)?;
        let word = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Change::Times(utime_spec(word(0), word(1))?, utime_spec(word(2), word(3))?)
    };
    if args.u64(1) == 0 {
        // utimensat(fd, NULL, ...): the open file itself.
        if matches!(&*task.fds.get(args.i32(0))?, File::Stdio(_)) {
            // The sentry's stdio is not the application's to retime.
            return Err(Errno::EPERM);
        }
        return change_fd(task, args.i32(0), change);
    }
    let path = read_path(task, args.u64(1))?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        return change_fd(task, args.i32(0), change);
    }
    let (root, resolved) = resolve(task, args.i32(0), &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    if root.read_only(&resolved.path) {
        return Err(Errno::EROFS);
    }
    let st = root.stat(&resolved.path)?;
    if task.creds.uid != 0 && task.creds.uid != st.uid {
        return Err(Errno::EPERM);
    }
    root.change(&resolved.path, change)?;
    Ok(0)
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
