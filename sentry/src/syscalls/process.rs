//! Process and identity syscalls.

use super::{copy_out, SyscallArgs, MAX_IO_CHUNK};
use crate::errno::Errno;
use crate::kernel::{self, ExitStatus, Rlimit, Task, RLIM_NLIMITS};

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;
const ROBUST_LIST_HEAD_SIZE: u64 = 24;
const GRND_NONBLOCK: u64 = 1;
const GRND_RANDOM: u64 = 2;
const GRND_INSECURE: u64 = 4;

pub fn exit(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    // A single-threaded process: the last thread leaving ends it.
    task.exit(ExitStatus::Exited(args.u64(0) as u8));
    Ok(0)
}

pub fn exit_group(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    task.exit(ExitStatus::Exited(args.u64(0) as u8));
    Ok(0)
}

pub fn getpid(task: &mut Task, _: &SyscallArgs) -> Result<u64, Errno> {
    Ok(task.tgid as u64)
}

pub fn gettid(task: &mut Task, _: &SyscallArgs) -> Result<u64, Errno> {
    Ok(task.tid as u64)
}

pub fn getppid(task: &mut Task, _: &SyscallArgs) -> Result<u64, Errno> {
    Ok(task.ppid as u64)
}

pub fn getpgid(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    match args.i32(0) {
        0 => Ok(task.tgid as u64),
        pid if pid == task.tgid => Ok(task.tgid as u64),
        _ => Err(Errno::ESRCH),
    }
}

pub fn getuid(task: &mut Task, _: &SyscallArgs) -> Result<u64, Errno> {
    Ok(u64::from(task.creds.uid))
}

pub fn getgid(task: &mut Task, _: &SyscallArgs) -> Result<u64, Errno> {
    Ok(u64::from(task.creds.gid))
}

/// umask(2): sets the mask's permission bits, returns the old mask.
pub fn umask(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let old = task.umask;
    task.umask = args.u32(0) & 0o777;
    Ok(u64::from(old))
}

pub fn set_tid_address(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    task.clear_child_tid = args.u64(0);
    Ok(task.tid as u64)
}

pub fn set_robust_list(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.u64(1) != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    task.robust_list = (args.u64(0), args.u64(1));
    Ok(0)
}

pub fn rseq(_: &mut Task, _: &SyscallArgs) -> Result<u64, Errno> {
    Err(Errno::ENOSYS)
}

pub fn sched_yield(_: &mut Task, _: &SyscallArgs) -> Result<u64, Errno> {
    std::thread::yield_now();
    Ok(0)
}

pub fn arch_prctl(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let addr = args.u64(1);
    match args.u64(0) {
        ARCH_SET_FS | ARCH_SET_GS if addr >= task.mm.max_address() => Err(Errno::EPERM),
        ARCH_SET_FS => {
            task.regs.fs_base = addr;
            Ok(0)
        }
        ARCH_SET_GS => {
            task.regs.gs_base = addr;
            Ok(0)
        }
        ARCH_GET_FS => {
            let value = task.regs.fs_base;
            task.mm.write_u64(addr, value)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            let value = task.regs.gs_base;
            task.mm.write_u64(addr, value)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn uname(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    const FIELD: usize = 65;
    let mut buf = [0u8; FIELD * 6];
    let uts = task.kernel.uts();
    let fields: [&[u8]; 6] = [
        kernel::SYSNAME.as_bytes(),
        &uts.hostname,
        kernel::RELEASE.as_bytes(),
        kernel::VERSION.as_bytes(),
        kernel::MACHINE.as_bytes(),
        &uts.domainname,
    ];
    for (i, bytes) in fields.iter().enumerate() {
        let n = bytes.len().min(FIELD - 1);
        buf[i * FIELD..i * FIELD + n].copy_from_slice(&bytes[..n]);
    }
    copy_out(task, args.u64(0), &buf)?;
    Ok(0)
}

/// The name argument of sethostname(2)/setdomainname(2): EPERM without
/// CAP_SYS_ADMIN (here: unless root), EINVAL past __NEW_UTS_LEN.
fn uts_name_arg(task: &mut Task, args: &SyscallArgs) -> Result<Vec<u8>, Errno> {
    if task.creds.uid != 0 {
        return Err(Errno::EPERM);
    }
    let len = usize::try_from(args.u64(1)).map_err(|_| Errno::EINVAL)?;
    if len > kernel::UTS_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let mut name = vec![0u8; len];
    task.mm.copy_in(args.u64(0), &mut name)?;
    Ok(name)
}

pub fn sethostname(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let name = uts_name_arg(task, args)?;
    task.kernel.set_hostname(&name)?;
    Ok(0)
}

pub fn setdomainname(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let name = uts_name_arg(task, args)?;
    task.kernel.set_domainname(&name)?;
    Ok(0)
}

fn rlimit_bytes(limit: Rlimit) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&limit.soft.to_le_bytes());
    b[8..16].copy_from_slice(&limit.hard.to_le_bytes());
    b
}

fn resource_index(resource: u64) -> Result<usize, Errno> {
    usize::try_from(resource)
        .ok()
        .filter(|r| *r < RLIM_NLIMITS)
        .ok_or(Errno::EINVAL)
}

pub fn getrlimit(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let limit = task.rlimits[resource_index(args.u64(0))?];
    copy_out(task, args.u64(1), &rlimit_bytes(limit))?;
    Ok(0)
}

fn read_rlimit(task: &mut Task, addr: u64) -> Result<Rlimit, Errno> {
    let mut b = [0u8; 16];
    task.mm.copy_in(addr, &mut b)?;
    let soft = u64::from_le_bytes(b[0..8].try_into().map_err(|_| Errno::EFAULT)?);
    let hard = u64::from_le_bytes(b[8..16].try_into().map_err(|_| Errno::EFAULT)?);
    if soft > hard {
        return Err(Errno::EINVAL);
    }
    Ok(Rlimit { soft, hard })
}

pub fn setrlimit(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let index = resource_index(args.u64(0))?;
    task.rlimits[index] = read_rlimit(task, args.u64(1))?;
    Ok(0)
}

pub fn prlimit64(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let pid = args.i32(0);
    if pid != 0 && pid != task.tgid {
        return Err(Errno::ESRCH);
    }
    let index = resource_index(args.u64(1))?;
    let new = if args.u64(2) != 0 {
        Some(read_rlimit(task, args.u64(2))?)
    } else {
        None
    };
    if args.u64(3) != 0 {
        let old = task.rlimits[index];
        copy_out(task, args.u64(3), &rlimit_bytes(old))?;
    }
    if let Some(limit) = new {
        task.rlimits[index] = limit;
    }
    Ok(0)
}

pub fn sched_getaffinity(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let pid = args.i32(0);
    if pid != 0 && pid != task.tid {
        return Err(Errno::ESRCH);
    }
    let len = args.u64(1);
    if len < 8 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let cpus = task.kernel.cpu.cpu_count.clamp(1, 64);
    let mask: u64 = if cpus == 64 {
        u64::MAX
    } else {
        (1u64 << cpus) - 1
    };
    copy_out(task, args.u64(2), &mask.to_le_bytes())?;
    Ok(8)
}

pub fn getrandom(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.u64(2) & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = (args.u64(1) as usize).min(MAX_IO_CHUNK);
    let mut buf = vec![0u8; len];
    let n = rustix::rand::getrandom(&mut buf, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Errno(e.raw_os_error()))?;
    task.mm.copy_out(args.u64(0), &buf[..n])?;
    Ok(n as u64)
}

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_CMD_MASK: i32 = 0x7f;

pub fn futex(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    match args.i32(1) & FUTEX_CMD_MASK {
        FUTEX_WAKE => Ok(0),
        FUTEX_WAIT => {
            let mut word = [0u8; 4];
            task.mm.copy_in(args.u64(0), &mut word)?;
            if u32::from_le_bytes(word) != args.u32(2) {
                return Err(Errno::EAGAIN);
            }
            // No other thread can ever wake us: report a spurious wakeup.
            tracing::warn!(
                task = task.tid,
                "futex wait with no other thread to wake it"
            );
            Err(Errno::EINTR)
        }
        _ => Err(Errno::ENOSYS),
    }
}
