//! Every 9P2000.L operation through the p9proto client against a real
//! gofer process, each checked by its effect on the host.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::Arc;

use common::{errno, open, walk, Gofer};
use p9proto::types::{
    getattr, lock_flags, lock_status, lock_type, open_flags as of, setattr, AT_REMOVEDIR,
};
use p9proto::*;

fn getattr(c: &Client, fid: u32) -> Rgetattr {
    c.call(Tgetattr {
        fid,
        request_mask: getattr::ALL,
    })
    .unwrap()
}

#[test]
fn attach_walk_and_getattr_report_host_metadata() {
    let g = Gofer::start();
    fs::create_dir_all(g.path("a/b")).unwrap();
    fs::write(g.path("a/b/c"), b"hello").unwrap();
    fs::set_permissions(g.path("a/b/c"), fs::Permissions::from_mode(0o640)).unwrap();
    let c = g.client();
    let (root, qid) = c.attach("root", "").unwrap();
    assert!(qid.is_dir());
    let r = c
        .call(Twalk {
            fid: root,
            newfid: 50,
            wnames: vec!["a".into(), "b".into(), "c".into()],
        })
        .unwrap();
    assert_eq!(r.wqids.len(), 3);
    assert!(r.wqids[0].is_dir() && r.wqids[1].is_dir() && !r.wqids[2].is_dir());
    let meta = fs::metadata(g.path("a/b/c")).unwrap();
    assert_eq!(r.wqids[2].path, meta.ino());
    let a = getattr(&c, 50);
    assert_eq!(a.valid & getattr::BASIC, getattr::BASIC);
    assert_eq!(a.mode, meta.mode());
    assert_eq!(a.size, 5);
    assert_eq!(
        (a.uid, a.gid, a.nlink),
        (meta.uid(), meta.gid(), meta.nlink())
    );
    assert_eq!(a.mtime_sec as i64, meta.mtime());
    assert_eq!(a.mtime_nsec as i64, meta.mtime_nsec());
    // Walking zero names clones the fid; walking an attached name set via aname works.
    let r = c
        .call(Twalk {
            fid: 50,
            newfid: 51,
            wnames: vec![],
        })
        .unwrap();
    assert!(r.wqids.is_empty());
    assert_eq!(getattr(&c, 51).size, 5);
    let fid = c.new_fid();
    let q = c
        .call(Tattach {
            fid,
            afid: NOFID,
            uname: "u".into(),
            aname: "/a/b".into(),
            n_uname: 0,
        })
        .unwrap();
    assert_eq!(q.qid.path, fs::metadata(g.path("a/b")).unwrap().ino());
}

#[test]
fn walk_failing_on_first_name_errors_and_later_name_stops_short() {
    let g = Gofer::start();
    fs::create_dir(g.path("d")).unwrap();
    let c = g.client();
    let (root, _) = c.attach("root", "").unwrap();
    let e = c.call(Twalk {
        fid: root,
        newfid: 9,
        wnames: vec!["missing".into()],
    });
    assert_eq!(errno(e), libc::ENOENT);
    let r = c
        .call(Twalk {
            fid: root,
            newfid: 9,
            wnames: vec!["d".into(), "missing".into(), "x".into()],
        })
        .unwrap();
    assert_eq!(r.wqids.len(), 1);
    // newfid was not bound by the short walk.
    assert_eq!(errno(c.call(Tclunk { fid: 9 })), libc::EBADF);
    // A walk through a regular file.
    fs::write(g.path("f"), b"").unwrap();
    let r = c
        .call(Twalk {
            fid: root,
            newfid: 9,
            wnames: vec!["f".into(), "x".into()],
        })
        .unwrap();
    assert_eq!(r.wqids.len(), 1, "stops at the regular file");
    // newfid already in use.
    let r = c.call(Twalk {
        fid: root,
        newfid: root,
        wnames: vec!["d".into()],
    });
    assert!(r.is_ok(), "walking a fid onto itself replaces it");
    let e = c.call(Twalk {
        fid: root,
        newfid: root,
        wnames: vec!["nope".into()],
    });
    assert_eq!(errno(e), libc::ENOENT);
}

#[test]
fn read_and_write_at_offsets() {
    let g = Gofer::start();
    fs::write(g.path("f"), b"0123456789").unwrap();
    let c = g.client();
    let fid = open(&c, "f", of::RDWR).unwrap();
    assert_eq!(c.read(fid, 3, 4).unwrap(), b"3456");
    assert_eq!(c.read(fid, 10, 4).unwrap(), b"");
    let w = c
        .call(Twrite {
            fid,
            offset: 8,
            data: Data(b"abcd".to_vec()),
        })
        .unwrap();
    assert_eq!(w.count, 4);
    assert_eq!(fs::read(g.path("f")).unwrap(), b"01234567abcd");
    // A big write spanning many frames.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    c.write_all(fid, 0, &big).unwrap();
    assert_eq!(fs::read(g.path("f")).unwrap(), big);
    assert_eq!(c.read_to_end(fid, 0).unwrap(), big);
    // Read-only open refuses writes; a truncating open truncates.
    let ro = open(&c, "f", of::RDONLY).unwrap();
    assert_eq!(
        errno(c.call(Twrite {
            fid: ro,
            offset: 0,
            data: Data(b"x".to_vec())
        })),
        libc::EBADF
    );
    let t = open(&c, "f", of::WRONLY | of::TRUNC).unwrap();
    assert_eq!(fs::metadata(g.path("f")).unwrap().len(), 0);
    assert_eq!(
        errno(c.call(Tread {
            fid: t,
            offset: 0,
            count: 1
        })),
        libc::EBADF
    );
    // Append mode ignores the offset.
    let ap = open(&c, "f", of::WRONLY | of::APPEND).unwrap();
    c.write_all(ap, 0, b"one").unwrap();
    c.write_all(ap, 0, b"two").unwrap();
    assert_eq!(fs::read(g.path("f")).unwrap(), b"onetwo");
    // An unopened fid cannot be read; an opened one cannot be walked or reopened.
    let w = walk(&c, "f").unwrap();
    assert_eq!(
        errno(c.call(Tread {
            fid: w,
            offset: 0,
            count: 1
        })),
        libc::EBADF
    );
    assert_eq!(
        errno(c.call(Twalk {
            fid,
            newfid: 77,
            wnames: vec![]
        })),
        libc::EBADF
    );
    assert_eq!(errno(c.call(Tlopen { fid, flags: 0 })), libc::EBADF);
    // A directory opened for writing.
    fs::create_dir(g.path("d")).unwrap();
    assert_eq!(errno(open(&c, "d", of::WRONLY)), libc::EISDIR);
}

#[test]
fn lcreate_creates_an_open_file_with_mode_and_group() {
    let g = Gofer::start();
    let c = g.client();
    let dir = walk(&c, "").unwrap();
    let r = c
        .call(Tlcreate {
            fid: dir,
            name: "new".into(),
            flags: of::RDWR,
            mode: 0o600,
            gid: 1234,
        })
        .unwrap();
    assert!(!r.qid.is_dir());
    assert!(r.iounit > 0);
    // The fid now names the new, opened file.
    c.write_all(dir, 0, b"data").unwrap();
    let meta = fs::metadata(g.path("new")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(meta.gid(), 1234);
    assert_eq!(fs::read(g.path("new")).unwrap(), b"data");
    let dir2 = walk(&c, "").unwrap();
    let e = c.call(Tlcreate {
        fid: dir2,
        name: "new".into(),
        flags: of::RDWR | of::EXCL,
        mode: 0o600,
        gid: 0,
    });
    assert_eq!(errno(e), libc::EEXIST);
    let e = c.call(Tlcreate {
        fid: dir2,
        name: "a/b".into(),
        flags: of::RDWR,
        mode: 0o600,
        gid: 0,
    });
    assert_eq!(errno(e), libc::EINVAL);
}

#[test]
fn created_files_keep_the_mode_sent_whatever_the_gofer_umask() {
    // The harness starts the gofer with this process's umask (022 here).
    let g = Gofer::start();
    let c = g.client();
    let root = walk(&c, "").unwrap();
    c.call(Tmkdir {
        dfid: root,
        name: "d".into(),
        mode: 0o777,
        gid: u32::MAX,
    })
    .unwrap();
    let f = walk(&c, "").unwrap();
    c.call(Tlcreate {
        fid: f,
        name: "f".into(),
        flags: of::RDWR,
        mode: 0o666,
        gid: u32::MAX,
    })
    .unwrap();
    c.call(Tmknod {
        dfid: root,
        name: "p".into(),
        mode: libc::S_IFIFO | 0o666,
        major: 0,
        minor: 0,
        gid: u32::MAX,
    })
    .unwrap();
    for (name, mode) in [("d", 0o777), ("f", 0o666), ("p", 0o666)] {
        assert_eq!(
            fs::metadata(g.path(name)).unwrap().mode() & 0o777,
            mode,
            "{name}"
        );
    }
}

#[test]
fn setattr_changes_mode_owner_size_and_times() {
    let g = Gofer::start();
    fs::write(g.path("f"), b"0123456789").unwrap();
    let c = g.client();
    let fid = walk(&c, "f").unwrap();
    let base = Tsetattr {
        fid,
        ..Default::default()
    };
    c.call(Tsetattr {
        valid: setattr::MODE,
        mode: 0o4751,
        ..base.clone()
    })
    .unwrap();
    assert_eq!(fs::metadata(g.path("f")).unwrap().mode() & 0o7777, 0o4751);
    c.call(Tsetattr {
        valid: setattr::UID | setattr::GID,
        uid: 4321,
        gid: 8765,
        ..base.clone()
    })
    .unwrap();
    let m = fs::metadata(g.path("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (4321, 8765));
    c.call(Tsetattr {
        valid: setattr::GID,
        gid: 7,
        ..base.clone()
    })
    .unwrap();
    let m = fs::metadata(g.path("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (4321, 7), "only the gid changes");
    c.call(Tsetattr {
        valid: setattr::SIZE,
        size: 3,
        ..base.clone()
    })
    .unwrap();
    assert_eq!(fs::read(g.path("f")).unwrap(), b"012");
    c.call(Tsetattr {
        valid: setattr::SIZE,
        size: 1 << 20,
        ..base.clone()
    })
    .unwrap();
    assert_eq!(fs::metadata(g.path("f")).unwrap().len(), 1 << 20);
    // Explicit times.
    c.call(Tsetattr {
        valid: setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET,
        atime_sec: 1_000_000,
        atime_nsec: 5,
        mtime_sec: 2_000_000,
        mtime_nsec: 7,
        ..base.clone()
    })
    .unwrap();
    let m = fs::metadata(g.path("f")).unwrap();
    assert_eq!(
        (m.atime(), m.atime_nsec(), m.mtime(), m.mtime_nsec()),
        (1_000_000, 5, 2_000_000, 7)
    );
    // MTIME without MTIME_SET means now; ATIME absent means omit.
    c.call(Tsetattr {
        valid: setattr::MTIME,
        ..base.clone()
    })
    .unwrap();
    let m = fs::metadata(g.path("f")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((m.mtime() - now).abs() < 60, "mtime set to now");
    assert_eq!((m.atime(), m.atime_nsec()), (1_000_000, 5), "atime omitted");
    // Directories cannot be truncated.
    fs::create_dir(g.path("d")).unwrap();
    let d = walk(&c, "d").unwrap();
    assert_eq!(
        errno(c.call(Tsetattr {
            fid: d,
            valid: setattr::SIZE,
            ..Default::default()
        })),
        libc::EISDIR
    );
}

#[test]
fn readdir_resumes_from_offsets_and_lists_every_entry_once() {
    let g = Gofer::start();
    let mut want: Vec<String> = (0..300)
        .map(|i| format!("file-{i:03}-{}", "x".repeat(i % 40)))
        .collect();
    for n in &want {
        fs::write(g.path(n), b"").unwrap();
    }
    fs::create_dir(g.path("sub")).unwrap();
    want.push("sub".into());
    want.push(".".into());
    want.push("..".into());
    want.sort();
    let c = g.client();
    let dir = open(&c, "", of::RDONLY | of::DIRECTORY).unwrap();
    let mut got = Vec::new();
    let mut offset = 0;
    let mut calls = 0;
    loop {
        let r = c
            .call(Treaddir {
                fid: dir,
                offset,
                count: 300,
            })
            .unwrap();
        assert!(r.data.0.len() <= 300);
        let ents = types::parse_dirents(&r.data.0).unwrap();
        let Some(last) = ents.last() else { break };
        offset = last.offset;
        for e in &ents {
            if e.name.as_bytes() == b"sub" {
                assert!(e.qid.is_dir());
                assert_eq!(e.ty, libc::DT_DIR);
            }
        }
        got.extend(ents.into_iter().map(|e| e.name.to_string()));
        calls += 1;
    }
    assert!(calls > 10, "small counts need many calls");
    got.sort();
    assert_eq!(got, want);
    // Reading again from offset 0 starts over.
    let again = c.readdir_all(dir).unwrap();
    assert_eq!(again.len(), want.len());
    // Readdir needs an opened directory.
    let f = open(&c, "sub", of::RDONLY).unwrap();
    let plain = walk(&c, "sub").unwrap();
    assert!(c
        .call(Treaddir {
            fid: f,
            offset: 0,
            count: 100
        })
        .is_ok());
    assert_eq!(
        errno(c.call(Treaddir {
            fid: plain,
            offset: 0,
            count: 100
        })),
        libc::EBADF
    );
    let file = open(&c, "file-000-", of::RDONLY).unwrap();
    assert_eq!(
        errno(c.call(Treaddir {
            fid: file,
            offset: 0,
            count: 100
        })),
        libc::ENOTDIR
    );
}

#[test]
fn mkdir_symlink_readlink_link_and_mknod() {
    let g = Gofer::start();
    let c = g.client();
    let root = walk(&c, "").unwrap();
    let q = c
        .call(Tmkdir {
            dfid: root,
            name: "d".into(),
            mode: 0o750,
            gid: 55,
        })
        .unwrap()
        .qid;
    let m = fs::metadata(g.path("d")).unwrap();
    assert!(q.is_dir() && m.is_dir());
    assert_eq!((m.mode() & 0o777, m.gid(), q.path), (0o750, 55, m.ino()));
    assert_eq!(
        errno(c.call(Tmkdir {
            dfid: root,
            name: "d".into(),
            mode: 0o750,
            gid: 0
        })),
        libc::EEXIST
    );

    let q = c
        .call(Tsymlink {
            fid: root,
            name: "l".into(),
            symtgt: "d/../nowhere".into(),
            gid: 0,
        })
        .unwrap()
        .qid;
    assert!(q.is_symlink());
    assert_eq!(
        fs::read_link(g.path("l")).unwrap().to_str(),
        Some("d/../nowhere")
    );
    let l = walk(&c, "l").unwrap();
    assert_eq!(
        c.call(Treadlink { fid: l }).unwrap().target.as_bytes(),
        b"d/../nowhere"
    );
    let d = walk(&c, "d").unwrap();
    assert_eq!(errno(c.call(Treadlink { fid: d })), libc::EINVAL);

    fs::write(g.path("f"), b"x").unwrap();
    let f = walk(&c, "f").unwrap();
    c.call(Tlink {
        dfid: d,
        fid: f,
        name: "hard".into(),
    })
    .unwrap();
    assert_eq!(
        fs::metadata(g.path("d/hard")).unwrap().ino(),
        fs::metadata(g.path("f")).unwrap().ino()
    );
    assert_eq!(fs::metadata(g.path("f")).unwrap().nlink(), 2);
    assert_eq!(
        errno(c.call(Tlink {
            dfid: root,
            fid: d,
            name: "dirlink".into()
        })),
        libc::EPERM
    );

    let q = c
        .call(Tmknod {
            dfid: root,
            name: "fifo".into(),
            mode: libc::S_IFIFO | 0o644,
            major: 0,
            minor: 0,
            gid: 0,
        })
        .unwrap();
    assert!(!q.qid.is_dir());
    assert!(fs::metadata(g.path("fifo")).unwrap().file_type().is_fifo());
    c.call(Tmknod {
        dfid: root,
        name: "reg".into(),
        mode: libc::S_IFREG | 0o600,
        major: 0,
        minor: 0,
        gid: 0,
    })
    .unwrap();
    assert!(fs::metadata(g.path("reg")).unwrap().is_file());
    let e = c.call(Tmknod {
        dfid: root,
        name: "null".into(),
        mode: libc::S_IFCHR | 0o666,
        major: 1,
        minor: 3,
        gid: 0,
    });
    assert_eq!(errno(e), libc::EPERM);
    let e = c.call(Tmknod {
        dfid: root,
        name: "blk".into(),
        mode: libc::S_IFBLK | 0o666,
        major: 8,
        minor: 0,
        gid: 0,
    });
    assert_eq!(errno(e), libc::EPERM);
    assert!(!g.path("null").exists() && !g.path("blk").exists());
    // Creating inside a non-directory.
    assert_eq!(
        errno(c.call(Tmkdir {
            dfid: f,
            name: "x".into(),
            mode: 0o755,
            gid: 0
        })),
        libc::ENOTDIR
    );
}

#[test]
fn rename_renameat_unlinkat_and_remove() {
    let g = Gofer::start();
    fs::create_dir_all(g.path("a/full")).unwrap();
    fs::create_dir(g.path("b")).unwrap();
    fs::write(g.path("a/full/x"), b"").unwrap();
    fs::write(g.path("a/f"), b"content").unwrap();
    let c = g.client();
    let a = walk(&c, "a").unwrap();
    let b = walk(&c, "b").unwrap();
    let f = walk(&c, "a/f").unwrap();
    c.call(Trename {
        fid: f,
        dfid: b,
        name: "g".into(),
    })
    .unwrap();
    assert!(!g.path("a/f").exists());
    assert_eq!(fs::read(g.path("b/g")).unwrap(), b"content");
    // The fid follows its file: it can still be opened and read.
    c.call(Tlopen {
        fid: f,
        flags: of::RDONLY,
    })
    .unwrap();
    assert_eq!(c.read(f, 0, 100).unwrap(), b"content");

    c.call(Trenameat {
        olddirfid: b,
        oldname: "g".into(),
        newdirfid: a,
        newname: "h".into(),
    })
    .unwrap();
    assert!(g.path("a/h").exists() && !g.path("b/g").exists());
    assert_eq!(
        errno(c.call(Trenameat {
            olddirfid: b,
            oldname: "g".into(),
            newdirfid: a,
            newname: "h".into()
        })),
        libc::ENOENT
    );

    assert_eq!(
        errno(c.call(Tunlinkat {
            dirfid: a,
            name: "full".into(),
            flags: AT_REMOVEDIR
        })),
        libc::ENOTEMPTY
    );
    assert_eq!(
        errno(c.call(Tunlinkat {
            dirfid: a,
            name: "full".into(),
            flags: 0
        })),
        libc::EISDIR
    );
    c.call(Tunlinkat {
        dirfid: a,
        name: "h".into(),
        flags: 0,
    })
    .unwrap();
    assert!(!g.path("a/h").exists());
    let full = walk(&c, "a/full").unwrap();
    c.call(Tunlinkat {
        dirfid: full,
        name: "x".into(),
        flags: 0,
    })
    .unwrap();
    c.call(Tunlinkat {
        dirfid: a,
        name: "full".into(),
        flags: AT_REMOVEDIR,
    })
    .unwrap();
    assert!(!g.path("a/full").exists());
    assert_eq!(
        errno(c.call(Tunlinkat {
            dirfid: a,
            name: "..".into(),
            flags: AT_REMOVEDIR
        })),
        libc::EINVAL
    );
    assert_eq!(
        errno(c.call(Tunlinkat {
            dirfid: a,
            name: "x".into(),
            flags: 0x100
        })),
        libc::EINVAL
    );

    // Tremove removes and clunks, even when it fails.
    fs::write(g.path("b/r"), b"").unwrap();
    let r = walk(&c, "b/r").unwrap();
    c.call(Tremove { fid: r }).unwrap();
    assert!(!g.path("b/r").exists());
    assert_eq!(errno(c.call(Tclunk { fid: r })), libc::EBADF);
    fs::write(g.path("b/keep"), b"").unwrap();
    let root = walk(&c, "").unwrap();
    assert_eq!(errno(c.call(Tremove { fid: root })), libc::EBUSY);
    assert_eq!(errno(c.call(Tclunk { fid: root })), libc::EBADF);
    let b2 = walk(&c, "b").unwrap();
    assert_eq!(errno(c.call(Tremove { fid: b2 })), libc::ENOTEMPTY);
    assert_eq!(errno(c.call(Tclunk { fid: b2 })), libc::EBADF);
}

#[test]
fn statfs_and_fsync() {
    let g = Gofer::start();
    fs::write(g.path("f"), b"x").unwrap();
    let c = g.client();
    let root = walk(&c, "").unwrap();
    let s = c.call(Tstatfs { fid: root }).unwrap();
    let host = nix::sys::statvfs::statvfs(&g.root).unwrap();
    assert_eq!(s.bsize as u64, host.block_size());
    assert_eq!(s.blocks, host.blocks());
    assert_eq!(s.namelen as u64, host.name_max());
    let f = open(&c, "f", of::RDWR).unwrap();
    c.call(Tfsync {
        fid: f,
        datasync: 0,
    })
    .unwrap();
    c.call(Tfsync {
        fid: f,
        datasync: 1,
    })
    .unwrap();
    let w = walk(&c, "f").unwrap();
    assert_eq!(
        errno(c.call(Tfsync {
            fid: w,
            datasync: 0
        })),
        libc::EBADF
    );
}

fn lock_req(fid: u32, ty: u8, flags: u32, start: u64, length: u64) -> Tlock {
    Tlock {
        fid,
        ty,
        flags,
        start,
        length,
        proc_id: 1,
        client_id: "test".into(),
    }
}

/// What a host process sees of the locks on `path` over [start, start+len).
fn host_lock_type(path: &std::path::Path, start: i64, len: i64) -> i16 {
    use std::os::fd::AsFd;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: start,
        l_len: len,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_OFD_GETLK(&mut fl)).unwrap();
    fl.l_type
}

#[test]
fn byte_range_locks_are_real_host_locks() {
    let g = Gofer::start();
    fs::write(g.path("f"), vec![0u8; 100]).unwrap();
    let c = g.client();
    let f1 = open(&c, "f", of::RDWR).unwrap();
    let f2 = open(&c, "f", of::RDWR).unwrap();
    assert_eq!(
        c.call(lock_req(f1, lock_type::WRLCK, 0, 0, 10))
            .unwrap()
            .status,
        lock_status::SUCCESS
    );
    assert_eq!(
        host_lock_type(&g.path("f"), 0, 10),
        libc::F_WRLCK as i16,
        "a host process sees the lock"
    );
    assert_eq!(host_lock_type(&g.path("f"), 50, 10), libc::F_UNLCK as i16);
    assert_eq!(
        c.call(lock_req(f2, lock_type::WRLCK, 0, 5, 10))
            .unwrap()
            .status,
        lock_status::BLOCKED
    );
    assert_eq!(
        c.call(lock_req(f2, lock_type::RDLCK, 0, 20, 10))
            .unwrap()
            .status,
        lock_status::SUCCESS
    );
    let gl = c
        .call(Tgetlock {
            fid: f2,
            ty: lock_type::WRLCK,
            start: 0,
            length: 100,
            proc_id: 1,
            client_id: "test".into(),
        })
        .unwrap();
    assert_eq!((gl.ty, gl.start, gl.length), (lock_type::WRLCK, 0, 10));
    let gl = c
        .call(Tgetlock {
            fid: f2,
            ty: lock_type::WRLCK,
            start: 50,
            length: 10,
            proc_id: 1,
            client_id: "test".into(),
        })
        .unwrap();
    assert_eq!(gl.ty, lock_type::UNLCK);
    assert_eq!(
        c.call(lock_req(f1, lock_type::UNLCK, 0, 0, 10))
            .unwrap()
            .status,
        lock_status::SUCCESS
    );
    assert_eq!(
        c.call(lock_req(f2, lock_type::WRLCK, 0, 5, 10))
            .unwrap()
            .status,
        lock_status::SUCCESS
    );
    // A lock on an unopened fid, or with a bad type.
    let w = walk(&c, "f").unwrap();
    assert_eq!(
        errno(c.call(lock_req(w, lock_type::WRLCK, 0, 0, 1))),
        libc::EBADF
    );
    assert_eq!(errno(c.call(lock_req(f1, 9, 0, 0, 1))), libc::EINVAL);
    // Clunking the fid releases its locks.
    c.clunk(f2).unwrap();
    assert_eq!(host_lock_type(&g.path("f"), 0, 100), libc::F_UNLCK as i16);
}

#[test]
fn blocking_lock_waits_for_release_and_flush_cancels_it() {
    let g = Gofer::start();
    fs::write(g.path("f"), b"").unwrap();
    let c = Arc::new(g.client());
    let f1 = open(&c, "f", of::RDWR).unwrap();
    let f2 = open(&c, "f", of::RDWR).unwrap();
    c.call(lock_req(f1, lock_type::WRLCK, 0, 0, 0)).unwrap();
    // Waits until f1 unlocks.
    let c2 = c.clone();
    let waiter = std::thread::spawn(move || {
        c2.call(lock_req(f2, lock_type::WRLCK, lock_flags::BLOCK, 0, 0))
            .map(|r| r.status)
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!waiter.is_finished(), "the lock must wait");
    // Other requests are still served meanwhile.
    assert_eq!(c.read(f1, 0, 10).unwrap(), b"");
    c.call(lock_req(f1, lock_type::UNLCK, 0, 0, 0)).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), lock_status::SUCCESS);

    // Now f2 holds it; a blocked request on f1 is cancelled by Tflush.
    let pending = c
        .send(lock_req(f1, lock_type::WRLCK, lock_flags::BLOCK, 0, 0))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.flush(pending.tag()).unwrap();
    assert!(matches!(pending.wait(), Err(ClientError::Flushed)));
    // The lock was not taken by the flushed request.
    assert_eq!(
        c.call(lock_req(f1, lock_type::WRLCK, 0, 0, 0))
            .unwrap()
            .status,
        lock_status::BLOCKED
    );
}

#[test]
fn flush_interrupts_a_read_blocked_on_a_fifo() {
    let g = Gofer::start();
    nix::unistd::mkfifo(
        &g.path("p"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let c = g.client();
    // O_RDWR on a FIFO opens without waiting for a peer.
    let p = open(&c, "p", of::RDWR).unwrap();
    let pending = c
        .send(Tread {
            fid: p,
            offset: 0,
            count: 10,
        })
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.flush(pending.tag()).unwrap();
    assert!(matches!(pending.wait(), Err(ClientError::Flushed)));
    // Data written then read back through the same FIFO.
    c.write_all(p, 0, b"ping").unwrap();
    assert_eq!(c.read(p, 0, 10).unwrap(), b"ping");
    // Flushing a tag that is not in flight is answered at once.
    c.flush(4000).unwrap();
}

#[test]
fn user_xattrs_set_get_list_and_remove() {
    let g = Gofer::start();
    fs::write(g.path("f"), b"").unwrap();
    let c = g.client();
    let f = walk(&c, "f").unwrap();
    let set = |name: &str, value: &[u8], flags: u32| -> Result<(), ClientError> {
        let x = c.walk(f, &[] as &[&[u8]])?.0;
        c.call(Txattrcreate {
            fid: x,
            name: name.into(),
            attr_size: value.len() as u64,
            flags,
        })?;
        if !value.is_empty() {
            c.write_all(x, 0, value)?;
        }
        c.clunk(x)
    };
    let get = |name: &str| -> Result<Vec<u8>, ClientError> {
        let x = c.new_fid();
        let r = c.call(Txattrwalk {
            fid: f,
            newfid: x,
            name: name.into(),
        })?;
        let data = c.read_to_end(x, 0)?;
        assert_eq!(data.len() as u64, r.size);
        c.clunk(x)?;
        Ok(data)
    };
    set("user.color", b"blue", 0).unwrap();
    let mut buf = [0u8; 64];
    let file = fs::File::open(g.path("f")).unwrap();
    let n =
        gofer::host::fgetxattr(std::os::fd::AsFd::as_fd(&file), b"user.color", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"blue", "the host sees the attribute");
    assert_eq!(get("user.color").unwrap(), b"blue");
    set("user.size", &[7u8; 3000], 0).unwrap();
    assert_eq!(get("user.size").unwrap(), vec![7u8; 3000]);
    assert_eq!(
        errno(set("user.color", b"red", types::xattr_flags::CREATE)),
        libc::EEXIST
    );
    assert_eq!(
        errno(set("user.none", b"x", types::xattr_flags::REPLACE)),
        libc::ENODATA
    );
    let mut names: Vec<Vec<u8>> = get("")
        .unwrap()
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    names.sort();
    assert_eq!(names, vec![b"user.color".to_vec(), b"user.size".to_vec()]);
    // Size 0 removes.
    set("user.color", b"", 0).unwrap();
    assert_eq!(errno(get("user.color")), libc::ENODATA);
    // Only the user namespace is reachable.
    assert_eq!(errno(get("trusted.x")), libc::EOPNOTSUPP);
    assert_eq!(errno(set("security.selinux", b"x", 0)), libc::EOPNOTSUPP);
    // Fewer bytes than announced fail at clunk and set nothing.
    let x = c.walk(f, &[] as &[&[u8]]).unwrap().0;
    c.call(Txattrcreate {
        fid: x,
        name: "user.short".into(),
        attr_size: 10,
        flags: 0,
    })
    .unwrap();
    c.write_all(x, 0, b"abc").unwrap();
    assert_eq!(errno(c.clunk(x)), libc::EINVAL);
    assert_eq!(errno(get("user.short")), libc::ENODATA);
}

#[test]
fn version_resets_the_session() {
    let g = Gofer::start();
    let c = g.client();
    let root = walk(&c, "").unwrap();
    c.call(Tversion {
        msize: 8192,
        version: VERSION_9P2000_L.into(),
    })
    .map(|_| ())
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        errno(c.call(Tgetattr {
            fid: root,
            request_mask: getattr::BASIC
        })),
        libc::EBADF
    );
    let r = c
        .call(Tversion {
            msize: 8192,
            version: "9P2000".into(),
        })
        .unwrap();
    assert_eq!(r.version.as_bytes(), b"unknown");
}

#[test]
fn many_threads_share_one_connection() {
    let g = Gofer::start();
    for i in 0..8 {
        fs::write(g.path(&format!("f{i}")), vec![b'a' + i as u8; 1000 + i]).unwrap();
    }
    let c = Arc::new(g.client());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let fid = walk(&c, &format!("f{i}")).unwrap();
                    let a = c
                        .call(Tgetattr {
                            fid,
                            request_mask: getattr::BASIC,
                        })
                        .unwrap();
                    assert_eq!(a.size, 1000 + i as u64);
                    c.call(Tlopen { fid, flags: 0 }).unwrap();
                    assert_eq!(
                        c.read(fid, 0, 4096).unwrap(),
                        vec![b'a' + i as u8; 1000 + i]
                    );
                    c.clunk(fid).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn pipelined_walk_getattr_clunk_answers_in_order() {
    let g = Gofer::start();
    fs::create_dir(g.path("d")).unwrap();
    fs::write(g.path("d/f"), b"12345").unwrap();
    let c = g.client();
    let (root, _) = c.attach("root", "").unwrap();
    for _ in 0..100 {
        let a = c.walk_getattr(root, &[b"d", b"f"], getattr::BASIC).unwrap();
        assert_eq!(a.size, 5);
    }
    assert_eq!(
        errno(c.walk_getattr(root, &[b"d", b"missing"], getattr::BASIC)),
        libc::ENOENT
    );
    assert_eq!(
        errno(c.walk_getattr(root, &[b"missing"], getattr::BASIC)),
        libc::ENOENT
    );
    // No fid leaked on the server: the fids it used are free again.
    let fid = c.new_fid();
    assert_eq!(errno(c.call(Tclunk { fid })), libc::EBADF);
    assert_eq!(
        c.walk_getattr(root, &[], getattr::BASIC).unwrap().qid.path,
        fs::metadata(&g.root).unwrap().ino()
    );
}
