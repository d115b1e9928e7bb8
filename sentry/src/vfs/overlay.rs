//! A writable overlay over a read-only gofer tree: changes live in the
//! sentry's memory (the upper layer), the gofer's files (the lower layer)
//! are never written. As Linux's overlayfs:
//!
//! - the first change to a lower regular file copies it up (its whole
//!   contents, into memory);
//! - removing a lower entry leaves a whiteout that hides it (and everything
//!   under it);
//! - a directory made in the upper layer is opaque: lower entries under its
//!   path stay hidden;
//! - renaming a directory that exists in the lower layer fails with EXDEV
//!   (no redirect_dir), so `mv` falls back to copying.
//!
//! The upper layer is keyed by path: a node at `/a/b` needs no copy of `/a`
//! (lower directories are used as they are until their own attributes
//! change). File data is one `Vec<u8>` per file, in the sentry's heap and
//! not charged to the application's memory size; nothing bounds it but the
//! sentry's own memory (and its cgroup).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::gofer::{GoferFs, PathComponents};
use super::stat::{Stat, Timespec};
use crate::errno::Errno;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
/// Device number of the overlay's files (the gofer's, so a copy-up keeps
/// st_dev and st_ino).
const OVERLAY_DEV: u64 = 0x2b;
/// Inode numbers of files made in the upper layer start here, far above
/// the host's.
const FIRST_UPPER_INO: u64 = 1 << 48;

pub const DT_DIR: u8 = 4;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The time now, for timestamps.
pub fn now() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: i64::from(d.subsec_nanos()),
    }
}

/// What kind of file a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Symlink,
    /// Regular files and everything else (devices, fifos, sockets).
    File,
}

impl Kind {
    pub fn from_qid(q: &p9proto::Qid) -> Self {
        if q.is_dir() {
            Kind::Dir
        } else if q.is_symlink() {
            Kind::Symlink
        } else {
            Kind::File
        }
    }
}

/// A regular file of the upper layer.
#[derive(Debug)]
pub struct MemInode {
    pub data: Mutex<Vec<u8>>,
    pub meta: Mutex<Stat>,
}

impl MemInode {
    pub fn stat(&self) -> Stat {
        let mut st = *lock(&self.meta);
        let size = lock(&self.data).len() as i64;
        st.size = size;
        st.blocks = (size + 511) / 512;
        st
    }

    /// Marks a change of contents.
    pub fn touch(&self) {
        let t = now();
        let mut m = lock(&self.meta);
        m.mtime = t;
        m.ctime = t;
    }
}

#[derive(Debug, Clone)]
enum Node {
    Dir { meta: Stat, opaque: bool },
    File(Arc<MemInode>),
    Symlink { target: Vec<u8>, meta: Stat },
}

impl Node {
    fn kind(&self) -> Kind {
        match self {
            Node::Dir { .. } => Kind::Dir,
            Node::File(_) => Kind::File,
            Node::Symlink { .. } => Kind::Symlink,
        }
    }
}

#[derive(Debug, Default)]
struct Upper {
    nodes: BTreeMap<PathComponents, Node>,
    whiteouts: BTreeSet<PathComponents>,
}

impl Upper {
    /// Whether a lower entry at `path` may show through.
    fn lower_visible(&self, path: &[Vec<u8>]) -> bool {
        for i in 1..=path.len() {
            if self.whiteouts.contains(&path[..i]) {
                return false;
            }
            if i < path.len() {
                match self.nodes.get(&path[..i]) {
                    Some(Node::Dir { opaque: true, .. }) => return false,
                    Some(Node::File(_)) | Some(Node::Symlink { .. }) => return false,
                    _ => {}
                }
            }
        }
        true
    }

    /// Upper nodes directly inside `dir`.
    fn children<'a>(&'a self, dir: &'a [Vec<u8>]) -> impl Iterator<Item = (&'a [u8], &'a Node)> {
        self.nodes
            .range(dir.to_vec()..)
            .take_while(move |(k, _)| k.starts_with(dir))
            .filter(move |(k, _)| k.len() == dir.len() + 1)
            .map(|(k, n)| (k[k.len() - 1].as_slice(), n))
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub ty: u8,
}

/// The overlay: an upper layer in memory over a gofer's tree.
#[derive(Debug)]
pub struct OverlayFs {
    lower: Arc<GoferFs>,
    upper: Mutex<Upper>,
    next_ino: AtomicU64,
}

/// What the caller creates a file as.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl OverlayFs {
    pub fn new(lower: Arc<GoferFs>) -> Arc<Self> {
        Arc::new(Self {
            lower,
            upper: Mutex::new(Upper::default()),
            next_ino: AtomicU64::new(FIRST_UPPER_INO),
        })
    }

    pub fn lower(&self) -> &Arc<GoferFs> {
        &self.lower
    }

    fn new_meta(&self, mode: u32, owner: Owner) -> Stat {
        let t = now();
        Stat {
            dev: OVERLAY_DEV,
            ino: self.next_ino.fetch_add(1, Ordering::Relaxed),
            mode,
            nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
            uid: owner.uid,
            gid: owner.gid,
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Stat::default()
        }
    }

    /// Kinds of the longest existing prefix of `rel`, as the merged tree
    /// has it (stops after the first non-directory).
    pub fn probe(&self, rel: &[Vec<u8>]) -> Result<Vec<Kind>, Errno> {
        let lower: Vec<Kind> = {
            // Ask the gofer only as deep as the lower layer can show through.
            let upper = lock(&self.upper);
            let mut depth = rel.len();
            for i in 1..=rel.len() {
                if !upper.lower_visible(&rel[..i]) {
                    depth = i - 1;
                    break;
                }
            }
            drop(upper);
            self.lower
                .probe(&rel[..depth])?
                .iter()
                .map(Kind::from_qid)
                .collect()
        };
        let upper = lock(&self.upper);
        let mut kinds = Vec::with_capacity(rel.len());
        for i in 1..=rel.len() {
            let path = &rel[..i];
            let kind = match upper.nodes.get(path) {
                Some(node) => node.kind(),
                None if upper.lower_visible(path) => match lower.get(i - 1) {
                    Some(k) => *k,
                    None => break,
                },
                None => break,
            };
            kinds.push(kind);
            if kind != Kind::Dir {
                break;
            }
        }
        Ok(kinds)
    }

    /// The kind at `rel`, if it exists.
    pub fn kind(&self, rel: &[Vec<u8>]) -> Result<Option<Kind>, Errno> {
        if rel.is_empty() {
            return Ok(Some(Kind::Dir));
        }
        let kinds = self.probe(rel)?;
        Ok(if kinds.len() == rel.len() {
            kinds.last().copied()
        } else {
            None
        })
    }

    fn upper_node(&self, rel: &[Vec<u8>]) -> Option<Node> {
        lock(&self.upper).nodes.get(rel).cloned()
    }

    /// Whether `rel` exists in the lower layer and shows through.
    fn in_lower(&self, rel: &[Vec<u8>]) -> Result<bool, Errno> {
        if !lock(&self.upper).lower_visible(rel) {
            return Ok(false);
        }
        Ok(self.lower.probe(rel)?.len() == rel.len())
    }

    pub fn stat(&self, rel: &[Vec<u8>]) -> Result<Stat, Errno> {
        match self.upper_node(rel) {
            Some(Node::Dir { meta, .. }) => Ok(meta),
            Some(Node::File(inode)) => Ok(inode.stat()),
            Some(Node::Symlink { target, meta }) => Ok(Stat {
                size: target.len() as i64,
                ..meta
            }),
            None if rel.is_empty() || lock(&self.upper).lower_visible(rel) => {
                self.lower.stat_rel(rel)
            }
            None => Err(Errno::ENOENT),
        }
    }

    pub fn readlink(&self, rel: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
        match self.upper_node(rel) {
            Some(Node::Symlink { target, .. }) => Ok(target),
            Some(_) => Err(Errno::EINVAL),
            None => self.lower.readlink_rel(rel),
        }
    }

    /// The upper copy of the regular file at `rel`, copying it up first.
    pub fn copy_up(&self, rel: &[Vec<u8>]) -> Result<Arc<MemInode>, Errno> {
        match self.upper_node(rel) {
            Some(Node::File(inode)) => return Ok(inode),
            Some(Node::Dir { .. }) => return Err(Errno::EISDIR),
            Some(Node::Symlink { .. }) => return Err(Errno::EINVAL),
            None => {}
        }
        let st = self.lower.stat_rel(rel)?;
        match st.mode & S_IFMT {
            S_IFREG => {}
            S_IFDIR => return Err(Errno::EISDIR),
            // Devices, fifos and sockets of the host are not copied.
            _ => return Err(Errno::EROFS),
        }
        let data = self.lower.read_all_rel(rel)?;
        let inode = Arc::new(MemInode {
            data: Mutex::new(data),
            meta: Mutex::new(Stat { nlink: 1, ..st }),
        });
        let mut upper = lock(&self.upper);
        // Another task may have copied it up meanwhile: keep theirs.
        if let Some(Node::File(existing)) = upper.nodes.get(rel) {
            return Ok(Arc::clone(existing));
        }
        upper
            .nodes
            .insert(rel.to_vec(), Node::File(Arc::clone(&inode)));
        Ok(inode)
    }

    /// Makes the directory at `rel` an upper node (for its attributes).
    fn copy_up_dir(&self, rel: &[Vec<u8>]) -> Result<(), Errno> {
        if self.upper_node(rel).is_some() {
            return Ok(());
        }
        let st = self.lower.stat_rel(rel)?;
        lock(&self.upper)
            .nodes
            .entry(rel.to_vec())
            .or_insert(Node::Dir {
                meta: st,
                opaque: false,
            });
        Ok(())
    }

    /// A new empty regular file at `rel` (its parent exists, it does not).
    pub fn create_file(&self, rel: &[Vec<u8>], mode: u32, owner: Owner) -> Arc<MemInode> {
        let inode = Arc::new(MemInode {
            data: Mutex::new(Vec::new()),
            meta: Mutex::new(self.new_meta(S_IFREG | (mode & 0o7777), owner)),
        });
        let mut upper = lock(&self.upper);
        upper.whiteouts.remove(rel);
        upper
            .nodes
            .insert(rel.to_vec(), Node::File(Arc::clone(&inode)));
        inode
    }

    pub fn mkdir(&self, rel: &[Vec<u8>], mode: u32, owner: Owner) {
        let meta = self.new_meta(S_IFDIR | (mode & 0o7777), owner);
        let mut upper = lock(&self.upper);
        upper.whiteouts.remove(rel);
        upper
            .nodes
            .insert(rel.to_vec(), Node::Dir { meta, opaque: true });
    }

    pub fn symlink(&self, rel: &[Vec<u8>], target: &[u8], owner: Owner) {
        let meta = self.new_meta(S_IFLNK | 0o777, owner);
        let mut upper = lock(&self.upper);
        upper.whiteouts.remove(rel);
        upper.nodes.insert(
            rel.to_vec(),
            Node::Symlink {
                target: target.to_vec(),
                meta,
            },
        );
    }

    /// Removes the entry at `rel` (checked to exist, and for rmdir to be an
    /// empty directory).
    pub fn remove(&self, rel: &[Vec<u8>]) -> Result<(), Errno> {
        let lower = self.in_lower(rel)?;
        let mut upper = lock(&self.upper);
        let under: Vec<PathComponents> = upper
            .nodes
            .range(rel.to_vec()..)
            .take_while(|(k, _)| k.starts_with(rel))
            .map(|(k, _)| k.clone())
            .collect();
        for k in under {
            upper.nodes.remove(&k);
        }
        let stale: Vec<PathComponents> = upper
            .whiteouts
            .range(rel.to_vec()..)
            .take_while(|k| k.starts_with(rel))
            .cloned()
            .collect();
        for k in stale {
            upper.whiteouts.remove(&k);
        }
        if lower {
            upper.whiteouts.insert(rel.to_vec());
        }
        Ok(())
    }

    /// Renames `from` to `to` (both checked; `to` absent or replaceable).
    pub fn rename(&self, from: &[Vec<u8>], to: &[Vec<u8>]) -> Result<(), Errno> {
        if from == to {
            return Ok(());
        }
        let kind = self.kind(from)?.ok_or(Errno::ENOENT)?;
        let from_lower = self.in_lower(from)?;
        match kind {
            Kind::Dir if from_lower => return Err(Errno::EXDEV),
            Kind::File if self.upper_node(from).is_none() => {
                self.copy_up(from)?;
            }
            Kind::Symlink if self.upper_node(from).is_none() => {
                let target = self.lower.readlink_rel(from)?;
                let meta = self.lower.stat_rel(from)?;
                lock(&self.upper)
                    .nodes
                    .insert(from.to_vec(), Node::Symlink { target, meta });
            }
            _ => {}
        }
        // Whatever `to` was goes away (the caller checked it may).
        if self.kind(to)?.is_some() {
            self.remove(to)?;
        }
        let to_lower = self.in_lower(to)?;
        let mut upper = lock(&self.upper);
        let moved: Vec<(PathComponents, Node)> = upper
            .nodes
            .range(from.to_vec()..)
            .take_while(|(k, _)| k.starts_with(from))
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        for (k, _) in &moved {
            upper.nodes.remove(k);
        }
        for (k, mut n) in moved {
            let mut new = to.to_vec();
            new.extend(k[from.len()..].iter().cloned());
            if new.len() == to.len() {
                if let Node::Dir { opaque, .. } = &mut n {
                    // Lower entries under the new name stay hidden.
                    *opaque = *opaque || to_lower;
                }
            }
            upper.nodes.insert(new, n);
        }
        upper.whiteouts.remove(to);
        if from_lower {
            upper.whiteouts.insert(from.to_vec());
        }
        Ok(())
    }

    /// Applies `f` to the attributes of `rel`, copying it up first.
    pub fn change_meta(&self, rel: &[Vec<u8>], f: impl FnOnce(&mut Stat)) -> Result<(), Errno> {
        let kind = self.kind(rel)?.ok_or(Errno::ENOENT)?;
        match kind {
            Kind::File => {
                let inode = self.copy_up(rel)?;
                f(&mut lock(&inode.meta));
            }
            Kind::Dir => {
                self.copy_up_dir(rel)?;
                if let Some(Node::Dir { meta, .. }) = lock(&self.upper).nodes.get_mut(rel) {
                    f(meta);
                }
            }
            Kind::Symlink => {
                if self.upper_node(rel).is_none() {
                    let target = self.lower.readlink_rel(rel)?;
                    let meta = self.lower.stat_rel(rel)?;
                    lock(&self.upper)
                        .nodes
                        .insert(rel.to_vec(), Node::Symlink { target, meta });
                }
                if let Some(Node::Symlink { meta, .. }) = lock(&self.upper).nodes.get_mut(rel) {
                    f(meta);
                }
            }
        }
        Ok(())
    }

    /// The upper file at `rel`, if the file has been copied up or created.
    pub fn upper_file(&self, rel: &[Vec<u8>]) -> Option<Arc<MemInode>> {
        match self.upper_node(rel) {
            Some(Node::File(inode)) => Some(inode),
            _ => None,
        }
    }

    /// The merged listing of the directory at `rel`: upper entries replace
    /// lower ones of the same name; whiteouts hide theirs.
    pub fn readdir(&self, rel: &[Vec<u8>]) -> Result<Vec<DirEntry>, Errno> {
        let lower = if self.in_lower(rel)? && !self.is_opaque(rel) {
            self.lower.readdir_rel(rel)?
        } else {
            Vec::new()
        };
        let upper = lock(&self.upper);
        let mut out: Vec<DirEntry> = Vec::new();
        let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
        for (name, node) in upper.children(rel) {
            let (ino, ty) = match node {
                Node::Dir { meta, .. } => (meta.ino, DT_DIR),
                Node::File(inode) => (lock(&inode.meta).ino, DT_REG),
                Node::Symlink { meta, .. } => (meta.ino, DT_LNK),
            };
            seen.insert(name.to_vec());
            out.push(DirEntry {
                name: name.to_vec(),
                ino,
                ty,
            });
        }
        let mut dots = false;
        for d in lower {
            let name = d.name.as_bytes().to_vec();
            if name == b"." || name == b".." {
                dots = true;
            } else {
                if seen.contains(&name) {
                    continue;
                }
                let mut child = rel.to_vec();
                child.push(name.clone());
                if upper.whiteouts.contains(&child) {
                    continue;
                }
            }
            seen.insert(name.clone());
            out.push(DirEntry {
                name,
                ino: d.qid.path,
                ty: d.ty,
            });
        }
        if !dots {
            for dot in [&b"."[..], b".."] {
                out.insert(
                    0,
                    DirEntry {
                        name: dot.to_vec(),
                        ino: 1,
                        ty: DT_DIR,
                    },
                );
            }
        }
        Ok(out)
    }

    fn is_opaque(&self, rel: &[Vec<u8>]) -> bool {
        matches!(
            lock(&self.upper).nodes.get(rel),
            Some(Node::Dir { opaque: true, .. })
        )
    }
}

/// Bytes of a `linux_dirent64` record for a name of `len` bytes.
fn dirent64_len(len: usize) -> usize {
    (19 + len + 1 + 7) & !7
}

/// An open regular file of the upper layer.
#[derive(Debug)]
pub struct MemFile {
    pub inode: Arc<MemInode>,
    pub path: PathComponents,
    pub status_flags: u32,
    readable: bool,
    writable: bool,
    offset: Mutex<u64>,
}

/// Largest file the overlay holds (the Vec<u8> is in the sentry's heap).
pub const MAX_MEM_FILE: u64 = 1 << 32;

impl MemFile {
    pub fn new(inode: Arc<MemInode>, path: PathComponents, status_flags: u32) -> Self {
        const O_PATH: u32 = 0o10000000;
        let accmode = status_flags & 3;
        let path_only = status_flags & O_PATH != 0;
        Self {
            inode,
            path,
            status_flags,
            readable: !path_only && accmode != 1,
            writable: !path_only && accmode != 0,
            offset: Mutex::new(0),
        }
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        if !self.readable {
            return Err(Errno::EBADF);
        }
        let data = lock(&self.inode.data);
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut offset = lock(&self.offset);
        let n = self.pread(buf, *offset)?;
        *offset += n as u64;
        Ok(n)
    }

    pub fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        if !self.writable {
            return Err(Errno::EBADF);
        }
        let end = offset.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_MEM_FILE {
            return Err(Errno::EFBIG);
        }
        {
            let mut data = lock(&self.inode.data);
            let (start, end) = (offset as usize, end as usize);
            if data.len() < end {
                let more = end - data.len();
                data.try_reserve(more).map_err(|_| Errno::ENOSPC)?;
                data.resize(end, 0);
            }
            data[start..end].copy_from_slice(buf);
        }
        self.inode.touch();
        Ok(buf.len())
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        const O_APPEND: u32 = 0o2000;
        let mut offset = lock(&self.offset);
        if self.status_flags & O_APPEND != 0 {
            *offset = lock(&self.inode.data).len() as u64;
        }
        let n = self.pwrite(buf, *offset)?;
        *offset += n as u64;
        Ok(n)
    }

    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        let mut current = lock(&self.offset);
        let base = match whence {
            0 => 0,
            1 => *current as i64,
            2 => lock(&self.inode.data).len() as i64,
            _ => return Err(Errno::EINVAL),
        };
        let new = base.checked_add(offset).ok_or(Errno::EOVERFLOW)?;
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *current = new as u64;
        Ok(new as u64)
    }

    pub fn stat(&self) -> Stat {
        self.inode.stat()
    }

    /// The whole file, for a private mapping.
    pub fn contents(&self) -> Result<Arc<[u8]>, Errno> {
        if !self.readable {
            return Err(Errno::EACCES);
        }
        Ok(lock(&self.inode.data).as_slice().into())
    }
}

/// Sets the length of an upper file (truncate, ftruncate, O_TRUNC).
pub fn truncate(inode: &MemInode, len: u64) -> Result<(), Errno> {
    if len > MAX_MEM_FILE {
        return Err(Errno::EFBIG);
    }
    {
        let mut data = lock(&inode.data);
        let len = len as usize;
        if len > data.len() {
            let more = len - data.len();
            data.try_reserve(more).map_err(|_| Errno::ENOSPC)?;
        }
        data.resize(len, 0);
    }
    inode.touch();
    Ok(())
}

/// An open directory of the overlay: a listing taken when it was opened
/// (and again on rewind). Offsets are positions in the listing.
#[derive(Debug)]
pub struct OverlayDir {
    pub fs: Arc<OverlayFs>,
    /// Path inside the overlay.
    pub rel: PathComponents,
    /// Path in the sandbox.
    pub path: PathComponents,
    pub status_flags: u32,
    listing: Mutex<(Option<Vec<DirEntry>>, usize)>,
}

impl OverlayDir {
    pub fn new(
        fs: Arc<OverlayFs>,
        rel: PathComponents,
        path: PathComponents,
        status_flags: u32,
    ) -> Self {
        Self {
            fs,
            rel,
            path,
            status_flags,
            listing: Mutex::new((None, 0)),
        }
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        self.fs.stat(&self.rel)
    }

    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        let mut l = lock(&self.listing);
        let new = match whence {
            0 => offset,
            1 => (l.1 as i64).checked_add(offset).ok_or(Errno::EOVERFLOW)?,
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        if new == 0 {
            l.0 = None;
        }
        l.1 = new as usize;
        Ok(new as u64)
    }

    /// `linux_dirent64` records, at most `max` bytes (EINVAL if none fits).
    pub fn getdents64(&self, max: usize) -> Result<Vec<u8>, Errno> {
        const O_PATH: u32 = 0o10000000;
        if self.status_flags & O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        let mut l = lock(&self.listing);
        if l.0.is_none() {
            l.0 = Some(self.fs.readdir(&self.rel)?);
        }
        let (listing, pos) = &mut *l;
        let entries = listing.as_deref().unwrap_or(&[]);
        let mut out = Vec::new();
        while let Some(entry) = entries.get(*pos) {
            let reclen = dirent64_len(entry.name.len());
            if out.len() + reclen > max {
                if out.is_empty() {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            let start = out.len();
            out.extend_from_slice(&entry.ino.to_le_bytes());
            out.extend_from_slice(&(*pos as u64 + 1).to_le_bytes());
            out.extend_from_slice(&(reclen as u16).to_le_bytes());
            out.push(entry.ty);
            out.extend_from_slice(&entry.name);
            out.resize(start + reclen, 0);
            *pos += 1;
        }
        Ok(out)
    }
}
