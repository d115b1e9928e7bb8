//! `supervisor features`: what this runtime supports, as JSON in the shape of
//! the OCI runtime spec's features.md (`runc features`), plus a top-level
//! `rvisor` object (mirrored in `annotations`) naming the platforms and what
//! `--platform auto` picks on this host, by the same probe the sentry uses.

use oci_spec::runtime::{
    CgroupBuilder, Features, FeaturesBuilder, LinuxFeatureBuilder, LinuxNamespaceType,
    SeccompBuilder,
};
use sentry::platform::{choose, HostVirtualization, PlatformKind};
use serde_json::{json, Value};

/// The OCI runtime spec versions config.json may declare.
const OCI_VERSION_MIN: &str = "1.0.0";
const OCI_VERSION_MAX: &str = "1.2.1";

/// Every capability name config.json may carry (it parses; the sentry
/// emulates a root user and grants nothing of the host's).
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What `--platform auto` resolves to on this host, and why.
pub fn auto_platform() -> (PlatformKind, String) {
    choose(PlatformKind::Auto, &HostVirtualization::probe())
}

/// The OCI part: spec versions, namespaces, capabilities, cgroups, seccomp.
fn oci_features(annotations: std::collections::HashMap<String, String>) -> Features {
    let namespaces = crate::bundle::NAMESPACE_TYPES
        .iter()
        .map(|&n| LinuxNamespaceType::try_from(n).expect("a namespace type the spec defines"))
        .collect::<Vec<_>>();
    let linux = LinuxFeatureBuilder::default()
        .namespaces(namespaces)
        .capabilities(
            CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
        )
        .cgroup(
            CgroupBuilder::default()
                .v1(true)
                .v2(true)
                .systemd(false)
                .systemd_user(false)
                .build()
                .expect("cgroup features"),
        )
        .seccomp(
            SeccompBuilder::default()
                .enabled(true)
                .build()
                .expect("seccomp features"),
        )
        .build()
        .expect("linux features");
    FeaturesBuilder::default()
        .oci_version_min(OCI_VERSION_MIN)
        .oci_version_max(OCI_VERSION_MAX)
        .hooks(Vec::<String>::new())
        // Spec mounts beyond the root are checked, not applied.
        .mount_options(Vec::<String>::new())
        .linux(linux)
        .annotations(annotations)
        .build()
        .expect("features")
}

/// The whole document `supervisor features` prints.
pub fn features(auto: (PlatformKind, String)) -> Value {
    let (auto, reason) = auto;
    let platforms = [PlatformKind::Kvm, PlatformKind::Systrap].map(|p| p.to_string());
    let annotations = [
        ("dev.rvisor.platforms".to_string(), platforms.join(",")),
        ("dev.rvisor.platform.auto".to_string(), auto.to_string()),
        (
            "dev.rvisor.platform.auto.reason".to_string(),
            reason.clone(),
        ),
    ]
    .into_iter()
    .collect();
    let mut doc = serde_json::to_value(oci_features(annotations)).expect("features serialize");
    strip_nulls(&mut doc);
    doc["rvisor"] = json!({
        "platforms": platforms,
        "platformAuto": auto.to_string(),
        "reason": reason,
    });
    doc
}

/// Drops keys whose value is null: "unknown", as runc's omitempty leaves out.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::Capability;

    use super::*;

    #[test]
    fn capabilities_are_the_ones_config_json_accepts() {
        for c in CAPABILITIES {
            let parsed: Result<Capability, _> = serde_json::from_value(json!(c));
            assert!(parsed.is_ok(), "{c} does not parse as a capability");
        }
    }

    #[test]
    fn document_has_the_oci_shape_and_the_platform_choice() {
        let doc = features((PlatformKind::Systrap, "auto: no vmx/svm flag".into()));
        assert_eq!(doc["ociVersionMin"], OCI_VERSION_MIN);
        assert_eq!(doc["hooks"], json!([]));
        assert_eq!(doc["linux"]["cgroup"]["systemd"], false);
        assert_eq!(doc["linux"]["seccomp"]["enabled"], true);
        assert!(doc["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("network")));
        assert!(doc["linux"].get("apparmor").is_none(), "nulls are dropped");
        assert_eq!(doc["rvisor"]["platforms"], json!(["kvm", "systrap"]));
        assert_eq!(doc["rvisor"]["platformAuto"], "systrap");
        assert_eq!(doc["annotations"]["dev.rvisor.platform.auto"], "systrap");
        // What a client reads back with the spec's own types.
        let typed: Features = serde_json::from_value(doc).unwrap();
        assert_eq!(typed.oci_version_max(), OCI_VERSION_MAX);
    }
}
