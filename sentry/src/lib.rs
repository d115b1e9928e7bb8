//! rvisor's sentry: a Linux kernel in a host process.
//!
//! `platform` runs application code (KVM today); `mm` owns application memory;
//! `loader` builds a process image; `kernel` holds tasks; `syscalls` serves
//! system calls; `vfs` holds files; `strace` traces.

pub mod boot;
pub mod control;
pub mod errno;
pub mod filter;
pub mod jail;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod platform;
pub mod strace;
pub mod syscalls;
pub mod vfs;
