//! Malformed traffic gets Rlerror or a closed connection, and never stops
//! the gofer from serving its other connections.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::Gofer;
use p9proto::framing::read_frame;
use p9proto::*;

fn raw_session(g: &Gofer) -> UnixStream {
    let mut s = g.connect();
    s.write_all(
        &Tframe::new(
            NOTAG,
            Tversion {
                msize: 8192,
                version: VERSION_9P2000_L.into(),
            },
        )
        .to_bytes(),
    )
    .unwrap();
    let mut buf = Vec::new();
    read_frame(&mut s, 1 << 20, &mut buf).unwrap();
    assert!(matches!(
        Rframe::decode(&buf).unwrap().msg,
        Rmessage::Rversion(_)
    ));
    s
}

fn reply(s: &mut UnixStream) -> Rframe {
    let mut buf = Vec::new();
    read_frame(s, 1 << 20, &mut buf).unwrap();
    Rframe::decode(&buf).unwrap()
}

fn send(s: &mut UnixStream, frame: &Tframe) -> Rframe {
    s.write_all(&frame.to_bytes()).unwrap();
    reply(s)
}

fn lerror(f: &Rframe) -> Option<u32> {
    match &f.msg {
        Rmessage::Rlerror(e) => Some(e.ecode),
        _ => None,
    }
}

/// The peer closed: a read returns EOF (or a reset).
fn assert_closed(s: &mut UnixStream) {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected the connection closed, got {n} bytes"),
    }
}

fn assert_still_serving(g: &mut Gofer) {
    g.assert_alive();
    let c = g.client();
    let (root, qid) = c.attach("root", "").unwrap();
    assert!(qid.is_dir());
    c.clunk(root).unwrap();
}

#[test]
fn oversized_size_field_closes_only_that_connection() {
    let mut g = Gofer::start();
    let mut other = raw_session(&g);
    let mut s = raw_session(&g);
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 110, 1, 0]).unwrap();
    assert_closed(&mut s);
    // Larger than the negotiated 8192 but otherwise plausible.
    let mut s = raw_session(&g);
    s.write_all(&9000u32.to_le_bytes()).unwrap();
    assert_closed(&mut s);
    // A size below the header.
    let mut s = raw_session(&g);
    s.write_all(&[3, 0, 0, 0]).unwrap();
    assert_closed(&mut s);
    let r = send(
        &mut other,
        &Tframe::new(
            1,
            Tattach {
                fid: 1,
                afid: NOFID,
                uname: "".into(),
                aname: "".into(),
                n_uname: 0,
            },
        ),
    );
    assert!(matches!(r.msg, Rmessage::Rattach(_)));
    assert_still_serving(&mut g);
}

#[test]
fn truncated_and_garbled_messages_get_rlerror() {
    let mut g = Gofer::start();
    let mut s = raw_session(&g);
    // Unknown type.
    s.write_all(&[7, 0, 0, 0, 200, 5, 0]).unwrap();
    let r = reply(&mut s);
    assert_eq!((r.tag, lerror(&r)), (5, Some(libc::EOPNOTSUPP as u32)));
    // A Twalk whose body is cut short: size 12 covers only fid + 1 byte.
    s.write_all(&[12, 0, 0, 0, 110, 6, 0, 1, 0, 0, 0, 9])
        .unwrap();
    let r = reply(&mut s);
    assert_eq!((r.tag, lerror(&r)), (6, Some(libc::EINVAL as u32)));
    // A string length pointing past the frame.
    let mut bad = Tframe::new(
        7,
        Tattach {
            fid: 1,
            afid: NOFID,
            uname: "u".into(),
            aname: "".into(),
            n_uname: 0,
        },
    )
    .to_bytes();
    bad[15] = 0xff;
    s.write_all(&bad).unwrap();
    assert_eq!(lerror(&reply(&mut s)), Some(libc::EINVAL as u32));
    // Trailing bytes after a valid body.
    let mut extra = Tframe::new(8, Tclunk { fid: 3 }).to_bytes();
    extra.extend_from_slice(&[1, 2, 3]);
    extra[0] += 3;
    s.write_all(&extra).unwrap();
    assert_eq!(lerror(&reply(&mut s)), Some(libc::EINVAL as u32));
    // A message that is truncated and then the connection is closed.
    let mut s2 = raw_session(&g);
    s2.write_all(&[40, 0, 0, 0, 110, 1]).unwrap();
    drop(s2);
    // The first connection is still fine.
    let r = send(
        &mut s,
        &Tframe::new(
            9,
            Tattach {
                fid: 1,
                afid: NOFID,
                uname: "".into(),
                aname: "".into(),
                n_uname: 0,
            },
        ),
    );
    assert!(matches!(r.msg, Rmessage::Rattach(_)));
    assert_still_serving(&mut g);
}

#[test]
fn protocol_misuse_gets_errnos() {
    let mut g = Gofer::start();
    let mut s = raw_session(&g);
    let attach = |fid| {
        Tframe::new(
            1,
            Tattach {
                fid,
                afid: NOFID,
                uname: "".into(),
                aname: "".into(),
                n_uname: 0,
            },
        )
    };
    assert!(lerror(&send(&mut s, &attach(1))).is_none());
    assert_eq!(
        lerror(&send(&mut s, &attach(1))),
        Some(libc::EBADF as u32),
        "fid in use"
    );
    assert!(lerror(&send(&mut s, &Tframe::new(2, Tclunk { fid: 1 }))).is_none());
    // A fid used after clunk.
    let r = send(
        &mut s,
        &Tframe::new(
            3,
            Tgetattr {
                fid: 1,
                request_mask: types::getattr::BASIC,
            },
        ),
    );
    assert_eq!(lerror(&r), Some(libc::EBADF as u32));
    assert_eq!(
        lerror(&send(&mut s, &Tframe::new(3, Tclunk { fid: 1 }))),
        Some(libc::EBADF as u32)
    );
    // A walk of more than 16 names.
    assert!(lerror(&send(&mut s, &attach(1))).is_none());
    let names = (0..17).map(|_| P9String::from(".")).collect();
    let r = send(
        &mut s,
        &Tframe::new(
            4,
            Twalk {
                fid: 1,
                newfid: 2,
                wnames: names,
            },
        ),
    );
    assert_eq!(lerror(&r), Some(libc::EINVAL as u32));
    // Authentication is not offered; attaching with a bogus afid still works.
    assert!(lerror(&send(
        &mut s,
        &Tframe::new(
            5,
            Tauth {
                afid: 9,
                uname: "".into(),
                aname: "".into(),
                n_uname: 0
            }
        )
    ))
    .is_some());
    // An aname outside the tree stays inside it; one naming a file is refused.
    std::fs::write(g.path("file"), b"").unwrap();
    let r = send(
        &mut s,
        &Tframe::new(
            6,
            Tattach {
                fid: 7,
                afid: NOFID,
                uname: "".into(),
                aname: "/file".into(),
                n_uname: 0,
            },
        ),
    );
    assert_eq!(lerror(&r), Some(libc::ENOTDIR as u32));
    let r = send(
        &mut s,
        &Tframe::new(
            6,
            Tattach {
                fid: 8,
                afid: NOFID,
                uname: "".into(),
                aname: "/../..".into(),
                n_uname: 0,
            },
        ),
    );
    let Rmessage::Rattach(a) = r.msg else {
        panic!("{r:?}")
    };
    assert_eq!(
        a.qid.path,
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&g.root).unwrap())
    );
    // Requests before Tversion are refused by size checks only; a huge
    // Tread count is clamped to msize.
    std::fs::write(g.path("big"), vec![1u8; 100_000]).unwrap();
    send(
        &mut s,
        &Tframe::new(
            7,
            Twalk {
                fid: 1,
                newfid: 20,
                wnames: vec!["big".into()],
            },
        ),
    );
    send(&mut s, &Tframe::new(7, Tlopen { fid: 20, flags: 0 }));
    let r = send(
        &mut s,
        &Tframe::new(
            7,
            Tread {
                fid: 20,
                offset: 0,
                count: u32::MAX,
            },
        ),
    );
    let Rmessage::Rread(data) = r.msg else {
        panic!("{r:?}")
    };
    assert!(data.data.0.len() as u32 <= 8192 - 11);
    let r = send(
        &mut s,
        &Tframe::new(
            7,
            Tread {
                fid: 20,
                offset: u64::MAX,
                count: 10,
            },
        ),
    );
    assert_eq!(lerror(&r), Some(libc::EINVAL as u32));
    assert_still_serving(&mut g);
}

#[test]
fn random_frames_never_stop_the_gofer() {
    let mut g = Gofer::start();
    // A deterministic generator: reproducible failures.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..20 {
        let mut s = raw_session(&g);
        for _ in 0..50 {
            let len = 7 + (next() % 200) as usize;
            let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
            // Mostly real message types, so bodies get decoded.
            if next() % 4 != 0 {
                frame[4] = [
                    8, 12, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76, 104,
                    108, 110, 116, 118, 120, 122,
                ][(next() % 26) as usize];
            }
            if s.write_all(&frame).is_err() {
                break;
            }
            let mut buf = Vec::new();
            if read_frame(&mut s, 1 << 20, &mut buf).is_err() {
                break;
            }
            Rframe::decode(&buf).unwrap_or_else(|e| panic!("round {round}: undecodable reply {e}"));
        }
        g.assert_alive();
    }
    assert_still_serving(&mut g);
}
