//! runc's command line as clap definitions: global options first, then one
//! struct per subcommand. Options runc has that do not apply to a sandbox
//! are accepted (so callers configured for runc keep working) and ignored.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "supervisor",
    version,
    about = "rvisor's OCI runtime: runs containers in an application-kernel sandbox"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that come before the subcommand, in any order.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Directory holding every container's state.
    #[arg(long, default_value = "/run/rvisor", global = true)]
    pub root: PathBuf,
    /// Log file (the caller reads the last error line from it).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of --log lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log at debug level.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Directory for one debug log per process (supervisor, sentry, gofer).
    #[arg(long, value_name = "DIR", global = true)]
    pub debug_log: Option<PathBuf>,
    /// Print one line per application system call.
    #[arg(long, global = true)]
    pub strace: bool,
    /// How the sentry runs application code.
    #[arg(long, value_enum, default_value_t = Platform::Auto, global = true)]
    pub platform: Platform,
    /// Network for the sandbox; unset follows the spec's namespaces.
    #[arg(long, value_enum, global = true)]
    pub network: Option<Network>,
    /// Accepted for runc compatibility (cgroup paths in systemd form).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// runc's checkpoint tool: accepted, unused.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// runc's rootless mode: accepted, unused.
    #[arg(long, global = true, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--platform`: the sentry's own choice of platform (auto, kvm, systrap),
/// passed to it by name in the boot message.
pub use sentry::platform::PlatformKind as Platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// A fresh network namespace with loopback only.
    None,
    /// The host's network namespace.
    Host,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container: the sandbox is built, the process not started.
    Create(CreateArgs),
    /// Start the process of a created container.
    Start(IdArg),
    /// Create and start a container, wait for it and remove it.
    Run(RunArgs),
    /// Print a container's state as JSON.
    State(IdArg),
    /// Send a signal to a container's process.
    Kill(KillArgs),
    /// Remove a container's sandbox and state.
    Delete(DeleteArgs),
    /// List containers.
    List(ListArgs),
    /// Print a container's processes (host pids).
    Ps(PsArgs),
    /// Write a default config.json.
    Spec(SpecArgs),
    /// Print what this runtime supports as JSON (OCI features), with the
    /// platforms and what `--platform auto` picks on this host.
    Features,
    /// Run a host program in a sandbox whose root is the host's `/`, served
    /// read-only; no bundle needed. Exits with the program's status.
    Do(DoArgs),
    /// Freeze every process of a container (cgroup freezer).
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a container's memory, cpu and pids limits.
    Update(UpdateArgs),
    /// Print a container's events as JSON lines: stats, oom.
    Events(EventsArgs),
    /// Add (or update) this runtime in docker's daemon.json.
    Install(InstallArgs),
    /// Remove this runtime from docker's daemon.json.
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// OCI LinuxResources JSON ("-" reads stdin).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit in bytes.
    #[arg(long)]
    pub memory_reservation: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Time between stats lines.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Print one stats line and exit.
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// docker's daemon configuration file.
    #[arg(long, default_value = "/etc/docker/daemon.json")]
    pub config: PathBuf,
    /// The name docker knows the runtime by (`docker run --runtime=NAME`).
    #[arg(long, default_value = "rvisor")]
    pub runtime: String,
    /// Flags docker passes to every runtime call (e.g. --debug-log=/tmp/rv/).
    #[arg(last = true, allow_hyphen_values = true)]
    pub runtime_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[arg(long, default_value = "/etc/docker/daemon.json")]
    pub config: PathBuf,
    #[arg(long, default_value = "rvisor")]
    pub runtime: String,
}

#[derive(Debug, Args)]
pub struct DoArgs {
    /// Serve a host directory at GUEST through a gofer of its own
    /// (HOST:GUEST[:ro]; writes to a writable volume reach the host).
    #[arg(long = "volume", short = 'v', value_name = "HOST:GUEST[:ro]")]
    pub volumes: Vec<String>,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket on which to send the pty master (terminal containers).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the container process's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Accepted for runc compatibility.
    #[arg(long, hide = true)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long, hide = true)]
    pub no_new_keyring: bool,
    /// Accepted for runc compatibility.
    #[arg(long, hide = true, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once started instead of waiting for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container (works after the init exited).
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Number or name (15, TERM, SIGTERM).
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container; succeed when it does not exist.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    pub id: String,
    /// `ps` options (table format only): accepted, unused.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    // `spec --rootless` parses as the global --rootless.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("supervisor").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn global_flags_in_any_order_and_equals_form() {
        let cli = parse(&[
            "--log-format=json",
            "--debug",
            "--root",
            "/tmp/r",
            "--log=/tmp/l.json",
            "--systemd-cgroup",
            "--criu",
            "/usr/sbin/criu",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "c1",
        ]);
        assert_eq!(cli.global.log_format, LogFormat::Json);
        assert!(cli.global.debug && cli.global.systemd_cgroup);
        assert_eq!(cli.global.root, PathBuf::from("/tmp/r"));
        assert_eq!(
            cli.global.log.as_deref(),
            Some(std::path::Path::new("/tmp/l.json"))
        );
        match cli.command {
            Command::Create(c) => {
                assert_eq!(c.id, "c1");
                assert_eq!(c.bundle, PathBuf::from("/b"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        parse(&["spec", "--rootless", "-b", "/tmp"]);
    }

    #[test]
    fn defaults() {
        let cli = parse(&["delete", "--force", "x"]);
        assert_eq!(cli.global.root, PathBuf::from("/run/rvisor"));
        assert_eq!(cli.global.log_format, LogFormat::Text);
        assert!(matches!(
            cli.command,
            Command::Delete(DeleteArgs { force: true, .. })
        ));
    }

    #[test]
    fn kill_forms() {
        for (args, all, sig) in [
            (&["kill", "c", "9"][..], false, "9"),
            (&["kill", "--all", "c", "KILL"][..], true, "KILL"),
            (&["kill", "c"][..], false, "SIGTERM"),
        ] {
            match parse(args).command {
                Command::Kill(k) => {
                    assert_eq!((k.all, k.signal.as_str(), k.id.as_str()), (all, sig, "c"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn update_events_install_forms() {
        match parse(&["update", "--resources", "-", "c"]).command {
            Command::Update(u) => {
                assert_eq!(u.resources.as_deref(), Some(std::path::Path::new("-")));
                assert_eq!(u.id, "c");
            }
            other => panic!("{other:?}"),
        }
        match parse(&["update", "--memory", "-1", "--pids-limit", "10", "c"]).command {
            Command::Update(u) => assert_eq!((u.memory, u.pids_limit), (Some(-1), Some(10))),
            other => panic!("{other:?}"),
        }
        match parse(&["events", "--stats", "c"]).command {
            Command::Events(e) => assert!(e.stats && e.interval.as_secs() == 5),
            other => panic!("{other:?}"),
        }
        match parse(&["events", "--interval=100ms", "c"]).command {
            Command::Events(e) => assert_eq!(e.interval.as_millis(), 100),
            other => panic!("{other:?}"),
        }
        match parse(&[
            "install",
            "--config",
            "/tmp/d.json",
            "--",
            "--debug",
            "--strace",
        ])
        .command
        {
            Command::Install(i) => {
                assert_eq!(i.runtime, "rvisor");
                assert_eq!(i.runtime_args, ["--debug", "--strace"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["uninstall", "--runtime", "x"]).command,
            Command::Uninstall(UninstallArgs { .. })
        ));
    }

    #[test]
    fn ps_json() {
        match parse(&["ps", "--format", "json", "c"]).command {
            Command::Ps(p) => assert_eq!(p.format, Format::Json),
            other => panic!("{other:?}"),
        }
    }
}
