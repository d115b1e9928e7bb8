//! End-to-end: `sentry exec --root DIR --overlay` puts the in-memory
//! writable overlay over DIR (served read-only by a real gofer): programs
//! create, change, rename and remove files, and DIR itself is untouched.
//! Needs the gofer binary built beside the sentry.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{compile_rootfs_prog, run_in_root, Platform};

fn build_root(dir: &Path, program: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("data/dir")).unwrap();
    std::fs::copy(program, dir.join("bin/overlay")).unwrap();
    std::fs::write(dir.join("etc/hostname"), b"sandbox\n").unwrap();
    std::fs::write(dir.join("data/file"), b"lower file\n").unwrap();
    std::fs::write(dir.join("data/other"), b"other\n").unwrap();
    for i in 0..50 {
        std::fs::write(dir.join(format!("data/dir/e{i}")), b"").unwrap();
    }
}

/// Every path under `dir` with its contents (None for directories) and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Option<Vec<u8>>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let contents = if meta.is_dir() {
                stack.push(path.clone());
                None
            } else {
                Some(std::fs::read(&path).unwrap())
            };
            out.insert(path, (contents, meta.permissions().mode()));
        }
    }
    out
}

platform_tests! {
    fn overlay_takes_writes_and_leaves_the_host_alone(platform: Platform) {
        let work = tempfile::tempdir().unwrap();
        let mut ran = 0;
        for compiler in ["cc", "musl-gcc"] {
            let program = work.path().join(format!("overlay-{compiler}"));
            if !compile_rootfs_prog("overlay", compiler, &program) {
                eprintln!("{compiler} not found: skipped");
                continue;
            }
            let root = work.path().join(format!("root-{compiler}"));
            build_root(&root, &program);
            let before = snapshot(&root);
            let out = run_in_root(platform, &root, true, &["/bin/overlay"]);
            assert!(
                out.status.success() && String::from_utf8_lossy(&out.stdout).contains("overlay ok"),
                "{compiler}: {:?}\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(before, snapshot(&root), "the host directory is untouched");
            ran += 1;
        }
        assert!(ran > 0, "no C compiler to build the test program");
    }

    /// Busybox over the overlay; without --overlay the root stays read-only.
    fn busybox_writes_into_the_overlay(platform: Platform) {
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
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        std::fs::write(root.join("etc/hostname"), b"sandbox\n").unwrap();
        // Shell builtins only: the sentry has no fork yet.
        let script = "echo hi > /etc/new && read x < /etc/new && echo $x \
                      && echo more >> /etc/hostname && read a < /etc/hostname && echo $a";
        let out = run_in_root(platform, root, true, &["/bin/sh", "-c", script]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nsandbox\n");
        assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"sandbox\n");
        assert!(!root.join("etc/new").exists());
        let out = run_in_root(platform, root, false, &["/bin/busybox", "touch", "/etc/new"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    }
}
