use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::UnlinkatFlags;
use p9proto::types::AT_REMOVEDIR;
use p9proto::{
    Rlink, Rmkdir, Rmknod, Rrename, Rrenameat, Rsymlink, Runlinkat, Tlink, Tmkdir, Tmknod, Trename,
    Trenameat, Tsymlink, Tunlinkat,
};

use super::set_owner;
use crate::node::{check_name, FileKind, Node};
use crate::session::{Fid, Session};

impl Session {
    /// The directory a fid names, for requests that add or remove entries.
    fn dir(&self, fid: u32) -> Result<(std::sync::Arc<Node>, u32), Errno> {
        let f = self.fid(fid)?;
        let node = f.node()?.clone();
        if node.kind() != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok((node, f.uid()))
    }

    /// Sets the owner of a new entry, removing it if that fails so a
    /// failed create leaves nothing behind.
    fn own_new_entry(
        &self,
        dir: &Node,
        name: &[u8],
        uid: u32,
        gid: u32,
        is_dir: bool,
    ) -> Result<p9proto::Qid, Errno> {
        let result = nix::fcntl::openat(
            dir.fd(),
            name,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .and_then(|fd| set_owner(std::os::fd::AsFd::as_fd(&fd), uid, gid));
        if result.is_err() {
            let flag = if is_dir {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            let _ = nix::unistd::unlinkat(dir.fd(), name, flag);
        }
        result
    }

    pub(crate) fn mkdir(&self, m: Tmkdir) -> Result<Rmkdir, Errno> {
        self.writable()?;
        check_name(m.name.as_bytes())?;
        let (dir, uid) = self.dir(m.dfid)?;
        nix::sys::stat::mkdirat(
            dir.fd(),
            m.name.as_bytes(),
            Mode::from_bits_truncate(m.mode & 0o7777),
        )?;
        let qid = self.own_new_entry(&dir, m.name.as_bytes(), uid, m.gid, true)?;
        Ok(Rmkdir { qid })
    }

    pub(crate) fn symlink(&self, m: Tsymlink) -> Result<Rsymlink, Errno> {
        self.writable()?;
        check_name(m.name.as_bytes())?;
        if m.symtgt.as_bytes().contains(&0) {
            return Err(Errno::EINVAL);
        }
        let (dir, uid) = self.dir(m.fid)?;
        // The target is stored, never resolved, by the gofer.
        nix::unistd::symlinkat(m.symtgt.as_bytes(), dir.fd(), m.name.as_bytes())?;
        let qid = self.own_new_entry(&dir, m.name.as_bytes(), uid, m.gid, false)?;
        Ok(Rsymlink { qid })
    }

    pub(crate) fn mknod(&self, m: Tmknod) -> Result<Rmknod, Errno> {
        self.writable()?;
        check_name(m.name.as_bytes())?;
        let kind = SFlag::from_bits_truncate(m.mode & SFlag::S_IFMT.bits());
        match kind {
            // Device nodes would hand the sandbox host devices.
            SFlag::S_IFCHR | SFlag::S_IFBLK => return Err(Errno::EPERM),
            SFlag::S_IFREG | SFlag::S_IFIFO | SFlag::S_IFSOCK => {}
            _ if m.mode & SFlag::S_IFMT.bits() == 0 => {}
            _ => return Err(Errno::EINVAL),
        }
        let (dir, uid) = self.dir(m.dfid)?;
        let kind = if kind.is_empty() {
            SFlag::S_IFREG
        } else {
            kind
        };
        nix::sys::stat::mknodat(
            dir.fd(),
            m.name.as_bytes(),
            kind,
            Mode::from_bits_truncate(m.mode & 0o7777),
            0,
        )?;
        let qid = self.own_new_entry(&dir, m.name.as_bytes(), uid, m.gid, false)?;
        Ok(Rmknod { qid })
    }

    pub(crate) fn link(&self, m: Tlink) -> Result<Rlink, Errno> {
        self.writable()?;
        check_name(m.name.as_bytes())?;
        let (dir, _) = self.dir(m.dfid)?;
        let target = self.fid(m.fid)?;
        let target = target.node()?;
        if target.kind() == FileKind::Directory {
            return Err(Errno::EPERM);
        }
        let (parent, name) = target.entry()?;
        // No AT_SYMLINK_FOLLOW: a symlink is linked as itself.
        nix::unistd::linkat(
            parent.fd(),
            name,
            dir.fd(),
            m.name.as_bytes(),
            nix::fcntl::AtFlags::empty(),
        )?;
        Ok(Rlink {})
    }

    pub(crate) fn rename(&self, m: Trename) -> Result<Rrename, Errno> {
        self.writable()?;
        check_name(m.name.as_bytes())?;
        let (newdir, _) = self.dir(m.dfid)?;
        let fid = self.fid(m.fid)?;
        let node = fid.node()?;
        let (parent, name) = node.entry()?;
        nix::fcntl::renameat(parent.fd(), name, newdir.fd(), m.name.as_bytes())?;
        // The fid follows its file to the new name.
        let moved = node.renamed(newdir, m.name.as_bytes())?;
        let state = match fid {
            Fid::Path { uid, .. } => Fid::Path { node: moved, uid },
            Fid::Open { uid, file, .. } => Fid::Open {
                node: moved,
                uid,
                file,
            },
            other => other,
        };
        // The fid may have been clunked meanwhile; the rename stands.
        let _ = self.replace(m.fid, state);
        Ok(Rrename {})
    }

    pub(crate) fn renameat(&self, m: Trenameat) -> Result<Rrenameat, Errno> {
        self.writable()?;
        check_name(m.oldname.as_bytes())?;
        check_name(m.newname.as_bytes())?;
        let (olddir, _) = self.dir(m.olddirfid)?;
        let (newdir, _) = self.dir(m.newdirfid)?;
        nix::fcntl::renameat(
            olddir.fd(),
            m.oldname.as_bytes(),
            newdir.fd(),
            m.newname.as_bytes(),
        )?;
        Ok(Rrenameat {})
    }

    pub(crate) fn unlinkat(&self, m: Tunlinkat) -> Result<Runlinkat, Errno> {
        self.writable()?;
        check_name(m.name.as_bytes())?;
        if m.flags & !AT_REMOVEDIR != 0 {
            return Err(Errno::EINVAL);
        }
        let (dir, _) = self.dir(m.dirfid)?;
        let flag = if m.flags & AT_REMOVEDIR != 0 {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(dir.fd(), m.name.as_bytes(), flag)?;
        Ok(Runlinkat {})
    }
}
