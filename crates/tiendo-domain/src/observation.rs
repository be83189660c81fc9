//! An observation that passed validation, and the figure it reports.

use chrono::{DateTime, FixedOffset, Utc};

use crate::figure::FigureKey;
use crate::ids::{DepartmentCode, EventId, IndicatorId, OrgUnitCode};
use crate::percent::Percent;
use crate::period::Period;
use crate::rollup::Effective;

/// A reported figure: always a percentage, and the counts behind it when the department gave them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    value: Percent,
    counts: Option<(u64, u64)>,
}

impl Figure {
    /// A figure given as counts: `numerator ≤ denominator`, `denominator > 0`.
    pub fn from_counts(numerator: u64, denominator: u64) -> Option<Figure> {
        Percent::of_counts(numerator, denominator).map(|value| Figure { value, counts: Some((numerator, denominator)) })
    }

    /// A figure given as a percentage alone.
    pub fn from_value(value: Percent) -> Figure {
        Figure { value, counts: None }
    }

    /// The percentage.
    pub fn value(&self) -> Percent {
        self.value
    }

    /// `(numerator, denominator)`, denominator > 0 and numerator ≤ denominator.
    pub fn counts(&self) -> Option<(u64, u64)> {
        self.counts
    }

    /// What it is worth in a roll-up: counts can be summed into a parent, a bare percentage cannot.
    pub fn effective(&self) -> Effective {
        match self.counts {
            Some((numerator, denominator)) => Effective::Counts { numerator, denominator },
            None => Effective::ValueOnly(self.value.get()),
        }
    }
}

/// Where an observation sits in publication order: the position of the department's message
/// in the ingest stream, and of the observation within that message. Orders revisions of the
/// same figure, whatever order the bus delivers them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub seq: u64,
    pub index: u32,
}

/// An observation that passed every check against the catalog. Built by
/// [`crate::validate::validate`], or rebuilt from a message validation sent with
/// [`Observation::checked`].
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    event_id: EventId,
    department: DepartmentCode,
    key: FigureKey,
    figure: Figure,
    reported_at: Option<DateTime<FixedOffset>>,
    received_at: DateTime<Utc>,
    position: Position,
    note: String,
}

/// The parts of an [`Observation`], each already a checked type.
#[derive(Debug, Clone)]
pub struct ObservationParts {
    pub event_id: EventId,
    pub department: DepartmentCode,
    pub indicator: IndicatorId,
    pub org_unit: OrgUnitCode,
    pub period: Period,
    pub figure: Figure,
    pub reported_at: Option<DateTime<FixedOffset>>,
    pub received_at: DateTime<Utc>,
    pub position: Position,
    pub note: String,
}

impl Observation {
    /// Rebuilds an observation from parts that are each valid on their own. The catalog rules
    /// (ownership, the tree, the period type) were checked by validation, which is the only
    /// producer of the messages these parts come from.
    pub fn checked(p: ObservationParts) -> Observation {
        Observation {
            event_id: p.event_id,
            department: p.department,
            key: FigureKey { indicator: p.indicator, org_unit: p.org_unit, period: p.period },
            figure: p.figure,
            reported_at: p.reported_at,
            received_at: p.received_at,
            position: p.position,
            note: p.note,
        }
    }

    pub fn event_id(&self) -> &EventId {
        &self.event_id
    }
    pub fn department(&self) -> &DepartmentCode {
        &self.department
    }
    /// The figure it reports: (indicator, org unit, period).
    pub fn key(&self) -> &FigureKey {
        &self.key
    }
    pub fn indicator(&self) -> &IndicatorId {
        &self.key.indicator
    }
    pub fn org_unit(&self) -> &OrgUnitCode {
        &self.key.org_unit
    }
    pub fn period(&self) -> Period {
        self.key.period
    }
    pub fn figure(&self) -> Figure {
        self.figure
    }
    pub fn reported_at(&self) -> Option<DateTime<FixedOffset>> {
        self.reported_at
    }
    pub fn received_at(&self) -> DateTime<Utc> {
        self.received_at
    }
    pub fn position(&self) -> Position {
        self.position
    }
    pub fn note(&self) -> &str {
        &self.note
    }
}
