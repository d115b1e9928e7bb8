//! Signal syscalls: handlers and masks are recorded; a signal sent to oneself
//! takes its default action (delivery to handlers comes later).

use super::{copy_out, SyscallArgs};
use crate::errno::Errno;
use crate::kernel::signal::{SigAction, NSIG, SIGCHLD, SIGKILL, SIGSTOP, UNBLOCKABLE};
use crate::kernel::Task;

const SIGSET_SIZE: u64 = 8;
const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;
const SIG_IGN: u64 = 1;
const SS_DISABLE: u32 = 2;
const MIN_SIGSTKSZ: u64 = 2048;

fn check_signal(signo: i32) -> Result<usize, Errno> {
    if (1..=NSIG).contains(&signo) {
        Ok((signo - 1) as usize)
    } else {
        Err(Errno::EINVAL)
    }
}

pub fn rt_sigaction(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let signo = args.i32(0);
    let index = check_signal(signo)?;
    if args.u64(3) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = if args.u64(1) != 0 {
        if signo == SIGKILL || signo == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut raw = [0u8; SigAction::SIZE];
        task.mm.copy_in(args.u64(1), &mut raw)?;
        let mut action = SigAction::from_bytes(&raw);
        action.mask &= !UNBLOCKABLE;
        Some(action)
    } else {
        None
    };
    if args.u64(2) != 0 {
        let old = task.signals.actions[index];
        copy_out(task, args.u64(2), &old.to_bytes())?;
    }
    if let Some(action) = new {
        task.signals.actions[index] = action;
    }
    Ok(0)
}

pub fn rt_sigprocmask(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.u64(3) != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = if args.u64(1) != 0 {
        Some(task.mm.read_u64(args.u64(1))?)
    } else {
        None
    };
    let how = args.i32(0);
    if new.is_some() && !matches!(how, SIG_BLOCK | SIG_UNBLOCK | SIG_SETMASK) {
        return Err(Errno::EINVAL);
    }
    if args.u64(2) != 0 {
        let old = task.signals.mask;
        task.mm.write_u64(args.u64(2), old)?;
    }
    if let Some(set) = new {
        let mask = &mut task.signals.mask;
        *mask = match how {
            SIG_BLOCK => *mask | set,
            SIG_UNBLOCK => *mask & !set,
            _ => set,
        } & !UNBLOCKABLE;
    }
    Ok(0)
}

pub fn sigaltstack(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let new = if args.u64(0) != 0 {
        let mut raw = [0u8; 24];
        task.mm.copy_in(args.u64(0), &mut raw)?;
        let sp = u64::from_le_bytes(raw[0..8].try_into().map_err(|_| Errno::EFAULT)?);
        let flags = u32::from_le_bytes(raw[8..12].try_into().map_err(|_| Errno::EFAULT)?);
        let size = u64::from_le_bytes(raw[16..24].try_into().map_err(|_| Errno::EFAULT)?);
        if flags & !SS_DISABLE != 0 && flags != 0x8000_0000 {
            return Err(Errno::EINVAL);
        }
        if flags & SS_DISABLE == 0 && size < MIN_SIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        Some((sp, flags, size))
    } else {
        None
    };
    if args.u64(1) != 0 {
        let (sp, flags, size) = task.signals.alt_stack;
        let mut raw = [0u8; 24];
        raw[0..8].copy_from_slice(&sp.to_le_bytes());
        raw[8..12].copy_from_slice(&flags.to_le_bytes());
        raw[16..24].copy_from_slice(&size.to_le_bytes());
        copy_out(task, args.u64(1), &raw)?;
    }
    if let Some(stack) = new {
        task.signals.alt_stack = stack;
    }
    Ok(0)
}

/// Signals whose default action is to do nothing.
fn ignored_by_default(signo: i32) -> bool {
    matches!(
        signo,
        SIGCHLD | 18 /* SIGCONT */ | 23 /* SIGURG */ | 28 /* SIGWINCH */
    )
}

fn send_to_self(task: &mut Task, signo: i32) -> Result<u64, Errno> {
    if signo == 0 {
        return Ok(0);
    }
    let index = check_signal(signo)?;
    let handler = task.signals.actions[index].handler;
    let blocked = task.signals.mask & (1 << index) != 0;
    if handler == SIG_IGN
        || (handler == 0 && ignored_by_default(signo))
        || (blocked && signo != SIGKILL)
    {
        return Ok(0);
    }
    if handler > SIG_IGN {
        tracing::warn!(
            task = task.tid,
            signo,
            "signal handlers are not run yet; taking the default action"
        );
    }
    task.force_signal(signo, 0, 0);
    Ok(0)
}

pub fn kill(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let pid = args.i32(0);
    if pid == task.tgid || pid == 0 || pid == -1 || pid == -task.tgid {
        send_to_self(task, args.i32(1))
    } else {
        Err(Errno::ESRCH)
    }
}

pub fn tkill(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.i32(0) != task.tid {
        return Err(Errno::ESRCH);
    }
    send_to_self(task, args.i32(1))
}

pub fn tgkill(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.i32(0) != task.tgid || args.i32(1) != task.tid {
        return Err(Errno::ESRCH);
    }
    send_to_self(task, args.i32(2))
}
