//! The gofer's listening side: connections accepted on a socket or handed
//! in as inherited descriptors, each served on its own thread.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use thiserror::Error;
use tracing::{info, warn};

use crate::connection;
use crate::node::Node;

/// Largest frame the gofer accepts by default: 1 MiB of payload plus framing.
pub const DEFAULT_MAX_MSIZE: u32 = (1 << 20) + p9proto::IOHDRSZ;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("opening root directory {path}: {source}")]
    Root {
        path: String,
        source: nix::errno::Errno,
    },
    #[error("accepting a connection: {0}")]
    Accept(std::io::Error),
}

/// Serves one directory tree to any number of clients.
#[derive(Debug, Clone)]
pub struct Server {
    root: Arc<Node>,
    read_only: bool,
    max_msize: u32,
}

impl Server {
    pub fn new(root: &Path, read_only: bool, max_msize: u32) -> Result<Self, ServerError> {
        let root_node = Node::open_root(root).map_err(|source| ServerError::Root {
            path: root.display().to_string(),
            source,
        })?;
        Ok(Self {
            root: root_node,
            read_only,
            max_msize: max_msize.max(p9proto::MIN_MSIZE),
        })
    }

    fn spawn(&self, stream: UnixStream) -> std::io::Result<std::thread::JoinHandle<()>> {
        let server = self.clone();
        std::thread::Builder::new()
            .name("p9-conn".into())
            .spawn(move || {
                connection::serve(stream, server.root, server.read_only, server.max_msize)
            })
    }

    /// Accepts connections forever.
    pub fn serve_listener(&self, listener: UnixListener) -> Result<(), ServerError> {
        loop {
            let (stream, _) = listener.accept().map_err(ServerError::Accept)?;
            info!("client connected");
            if let Err(e) = self.spawn(stream) {
                warn!("connection dropped, no thread: {e}");
            }
        }
    }

    /// Serves already-connected streams; returns when all have closed.
    pub fn serve_streams(&self, streams: Vec<UnixStream>) {
        let handles: Vec<_> = streams
            .into_iter()
            .filter_map(|s| {
                self.spawn(s)
                    .map_err(|e| warn!("connection dropped: {e}"))
                    .ok()
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
    }
}
