//! One client's view of the served tree: its fid table and the dispatch of
//! each request to the operation that serves it.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use p9proto::{Rmessage, Tmessage, IOHDRSZ};

use crate::node::{FileKind, Node};

/// An opened file behind a fid.
#[derive(Debug)]
pub struct OpenFile {
    pub fd: OwnedFd,
    pub kind: FileKind,
    /// Serialises seek+getdents64 on a directory.
    pub dir_cursor: Mutex<()>,
}

/// What a fid stands for.
#[derive(Debug, Clone)]
pub enum Fid {
    /// A walked file, not opened.
    Path { node: Arc<Node>, uid: u32 },
    /// A walked file opened with Tlopen/Tlcreate.
    Open {
        node: Arc<Node>,
        uid: u32,
        file: Arc<OpenFile>,
    },
    /// An extended attribute's value (or the list of names) to read.
    XattrRead { data: Arc<Vec<u8>> },
    /// An extended attribute being written, set at Tclunk.
    XattrWrite(Arc<XattrWrite>),
}

#[derive(Debug)]
pub struct XattrWrite {
    pub target: Arc<Node>,
    pub name: Vec<u8>,
    pub size: usize,
    pub flags: i32,
    pub value: Mutex<Vec<u8>>,
}

impl Fid {
    /// The walked file, for requests that name a file.
    pub fn node(&self) -> Result<&Arc<Node>, Errno> {
        match self {
            Fid::Path { node, .. } | Fid::Open { node, .. } => Ok(node),
            _ => Err(Errno::EBADF),
        }
    }

    pub fn uid(&self) -> u32 {
        match self {
            Fid::Path { uid, .. } | Fid::Open { uid, .. } => *uid,
            _ => u32::MAX,
        }
    }

    pub fn open_file(&self) -> Result<&Arc<OpenFile>, Errno> {
        match self {
            Fid::Open { file, .. } => Ok(file),
            _ => Err(Errno::EBADF),
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection's state.
#[derive(Debug)]
pub struct Session {
    pub(crate) root: Arc<Node>,
    pub(crate) read_only: bool,
    fids: Mutex<HashMap<u32, Fid>>,
    msize: AtomicU32,
}

impl Session {
    pub fn new(root: Arc<Node>, read_only: bool, msize: u32) -> Self {
        Self {
            root,
            read_only,
            fids: Mutex::new(HashMap::new()),
            msize: AtomicU32::new(msize),
        }
    }

    pub fn msize(&self) -> u32 {
        self.msize.load(Ordering::Relaxed)
    }

    pub fn set_msize(&self, msize: u32) {
        self.msize.store(msize, Ordering::Relaxed)
    }

    /// Largest Tread/Twrite payload.
    pub fn iounit(&self) -> u32 {
        self.msize().saturating_sub(IOHDRSZ)
    }

    pub(crate) fn fid(&self, fid: u32) -> Result<Fid, Errno> {
        lock(&self.fids).get(&fid).cloned().ok_or(Errno::EBADF)
    }

    /// Binds a fid that must not be in use.
    pub(crate) fn insert_new(&self, fid: u32, state: Fid) -> Result<(), Errno> {
        let mut fids = lock(&self.fids);
        if fids.contains_key(&fid) {
            return Err(Errno::EBADF);
        }
        fids.insert(fid, state);
        Ok(())
    }

    /// Rebinds a fid that exists.
    pub(crate) fn replace(&self, fid: u32, state: Fid) -> Result<(), Errno> {
        match lock(&self.fids).get_mut(&fid) {
            Some(slot) => {
                *slot = state;
                Ok(())
            }
            None => Err(Errno::EBADF),
        }
    }

    pub(crate) fn take(&self, fid: u32) -> Result<Fid, Errno> {
        lock(&self.fids).remove(&fid).ok_or(Errno::EBADF)
    }

    /// Drops every fid (Tversion starts a new session).
    pub fn reset(&self) {
        let fids = std::mem::take(&mut *lock(&self.fids));
        for (_, fid) in fids {
            // Pending attribute writes die with the session, as on Tclunk
            // without the commit: a new session must not inherit them.
            drop(fid);
        }
    }

    pub(crate) fn writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Whether serving `msg` may block in the host kernel indefinitely
    /// (a FIFO open/read/write, a waiting lock), so it must not hold up the
    /// connection and must be interruptible by Tflush.
    pub fn may_block(&self, msg: &Tmessage) -> bool {
        let kind_of = |fid: u32| {
            self.fid(fid)
                .ok()
                .and_then(|f| f.node().ok().map(|n| n.kind()))
        };
        let slow = |k: Option<FileKind>| matches!(k, Some(k) if !k.is_seekable());
        match msg {
            Tmessage::Tlock(m) => m.flags & p9proto::types::lock_flags::BLOCK != 0,
            Tmessage::Tlopen(m) => slow(kind_of(m.fid)),
            Tmessage::Tread(m) => slow(kind_of(m.fid)),
            Tmessage::Twrite(m) => slow(kind_of(m.fid)),
            _ => false,
        }
    }

    /// Serves one request (Tversion and Tflush are the connection's).
    pub fn handle(&self, msg: Tmessage) -> Result<Rmessage, Errno> {
        use Tmessage::*;
        Ok(match msg {
            Tattach(m) => self.attach(m)?.into(),
            Twalk(m) => self.walk(m)?.into(),
            Tgetattr(m) => self.getattr(m)?.into(),
            Tsetattr(m) => self.setattr(m)?.into(),
            Tlopen(m) => self.lopen(m)?.into(),
            Tlcreate(m) => self.lcreate(m)?.into(),
            Tread(m) => self.read(m)?.into(),
            Twrite(m) => self.write(m)?.into(),
            Tclunk(m) => self.clunk(m)?.into(),
            Tremove(m) => self.remove(m)?.into(),
            Tstatfs(m) => self.statfs(m)?.into(),
            Treaddir(m) => self.readdir(m)?.into(),
            Tfsync(m) => self.fsync(m)?.into(),
            Tlock(m) => self.lock(m)?.into(),
            Tgetlock(m) => self.getlock(m)?.into(),
            Tmkdir(m) => self.mkdir(m)?.into(),
            Tsymlink(m) => self.symlink(m)?.into(),
            Tmknod(m) => self.mknod(m)?.into(),
            Tlink(m) => self.link(m)?.into(),
            Treadlink(m) => self.readlink(m)?.into(),
            Trename(m) => self.rename(m)?.into(),
            Trenameat(m) => self.renameat(m)?.into(),
            Tunlinkat(m) => self.unlinkat(m)?.into(),
            Txattrwalk(m) => self.xattrwalk(m)?.into(),
            Txattrcreate(m) => self.xattrcreate(m)?.into(),
            // No authentication scheme: attach with afid = NOFID.
            Tauth(_) => return Err(Errno::EOPNOTSUPP),
            Tversion(_) | Tflush(_) => return Err(Errno::EINVAL),
        })
    }
}
