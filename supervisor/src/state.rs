//! The state directory: `<root>/<id>/` holds `state.json` and the sentry's
//! control socket. Written only once the sandbox is built, so a failed
//! `create` leaves no directory behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const STATE_FILE: &str = "state.json";
pub const CONTROL_SOCKET: &str = "control.sock";

#[derive(Debug, Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '-', '.'")]
    BadId(String),
    #[error("state of container {id}: {source}")]
    Io { id: String, source: std::io::Error },
    #[error("state of container {id} is corrupt: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
}

/// What the runtime remembers about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// The sentry: the container's init process as the host sees it.
    pub pid: i32,
    /// Start time of `pid` (/proc/PID/stat field 22), against pid reuse.
    pub pid_start: u64,
    pub gofer_pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub annotations: HashMap<String, String>,
    /// `start` succeeded.
    pub started: bool,
    /// The cgroup holding the sentry and the gofer, if any.
    #[serde(default)]
    pub cgroup: Option<crate::cgroup::Cgroup>,
}

/// `<root>/<id>`, after checking the id cannot name anything else.
pub fn dir(root: &Path, id: &str) -> Result<PathBuf, StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.+".contains(&b));
    if !ok {
        return Err(StateError::BadId(id.to_string()));
    }
    Ok(root.join(id))
}

pub fn control_socket(root: &Path, id: &str) -> Result<PathBuf, StateError> {
    Ok(dir(root, id)?.join(CONTROL_SOCKET))
}

/// A Unix socket path (for bind or connect) that fits in `sun_path` (108
/// bytes) however deep the state directory is: docker's --root plus a
/// 64-character id does not. A long path is reached through
/// `/proc/self/fd/<dir fd>/<name>`; the returned guard holds that
/// directory open and must outlive the bind or connect.
#[derive(Debug)]
pub struct SocketPath {
    pub path: PathBuf,
    _dir: Option<std::fs::File>,
}

/// Room in `sun_path`, less its terminating NUL.
const SUN_PATH_MAX: usize = 107;

pub fn socket_path(path: &Path) -> std::io::Result<SocketPath> {
    use std::os::fd::AsRawFd;
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return Ok(SocketPath {
            path: path.to_path_buf(),
            _dir: None,
        });
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    let dir = std::fs::File::open(parent)?;
    Ok(SocketPath {
        path: Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name),
        _dir: Some(dir),
    })
}

pub fn load(root: &Path, id: &str) -> Result<ContainerState, StateError> {
    let path = dir(root, id)?.join(STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotFound(id.to_string()))
        }
        Err(source) => {
            return Err(StateError::Io {
                id: id.to_string(),
                source,
            })
        }
    };
    serde_json::from_slice(&text).map_err(|source| StateError::Corrupt {
        id: id.to_string(),
        source,
    })
}

/// Writes state.json atomically (temp file + rename).
pub fn save(root: &Path, state: &ContainerState) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        id: state.id.clone(),
        source,
    };
    let dir = dir(root, &state.id)?;
    let tmp = dir.join(".state.json.tmp");
    let text = serde_json::to_vec_pretty(state).expect("state serializes");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, dir.join(STATE_FILE)).map_err(io)
}

/// Every container id under `root`, sorted.
pub fn list(root: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut ids = Vec::new();
    match std::fs::read_dir(root) {
        Ok(entries) => {
            for e in entries {
                let e = e?;
                if e.path().join(STATE_FILE).exists() {
                    ids.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    ids.sort();
    Ok(ids)
}

/// RFC 3339 time of now, with nanoseconds (what runc prints).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_root() {
        let root = Path::new("/run/rvisor");
        assert!(dir(root, "abc-1.2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(dir(root, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn long_socket_paths_are_reached_through_the_directory_fd() {
        let base = tempfile::tempdir().unwrap();
        let deep = base.path().join("x".repeat(60)).join("y".repeat(64));
        std::fs::create_dir_all(&deep).unwrap();
        let full = deep.join(CONTROL_SOCKET);
        assert!(full.as_os_str().len() > SUN_PATH_MAX);
        let bind = socket_path(&full).unwrap();
        assert!(bind.path.starts_with("/proc/self/fd/"));
        let listener = std::os::unix::net::UnixListener::bind(&bind.path).unwrap();
        assert!(full.exists());
        let connect = socket_path(&full).unwrap();
        std::os::unix::net::UnixStream::connect(&connect.path).unwrap();
        drop(listener);
        let short = socket_path(Path::new("/run/rvisor/c/control.sock")).unwrap();
        assert_eq!(short.path, Path::new("/run/rvisor/c/control.sock"));
    }

    #[test]
    fn save_load_list() {
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(root.path(), "c"),
            Err(StateError::NotFound(_))
        ));
        std::fs::create_dir(root.path().join("c")).unwrap();
        let s = ContainerState {
            id: "c".into(),
            pid: 42,
            pid_start: 7,
            gofer_pid: 43,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            annotations: HashMap::new(),
            started: false,
            cgroup: None,
        };
        save(root.path(), &s).unwrap();
        let back = load(root.path(), "c").unwrap();
        assert_eq!(back.pid, 42);
        assert_eq!(list(root.path()).unwrap(), vec!["c".to_string()]);
        assert!(back.created.ends_with('Z') && back.created.contains('T'));
    }
}
