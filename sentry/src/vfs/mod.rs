//! File descriptions and the fd table. Files are the sentry's own inherited
//! stdio streams and, when the sandbox has a root, files of the mounted
//! filesystems (`mount`): gofer-served trees (`gofer`) and the in-memory
//! overlay over them (`overlay`), and the sentry's own devices (`dev`).

pub mod dev;
pub mod gofer;
mod host_stdio;
pub mod mount;
pub mod overlay;
mod stat;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use dev::{DevFile, DevFs};
pub use gofer::{GoferFile, GoferFs};
pub use host_stdio::HostStdio;
pub use mount::{Fs, Vfs};
pub use overlay::{MemFile, OverlayDir, OverlayFs};
pub use stat::{Stat, Timespec};

use crate::errno::Errno;

/// Most descriptors an application may hold (RLIMIT_NOFILE's default hard limit).
pub const MAX_FDS: i32 = 4096;

/// An open file description.
#[derive(Debug)]
pub enum File {
    Stdio(HostStdio),
    Gofer(GoferFile),
    /// A regular file of the overlay's upper layer.
    Mem(MemFile),
    /// A directory of the overlay.
    OverlayDir(OverlayDir),
    /// A device or the directory of the devfs.
    Dev(DevFile),
}

impl File {
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.read(buf),
            File::Gofer(f) => f.read(buf),
            File::Mem(f) => f.read(buf),
            File::OverlayDir(_) => Err(Errno::EISDIR),
            File::Dev(d) => d.read(buf),
        }
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.write(buf),
            File::Gofer(f) => f.write(buf),
            File::Mem(f) => f.write(buf),
            File::OverlayDir(_) => Err(Errno::EBADF),
            File::Dev(d) => d.write(buf),
        }
    }

    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.pread(buf, offset),
            File::Gofer(f) => f.pread(buf, offset),
            File::Mem(f) => f.pread(buf, offset),
            File::OverlayDir(_) => Err(Errno::EISDIR),
            // The devices have no position: pread is read.
            File::Dev(d) => d.read(buf),
        }
    }

    pub fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.pwrite(buf, offset),
            File::Gofer(f) => f.pwrite(buf, offset),
            File::Mem(f) => f.pwrite(buf, offset),
            File::OverlayDir(_) => Err(Errno::EBADF),
            File::Dev(d) => d.write(buf),
        }
    }

    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        match self {
            File::Stdio(s) => s.seek(offset, whence),
            File::Gofer(f) => f.seek(offset, whence),
            File::Mem(f) => f.seek(offset, whence),
            File::OverlayDir(d) => d.seek(offset, whence),
            File::Dev(d) => d.seek(offset, whence),
        }
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        match self {
            File::Stdio(s) => s.stat(),
            File::Gofer(f) => f.stat(),
            File::Mem(f) => Ok(f.stat()),
            File::OverlayDir(d) => d.stat(),
            File::Dev(d) => Ok(d.stat()),
        }
    }

    /// The kernel `struct termios` (TCGETS), or ENOTTY.
    pub fn termios(&self) -> Result<[u8; 36], Errno> {
        match self {
            File::Stdio(s) => s.termios(),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// The kernel `struct winsize` (TIOCGWINSZ), or ENOTTY.
    pub fn window_size(&self) -> Result<[u8; 8], Errno> {
        match self {
            File::Stdio(s) => s.window_size(),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// Which of `events` (poll(2) bits) are ready, waiting at most
    /// `timeout`. Files of the gofer's tree and the devices never block.
    pub fn poll(&self, events: i16, timeout: std::time::Duration) -> Result<i16, Errno> {
        const POLLIN: i16 = 0x1;
        const POLLOUT: i16 = 0x4;
        const POLLRDNORM: i16 = 0x40;
        const POLLWRNORM: i16 = 0x100;
        match self {
            File::Stdio(s) => s.poll(events, timeout),
            _ => Ok(events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)),
        }
    }

    /// Whether waiting on this file happens in the host (stdio), as opposed
    /// to always being ready.
    pub fn waits_in_host(&self) -> bool {
        matches!(self, File::Stdio(_))
    }

    /// O_ACCMODE and status flags, as F_GETFL reports them.
    pub fn status_flags(&self) -> u32 {
        match self {
            File::Stdio(s) => s.status_flags(),
            File::Gofer(f) => f.status_flags(),
            File::Mem(f) => f.status_flags,
            File::OverlayDir(d) => d.status_flags,
            File::Dev(d) => d.status_flags,
        }
    }

    /// The sandbox path of a file of a mounted filesystem and whether it
    /// is a directory (None for stdio).
    pub fn path(&self) -> Option<(&[Vec<u8>], bool)> {
        match self {
            File::Stdio(_) => None,
            File::Gofer(f) => Some((f.path(), f.is_dir())),
            File::Mem(f) => Some((&f.path, false)),
            File::OverlayDir(d) => Some((&d.path, true)),
            File::Dev(d) => Some((&d.path, d.is_dir())),
        }
    }
}

#[derive(Debug, Clone)]
struct FdEntry {
    file: Arc<File>,
    close_on_exec: bool,
}

#[derive(Debug, Default)]
pub struct FdTable {
    entries: BTreeMap<i32, FdEntry>,
}

impl FdTable {
    /// fds 0, 1 and 2 are the sentry's own stdio.
    pub fn with_host_stdio() -> Self {
        let mut table = Self::default();
        for (fd, stream) in [
            (0, HostStdio::Stdin),
            (1, HostStdio::Stdout),
            (2, HostStdio::Stderr),
        ] {
            table.entries.insert(
                fd,
                FdEntry {
                    file: Arc::new(File::Stdio(stream)),
                    close_on_exec: false,
                },
            );
        }
        table
    }

    pub fn get(&self, fd: i32) -> Result<Arc<File>, Errno> {
        self.entries
            .get(&fd)
            .map(|e| Arc::clone(&e.file))
            .ok_or(Errno::EBADF)
    }

    pub fn close(&mut self, fd: i32) -> Result<(), Errno> {
        self.entries.remove(&fd).map(|_| ()).ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free descriptor at or above `min`.
    pub fn install(
        &mut self,
        file: Arc<File>,
        min: i32,
        close_on_exec: bool,
    ) -> Result<i32, Errno> {
        let mut fd = min.max(0);
        for &used in self.entries.range(fd..).map(|(k, _)| k) {
            if used != fd {
                break;
            }
            fd += 1;
        }
        if fd >= MAX_FDS {
            return Err(Errno::EMFILE);
        }
        self.entries.insert(
            fd,
            FdEntry {
                file,
                close_on_exec,
            },
        );
        Ok(fd)
    }

    /// Installs `file` at exactly `fd`, closing what was there (dup2).
    pub fn install_at(
        &mut self,
        fd: i32,
        file: Arc<File>,
        close_on_exec: bool,
    ) -> Result<(), Errno> {
        if !(0..MAX_FDS).contains(&fd) {
            return Err(Errno::EBADF);
        }
        self.entries.insert(
            fd,
            FdEntry {
                file,
                close_on_exec,
            },
        );
        Ok(())
    }

    pub fn close_on_exec(&self, fd: i32) -> Result<bool, Errno> {
        self.entries
            .get(&fd)
            .map(|e| e.close_on_exec)
            .ok_or(Errno::EBADF)
    }

    pub fn set_close_on_exec(&mut self, fd: i32, value: bool) -> Result<(), Errno> {
        let entry = self.entries.get_mut(&fd).ok_or(Errno::EBADF)?;
        entry.close_on_exec = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_takes_lowest_free() {
        let mut table = FdTable::with_host_stdio();
        table.close(1).expect("close");
        let file = table.get(0).expect("stdin");
        assert_eq!(table.install(Arc::clone(&file), 0, false), Ok(1));
        assert_eq!(table.install(file, 0, false), Ok(3));
        assert_eq!(table.close(7), Err(Errno::EBADF));
    }
}
