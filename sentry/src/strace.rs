//! `--strace`: one line per syscall with the task, decoded arguments, the
//! result (or errno name) and how long the sentry took to serve it.

use std::fmt::Write as _;
use std::time::Duration;

use crate::errno::Errno;
use crate::kernel::signal::signal_name;
use crate::kernel::Task;
use crate::syscalls::{ArgKind, SyscallArgs, SyscallInfo};

/// How many bytes of a buffer argument are shown.
const BUFFER_PREVIEW: usize = 32;

/// Formats `name(arg, ...)` before the call (buffers read by the call are
/// shown as the application passed them).
pub fn format_entry(task: &mut Task, info: Option<&SyscallInfo>, args: &SyscallArgs) -> String {
    let mut line = String::new();
    let Some(info) = info else {
        let _ = write!(
            line,
            "syscall_{}({:#x}, {:#x}, {:#x}, ...)",
            args.number, args.args[0], args.args[1], args.args[2]
        );
        return line;
    };
    let _ = write!(line, "{}(", info.name);
    let kinds: &[ArgKind] = if info.args.is_empty() && info.handler.is_none() {
        &[ArgKind::Hex, ArgKind::Hex, ArgKind::Hex]
    } else {
        info.args
    };
    for (i, kind) in kinds.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        format_arg(&mut line, task, *kind, args, i);
    }
    line.push(')');
    line
}

fn format_arg(line: &mut String, task: &mut Task, kind: ArgKind, args: &SyscallArgs, i: usize) {
    let value = args.args[i];
    let _ = match kind {
        ArgKind::Fd | ArgKind::Int => write!(line, "{}", value as i64 as i32),
        ArgKind::UInt => write!(line, "{value}"),
        ArgKind::Hex | ArgKind::Ptr => write!(line, "{value:#x}"),
        ArgKind::Oct => write!(line, "{value:#o}"),
        ArgKind::Signal => write!(line, "{}", signal_name(value as i32)),
        ArgKind::Path => match task.mm.copy_in_string(value, 4096) {
            Ok(path) => write!(line, "{:?}", String::from_utf8_lossy(&path)),
            Err(_) => write!(line, "{value:#x}"),
        },
        ArgKind::InBuf(len_arg) => {
            let len = args.args.get(len_arg).copied().unwrap_or(0) as usize;
            let mut buf = vec![0u8; len.min(BUFFER_PREVIEW)];
            match task.mm.copy_in(value, &mut buf) {
                Ok(()) => {
                    let more = if len > BUFFER_PREVIEW { "..." } else { "" };
                    write!(line, "\"{}\"{more}", buf.escape_ascii())
                }
                Err(_) => write!(line, "{value:#x}"),
            }
        }
    };
}

/// Emits the finished line.
pub fn log_exit(
    task: &Task,
    info: Option<&SyscallInfo>,
    args: &SyscallArgs,
    entry: &str,
    result: Result<u64, Errno>,
    elapsed: Duration,
) {
    let _ = (info, args);
    let result = match result {
        Ok(value) if value > 0xffff => format!("{value:#x}"),
        Ok(value) => value.to_string(),
        Err(errno) => format!("-1 {} ({})", errno.name(), errno.0),
    };
    tracing::info!(
        target: "strace",
        "[{:>4}:{}] {} = {} <{:.6}>",
        task.tid,
        task.name,
        entry,
        result,
        elapsed.as_secs_f64()
    );
}
