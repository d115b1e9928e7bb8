//! 9P2000.L: typed messages, their wire encoding, frame reading, and a client
//! that many threads can share over one connection.
//!
//! The sentry uses the client to reach the gofer; the gofer uses the messages
//! and framing to serve. Nothing here trusts the peer: every length is checked
//! against the frame, and every frame against the negotiated msize, before any
//! allocation.

#![forbid(unsafe_code)]

pub mod client;
pub mod framing;
pub mod messages;
pub mod types;
pub mod wire;

pub use client::{Client, ClientError};
pub use messages::*;
pub use types::{Dirent, Qid};
pub use wire::{Data, DecodeError, P9String, WireFormat};

/// The only protocol version spoken.
pub const VERSION_9P2000_L: &str = "9P2000.L";
/// "No fid", e.g. Tattach's afid without authentication.
pub const NOFID: u32 = u32::MAX;
/// The tag Tversion travels with.
pub const NOTAG: u16 = u16::MAX;
/// Most names one Twalk may carry.
pub const MAX_WALK_ELEMENTS: usize = 16;
/// Bytes of Tread/Twrite framing around the payload: a read or write of
/// `msize - IOHDRSZ` bytes fits in one frame.
pub const IOHDRSZ: u32 = 24;
/// Smallest msize worth negotiating.
pub const MIN_MSIZE: u32 = 4096;
