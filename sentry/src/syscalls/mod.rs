//! System call dispatch: decode, look up, call, record, return.

mod fs;
mod mm;
mod process;
mod signal;
mod table;
mod time;

use std::time::Instant;

pub use table::SYSCALLS;

use crate::errno::Errno;
use crate::kernel::Task;
use crate::strace;

/// The six argument registers of a syscall, in ABI order.
#[derive(Debug, Clone, Copy)]
pub struct SyscallArgs {
    pub number: u64,
    pub args: [u64; 6],
}

impl SyscallArgs {
    pub fn from_task(task: &Task) -> Self {
        let r = &task.regs;
        Self {
            number: r.rax,
            args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9],
        }
    }

    pub fn u64(&self, i: usize) -> u64 {
        self.args[i]
    }

    /// An `int` argument: the low 32 bits, sign-extended (as the kernel does).
    pub fn i32(&self, i: usize) -> i32 {
        self.args[i] as u32 as i32
    }

    pub fn u32(&self, i: usize) -> u32 {
        self.args[i] as u32
    }
}

pub type Handler = fn(&mut Task, &SyscallArgs) -> Result<u64, Errno>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// Works for the cases the note describes.
    Partial(&'static str),
    Unimplemented,
}

/// How strace shows an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Fd,
    Int,
    UInt,
    Hex,
    Oct,
    Ptr,
    Path,
    Signal,
    /// A buffer whose length is argument N.
    InBuf(usize),
}

#[derive(Debug)]
pub struct SyscallInfo {
    pub number: u64,
    pub name: &'static str,
    pub support: Support,
    pub handler: Option<Handler>,
    pub args: &'static [ArgKind],
}

const fn supported(
    number: u64,
    name: &'static str,
    handler: Handler,
    args: &'static [ArgKind],
) -> SyscallInfo {
    SyscallInfo {
        number,
        name,
        support: Support::Supported,
        handler: Some(handler),
        args,
    }
}

const fn partial(
    number: u64,
    name: &'static str,
    handler: Handler,
    args: &'static [ArgKind],
    note: &'static str,
) -> SyscallInfo {
    SyscallInfo {
        number,
        name,
        support: Support::Partial(note),
        handler: Some(handler),
        args,
    }
}

const fn unimplemented(number: u64, name: &'static str) -> SyscallInfo {
    SyscallInfo {
        number,
        name,
        support: Support::Unimplemented,
        handler: None,
        args: &[],
    }
}

pub fn lookup(number: u64) -> Option<&'static SyscallInfo> {
    SYSCALLS
        .binary_search_by_key(&number, |s| s.number)
        .ok()
        .map(|i| &SYSCALLS[i])
}

/// Serves the syscall in `task.regs` and writes the result into rax.
pub fn dispatch(task: &mut Task) {
    let args = SyscallArgs::from_task(task);
    let info = lookup(args.number);
    let trace = task
        .kernel
        .strace
        .then(|| (strace::format_entry(task, info, &args), Instant::now()));
    let result = match info.and_then(|i| i.handler) {
        Some(handler) => handler(task, &args),
        None => {
            record_unimplemented(task, info, &args);
            Err(Errno::ENOSYS)
        }
    };
    task.regs.rax = match result {
        Ok(value) => value,
        Err(errno) => errno.as_return(),
    };
    if let Some((entry, start)) = trace {
        strace::log_exit(task, info, &args, &entry, result, start.elapsed());
    }
}

fn record_unimplemented(task: &Task, info: Option<&SyscallInfo>, args: &SyscallArgs) {
    task.kernel.count_unimplemented(args.number);
    let r = &task.regs;
    tracing::info!(
        target: "unimplemented_syscall",
        task = task.tid,
        comm = %task.name,
        number = args.number,
        name = info.map_or("unknown", |i| i.name),
        args = ?args.args.map(|a| format!("{a:#x}")),
        rip = format_args!("{:#x}", r.rip),
        rsp = format_args!("{:#x}", r.rsp),
        "unimplemented syscall"
    );
}

/// Copies a fixed-size value out to a user pointer (EFAULT if bad).
fn copy_out(task: &mut Task, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    task.mm.copy_out(addr, bytes)
}

/// Largest single read/write we serve; larger requests return short counts,
/// which POSIX allows and keeps sentry buffers bounded.
const MAX_IO_CHUNK: usize = 1 << 20;

/// Longest path we accept (PATH_MAX).
const PATH_MAX: usize = 4096;
