//! An engine reply ([`shoal_engine::Out`]) as a frame: the engine knows
//! nothing of RESP; RESP2 and RESP3 differences (maps, sets, doubles,
//! pairs) are the frame encoder's.

use bytes::Bytes;
use shoal_engine::Out;

use crate::Frame;

impl From<Out> for Frame {
    fn from(out: Out) -> Frame {
        let all = |items: Vec<Out>| items.into_iter().map(Frame::from).collect();
        let pairs = |pairs: Vec<(Out, Out)>| pairs.into_iter().map(|(k, v)| (Frame::from(k), Frame::from(v))).collect();
        match out {
            Out::Ok => Frame::OK,
            Out::Status(s) => Frame::Simple(Bytes::from(s)),
            Out::Int(i) => Frame::Integer(i),
            Out::Bulk(b) => Frame::Bulk(b),
            Out::Nil => Frame::Null,
            Out::NilArray => Frame::NullArray,
            Out::Double(d) => Frame::Double(d),
            Out::Array(items) => Frame::Array(all(items)),
            Out::Set(items) => Frame::Set(all(items)),
            Out::Map(items) => Frame::Map(pairs(items)),
            Out::Pairs(items) => Frame::Pairs(pairs(items)),
            Out::Err(fault) => Frame::error(fault.to_string()),
        }
    }
}
