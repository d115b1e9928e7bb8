//! `supervisor`: rvisor's OCI runtime, with runc's command line.

mod bundle;
mod cgroup;
mod cli;
mod container;
mod features;
mod host;
mod install;
mod log;
mod ps;
mod state;

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;
use tracing_subscriber::prelude::*;

use cli::{Cli, Command, Format, GlobalOpts};
use host::{Host, LinuxHost};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_error = init_logging(&cli.global);
    if let Err(e) = log_error {
        eprintln!("supervisor: opening log: {e:#}");
    }
    match run(&cli.global, cli.command) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!("{msg}");
            eprintln!("supervisor: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(g: &GlobalOpts) -> Result<()> {
    let file = match &g.log {
        Some(p) => Some(
            log::LogLayer::open(p, g.log_format, g.debug)
                .with_context(|| format!("{}", p.display()))?,
        ),
        None => None,
    };
    let debug_file = match &g.debug_log {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            Some(log::LogLayer::open(
                &d.join("supervisor.log"),
                cli::LogFormat::Text,
                true,
            )?)
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(file)
        .with(debug_file)
        .try_init()?;
    Ok(())
}

fn run(g: &GlobalOpts, command: Command) -> Result<ExitCode> {
    let host = LinuxHost;
    tracing::debug!(?command, "command");
    match command {
        Command::Create(args) => {
            container::create(g, &host, &args, true)?;
        }
        Command::Start(a) => container::start(g, &host, &a.id)?,
        Command::Run(args) => return run_container(g, &host, args, None),
        Command::State(a) => {
            let st = state::load(&g.root, &a.id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&container::report(&host, &st))?
            );
        }
        Command::Kill(a) => container::kill(g, &host, &a.id, &a.signal, a.all)?,
        Command::Delete(a) => container::delete(g, &host, &a.id, a.force)?,
        Command::List(a) => list(g, &host, &a)?,
        Command::Ps(a) => {
            let st = state::load(&g.root, &a.id)?;
            let pids = ps::pids(&host, &st);
            match a.format {
                Format::Json => println!("{}", serde_json::to_string(&pids)?),
                Format::Table => {
                    // runc's table: the host's `ps` (default -ef), filtered.
                    let ps_args = if a.ps_args.is_empty() {
                        vec!["-ef".to_string()]
                    } else {
                        a.ps_args.clone()
                    };
                    let out = std::process::Command::new("ps")
                        .args(&ps_args)
                        .stdin(std::process::Stdio::null())
                        .output()
                        .context("running ps")?;
                    if !out.status.success() {
                        anyhow::bail!(
                            "ps {}: {}",
                            ps_args.join(" "),
                            String::from_utf8_lossy(&out.stderr).trim()
                        );
                    }
                    let text = String::from_utf8_lossy(&out.stdout);
                    print!("{}", ps::table(&text, &pids)?);
                }
            }
        }
        Command::Spec(a) => spec(&a)?,
        Command::Features => {
            let doc = features::features(features::auto_platform());
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Command::Pause(a) => container::pause(g, &host, &a.id, true)?,
        Command::Resume(a) => container::pause(g, &host, &a.id, false)?,
        Command::Update(a) => container::update(g, &host, &a.id, &update_resources(&a)?)?,
        Command::Events(a) => container::events(
            g,
            &host,
            &a.id,
            a.interval,
            a.stats,
            &mut std::io::stdout().lock(),
        )?,
        Command::Install(a) => {
            let me = std::env::current_exe().context("finding the supervisor's own path")?;
            install::install(&a.config, &a.runtime, &me, &a.runtime_args)?;
            eprintln!(
                "runtime {:?} ({}) added to {}; reload dockerd (kill -HUP) to use it",
                a.runtime,
                me.display(),
                a.config.display()
            );
        }
        Command::Uninstall(a) => install::uninstall(&a.config, &a.runtime)?,
        Command::Do(a) => {
            let bundle = bundle::host_root(&a.command, &a.volumes)?;
            let run = cli::RunArgs {
                create: cli::CreateArgs {
                    bundle: bundle.dir.clone(),
                    console_socket: None,
                    pid_file: None,
                    no_pivot: false,
                    no_new_keyring: false,
                    preserve_fds: 0,
                    id: format!("do-{}", std::process::id()),
                },
                detach: false,
                keep: false,
            };
            // `do` defaults to an isolated network.
            let mut g = g.clone();
            g.network.get_or_insert(cli::Network::None);
            return run_container(&g, &host, run, Some(bundle));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// create + start, then (unless detached) wait for the sentry, relaying
/// signals to it, and exit with its status.
fn run_container(
    g: &GlobalOpts,
    host: &dyn Host,
    args: cli::RunArgs,
    bundle: Option<bundle::Bundle>,
) -> Result<ExitCode> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::wait::{waitpid, WaitStatus};
    // Block the signals we relay before the sentry exists, so none is lost.
    let mut relayed = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        relayed.add(s);
    }
    if !args.detach {
        relayed.thread_block()?;
    }
    let st = match bundle {
        Some(b) => container::build(g, host, &args.create, b, false)?,
        None => container::create(g, host, &args.create, false)?,
    };
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let pid = nix::unistd::Pid::from_raw(st.pid);
    let sentry = st.pid;
    let kill_host = LinuxHost;
    std::thread::spawn(move || {
        while let Ok(sig) = relayed.wait() {
            let _ = kill_host.kill(sentry, sig as i32);
        }
    });
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for the sentry"),
        }
    };
    if !args.keep {
        container::delete(g, host, &args.create.id, true)?;
    }
    // The gofer is our child too: it exits once the sentry's connection
    // closes (or was just killed); reap it.
    let _ = waitpid(nix::unistd::Pid::from_raw(st.gofer_pid), None);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn list(g: &GlobalOpts, host: &dyn Host, a: &cli::ListArgs) -> Result<()> {
    let mut reports = Vec::new();
    for id in state::list(&g.root).with_context(|| format!("listing {}", g.root.display()))? {
        if let Ok(st) = state::load(&g.root, &id) {
            reports.push(container::report(host, &st));
        }
    }
    if a.quiet {
        for r in &reports {
            println!("{}", r.id);
        }
        return Ok(());
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&reports)?),
        Format::Table => {
            println!(
                "{:<24} {:<8} {:<8} {:<40} CREATED",
                "ID", "PID", "STATUS", "BUNDLE"
            );
            for r in &reports {
                println!(
                    "{:<24} {:<8} {:<8} {:<40} {}",
                    r.id,
                    r.pid,
                    r.status,
                    r.bundle.display(),
                    r.created
                );
            }
        }
    }
    Ok(())
}

/// `update`'s resources: the --resources JSON, then the single flags.
fn update_resources(a: &cli::UpdateArgs) -> Result<cgroup::Resources> {
    let mut r = match &a.resources {
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                    .context("reading resources from stdin")?;
                t
            } else {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            };
            let v: serde_json::Value =
                serde_json::from_str(&text).context("resources are not valid JSON")?;
            if !v.is_object() {
                anyhow::bail!("resources must be a JSON object (OCI LinuxResources)");
            }
            cgroup::Resources::from_json(&v)
        }
        None => cgroup::Resources::default(),
    };
    r.merge(&cgroup::Resources {
        memory_limit: a.memory,
        memory_reservation: a.memory_reservation,
        memory_swap: a.memory_swap,
        cpu_shares: a.cpu_shares,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        pids_limit: a.pids_limit,
    });
    Ok(r)
}

fn spec(a: &cli::SpecArgs) -> Result<()> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("{} already exists", path.display());
    }
    let spec = oci_spec::runtime::Spec::default();
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
