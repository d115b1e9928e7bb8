//! Typed messages between rvisor's three processes (supervisor, sentry,
//! gofer), carried as length-prefixed frames over Unix stream sockets, with
//! file descriptors passed alongside by SCM_RIGHTS.
//!
//! Every frame holds one [`Envelope`]: the protocol [`VERSION`] and a body
//! encoded with bincode. A peer speaking another version is refused before
//! its body is decoded.

#![deny(unsafe_code)]

pub mod frame;
pub mod message;

pub use frame::{recv, send, FrameError, MAX_FD_COUNT, MAX_FRAME};
pub use message::{
    Boot, ControlRequest, ControlResponse, Mount, Process, Rlimit, SandboxStatus, User, VERSION,
};
