//! What alerting judges and announces: a plan's view of one unit's indicator, the alerts
//! it can raise, and how they are named. A wire contract (`Alert.state`, `Alert.alert_id`,
//! `tiendo status`).

use std::fmt;

use chrono::{DateTime, Utc};

use crate::ids::{DepartmentCode, IndicatorId, OrgUnitCode, PlanId};
use crate::percent::Percent;
use crate::period::Period;
use crate::progress::Outlook;
use crate::trajectory::{Judgement, Status};

/// A plan's view of one unit's indicator: what alerting judges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanKey {
    pub plan: PlanId,
    pub indicator: IndicatorId,
    pub org_unit: OrgUnitCode,
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    Firing,
    /// No longer true; the same alert id as the firing message.
    Resolved,
}

impl AlertState {
    /// The word on the wire and in the `alerts` table.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// The state a stored or received word names.
    pub fn parse(s: &str) -> Option<AlertState> {
        [AlertState::Firing, AlertState::Resolved].into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert is about. Each (plan, indicator, unit) has one alert of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Behind the straight path from baseline to target (status `behind`).
    Trajectory,
    /// The trend projects the target missed by more than the tolerance (the early warning),
    /// whatever the status.
    Forecast,
    /// The plan's final period missed its target (status `missed`).
    Verdict,
}

impl AlertKind {
    pub const ALL: [AlertKind; 3] = [AlertKind::Trajectory, AlertKind::Forecast, AlertKind::Verdict];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Trajectory => "trajectory",
            AlertKind::Forecast => "forecast",
            AlertKind::Verdict => "verdict",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// True when a figure judged so should have this alert firing.
    pub fn fires_on(self, status: Status, outlook: &Outlook) -> bool {
        match self {
            AlertKind::Trajectory => status == Status::Behind,
            AlertKind::Forecast => outlook.warning,
            AlertKind::Verdict => status == Status::Missed,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one id of a key's alert of `kind`, the same every time it fires:
/// `<plan>:<indicator>:<org unit>:<kind>`.
pub fn alert_id(key: &PlanKey, kind: AlertKind) -> String {
    format!("{}:{}:{}:{kind}", key.plan, key.indicator, key.org_unit)
}

/// An alert firing or resolving: what alerting announces and records.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub alert_id: String,
    pub kind: AlertKind,
    pub state: AlertState,
    /// How many times this alert has fired, this time included: tells one firing (and its
    /// resolution) from the next in message ids.
    pub episode: u64,
    pub key: PlanKey,
    /// The period of the figure judged.
    pub period: Period,
    pub judgement: Judgement,
    pub target: Option<Percent>,
    /// The indicator's owners, who hear about it.
    pub departments: Vec<DepartmentCode>,
    /// Received ÷ expected of the reports the figure depends on.
    pub coverage: f64,
    /// The progress methods' view of the same figures.
    pub outlook: Outlook,
    pub at: DateTime<Utc>,
}

/// How a plan's (indicator, unit) stood when last judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// The period of the figure judged: the latest with a value within the plan, or its final one.
    pub period: Period,
    pub judgement: Judgement,
    pub target: Option<Percent>,
    /// Received ÷ expected of the reports the figure depends on, when it was worked out (before
    /// the due date, and for every alert).
    pub coverage: Option<f64>,
    /// The progress methods' view: category, score, trend forecast.
    pub outlook: Outlook,
    pub judged_at: DateTime<Utc>,
}
