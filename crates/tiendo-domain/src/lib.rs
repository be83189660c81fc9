//! The domain model of tiendo: what an indicator, an organisation unit, a period and a figure
//! are, which observations are acceptable, how figures roll up, and how a figure is judged
//! against its trajectory.
//!
//! Pure logic only: no I/O, no clock (callers pass "today"), no bus, no database, no wire
//! types. Everything a service decides about a department's data is decided here, so it is
//! unit-tested here. The wire messages convert to and from these types in `tiendo-proto`,
//! the tables in `tiendo-store`.
//!
//! # Layout
//! - [`ids`]: validated identifiers (`IndicatorId`, `OrgUnitCode`, `DepartmentCode`, `EventId`).
//! - [`percent`]: [`Percent`], a share within 0..=100.
//! - [`period`]: `YYYY`, `YYYY-Qn`, `YYYY-MM` periods and their end dates.
//! - [`catalog`]: departments, indicators, the tree and the plans, loaded from TOML.
//! - [`tree`]: the organisation tree with dates: units and links valid from one date to another.
//! - [`plan`]: plans: a territory, and per indicator a baseline and a goal (target, comparator, date).
//! - [`reason`]: the rejection reason codes (a wire contract).
//! - [`observation`]: a checked [`Observation`] and the [`observation::Figure`] it reports.
//! - [`validate`]: turns what a department submitted into an `Observation` or a refusal.
//! - [`figure`]: figure keys, a unit's figure as aggregation keeps it, a figure's versions.
//! - [`reporting`]: the reporting calendar, expected reports, receipts, on-time and reporting rates.
//! - [`rollup`]: how a child's figure contributes to its parent's roll-up.
//! - [`trajectory`]: expected value on the path from baseline to target, the status, the verdict.
//! - [`progress`]: Open SDG's progress measure, the trend forecast and its early warning.
//! - [`alert`]: what alerting judges (a plan's key), alert kinds, states and ids.

pub mod alert;
pub mod catalog;
pub mod figure;
pub mod ids;
pub mod observation;
pub mod percent;
pub mod period;
pub mod plan;
pub mod progress;
pub mod reason;
pub mod reporting;
pub mod rollup;
pub mod trajectory;
pub mod tree;
pub mod validate;

pub use alert::PlanKey;
pub use catalog::{Catalog, CatalogError, Indicator};
pub use figure::{FigureKey, UnitKey};
pub use ids::{DepartmentCode, EventId, IndicatorId, OrgUnitCode, PlanId};
pub use observation::{Observation, Position};
pub use percent::Percent;
pub use period::{Frequency, Period};
pub use plan::{Comparator, Plan};
pub use reason::RejectReason;
