//! End-to-end: build the C programs in integration/progs with `cc -static`
//! (glibc) and `musl-gcc -static` (musl, when installed) and run each one
//! under `sentry exec`. Every program checks its own results.
//!
//! Every test runs once per platform, as gVisor runs each syscall test on each
//! platform: `platform_tests!` (tests/common) turns `fn name(platform) { .. }`
//! into `name::kvm` and `name::systrap`. The KVM variants skip when /dev/kvm
//! is unusable. A test that is about one platform says so in its name.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{kvm_available, Platform};

const SENTRY: &str = env!("CARGO_BIN_EXE_sentry");

fn progs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/progs")
}

/// Compiler flavours: name suffix, compiler, link mode.
fn toolchains() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut chains = vec![
        ("glibc", "cc", "-static"),
        ("glibc-pie", "cc", "-static-pie"),
    ];
    if Command::new("musl-gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        chains.push(("musl", "musl-gcc", "-static"));
    } else {
        eprintln!("musl-gcc not found: testing glibc builds only");
    }
    chains
}

struct Built {
    _dir: tempfile::TempDir,
    binaries: Vec<(String, PathBuf)>,
}

/// Builds every program once per test binary; returns (flavour, path) pairs for `name`.
fn binaries(name: &str) -> Vec<(String, PathBuf)> {
    static BUILT: OnceLock<Built> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut binaries = Vec::new();
        let sources = std::fs::read_dir(progs_dir()).expect("integration/progs");
        let mut sources: Vec<PathBuf> = sources
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "c"))
            .collect();
        sources.sort();
        for (flavour, compiler, link) in toolchains() {
            for source in &sources {
                let stem = source
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("utf-8 name")
                    .to_owned();
                let out = dir.path().join(format!("{stem}-{flavour}"));
                let status = Command::new(compiler)
                    .args([link, "-O2", "-o"])
                    .arg(&out)
                    .arg(source)
                    .status()
                    .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
                assert!(
                    status.success(),
                    "{compiler} failed on {}",
                    source.display()
                );
                binaries.push((format!("{stem}-{flavour}"), out));
            }
        }
        Built {
            _dir: dir,
            binaries,
        }
    });
    let prefix = format!("{name}-");
    built
        .binaries
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix))
        .cloned()
        .collect()
}

fn sentry_command(platform: Platform, extra: &[&str], program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(SENTRY);
    command
        .arg("exec")
        .args(["--platform", platform.name()])
        .args(extra)
        .arg("--")
        .arg(program)
        .args(args);
    command
}

fn sentry(platform: Platform, extra: &[&str], program: &Path, args: &[&str]) -> Output {
    sentry_command(platform, extra, program, args)
        .output()
        .expect("running sentry")
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `name` (every flavour) and expects exit 0 and `expected` on stdout.
fn expect_success(platform: Platform, name: &str, extra: &[&str], args: &[&str], expected: &str) {
    let programs = binaries(name);
    assert!(!programs.is_empty(), "no program called {name}");
    for (flavour, path) in programs {
        let output = sentry(platform, extra, &path, args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.code() == Some(0) && stdout.contains(expected),
            "{flavour} on {platform:?}: {}",
            describe(&output)
        );
    }
}

platform_tests! {
    fn hello_prints_and_exits_zero(platform: Platform) {
        expect_success(platform, "hello", &[], &[], "hello from the sandbox\n");
    }

    fn argv_envp_and_auxv_round_trip(platform: Platform) {
        expect_success(
            platform,
            "args",
            &["--clear-env", "--env", "A=1", "--env", "B=two"],
            &["x", "y z"],
            "args ok",
        );
    }

    fn anonymous_memory_patterns(platform: Platform) {
        expect_success(platform, "mmap", &[], &[], "mmap ok");
    }

    fn bad_accesses_die_with_sigsegv(platform: Platform) {
        for mode in ["write-readonly", "read-unmapped", "protect-none"] {
            for (flavour, path) in binaries("mmap") {
                let output = sentry(platform, &[], &path, &[mode]);
                assert_eq!(
                    output.status.code(),
                    Some(128 + 11),
                    "{flavour} {mode}: {}",
                    describe(&output)
                );
            }
        }
    }

    fn thread_local_storage_through_fs_base(platform: Platform) {
        expect_success(platform, "tls", &[], &[], "tls ok");
    }

    fn avx2_memcpy_of_10_mib(platform: Platform) {
        expect_success(platform, "avx2", &[], &[], "avx2 ok");
    }

    fn clocks_are_monotonic_and_sleep_sleeps(platform: Platform) {
        expect_success(platform, "clock", &[], &[], "clock ok");
    }

    fn unknown_syscall_is_enosys_and_logged(platform: Platform) {
        for (flavour, path) in binaries("enosys") {
            let log = tempfile::NamedTempFile::new().expect("log file");
            let log_path = log.path().to_str().expect("utf-8 path").to_owned();
            let output = sentry(platform, &["--debug-log", &log_path], &path, &[]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{flavour}: {}",
                describe(&output)
            );
            let text = std::fs::read_to_string(log.path()).expect("read log");
            let event = text
                .lines()
                .find(|l| l.contains("unimplemented syscall") && l.contains("number=1000"));
            assert!(
                event.is_some(),
                "{flavour}: no unimplemented-syscall event in the log:\n{text}"
            );
            let chosen = format!("platform={}", platform.name());
            assert!(
                text.lines().any(|l| l.contains("platform chosen") && l.contains(&chosen)),
                "{flavour}: the log does not name the platform:\n{text}"
            );
        }
    }

    fn strace_shows_calls_results_and_errnos(platform: Platform) {
        for (flavour, path) in binaries("enosys") {
            let output = sentry(platform, &["--strace"], &path, &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("syscall_1000(0x1, 0x2, 0x3"),
                "{flavour}: {stderr}"
            );
            assert!(stderr.contains("= -1 ENOSYS (38)"), "{flavour}: {stderr}");
            assert!(stderr.contains("exit_group(0)"), "{flavour}: {stderr}");
        }
    }

    fn exit_status_is_passed_through(platform: Platform) {
        // args.c exits 1 when its arguments are wrong.
        for (flavour, path) in binaries("args") {
            let output = sentry(platform, &["--clear-env"], &path, &[]);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{flavour}: {}",
                describe(&output)
            );
        }
    }

    fn missing_program_is_a_sentry_error(platform: Platform) {
        let output = Command::new(SENTRY)
            .args(["exec", "--platform", platform.name(), "--", "/nonexistent/program"])
            .output()
            .expect("sentry");
        assert_eq!(output.status.code(), Some(125));
        assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/program"));
    }

    /// A SIGTERM to the sentry must stop an application that never makes a
    /// syscall (only a kick can: out of KVM_RUN, or a signal to the stub) and
    /// one that sleeps.
    fn sigterm_kicks_a_spinning_or_sleeping_program(platform: Platform) {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;

        for mode in ["spin", "sleep"] {
            for (flavour, path) in binaries("spin") {
                let mut child = sentry_command(platform, &[], &path, &[mode])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("sentry");
                let mut first = String::new();
                let stdout = child.stdout.take().expect("stdout");
                BufReader::new(stdout).read_line(&mut first).expect("read");
                assert_eq!(first, "spinning\n", "{flavour} {mode}");
                std::thread::sleep(std::time::Duration::from_millis(200));
                let killed = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                assert!(killed.is_ok_and(|s| s.success()));
                let status = child.wait().expect("wait");
                assert_eq!(
                    status.code(),
                    Some(128 + 15),
                    "{flavour} {mode}: {status:?}"
                );
            }
        }
    }
}

/// Platform selection itself: `auto` (the default) takes KVM only with
/// hardware virtualization (vmx/svm) and a working /dev/kvm, and says so in
/// the debug log.
#[test]
fn platform_auto_is_the_default_and_is_logged() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hardware = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    let expected = if hardware && kvm_available() {
        "platform=kvm"
    } else {
        "platform=systrap"
    };
    let (_, path) = binaries("hello").into_iter().next().expect("hello");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let output = Command::new(SENTRY)
        .args(["exec", "--debug-log"])
        .arg(log.path())
        .arg("--")
        .arg(&path)
        .output()
        .expect("sentry");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let text = std::fs::read_to_string(log.path()).expect("read log");
    let line = text
        .lines()
        .find(|l| l.contains("platform chosen"))
        .unwrap_or_else(|| panic!("no platform choice in the log:\n{text}"));
    assert!(
        line.contains(expected) && line.contains("requested=auto"),
        "{line}"
    );
}
