use std::sync::Arc;

use nix::errno::Errno;
use p9proto::{
    Rattach, Rclunk, Rremove, Rwalk, Tattach, Tclunk, Tremove, Twalk, MAX_WALK_ELEMENTS,
};

use crate::node::FileKind;
use crate::session::{Fid, Session};

impl Session {
    pub(crate) fn attach(&self, m: Tattach) -> Result<Rattach, Errno> {
        let mut node = self.root.clone();
        for name in m
            .aname
            .as_bytes()
            .split(|&b| b == b'/')
            .filter(|n| !n.is_empty())
        {
            node = node.lookup(name)?;
        }
        if node.kind() != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let qid = node.qid();
        self.insert_new(
            m.fid,
            Fid::Path {
                node,
                uid: m.n_uname,
            },
        )?;
        Ok(Rattach { qid })
    }

    pub(crate) fn walk(&self, m: Twalk) -> Result<Rwalk, Errno> {
        if m.wnames.len() > MAX_WALK_ELEMENTS {
            return Err(Errno::EINVAL);
        }
        let start = self.fid(m.fid)?;
        let (mut node, uid) = match &start {
            Fid::Path { node, uid } => (node.clone(), *uid),
            // An opened fid may not be walked (9P: walk from an open fid).
            _ => return Err(Errno::EBADF),
        };
        let mut wqids = Vec::with_capacity(m.wnames.len());
        for (i, name) in m.wnames.iter().enumerate() {
            match node.lookup(name.as_bytes()).map(|n| (n.qid(), n)) {
                Ok((qid, next)) => {
                    wqids.push(qid);
                    node = next;
                }
                // The first name failing is an error; a later one ends the
                // walk early with the qids so far and newfid left unbound.
                Err(e) if i == 0 => return Err(e),
                Err(_) => return Ok(Rwalk { wqids }),
            }
        }
        let state = Fid::Path {
            node: Arc::clone(&node),
            uid,
        };
        if m.newfid == m.fid {
            self.replace(m.fid, state)?;
        } else {
            self.insert_new(m.newfid, state)?;
        }
        Ok(Rwalk { wqids })
    }

    pub(crate) fn clunk(&self, m: Tclunk) -> Result<Rclunk, Errno> {
        match self.take(m.fid)? {
            Fid::XattrWrite(w) => self.commit_xattr(&w).map(|()| Rclunk {}),
            _ => Ok(Rclunk {}),
        }
    }

    pub(crate) fn remove(&self, m: Tremove) -> Result<Rremove, Errno> {
        // The fid is clunked whether or not the removal succeeds.
        let fid = self.take(m.fid)?;
        self.writable()?;
        let node = fid.node()?;
        let (parent, name) = node.entry()?;
        let flags = if node.kind() == FileKind::Directory {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(parent.fd(), name, flags)?;
        Ok(Rremove {})
    }
}
