//! The gofer: rvisor's file server. It serves one directory tree over
//! 9P2000.L to the sentry (or to any 9P client), never lets a request reach
//! outside that tree, and runs under its own seccomp allowlist.

pub mod connection;
pub mod host;
pub mod jail;
pub mod node;
mod ops;
pub mod seccomp;
pub mod server;
pub mod session;

pub use server::{Server, ServerError, DEFAULT_MAX_MSIZE};
