//! File descriptions and the fd table. For now the only files are the
//! sentry's own inherited stdio streams; there is no filesystem, so path
//! lookups fail with ENOENT (the gofer-backed tree comes later).

mod host_stdio;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use host_stdio::{HostStdio, Stat};

use crate::errno::Errno;

/// Most descriptors an application may hold (RLIMIT_NOFILE's default hard limit).
pub const MAX_FDS: i32 = 4096;

/// An open file description.
#[derive(Debug)]
pub enum File {
    Stdio(HostStdio),
}

impl File {
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.read(buf),
        }
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.write(buf),
        }
    }

    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.pread(buf, offset),
        }
    }

    pub fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        match self {
            File::Stdio(s) => s.pwrite(buf, offset),
        }
    }

    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        match self {
            File::Stdio(s) => s.seek(offset, whence),
        }
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        match self {
            File::Stdio(s) => s.stat(),
        }
    }

    /// The kernel `struct termios` (TCGETS), or ENOTTY.
    pub fn termios(&self) -> Result<[u8; 36], Errno> {
        match self {
            File::Stdio(s) => s.termios(),
        }
    }

    /// The kernel `struct winsize` (TIOCGWINSZ), or ENOTTY.
    pub fn window_size(&self) -> Result<[u8; 8], Errno> {
        match self {
            File::Stdio(s) => s.window_size(),
        }
    }

    /// O_ACCMODE and status flags, as F_GETFL reports them.
    pub fn status_flags(&self) -> u32 {
        match self {
            File::Stdio(s) => s.status_flags(),
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
