//! The typed options and outcomes of the engine's operations: what a
//! command's flags mean, decided once by the parser, never re-read as flags.

use bytes::Bytes;

use crate::Millis;

/// Which existing state lets a SET go ahead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SetCondition {
    #[default]
    Always,
    /// NX
    IfAbsent,
    /// XX
    IfPresent,
    /// IFEQ v: only an existing key whose value equals `v`.
    IfEqual(Bytes),
    /// IFNE v: a missing key, or one whose value differs from `v`.
    IfNotEqual(Bytes),
}

/// What a SET does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// No expiry option: the key becomes persistent.
    #[default]
    Clear,
    /// KEEPTTL
    Keep,
    /// EX/PX/EXAT/PXAT, resolved to an absolute time.
    At(Millis),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetOptions {
    pub condition: SetCondition,
    pub expiry: SetExpiry,
    /// SET … GET: the old value is read, so a key of another type is
    /// WRONGTYPE and nothing is written.
    pub get: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// Whether the value was stored.
    pub written: bool,
    /// The live value before the command (for SET … GET).
    pub old: Option<Bytes>,
}

/// DELEX's condition on the current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelCondition {
    Always,
    IfEqual(Bytes),
    IfNotEqual(Bytes),
}

/// What GETEX does to the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetExExpiry {
    Keep,
    Persist,
    At(Millis),
}

/// EXPIRE's NX/XX/GT/LT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpireCondition {
    #[default]
    Always,
    /// NX: only when the key has no expiry.
    IfNone,
    /// XX: only when it has one.
    IfSome,
    /// GT: only when the new expiry is later.
    IfGreater,
    /// LT: only when the new expiry is earlier (a persistent key counts as
    /// an infinite expiry, so it qualifies).
    IfLess,
    /// XX LT: only when the key has an expiry and the new one is earlier.
    /// (XX GT needs no variant: GT already refuses persistent keys.)
    IfSomeAndLess,
}

/// A key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Missing,
    Persistent,
    ExpiresIn(Millis),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IncrError {
    #[error("value is not an integer or out of range")]
    NotInteger,
    #[error("increment or decrement would overflow")]
    Overflow,
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
}
