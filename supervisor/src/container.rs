//! The lifecycle: create, start, state, kill, delete, list, ps. Policy
//! lives here; every host side effect goes through [`Host`].

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use nix::sched::CloneFlags;
use serde::Serialize;

use crate::bundle::{self, Bundle, NetworkPlan};
use crate::cgroup::{self, Cgroup, Resources};
use crate::cli::{CreateArgs, GlobalOpts};
use crate::host::{Host, Launch, ProcessInfo, Stdio};
use crate::state::{self, ContainerState};

/// runc's status words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Frozen by `pause`.
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad` so table columns line up.
        f.pad(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// `state`'s output: the fields go-runc parses.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

/// The status a container is in, from what the host says about its sentry.
pub fn status_of(host: &dyn Host, s: &ContainerState) -> Status {
    match host.process(s.pid) {
        ProcessInfo::Alive { start } if start == s.pid_start || s.pid_start == 0 => {
            let fs = host.cgroups();
            if s.cgroup.as_ref().and_then(|c| c.frozen(fs)) == Some(true) {
                Status::Paused
            } else if s.started {
                Status::Running
            } else {
                Status::Created
            }
        }
        _ => Status::Stopped,
    }
}

pub fn report(host: &dyn Host, s: &ContainerState) -> StateReport {
    StateReport {
        oci_version: "1.0.2".into(),
        id: s.id.clone(),
        pid: s.pid,
        status: status_of(host, s),
        bundle: s.bundle.clone(),
        rootfs: s.rootfs.clone(),
        created: s.created.clone(),
        owner: String::new(),
        annotations: s.annotations.clone(),
    }
}

/// A binary shipped next to the supervisor.
fn sibling(name: &str) -> Result<PathBuf> {
    let env = format!("RVISOR_{}", name.to_ascii_uppercase());
    if let Some(p) = std::env::var_os(&env) {
        return Ok(p.into());
    }
    let me = std::env::current_exe().context("finding the supervisor's own path")?;
    let p = me.with_file_name(name);
    if !p.exists() {
        bail!("{name} binary not found at {} (set {env})", p.display());
    }
    Ok(p)
}

/// Namespaces the sentry gets: its own pid, mount, ipc and uts always, and
/// the network the spec (or --network) asks for.
pub fn sentry_namespaces(net: &NetworkPlan) -> (CloneFlags, Vec<(PathBuf, CloneFlags)>) {
    let mut flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    let mut join = Vec::new();
    match net {
        NetworkPlan::Host => {}
        NetworkPlan::New => flags |= CloneFlags::CLONE_NEWNET,
        NetworkPlan::Join(p) => join.push((p.clone(), CloneFlags::CLONE_NEWNET)),
    }
    (flags, join)
}

/// Whether the sentry's network namespace is a fresh one, whose loopback
/// the runtime brings up (as runc does): a joined or the host's namespace
/// is left as its owner configured it.
pub fn brings_up_loopback(net: &NetworkPlan) -> bool {
    matches!(net, NetworkPlan::New)
}

/// Undoes a half-built sandbox when `create` fails: kills what was spawned
/// and removes the state directory.
struct Cleanup<'a> {
    host: &'a dyn Host,
    dir: Option<PathBuf>,
    pids: Vec<i32>,
    cgroup: Option<Cgroup>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for &pid in &self.pids {
            let _ = self.host.kill(pid, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.remove(self.host.cgroups()) {
                tracing::warn!("{e}");
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Builds the sandbox; the application waits for `start` (or runs at once
/// when `wait_for_start` is false). Returns the sentry's pid.
pub fn create(
    g: &GlobalOpts,
    host: &dyn Host,
    args: &CreateArgs,
    wait_for_start: bool,
) -> Result<ContainerState> {
    state::dir(&g.root, &args.id)?;
    let bundle: Bundle = bundle::load(&args.bundle)?;
    build(g, host, args, bundle, wait_for_start)
}

/// Builds the sandbox for an already checked bundle.
pub fn build(
    g: &GlobalOpts,
    host: &dyn Host,
    args: &CreateArgs,
    bundle: Bundle,
    wait_for_start: bool,
) -> Result<ContainerState> {
    let dir = state::dir(&g.root, &args.id)?;
    if dir.join(state::STATE_FILE).exists() {
        return Err(state::StateError::Exists(args.id.clone()).into());
    }
    let process = bundle::boot_process(&bundle.spec);
    if process.terminal && args.console_socket.is_none() {
        bail!("process.terminal is set but no --console-socket was given");
    }
    if !process.terminal && args.console_socket.is_some() {
        bail!("--console-socket was given but process.terminal is not set");
    }
    let gofer_bin = sibling("gofer")?;
    let sentry_bin = sibling("sentry")?;

    std::fs::create_dir_all(&g.root).with_context(|| format!("creating {}", g.root.display()))?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(state::StateError::Exists(args.id.clone()).into())
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let mut cleanup = Cleanup {
        host,
        dir: Some(dir.clone()),
        pids: Vec::new(),
        cgroup: None,
    };
    // The cgroup exists, limits applied, before anything is placed in it.
    let (cgroup_path, resources) = cgroup_plan(&bundle, &args.id, g.systemd_cgroup)?;
    let cgroup = match cgroup_path {
        Some(path) => {
            let cg = Cgroup::new(host.cgroups(), path);
            cg.create(host.cgroups())?;
            cleanup.cgroup = Some(cg.clone());
            cg.apply(host.cgroups(), &resources)?;
            Some(cg)
        }
        None => None,
    };

    let control_path = state::socket_path(&dir.join(state::CONTROL_SOCKET))
        .context("opening the state directory")?;
    let control = UnixListener::bind(&control_path.path).context("binding the control socket")?;
    drop(control_path);
    let (sentry_9p, gofer_9p) = UnixStream::pair().context("creating the gofer socket pair")?;
    let (boot_ours, boot_theirs) = UnixStream::pair().context("creating the boot socket pair")?;
    let log_for = |name: &str| {
        g.debug_log
            .as_ref()
            .map(|d| d.join(format!("{}.{name}.log", args.id)))
    };
    if let Some(d) = &g.debug_log {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }

    let read_only = bundle::root_read_only(&bundle.spec);
    // The root gofer never writes: a writable root (`root.readonly: false`)
    // takes its writes in the sentry's in-memory overlay.
    let gofer_args: Vec<std::ffi::OsString> = vec![
        "serve".into(),
        "--pivot-root".into(),
        "--read-only".into(),
        "--root".into(),
        bundle.rootfs.clone().into(),
        "--fd".into(),
        "3".into(),
    ];
    let gofer_pid = host.spawn(Launch {
        program: gofer_bin,
        args: gofer_args,
        new_namespaces: CloneFlags::CLONE_NEWNS,
        join: vec![],
        fds: vec![(gofer_9p.into(), 3)],
        stdio: Stdio::Detached(log_for("gofer")),
        loopback_up: false,
    })?;
    cleanup.pids.push(gofer_pid);
    if let Some(cg) = &cgroup {
        cg.add(host.cgroups(), gofer_pid)?;
    }

    // Each directory bind mount gets its own gofer, confined to its source.
    let mut mounts = vec![ipc::Mount {
        destination: "/".into(),
        read_only,
    }];
    let mut volume_socks = Vec::new();
    for (i, volume) in bundle::volumes(&bundle.dir, &bundle.spec)
        .into_iter()
        .enumerate()
    {
        let (ours, theirs) = UnixStream::pair().context("creating a volume's socket pair")?;
        let mut args: Vec<std::ffi::OsString> = vec!["serve".into(), "--pivot-root".into()];
        if volume.read_only {
            args.push("--read-only".into());
        }
        args.extend([
            "--root".into(),
            volume.source.clone().into(),
            "--fd".into(),
            "3".into(),
        ]);
        let pid = host.spawn(Launch {
            program: sibling("gofer")?,
            args,
            new_namespaces: CloneFlags::CLONE_NEWNS,
            join: vec![],
            fds: vec![(theirs.into(), 3)],
            stdio: Stdio::Detached(log_for(&format!("gofer-volume{i}"))),
            loopback_up: false,
        })?;
        cleanup.pids.push(pid);
        if let Some(cg) = &cgroup {
            cg.add(host.cgroups(), pid)?;
        }
        mounts.push(ipc::Mount {
            destination: volume.destination,
            read_only: volume.read_only,
        });
        volume_socks.push(ours);
    }

    let network = bundle::network_plan(&bundle.spec, g.network);
    let (flags, join) = sentry_namespaces(&network);
    let mut sentry_args: Vec<std::ffi::OsString> =
        vec!["boot".into(), "--ipc-fd".into(), "3".into()];
    match log_for("sentry") {
        Some(log) => {
            sentry_args.push("--debug-log".into());
            sentry_args.push(log.into());
        }
        // Without a log directory, --strace lines go to the container's stderr.
        None if g.strace => sentry_args.push("--strace-to-stderr".into()),
        None => {}
    }
    // A terminal container's stdio is a pty whose master goes to the
    // caller's console socket.
    let stdio = match &args.console_socket {
        Some(socket) if process.terminal => {
            let size = bundle
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.console_size());
            let winsize = size.map(|s| nix::pty::Winsize {
                ws_row: s.height() as u16,
                ws_col: s.width() as u16,
                ws_xpixel: 0,
                ws_ypixel: 0,
            });
            let pty = nix::pty::openpty(winsize.as_ref(), None).context("opening a pty")?;
            send_console(socket, &pty.master)?;
            Stdio::Terminal(pty.slave)
        }
        _ => Stdio::Inherit,
    };
    let sentry_pid = host.spawn(Launch {
        program: sentry_bin,
        args: sentry_args,
        new_namespaces: flags,
        join,
        fds: vec![(boot_theirs.into(), 3)],
        stdio,
        loopback_up: brings_up_loopback(&network),
    })?;
    cleanup.pids.push(sentry_pid);
    // Placed before the boot message: the application's memory is charged
    // to the container from its first page.
    if let Some(cg) = &cgroup {
        cg.add(host.cgroups(), sentry_pid)?;
    }

    let boot = ipc::Boot {
        id: args.id.clone(),
        process,
        hostname: bundle.spec.hostname().clone(),
        mounts,
        strace: g.strace,
        memory_mib: 1024,
        platform: g.platform.to_string(),
        wait_for_start,
    };
    let mut fds = vec![control.as_fd(), sentry_9p.as_fd()];
    fds.extend(volume_socks.iter().map(|s| s.as_fd()));
    ipc::send(&boot_ours, &boot, &fds).context("sending the boot message")?;
    drop(volume_socks);
    drop(sentry_9p);
    drop(control);
    // The sentry answers once it is ready to start (or why it cannot).
    boot_ours.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (reply, _): (ipc::ControlResponse, _) =
        ipc::recv(&boot_ours).context("waiting for the sentry to boot")?;
    match reply {
        ipc::ControlResponse::Ok => {}
        ipc::ControlResponse::Error(e) => bail!("sentry boot: {e}"),
        other => bail!("sentry boot: unexpected reply {other:?}"),
    }

    let st = ContainerState {
        id: args.id.clone(),
        pid: sentry_pid,
        pid_start: match host.process(sentry_pid) {
            ProcessInfo::Alive { start } => start,
            _ => 0,
        },
        gofer_pid,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        started: !wait_for_start,
        cgroup,
    };
    state::save(&g.root, &st)?;
    if let Some(p) = &args.pid_file {
        write_pid_file(p, sentry_pid)?;
    }
    cleanup.dir = None;
    cleanup.pids.clear();
    cleanup.cgroup = None;
    Ok(st)
}

/// The cgroup a bundle asks for and the limits to apply in it. No
/// `cgroupsPath` and no limits: no cgroup (as for `do`); limits without a
/// path go to `rvisor/<id>`.
pub fn cgroup_plan(
    bundle: &Bundle,
    id: &str,
    systemd: bool,
) -> Result<(Option<PathBuf>, Resources)> {
    let linux = bundle.spec.linux().as_ref();
    let resources = linux
        .and_then(|l| l.resources().as_ref())
        .map(|r| Resources::from_json(&serde_json::to_value(r).unwrap_or_default()))
        .unwrap_or_default();
    let spec_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path =
        cgroup::resolve_path(&spec_path, systemd).context("config.json: linux.cgroupsPath")?;
    Ok(match path {
        Some(p) => (Some(p), resources),
        None if !resources.is_empty() => (Some(default_cgroup(id)), resources),
        None => (None, resources),
    })
}

fn default_cgroup(id: &str) -> PathBuf {
    PathBuf::from("rvisor").join(id)
}

/// The container's cgroup, made now (at `rvisor/<id>`, holding the sentry
/// and the gofer) for a container created without one.
fn ensure_cgroup(g: &GlobalOpts, host: &dyn Host, st: &mut ContainerState) -> Result<Cgroup> {
    if let Some(cg) = &st.cgroup {
        return Ok(cg.clone());
    }
    let fs = host.cgroups();
    let cg = Cgroup::new(fs, default_cgroup(&st.id));
    cg.create(fs)?;
    for pid in [st.pid, st.gofer_pid] {
        if matches!(host.process(pid), ProcessInfo::Alive { .. }) {
            cg.add(fs, pid)?;
        }
    }
    st.cgroup = Some(cg.clone());
    state::save(&g.root, st)?;
    Ok(cg)
}

/// `pause` (freeze) and `resume` (thaw).
pub fn pause(g: &GlobalOpts, host: &dyn Host, id: &str, frozen: bool) -> Result<()> {
    let mut st = state::load(&g.root, id)?;
    let status = status_of(host, &st);
    match (frozen, status) {
        (true, Status::Running | Status::Created) | (false, Status::Paused) => {}
        (true, other) => bail!("container {id} cannot be paused: it is {other}"),
        (false, other) => bail!("container {id} cannot be resumed: it is {other}"),
    }
    let cg = ensure_cgroup(g, host, &mut st)?;
    cg.freeze(host.cgroups(), frozen)?;
    Ok(())
}

/// `update`: applies what maps onto the sandbox's cgroup.
pub fn update(g: &GlobalOpts, host: &dyn Host, id: &str, r: &Resources) -> Result<()> {
    let mut st = state::load(&g.root, id)?;
    if status_of(host, &st) == Status::Stopped {
        bail!("container {id} is not running");
    }
    if r.is_empty() {
        return Ok(());
    }
    let cg = ensure_cgroup(g, host, &mut st)?;
    cg.apply(host.cgroups(), r)?;
    Ok(())
}

/// The container's stats event (runc's `events` layout).
pub fn stats_event(host: &dyn Host, st: &ContainerState) -> serde_json::Value {
    let data = match &st.cgroup {
        Some(cg) => cg.stats(host.cgroups()),
        None => serde_json::json!({}),
    };
    serde_json::json!({"type": "stats", "id": st.id, "data": data})
}

/// `events`: a stats line every `interval` (just one with `stats_only`),
/// an `oom` line whenever the cgroup's OOM-kill count grows; ends when the
/// container stops.
pub fn events(
    g: &GlobalOpts,
    host: &dyn Host,
    id: &str,
    interval: Duration,
    stats_only: bool,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let st = state::load(&g.root, id)?;
    if status_of(host, &st) == Status::Stopped {
        bail!("container {id} is not running");
    }
    if stats_only {
        writeln!(out, "{}", stats_event(host, &st))?;
        return Ok(());
    }
    let fs = host.cgroups();
    let mut ooms = st.cgroup.as_ref().map_or(0, |c| c.oom_kills(fs));
    let tick = interval
        .min(Duration::from_millis(100))
        .max(Duration::from_millis(1));
    let mut next_stats = std::time::Instant::now();
    loop {
        if let Some(cg) = &st.cgroup {
            let now = cg.oom_kills(fs);
            if now > ooms {
                writeln!(out, "{}", serde_json::json!({"type": "oom", "id": st.id}))?;
                ooms = now;
            }
        }
        if std::time::Instant::now() >= next_stats {
            writeln!(out, "{}", stats_event(host, &st))?;
            out.flush()?;
            next_stats += interval;
        }
        if status_of(host, &st) == Status::Stopped {
            return Ok(());
        }
        std::thread::sleep(tick);
    }
}

/// runc's console protocol: one message on the caller's socket carrying
/// the pty master (SCM_RIGHTS) and, as data, its name.
fn send_console(socket: &Path, master: &std::os::fd::OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let sock = UnixStream::connect(socket)
        .with_context(|| format!("connecting to console socket {}", socket.display()))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .with_context(|| format!("sending the pty to console socket {}", socket.display()))?;
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("rvisor-tmp");
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("writing pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing pid file {}", path.display()))
}

/// One request on the sentry's control socket.
pub fn control(root: &Path, id: &str, req: &ipc::ControlRequest) -> Result<ipc::ControlResponse> {
    let path = state::control_socket(root, id)?;
    let short = state::socket_path(&path).with_context(|| format!("opening {}", path.display()))?;
    let sock = UnixStream::connect(&short.path)
        .with_context(|| format!("connecting to {}", path.display()))?;
    drop(short);
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    ipc::send(&sock, req, &[])?;
    let (resp, _) = ipc::recv(&sock)?;
    Ok(resp)
}

pub fn start(g: &GlobalOpts, host: &dyn Host, id: &str) -> Result<()> {
    let mut st = state::load(&g.root, id)?;
    match status_of(host, &st) {
        Status::Created => {}
        other => bail!("container {id} cannot be started: it is {other}"),
    }
    match control(&g.root, id, &ipc::ControlRequest::Start)? {
        ipc::ControlResponse::Ok => {}
        ipc::ControlResponse::Error(e) => bail!("starting container {id}: {e}"),
        other => bail!("starting container {id}: unexpected reply {other:?}"),
    }
    st.started = true;
    state::save(&g.root, &st)?;
    Ok(())
}

/// A frozen process dies of SIGKILL only once thawed (cgroup v1).
fn thaw_to_die(host: &dyn Host, st: &ContainerState) {
    if let Some(cg) = &st.cgroup {
        if let Err(e) = cg.freeze(host.cgroups(), false) {
            tracing::warn!("{e}");
        }
    }
}

/// Signal numbers from "9", "KILL" or "SIGKILL".
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}");
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| anyhow::anyhow!("invalid signal {s:?}"))
}

pub fn kill(g: &GlobalOpts, host: &dyn Host, id: &str, signal: &str, all: bool) -> Result<()> {
    let signo = parse_signal(signal)?;
    let st = state::load(&g.root, id)?;
    if status_of(host, &st) == Status::Stopped {
        if all {
            return Ok(());
        }
        bail!("container {id} is not running");
    }
    // SIGKILL (and SIGSTOP) cannot wait on the sentry's cooperation: they go
    // straight to the sentry, which ends the whole sandbox.
    let paused = status_of(host, &st) == Status::Paused;
    if signo == libc::SIGKILL || !st.started || paused {
        host.kill(st.pid, signo)?;
        if signo == libc::SIGKILL && paused {
            thaw_to_die(host, &st);
        }
        return Ok(());
    }
    match control(&g.root, id, &ipc::ControlRequest::Signal { signo, all }) {
        Ok(ipc::ControlResponse::Ok) => Ok(()),
        Ok(ipc::ControlResponse::Error(e)) => bail!("signalling container {id}: {e}"),
        Ok(other) => bail!("signalling container {id}: unexpected reply {other:?}"),
        Err(e) => {
            tracing::debug!("control socket unavailable ({e:#}); signalling the sentry directly");
            host.kill(st.pid, signo)?;
            Ok(())
        }
    }
}

pub fn delete(g: &GlobalOpts, host: &dyn Host, id: &str, force: bool) -> Result<()> {
    let st = match state::load(&g.root, id) {
        Ok(st) => st,
        Err(state::StateError::NotFound(_)) if force => {
            // A half-removed directory is cleaned up too.
            if let Ok(dir) = state::dir(&g.root, id) {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = status_of(host, &st);
    if status != Status::Stopped && status != Status::Created && !force {
        bail!("container {id} is {status}: stop it first or use --force");
    }
    if status != Status::Stopped {
        host.kill(st.pid, libc::SIGKILL)?;
        if status == Status::Paused {
            thaw_to_die(host, &st);
        }
    }
    // The gofer exits when the sentry's connection closes; make sure.
    if matches!(host.process(st.gofer_pid), ProcessInfo::Alive { .. }) {
        let _ = host.kill(st.gofer_pid, libc::SIGKILL);
    }
    if let Some(cg) = &st.cgroup {
        let fs = host.cgroups();
        for pid in cg.pids(fs) {
            let _ = host.kill(pid, libc::SIGKILL);
        }
        cg.remove(fs)?;
    }
    let dir = state::dir(&g.root, id)?;
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A host that records kills and answers process lookups from a table.
    #[derive(Default)]
    struct FakeHost {
        procs: RefCell<HashMap<i32, ProcessInfo>>,
        kills: RefCell<Vec<(i32, i32)>>,
        cgroups: crate::cgroup::fake::FakeCgroupFs,
    }

    impl Host for FakeHost {
        fn spawn(&self, _: Launch) -> Result<i32, crate::host::HostError> {
            unreachable!("policy tests spawn nothing")
        }
        fn kill(&self, pid: i32, signo: i32) -> Result<bool, crate::host::HostError> {
            self.kills.borrow_mut().push((pid, signo));
            if signo == libc::SIGKILL {
                self.procs.borrow_mut().insert(pid, ProcessInfo::Zombie);
            }
            Ok(true)
        }
        fn process(&self, pid: i32) -> ProcessInfo {
            *self.procs.borrow().get(&pid).unwrap_or(&ProcessInfo::Gone)
        }
        fn children(&self, _: i32) -> Vec<i32> {
            vec![]
        }
        fn cgroups(&self) -> &dyn crate::cgroup::CgroupFs {
            &self.cgroups
        }
    }

    fn opts(root: &Path) -> GlobalOpts {
        use clap::Parser;
        let mut cli = crate::cli::Cli::parse_from(["supervisor", "list"]);
        cli.global.root = root.to_path_buf();
        cli.global
    }

    fn saved(root: &Path, id: &str, started: bool) -> ContainerState {
        std::fs::create_dir_all(root.join(id)).unwrap();
        let st = ContainerState {
            id: id.into(),
            pid: 100,
            pid_start: 5,
            gofer_pid: 101,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: state::now_rfc3339(),
            annotations: HashMap::new(),
            started,
            cgroup: None,
        };
        state::save(root, &st).unwrap();
        st
    }

    #[test]
    fn status_follows_the_sentry() {
        let host = FakeHost::default();
        let root = tempfile::tempdir().unwrap();
        let mut st = saved(root.path(), "c", false);
        assert_eq!(status_of(&host, &st), Status::Stopped);
        host.procs
            .borrow_mut()
            .insert(100, ProcessInfo::Alive { start: 5 });
        assert_eq!(status_of(&host, &st), Status::Created);
        st.started = true;
        assert_eq!(status_of(&host, &st), Status::Running);
        // A recycled pid is not our sentry.
        host.procs
            .borrow_mut()
            .insert(100, ProcessInfo::Alive { start: 6 });
        assert_eq!(status_of(&host, &st), Status::Stopped);
        host.procs.borrow_mut().insert(100, ProcessInfo::Zombie);
        assert_eq!(status_of(&host, &st), Status::Stopped);
    }

    #[test]
    fn kill_all_after_exit_succeeds_plain_kill_fails() {
        let host = FakeHost::default();
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        let g = opts(root.path());
        kill(&g, &host, "c", "9", true).unwrap();
        assert!(kill(&g, &host, "c", "9", false).is_err());
        assert!(host.kills.borrow().is_empty());
    }

    #[test]
    fn sigkill_goes_to_the_sentry() {
        let host = FakeHost::default();
        host.procs
            .borrow_mut()
            .insert(100, ProcessInfo::Alive { start: 5 });
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        kill(&opts(root.path()), &host, "c", "KILL", false).unwrap();
        assert_eq!(*host.kills.borrow(), vec![(100, libc::SIGKILL)]);
    }

    #[test]
    fn delete_force_is_idempotent_and_kills() {
        let host = FakeHost::default();
        host.procs
            .borrow_mut()
            .insert(100, ProcessInfo::Alive { start: 5 });
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        let g = opts(root.path());
        let err = delete(&g, &host, "c", false).unwrap_err().to_string();
        assert!(err.contains("running"), "{err}");
        delete(&g, &host, "c", true).unwrap();
        assert!(host.kills.borrow().contains(&(100, libc::SIGKILL)));
        assert!(!root.path().join("c").exists());
        delete(&g, &host, "c", true).unwrap();
        let err = delete(&g, &host, "c", false).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    fn v1_host() -> FakeHost {
        let host = FakeHost {
            cgroups: crate::cgroup::fake::FakeCgroupFs::v1(),
            ..FakeHost::default()
        };
        host.procs
            .borrow_mut()
            .insert(100, ProcessInfo::Alive { start: 5 });
        host.procs
            .borrow_mut()
            .insert(101, ProcessInfo::Alive { start: 9 });
        host
    }

    fn frozen_file(host: &FakeHost, id: &str) -> Option<String> {
        host.cgroups
            .files
            .borrow()
            .get(Path::new(&format!(
                "/sys/fs/cgroup/freezer/rvisor/{id}/freezer.state"
            )))
            .cloned()
    }

    #[test]
    fn pause_resume_make_a_cgroup_and_freeze_it() {
        let host = v1_host();
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        let g = opts(root.path());
        assert!(pause(&g, &host, "c", false)
            .unwrap_err()
            .to_string()
            .contains("cannot be resumed"));
        pause(&g, &host, "c", true).unwrap();
        assert_eq!(frozen_file(&host, "c").as_deref(), Some("FROZEN"));
        let st = state::load(root.path(), "c").unwrap();
        assert_eq!(st.cgroup.as_ref().unwrap().path, Path::new("rvisor/c"));
        assert_eq!(status_of(&host, &st), Status::Paused);
        // Both sandbox processes were placed in it.
        let procs = host
            .cgroups
            .writes
            .borrow()
            .iter()
            .filter(|(p, _)| p.ends_with("cgroup.procs"))
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>();
        assert!(procs.contains(&"100".to_string()) && procs.contains(&"101".to_string()));
        assert!(pause(&g, &host, "c", true)
            .unwrap_err()
            .to_string()
            .contains("paused"));
        pause(&g, &host, "c", false).unwrap();
        assert_eq!(frozen_file(&host, "c").as_deref(), Some("THAWED"));
        assert_eq!(
            status_of(&host, &state::load(root.path(), "c").unwrap()),
            Status::Running
        );
    }

    #[test]
    fn sigkill_and_delete_of_a_paused_container_thaw_it_and_remove_the_cgroup() {
        let host = v1_host();
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        let g = opts(root.path());
        pause(&g, &host, "c", true).unwrap();
        // A TERM to a paused container goes straight to the sentry (the
        // control socket's server is frozen too).
        kill(&g, &host, "c", "15", false).unwrap();
        assert_eq!(*host.kills.borrow(), vec![(100, 15)]);
        assert_eq!(frozen_file(&host, "c").as_deref(), Some("FROZEN"));
        delete(&g, &host, "c", true).unwrap();
        assert!(host.kills.borrow().contains(&(100, libc::SIGKILL)));
        assert_eq!(frozen_file(&host, "c").as_deref(), Some("THAWED"));
        assert!(!host
            .cgroups
            .dirs
            .borrow()
            .iter()
            .any(|d| d.ends_with("rvisor/c")));
        assert!(!root.path().join("c").exists());
    }

    #[test]
    fn update_applies_only_what_maps() {
        let host = v1_host();
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        let g = opts(root.path());
        let r = Resources::from_json(&serde_json::json!({
            "memory": {"limit": 1048576, "swap": 0},
            "cpu": {"shares": 0, "cpus": "0-1"},
            "pids": {"limit": 20},
            "blockIO": {"weight": 10}
        }));
        update(&g, &host, "c", &r).unwrap();
        let files = host.cgroups.files.borrow();
        assert_eq!(
            files[Path::new("/sys/fs/cgroup/memory/rvisor/c/memory.limit_in_bytes")],
            "1048576"
        );
        assert_eq!(
            files[Path::new("/sys/fs/cgroup/pids/rvisor/c/pids.max")],
            "20"
        );
        assert!(!files.keys().any(|k| k.ends_with("cpu.shares")));
        drop(files);
        host.procs.borrow_mut().insert(100, ProcessInfo::Zombie);
        assert!(update(&g, &host, "c", &r)
            .unwrap_err()
            .to_string()
            .contains("not running"));
    }

    #[test]
    fn events_stats_prints_one_line() {
        let host = v1_host();
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        let g = opts(root.path());
        update(
            &g,
            &host,
            "c",
            &Resources {
                pids_limit: Some(7),
                ..Resources::default()
            },
        )
        .unwrap();
        host.cgroups.files.borrow_mut().insert(
            "/sys/fs/cgroup/pids/rvisor/c/pids.current".into(),
            "2\n".into(),
        );
        let mut out = Vec::new();
        events(&g, &host, "c", Duration::from_secs(5), true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], "c");
        assert_eq!(
            v["data"]["pids"],
            serde_json::json!({"current": 2, "limit": 7})
        );
    }

    #[test]
    fn events_report_oom_and_end_with_the_container() {
        let host = v1_host();
        let root = tempfile::tempdir().unwrap();
        saved(root.path(), "c", true);
        let g = opts(root.path());
        update(
            &g,
            &host,
            "c",
            &Resources {
                memory_limit: Some(1 << 20),
                ..Resources::default()
            },
        )
        .unwrap();
        let oom = std::path::PathBuf::from("/sys/fs/cgroup/memory/rvisor/c/memory.oom_control");
        host.cgroups
            .files
            .borrow_mut()
            .insert(oom.clone(), "oom_kill 0\n".into());
        // A writer that bumps the OOM count after the first line and stops
        // the container after the second.
        struct Out<'a> {
            host: &'a FakeHost,
            oom: std::path::PathBuf,
            text: String,
        }
        impl std::io::Write for Out<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.text.push_str(&String::from_utf8_lossy(b));
                match self.text.matches('\n').count() {
                    1 => {
                        self.host
                            .cgroups
                            .files
                            .borrow_mut()
                            .insert(self.oom.clone(), "oom_kill 1\n".into());
                    }
                    2 => {
                        self.host.procs.borrow_mut().insert(100, ProcessInfo::Gone);
                    }
                    _ => {}
                }
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = Out {
            host: &host,
            oom,
            text: String::new(),
        };
        events(&g, &host, "c", Duration::from_millis(1), false, &mut out).unwrap();
        let types: Vec<String> = out
            .text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(types[..2], ["stats".to_string(), "oom".to_string()]);
    }

    #[test]
    fn cgroup_plan_from_the_spec() {
        let mut spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"cgroupsPath": "system.slice:docker:abc", "resources": {"pids": {"limit": 9}}}
        }))
        .unwrap();
        let b = |spec: &oci_spec::runtime::Spec| Bundle {
            dir: "/b".into(),
            rootfs: "/b/r".into(),
            spec: spec.clone(),
        };
        let (p, r) = cgroup_plan(&b(&spec), "abc", false).unwrap();
        assert_eq!(p.unwrap(), Path::new("system.slice/docker-abc.scope"));
        assert_eq!(r.pids_limit, Some(9));
        spec = serde_json::from_value(
            serde_json::json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"}}),
        )
        .unwrap();
        assert_eq!(cgroup_plan(&b(&spec), "x", false).unwrap().0, None);
        spec = serde_json::from_value(serde_json::json!({"ociVersion": "1.0.2", "linux": {"resources": {"memory": {"limit": 4096}}}})).unwrap();
        assert_eq!(
            cgroup_plan(&b(&spec), "x", false).unwrap().0.unwrap(),
            Path::new("rvisor/x")
        );
        spec = serde_json::from_value(
            serde_json::json!({"ociVersion": "1.0.2", "linux": {"cgroupsPath": "/a/../../x"}}),
        )
        .unwrap();
        let err = format!("{:#}", cgroup_plan(&b(&spec), "x", false).unwrap_err());
        assert!(err.contains("cgroupsPath"), "{err}");
    }

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal("15").unwrap(), 15);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert!(parse_signal("0").is_err() && parse_signal("BOGUS").is_err());
    }

    #[test]
    fn network_namespaces() {
        let (f, j) = sentry_namespaces(&NetworkPlan::New);
        assert!(f.contains(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID) && j.is_empty());
        let (f, j) = sentry_namespaces(&NetworkPlan::Join("/proc/1/ns/net".into()));
        assert!(!f.contains(CloneFlags::CLONE_NEWNET) && j.len() == 1);
        let (f, _) = sentry_namespaces(&NetworkPlan::Host);
        assert!(!f.contains(CloneFlags::CLONE_NEWNET));
        assert!(brings_up_loopback(&NetworkPlan::New));
        assert!(!brings_up_loopback(&NetworkPlan::Host));
        let joined = NetworkPlan::Join("/proc/1/ns/net".into());
        assert!(!brings_up_loopback(&joined));
    }
}
