//! ELF64 ET_EXEC and static-PIE (ET_DYN without an interpreter).

use std::sync::Arc;

use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use goblin::elf::Elf;

use super::LoadError;
use crate::mm::memfile::PAGE_SIZE;
use crate::mm::vma::Backing;
use crate::mm::{MemoryManager, MmapRequest};
use crate::platform::Perms;

/// Where a static-PIE is placed (Linux's ELF_ET_DYN_BASE is about here too).
pub const PIE_LOAD_BASE: u64 = 0x5555_5555_4000;

/// What the stack builder and the task need to know about the loaded image.
#[derive(Debug, Clone, Copy)]
pub struct ElfImage {
    pub entry: u64,
    /// Address of the program headers in memory (AT_PHDR).
    pub phdr: u64,
    pub phent: u64,
    pub phnum: u64,
    /// First byte after the highest segment: the heap starts here.
    pub end: u64,
}

pub fn load_elf(mm: &mut MemoryManager, bytes: Arc<[u8]>) -> Result<ElfImage, LoadError> {
    let elf = Elf::parse(&bytes).map_err(|e| LoadError::Parse(e.to_string()))?;
    if !elf.is_64 || !elf.little_endian || elf.header.e_machine != EM_X86_64 {
        return Err(LoadError::Unsupported(
            "not an x86_64 little-endian ELF64 file",
        ));
    }
    if elf.program_headers.iter().any(|p| p.p_type == PT_INTERP) {
        return Err(LoadError::Unsupported(
            "dynamically linked (needs an interpreter and a filesystem)",
        ));
    }
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    let lowest = loads
        .iter()
        .map(|p| p.p_vaddr)
        .min()
        .ok_or(LoadError::Unsupported("no loadable segment"))?;
    let bias = match elf.header.e_type {
        ET_EXEC => 0,
        ET_DYN => {
            let align = loads
                .iter()
                .map(|p| p.p_align)
                .max()
                .unwrap_or(PAGE_SIZE)
                .max(PAGE_SIZE);
            if !align.is_power_of_two() {
                return Err(LoadError::Unsupported(
                    "segment alignment is not a power of two",
                ));
            }
            let base = (PIE_LOAD_BASE + align - 1) & !(align - 1);
            base.checked_sub(lowest & !(PAGE_SIZE - 1))
                .ok_or(LoadError::Unsupported("PIE too high"))?
        }
        _ => return Err(LoadError::Unsupported("neither ET_EXEC nor ET_DYN")),
    };

    let mut end = 0u64;
    for ph in &loads {
        let bad = |why| LoadError::BadSegment {
            vaddr: ph.p_vaddr,
            why,
        };
        if ph.p_filesz > ph.p_memsz {
            return Err(bad("file size larger than memory size"));
        }
        if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
            return Err(bad("address and offset disagree modulo the page size"));
        }
        let file_end = ph
            .p_offset
            .checked_add(ph.p_filesz)
            .ok_or(bad("file range overflows"))?;
        if file_end > bytes.len() as u64 {
            return Err(bad("file range past the end of the file"));
        }
        let vaddr = ph
            .p_vaddr
            .checked_add(bias)
            .ok_or(bad("address overflows"))?;
        let perms = Perms {
            read: ph.p_flags & PF_R != 0,
            write: ph.p_flags & PF_W != 0,
            execute: ph.p_flags & PF_X != 0,
        };
        let page_start = vaddr & !(PAGE_SIZE - 1);
        let mem_end = vaddr.checked_add(ph.p_memsz).ok_or(bad("size overflows"))?;
        let file_part_end = vaddr + ph.p_filesz;
        let map_end = crate::mm::page_up(mem_end).ok_or(bad("size overflows"))?;

        if ph.p_filesz > 0 {
            // Only the file bytes of this segment: the rest of its last page
            // must read as zero (it is the start of .bss), so give the mapping
            // a copy that ends where the segment's file part ends.
            let file_page_offset = ph.p_offset & !(PAGE_SIZE - 1);
            let data: Arc<[u8]> = Arc::from(&bytes[file_page_offset as usize..file_end as usize]);
            let file_map_end = crate::mm::page_up(file_part_end).ok_or(bad("size overflows"))?;
            map(
                mm,
                page_start,
                file_map_end - page_start,
                perms,
                Backing::File { data, offset: 0 },
            )?;
            if map_end > file_map_end {
                map(
                    mm,
                    file_map_end,
                    map_end - file_map_end,
                    perms,
                    Backing::Anonymous,
                )?;
            }
        } else if map_end > page_start {
            map(
                mm,
                page_start,
                map_end - page_start,
                perms,
                Backing::Anonymous,
            )?;
        }
        end = end.max(map_end);
    }

    let phdr = match elf.program_headers.iter().find(|p| p.p_type == PT_PHDR) {
        Some(p) => p.p_vaddr.wrapping_add(bias),
        None => {
            // The headers are usually inside the first segment that maps file offset 0.
            let phoff = elf.header.e_phoff;
            loads
                .iter()
                .find(|p| p.p_offset <= phoff && phoff - p.p_offset < p.p_filesz)
                .map(|p| {
                    p.p_vaddr
                        .wrapping_add(bias)
                        .wrapping_add(phoff - p.p_offset)
                })
                .unwrap_or(0)
        }
    };
    Ok(ElfImage {
        entry: elf.header.e_entry.wrapping_add(bias),
        phdr,
        phent: u64::from(elf.header.e_phentsize),
        phnum: u64::from(elf.header.e_phnum),
        end,
    })
}

fn map(
    mm: &mut MemoryManager,
    addr: u64,
    len: u64,
    perms: Perms,
    backing: Backing,
) -> Result<(), LoadError> {
    let request = MmapRequest {
        addr,
        len,
        perms,
        fixed: true,
        no_replace: false,
        backing,
    };
    mm.mmap(request).map(|_| ()).map_err(LoadError::Map)
}
