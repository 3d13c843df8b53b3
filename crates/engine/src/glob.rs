//! Redis-style glob matching for KEYS and SCAN MATCH: `*`, `?`, `[abc]`,
//! `[^a-z]` and `\x` escapes, with the same edge cases as Redis's
//! `stringmatchlen` (an unterminated class runs to the end of the pattern).
//!
//! The matcher is iterative with single-star backtracking, so its work is
//! bounded by `pattern.len() * subject.len()` whatever the input; a recursive
//! matcher would let a client pattern like `a*a*a*a*…b` burn exponential time.

/// Whether `subject` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    // Where to resume after the most recent `*`: (pattern index, subject index).
    let mut resume: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
            resume = Some((p, s));
            continue;
        }
        if p < pattern.len() {
            if let Some(next) = match_one(pattern, p, subject[s]) {
                p = next;
                s += 1;
                continue;
            }
        }
        match resume {
            Some((rp, rs)) => {
                resume = Some((rp, rs + 1));
                p = rp;
                s = rs + 1;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Matches one pattern element at `p` against byte `c`; on success returns the
/// index just past that element.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => match_class(pattern, p + 1, c),
        literal => (literal == c).then_some(p + 1),
    }
}

/// Matches a `[...]` class whose body starts at `p`.
fn match_class(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            matched |= pattern[p + 1] == c;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (lo, hi) = ordered(pattern[p], pattern[p + 2]);
            matched |= (lo..=hi).contains(&c);
            p += 3;
        } else {
            matched |= pattern[p] == c;
            p += 1;
        }
    }
    // Past the closing bracket, or at the end of an unterminated class.
    let next = (p + 1).min(pattern.len());
    (matched != negate).then_some(next)
}

fn ordered(a: u8, b: u8) -> (u8, u8) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match as m;

    #[test]
    fn stars_and_questions() {
        assert!(m(b"*", b""));
        assert!(m(b"*", b"anything"));
        assert!(m(b"h?llo", b"hello"));
        assert!(!m(b"h?llo", b"hllo"));
        assert!(m(b"h*llo", b"heeeello"));
        assert!(m(b"user:*:name", b"user:42:name"));
        assert!(!m(b"user:*:name", b"user:42:age"));
        assert!(m(b"a*b*c", b"aXbYbZc"));
        assert!(!m(b"a*b*c", b"aXbYbZ"));
        assert!(m(b"", b""));
        assert!(!m(b"", b"x"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m(b"h[ae]llo", b"hallo"));
        assert!(!m(b"h[ae]llo", b"hillo"));
        assert!(m(b"h[^e]llo", b"hallo"));
        assert!(!m(b"h[^e]llo", b"hello"));
        assert!(m(b"h[a-b]llo", b"hbllo"));
        assert!(m(b"h[b-a]llo", b"hallo"));
        assert!(m(b"a\\*b", b"a*b"));
        assert!(!m(b"a\\*b", b"axb"));
        assert!(m(b"[abc", b"b"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let subject = vec![b'a'; 4096];
        let mut pattern = b"a*".repeat(64);
        pattern.push(b'b');
        assert!(!m(&pattern, &subject));
    }
}
