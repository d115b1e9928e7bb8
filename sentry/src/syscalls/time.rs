//! Clocks and sleeping.

use std::time::Duration;

use rustix::time::ClockId;

use super::{copy_out, SyscallArgs};
use crate::errno::Errno;
use crate::kernel::Task;

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CLOCK_MONOTONIC_RAW: i32 = 4;
const CLOCK_REALTIME_COARSE: i32 = 5;
const CLOCK_MONOTONIC_COARSE: i32 = 6;
const CLOCK_BOOTTIME: i32 = 7;
const TIMER_ABSTIME: u32 = 1;
const NSEC_PER_SEC: i64 = 1_000_000_000;

fn host_clock(clock: i32) -> Result<ClockId, Errno> {
    Ok(match clock {
        CLOCK_REALTIME => ClockId::Realtime,
        CLOCK_MONOTONIC => ClockId::Monotonic,
        CLOCK_PROCESS_CPUTIME_ID => ClockId::ProcessCPUTime,
        CLOCK_THREAD_CPUTIME_ID => ClockId::ThreadCPUTime,
        CLOCK_MONOTONIC_RAW => ClockId::MonotonicRaw,
        CLOCK_REALTIME_COARSE => ClockId::RealtimeCoarse,
        CLOCK_MONOTONIC_COARSE => ClockId::MonotonicCoarse,
        CLOCK_BOOTTIME => ClockId::Boottime,
        _ => return Err(Errno::EINVAL),
    })
}

fn now(clock: i32) -> Result<(i64, i64), Errno> {
    let ts = rustix::time::clock_gettime(host_clock(clock)?);
    Ok((ts.tv_sec, ts.tv_nsec))
}

fn timespec_bytes(sec: i64, nsec: i64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&sec.to_le_bytes());
    b[8..16].copy_from_slice(&nsec.to_le_bytes());
    b
}

fn read_timespec(task: &mut Task, addr: u64) -> Result<(i64, i64), Errno> {
    let mut b = [0u8; 16];
    task.mm.copy_in(addr, &mut b)?;
    let sec = i64::from_le_bytes(b[0..8].try_into().map_err(|_| Errno::EFAULT)?);
    let nsec = i64::from_le_bytes(b[8..16].try_into().map_err(|_| Errno::EFAULT)?);
    if sec < 0 || !(0..NSEC_PER_SEC).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec, nsec))
}

pub fn clock_gettime(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let (sec, nsec) = now(args.i32(0))?;
    copy_out(task, args.u64(1), &timespec_bytes(sec, nsec))?;
    Ok(0)
}

pub fn clock_getres(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let clock = args.i32(0);
    host_clock(clock)?;
    let nsec = if matches!(clock, CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE) {
        4_000_000
    } else {
        1
    };
    if args.u64(1) != 0 {
        copy_out(task, args.u64(1), &timespec_bytes(0, nsec))?;
    }
    Ok(0)
}

pub fn gettimeofday(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    if args.u64(0) != 0 {
        let (sec, nsec) = now(CLOCK_REALTIME)?;
        copy_out(task, args.u64(0), &timespec_bytes(sec, nsec / 1000))?;
    }
    if args.u64(1) != 0 {
        // struct timezone: UTC, no DST.
        copy_out(task, args.u64(1), &[0u8; 8])?;
    }
    Ok(0)
}

pub fn time(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let (sec, _) = now(CLOCK_REALTIME)?;
    if args.u64(0) != 0 {
        task.mm.write_u64(args.u64(0), sec as u64)?;
    }
    Ok(sec as u64)
}

/// Sleeps on the kernel's clock so a kill can cut the sleep short (EINTR).
fn sleep_for(task: &Task, sec: i64, nsec: i64) -> Result<(), Errno> {
    if sec <= 0 && nsec <= 0 {
        return Ok(());
    }
    let duration = Duration::new(sec as u64, nsec as u32);
    if task.kernel.sleep(duration) {
        Ok(())
    } else {
        Err(Errno::EINTR)
    }
}

pub fn nanosleep(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let (sec, nsec) = read_timespec(task, args.u64(0))?;
    sleep_for(task, sec, nsec)?;
    Ok(0)
}

pub fn clock_nanosleep(task: &mut Task, args: &SyscallArgs) -> Result<u64, Errno> {
    let clock = args.i32(0);
    if !matches!(clock, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME) {
        return Err(Errno::EINVAL);
    }
    let (sec, nsec) = read_timespec(task, args.u64(2))?;
    if args.u32(1) & TIMER_ABSTIME != 0 {
        let (now_sec, now_nsec) = now(clock)?;
        let target = i128::from(sec) * i128::from(NSEC_PER_SEC) + i128::from(nsec);
        let current = i128::from(now_sec) * i128::from(NSEC_PER_SEC) + i128::from(now_nsec);
        let remaining = (target - current).max(0);
        let per_sec = i128::from(NSEC_PER_SEC);
        sleep_for(
            task,
            (remaining / per_sec) as i64,
            (remaining % per_sec) as i64,
        )?;
    } else {
        sleep_for(task, sec, nsec)?;
    }
    Ok(0)
}
