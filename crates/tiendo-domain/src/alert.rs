//! Alerts: the states an alert goes through, and how alerts are named. A wire contract
//! (`Alert.state`, `Alert.alert_id`, `tiendo status`).

use std::fmt;

use crate::figure::UnitKey;

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// The (indicator, org unit) fell behind its trajectory.
    Firing,
    /// It is no longer behind; the same alert id as the firing message.
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

/// The id of the `n`th alert (from 1) a key has fired: `<indicator>:<org unit>:<n>`.
pub fn alert_id(key: &UnitKey, n: u64) -> String {
    format!("{}:{}:{n}", key.indicator, key.org_unit)
}

/// An alert firing or resolving: what alerting announces and records.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub alert_id: String,
    pub state: AlertState,
    pub key: UnitKey,
    /// The period of the figure judged.
    pub period: crate::period::Period,
    pub judgement: crate::trajectory::Judgement,
    pub target: crate::percent::Percent,
    /// The indicator's owners, who hear about it.
    pub departments: Vec<crate::ids::DepartmentCode>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// How an (indicator, org unit) stood when last judged, with its alert bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// The period of the figure judged: the latest with a value.
    pub period: crate::period::Period,
    pub judgement: crate::trajectory::Judgement,
    pub target: crate::percent::Percent,
    /// The alert firing now for this key, if any.
    pub open_alert: Option<String>,
    /// How many alerts this key has fired: numbers the next alert id.
    pub alerts_fired: u64,
    pub judged_at: chrono::DateTime<chrono::Utc>,
}
