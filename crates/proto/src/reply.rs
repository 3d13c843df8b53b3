//! Decoding whole frames of any RESP2/RESP3 type: the client side of the
//! codec (our CLI and tests read server replies with it) and the inverse of
//! [`Frame::encode`], which the round-trip property tests rely on.
//!
//! It re-parses from the start of the buffer on every call, which is fine for
//! replies read by a client; the server's hot path uses `RequestDecoder`.

use bytes::Bytes;

use crate::request::{parse_int, ProtocolError};
use crate::Frame;

/// Deepest nesting accepted; deeper input is an error, not a stack overflow.
pub const MAX_DEPTH: usize = 64;
const MAX_PREALLOCATED: usize = 1024;

/// Parses one frame from the front of `buf`: the frame and the number of
/// bytes it took, or `None` when `buf` holds only part of one.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0) {
        Ok(frame) => Ok(Some((frame, pos))),
        Err(Incomplete::No(e)) => Err(e),
        Err(Incomplete::Yes) => Ok(None),
    }
}

enum Incomplete {
    Yes,
    No(ProtocolError),
}

impl From<ProtocolError> for Incomplete {
    fn from(e: ProtocolError) -> Self {
        Incomplete::No(e)
    }
}

fn bad(what: &str) -> Incomplete {
    Incomplete::No(ProtocolError(what.to_string()))
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], Incomplete> {
    let rest = &buf[*pos..];
    let end = rest.windows(2).position(|w| w == b"\r\n").ok_or(Incomplete::Yes)?;
    *pos += end + 2;
    Ok(&rest[..end])
}

fn int_line(buf: &[u8], pos: &mut usize) -> Result<i64, Incomplete> {
    parse_int(line(buf, pos)?).ok_or_else(|| bad("invalid length or integer"))
}

fn blob(buf: &[u8], pos: &mut usize, len: i64) -> Result<Bytes, Incomplete> {
    let len = usize::try_from(len).map_err(|_| bad("invalid bulk length"))?;
    let end = pos.checked_add(len).ok_or_else(|| bad("invalid bulk length"))?;
    if buf.len() < end + 2 {
        return Err(Incomplete::Yes);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(bad("bulk string not terminated by CRLF"));
    }
    let out = Bytes::copy_from_slice(&buf[*pos..end]);
    *pos = end + 2;
    Ok(out)
}

fn items(buf: &[u8], pos: &mut usize, n: i64, depth: usize) -> Result<Vec<Frame>, Incomplete> {
    let n = usize::try_from(n).map_err(|_| bad("invalid multibulk length"))?;
    let mut out = Vec::with_capacity(n.min(MAX_PREALLOCATED));
    for _ in 0..n {
        out.push(parse_at(buf, pos, depth + 1)?);
    }
    Ok(out)
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Frame, Incomplete> {
    if depth > MAX_DEPTH {
        return Err(bad("nesting too deep"));
    }
    let &tag = buf.get(*pos).ok_or(Incomplete::Yes)?;
    *pos += 1;
    let frame = match tag {
        b'+' => Frame::Simple(Bytes::copy_from_slice(line(buf, pos)?)),
        b'-' => Frame::Error(Bytes::copy_from_slice(line(buf, pos)?)),
        b':' => Frame::Integer(int_line(buf, pos)?),
        b'$' => match int_line(buf, pos)? {
            -1 => Frame::Null,
            len => Frame::Bulk(blob(buf, pos, len)?),
        },
        b'*' => match int_line(buf, pos)? {
            -1 => Frame::NullArray,
            n => Frame::Array(items(buf, pos, n, depth)?),
        },
        b'~' => {
            let n = int_line(buf, pos)?;
            Frame::Set(items(buf, pos, n, depth)?)
        }
        b'>' => {
            let n = int_line(buf, pos)?;
            Frame::Push(items(buf, pos, n, depth)?)
        }
        b'%' => {
            let n = int_line(buf, pos)?;
            let flat = items(buf, pos, n.checked_mul(2).ok_or_else(|| bad("invalid map length"))?, depth)?;
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Frame::Map(pairs)
        }
        b'_' => {
            if !line(buf, pos)?.is_empty() {
                return Err(bad("invalid null"));
            }
            Frame::Null
        }
        b'#' => match line(buf, pos)? {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(bad("invalid boolean")),
        },
        b',' => {
            let text = std::str::from_utf8(line(buf, pos)?).map_err(|_| bad("invalid double"))?;
            Frame::Double(text.parse().map_err(|_| bad("invalid double"))?)
        }
        b'=' => {
            let len = int_line(buf, pos)?;
            let body = blob(buf, pos, len)?;
            if body.len() < 4 || body[3] != b':' {
                return Err(bad("invalid verbatim string"));
            }
            Frame::Verbatim([body[0], body[1], body[2]], body.slice(4..))
        }
        b'(' => Frame::Simple(Bytes::copy_from_slice(line(buf, pos)?)),
        other => return Err(Incomplete::No(ProtocolError(format!("unexpected type byte '{}'", other as char)))),
    };
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Protocol;

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let bytes = prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from);
        let line = "[a-zA-Z0-9 ]{0,20}".prop_map(|s| Bytes::from(s.into_bytes()));
        let leaf = prop_oneof![
            line.clone().prop_map(Frame::Simple),
            line.prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Integer),
            bytes.clone().prop_map(Frame::Bulk),
            Just(Frame::Null),
            any::<bool>().prop_map(Frame::Boolean),
            (-1e12f64..1e12).prop_map(Frame::Double),
            bytes.prop_map(|b| Frame::Verbatim(*b"txt", b)),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Frame::Array),
                prop::collection::vec(inner.clone(), 0..8).prop_map(Frame::Set),
                prop::collection::vec(inner.clone(), 0..8).prop_map(Frame::Push),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn resp3_round_trip(frame in arb_frame()) {
            let wire = frame.to_bytes(Protocol::Resp3);
            let (back, used) = parse_frame(&wire).unwrap().unwrap();
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(back, frame);
        }

        #[test]
        fn every_prefix_is_incomplete_not_an_error(frame in arb_frame()) {
            let wire = frame.to_bytes(Protocol::Resp3);
            for cut in 0..wire.len() {
                prop_assert!(parse_frame(&wire[..cut]).unwrap().is_none());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_frame(&data);
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let wire = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(parse_frame(wire.as_bytes()).is_err());
    }

    #[test]
    fn resp2_nulls() {
        assert_eq!(parse_frame(b"$-1\r\n").unwrap(), Some((Frame::Null, 5)));
        assert_eq!(parse_frame(b"*-1\r\n").unwrap(), Some((Frame::NullArray, 5)));
    }
}
