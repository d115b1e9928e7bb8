//! `install` / `uninstall`: this runtime's entry in docker's daemon.json,
//! `{"runtimes": {NAME: {"path": ..., "runtimeArgs": [...]}}}`, every other
//! key kept. The file is replaced atomically (temp file + rename).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {what} must be a JSON object")]
    NotObject { path: PathBuf, what: &'static str },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The document in `path`; a missing or empty file is `{}`.
fn load(path: &Path) -> Result<Map<String, Value>, InstallError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(InstallError::Read {
                path: path.into(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(InstallError::NotObject {
            path: path.into(),
            what: "the document",
        }),
        Err(source) => Err(InstallError::NotJson {
            path: path.into(),
            source,
        }),
    }
}

fn save(path: &Path, doc: &Map<String, Value>) -> Result<(), InstallError> {
    let io = |source| InstallError::Write {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".rvisor-tmp");
    let tmp = path.with_file_name(name);
    let text = serde_json::to_string_pretty(doc).expect("a JSON map serializes") + "\n";
    std::fs::write(&tmp, text).map_err(io)?;
    // Keep the original file's mode (daemon.json is often 0600).
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions()).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Adds or replaces `runtimes.<name>`.
pub fn install(
    config: &Path,
    name: &str,
    runtime: &Path,
    runtime_args: &[String],
) -> Result<(), InstallError> {
    let mut doc = load(config)?;
    let runtimes = doc
        .entry("runtimes")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or(InstallError::NotObject {
            path: config.into(),
            what: "\"runtimes\"",
        })?;
    let mut entry = Map::new();
    entry.insert("path".into(), runtime.to_string_lossy().into_owned().into());
    if !runtime_args.is_empty() {
        entry.insert("runtimeArgs".into(), runtime_args.to_vec().into());
    }
    runtimes.insert(name.into(), Value::Object(entry));
    save(config, &doc)
}

/// Removes `runtimes.<name>` (and `runtimes` when that empties it). A
/// missing file or entry is not an error: there is nothing to remove.
pub fn uninstall(config: &Path, name: &str) -> Result<(), InstallError> {
    if !config.exists() {
        return Ok(());
    }
    let mut doc = load(config)?;
    let Some(runtimes) = doc.get_mut("runtimes") else {
        return Ok(());
    };
    let runtimes = runtimes.as_object_mut().ok_or(InstallError::NotObject {
        path: config.into(),
        what: "\"runtimes\"",
    })?;
    if runtimes.remove(name).is_none() {
        return Ok(());
    }
    if runtimes.is_empty() {
        doc.remove("runtimes");
    }
    save(config, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(p: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn install_keeps_other_keys_and_updates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("daemon.json");
        let before = json!({
            "iptables": false,
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "runtimes": {"runsc": {"path": "/usr/bin/runsc"}},
            "log-opts": {"max-size": "10m"}
        });
        std::fs::write(&cfg, before.to_string()).unwrap();
        install(&cfg, "rvisor", Path::new("/opt/rv/supervisor"), &[]).unwrap();
        let mut want = before.clone();
        want["runtimes"]["rvisor"] = json!({"path": "/opt/rv/supervisor"});
        assert_eq!(read(&cfg), want);

        let args = vec!["--debug".to_string(), "--strace".to_string()];
        install(&cfg, "rvisor", Path::new("/opt/rv/supervisor"), &args).unwrap();
        want["runtimes"]["rvisor"]["runtimeArgs"] = json!(["--debug", "--strace"]);
        assert_eq!(read(&cfg), want);

        uninstall(&cfg, "rvisor").unwrap();
        assert_eq!(read(&cfg), before);
        uninstall(&cfg, "runsc").unwrap();
        let mut rest = before.clone();
        rest.as_object_mut().unwrap().remove("runtimes");
        assert_eq!(read(&cfg), rest);
        // Nothing left to remove: still fine.
        uninstall(&cfg, "rvisor").unwrap();
        assert_eq!(read(&cfg), rest);
    }

    #[test]
    fn install_creates_a_missing_or_empty_file_keeping_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("etc/docker/daemon.json");
        install(&cfg, "rv", Path::new("/s"), &[]).unwrap();
        assert_eq!(read(&cfg), json!({"runtimes": {"rv": {"path": "/s"}}}));

        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, "\n").unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
        install(&empty, "rv", Path::new("/s"), &[]).unwrap();
        assert_eq!(read(&empty)["runtimes"]["rv"]["path"], "/s");
        let mode = std::fs::metadata(&empty).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        uninstall(&dir.path().join("missing.json"), "rv").unwrap();
        assert!(!dir.path().join("missing.json").exists());
    }

    #[test]
    fn bad_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("{not json", "not valid JSON"),
            ("[1]", "document must be a JSON object"),
            (r#"{"runtimes": 3}"#, "\"runtimes\" must be a JSON object"),
        ] {
            let cfg = dir.path().join("daemon.json");
            std::fs::write(&cfg, text).unwrap();
            let err = install(&cfg, "rv", Path::new("/s"), &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle) && err.contains("daemon.json"), "{err}");
            assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);
        }
    }
}
