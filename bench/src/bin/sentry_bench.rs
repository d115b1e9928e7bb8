//! The sentry (KVM platform) against native execution, in one run:
//! - getpid round trip, ns per call (median of several repetitions)
//! - first touch of a 256 MiB anonymous region, ns per 4 KiB page
//!
//! The C programs in bench/progs are compiled here with `cc -static -O2` into a
//! temporary directory, then run natively and under `sentry exec`. Each program
//! times its own loop with clock_gettime(CLOCK_MONOTONIC) and prints
//! `RESULT <name> rep=<i> <count-key>=<n> ns=<total>` lines, which are parsed
//! here. Nothing is asserted: figures and verdicts are printed only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;

/// The host-served syscall floor under KVM on these machines (shared/KVM.md).
const SYSCALL_FLOOR_NS: f64 = 106_000.0;
/// getpid target: within 10% of that floor.
const GETPID_TARGET_NS: f64 = SYSCALL_FLOOR_NS * 1.10;
/// First-touch target per 4 KiB page, amortised over 2 MiB mappings.
const TOUCH_TARGET_NS: f64 = 2_000.0;

#[derive(Debug, Parser)]
#[command(about = "sentry vs native: getpid round trip and first-touch cost")]
struct Args {
    /// getpid calls per timed repetition.
    #[arg(long, default_value_t = 2000)]
    getpid_iters: u64,
    /// Timed getpid repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    getpid_reps: u64,
    /// Size of the anonymous region touched, in MiB.
    #[arg(long, default_value_t = 256)]
    touch_mib: u64,
    /// Touch repetitions, each on a freshly mapped region (the median is reported).
    #[arg(long, default_value_t = 3)]
    touch_reps: u64,
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

/// Runs `program args` (under `sentry exec` when `sentry` is given) and returns
/// ns per unit for every `RESULT <name>` repetition it printed.
fn run(
    sentry: Option<&Path>,
    program: &Path,
    args: &[String],
    name: &str,
    count_key: &str,
) -> Result<Vec<f64>> {
    let mut command = match sentry {
        Some(sentry) => {
            let mut c = Command::new(sentry);
            c.arg("exec").arg("--").arg(program);
            c
        }
        None => Command::new(program),
    };
    command.args(args);
    let where_ = if sentry.is_some() { "sentry" } else { "native" };
    let output = command
        .output()
        .with_context(|| format!("running {} ({where_})", program.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "{} ({where_}) exited with {}\nstdout: {stdout}\nstderr: {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let per_unit = parse_results(&stdout, name, count_key)?;
    ensure!(
        !per_unit.is_empty(),
        "{} ({where_}) printed no RESULT {name} line:\n{stdout}",
        program.display()
    );
    Ok(per_unit)
}

/// Parses `RESULT <name> rep=<i> <count_key>=<n> ns=<total>` lines into ns per unit.
fn parse_results(stdout: &str, name: &str, count_key: &str) -> Result<Vec<f64>> {
    let mut values = Vec::new();
    for line in stdout.lines() {
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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
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

struct Figure {
    what: &'static str,
    sentry: Vec<f64>,
    native: Vec<f64>,
    target: String,
    met: bool,
}

fn print_figure(figure: &Figure) {
    let ours = median(&figure.sentry);
    let native = median(&figure.native);
    let ratio = if native > 0.0 {
        ours / native
    } else {
        f64::NAN
    };
    println!(
        "{:<34} sentry {:>11.1} ns  native {:>9.1} ns  ratio {:>8.1}x",
        figure.what, ours, native, ratio
    );
    println!("    sentry reps (ns): {}", list(&figure.sentry));
    println!("    native reps (ns): {}", list(&figure.native));
    println!(
        "    target: {}: {}",
        figure.target,
        if figure.met { "MET" } else { "NOT MET" }
    );
}

fn main() -> Result<()> {
    let started = Instant::now();
    let args = Args::parse();
    let sentry = sentry_binary()?;
    let scratch = TempDir::new()?;
    let getpid = compile("getpid_loop", &scratch.0)?;
    let touch = compile("touch", &scratch.0)?;

    println!(
        "sentry bench: {} ({} getpid calls x {} reps; {} MiB first touch x {} reps)",
        sentry.display(),
        args.getpid_iters,
        args.getpid_reps,
        args.touch_mib,
        args.touch_reps
    );

    let getpid_args = [args.getpid_iters.to_string(), args.getpid_reps.to_string()];
    let native = run(None, &getpid, &getpid_args, "getpid", "iters")?;
    let ours = run(Some(&sentry), &getpid, &getpid_args, "getpid", "iters")?;
    let ours_median = median(&ours);
    let getpid_figure = Figure {
        what: "getpid round trip (per call)",
        met: ours_median <= GETPID_TARGET_NS,
        target: format!(
            "within 10% of the ~{:.0} us KVM syscall floor (<= {:.1} us); measured {:.1} us",
            SYSCALL_FLOOR_NS / 1e3,
            GETPID_TARGET_NS / 1e3,
            ours_median / 1e3
        ),
        sentry: ours,
        native,
    };

    let touch_args = [args.touch_mib.to_string(), args.touch_reps.to_string()];
    let native = run(None, &touch, &touch_args, "touch", "pages")?;
    let ours = run(Some(&sentry), &touch, &touch_args, "touch", "pages")?;
    let ours_median = median(&ours);
    let touch_figure = Figure {
        what: "first touch (per 4 KiB page)",
        met: ours_median <= TOUCH_TARGET_NS,
        target: format!(
            "<= {:.1} us per 4 KiB; measured {:.2} us",
            TOUCH_TARGET_NS / 1e3,
            ours_median / 1e3
        ),
        sentry: ours,
        native,
    };

    println!();
    print_figure(&getpid_figure);
    print_figure(&touch_figure);
    println!();
    println!("total wall time: {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
