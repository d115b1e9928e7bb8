//! Extended attributes, limited to the `user.` namespace: the others
//! (`trusted.`, `security.`, `system.`) carry host privileges or policy that
//! a sandboxed client must not reach.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use p9proto::types::xattr_flags;
use p9proto::{Rxattrcreate, Rxattrwalk, Txattrcreate, Txattrwalk};

use crate::host;
use crate::node::{FileKind, Node};
use crate::session::{lock, Fid, Session, XattrWrite};

const USER_PREFIX: &[u8] = b"user.";
/// Largest value Linux stores (XATTR_SIZE_MAX).
const XATTR_SIZE_MAX: u64 = 65536;

fn check_xattr_name(name: &[u8]) -> Result<(), Errno> {
    if !name.starts_with(USER_PREFIX) {
        return Err(Errno::EOPNOTSUPP);
    }
    if name.len() == USER_PREFIX.len() || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ERANGE);
    }
    Ok(())
}

/// A readable fd on the file; user xattrs exist only on regular files and
/// directories (Linux answers EPERM for the others).
fn xattr_fd(node: &Node) -> Result<OwnedFd, Errno> {
    match node.kind() {
        FileKind::Regular | FileKind::Directory => node.reopen(OFlag::O_RDONLY | OFlag::O_NONBLOCK),
        _ => Err(Errno::EPERM),
    }
}

/// Calls a size-then-fill host call, retrying if the value grew between.
fn read_sized(mut call: impl FnMut(&mut [u8]) -> Result<usize, Errno>) -> Result<Vec<u8>, Errno> {
    for _ in 0..4 {
        let size = call(&mut [])?;
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ERANGE)
}

impl Session {
    pub(crate) fn xattrwalk(&self, m: Txattrwalk) -> Result<Rxattrwalk, Errno> {
        let fid = self.fid(m.fid)?;
        let node = fid.node()?;
        let name = m.name.as_bytes();
        let data = if name.is_empty() {
            let list = match xattr_fd(node) {
                Ok(fd) => read_sized(|buf| host::flistxattr(fd.as_fd(), buf))?,
                // Files without user xattrs list none.
                Err(Errno::EPERM) => Vec::new(),
                Err(e) => return Err(e),
            };
            list.split(|&b| b == 0)
                .filter(|n| n.starts_with(USER_PREFIX))
                .flat_map(|n| n.iter().copied().chain([0]))
                .collect()
        } else {
            check_xattr_name(name)?;
            let fd =
                xattr_fd(node).map_err(|e| if e == Errno::EPERM { Errno::ENODATA } else { e })?;
            read_sized(|buf| host::fgetxattr(fd.as_fd(), name, buf))?
        };
        let size = data.len() as u64;
        self.insert_new(
            m.newfid,
            Fid::XattrRead {
                data: Arc::new(data),
            },
        )?;
        Ok(Rxattrwalk { size })
    }

    /// Turns the fid into a pending attribute write. A size of 0 removes
    /// the attribute (how Linux's v9fs client sends removexattr).
    pub(crate) fn xattrcreate(&self, m: Txattrcreate) -> Result<Rxattrcreate, Errno> {
        self.writable()?;
        check_xattr_name(m.name.as_bytes())?;
        if m.attr_size > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        if m.flags & !(xattr_flags::CREATE | xattr_flags::REPLACE) != 0 {
            return Err(Errno::EINVAL);
        }
        let target = self.fid(m.fid)?.node()?.clone();
        if !matches!(target.kind(), FileKind::Regular | FileKind::Directory) {
            return Err(Errno::EPERM);
        }
        self.replace(
            m.fid,
            Fid::XattrWrite(Arc::new(XattrWrite {
                target,
                name: m.name.into_bytes(),
                size: m.attr_size as usize,
                flags: m.flags as i32,
                value: Mutex::new(Vec::new()),
            })),
        )?;
        Ok(Rxattrcreate {})
    }

    /// Applies a pending attribute write at Tclunk.
    pub(crate) fn commit_xattr(&self, w: &XattrWrite) -> Result<(), Errno> {
        let fd = xattr_fd(&w.target)?;
        if w.size == 0 {
            return host::fremovexattr(fd.as_fd(), &w.name);
        }
        let value = lock(&w.value);
        if value.len() != w.size {
            // Fewer bytes written than announced.
            return Err(Errno::EINVAL);
        }
        host::fsetxattr(fd.as_fd(), &w.name, &value, w.flags)
    }
}
