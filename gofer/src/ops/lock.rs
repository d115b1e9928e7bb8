//! POSIX byte-range locks as open-file-description locks on the fid's own
//! open file: each opened fid is its own lock owner, so locks taken through
//! different fids conflict with each other and with host processes exactly
//! as fcntl locks do.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use p9proto::types::{lock_flags, lock_status, lock_type};
use p9proto::{Rgetlock, Rlock, Tgetlock, Tlock};

use crate::session::Session;

fn flock(ty: u8, start: u64, length: u64) -> Result<libc::flock, Errno> {
    let l_type = match ty {
        lock_type::RDLCK => libc::F_RDLCK,
        lock_type::WRLCK => libc::F_WRLCK,
        lock_type::UNLCK => libc::F_UNLCK,
        _ => return Err(Errno::EINVAL),
    };
    Ok(libc::flock {
        l_type: l_type as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: i64::try_from(start).map_err(|_| Errno::EINVAL)?,
        l_len: i64::try_from(length).map_err(|_| Errno::EINVAL)?,
        // OFD locks require 0.
        l_pid: 0,
    })
}

impl Session {
    pub(crate) fn lock(&self, m: Tlock) -> Result<Rlock, Errno> {
        let fid = self.fid(m.fid)?;
        let file = fid.open_file()?;
        let fl = flock(m.ty, m.start, m.length)?;
        let wait = m.flags & lock_flags::BLOCK != 0;
        let result = if wait {
            // Runs on its own thread; a Tflush interrupts it with a signal.
            fcntl(&file.fd, FcntlArg::F_OFD_SETLKW(&fl))
        } else {
            fcntl(&file.fd, FcntlArg::F_OFD_SETLK(&fl))
        };
        let status = match result {
            Ok(_) => lock_status::SUCCESS,
            Err(Errno::EAGAIN) | Err(Errno::EACCES) => lock_status::BLOCKED,
            Err(Errno::EINTR) => lock_status::BLOCKED,
            Err(e) => return Err(e),
        };
        Ok(Rlock { status })
    }

    pub(crate) fn getlock(&self, m: Tgetlock) -> Result<Rgetlock, Errno> {
        let fid = self.fid(m.fid)?;
        let file = fid.open_file()?;
        let mut fl = flock(m.ty, m.start, m.length)?;
        fcntl(&file.fd, FcntlArg::F_OFD_GETLK(&mut fl))?;
        if fl.l_type == libc::F_UNLCK as i16 {
            return Ok(Rgetlock {
                ty: lock_type::UNLCK,
                start: m.start,
                length: m.length,
                proc_id: m.proc_id,
                client_id: m.client_id,
            });
        }
        Ok(Rgetlock {
            ty: if fl.l_type == libc::F_RDLCK as i16 {
                lock_type::RDLCK
            } else {
                lock_type::WRLCK
            },
            start: fl.l_start as u64,
            length: fl.l_len as u64,
            // OFD locks have no owning pid (the kernel reports -1).
            proc_id: if fl.l_pid > 0 { fl.l_pid as u32 } else { 0 },
            client_id: Default::default(),
        })
    }
}
