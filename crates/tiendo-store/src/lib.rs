//! tiendo's database, through sea-orm: SQLite as the embedded default, PostgreSQL in
//! production, the same entities and migrations for both.
//!
//! Entities are storage shapes only: services convert them to and from domain and wire types
//! at their edges, and never send one over the bus.
//!
//! # Layout
//! - [`batch`]: a batch in one transaction, falling back to one at a time.
//! - [`connect`]: opening a database from settings, and running migrations.
//! - [`entity`]: one module per table (aggregation's observations and figures; alerting's
//!   figures, states, alerts and alert history; the outbox).
//! - [`keys`]: looking rows up by a batch of composite keys.
//! - [`migration`]: timestamped migrations, each with up and down.
//! - [`outbox`]: messages committed with a transaction, relayed to the bus after it.

pub mod batch;
pub mod connect;
pub mod entity;
pub mod keys;
pub mod migration;
pub mod outbox;

pub use connect::{begin, connect, is_sqlite, migrate};

/// Rows written (or keys looked up) per statement: well inside SQLite's limit on the bound
/// parameters of one statement, and few statements per batch.
pub const ROWS_PER_STATEMENT: usize = 256;
pub use sea_orm;
