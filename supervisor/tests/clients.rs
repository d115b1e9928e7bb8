//! The real clients (containerd's ctr, podman, dockerd) running containers
//! on the supervisor, driven by the scripts in integration/clients/. A
//! script exits 77 when its client is not installed: the test then prints
//! why it was skipped and passes (CI installs the clients, so there they
//! run). Needs root and the gofer and sentry built next to the supervisor.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

const SUPERVISOR: &str = env!("CARGO_BIN_EXE_supervisor");
/// Exit status of a script whose client is missing.
const SKIPPED: i32 = 77;

/// One daemon at a time: they are heavy on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn run_client(script: &str) {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integration/clients")
        .join(script);
    let out = Command::new("bash")
        .arg(&path)
        .arg(SUPERVISOR)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => print!("{stdout}"),
        Some(SKIPPED) => eprintln!("{script}: {}", stdout.trim()),
        _ => panic!("{script} failed ({}):\n{stdout}\n{stderr}", out.status),
    }
}

#[test]
fn containerd_ctr_run() {
    run_client("ctr.sh");
}

#[test]
fn podman_run() {
    run_client("podman.sh");
}

#[test]
fn docker_run_after_install() {
    run_client("docker.sh");
}
