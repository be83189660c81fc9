//! Plans: what a province committed to, for a territory, by a date. A plan holds, per
//! indicator, where the path starts (a baseline, or none: the plan's territory's first figure)
//! and where it must end (a target with its comparator and date, or none: monitored only).
//! Several plans may hold the same indicator at once (a closed plan and the current one).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::ids::{IndicatorId, OrgUnitCode, PlanId};
use crate::percent::Percent;
use crate::period::{Frequency, Period};

/// How a figure is compared with its target. `more_than` is strict ("trên 50%").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    AtLeast,
    MoreThan,
    AtMost,
    LessThan,
}

impl Comparator {
    /// True when the target is met by `value`: strict comparators are strict.
    pub fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Comparator::AtLeast => value >= target,
            Comparator::MoreThan => value > target,
            Comparator::AtMost => value <= target,
            Comparator::LessThan => value < target,
        }
    }

    /// True when higher figures are better.
    pub fn rising(self) -> bool {
        matches!(self, Comparator::AtLeast | Comparator::MoreThan)
    }

    /// The word in the catalog and the `comparator` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::AtLeast => "at_least",
            Comparator::MoreThan => "more_than",
            Comparator::AtMost => "at_most",
            Comparator::LessThan => "less_than",
        }
    }
}

/// A figure and the date it describes: the start of a trajectory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub value: Percent,
    pub date: NaiveDate,
}

/// Where a plan's trajectory must end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    pub target: Percent,
    pub comparator: Comparator,
    /// The figure of the period holding this date is the plan's final one.
    pub date: NaiveDate,
}

/// One indicator in a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanIndicator {
    pub indicator: IndicatorId,
    /// Where the path starts; `None` takes the plan's territory's earliest figure instead.
    pub baseline: Option<Baseline>,
    /// `None`: monitored only, judged against no path.
    pub goal: Option<Goal>,
    /// Percentage points below the trajectory still counted as `at_risk`, not `behind`.
    pub tolerance: f64,
    /// Until when the plan judges this indicator: the goal's date, or the plan's.
    pub until: NaiveDate,
    /// Which way is good: the goal's comparator's, or for a monitored indicator the catalog's
    /// `direction` (default: increase). The progress measure needs it.
    pub direction: crate::progress::Direction,
}

impl PlanIndicator {
    /// The period whose figure closes the plan for this indicator: the one of the
    /// indicator's frequency that holds the target date (2025-12, 2025-Q4 or 2025 for
    /// 2025-12-31).
    pub fn final_period(&self, frequency: Frequency) -> Period {
        Period::containing(self.until, frequency)
    }
}

/// A plan: an id, a name, the unit whose figure it is about, and its indicators.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: PlanId,
    /// In English.
    pub name: String,
    /// In Vietnamese (the English name when the catalog gives none).
    pub name_vi: String,
    /// The unit the plan is about; the plan judges it and every unit under it on each date.
    pub scope: OrgUnitCode,
    /// The plan's own end, the default target date of its indicators.
    pub target_date: NaiveDate,
    pub indicators: BTreeMap<IndicatorId, PlanIndicator>,
}

impl Plan {
    /// The plan's entry for an indicator, if it holds it.
    pub fn indicator(&self, id: &IndicatorId) -> Option<&PlanIndicator> {
        self.indicators.get(id)
    }
}

/// Tolerance when a plan sets none, in percentage points.
pub const DEFAULT_TOLERANCE: f64 = 1.0;
