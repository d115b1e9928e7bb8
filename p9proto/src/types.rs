//! Values carried inside messages: qids, attribute masks, flags, lock kinds.

use crate::wire::{DecodeError, Reader, WireFormat};

/// The server's unique identity for a file: type bits, version, path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qid {
    pub ty: u8,
    pub version: u32,
    pub path: u64,
}

impl WireFormat for Qid {
    fn encoded_len(&self) -> usize {
        13
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.ty.encode(out);
        self.version.encode(out);
        self.path.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ty: u8::decode(r)?,
            version: u32::decode(r)?,
            path: u64::decode(r)?,
        })
    }
}

impl Qid {
    pub fn is_dir(&self) -> bool {
        self.ty & qid_type::DIR != 0
    }
    pub fn is_symlink(&self) -> bool {
        self.ty & qid_type::SYMLINK != 0
    }
}

/// Qid type bits (the high bits of the Plan 9 mode).
pub mod qid_type {
    pub const DIR: u8 = 0x80;
    pub const APPEND: u8 = 0x40;
    pub const EXCL: u8 = 0x20;
    pub const MOUNT: u8 = 0x10;
    pub const AUTH: u8 = 0x08;
    pub const TMP: u8 = 0x04;
    pub const SYMLINK: u8 = 0x02;
    pub const LINK: u8 = 0x01;
    pub const FILE: u8 = 0x00;
}

/// Tgetattr `request_mask` / Rgetattr `valid` bits.
pub mod getattr {
    pub const MODE: u64 = 0x0000_0001;
    pub const NLINK: u64 = 0x0000_0002;
    pub const UID: u64 = 0x0000_0004;
    pub const GID: u64 = 0x0000_0008;
    pub const RDEV: u64 = 0x0000_0010;
    pub const ATIME: u64 = 0x0000_0020;
    pub const MTIME: u64 = 0x0000_0040;
    pub const CTIME: u64 = 0x0000_0080;
    pub const INO: u64 = 0x0000_0100;
    pub const SIZE: u64 = 0x0000_0200;
    pub const BLOCKS: u64 = 0x0000_0400;
    pub const BTIME: u64 = 0x0000_0800;
    pub const GEN: u64 = 0x0000_1000;
    pub const DATA_VERSION: u64 = 0x0000_2000;
    /// Everything `stat(2)` reports.
    pub const BASIC: u64 = 0x0000_07ff;
    pub const ALL: u64 = 0x0000_3fff;
}

/// Tsetattr `valid` bits.
pub mod setattr {
    pub const MODE: u32 = 0x0000_0001;
    pub const UID: u32 = 0x0000_0002;
    pub const GID: u32 = 0x0000_0004;
    pub const SIZE: u32 = 0x0000_0008;
    pub const ATIME: u32 = 0x0000_0010;
    pub const MTIME: u32 = 0x0000_0020;
    pub const CTIME: u32 = 0x0000_0040;
    /// Use the given atime rather than "now".
    pub const ATIME_SET: u32 = 0x0000_0080;
    /// Use the given mtime rather than "now".
    pub const MTIME_SET: u32 = 0x0000_0100;
}

/// Tlock/Tgetlock lock types.
pub mod lock_type {
    pub const RDLCK: u8 = 0;
    pub const WRLCK: u8 = 1;
    pub const UNLCK: u8 = 2;
}

/// Tlock flags.
pub mod lock_flags {
    /// Wait for a conflicting lock to go away.
    pub const BLOCK: u32 = 1;
    pub const RECLAIM: u32 = 2;
}

/// Rlock status.
pub mod lock_status {
    pub const SUCCESS: u8 = 0;
    pub const BLOCKED: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const GRACE: u8 = 3;
}

/// Tlopen/Tlcreate flags: Linux's x86 open(2) flag values.
pub mod open_flags {
    pub const RDONLY: u32 = 0o0;
    pub const WRONLY: u32 = 0o1;
    pub const RDWR: u32 = 0o2;
    pub const ACCMODE: u32 = 0o3;
    pub const CREAT: u32 = 0o100;
    pub const EXCL: u32 = 0o200;
    pub const NOCTTY: u32 = 0o400;
    pub const TRUNC: u32 = 0o1000;
    pub const APPEND: u32 = 0o2000;
    pub const NONBLOCK: u32 = 0o4000;
    pub const DSYNC: u32 = 0o10000;
    pub const FASYNC: u32 = 0o20000;
    pub const DIRECT: u32 = 0o40000;
    pub const LARGEFILE: u32 = 0o100000;
    pub const DIRECTORY: u32 = 0o200000;
    pub const NOFOLLOW: u32 = 0o400000;
    pub const NOATIME: u32 = 0o1000000;
    pub const CLOEXEC: u32 = 0o2000000;
    pub const SYNC: u32 = 0o4010000;
}

/// Tunlinkat flags.
pub const AT_REMOVEDIR: u32 = 0x200;

/// Txattrcreate flags (as setxattr(2)).
pub mod xattr_flags {
    pub const CREATE: u32 = 1;
    pub const REPLACE: u32 = 2;
}

/// One directory entry inside Rreaddir data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dirent {
    pub qid: Qid,
    /// Opaque cookie: pass it as the next Treaddir offset to continue after
    /// this entry.
    pub offset: u64,
    /// `d_type` (DT_REG, DT_DIR, ...).
    pub ty: u8,
    pub name: crate::wire::P9String,
}

impl WireFormat for Dirent {
    fn encoded_len(&self) -> usize {
        self.qid.encoded_len() + 8 + 1 + self.name.encoded_len()
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.qid.encode(out);
        self.offset.encode(out);
        self.ty.encode(out);
        self.name.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            qid: Qid::decode(r)?,
            offset: u64::decode(r)?,
            ty: u8::decode(r)?,
            name: WireFormat::decode(r)?,
        })
    }
}

/// Splits Rreaddir data into entries.
pub fn parse_dirents(data: &[u8]) -> Result<Vec<Dirent>, DecodeError> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        out.push(Dirent::decode(&mut r)?);
    }
    Ok(out)
}
