//! Files as the gofer holds them: an `O_PATH` descriptor per walked file,
//! linked to its parent. Every lookup is one `openat(parent, name,
//! O_PATH|O_NOFOLLOW)` of a single validated name, so no request can
//! resolve a path outside the served root: a symlink is opened as itself
//! (never followed), and `..` is answered from the node's own parent link
//! (the root is its own parent).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use p9proto::types::qid_type;
use p9proto::Qid;

/// Longest single name Linux accepts.
const NAME_MAX: usize = 255;

/// What kind of file a node is, fixed when it was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Regular,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl FileKind {
    pub fn from_mode(mode: u32) -> Self {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => Self::Directory,
            SFlag::S_IFLNK => Self::Symlink,
            SFlag::S_IFIFO => Self::Fifo,
            SFlag::S_IFSOCK => Self::Socket,
            SFlag::S_IFCHR => Self::CharDevice,
            SFlag::S_IFBLK => Self::BlockDevice,
            _ => Self::Regular,
        }
    }

    /// Whether positional I/O works on it (pread/pwrite rather than read/write).
    pub fn is_seekable(self) -> bool {
        matches!(self, Self::Regular | Self::Directory | Self::BlockDevice)
    }
}

/// Checks a name that creates, renames or removes a directory entry.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// The identity of a file from its stat.
pub fn qid_of(st: &FileStat) -> Qid {
    // Keep in step with Node::qid.
    let ty = match FileKind::from_mode(st.st_mode) {
        FileKind::Directory => qid_type::DIR,
        FileKind::Symlink => qid_type::SYMLINK,
        _ => qid_type::FILE,
    };
    Qid {
        ty,
        version: 0,
        path: st.st_ino,
    }
}

/// A file reached by walking from the root.
#[derive(Debug)]
pub struct Node {
    fd: OwnedFd,
    /// `None` only for the root.
    parent: Option<Arc<Node>>,
    /// Name in `parent` when looked up (empty for the root).
    name: Vec<u8>,
    kind: FileKind,
    dev: u64,
    ino: u64,
}

impl Node {
    /// Opens the served root directory.
    pub fn open_root(path: &Path) -> Result<Arc<Node>, Errno> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Self::from_fd(fd, None, Vec::new())
    }

    fn from_fd(fd: OwnedFd, parent: Option<Arc<Node>>, name: Vec<u8>) -> Result<Arc<Node>, Errno> {
        let st = stat_fd(fd.as_fd())?;
        Ok(Arc::new(Node {
            fd,
            parent,
            name,
            kind: FileKind::from_mode(st.st_mode),
            dev: st.st_dev,
            ino: st.st_ino,
        }))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// The identity the file had when it was looked up (type and inode do
    /// not change while an fd holds the file).
    pub fn qid(&self) -> Qid {
        let ty = match self.kind {
            FileKind::Directory => qid_type::DIR,
            FileKind::Symlink => qid_type::SYMLINK,
            _ => qid_type::FILE,
        };
        Qid {
            ty,
            version: 0,
            path: self.ino,
        }
    }

    pub fn is_root(&self) -> bool {
        self.parent.is_none()
    }

    /// Parent directory and this file's name in it; EBUSY for the root,
    /// which has no entry to rename or remove.
    pub fn entry(&self) -> Result<(&Arc<Node>, &[u8]), Errno> {
        match &self.parent {
            Some(p) => Ok((p, &self.name)),
            None => Err(Errno::EBUSY),
        }
    }

    pub fn stat(&self) -> Result<FileStat, Errno> {
        stat_fd(self.fd.as_fd())
    }

    /// Walks one name from this directory.
    pub fn lookup(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Node>, Errno> {
        if self.kind != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        match name {
            b"." => return Ok(self.clone()),
            b".." => return Ok(self.parent.clone().unwrap_or_else(|| self.clone())),
            _ => check_name(name)?,
        }
        let fd = openat(
            self.fd.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Self::from_fd(fd, Some(self.clone()), name.to_vec())
    }

    /// The same file under a new parent and name (after a rename).
    pub fn renamed(&self, parent: Arc<Node>, name: &[u8]) -> Result<Arc<Node>, Errno> {
        let fd = self.fd.try_clone().map_err(|_| Errno::EMFILE)?;
        Self::from_fd(fd, Some(parent), name.to_vec())
    }

    /// Opens the file for I/O. A directory is reopened through its own
    /// descriptor; anything else through its parent and name, refusing a
    /// symlink and checking that the name still holds the same file (it may
    /// have been renamed or replaced since the walk).
    pub fn reopen(&self, flags: OFlag) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let fd = match (&self.parent, self.kind) {
            (_, FileKind::Directory) | (None, _) => {
                openat(self.fd.as_fd(), ".", flags, Mode::empty())?
            }
            (Some(parent), FileKind::Symlink) => {
                let _ = parent;
                return Err(Errno::ELOOP);
            }
            (Some(parent), _) => openat(
                parent.fd.as_fd(),
                self.name.as_slice(),
                flags | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )?,
        };
        let st = stat_fd(fd.as_fd())?;
        if st.st_dev != self.dev || st.st_ino != self.ino {
            return Err(Errno::ESTALE);
        }
        Ok(fd)
    }
}

/// fstat of any descriptor, `O_PATH` ones included.
pub fn stat_fd(fd: BorrowedFd<'_>) -> Result<FileStat, Errno> {
    fstatat(
        fd,
        "",
        nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_a_directory_are_refused() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/etc", b"a\0b"] {
            assert_eq!(check_name(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(check_name(&[b'x'; 256]), Err(Errno::ENAMETOOLONG));
        assert_eq!(check_name(b"...."), Ok(()));
    }

    #[test]
    fn dotdot_at_root_stays_at_root_and_symlinks_are_not_followed() {
        let dir = std::env::temp_dir().join(format!("gofer-node-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("sub/out")).unwrap();
        let root = Node::open_root(&dir).unwrap();
        let up = root.lookup(b"..").unwrap();
        assert_eq!(up.ino, root.ino);
        let link = root.lookup(b"sub").unwrap().lookup(b"out").unwrap();
        assert_eq!(link.kind(), FileKind::Symlink);
        assert_eq!(link.lookup(b"passwd").unwrap_err(), Errno::ENOTDIR);
        assert_eq!(link.reopen(OFlag::O_RDONLY).unwrap_err(), Errno::ELOOP);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
