//! `gofer`: serve a directory over 9P2000.L, or list one through a gofer.

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use gofer::{seccomp, Server, DEFAULT_MAX_MSIZE};
use p9proto::types::getattr;
use p9proto::{Client, Tgetattr, Tlopen};

#[derive(Parser, Debug)]
#[command(name = "gofer", version, about = "rvisor's 9P2000.L file server")]
struct Cli {
    /// Log filter (tracing's env-filter syntax), to stderr.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve DIR as `/` to every client.
    Serve(ServeArgs),
    /// List a directory through a gofer: an existing one (--socket) or one
    /// started for the purpose on --root.
    Ls(LsArgs),
    /// Print the seccomp allowlist the gofer serves under.
    SeccompRules,
    /// Install the serving filter, then make one system call (by name:
    /// getpid, socket, execve, ptrace); shows the filter working.
    #[command(hide = true)]
    SeccompProbe { syscall: String },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Directory served as the root of the tree.
    #[arg(long)]
    root: PathBuf,
    /// Listen on this Unix socket path.
    #[arg(long, conflicts_with = "fd", required_unless_present = "fd")]
    socket: Option<PathBuf>,
    /// Serve an inherited connected socket (repeatable); exits when all close.
    #[arg(long)]
    fd: Vec<i32>,
    /// Refuse every request that would change the tree (EROFS).
    #[arg(long)]
    read_only: bool,
    /// Largest frame accepted.
    #[arg(long, default_value_t = DEFAULT_MAX_MSIZE)]
    msize: u32,
    /// Make --root the root of this process's mount namespace (pivot_root)
    /// and keep only file-serving capabilities; the supervisor starts the
    /// gofer this way, in a new mount namespace.
    #[arg(long)]
    pivot_root: bool,
}

#[derive(Args, Debug)]
struct LsArgs {
    /// Connect to a gofer listening here.
    #[arg(long, conflicts_with = "root", required_unless_present = "root")]
    socket: Option<PathBuf>,
    /// Start a read-only gofer on this directory and list through it.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Path inside the served tree.
    #[arg(default_value = "/")]
    path: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gofer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(args),
        Command::Ls(args) => ls(args),
        Command::SeccompRules => {
            println!(
                "{} system calls allowed; any other kills the gofer.",
                seccomp::RULES.len()
            );
            for line in seccomp_rules::describe(seccomp::RULES) {
                println!("{line}");
            }
            Ok(())
        }
        Command::SeccompProbe { syscall } => {
            let nr = match syscall.as_str() {
                "getpid" => libc::SYS_getpid,
                "socket" => libc::SYS_socket,
                "execve" => libc::SYS_execve,
                "ptrace" => libc::SYS_ptrace,
                other => bail!("unknown probe syscall {other:?}"),
            };
            seccomp::install().context("installing seccomp filter")?;
            // Arguments that make each call harmless if it were allowed.
            let r = nix::errno::Errno::result(probe(nr));
            println!("{syscall} returned {r:?}");
            Ok(())
        }
    }
}

#[allow(unsafe_code)]
fn probe(nr: i64) -> i64 {
    // SAFETY: every probed call gets null/invalid arguments: getpid takes
    // none, socket(-1,...) and execve(NULL) and ptrace(-1) fail before
    // touching memory.
    unsafe { libc::syscall(nr, -1i64, 0i64, 0i64) }
}

fn serve(args: ServeArgs) -> Result<()> {
    // Clients send final modes (Linux's v9fs has applied the caller's umask
    // already); the gofer's own umask must not strip bits a second time.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let root = if args.pivot_root {
        gofer::jail::pivot_into(&args.root)?;
        gofer::jail::limit_capabilities(gofer::jail::KEPT_CAPABILITIES)?;
        PathBuf::from("/")
    } else {
        args.root.clone()
    };
    let server = Server::new(&root, args.read_only, args.msize)?;
    gofer::host::install_interrupt_handler().context("installing interrupt handler")?;
    if let Some(path) = args.socket {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("binding socket {}", path.display()))?;
        seccomp::install().context("installing seccomp filter")?;
        server.serve_listener(listener)?;
    } else {
        let streams = args
            .fd
            .iter()
            .map(|&fd| {
                gofer::host::inherited_socket(fd).with_context(|| format!("inherited fd {fd}"))
            })
            .collect::<Result<Vec<_>>>()?;
        seccomp::install().context("installing seccomp filter")?;
        server.serve_streams(streams);
    }
    Ok(())
}

fn ls(args: LsArgs) -> Result<()> {
    let mut child = None;
    let stream = match (&args.socket, &args.root) {
        (Some(sock), _) => UnixStream::connect(sock)
            .with_context(|| format!("connecting to {}", sock.display()))?,
        (None, Some(root)) => {
            let (ours, theirs) = UnixStream::pair()?;
            nix::fcntl::fcntl(
                &theirs,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )?;
            child = Some(
                std::process::Command::new(std::env::current_exe()?)
                    .arg("serve")
                    .arg("--read-only")
                    .arg("--root")
                    .arg(root)
                    .arg("--fd")
                    .arg(theirs.as_raw_fd().to_string())
                    .spawn()
                    .context("starting gofer")?,
            );
            drop(theirs);
            ours
        }
        (None, None) => bail!("ls needs --socket or --root"),
    };
    let client = Client::connect(stream, DEFAULT_MAX_MSIZE)?;
    let (root, _) = client.attach("root", "")?;
    let dir = client
        .walk_path(root, &args.path)
        .with_context(|| format!("walking {}", args.path))?;
    let (listing, _) = client.walk(dir, &[] as &[&[u8]])?;
    client
        .call(Tlopen {
            fid: listing,
            flags: 0,
        })
        .with_context(|| format!("opening {}", args.path))?;
    let mut entries = client.readdir_all(listing)?;
    client.clunk(listing)?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in entries
        .iter()
        .filter(|e| e.name.as_bytes() != b"." && e.name.as_bytes() != b"..")
    {
        let (fid, _) = client.walk(dir, &[e.name.as_bytes()])?;
        let attr = client.call(Tgetattr {
            fid,
            request_mask: getattr::BASIC,
        });
        client.clunk(fid)?;
        match attr {
            Ok(a) => println!(
                "{:06o} {:>5} {:>5} {:>10} {}",
                a.mode, a.uid, a.gid, a.size, e.name
            ),
            Err(err) => println!("? {} ({err})", e.name),
        }
    }
    drop(client);
    if let Some(mut c) = child {
        let status = c.wait()?;
        if !status.success() {
            bail!("gofer exited with {status}");
        }
    }
    Ok(())
}
