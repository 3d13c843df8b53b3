//! A cursor over a request's arguments, with Redis's error texts for the
//! usual ways an argument can be wrong.

use bytes::Bytes;

use super::CommandError;

pub struct Args {
    args: std::vec::IntoIter<Bytes>,
}

impl Args {
    /// Arguments after the command name (and subcommand, if any).
    pub fn new(args: Vec<Bytes>, skip: usize) -> Args {
        let mut args = args.into_iter();
        for _ in 0..skip {
            args.next();
        }
        Args { args }
    }

    pub fn remaining(&self) -> usize {
        self.args.len()
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument; arity was checked against the table, so a missing
    /// one here is a syntax error in an optional clause.
    pub fn take(&mut self) -> Result<Bytes, CommandError> {
        self.args.next().ok_or_else(CommandError::syntax)
    }

    pub fn next_i64(&mut self) -> Result<i64, CommandError> {
        parse_i64_arg(&self.take()?)
    }

    pub fn rest(self) -> Vec<Bytes> {
        self.args.collect()
    }
}

/// An integer argument, with Redis's error for anything else.
pub fn parse_i64_arg(arg: &[u8]) -> Result<i64, CommandError> {
    shoal_engine::parse_i64(arg).ok_or_else(CommandError::not_integer)
}

/// Case-insensitive keyword comparison.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}
