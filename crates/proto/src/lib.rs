//! shoal's protocol layer: RESP2/RESP3 frames and typed commands. No sockets,
//! no clocks: everything here is a pure function of bytes, so it can be
//! fuzzed and property-tested alone.
//!
//! # Layout
//!
//! - [`frame`]: `Frame` and its encoder for either protocol version.
//! - [`request`]: the incremental request decoder, with its limits.
//! - `inline`: splitting inline commands the way Redis does.
//! - [`reply`]: a decoder for whole frames, used by clients and tests.
//! - [`command`]: the command table and parsing into `Command`.

pub mod command;
pub mod frame;
mod inline;
mod out;
pub mod reply;
pub mod request;

pub use command::{Command, CommandError, CommandSpec};
pub use frame::{Frame, Protocol};
pub use reply::parse_frame;
pub use request::{DecodeLimits, ProtocolError, RequestDecoder};
