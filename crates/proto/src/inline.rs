//! Splitting an inline command line into arguments, following Redis's
//! `sdssplitargs`: whitespace separates; `"…"` understands `\n \r \t \b \a
//! \\ \"` and `\xHH`; `'…'` understands only `\'`; a closing quote must be
//! followed by whitespace or the end of the line.

use bytes::Bytes;

/// The arguments of `line`, or `None` for unbalanced quotes.
pub fn split_inline(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let mut arg = Vec::new();
        match line[i] {
            b'"' => i = double_quoted(line, i + 1, &mut arg)?,
            b'\'' => i = single_quoted(line, i + 1, &mut arg)?,
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
}

/// Reads a `"…"` body starting after the opening quote; returns the index
/// after the closing quote.
fn double_quoted(line: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\\' if i + 3 < line.len() && line[i + 1] == b'x' => match hex_byte(line[i + 2], line[i + 3]) {
                Some(b) => {
                    arg.push(b);
                    i += 4;
                }
                None => {
                    arg.push(b'x');
                    i += 2;
                }
            },
            b'\\' if i + 1 < line.len() => {
                arg.push(match line[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'a' => 7,
                    other => other,
                });
                i += 2;
            }
            b'"' => return closing(line, i + 1),
            b => {
                arg.push(b);
                i += 1;
            }
        }
    }
}

fn single_quoted(line: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\\' if line.get(i + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                i += 2;
            }
            b'\'' => return closing(line, i + 1),
            b => {
                arg.push(b);
                i += 1;
            }
        }
    }
}

/// A closing quote must end the argument.
fn closing(line: &[u8], after: usize) -> Option<usize> {
    match line.get(after) {
        None => Some(after),
        Some(b) if b.is_ascii_whitespace() => Some(after),
        Some(_) => None,
    }
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(hi)? * 16 + digit(lo)?) as u8)
}

#[cfg(test)]
mod tests {
    use super::split_inline;

    fn split(s: &[u8]) -> Option<Vec<Vec<u8>>> {
        split_inline(s).map(|v| v.into_iter().map(|b| b.to_vec()).collect())
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(split(b"  set  a b "), Some(vec![b"set".to_vec(), b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(split(b"set k \"a\\x41\\n\""), Some(vec![b"set".to_vec(), b"k".to_vec(), b"aA\n".to_vec()]));
        assert_eq!(split(b"echo 'it\\'s'"), Some(vec![b"echo".to_vec(), b"it's".to_vec()]));
        assert_eq!(split(b"echo \"\""), Some(vec![b"echo".to_vec(), b"".to_vec()]));
        assert_eq!(split(b""), Some(vec![]));
        assert_eq!(split(b"echo \"abc"), None);
        assert_eq!(split(b"echo \"a\"b"), None);
    }
}
