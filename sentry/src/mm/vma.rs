//! Virtual memory areas: what the application asked to have mapped where.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::platform::Perms;

/// Where a VMA's contents come from on first touch.
#[derive(Clone)]
pub enum Backing {
    /// Zero-filled, private.
    Anonymous,
    /// A private copy of `data[offset..]`; bytes past the end of `data` read as zero.
    File { data: Arc<[u8]>, offset: u64 },
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backing::Anonymous => f.write_str("Anonymous"),
            Backing::File { data, offset } => {
                write!(f, "File(len {:#x}, offset {offset:#x})", data.len())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub perms: Perms,
    pub backing: Backing,
}

impl Vma {
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The part of this VMA from `at` on; its file offset moves along.
    fn tail_from(&self, at: u64) -> Vma {
        let backing = match &self.backing {
            Backing::Anonymous => Backing::Anonymous,
            Backing::File { data, offset } => Backing::File {
                data: Arc::clone(data),
                offset: offset + (at - self.start),
            },
        };
        Vma {
            start: at,
            end: self.end,
            perms: self.perms,
            backing,
        }
    }
}

/// Non-overlapping VMAs keyed by start address.
#[derive(Debug, Default)]
pub struct VmaSet {
    vmas: BTreeMap<u64, Vma>,
}

impl VmaSet {
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(addr))
    }

    /// Splits the VMA containing `at` (if `at` is strictly inside it) in two.
    pub fn split_at(&mut self, at: u64) {
        let Some(vma) = self.vmas.range_mut(..at).next_back().map(|(_, v)| v) else {
            return;
        };
        if vma.start < at && at < vma.end {
            let tail = vma.tail_from(at);
            vma.end = at;
            self.vmas.insert(at, tail);
        }
    }

    pub fn insert(&mut self, vma: Vma) {
        self.vmas.insert(vma.start, vma);
    }

    /// Removes everything in `[start, end)`, returning the removed pieces.
    pub fn remove_range(&mut self, start: u64, end: u64) -> Vec<Vma> {
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(k, _)| *k).collect();
        keys.into_iter()
            .filter_map(|k| self.vmas.remove(&k))
            .collect()
    }

    /// Whether `[start, end)` is covered by VMAs without holes.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.find(at) {
                Some(vma) => at = vma.end,
                None => return false,
            }
        }
        true
    }

    pub fn is_free(&self, start: u64, end: u64) -> bool {
        if self.find(start).is_some() {
            return false;
        }
        self.vmas.range(start..end).next().is_none()
    }

    pub fn range_mut(&mut self, start: u64, end: u64) -> impl Iterator<Item = &mut Vma> {
        self.vmas.range_mut(start..end).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, start: u64) -> Option<&mut Vma> {
        self.vmas.get_mut(&start)
    }

    /// The highest gap of `len` bytes below `top` and above `bottom`, aligned
    /// to `align`.
    pub fn find_gap_below(&self, top: u64, bottom: u64, len: u64, align: u64) -> Option<u64> {
        let mut gap_end = top;
        let fits = |gap_start: u64, gap_end: u64| -> Option<u64> {
            let candidate = gap_end.checked_sub(len)? & !(align - 1);
            (candidate >= gap_start.max(bottom)).then_some(candidate)
        };
        for vma in self.vmas.range(..top).rev().map(|(_, v)| v) {
            if let Some(found) = fits(vma.end.min(gap_end), gap_end) {
                return Some(found);
            }
            gap_end = gap_end.min(vma.start);
        }
        fits(bottom, gap_end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64) -> Vma {
        Vma {
            start,
            end,
            perms: Perms {
                read: true,
                write: true,
                execute: false,
            },
            backing: Backing::Anonymous,
        }
    }

    #[test]
    fn remove_middle_splits() {
        let mut set = VmaSet::default();
        set.insert(anon(0x1000, 0x5000));
        let removed = set.remove_range(0x2000, 0x3000);
        assert_eq!(removed.len(), 1);
        assert!(set.find(0x1000).is_some());
        assert!(set.find(0x2000).is_none());
        assert_eq!(set.find(0x4000).map(|v| v.start), Some(0x3000));
        assert!(!set.covers(0x1000, 0x5000));
        assert!(set.covers(0x3000, 0x5000));
    }

    #[test]
    fn gap_search_goes_top_down() {
        let mut set = VmaSet::default();
        set.insert(anon(0x9000, 0x10000));
        assert_eq!(
            set.find_gap_below(0x10000, 0x1000, 0x2000, 0x1000),
            Some(0x7000)
        );
        assert_eq!(set.find_gap_below(0x10000, 0x8000, 0x2000, 0x1000), None);
    }
}
