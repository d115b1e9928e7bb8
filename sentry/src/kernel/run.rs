//! The task loop: run the application until it traps, serve the trap, repeat.

use super::signal::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
use super::task::{ExitStatus, Task};
use crate::platform::vector as v;
use crate::platform::{Context, Event, PlatformError};
use crate::syscalls;

/// Runs `task` on `context` until its process exits.
pub fn run_task(task: &mut Task, context: &mut dyn Context) -> Result<ExitStatus, PlatformError> {
    // The same fault at the same instruction over and over means the platform
    // mapping never took effect; die loudly instead of spinning.
    let mut last_fault = (0u64, 0u64);
    let mut repeats = 0u32;
    loop {
        if let Some(signo) = task.kernel.pending_kill() {
            task.force_signal(signo, 0, 0);
        }
        if let Some(status) = task.exit_status {
            return Ok(status);
        }
        let event = context.switch(task.mm.address_space(), &mut task.regs)?;
        match event {
            Event::Syscall => syscalls::dispatch(task),
            Event::PageFault { addr, access, .. } => {
                if last_fault == (addr, task.regs.rip) {
                    repeats += 1;
                } else {
                    last_fault = (addr, task.regs.rip);
                    repeats = 0;
                }
                if repeats >= MAX_REPEATED_FAULTS {
                    tracing::error!(
                        task = task.tid,
                        addr,
                        rip = task.regs.rip,
                        "page fault does not resolve"
                    );
                    task.force_signal(SIGSEGV, 0, addr);
                    continue;
                }
                if let Err(error) = task.mm.handle_fault(addr, access) {
                    task.fault_signal(error, addr);
                }
            }
            Event::Exception { vector, error_code } => {
                let signo = signal_for_exception(vector);
                tracing::debug!(
                    task = task.tid,
                    vector,
                    error_code,
                    rip = task.regs.rip,
                    "exception"
                );
                task.force_signal(signo, 0, task.regs.rip);
            }
            Event::Interrupted => {}
        }
    }
}

const MAX_REPEATED_FAULTS: u32 = 64;

/// The signal Linux sends for a user-mode CPU exception.
fn signal_for_exception(vector: u8) -> i32 {
    match vector {
        v::DIVIDE_ERROR | v::X87_FLOATING_POINT | v::SIMD_FLOATING_POINT => SIGFPE,
        v::DEBUG | v::BREAKPOINT => SIGTRAP,
        v::INVALID_OPCODE | v::DEVICE_NOT_AVAILABLE => SIGILL,
        v::ALIGNMENT_CHECK => SIGBUS,
        v::OVERFLOW | v::BOUND | v::GENERAL_PROTECTION => SIGSEGV,
        _ => SIGSEGV,
    }
}
