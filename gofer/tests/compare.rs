//! One operation script, run through the p9proto client against three
//! 9P2000.L servers — our gofer (a real `gofer serve --fd` process), the `p9`
//! crate's server (crosvm's, in a thread) and Debian's `diod` (a real
//! process) — each on its own copy of the same tree. Every step is reduced
//! to a comparable outcome (file types, modes, sizes, contents, errnos; never
//! inode numbers or clock times), and the gofer's transcript must equal each
//! other server's, step by step, apart from the differences listed in
//! [`KNOWN_DIFFERENCES`] (the other server's gaps or policies, each with a
//! reason) and [`GOFER_BUGS`] (steps where the gofer departs from Linux).
//! A listed difference that no longer occurs fails the test too, so both
//! lists stay true.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufReader, BufWriter};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use p9proto::types::{getattr, lock_type, open_flags as of, setattr, xattr_flags, AT_REMOVEDIR};
use p9proto::{
    Client, ClientError, Qid, Rgetattr, Tclunk, Tfsync, Tgetattr, Tgetlock, Tlcreate, Tlink, Tlock,
    Tlopen, Tmkdir, Tmknod, Treaddir, Treadlink, Tremove, Trename, Trenameat, Tsetattr, Tstatfs,
    Tsymlink, Tunlinkat, Twalk, Twrite, Txattrcreate, Txattrwalk,
};

/// Frame size asked of every server (the p9 crate accepts at most 64 KiB + 24).
const MSIZE: u32 = 32 * 1024;
/// No single reply may take longer than this.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Nor may a whole step (a few calls).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Gofer,
    P9Crate,
    Diod,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Gofer => "gofer",
            Server::P9Crate => "p9-crate",
            Server::Diod => "diod",
        })
    }
}

const P9_NO_XATTRS: &str =
    "the p9 crate does not implement xattrs: Txattrwalk and Txattrcreate answer EOPNOTSUPP";
const P9_FAKE_LOCKS: &str = "the p9 crate fakes POSIX locks (as QEMU does): Tlock always \
     succeeds and Tgetlock always answers UNLCK, leaving lock semantics to the client's VFS; \
     the gofer takes real OFD locks";
const P9_NO_REMOVE: &str = "the p9 crate does not implement Tremove (EOPNOTSUPP: it cannot tell \
     which of a file's links the fid means); Linux's v9fs uses Tunlinkat";
const DIOD_NO_AT_OPS: &str = "diod 1.0.24 does not implement Trenameat/Tunlinkat (commented out \
     in its diod_init; Linux's v9fs falls back to Trename/Tremove on EOPNOTSUPP)";
const DIOD_UNKNOWN_FID: &str =
    "diod (npfs) answers EIO for a fid that is not in use; the gofer and the p9 crate, EBADF";

/// Steps where another server answers differently from the gofer, and why
/// that is the other server's gap or choice rather than the gofer's bug.
const P9_UMASK: &str = "the p9 crate creates files with the process umask applied (it runs \
     inside this test, umask 022); the client already applied the caller's umask, so the final \
     mode must be kept as sent, as the gofer and diod do";

const KNOWN_DIFFERENCES: &[(Server, &str, &str)] = &[
    (Server::P9Crate, "mkdir_mode_0777", P9_UMASK),
    (Server::P9Crate, "lcreate_mode_0666", P9_UMASK),
    (
        Server::P9Crate,
        "walk_dotdot_at_root",
        "the p9 crate resolves \"..\" with openat on the fid, so at the root it leaves the \
         served tree: it is no containment boundary; the gofer keeps \"..\" at / as Linux does \
         at a chroot's root",
    ),
    (
        Server::P9Crate,
        "lcreate_existing_no_excl",
        "the p9 crate always adds O_EXCL to Tlcreate; Linux's open(O_CREAT) without O_EXCL \
         opens an existing file, as the gofer and diod do",
    ),
    (
        Server::P9Crate,
        "symlink",
        "the p9 crate refuses every Tsymlink with EACCES",
    ),
    (
        Server::P9Crate,
        "symlink_existing",
        "the p9 crate refuses every Tsymlink with EACCES",
    ),
    (
        Server::P9Crate,
        "readlink_on_file",
        "the p9 crate calls readlinkat(fd, \"\") on the O_PATH fd, which is ENOENT for a \
         non-symlink; readlink(2) of a regular file is EINVAL, as the gofer and diod answer",
    ),
    (
        Server::P9Crate,
        "mknod_fifo",
        "the p9 crate refuses every Tmknod with EACCES",
    ),
    (
        Server::P9Crate,
        "mknod_char_device",
        "the p9 crate refuses every Tmknod with EACCES; the gofer refuses device nodes with EPERM",
    ),
    (
        Server::P9Crate,
        "rename",
        "the p9 crate does not implement Trename (EOPNOTSUPP); Linux's v9fs uses Trenameat",
    ),
    (Server::P9Crate, "xattr_set", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_get", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_list", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_set_on_dir", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_create_existing", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_replace_missing", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_replace", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_get_missing", P9_NO_XATTRS),
    (Server::P9Crate, "xattr_remove", P9_NO_XATTRS),
    (Server::P9Crate, "getlock_other_fid", P9_FAKE_LOCKS),
    (Server::P9Crate, "lock_conflict_other_fid", P9_FAKE_LOCKS),
    (Server::P9Crate, "remove_file", P9_NO_REMOVE),
    (Server::P9Crate, "remove_nonempty_dir", P9_NO_REMOVE),
    (
        Server::P9Crate,
        "remove_clunks_fid",
        "the p9 crate refuses Tremove and leaves the fid bound; remove(5) clunks it even when \
         the removal fails",
    ),
    (
        Server::P9Crate,
        "walk_from_open_fid",
        "the p9 crate lets an opened fid be walked; walk(5) forbids walking a fid opened for I/O",
    ),
    (
        Server::P9Crate,
        "final_listing",
        "follows from the p9 crate's refused Tsymlink, Tmknod, Trename and Tremove above",
    ),
    (
        Server::P9Crate,
        "host_tree_afterwards",
        "follows from the p9 crate's refused Tsymlink, Tmknod, Trename and Tremove above",
    ),
    (
        Server::Diod,
        "walk_missing_later_name",
        "diod (npfs) leaves newfid bound after a walk that stops early; walk(5) says newfid is \
         then not affected",
    ),
    (
        Server::Diod,
        "walk_dotdot_at_root",
        "diod walks by appending names to a path string, so \"..\" at the export's root reaches \
         its parent: diod is no containment boundary",
    ),
    (
        Server::Diod,
        "mknod_char_device",
        "the gofer refuses device nodes with EPERM by design (they would hand the sandbox host \
         devices); diod, as root, creates them",
    ),
    (Server::Diod, "renameat", DIOD_NO_AT_OPS),
    (Server::Diod, "renameat_missing", DIOD_NO_AT_OPS),
    (Server::Diod, "renameat_file_over_dir", DIOD_NO_AT_OPS),
    (
        Server::Diod,
        "renameat_dir_over_nonempty_dir",
        DIOD_NO_AT_OPS,
    ),
    (Server::Diod, "unlinkat_file", DIOD_NO_AT_OPS),
    (Server::Diod, "unlinkat_dir_without_flag", DIOD_NO_AT_OPS),
    (Server::Diod, "unlinkat_nonempty_dir", DIOD_NO_AT_OPS),
    (Server::Diod, "unlinkat_file_with_removedir", DIOD_NO_AT_OPS),
    (Server::Diod, "unlinkat_empty_dir", DIOD_NO_AT_OPS),
    (Server::Diod, "unlinkat_missing", DIOD_NO_AT_OPS),
    (
        Server::Diod,
        "readdir_on_file",
        "diod answers EINVAL for Treaddir on an opened regular file; getdents64(2) on a \
         non-directory is ENOTDIR, as the gofer and the p9 crate answer",
    ),
    (
        Server::Diod,
        "xattr_trusted_namespace",
        "the gofer serves only user.* xattrs by design (EOPNOTSUPP for other namespaces); diod \
         passes every namespace to the host",
    ),
    (
        Server::Diod,
        "getlock_other_fid",
        "diod implements POSIX locks as whole-file flock(2) locks and its Rgetlock echoes the \
         requested range; F_GETLK reports the conflicting lock's own range, as the gofer does",
    ),
    (
        Server::Diod,
        "lock_disjoint_range",
        "diod's whole-file flock(2) locks make byte ranges that do not overlap conflict",
    ),
    (Server::Diod, "remove_clunks_fid", DIOD_UNKNOWN_FID),
    (Server::Diod, "clunk_unknown_fid", DIOD_UNKNOWN_FID),
    (
        Server::Diod,
        "walk_from_open_fid",
        "diod lets an opened directory fid be walked; walk(5) forbids walking a fid opened for \
         I/O",
    ),
    (
        Server::Diod,
        "final_listing",
        "follows from diod's missing Trenameat/Tunlinkat and the device node it created",
    ),
    (
        Server::Diod,
        "host_tree_afterwards",
        "follows from diod's missing Trenameat/Tunlinkat and the device node it created",
    ),
];

/// Steps where the gofer differs from Linux semantics (and from at least
/// one other server): bugs to fix in the gofer, listed so the suite stays
/// green meanwhile. A difference on one of these steps is excused for any
/// server; an entry that no longer differs fails the test.
const GOFER_BUGS: &[(&str, &str)] = &[];

/// A step's result, reduced to what must agree across servers.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok(String),
    Errno(i32),
    /// The connection failed, a reply had the wrong shape, or the step
    /// did not finish in time.
    Broken(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(s) if s.is_empty() => f.write_str("ok"),
            Outcome::Ok(s) => write!(f, "ok {s}"),
            Outcome::Errno(e) => write!(f, "err {:?}", nix::errno::Errno::from_raw(*e)),
            Outcome::Broken(s) => write!(f, "BROKEN: {s}"),
        }
    }
}

/// Why a step stopped early.
#[derive(Debug)]
enum Fail {
    Errno(i32),
    Broken(String),
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Remote(errno) => Fail::Errno(errno),
            other => Fail::Broken(other.to_string()),
        }
    }
}

type StepResult = Result<String, Fail>;

impl From<StepResult> for Outcome {
    fn from(r: StepResult) -> Self {
        match r {
            Ok(s) => Outcome::Ok(s),
            Err(Fail::Errno(e)) => Outcome::Errno(e),
            Err(Fail::Broken(s)) => Outcome::Broken(s),
        }
    }
}

/// An errno or "ok", for steps that report several results in one line.
fn brief<T>(r: Result<T, ClientError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(ClientError::Remote(e)) => format!("{:?}", nix::errno::Errno::from_raw(e)),
        Err(other) => format!("BROKEN({other})"),
    }
}

fn qid_kind(q: &Qid) -> String {
    match q.ty {
        0x80 => "dir".into(),
        0x02 => "symlink".into(),
        0x00 => "file".into(),
        other => format!("{other:#x}"),
    }
}

fn file_kind(mode: u32) -> &'static str {
    match mode & 0o170000 {
        0o040000 => "dir",
        0o100000 => "reg",
        0o120000 => "lnk",
        0o010000 => "fifo",
        0o020000 => "chr",
        0o060000 => "blk",
        0o140000 => "sock",
        _ => "?",
    }
}

/// Type, permissions, owner, link count and (except for directories,
/// whose size is the file system's business) size.
fn describe(a: &Rgetattr) -> String {
    let kind = file_kind(a.mode);
    let mut s = format!(
        "{kind} {:04o} uid={} gid={} nlink={}",
        a.mode & 0o7777,
        a.uid,
        a.gid,
        a.nlink
    );
    if kind != "dir" {
        s += &format!(" size={}", a.size);
    }
    s
}

fn text(data: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(data))
}

/// One server's connection, as one script thread sees it.
struct Ctx {
    c: Client,
    root: u32,
    aname: String,
    /// Fids that live across steps (the lock steps).
    kept: RefCell<HashMap<&'static str, u32>>,
}

impl Ctx {
    /// Walks `fid` through `names` to a new fid; a walk that stops early is
    /// ENOENT. Unlike `Client::walk`, it then clunks newfid anyway: diod
    /// leaves newfid bound after a partial walk (see the
    /// `walk_missing_later_name` step), and reusing that fid number would
    /// spoil later steps.
    fn walk_names(&self, fid: u32, names: &[&str]) -> Result<(u32, Vec<Qid>), Fail> {
        let newfid = self.c.new_fid();
        let r = self.c.call(Twalk {
            fid,
            newfid,
            wnames: names.iter().map(|&n| n.into()).collect(),
        });
        match r {
            Ok(r) if r.wqids.len() == names.len() => Ok((newfid, r.wqids)),
            Ok(_) => {
                let _ = self.c.call(Tclunk { fid: newfid });
                self.c.release_fid(newfid);
                Err(Fail::Errno(libc::ENOENT))
            }
            Err(e) => {
                self.c.release_fid(newfid);
                Err(e.into())
            }
        }
    }

    /// Walks from the root along a slash-separated path.
    fn walk(&self, path: &str) -> Result<u32, Fail> {
        let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
        Ok(self.walk_names(self.root, &names)?.0)
    }

    fn clunk(&self, fid: u32) -> Result<(), Fail> {
        Ok(self.c.clunk(fid)?)
    }

    /// Walks to `path` and opens it; the fid is clunked if the open fails.
    fn open(&self, path: &str, flags: u32) -> Result<u32, Fail> {
        let fid = self.walk(path)?;
        match self.c.call(Tlopen { fid, flags }) {
            Ok(_) => Ok(fid),
            Err(e) => {
                let _ = self.c.clunk(fid);
                Err(e.into())
            }
        }
    }

    /// Tremove, then a Tclunk in case the server left the fid bound (which
    /// the `remove_clunks_fid` step reports), so a reused fid number does
    /// not spoil later steps.
    fn remove(&self, fid: u32) -> Result<(), Fail> {
        let r = self.c.call(Tremove { fid });
        let _ = self.c.call(Tclunk { fid });
        self.c.release_fid(fid);
        r?;
        Ok(())
    }

    fn attr(&self, fid: u32) -> Result<Rgetattr, Fail> {
        Ok(self.c.call(Tgetattr {
            fid,
            request_mask: getattr::BASIC,
        })?)
    }

    fn stat(&self, path: &str) -> StepResult {
        let fid = self.walk(path)?;
        let a = self.attr(fid);
        self.clunk(fid)?;
        Ok(describe(&a?))
    }

    /// `stat` as a short string, errors included.
    fn stat_brief(&self, path: &str) -> String {
        match self.stat(path) {
            Ok(s) => s,
            Err(Fail::Errno(e)) => format!("{:?}", nix::errno::Errno::from_raw(e)),
            Err(Fail::Broken(s)) => format!("BROKEN({s})"),
        }
    }

    fn contents(&self, path: &str) -> StepResult {
        let fid = self.open(path, of::RDONLY)?;
        let data = self.c.read_to_end(fid, 0);
        self.clunk(fid)?;
        Ok(text(&data?))
    }

    fn kept(&self, name: &'static str) -> Result<u32, Fail> {
        self.kept
            .borrow()
            .get(name)
            .copied()
            .ok_or_else(|| Fail::Broken(format!("no {name} fid from an earlier step")))
    }

    fn setattr(&self, path: &str, m: Tsetattr) -> Result<(), Fail> {
        let fid = self.walk(path)?;
        let r = self.c.call(Tsetattr { fid, ..m });
        self.clunk(fid)?;
        r?;
        Ok(())
    }

    fn mkdir(&self, name: &str, mode: u32) -> StepResult {
        let r = self.c.call(Tmkdir {
            dfid: self.root,
            name: name.into(),
            mode,
            gid: 0,
        })?;
        Ok(format!("qid={} {}", qid_kind(&r.qid), self.stat(name)?))
    }

    fn mknod(&self, name: &str, mode: u32, major: u32, minor: u32) -> StepResult {
        let r = self.c.call(Tmknod {
            dfid: self.root,
            name: name.into(),
            mode,
            major,
            minor,
            gid: 0,
        })?;
        Ok(format!("qid={} {}", qid_kind(&r.qid), self.stat(name)?))
    }

    fn unlinkat(&self, dir: &str, name: &str, flags: u32) -> StepResult {
        let d = self.walk(dir)?;
        let r = self.c.call(Tunlinkat {
            dirfid: d,
            name: name.into(),
            flags,
        });
        self.clunk(d)?;
        r?;
        let path = format!("{dir}/{name}");
        Ok(format!("afterwards {}", self.stat_brief(&path)))
    }

    fn renameat(&self, olddir: &str, oldname: &str, newdir: &str, newname: &str) -> StepResult {
        let o = self.walk(olddir)?;
        let n = self.walk(newdir)?;
        let r = self.c.call(Trenameat {
            olddirfid: o,
            oldname: oldname.into(),
            newdirfid: n,
            newname: newname.into(),
        });
        self.clunk(o)?;
        self.clunk(n)?;
        r?;
        Ok(format!(
            "old {} new {}",
            self.stat_brief(&format!("{olddir}/{oldname}")),
            self.stat_brief(&format!("{newdir}/{newname}"))
        ))
    }

    fn xattr_get(&self, path: &str, name: &str) -> StepResult {
        let fid = self.walk(path)?;
        let newfid = self.c.new_fid();
        let r = self.c.call(Txattrwalk {
            fid,
            newfid,
            name: name.into(),
        });
        self.clunk(fid)?;
        let size = match r {
            Ok(r) => r.size,
            Err(e) => {
                self.c.release_fid(newfid);
                return Err(e.into());
            }
        };
        let data = self.c.read_to_end(newfid, 0);
        self.clunk(newfid)?;
        let data = data?;
        if name.is_empty() {
            // Only the user namespace: the others depend on the host
            // (security labels, ACLs) and the server's policy.
            let mut names: Vec<String> = data
                .split(|&b| b == 0)
                .filter(|n| n.starts_with(b"user."))
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            names.sort();
            return Ok(format!("user names {names:?}"));
        }
        Ok(format!("size={size} value={}", text(&data)))
    }

    /// Txattrcreate + Twrite + Tclunk; reports each stage, since servers
    /// may refuse at create time or only when the clunk commits.
    fn xattr_set(&self, path: &str, name: &str, value: &[u8], flags: u32) -> StepResult {
        let fid = self.walk(path)?;
        let created = self.c.call(Txattrcreate {
            fid,
            name: name.into(),
            attr_size: value.len() as u64,
            flags,
        });
        if let Err(e) = created {
            self.clunk(fid)?;
            return Err(e.into());
        }
        if !value.is_empty() {
            self.c.write_all(fid, 0, value)?;
        }
        let clunk = self.c.clunk(fid);
        Ok(format!("commit at clunk: {}", brief(clunk)))
    }

    fn lock(&self, fid: u32, ty: u8, start: u64, length: u64) -> StepResult {
        let r = self.c.call(Tlock {
            fid,
            ty,
            flags: 0,
            start,
            length,
            proc_id: 1,
            client_id: "compare".into(),
        })?;
        Ok(format!("status={}", r.status))
    }

    fn getlock(&self, fid: u32, ty: u8, start: u64, length: u64) -> StepResult {
        let r = self.c.call(Tgetlock {
            fid,
            ty,
            start,
            length,
            proc_id: 2,
            client_id: "compare".into(),
        })?;
        let ty = match r.ty {
            lock_type::RDLCK => "RDLCK",
            lock_type::WRLCK => "WRLCK",
            lock_type::UNLCK => "UNLCK",
            _ => "?",
        };
        if ty == "UNLCK" {
            return Ok(ty.into());
        }
        Ok(format!("{ty} start={} length={}", r.start, r.length))
    }

    /// Every entry of an opened directory, sorted, reading `count` bytes
    /// at a time and resuming from the last entry's offset.
    fn list(&self, path: &str, count: u32) -> StepResult {
        let fid = self.open(path, of::RDONLY | of::DIRECTORY)?;
        let mut names = Vec::new();
        let mut offset = 0;
        let mut calls = 0;
        let result = loop {
            calls += 1;
            if calls > 1000 {
                break Err(Fail::Broken("readdir never reached the end".into()));
            }
            let data = match self.c.call(Treaddir { fid, offset, count }) {
                Ok(r) => r.data,
                Err(e) => break Err(e.into()),
            };
            let entries = match p9proto::types::parse_dirents(&data.0) {
                Ok(e) => e,
                Err(e) => break Err(Fail::Broken(format!("bad dirents: {e}"))),
            };
            match entries.last() {
                None => break Ok(()),
                Some(last) => offset = last.offset,
            }
            for e in entries {
                let ty = match e.ty {
                    libc::DT_DIR => "dir",
                    libc::DT_REG => "reg",
                    libc::DT_LNK => "lnk",
                    libc::DT_FIFO => "fifo",
                    libc::DT_CHR => "chr",
                    _ => "?",
                };
                names.push(format!("{}:{ty}", e.name.to_string_lossy()));
            }
        };
        self.clunk(fid)?;
        result?;
        names.sort();
        Ok(names.join(" "))
    }
}

type Step = (&'static str, fn(&Ctx) -> StepResult);

/// The script. Later steps see what earlier ones did to the tree.
fn steps() -> Vec<Step> {
    vec![
        ("attach", |x| {
            let (fid, qid) = x.c.attach("root", &x.aname)?;
            x.clunk(fid)?;
            Ok(format!("qid={}", qid_kind(&qid)))
        }),
        ("getattr_root", |x| x.stat("")),
        ("walk_multi", |x| {
            let (fid, qids) = x.walk_names(x.root, &["dir", "sub", "deep.txt"])?;
            x.clunk(fid)?;
            let kinds: Vec<String> = qids.iter().map(qid_kind).collect();
            Ok(kinds.join(","))
        }),
        ("walk_clone", |x| {
            let (fid, qids) = x.walk_names(x.root, &[])?;
            let a = x.attr(fid);
            x.clunk(fid)?;
            Ok(format!("{} qids, {}", qids.len(), describe(&a?)))
        }),
        ("walk_missing", |x| x.stat("nope")),
        ("walk_missing_later_name", |x| {
            // Raw Twalk: a later name failing ends the walk early, without
            // an error, and leaves newfid unbound.
            let newfid = x.c.new_fid();
            let r = x.c.call(Twalk {
                fid: x.root,
                newfid,
                wnames: vec!["dir".into(), "nope".into(), "sub".into()],
            });
            let bound = x.c.call(Tclunk { fid: newfid }).is_ok();
            x.c.release_fid(newfid);
            let kinds: Vec<String> = r?.wqids.iter().map(qid_kind).collect();
            Ok(format!("wqids=[{}] newfid bound={bound}", kinds.join(",")))
        }),
        ("walk_through_file", |x| {
            let f = x.walk("a.txt")?;
            let r = x.walk_names(f, &["x"]);
            x.clunk(f)?;
            x.clunk(r?.0)?;
            Ok("walked through a file".into())
        }),
        ("walk_dotdot_at_root", |x| {
            let (fid, _) = x.walk_names(x.root, &[".."])?;
            let a = x.attr(fid);
            x.clunk(fid)?;
            let root = x.attr(x.root)?;
            Ok(format!("stays at root={}", a?.qid.path == root.qid.path))
        }),
        ("getattr_file", |x| x.stat("a.txt")),
        ("getattr_dir", |x| x.stat("dir")),
        ("lopen_read", |x| {
            let fid = x.open("a.txt", of::RDONLY)?;
            let all = x.c.read(fid, 0, 4096);
            let part = x.c.read(fid, 6, 5);
            let past_end = x.c.read(fid, 100, 10);
            x.clunk(fid)?;
            Ok(format!(
                "all={} part={} past_end={} bytes",
                text(&all?),
                text(&part?),
                past_end?.len()
            ))
        }),
        ("lopen_dir", |x| {
            let fid = x.walk("dir")?;
            let r = x.c.call(Tlopen {
                fid,
                flags: of::RDONLY,
            });
            x.clunk(fid)?;
            Ok(format!("qid={}", qid_kind(&r?.qid)))
        }),
        ("lopen_dir_for_write", |x| {
            let fid = x.open("dir", of::WRONLY)?;
            x.clunk(fid)?;
            Ok("opened".into())
        }),
        ("lopen_missing", |x| {
            let fid = x.open("missing.txt", of::RDONLY)?;
            x.clunk(fid)?;
            Ok("opened".into())
        }),
        ("read_unopened", |x| {
            let fid = x.walk("a.txt")?;
            let r = x.c.read(fid, 0, 10);
            x.clunk(fid)?;
            Ok(text(&r?))
        }),
        ("read_directory", |x| {
            let fid = x.open("dir", of::RDONLY)?;
            let r = x.c.read(fid, 0, 10);
            x.clunk(fid)?;
            Ok(text(&r?))
        }),
        ("write_readonly_fid", |x| {
            let fid = x.open("a.txt", of::RDONLY)?;
            let r = x.c.call(Twrite {
                fid,
                offset: 0,
                data: p9proto::Data(b"nope".to_vec()),
            });
            x.clunk(fid)?;
            Ok(format!("wrote {}", r?.count))
        }),
        ("lcreate_write_read", |x| {
            let fid = x.walk("")?;
            let r = x.c.call(Tlcreate {
                fid,
                name: "new.txt".into(),
                flags: of::RDWR,
                mode: 0o640,
                gid: 0,
            });
            let qid = match r {
                Ok(r) => r.qid,
                Err(e) => {
                    x.clunk(fid)?;
                    return Err(e.into());
                }
            };
            x.c.write_all(fid, 0, b"abcdef")?;
            x.c.write_all(fid, 4, b"XYZ")?;
            let back = x.c.read_to_end(fid, 0)?;
            let a = x.attr(fid)?;
            x.clunk(fid)?;
            Ok(format!(
                "qid={} back={} fid {} path {}",
                qid_kind(&qid),
                text(&back),
                describe(&a),
                x.stat("new.txt")?
            ))
        }),
        ("lcreate_existing_excl", |x| {
            let fid = x.walk("")?;
            let r = x.c.call(Tlcreate {
                fid,
                name: "a.txt".into(),
                flags: of::RDWR | of::EXCL,
                mode: 0o644,
                gid: 0,
            });
            x.clunk(fid)?;
            Ok(format!("qid={}", qid_kind(&r?.qid)))
        }),
        ("lcreate_existing_no_excl", |x| {
            let fid = x.walk("")?;
            let r = x.c.call(Tlcreate {
                fid,
                name: "a.txt".into(),
                flags: of::RDWR,
                mode: 0o644,
                gid: 0,
            });
            x.clunk(fid)?;
            Ok(format!("qid={}", qid_kind(&r?.qid)))
        }),
        ("lcreate_in_file", |x| {
            let fid = x.walk("a.txt")?;
            let r = x.c.call(Tlcreate {
                fid,
                name: "x".into(),
                flags: of::RDWR,
                mode: 0o644,
                gid: 0,
            });
            x.clunk(fid)?;
            Ok(format!("qid={}", qid_kind(&r?.qid)))
        }),
        ("mkdir", |x| x.mkdir("newdir", 0o750)),
        ("mkdir_mode_0777", |x| x.mkdir("wide", 0o777)),
        ("lcreate_mode_0666", |x| {
            let fid = x.walk("")?;
            let r = x.c.call(Tlcreate {
                fid,
                name: "open.txt".into(),
                flags: of::RDWR,
                mode: 0o666,
                gid: 0,
            });
            x.clunk(fid)?;
            Ok(format!("qid={} {}", qid_kind(&r?.qid), x.stat("open.txt")?))
        }),
        ("mkdir_existing", |x| x.mkdir("dir", 0o755)),
        ("symlink", |x| {
            let r = x.c.call(Tsymlink {
                fid: x.root,
                name: "ln".into(),
                symtgt: "a.txt".into(),
                gid: 0,
            })?;
            let fid = x.walk("ln")?;
            let target = x.c.call(Treadlink { fid });
            x.clunk(fid)?;
            Ok(format!(
                "qid={} {} -> {}",
                qid_kind(&r.qid),
                x.stat("ln")?,
                target?.target
            ))
        }),
        ("symlink_existing", |x| {
            let r = x.c.call(Tsymlink {
                fid: x.root,
                name: "dir".into(),
                symtgt: "a.txt".into(),
                gid: 0,
            })?;
            Ok(format!("qid={}", qid_kind(&r.qid)))
        }),
        ("readlink", |x| {
            let fid = x.walk("listing/link")?;
            let r = x.c.call(Treadlink { fid });
            x.clunk(fid)?;
            Ok(r?.target.to_string_lossy().into_owned())
        }),
        ("getattr_symlink", |x| x.stat("link")),
        ("getattr_fifo", |x| x.stat("listing/pipe")),
        ("walk_symlink_not_followed", |x| {
            let (fid, qids) = x.walk_names(x.root, &["link"])?;
            let a = x.attr(fid);
            x.clunk(fid)?;
            Ok(format!("qid={} {}", qid_kind(&qids[0]), describe(&a?)))
        }),
        ("readlink_on_file", |x| {
            let fid = x.walk("a.txt")?;
            let r = x.c.call(Treadlink { fid });
            x.clunk(fid)?;
            Ok(r?.target.to_string_lossy().into_owned())
        }),
        ("link", |x| {
            let fid = x.walk("a.txt")?;
            let r = x.c.call(Tlink {
                dfid: x.root,
                fid,
                name: "hard.txt".into(),
            });
            x.clunk(fid)?;
            r?;
            Ok(format!(
                "a.txt {} hard.txt {}",
                x.stat("a.txt")?,
                x.stat("hard.txt")?
            ))
        }),
        ("link_existing_name", |x| {
            let fid = x.walk("a.txt")?;
            let r = x.c.call(Tlink {
                dfid: x.root,
                fid,
                name: "dir".into(),
            });
            x.clunk(fid)?;
            r?;
            Ok("linked".into())
        }),
        ("link_directory", |x| {
            let fid = x.walk("dir")?;
            let r = x.c.call(Tlink {
                dfid: x.root,
                fid,
                name: "dirlink".into(),
            });
            x.clunk(fid)?;
            r?;
            Ok("linked".into())
        }),
        ("mknod_fifo", |x| {
            x.mknod("fifo", libc::S_IFIFO | 0o644, 0, 0)
        }),
        ("mknod_char_device", |x| {
            // /dev/null's numbers.
            x.mknod("null", libc::S_IFCHR | 0o644, 1, 3)
        }),
        ("rename", |x| {
            let fid = x.walk("new.txt")?;
            let d = x.walk("dir")?;
            let r = x.c.call(Trename {
                fid,
                dfid: d,
                name: "renamed.txt".into(),
            });
            // The fid follows the file to its new name.
            let a = x.attr(fid);
            x.clunk(fid)?;
            x.clunk(d)?;
            r?;
            Ok(format!(
                "fid {} old {} new {}",
                describe(&a?),
                x.stat_brief("new.txt"),
                x.stat_brief("dir/renamed.txt")
            ))
        }),
        ("renameat", |x| {
            x.renameat("", "hard.txt", "dir", "moved.txt")
        }),
        ("renameat_missing", |x| {
            x.renameat("", "ghost", "dir", "ghost")
        }),
        ("renameat_file_over_dir", |x| {
            x.renameat("", "a.txt", "", "full")
        }),
        ("renameat_dir_over_nonempty_dir", |x| {
            x.renameat("", "newdir", "", "full")
        }),
        ("unlinkat_file", |x| x.unlinkat("dir", "inner.txt", 0)),
        ("unlinkat_dir_without_flag", |x| x.unlinkat("", "full", 0)),
        ("unlinkat_nonempty_dir", |x| {
            x.unlinkat("", "full", AT_REMOVEDIR)
        }),
        ("unlinkat_file_with_removedir", |x| {
            x.unlinkat("listing", "pipe", AT_REMOVEDIR)
        }),
        ("unlinkat_empty_dir", |x| {
            x.unlinkat("", "newdir", AT_REMOVEDIR)
        }),
        ("unlinkat_missing", |x| x.unlinkat("", "ghost", 0)),
        ("setattr_mode", |x| {
            x.setattr(
                "a.txt",
                Tsetattr {
                    valid: setattr::MODE,
                    mode: 0o600,
                    ..Default::default()
                },
            )?;
            x.stat("a.txt")
        }),
        ("setattr_truncate", |x| {
            x.setattr(
                "a.txt",
                Tsetattr {
                    valid: setattr::SIZE,
                    size: 5,
                    ..Default::default()
                },
            )?;
            Ok(format!("{} {}", x.stat("a.txt")?, x.contents("a.txt")?))
        }),
        ("setattr_extend", |x| {
            x.setattr(
                "a.txt",
                Tsetattr {
                    valid: setattr::SIZE,
                    size: 8,
                    ..Default::default()
                },
            )?;
            x.contents("a.txt")
        }),
        ("setattr_times_explicit", |x| {
            x.setattr(
                "a.txt",
                Tsetattr {
                    valid: setattr::ATIME
                        | setattr::ATIME_SET
                        | setattr::MTIME
                        | setattr::MTIME_SET,
                    atime_sec: 1_200_000_000,
                    atime_nsec: 7,
                    mtime_sec: 1_000_000_000,
                    mtime_nsec: 500,
                    ..Default::default()
                },
            )?;
            let fid = x.walk("a.txt")?;
            let a = x.attr(fid);
            x.clunk(fid)?;
            let a = a?;
            Ok(format!(
                "atime={}.{:09} mtime={}.{:09}",
                a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec
            ))
        }),
        ("setattr_mtime_only", |x| {
            // The atime set above must stay (UTIME_OMIT).
            x.setattr(
                "a.txt",
                Tsetattr {
                    valid: setattr::MTIME | setattr::MTIME_SET,
                    mtime_sec: 1_100_000_000,
                    ..Default::default()
                },
            )?;
            let fid = x.walk("a.txt")?;
            let a = x.attr(fid);
            x.clunk(fid)?;
            let a = a?;
            Ok(format!(
                "atime={}.{:09} mtime={}.{:09}",
                a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec
            ))
        }),
        ("setattr_size_on_dir", |x| {
            x.setattr(
                "dir",
                Tsetattr {
                    valid: setattr::SIZE,
                    ..Default::default()
                },
            )?;
            x.stat("dir")
        }),
        ("setattr_mode_on_dir", |x| {
            x.setattr(
                "dir/sub",
                Tsetattr {
                    valid: setattr::MODE,
                    mode: 0o700,
                    ..Default::default()
                },
            )?;
            x.stat("dir/sub")
        }),
        ("readdir", |x| x.list("listing", 8192)),
        ("readdir_small_count", |x| {
            // Resumable offsets: two or three entries per Treaddir.
            x.list("listing", 128)
        }),
        ("readdir_empty_dir", |x| x.list("listing/subdir", 8192)),
        ("readdir_on_file", |x| {
            let fid = x.open("a.txt", of::RDONLY)?;
            let r = x.c.call(Treaddir {
                fid,
                offset: 0,
                count: 1024,
            });
            x.clunk(fid)?;
            Ok(format!("{} bytes", r?.data.0.len()))
        }),
        ("readdir_unopened", |x| {
            let fid = x.walk("dir")?;
            let r = x.c.call(Treaddir {
                fid,
                offset: 0,
                count: 1024,
            });
            x.clunk(fid)?;
            Ok(format!("{} bytes", r?.data.0.len()))
        }),
        ("statfs", |x| {
            let r = x.c.call(Tstatfs { fid: x.root })?;
            Ok(format!("namelen={}", r.namelen))
        }),
        ("fsync", |x| {
            let fid = x.open("a.txt", of::RDWR)?;
            let full = x.c.call(Tfsync { fid, datasync: 0 });
            let data = x.c.call(Tfsync { fid, datasync: 1 });
            x.clunk(fid)?;
            Ok(format!("fsync {} fdatasync {}", brief(full), brief(data)))
        }),
        ("fsync_unopened", |x| {
            let fid = x.walk("a.txt")?;
            let r = x.c.call(Tfsync { fid, datasync: 0 });
            x.clunk(fid)?;
            r?;
            Ok(String::new())
        }),
        ("xattr_set", |x| {
            x.xattr_set("a.txt", "user.color", b"blue", 0)
        }),
        ("xattr_get", |x| x.xattr_get("a.txt", "user.color")),
        ("xattr_list", |x| {
            x.xattr_set("a.txt", "user.shape", b"round", 0)?;
            x.xattr_get("a.txt", "")
        }),
        ("xattr_set_on_dir", |x| {
            let set = x.xattr_set("dir", "user.d", b"1", 0)?;
            Ok(format!(
                "{set}; read back {}",
                x.xattr_get("dir", "user.d")?
            ))
        }),
        ("xattr_create_existing", |x| {
            x.xattr_set("a.txt", "user.color", b"red", xattr_flags::CREATE)
        }),
        ("xattr_replace_missing", |x| {
            x.xattr_set("a.txt", "user.none", b"x", xattr_flags::REPLACE)
        }),
        ("xattr_replace", |x| {
            let set = x.xattr_set("a.txt", "user.color", b"green", xattr_flags::REPLACE)?;
            Ok(format!(
                "{set}; read back {}",
                x.xattr_get("a.txt", "user.color")?
            ))
        }),
        ("xattr_get_missing", |x| x.xattr_get("a.txt", "user.none")),
        ("xattr_remove", |x| {
            // Linux's v9fs sends removexattr as a zero-size Txattrcreate.
            let set = x.xattr_set("a.txt", "user.shape", b"", 0)?;
            let after = match x.xattr_get("a.txt", "user.shape") {
                Ok(s) => s,
                Err(Fail::Errno(e)) => format!("{:?}", nix::errno::Errno::from_raw(e)),
                Err(Fail::Broken(s)) => return Err(Fail::Broken(s)),
            };
            Ok(format!("{set}; afterwards {after}"))
        }),
        ("xattr_trusted_namespace", |x| {
            x.xattr_get("a.txt", "trusted.overlay.opaque")
        }),
        ("lock_write", |x| {
            let a = x.open("lockme", of::RDWR)?;
            x.kept.borrow_mut().insert("lock_a", a);
            x.lock(a, lock_type::WRLCK, 0, 10)
        }),
        ("getlock_same_fid", |x| {
            x.getlock(x.kept("lock_a")?, lock_type::WRLCK, 0, 10)
        }),
        ("getlock_other_fid", |x| {
            let b = x.open("lockme", of::RDWR)?;
            x.kept.borrow_mut().insert("lock_b", b);
            x.getlock(b, lock_type::WRLCK, 5, 10)
        }),
        ("lock_conflict_other_fid", |x| {
            x.lock(x.kept("lock_b")?, lock_type::WRLCK, 5, 10)
        }),
        ("lock_disjoint_range", |x| {
            x.lock(x.kept("lock_b")?, lock_type::WRLCK, 20, 5)
        }),
        ("unlock", |x| {
            x.lock(x.kept("lock_a")?, lock_type::UNLCK, 0, 10)
        }),
        ("lock_after_unlock", |x| {
            let r = x.lock(x.kept("lock_b")?, lock_type::WRLCK, 5, 10);
            for name in ["lock_a", "lock_b"] {
                if let Some(fid) = x.kept.borrow_mut().remove(name) {
                    x.clunk(fid)?;
                }
            }
            r
        }),
        ("lock_unopened", |x| {
            let fid = x.walk("lockme")?;
            let r = x.lock(fid, lock_type::WRLCK, 0, 1);
            x.clunk(fid)?;
            r
        }),
        ("remove_file", |x| {
            let fid = x.walk("dir/sub/deep.txt")?;
            x.remove(fid)?;
            Ok(format!("afterwards {}", x.stat_brief("dir/sub/deep.txt")))
        }),
        ("remove_nonempty_dir", |x| {
            let fid = x.walk("full")?;
            x.remove(fid)?;
            Ok(format!("afterwards {}", x.stat_brief("full")))
        }),
        ("remove_clunks_fid", |x| {
            // Tremove clunks the fid even when the removal fails.
            let fid = x.walk("full")?;
            let removed = x.c.call(Tremove { fid });
            let clunk = x.c.call(Tclunk { fid });
            x.c.release_fid(fid);
            Ok(format!(
                "remove {} then clunk {}",
                brief(removed),
                brief(clunk)
            ))
        }),
        ("clunk_unknown_fid", |x| {
            x.c.call(Tclunk { fid: 999_999 })?;
            Ok(String::new())
        }),
        ("walk_from_open_fid", |x| {
            let fid = x.open("dir", of::RDONLY)?;
            let r = x.walk_names(fid, &["sub"]);
            x.clunk(fid)?;
            x.clunk(r?.0)?;
            Ok("walked".into())
        }),
        ("final_listing", |x| {
            let mut out = Vec::new();
            for dir in ["", "dir", "dir/sub", "full", "listing"] {
                out.push(format!("[{dir}] {}", x.list(dir, 8192)?));
            }
            Ok(out.join(" "))
        }),
    ]
}

/// The tree every server starts from.
fn populate(root: &Path) {
    let file = |path: &str, data: &str| {
        let p = root.join(path);
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    let dir = |path: &str| {
        let p = root.join(path);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    dir("");
    file("a.txt", "hello world\n");
    dir("dir");
    file("dir/inner.txt", "inner\n");
    dir("dir/sub");
    file("dir/sub/deep.txt", "deep\n");
    dir("full");
    file("full/x", "x");
    file("lockme", "0123456789abcdef0123456789");
    // Made on the host, so the steps that read them do not depend on a
    // server's own symlink/mknod support; `listing` is only ever read.
    dir("listing");
    for i in 1..=12 {
        file(&format!("listing/file-with-a-longish-name-{i:02}"), "x");
    }
    dir("listing/subdir");
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("file-with-a-longish-name-01", root.join("listing/link")).unwrap();
    nix::unistd::mkfifo(
        &root.join("listing/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
}

/// What the script left on the host, as the host sees it.
fn host_tree(root: &Path) -> String {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        entries.sort();
        for name in entries {
            let rel = rel.join(&name);
            let path = root.join(&rel);
            let md = std::fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let mut line = format!(
                "{} {:04o} {}:{}",
                rel.display(),
                md.mode() & 0o7777,
                md.uid(),
                md.gid()
            );
            if ft.is_dir() {
                line += " dir";
                out.push(line);
                walk(root, &rel, out);
                continue;
            }
            if ft.is_symlink() {
                line += &format!(" -> {}", std::fs::read_link(&path).unwrap().display());
            } else if ft.is_file() {
                let data = std::fs::read(&path).unwrap();
                line += &format!(" nlink={} {}", md.nlink(), text(&data));
            } else if ft.is_fifo() {
                line += " fifo";
            } else if ft.is_char_device() {
                line += &format!(" chr {:#x}", md.rdev());
            } else {
                line += " other";
            }
            out.push(line);
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out);
    out.join("; ")
}

/// A server serving one connection, stopped (by pid for a process) when
/// dropped.
enum Running {
    Process(Server, Child),
    Thread(JoinHandle<()>),
}

impl Drop for Running {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        match self {
            Running::Process(server, child) => {
                // It should exit by itself once its connection closes.
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => {
                            eprintln!("{server} (pid {}) exited: {status}", child.id());
                            return;
                        }
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        _ => break,
                    }
                }
                eprintln!("{server} (pid {}) still running: killing it", child.id());
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::Thread(handle) => {
                while !handle.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if !handle.is_finished() {
                    eprintln!("p9-crate server thread did not finish");
                }
            }
        }
    }
}

/// A connected socket pair whose second end a child process inherits.
fn inheritable_pair() -> (UnixStream, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    fcntl(&theirs, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    (ours, theirs)
}

fn find_diod() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("diod"))
        .find(|p| p.is_file())
}

/// Starts `server` on `root`: our end of its connection, the aname to
/// attach, and the handle that stops it. `Err` says why it was skipped.
fn start(server: Server, root: &Path) -> Result<(UnixStream, String, Running), String> {
    match server {
        Server::Gofer => {
            let (ours, theirs) = inheritable_pair();
            let child = Command::new(env!("CARGO_BIN_EXE_gofer"))
                .arg("serve")
                .arg("--root")
                .arg(root)
                .arg("--fd")
                .arg(theirs.as_raw_fd().to_string())
                .stdin(Stdio::null())
                .spawn()
                .expect("starting the gofer");
            drop(theirs);
            Ok((ours, String::new(), Running::Process(server, child)))
        }
        Server::P9Crate => {
            let (ours, theirs) = UnixStream::pair().unwrap();
            let mut p9 = p9::Server::new(root, Default::default(), Default::default())
                .expect("creating the p9 crate's server");
            let handle = std::thread::spawn(move || {
                let mut reader = BufReader::new(theirs.try_clone().unwrap());
                let mut writer = BufWriter::new(theirs);
                // Until the client hangs up (or sends something undecodable).
                while p9.handle_message(&mut reader, &mut writer).is_ok() {}
            });
            Ok((ours, String::new(), Running::Thread(handle)))
        }
        Server::Diod => {
            let Some(diod) = find_diod() else {
                return Err("diod not installed (Debian package `diod`)".into());
            };
            if !nix::unistd::geteuid().is_root() {
                return Err("diod must run as root to serve other uids' files".into());
            }
            let (ours, theirs) = inheritable_pair();
            let fd = theirs.as_raw_fd().to_string();
            // Foreground, no auth, no user database, no config file, log
            // to stderr; serve the inherited socket.
            let child = Command::new(diod)
                .args(["-f", "-n", "-N", "-c", "/dev/null", "-L", "stderr"])
                // One worker thread is plenty for one synchronous client.
                .args(["-t", "1"])
                .arg("-e")
                .arg(root)
                .args(["-r", &fd, "-w", &fd])
                // Where a core file would land if diod crashed: the temp
                // dir, not the source tree.
                .current_dir(root.parent().unwrap())
                .stdin(Stdio::null())
                .spawn()
                .expect("starting diod");
            drop(theirs);
            // diod serves its export under the export's path as aname.
            let aname = root.to_str().expect("utf-8 temp path").to_owned();
            Ok((ours, aname, Running::Process(server, child)))
        }
    }
}

type Transcript = Vec<(&'static str, Outcome)>;

/// Runs the script over `stream` in a thread, giving up on a step that
/// takes longer than [`STEP_TIMEOUT`].
fn run_script(stream: UnixStream, aname: String) -> Transcript {
    stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CALL_TIMEOUT)).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let script = steps();
        let ctx = Client::connect(stream, MSIZE).and_then(|c| {
            let (root, _) = c.attach("root", &aname)?;
            Ok(Ctx {
                c,
                root,
                aname,
                kept: RefCell::new(HashMap::new()),
            })
        });
        let ctx = match ctx {
            Ok(ctx) => ctx,
            Err(e) => {
                for (name, _) in script {
                    let _ = tx.send((name, Outcome::Broken(format!("connect/attach: {e}"))));
                }
                return;
            }
        };
        for (name, run) in script {
            if tx.send((name, run(&ctx).into())).is_err() {
                return;
            }
        }
        let _ = ctx.c.clunk(ctx.root);
    });
    let mut transcript = Vec::new();
    for (name, _) in steps() {
        match rx.recv_timeout(STEP_TIMEOUT) {
            Ok((got, outcome)) => {
                assert_eq!(got, name, "script thread out of step");
                transcript.push((name, outcome));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                transcript.push((name, Outcome::Broken("step timed out".into())));
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                transcript.push((name, Outcome::Broken("script thread died".into())));
                break;
            }
        }
    }
    for (name, _) in steps().into_iter().skip(transcript.len()) {
        transcript.push((name, Outcome::Broken("not run".into())));
    }
    transcript
}

#[test]
fn gofer_agrees_with_p9_crate_and_diod() {
    // Servers create files with the client's mode less their umask; pin it
    // so the outcome does not depend on who runs the test.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));

    let mut transcripts: Vec<(Server, Transcript)> = Vec::new();
    let mut skipped = Vec::new();
    for server in [Server::Gofer, Server::P9Crate, Server::Diod] {
        let dir = tempfile::Builder::new()
            .prefix(&format!("compare-{server}-"))
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let root = dir.path().join("root");
        populate(&root);
        let (stream, aname, running) = match start(server, &root) {
            Ok(started) => started,
            Err(why) => {
                eprintln!("{server}: skipped: {why}");
                skipped.push(server);
                continue;
            }
        };
        let mut transcript = run_script(stream, aname);
        drop(running);
        transcript.push(("host_tree_afterwards", Outcome::Ok(host_tree(&root))));
        transcripts.push((server, transcript));
    }

    let (_, ours) = &transcripts[0];
    eprintln!("gofer transcript:");
    for (step, outcome) in ours {
        eprintln!("  {step}: {outcome}");
    }

    let mut unexpected = Vec::new();
    let mut known_seen = Vec::new();
    let mut bugs_seen = Vec::new();
    for (server, theirs) in &transcripts[1..] {
        for ((step, mine), (step2, other)) in ours.iter().zip(theirs) {
            assert_eq!(step, step2);
            if mine == other {
                continue;
            }
            let line = format!("{server} / {step}:\n    gofer: {mine}\n    {server}: {other}");
            if let Some((_, _, why)) = KNOWN_DIFFERENCES
                .iter()
                .find(|(s, st, _)| s == server && st == step)
            {
                eprintln!("known difference, {line}\n    why: {why}");
                known_seen.push((*server, *step));
            } else if let Some((_, what)) = GOFER_BUGS.iter().find(|(st, _)| st == step) {
                eprintln!("GOFER BUG, {line}\n    bug: {what}");
                bugs_seen.push(*step);
            } else {
                eprintln!("UNEXPECTED difference, {line}");
                unexpected.push(format!("{server}/{step}"));
            }
        }
    }

    // The lists must stay true: every entry still happens.
    let stale_known: Vec<String> = KNOWN_DIFFERENCES
        .iter()
        .filter(|(s, st, _)| !skipped.contains(s) && !known_seen.contains(&(*s, *st)))
        .map(|(s, st, _)| format!("{s}/{st}"))
        .collect();
    // A bug may show against one server only: judge only full runs.
    let stale_bugs: Vec<&str> = GOFER_BUGS
        .iter()
        .filter(|(st, _)| skipped.is_empty() && !bugs_seen.contains(st))
        .map(|(st, _)| *st)
        .collect();
    let broken: Vec<&str> = ours
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Broken(_)))
        .map(|(s, _)| *s)
        .collect();

    assert!(
        broken.is_empty(),
        "the gofer's connection broke or stalled at: {broken:?}"
    );
    assert!(
        unexpected.is_empty(),
        "unlisted differences from the gofer: {unexpected:?}"
    );
    assert!(
        stale_known.is_empty(),
        "KNOWN_DIFFERENCES entries that no longer differ (remove them): {stale_known:?}"
    );
    assert!(
        stale_bugs.is_empty(),
        "GOFER_BUGS entries that no longer differ (fixed? remove them): {stale_bugs:?}"
    );
}
