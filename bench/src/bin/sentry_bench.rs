//! The sentry on each platform (systrap, kvm) against native execution, in
//! one run:
//! - getpid round trip, ns per call (systrap also with its spin disabled, to
//!   show what the bounded spin buys)
//! - first touch of a 256 MiB anonymous region, ns per 4 KiB page
//! - startup to exit of a static hello through `sentry exec` (the supervisor
//!   does not exist yet, so `supervisor do` cannot be timed)
//! - a static program making 100,000 mixed system calls (write to stdout on
//!   /dev/null, clock_gettime, getpid, mmap/munmap), ns per call
//!
//! The C programs in bench/progs are compiled here with `cc -static -O2` into a
//! temporary directory, then run natively and under `sentry exec --platform P`.
//! Each program times its own loop with clock_gettime(CLOCK_MONOTONIC) and
//! prints `RESULT <name> rep=<i> <count-key>=<n> ns=<total>` lines, parsed
//! here. Nothing is asserted: figures and verdicts are printed only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;

/// The host-served syscall floor under KVM on these machines (shared/KVM.md).
const KVM_SYSCALL_FLOOR_NS: f64 = 106_000.0;
/// Issue 5 targets for systrap on this machine.
const SYSTRAP_GETPID_TARGET_NS: f64 = 2_000.0;
const TOUCH_TARGET_RATIO: f64 = 3.0;
const MIXED_TARGET_RATIO: f64 = 20.0;
/// KVM targets (issue 3): getpid within 10% of the floor, touch <= 2 us/page.
const KVM_GETPID_TARGET_NS: f64 = KVM_SYSCALL_FLOOR_NS * 1.10;
const KVM_TOUCH_TARGET_NS: f64 = 2_000.0;

#[derive(Debug, Parser)]
#[command(about = "sentry (systrap, kvm) vs native: getpid, first touch, startup, mixed syscalls")]
struct Args {
    /// getpid calls per timed repetition.
    #[arg(long, default_value_t = 20000)]
    getpid_iters: u64,
    /// getpid calls per repetition under KVM (each costs ~100 us there).
    #[arg(long, default_value_t = 2000)]
    kvm_getpid_iters: u64,
    /// Timed getpid repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    getpid_reps: u64,
    /// Size of the anonymous region touched, in MiB.
    #[arg(long, default_value_t = 256)]
    touch_mib: u64,
    /// Touch repetitions, each on a freshly mapped region (the median is reported).
    #[arg(long, default_value_t = 3)]
    touch_reps: u64,
    /// Startup-to-exit runs of hello per platform (the median is reported).
    #[arg(long, default_value_t = 10)]
    startup_runs: u64,
    /// Calls of the mixed program per repetition.
    #[arg(long, default_value_t = 100_000)]
    mixed_calls: u64,
    /// Mixed-program repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    mixed_reps: u64,
    /// Skip the KVM platform.
    #[arg(long)]
    no_kvm: bool,
}

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("rvisor-sentry-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `sentry` built next to this benchmark (target/release/sentry).
fn sentry_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the benchmark executable")?;
    let dir = exe
        .parent()
        .with_context(|| format!("no directory for {}", exe.display()))?;
    let path = dir.join("sentry");
    ensure!(
        path.exists(),
        "{} not built: run `cargo build --release -p sentry -p bench` first",
        path.display()
    );
    Ok(path)
}

/// Compiles bench/progs/NAME.c with `cc -static -O2` into `out_dir`.
fn compile(name: &str, out_dir: &Path) -> Result<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("progs")
        .join(format!("{name}.c"));
    let binary = out_dir.join(name);
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

/// Where a program runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Runner {
    Native,
    /// Under `sentry exec --platform NAME`, with RVISOR_SYSTRAP_SPIN_NS if given.
    Sentry {
        platform: &'static str,
        spin_ns: Option<u64>,
    },
}

impl Runner {
    const SYSTRAP: Runner = Runner::Sentry {
        platform: "systrap",
        spin_ns: None,
    };
    const SYSTRAP_NO_SPIN: Runner = Runner::Sentry {
        platform: "systrap",
        spin_ns: Some(0),
    };
    const KVM: Runner = Runner::Sentry {
        platform: "kvm",
        spin_ns: None,
    };

    fn label(self) -> String {
        match self {
            Runner::Native => "native".into(),
            Runner::Sentry {
                platform,
                spin_ns: Some(0),
            } => format!("{platform} (no spin)"),
            Runner::Sentry { platform, .. } => platform.into(),
        }
    }

    fn command(self, sentry: &Path, program: &Path, args: &[String]) -> Command {
        let mut command = match self {
            Runner::Native => Command::new(program),
            Runner::Sentry { platform, spin_ns } => {
                let mut c = Command::new(sentry);
                c.args(["exec", "--platform", platform, "--"]).arg(program);
                if let Some(ns) = spin_ns {
                    c.env("RVISOR_SYSTRAP_SPIN_NS", ns.to_string());
                }
                c
            }
        };
        command.args(args);
        command
    }
}

/// Runs `program args` and returns ns per unit for every `RESULT <name>`
/// repetition it printed (on stdout, or on stderr with stdout on /dev/null).
fn run(
    runner: Runner,
    sentry: &Path,
    program: &Path,
    args: &[String],
    name: &str,
    count_key: &str,
    stdout_to_null: bool,
) -> Result<Vec<f64>> {
    let mut command = runner.command(sentry, program, args);
    if stdout_to_null {
        command.stdout(Stdio::null());
    }
    let where_ = runner.label();
    let output = command
        .output()
        .with_context(|| format!("running {} ({where_})", program.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "{} ({where_}) exited with {}\nstdout: {stdout}\nstderr: {stderr}",
            program.display(),
            output.status,
        );
    }
    let text = if stdout_to_null { &stderr } else { &stdout };
    let per_unit = parse_results(text, name, count_key)?;
    ensure!(
        !per_unit.is_empty(),
        "{} ({where_}) printed no RESULT {name} line:\n{text}",
        program.display()
    );
    Ok(per_unit)
}

/// Parses `RESULT <name> rep=<i> <count_key>=<n> ns=<total>` lines into ns per unit.
fn parse_results(text: &str, name: &str, count_key: &str) -> Result<Vec<f64>> {
    let mut values = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("RESULT") || words.next() != Some(name) {
            continue;
        }
        let (mut count, mut ns) = (None, None);
        for word in words {
            if let Some((key, value)) = word.split_once('=') {
                let value: f64 = value
                    .parse()
                    .with_context(|| format!("bad number in {line:?}"))?;
                if key == count_key {
                    count = Some(value);
                } else if key == "ns" {
                    ns = Some(value);
                }
            }
        }
        match (count, ns) {
            (Some(count), Some(ns)) if count > 0.0 => values.push(ns / count),
            _ => bail!("malformed result line {line:?}"),
        }
    }
    Ok(values)
}

/// Wall time from spawn to exit of `program`, `runs` times, in ns.
fn startup(runner: Runner, sentry: &Path, program: &Path, runs: u64) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let status = runner
            .command(sentry, program, &[])
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {} ({})", program.display(), runner.label()))?;
        let elapsed = started.elapsed();
        ensure!(
            status.success(),
            "hello ({}) failed: {status}",
            runner.label()
        );
        times.push(elapsed.as_nanos() as f64);
    }
    Ok(times)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// One measured quantity on every runner, printed as a table with ratios to native.
struct Table {
    what: String,
    unit: &'static str,
    rows: Vec<(Runner, Result<Vec<f64>>)>,
}

impl Table {
    fn native(&self) -> f64 {
        self.rows
            .iter()
            .find(|(r, _)| *r == Runner::Native)
            .and_then(|(_, v)| v.as_ref().ok())
            .map_or(f64::NAN, |v| median(v))
    }

    fn median_of(&self, runner: Runner) -> Option<f64> {
        self.rows
            .iter()
            .find(|(r, _)| *r == runner)
            .and_then(|(_, v)| v.as_ref().ok())
            .map(|v| median(v))
    }

    fn print(&self) {
        println!("{} (ns per {}, median)", self.what, self.unit);
        let native = self.native();
        for (runner, values) in &self.rows {
            match values {
                Ok(values) => {
                    let m = median(values);
                    println!(
                        "    {:<20} {:>14.1} ns   {:>8.2}x native   reps: {}",
                        runner.label(),
                        m,
                        m / native,
                        list(values)
                    );
                }
                Err(e) => println!("    {:<20} failed: {e:#}", runner.label()),
            }
        }
    }
}

fn main() -> Result<()> {
    let started = Instant::now();
    let args = Args::parse();
    let sentry = sentry_binary()?;
    let scratch = TempDir::new()?;
    let getpid = compile("getpid_loop", &scratch.0)?;
    let touch = compile("touch", &scratch.0)?;
    let hello = compile("hello", &scratch.0)?;
    let mixed = compile("mixed", &scratch.0)?;
    let trap_floor = compile("trap_floor", &scratch.0)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut sentries = vec![Runner::SYSTRAP];
    if !args.no_kvm {
        sentries.push(Runner::KVM);
    }

    println!(
        "sentry bench: {} on {cpus} CPU(s); platforms: {}",
        sentry.display(),
        sentries
            .iter()
            .map(|r| r.label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();

    // getpid: systrap with and without its spin; KVM with fewer iterations.
    let getpid_table = {
        let mut rows = Vec::new();
        let reps = args.getpid_reps.to_string();
        let fast = [args.getpid_iters.to_string(), reps.clone()];
        let slow = [args.kvm_getpid_iters.to_string(), reps];
        for runner in [Runner::Native, Runner::SYSTRAP, Runner::SYSTRAP_NO_SPIN]
            .into_iter()
            .chain(sentries.iter().copied().filter(|r| *r == Runner::KVM))
        {
            let a = if runner == Runner::KVM { &slow } else { &fast };
            rows.push((
                runner,
                run(runner, &sentry, &getpid, a, "getpid", "iters", false),
            ));
        }
        Table {
            what: "getpid round trip".into(),
            unit: "call",
            rows,
        }
    };
    getpid_table.print();
    // The kernel's own cost of a trapped syscall on this host right now: a
    // SIGSYS handler in the same thread, no sentry, no hand-off.
    let floor_args = [args.getpid_iters.to_string(), args.getpid_reps.to_string()];
    let floor = run(
        Runner::Native,
        &sentry,
        &trap_floor,
        &floor_args,
        "trapfloor",
        "iters",
        false,
    );
    match &floor {
        Ok(values) => println!(
            "    {:<20} {:>14.1} ns   (in-process seccomp trap + SIGSYS handler: the floor \
             for any signal-based platform on this host)   reps: {}",
            "trap floor",
            median(values),
            list(values)
        ),
        Err(e) => println!("    trap floor failed: {e:#}"),
    }

    let touch_table = {
        let a = [args.touch_mib.to_string(), args.touch_reps.to_string()];
        let mut rows = Vec::new();
        for runner in std::iter::once(Runner::Native).chain(sentries.iter().copied()) {
            rows.push((
                runner,
                run(runner, &sentry, &touch, &a, "touch", "pages", false),
            ));
        }
        Table {
            what: format!("first touch of {} MiB anonymous", args.touch_mib),
            unit: "4 KiB page",
            rows,
        }
    };
    touch_table.print();

    let startup_table = {
        let mut rows = Vec::new();
        for runner in std::iter::once(Runner::Native).chain(sentries.iter().copied()) {
            rows.push((runner, startup(runner, &sentry, &hello, args.startup_runs)));
        }
        Table {
            what: "startup to exit of a static hello via `sentry exec` (startup_bench \
                   times `supervisor do` on each platform)"
                .into(),
            unit: "run",
            rows,
        }
    };
    startup_table.print();

    let mixed_table = {
        let a = [args.mixed_calls.to_string(), args.mixed_reps.to_string()];
        let mut rows = Vec::new();
        for runner in [Runner::Native, Runner::SYSTRAP, Runner::SYSTRAP_NO_SPIN]
            .into_iter()
            .chain(sentries.iter().copied().filter(|r| *r == Runner::KVM))
        {
            rows.push((
                runner,
                run(runner, &sentry, &mixed, &a, "mixed", "calls", true),
            ));
        }
        Table {
            what: format!(
                "{} mixed syscalls (write to /dev/null, clock_gettime, getpid, mmap/munmap)",
                args.mixed_calls
            ),
            unit: "call",
            rows,
        }
    };
    mixed_table.print();

    println!();
    println!("targets (issue 5, systrap on this machine):");
    let native_touch = touch_table.native();
    let native_mixed = mixed_table.native();
    if let Some(g) = getpid_table.median_of(Runner::SYSTRAP) {
        println!(
            "    systrap getpid <= {:.1} us median: {:.2} us: {}",
            SYSTRAP_GETPID_TARGET_NS / 1e3,
            g / 1e3,
            verdict(g <= SYSTRAP_GETPID_TARGET_NS)
        );
        if let Ok(values) = &floor {
            let f = median(values);
            println!(
                "        (the host's trap floor is {:.2} us; systrap adds {:.2} us for the \
                 hand-off to the sentry and back)",
                f / 1e3,
                (g - f) / 1e3
            );
        }
    }
    if let (Some(spin), Some(no_spin)) = (
        getpid_table.median_of(Runner::SYSTRAP),
        getpid_table.median_of(Runner::SYSTRAP_NO_SPIN),
    ) {
        println!(
            "    what the spin buys on {cpus} CPU(s): getpid {:.2} us with spin vs {:.2} us without ({:.1}x)",
            spin / 1e3,
            no_spin / 1e3,
            no_spin / spin
        );
    }
    if let Some(t) = touch_table.median_of(Runner::SYSTRAP) {
        println!(
            "    systrap first touch <= {TOUCH_TARGET_RATIO:.0}x native: {:.2}x: {}",
            t / native_touch,
            verdict(t / native_touch <= TOUCH_TARGET_RATIO)
        );
    }
    if let Some(m) = mixed_table.median_of(Runner::SYSTRAP) {
        println!(
            "    systrap mixed <= {MIXED_TARGET_RATIO:.0}x native: {:.2}x: {}",
            m / native_mixed,
            verdict(m / native_mixed <= MIXED_TARGET_RATIO)
        );
    }
    println!("    startup via `supervisor do` on each platform: see startup_bench");
    if sentries.contains(&Runner::KVM) {
        println!("targets (issue 3, kvm):");
        if let Some(g) = getpid_table.median_of(Runner::KVM) {
            println!(
                "    kvm getpid within 10% of the ~{:.0} us floor (<= {:.1} us): {:.1} us: {}",
                KVM_SYSCALL_FLOOR_NS / 1e3,
                KVM_GETPID_TARGET_NS / 1e3,
                g / 1e3,
                verdict(g <= KVM_GETPID_TARGET_NS)
            );
        }
        if let Some(t) = touch_table.median_of(Runner::KVM) {
            println!(
                "    kvm first touch <= {:.1} us per 4 KiB: {:.2} us: {}",
                KVM_TOUCH_TARGET_NS / 1e3,
                t / 1e3,
                verdict(t <= KVM_TOUCH_TARGET_NS)
            );
        }
    }
    println!();
    println!("total wall time: {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
