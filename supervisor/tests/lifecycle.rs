//! End-to-end lifecycles of the real supervisor, gofer and sentry on an OCI
//! bundle whose rootfs is Debian's busybox-static, driven the way
//! containerd's shim drives runc: the test process is a child subreaper and
//! learns exit codes only from wait() on the --pid-file process.
//!
//! Needs root, /bin/busybox (apt package busybox-static) and the
//! workspace's gofer and sentry binaries built next to the supervisor
//! (`cargo test --workspace` builds them).
//!
//! Every test that builds a sandbox runs once per platform, through the
//! supervisor's global `--platform`: `platform_tests!` turns
//! `fn name(platform) { .. }` into `name::kvm` and `name::systrap`; the KVM
//! variants skip, saying why, when /dev/kvm is unusable. Tests that build
//! no sandbox run once and say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde_json::{json, Value};

const SUPERVISOR: &str = env!("CARGO_BIN_EXE_supervisor");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Kvm,
    Systrap,
}

impl Platform {
    /// The name the supervisor's global `--platform` takes.
    fn name(self) -> &'static str {
        match self {
            Platform::Kvm => "kvm",
            Platform::Systrap => "systrap",
        }
    }

    fn available(self) -> bool {
        match self {
            Platform::Kvm => match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
            {
                Ok(_) => true,
                Err(e) => {
                    eprintln!("/dev/kvm is not usable ({e}): skipping the kvm variant");
                    false
                }
            },
            Platform::Systrap => true,
        }
    }
}

/// `fn name(platform: Platform) { body }` → tests `name::kvm` and `name::systrap`.
macro_rules! platform_tests {
    ($($(#[$meta:meta])* fn $name:ident($platform:ident: Platform) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($platform: Platform) $body

            #[test]
            fn kvm() {
                if Platform::Kvm.available() {
                    body(Platform::Kvm);
                }
            }

            #[test]
            fn systrap() {
                body(Platform::Systrap);
            }
        }
    )*};
}

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Like containerd-shim and conmon: orphans of the runtime come to us.
        nix::sys::prctl::set_child_subreaper(true).expect("becoming a child subreaper");
        let dir = Path::new(SUPERVISOR).parent().unwrap();
        for bin in ["sentry", "gofer"] {
            assert!(
                dir.join(bin).exists(),
                "{} not built: run `cargo build --workspace` (or cargo test --workspace)",
                dir.join(bin).display()
            );
        }
        assert!(
            Path::new("/bin/busybox").exists(),
            "/bin/busybox missing: apt-get install busybox-static"
        );
    });
}

/// A bundle in a temp dir: rootfs = /bin/busybox plus symlinks.
/// Every supervisor command on it passes `--platform`.
struct Bundle {
    dir: tempfile::TempDir,
    root: tempfile::TempDir,
    platform: Platform,
}

impl Bundle {
    fn new(platform: Platform, args: &[&str]) -> Self {
        setup();
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "tmp", "etc", "proc", "dev"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo", "true", "false", "sleep", "cat", "ls"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let b = Self {
            dir,
            root: tempfile::tempdir().unwrap(),
            platform,
        };
        b.write_config(&config(args));
        b
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.path().join("config.json"), config.to_string()).unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn log(&self) -> PathBuf {
        self.root.path().join("log.json")
    }

    /// Runs the supervisor with this bundle's --root and a JSON --log;
    /// the container's stdio goes to `out` (a file) when given.
    fn sv(&self, args: &[&str], out: Option<&Path>) -> Output {
        let mut cmd = Command::new(SUPERVISOR);
        cmd.arg("--root")
            .arg(self.root.path())
            .arg("--log")
            .arg(self.log())
            .arg("--log-format=json")
            .args(["--platform", self.platform.name()])
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null());
        match out {
            Some(path) => {
                let f = std::fs::File::create(path).unwrap();
                cmd.stdout(f.try_clone().unwrap()).stderr(f);
                let status = cmd.status().unwrap();
                Output {
                    status,
                    stdout: vec![],
                    stderr: vec![],
                }
            }
            None => cmd.output().unwrap(),
        }
    }

    fn create(&self, id: &str, out: &Path) -> i32 {
        let pid_file = self.path().join(format!("{id}.pid"));
        let o = self.sv(
            &[
                "create",
                "--bundle",
                self.path().to_str().unwrap(),
                "--pid-file",
                pid_file.to_str().unwrap(),
                id,
            ],
            Some(out),
        );
        assert!(
            o.status.success(),
            "create {id}: {}",
            std::fs::read_to_string(out).unwrap_or_default()
        );
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.sv(args, None);
        assert!(
            o.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }
}

fn config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "HOME=/"],
            "cwd": "/"
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "rvisor-test",
        "linux": {"namespaces": [
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
        ]}
    })
}

/// What wait() says about the pid-file process, as a shell code
/// (128+signal when it died by one).
fn wait_code(pid: i32) -> i32 {
    match waitpid(Pid::from_raw(pid), None).unwrap() {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        other => panic!("unexpected wait status {other:?}"),
    }
}

fn seccomp_mode(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .unwrap()
        .trim()
        .to_string()
}

platform_tests! {
    fn create_state_start_exit_delete(platform: Platform) {
        let b = Bundle::new(platform, &["/bin/sh", "-c", "echo hello from the sandbox"]);
        let out = b.path().join("out");
        let pid = b.create("life", &out);
        let st = b.state("life");
        assert_eq!(st["status"], "created");
        assert_eq!(st["id"], "life");
        assert_eq!(st["pid"], pid);
        assert_eq!(st["ociVersion"], "1.0.2");
        assert_eq!(st["bundle"], b.path().to_str().unwrap());
        let created = st["created"].as_str().unwrap();
        assert!(
            humantime::parse_rfc3339(created).is_ok(),
            "created {created:?} is not RFC 3339"
        );
        assert!(b.ok(&["start", "life"]).is_empty(), "start prints nothing");
        assert_eq!(wait_code(pid), 0);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "hello from the sandbox\n"
        );
        assert_eq!(b.state("life")["status"], "stopped");
        b.ok(&["delete", "life"]);
        assert!(!b.root.path().join("life").exists());
    }
}

platform_tests! {
    fn run_returns_the_exit_code(platform: Platform) {
        let b = Bundle::new(platform, &["sh", "-c", "exit 3"]);
        let o = b.sv(
            &["run", "--bundle", b.path().to_str().unwrap(), "three"],
            None,
        );
        assert_eq!(o.status.code(), Some(3));
        assert!(
            !b.root.path().join("three").exists(),
            "run removes the container"
        );
    }
}

platform_tests! {
    fn sandbox_processes_are_confined(platform: Platform) {
        let b = Bundle::new(platform, &["sleep", "30"]);
        let pid = b.create("confined", &b.path().join("out"));
        let state: Value =
            serde_json::from_slice(&std::fs::read(b.root.path().join("confined/state.json")).unwrap())
                .unwrap();
        let gofer = state["gofer_pid"].as_i64().unwrap() as i32;
        assert_eq!(seccomp_mode(pid), "2", "sentry runs under seccomp");
        assert_eq!(seccomp_mode(gofer), "2", "gofer runs under seccomp");
        // The sentry's root is empty; the gofer's is the container's rootfs.
        assert_eq!(
            std::fs::read_dir(format!("/proc/{pid}/root"))
                .unwrap()
                .count(),
            0
        );
        assert!(Path::new(&format!("/proc/{gofer}/root/bin/busybox")).exists());
        assert_ne!(
            std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
            std::fs::read_link("/proc/self/ns/pid").unwrap()
        );
        // Every host process of the sandbox, the sentry first: its
        // children (systrap's stubs) and the gofer too.
        let ps: Vec<i32> =
            serde_json::from_str(&b.ok(&["ps", "--format", "json", "confined"])).unwrap();
        assert_eq!(ps[0], pid);
        assert!(ps.contains(&gofer), "{ps:?} lacks the gofer {gofer}");
        for child in children_of(pid) {
            assert!(ps.contains(&child), "{ps:?} lacks the sentry's child {child}");
        }
        if platform == Platform::Systrap {
            assert!(!children_of(pid).is_empty(), "systrap runs stub processes");
        }
        let table = b.ok(&["ps", "confined"]);
        let mut lines = table.lines();
        assert!(lines.next().unwrap().contains("PID"), "{table}");
        assert_eq!(lines.count(), ps.len(), "{table}");
        b.ok(&["delete", "--force", "confined"]);
        assert_eq!(wait_code(pid), 137);
    }
}

platform_tests! {
    fn kill_term_then_kill_all_after_exit(platform: Platform) {
        let b = Bundle::new(platform, &["sleep", "30"]);
        let pid = b.create("term", &b.path().join("out"));
        b.ok(&["start", "term"]);
        assert_eq!(b.state("term")["status"], "running");
        b.ok(&["kill", "term", "15"]);
        assert_eq!(wait_code(pid), 128 + 15);
        // containerd sends this after the init already exited: must succeed.
        b.ok(&["kill", "--all", "term", "9"]);
        b.ok(&["delete", "term"]);
    }
}

platform_tests! {
    fn kill_all_9_gives_137(platform: Platform) {
        let b = Bundle::new(platform, &["sleep", "30"]);
        let pid = b.create("nine", &b.path().join("out"));
        b.ok(&["start", "nine"]);
        b.ok(&["kill", "--all", "nine", "KILL"]);
        assert_eq!(wait_code(pid), 137);
        b.ok(&["delete", "nine"]);
    }
}

platform_tests! {
    fn delete_force_twice_and_missing(platform: Platform) {
        let b = Bundle::new(platform, &["sleep", "30"]);
        let pid = b.create("twice", &b.path().join("out"));
        b.ok(&["start", "twice"]);
        b.ok(&["delete", "--force", "twice"]);
        assert_eq!(wait_code(pid), 137);
        b.ok(&["delete", "--force", "twice"]);
        let o = b.sv(&["delete", "twice"], None);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    }
}

platform_tests! {
    fn two_containers_at_once(platform: Platform) {
        let b = Bundle::new(platform, &["sh", "-c", "exit 4"]);
        let c = Bundle::new(platform, &["sh", "-c", "echo second; exit 5"]);
        let pb = b.create("first", &b.path().join("out"));
        let pc = c.create("second", &c.path().join("out"));
        b.ok(&["start", "first"]);
        c.ok(&["start", "second"]);
        assert_eq!(wait_code(pb), 4);
        assert_eq!(wait_code(pc), 5);
        assert_eq!(
            std::fs::read_to_string(c.path().join("out")).unwrap(),
            "second\n"
        );
        b.ok(&["delete", "first"]);
        c.ok(&["delete", "second"]);
    }
}

/// Live children of `pid`, from /proc/*/stat's ppid.
fn children_of(pid: i32) -> Vec<i32> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        if fields[0] != "Z" && fields[1].parse::<i32>() == Ok(pid) {
            found.push(child);
        }
    }
    found
}

platform_tests! {
    fn spec_hostname_user_rlimits_and_umask_reach_the_application(platform: Platform) {
        // One program per container: the sentry has no fork or execve
        // yet, so each check is the program itself or shell builtins.
        let cases: [(&[&str], &str); 5] = [
            (&["/bin/busybox", "hostname"], "box1\n"),
            (&["/bin/busybox", "uname", "-n"], "box1\n"),
            (&["sh", "-c", "ulimit -n; ulimit -Hn; umask"], "321\n654\n0027\n"),
            (&["/bin/busybox", "id", "-u"], "1000\n"),
            (&["/bin/busybox", "id", "-g"], "1001\n"),
        ];
        for (i, (args, want)) in cases.into_iter().enumerate() {
            let b = Bundle::new(platform, args);
            let mut c = config(args);
            c["hostname"] = json!("box1");
            c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "umask": 0o027});
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}
            ]);
            b.write_config(&c);
            let out = b.path().join("out");
            let id = format!("ident{i}");
            let pid = b.create(&id, &out);
            b.ok(&["start", &id]);
            let code = wait_code(pid);
            let got = std::fs::read_to_string(&out).unwrap();
            assert_eq!((code, got.as_str()), (0, want), "{args:?}");
            b.ok(&["delete", &id]);
        }
    }
}

platform_tests! {
    fn a_fresh_network_namespace_has_loopback_up(platform: Platform) {
        if !Path::new("/usr/sbin/ip").exists() || !Path::new("/usr/bin/nsenter").exists() {
            eprintln!("needs ip and nsenter: skipped");
            return;
        }
        let b = Bundle::new(platform, &["true"]);
        let pid = b.create("lo", &b.path().join("out"));
        let ns = format!("/proc/{pid}/ns/net");
        assert_ne!(
            std::fs::read_link(&ns).unwrap(),
            std::fs::read_link("/proc/self/ns/net").unwrap(),
            "--network none gives the sentry its own namespace"
        );
        let o = Command::new("/usr/bin/nsenter")
            .arg(format!("--net={ns}"))
            .args(["/usr/sbin/ip", "-o", "link", "show", "lo"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(text.contains(",UP"), "lo is not up: {text}");
        b.ok(&["delete", "--force", "lo"]);
        assert_eq!(wait_code(pid), 137);
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

platform_tests! {
    fn bad_configs_fail_create_and_leave_nothing(platform: Platform) {
        type Breaker = Box<dyn Fn(&Bundle)>;
        let cases: Vec<(&str, Breaker, &str)> = vec![
            (
                "unreadable",
                Box::new(|b: &Bundle| std::fs::remove_file(b.path().join("config.json")).unwrap()),
                "config.json",
            ),
            (
                "not-json",
                Box::new(|b: &Bundle| {
                    std::fs::write(b.path().join("config.json"), "{\"ociVersion\": ").unwrap()
                }),
                "not valid JSON",
            ),
            (
                "no-args",
                Box::new(|b: &Bundle| {
                    let mut c = config(&["true"]);
                    c["process"].as_object_mut().unwrap().remove("args");
                    b.write_config(&c);
                }),
                "process.args",
            ),
            (
                "bad-namespace",
                Box::new(|b: &Bundle| {
                    let mut c = config(&["true"]);
                    c["linux"]["namespaces"][2]["type"] = json!("bogus");
                    b.write_config(&c);
                }),
                "linux.namespaces[2].type",
            ),
            (
                "escaping-root",
                Box::new(|b: &Bundle| {
                    let mut c = config(&["true"]);
                    c["root"]["path"] = json!("../../../etc");
                    b.write_config(&c);
                }),
                "root.path",
            ),
            (
                "missing-program",
                Box::new(|b: &Bundle| b.write_config(&config(&["/bin/nonexistent"]))),
                "process.args[0]",
            ),
        ];
        for (id, breakit, field) in cases {
            let b = Bundle::new(platform, &["true"]);
            breakit(&b);
            let pid_file = b.path().join("pid");
            let o = b.sv(
                &[
                    "create",
                    "--bundle",
                    b.path().to_str().unwrap(),
                    "--pid-file",
                    pid_file.to_str().unwrap(),
                    id,
                ],
                None,
            );
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{id}: create succeeded");
            assert!(
                stderr.contains(field),
                "{id}: stderr {stderr:?} does not name {field}"
            );
            let log = std::fs::read_to_string(b.log()).unwrap();
            let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
            assert_eq!(last["level"], "error", "{id}");
            assert!(
                last["msg"].as_str().unwrap().contains(field),
                "{id}: {last}"
            );
            assert!(last["time"].is_string());
            assert!(
                !b.root.path().join(id).exists(),
                "{id}: state dir left behind"
            );
            assert!(!pid_file.exists(), "{id}: pid file written");
            assert!(
                processes_mentioning(b.path().to_str().unwrap()).is_empty(),
                "{id}: processes left behind"
            );
        }
    }
}

/// Platform-independent: no sandbox is built.
#[test]
fn log_file_is_created_even_when_failing() {
    let b = Bundle::new(Platform::Systrap, &["true"]);
    let o = b.sv(&["start", "nosuch"], None);
    assert!(!o.status.success());
    let log = std::fs::read_to_string(b.log()).unwrap();
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(last["msg"].as_str().unwrap().contains("does not exist"));
}

/// Platform-independent: no sandbox is built.
#[test]
fn spec_writes_a_loadable_config() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(SUPERVISOR)
        .args(["spec", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert!(v["process"]["args"].is_array());
    // A second spec refuses to overwrite.
    let o = Command::new(SUPERVISOR)
        .args(["spec", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
}

/// Receives the pty master runc's way: one message, the fd by SCM_RIGHTS.
fn receive_console(listener: std::os::unix::net::UnixListener) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this fd for us alone.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd on the console socket");
}

platform_tests! {
    fn console_socket_gives_the_application_a_terminal(platform: Platform) {
        let b = Bundle::new(platform, &["sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"]);
        let mut c = config(&["sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"]);
        c["process"]["terminal"] = json!(true);
        b.write_config(&c);
        let sock = b.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let receiver = std::thread::spawn(move || receive_console(listener));
        let pid_file = b.path().join("pid");
        let o = b.sv(
            &[
                "create",
                "--bundle",
                b.path().to_str().unwrap(),
                "--console-socket",
                sock.to_str().unwrap(),
                "--pid-file",
                pid_file.to_str().unwrap(),
                "tty",
            ],
            None,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let master = receiver.join().unwrap();
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        b.ok(&["start", "tty"]);
        let mut out = Vec::new();
        let mut f = std::fs::File::from(master);
        let mut buf = [0u8; 256];
        // Read until the replica side closes (EIO) or the line has arrived.
        while !String::from_utf8_lossy(&out).contains("on-a-tty") {
            match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(wait_code(pid), 0);
        assert!(
            String::from_utf8_lossy(&out).contains("on-a-tty\r\n"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        b.ok(&["delete", "tty"]);
    }
}

platform_tests! {
    fn do_volumes_reach_the_host_and_ro_volumes_refuse_writes(platform: Platform) {
        setup();
        let root = tempfile::tempdir().unwrap();
        let rw = tempfile::tempdir().unwrap();
        let ro = tempfile::tempdir().unwrap();
        std::fs::write(ro.path().join("in.txt"), "from the host\n").unwrap();
        let script = "echo from-sandbox > /data/out.txt && read x < /ro/in.txt && echo \"$x\" \
                      && { echo no > /ro/new.txt || echo refused; }";
        let o = Command::new(SUPERVISOR)
            .arg("--root")
            .arg(root.path())
            .args(["--platform", platform.name()])
            .arg("do")
            .arg("--volume")
            .arg(format!("{}:/data", rw.path().display()))
            .arg("-v")
            .arg(format!("{}:/ro:ro", ro.path().display()))
            .args(["--", "/bin/busybox", "sh", "-c", script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "from the host\nrefused\n");
        assert_eq!(
            std::fs::read_to_string(rw.path().join("out.txt")).unwrap(),
            "from-sandbox\n",
            "a writable volume's writes reach the host"
        );
        assert!(!ro.path().join("new.txt").exists());
        let o = Command::new(SUPERVISOR)
            .arg("--root")
            .arg(root.path())
            .args(["do", "--volume", "relative:/x", "--", "/bin/busybox", "true"])
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("--volume"), "{o:?}");
    }
}

platform_tests! {
    fn do_runs_a_host_program_on_the_host_root(platform: Platform) {
        setup();
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data.txt");
        std::fs::write(&data, "read through the gofer\n").unwrap();
        let o = Command::new(SUPERVISOR)
            .arg("--root")
            .arg(root.path())
            .args(["--platform", platform.name()])
            .args(["do", "--", "/bin/busybox", "cat"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "read through the gofer\n"
        );
        let o = Command::new(SUPERVISOR)
            .arg("--root")
            .arg(root.path())
            .args(["--platform", platform.name()])
            .args(["do", "--", "/bin/busybox", "sh", "-c", "exit 7"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(7));
        assert!(
            state_dirs(root.path()).is_empty(),
            "do leaves no state behind"
        );
        // --strace without --debug-log prints one line per syscall to stderr.
        let o = Command::new(SUPERVISOR)
            .arg("--root")
            .arg(root.path())
            .args(["--platform", platform.name(), "--strace"])
            .args(["do", "--", "/bin/busybox", "echo", "traced"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "traced\n");
        let trace = String::from_utf8_lossy(&o.stderr);
        assert!(trace.contains("write(1, \"traced\\n\", 7) = 7"), "{trace}");
        assert!(trace.contains("exit_group(0)"), "{trace}");
        // Writes land in the sentry's in-memory overlay, never on the host.
        let written = root.path().join("written.txt");
        let script = format!(
            "echo in-overlay > {0} && read x < {0} && echo \"$x\" && echo more >> {1}",
            written.display(),
            data.display()
        );
        let o = Command::new(SUPERVISOR)
            .arg("--root")
            .arg(root.path())
            .args(["--platform", platform.name()])
            .args(["do", "--", "/bin/busybox", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "in-overlay\n");
        assert!(!written.exists(), "the host's / is untouched");
        assert_eq!(std::fs::read_to_string(&data).unwrap(), "read through the gofer\n");
        // /dev is the sentry's devfs, not the host's (builtins only: no fork).
        let script = "echo x > /dev/null && read -n 4 y < /dev/zero && echo ok \
                      && { echo y > /dev/full || echo full; }";
        let o = Command::new(SUPERVISOR)
            .arg("--root")
            .arg(root.path())
            .args(["--platform", platform.name()])
            .args(["do", "--", "/bin/busybox", "sh", "-c", script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\nfull\n");
    }
}

fn state_dirs(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}
