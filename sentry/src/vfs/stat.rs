//! File attributes as the application sees them, in the two layouts the
//! x86_64 kernel uses: `struct stat` and `struct statx`.

/// A timestamp: seconds and nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

/// The fields of `struct stat` we report (host identity fields are not leaked).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

/// statx mask bits for what `Stat` carries (STATX_BASIC_STATS).
pub const STATX_BASIC_STATS: u32 = 0x7ff;
/// Bytes of `struct statx`.
pub const STATX_SIZE: usize = 256;

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// Linux's `new_encode_dev`, which statx splits into major and minor.
fn major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

impl Stat {
    /// The x86_64 kernel `struct stat` (144 bytes).
    pub fn to_bytes(&self) -> [u8; 144] {
        let mut b = [0u8; 144];
        put(&mut b, 0, &self.dev.to_le_bytes());
        put(&mut b, 8, &self.ino.to_le_bytes());
        put(&mut b, 16, &self.nlink.to_le_bytes());
        put(&mut b, 24, &self.mode.to_le_bytes());
        put(&mut b, 28, &self.uid.to_le_bytes());
        put(&mut b, 32, &self.gid.to_le_bytes());
        put(&mut b, 40, &self.rdev.to_le_bytes());
        put(&mut b, 48, &self.size.to_le_bytes());
        put(&mut b, 56, &self.blksize.to_le_bytes());
        put(&mut b, 64, &self.blocks.to_le_bytes());
        for (at, t) in [(72, self.atime), (88, self.mtime), (104, self.ctime)] {
            put(&mut b, at, &t.sec.to_le_bytes());
            put(&mut b, at + 8, &t.nsec.to_le_bytes());
        }
        b
    }

    /// The kernel `struct statx`, with the basic fields filled.
    pub fn to_statx(&self) -> [u8; STATX_SIZE] {
        let mut b = [0u8; STATX_SIZE];
        put(&mut b, 0, &STATX_BASIC_STATS.to_le_bytes());
        put(&mut b, 4, &(self.blksize as u32).to_le_bytes());
        put(&mut b, 16, &(self.nlink as u32).to_le_bytes());
        put(&mut b, 20, &self.uid.to_le_bytes());
        put(&mut b, 24, &self.gid.to_le_bytes());
        put(&mut b, 28, &(self.mode as u16).to_le_bytes());
        put(&mut b, 32, &self.ino.to_le_bytes());
        put(&mut b, 40, &self.size.to_le_bytes());
        put(&mut b, 48, &self.blocks.to_le_bytes());
        for (at, t) in [(64, self.atime), (96, self.ctime), (112, self.mtime)] {
            put(&mut b, at, &t.sec.to_le_bytes());
            put(&mut b, at + 8, &(t.nsec as u32).to_le_bytes());
        }
        let (rmaj, rmin) = major_minor(self.rdev);
        let (dmaj, dmin) = major_minor(self.dev);
        for (at, v) in [(128, rmaj), (132, rmin), (136, dmaj), (140, dmin)] {
            put(&mut b, at, &v.to_le_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_statx_layouts() {
        let st = Stat {
            dev: 0x0803,
            ino: 42,
            mode: 0o100644,
            nlink: 2,
            uid: 1000,
            gid: 100,
            size: 12345,
            blksize: 4096,
            blocks: 32,
            mtime: Timespec { sec: 7, nsec: 9 },
            ..Stat::default()
        };
        let b = st.to_bytes();
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 42);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 0o100644);
        assert_eq!(i64::from_le_bytes(b[88..96].try_into().unwrap()), 7);
        assert_eq!(i64::from_le_bytes(b[96..104].try_into().unwrap()), 9);
        let x = st.to_statx();
        assert_eq!(u16::from_le_bytes(x[28..30].try_into().unwrap()), 0o100644);
        assert_eq!(u64::from_le_bytes(x[40..48].try_into().unwrap()), 12345);
        assert_eq!(i64::from_le_bytes(x[112..120].try_into().unwrap()), 7);
        assert_eq!(u32::from_le_bytes(x[136..140].try_into().unwrap()), 8);
        assert_eq!(u32::from_le_bytes(x[140..144].try_into().unwrap()), 3);
    }
}
