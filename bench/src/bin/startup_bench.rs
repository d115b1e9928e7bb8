//! Container startup to exit of a static hello, median of N runs:
//! - `supervisor run` on an OCI bundle whose rootfs holds only the program
//! - `supervisor do` on the same program (host root served read-only)
//! - `runc run` and `crun run` on the same bundle, when installed
//!
//! Each line gives the ratio to runc (and to crun). Target: faster than
//! runc. Timings are printed, never asserted. Needs root.

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

    /// One warm-up run, then the median of `runs`.
    fn median(&self, runs: usize) -> Result<Duration> {
        self.run_once(usize::MAX)?;
        let mut times = (0..runs)
            .map(|n| self.run_once(n))
            .collect::<Result<Vec<_>>>()?;
        times.sort();
        Ok(times[times.len() / 2])
    }
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
    let mut rows: Vec<(&'static str, Option<Duration>)> = Vec::new();
    for rt in [
        Some(oci_run("supervisor run", supervisor.clone())),
        Some(Runtime {
            name: "supervisor do",
            program: supervisor.clone(),
            args: vec![
                "--root".into(),
                state_root("do"),
                "do".into(),
                hello.display().to_string(),
            ],
        }),
        which("runc").map(|p| oci_run("runc run", p)),
        crun,
    ]
    .into_iter()
    .flatten()
    {
        match rt.median(args.runs) {
            Ok(m) => rows.push((rt.name, Some(m))),
            Err(e) => println!("{}: failed: {e:#}", rt.name),
        }
    }
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
        "startup to exit of a static hello (bench/progs/hello.c), median of {} runs",
        args.runs
    );
    for (name, d) in &rows {
        let Some(d) = d else {
            println!("{name:<20} not installed");
            continue;
        };
        let ratio = |base: Option<Duration>| match base {
            Some(b) => format!("{:>6.2}", d.as_secs_f64() / b.as_secs_f64()),
            None => "     -".into(),
        };
        println!(
            "{name:<20} {:>8.2} ms   vs runc {}   vs crun {}",
            ms(*d),
            ratio(runc),
            ratio(crun)
        );
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
