//! tiendo's database, through sea-orm: SQLite as the embedded default, PostgreSQL in
//! production, the same entities and migrations for both.
//!
//! Entities are storage shapes only: each service's repository module converts its rows to
//! and from domain types, so no table row leaves this crate and no wire message enters it.
//! The store decides nothing about messages: it reports what kind of failure an error is
//! ([`error::Fault`]) and the service's consumer kit decides what to do.
//!
//! # Layout
//! - [`connect`]: opening a database from settings, running migrations, beginning transactions,
//!   checkpointing an SQLite WAL from a connection of its own ([`Checkpointer`]).
//! - [`error`]: [`StoreError`] and which way a database error points ([`error::Fault`]).
//! - [`aggregation`]: aggregation's observations and figures, one transaction's [`aggregation::Work`].
//! - [`alerting`]: alerting's figures, standings, alerts and their history.
//! - [`outbox`]: messages committed with a transaction, kept until they are published.
//! - [`reporting`]: receipts per unit, the due periods acted on, the overdue notices sent.
//! - [`status`]: the read model of every plan's status and who has reported, for `tiendo status`
//!   and the web pages.
//! - [`views`]: what else the web pages read: figures over time, notes, alerts and their history.
//! - [`entity`]: one module per table.
//! - [`keys`]: looking rows up by a batch of keys (one array parameter on PostgreSQL).
//! - [`rows`]: multi-row `INSERT`s written straight from models.
//! - [`hash`]: the hash maps of a transaction's working sets.
//! - [`migration`]: timestamped migrations, each with up and down.

pub mod aggregation;
pub mod alerting;
pub mod connect;
pub mod entity;
pub mod error;
pub mod hash;
pub mod keys;
pub mod migration;
pub mod outbox;
pub mod reporting;
pub mod rows;
pub mod status;
pub mod views;

pub use connect::{begin, begin_with, connect, is_sqlite, migrate, Checkpointer, Isolation, Transaction};
pub use error::StoreError;
pub use sea_orm;

use chrono::{DateTime, Utc};
use tiendo_domain::{FigureKey, IndicatorId, OrgUnitCode};

/// Rows written (or keys looked up) per statement: well inside SQLite's limit on the bound
/// parameters of one statement, and few statements per batch.
pub const ROWS_PER_STATEMENT: usize = 256;

/// How times are stored: RFC 3339 text, the same on SQLite and PostgreSQL.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time `{s}`: {e}")))
}

/// A figure's key as its three stored columns: indicator, org unit, period.
fn key_texts(k: &FigureKey) -> [String; 3] {
    [k.indicator.to_string(), k.org_unit.to_string(), k.period.to_string()]
}

fn parse_key(indicator: &str, org_unit: &str, period: &str) -> Result<FigureKey, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    Ok(FigureKey {
        indicator: IndicatorId::parse(indicator).map_err(|e| corrupt(e.to_string()))?,
        org_unit: OrgUnitCode::parse(org_unit).map_err(|e| corrupt(e.to_string()))?,
        period: period.parse().map_err(|e: tiendo_domain::period::PeriodError| corrupt(e.to_string()))?,
    })
}
