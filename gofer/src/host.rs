//! Host calls that nix does not wrap for the way the gofer uses them:
//! operations on `O_PATH` descriptors through `AT_EMPTY_PATH`, raw
//! `getdents64` with resumable cookies, and extended attributes.
//!
//! This is one of the few modules of rvisor allowed `unsafe`; every block
//! names why it is sound.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

const EMPTY: &CStr = c"";

fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// chmod of the file an `O_PATH` fd names (fchmodat2, Linux 6.6+; a symlink
/// gets EOPNOTSUPP as from lchmod).
pub fn fchmod_empty(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    // SAFETY: the path is a valid NUL-terminated string; the kernel only
    // reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    };
    check(r).map(drop)
}

/// chown of the file an `O_PATH` fd names, never following a symlink.
/// `u32::MAX` leaves an id unchanged.
pub fn fchown_empty(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: as fchmod_empty.
    let r = unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(r.into()).map(drop)
}

/// utimensat on the file an `O_PATH` fd names (symlinks included).
pub fn utimens_empty(
    fd: BorrowedFd<'_>,
    atime: libc::timespec,
    mtime: libc::timespec,
) -> Result<(), Errno> {
    let times = [atime, mtime];
    // SAFETY: `times` is two valid timespecs that outlive the call; the
    // path is a valid C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_utimensat,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    check(r).map(drop)
}

/// One raw `getdents64` into `buf`; returns the bytes filled (0 at end).
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    check(r).map(|n| n as usize)
}

/// A `linux_dirent64` record decoded from a getdents64 buffer.
#[derive(Debug)]
pub struct RawDirent<'a> {
    pub ino: u64,
    /// Cookie to seek to for the entry after this one.
    pub off: u64,
    pub ty: u8,
    pub name: &'a [u8],
}

/// Walks the records of a buffer `getdents64` filled.
pub fn parse_dirents(buf: &[u8]) -> impl Iterator<Item = RawDirent<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        // d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
        const NAME_AT: usize = 19;
        let rec = buf.get(pos..)?;
        if rec.len() < NAME_AT {
            return None;
        }
        let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
        if reclen < NAME_AT || reclen > rec.len() {
            return None;
        }
        let name_field = &rec[NAME_AT..reclen];
        let name_len = name_field
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_field.len());
        pos += reclen;
        Some(RawDirent {
            ino: u64::from_ne_bytes(rec[0..8].try_into().ok()?),
            off: u64::from_ne_bytes(rec[8..16].try_into().ok()?),
            ty: rec[18],
            name: &name_field[..name_len],
        })
    })
}

fn cstring(name: &[u8]) -> Result<std::ffi::CString, Errno> {
    std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)
}

/// fgetxattr: with an empty `buf`, returns the value's size.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &[u8], buf: &mut [u8]) -> Result<usize, Errno> {
    let name = cstring(name)?;
    // SAFETY: `name` is NUL-terminated; the kernel writes at most
    // `buf.len()` bytes into `buf` (none when it is empty).
    let r = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    check(r as libc::c_long).map(|n| n as usize)
}

/// flistxattr: NUL-separated names; with an empty `buf`, returns the size.
pub fn flistxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let r = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    check(r as libc::c_long).map(|n| n as usize)
}

pub fn fsetxattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
    let name = cstring(name)?;
    // SAFETY: `name` is NUL-terminated; the kernel reads `value.len()` bytes.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    check(r.into()).map(drop)
}

pub fn fremovexattr(fd: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let name = cstring(name)?;
    // SAFETY: `name` is NUL-terminated.
    let r = unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) };
    check(r.into()).map(drop)
}

extern "C" fn interrupt_handler(_: libc::c_int) {}

/// The signal that interrupts a request blocked in the host kernel when its
/// Tflush arrives.
pub const INTERRUPT_SIGNAL: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGUSR2;

/// Installs a do-nothing handler for [`INTERRUPT_SIGNAL`] without
/// SA_RESTART, so a blocked call it hits returns EINTR.
pub fn install_interrupt_handler() -> Result<(), Errno> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let action = SigAction::new(
        SigHandler::Handler(interrupt_handler),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, so it is async-signal-safe.
    unsafe { sigaction(INTERRUPT_SIGNAL, &action) }.map(drop)
}

/// Takes ownership of a connected socket inherited from the parent
/// (`gofer serve --fd N`), after checking that N is an open socket.
pub fn inherited_socket(fd: i32) -> Result<std::os::unix::net::UnixStream, Errno> {
    use std::os::fd::FromRawFd;
    // SAFETY: fstat only inspects the descriptor number; a closed one gives
    // EBADF without touching memory other than `st`.
    let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(Errno::last());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Errno::ENOTSOCK);
    }
    // SAFETY: the descriptor is open, is a socket, and the command line
    // gives it to this process to own; nothing else in the gofer uses it.
    Ok(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) })
}

/// prctl(PR_CAPBSET_DROP, cap).
pub fn capbset_drop(cap: u32) -> Result<(), Errno> {
    // SAFETY: PR_CAPBSET_DROP takes an integer argument and no pointers.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// capset(2) of this thread (and, before any thread exists, the process):
/// `mask` (bits 0..63) becomes the effective, permitted and inheritable sets.
pub fn capset(mask: [u32; 2]) -> Result<(), Errno> {
    let mut header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        CapData {
            effective: mask[0],
            permitted: mask[0],
            inheritable: 0,
        },
        CapData {
            effective: mask[1],
            permitted: mask[1],
            inheritable: 0,
        },
    ];
    // SAFETY: header and data are live, correctly laid out (repr(C)) and
    // hold two data entries, as version 3 requires.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    Errno::result(r).map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dirent_records_and_stops_at_garbage() {
        let mut buf = Vec::new();
        for (ino, off, name) in [(5u64, 1u64, &b"a"[..]), (6, 2, b"bcd")] {
            let reclen = (19 + name.len() + 1 + 7) & !7;
            let start = buf.len();
            buf.extend_from_slice(&ino.to_ne_bytes());
            buf.extend_from_slice(&off.to_ne_bytes());
            buf.extend_from_slice(&(reclen as u16).to_ne_bytes());
            buf.push(8);
            buf.extend_from_slice(name);
            buf.resize(start + reclen, 0);
        }
        buf.extend_from_slice(&[1, 2, 3]);
        let got: Vec<_> = parse_dirents(&buf)
            .map(|d| (d.ino, d.off, d.ty, d.name.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![(5, 1, 8, b"a".to_vec()), (6, 2, 8, b"bcd".to_vec())]
        );
    }
}
