//! A minimal devfs, served entirely by the sentry and mounted at /dev in
//! every sandbox with a root (shadowing whatever the root has there): the
//! directory holds the character devices null, zero, full, random and
//! urandom, with Linux's numbers (1:3, 1:5, 1:7, 1:8, 1:9) and mode 0666.
//!
//! - null reads end-of-file and swallows writes;
//! - zero reads zeros and swallows writes;
//! - full reads zeros and fails writes with ENOSPC;
//! - random and urandom read the sentry's getrandom (never a host device
//!   node) and accept and ignore writes.
//!
//! lseek on a device returns 0 and poll is always ready. The directory is
//! root's, mode 0755, as devtmpfs: others get EACCES adding or removing
//! names (the permission check), and root gets EPERM: the sentry does not
//! make or remove device entries (no mknod, no tmpfs under /dev yet).

use std::sync::Mutex;

use super::gofer::PathComponents;
use super::overlay::{now, Kind};
use super::stat::{Stat, Timespec};
use crate::errno::Errno;

const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const O_ACCMODE: u32 = 0o3;
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_PATH: u32 = 0o10000000;
const DT_CHR: u8 = 2;
const DT_DIR: u8 = 4;
/// st_dev of the devfs (devtmpfs is 0:5 on most Linux systems).
const DEV_DEV: u64 = 5;

/// One of the devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

/// The devices in listing order: name, device, minor (major is 1: mem).
const DEVICES: [(&[u8], Device, u64); 5] = [
    (b"null", Device::Null, 3),
    (b"zero", Device::Zero, 5),
    (b"full", Device::Full, 7),
    (b"random", Device::Random, 8),
    (b"urandom", Device::Urandom, 9),
];

fn device(name: &[u8]) -> Option<(usize, Device, u64)> {
    DEVICES
        .iter()
        .enumerate()
        .find(|(_, (n, _, _))| *n == name)
        .map(|(i, &(_, d, minor))| (i, d, minor))
}

/// The devfs: its one directory and the devices in it.
#[derive(Debug)]
pub struct DevFs {
    /// When the devfs was made: every timestamp it reports.
    born: Timespec,
}

impl Default for DevFs {
    fn default() -> Self {
        Self::new()
    }
}

impl DevFs {
    pub fn new() -> Self {
        Self { born: now() }
    }

    /// Kinds of the longest existing prefix of `rel`.
    pub fn probe(&self, rel: &[Vec<u8>]) -> Vec<Kind> {
        match rel.first() {
            Some(name) if device(name).is_some() => vec![Kind::File],
            _ => Vec::new(),
        }
    }

    pub fn stat(&self, rel: &[Vec<u8>]) -> Result<Stat, Errno> {
        let base = Stat {
            dev: DEV_DEV,
            blksize: 4096,
            atime: self.born,
            mtime: self.born,
            ctime: self.born,
            ..Stat::default()
        };
        match rel {
            [] => Ok(Stat {
                ino: 1,
                mode: S_IFDIR | 0o755,
                nlink: 2,
                ..base
            }),
            [name] => {
                let (i, _, minor) = device(name).ok_or(Errno::ENOENT)?;
                Ok(Stat {
                    ino: i as u64 + 2,
                    mode: S_IFCHR | 0o666,
                    nlink: 1,
                    rdev: (1 << 8) | minor,
                    ..base
                })
            }
            [name, ..] if device(name).is_some() => Err(Errno::ENOTDIR),
            _ => Err(Errno::ENOENT),
        }
    }

    /// Opens the directory (`rel` empty) or a device.
    pub fn open(&self, rel: &[Vec<u8>], path: PathComponents, status_flags: u32) -> DevFile {
        let node = match rel {
            [name] => device(name).map(|(_, d, _)| d),
            _ => None,
        };
        DevFile {
            node,
            stat: self.stat(rel).unwrap_or_default(),
            path,
            status_flags,
            dir_pos: Mutex::new(0),
        }
    }
}

/// An open file of the devfs: a device, or the directory (`node` None).
#[derive(Debug)]
pub struct DevFile {
    pub node: Option<Device>,
    stat: Stat,
    pub path: PathComponents,
    pub status_flags: u32,
    /// The directory's getdents64 position (entries handed out).
    dir_pos: Mutex<usize>,
}

fn fill_random(buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                if done > 0 {
                    break;
                }
                return Err(Errno(e.raw_os_error()));
            }
        }
    }
    Ok(done)
}

impl DevFile {
    pub fn is_dir(&self) -> bool {
        self.node.is_none()
    }

    pub fn stat(&self) -> Stat {
        self.stat
    }

    fn check(&self, deny: u32) -> Result<Device, Errno> {
        if self.status_flags & O_PATH != 0 || self.status_flags & O_ACCMODE == deny {
            return Err(Errno::EBADF);
        }
        self.node.ok_or(Errno::EISDIR)
    }

    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.check(O_WRONLY)? {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random | Device::Urandom => fill_random(buf),
        }
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        if self.status_flags & O_PATH == 0 && self.node.is_none() {
            return Err(Errno::EBADF);
        }
        match self.check(O_RDONLY)? {
            Device::Full => Err(Errno::ENOSPC),
            _ => Ok(buf.len()),
        }
    }

    /// lseek: devices stay at 0; the directory rewinds its listing.
    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        if self.status_flags & O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        if whence > 4 {
            return Err(Errno::EINVAL);
        }
        if self.node.is_some() {
            return Ok(0);
        }
        let mut pos = self.dir_pos.lock().unwrap_or_else(|p| p.into_inner());
        let new = match whence {
            0 => offset,
            1 => (*pos as i64).checked_add(offset).ok_or(Errno::EOVERFLOW)?,
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *pos = new as usize;
        Ok(new as u64)
    }

    /// `linux_dirent64` records of the directory, at most `max` bytes
    /// (EINVAL if none fits).
    pub fn getdents64(&self, max: usize) -> Result<Vec<u8>, Errno> {
        if self.status_flags & O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        if self.node.is_some() {
            return Err(Errno::ENOTDIR);
        }
        let entries: Vec<(&[u8], u64, u8)> = [(&b"."[..], 1, DT_DIR), (&b".."[..], 1, DT_DIR)]
            .into_iter()
            .chain(
                DEVICES
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _, _))| (*name, i as u64 + 2, DT_CHR)),
            )
            .collect();
        let mut pos = self.dir_pos.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while let Some(&(name, ino, ty)) = entries.get(*pos) {
            let reclen = (19 + name.len() + 1 + 7) & !7;
            if out.len() + reclen > max {
                if out.is_empty() {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            let start = out.len();
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&(*pos as u64 + 1).to_le_bytes());
            out.extend_from_slice(&(reclen as u16).to_le_bytes());
            out.push(ty);
            out.extend_from_slice(name);
            out.resize(start + reclen, 0);
            *pos += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(name: &str, flags: u32) -> DevFile {
        let fs = DevFs::new();
        let rel: Vec<Vec<u8>> = if name.is_empty() {
            Vec::new()
        } else {
            vec![name.as_bytes().to_vec()]
        };
        fs.open(&rel, rel.clone(), flags)
    }

    #[test]
    fn devices_behave_as_linux() {
        let mut buf = [7u8; 16];
        assert_eq!(open("null", 2).read(&mut buf), Ok(0));
        assert_eq!(open("null", 2).write(b"abc"), Ok(3));
        assert_eq!(open("zero", 0).read(&mut buf), Ok(16));
        assert_eq!(buf, [0; 16]);
        assert_eq!(open("full", 2).write(b"x"), Err(Errno::ENOSPC));
        assert_eq!(open("urandom", 0).read(&mut buf), Ok(16));
        assert_eq!(open("random", 1).write(b"x"), Ok(1));
        assert_eq!(open("zero", 0).write(b"x"), Err(Errno::EBADF));
        assert_eq!(open("zero", 1).read(&mut buf), Err(Errno::EBADF));
        assert_eq!(open("", 0).read(&mut buf), Err(Errno::EISDIR));
        assert_eq!(open("zero", 0).seek(100, 0), Ok(0));
    }

    #[test]
    fn stat_and_listing() {
        let fs = DevFs::new();
        let st = fs.stat(&[b"full".to_vec()]).unwrap();
        assert_eq!(st.mode, S_IFCHR | 0o666);
        assert_eq!(st.rdev, 0x107);
        assert_eq!(fs.stat(&[b"nope".to_vec()]).unwrap_err(), Errno::ENOENT);
        assert_eq!(
            fs.stat(&[b"null".to_vec(), b"x".to_vec()]).unwrap_err(),
            Errno::ENOTDIR
        );
        let dir = open("", 0);
        let data = dir.getdents64(4096).unwrap();
        assert_eq!(data.len(), 5 * 24 + 2 * 32);
        assert_eq!(dir.getdents64(4096).unwrap().len(), 0);
        assert_eq!(dir.seek(0, 0), Ok(0));
        assert_eq!(dir.getdents64(10), Err(Errno::EINVAL));
    }
}
