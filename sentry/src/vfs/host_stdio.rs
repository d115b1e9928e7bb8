//! The sentry's inherited stdin/stdout/stderr, served to the application.
//! Host calls go through rustix's safe wrappers.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno as HostErrno;

use super::Stat;
use crate::errno::Errno;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStdio {
    Stdin,
    Stdout,
    Stderr,
}

fn errno(e: HostErrno) -> Errno {
    Errno(e.raw_os_error())
}

/// A device number for our stdio files (no host identity leaks).
const STDIO_DEV: u64 = 0x1d;

impl HostStdio {
    fn with_fd<R>(self, f: impl FnOnce(BorrowedFd<'_>) -> R) -> R {
        match self {
            HostStdio::Stdin => f(std::io::stdin().as_fd()),
            HostStdio::Stdout => f(std::io::stdout().as_fd()),
            HostStdio::Stderr => f(std::io::stderr().as_fd()),
        }
    }

    /// Waits up to `timeout` for `events` (poll(2) bits) on the stream and
    /// returns the ones that happened.
    pub fn poll(self, events: i16, timeout: std::time::Duration) -> Result<i16, Errno> {
        use rustix::event::{PollFd, PollFlags};
        let flags = PollFlags::from_bits_truncate(events as u16);
        let timeout = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        self.with_fd(|fd| {
            let mut fds = [PollFd::from_borrowed_fd(fd, flags)];
            rustix::event::poll(&mut fds, Some(&timeout)).map(|_| fds[0].revents().bits() as i16)
        })
        .map_err(errno)
    }

    pub fn read(self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.with_fd(|fd| rustix::io::read(fd, buf)).map_err(errno)
    }

    pub fn write(self, buf: &[u8]) -> Result<usize, Errno> {
        self.with_fd(|fd| rustix::io::write(fd, buf)).map_err(errno)
    }

    pub fn pread(self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        self.with_fd(|fd| rustix::io::pread(fd, buf, offset))
            .map_err(errno)
    }

    pub fn pwrite(self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        self.with_fd(|fd| rustix::io::pwrite(fd, buf, offset))
            .map_err(errno)
    }

    pub fn seek(self, offset: i64, whence: u32) -> Result<u64, Errno> {
        let pos = match whence {
            0 => rustix::fs::SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::EINVAL)?),
            1 => rustix::fs::SeekFrom::Current(offset),
            2 => rustix::fs::SeekFrom::End(offset),
            _ => return Err(Errno::EINVAL),
        };
        self.with_fd(|fd| rustix::fs::seek(fd, pos)).map_err(errno)
    }

    pub fn stat(self) -> Result<Stat, Errno> {
        let st = self.with_fd(|fd| rustix::fs::fstat(fd)).map_err(errno)?;
        Ok(Stat {
            dev: STDIO_DEV,
            ino: self as u64 + 1,
            mode: st.st_mode,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: st.st_rdev,
            size: st.st_size,
            blksize: 4096,
            blocks: st.st_blocks,
            ..Stat::default()
        })
    }

    pub fn termios(self) -> Result<[u8; 36], Errno> {
        let t = self
            .with_fd(|fd| rustix::termios::tcgetattr(fd))
            .map_err(|_| Errno::ENOTTY)?;
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&t.input_modes.bits().to_le_bytes());
        b[4..8].copy_from_slice(&t.output_modes.bits().to_le_bytes());
        b[8..12].copy_from_slice(&t.control_modes.bits().to_le_bytes());
        b[12..16].copy_from_slice(&t.local_modes.bits().to_le_bytes());
        b[16] = t.line_discipline;
        use rustix::termios::SpecialCodeIndex as I;
        let codes = [
            I::VINTR,
            I::VQUIT,
            I::VERASE,
            I::VKILL,
            I::VEOF,
            I::VTIME,
            I::VMIN,
            I::VSWTC,
            I::VSTART,
            I::VSTOP,
            I::VSUSP,
            I::VEOL,
            I::VREPRINT,
            I::VDISCARD,
            I::VWERASE,
            I::VLNEXT,
            I::VEOL2,
        ];
        for (i, code) in codes.into_iter().enumerate() {
            b[17 + i] = t.special_codes[code];
        }
        Ok(b)
    }

    pub fn window_size(self) -> Result<[u8; 8], Errno> {
        let w = self
            .with_fd(|fd| rustix::termios::tcgetwinsize(fd))
            .map_err(|_| Errno::ENOTTY)?;
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&w.ws_row.to_le_bytes());
        b[2..4].copy_from_slice(&w.ws_col.to_le_bytes());
        b[4..6].copy_from_slice(&w.ws_xpixel.to_le_bytes());
        b[6..8].copy_from_slice(&w.ws_ypixel.to_le_bytes());
        Ok(b)
    }

    pub fn status_flags(self) -> u32 {
        let flags = self
            .with_fd(|fd| rustix::fs::fcntl_getfl(fd))
            .map(|f| f.bits())
            .unwrap_or(0);
        // Report the host's access mode and O_APPEND only.
        flags & (0o3 | 0o2000)
    }
}
