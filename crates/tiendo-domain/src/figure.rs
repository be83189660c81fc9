//! Figures: what aggregation keeps for each (indicator, org unit, period), and what alerting
//! is told about each change.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::ids::{DepartmentCode, EventId, IndicatorId, OrgUnitCode};
use crate::observation::{Figure, Position};
use crate::percent::Percent;
use crate::period::Period;
use crate::rollup::{effective, Effective, Sums};

/// One figure: an indicator, for an org unit, over a period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FigureKey {
    pub indicator: IndicatorId,
    pub org_unit: OrgUnitCode,
    pub period: Period,
}

impl FigureKey {
    /// The same indicator and period for another unit (a parent, when rolling up).
    pub fn for_unit(&self, org_unit: OrgUnitCode) -> FigureKey {
        FigureKey { indicator: self.indicator.clone(), org_unit, period: self.period }
    }

    /// The (indicator, org unit) this figure is one period of.
    pub fn unit_key(&self) -> UnitKey {
        UnitKey { indicator: self.indicator.clone(), org_unit: self.org_unit.clone() }
    }
}

impl fmt::Display for FigureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {} ({})", self.indicator, self.org_unit, self.period)
    }
}

/// An (indicator, org unit): what alerting judges, on its latest period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitKey {
    pub indicator: IndicatorId,
    pub org_unit: OrgUnitCode,
}

/// The observation a unit's direct figure comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Direct {
    pub figure: Figure,
    pub event_id: EventId,
    pub department: DepartmentCode,
    pub position: Position,
}

/// Where a unit's figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The unit's own observation.
    Direct,
    /// Summed from its children.
    Rollup,
}

impl Source {
    /// The word on the wire (`Aggregate.source`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Direct => "direct",
            Source::Rollup => "rollup",
        }
    }
}

/// A unit's figure as aggregation keeps it: its latest direct observation, if any, and the
/// running sums of what its children contribute.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitFigure {
    pub key: FigureKey,
    pub direct: Option<Direct>,
    pub sums: Sums,
    /// Increases by one with every change.
    pub version: u64,
    /// When it last changed; `None` for a figure never stored.
    pub updated_at: Option<DateTime<Utc>>,
}

impl UnitFigure {
    /// A figure nothing is known of yet.
    pub fn empty(key: FigureKey) -> UnitFigure {
        UnitFigure { key, direct: None, sums: Sums::default(), version: 0, updated_at: None }
    }

    /// What the figure is: the direct observation when there is one, else the roll-up.
    pub fn effective(&self) -> Effective {
        effective(self.direct.as_ref().map(|d| d.figure.effective()), self.sums)
    }

    pub fn source(&self) -> Source {
        if self.direct.is_some() {
            Source::Direct
        } else {
            Source::Rollup
        }
    }

    /// Records a change made at `at`: the next version.
    pub fn touch(&mut self, at: DateTime<Utc>) {
        self.version += 1;
        self.updated_at = Some(at);
    }
}

/// A version of a figure, as aggregation announced it: what alerting stores and judges.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureVersion {
    pub key: FigureKey,
    /// Absent when nothing is known for the unit and period any more.
    pub value: Option<Percent>,
    pub version: u64,
}

impl From<&UnitFigure> for FigureVersion {
    /// The version of a unit's figure that aggregation announces.
    fn from(f: &UnitFigure) -> Self {
        FigureVersion { key: f.key.clone(), value: f.effective().value().and_then(Percent::new), version: f.version }
    }
}
