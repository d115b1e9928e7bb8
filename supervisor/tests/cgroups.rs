//! End-to-end cgroups: the sandbox's processes in `linux.cgroupsPath` with
//! the spec's limits, `update`, `pause`/`resume`, `events`, and the cgroup
//! gone after `delete`. Needs root, /dev/kvm, /bin/busybox and a cgroup
//! mount at /sys/fs/cgroup (v1 controllers or cgroup2).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::wait::{waitpid, WaitStatus};
use serde_json::{json, Value};

const SUPERVISOR: &str = env!("CARGO_BIN_EXE_supervisor");
const MOUNT: &str = "/sys/fs/cgroup";

fn is_v2() -> bool {
    nix::sys::statfs::statfs(MOUNT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The file of `controller` for relative cgroup `path`.
fn file(controller: &str, path: &str, name: &str) -> PathBuf {
    if is_v2() {
        Path::new(MOUNT).join(path).join(name)
    } else {
        Path::new(MOUNT).join(controller).join(path).join(name)
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

struct Sandbox {
    dir: tempfile::TempDir,
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new(args: &[&str], linux_extra: Value) -> Self {
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "proc", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in ["sh", "sleep", "echo"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        let mut linux = json!({"namespaces": [
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
        ]});
        for (k, v) in linux_extra.as_object().unwrap() {
            linux[k] = v.clone();
        }
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": args,
                        "env": ["PATH=/bin"], "cwd": "/"},
            "root": {"path": "rootfs", "readonly": true},
            "linux": linux,
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        Self {
            dir,
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(SUPERVISOR);
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn create(&self, global: &[&str], id: &str) -> i32 {
        let pid_file = self.dir.path().join("pid");
        let mut args: Vec<&str> = global.to_vec();
        args.extend([
            "create",
            "--bundle",
            self.dir.path().to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            id,
        ]);
        // The container's stdio is create's: a file, never a pipe the test
        // would wait on until the sandbox exits.
        let out_path = self.dir.path().join("out");
        let out = std::fs::File::create(&out_path).unwrap();
        let status = self
            .cmd(&args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        assert!(status.success(), "create: {}", read(&out_path));
        read(&pid_file).parse().unwrap()
    }

    fn status(&self, id: &str) -> String {
        let v: Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    fn gofer(&self, id: &str) -> i32 {
        let st: Value = serde_json::from_slice(
            &std::fs::read(self.root.path().join(id).join("state.json")).unwrap(),
        )
        .unwrap();
        st["gofer_pid"].as_i64().unwrap() as i32
    }
}

/// The cgroup of `pid` in the memory hierarchy (v1) or the unified one.
fn cgroup_of(pid: i32) -> String {
    let text = read(Path::new(&format!("/proc/{pid}/cgroup")));
    let want = if is_v2() { "" } else { "memory" };
    text.lines()
        .find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctl, path) = (it.next()?, it.next()?, it.next()?);
            ctl.split(',').any(|c| c == want).then(|| path.to_string())
        })
        .unwrap()
}

fn wait_code(pid: i32) -> i32 {
    match waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap() {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        other => panic!("{other:?}"),
    }
}

/// Removes the test's parent cgroup (the runtime removes only the leaf).
fn remove_parent(parent: &str) {
    for ctl in ["memory", "cpu", "cpuacct", "pids", "freezer", "blkio", ""] {
        let _ = std::fs::remove_dir(Path::new(MOUNT).join(ctl).join(parent));
    }
}

#[test]
fn limits_pause_update_events_and_removal() {
    let parent = format!("rvisor-test-{}", std::process::id());
    let path = format!("{parent}/limits");
    let b = Sandbox::new(
        &["/bin/sleep", "30"],
        json!({
            "cgroupsPath": format!("/{path}"),
            "resources": {
                "memory": {"limit": 268435456},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                "pids": {"limit": 64}
            }
        }),
    );
    let pid = b.create(&[], "limits");
    let gofer = b.gofer("limits");
    // Both sandbox processes are in the cgroup, with the spec's limits.
    assert_eq!(cgroup_of(pid), format!("/{path}"));
    assert_eq!(cgroup_of(gofer), format!("/{path}"));
    if is_v2() {
        assert_eq!(read(&file("memory", &path, "memory.max")), "268435456");
        assert_eq!(read(&file("cpu", &path, "cpu.max")), "50000 100000");
    } else {
        assert_eq!(
            read(&file("memory", &path, "memory.limit_in_bytes")),
            "268435456"
        );
        assert_eq!(read(&file("cpu", &path, "cpu.shares")), "512");
        assert_eq!(read(&file("cpu", &path, "cpu.cfs_quota_us")), "50000");
    }
    assert_eq!(read(&file("pids", &path, "pids.max")), "64");

    b.ok(&["start", "limits"]);
    assert_eq!(b.status("limits"), "running");
    b.ok(&["pause", "limits"]);
    assert_eq!(b.status("limits"), "paused");
    if !is_v2() {
        assert_eq!(read(&file("freezer", &path, "freezer.state")), "FROZEN");
    }
    b.ok(&["resume", "limits"]);
    assert_eq!(b.status("limits"), "running");

    // docker update's JSON: zeros mean "unchanged", unmapped keys accepted.
    let mut child = b
        .cmd(&["update", "--resources", "-", "limits"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        br#"{"memory":{"limit":134217728,"swap":0},"cpu":{"shares":0,"cpus":""},"pids":{"limit":32},"blockIO":{"weight":0}}"#,
    )
    .unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "update: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mem = if is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(&file("memory", &path, mem)), "134217728");
    assert_eq!(read(&file("pids", &path, "pids.max")), "32");

    let line = b.ok(&["events", "--stats", "limits"]);
    assert_eq!(line.lines().count(), 1, "{line}");
    let ev: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], "limits");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{ev}"
    );
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 134217728);
    assert!(
        ev["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{ev}"
    );
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 2, "{ev}");
    assert_eq!(ev["data"]["pids"]["limit"], 32);

    // A paused container still dies of SIGKILL.
    b.ok(&["pause", "limits"]);
    b.ok(&["kill", "limits", "9"]);
    assert_eq!(wait_code(pid), 137);
    b.ok(&["delete", "limits"]);
    for ctl in ["memory", "pids", "freezer", "cpu"] {
        assert!(!file(ctl, &path, "").exists(), "{ctl} cgroup left behind");
    }
    remove_parent(&parent);
}

#[test]
fn systemd_path_is_mapped_and_removed_by_a_plain_delete_force() {
    let slice = format!("rvtest{}.slice", std::process::id());
    let b = Sandbox::new(
        &["/bin/sleep", "30"],
        json!({"cgroupsPath": format!("{slice}:rvisor:sd")}),
    );
    let pid = b.create(&["--systemd-cgroup"], "sd");
    let path = format!("{slice}/rvisor-sd.scope");
    assert_eq!(cgroup_of(pid), format!("/{path}"));
    // containerd's cleanup comes without --systemd-cgroup.
    b.ok(&["delete", "--force", "sd"]);
    assert_eq!(wait_code(pid), 137);
    assert!(!file("memory", &path, "").exists());
    b.ok(&["delete", "--force", "sd"]);
    remove_parent(&slice);
}

#[test]
fn pause_and_update_work_without_a_cgroups_path() {
    let b = Sandbox::new(&["/bin/sleep", "30"], json!({}));
    let id = format!("plain-{}", std::process::id());
    let pid = b.create(&[], &id);
    b.ok(&["start", &id]);
    b.ok(&["update", "--pids-limit", "50", &id]);
    let path = &format!("rvisor/{id}");
    assert_eq!(read(&file("pids", path, "pids.max")), "50");
    assert_eq!(cgroup_of(pid), format!("/{path}"));
    b.ok(&["pause", &id]);
    assert_eq!(b.status(&id), "paused");
    b.ok(&["resume", &id]);
    b.ok(&["delete", "--force", &id]);
    assert_eq!(wait_code(pid), 137);
    assert!(!file("pids", path, "").exists());
    remove_parent("rvisor");
}

#[test]
fn events_report_an_oom_kill() {
    let b = Sandbox::new(&["/hog"], json!({}));
    // A static program that touches 1 GiB, 16 MiB at a time.
    let src = b.dir.path().join("hog.c");
    std::fs::write(
        &src,
        "#include <stdlib.h>\n#include <string.h>\nint main(void) {\n\
         for (int i = 0; i < 64; i++) { char *p = malloc(16 << 20); if (!p) return 2;\n\
         memset(p, 1, 16 << 20); }\nreturn 0; }\n",
    )
    .unwrap();
    let cc = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(b.dir.path().join("rootfs/hog"))
        .arg(&src)
        .status();
    if !cc.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no C compiler to build the memory hog");
        return;
    }
    let parent = format!("rvisor-oom-{}", std::process::id());
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(b.dir.path().join("config.json")).unwrap()).unwrap();
    config["linux"]["cgroupsPath"] = json!(format!("/{parent}/hog"));
    config["linux"]["resources"] = json!({"memory": {"limit": 64 << 20, "swap": 64 << 20}});
    std::fs::write(b.dir.path().join("config.json"), config.to_string()).unwrap();

    let pid = b.create(&[], "hog");
    let mut events = b
        .cmd(&["events", "--interval", "1s", "hog"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first stats line tells the watcher is running before the start.
    let mut reader = std::io::BufReader::new(events.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    assert!(first.contains("\"stats\""), "{first}");
    b.ok(&["start", "hog"]);
    // The memory limit ends the sandbox (the sentry holds the memory).
    assert_eq!(wait_code(pid), 137);
    // `events` ends with the container; an oom line came before.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let types: Vec<String> = rest
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(types.iter().any(|t| t == "oom"), "{rest}");
    assert!(events.wait().unwrap().success());
    b.ok(&["delete", "hog"]);
    remove_parent(&parent);
}
