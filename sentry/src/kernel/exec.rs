//! Building a new process from an executable image.

use std::sync::Arc;

use thiserror::Error;

use super::signal::SignalState;
use super::task::{Credentials, Rlimit, Task, RLIM_NLIMITS};
use super::Kernel;
use crate::loader::{build_stack, load_elf, LoadError, StackSpec};
use crate::mm::memfile::MemoryFile;
use crate::mm::MemoryManager;
use crate::platform::{Platform, PlatformError, UserRegs};
use crate::vfs::FdTable;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error("creating the address space failed")]
    AddressSpace(#[from] PlatformError),
    #[error("loading the executable failed")]
    Load(#[from] LoadError),
    #[error("reading random bytes for AT_RANDOM failed: {0}")]
    Random(std::io::Error),
}

#[derive(Debug)]
pub struct ProcessSpec {
    pub image: Arc<[u8]>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The path the program was started with (AT_EXECFN).
    pub execfn: Vec<u8>,
    /// The absolute path readlink("/proc/self/exe") reports.
    pub exe_path: Vec<u8>,
    pub creds: Credentials,
    /// Resource limits (`kernel::rlimits_with` builds them from a spec).
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    /// The file mode creation mask.
    pub umask: u32,
}

/// Creates the first task of a new process, ready to run at the entry point.
pub fn new_process(
    kernel: Arc<Kernel>,
    platform: &dyn Platform,
    memory: Arc<MemoryFile>,
    spec: ProcessSpec,
) -> Result<Task, ExecError> {
    let space = platform.new_address_space()?;
    let mut mm = MemoryManager::new(memory, space, platform.max_user_address());
    let image = load_elf(&mut mm, Arc::clone(&spec.image))?;
    mm.set_brk_start(image.end);
    let mut random = [0u8; 16];
    rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| ExecError::Random(e.into()))?;
    let stack = StackSpec {
        argv: &spec.argv,
        envp: &spec.envp,
        execfn: &spec.execfn,
        uid: spec.creds.uid,
        gid: spec.creds.gid,
        hwcap: kernel.cpu.hwcap,
        hwcap2: kernel.cpu.hwcap2,
        min_signal_stack: kernel.cpu.min_signal_stack,
        random,
    };
    let sp = build_stack(&mut mm, &image, &stack)?;
    let name = spec
        .exe_path
        .rsplit(|&b| b == b'/')
        .next()
        .map(|n| String::from_utf8_lossy(&n[..n.len().min(15)]).into_owned())
        .unwrap_or_default();
    Ok(Task {
        tid: 1,
        tgid: 1,
        ppid: 0,
        name,
        // rdx = 0: no dynamic-linker finalizer for the program to register.
        regs: UserRegs {
            rip: image.entry,
            rsp: sp,
            rflags: 0x202,
            ..Default::default()
        },
        mm,
        fds: FdTable::with_host_stdio(),
        creds: spec.creds,
        signals: SignalState::default(),
        rlimits: spec.rlimits,
        umask: spec.umask & 0o777,
        clear_child_tid: 0,
        robust_list: (0, 0),
        exe_path: spec.exe_path,
        cwd: Vec::new(),
        kernel,
        exit_status: None,
    })
}
