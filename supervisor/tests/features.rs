//! `supervisor features`: OCI features JSON plus the platform `--platform
//! auto` picks on this host, and that `do` then runs on it.

use std::process::Command;

use serde_json::Value;

const SUPERVISOR: &str = env!("CARGO_BIN_EXE_supervisor");

fn features() -> Value {
    let o = Command::new(SUPERVISOR).arg("features").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("features prints JSON")
}

#[test]
fn features_has_the_oci_fields() {
    let f = features();
    for key in ["ociVersionMin", "ociVersionMax"] {
        assert!(f[key].is_string(), "{key} in {f}");
    }
    assert_eq!(f["hooks"], serde_json::json!([]));
    assert!(f["mountOptions"].is_array());
    let linux = &f["linux"];
    let namespaces: Vec<&str> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for ns in ["pid", "network", "mount", "ipc", "uts"] {
        assert!(namespaces.contains(&ns), "{ns} missing from {namespaces:?}");
    }
    assert!(linux["capabilities"]
        .as_array()
        .unwrap()
        .contains(&"CAP_SYS_ADMIN".into()));
    assert_eq!(linux["cgroup"]["v1"], true);
    assert_eq!(linux["cgroup"]["v2"], true);
    assert_eq!(linux["cgroup"]["systemd"], false);
    assert_eq!(linux["seccomp"]["enabled"], true);
}

#[test]
fn features_names_what_auto_picks_on_this_host() {
    let f = features();
    let rvisor = &f["rvisor"];
    assert_eq!(rvisor["platforms"], serde_json::json!(["kvm", "systrap"]));
    let auto = rvisor["platformAuto"].as_str().unwrap();
    assert!(!rvisor["reason"].as_str().unwrap().is_empty());
    assert_eq!(f["annotations"]["dev.rvisor.platform.auto"], auto);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let hardware = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|w| w == "vmx" || w == "svm"));
    if hardware {
        eprintln!("this CPU has vmx/svm: auto may pick kvm ({auto})");
        assert!(["kvm", "systrap"].contains(&auto));
    } else {
        // This project's machines: /dev/kvm, if any, is a software hypervisor.
        assert_eq!(auto, "systrap", "{rvisor}");
    }
}

/// `supervisor do` with the default `--platform auto`: the sentry's debug
/// log names the platform `features` promised (systrap on these machines).
#[test]
fn do_with_auto_runs_on_the_platform_features_names() {
    let auto = features()["rvisor"]["platformAuto"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = tempfile::tempdir().unwrap();
    let logs = root.path().join("logs");
    let o = Command::new(SUPERVISOR)
        .arg("--root")
        .arg(root.path())
        .arg("--debug-log")
        .arg(&logs)
        .args(["do", "--", "/bin/busybox", "true"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sentry_log = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".sentry.log"))
        .expect("a sentry debug log");
    let log = std::fs::read_to_string(sentry_log).unwrap();
    let chosen = log
        .lines()
        .find(|l| l.contains("platform chosen"))
        .expect("the sentry logs its platform choice");
    assert!(
        chosen.contains(&format!("platform={auto} ")) && chosen.contains("requested=auto"),
        "{chosen}"
    );
}
