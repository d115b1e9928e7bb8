//! A 9P2000.L client that any number of threads can share over one
//! connection.
//!
//! Replies are matched to requests by tag. There is no dedicated reader
//! thread: whichever waiting caller finds nobody reading becomes the reader,
//! reads frames, and hands other callers' replies to them. With a single
//! caller this costs no thread switch at all; with many, each reply wakes only
//! the callers waiting on the connection.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use thiserror::Error;

use crate::framing::{read_frame, FrameError};
use crate::messages::*;
use crate::types::Qid;
use crate::wire::{Data, P9String};
use crate::{IOHDRSZ, MAX_WALK_ELEMENTS, MIN_MSIZE, NOFID, NOTAG, VERSION_9P2000_L};

#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered Rlerror with this Linux errno.
    #[error("server replied with errno {0}")]
    Remote(i32),
    #[error("connection to the 9P server is closed")]
    Closed,
    #[error("9P connection i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("reply frame from server: {0}")]
    Frame(String),
    #[error("server sent {got} in reply to {sent}")]
    UnexpectedReply {
        sent: &'static str,
        got: &'static str,
    },
    #[error("server offered version {0:?}, not 9P2000.L")]
    Version(String),
    #[error("request was flushed before it was answered")]
    Flushed,
    #[error("all 9P tags are in use")]
    NoTags,
    #[error("walk of {0} names exceeds the 16-name limit of one Twalk")]
    WalkTooLong(usize),
}

impl ClientError {
    /// The errno a caller should report for this failure.
    pub fn errno(&self) -> i32 {
        const EIO: i32 = 5;
        const EINTR: i32 = 4;
        const ENAMETOOLONG: i32 = 36;
        const EAGAIN: i32 = 11;
        match self {
            Self::Remote(e) => *e,
            Self::Flushed => EINTR,
            Self::NoTags => EAGAIN,
            Self::WalkTooLong(_) => ENAMETOOLONG,
            _ => EIO,
        }
    }
}

enum Slot {
    Waiting,
    Done(Rmessage),
    Flushed,
}

struct State {
    slots: HashMap<u16, Slot>,
    free_tags: Vec<u16>,
    reader_busy: bool,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    replies: Condvar,
    /// Only the caller that set `reader_busy` reads from this.
    reader: Mutex<(BufReader<UnixStream>, Vec<u8>)>,
    writer: Mutex<(UnixStream, Vec<u8>)>,
}

/// A 9P2000.L connection.
pub struct Client {
    shared: Shared,
    msize: u32,
    next_fid: AtomicU32,
    free_fids: Mutex<Vec<u32>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("msize", &self.msize)
            .finish()
    }
}

/// A request that has been sent and not yet answered.
#[derive(Debug)]
pub struct Pending<'c, T: Request> {
    client: &'c Client,
    tag: u16,
    sent: &'static str,
    _req: std::marker::PhantomData<T>,
}

impl<T: Request> Pending<'_, T> {
    /// The tag the request travels with (for Tflush).
    pub fn tag(&self) -> u16 {
        self.tag
    }

    /// Waits for the reply.
    pub fn wait(self) -> Result<T::Reply, ClientError> {
        let reply = self.client.wait_reply(self.tag)?;
        convert::<T>(self.sent, reply)
    }
}

fn convert<T: Request>(sent: &'static str, reply: Rmessage) -> Result<T::Reply, ClientError> {
    match T::Reply::try_from(reply) {
        Ok(r) => Ok(r),
        Err(Rmessage::Rlerror(e)) => Err(ClientError::Remote(e.ecode as i32)),
        Err(other) => Err(ClientError::UnexpectedReply {
            sent,
            got: other.name(),
        }),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves the data consistent
    // (every update is a single insert/remove), so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Negotiates 9P2000.L with at most `msize` bytes per frame.
    pub fn connect(stream: UnixStream, msize: u32) -> Result<Self, ClientError> {
        let reader = stream.try_clone()?;
        let client = Self {
            shared: Shared {
                state: Mutex::new(State {
                    slots: HashMap::new(),
                    free_tags: (0..NOTAG).rev().collect(),
                    reader_busy: false,
                    closed: false,
                }),
                replies: Condvar::new(),
                reader: Mutex::new((BufReader::with_capacity(64 * 1024, reader), Vec::new())),
                writer: Mutex::new((stream, Vec::new())),
            },
            msize: msize.max(MIN_MSIZE),
            next_fid: AtomicU32::new(0),
            free_fids: Mutex::new(Vec::new()),
        };
        let tversion = Tframe::new(
            NOTAG,
            Tversion {
                msize: client.msize,
                version: VERSION_9P2000_L.into(),
            },
        );
        lock(&client.shared.state)
            .slots
            .insert(NOTAG, Slot::Waiting);
        client.write_frame(&tversion)?;
        let reply = client.wait_reply(NOTAG)?;
        let rversion = convert::<Tversion>("Tversion", reply)?;
        if rversion.version.as_bytes() != VERSION_9P2000_L.as_bytes() {
            return Err(ClientError::Version(rversion.version.to_string()));
        }
        let msize = rversion.msize.min(client.msize);
        if msize < MIN_MSIZE {
            return Err(ClientError::Frame(format!(
                "server msize {msize} too small"
            )));
        }
        Ok(Self { msize, ..client })
    }

    /// The negotiated largest frame.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// Largest payload one Tread or Twrite can carry.
    pub fn iounit(&self) -> u32 {
        self.msize - IOHDRSZ
    }

    /// A fid not in use on this connection.
    pub fn new_fid(&self) -> u32 {
        if let Some(fid) = lock(&self.free_fids).pop() {
            return fid;
        }
        self.next_fid.fetch_add(1, Ordering::Relaxed)
    }

    /// Returns a fid the server no longer knows (after Tclunk/Tremove).
    pub fn release_fid(&self, fid: u32) {
        if fid != NOFID {
            lock(&self.free_fids).push(fid);
        }
    }

    /// Sends `req` and waits for its reply.
    pub fn call<T: Request>(&self, req: T) -> Result<T::Reply, ClientError> {
        self.send(req)?.wait()
    }

    /// Sends `req`; the reply is collected with [`Pending::wait`].
    pub fn send<T: Request>(&self, req: T) -> Result<Pending<'_, T>, ClientError> {
        let msg: Tmessage = req.into();
        let sent = msg.name();
        let tag = {
            let mut st = lock(&self.shared.state);
            if st.closed {
                return Err(ClientError::Closed);
            }
            let tag = st.free_tags.pop().ok_or(ClientError::NoTags)?;
            st.slots.insert(tag, Slot::Waiting);
            tag
        };
        if let Err(e) = self.write_frame(&Tframe { tag, msg }) {
            self.forget(tag);
            return Err(e);
        }
        Ok(Pending {
            client: self,
            tag,
            sent,
            _req: std::marker::PhantomData,
        })
    }

    /// Sends several requests in one write; returns their tags in order.
    fn send_batch<const N: usize>(&self, msgs: [Tmessage; N]) -> Result<[u16; N], ClientError> {
        let mut tags = [0u16; N];
        {
            let mut st = lock(&self.shared.state);
            if st.closed {
                return Err(ClientError::Closed);
            }
            if st.free_tags.len() < N {
                return Err(ClientError::NoTags);
            }
            for t in tags.iter_mut() {
                *t = st.free_tags.pop().ok_or(ClientError::NoTags)?;
                st.slots.insert(*t, Slot::Waiting);
            }
        }
        let mut w = lock(&self.shared.writer);
        let (stream, buf) = &mut *w;
        buf.clear();
        for (msg, &tag) in msgs.into_iter().zip(tags.iter()) {
            Tframe { tag, msg }.encode(buf);
        }
        if let Err(e) = stream.write_all(buf) {
            drop(w);
            lock(&self.shared.state).closed = true;
            self.shared.replies.notify_all();
            for t in tags {
                self.forget(t);
            }
            return Err(ClientError::Io(e));
        }
        Ok(tags)
    }

    /// Asks the server to abandon the request with `oldtag`. When this
    /// returns, that request has either been answered or will fail with
    /// [`ClientError::Flushed`].
    pub fn flush(&self, oldtag: u16) -> Result<(), ClientError> {
        self.call(Tflush { oldtag })?;
        let mut st = lock(&self.shared.state);
        if let Some(slot @ Slot::Waiting) = st.slots.get_mut(&oldtag) {
            *slot = Slot::Flushed;
            self.shared.replies.notify_all();
        }
        Ok(())
    }

    fn forget(&self, tag: u16) {
        let mut st = lock(&self.shared.state);
        st.slots.remove(&tag);
        if tag != NOTAG {
            st.free_tags.push(tag);
        }
    }

    fn write_frame(&self, frame: &Tframe) -> Result<(), ClientError> {
        let mut w = lock(&self.shared.writer);
        let (stream, buf) = &mut *w;
        buf.clear();
        frame.encode(buf);
        stream.write_all(buf).map_err(|e| {
            lock(&self.shared.state).closed = true;
            self.shared.replies.notify_all();
            ClientError::Io(e)
        })
    }

    fn wait_reply(&self, tag: u16) -> Result<Rmessage, ClientError> {
        let mut st = lock(&self.shared.state);
        loop {
            match st.slots.get(&tag) {
                Some(Slot::Done(_)) | Some(Slot::Flushed) => {
                    let slot = st.slots.remove(&tag);
                    if tag != NOTAG {
                        st.free_tags.push(tag);
                    }
                    return match slot {
                        Some(Slot::Done(m)) => Ok(m),
                        _ => Err(ClientError::Flushed),
                    };
                }
                Some(Slot::Waiting) | None => {}
            }
            if st.closed {
                st.slots.remove(&tag);
                return Err(ClientError::Closed);
            }
            if st.reader_busy {
                st = self
                    .shared
                    .replies
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Become the reader for one frame.
            st.reader_busy = true;
            drop(st);
            let result = {
                let mut r = lock(&self.shared.reader);
                let (stream, buf) = &mut *r;
                read_frame(stream, self.msize.max(MIN_MSIZE), buf)
                    .map_err(|e| match e {
                        FrameError::Closed => ClientError::Closed,
                        FrameError::Io(e) => ClientError::Io(e),
                        other => ClientError::Frame(other.to_string()),
                    })
                    .and_then(|()| {
                        Rframe::decode(buf).map_err(|e| ClientError::Frame(e.to_string()))
                    })
            };
            st = lock(&self.shared.state);
            st.reader_busy = false;
            match result {
                Ok(frame) => {
                    if let Some(slot) = st.slots.get_mut(&frame.tag) {
                        match slot {
                            Slot::Waiting => *slot = Slot::Done(frame.msg),
                            // A reply that raced its own flush: the caller
                            // was already told it was flushed.
                            Slot::Flushed | Slot::Done(_) => {}
                        }
                    }
                }
                Err(e) => {
                    st.closed = true;
                    self.shared.replies.notify_all();
                    return Err(e);
                }
            }
            self.shared.replies.notify_all();
        }
    }

    // ---- Conveniences that manage fids. ----

    /// Attaches a new fid to the root of `aname`.
    pub fn attach(&self, uname: &str, aname: &str) -> Result<(u32, Qid), ClientError> {
        let fid = self.new_fid();
        match self.call(Tattach {
            fid,
            afid: NOFID,
            uname: uname.into(),
            aname: aname.into(),
            n_uname: 0,
        }) {
            Ok(r) => Ok((fid, r.qid)),
            Err(e) => {
                self.release_fid(fid);
                Err(e)
            }
        }
    }

    /// Walks `fid` through `names` to a new fid. Unlike raw Twalk, a walk
    /// that stops early is an error (ENOENT, or the server's errno).
    pub fn walk<S: AsRef<[u8]>>(
        &self,
        fid: u32,
        names: &[S],
    ) -> Result<(u32, Vec<Qid>), ClientError> {
        if names.len() > MAX_WALK_ELEMENTS {
            return Err(ClientError::WalkTooLong(names.len()));
        }
        let newfid = self.new_fid();
        let wnames = names.iter().map(|n| P9String::from(n.as_ref())).collect();
        match self.call(Twalk {
            fid,
            newfid,
            wnames,
        }) {
            Ok(r) if r.wqids.len() == names.len() => Ok((newfid, r.wqids)),
            Ok(_) => {
                self.release_fid(newfid);
                Err(ClientError::Remote(2))
            }
            Err(e) => {
                self.release_fid(newfid);
                Err(e)
            }
        }
    }

    /// Attributes of the file `names` lead to from `fid`, in one round trip:
    /// Twalk, Tgetattr and Tclunk are sent back to back. This relies on the
    /// server serving a connection's requests in order, as the gofer does
    /// for every request that cannot block.
    pub fn walk_getattr(
        &self,
        fid: u32,
        names: &[&[u8]],
        request_mask: u64,
    ) -> Result<crate::Rgetattr, ClientError> {
        if names.len() > MAX_WALK_ELEMENTS {
            return Err(ClientError::WalkTooLong(names.len()));
        }
        let newfid = self.new_fid();
        let wnames = names.iter().map(|&n| P9String::from(n)).collect();
        let tags = self.send_batch([
            Twalk {
                fid,
                newfid,
                wnames,
            }
            .into(),
            Tgetattr {
                fid: newfid,
                request_mask,
            }
            .into(),
            Tclunk { fid: newfid }.into(),
        ]);
        let [walk_tag, attr_tag, clunk_tag] = match tags {
            Ok(t) => t,
            Err(e) => {
                self.release_fid(newfid);
                return Err(e);
            }
        };
        // Collect every reply that was sent for, whatever failed.
        let walk = self
            .wait_reply(walk_tag)
            .and_then(|r| convert::<Twalk>("Twalk", r));
        let attr = self
            .wait_reply(attr_tag)
            .and_then(|r| convert::<Tgetattr>("Tgetattr", r));
        let clunk = self
            .wait_reply(clunk_tag)
            .and_then(|r| convert::<Tclunk>("Tclunk", r));
        let walked = walk?;
        if walked.wqids.len() != names.len() {
            // newfid was never bound: the other two failed harmlessly.
            self.release_fid(newfid);
            return Err(ClientError::Remote(2));
        }
        if clunk.is_ok() {
            self.release_fid(newfid);
        }
        attr
    }

    /// Walks a slash-separated relative path (any length).
    pub fn walk_path(&self, fid: u32, path: &str) -> Result<u32, ClientError> {
        let names: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut chunks = names.chunks(MAX_WALK_ELEMENTS);
        let first = chunks.next().unwrap_or(&[]);
        let (mut cur, _) = self.walk(fid, first)?;
        for chunk in chunks {
            let next = self.walk(cur, chunk);
            self.clunk(cur)?;
            cur = next?.0;
        }
        Ok(cur)
    }

    /// Clunks `fid` and releases it.
    pub fn clunk(&self, fid: u32) -> Result<(), ClientError> {
        let r = self.call(Tclunk { fid });
        self.release_fid(fid);
        r.map(|_| ())
    }

    /// Removes the file of `fid`; the fid is released either way.
    pub fn remove(&self, fid: u32) -> Result<(), ClientError> {
        let r = self.call(Tremove { fid });
        self.release_fid(fid);
        r.map(|_| ())
    }

    /// Reads up to `count` bytes at `offset` (one Tread).
    pub fn read(&self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>, ClientError> {
        let count = count.min(self.iounit());
        Ok(self.call(Tread { fid, offset, count })?.data.0)
    }

    /// Reads from `offset` to end of file.
    pub fn read_to_end(&self, fid: u32, mut offset: u64) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        loop {
            let chunk = self.read(fid, offset, self.iounit())?;
            if chunk.is_empty() {
                return Ok(out);
            }
            offset += chunk.len() as u64;
            out.extend_from_slice(&chunk);
        }
    }

    /// Writes all of `data` at `offset`, in as many Twrites as needed.
    pub fn write_all(&self, fid: u32, mut offset: u64, data: &[u8]) -> Result<(), ClientError> {
        for chunk in data.chunks(self.iounit() as usize) {
            let mut done = 0;
            while done < chunk.len() {
                let n = self
                    .call(Twrite {
                        fid,
                        offset,
                        data: Data(chunk[done..].to_vec()),
                    })?
                    .count as usize;
                if n == 0 {
                    return Err(ClientError::Remote(5));
                }
                done += n;
                offset += n as u64;
            }
        }
        Ok(())
    }

    /// Reads every entry of the opened directory `fid`.
    pub fn readdir_all(&self, fid: u32) -> Result<Vec<crate::types::Dirent>, ClientError> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let data = self
                .call(Treaddir {
                    fid,
                    offset,
                    count: self.iounit(),
                })?
                .data;
            let entries = crate::types::parse_dirents(&data.0)
                .map_err(|e| ClientError::Frame(e.to_string()))?;
            match entries.last() {
                None => return Ok(out),
                Some(last) => offset = last.offset,
            }
            out.extend(entries);
        }
    }
}
