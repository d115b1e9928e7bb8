//! The messages themselves. Bump [`VERSION`] on any change to a type here:
//! the three binaries are always shipped together, so a mismatch is a bug
//! (a stale binary on PATH) and is refused rather than misread.

use serde::{Deserialize, Serialize};

/// The protocol version every frame carries.
pub const VERSION: u32 = 1;

/// Supervisor → sentry, first frame on the boot socket. Descriptors sent
/// with it, in order: the control socket listener, then one gofer
/// connection per entry of `mounts` (the root's first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    /// Container id, for logs.
    pub id: String,
    pub process: Process,
    pub hostname: Option<String>,
    /// Filesystems served by gofers; `mounts[0]` is the root, at "/".
    pub mounts: Vec<Mount>,
    /// One line per application system call.
    pub strace: bool,
    /// Application memory in MiB.
    pub memory_mib: u64,
    /// How the application runs: "auto", "kvm" or "systrap".
    pub platform: String,
    /// Wait for `ControlRequest::Start` before running the application
    /// (`create`); false runs it at once.
    pub wait_for_start: bool,
}

/// What to run: the OCI spec's `process`, reduced to what the sentry needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    pub rlimits: Vec<Rlimit>,
    pub terminal: bool,
    pub no_new_privileges: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// RLIMIT_* number.
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// A gofer-served filesystem in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the sandbox.
    pub destination: String,
    pub read_only: bool,
}

/// Requests on the control socket (supervisor → sentry), one per connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlRequest {
    /// Run the application (after a `create`).
    Start,
    /// Send `signo` to the init process, or to every process with `all`.
    Signal { signo: i32, all: bool },
    /// Report the sandbox's state.
    State,
}

/// Replies on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlResponse {
    Ok,
    State { status: SandboxStatus, pid: i32 },
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxStatus {
    /// Built; the application has not started.
    Created,
    Running,
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{recv, send};
    use std::os::unix::net::UnixStream;

    #[test]
    fn boot_round_trips() {
        let boot = Boot {
            id: "c1".into(),
            process: Process {
                args: vec!["/bin/busybox".into(), "echo".into(), "hi".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                user: User {
                    uid: 1000,
                    gid: 1000,
                    additional_gids: vec![10],
                    umask: Some(0o22),
                },
                rlimits: vec![Rlimit {
                    resource: 7,
                    soft: 1024,
                    hard: 4096,
                }],
                terminal: false,
                no_new_privileges: true,
            },
            hostname: Some("box".into()),
            mounts: vec![Mount {
                destination: "/".into(),
                read_only: true,
            }],
            strace: true,
            memory_mib: 512,
            platform: "systrap".into(),
            wait_for_start: true,
        };
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &boot, &[]).unwrap();
        let (got, _): (Boot, _) = recv(&b).unwrap();
        assert_eq!(got, boot);
    }
}
