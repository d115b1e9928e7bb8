//! Shared harness of the gofer's end-to-end tests: a real `gofer serve`
//! process on a fresh directory, and p9proto clients connected to it.
#![allow(dead_code)]

use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use p9proto::{Client, Tlopen};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "rvisor-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `gofer serve --socket` on its own directory.
pub struct Gofer {
    child: Child,
    pub sock: PathBuf,
    /// Holds the socket; the served tree is `root`.
    _work: TempDir,
    pub root: PathBuf,
}

impl Gofer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Self {
        let work = TempDir::new("gofer");
        let root = work.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let sock = work.path().join("gofer.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_gofer"))
            .arg("serve")
            .arg("--root")
            .arg(&root)
            .arg("--socket")
            .arg(&sock)
            .args(extra)
            .spawn()
            .expect("spawning gofer");
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "gofer did not start listening");
            std::thread::sleep(Duration::from_millis(5));
        }
        Self {
            child,
            sock,
            _work: work,
            root,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.sock).expect("connecting to gofer");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    pub fn client(&self) -> Client {
        Client::connect(self.connect(), 1 << 20).expect("9P version negotiation")
    }

    /// Fails the test if the gofer has died (a seccomp kill shows here).
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("gofer exited: {status} (signal {:?})", status.signal());
        }
    }
}

impl Drop for Gofer {
    fn drop(&mut self) {
        let alive = self.child.try_wait().ok().flatten().is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !alive && !std::thread::panicking() {
            panic!("gofer died during the test");
        }
    }
}

/// Attaches and walks to `path`, returning the fid.
pub fn walk(c: &Client, path: &str) -> Result<u32, p9proto::ClientError> {
    let (root, _) = c.attach("root", "")?;
    let r = c.walk_path(root, path);
    c.clunk(root)?;
    r
}

/// Walks to `path` and opens it with `flags`.
pub fn open(c: &Client, path: &str, flags: u32) -> Result<u32, p9proto::ClientError> {
    let fid = walk(c, path)?;
    match c.call(Tlopen { fid, flags }) {
        Ok(_) => Ok(fid),
        Err(e) => {
            c.clunk(fid)?;
            Err(e)
        }
    }
}

/// The errno of a failed call.
pub fn errno<T: std::fmt::Debug>(r: Result<T, p9proto::ClientError>) -> i32 {
    match r {
        Err(p9proto::ClientError::Remote(e)) => e,
        other => panic!("expected an Rlerror, got {other:?}"),
    }
}
