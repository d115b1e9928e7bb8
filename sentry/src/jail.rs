//! Confinement the sentry applies to itself at boot, after it has opened
//! everything it will ever need from the host (/dev/kvm, the memory file,
//! its sockets): `/` becomes an empty read-only tmpfs, every capability is
//! dropped and no_new_privs is set.
//!
//! The supervisor starts the sentry in new pid, mount, ipc and uts
//! namespaces; the pivot happens here, after exec, because the sentry's
//! binary and libraries live on the host's root.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum JailError {
    #[error("making mounts private: {0}")]
    Private(nix::Error),
    #[error("mounting the empty root: {0}")]
    Tmpfs(nix::Error),
    #[error("entering the empty root: {0}")]
    Chdir(nix::Error),
    #[error("pivot_root: {0}")]
    PivotRoot(nix::Error),
    #[error("detaching the old root: {0}")]
    Detach(nix::Error),
    #[error("making the root read-only: {0}")]
    ReadOnly(nix::Error),
    #[error("dropping capabilities: {0}")]
    Capabilities(nix::Error),
    #[error("setting no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
}

/// Where the empty tmpfs is mounted before it becomes `/` (any directory
/// that exists on the host will do: the mount is private to our namespace).
const STAGING: &str = "/tmp";

/// Makes an empty, read-only tmpfs the root of this mount namespace.
pub fn pivot_into_empty_root() -> Result<(), JailError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(JailError::Private)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("rvisor-root"),
        STAGING,
        Some("tmpfs"),
        flags,
        Some("size=4k,mode=0555"),
    )
    .map_err(JailError::Tmpfs)?;
    nix::unistd::chdir(STAGING).map_err(JailError::Chdir)?;
    nix::unistd::pivot_root(".", ".").map_err(JailError::PivotRoot)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(JailError::Detach)?;
    nix::unistd::chdir("/").map_err(JailError::Chdir)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(JailError::ReadOnly)
}

/// Drops every capability (bounding, effective, permitted, inheritable,
/// ambient) and sets no_new_privs. Must run before any thread is started:
/// capset(2) changes only the calling thread.
pub fn drop_privileges() -> Result<(), JailError> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    for cap in 0..=last {
        // SAFETY: PR_CAPBSET_DROP takes integers only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r != 0 && nix::Error::last() != nix::Error::EINVAL {
            return Err(JailError::Capabilities(nix::Error::last()));
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integers only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: header and data are live repr(C) values laid out as the
    // kernel's structs, with the two data entries version 3 requires.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if r != 0 {
        return Err(JailError::Capabilities(nix::Error::last()));
    }
    nix::sys::prctl::set_no_new_privs().map_err(JailError::NoNewPrivs)
}
