//! LCS: the longest common subsequence of two strings, by Redis's dynamic
//! programme, so that IDX reports the same ranges Redis does.

use bytes::Bytes;

use super::string::LcsMode;
use crate::reply::Out;

pub(crate) fn reply(a: &[u8], b: &[u8], mode: LcsMode, min_len: usize, with_len: bool) -> Out {
    let (alen, blen) = (a.len(), b.len());
    let width = blen + 1;
    let mut dp = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * width + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * width + j - 1] + 1
            } else {
                dp[(i - 1) * width + j].max(dp[i * width + j - 1])
            };
        }
    }
    let total = dp[alen * width + blen] as usize;
    if mode == LcsMode::Len {
        return Out::len(total);
    }
    let mut result = vec![0u8; total];
    let mut matches = Vec::new();
    let (mut i, mut j, mut idx) = (alen, blen, total);
    // No range open while `a_start == alen`.
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * width + j] > dp[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let len = a_end - a_start + 1;
            if min_len == 0 || len >= min_len {
                let pair = |s: usize, e: usize| Out::Array(vec![Out::len(s), Out::len(e)]);
                let mut m = vec![pair(a_start, a_end), pair(b_start, b_end)];
                if with_len {
                    m.push(Out::len(len));
                }
                matches.push(Out::Array(m));
            }
            a_start = alen;
        }
    }
    match mode {
        LcsMode::Idx => Out::Map(vec![
            (Out::Bulk(Bytes::from_static(b"matches")), Out::Array(matches)),
            (Out::Bulk(Bytes::from_static(b"len")), Out::len(total)),
        ]),
        _ => Out::Bulk(Bytes::from(result)),
    }
}
