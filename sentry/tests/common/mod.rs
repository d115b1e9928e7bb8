//! What every end-to-end test file of the sentry shares: the platforms each
//! test runs on, and `platform_tests!`, which turns `fn name(platform) { .. }`
//! into the tests `name::kvm` and `name::systrap` (as gVisor runs each syscall
//! test on each platform). The KVM variants skip, saying why, when /dev/kvm
//! is unusable. Also the harness of the tests that run programs in a root
//! served by a real gofer (rootfs, overlay, dev).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SENTRY: &str = env!("CARGO_BIN_EXE_sentry");

/// The gofer built beside the sentry (`cargo test --workspace` builds both).
pub fn gofer_binary() -> PathBuf {
    let path = Path::new(SENTRY).with_file_name("gofer");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p gofer` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// Builds `integration/progs/rootfs/NAME.c` statically with `compiler`;
/// false when that compiler is not installed.
pub fn compile_rootfs_prog(name: &str, compiler: &str, out: &Path) -> bool {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integration/progs/rootfs")
        .join(format!("{name}.c"));
    match Command::new(compiler)
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(&source)
        .status()
    {
        Ok(status) => {
            assert!(
                status.success(),
                "{compiler} failed on {}",
                source.display()
            );
            true
        }
        Err(_) => false,
    }
}

/// `sentry exec --root ROOT [--overlay] -- ARGS` on `platform`.
pub fn run_in_root(platform: Platform, root: &Path, overlay: bool, args: &[&str]) -> Output {
    let mut cmd = Command::new(SENTRY);
    cmd.arg("exec")
        .arg("--platform")
        .arg(platform.name())
        .arg("--root")
        .arg(root)
        .arg("--gofer")
        .arg(gofer_binary());
    if overlay {
        cmd.arg("--overlay");
    }
    cmd.arg("--").args(args).output().expect("running sentry")
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether /dev/kvm opens read-write; prints why not when it does not.
pub fn kvm_available() -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(e) => {
            eprintln!("/dev/kvm is not usable ({e}): skipping the kvm variant");
            false
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Kvm,
    Systrap,
}

impl Platform {
    /// The name `sentry exec --platform` takes.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Kvm => "kvm",
            Platform::Systrap => "systrap",
        }
    }

    pub fn available(self) -> bool {
        match self {
            Platform::Kvm => kvm_available(),
            Platform::Systrap => true,
        }
    }
}

/// `fn name(platform: Platform) { body }` → tests `name::kvm` and `name::systrap`.
macro_rules! platform_tests {
    ($($(#[$meta:meta])* fn $name:ident($platform:ident: Platform) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($platform: Platform) $body

            #[test]
            fn kvm() {
                if Platform::Kvm.available() {
                    body(Platform::Kvm);
                }
            }

            #[test]
            fn systrap() {
                body(Platform::Systrap);
            }
        }
    )*};
}
