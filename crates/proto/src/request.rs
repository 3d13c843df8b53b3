//! The server side of the codec: turns bytes from a client into requests
//! (a command name and its arguments), incrementally and within limits.
//!
//! Clients send either RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n…`)
//! or inline commands (`PING\r\n`, as telnet and redis-benchmark's
//! PING_INLINE do). The decoder keeps its place between calls: arguments
//! already complete are split off the buffer, so a large pipelined MSET that
//! arrives in many reads is never re-parsed from its start.
//!
//! Limits are checked before anything is allocated for a length the client
//! declared: a `*2147483647` header or a `$536870913` bulk is an error, not a
//! reservation.

use bytes::{Buf, Bytes, BytesMut};

use crate::inline::split_inline;

/// Bounds on what one request may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest bulk string (`proto-max-bulk-len`), in bytes.
    pub max_bulk_bytes: usize,
    /// Most elements in one request array.
    pub max_array_len: usize,
    /// Longest inline command line, and longest `*`/`$` header line, in bytes.
    pub max_inline_bytes: usize,
    /// Most bytes of arguments in one request (Redis's
    /// client-query-buffer-limit): without it, a request of many large bulks
    /// that never completes could hold `max_array_len × max_bulk_bytes`.
    pub max_request_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bulk_bytes: 512 * 1024 * 1024,
            max_array_len: 1024 * 1024,
            max_inline_bytes: 64 * 1024,
            max_request_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// A malformed request. The connection cannot be resynchronised after one,
/// so the server replies with this text and closes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(s: impl Into<String>) -> Self {
        ProtocolError(s.into())
    }
}

/// Largest number of argument slots reserved up front, whatever the header
/// claims; the vector grows as arguments actually arrive.
const MAX_PREALLOCATED_ARGS: usize = 1024;

/// Incremental request decoder; one per connection.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    limits: DecodeLimits,
    /// A multibulk request whose header was read but not all of its args.
    partial: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    expected: usize,
    args: Vec<Bytes>,
    /// Sum of the arguments' lengths so far.
    bytes: usize,
}

impl RequestDecoder {
    pub fn new(limits: DecodeLimits) -> Self {
        RequestDecoder { limits, partial: None }
    }

    /// Takes the next complete request off the front of `buf`, or returns
    /// `Ok(None)` when more bytes are needed. Empty requests (`*0`, blank
    /// inline lines) are consumed and skipped.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.partial.is_none() {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.decode_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(n) = self.header_line(buf, "mbulk")? else {
                    return Ok(None);
                };
                if n > self.limits.max_array_len as i64 {
                    return Err(ProtocolError::new("invalid multibulk length"));
                }
                if n <= 0 {
                    continue; // `*0` and `*-1` are no request at all.
                }
                let expected = n as usize;
                let args = Vec::with_capacity(expected.min(MAX_PREALLOCATED_ARGS));
                self.partial = Some(Partial { expected, args, bytes: 0 });
            }
            return self.decode_bulks(buf);
        }
    }

    fn decode_bulks(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let partial = self.partial.as_mut().expect("called with a partial request");
        while partial.args.len() < partial.expected {
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first != b'$' {
                return Err(ProtocolError(format!("expected '$', got '{}'", first as char)));
            }
            let Some((len, header_len)) = peek_header(buf, self.limits.max_inline_bytes, b"bulk")? else {
                return Ok(None);
            };
            if len < 0 || len as u64 > self.limits.max_bulk_bytes as u64 {
                return Err(ProtocolError::new("invalid bulk length"));
            }
            let len = len as usize;
            if partial.bytes + len > self.limits.max_request_bytes {
                return Err(ProtocolError(format!(
                    "request larger than the limit of {} bytes",
                    self.limits.max_request_bytes
                )));
            }
            if buf.len() < header_len + len + 2 {
                // Nothing is reserved for the declared length: the buffer
                // grows only as bytes actually arrive.
                return Ok(None);
            }
            if &buf[header_len + len..header_len + len + 2] != b"\r\n" {
                return Err(ProtocolError::new("bulk string not terminated by CRLF"));
            }
            buf.advance(header_len);
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            partial.bytes += arg.len();
            partial.args.push(arg);
        }
        let done = self.partial.take().expect("partial request present");
        debug_assert_eq!(done.args.len(), done.expected);
        Ok(Some(done.args))
    }

    /// Reads a `*N` header, consuming it when complete.
    fn header_line(&self, buf: &mut BytesMut, what: &str) -> Result<Option<i64>, ProtocolError> {
        match peek_header(buf, self.limits.max_inline_bytes, what.as_bytes())? {
            Some((n, len)) => {
                buf.advance(len);
                Ok(Some(n))
            }
            None => Ok(None),
        }
    }

    fn decode_inline(&self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > self.limits.max_inline_bytes {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(None);
        };
        if newline > self.limits.max_inline_bytes {
            return Err(ProtocolError::new("too big inline request"));
        }
        let line = buf.split_to(newline + 1);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args = split_inline(line).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
        // An inline request is bounded by its length, but its argument count
        // obeys the same limit as an array's (found by the fuzzer).
        if args.len() > self.limits.max_array_len {
            return Err(ProtocolError::new("too many arguments in inline request"));
        }
        Ok(Some(args))
    }
}

/// Parses `<tag><integer>\r\n` at the front of `buf` without consuming it.
/// Returns the integer and the header's length, or `None` if incomplete.
fn peek_header(buf: &[u8], max_line: usize, what: &[u8]) -> Result<Option<(i64, usize)>, ProtocolError> {
    let scan = &buf[..buf.len().min(max_line + 2)];
    let Some(cr) = scan.iter().position(|&b| b == b'\r') else {
        if buf.len() > max_line {
            let what = String::from_utf8_lossy(what);
            return Err(ProtocolError(format!("too big {what} count string")));
        }
        return Ok(None);
    };
    if cr + 1 >= buf.len() {
        return Ok(None);
    }
    if buf[cr + 1] != b'\n' {
        return Err(invalid_length(what));
    }
    let n = parse_int(&buf[1..cr]).ok_or_else(|| invalid_length(what))?;
    Ok(Some((n, cr + 2)))
}

fn invalid_length(what: &[u8]) -> ProtocolError {
    if what == b"bulk" {
        ProtocolError::new("invalid bulk length")
    } else {
        ProtocolError::new("invalid multibulk length")
    }
}

/// A strict decimal integer: optional `-`, 1 to 19 digits, within i64.
/// Hand-rolled: this runs for every header of every request.
pub(crate) fn parse_int(digits: &[u8]) -> Option<i64> {
    let (negative, body) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if body.is_empty() || body.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in body {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if negative { n.checked_sub(d)? } else { n.checked_add(d)? };
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut dec = RequestDecoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = dec.decode(&mut buf)? {
            out.push(req);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(out)
    }

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn multibulk_and_inline() {
        let got = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\n*0\r\nSET a \"b c\"\n").unwrap();
        assert_eq!(got, vec![args(&["GET", "k"]), args(&["PING"]), args(&["SET", "a", "b c"])]);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_requests() {
        let input = b"*3\r\n$3\r\nSET\r\n$4\r\nk\r\nv\r\n$0\r\n\r\nPING\r\n";
        let mut dec = RequestDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(req) = dec.decode(&mut buf).unwrap() {
                out.push(req);
            }
        }
        assert_eq!(out, vec![args(&["SET", "k\r\nv", ""]), args(&["PING"])]);
    }

    #[test]
    fn protocol_errors_match_redis() {
        let err = |input: &[u8]| decode_all(input).unwrap_err().to_string();
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*1\r\n$-5\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(err(b"*1\r\n+OK\r\n"), "Protocol error: expected '$', got '+'");
        assert_eq!(err(b"SET \"a\n"), "Protocol error: unbalanced quotes in request");
        assert_eq!(err(b"*1\r\n$1\r\nab\r\n"), "Protocol error: bulk string not terminated by CRLF");
    }

    #[test]
    fn parse_int_bounds() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"1a"), None);
        assert_eq!(parse_int(b"+1"), None);
    }

    #[test]
    fn declared_sizes_are_checked_before_allocation() {
        let limits = DecodeLimits { max_bulk_bytes: 10, max_array_len: 4, max_inline_bytes: 16, max_request_bytes: 25 };
        let run = |input: &[u8]| {
            let mut dec = RequestDecoder::new(limits);
            dec.decode(&mut BytesMut::from(input)).map(|_| ())
        };
        assert!(run(b"*5\r\n").is_err());
        assert!(run(b"*4\r\n").is_ok());
        assert!(run(b"*1\r\n$11\r\n").is_err());
        assert!(run(b"*1\r\n$10\r\n").is_ok());
        // Three 10-byte bulks pass the per-bulk limit, not the 25-byte request limit.
        let three = b"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n";
        assert_eq!(run(three), Err(ProtocolError::new("request larger than the limit of 25 bytes")));
        assert!(run(b"*9223372036854775807\r\n").is_err());
        assert!(run(b"*99999999999999999999999\r\n").is_err());
        assert!(run(&[b'P'; 17]).is_err());
        assert_eq!(run(b"a b c d e\n"), Err(ProtocolError::new("too many arguments in inline request")));
        assert!(run(b"a b c d\n").is_ok());
        assert!(run(&[b'*'; 20]).is_err());
    }
}
