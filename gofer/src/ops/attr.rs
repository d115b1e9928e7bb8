use nix::errno::Errno;
use nix::fcntl::OFlag;
use p9proto::types::{getattr, setattr};
use p9proto::{Rgetattr, Rreadlink, Rsetattr, Rstatfs, Tgetattr, Treadlink, Tsetattr, Tstatfs};

use crate::host;
use crate::node::{qid_of, FileKind};
use crate::session::{Fid, Session};

fn timespec(sec: u64, nsec: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as libc::c_long,
    }
}

fn omit() -> libc::timespec {
    timespec(0, libc::UTIME_OMIT as u64)
}

fn now() -> libc::timespec {
    timespec(0, libc::UTIME_NOW as u64)
}

impl Session {
    pub(crate) fn getattr(&self, m: Tgetattr) -> Result<Rgetattr, Errno> {
        let st = self.fid(m.fid)?.node()?.stat()?;
        Ok(Rgetattr {
            valid: getattr::BASIC,
            qid: qid_of(&st),
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            nlink: st.st_nlink,
            rdev: st.st_rdev,
            size: st.st_size as u64,
            blksize: st.st_blksize as u64,
            blocks: st.st_blocks as u64,
            atime_sec: st.st_atime as u64,
            atime_nsec: st.st_atime_nsec as u64,
            mtime_sec: st.st_mtime as u64,
            mtime_nsec: st.st_mtime_nsec as u64,
            ctime_sec: st.st_ctime as u64,
            ctime_nsec: st.st_ctime_nsec as u64,
            ..Default::default()
        })
    }

    pub(crate) fn setattr(&self, m: Tsetattr) -> Result<Rsetattr, Errno> {
        self.writable()?;
        let fid = self.fid(m.fid)?;
        let node = fid.node()?;
        let v = m.valid;
        if v & setattr::MODE != 0 {
            host::fchmod_empty(node.fd(), m.mode & 0o7777)?;
        }
        if v & (setattr::UID | setattr::GID) != 0 {
            let uid = if v & setattr::UID != 0 {
                m.uid
            } else {
                u32::MAX
            };
            let gid = if v & setattr::GID != 0 {
                m.gid
            } else {
                u32::MAX
            };
            host::fchown_empty(node.fd(), uid, gid)?;
        }
        if v & setattr::SIZE != 0 {
            let size = i64::try_from(m.size).map_err(|_| Errno::EFBIG)?;
            match node.kind() {
                FileKind::Directory => return Err(Errno::EISDIR),
                FileKind::Regular => {}
                _ => return Err(Errno::EINVAL),
            }
            let fd = node.reopen(OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
            nix::unistd::ftruncate(&fd, size)?;
        }
        if v & (setattr::ATIME | setattr::MTIME) != 0 {
            let pick = |set: u32, explicit: u32, sec, nsec| match (v & set != 0, v & explicit != 0)
            {
                (false, _) => omit(),
                (true, false) => now(),
                (true, true) => timespec(sec, nsec),
            };
            let atime = pick(
                setattr::ATIME,
                setattr::ATIME_SET,
                m.atime_sec,
                m.atime_nsec,
            );
            let mtime = pick(
                setattr::MTIME,
                setattr::MTIME_SET,
                m.mtime_sec,
                m.mtime_nsec,
            );
            host::utimens_empty(node.fd(), atime, mtime)?;
        } else if v == setattr::CTIME {
            // Only "touch ctime": an ownership change to the same ids does it.
            host::fchown_empty(node.fd(), u32::MAX, u32::MAX)?;
        }
        Ok(Rsetattr {})
    }

    pub(crate) fn statfs(&self, m: Tstatfs) -> Result<Rstatfs, Errno> {
        let fid = self.fid(m.fid)?;
        let node = fid.node()?;
        let st = nix::sys::statfs::fstatfs(node.fd())?;
        Ok(Rstatfs {
            ty: st.filesystem_type().0 as u32,
            bsize: st.block_size() as u32,
            blocks: st.blocks(),
            bfree: st.blocks_free(),
            bavail: st.blocks_available(),
            files: st.files(),
            ffree: st.files_free(),
            fsid: node.stat()?.st_dev,
            namelen: st.maximum_name_length() as u32,
        })
    }

    pub(crate) fn readlink(&self, m: Treadlink) -> Result<Rreadlink, Errno> {
        let fid = self.fid(m.fid)?;
        let node = match &fid {
            Fid::Path { node, .. } => node,
            _ => return Err(Errno::EBADF),
        };
        if node.kind() != FileKind::Symlink {
            return Err(Errno::EINVAL);
        }
        let target = nix::fcntl::readlinkat(node.fd(), "")?;
        Ok(Rreadlink {
            target: std::os::unix::ffi::OsStringExt::into_vec(target).into(),
        })
    }
}
