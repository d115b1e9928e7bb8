//! End-to-end: `sentry exec --root DIR` serves DIR read-only through a real
//! gofer process, and programs inside see it through the file syscalls.
//! Needs the gofer binary built beside the sentry (`cargo test --workspace`
//! builds both).
//!
//! Every test runs on both platforms (`name::kvm`, `name::systrap`, see
//! tests/common); the KVM variants skip when /dev/kvm is unusable.

#[macro_use]
mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::{assert_success, compile_rootfs_prog, run_in_root, Platform};

/// A root tree with the layout integration/progs/rootfs/fs.c expects.
fn build_root(dir: &Path, program: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("data/dir")).unwrap();
    std::fs::copy(program, dir.join("bin/fs")).unwrap();
    std::fs::write(dir.join("etc/hostname"), b"sandbox\n").unwrap();
    let pattern: Vec<u8> = (0..3 * 4096).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("data/file"), pattern).unwrap();
    for i in 0..50 {
        std::fs::write(dir.join(format!("data/dir/e{i}")), b"").unwrap();
    }
    symlink("file", dir.join("data/link")).unwrap();
    symlink("/data/file", dir.join("data/abs")).unwrap();
    symlink("/data/dir", dir.join("data/absdir")).unwrap();
    symlink("loop", dir.join("data/loop")).unwrap();
    symlink("nowhere", dir.join("data/dangling")).unwrap();
    let mut deep = dir.join("deep");
    for _ in 0..20 {
        deep.push("a");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("f"), b"").unwrap();
}

platform_tests! {
    fn file_syscalls_see_the_gofer_served_root(platform: Platform) {
        let work = tempfile::tempdir().unwrap();
        let mut ran = 0;
        for compiler in ["cc", "musl-gcc"] {
            let program = work.path().join(format!("fs-{compiler}"));
            if !compile_rootfs_prog("fs", compiler, &program) {
                eprintln!("{compiler} not found: skipped");
                continue;
            }
            let root = work.path().join(format!("root-{compiler}"));
            build_root(&root, &program);
            let out = run_in_root(platform, &root, false, &["/bin/fs"]);
            assert_success(&out, compiler);
            assert!(String::from_utf8_lossy(&out.stdout).contains("fs ok"));
            ran += 1;
        }
        assert!(ran > 0, "no C compiler to build the test program");
    }

    fn missing_or_unexecutable_programs_are_refused(platform: Platform) {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir(work.path().join("etc")).unwrap();
        std::fs::write(work.path().join("etc/hostname"), b"x").unwrap();
        let out = run_in_root(platform, work.path(), false, &["/bin/none"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("ENOENT"),
            "{out:?}"
        );
        let out = run_in_root(platform, work.path(), false, &["/etc/hostname"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("EACCES"),
            "{out:?}"
        );
    }

    /// Debian's busybox-static, when installed: real tools over the gofer.
    fn busybox_tools_read_the_root(platform: Platform) {
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            eprintln!("busybox-static not installed: skipped");
            return;
        }
        let work = tempfile::tempdir().unwrap();
        let root = work.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        symlink("busybox", root.join("bin/sh")).unwrap();
        std::fs::write(root.join("etc/hostname"), b"sandbox\n").unwrap();
        let out = run_in_root(platform, root, false, &["/bin/busybox", "cat", "/etc/hostname"]);
        assert_success(&out, "cat");
        assert_eq!(out.stdout, b"sandbox\n");
        let out = run_in_root(platform, root, false, &["/bin/busybox", "ls", "/bin"]);
        assert_success(&out, "ls");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["busybox", "sh"]
        );
        let out = run_in_root(platform, root, false,
            &[
                "/bin/sh",
                "-c",
                "cd /etc; pwd; read x < hostname; echo $x; exit 3",
            ],
        );
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert_eq!(out.stdout, b"/etc\nsandbox\n");
        let out = run_in_root(platform, root, false, &["/bin/busybox", "touch", "/etc/new"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
            "{out:?}"
        );
        let md5 = run_in_root(platform, root, false, &["/bin/busybox", "md5sum", "/bin/busybox"]);
        assert_success(&md5, "md5sum");
        let host = Command::new("md5sum").arg(busybox).output().unwrap();
        assert_eq!(
            md5.stdout[..32],
            host.stdout[..32],
            "the program reads the same bytes as the host"
        );
    }
}
