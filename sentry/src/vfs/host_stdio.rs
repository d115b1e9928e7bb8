//! The sentry's inherited stdin/stdout/stderr, served to the application.
//! Host calls go through rustix's safe wrappers.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno as HostErrno;

use crate::errno::Errno;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStdio {
    Stdin,
    Stdout,
    Stderr,
}

/// The fields of `struct stat` we report (host identity fields are not leaked).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
}

impl Stat {
    /// The x86_64 kernel `struct stat` (144 bytes).
    pub fn to_bytes(&self) -> [u8; 144] {
        let mut b = [0u8; 144];
        b[0..8].copy_from_slice(&self.dev.to_le_bytes());
        b[8..16].copy_from_slice(&self.ino.to_le_bytes());
        b[16..24].copy_from_slice(&self.nlink.to_le_bytes());
        b[24..28].copy_from_slice(&self.mode.to_le_bytes());
        b[28..32].copy_from_slice(&self.uid.to_le_bytes());
        b[32..36].copy_from_slice(&self.gid.to_le_bytes());
        b[40..48].copy_from_slice(&self.rdev.to_le_bytes());
        b[48..56].copy_from_slice(&self.size.to_le_bytes());
        b[56..64].copy_from_slice(&self.blksize.to_le_bytes());
        b[64..72].copy_from_slice(&self.blocks.to_le_bytes());
        b
    }
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
