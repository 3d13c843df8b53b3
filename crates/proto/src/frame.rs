//! `Frame`: one RESP value, and its encoding for either protocol version.
//!
//! Commands build replies as frames in RESP3's richer vocabulary (maps,
//! sets, booleans, doubles, a single null); [`Frame::encode`] lowers them to
//! RESP2 when the connection has not sent `HELLO 3`, exactly as Redis does:
//! a map becomes a flat array, a boolean an integer, a double a bulk string,
//! a null `$-1` (or `*-1` for a null array).

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol a connection speaks, chosen by HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    /// An error line without the leading `-`, e.g. `ERR syntax error`.
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2).
    Null,
    /// The null array (`*-1` in RESP2).
    NullArray,
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    /// Pairs as Redis sends scored or valued lists (ZRANGE … WITHSCORES,
    /// HRANDFIELD … WITHVALUES): an array of 2-element arrays in RESP3, a
    /// flat array in RESP2. Never decoded: on the wire it is an array.
    Pairs(Vec<(Frame, Frame)>),
    Double(f64),
    Boolean(bool),
    /// A verbatim string with its three-letter format (`txt`, `mkd`).
    Verbatim([u8; 3], Bytes),
    Push(Vec<Frame>),
}

impl Frame {
    pub const OK: Frame = Frame::Simple(Bytes::from_static(b"OK"));

    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(message.into()))
    }

    pub fn bulk_str(s: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(s.as_bytes()))
    }

    pub fn optional_bulk(b: Option<Bytes>) -> Frame {
        b.map_or(Frame::Null, Frame::Bulk)
    }

    pub fn bulk_array(items: impl IntoIterator<Item = Bytes>) -> Frame {
        Frame::Array(items.into_iter().map(Frame::Bulk).collect())
    }

    /// Appends the wire form of this frame for `protocol` to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut BytesMut) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Frame::Simple(s) => line(out, b'+', s),
            Frame::Error(e) => line(out, b'-', e),
            Frame::Integer(i) => header(out, b':', *i),
            Frame::Bulk(b) => bulk(out, b),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(items) => seq(out, b'*', items, protocol),
            Frame::Set(items) => seq(out, if resp3 { b'~' } else { b'*' }, items, protocol),
            Frame::Push(items) => seq(out, if resp3 { b'>' } else { b'*' }, items, protocol),
            Frame::Pairs(pairs) if resp3 => {
                header(out, b'*', pairs.len() as i64);
                for (k, v) in pairs {
                    header(out, b'*', 2);
                    k.encode(protocol, out);
                    v.encode(protocol, out);
                }
            }
            Frame::Pairs(pairs) => {
                header(out, b'*', 2 * pairs.len() as i64);
                for (k, v) in pairs {
                    k.encode(protocol, out);
                    v.encode(protocol, out);
                }
            }
            Frame::Map(pairs) => {
                if resp3 {
                    header(out, b'%', pairs.len() as i64);
                } else {
                    header(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(protocol, out);
                    v.encode(protocol, out);
                }
            }
            Frame::Double(d) if resp3 => line(out, b',', format_double(*d).as_bytes()),
            Frame::Double(d) => bulk(out, format_double(*d).as_bytes()),
            Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => header(out, b':', i64::from(*b)),
            Frame::Verbatim(format, text) if resp3 => {
                header(out, b'=', (text.len() + 4) as i64);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim(_, text) => bulk(out, text),
        }
    }

    /// An upper bound of the encoded size in either protocol, computed
    /// without encoding: the server checks it against its output limit
    /// before building a huge reply (KEYS * on millions of keys).
    pub fn size_bound(&self) -> usize {
        // `$`/`*`/`%` + up to 20 digits + CRLF.
        const HEADER: usize = 23;
        match self {
            Frame::Simple(s) | Frame::Error(s) => s.len() + 3,
            Frame::Integer(_) => HEADER,
            Frame::Bulk(b) => HEADER + b.len() + 2,
            Frame::Null | Frame::NullArray | Frame::Boolean(_) => 5,
            // `{}` of an f64 can spell out hundreds of digits (1e-300).
            Frame::Double(_) => HEADER + 400,
            Frame::Verbatim(_, text) => HEADER + 4 + text.len() + 2,
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                HEADER + items.iter().map(Frame::size_bound).sum::<usize>()
            }
            Frame::Map(pairs) | Frame::Pairs(pairs) => {
                HEADER + pairs.iter().map(|(k, v)| HEADER + k.size_bound() + v.size_bound()).sum::<usize>()
            }
        }
    }

    /// The encoded form as a fresh buffer (tests and tools).
    pub fn to_bytes(&self, protocol: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(protocol, &mut out);
        out.freeze()
    }
}

/// Formats a double the way Redis's RESP3 does for the common cases:
/// `inf`, `-inf`, `nan`, otherwise the shortest representation.
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else {
        shoal_engine::format_double(d)
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    // A simple string or error must not contain CR or LF: that would let a
    // value inject frames. Replace them, as Redis does for error strings.
    if body.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(body.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.put_slice(body);
    }
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, tag: u8, n: i64) {
    let mut digits = itoa::Buffer::new();
    out.put_u8(tag);
    out.put_slice(digits.format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, b: &[u8]) {
    out.reserve(b.len() + 16);
    header(out, b'$', b.len() as i64);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

fn seq(out: &mut BytesMut, tag: u8, items: &[Frame], protocol: Protocol) {
    header(out, tag, items.len() as i64);
    for item in items {
        item.encode(protocol, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: &Frame, p: Protocol) -> Vec<u8> {
        f.to_bytes(p).to_vec()
    }

    #[test]
    fn nulls_differ_by_protocol() {
        assert_eq!(enc(&Frame::Null, Protocol::Resp2), b"$-1\r\n");
        assert_eq!(enc(&Frame::Null, Protocol::Resp3), b"_\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp2), b"*-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp3), b"_\r\n");
    }

    #[test]
    fn map_lowers_to_flat_array() {
        let m = Frame::Map(vec![(Frame::bulk_str("proto"), Frame::Integer(3))]);
        assert_eq!(enc(&m, Protocol::Resp3), b"%1\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(enc(&m, Protocol::Resp2), b"*2\r\n$5\r\nproto\r\n:3\r\n");
    }

    #[test]
    fn scalars() {
        assert_eq!(enc(&Frame::OK, Protocol::Resp2), b"+OK\r\n");
        assert_eq!(enc(&Frame::Integer(-7), Protocol::Resp2), b":-7\r\n");
        assert_eq!(enc(&Frame::bulk_str(""), Protocol::Resp2), b"$0\r\n\r\n");
        assert_eq!(enc(&Frame::Boolean(true), Protocol::Resp3), b"#t\r\n");
        assert_eq!(enc(&Frame::Boolean(true), Protocol::Resp2), b":1\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Protocol::Resp3), b",1.5\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Protocol::Resp2), b"$3\r\n1.5\r\n");
        let v = Frame::Verbatim(*b"txt", Bytes::from_static(b"hi"));
        assert_eq!(enc(&v, Protocol::Resp3), b"=6\r\ntxt:hi\r\n");
        assert_eq!(enc(&v, Protocol::Resp2), b"$2\r\nhi\r\n");
    }

    #[test]
    fn size_bound_is_an_upper_bound() {
        let frames = [
            Frame::OK,
            Frame::Integer(i64::MIN),
            Frame::bulk_str("hello"),
            Frame::Null,
            Frame::NullArray,
            Frame::Double(1e-300),
            Frame::Double(f64::MAX),
            Frame::Verbatim(*b"txt", Bytes::from_static(b"info")),
            Frame::Map(vec![(Frame::bulk_str("k"), Frame::Array(vec![Frame::Integer(1), Frame::Boolean(true)]))]),
            Frame::Set(vec![Frame::bulk_str(""); 100]),
        ];
        for frame in &frames {
            for protocol in [Protocol::Resp2, Protocol::Resp3] {
                assert!(frame.to_bytes(protocol).len() <= frame.size_bound(), "{frame:?} in {protocol:?}");
            }
        }
    }

    #[test]
    fn error_text_cannot_inject_frames() {
        let e = Frame::error("ERR bad\r\n+OK");
        assert_eq!(enc(&e, Protocol::Resp2), b"-ERR bad  +OK\r\n");
    }
}
