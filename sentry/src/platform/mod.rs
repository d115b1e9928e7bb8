//! The platform: how application code actually runs.
//!
//! The kernel asks a platform for address spaces and execution contexts, then
//! runs a task's registers until the next event. It never sees KVM or seccomp
//! traps: everything host-specific is behind these traits.
//!
//! Two platforms: `kvm` (guest ring 3 in a VM; fastest with hardware
//! virtualization) and `systrap` (a seccomp-trapped stub process; fastest on
//! hosts whose /dev/kvm is a software hypervisor, see shared/KVM.md).
//! `PlatformKind::Auto` picks between them (`choose`).

pub mod kvm;
pub mod systrap;

use std::any::Any;
use std::fmt::Debug;

use thiserror::Error;

/// The application-visible register file of one task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub fs_base: u64,
    pub gs_base: u64,
}

/// What a faulting access was trying to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Read,
    Write,
    Execute,
}

/// Page protections as the application asked for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Perms {
    pub const NONE: Perms = Perms {
        read: false,
        write: false,
        execute: false,
    };

    pub fn allows(self, access: AccessKind) -> bool {
        match access {
            AccessKind::Read => self.read || self.write || self.execute,
            AccessKind::Write => self.write,
            AccessKind::Execute => self.execute,
        }
    }

    pub fn is_none(self) -> bool {
        !(self.read || self.write || self.execute)
    }
}

/// Why `Context::switch` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The application executed `syscall`; `regs.rip` is already past it.
    Syscall,
    /// A user-mode page fault; `present` is true for a protection violation
    /// (systrap: as the host's lazily filled page tables say, so a first
    /// touch of a read-only page may report false; the kernel decides by VMAs).
    PageFault {
        addr: u64,
        access: AccessKind,
        present: bool,
    },
    /// Any other CPU exception raised in user mode.
    Exception { vector: u8, error_code: u64 },
    /// The context was kicked out by `Interrupter::interrupt`.
    Interrupted,
}

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("platform is unavailable: {0}")]
    Unavailable(String),
    #[error("systrap stub: {0}")]
    Stub(String),
    #[error("systrap stub process {pid} died: {status}")]
    StubDied { pid: i32, status: String },
    #[error("{step} failed")]
    Setup {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("vcpu run failed: {0}")]
    Run(std::io::Error),
    #[error("unexpected vcpu exit: {0}")]
    UnexpectedExit(String),
    #[error("exception {vector} in guest kernel mode at rip {rip:#x} (cr2 {cr2:#x}, error {error_code:#x})")]
    GuestKernelFault {
        vector: u8,
        rip: u64,
        cr2: u64,
        error_code: u64,
    },
    #[error("mapping {va:#x}+{len:#x} is invalid: {why}")]
    BadMapping {
        va: u64,
        len: u64,
        why: &'static str,
    },
    #[error("out of page-table memory")]
    OutOfPageTables,
    #[error("address space belongs to another platform")]
    ForeignAddressSpace,
}

/// Application page tables (or their equivalent).
///
/// Memory is always given as offsets in the memory file, so the platform never
/// allocates application memory itself.
pub trait AddressSpace: Send + Debug {
    /// Maps `[va, va+len)` to the file range starting at `file_offset`, replacing
    /// any existing mapping. All of `va`, `len` and `file_offset` are page aligned.
    fn map(
        &mut self,
        va: u64,
        len: u64,
        file_offset: u64,
        perms: Perms,
    ) -> Result<(), PlatformError>;
    /// Removes any mapping in `[va, va+len)`.
    fn unmap(&mut self, va: u64, len: u64) -> Result<(), PlatformError>;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Kicks a running context out of the application.
pub trait Interrupt: Send + Sync + Debug {
    fn interrupt(&self);
}

/// One thread of execution (a vCPU for KVM), bound to the host thread that made it.
pub trait Context: Debug {
    /// Runs `regs` in `address_space` until the next event, then stores the
    /// application's registers back into `regs`.
    fn switch(
        &mut self,
        address_space: &mut dyn AddressSpace,
        regs: &mut UserRegs,
    ) -> Result<Event, PlatformError>;
    fn interrupter(&self) -> std::sync::Arc<dyn Interrupt>;
}

/// What the application sees of the CPU (for the auxiliary vector).
#[derive(Debug, Clone, Copy)]
pub struct CpuFeatures {
    /// AT_HWCAP: CPUID leaf 1 EDX.
    pub hwcap: u64,
    /// AT_HWCAP2 bits (HWCAP2_FSGSBASE when ring 3 may use rd/wrfsbase).
    pub hwcap2: u64,
    /// AT_MINSIGSTKSZ: room a signal frame with the full XSAVE area needs.
    pub min_signal_stack: u64,
    pub cpu_count: u32,
}

/// x86 exception vectors, as reported in `Event::Exception`.
pub mod vector {
    pub const DIVIDE_ERROR: u8 = 0;
    pub const DEBUG: u8 = 1;
    pub const BREAKPOINT: u8 = 3;
    pub const OVERFLOW: u8 = 4;
    pub const BOUND: u8 = 5;
    pub const INVALID_OPCODE: u8 = 6;
    pub const DEVICE_NOT_AVAILABLE: u8 = 7;
    pub const GENERAL_PROTECTION: u8 = 13;
    pub const PAGE_FAULT: u8 = 14;
    pub const X87_FLOATING_POINT: u8 = 16;
    pub const ALIGNMENT_CHECK: u8 = 17;
    pub const SIMD_FLOATING_POINT: u8 = 19;
}

pub trait Platform: Send + Sync + Debug {
    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>, PlatformError>;
    /// Must be called on the host thread that will run the context.
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError>;
    /// The largest user address plus one.
    fn max_user_address(&self) -> u64;
    fn cpu_features(&self) -> CpuFeatures;
}

/// Which platform to run on (`--platform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlatformKind {
    /// KVM where the host has hardware virtualization, systrap otherwise.
    Auto,
    Kvm,
    Systrap,
}

impl std::fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlatformKind::Auto => "auto",
            PlatformKind::Kvm => "kvm",
            PlatformKind::Systrap => "systrap",
        })
    }
}

/// What the host offers, as far as choosing a platform goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVirtualization {
    /// `vmx` or `svm` if /proc/cpuinfo lists it.
    pub cpu_flag: Option<&'static str>,
    /// Whether /dev/kvm opens and answers KVM_GET_API_VERSION (else why not).
    pub kvm: Result<(), String>,
}

impl HostVirtualization {
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self {
            cpu_flag: cpu_virtualization_flag(&cpuinfo),
            kvm: kvm_ioctls::Kvm::new()
                .map(|_| ())
                .map_err(|e| format!("/dev/kvm: {e}")),
        }
    }
}

/// `vmx` or `svm` if any `flags` line of /proc/cpuinfo lists it.
pub fn cpu_virtualization_flag(cpuinfo: &str) -> Option<&'static str> {
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim() != "flags" {
            continue;
        }
        for flag in value.split_whitespace() {
            match flag {
                "vmx" => return Some("vmx"),
                "svm" => return Some("svm"),
                _ => {}
            }
        }
    }
    None
}

/// Resolves `requested` against what the host offers: the platform to use
/// and a sentence saying why.
pub fn choose(requested: PlatformKind, host: &HostVirtualization) -> (PlatformKind, String) {
    match requested {
        PlatformKind::Kvm => (PlatformKind::Kvm, "asked for kvm".into()),
        PlatformKind::Systrap => (PlatformKind::Systrap, "asked for systrap".into()),
        PlatformKind::Auto => match (host.cpu_flag, &host.kvm) {
            (Some(flag), Ok(())) => (
                PlatformKind::Kvm,
                format!("auto: the CPU has {flag} and /dev/kvm works"),
            ),
            (Some(flag), Err(why)) => (
                PlatformKind::Systrap,
                format!("auto: the CPU has {flag} but {why}"),
            ),
            (None, Ok(())) => (
                PlatformKind::Systrap,
                "auto: /dev/kvm works but the CPU has no vmx/svm flag (a software \
                 hypervisor such as PVM, ~100x slower per syscall than systrap)"
                    .into(),
            ),
            (None, Err(why)) => (
                PlatformKind::Systrap,
                format!("auto: no vmx/svm flag and {why}"),
            ),
        },
    }
}

/// Creates the platform `requested` resolves to on this host, logging the
/// choice. The memory file must reserve `kvm::layout::PLATFORM_RESERVED`.
pub fn create(
    requested: PlatformKind,
    memory: std::sync::Arc<crate::mm::memfile::MemoryFile>,
) -> Result<std::sync::Arc<dyn Platform>, PlatformError> {
    let host = match requested {
        PlatformKind::Auto => HostVirtualization::probe(),
        _ => HostVirtualization {
            cpu_flag: None,
            kvm: Err("not probed".into()),
        },
    };
    let (kind, reason) = choose(requested, &host);
    tracing::info!(platform = %kind, requested = %requested, reason = %reason, "platform chosen");
    Ok(match kind {
        PlatformKind::Kvm => std::sync::Arc::new(kvm::KvmPlatform::new(memory)?),
        PlatformKind::Systrap | PlatformKind::Auto => {
            std::sync::Arc::new(systrap::SystrapPlatform::new(memory)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_kvm_only_with_hardware_virtualization() {
        let host = |flag, kvm: Result<(), String>| HostVirtualization {
            cpu_flag: flag,
            kvm,
        };
        let pick = |h: &HostVirtualization| choose(PlatformKind::Auto, h).0;
        assert_eq!(pick(&host(Some("vmx"), Ok(()))), PlatformKind::Kvm);
        assert_eq!(pick(&host(Some("svm"), Ok(()))), PlatformKind::Kvm);
        // PVM: /dev/kvm works, no vmx/svm.
        assert_eq!(pick(&host(None, Ok(()))), PlatformKind::Systrap);
        assert_eq!(
            pick(&host(Some("vmx"), Err("no /dev/kvm".into()))),
            PlatformKind::Systrap
        );
        assert_eq!(pick(&host(None, Err("x".into()))), PlatformKind::Systrap);
        let none = host(None, Err("x".into()));
        assert_eq!(choose(PlatformKind::Kvm, &none).0, PlatformKind::Kvm);
        assert_eq!(
            choose(PlatformKind::Systrap, &none).0,
            PlatformKind::Systrap
        );
    }

    #[test]
    fn cpu_flags_are_read_from_the_flags_line() {
        let pvm = "processor\t: 0\nflags\t\t: fpu vme sse avx2 hypervisor\nbugs\t\t: vmx_ghost\n";
        assert_eq!(cpu_virtualization_flag(pvm), None);
        let intel = "flags\t\t: fpu vmx sse\n";
        assert_eq!(cpu_virtualization_flag(intel), Some("vmx"));
        let amd = "flags\t\t: fpu svm\n";
        assert_eq!(cpu_virtualization_flag(amd), Some("svm"));
    }
}
