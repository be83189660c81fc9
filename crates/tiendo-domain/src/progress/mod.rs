//! Progress methods beyond the straight line (docs/methods.md says what each computes, from
//! which source, and where tiendo departs from it):
//!
//! - [`measure`]: Open SDG's progress measure (Statistics Canada's method): the compound annual
//!   growth rate observed since the base against the one the target needs, graded into
//!   categories, with a score in −5..5; and its target-less variant.
//! - [`trend`]: a least-squares line over a unit's latest figures, projected to the target date
//!   and graded with the weather symbols of Germany's sustainability indicators; the early
//!   warning when the projection misses the target by more than the tolerance.
//!
//! Pure: time comes in years as `f64` on an axis the caller chooses ([`years`] converts periods
//! and dates); every result that cannot be computed is `not_available`, never NaN.

use std::fmt;

use crate::plan::Comparator;

pub mod assess;
pub mod measure;
pub mod time;
pub mod trend;

pub use assess::{assess, Outlook};
pub use measure::{progress, Category, Progress};
pub use time::{years, years_since};
pub use trend::{early_warning, forecast, Forecast, Weather, DEFAULT_WINDOW, MIN_WINDOW};

/// Which way an indicator must move to improve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher values are better (Open SDG `direction: positive`).
    Increase,
    /// Lower values are better (Open SDG `direction: negative`, its default).
    Decrease,
}

impl Direction {
    /// Open SDG's `d`: `+1.0` for [`Direction::Increase`], `-1.0` for [`Direction::Decrease`].
    pub fn sign(self) -> f64 {
        match self {
            Direction::Increase => 1.0,
            Direction::Decrease => -1.0,
        }
    }

    /// Wire string: `increase` or `decrease`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Comparator {
    /// The good direction this comparator implies: up for `at_least`/`more_than`, down for the others.
    pub fn direction(self) -> Direction {
        match self {
            Comparator::AtLeast | Comparator::MoreThan => Direction::Increase,
            Comparator::AtMost | Comparator::LessThan => Direction::Decrease,
        }
    }
}

/// A quantitative target: a value to meet, by a time, under a comparator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The target value, in the indicator's unit.
    pub value: f64,
    /// The target time in years on the same axis as the figures: years since the base figure for
    /// [`crate::progress`], and the time axis of the points for [`crate::forecast`]. The target date counts as
    /// the end of its final period.
    pub years_from_base: f64,
    /// How a value is compared with [`Target::value`].
    pub comparator: Comparator,
}

impl Target {
    /// Builds a target.
    pub fn new(value: f64, years_from_base: f64, comparator: Comparator) -> Self {
        Target { value, years_from_base, comparator }
    }

    /// Whether `value` meets this target under its comparator.
    pub fn is_met_by(&self, value: f64) -> bool {
        self.comparator.holds(value, self.value)
    }
}
