//! The gofer over a Unix socket against the same work done with direct
//! host system calls, in one run:
//! - walk+getattr+clunk, ops/s (one client thread, and four sharing a connection)
//! - walk+lopen+read 4 KiB+clunk, ops/s
//! - 64 MiB sequential read and write with msize 1 MiB, MB/s

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bench::{report, sibling_binary};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode};
use p9proto::types::getattr;
use p9proto::{Client, Tgetattr, Tlopen};

const MSIZE: u32 = (1 << 20) + p9proto::IOHDRSZ;
const OPS: u32 = 20_000;
const BIG: usize = 64 << 20;

struct Gofer(Child);

impl Drop for Gofer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ops_per_sec(n: u32, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn mb_per_sec(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn walk_getattr_clunk(c: &Client, root: u32, n: u32) -> Result<()> {
    for _ in 0..n {
        let (fid, _) = c.walk(root, &["dir", "file"])?;
        c.call(Tgetattr {
            fid,
            request_mask: getattr::BASIC,
        })?;
        c.clunk(fid)?;
    }
    Ok(())
}

/// The same three requests sent back to back, answered in one round trip.
fn walk_getattr_pipelined(c: &Client, root: u32, n: u32) -> Result<()> {
    for _ in 0..n {
        c.walk_getattr(root, &[b"dir", b"file"], getattr::BASIC)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let started = Instant::now();
    let gofer_bin = sibling_binary("gofer")?;
    let work = std::env::temp_dir().join(format!("rvisor-gofer-bench-{}", std::process::id()));
    let root = work.join("root");
    fs::create_dir_all(root.join("dir"))?;
    fs::write(root.join("dir/file"), vec![7u8; 4096])?;
    let big: Vec<u8> = (0..BIG).map(|i| (i % 253) as u8).collect();
    fs::write(root.join("big"), &big)?;
    let sock = work.join("gofer.sock");
    let _gofer = Gofer(
        Command::new(&gofer_bin)
            .args(["serve", "--root"])
            .arg(&root)
            .arg("--socket")
            .arg(&sock)
            .spawn()
            .context("starting gofer")?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&sock).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "gofer did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let c = Arc::new(Client::connect(UnixStream::connect(&sock)?, MSIZE)?);
    let (rootfid, _) = c.attach("root", "")?;
    println!(
        "gofer benchmark: {} ops per figure, msize {} (2 cores, shared machine: figures vary)",
        OPS,
        c.msize()
    );

    // walk+getattr+clunk vs openat(O_PATH)+fstat+close.
    walk_getattr_clunk(&c, rootfid, 1000)?;
    let t = Instant::now();
    walk_getattr_clunk(&c, rootfid, OPS)?;
    let ours = ops_per_sec(OPS, t.elapsed());
    let t = Instant::now();
    for _ in 0..OPS {
        let fd = open(
            &root.join("dir/file"),
            OFlag::O_PATH | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )?;
        fstat(fd.as_fd())?;
    }
    let native = ops_per_sec(OPS, t.elapsed());
    report(
        "walk+getattr+clunk, 1 thread (ops/s)",
        ours,
        native,
        "ops/s",
        Some(("≥ 50000 ops/s", ours >= 50_000.0)),
    );

    walk_getattr_pipelined(&c, rootfid, 1000)?;
    let t = Instant::now();
    walk_getattr_pipelined(&c, rootfid, OPS)?;
    let ours_p = ops_per_sec(OPS, t.elapsed());
    report(
        "walk+getattr+clunk, pipelined (ops/s)",
        ours_p,
        native,
        "ops/s",
        Some(("≥ 50000 ops/s", ours_p >= 50_000.0)),
    );

    let threads = 4;
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || walk_getattr_clunk(&c, rootfid, OPS / threads))
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("bench thread panicked"))??;
    }
    let ours4 = ops_per_sec(OPS, t.elapsed());
    report(
        "walk+getattr+clunk, 4 threads (ops/s)",
        ours4,
        native,
        "ops/s",
        Some(("≥ 50000 ops/s", ours4 >= 50_000.0)),
    );

    // walk+lopen+read 4 KiB+clunk vs open+read+close.
    let t = Instant::now();
    for _ in 0..OPS {
        let (fid, _) = c.walk(rootfid, &["dir", "file"])?;
        c.call(Tlopen { fid, flags: 0 })?;
        let data = c.read(fid, 0, 4096)?;
        anyhow::ensure!(data.len() == 4096, "short read");
        c.clunk(fid)?;
    }
    let ours = ops_per_sec(OPS, t.elapsed());
    let mut buf = vec![0u8; 4096];
    let t = Instant::now();
    for _ in 0..OPS {
        let mut f = fs::File::open(root.join("dir/file"))?;
        f.read_exact(&mut buf)?;
    }
    let native = ops_per_sec(OPS, t.elapsed());
    report(
        "walk+lopen+read 4 KiB+clunk (ops/s)",
        ours,
        native,
        "ops/s",
        None,
    );

    // 64 MiB sequential read, 1 MiB per Tread, vs read(2) of 1 MiB.
    let (fid, _) = c.walk(rootfid, &["big"])?;
    c.call(Tlopen { fid, flags: 0 })?;
    let seq_read = || -> Result<()> {
        let mut off = 0u64;
        while (off as usize) < BIG {
            let n = c.read(fid, off, 1 << 20)?.len();
            anyhow::ensure!(n > 0, "early end of file");
            off += n as u64;
        }
        Ok(())
    };
    seq_read()?;
    let ours = mb_per_sec(BIG, bench::median(5, seq_read)?);
    let mut chunk = vec![0u8; 1 << 20];
    let native = mb_per_sec(
        BIG,
        bench::median(5, || {
            let mut f = fs::File::open(root.join("big"))?;
            while f.read(&mut chunk)? > 0 {}
            Ok(())
        })?,
    );
    report(
        "sequential read 64 MiB, 1 MiB frames (MB/s)",
        ours,
        native,
        "MB/s",
        Some(("≥ 1000 MB/s", ours >= 1000.0)),
    );
    c.clunk(fid)?;

    // 64 MiB sequential write.
    let wfid = c.walk(rootfid, &[] as &[&str])?.0;
    c.call(p9proto::Tlcreate {
        fid: wfid,
        name: "out".into(),
        flags: 1,
        mode: 0o644,
        gid: u32::MAX,
    })?;
    let t = Instant::now();
    c.write_all(wfid, 0, &big)?;
    let ours = mb_per_sec(BIG, t.elapsed());
    c.clunk(wfid)?;
    let t = Instant::now();
    let mut f = fs::File::create(root.join("out-native"))?;
    for part in big.chunks(1 << 20) {
        f.write_all(part)?;
    }
    drop(f);
    let native = mb_per_sec(BIG, t.elapsed());
    report(
        "sequential write 64 MiB, 1 MiB frames (MB/s)",
        ours,
        native,
        "MB/s",
        None,
    );

    let _ = fs::remove_dir_all(&work);
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
