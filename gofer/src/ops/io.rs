use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use p9proto::types::{open_flags as of, qid_type, Dirent};
use p9proto::{
    Data, Qid, Rfsync, Rlcreate, Rlopen, Rread, Rreaddir, Rwrite, Tfsync, Tlcreate, Tlopen, Tread,
    Treaddir, Twrite, WireFormat,
};

use super::set_owner;
use crate::host;
use crate::node::{check_name, qid_of, FileKind};
use crate::session::{lock, Fid, OpenFile, Session};

/// Rread framing before the payload: header and count.
const RREAD_OVERHEAD: u32 = 11;

/// Open flags a client may pass through; the rest (O_CREAT on lopen,
/// O_NOATIME which needs ownership, O_DIRECT with its alignment rules,
/// O_ASYNC signals) are the gofer's business or meaningless here.
fn host_open_flags(flags: u32) -> OFlag {
    let mut out = OFlag::from_bits_truncate((flags & of::ACCMODE) as i32);
    for (p9, host) in [
        (of::TRUNC, OFlag::O_TRUNC),
        (of::APPEND, OFlag::O_APPEND),
        (of::NONBLOCK, OFlag::O_NONBLOCK),
        (of::DSYNC, OFlag::O_DSYNC),
        (of::SYNC, OFlag::O_SYNC),
        (of::DIRECTORY, OFlag::O_DIRECTORY),
        (of::EXCL, OFlag::O_EXCL),
    ] {
        if flags & p9 == p9 {
            out |= host;
        }
    }
    out
}

fn mutates(flags: u32) -> bool {
    flags & of::ACCMODE != of::RDONLY || flags & of::TRUNC != 0
}

impl Session {
    pub(crate) fn lopen(&self, m: Tlopen) -> Result<Rlopen, Errno> {
        if mutates(m.flags) {
            self.writable()?;
        }
        let (node, uid) = match self.fid(m.fid)? {
            Fid::Path { node, uid } => (node, uid),
            _ => return Err(Errno::EBADF),
        };
        if matches!(node.kind(), FileKind::CharDevice | FileKind::BlockDevice) {
            // A device node in the tree would open the host's device; the
            // sentry serves its own /dev.
            return Err(Errno::EPERM);
        }
        let fd = node.reopen(host_open_flags(m.flags) - OFlag::O_EXCL)?;
        let qid = qid_of(&node.stat()?);
        let file = Arc::new(OpenFile {
            fd,
            kind: node.kind(),
            dir_cursor: Mutex::new(()),
        });
        self.replace(m.fid, Fid::Open { node, uid, file })?;
        Ok(Rlopen {
            qid,
            iounit: self.iounit(),
        })
    }

    pub(crate) fn lcreate(&self, m: Tlcreate) -> Result<Rlcreate, Errno> {
        self.writable()?;
        check_name(m.name.as_bytes())?;
        let (dir, uid) = match self.fid(m.fid)? {
            Fid::Path { node, uid } => (node, uid),
            _ => return Err(Errno::EBADF),
        };
        let flags =
            host_open_flags(m.flags) | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(m.mode & 0o7777);
        let fd = openat(dir.fd(), m.name.as_bytes(), flags, mode)?;
        let qid = set_owner(fd.as_fd(), uid, m.gid)?;
        let node = dir.lookup(m.name.as_bytes())?;
        let file = Arc::new(OpenFile {
            fd,
            kind: node.kind(),
            dir_cursor: Mutex::new(()),
        });
        self.replace(m.fid, Fid::Open { node, uid, file })?;
        Ok(Rlcreate {
            qid,
            iounit: self.iounit(),
        })
    }

    pub(crate) fn read(&self, m: Tread) -> Result<Rread, Errno> {
        let count = m.count.min(self.msize().saturating_sub(RREAD_OVERHEAD)) as usize;
        match self.fid(m.fid)? {
            Fid::Open { file, .. } => {
                if file.kind == FileKind::Directory {
                    return Err(Errno::EISDIR);
                }
                let mut buf = vec![0u8; count];
                let n = if file.kind.is_seekable() {
                    let off = i64::try_from(m.offset).map_err(|_| Errno::EINVAL)?;
                    nix::sys::uio::pread(&file.fd, &mut buf, off)?
                } else {
                    nix::unistd::read(&file.fd, &mut buf)?
                };
                buf.truncate(n);
                Ok(Rread { data: Data(buf) })
            }
            Fid::XattrRead { data } => {
                let start = usize::try_from(m.offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let end = start.saturating_add(count).min(data.len());
                Ok(Rread {
                    data: Data(data[start..end].to_vec()),
                })
            }
            _ => Err(Errno::EBADF),
        }
    }

    pub(crate) fn write(&self, m: Twrite) -> Result<Rwrite, Errno> {
        match self.fid(m.fid)? {
            Fid::Open { file, .. } => {
                let n = if file.kind.is_seekable() {
                    let off = i64::try_from(m.offset).map_err(|_| Errno::EINVAL)?;
                    nix::sys::uio::pwrite(&file.fd, &m.data.0, off)?
                } else {
                    nix::unistd::write(&file.fd, &m.data.0)?
                };
                Ok(Rwrite { count: n as u32 })
            }
            Fid::XattrWrite(w) => {
                let off = usize::try_from(m.offset).map_err(|_| Errno::EINVAL)?;
                let end = off.checked_add(m.data.0.len()).ok_or(Errno::EINVAL)?;
                if end > w.size {
                    return Err(Errno::ENOSPC);
                }
                let mut value = lock(&w.value);
                if value.len() < end {
                    value.resize(end, 0);
                }
                value[off..end].copy_from_slice(&m.data.0);
                Ok(Rwrite {
                    count: m.data.0.len() as u32,
                })
            }
            _ => Err(Errno::EBADF),
        }
    }

    pub(crate) fn fsync(&self, m: Tfsync) -> Result<Rfsync, Errno> {
        let fid = self.fid(m.fid)?;
        let file = fid.open_file()?;
        if m.datasync != 0 {
            nix::unistd::fdatasync(&file.fd)?;
        } else {
            nix::unistd::fsync(&file.fd)?;
        }
        Ok(Rfsync {})
    }

    /// Entries from the directory cookie `offset` (0 = the start) that fit
    /// in `count` bytes. Each entry's offset is the host's cookie for the
    /// entry after it, so a client resumes exactly where it stopped.
    pub(crate) fn readdir(&self, m: Treaddir) -> Result<Rreaddir, Errno> {
        let fid = self.fid(m.fid)?;
        let file = fid.open_file()?;
        if file.kind != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let limit = m.count.min(self.msize().saturating_sub(RREAD_OVERHEAD)) as usize;
        let off = i64::try_from(m.offset).map_err(|_| Errno::EINVAL)?;
        let _cursor = lock(&file.dir_cursor);
        nix::unistd::lseek(&file.fd, off, nix::unistd::Whence::SeekSet)?;
        let mut out = Vec::with_capacity(limit.min(64 * 1024));
        let mut raw = vec![0u8; limit.clamp(512, 64 * 1024)];
        'fill: loop {
            let n = host::getdents64(file.fd.as_fd(), &mut raw)?;
            if n == 0 {
                break;
            }
            for d in host::parse_dirents(&raw[..n]) {
                let entry = Dirent {
                    qid: Qid {
                        ty: match d.ty {
                            libc::DT_DIR => qid_type::DIR,
                            libc::DT_LNK => qid_type::SYMLINK,
                            _ => qid_type::FILE,
                        },
                        version: 0,
                        path: d.ino,
                    },
                    offset: d.off,
                    ty: d.ty,
                    name: d.name.into(),
                };
                if out.len() + entry.encoded_len() > limit {
                    break 'fill;
                }
                entry.encode(&mut out);
            }
        }
        Ok(Rreaddir { data: Data(out) })
    }
}
