//! Reading whole frames off a byte stream, bounded by the negotiated msize.

use std::io::{self, Read};

use thiserror::Error;

use crate::messages::HEADER_LEN;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame size {size} outside {min}..={max}", min = HEADER_LEN)]
    BadSize { size: u32, max: u32 },
    #[error("reading frame: {0}")]
    Io(#[from] io::Error),
}

/// Reads one frame into `buf` (size field included). The size field is
/// checked against `max` before the body is read, so a peer can never make
/// this allocate more than `max` bytes.
pub fn read_frame<R: Read>(r: &mut R, max: u32, buf: &mut Vec<u8>) -> Result<(), FrameError> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let size_val = u32::from_le_bytes(size);
    if (size_val as usize) < HEADER_LEN || size_val > max {
        return Err(FrameError::BadSize {
            size: size_val,
            max,
        });
    }
    buf.clear();
    buf.resize(size_val as usize, 0);
    buf[..4].copy_from_slice(&size);
    r.read_exact(&mut buf[4..])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_frame_is_refused_before_reading_body() {
        let bytes = [0xff, 0xff, 0xff, 0x7f, 100, 0, 0];
        let mut buf = Vec::new();
        let err = read_frame(&mut &bytes[..], 8192, &mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::BadSize {
                size: 0x7fff_ffff,
                ..
            }
        ));
        assert!(buf.capacity() < 8192);
    }

    #[test]
    fn clean_eof_is_closed() {
        let mut buf = Vec::new();
        assert!(matches!(
            read_frame(&mut &[][..], 8192, &mut buf),
            Err(FrameError::Closed)
        ));
    }
}
