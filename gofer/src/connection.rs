//! One client connection: reads requests, serves most of them in order on
//! the connection's thread, and runs those that may block in the host
//! kernel on their own threads so that Tflush can interrupt them.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::pthread::{pthread_kill, pthread_self, Pthread};
use p9proto::framing::{read_frame, FrameError};
use p9proto::{
    decode_header, DecodeError, Rflush, Rframe, Rlerror, Rmessage, Rversion, Tframe, Tmessage,
    Tversion, MIN_MSIZE, VERSION_9P2000_L,
};
use tracing::{debug, warn};

use crate::host::INTERRUPT_SIGNAL;
use crate::node::Node;
use crate::session::{lock, Session};

/// How often a flushed request that has not yet noticed is signalled again
/// (the first signal can land before the request blocks).
const INTERRUPT_RETRY: Duration = Duration::from_millis(20);

/// Requests of one connection allowed to wait in the host kernel at once;
/// more get EAGAIN rather than a thread each.
const MAX_WORKERS: usize = 64;

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 64 * 1024;

struct Worker {
    tag: u16,
    thread: Option<Pthread>,
    cancelled: bool,
    /// Its reply is being written: too late to cancel.
    replying: bool,
}

/// Requests running on their own threads. Keyed by a serial number, not the
/// tag: a client may reuse a tag as soon as it has the reply, before the
/// worker that sent it has finished.
#[derive(Default)]
struct InFlight {
    workers: Mutex<HashMap<u64, Worker>>,
    next_id: std::sync::atomic::AtomicU64,
    finished: Condvar,
}

/// Writes replies. Replies to requests served on the connection's thread
/// may be held back while more requests are already buffered, so a client
/// that pipelines gets its replies in one write.
struct Replier {
    stream: Mutex<(UnixStream, Vec<u8>)>,
}

impl Replier {
    fn encode(out: &mut Vec<u8>, tag: u16, result: Result<Rmessage, Errno>) {
        let msg = result.unwrap_or_else(|e| Rlerror { ecode: e as u32 }.into());
        Rframe { tag, msg }.encode(out);
    }

    /// Queues a reply; `flush` sends it.
    fn queue(&self, tag: u16, result: Result<Rmessage, Errno>) {
        Self::encode(&mut lock(&self.stream).1, tag, result);
    }

    /// Sends a reply now, with any queued before it.
    fn send(&self, tag: u16, result: Result<Rmessage, Errno>) {
        let mut guard = lock(&self.stream);
        Self::encode(&mut guard.1, tag, result);
        Self::write_out(&mut guard);
    }

    fn flush(&self) {
        Self::write_out(&mut lock(&self.stream));
    }

    fn write_out(guard: &mut (UnixStream, Vec<u8>)) {
        let (stream, out) = guard;
        if out.is_empty() {
            return;
        }
        if let Err(e) = stream.write_all(out) {
            debug!("reply not delivered: {e}");
        }
        out.clear();
        // Don't keep a large read's buffer for the connection's lifetime.
        if out.capacity() > READ_BUFFER {
            out.shrink_to(READ_BUFFER);
        }
    }
}

/// Serves one connection until the client closes it or breaks the framing.
pub fn serve(stream: UnixStream, root: Arc<Node>, read_only: bool, max_msize: u32) {
    // Buffered: a client that pipelines requests has them read in one call.
    let mut reader = match stream.try_clone() {
        Ok(r) => std::io::BufReader::with_capacity(READ_BUFFER, r),
        Err(e) => {
            warn!("connection not served: {e}");
            return;
        }
    };
    let session = Arc::new(Session::new(root, read_only, max_msize));
    let replier = Arc::new(Replier {
        stream: Mutex::new((stream, Vec::new())),
    });
    let inflight = Arc::new(InFlight::default());
    let mut buf = Vec::new();
    loop {
        match read_frame(&mut reader, session.msize(), &mut buf) {
            Ok(()) => {}
            Err(FrameError::Closed) => break,
            Err(e) => {
                warn!("closing connection: {e}");
                break;
            }
        }
        let frame = match Tframe::decode(&buf) {
            Ok(f) => f,
            Err(e) => {
                // read_frame guarantees a whole header, so the tag is known.
                let Ok((_, ty, tag)) = decode_header(&buf) else {
                    break;
                };
                debug!("undecodable request type {ty}: {e}");
                let errno = match e {
                    DecodeError::UnknownType(_) => Errno::EOPNOTSUPP,
                    _ => Errno::EINVAL,
                };
                replier.send(tag, Err(errno));
                continue;
            }
        };
        let tag = frame.tag;
        match frame.msg {
            Tmessage::Tversion(v) => {
                cancel_all(&inflight);
                replier.send(tag, Ok(version(&session, v, max_msize)));
            }
            Tmessage::Tflush(f) => {
                flush(&inflight, f.oldtag);
                replier.send(tag, Ok(Rflush {}.into()));
            }
            msg if session.may_block(&msg) => {
                spawn_worker(&session, &replier, &inflight, tag, msg);
            }
            msg => replier.queue(tag, session.handle(msg)),
        }
        if !holds_whole_frame(reader.buffer()) {
            replier.flush();
        }
    }
    cancel_all(&inflight);
    session.reset();
}

/// Whether `buf` starts with a complete frame, so the next request can be
/// served without waiting on the client (queued replies may wait for it).
fn holds_whole_frame(buf: &[u8]) -> bool {
    match buf.get(..4) {
        Some(size) => {
            let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
            buf.len() >= size
        }
        None => false,
    }
}

fn version(session: &Session, v: Tversion, max_msize: u32) -> Rmessage {
    session.reset();
    let msize = v.msize.min(max_msize);
    if v.version.as_bytes() != VERSION_9P2000_L.as_bytes() || msize < MIN_MSIZE {
        return Rversion {
            msize,
            version: "unknown".into(),
        }
        .into();
    }
    session.set_msize(msize);
    Rversion {
        msize,
        version: VERSION_9P2000_L.into(),
    }
    .into()
}

fn spawn_worker(
    session: &Arc<Session>,
    replier: &Arc<Replier>,
    inflight: &Arc<InFlight>,
    tag: u16,
    msg: Tmessage,
) {
    let id = inflight
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    {
        let mut workers = lock(&inflight.workers);
        if workers.len() >= MAX_WORKERS {
            drop(workers);
            replier.send(tag, Err(Errno::EAGAIN));
            return;
        }
        workers.insert(
            id,
            Worker {
                tag,
                thread: None,
                cancelled: false,
                replying: false,
            },
        );
    }
    let (session, replier2, inflight2) = (session.clone(), replier.clone(), inflight.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("p9-tag-{tag}"))
        .spawn(move || {
            let (inflight, replier) = (inflight2, replier2);
            {
                let mut workers = lock(&inflight.workers);
                match workers.get_mut(&id) {
                    Some(w) if !w.cancelled => w.thread = Some(pthread_self()),
                    _ => {
                        workers.remove(&id);
                        inflight.finished.notify_all();
                        return;
                    }
                }
            }
            let result = session.handle(msg);
            let mut workers = lock(&inflight.workers);
            if let Some(w) = workers.get_mut(&id).filter(|w| !w.cancelled) {
                w.replying = true;
                drop(workers);
                replier.send(tag, result);
                workers = lock(&inflight.workers);
            }
            workers.remove(&id);
            inflight.finished.notify_all();
        });
    if let Err(e) = spawned {
        lock(&inflight.workers).remove(&id);
        warn!("no thread for request: {e}");
        replier.send(tag, Err(Errno::EAGAIN));
    }
}

/// Cancels the request with `oldtag` if it is still running, and returns
/// once it has either replied or been abandoned (so Rflush comes last).
fn flush(inflight: &InFlight, oldtag: u16) {
    let mut workers = lock(&inflight.workers);
    let ids: Vec<u64> = workers
        .iter_mut()
        .filter(|(_, w)| w.tag == oldtag)
        .map(|(&id, w)| {
            if !w.replying {
                w.cancelled = true;
            }
            id
        })
        .collect();
    for id in ids {
        while let Some(w) = workers.get(&id) {
            if let (true, Some(thread)) = (w.cancelled, w.thread) {
                // The worker is alive while its entry exists: it removes the
                // entry, under this lock, before it ends.
                let _ = pthread_kill(thread, INTERRUPT_SIGNAL);
            }
            workers = inflight
                .finished
                .wait_timeout(workers, INTERRUPT_RETRY)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn cancel_all(inflight: &InFlight) {
    let tags: Vec<u16> = lock(&inflight.workers).values().map(|w| w.tag).collect();
    for tag in tags {
        flush(inflight, tag);
    }
}

#[cfg(test)]
mod tests {
    use super::holds_whole_frame;

    #[test]
    fn whole_frame_detection() {
        assert!(!holds_whole_frame(&[]));
        assert!(!holds_whole_frame(&[11, 0, 0]));
        assert!(!holds_whole_frame(&[11, 0, 0, 0, 120, 0, 0, 1, 0, 0]));
        assert!(holds_whole_frame(&[11, 0, 0, 0, 120, 0, 0, 1, 0, 0, 0]));
        assert!(holds_whole_frame(&[11, 0, 0, 0, 120, 0, 0, 1, 0, 0, 0, 9]));
    }
}
