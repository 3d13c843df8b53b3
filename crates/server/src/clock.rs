//! Wall-clock milliseconds: the only place the server reads the time that
//! the engine's expiry decisions use.

use std::time::{SystemTime, UNIX_EPOCH};

use shoal_engine::Millis;

pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}
