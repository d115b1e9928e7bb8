//! cgroups: the sandbox's processes (sentry and gofer) live in the spec's
//! `linux.cgroupsPath`, with its memory, cpu and pids limits, so clients
//! read stats and OOM kills from the same place as for runc. cgroup v2 when
//! /sys/fs/cgroup is cgroup2, v1 controllers under /sys/fs/cgroup/<ctl>
//! otherwise. The policy (which file gets which value) is pure; every read
//! and write goes through [`CgroupFs`], so tests replace the filesystem.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// Where cgroup hierarchies are mounted on Linux.
pub const MOUNT: &str = "/sys/fs/cgroup";

/// v1 controllers a sandbox joins (those mounted); cpuset and devices are
/// left alone (the sentry needs /dev/kvm whatever the spec's device rules).
const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids", "freezer", "blkio"];
/// v2 controllers enabled for the sandbox's cgroup.
const V2_CONTROLLERS: &[&str] = &["memory", "cpu", "pids"];

#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("invalid cgroupsPath {path:?}: {why}")]
    BadPath { path: String, why: &'static str },
    #[error("creating cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("adding pid {pid} to cgroup {path}: {source}")]
    Join {
        pid: i32,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("freezer of cgroup {path} did not reach {want} (it is {got:?})")]
    Freeze {
        path: PathBuf,
        want: &'static str,
        got: String,
    },
    #[error("removing cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The filesystem under the cgroup mount, as the policy sees it.
pub trait CgroupFs {
    fn read(&self, path: &Path) -> std::io::Result<String>;
    fn write(&self, path: &Path, value: &str) -> std::io::Result<()>;
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()>;
    fn remove_dir(&self, path: &Path) -> std::io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// Which cgroup version is mounted at `mount`.
    fn version(&self, mount: &Path) -> Version;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxCgroupFs;

impl CgroupFs for LinuxCgroupFs {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn write(&self, path: &Path, value: &str) -> std::io::Result<()> {
        // cgroup files take one write(2) each; no create, no truncate.
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(value.as_bytes())
    }
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn version(&self, mount: &Path) -> Version {
        match nix::sys::statfs::statfs(mount) {
            Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => Version::V2,
            _ => Version::V1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

/// A sandbox's cgroup: kept in state.json, so later commands (even a
/// `delete --force` without --systemd-cgroup) find the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub version: Version,
    /// The cgroup mount (/sys/fs/cgroup).
    pub mount: PathBuf,
    /// Relative to each hierarchy's root, e.g. `docker/<id>`.
    pub path: PathBuf,
}

/// The resources that map onto the sandbox; the rest of `LinuxResources`
/// is accepted and ignored. `None` leaves a value as it is, like runc
/// (which also reads 0 as "unset" for these, as docker sends zeros).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes; -1 is unlimited.
    pub memory_limit: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, bytes; -1 is unlimited.
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// Microseconds per period; -1 is unlimited.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// -1 is unlimited.
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// Reads an OCI `LinuxResources` object, leniently: fields of the wrong
    /// type or that do not map are ignored.
    pub fn from_json(v: &Value) -> Self {
        let int = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_i64().or_else(|| x.as_u64().map(|u| u as i64)))
                .filter(|&n| n != 0)
        };
        Self {
            memory_limit: int("/memory/limit"),
            memory_reservation: int("/memory/reservation"),
            memory_swap: int("/memory/swap"),
            cpu_shares: int("/cpu/shares").and_then(|n| u64::try_from(n).ok()),
            cpu_quota: int("/cpu/quota"),
            cpu_period: int("/cpu/period").and_then(|n| u64::try_from(n).ok()),
            pids_limit: int("/pids/limit"),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Fields set in `other` replace ours.
    pub fn merge(&mut self, other: &Resources) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            memory_limit,
            memory_reservation,
            memory_swap,
            cpu_shares,
            cpu_quota,
            cpu_period,
            pids_limit
        );
    }
}

/// The relative cgroup path for a spec's `cgroupsPath`. Absolute paths are
/// taken from the hierarchy's root, relative ones too; the systemd form
/// `slice:prefix:name` (always with --systemd-cgroup, or whenever the path
/// is not absolute and has two colons) maps to the path systemd would use,
/// `<slice path>/<prefix>-<name>.scope`. An empty path gives `None`.
pub fn resolve_path(spec_path: &str, systemd: bool) -> Result<Option<PathBuf>, CgroupError> {
    let bad = |why| CgroupError::BadPath {
        path: spec_path.to_string(),
        why,
    };
    if spec_path.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = spec_path.split(':').collect();
    let path = if !spec_path.starts_with('/') && (systemd || parts.len() == 3) {
        let [slice, prefix, name] = parts[..] else {
            return Err(bad("systemd form is slice:prefix:name"));
        };
        if name.is_empty() {
            return Err(bad("systemd form needs a name"));
        }
        let mut p = systemd_slice(if slice.is_empty() {
            "system.slice"
        } else {
            slice
        })
        .ok_or_else(|| bad("slice must end in .slice"))?;
        p.push(if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        });
        p
    } else {
        PathBuf::from(spec_path.trim_start_matches('/'))
    };
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::CurDir => {}
            _ => return Err(bad("must not contain '..'")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(bad("names the root cgroup"));
    }
    Ok(Some(clean))
}

/// systemd's slice nesting: `a-b.slice` lives in `a.slice/a-b.slice`.
fn systemd_slice(slice: &str) -> Option<PathBuf> {
    let stem = slice.strip_suffix(".slice")?;
    if stem == "-" {
        return Some(PathBuf::new());
    }
    let mut p = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return None;
        }
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        p.push(format!("{prefix}.slice"));
    }
    Some(p)
}

/// One cgroup file write the policy wants.
type Write = (PathBuf, String);

impl Cgroup {
    pub fn new(fs: &dyn CgroupFs, path: PathBuf) -> Self {
        let mount = PathBuf::from(MOUNT);
        Self {
            version: fs.version(&mount),
            mount,
            path,
        }
    }

    /// The cgroup's directory in `controller`'s hierarchy.
    pub fn dir(&self, controller: &str) -> PathBuf {
        match self.version {
            Version::V1 => self.mount.join(controller).join(&self.path),
            Version::V2 => self.mount.join(&self.path),
        }
    }

    /// One directory per hierarchy the sandbox joins.
    fn dirs(&self, fs: &dyn CgroupFs) -> Vec<PathBuf> {
        match self.version {
            Version::V1 => {
                let mut dirs: Vec<PathBuf> = V1_CONTROLLERS
                    .iter()
                    .filter(|c| fs.exists(&self.mount.join(c)))
                    .map(|c| self.dir(c))
                    .collect();
                // cpu and cpuacct are often one hierarchy under two names.
                dirs.dedup();
                dirs
            }
            Version::V2 => vec![self.dir("")],
        }
    }

    /// Creates the cgroup (v2: enabling our controllers on the way down).
    pub fn create(&self, fs: &dyn CgroupFs) -> Result<(), CgroupError> {
        if self.version == Version::V2 {
            let mut dir = self.mount.clone();
            for c in self.path.components() {
                // One controller per write (a write naming one the parent
                // lacks fails whole); best effort: a missing controller is
                // reported when its limit is written.
                for ctl in V2_CONTROLLERS {
                    let _ = fs.write(&dir.join("cgroup.subtree_control"), &format!("+{ctl}"));
                }
                dir.push(c);
                if !fs.exists(&dir) {
                    fs.create_dir_all(&dir)
                        .map_err(|source| CgroupError::Create {
                            path: dir.clone(),
                            source,
                        })?;
                }
            }
            return Ok(());
        }
        for dir in self.dirs(fs) {
            fs.create_dir_all(&dir)
                .map_err(|source| CgroupError::Create { path: dir, source })?;
        }
        Ok(())
    }

    /// Moves `pid` (all its threads) into the cgroup.
    pub fn add(&self, fs: &dyn CgroupFs, pid: i32) -> Result<(), CgroupError> {
        for dir in self.dirs(fs) {
            let path = dir.join("cgroup.procs");
            fs.write(&path, &pid.to_string())
                .map_err(|source| CgroupError::Join { pid, path, source })?;
        }
        Ok(())
    }

    /// The writes that apply `r`, in order.
    pub fn writes(&self, r: &Resources) -> Vec<Write> {
        let mut w: Vec<Write> = Vec::new();
        let mut put =
            |ctl: &str, file: &str, value: String| w.push((self.dir(ctl).join(file), value));
        match self.version {
            Version::V1 => {
                let v1 = |n: i64| {
                    if n < 0 {
                        "-1".to_string()
                    } else {
                        n.to_string()
                    }
                };
                if let Some(n) = r.memory_limit {
                    put("memory", "memory.limit_in_bytes", v1(n));
                }
                if let Some(n) = r.memory_swap {
                    put("memory", "memory.memsw.limit_in_bytes", v1(n));
                }
                if let Some(n) = r.memory_reservation {
                    put("memory", "memory.soft_limit_in_bytes", v1(n));
                }
                if let Some(n) = r.cpu_shares {
                    put("cpu", "cpu.shares", n.to_string());
                }
                if let Some(n) = r.cpu_period {
                    put("cpu", "cpu.cfs_period_us", n.to_string());
                }
                if let Some(n) = r.cpu_quota {
                    put("cpu", "cpu.cfs_quota_us", v1(n));
                }
                if let Some(n) = r.pids_limit {
                    put("pids", "pids.max", v2_max(n));
                }
            }
            Version::V2 => {
                if let Some(n) = r.memory_limit {
                    put("", "memory.max", v2_max(n));
                }
                if let Some(swap) = r.memory_swap {
                    // v2 counts swap alone: OCI's swap is memory + swap.
                    let value = match (swap, r.memory_limit) {
                        (s, _) if s < 0 => "max".to_string(),
                        (s, Some(l)) if l > 0 => s.saturating_sub(l).max(0).to_string(),
                        (s, _) => s.to_string(),
                    };
                    put("", "memory.swap.max", value);
                }
                if let Some(n) = r.memory_reservation {
                    put("", "memory.low", v2_max(n));
                }
                if let Some(shares) = r.cpu_shares {
                    put("", "cpu.weight", cpu_weight(shares).to_string());
                }
                if r.cpu_quota.is_some() || r.cpu_period.is_some() {
                    let quota = match r.cpu_quota {
                        Some(q) if q > 0 => q.to_string(),
                        _ => "max".to_string(),
                    };
                    put(
                        "",
                        "cpu.max",
                        format!("{quota} {}", r.cpu_period.unwrap_or(100_000)),
                    );
                }
                if let Some(n) = r.pids_limit {
                    put("", "pids.max", v2_max(n));
                }
            }
        }
        w
    }

    /// Applies `r`. A file the host does not have (no swap accounting)
    /// is skipped for swap and an error otherwise.
    pub fn apply(&self, fs: &dyn CgroupFs, r: &Resources) -> Result<(), CgroupError> {
        let writes = self.writes(r);
        let first = apply_all(fs, &writes);
        if first.is_ok() {
            return first;
        }
        // v1 refuses a memory limit above memsw (or memsw below the limit)
        // depending on the current values: the other order then works.
        let mut reordered = writes.clone();
        if let (Some(a), Some(b)) = (
            reordered
                .iter()
                .position(|(p, _)| p.ends_with("memory.limit_in_bytes")),
            reordered
                .iter()
                .position(|(p, _)| p.ends_with("memory.memsw.limit_in_bytes")),
        ) {
            reordered.swap(a, b);
            return apply_all(fs, &reordered);
        }
        first
    }

    /// Freezes (pause) or thaws (resume) every process of the cgroup and
    /// waits until the freezer says so.
    pub fn freeze(&self, fs: &dyn CgroupFs, frozen: bool) -> Result<(), CgroupError> {
        let (file, value, want) = match (self.version, frozen) {
            (Version::V1, true) => ("freezer.state", "FROZEN", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED", "THAWED"),
            (Version::V2, true) => ("cgroup.freeze", "1", "frozen"),
            (Version::V2, false) => ("cgroup.freeze", "0", "thawed"),
        };
        let path = self.dir("freezer").join(file);
        fs.write(&path, value)
            .map_err(|source| CgroupError::Write {
                path: path.clone(),
                value: value.into(),
                source,
            })?;
        let mut got = String::new();
        for _ in 0..500 {
            if self.frozen(fs) == Some(frozen) {
                return Ok(());
            }
            got = fs.read(&path).unwrap_or_default().trim().to_string();
            // v1 can stall in FREEZING; writing again retries.
            if self.version == Version::V1 && got == "FREEZING" {
                let _ = fs.write(&path, value);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(CgroupError::Freeze { path, want, got })
    }

    /// Whether the freezer holds the cgroup frozen (`None`: no freezer).
    pub fn frozen(&self, fs: &dyn CgroupFs) -> Option<bool> {
        match self.version {
            Version::V1 => {
                let s = fs.read(&self.dir("freezer").join("freezer.state")).ok()?;
                Some(s.trim() == "FROZEN")
            }
            Version::V2 => {
                let events = fs.read(&self.dir("").join("cgroup.events")).ok()?;
                Some(keyed(&events, "frozen") == Some(1))
            }
        }
    }

    /// Host pids in the cgroup.
    pub fn pids(&self, fs: &dyn CgroupFs) -> Vec<i32> {
        let dir = match self.version {
            Version::V1 => self.dir("pids"),
            Version::V2 => self.dir(""),
        };
        fs.read(&dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// OOM kills so far (v2 memory.events, v1 memory.oom_control).
    pub fn oom_kills(&self, fs: &dyn CgroupFs) -> u64 {
        let (file, key) = match self.version {
            Version::V1 => ("memory.oom_control", "oom_kill"),
            Version::V2 => ("memory.events", "oom_kill"),
        };
        fs.read(&self.dir("memory").join(file))
            .ok()
            .and_then(|t| keyed(&t, key))
            .unwrap_or(0)
    }

    /// Memory, cpu and pids figures in runc's `events` stats layout.
    pub fn stats(&self, fs: &dyn CgroupFs) -> Value {
        let num = |ctl: &str, file: &str| -> u64 {
            fs.read(&self.dir(ctl).join(file))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0)
        };
        let raw = |ctl: &str, file: &str| -> BTreeMap<String, u64> {
            fs.read(&self.dir(ctl).join(file))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_string(), v.trim().parse().ok()?))
                })
                .collect()
        };
        let (memory, cpu) = match self.version {
            Version::V1 => {
                let percpu: Vec<u64> = fs
                    .read(&self.dir("cpuacct").join("cpuacct.usage_percpu"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                let ticks = raw("cpuacct", "cpuacct.stat");
                // SAFETY: sysconf has no memory-safety preconditions.
                let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * (1_000_000_000 / hz);
                (
                    serde_json::json!({
                        "usage": {
                            "usage": num("memory", "memory.usage_in_bytes"),
                            "limit": num("memory", "memory.limit_in_bytes"),
                            "max": num("memory", "memory.max_usage_in_bytes"),
                            "failcnt": num("memory", "memory.failcnt"),
                        },
                        "raw": raw("memory", "memory.stat"),
                    }),
                    serde_json::json!({
                        "usage": {
                            "total": num("cpuacct", "cpuacct.usage"),
                            "percpu": percpu,
                            "kernel": ns("system"),
                            "user": ns("user"),
                        },
                        "throttling": throttling(&raw("cpu", "cpu.stat")),
                    }),
                )
            }
            Version::V2 => {
                let stat = raw("", "cpu.stat");
                let us = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
                (
                    serde_json::json!({
                        "usage": {
                            "usage": num("", "memory.current"),
                            "limit": num("", "memory.max"),
                            "max": num("", "memory.peak"),
                            "failcnt": 0,
                        },
                        "raw": raw("", "memory.stat"),
                    }),
                    serde_json::json!({
                        "usage": {
                            "total": us("usage_usec"),
                            "kernel": us("system_usec"),
                            "user": us("user_usec"),
                        },
                        "throttling": throttling(&stat),
                    }),
                )
            }
        };
        let pids_dir = match self.version {
            Version::V1 => "pids",
            Version::V2 => "",
        };
        serde_json::json!({
            "cpu": cpu,
            "memory": memory,
            "pids": {
                "current": num(pids_dir, "pids.current"),
                // "max" (unlimited) reads as 0, as runc reports it.
                "limit": num(pids_dir, "pids.max"),
            },
        })
    }

    /// Removes the cgroup from every hierarchy; retries while the last
    /// processes finish exiting.
    pub fn remove(&self, fs: &dyn CgroupFs) -> Result<(), CgroupError> {
        let mut dirs = self.dirs(fs);
        if self.version == Version::V2 {
            dirs = vec![self.dir("")];
        }
        for dir in dirs {
            if !fs.exists(&dir) {
                continue;
            }
            let mut last = None;
            for _ in 0..200 {
                match fs.remove_dir(&dir) {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if let Some(source) = last {
                return Err(CgroupError::Remove { path: dir, source });
            }
        }
        Ok(())
    }
}

fn apply_all(fs: &dyn CgroupFs, writes: &[Write]) -> Result<(), CgroupError> {
    for (path, value) in writes {
        if let Err(source) = fs.write(path, value) {
            let optional =
                path.ends_with("memory.memsw.limit_in_bytes") || path.ends_with("memory.swap.max");
            if optional && source.kind() == std::io::ErrorKind::NotFound {
                tracing::debug!("{} missing: no swap accounting", path.display());
                continue;
            }
            return Err(CgroupError::Write {
                path: path.clone(),
                value: value.clone(),
                source,
            });
        }
    }
    Ok(())
}

fn v2_max(n: i64) -> String {
    if n < 0 {
        "max".into()
    } else {
        n.to_string()
    }
}

/// runc's cpu.shares → cpu.weight conversion ([2, 262144] → [1, 10000]).
pub fn cpu_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

fn throttling(stat: &BTreeMap<String, u64>) -> Value {
    let g = |k: &str| stat.get(k).copied().unwrap_or(0);
    serde_json::json!({
        "periods": g("nr_periods"),
        "throttled_periods": g("nr_throttled"),
        "throttled_time": g("throttled_time").max(g("throttled_usec") * 1000),
    })
}

/// The value of `key` in a "key value" per line file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
pub mod fake {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    /// An in-memory cgroup filesystem that records writes.
    #[derive(Debug, Default)]
    pub struct FakeCgroupFs {
        pub version: Option<Version>,
        pub files: RefCell<HashMap<PathBuf, String>>,
        pub dirs: RefCell<BTreeSet<PathBuf>>,
        pub writes: RefCell<Vec<Write>>,
        /// Writes to these files fail with EINVAL.
        pub refuse: RefCell<BTreeSet<PathBuf>>,
    }

    impl FakeCgroupFs {
        pub fn v1() -> Self {
            let fs = Self {
                version: Some(Version::V1),
                ..Self::default()
            };
            for c in V1_CONTROLLERS {
                fs.dirs.borrow_mut().insert(Path::new(MOUNT).join(c));
            }
            fs
        }
        pub fn v2() -> Self {
            let fs = Self {
                version: Some(Version::V2),
                ..Self::default()
            };
            fs.dirs.borrow_mut().insert(MOUNT.into());
            fs
        }
    }

    impl CgroupFs for FakeCgroupFs {
        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.files
                .borrow()
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }
        fn write(&self, path: &Path, value: &str) -> std::io::Result<()> {
            if self.refuse.borrow().contains(path) {
                return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
            }
            self.writes
                .borrow_mut()
                .push((path.to_path_buf(), value.to_string()));
            self.files
                .borrow_mut()
                .insert(path.to_path_buf(), value.to_string());
            Ok(())
        }
        fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
            self.dirs.borrow_mut().insert(path.to_path_buf());
            Ok(())
        }
        fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
            if self.dirs.borrow_mut().remove(path) {
                Ok(())
            } else {
                Err(std::io::ErrorKind::NotFound.into())
            }
        }
        fn exists(&self, path: &Path) -> bool {
            self.dirs.borrow().contains(path) || self.files.borrow().contains_key(path)
        }
        fn version(&self, _: &Path) -> Version {
            self.version.unwrap_or(Version::V1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeCgroupFs;
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn paths_plain_relative_and_systemd() {
        let r = |s, sd| resolve_path(s, sd).unwrap();
        assert_eq!(r("/docker/abc", false), Some(p("docker/abc")));
        assert_eq!(r("default/x", false), Some(p("default/x")));
        assert_eq!(r("", false), None);
        assert_eq!(
            r("system.slice:docker:abc", true),
            Some(p("system.slice/docker-abc.scope"))
        );
        // The systemd form is recognised without the flag too (a cleanup
        // call may come without it).
        assert_eq!(
            r("kubepods-besteffort.slice:cri-containerd:x", false),
            Some(p(
                "kubepods.slice/kubepods-besteffort.slice/cri-containerd-x.scope"
            ))
        );
        assert_eq!(r(":runc:x", true), Some(p("system.slice/runc-x.scope")));
        assert!(resolve_path("/a/../../etc", false).is_err());
        assert!(resolve_path("/", false).is_err());
        assert!(resolve_path("nope:x", true).is_err());
        assert!(resolve_path("bad:p:x", true).is_err());
    }

    #[test]
    fn resources_from_oci_json_zero_is_unset() {
        // What `docker update --memory 64m --pids-limit 50` sends.
        let r = Resources::from_json(&json!({
            "memory": {"limit": 67108864, "reservation": 0, "swap": 0, "kernel": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""},
            "pids": {"limit": 50},
            "blockIO": {"weight": 0},
            "devices": [{"allow": false, "access": "rwm"}]
        }));
        assert_eq!(
            r,
            Resources {
                memory_limit: Some(64 << 20),
                pids_limit: Some(50),
                ..Resources::default()
            }
        );
        assert!(Resources::from_json(&json!({"hugepageLimits": []})).is_empty());
        let mut a = r.clone();
        a.merge(&Resources {
            pids_limit: Some(-1),
            cpu_shares: Some(512),
            ..Resources::default()
        });
        assert_eq!(
            (a.pids_limit, a.cpu_shares, a.memory_limit),
            (Some(-1), Some(512), Some(64 << 20))
        );
    }

    fn all() -> Resources {
        Resources {
            memory_limit: Some(100 << 20),
            memory_reservation: Some(50 << 20),
            memory_swap: Some(200 << 20),
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            pids_limit: Some(64),
        }
    }

    #[test]
    fn v1_creates_joins_and_limits_per_controller() {
        let fs = FakeCgroupFs::v1();
        let cg = Cgroup::new(&fs, p("docker/c1"));
        assert_eq!(cg.version, Version::V1);
        cg.create(&fs).unwrap();
        assert!(fs
            .dirs
            .borrow()
            .contains(&p("/sys/fs/cgroup/memory/docker/c1")));
        assert!(fs
            .dirs
            .borrow()
            .contains(&p("/sys/fs/cgroup/freezer/docker/c1")));
        cg.add(&fs, 42).unwrap();
        assert_eq!(
            fs.files.borrow()[&p("/sys/fs/cgroup/pids/docker/c1/cgroup.procs")],
            "42"
        );
        fs.writes.borrow_mut().clear();
        cg.apply(&fs, &all()).unwrap();
        let got: Vec<(String, String)> = fs
            .writes
            .borrow()
            .iter()
            .map(|(p, v)| (p.display().to_string(), v.clone()))
            .collect();
        let m = "/sys/fs/cgroup/memory/docker/c1";
        let c = "/sys/fs/cgroup/cpu/docker/c1";
        let want: Vec<(String, String)> = [
            (format!("{m}/memory.limit_in_bytes"), "104857600"),
            (format!("{m}/memory.memsw.limit_in_bytes"), "209715200"),
            (format!("{m}/memory.soft_limit_in_bytes"), "52428800"),
            (format!("{c}/cpu.shares"), "512"),
            (format!("{c}/cpu.cfs_period_us"), "100000"),
            (format!("{c}/cpu.cfs_quota_us"), "50000"),
            ("/sys/fs/cgroup/pids/docker/c1/pids.max".into(), "64"),
        ]
        .into_iter()
        .map(|(a, b)| (a, b.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn v1_unlimited_and_memsw_order_retry() {
        let fs = FakeCgroupFs::v1();
        let cg = Cgroup::new(&fs, p("x"));
        let w = cg.writes(&Resources {
            memory_limit: Some(-1),
            pids_limit: Some(-1),
            cpu_quota: Some(-1),
            ..Resources::default()
        });
        let vals: Vec<&str> = w.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(vals, ["-1", "-1", "max"]);
        // The limit is refused until memsw is raised: the other order wins.
        let limit = p("/sys/fs/cgroup/memory/x/memory.limit_in_bytes");
        fs.refuse.borrow_mut().insert(limit.clone());
        let err = cg.apply(
            &fs,
            &Resources {
                memory_limit: Some(1 << 30),
                ..Resources::default()
            },
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("memory.limit_in_bytes"));
        fs.writes.borrow_mut().clear();
        fs.refuse.borrow_mut().clear();
        cg.apply(
            &fs,
            &Resources {
                memory_limit: Some(1 << 30),
                memory_swap: Some(2 << 30),
                ..Resources::default()
            },
        )
        .unwrap();
        assert_eq!(fs.writes.borrow().len(), 2);
    }

    #[test]
    fn v2_translates_values_and_enables_controllers() {
        let fs = FakeCgroupFs::v2();
        let cg = Cgroup::new(&fs, p("kubepods/pod1/c"));
        cg.create(&fs).unwrap();
        let enabled: Vec<String> = fs
            .writes
            .borrow()
            .iter()
            .filter(|(f, _)| f == &p("/sys/fs/cgroup/kubepods/pod1/cgroup.subtree_control"))
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(enabled, ["+memory", "+cpu", "+pids"]);
        assert!(fs
            .dirs
            .borrow()
            .contains(&p("/sys/fs/cgroup/kubepods/pod1/c")));
        let w: BTreeMap<String, String> = cg
            .writes(&all())
            .into_iter()
            .map(|(p, v)| (p.file_name().unwrap().to_string_lossy().into_owned(), v))
            .collect();
        assert_eq!(w["memory.max"], "104857600");
        assert_eq!(w["memory.swap.max"], "104857600");
        assert_eq!(w["memory.low"], "52428800");
        assert_eq!(w["cpu.weight"], cpu_weight(512).to_string());
        assert_eq!(w["cpu.max"], "50000 100000");
        assert_eq!(w["pids.max"], "64");
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_weight(1024), 39);
    }

    #[test]
    fn freezer_v1_and_v2() {
        let fs = FakeCgroupFs::v1();
        let cg = Cgroup::new(&fs, p("c"));
        assert_eq!(cg.frozen(&fs), None);
        cg.freeze(&fs, true).unwrap();
        assert_eq!(cg.frozen(&fs), Some(true));
        cg.freeze(&fs, false).unwrap();
        assert_eq!(cg.frozen(&fs), Some(false));

        let fs = FakeCgroupFs::v2();
        let cg = Cgroup::new(&fs, p("c"));
        fs.files.borrow_mut().insert(
            p("/sys/fs/cgroup/c/cgroup.events"),
            "populated 1\nfrozen 1\n".into(),
        );
        cg.freeze(&fs, true).unwrap();
        assert_eq!(fs.files.borrow()[&p("/sys/fs/cgroup/c/cgroup.freeze")], "1");
        // The kernel never reports thawed: the wait gives up with a message.
        let err = cg.freeze(&fs, false).unwrap_err().to_string();
        assert!(err.contains("thawed"), "{err}");
    }

    #[test]
    fn stats_and_oom_from_the_cgroup_files() {
        let fs = FakeCgroupFs::v1();
        let cg = Cgroup::new(&fs, p("c"));
        for (f, v) in [
            ("memory/c/memory.usage_in_bytes", "4096\n"),
            ("memory/c/memory.limit_in_bytes", "8192\n"),
            ("memory/c/memory.stat", "cache 1\nrss 2\n"),
            (
                "memory/c/memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
            ("cpuacct/c/cpuacct.usage", "123456\n"),
            ("cpuacct/c/cpuacct.usage_percpu", "100000 23456 \n"),
            ("pids/c/pids.current", "2\n"),
            ("pids/c/pids.max", "max\n"),
        ] {
            fs.files
                .borrow_mut()
                .insert(Path::new(MOUNT).join(f), v.into());
        }
        let s = cg.stats(&fs);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["usage"]["limit"], 8192);
        assert_eq!(s["memory"]["raw"]["rss"], 2);
        assert_eq!(s["cpu"]["usage"]["total"], 123456);
        assert_eq!(s["cpu"]["usage"]["percpu"], json!([100000, 23456]));
        assert_eq!(s["pids"], json!({"current": 2, "limit": 0}));
        assert_eq!(cg.oom_kills(&fs), 3);

        let fs = FakeCgroupFs::v2();
        let cg = Cgroup::new(&fs, p("c"));
        for (f, v) in [
            ("c/memory.current", "4096\n"),
            (
                "c/memory.events",
                "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n",
            ),
            ("c/cpu.stat", "usage_usec 10\nuser_usec 7\nsystem_usec 3\n"),
            ("c/pids.current", "1\n"),
            ("c/pids.max", "20\n"),
        ] {
            fs.files
                .borrow_mut()
                .insert(Path::new(MOUNT).join(f), v.into());
        }
        let s = cg.stats(&fs);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["cpu"]["usage"]["total"], 10_000);
        assert_eq!(s["cpu"]["usage"]["user"], 7_000);
        assert_eq!(s["pids"], json!({"current": 1, "limit": 20}));
        assert_eq!(cg.oom_kills(&fs), 1);
    }

    /// The v2 code on a real cgroup2 hierarchy: the machine's own when it
    /// is v2, else the hybrid layout's /sys/fs/cgroup/unified (which has
    /// no memory/cpu/pids controllers, but joins, freezing and removal
    /// work the same). Skipped when neither is there or not root.
    #[test]
    fn v2_join_freeze_remove_on_the_host() {
        let fs = LinuxCgroupFs;
        let mount = [Path::new(MOUNT), Path::new("/sys/fs/cgroup/unified")]
            .into_iter()
            .find(|m| fs.version(m) == Version::V2 && m.join("cgroup.procs").exists());
        let (Some(mount), true) = (mount, nix::unistd::geteuid().is_root()) else {
            eprintln!("skipped: no cgroup2 mount, or not root");
            return;
        };
        let cg = Cgroup {
            version: Version::V2,
            mount: mount.to_path_buf(),
            path: p(&format!("rvisor-unit-{}/c", std::process::id())),
        };
        cg.create(&fs).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        cg.add(&fs, pid).unwrap();
        assert_eq!(cg.pids(&fs), vec![pid]);
        assert_eq!(cg.frozen(&fs), Some(false));
        cg.freeze(&fs, true).unwrap();
        assert_eq!(cg.frozen(&fs), Some(true));
        cg.freeze(&fs, false).unwrap();
        assert_eq!(cg.frozen(&fs), Some(false));
        child.kill().unwrap();
        child.wait().unwrap();
        cg.remove(&fs).unwrap();
        assert!(!cg.dir("").exists());
        std::fs::remove_dir(cg.dir("").parent().unwrap()).unwrap();
    }

    #[test]
    fn remove_every_hierarchy_and_tolerate_missing() {
        let fs = FakeCgroupFs::v1();
        let cg = Cgroup::new(&fs, p("docker/c"));
        cg.create(&fs).unwrap();
        cg.remove(&fs).unwrap();
        assert!(!fs.dirs.borrow().iter().any(|d| d.ends_with("docker/c")));
        cg.remove(&fs).unwrap();
    }
}
