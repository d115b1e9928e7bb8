//! Framing: a little-endian u32 length, then that many bytes of bincode.
//! File descriptors ride on the first byte of the frame (SCM_RIGHTS).

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::message::VERSION;

/// Largest frame body accepted or sent (1 MiB): a boot message with a large
/// environment fits many times over; a corrupt length cannot make us allocate.
pub const MAX_FRAME: usize = 1 << 20;

/// Most descriptors one frame may carry.
pub const MAX_FD_COUNT: usize = 16;

const HEADER: usize = 4;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("{0} file descriptors exceed the {MAX_FD_COUNT}-per-frame limit")]
    TooManyFds(usize),
    #[error("peer speaks ipc version {0}, we speak {VERSION}")]
    Version(u32),
    #[error("peer closed the socket")]
    Closed,
    #[error("control message truncated: descriptors were lost")]
    Truncated,
    #[error("socket i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("socket call: {0}")]
    Sys(#[from] nix::Error),
    #[error("encoding message: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("decoding message: {0}")]
    Decode(#[from] bincode::error::DecodeError),
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    version: u32,
    body: T,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Sends `msg` as one frame, with `fds` attached (they stay open here).
pub fn send<T: Serialize>(
    sock: &UnixStream,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), FrameError> {
    if fds.len() > MAX_FD_COUNT {
        return Err(FrameError::TooManyFds(fds.len()));
    }
    let envelope = Envelope {
        version: VERSION,
        body: msg,
    };
    let body = bincode::serde::encode_to_vec(&envelope, config())?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(HEADER + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);

    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let cmsgs = if raw.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    let sent = loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(&frame)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(nix::Error::EINTR) => continue,
            other => break other?,
        }
    };
    // The descriptors went with the first byte; the rest is plain data.
    (&*sock).write_all(&frame[sent..])?;
    Ok(())
}

/// Receives one frame: the message and the descriptors that came with it
/// (close-on-exec set).
pub fn recv<T: DeserializeOwned>(sock: &UnixStream) -> Result<(T, Vec<OwnedFd>), FrameError> {
    let mut header = [0u8; HEADER];
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FD_COUNT]);
    let (got, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut header)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::Error::EINTR) => continue,
            other => other?,
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                fds.extend(raw.into_iter().map(owned));
            }
        }
        if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(FrameError::Truncated);
        }
        break (msg.bytes, fds);
    };
    if got == 0 {
        return Err(FrameError::Closed);
    }
    (&*sock)
        .read_exact(&mut header[got..])
        .map_err(eof_closed)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    (&*sock).read_exact(&mut body).map_err(eof_closed)?;
    // The version comes first in the encoding: check it before the body.
    let (version, _): (u32, usize) = bincode::serde::decode_from_slice(&body, config())?;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let (envelope, _): (Envelope<T>, usize) = bincode::serde::decode_from_slice(&body, config())?;
    Ok((envelope.body, fds))
}

fn eof_closed(e: std::io::Error) -> FrameError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FrameError::Closed
    } else {
        FrameError::Io(e)
    }
}

#[allow(unsafe_code)]
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel just installed `fd` in our table for this message;
    // nothing else in the process knows it, so we are its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Sends a raw frame with an arbitrary declared length; tests use it to show
/// the receiver refuses oversized frames without reading them.
#[doc(hidden)]
pub fn send_raw_header(sock: &UnixStream, len: u32) -> std::io::Result<()> {
    (&*sock).write_all(&len.to_le_bytes())
}

/// Borrows every descriptor of a slice (handy for `send`).
pub fn borrow_all<F: AsFd>(fds: &[F]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(|f| f.as_fd()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ControlRequest, ControlResponse, SandboxStatus};
    use std::io::Seek;

    #[test]
    fn round_trip_without_fds() {
        let (a, b) = UnixStream::pair().unwrap();
        send(
            &a,
            &ControlRequest::Signal {
                signo: 15,
                all: true,
            },
            &[],
        )
        .unwrap();
        let (msg, fds): (ControlRequest, _) = recv(&b).unwrap();
        assert_eq!(
            msg,
            ControlRequest::Signal {
                signo: 15,
                all: true
            }
        );
        assert!(fds.is_empty());
    }

    #[test]
    fn back_to_back_frames_stay_apart() {
        let (a, b) = UnixStream::pair().unwrap();
        for i in 0..50 {
            send(
                &a,
                &ControlResponse::State {
                    status: SandboxStatus::Running,
                    pid: i,
                },
                &[],
            )
            .unwrap();
        }
        for i in 0..50 {
            let (msg, _): (ControlResponse, _) = recv(&b).unwrap();
            assert_eq!(
                msg,
                ControlResponse::State {
                    status: SandboxStatus::Running,
                    pid: i
                }
            );
        }
    }

    #[test]
    fn oversized_frame_is_refused_on_receive() {
        let (a, b) = UnixStream::pair().unwrap();
        send_raw_header(&a, (MAX_FRAME + 1) as u32).unwrap();
        match recv::<ControlRequest>(&b) {
            Err(FrameError::TooLarge(n)) => assert_eq!(n, MAX_FRAME + 1),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn oversized_frame_is_refused_on_send() {
        let (a, _b) = UnixStream::pair().unwrap();
        let big = ControlResponse::Error(String::from_utf8(vec![b'x'; MAX_FRAME + 10]).unwrap());
        assert!(matches!(send(&a, &big, &[]), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn other_version_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let env = Envelope {
            version: VERSION + 1,
            body: ControlRequest::Start,
        };
        let body = bincode::serde::encode_to_vec(&env, config()).unwrap();
        (&a).write_all(&(body.len() as u32).to_le_bytes()).unwrap();
        (&a).write_all(&body).unwrap();
        assert!(
            matches!(recv::<ControlRequest>(&b), Err(FrameError::Version(v)) if v == VERSION + 1)
        );
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        assert!(matches!(
            recv::<ControlRequest>(&b),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn fd_is_actually_passed() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file = std::fs::File::from(anonymous_file());
        file.write_all(b"passed through SCM_RIGHTS").unwrap();
        send(&a, &ControlRequest::Start, &[file.as_fd()]).unwrap();
        drop(file);
        let (msg, fds): (ControlRequest, _) = recv(&b).unwrap();
        assert_eq!(msg, ControlRequest::Start);
        assert_eq!(fds.len(), 1);
        let mut got = std::fs::File::from(fds.into_iter().next().unwrap());
        got.rewind().unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "passed through SCM_RIGHTS");
        let flags = nix::fcntl::fcntl(&got, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(
            flags & libc_fd_cloexec(),
            0,
            "received fds are close-on-exec"
        );
    }

    /// A read-write file with no name left on disk.
    fn anonymous_file() -> OwnedFd {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("ipc-test-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f.into()
    }

    fn libc_fd_cloexec() -> i32 {
        nix::fcntl::FdFlag::FD_CLOEXEC.bits()
    }
}
