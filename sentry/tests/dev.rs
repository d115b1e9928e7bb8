//! End-to-end: the sentry's devfs at /dev (null, zero, full, random,
//! urandom), over a read-only root and under the overlay, hiding the
//! root's own /dev. Needs the gofer binary built beside the sentry.

#[macro_use]
mod common;

use std::path::Path;

use common::{compile_rootfs_prog, run_in_root, Platform};

/// A root whose own /dev must stay hidden.
fn build_root(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("dev")).unwrap();
    std::fs::write(dir.join("etc/hostname"), b"sandbox\n").unwrap();
    std::fs::write(dir.join("dev/null"), b"the root's file\n").unwrap();
    std::fs::write(dir.join("dev/decoy"), b"").unwrap();
}

platform_tests! {
    fn devfs_serves_the_devices(platform: Platform) {
        let work = tempfile::tempdir().unwrap();
        let mut ran = 0;
        for compiler in ["cc", "musl-gcc"] {
            let root = work.path().join(format!("root-{compiler}"));
            build_root(&root);
            if !compile_rootfs_prog("dev", compiler, &root.join("bin/dev")) {
                eprintln!("{compiler} not found: skipped");
                continue;
            }
            for overlay in [false, true] {
                let out = run_in_root(platform, &root, overlay, &["/bin/dev"]);
                assert!(
                    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("dev ok"),
                    "{compiler}, overlay {overlay}: {:?}\nstdout:\n{}\nstderr:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert_eq!(
                std::fs::read(root.join("dev/null")).unwrap(),
                b"the root's file\n",
                "the root's /dev is untouched"
            );
            ran += 1;
        }
        assert!(ran > 0, "no C compiler to build the test program");
    }

    /// Busybox's shell redirects to and from the devices (builtins only:
    /// the sentry has no fork yet).
    fn busybox_shell_uses_the_devices(platform: Platform) {
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            eprintln!("busybox-static not installed: skipped");
            return;
        }
        let work = tempfile::tempdir().unwrap();
        let root = work.path();
        build_root(root);
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        let script = "echo x > /dev/null && read -n 4 y < /dev/zero && read z < /dev/null; \
                      echo ok; echo y > /dev/full || echo full";
        let out = run_in_root(platform, root, false, &["/bin/busybox", "sh", "-c", script]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\nfull\n");
        let out = run_in_root(platform, root, false, &["/bin/busybox", "head", "-c", "16", "/dev/urandom"]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout.len(), 16);
    }
}
