//! Memory management: the memory file, VMAs, page faults and copies to and
//! from application memory. Platform-neutral: mappings are pushed to the
//! platform's `AddressSpace` as file ranges.

pub mod memfile;
mod space;
pub mod vma;

pub use space::{page_down, page_up, FaultError, MemoryManager, MmapRequest};
