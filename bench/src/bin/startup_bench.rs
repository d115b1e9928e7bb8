//! Container startup to exit of a static hello, median of N runs:
//! - `supervisor run` on an OCI bundle whose rootfs holds only the program
//! - `supervisor do` on the same program (host root served read-only), with
//!   the default `--platform auto` and then on each platform:
//!   `supervisor --platform kvm do` and `supervisor --platform systrap do`
//! - `runc run` and `crun run` on the same bundle, when installed
//!
//! Each line gives the ratio to runc (and to crun); the per-platform `do`
//! lines are also compared with each other (issue 5's benchmark). Target:
//! faster than runc. Timings are printed, never asserted. Needs root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bench::sibling_binary;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "startup to exit of a static hello: supervisor vs runc and crun")]
struct Args {
    /// Runs per runtime (the median is reported).
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn compile_hello(out_dir: &Path) -> Result<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("progs/hello.c");
    let binary = out_dir.join("hello");
    let output = Command::new("cc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .context("running cc (is a C compiler installed?)")?;
    if !output.status.success() {
        bail!(
            "cc -static -O2 {} failed: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(binary)
}

/// A bundle every runtime accepts: rootfs = the hello alone, the usual
/// namespaces, /proc (runc and crun need it), no cgroupsPath, no
/// terminal.
fn make_bundle(dir: &Path, hello: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    for d in ["proc", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).context("creating the rootfs")?;
    }
    std::fs::copy(hello, rootfs.join("hello")).context("copying hello into the rootfs")?;
    let config = r#"{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/hello"],
    "env": ["PATH=/"],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "bench",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
  "linux": {
    "namespaces": [
      {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}
    ]
  }
}
"#;
    std::fs::write(dir.join("config.json"), config).context("writing config.json")
}

/// One runtime under test: how to start hello once.
struct Runtime {
    name: &'static str,
    program: PathBuf,
    /// Arguments; `{id}` is replaced by a fresh container id.
    args: Vec<String>,
}

impl Runtime {
    fn run_once(&self, n: usize) -> Result<Duration> {
        let id = format!("startup-bench-{}-{n}", std::process::id());
        let args: Vec<String> = self.args.iter().map(|a| a.replace("{id}", &id)).collect();
        let start = Instant::now();
        let out = Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.program.display()))?;
        let took = start.elapsed();
        if !out.status.success() || out.stdout != b"hello\n" {
            bail!(
                "{} {}: {} (stdout {:?}, stderr {:?})",
                self.name,
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    }
}

/// One warm-up run of each runtime, then `runs` rounds of one run each,
/// interleaved so that drift on the host (page cache, frequency, other
/// load) falls on every runtime alike; the median of each. A runtime that
/// fails is reported and dropped.
fn medians(runtimes: Vec<Runtime>, runs: usize) -> Vec<(&'static str, Duration)> {
    let mut live: Vec<(Runtime, Vec<Duration>)> = runtimes
        .into_iter()
        .filter_map(|rt| match rt.run_once(usize::MAX) {
            Ok(_) => Some((rt, Vec::with_capacity(runs))),
            Err(e) => {
                println!("{}: failed: {e:#}", rt.name);
                None
            }
        })
        .collect();
    for n in 0..runs {
        live.retain_mut(|(rt, times)| match rt.run_once(n) {
            Ok(t) => {
                times.push(t);
                true
            }
            Err(e) => {
                println!("{}: failed: {e:#}", rt.name);
                false
            }
        });
    }
    live.into_iter()
        .map(|(rt, mut times)| {
            times.sort();
            (rt.name, times[times.len() / 2])
        })
        .collect()
}

/// The path of `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let scratch =
        Scratch(std::env::temp_dir().join(format!("startup-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).context("creating the scratch directory")?;
    let hello = compile_hello(&scratch.0)?;
    let bundle = scratch.0.join("bundle");
    make_bundle(&bundle, &hello)?;
    let bundle_s = bundle.display().to_string();
    let supervisor = sibling_binary("supervisor")?;

    let state_root = |name: &str| {
        scratch
            .0
            .join(format!("root-{}", name.replace(' ', "-")))
            .display()
            .to_string()
    };
    let oci_run = |name: &'static str, program: PathBuf| Runtime {
        name,
        program,
        args: vec![
            "--root".into(),
            state_root(name),
            "run".into(),
            "--bundle".into(),
            bundle_s.clone(),
            "{id}".into(),
        ],
    };
    // crun refuses a cgroup v1 host whose cgroup2 mount holds a controller
    // ("hybrid mode"); it then runs in a mount namespace of its own
    // without that mount, as the note under the table says.
    let crun = which("crun").map(|p| {
        let mut rt = oci_run("crun run", p.clone());
        if rt.run_once(usize::MAX - 1).is_err() {
            let cmd = format!(
                "umount /sys/fs/cgroup/unified && exec {} {} \"$0\"",
                p.display(),
                rt.args[..rt.args.len() - 1]
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            rt = Runtime {
                name: "crun run (*)",
                program: "unshare".into(),
                args: vec!["-m".into(), "sh".into(), "-c".into(), cmd, "{id}".into()],
            };
        }
        rt
    });
    // `supervisor [--platform P] do hello`; None is the default (auto).
    let supervisor_do = |name: &'static str, platform: Option<&str>| {
        let mut args: Vec<String> = vec!["--root".into(), state_root(name)];
        if let Some(p) = platform {
            args.extend(["--platform".into(), p.into()]);
        }
        args.extend(["do".into(), hello.display().to_string()]);
        Runtime {
            name,
            program: supervisor.clone(),
            args,
        }
    };
    let runtimes: Vec<Runtime> = [
        Some(oci_run("supervisor run", supervisor.clone())),
        Some(supervisor_do("supervisor do", None)),
        Some(supervisor_do("supervisor do kvm", Some("kvm"))),
        Some(supervisor_do("supervisor do systrap", Some("systrap"))),
        which("runc").map(|p| oci_run("runc run", p)),
        crun,
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut rows: Vec<(&'static str, Option<Duration>)> = medians(runtimes, args.runs)
        .into_iter()
        .map(|(name, d)| (name, Some(d)))
        .collect();
    for name in ["runc run", "crun run"] {
        if !rows.iter().any(|(n, _)| n.starts_with(name)) {
            rows.push((name, None));
        }
    }
    let find = |name: &str| rows.iter().find(|(n, _)| *n == name).and_then(|(_, d)| *d);
    let (runc, crun) = (
        find("runc run"),
        find("crun run").or_else(|| find("crun run (*)")),
    );

    println!(
        "startup to exit of a static hello (bench/progs/hello.c), median of {} interleaved runs",
        args.runs
    );
    for (name, d) in &rows {
        let Some(d) = d else {
            println!("{name:<22} not installed");
            continue;
        };
        let ratio = |base: Option<Duration>| match base {
            Some(b) => format!("{:>6.2}", d.as_secs_f64() / b.as_secs_f64()),
            None => "     -".into(),
        };
        println!(
            "{name:<22} {:>8.2} ms   vs runc {}   vs crun {}",
            ms(*d),
            ratio(runc),
            ratio(crun)
        );
    }
    let auto = Command::new(&supervisor)
        .arg("features")
        .output()
        .ok()
        .and_then(|o| {
            let doc: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
            Some(doc["rvisor"]["platformAuto"].as_str()?.to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("supervisor do per platform (the default, auto, picks {auto} here):");
    match (find("supervisor do kvm"), find("supervisor do systrap")) {
        (Some(kvm), Some(systrap)) => println!(
            "  kvm {:.2} ms / systrap {:.2} ms = {:.2}",
            ms(kvm),
            ms(systrap),
            kvm.as_secs_f64() / systrap.as_secs_f64()
        ),
        _ => println!("  a platform failed (see above): no ratio"),
    }
    if rows.iter().any(|(n, _)| *n == "crun run (*)") {
        println!(
            "(*) as `unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun ...'`: this \
             crun refuses the host's hybrid cgroup layout (unshare and sh add their startup)"
        );
    }
    println!(
        "(no cgroupsPath in the bundle: runc and crun make a default cgroup, the supervisor none)"
    );
    match (find("supervisor run"), runc) {
        (Some(ours), Some(r)) => println!(
            "target: supervisor run faster than runc run: {}",
            if ours < r { "met" } else { "NOT met" }
        ),
        _ => println!("target: supervisor run faster than runc run: runc not installed"),
    }
    Ok(())
}
