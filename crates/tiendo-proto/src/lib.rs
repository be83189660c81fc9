//! The wire messages of tiendo, generated from `proto/tiendo/v1/tiendo.proto`.
//!
//! Every message derives both `prost::Message` (the binary encoding used between services) and
//! serde (the JSON that departments send and receive, with the same field names).
//!
//! # Layout
//! - [`v1`]: the generated messages.
//! - [`alert_state`]: the values of `Alert.state`.

/// Version 1 of the wire contract.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tiendo.v1.rs"));
}

pub use prost::Message;

/// The values of `Alert.state` (also stored as `alerts.state`).
pub mod alert_state {
    /// The (indicator, org unit) fell behind its trajectory.
    pub const FIRING: &str = "firing";
    /// It is no longer behind; the same `alert_id` as the firing message.
    pub const RESOLVED: &str = "resolved";
}
