//! A cursor over a command's arguments, with Redis's errors for arguments
//! that are missing or not what they should be.

use bytes::Bytes;

use crate::reply::Fault;

pub struct Args<'a> {
    args: &'a [Bytes],
    at: usize,
}

impl<'a> Args<'a> {
    /// The arguments after the command's name.
    pub fn new(args: &'a [Bytes]) -> Args<'a> {
        Args { args, at: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.args.len() - self.at
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument; a missing one is a syntax error (arity was
    /// checked against the command table before parsing).
    pub fn take(&mut self) -> Result<Bytes, Fault> {
        let arg = self.args.get(self.at).ok_or(Fault::Syntax)?;
        self.at += 1;
        Ok(arg.clone())
    }

    /// The next argument without consuming it.
    pub fn peek(&self) -> Option<&'a Bytes> {
        self.args.get(self.at)
    }

    /// Consumes the next argument if it is `keyword` (any case).
    pub fn eat(&mut self, keyword: &str) -> bool {
        let hit = self.peek().is_some_and(|a| is(a, keyword));
        if hit {
            self.at += 1;
        }
        hit
    }

    pub fn i64(&mut self) -> Result<i64, Fault> {
        int(&self.take()?)
    }

    pub fn f64(&mut self) -> Result<f64, Fault> {
        float(&self.take()?).ok_or(Fault::NotFloat)
    }

    /// Everything left.
    pub fn rest(&mut self) -> Vec<Bytes> {
        let rest = self.args[self.at..].to_vec();
        self.at = self.args.len();
        rest
    }

    /// `numkeys key…`: how many keys follow, then the keys. Redis's errors
    /// for a count of zero or one past the arguments.
    pub fn numkeys(&mut self) -> Result<Vec<Bytes>, Fault> {
        let n = self.i64()?;
        if n <= 0 {
            return Err(Fault::NumKeysZero);
        }
        if n as u64 > self.remaining() as u64 {
            return Err(Fault::NumKeysTooMany);
        }
        (0..n).map(|_| self.take()).collect()
    }

    /// Fails unless every argument was consumed.
    pub fn done(&self) -> Result<(), Fault> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Fault::Syntax)
        }
    }
}

/// Case-insensitive keyword comparison.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

pub fn int(arg: &[u8]) -> Result<i64, Fault> {
    crate::db::parse_i64(arg).ok_or(Fault::NotInteger)
}

/// A float as Redis's `string2d` reads it: what `strtod` accepts whole
/// (`inf`, `-inf`, `+inf`, exponents), no spaces, no NaN.
pub fn float(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let value = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        _ if lower.contains("nan") || lower.contains("inf") => return None,
        // strtod reads hexadecimal too (integers here).
        hex if hex.starts_with("0x") => {
            let digits = u128::from_str_radix(&hex[2..], 16).ok()? as f64;
            if lower.starts_with('-') {
                -digits
            } else {
                digits
            }
        }
        // Out of a double's range (1e400): strtod's ERANGE, refused.
        _ => text.parse::<f64>().ok().filter(|f| f.is_finite())?,
    };
    (!value.is_nan()).then_some(value)
}

/// A double as Redis 7.2 prints it: the shortest text that reads back
/// the same, `inf`/`-inf`, exponents past 1e21 as `1e+21`.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let plain = format!("{d}");
    let abs = d.abs();
    if abs != 0.0 && !(1e-4..1e17).contains(&abs) {
        // Exponent form, as %.17g would choose, with the shortest mantissa.
        let e = format!("{d:e}");
        let (mantissa, exp) = e.split_once('e').expect("{:e} has an exponent");
        let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_like_strtod_without_nan() {
        assert_eq!(float(b"1.5"), Some(1.5));
        assert_eq!(float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(float(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(float(b"1e3"), Some(1000.0));
        assert_eq!(float(b"nan"), None);
        assert_eq!(float(b" 1"), None);
        assert_eq!(float(b""), None);
        assert_eq!(float(b"abc"), None);
        assert_eq!(float(b"0x10"), Some(16.0));
        assert_eq!(float(b"1e400"), None);
        assert_eq!(float(b"-0x10"), Some(-16.0));
    }

    #[test]
    fn doubles_print_shortest() {
        assert_eq!(format_double(1.1), "1.1");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-0.5), "-0.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(1e300), "1e+300");
        assert_eq!(format_double(1.5e-10), "1.5e-10");
    }
}
