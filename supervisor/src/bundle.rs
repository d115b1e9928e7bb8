//! The bundle: config.json read, checked and reduced to what the sandbox
//! needs. Everything here is pure (no host side effect beyond reading the
//! config), so a bad bundle is refused before anything is built.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BundleError {
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
    #[error("config.json: {field}: {why}")]
    Field { field: String, why: String },
}

fn field(field: impl Into<String>, why: impl Into<String>) -> BundleError {
    BundleError::Field {
        field: field.into(),
        why: why.into(),
    }
}

/// Namespace types the OCI runtime spec defines.
pub const NAMESPACE_TYPES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

/// A checked bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute root filesystem directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Reads `<dir>/config.json` and checks it.
pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
    let dir = std::path::absolute(dir).map_err(|source| BundleError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|source| BundleError::Read {
        path: path.clone(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&text).map_err(|source| BundleError::NotJson {
        path: path.clone(),
        source,
    })?;
    check_value(&value)?;
    let spec: Spec =
        serde_json::from_value(value).map_err(|e| field("(document)", e.to_string()))?;
    let rootfs = check_spec(&dir, &spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Checks made on the raw JSON, where the failing field can be named.
fn check_value(v: &Value) -> Result<(), BundleError> {
    if !v.is_object() {
        return Err(field("(document)", "must be a JSON object"));
    }
    let process = v
        .get("process")
        .ok_or_else(|| field("process", "missing"))?;
    match process.get("args") {
        None | Some(Value::Null) => return Err(field("process.args", "missing")),
        Some(Value::Array(a)) if a.is_empty() => return Err(field("process.args", "empty")),
        Some(Value::Array(a)) => {
            if let Some(i) = a.iter().position(|x| !x.is_string()) {
                return Err(field(format!("process.args[{i}]"), "must be a string"));
            }
        }
        Some(_) => return Err(field("process.args", "must be an array of strings")),
    }
    if let Some(ns) = v.pointer("/linux/namespaces") {
        let list = ns
            .as_array()
            .ok_or_else(|| field("linux.namespaces", "must be an array"))?;
        for (i, entry) in list.iter().enumerate() {
            let name = format!("linux.namespaces[{i}].type");
            let ty = entry
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| field(&name, "missing"))?;
            if !NAMESPACE_TYPES.contains(&ty) {
                return Err(field(name, format!("unknown namespace type {ty:?}")));
            }
        }
    }
    let root = v.get("root").ok_or_else(|| field("root", "missing"))?;
    if !root.get("path").is_some_and(Value::is_string) {
        return Err(field("root.path", "missing"));
    }
    Ok(())
}

/// Checks on the typed spec; returns the absolute rootfs.
fn check_spec(dir: &Path, spec: &Spec) -> Result<PathBuf, BundleError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| field("root", "missing"))?;
    let rootfs = resolve_in_bundle(dir, root.path()).map_err(|why| field("root.path", why))?;
    if !rootfs.is_dir() {
        return Err(field(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| field("process", "missing"))?;
    if !process.cwd().is_absolute() {
        return Err(field("process.cwd", "must be an absolute path"));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(field(
                format!("mounts[{i}].destination"),
                format!("{} is not absolute", m.destination().display()),
            ));
        }
        if let (true, Some(source)) = (is_bind(m), m.source()) {
            resolve_in_bundle(dir, source)
                .map_err(|why| field(format!("mounts[{i}].source"), why))?;
        }
    }
    Ok(rootfs)
}

/// An absolute path stays as is; a relative one is taken from the bundle and
/// must not climb out of it.
pub fn resolve_in_bundle(dir: &Path, path: &Path) -> Result<PathBuf, String> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("{} escapes the bundle", path.display()))?;
            }
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(dir.join(path))
}

/// A bundle for `do`: the host's `/` as the (read-only) root, running
/// `args` with this process's environment and working directory.
pub fn host_root(args: &[String], volumes: &[String]) -> Result<Bundle, BundleError> {
    let cwd = std::env::current_dir().map_err(|source| BundleError::Read {
        path: PathBuf::from("."),
        source,
    })?;
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let mut mounts = Vec::new();
    for v in volumes {
        let (host, guest, read_only) = parse_volume(v)?;
        let mut options = vec!["rbind"];
        if read_only {
            options.push("ro");
        }
        mounts.push(serde_json::json!({
            "destination": guest, "type": "bind", "source": host, "options": options
        }));
    }
    let value = serde_json::json!({
        "mounts": mounts,
        "ociVersion": "1.0.2",
        "process": {"args": args, "env": env, "cwd": cwd, "user": {"uid": 0, "gid": 0}},
        // Writable: the host's / is served read-only and the sandbox's
        // writes stay in the sentry's in-memory overlay.
        "root": {"path": "/", "readonly": false},
        "linux": {"namespaces": [
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
        ]}
    });
    check_value(&value)?;
    let spec: Spec =
        serde_json::from_value(value).map_err(|e| field("(document)", e.to_string()))?;
    let rootfs = check_spec(&cwd, &spec)?;
    Ok(Bundle {
        dir: cwd,
        rootfs,
        spec,
    })
}

/// What the sandbox's namespaces should be, from the spec and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkPlan {
    /// Stay in the runtime's network namespace.
    Host,
    /// A fresh namespace (loopback only).
    New,
    /// Join the namespace at this path.
    Join(PathBuf),
}

pub fn network_plan(spec: &Spec, cli: Option<crate::cli::Network>) -> NetworkPlan {
    match cli {
        Some(crate::cli::Network::Host) => return NetworkPlan::Host,
        Some(crate::cli::Network::None) => return NetworkPlan::New,
        None => {}
    }
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|list| list.iter().find(|n| n.typ() == LinuxNamespaceType::Network));
    match ns {
        None => NetworkPlan::Host,
        Some(n) => match n.path() {
            Some(p) => NetworkPlan::Join(p.clone()),
            None => NetworkPlan::New,
        },
    }
}

/// The boot message's view of the process.
pub fn boot_process(spec: &Spec) -> ipc::Process {
    let p = spec.process().as_ref().expect("checked by load");
    let user = p.user();
    ipc::Process {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().to_string_lossy().into_owned(),
        user: ipc::User {
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
        },
        rlimits: p
            .rlimits()
            .iter()
            .flatten()
            .filter_map(|r| {
                Some(ipc::Rlimit {
                    resource: rlimit_number(&r.typ().to_string())?,
                    soft: r.soft(),
                    hard: r.hard(),
                })
            })
            .collect(),
        terminal: p.terminal().unwrap_or(false),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
    }
}

fn rlimit_number(name: &str) -> Option<u32> {
    let n = match name.to_ascii_uppercase().trim_start_matches("RLIMIT_") {
        "CPU" => libc::RLIMIT_CPU,
        "FSIZE" => libc::RLIMIT_FSIZE,
        "DATA" => libc::RLIMIT_DATA,
        "STACK" => libc::RLIMIT_STACK,
        "CORE" => libc::RLIMIT_CORE,
        "RSS" => libc::RLIMIT_RSS,
        "NPROC" => libc::RLIMIT_NPROC,
        "NOFILE" => libc::RLIMIT_NOFILE,
        "MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "AS" => libc::RLIMIT_AS,
        "LOCKS" => libc::RLIMIT_LOCKS,
        "SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "NICE" => libc::RLIMIT_NICE,
        "RTPRIO" => libc::RLIMIT_RTPRIO,
        "RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    };
    Some(n)
}

/// A directory bind mount of the spec, served by a gofer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// The spec's bind mounts of directories, in order. Binds of single files
/// (docker's /etc/hosts and friends) are not served yet and are skipped, as
/// are the kernel filesystems (proc, sysfs, tmpfs, ...) the sentry will
/// provide itself.
pub fn volumes(dir: &Path, spec: &Spec) -> Vec<Volume> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| is_bind(m))
        .filter_map(|m| {
            let source = resolve_in_bundle(dir, m.source().as_ref()?).ok()?;
            if !source.is_dir() {
                tracing::info!(source = %source.display(), "file bind mount not served yet: skipped");
                return None;
            }
            Some(Volume {
                source,
                destination: m.destination().to_string_lossy().into_owned(),
                read_only: m.options().iter().flatten().any(|o| o == "ro"),
            })
        })
        .collect()
}

/// Parses `do --volume HOST:GUEST[:ro|:rw]`.
pub fn parse_volume(arg: &str) -> Result<(PathBuf, String, bool), BundleError> {
    let bad = |why: &str| field("--volume", format!("{arg}: {why}"));
    let parts: Vec<&str> = arg.split(':').collect();
    let (host, guest, read_only) = match parts.as_slice() {
        [h, g] => (*h, *g, false),
        [h, g, "ro"] => (*h, *g, true),
        [h, g, "rw"] => (*h, *g, false),
        _ => return Err(bad("expected HOST:GUEST[:ro|:rw]")),
    };
    if !host.starts_with('/') || !guest.starts_with('/') {
        return Err(bad("both paths must be absolute"));
    }
    if !Path::new(host).is_dir() {
        return Err(bad("the host path is not a directory"));
    }
    Ok((PathBuf::from(host), guest.to_string(), read_only))
}

/// Whether the spec asks for a writable root.
pub fn root_read_only(spec: &Spec) -> bool {
    spec.root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volume_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().to_str().unwrap();
        assert_eq!(
            parse_volume(&format!("{host}:/data")).unwrap(),
            (dir.path().to_path_buf(), "/data".to_string(), false)
        );
        assert!(parse_volume(&format!("{host}:/data:ro")).unwrap().2);
        assert!(!parse_volume(&format!("{host}:/data:rw")).unwrap().2);
        for bad in [
            "relative:/x",
            "/x",
            &format!("{host}:data"),
            &format!("{host}:/d:rx"),
            "/nonexistent-dir:/d",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    fn bundle_with(config: &Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        dir
    }

    fn good() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}
        })
    }

    fn error_of(config: &Value) -> String {
        let dir = bundle_with(config);
        load(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn good_bundle_loads() {
        let dir = bundle_with(&good());
        let b = load(dir.path()).unwrap();
        assert_eq!(b.rootfs, dir.path().join("rootfs"));
        assert_eq!(network_plan(&b.spec, None), NetworkPlan::New);
        assert_eq!(
            network_plan(&b.spec, Some(crate::cli::Network::Host)),
            NetworkPlan::Host
        );
        assert_eq!(boot_process(&b.spec).args, vec!["/bin/sh"]);
    }

    #[test]
    fn missing_args_names_the_field() {
        let mut c = good();
        c["process"].as_object_mut().unwrap().remove("args");
        assert!(error_of(&c).contains("process.args"), "{}", error_of(&c));
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let mut c = good();
        c["linux"]["namespaces"][1]["type"] = json!("bogus");
        let e = error_of(&c);
        assert!(
            e.contains("linux.namespaces[1].type") && e.contains("bogus"),
            "{e}"
        );
    }

    #[test]
    fn escaping_root_names_the_field() {
        let mut c = good();
        c["root"]["path"] = json!("../../etc");
        let e = error_of(&c);
        assert!(
            e.contains("root.path") && e.contains("escapes the bundle"),
            "{e}"
        );
    }

    #[test]
    fn not_json_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("No such file"),
            "{e}"
        );
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn resolve_rules() {
        let b = Path::new("/b");
        assert_eq!(
            resolve_in_bundle(b, Path::new("a/../r")).unwrap(),
            PathBuf::from("/b/a/../r")
        );
        assert!(resolve_in_bundle(b, Path::new("a/../../r")).is_err());
        assert_eq!(
            resolve_in_bundle(b, Path::new("/abs")).unwrap(),
            PathBuf::from("/abs")
        );
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(rlimit_number("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_number("nproc"), Some(libc::RLIMIT_NPROC));
    }
}
