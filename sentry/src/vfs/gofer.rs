//! A filesystem served by a gofer over 9P2000.L: the root (always read-only;
//! writes to it go to the sentry's overlay) and volumes (read-only, or
//! writable through the gofer).
//!
//! Path resolution happens here, in the sentry, never in the gofer: the
//! gofer only walks plain names and never follows a symlink, so the sentry
//! reads each link (Treadlink) and splices its target into the rest of the
//! path, exactly as Linux's namei does, with the same ELOOP limit. Each
//! resolution walks the whole physical path from the root in one Twalk (per
//! 16 names), so a path costs one round trip unless it crosses symlinks.

use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use p9proto::types::{getattr, parse_dirents, Dirent};
use p9proto::MAX_WALK_ELEMENTS;
use p9proto::{
    Client, ClientError, Qid, Tgetattr, Tlcreate, Tlopen, Tmkdir, Treaddir, Treadlink, Trenameat,
    Tsetattr, Tsymlink, Tunlinkat, Twalk,
};
use thiserror::Error;

use super::stat::{Stat, Timespec};
use crate::errno::Errno;

/// Symlinks one resolution may follow (Linux's MAXSYMLINKS).
const MAX_SYMLINKS: u32 = 40;
/// Largest frame asked of the gofer.
const MSIZE: u32 = (1 << 20) + p9proto::IOHDRSZ;
/// The device number the application sees for the gofer's files.
const GOFER_DEV: u64 = 0x2b;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

#[derive(Debug, Error)]
pub enum MountError {
    #[error("negotiating 9P2000.L with the gofer: {0}")]
    Version(ClientError),
    #[error("attaching to the gofer's root: {0}")]
    Attach(ClientError),
}

fn errno(e: ClientError) -> Errno {
    Errno(e.errno())
}

/// A path as the components of a physical path from the root (no `.`, `..`
/// or symlinks left).
pub type PathComponents = Vec<Vec<u8>>;

/// Splits a path into its non-empty components.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// The absolute path text of resolved components.
pub fn path_string(path: &[Vec<u8>]) -> Vec<u8> {
    if path.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for c in path {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

/// A fid that is clunked when dropped.
#[derive(Debug)]
pub struct FidRef {
    client: Arc<Client>,
    fid: u32,
}

impl FidRef {
    pub fn id(&self) -> u32 {
        self.fid
    }
}

impl Drop for FidRef {
    fn drop(&mut self) {
        // The gofer may already be gone (sandbox teardown): nothing to do then.
        let _ = self.client.clunk(self.fid);
    }
}

/// The result of resolving a path.
#[derive(Debug)]
pub struct Resolved {
    pub path: PathComponents,
    pub fid: FidRef,
    pub qid: Qid,
}

/// How a walk from the root ended.
enum Walk {
    /// Every name was walked; the fid names the last.
    Full(FidRef, Vec<Qid>),
    /// The walk stopped early: the qids of the names that were walked.
    Partial(Vec<Qid>),
}

/// One gofer connection mounted as a filesystem.
#[derive(Debug)]
pub struct GoferFs {
    client: Arc<Client>,
    root: u32,
    root_qid: Qid,
    /// Whether changes are refused (EROFS) by the sentry itself.
    read_only: bool,
}

/// Attribute changes for [`GoferFs::setattr_rel`] (Tsetattr's fields).
#[derive(Debug, Default, Clone, Copy)]
pub struct SetAttr {
    pub valid: u32,
    pub mode: u32,
    pub size: u64,
    pub atime: (u64, u64),
    pub mtime: (u64, u64),
}

impl GoferFs {
    /// Negotiates 9P2000.L over `stream` and attaches to the served root.
    /// The mount is read-only.
    pub fn mount(stream: UnixStream) -> Result<Arc<Self>, MountError> {
        Self::mount_with(stream, true)
    }

    /// Negotiates and attaches; with `read_only` false, changes are sent to
    /// the gofer (which must serve the tree writable).
    pub fn mount_with(stream: UnixStream, read_only: bool) -> Result<Arc<Self>, MountError> {
        let client = Arc::new(Client::connect(stream, MSIZE).map_err(MountError::Version)?);
        let (root, root_qid) = client.attach("root", "").map_err(MountError::Attach)?;
        Ok(Arc::new(Self {
            client,
            root,
            root_qid,
            read_only,
        }))
    }

    /// Walks `names` from the root, 16 names per Twalk.
    fn walk(&self, names: &[Vec<u8>]) -> Result<Walk, Errno> {
        let mut qids = Vec::with_capacity(names.len());
        let mut current: Option<FidRef> = None;
        let mut chunks = names.chunks(MAX_WALK_ELEMENTS).peekable();
        if chunks.peek().is_none() {
            // Zero names: a clone of the root fid.
            let newfid = self.client.new_fid();
            self.client
                .call(Twalk {
                    fid: self.root,
                    newfid,
                    wnames: Vec::new(),
                })
                .map_err(|e| {
                    self.client.release_fid(newfid);
                    errno(e)
                })?;
            return Ok(Walk::Full(self.fid(newfid), Vec::new()));
        }
        for chunk in chunks {
            let from = current.as_ref().map_or(self.root, FidRef::id);
            let newfid = self.client.new_fid();
            let reply = self.client.call(Twalk {
                fid: from,
                newfid,
                wnames: chunk.iter().map(|n| n.as_slice().into()).collect(),
            });
            match reply {
                Ok(r) if r.wqids.len() == chunk.len() => {
                    qids.extend(r.wqids);
                    current = Some(self.fid(newfid));
                }
                Ok(r) => {
                    self.client.release_fid(newfid);
                    qids.extend(r.wqids);
                    return Ok(Walk::Partial(qids));
                }
                // The chunk's first name failed: a partial walk overall,
                // unless nothing at all was walked.
                Err(ClientError::Remote(e)) if !qids.is_empty() => {
                    self.client.release_fid(newfid);
                    let _ = e;
                    return Ok(Walk::Partial(qids));
                }
                Err(e) => {
                    self.client.release_fid(newfid);
                    return Err(errno(e));
                }
            }
        }
        match current {
            Some(fid) => Ok(Walk::Full(fid, qids)),
            None => Err(Errno::EIO),
        }
    }

    fn fid(&self, fid: u32) -> FidRef {
        FidRef {
            client: Arc::clone(&self.client),
            fid,
        }
    }

    fn readlink_fid(&self, fid: &FidRef) -> Result<Vec<u8>, Errno> {
        let r = self
            .client
            .call(Treadlink { fid: fid.id() })
            .map_err(errno)?;
        Ok(r.target.into_bytes())
    }

    /// Resolves `path` relative to `cwd` (ignored for an absolute path).
    /// With `follow_last`, a symlink in the last component is followed too.
    pub fn resolve(
        &self,
        cwd: &[Vec<u8>],
        path: &[u8],
        follow_last: bool,
    ) -> Result<Resolved, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        // A trailing slash asks for a directory, through any final symlink.
        let must_be_dir = path.ends_with(b"/");
        let follow_last = follow_last || must_be_dir;
        let mut stack: PathComponents = if path.starts_with(b"/") {
            Vec::new()
        } else {
            cwd.to_vec()
        };
        let mut queue: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
        let mut links = 0;
        loop {
            while let Some(front) = queue.front() {
                match front.as_slice() {
                    b"." => {}
                    b".." => {
                        stack.pop();
                    }
                    _ => break,
                }
                queue.pop_front();
            }
            let mut run = Vec::new();
            while let Some(front) = queue.front() {
                if front == b"." || front == b".." {
                    break;
                }
                run.extend(queue.pop_front());
            }
            let mut names = stack.clone();
            names.extend(run.iter().cloned());
            let base = stack.len();
            let last_overall = |j: usize| j + 1 == run.len() && queue.is_empty();
            let symlink_at = match self.walk(&names)? {
                Walk::Full(fid, qids) => {
                    let link = (0..run.len()).find(|&j| {
                        qids[base + j].is_symlink() && (!last_overall(j) || follow_last)
                    });
                    match link {
                        Some(j) => j,
                        None => {
                            stack.extend(run);
                            if !queue.is_empty() {
                                continue;
                            }
                            let qid = qids.last().copied().unwrap_or(self.root_qid);
                            if must_be_dir && !qid.is_dir() {
                                return Err(Errno::ENOTDIR);
                            }
                            return Ok(Resolved {
                                path: stack,
                                fid,
                                qid,
                            });
                        }
                    }
                }
                Walk::Partial(qids) => {
                    let walked = qids.len();
                    let stopped_at = qids[walked - 1];
                    if walked > base && stopped_at.is_symlink() {
                        walked - 1 - base
                    } else if !stopped_at.is_dir() {
                        return Err(Errno::ENOTDIR);
                    } else {
                        return Err(Errno::ENOENT);
                    }
                }
            };
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let mut link_path = stack.clone();
            link_path.extend(run[..=symlink_at].iter().cloned());
            let target = match self.walk(&link_path)? {
                Walk::Full(fid, _) => self.readlink_fid(&fid)?,
                Walk::Partial(_) => return Err(Errno::ENOENT),
            };
            if target.is_empty() {
                return Err(Errno::ENOENT);
            }
            stack.extend(run[..symlink_at].iter().cloned());
            for rest in run[symlink_at + 1..].iter().rev() {
                queue.push_front(rest.clone());
            }
            let target_components: Vec<Vec<u8>> = components(&target).map(<[u8]>::to_vec).collect();
            for c in target_components.into_iter().rev() {
                queue.push_front(c);
            }
            if target.starts_with(b"/") {
                stack.clear();
            }
            // A symlink to "/" (or a trailing-slash-only target) leaves nothing
            // to walk: the loop resolves the stack itself.
        }
    }

    /// Attributes of a resolved file.
    pub fn stat(&self, fid: &FidRef) -> Result<Stat, Errno> {
        let a = self
            .client
            .call(Tgetattr {
                fid: fid.id(),
                request_mask: getattr::BASIC,
            })
            .map_err(errno)?;
        Ok(stat_of(&a))
    }

    /// The target of a resolved symlink (EINVAL for anything else).
    pub fn readlink(&self, resolved: &Resolved) -> Result<Vec<u8>, Errno> {
        if !resolved.qid.is_symlink() {
            return Err(Errno::EINVAL);
        }
        self.readlink_fid(&resolved.fid)
    }

    /// Opens a resolved file for reading. Only reads are served: the root is
    /// read-only until the overlay exists.
    pub fn open(
        self: &Arc<Self>,
        resolved: Resolved,
        status_flags: u32,
    ) -> Result<GoferFile, Errno> {
        // The resolved fid itself is opened: walking the path again would
        // cost a round trip and could find a different file.
        let opened = resolved.fid;
        self.client
            .call(Tlopen {
                fid: opened.id(),
                flags: 0,
            })
            .map_err(errno)?;
        Ok(GoferFile {
            fs: Arc::clone(self),
            fid: opened,
            qid: resolved.qid,
            path: resolved.path,
            status_flags,
            readable: true,
            writable: false,
            offset: Mutex::new(0),
            dir: Mutex::new(DirCursor::default()),
        })
    }

    /// An `O_PATH` file: a handle for fstat, fchdir and *at() calls, never
    /// opened for I/O.
    pub fn open_path(self: &Arc<Self>, resolved: Resolved, status_flags: u32) -> GoferFile {
        GoferFile {
            fs: Arc::clone(self),
            fid: resolved.fid,
            qid: resolved.qid,
            path: resolved.path,
            status_flags,
            readable: false,
            writable: false,
            offset: Mutex::new(0),
            dir: Mutex::new(DirCursor::default()),
        }
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The qids of the longest existing prefix of `rel` (a physical path
    /// from this filesystem's root): one Twalk per 16 names.
    pub fn probe(&self, rel: &[Vec<u8>]) -> Result<Vec<Qid>, Errno> {
        match self.walk(rel) {
            Ok(Walk::Full(_, qids)) | Ok(Walk::Partial(qids)) => Ok(qids),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn walk_full(&self, rel: &[Vec<u8>]) -> Result<(FidRef, Qid), Errno> {
        match self.walk(rel)? {
            Walk::Full(fid, qids) => {
                let qid = qids.last().copied().unwrap_or(self.root_qid);
                Ok((fid, qid))
            }
            Walk::Partial(_) => Err(Errno::ENOENT),
        }
    }

    /// Attributes of the file at `rel`: Twalk, Tgetattr and Tclunk in one
    /// round trip when the path fits one Twalk.
    pub fn stat_rel(&self, rel: &[Vec<u8>]) -> Result<Stat, Errno> {
        if rel.len() <= MAX_WALK_ELEMENTS {
            let names: Vec<&[u8]> = rel.iter().map(Vec::as_slice).collect();
            return self
                .client
                .walk_getattr(self.root, &names, getattr::BASIC)
                .map(|a| stat_of(&a))
                .map_err(errno);
        }
        let (fid, _) = self.walk_full(rel)?;
        self.stat(&fid)
    }

    /// The target of the symlink at `rel`.
    pub fn readlink_rel(&self, rel: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
        let (fid, qid) = self.walk_full(rel)?;
        if !qid.is_symlink() {
            return Err(Errno::EINVAL);
        }
        self.readlink_fid(&fid)
    }

    /// Opens the file at `rel`; `abs` is its path in the sandbox (for
    /// fchdir and *at()). `lopen_flags` are the host open flags (O_ACCMODE,
    /// O_TRUNC) and must be read-only on a read-only mount.
    pub fn open_rel(
        self: &Arc<Self>,
        rel: &[Vec<u8>],
        abs: PathComponents,
        status_flags: u32,
        lopen_flags: u32,
    ) -> Result<GoferFile, Errno> {
        const O_ACCMODE: u32 = 3;
        if self.read_only && (lopen_flags & O_ACCMODE != 0 || lopen_flags & 0o1000 != 0) {
            return Err(Errno::EROFS);
        }
        let (fid, qid) = self.walk_full(rel)?;
        self.client
            .call(Tlopen {
                fid: fid.id(),
                flags: lopen_flags,
            })
            .map_err(errno)?;
        let accmode = lopen_flags & O_ACCMODE;
        Ok(GoferFile {
            fs: Arc::clone(self),
            fid,
            qid,
            path: abs,
            status_flags,
            readable: accmode != 1,
            writable: accmode != 0,
            offset: Mutex::new(0),
            dir: Mutex::new(DirCursor::default()),
        })
    }

    /// An O_PATH handle on `rel`.
    pub fn open_path_rel(
        self: &Arc<Self>,
        rel: &[Vec<u8>],
        abs: PathComponents,
        status_flags: u32,
    ) -> Result<GoferFile, Errno> {
        let (fid, qid) = self.walk_full(rel)?;
        Ok(self.open_path(
            Resolved {
                path: abs,
                fid,
                qid,
            },
            status_flags,
        ))
    }

    /// The whole contents of the regular file at `rel`.
    pub fn read_all_rel(&self, rel: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
        let (fid, _) = self.walk_full(rel)?;
        self.client
            .call(Tlopen {
                fid: fid.id(),
                flags: 0,
            })
            .map_err(errno)?;
        self.client.read_to_end(fid.id(), 0).map_err(errno)
    }

    /// Every entry of the directory at `rel`, "." and ".." included.
    pub fn readdir_rel(&self, rel: &[Vec<u8>]) -> Result<Vec<Dirent>, Errno> {
        let (fid, qid) = self.walk_full(rel)?;
        if !qid.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        self.client
            .call(Tlopen {
                fid: fid.id(),
                flags: 0,
            })
            .map_err(errno)?;
        self.client.readdir_all(fid.id()).map_err(errno)
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Creates and opens `name` in the directory `parent` (Tlcreate).
    #[allow(clippy::too_many_arguments)]
    pub fn create_rel(
        self: &Arc<Self>,
        parent: &[Vec<u8>],
        name: &[u8],
        abs: PathComponents,
        lopen_flags: u32,
        mode: u32,
        gid: u32,
        status_flags: u32,
    ) -> Result<GoferFile, Errno> {
        self.check_writable()?;
        let (fid, _) = self.walk_full(parent)?;
        let r = self
            .client
            .call(Tlcreate {
                fid: fid.id(),
                name: name.into(),
                flags: lopen_flags,
                mode,
                gid,
            })
            .map_err(errno)?;
        let accmode = lopen_flags & 3;
        Ok(GoferFile {
            fs: Arc::clone(self),
            fid,
            qid: r.qid,
            path: abs,
            status_flags,
            readable: accmode != 1,
            writable: accmode != 0,
            offset: Mutex::new(0),
            dir: Mutex::new(DirCursor::default()),
        })
    }

    pub fn mkdir_rel(
        &self,
        parent: &[Vec<u8>],
        name: &[u8],
        mode: u32,
        gid: u32,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        let (fid, _) = self.walk_full(parent)?;
        self.client
            .call(Tmkdir {
                dfid: fid.id(),
                name: name.into(),
                mode,
                gid,
            })
            .map_err(errno)?;
        Ok(())
    }

    pub fn symlink_rel(
        &self,
        parent: &[Vec<u8>],
        name: &[u8],
        target: &[u8],
        gid: u32,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        let (fid, _) = self.walk_full(parent)?;
        self.client
            .call(Tsymlink {
                fid: fid.id(),
                name: name.into(),
                symtgt: target.into(),
                gid,
            })
            .map_err(errno)?;
        Ok(())
    }

    /// Removes `name` from `parent`; `flags` is AT_REMOVEDIR or 0.
    pub fn unlink_rel(&self, parent: &[Vec<u8>], name: &[u8], flags: u32) -> Result<(), Errno> {
        self.check_writable()?;
        let (fid, _) = self.walk_full(parent)?;
        self.client
            .call(Tunlinkat {
                dirfid: fid.id(),
                name: name.into(),
                flags,
            })
            .map_err(errno)?;
        Ok(())
    }

    pub fn rename_rel(
        &self,
        old_parent: &[Vec<u8>],
        old_name: &[u8],
        new_parent: &[Vec<u8>],
        new_name: &[u8],
    ) -> Result<(), Errno> {
        self.check_writable()?;
        let (old, _) = self.walk_full(old_parent)?;
        let (new, _) = self.walk_full(new_parent)?;
        self.client
            .call(Trenameat {
                olddirfid: old.id(),
                oldname: old_name.into(),
                newdirfid: new.id(),
                newname: new_name.into(),
            })
            .map_err(errno)?;
        Ok(())
    }

    pub fn setattr_rel(&self, rel: &[Vec<u8>], attr: SetAttr) -> Result<(), Errno> {
        self.check_writable()?;
        let (fid, _) = self.walk_full(rel)?;
        self.setattr_fid(&fid, attr)
    }

    fn setattr_fid(&self, fid: &FidRef, attr: SetAttr) -> Result<(), Errno> {
        self.client
            .call(Tsetattr {
                fid: fid.id(),
                valid: attr.valid,
                mode: attr.mode,
                uid: 0,
                gid: 0,
                size: attr.size,
                atime_sec: attr.atime.0,
                atime_nsec: attr.atime.1,
                mtime_sec: attr.mtime.0,
                mtime_nsec: attr.mtime.1,
            })
            .map_err(errno)?;
        Ok(())
    }

    /// The bytes of the regular file at `path`, checked to be executable by
    /// someone (EACCES otherwise, as execve).
    pub fn read_executable(
        self: &Arc<Self>,
        cwd: &[Vec<u8>],
        path: &[u8],
    ) -> Result<(Vec<u8>, PathComponents), Errno> {
        let resolved = self.resolve(cwd, path, true)?;
        let st = self.stat(&resolved.fid)?;
        if st.mode & S_IFMT != S_IFREG || st.mode & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        let path = resolved.path.clone();
        let file = self.open(resolved, 0)?;
        let mut data = Vec::with_capacity(st.size.max(0) as usize);
        let mut offset = 0;
        loop {
            let chunk = self
                .client
                .read(file.fid.id(), offset, self.client.iounit())
                .map_err(errno)?;
            if chunk.is_empty() {
                break;
            }
            offset += chunk.len() as u64;
            data.extend_from_slice(&chunk);
        }
        Ok((data, path))
    }
}

/// Where a directory listing stands.
#[derive(Debug, Default)]
struct DirCursor {
    /// The gofer's cookie for the next Treaddir.
    cookie: u64,
    /// Entries read from the gofer but not yet given to the application.
    pending: VecDeque<Dirent>,
    eof: bool,
}

/// A file of the gofer opened by the application.
#[derive(Debug)]
pub struct GoferFile {
    fs: Arc<GoferFs>,
    fid: FidRef,
    qid: Qid,
    path: PathComponents,
    status_flags: u32,
    /// False for O_PATH handles.
    readable: bool,
    /// Opened for writing (writable volumes only).
    writable: bool,
    offset: Mutex<u64>,
    dir: Mutex<DirCursor>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes of a `linux_dirent64` record for a name of `len` bytes.
fn dirent64_len(len: usize) -> usize {
    (19 + len + 1 + 7) & !7
}

impl GoferFile {
    pub fn path(&self) -> &[Vec<u8>] {
        &self.path
    }

    pub fn is_dir(&self) -> bool {
        self.qid.is_dir()
    }

    pub fn status_flags(&self) -> u32 {
        self.status_flags
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        self.fs.stat(&self.fid)
    }

    /// Reads at `offset` until `buf` is full or the file ends.
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        if !self.readable {
            return Err(Errno::EBADF);
        }
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        let client = &self.fs.client;
        let mut done = 0;
        while done < buf.len() {
            let want = (buf.len() - done).min(client.iounit() as usize) as u32;
            let chunk = client
                .read(self.fid.id(), offset + done as u64, want)
                .map_err(errno)?;
            if chunk.is_empty() {
                break;
            }
            buf[done..done + chunk.len()].copy_from_slice(&chunk);
            done += chunk.len();
        }
        Ok(done)
    }

    /// Writes all of `buf` at `offset` (writable volumes).
    pub fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        if !self.writable {
            return Err(Errno::EBADF);
        }
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        self.fs
            .client
            .write_all(self.fid.id(), offset, buf)
            .map_err(errno)?;
        Ok(buf.len())
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        const O_APPEND: u32 = 0o2000;
        let mut offset = lock(&self.offset);
        if self.status_flags & O_APPEND != 0 {
            *offset = self.stat()?.size.max(0) as u64;
        }
        let n = self.pwrite(buf, *offset)?;
        *offset += n as u64;
        Ok(n)
    }

    /// Changes attributes through the open file (ftruncate, fchmod, futimens).
    pub fn setattr(&self, attr: SetAttr) -> Result<(), Errno> {
        self.fs.check_writable()?;
        self.fs.setattr_fid(&self.fid, attr)
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut offset = lock(&self.offset);
        let n = self.pread(buf, *offset)?;
        *offset += n as u64;
        Ok(n)
    }

    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        const SEEK_SET: u32 = 0;
        const SEEK_CUR: u32 = 1;
        const SEEK_END: u32 = 2;
        let mut current = lock(&self.offset);
        let base = match whence {
            SEEK_SET => 0,
            SEEK_CUR => *current as i64,
            SEEK_END => self.stat()?.size,
            _ => return Err(Errno::EINVAL),
        };
        let new = base.checked_add(offset).ok_or(Errno::EOVERFLOW)?;
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        if self.is_dir() {
            // Directory offsets are the gofer's cookies; 0 starts over.
            let mut dir = lock(&self.dir);
            *dir = DirCursor {
                cookie: new as u64,
                ..DirCursor::default()
            };
        }
        *current = new as u64;
        Ok(new as u64)
    }

    /// Fills `out` (at most `max` bytes) with `linux_dirent64` records.
    /// Returns EINVAL when not even one entry fits, as getdents64.
    pub fn getdents64(&self, max: usize) -> Result<Vec<u8>, Errno> {
        if !self.readable {
            return Err(Errno::EBADF);
        }
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut dir = lock(&self.dir);
        let mut out = Vec::new();
        loop {
            while let Some(entry) = dir.pending.front() {
                let name = entry.name.as_bytes();
                let reclen = dirent64_len(name.len());
                if out.len() + reclen > max {
                    if out.is_empty() {
                        return Err(Errno::EINVAL);
                    }
                    return Ok(out);
                }
                let start = out.len();
                out.extend_from_slice(&entry.qid.path.to_le_bytes());
                out.extend_from_slice(&entry.offset.to_le_bytes());
                out.extend_from_slice(&(reclen as u16).to_le_bytes());
                out.push(entry.ty);
                out.extend_from_slice(name);
                out.resize(start + reclen, 0);
                dir.cookie = entry.offset;
                dir.pending.pop_front();
            }
            if dir.eof {
                return Ok(out);
            }
            let count = self.fs.client.iounit().min(64 * 1024);
            let data = self
                .fs
                .client
                .call(Treaddir {
                    fid: self.fid.id(),
                    offset: dir.cookie,
                    count,
                })
                .map_err(errno)?
                .data;
            let entries = parse_dirents(&data.0).map_err(|_| Errno::EIO)?;
            if entries.is_empty() {
                dir.eof = true;
            }
            dir.pending.extend(entries);
        }
    }

    /// The whole file, for a private file mapping.
    pub fn contents(&self) -> Result<Arc<[u8]>, Errno> {
        let size = self.stat()?.size.max(0) as usize;
        let mut data = vec![0u8; size];
        let n = self.pread(&mut data, 0)?;
        data.truncate(n);
        Ok(data.into())
    }
}

/// The application's view of a gofer file's attributes.
fn stat_of(a: &p9proto::Rgetattr) -> Stat {
    Stat {
        dev: GOFER_DEV,
        ino: a.qid.path,
        mode: a.mode,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        size: a.size as i64,
        blksize: a.blksize as i64,
        blocks: a.blocks as i64,
        atime: Timespec {
            sec: a.atime_sec as i64,
            nsec: a.atime_nsec as i64,
        },
        mtime: Timespec {
            sec: a.mtime_sec as i64,
            nsec: a.mtime_nsec as i64,
        },
        ctime: Timespec {
            sec: a.ctime_sec as i64,
            nsec: a.ctime_nsec as i64,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_and_path_strings() {
        let c: Vec<&[u8]> = components(b"//usr/./lib//x/").collect();
        assert_eq!(c, vec![&b"usr"[..], b".", b"lib", b"x"]);
        assert_eq!(path_string(&[]), b"/");
        assert_eq!(path_string(&[b"a".to_vec(), b"b".to_vec()]), b"/a/b");
    }

    #[test]
    fn dirent_records_are_8_byte_aligned() {
        assert_eq!(dirent64_len(1), 24);
        assert_eq!(dirent64_len(4), 24);
        assert_eq!(dirent64_len(5), 32);
    }
}
