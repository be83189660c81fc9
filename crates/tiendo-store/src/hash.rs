//! The hash maps and sets of a transaction's working sets (the figures, event ids and keys a
//! batch touches), hashed with foldhash instead of the standard library's SipHash.
//!
//! A batch looks its figures up several times per observation, by keys of three strings:
//! SipHash alone was a sixth of the instructions aggregation ran on its own, and growing the
//! tables while a batch ran added more (docs/performance.md, issue 15, change 22). foldhash is
//! seeded at random per process, so a department cannot choose keys that collide on purpose.

pub use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
