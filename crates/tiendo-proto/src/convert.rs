//! Conversions between wire messages and domain types. Outgoing conversions cannot fail;
//! incoming ones check every field once and name the first that is wrong, so that services
//! after validation work on checked types only.

use chrono::{DateTime, Utc};
use tiendo_domain::alert::Transition;
use tiendo_domain::figure::{FigureVersion, UnitFigure};
use tiendo_domain::observation::{Figure, ObservationParts};
use tiendo_domain::reason::Refusal;
use tiendo_domain::reporting::Overdue;
use tiendo_domain::rollup::Effective;
use tiendo_domain::validate::Submission;
use tiendo_domain::{DepartmentCode, EventId, FigureKey, IndicatorId, Observation, OrgUnitCode, Percent, Position};

use crate::v1;

/// A message that does not hold what its type promises: it was not made by tiendo, or by a
/// version that disagrees with this one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

fn wrong(what: impl std::fmt::Display) -> WireError {
    WireError(what.to_string())
}

/// A time as the wire carries it: RFC 3339.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

/// A time the wire carries (RFC 3339), as UTC; `field` names it in the error.
pub fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, WireError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| wrong(format!("{field} `{s}`: {e}")))
}

fn key(indicator: &str, org_unit: &str, period: &str) -> Result<FigureKey, WireError> {
    Ok(FigureKey {
        indicator: IndicatorId::parse(indicator).map_err(wrong)?,
        org_unit: OrgUnitCode::parse(org_unit).map_err(wrong)?,
        period: period.parse().map_err(wrong)?,
    })
}

/// What a department sent, borrowed as a [`Submission`] for validation.
pub fn submission(o: &v1::Observation) -> Submission<'_> {
    Submission {
        event_id: &o.event_id,
        indicator: &o.indicator,
        org_unit: &o.org_unit,
        period: &o.period,
        value: o.value,
        numerator: o.numerator,
        denominator: o.denominator,
        reported_at: &o.reported_at,
        note: &o.note,
    }
}

/// The position ingest gave a received observation.
pub fn position(r: &v1::ReceivedObservation) -> Position {
    Position { seq: r.source_seq, index: r.source_index }
}

/// The rejection a department receives.
pub fn rejection(refusal: &Refusal, event_id: &str, department: &str, at: DateTime<Utc>) -> v1::Rejection {
    v1::Rejection {
        event_id: event_id.to_owned(),
        department: department.to_owned(),
        reason: refusal.reason.as_str().to_owned(),
        detail: refusal.detail.clone(),
        at: timestamp(at),
    }
}

impl From<&Observation> for v1::ValidObservation {
    fn from(o: &Observation) -> Self {
        let figure = o.figure();
        v1::ValidObservation {
            event_id: o.event_id().to_string(),
            department: o.department().to_string(),
            indicator: o.indicator().to_string(),
            org_unit: o.org_unit().to_string(),
            period: o.period().to_string(),
            value: figure.value().get(),
            numerator: figure.counts().map(|c| c.0),
            denominator: figure.counts().map(|c| c.1),
            reported_at: o.reported_at().map(|t| t.to_rfc3339()).unwrap_or_default(),
            received_at: timestamp(o.received_at()),
            source_seq: o.position().seq,
            source_index: o.position().index,
            note: o.note().to_owned(),
        }
    }
}

impl TryFrom<&v1::ValidObservation> for Observation {
    type Error = WireError;

    fn try_from(v: &v1::ValidObservation) -> Result<Self, WireError> {
        let key = key(&v.indicator, &v.org_unit, &v.period)?;
        let figure = match (v.numerator, v.denominator) {
            (Some(n), Some(d)) => {
                Figure::from_counts(n, d).ok_or_else(|| wrong(format!("counts {n}/{d} are not a share")))?
            }
            _ => Figure::from_value(
                Percent::new(v.value).ok_or_else(|| wrong(format!("value {} is not a percentage", v.value)))?,
            ),
        };
        let reported_at = match v.reported_at.as_str() {
            "" => None,
            s => Some(DateTime::parse_from_rfc3339(s).map_err(|e| wrong(format!("reported_at `{s}`: {e}")))?),
        };
        Ok(Observation::checked(ObservationParts {
            event_id: EventId::parse(&v.event_id).map_err(wrong)?,
            department: DepartmentCode::parse(&v.department).map_err(wrong)?,
            indicator: key.indicator,
            org_unit: key.org_unit,
            period: key.period,
            figure,
            reported_at,
            received_at: parse_time("received_at", &v.received_at)?,
            position: Position { seq: v.source_seq, index: v.source_index },
            note: v.note.clone(),
        }))
    }
}

/// A unit's changed figure, announced with the number of children the unit has in the tree.
pub fn aggregate(f: &UnitFigure, children_total: u32) -> v1::Aggregate {
    let effective = f.effective();
    let counts = match effective {
        Effective::Counts { numerator, denominator } => Some((numerator, denominator)),
        _ => None,
    };
    v1::Aggregate {
        indicator: f.key.indicator.to_string(),
        org_unit: f.key.org_unit.to_string(),
        period: f.key.period.to_string(),
        value: effective.value(),
        numerator: counts.map(|c| c.0),
        denominator: counts.map(|c| c.1),
        source: f.source().as_str().to_owned(),
        children_total,
        children_covered: f.sums.covered as u32,
        children_value_only: f.sums.value_only as u32,
        version: f.version,
        period_end: f.key.period.end().to_string(),
        at: f.updated_at.map(timestamp).unwrap_or_default(),
    }
}

impl TryFrom<&v1::Aggregate> for FigureVersion {
    type Error = WireError;

    fn try_from(a: &v1::Aggregate) -> Result<Self, WireError> {
        let value = a
            .value
            .map(|v| Percent::new(v).ok_or_else(|| wrong(format!("value {v} is not a percentage"))))
            .transpose()?;
        Ok(FigureVersion { key: key(&a.indicator, &a.org_unit, &a.period)?, value, version: a.version })
    }
}

impl From<&Transition> for v1::Alert {
    fn from(t: &Transition) -> Self {
        v1::Alert {
            alert_id: t.alert_id.clone(),
            state: t.state.as_str().to_owned(),
            indicator: t.key.indicator.to_string(),
            org_unit: t.key.org_unit.to_string(),
            period: t.period.to_string(),
            value: t.judgement.value.get(),
            // Alerts fire on `behind` and `missed`, which only a plan with a target gives.
            expected: t.judgement.expected.unwrap_or_default(),
            gap: t.judgement.gap.unwrap_or_default(),
            target: t.target.map(Percent::get).unwrap_or_default(),
            status: t.judgement.status.as_str().to_owned(),
            at: timestamp(t.at),
            departments: t.departments.iter().map(|d| d.to_string()).collect(),
            plan: t.key.plan.to_string(),
            coverage: t.coverage,
            kind: t.kind.as_str().to_owned(),
            progress: t.outlook.progress.as_str().to_owned(),
            score: t.outlook.score,
            projected: t.outlook.projected,
            expected_attainment: t.outlook.expected_attainment.map(|d| d.to_string()).unwrap_or_default(),
            outlook: t.outlook.weather.as_str().to_owned(),
        }
    }
}

/// The notice a department gets when a period's reports are overdue.
pub fn overdue(o: &Overdue, at: DateTime<Utc>) -> v1::Overdue {
    v1::Overdue {
        department: o.department.to_string(),
        indicator: o.indicator.to_string(),
        period: o.period.to_string(),
        due: o.due.to_string(),
        expected: o.expected as u32,
        received: o.received as u32,
        missing: o
            .missing
            .iter()
            .map(|(code, name)| v1::MissingUnit { code: code.to_string(), name: name.clone() })
            .collect(),
        at: timestamp(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> v1::ValidObservation {
        v1::ValidObservation {
            event_id: "e1".into(),
            department: "dic".into(),
            indicator: "smartphone_adults".into(),
            org_unit: "883".into(),
            period: "2024-06".into(),
            value: 50.0,
            numerator: Some(1),
            denominator: Some(2),
            received_at: "2026-11-27T22:47:16.123456789+00:00".into(),
            source_seq: 7,
            source_index: 3,
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_observation_survives_the_round_trip_through_the_wire() {
        let o = Observation::try_from(&valid()).unwrap();
        assert_eq!(o.position(), Position { seq: 7, index: 3 });
        assert_eq!(v1::ValidObservation::from(&o), valid());
    }

    #[test]
    fn a_message_validation_could_not_have_sent_names_its_bad_field() {
        let bad_unit = v1::ValidObservation { org_unit: "NOT A CODE".into(), ..valid() };
        assert!(Observation::try_from(&bad_unit).unwrap_err().to_string().contains("org_unit"));
        let bad_counts = v1::ValidObservation { numerator: Some(3), ..valid() };
        assert!(Observation::try_from(&bad_counts).is_err());
        let bad_time = v1::ValidObservation { received_at: "yesterday".into(), ..valid() };
        assert!(Observation::try_from(&bad_time).unwrap_err().to_string().contains("received_at"));
    }

    #[test]
    fn an_alert_leaves_out_what_the_progress_methods_could_not_say() {
        let none = v1::Alert { kind: "verdict".into(), outlook: "not_available".into(), ..Default::default() };
        let json = serde_json::to_value(&none).unwrap();
        for field in ["score", "projected", "expected_attainment"] {
            assert!(json.get(field).is_none(), "{field} in {json}");
        }
        let some =
            v1::Alert { score: Some(1.5), projected: Some(76.9), expected_attainment: "2026-12-05".into(), ..none };
        let json = serde_json::to_value(&some).unwrap();
        assert_eq!(
            (&json["score"], &json["projected"], &json["expected_attainment"]),
            (&serde_json::json!(1.5), &serde_json::json!(76.9), &serde_json::json!("2026-12-05"))
        );
        // And it reads back the same, with or without them.
        assert_eq!(serde_json::from_value::<v1::Alert>(json).unwrap(), some);
    }
}
