//! The collections behind hashes, lists, sets and sorted sets: data
//! structures with the operations commands need, no command semantics.

pub mod hash;
pub mod list;
pub mod packed;
pub mod set;
pub mod zset;

/// The lookup side of the collections' index maps; order never depends on it.
pub(crate) type Hasher = hashbrown::DefaultHashBuilder;
