//! The domain model of tiendo: what an indicator, an organisation unit, a period and a figure
//! are, which observations are acceptable, and how a figure is judged against its trajectory.
//!
//! Pure logic only: no I/O, no clock (callers pass "today"), no bus, no database. Everything a
//! service decides about a department's data is decided here, so it is unit-tested here.
//!
//! # Layout
//! - [`ids`]: validated identifiers (`IndicatorId`, `OrgUnitCode`, `DepartmentCode`, `EventId`).
//! - [`period`]: `YYYY`, `YYYY-Qn`, `YYYY-MM` periods and their end dates.
//! - [`catalog`]: the indicator catalog and organisation tree, loaded from TOML.
//! - [`reason`]: the rejection reason codes (a wire contract).
//! - [`validate`]: turns a received observation into a [`validate::Observation`] or a rejection.
//! - [`rollup`]: how a child's figure contributes to its parent's roll-up.
//! - [`trajectory`]: expected value on the path from baseline to target, and the status.

pub mod catalog;
pub mod ids;
pub mod period;
pub mod reason;
pub mod rollup;
pub mod trajectory;
pub mod validate;

pub use catalog::{Catalog, CatalogError, Comparator, Indicator};
pub use ids::{DepartmentCode, EventId, IndicatorId, OrgUnitCode};
pub use period::{Frequency, Period};
pub use reason::RejectReason;
