//! Every 9P2000.L message the Linux v9fs client and gVisor's 9P gofer use, as
//! typed structs, and the frame that carries one with its tag.

use crate::types::Qid;
use crate::wire::{wire_struct, Data, DecodeError, P9String, Reader, WireFormat};

/// Bytes of `size[4] type[1] tag[2]`.
pub const HEADER_LEN: usize = 7;

wire_struct! {
    /// Negotiates the largest frame and the protocol version.
    pub struct Tversion { pub msize: u32, pub version: P9String }
}
wire_struct! { pub struct Rversion { pub msize: u32, pub version: P9String } }
wire_struct! {
    pub struct Tauth { pub afid: u32, pub uname: P9String, pub aname: P9String, pub n_uname: u32 }
}
wire_struct! { pub struct Rauth { pub aqid: Qid } }
wire_struct! {
    /// Binds `fid` to the root of the tree named `aname`.
    pub struct Tattach {
        pub fid: u32, pub afid: u32, pub uname: P9String, pub aname: P9String, pub n_uname: u32,
    }
}
wire_struct! { pub struct Rattach { pub qid: Qid } }
wire_struct! {
    /// The error reply of 9P2000.L: a Linux errno.
    pub struct Rlerror { pub ecode: u32 }
}
wire_struct! {
    /// Asks the server to abandon the request with tag `oldtag`.
    pub struct Tflush { pub oldtag: u16 }
}
wire_struct! { pub struct Rflush {} }
wire_struct! {
    /// Walks `fid` through `wnames` and binds the result to `newfid`.
    pub struct Twalk { pub fid: u32, pub newfid: u32, pub wnames: Vec<P9String> }
}
wire_struct! { pub struct Rwalk { pub wqids: Vec<Qid> } }
wire_struct! { pub struct Tread { pub fid: u32, pub offset: u64, pub count: u32 } }
wire_struct! { pub struct Rread { pub data: Data } }
wire_struct! { pub struct Twrite { pub fid: u32, pub offset: u64, pub data: Data } }
wire_struct! { pub struct Rwrite { pub count: u32 } }
wire_struct! { pub struct Tclunk { pub fid: u32 } }
wire_struct! { pub struct Rclunk {} }
wire_struct! {
    /// Removes the file `fid` names, and clunks `fid` whatever the outcome.
    pub struct Tremove { pub fid: u32 }
}
wire_struct! { pub struct Rremove {} }
wire_struct! { pub struct Tstatfs { pub fid: u32 } }
wire_struct! {
    pub struct Rstatfs {
        pub ty: u32, pub bsize: u32, pub blocks: u64, pub bfree: u64, pub bavail: u64,
        pub files: u64, pub ffree: u64, pub fsid: u64, pub namelen: u32,
    }
}
wire_struct! {
    /// Opens `fid` with Linux open(2) flags.
    pub struct Tlopen { pub fid: u32, pub flags: u32 }
}
wire_struct! { pub struct Rlopen { pub qid: Qid, pub iounit: u32 } }
wire_struct! {
    /// Creates `name` in directory `fid` and opens it; `fid` then names the new file.
    pub struct Tlcreate { pub fid: u32, pub name: P9String, pub flags: u32, pub mode: u32, pub gid: u32 }
}
wire_struct! { pub struct Rlcreate { pub qid: Qid, pub iounit: u32 } }
wire_struct! {
    pub struct Tsymlink { pub fid: u32, pub name: P9String, pub symtgt: P9String, pub gid: u32 }
}
wire_struct! { pub struct Rsymlink { pub qid: Qid } }
wire_struct! {
    pub struct Tmknod {
        pub dfid: u32, pub name: P9String, pub mode: u32, pub major: u32, pub minor: u32, pub gid: u32,
    }
}
wire_struct! { pub struct Rmknod { pub qid: Qid } }
wire_struct! { pub struct Trename { pub fid: u32, pub dfid: u32, pub name: P9String } }
wire_struct! { pub struct Rrename {} }
wire_struct! { pub struct Treadlink { pub fid: u32 } }
wire_struct! { pub struct Rreadlink { pub target: P9String } }
wire_struct! { pub struct Tgetattr { pub fid: u32, pub request_mask: u64 } }
wire_struct! {
    pub struct Rgetattr {
        pub valid: u64, pub qid: Qid, pub mode: u32, pub uid: u32, pub gid: u32, pub nlink: u64,
        pub rdev: u64, pub size: u64, pub blksize: u64, pub blocks: u64,
        pub atime_sec: u64, pub atime_nsec: u64, pub mtime_sec: u64, pub mtime_nsec: u64,
        pub ctime_sec: u64, pub ctime_nsec: u64, pub btime_sec: u64, pub btime_nsec: u64,
        pub gen: u64, pub data_version: u64,
    }
}
wire_struct! {
    pub struct Tsetattr {
        pub fid: u32, pub valid: u32, pub mode: u32, pub uid: u32, pub gid: u32, pub size: u64,
        pub atime_sec: u64, pub atime_nsec: u64, pub mtime_sec: u64, pub mtime_nsec: u64,
    }
}
wire_struct! { pub struct Rsetattr {} }
wire_struct! {
    /// Binds `newfid` to the extended attribute `name` of `fid` (or to the
    /// list of names when `name` is empty), to be read with Tread.
    pub struct Txattrwalk { pub fid: u32, pub newfid: u32, pub name: P9String }
}
wire_struct! { pub struct Rxattrwalk { pub size: u64 } }
wire_struct! {
    /// Turns `fid` into a writable attribute `name` of `attr_size` bytes, set
    /// by Twrite and committed at Tclunk.
    pub struct Txattrcreate { pub fid: u32, pub name: P9String, pub attr_size: u64, pub flags: u32 }
}
wire_struct! { pub struct Rxattrcreate {} }
wire_struct! { pub struct Treaddir { pub fid: u32, pub offset: u64, pub count: u32 } }
wire_struct! {
    /// Directory entries, encoded back to back (see [`crate::types::Dirent`]).
    pub struct Rreaddir { pub data: Data }
}
wire_struct! { pub struct Tfsync { pub fid: u32, pub datasync: u32 } }
wire_struct! { pub struct Rfsync {} }
wire_struct! {
    pub struct Tlock {
        pub fid: u32, pub ty: u8, pub flags: u32, pub start: u64, pub length: u64,
        pub proc_id: u32, pub client_id: P9String,
    }
}
wire_struct! { pub struct Rlock { pub status: u8 } }
wire_struct! {
    pub struct Tgetlock {
        pub fid: u32, pub ty: u8, pub start: u64, pub length: u64, pub proc_id: u32, pub client_id: P9String,
    }
}
wire_struct! {
    pub struct Rgetlock {
        pub ty: u8, pub start: u64, pub length: u64, pub proc_id: u32, pub client_id: P9String,
    }
}
wire_struct! { pub struct Tlink { pub dfid: u32, pub fid: u32, pub name: P9String } }
wire_struct! { pub struct Rlink {} }
wire_struct! { pub struct Tmkdir { pub dfid: u32, pub name: P9String, pub mode: u32, pub gid: u32 } }
wire_struct! { pub struct Rmkdir { pub qid: Qid } }
wire_struct! {
    pub struct Trenameat { pub olddirfid: u32, pub oldname: P9String, pub newdirfid: u32, pub newname: P9String }
}
wire_struct! { pub struct Rrenameat {} }
wire_struct! { pub struct Tunlinkat { pub dirfid: u32, pub name: P9String, pub flags: u32 } }
wire_struct! { pub struct Runlinkat {} }

macro_rules! message_enum {
    ($(#[$meta:meta])* pub enum $enum:ident { $($variant:ident = $num:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $enum { $($variant($variant)),* }

        impl $enum {
            /// The message type byte.
            pub fn msg_type(&self) -> u8 {
                match self { $(Self::$variant(_) => $num),* }
            }

            /// The message's name, e.g. "Twalk".
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => stringify!($variant)),* }
            }

            fn body_len(&self) -> usize {
                match self { $(Self::$variant(m) => m.encoded_len()),* }
            }

            fn encode_body(&self, out: &mut Vec<u8>) {
                match self { $(Self::$variant(m) => m.encode(out)),* }
            }

            fn decode_body(ty: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                match ty {
                    $($num => Ok(Self::$variant($variant::decode(r)?)),)*
                    other => Err(DecodeError::UnknownType(other)),
                }
            }
        }

        $(impl From<$variant> for $enum {
            fn from(m: $variant) -> Self { Self::$variant(m) }
        })*
    };
}

message_enum! {
    /// A request, client to server.
    pub enum Tmessage {
        Tstatfs = 8, Tlopen = 12, Tlcreate = 14, Tsymlink = 16, Tmknod = 18, Trename = 20,
        Treadlink = 22, Tgetattr = 24, Tsetattr = 26, Txattrwalk = 30, Txattrcreate = 32,
        Treaddir = 40, Tfsync = 50, Tlock = 52, Tgetlock = 54, Tlink = 70, Tmkdir = 72,
        Trenameat = 74, Tunlinkat = 76, Tversion = 100, Tauth = 102, Tattach = 104,
        Tflush = 108, Twalk = 110, Tread = 116, Twrite = 118, Tclunk = 120, Tremove = 122,
    }
}

message_enum! {
    /// A reply, server to client.
    pub enum Rmessage {
        Rlerror = 7, Rstatfs = 9, Rlopen = 13, Rlcreate = 15, Rsymlink = 17, Rmknod = 19,
        Rrename = 21, Rreadlink = 23, Rgetattr = 25, Rsetattr = 27, Rxattrwalk = 31,
        Rxattrcreate = 33, Rreaddir = 41, Rfsync = 51, Rlock = 53, Rgetlock = 55, Rlink = 71,
        Rmkdir = 73, Rrenameat = 75, Runlinkat = 77, Rversion = 101, Rauth = 103,
        Rattach = 105, Rflush = 109, Rwalk = 111, Rread = 117, Rwrite = 119, Rclunk = 121,
        Rremove = 123,
    }
}

/// A request type and the reply type that answers it.
pub trait Request: Into<Tmessage> {
    type Reply: TryFrom<Rmessage, Error = Rmessage>;
}

macro_rules! request_pairs {
    ($($t:ident => $r:ident),* $(,)?) => {$(
        impl Request for $t {
            type Reply = $r;
        }
        impl TryFrom<Rmessage> for $r {
            type Error = Rmessage;
            fn try_from(m: Rmessage) -> Result<Self, Rmessage> {
                match m {
                    Rmessage::$r(r) => Ok(r),
                    other => Err(other),
                }
            }
        }
    )*};
}

request_pairs! {
    Tstatfs => Rstatfs, Tlopen => Rlopen, Tlcreate => Rlcreate, Tsymlink => Rsymlink,
    Tmknod => Rmknod, Trename => Rrename, Treadlink => Rreadlink, Tgetattr => Rgetattr,
    Tsetattr => Rsetattr, Txattrwalk => Rxattrwalk, Txattrcreate => Rxattrcreate,
    Treaddir => Rreaddir, Tfsync => Rfsync, Tlock => Rlock, Tgetlock => Rgetlock,
    Tlink => Rlink, Tmkdir => Rmkdir, Trenameat => Rrenameat, Tunlinkat => Runlinkat,
    Tversion => Rversion, Tauth => Rauth, Tattach => Rattach, Tflush => Rflush,
    Twalk => Rwalk, Tread => Rread, Twrite => Rwrite, Tclunk => Rclunk, Tremove => Rremove,
}

/// Reads the header of a frame: `(size, type, tag)`.
pub fn decode_header(frame: &[u8]) -> Result<(u32, u8, u16), DecodeError> {
    let mut r = Reader::new(frame);
    Ok((
        u32::decode(&mut r)?,
        u8::decode(&mut r)?,
        u16::decode(&mut r)?,
    ))
}

macro_rules! frame_type {
    ($(#[$meta:meta])* $name:ident, $msg:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            pub tag: u16,
            pub msg: $msg,
        }

        impl $name {
            pub fn new(tag: u16, msg: impl Into<$msg>) -> Self {
                Self { tag, msg: msg.into() }
            }

            /// Bytes of the encoded frame, header included.
            pub fn encoded_len(&self) -> usize {
                HEADER_LEN + self.msg.body_len()
            }

            /// Appends the whole frame, size field included, to `out`.
            pub fn encode(&self, out: &mut Vec<u8>) {
                let len = self.encoded_len();
                out.reserve(len);
                (len as u32).encode(out);
                self.msg.msg_type().encode(out);
                self.tag.encode(out);
                self.msg.encode_body(out);
            }

            pub fn to_bytes(&self) -> Vec<u8> {
                let mut out = Vec::new();
                self.encode(&mut out);
                out
            }

            /// Decodes exactly one whole frame (size field included).
            pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
                let (size, ty, tag) = decode_header(frame)?;
                if size as usize != frame.len() {
                    return Err(DecodeError::SizeMismatch { declared: size, actual: frame.len() });
                }
                let mut r = Reader::new(&frame[HEADER_LEN..]);
                let msg = $msg::decode_body(ty, &mut r)?;
                r.finish()?;
                Ok(Self { tag, msg })
            }
        }
    };
}

frame_type!(
    /// A request with its tag.
    Tframe,
    Tmessage
);
frame_type!(
    /// A reply with the tag of the request it answers.
    Rframe,
    Rmessage
);
