//! The operations, one file per area, each an `impl Session` block.

mod attr;
mod create;
mod io;
mod lock;
mod walk;
mod xattr;

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use p9proto::Qid;

use crate::node::{qid_of, stat_fd};

/// Gives a file the owner the client asked for. `uid`/`gid` of `u32::MAX`
/// mean "leave as created"; ids equal to the file's own are not changed, so
/// an unprivileged gofer can still create files as itself.
fn set_owner(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<Qid, Errno> {
    let st = stat_fd(fd)?;
    let want_uid = if uid == u32::MAX || uid == st.st_uid {
        u32::MAX
    } else {
        uid
    };
    let want_gid = if gid == u32::MAX || gid == st.st_gid {
        u32::MAX
    } else {
        gid
    };
    if want_uid != u32::MAX || want_gid != u32::MAX {
        crate::host::fchown_empty(fd, want_uid, want_gid)?;
    }
    Ok(qid_of(&st))
}
