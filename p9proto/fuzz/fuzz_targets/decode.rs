//! Feeds arbitrary bytes to every p9proto decoder: no input may panic, and
//! whatever decodes must re-encode to exactly the bytes it came from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p9proto::framing::read_frame;
use p9proto::types::parse_dirents;
use p9proto::{Rframe, Tframe, WireFormat, HEADER_LEN};

/// The frame bound handed to `read_frame`, as a negotiated msize would be.
const MSIZE: u32 = 64 * 1024;

/// Decodes `frame` as a request and as a reply; what decodes must round-trip.
fn check_frame(frame: &[u8]) {
    if let Ok(f) = Tframe::decode(frame) {
        assert_eq!(f.encoded_len(), frame.len(), "{}", f.msg.name());
        assert_eq!(f.to_bytes(), frame, "{}", f.msg.name());
    }
    if let Ok(f) = Rframe::decode(frame) {
        assert_eq!(f.encoded_len(), frame.len(), "{}", f.msg.name());
        assert_eq!(f.to_bytes(), frame, "{}", f.msg.name());
    }
}

fuzz_target!(|data: &[u8]| {
    // The input as one whole frame, size field included.
    check_frame(data);

    // The input as type, tag and body, behind a size field that matches:
    // random size fields almost never do, and this lets the fuzzer reach
    // the body decoders.
    if data.len() >= HEADER_LEN - 4 {
        let mut frame = Vec::with_capacity(4 + data.len());
        frame.extend_from_slice(&((4 + data.len()) as u32).to_le_bytes());
        frame.extend_from_slice(data);
        check_frame(&frame);
    }

    // The input as Rreaddir data.
    if let Ok(entries) = parse_dirents(data) {
        let mut out = Vec::with_capacity(data.len());
        for e in &entries {
            e.encode(&mut out);
        }
        assert_eq!(out, data);
    }

    // The input as a stream of frames, bounded by MSIZE.
    let mut stream = data;
    let mut buf = Vec::new();
    while read_frame(&mut stream, MSIZE, &mut buf).is_ok() {
        assert!(buf.len() >= HEADER_LEN && buf.len() <= MSIZE as usize);
        check_frame(&buf);
    }
});
