//! The sandbox's mount table and path resolution across it.
//!
//! Paths are resolved here, in the sentry, one physical path at a time as
//! Linux's namei does: `.` and `..` are applied to the path so far (so `..`
//! at a volume's root goes back into the parent mount), symlinks are read
//! and spliced in (at most 40), and a path that reaches a mount point
//! continues in the mounted filesystem's root. Each filesystem is asked
//! about a whole run of names at once (one Twalk for the gofer).

use std::collections::VecDeque;
use std::sync::Arc;

use super::dev::DevFs;
use super::gofer::{components, GoferFs, PathComponents, SetAttr};
use super::overlay::{self, Kind, MemFile, OverlayDir, OverlayFs, Owner};
use super::stat::{Stat, Timespec};
use super::File;
use crate::errno::Errno;

/// Symlinks one resolution may follow (Linux's MAXSYMLINKS).
const MAX_SYMLINKS: u32 = 40;
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const O_ACCMODE: u32 = 0o3;
const O_TRUNC: u32 = 0o1000;
const O_PATH: u32 = 0o10000000;
const AT_REMOVEDIR: u32 = 0x200;

/// A mounted filesystem.
#[derive(Debug, Clone)]
pub enum Fs {
    /// Served by a gofer: read-only, or writable through it.
    Gofer(Arc<GoferFs>),
    /// A gofer tree with the sentry's in-memory upper layer over it.
    Overlay(Arc<OverlayFs>),
    /// The sentry's devices (at /dev).
    Dev(Arc<DevFs>),
}

impl Fs {
    /// Kinds of the longest existing prefix of `rel`.
    fn probe(&self, rel: &[Vec<u8>]) -> Result<Vec<Kind>, Errno> {
        match self {
            Fs::Gofer(g) => Ok(g.probe(rel)?.iter().map(Kind::from_qid).collect()),
            Fs::Overlay(o) => o.probe(rel),
            Fs::Dev(d) => Ok(d.probe(rel)),
        }
    }

    fn readlink(&self, rel: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
        match self {
            Fs::Gofer(g) => g.readlink_rel(rel),
            Fs::Overlay(o) => o.readlink(rel),
            Fs::Dev(_) => Err(Errno::EINVAL),
        }
    }

    fn stat(&self, rel: &[Vec<u8>]) -> Result<Stat, Errno> {
        match self {
            Fs::Gofer(g) => g.stat_rel(rel),
            Fs::Overlay(o) => o.stat(rel),
            Fs::Dev(d) => d.stat(rel),
        }
    }
}

/// A filesystem mounted at a path of the sandbox.
#[derive(Debug)]
struct Mount {
    at: PathComponents,
    fs: Fs,
}

/// The result of resolving a path: the physical path in the sandbox and
/// what it names.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub path: PathComponents,
    pub kind: Kind,
}

impl Resolved {
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// A change of attributes.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    Mode(u32),
    /// New atime and mtime; None leaves one as it is.
    Times(Option<Timespec>, Option<Timespec>),
    Size(u64),
}

/// The mount table; mounts[0] is the root.
#[derive(Debug)]
pub struct Vfs {
    mounts: Vec<Mount>,
}

impl Vfs {
    pub fn new(root: Fs) -> Self {
        Self {
            mounts: vec![Mount {
                at: Vec::new(),
                fs: root,
            }],
        }
    }

    /// Mounts `fs` at the absolute path `at` (later mounts cover earlier).
    pub fn mount(&mut self, at: &[u8], fs: Fs) {
        let at: PathComponents = components(at)
            .filter(|c| *c != b".")
            .map(<[u8]>::to_vec)
            .collect();
        self.mounts.push(Mount { at, fs });
    }

    /// Mounts the sentry's devfs at /dev, over whatever the root has there.
    pub fn mount_dev(&mut self) {
        self.mount(b"/dev", Fs::Dev(Arc::new(DevFs::new())));
    }

    /// The root filesystem.
    pub fn root_fs(&self) -> &Fs {
        &self.mounts[0].fs
    }

    /// The mount `abs` lies in, and the path inside it.
    fn locate<'a>(&self, abs: &'a [Vec<u8>]) -> (&Fs, &'a [Vec<u8>]) {
        let m = self
            .mounts
            .iter()
            .rev()
            .filter(|m| abs.starts_with(&m.at))
            .max_by_key(|m| m.at.len())
            .unwrap_or(&self.mounts[0]);
        (&m.fs, &abs[m.at.len()..])
    }

    fn is_mount_point(&self, abs: &[Vec<u8>]) -> bool {
        !abs.is_empty() && self.mounts.iter().any(|m| m.at == abs)
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
        let mut kind = Kind::Dir;
        let mut queue: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
        let mut links = 0;
        'outer: while let Some(name) = queue.pop_front() {
            if kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            match name.as_slice() {
                b"." => continue,
                b".." => {
                    stack.pop();
                    kind = Kind::Dir;
                    continue;
                }
                _ => {}
            }
            let mut run = vec![name];
            while let Some(front) = queue.front() {
                if front == b"." || front == b".." {
                    break;
                }
                run.extend(queue.pop_front());
            }
            // Stop the run at the next mount point: it continues in the
            // mounted filesystem's root.
            let mut cut = run.len();
            let mut candidate = stack.clone();
            for (j, name) in run.iter().enumerate() {
                candidate.push(name.clone());
                if self.is_mount_point(&candidate) {
                    cut = j;
                    break;
                }
            }
            let (fs, base) = self.locate(&stack);
            let mut rel = base.to_vec();
            let base_len = rel.len();
            rel.extend(run[..cut].iter().cloned());
            let kinds = if cut == 0 {
                Vec::new()
            } else {
                fs.probe(&rel)?
            };
            for j in 0..cut {
                if kind != Kind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                let Some(&k) = kinds.get(base_len + j) else {
                    return Err(Errno::ENOENT);
                };
                let last = j + 1 == run.len() && queue.is_empty();
                if k == Kind::Symlink && (!last || follow_last) {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = fs.readlink(&rel[..=base_len + j])?;
                    if target.is_empty() {
                        return Err(Errno::ENOENT);
                    }
                    for rest in run[j + 1..].iter().rev() {
                        queue.push_front(rest.clone());
                    }
                    for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                        queue.push_front(c.to_vec());
                    }
                    if target.starts_with(b"/") {
                        stack.clear();
                    }
                    kind = Kind::Dir;
                    continue 'outer;
                }
                stack.push(run[j].clone());
                kind = k;
            }
            if cut < run.len() {
                if kind != Kind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                stack.push(run[cut].clone());
                kind = Kind::Dir;
                for rest in run[cut + 1..].iter().rev() {
                    queue.push_front(rest.clone());
                }
            }
        }
        if must_be_dir && kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(Resolved { path: stack, kind })
    }

    /// Resolves the directory of the last component of `path` and returns
    /// it with that name (for the calls that create or remove a name).
    /// "." and ".." as the last name are `Err(EEXIST)`-style cases the
    /// caller maps: they come back as the name itself.
    pub fn resolve_parent(
        &self,
        cwd: &[Vec<u8>],
        path: &[u8],
    ) -> Result<(Resolved, Vec<u8>), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trimmed = {
            let mut end = path.len();
            while end > 1 && path[end - 1] == b'/' {
                end -= 1;
            }
            &path[..end]
        };
        if trimmed == b"/" {
            return Err(Errno::EBUSY);
        }
        let (parent, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(0) => (&b"/"[..], &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b"."[..], trimmed),
        };
        let dir = self.resolve(cwd, parent, true)?;
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((dir, name.to_vec()))
    }

    /// What `abs` names, if anything.
    pub fn lookup(&self, abs: &[Vec<u8>]) -> Result<Option<Kind>, Errno> {
        if abs.is_empty() || self.is_mount_point(abs) {
            return Ok(Some(Kind::Dir));
        }
        let (fs, rel) = self.locate(abs);
        let kinds = fs.probe(rel)?;
        Ok(if kinds.len() == rel.len() {
            kinds.last().copied()
        } else {
            None
        })
    }

    pub fn stat(&self, abs: &[Vec<u8>]) -> Result<Stat, Errno> {
        let (fs, rel) = self.locate(abs);
        fs.stat(rel)
    }

    pub fn readlink(&self, resolved: &Resolved) -> Result<Vec<u8>, Errno> {
        if resolved.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        let (fs, rel) = self.locate(&resolved.path);
        fs.readlink(rel)
    }

    /// Whether changes under `abs` are refused (EROFS).
    pub fn read_only(&self, abs: &[Vec<u8>]) -> bool {
        match self.locate(abs).0 {
            Fs::Gofer(g) => g.read_only(),
            Fs::Overlay(_) | Fs::Dev(_) => false,
        }
    }

    /// Opens an existing file. `flags` are open(2)'s; `status` what F_GETFL
    /// reports. Directories and symlinks were checked by the caller.
    pub fn open(&self, resolved: &Resolved, flags: u32, status: u32) -> Result<File, Errno> {
        let abs = resolved.path.clone();
        let (fs, rel) = self.locate(&resolved.path);
        let writes = flags & O_ACCMODE != 0 || flags & O_TRUNC != 0;
        match fs {
            Fs::Gofer(g) => {
                if flags & O_PATH != 0 {
                    return Ok(File::Gofer(g.open_path_rel(rel, abs, status)?));
                }
                let lopen = if resolved.is_dir() {
                    0
                } else {
                    flags & (O_ACCMODE | O_TRUNC)
                };
                Ok(File::Gofer(g.open_rel(rel, abs, status, lopen)?))
            }
            Fs::Overlay(o) => {
                if resolved.is_dir() {
                    return Ok(File::OverlayDir(OverlayDir::new(
                        Arc::clone(o),
                        rel.to_vec(),
                        abs,
                        status,
                    )));
                }
                if let Some(inode) = o.upper_file(rel) {
                    if flags & O_TRUNC != 0 && flags & O_PATH == 0 {
                        overlay::truncate(&inode, 0)?;
                    }
                    return Ok(File::Mem(MemFile::new(inode, abs, status)));
                }
                if flags & O_PATH != 0 {
                    return Ok(File::Gofer(o.lower().open_path_rel(rel, abs, status)?));
                }
                if !writes {
                    return Ok(File::Gofer(o.lower().open_rel(rel, abs, status, 0)?));
                }
                let inode = o.copy_up(rel)?;
                if flags & O_TRUNC != 0 {
                    overlay::truncate(&inode, 0)?;
                }
                Ok(File::Mem(MemFile::new(inode, abs, status)))
            }
            Fs::Dev(d) => Ok(File::Dev(d.open(rel, abs, status))),
        }
    }

    /// Creates the regular file `name` in `dir` and opens it.
    pub fn create(
        &self,
        dir: &Resolved,
        name: &[u8],
        flags: u32,
        mode: u32,
        owner: Owner,
        status: u32,
    ) -> Result<File, Errno> {
        let mut abs = dir.path.clone();
        abs.push(name.to_vec());
        let (fs, rel) = self.locate(&abs);
        match fs {
            Fs::Gofer(g) => {
                let parent = &rel[..rel.len() - 1];
                let lopen = flags & (O_ACCMODE | O_TRUNC);
                Ok(File::Gofer(g.create_rel(
                    parent,
                    name,
                    abs.clone(),
                    lopen,
                    mode & 0o7777,
                    owner.gid,
                    status,
                )?))
            }
            Fs::Overlay(o) => {
                let inode = o.create_file(rel, mode, owner);
                Ok(File::Mem(MemFile::new(inode, abs, status)))
            }
            // Device entries are not made by the application.
            Fs::Dev(_) => Err(Errno::EPERM),
        }
    }

    /// Splits `abs` (not a mount point) into its filesystem, the parent's
    /// path in it and the name.
    fn locate_entry<'a>(&self, abs: &'a [Vec<u8>]) -> Result<(&Fs, &'a [Vec<u8>]), Errno> {
        if abs.is_empty() || self.is_mount_point(abs) {
            return Err(Errno::EBUSY);
        }
        Ok(self.locate(abs))
    }

    pub fn mkdir(&self, abs: &[Vec<u8>], mode: u32, owner: Owner) -> Result<(), Errno> {
        let (fs, rel) = self.locate_entry(abs)?;
        match fs {
            Fs::Gofer(g) => g.mkdir_rel(
                &rel[..rel.len() - 1],
                &rel[rel.len() - 1],
                mode & 0o7777,
                owner.gid,
            ),
            Fs::Overlay(o) => {
                o.mkdir(rel, mode, owner);
                Ok(())
            }
            Fs::Dev(_) => Err(Errno::EPERM),
        }
    }

    pub fn symlink(&self, abs: &[Vec<u8>], target: &[u8], owner: Owner) -> Result<(), Errno> {
        let (fs, rel) = self.locate_entry(abs)?;
        match fs {
            Fs::Gofer(g) => g.symlink_rel(
                &rel[..rel.len() - 1],
                &rel[rel.len() - 1],
                target,
                owner.gid,
            ),
            Fs::Overlay(o) => {
                o.symlink(rel, target, owner);
                Ok(())
            }
            Fs::Dev(_) => Err(Errno::EPERM),
        }
    }

    /// Whether the directory `abs` has entries besides "." and "..".
    fn dir_has_entries(&self, abs: &[Vec<u8>]) -> Result<bool, Errno> {
        if self
            .mounts
            .iter()
            .any(|m| m.at.len() > abs.len() && m.at.starts_with(abs))
        {
            return Ok(true);
        }
        let (fs, rel) = self.locate(abs);
        Ok(match fs {
            Fs::Overlay(o) => o
                .readdir(rel)?
                .iter()
                .any(|e| e.name != b"." && e.name != b".."),
            Fs::Gofer(g) => g
                .readdir_rel(rel)?
                .iter()
                .any(|e| e.name.as_bytes() != b"." && e.name.as_bytes() != b".."),
            Fs::Dev(_) => rel.is_empty(),
        })
    }

    /// Removes `abs`: a directory with `dir` (rmdir), anything else without.
    pub fn remove(&self, abs: &[Vec<u8>], kind: Kind, dir: bool) -> Result<(), Errno> {
        let (fs, rel) = self.locate_entry(abs)?;
        if dir && kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if !dir && kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        if let Fs::Gofer(g) = fs {
            if g.read_only() {
                return Err(Errno::EROFS);
            }
        }
        if let Fs::Dev(_) = fs {
            return Err(Errno::EPERM);
        }
        if dir && self.dir_has_entries(abs)? {
            return Err(Errno::ENOTEMPTY);
        }
        match fs {
            Fs::Gofer(g) => g.unlink_rel(
                &rel[..rel.len() - 1],
                &rel[rel.len() - 1],
                if dir { AT_REMOVEDIR } else { 0 },
            ),
            Fs::Overlay(o) => o.remove(rel),
            Fs::Dev(_) => Err(Errno::EPERM),
        }
    }

    /// Renames `from` to `to` (both resolved without following the last
    /// name; `to` may not exist).
    pub fn rename(&self, from: &[Vec<u8>], to: &[Vec<u8>]) -> Result<(), Errno> {
        let (fs_from, rel_from) = self.locate_entry(from)?;
        let (fs_to, rel_to) = self.locate_entry(to)?;
        let same = match (fs_from, fs_to) {
            (Fs::Gofer(a), Fs::Gofer(b)) => Arc::ptr_eq(a, b),
            (Fs::Overlay(a), Fs::Overlay(b)) => Arc::ptr_eq(a, b),
            (Fs::Dev(a), Fs::Dev(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            return Err(Errno::EXDEV);
        }
        if let Fs::Dev(_) = fs_from {
            return Err(Errno::EPERM);
        }
        if let Fs::Gofer(g) = fs_from {
            if g.read_only() {
                return Err(Errno::EROFS);
            }
        }
        let from_kind = self.lookup(from)?.ok_or(Errno::ENOENT)?;
        if to.starts_with(from) && to.len() > from.len() {
            return Err(Errno::EINVAL);
        }
        if let Some(to_kind) = self.lookup(to)? {
            if from == to {
                return Ok(());
            }
            match (from_kind == Kind::Dir, to_kind == Kind::Dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if self.dir_has_entries(to)? => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        match fs_from {
            Fs::Gofer(g) => g.rename_rel(
                &rel_from[..rel_from.len() - 1],
                &rel_from[rel_from.len() - 1],
                &rel_to[..rel_to.len() - 1],
                &rel_to[rel_to.len() - 1],
            ),
            Fs::Overlay(o) => o.rename(rel_from, rel_to),
            Fs::Dev(_) => Err(Errno::EPERM),
        }
    }

    /// Changes attributes of `abs` (chmod, utimensat, truncate).
    pub fn change(&self, abs: &[Vec<u8>], change: Change) -> Result<(), Errno> {
        let (fs, rel) = self.locate(abs);
        match fs {
            Fs::Gofer(g) => g.setattr_rel(rel, gofer_setattr(change)),
            Fs::Overlay(o) => {
                if let Change::Size(len) = change {
                    let st = o.stat(rel)?;
                    if st.mode & S_IFMT != S_IFREG {
                        return Err(Errno::EINVAL);
                    }
                    let inode = o.copy_up(rel)?;
                    return overlay::truncate(&inode, len);
                }
                o.change_meta(rel, |m| apply(m, change))
            }
            Fs::Dev(d) => {
                // truncate(2) of anything but a regular file is EINVAL
                // (EISDIR for the directory); the devices' attributes are
                // fixed.
                let st = d.stat(rel)?;
                match change {
                    Change::Size(_) if st.mode & S_IFMT == 0o040000 => Err(Errno::EISDIR),
                    Change::Size(_) => Err(Errno::EINVAL),
                    _ => Err(Errno::EPERM),
                }
            }
        }
    }

    /// The bytes of the regular file at `path`, checked to be executable by
    /// someone (EACCES otherwise, as execve).
    pub fn read_executable(
        &self,
        cwd: &[Vec<u8>],
        path: &[u8],
    ) -> Result<(Vec<u8>, PathComponents), Errno> {
        let resolved = self.resolve(cwd, path, true)?;
        let st = self.stat(&resolved.path)?;
        if st.mode & S_IFMT != S_IFREG || st.mode & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        let (fs, rel) = self.locate(&resolved.path);
        let data = match fs {
            Fs::Gofer(g) => g.read_all_rel(rel)?,
            Fs::Overlay(o) => match o.upper_file(rel) {
                Some(inode) => MemFile::new(inode, Vec::new(), 0).contents()?.to_vec(),
                None => o.lower().read_all_rel(rel)?,
            },
            Fs::Dev(_) => return Err(Errno::EACCES),
        };
        Ok((data, resolved.path))
    }
}

/// Applies a change to upper-layer attributes.
pub fn apply(meta: &mut Stat, change: Change) {
    let t = overlay::now();
    match change {
        Change::Mode(mode) => meta.mode = (meta.mode & S_IFMT) | (mode & 0o7777),
        Change::Times(atime, mtime) => {
            if let Some(a) = atime {
                meta.atime = a;
            }
            if let Some(m) = mtime {
                meta.mtime = m;
            }
        }
        Change::Size(_) => {}
    }
    meta.ctime = t;
}

/// The Tsetattr for a change.
pub fn gofer_setattr(change: Change) -> SetAttr {
    use p9proto::types::setattr as v;
    match change {
        Change::Mode(mode) => SetAttr {
            valid: v::MODE,
            mode: mode & 0o7777,
            ..SetAttr::default()
        },
        Change::Size(size) => SetAttr {
            valid: v::SIZE,
            size,
            ..SetAttr::default()
        },
        Change::Times(atime, mtime) => {
            let mut attr = SetAttr::default();
            if let Some(a) = atime {
                attr.valid |= v::ATIME | v::ATIME_SET;
                attr.atime = (a.sec as u64, a.nsec as u64);
            }
            if let Some(m) = mtime {
                attr.valid |= v::MTIME | v::MTIME_SET;
                attr.mtime = (m.sec as u64, m.nsec as u64);
            }
            attr
        }
    }
}
