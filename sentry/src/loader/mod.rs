//! Loading a static ELF64 executable into a fresh address space and building
//! its initial stack.

mod elf;
mod stack;

pub use elf::{load_elf, ElfImage};
pub use stack::{build_stack, StackSpec, STACK_SIZE, STACK_TOP};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("not a valid ELF file: {0}")]
    Parse(String),
    #[error("unsupported executable: {0}")]
    Unsupported(&'static str),
    #[error("segment at {vaddr:#x} is malformed: {why}")]
    BadSegment { vaddr: u64, why: &'static str },
    #[error("mapping the image failed: {0}")]
    Map(crate::errno::Errno),
    #[error("the arguments and environment do not fit on the stack")]
    StackTooBig,
}
