//! The initial process stack: argc, argv, envp, auxv and the strings they
//! point to, laid out as the x86_64 System V ABI and Linux's binfmt_elf do.

use super::{ElfImage, LoadError};
use crate::mm::vma::Backing;
use crate::mm::{MemoryManager, MmapRequest};
use crate::platform::Perms;

pub const STACK_TOP: u64 = 0x7fff_ffff_f000;
pub const STACK_SIZE: u64 = 8 << 20;
/// Linux's MAX_ARG_STRLEN-style cap on the total size of argv+envp.
const MAX_ARGS_BYTES: usize = 2 << 20;

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Everything the stack holds besides the image itself.
#[derive(Debug)]
pub struct StackSpec<'a> {
    pub argv: &'a [Vec<u8>],
    pub envp: &'a [Vec<u8>],
    pub execfn: &'a [u8],
    pub uid: u32,
    pub gid: u32,
    pub hwcap: u64,
    pub hwcap2: u64,
    pub min_signal_stack: u64,
    pub random: [u8; 16],
}

/// Maps the stack VMA and fills it; returns the initial stack pointer.
pub fn build_stack(
    mm: &mut MemoryManager,
    image: &ElfImage,
    spec: &StackSpec<'_>,
) -> Result<u64, LoadError> {
    let strings_len: usize = spec.argv.iter().chain(spec.envp).map(|s| s.len() + 1).sum();
    if strings_len > MAX_ARGS_BYTES {
        return Err(LoadError::StackTooBig);
    }
    let rw = Perms {
        read: true,
        write: true,
        execute: false,
    };
    // The platform may reserve the top of the address space (systrap's stub).
    let stack_top = STACK_TOP.min(mm.max_address());
    let request = MmapRequest {
        addr: stack_top - STACK_SIZE,
        len: STACK_SIZE,
        perms: rw,
        fixed: true,
        no_replace: false,
        backing: Backing::Anonymous,
    };
    mm.mmap(request).map_err(LoadError::Map)?;

    // Strings go at the very top, in the order Linux uses: execfn last.
    let mut top = stack_top - 8;
    let mut push_bytes = |mm: &mut MemoryManager, bytes: &[u8]| -> Result<u64, LoadError> {
        top -= bytes.len() as u64 + 1;
        let mut with_nul = bytes.to_vec();
        with_nul.push(0);
        mm.copy_out(top, &with_nul).map_err(LoadError::Map)?;
        Ok(top)
    };
    let execfn = push_bytes(mm, spec.execfn)?;
    let envp: Vec<u64> = spec
        .envp
        .iter()
        .map(|e| push_bytes(mm, e))
        .collect::<Result<_, _>>()?;
    let argv: Vec<u64> = spec
        .argv
        .iter()
        .map(|a| push_bytes(mm, a))
        .collect::<Result<_, _>>()?;
    let platform = push_bytes(mm, b"x86_64")?;
    top &= !15;
    top -= 16;
    let random = top;
    mm.copy_out(random, &spec.random).map_err(LoadError::Map)?;

    let auxv: [(u64, u64); 19] = [
        (AT_HWCAP, spec.hwcap),
        (AT_PAGESZ, 4096),
        (AT_CLKTCK, 100),
        (AT_PHDR, image.phdr),
        (AT_PHENT, image.phent),
        (AT_PHNUM, image.phnum),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, image.entry),
        (AT_UID, u64::from(spec.uid)),
        (AT_EUID, u64::from(spec.uid)),
        (AT_GID, u64::from(spec.gid)),
        (AT_EGID, u64::from(spec.gid)),
        (AT_SECURE, 0),
        (AT_RANDOM, random),
        (AT_HWCAP2, spec.hwcap2),
        (AT_EXECFN, execfn),
        (AT_PLATFORM, platform),
        (AT_MINSIGSTKSZ, spec.min_signal_stack),
    ];
    let mut words: Vec<u64> = Vec::with_capacity(argv.len() + envp.len() + 2 * auxv.len() + 6);
    words.push(argv.len() as u64);
    words.extend(&argv);
    words.push(0);
    words.extend(&envp);
    words.push(0);
    for (key, value) in auxv {
        words.push(key);
        words.push(value);
    }
    words.push(AT_NULL);
    words.push(0);

    // rsp must be 16-byte aligned at the entry point, pointing at argc.
    let size = words.len() as u64 * 8;
    let sp = (top - size) & !15;
    if sp < stack_top - STACK_SIZE {
        return Err(LoadError::StackTooBig);
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    mm.copy_out(sp, &bytes).map_err(LoadError::Map)?;
    Ok(sp)
}
