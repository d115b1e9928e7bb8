//! No request reaches outside the served root: not through `..`, absolute
//! or relative symlinks, symlink loops, or names swapped during a walk; and
//! the gofer's seccomp filter is really in force.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{errno, open, walk, Gofer, TempDir};
use p9proto::types::{open_flags as of, setattr};
use p9proto::*;

/// How many names of `path` a raw Twalk from the root got through.
fn walked(c: &Client, path: &[&str]) -> usize {
    let (root, _) = c.attach("root", "").unwrap();
    let newfid = c.new_fid();
    let r = c.call(Twalk {
        fid: root,
        newfid,
        wnames: path.iter().map(|&n| n.into()).collect(),
    });
    let n = r.map(|r| r.wqids.len()).unwrap_or(0);
    if n == path.len() {
        c.clunk(newfid).unwrap();
    }
    c.clunk(root).unwrap();
    n
}

#[test]
fn dotdot_at_the_root_stays_at_the_root() {
    let g = Gofer::start();
    fs::create_dir(g.path("etc")).unwrap();
    fs::write(g.path("etc/marker"), b"inside").unwrap();
    let c = g.client();
    let (root, _) = c.attach("root", "").unwrap();
    let (fid, _) = c.walk(root, &["..", "..", "..", "etc", "marker"]).unwrap();
    c.call(Tlopen { fid, flags: 0 }).unwrap();
    assert_eq!(c.read(fid, 0, 100).unwrap(), b"inside");
    assert_eq!(errno(c.walk(root, &["..", "etc", "passwd"])), libc::ENOENT);
    // `..` from a subdirectory goes to its parent inside the tree.
    let (up, q) = c.walk(root, &["etc", "..", "etc", ".."]).unwrap();
    assert_eq!(q[3].path, fs::metadata(&g.root).unwrap().ino());
    c.clunk(up).unwrap();
    // Names with a slash are not paths.
    assert_eq!(errno(c.walk(root, &["etc/marker"])), libc::EINVAL);
    assert_eq!(errno(c.walk(root, &["/etc"])), libc::EINVAL);
    let e = c.call(Tmkdir {
        dfid: root,
        name: "../escape".into(),
        mode: 0o755,
        gid: 0,
    });
    assert_eq!(errno(e), libc::EINVAL);
    assert!(!g.root.parent().unwrap().join("escape").exists());
}

#[test]
fn symlinks_to_outside_are_never_followed() {
    let outside = TempDir::new("outside");
    fs::write(outside.path().join("secret"), b"secret").unwrap();
    let g = Gofer::start();
    symlink(outside.path(), g.path("abs")).unwrap();
    symlink("../../../../../../../../..", g.path("rel")).unwrap();
    symlink(outside.path().join("secret"), g.path("file_link")).unwrap();
    let c = g.client();
    // Through a symlink to a directory: the symlink is not a directory.
    assert_eq!(walked(&c, &["abs", "secret"]), 1);
    assert_eq!(walked(&c, &["rel", "etc", "passwd"]), 1);
    // Opening a symlink itself.
    assert_eq!(errno(open(&c, "file_link", of::RDONLY)), libc::ELOOP);
    assert_eq!(errno(open(&c, "abs", of::RDONLY)), libc::ELOOP);
    // Creating through a symlink (a dangling one included) is refused and
    // leaves the outside untouched.
    let root = walk(&c, "").unwrap();
    let e = c.call(Tlcreate {
        fid: root,
        name: "file_link".into(),
        flags: of::WRONLY | of::TRUNC,
        mode: 0o644,
        gid: 0,
    });
    assert!(e.is_err());
    assert_eq!(fs::read(outside.path().join("secret")).unwrap(), b"secret");
    symlink(outside.path().join("new"), g.path("dangling")).unwrap();
    let root = walk(&c, "").unwrap();
    assert!(c
        .call(Tlcreate {
            fid: root,
            name: "dangling".into(),
            flags: of::WRONLY,
            mode: 0o644,
            gid: 0
        })
        .is_err());
    assert!(!outside.path().join("new").exists());
    let abs = walk(&c, "abs").unwrap();
    assert_eq!(
        errno(c.call(Tmkdir {
            dfid: abs,
            name: "x".into(),
            mode: 0o755,
            gid: 0
        })),
        libc::ENOTDIR
    );
    // Attribute changes on a symlink apply to the link, never the target.
    fs::set_permissions(
        outside.path().join("secret"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let link = walk(&c, "file_link").unwrap();
    assert_eq!(
        errno(c.call(Tsetattr {
            fid: link,
            valid: setattr::MODE,
            mode: 0o777,
            ..Default::default()
        })),
        libc::EOPNOTSUPP
    );
    c.call(Tsetattr {
        fid: link,
        valid: setattr::UID | setattr::GID,
        uid: 999,
        gid: 999,
        ..Default::default()
    })
    .unwrap();
    c.call(Tsetattr {
        fid: link,
        valid: setattr::MTIME | setattr::MTIME_SET,
        mtime_sec: 12345,
        ..Default::default()
    })
    .unwrap();
    c.call(Tsetattr {
        fid: link,
        valid: setattr::SIZE,
        size: 0,
        ..Default::default()
    })
    .unwrap_err();
    let target = fs::metadata(outside.path().join("secret")).unwrap();
    assert_eq!(
        (target.mode() & 0o777, target.uid(), target.len()),
        (0o600, 0, 6)
    );
    assert_ne!(target.mtime(), 12345);
    let l = fs::symlink_metadata(g.path("file_link")).unwrap();
    assert_eq!((l.uid(), l.mtime()), (999, 12345));
    // Hard-linking a symlink links the symlink.
    let root = walk(&c, "").unwrap();
    c.call(Tlink {
        dfid: root,
        fid: link,
        name: "link2".into(),
    })
    .unwrap();
    assert!(fs::symlink_metadata(g.path("link2"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Extended attributes of a symlink's target are out of reach.
    let x = c.new_fid();
    assert_eq!(
        errno(c.call(Txattrwalk {
            fid: link,
            newfid: x,
            name: "user.a".into()
        })),
        libc::ENODATA
    );
}

#[test]
fn symlink_loops_end_in_errors() {
    let g = Gofer::start();
    symlink("b", g.path("a")).unwrap();
    symlink("a", g.path("b")).unwrap();
    symlink("self", g.path("self")).unwrap();
    let c = g.client();
    assert_eq!(walked(&c, &["a", "x"]), 1);
    assert_eq!(
        walked(&c, &["a", "..", "a"]),
        1,
        "`..` of a symlink is ENOTDIR, as on Linux"
    );
    assert_eq!(errno(open(&c, "self", of::RDONLY)), libc::ELOOP);
    let a = walk(&c, "a").unwrap();
    assert_eq!(
        c.call(Treadlink { fid: a }).unwrap().target.as_bytes(),
        b"b"
    );
}

#[test]
fn a_directory_swapped_for_a_symlink_during_walks_never_leads_outside() {
    let outside = TempDir::new("race-outside");
    fs::write(outside.path().join("outside_marker"), b"escaped").unwrap();
    let g = Gofer::start();
    fs::create_dir(g.path("d")).unwrap();
    fs::write(g.path("d/outside_marker"), b"inside").unwrap();
    symlink(outside.path(), g.path("evil")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, root) = (stop.clone(), g.root.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Atomically exchange the directory and the symlink out, so
                // each name is always one or the other.
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &root.join("d"),
                    nix::fcntl::AT_FDCWD,
                    &root.join("evil"),
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let c = g.client();
    let (root, _) = c.attach("root", "").unwrap();
    let mut inside = 0;
    for _ in 0..3000 {
        for path in [
            &["d", "outside_marker"][..],
            &["evil", "outside_marker"][..],
        ] {
            if let Ok((fid, _)) = c.walk(root, path) {
                if c.call(Tlopen { fid, flags: 0 }).is_ok() {
                    let data = c.read(fid, 0, 100).unwrap();
                    assert_ne!(
                        data, b"escaped",
                        "read a file outside the root through {path:?}"
                    );
                    inside += 1;
                }
                c.clunk(fid).unwrap();
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(swapper.join().unwrap() > 0);
    assert!(inside > 0, "the walks did reach files inside");
}

#[test]
fn read_only_refuses_every_change_with_erofs() {
    let g = Gofer::start_with(&["--read-only"]);
    fs::write(g.path("f"), b"data").unwrap();
    fs::create_dir(g.path("d")).unwrap();
    let c = g.client();
    let root = walk(&c, "").unwrap();
    let f = walk(&c, "f").unwrap();
    let rofs = libc::EROFS;
    assert_eq!(
        errno(c.call(Tlcreate {
            fid: walk(&c, "d").unwrap(),
            name: "n".into(),
            flags: of::RDWR,
            mode: 0o644,
            gid: 0
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Tmkdir {
            dfid: root,
            name: "n".into(),
            mode: 0o755,
            gid: 0
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Tsymlink {
            fid: root,
            name: "n".into(),
            symtgt: "f".into(),
            gid: 0
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Tmknod {
            dfid: root,
            name: "n".into(),
            mode: libc::S_IFIFO | 0o644,
            major: 0,
            minor: 0,
            gid: 0
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Tlink {
            dfid: root,
            fid: f,
            name: "n".into()
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Trename {
            fid: f,
            dfid: root,
            name: "n".into()
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Trenameat {
            olddirfid: root,
            oldname: "f".into(),
            newdirfid: root,
            newname: "n".into()
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Tunlinkat {
            dirfid: root,
            name: "f".into(),
            flags: 0
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Tsetattr {
            fid: f,
            valid: setattr::MODE,
            mode: 0o777,
            ..Default::default()
        })),
        rofs
    );
    assert_eq!(
        errno(c.call(Txattrcreate {
            fid: f,
            name: "user.x".into(),
            attr_size: 1,
            flags: 0
        })),
        rofs
    );
    assert_eq!(errno(open(&c, "f", of::WRONLY)), rofs);
    assert_eq!(errno(open(&c, "f", of::RDONLY | of::TRUNC)), rofs);
    let f2 = walk(&c, "f").unwrap();
    assert_eq!(errno(c.call(Tremove { fid: f2 })), rofs);
    // Reads still work, and nothing changed.
    let r = open(&c, "f", of::RDONLY).unwrap();
    assert_eq!(c.read(r, 0, 10).unwrap(), b"data");
    let names: Vec<_> = fs::read_dir(&g.root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2);
}

#[test]
fn the_serving_gofer_runs_under_seccomp_filter_mode() {
    let g = Gofer::start();
    let status = fs::read_to_string(format!("/proc/{}/status", g.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("Seccomp:")).unwrap();
    assert_eq!(line.split_whitespace().nth(1), Some("2"), "{line}");
    let nnp = status
        .lines()
        .find(|l| l.starts_with("NoNewPrivs:"))
        .unwrap();
    assert!(nnp.ends_with('1'), "{nnp}");
}

#[test]
fn a_forbidden_syscall_kills_the_gofer() {
    let probe = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_gofer"))
            .args(["seccomp-probe", name])
            .output()
            .unwrap()
    };
    let ok = probe("getpid");
    assert!(ok.status.success(), "an allowed call returns: {ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("getpid returned Ok("));
    for forbidden in ["socket", "execve", "ptrace"] {
        let out = probe(forbidden);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGSYS),
            "{forbidden}: {out:?}"
        );
        assert!(out.stdout.is_empty(), "{forbidden} must not return");
    }
}

#[test]
fn host_device_nodes_in_the_tree_cannot_be_opened() {
    let g = Gofer::start();
    nix::sys::stat::mknod(
        &g.path("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let c = g.client();
    assert_eq!(errno(open(&c, "null", of::RDWR)), libc::EPERM);
    assert_eq!(errno(open(&c, "null", of::RDONLY)), libc::EPERM);
    // Its attributes are still visible.
    let fid = walk(&c, "null").unwrap();
    let a = c
        .call(Tgetattr {
            fid,
            request_mask: types::getattr::BASIC,
        })
        .unwrap();
    assert_eq!(a.mode & libc::S_IFMT, libc::S_IFCHR);
}
