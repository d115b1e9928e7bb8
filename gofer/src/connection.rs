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

struct Worker {
    thread: Option<Pthread>,
    cancelled: bool,
    replying: bool,
}

/// Requests running on their own threads, by tag.
#[derive(Default)]
struct InFlight {
    workers: Mutex<HashMap<u16, Worker>>,
    finished: Condvar,
}

struct Replier {
    stream: Mutex<(UnixStream, Vec<u8>)>,
}

impl Replier {
    fn send(&self, tag: u16, result: Result<Rmessage, Errno>) {
        let msg = result.unwrap_or_else(|e| Rlerror { ecode: e as u32 }.into());
        let mut guard = lock(&self.stream);
        let (stream, buf) = &mut *guard;
        buf.clear();
        Rframe { tag, msg }.encode(buf);
        if let Err(e) = stream.write_all(buf) {
            debug!("reply not delivered: {e}");
        }
    }
}

/// Serves one connection until the client closes it or breaks the framing.
pub fn serve(stream: UnixStream, root: Arc<Node>, read_only: bool, max_msize: u32) {
    let mut reader = match stream.try_clone() {
        Ok(r) => r,
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
            msg => replier.send(tag, session.handle(msg)),
        }
    }
    cancel_all(&inflight);
    session.reset();
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
    lock(&inflight.workers).insert(
        tag,
        Worker {
            thread: None,
            cancelled: false,
            replying: false,
        },
    );
    let (session, replier2, inflight2) = (session.clone(), replier.clone(), inflight.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("p9-tag-{tag}"))
        .spawn(move || {
            let (inflight, replier) = (inflight2, replier2);
            {
                let mut workers = lock(&inflight.workers);
                match workers.get_mut(&tag) {
                    Some(w) if !w.cancelled => w.thread = Some(pthread_self()),
                    _ => {
                        workers.remove(&tag);
                        inflight.finished.notify_all();
                        return;
                    }
                }
            }
            let result = session.handle(msg);
            let mut workers = lock(&inflight.workers);
            let cancelled = workers.get(&tag).is_none_or(|w| w.cancelled);
            if !cancelled {
                if let Some(w) = workers.get_mut(&tag) {
                    w.replying = true;
                }
                drop(workers);
                replier.send(tag, result);
                workers = lock(&inflight.workers);
            }
            workers.remove(&tag);
            inflight.finished.notify_all();
        });
    if let Err(e) = spawned {
        lock(&inflight.workers).remove(&tag);
        warn!("no thread for request: {e}");
        replier.send(tag, Err(Errno::EAGAIN));
    }
}

/// Cancels the request with `oldtag` if it is still running, and returns
/// once it has either replied or been abandoned (so Rflush comes last).
fn flush(inflight: &InFlight, oldtag: u16) {
    let mut workers = lock(&inflight.workers);
    if let Some(w) = workers.get_mut(&oldtag) {
        if !w.replying {
            w.cancelled = true;
        }
    }
    while let Some(w) = workers.get(&oldtag) {
        if w.cancelled {
            if let Some(thread) = w.thread {
                // The worker is alive while its entry exists: it removes the
                // entry, under this lock, before it ends.
                let _ = pthread_kill(thread, INTERRUPT_SIGNAL);
            }
        }
        workers = inflight
            .finished
            .wait_timeout(workers, INTERRUPT_RETRY)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn cancel_all(inflight: &InFlight) {
    let tags: Vec<u16> = lock(&inflight.workers).keys().copied().collect();
    for tag in tags {
        flush(inflight, tag);
    }
}
