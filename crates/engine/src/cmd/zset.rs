//! (stub: being written)

use bytes::Bytes;

use super::args::Args;
use super::rng::Rng;
use super::Run;
use crate::reply::Fault;
use crate::txn::Txn;

#[derive(Debug, Clone, PartialEq)]
pub enum ZSetCmd {}

impl ZSetCmd {
    pub(super) fn parse(_name: &str, _a: &mut Args) -> Option<Result<ZSetCmd, Fault>> {
        None
    }

    pub fn blocking_timeout_ms(&self) -> Option<u64> {
        match *self {}
    }

    pub(super) fn keys(&self) -> Vec<&Bytes> {
        match *self {}
    }

    pub(super) fn run(&self, _tx: &mut Txn, _rng: &mut Rng) -> Run {
        match *self {}
    }
}
