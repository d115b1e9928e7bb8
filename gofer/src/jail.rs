//! Confinement the gofer applies to itself before serving (with
//! `serve --pivot-root`, as the supervisor starts it): the served tree
//! becomes `/` of its mount namespace, and only the capabilities file
//! serving needs are kept.
//!
//! The supervisor starts the gofer in a new mount namespace; the pivot
//! happens here, after exec, because the gofer binary and its libraries
//! are not inside the container's root.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum JailError {
    #[error("making mounts private: {0}")]
    Private(nix::Error),
    #[error("bind-mounting {path} onto itself: {errno}")]
    Bind { path: String, errno: nix::Error },
    #[error("entering {path}: {errno}")]
    Chdir { path: String, errno: nix::Error },
    #[error("pivot_root: {0}")]
    PivotRoot(nix::Error),
    #[error("detaching the old root: {0}")]
    Detach(nix::Error),
    #[error("dropping capabilities: {0}")]
    Capabilities(nix::Error),
}

/// Capabilities a file server needs: acting on files whatever their owner
/// and mode, as the requests' credentials (already checked by the sentry) say.
pub const KEPT_CAPABILITIES: &[u32] = &[
    0,  // CAP_CHOWN: Tsetattr uid/gid, owners of new files
    1,  // CAP_DAC_OVERRIDE: serving files whatever their mode
    2,  // CAP_DAC_READ_SEARCH: walking unreadable directories
    3,  // CAP_FOWNER: chmod/utimes on files of other owners
    4,  // CAP_FSETID: keeping setuid bits on chmod
    27, // CAP_MKNOD: Tmknod of FIFOs and sockets
];

/// Where the host's `/` is bound before the pivot when it is the served
/// root (any existing directory: the mount is private to our namespace).
const HOST_ROOT_STAGE: &str = "/tmp";

/// Makes `root` the root of this mount namespace (which must be the
/// process's own), detaching everything else.
pub fn pivot_into(root: &Path) -> Result<(), JailError> {
    let name = root.display().to_string();
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(JailError::Private)?;
    // A bind mount stacked on the process's own root is never entered by a
    // lookup of "/", so the host root (`do`) is bound somewhere else first.
    let stage = if root == Path::new("/") {
        Path::new(HOST_ROOT_STAGE)
    } else {
        root
    };
    mount(
        Some(root),
        stage,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| JailError::Bind {
        path: name.clone(),
        errno,
    })?;
    nix::unistd::chdir(stage).map_err(|errno| JailError::Chdir { path: name, errno })?;
    // pivot_root(".", ".") stacks the old root on top of the new one;
    // detaching "." then leaves only the new root.
    nix::unistd::pivot_root(".", ".").map_err(JailError::PivotRoot)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(JailError::Detach)?;
    nix::unistd::chdir("/").map_err(|errno| JailError::Chdir {
        path: "/".into(),
        errno,
    })?;
    Ok(())
}

/// Keeps only `keep` in every capability set, and drops the rest from the
/// bounding set.
pub fn limit_capabilities(keep: &[u32]) -> Result<(), JailError> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    for cap in 0..=last {
        if !keep.contains(&cap) {
            match crate::host::capbset_drop(cap) {
                Ok(()) | Err(nix::Error::EINVAL) => {}
                Err(e) => return Err(JailError::Capabilities(e)),
            }
        }
    }
    let mut mask = [0u32; 2];
    for &cap in keep {
        mask[(cap / 32) as usize] |= 1 << (cap % 32);
    }
    crate::host::capset(mask).map_err(JailError::Capabilities)
}
