//! The wire messages of tiendo, generated from `proto/tiendo/v1/tiendo.proto`, and their
//! conversion to and from the domain types: the edge where messages are parsed once.
//!
//! Every message derives both `prost::Message` (the binary encoding used between services) and
//! serde (the JSON that departments send and receive, with the same field names).
//!
//! # Layout
//! - [`v1`]: the generated messages.
//! - [`convert`]: domain → wire and wire → domain, with [`convert::WireError`] for a message
//!   that does not hold what its type promises.

pub mod convert;

/// Version 1 of the wire contract.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tiendo.v1.rs"));
}

pub use prost::Message;
