//! The 9P wire format: little-endian integers, `u16`-length strings,
//! `u32`-length data and `u16`-counted arrays.
//!
//! Every length read from the wire is checked against the bytes that remain in
//! the (already size-bounded) frame before anything is allocated, so a hostile
//! peer cannot make the decoder allocate more than the frame it sent.

use thiserror::Error;

/// Why a frame or a field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("message truncated: needed {needed} bytes, {remaining} remain")]
    Truncated { needed: usize, remaining: usize },
    #[error("message has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("frame size {size} outside 7..={max}")]
    BadFrameSize { size: u32, max: u32 },
    #[error("frame size field {declared} does not match frame length {actual}")]
    SizeMismatch { declared: u32, actual: usize },
}

/// A cursor over one frame's bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes `n` bytes, failing (without allocating) if fewer remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

/// A value with a 9P encoding.
pub trait WireFormat: Sized {
    /// Bytes `encode` will append.
    fn encoded_len(&self) -> usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl WireFormat for $t {
            fn encoded_len(&self) -> usize {
                std::mem::size_of::<$t>()
            }
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.take_array()?))
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64);

/// A 9P string: `u16` length then bytes. Linux file names need not be UTF-8,
/// so the bytes are kept as they came.
#[derive(Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct P9String(Vec<u8>);

impl P9String {
    /// Longest string the `u16` length prefix can describe.
    pub const MAX_LEN: usize = u16::MAX as usize;

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The bytes as UTF-8, with invalid sequences replaced (for display).
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl std::fmt::Debug for P9String {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

impl std::fmt::Display for P9String {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl From<&str> for P9String {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<String> for P9String {
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl From<Vec<u8>> for P9String {
    fn from(b: Vec<u8>) -> Self {
        Self(b)
    }
}

impl From<&[u8]> for P9String {
    fn from(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl WireFormat for P9String {
    fn encoded_len(&self) -> usize {
        // As cut by `encode`, so a frame's size field matches its bytes.
        2 + self.0.len().min(Self::MAX_LEN)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        // Encoding is only reached with strings built by this process; one
        // that cannot be described is cut rather than corrupting the frame.
        let len = self.0.len().min(Self::MAX_LEN);
        (len as u16).encode(out);
        out.extend_from_slice(&self.0[..len]);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = u16::decode(r)? as usize;
        Ok(Self(r.take(len)?.to_vec()))
    }
}

/// Payload bytes with a `u32` count (Tread/Rread, Twrite, Rreaddir).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Data(pub Vec<u8>);

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Data({} bytes)", self.0.len())
    }
}

impl WireFormat for Data {
    fn encoded_len(&self) -> usize {
        4 + self.0.len()
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (self.0.len() as u32).encode(out);
        out.extend_from_slice(&self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = u32::decode(r)? as usize;
        Ok(Self(r.take(len)?.to_vec()))
    }
}

/// Arrays are `u16`-counted (walk names, walk qids).
impl<T: WireFormat> WireFormat for Vec<T> {
    fn encoded_len(&self) -> usize {
        // Only the elements `encode` writes.
        let n = self.len().min(u16::MAX as usize);
        2 + self[..n].iter().map(WireFormat::encoded_len).sum::<usize>()
    }
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.len().min(u16::MAX as usize);
        (n as u16).encode(out);
        for item in &self[..n] {
            item.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = u16::decode(r)? as usize;
        // Every element takes at least one byte: never reserve more than the
        // frame could hold.
        let mut items = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            items.push(T::decode(r)?);
        }
        Ok(items)
    }
}

/// Declares a struct whose wire form is its fields in order.
macro_rules! wire_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::wire::WireFormat for $name {
            fn encoded_len(&self) -> usize {
                0 $(+ self.$field.encoded_len())*
            }
            #[allow(unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) {
                $(self.$field.encode(out);)*
            }
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::wire::DecodeError> {
                Ok(Self { $($field: <$ty as $crate::wire::WireFormat>::decode(r)?),* })
            }
        }
    };
}
pub(crate) use wire_struct;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_length_beyond_frame_is_truncated_error() {
        let bytes = [0xff, 0xff, b'a'];
        let err = P9String::decode(&mut Reader::new(&bytes)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                needed: 0xffff,
                remaining: 1
            }
        );
    }

    #[test]
    fn huge_array_count_does_not_reserve_beyond_frame() {
        let bytes = [0xff, 0xff, 0, 0];
        let err = Vec::<u64>::decode(&mut Reader::new(&bytes)).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { .. }));
    }

    #[test]
    fn integers_are_little_endian() {
        let mut out = Vec::new();
        0x0102_0304u32.encode(&mut out);
        assert_eq!(out, [4, 3, 2, 1]);
    }
}
