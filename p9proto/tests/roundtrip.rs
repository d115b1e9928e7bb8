//! Property tests for the 9P2000.L wire encoding: every message round-trips
//! through encode → decode inside a frame, `encoded_len` is exact, and no
//! input (random, truncated, mutated, mis-sized) makes a decoder panic.
//!
//! A variant added to `Tmessage`/`Rmessage` but forgotten here is caught
//! twice: `spec_t`/`spec_r` below are exhaustive matches (so the
//! file stops compiling), and `strategies_cover_every_message_type` compares
//! the types the strategies produce with the types the decoder accepts.

use std::collections::BTreeSet;
use std::fmt::Debug;

use p9proto::framing::{read_frame, FrameError};
use p9proto::types::parse_dirents;
use p9proto::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

// ---------------------------------------------------------------------------
// Field strategies.

fn p9s() -> impl Strategy<Value = P9String> {
    vec(any::<u8>(), 0..=300).prop_map(P9String::from)
}

fn data() -> impl Strategy<Value = Data> {
    vec(any::<u8>(), 0..=4096).prop_map(Data)
}

fn qid() -> impl Strategy<Value = Qid> {
    (any::<u8>(), any::<u32>(), any::<u64>()).prop_map(|(ty, version, path)| Qid {
        ty,
        version,
        path,
    })
}

fn names() -> impl Strategy<Value = Vec<P9String>> {
    vec(p9s(), 0..=16)
}

fn qids() -> impl Strategy<Value = Vec<Qid>> {
    vec(qid(), 0..=16)
}

fn dirent() -> impl Strategy<Value = Dirent> {
    (qid(), any::<u64>(), any::<u8>(), p9s()).prop_map(|(qid, offset, ty, name)| Dirent {
        qid,
        offset,
        ty,
        name,
    })
}

/// One `prop_oneof!` arm: a strategy per field, mapped into the message.
macro_rules! arm {
    ($enum:ident :: $ty:ident {}) => {
        Just($enum::from($ty {}))
    };
    ($enum:ident :: $ty:ident { $($field:ident : $strat:expr),+ $(,)? }) => {
        ($($strat,)+).prop_map(|($($field,)+)| $enum::from($ty { $($field),+ }))
    };
}

fn tmessage() -> impl Strategy<Value = Tmessage> {
    let u8_ = any::<u8>;
    let u16_ = any::<u16>;
    let u32_ = any::<u32>;
    let u64_ = any::<u64>;
    prop_oneof![
        arm!(Tmessage::Tstatfs { fid: u32_() }),
        arm!(Tmessage::Tlopen {
            fid: u32_(),
            flags: u32_()
        }),
        arm!(Tmessage::Tlcreate {
            fid: u32_(),
            name: p9s(),
            flags: u32_(),
            mode: u32_(),
            gid: u32_(),
        }),
        arm!(Tmessage::Tsymlink {
            fid: u32_(),
            name: p9s(),
            symtgt: p9s(),
            gid: u32_()
        }),
        arm!(Tmessage::Tmknod {
            dfid: u32_(),
            name: p9s(),
            mode: u32_(),
            major: u32_(),
            minor: u32_(),
            gid: u32_(),
        }),
        arm!(Tmessage::Trename {
            fid: u32_(),
            dfid: u32_(),
            name: p9s()
        }),
        arm!(Tmessage::Treadlink { fid: u32_() }),
        arm!(Tmessage::Tgetattr {
            fid: u32_(),
            request_mask: u64_()
        }),
        arm!(Tmessage::Tsetattr {
            fid: u32_(),
            valid: u32_(),
            mode: u32_(),
            uid: u32_(),
            gid: u32_(),
            size: u64_(),
            atime_sec: u64_(),
            atime_nsec: u64_(),
            mtime_sec: u64_(),
            mtime_nsec: u64_(),
        }),
        arm!(Tmessage::Txattrwalk {
            fid: u32_(),
            newfid: u32_(),
            name: p9s()
        }),
        arm!(Tmessage::Txattrcreate {
            fid: u32_(),
            name: p9s(),
            attr_size: u64_(),
            flags: u32_(),
        }),
        arm!(Tmessage::Treaddir {
            fid: u32_(),
            offset: u64_(),
            count: u32_()
        }),
        arm!(Tmessage::Tfsync {
            fid: u32_(),
            datasync: u32_()
        }),
        arm!(Tmessage::Tlock {
            fid: u32_(),
            ty: u8_(),
            flags: u32_(),
            start: u64_(),
            length: u64_(),
            proc_id: u32_(),
            client_id: p9s(),
        }),
        arm!(Tmessage::Tgetlock {
            fid: u32_(),
            ty: u8_(),
            start: u64_(),
            length: u64_(),
            proc_id: u32_(),
            client_id: p9s(),
        }),
        arm!(Tmessage::Tlink {
            dfid: u32_(),
            fid: u32_(),
            name: p9s()
        }),
        arm!(Tmessage::Tmkdir {
            dfid: u32_(),
            name: p9s(),
            mode: u32_(),
            gid: u32_()
        }),
        arm!(Tmessage::Trenameat {
            olddirfid: u32_(),
            oldname: p9s(),
            newdirfid: u32_(),
            newname: p9s(),
        }),
        arm!(Tmessage::Tunlinkat {
            dirfid: u32_(),
            name: p9s(),
            flags: u32_()
        }),
        arm!(Tmessage::Tversion {
            msize: u32_(),
            version: p9s()
        }),
        arm!(Tmessage::Tauth {
            afid: u32_(),
            uname: p9s(),
            aname: p9s(),
            n_uname: u32_()
        }),
        arm!(Tmessage::Tattach {
            fid: u32_(),
            afid: u32_(),
            uname: p9s(),
            aname: p9s(),
            n_uname: u32_(),
        }),
        arm!(Tmessage::Tflush { oldtag: u16_() }),
        arm!(Tmessage::Twalk {
            fid: u32_(),
            newfid: u32_(),
            wnames: names()
        }),
        arm!(Tmessage::Tread {
            fid: u32_(),
            offset: u64_(),
            count: u32_()
        }),
        arm!(Tmessage::Twrite {
            fid: u32_(),
            offset: u64_(),
            data: data()
        }),
        arm!(Tmessage::Tclunk { fid: u32_() }),
        arm!(Tmessage::Tremove { fid: u32_() }),
    ]
}

fn rgetattr() -> impl Strategy<Value = Rmessage> {
    (
        qid(),
        any::<[u32; 3]>(),
        any::<[u64; 16]>(),
    )
        .prop_map(|(qid, [mode, uid, gid], u)| {
            let [valid, nlink, rdev, size, blksize, blocks, atime_sec, atime_nsec, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec, btime_sec, btime_nsec, gen, data_version] =
                u;
            Rmessage::from(Rgetattr {
                valid,
                qid,
                mode,
                uid,
                gid,
                nlink,
                rdev,
                size,
                blksize,
                blocks,
                atime_sec,
                atime_nsec,
                mtime_sec,
                mtime_nsec,
                ctime_sec,
                ctime_nsec,
                btime_sec,
                btime_nsec,
                gen,
                data_version,
            })
        })
}

fn rmessage() -> impl Strategy<Value = Rmessage> {
    let u8_ = any::<u8>;
    let u32_ = any::<u32>;
    let u64_ = any::<u64>;
    prop_oneof![
        arm!(Rmessage::Rlerror { ecode: u32_() }),
        arm!(Rmessage::Rstatfs {
            ty: u32_(),
            bsize: u32_(),
            blocks: u64_(),
            bfree: u64_(),
            bavail: u64_(),
            files: u64_(),
            ffree: u64_(),
            fsid: u64_(),
            namelen: u32_(),
        }),
        arm!(Rmessage::Rlopen {
            qid: qid(),
            iounit: u32_()
        }),
        arm!(Rmessage::Rlcreate {
            qid: qid(),
            iounit: u32_()
        }),
        arm!(Rmessage::Rsymlink { qid: qid() }),
        arm!(Rmessage::Rmknod { qid: qid() }),
        arm!(Rmessage::Rrename {}),
        arm!(Rmessage::Rreadlink { target: p9s() }),
        rgetattr(),
        arm!(Rmessage::Rsetattr {}),
        arm!(Rmessage::Rxattrwalk { size: u64_() }),
        arm!(Rmessage::Rxattrcreate {}),
        arm!(Rmessage::Rreaddir { data: data() }),
        arm!(Rmessage::Rfsync {}),
        arm!(Rmessage::Rlock { status: u8_() }),
        arm!(Rmessage::Rgetlock {
            ty: u8_(),
            start: u64_(),
            length: u64_(),
            proc_id: u32_(),
            client_id: p9s(),
        }),
        arm!(Rmessage::Rlink {}),
        arm!(Rmessage::Rmkdir { qid: qid() }),
        arm!(Rmessage::Rrenameat {}),
        arm!(Rmessage::Runlinkat {}),
        arm!(Rmessage::Rversion {
            msize: u32_(),
            version: p9s()
        }),
        arm!(Rmessage::Rauth { aqid: qid() }),
        arm!(Rmessage::Rattach { qid: qid() }),
        arm!(Rmessage::Rflush {}),
        arm!(Rmessage::Rwalk { wqids: qids() }),
        arm!(Rmessage::Rread { data: data() }),
        arm!(Rmessage::Rwrite { count: u32_() }),
        arm!(Rmessage::Rclunk {}),
        arm!(Rmessage::Rremove {}),
    ]
}

fn tframe() -> impl Strategy<Value = Tframe> {
    (any::<u16>(), tmessage()).prop_map(|(tag, msg)| Tframe { tag, msg })
}

fn rframe() -> impl Strategy<Value = Rframe> {
    (any::<u16>(), rmessage()).prop_map(|(tag, msg)| Rframe { tag, msg })
}

// ---------------------------------------------------------------------------
// Per message, written out independently of messages.rs: its type number
// (Linux include/net/9p/9p.h) and its body length with every string, data
// and array empty (the field list of the 9P2000.L spec / Linux
// net/9p/protocol.c; a qid is 13 bytes). Exhaustive: a new variant does not
// compile until it is listed here (and then
// `strategies_cover_every_message_type` fails until it has a strategy arm).

fn spec_t(m: &Tmessage) -> (u8, usize) {
    match m {
        Tmessage::Tstatfs(_) => (8, 4),
        Tmessage::Tlopen(_) => (12, 8),
        Tmessage::Tlcreate(_) => (14, 18),
        Tmessage::Tsymlink(_) => (16, 12),
        Tmessage::Tmknod(_) => (18, 22),
        Tmessage::Trename(_) => (20, 10),
        Tmessage::Treadlink(_) => (22, 4),
        Tmessage::Tgetattr(_) => (24, 12),
        Tmessage::Tsetattr(_) => (26, 60),
        Tmessage::Txattrwalk(_) => (30, 10),
        Tmessage::Txattrcreate(_) => (32, 18),
        Tmessage::Treaddir(_) => (40, 16),
        Tmessage::Tfsync(_) => (50, 8),
        Tmessage::Tlock(_) => (52, 31),
        Tmessage::Tgetlock(_) => (54, 27),
        Tmessage::Tlink(_) => (70, 10),
        Tmessage::Tmkdir(_) => (72, 14),
        Tmessage::Trenameat(_) => (74, 12),
        Tmessage::Tunlinkat(_) => (76, 10),
        Tmessage::Tversion(_) => (100, 6),
        Tmessage::Tauth(_) => (102, 12),
        Tmessage::Tattach(_) => (104, 16),
        Tmessage::Tflush(_) => (108, 2),
        Tmessage::Twalk(_) => (110, 10),
        Tmessage::Tread(_) => (116, 16),
        Tmessage::Twrite(_) => (118, 16),
        Tmessage::Tclunk(_) => (120, 4),
        Tmessage::Tremove(_) => (122, 4),
    }
}

fn spec_r(m: &Rmessage) -> (u8, usize) {
    match m {
        Rmessage::Rlerror(_) => (7, 4),
        Rmessage::Rstatfs(_) => (9, 60),
        Rmessage::Rlopen(_) => (13, 17),
        Rmessage::Rlcreate(_) => (15, 17),
        Rmessage::Rsymlink(_) => (17, 13),
        Rmessage::Rmknod(_) => (19, 13),
        Rmessage::Rrename(_) => (21, 0),
        Rmessage::Rreadlink(_) => (23, 2),
        Rmessage::Rgetattr(_) => (25, 153),
        Rmessage::Rsetattr(_) => (27, 0),
        Rmessage::Rxattrwalk(_) => (31, 8),
        Rmessage::Rxattrcreate(_) => (33, 0),
        Rmessage::Rreaddir(_) => (41, 4),
        Rmessage::Rfsync(_) => (51, 0),
        Rmessage::Rlock(_) => (53, 1),
        Rmessage::Rgetlock(_) => (55, 23),
        Rmessage::Rlink(_) => (71, 0),
        Rmessage::Rmkdir(_) => (73, 13),
        Rmessage::Rrenameat(_) => (75, 0),
        Rmessage::Runlinkat(_) => (77, 0),
        Rmessage::Rversion(_) => (101, 6),
        Rmessage::Rauth(_) => (103, 13),
        Rmessage::Rattach(_) => (105, 13),
        Rmessage::Rflush(_) => (109, 0),
        Rmessage::Rwalk(_) => (111, 2),
        Rmessage::Rread(_) => (117, 4),
        Rmessage::Rwrite(_) => (119, 4),
        Rmessage::Rclunk(_) => (121, 0),
        Rmessage::Rremove(_) => (123, 0),
    }
}

// ---------------------------------------------------------------------------
// Tframe and Rframe behind one interface, so each property is written once.

trait Frame: Sized + Clone + Debug + PartialEq {
    fn encoded_len(&self) -> usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn to_bytes(&self) -> Vec<u8>;
    fn decode(frame: &[u8]) -> Result<Self, DecodeError>;
    fn tag(&self) -> u16;
    fn msg_type(&self) -> u8;
    fn spec_type(&self) -> u8;
    fn name(&self) -> &'static str;
}

macro_rules! impl_frame {
    ($frame:ident, $spec:ident) => {
        impl Frame for $frame {
            fn encoded_len(&self) -> usize {
                $frame::encoded_len(self)
            }
            fn encode(&self, out: &mut Vec<u8>) {
                $frame::encode(self, out)
            }
            fn to_bytes(&self) -> Vec<u8> {
                $frame::to_bytes(self)
            }
            fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
                $frame::decode(frame)
            }
            fn tag(&self) -> u16 {
                self.tag
            }
            fn msg_type(&self) -> u8 {
                self.msg.msg_type()
            }
            fn spec_type(&self) -> u8 {
                $spec(&self.msg).0
            }
            fn name(&self) -> &'static str {
                self.msg.name()
            }
        }
    };
}
impl_frame!(Tframe, spec_t);
impl_frame!(Rframe, spec_r);

fn size_field(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().unwrap())
}

fn set_size_field(bytes: &mut [u8], size: u32) {
    bytes[..4].copy_from_slice(&size.to_le_bytes());
}

/// encode → decode gives the same frame; the byte layout and `encoded_len`
/// are exact.
fn check_roundtrip<F: Frame>(frame: &F) -> Result<(), TestCaseError> {
    let bytes = frame.to_bytes();
    prop_assert_eq!(frame.encoded_len(), bytes.len(), "{}", frame.name());
    prop_assert_eq!(size_field(&bytes) as usize, bytes.len());
    prop_assert_eq!(bytes[4], frame.msg_type());
    prop_assert_eq!(frame.msg_type(), frame.spec_type(), "{}", frame.name());
    prop_assert_eq!(u16::from_le_bytes([bytes[5], bytes[6]]), frame.tag());
    prop_assert_eq!(
        decode_header(&bytes),
        Ok((bytes.len() as u32, frame.msg_type(), frame.tag()))
    );

    let decoded = F::decode(&bytes);
    prop_assert_eq!(decoded.as_ref(), Ok(frame));

    // `encode` appends without disturbing what is already in the buffer.
    let mut out = vec![0xa5; 3];
    frame.encode(&mut out);
    prop_assert_eq!(&out[..3], &[0xa5; 3][..]);
    prop_assert_eq!(&out[3..], &bytes[..]);
    Ok(())
}

/// Cutting a valid frame short is always an error, whether or not the size
/// field is patched to match the shorter length, and `read_frame` on a
/// stream that ends early never returns a frame.
fn check_truncated<F: Frame>(bytes: &[u8], cut: usize) -> Result<(), TestCaseError> {
    prop_assert!(cut < bytes.len());
    let short = &bytes[..cut];
    prop_assert!(
        F::decode(short).is_err(),
        "cut at {} of {} decoded",
        cut,
        bytes.len()
    );
    if cut >= 4 {
        let mut patched = short.to_vec();
        set_size_field(&mut patched, cut as u32);
        prop_assert!(
            F::decode(&patched).is_err(),
            "cut at {} of {} with size patched decoded",
            cut,
            bytes.len()
        );
    }
    let mut buf = Vec::new();
    prop_assert!(read_frame(&mut &short[..], u32::MAX, &mut buf).is_err());
    Ok(())
}

fn check_all_truncations<F: Frame>(frame: &F, picks: &[Index]) -> Result<(), TestCaseError> {
    let bytes = frame.to_bytes();
    let len = bytes.len();
    // Every cut near either end (all of the header and the first fields, all
    // of the last fields), and random ones in between: checking every cut of
    // a 4 KiB frame would be quadratic.
    for cut in (0..len.min(96)).chain(len.saturating_sub(96)..len) {
        check_truncated::<F>(&bytes, cut)?;
    }
    for pick in picks {
        check_truncated::<F>(&bytes, pick.index(len))?;
    }
    Ok(())
}

/// A size field that disagrees with the frame's length is an error, and
/// bytes after the body are an error even when the size field counts them.
fn check_bad_size<F: Frame>(frame: &F, declared: u32, extra: &[u8]) -> Result<(), TestCaseError> {
    let bytes = frame.to_bytes();
    let len = bytes.len();

    if declared as usize != len {
        let mut wrong = bytes.clone();
        set_size_field(&mut wrong, declared);
        prop_assert_eq!(
            F::decode(&wrong),
            Err(DecodeError::SizeMismatch {
                declared,
                actual: len
            })
        );
    }

    if !extra.is_empty() {
        let mut longer = bytes.clone();
        longer.extend_from_slice(extra);
        // Size field still the original length: mismatch.
        prop_assert_eq!(
            F::decode(&longer),
            Err(DecodeError::SizeMismatch {
                declared: len as u32,
                actual: longer.len()
            })
        );
        // Size field counts the extra bytes: trailing bytes.
        set_size_field(&mut longer, (len + extra.len()) as u32);
        prop_assert_eq!(
            F::decode(&longer),
            Err(DecodeError::TrailingBytes(extra.len()))
        );
    }
    Ok(())
}

/// Several frames back to back on a stream come out of `read_frame` one by
/// one, then the stream reports closed.
fn check_stream<F: Frame>(frames: &[F]) -> Result<(), TestCaseError> {
    let mut stream = Vec::new();
    for f in frames {
        f.encode(&mut stream);
    }
    let max = frames.iter().map(Frame::encoded_len).max().unwrap_or(0) as u32;
    let mut r = &stream[..];
    let mut buf = Vec::new();
    for f in frames {
        prop_assert!(read_frame(&mut r, max, &mut buf).is_ok());
        prop_assert_eq!(buf.len(), f.encoded_len());
        let decoded = F::decode(&buf);
        prop_assert_eq!(decoded.as_ref(), Ok(f));
    }
    prop_assert!(matches!(
        read_frame(&mut r, max, &mut buf),
        Err(FrameError::Closed)
    ));

    // A bound one byte below the largest frame passes every frame before
    // the first of that length, then refuses it without consuming its body.
    let i = frames
        .iter()
        .position(|f| f.encoded_len() as u32 == max)
        .unwrap();
    let bound = max - 1;
    let mut r = &stream[..];
    for _ in &frames[..i] {
        prop_assert!(read_frame(&mut r, bound, &mut buf).is_ok());
    }
    let err = read_frame(&mut r, bound, &mut buf);
    prop_assert!(
        matches!(err, Err(FrameError::BadSize { size, max: m }) if size == max && m == bound),
        "{:?}",
        err
    );
    Ok(())
}

/// Whatever the bytes, decoding returns (no panic); what decodes re-encodes
/// to exactly the same bytes.
fn check_any_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(f) = Tframe::decode(bytes) {
        prop_assert_eq!(f.to_bytes(), bytes);
        prop_assert_eq!(f.encoded_len(), bytes.len());
    }
    if let Ok(f) = Rframe::decode(bytes) {
        prop_assert_eq!(f.to_bytes(), bytes);
        prop_assert_eq!(f.encoded_len(), bytes.len());
    }
    if let Ok(entries) = parse_dirents(bytes) {
        let mut out = Vec::new();
        for e in &entries {
            e.encode(&mut out);
        }
        prop_assert_eq!(out, bytes);
    }
    let mut r = bytes;
    let mut buf = Vec::new();
    while read_frame(&mut r, 8192, &mut buf).is_ok() {
        prop_assert!(buf.len() >= HEADER_LEN && buf.len() <= 8192);
        let _ = Tframe::decode(&buf);
        let _ = Rframe::decode(&buf);
    }
    Ok(())
}

/// The type bytes each decoder knows, found by asking the decoder: a
/// header-only frame of an unknown type is `UnknownType`, of a known type
/// anything else.
fn decoder_types() -> (BTreeSet<u8>, BTreeSet<u8>) {
    let mut t = BTreeSet::new();
    let mut r = BTreeSet::new();
    for ty in 0..=u8::MAX {
        let frame = [HEADER_LEN as u8, 0, 0, 0, ty, 0, 0];
        match Tframe::decode(&frame) {
            Err(DecodeError::UnknownType(got)) => assert_eq!(got, ty),
            _ => {
                t.insert(ty);
            }
        }
        match Rframe::decode(&frame) {
            Err(DecodeError::UnknownType(got)) => assert_eq!(got, ty),
            _ => {
                r.insert(ty);
            }
        }
    }
    (t, r)
}

/// Any type byte either decoder knows.
fn known_type() -> impl Strategy<Value = u8> {
    let (t, r) = decoder_types();
    proptest::sample::select(t.into_iter().chain(r).collect::<Vec<_>>())
}

fn sample_types<S: Strategy>(s: S, n: usize, ty: impl Fn(&S::Value) -> u8) -> BTreeSet<u8> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| ty(&s.new_tree(&mut runner).unwrap().current()))
        .collect()
}

#[test]
fn strategies_cover_every_message_type() {
    let (t_types, r_types) = decoder_types();
    assert_eq!(t_types.len(), 28, "{t_types:?}");
    assert_eq!(r_types.len(), 29, "{r_types:?}");
    // With ~29 equally likely arms, 3000 draws miss one with probability
    // below 1e-40; the runner is deterministic anyway.
    let t_seen = sample_types(tmessage(), 3000, Tmessage::msg_type);
    let r_seen = sample_types(rmessage(), 3000, Rmessage::msg_type);
    assert_eq!(t_seen, t_types, "Tmessage strategy misses or invents types");
    assert_eq!(r_seen, r_types, "Rmessage strategy misses or invents types");

    // Every request type T has its reply T+1; Rlerror (7) answers anything.
    let mut expected_r: BTreeSet<u8> = t_types.iter().map(|t| t + 1).collect();
    expected_r.insert(7);
    assert_eq!(r_types, expected_r);
}

/// The one body length at which an all-zero body of type `ty` decodes (all
/// zeros: every string, data and array empty), and what it decodes to.
fn zero_body_frame<F: Frame>(ty: u8) -> (usize, F) {
    let mut found = None;
    for body_len in 0..=256usize {
        let mut frame = vec![0u8; HEADER_LEN + body_len];
        set_size_field(&mut frame, (HEADER_LEN + body_len) as u32);
        frame[4] = ty;
        match F::decode(&frame) {
            Ok(f) => {
                assert!(found.is_none(), "type {ty} decodes at two lengths");
                found = Some((body_len, f));
            }
            Err(DecodeError::Truncated { .. } | DecodeError::TrailingBytes(_)) => {}
            Err(e) => panic!("type {ty}, body {body_len}: {e}"),
        }
    }
    found.unwrap_or_else(|| panic!("type {ty} never decodes from zeros"))
}

#[test]
fn wire_layout_matches_spec_field_sizes() {
    // Field widths and order are checked against the spec's sizes: a field
    // of the wrong width, or a missing or extra one, changes the one body
    // length at which all zeros decode.
    let (t_types, r_types) = decoder_types();
    for ty in t_types {
        let (body_len, f) = zero_body_frame::<Tframe>(ty);
        assert_eq!(spec_t(&f.msg), (ty, body_len), "{}", f.msg.name());
        assert_eq!(f.encoded_len(), HEADER_LEN + body_len);
    }
    for ty in r_types {
        let (body_len, f) = zero_body_frame::<Rframe>(ty);
        assert_eq!(spec_r(&f.msg), (ty, body_len), "{}", f.msg.name());
        assert_eq!(f.encoded_len(), HEADER_LEN + body_len);
    }
    // And one full layout, byte by byte (Tlock: fid, type, flags, start,
    // length, proc_id, client_id).
    let f = Tframe::new(
        0x0102,
        Tlock {
            fid: 0x0a0b_0c0d,
            ty: 1,
            flags: 2,
            start: 3,
            length: 4,
            proc_id: 5,
            client_id: "id".into(),
        },
    );
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[40, 0, 0, 0, 52, 0x02, 0x01][..],
        &[0x0d, 0x0c, 0x0b, 0x0a],
        &[1],
        &[2, 0, 0, 0],
        &[3, 0, 0, 0, 0, 0, 0, 0],
        &[4, 0, 0, 0, 0, 0, 0, 0],
        &[5, 0, 0, 0],
        &[2, 0, b'i', b'd'],
    ]
    .concat();
    assert_eq!(f.to_bytes(), want);
}

#[test]
fn walk_element_and_string_limits_survive_encoding() {
    // A string longer than the u16 prefix can describe is cut on encode, and
    // encoded_len must agree with what encode wrote, or the size field
    // would claim bytes the frame does not have.
    let long = P9String::from(vec![b'x'; P9String::MAX_LEN + 10]);
    let f = Tframe::new(
        1,
        Twalk {
            fid: 1,
            newfid: 2,
            wnames: vec![long.clone(), "b".into()],
        },
    );
    let bytes = f.to_bytes();
    assert_eq!(f.encoded_len(), bytes.len());
    assert_eq!(size_field(&bytes) as usize, bytes.len());
    let Tmessage::Twalk(w) = Tframe::decode(&bytes).unwrap().msg else {
        panic!("not a Twalk")
    };
    assert_eq!(
        w.wnames[0].as_bytes(),
        &long.as_bytes()[..P9String::MAX_LEN]
    );
    assert_eq!(w.wnames[1].as_bytes(), b"b");

    // Likewise an array longer than its u16 count.
    let qids: Vec<Qid> = (0..u16::MAX as u64 + 5)
        .map(|path| Qid {
            ty: 0,
            version: 0,
            path,
        })
        .collect();
    let f = Rframe::new(
        3,
        Rwalk {
            wqids: qids.clone(),
        },
    );
    let bytes = f.to_bytes();
    assert_eq!(f.encoded_len(), bytes.len());
    let Rmessage::Rwalk(w) = Rframe::decode(&bytes).unwrap().msg else {
        panic!("not an Rwalk")
    };
    assert_eq!(w.wqids, qids[..u16::MAX as usize]);
}

#[test]
fn header_only_frames() {
    // Short of a header: truncated, never a panic.
    for n in 0..HEADER_LEN {
        let frame = vec![0u8; n];
        assert!(matches!(
            Tframe::decode(&frame),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            Rframe::decode(&frame),
            Err(DecodeError::Truncated { .. })
        ));
    }
    // Bodiless replies are exactly a header.
    let f = Rframe::new(9, Rclunk {});
    assert_eq!(f.to_bytes(), [7, 0, 0, 0, 121, 9, 0]);
    assert_eq!(Rframe::decode(&[7, 0, 0, 0, 121, 9, 0]), Ok(f));
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn tframe_roundtrip(f in tframe()) {
        check_roundtrip(&f)?;
    }

    #[test]
    fn rframe_roundtrip(f in rframe()) {
        check_roundtrip(&f)?;
    }

    #[test]
    fn tframe_size_field_must_match(f in tframe(), declared in any::<u32>(), extra in vec(any::<u8>(), 0..16)) {
        check_bad_size(&f, declared, &extra)?;
    }

    #[test]
    fn rframe_size_field_must_match(f in rframe(), declared in any::<u32>(), extra in vec(any::<u8>(), 0..16)) {
        check_bad_size(&f, declared, &extra)?;
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..1024)) {
        check_any_bytes(&bytes)?;
    }

    /// Random bodies behind a well-formed header of a known (or any) type,
    /// so decoding gets past the size and type checks.
    #[test]
    fn decoding_arbitrary_bodies_never_panics(
        ty in prop_oneof![3 => known_type(), 1 => any::<u8>()],
        tag in any::<u16>(),
        body in vec(any::<u8>(), 0..512),
    ) {
        let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
        frame.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        frame.push(ty);
        frame.extend_from_slice(&tag.to_le_bytes());
        frame.extend_from_slice(&body);
        check_any_bytes(&frame)?;
    }

    /// Valid frames with a few bytes overwritten (size field kept correct or
    /// not): still no panic, and anything that decodes re-encodes exactly.
    #[test]
    fn decoding_mutated_frames_never_panics(
        f in prop_oneof![tframe().prop_map(|f| f.to_bytes()), rframe().prop_map(|f| f.to_bytes())],
        edits in vec((any::<Index>(), any::<u8>()), 1..8),
        keep_size in any::<bool>(),
    ) {
        let mut bytes = f;
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if keep_size {
            let len = bytes.len() as u32;
            set_size_field(&mut bytes, len);
        }
        check_any_bytes(&bytes)?;
    }

    #[test]
    fn dirents_roundtrip(entries in vec(dirent(), 0..32), picks in vec(any::<Index>(), 8)) {
        let mut data = Vec::new();
        for e in &entries {
            e.encode(&mut data);
        }
        prop_assert_eq!(entries.iter().map(WireFormat::encoded_len).sum::<usize>(), data.len());
        prop_assert_eq!(parse_dirents(&data), Ok(entries.clone()));
        // Inside an Rreaddir they survive the frame round trip too.
        let f = Rframe::new(1, Rreaddir { data: Data(data.clone()) });
        let Ok(Rframe { msg: Rmessage::Rreaddir(r), .. }) = Rframe::decode(&f.to_bytes()) else {
            return Err(TestCaseError::fail("Rreaddir did not decode"));
        };
        prop_assert_eq!(parse_dirents(&r.data.0), Ok(entries.clone()));
        // A cut between entries parses (to fewer entries); a cut inside an
        // entry is an error.
        let mut boundaries = vec![0];
        for e in &entries {
            boundaries.push(boundaries.last().unwrap() + e.encoded_len());
        }
        for pick in picks {
            let cut = pick.index(data.len() + 1);
            let at = boundaries.iter().position(|&b| b == cut);
            match parse_dirents(&data[..cut]) {
                Ok(parsed) => prop_assert_eq!(Some(parsed.len()), at, "cut at {}", cut),
                Err(_) => prop_assert!(at.is_none(), "cut at boundary {} failed", cut),
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn truncated_tframe_is_an_error(f in tframe(), picks in vec(any::<Index>(), 32)) {
        check_all_truncations(&f, &picks)?;
    }

    #[test]
    fn truncated_rframe_is_an_error(f in rframe(), picks in vec(any::<Index>(), 32)) {
        check_all_truncations(&f, &picks)?;
    }

    #[test]
    fn tframes_stream_through_read_frame(frames in vec(tframe(), 1..8)) {
        check_stream(&frames)?;
    }

    #[test]
    fn rframes_stream_through_read_frame(frames in vec(rframe(), 1..8)) {
        check_stream(&frames)?;
    }
}
