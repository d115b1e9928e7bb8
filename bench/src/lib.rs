//! Shared pieces of the benchmarks: finding the built binaries, timing,
//! and printing a figure beside its native counterpart.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A binary built next to the running benchmark (`target/release/NAME`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory for {exe:?}"))?;
    let path = dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} not built: run `cargo build --release -p {name}` (bench/run does)",
        path.display()
    );
    Ok(path)
}

/// Runs `f` for `reps` repetitions and returns the median duration.
pub fn median<F: FnMut() -> anyhow::Result<()>>(reps: usize, mut f: F) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// One line: what, ours, native, ratio, target verdict.
pub fn report(what: &str, ours: f64, native: f64, unit: &str, target: Option<(&str, bool)>) {
    let ratio = if native > 0.0 {
        ours / native
    } else {
        f64::NAN
    };
    let verdict = match target {
        Some((t, met)) => format!("  target {t}: {}", if met { "met" } else { "NOT met" }),
        None => String::new(),
    };
    println!("{what:<44} {ours:>12.1} {unit:<6} native {native:>12.1} {unit:<6} ratio {ratio:>6.3}{verdict}");
}
