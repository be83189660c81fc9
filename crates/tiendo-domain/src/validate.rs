//! Validation: what a department submitted becomes an [`Observation`] the rest of the
//! pipeline can trust, or a [`Refusal`] that tells the department what to fix.

use chrono::{DateTime, NaiveDate, Utc};

use crate::catalog::Catalog;
use crate::ids::{EventId, OrgUnitCode};
use crate::observation::{Figure, Observation, ObservationParts, Position};
use crate::percent::Percent;
use crate::period::Period;
use crate::reason::{Refusal, RejectReason};
use crate::tree::{OrgUnit, Tree};

/// Largest count accepted: beyond 2^53 a count cannot be carried exactly as a JSON number.
pub const MAX_COUNT: f64 = 9_007_199_254_740_992.0;

/// Longest accepted note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// One observation as the department wrote it, before any check: the fields of the wire
/// `Observation`, borrowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Submission<'a> {
    pub event_id: &'a str,
    pub indicator: &'a str,
    pub org_unit: &'a str,
    pub period: &'a str,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    /// RFC 3339, or empty.
    pub reported_at: &'a str,
    pub note: &'a str,
}

/// How a submission arrived, as ingest stamped it.
#[derive(Debug, Clone, Copy)]
pub struct Receipt<'a> {
    /// The last token of the subject it was published on.
    pub department: &'a str,
    pub received_at: DateTime<Utc>,
    pub position: Position,
}

/// Shortens what a sender wrote before quoting it back, so a rejection stays readable.
pub fn quote(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

fn refuse(reason: RejectReason, detail: impl Into<String>) -> Refusal {
    Refusal::new(reason, detail)
}

/// Checks one submission against the catalog, on `today` (for future periods).
pub fn validate(
    raw: &Submission,
    receipt: &Receipt,
    catalog: &Catalog,
    today: NaiveDate,
) -> Result<Observation, Refusal> {
    use RejectReason::*;
    let event_id = EventId::parse(raw.event_id).map_err(|e| refuse(InvalidField, e.to_string()))?;

    let department = catalog.find_department(receipt.department).ok_or_else(|| {
        refuse(Forbidden, format!("`{}` is not a department known to tiendo", quote(receipt.department)))
    })?;
    if raw.indicator.is_empty() {
        return Err(refuse(InvalidField, "indicator is required, e.g. \"smartphone_adults\""));
    }
    let indicator = catalog.find_indicator(raw.indicator).ok_or_else(|| {
        refuse(UnknownIndicator, format!("indicator `{}` is not in the catalog", quote(raw.indicator)))
    })?;
    if !indicator.is_owned_by(&department.code) {
        let owners: Vec<&str> = indicator.owners.iter().map(|o| o.as_str()).collect();
        return Err(refuse(
            Forbidden,
            format!(
                "indicator `{}` is reported by {}, not by `{}`",
                indicator.id,
                owners.join(" and "),
                department.code
            ),
        ));
    }
    if raw.org_unit.is_empty() {
        return Err(refuse(InvalidField, "org_unit is required, e.g. \"89\" for the province"));
    }
    let unknown =
        || refuse(UnknownOrgUnit, format!("org_unit `{}` is not in the organisation tree", quote(raw.org_unit)));
    let code = OrgUnitCode::parse(raw.org_unit).map_err(|_| unknown())?;
    let records = catalog.tree().records(&code);
    if records.is_empty() {
        return Err(unknown());
    }

    let period: Period =
        raw.period.parse().map_err(|e: crate::period::PeriodError| refuse(InvalidField, e.to_string()))?;
    if period.frequency() != indicator.reported {
        return Err(refuse(
            InvalidField,
            format!(
                "indicator `{}` is reported {}: period must be {}, got `{}`",
                indicator.id,
                indicator.reported.as_str(),
                indicator.reported.example(),
                period
            ),
        ));
    }
    if period.is_after(today) {
        return Err(refuse(FuturePeriod, format!("period {period} has not begun yet (today is {today})")));
    }
    if catalog.tree().unit_at(&code, period.end()).is_none() {
        return Err(refuse(InactiveOrgUnit, inactive(catalog.tree(), records, period)));
    }

    let figure = figure(raw.value, raw.numerator, raw.denominator)?;

    let reported_at = match raw.reported_at {
        "" => None,
        text => Some(DateTime::parse_from_rfc3339(text).map_err(|_| {
            refuse(
                InvalidField,
                format!("reported_at `{}` is not an RFC 3339 time such as 2024-07-05T09:00:00+07:00", quote(text)),
            )
        })?),
    };
    if raw.note.chars().count() > MAX_NOTE_CHARS {
        return Err(refuse(InvalidField, format!("note must be at most {MAX_NOTE_CHARS} characters")));
    }
    // PostgreSQL's text cannot hold it: accepted here, the observation would fail to store
    // and go to the dead letters instead of back to its department.
    if raw.note.contains('\0') {
        return Err(refuse(InvalidField, "note must not contain the NUL character (U+0000)"));
    }

    Ok(Observation::checked(ObservationParts {
        event_id,
        department: department.code.clone(),
        indicator: indicator.id.clone(),
        org_unit: code,
        period,
        figure,
        reported_at,
        received_at: receipt.received_at,
        position: receipt.position,
        note: raw.note.to_owned(),
    }))
}

/// Most successors a rejection names one by one.
const SUCCESSORS_NAMED: usize = 6;

/// Why a known unit cannot report `period`: when it was a unit, and for a retired one, the
/// units that took over.
fn inactive(tree: &Tree, records: &[OrgUnit], period: Period) -> String {
    let end = period.end();
    let spans: Vec<String> = records.iter().map(|r| format!("{} {}", r.name, r.valid)).collect();
    let mut detail = format!(
        "org_unit `{}` is not a unit on {end}, the end of period {period}: it is {}",
        records[0].code,
        spans.join("; ")
    );
    if let Some(retired) = records.iter().rfind(|r| r.valid.to.is_some_and(|to| to <= end)) {
        let successors = tree.successors(retired);
        if !successors.is_empty() {
            let named: Vec<String> =
                successors.iter().take(SUCCESSORS_NAMED).map(|u| format!("{} {}", u.code, u.name)).collect();
            detail += &format!("; report for the units that took over: {}", named.join(", "));
            if successors.len() > SUCCESSORS_NAMED {
                detail += &format!(" and {} more", successors.len() - SUCCESSORS_NAMED);
            }
        }
    }
    detail
}

fn count(name: &str, v: f64) -> Result<u64, Refusal> {
    use RejectReason::*;
    if !v.is_finite() {
        return Err(refuse(OutOfRange, format!("{name} must be a finite number, got {v}")));
    }
    if v < 0.0 {
        return Err(refuse(OutOfRange, format!("{name} must not be negative, got {v}")));
    }
    if v.fract() != 0.0 {
        return Err(refuse(InvalidField, format!("{name} is a count and must be a whole number, got {v}")));
    }
    if v > MAX_COUNT {
        return Err(refuse(OutOfRange, format!("{name} must be at most 2^53, got {v}")));
    }
    Ok(v as u64)
}

fn figure(value: Option<f64>, numerator: Option<f64>, denominator: Option<f64>) -> Result<Figure, Refusal> {
    use RejectReason::*;
    match (value, numerator, denominator) {
        (Some(v), None, None) => Percent::new(v)
            .map(Figure::from_value)
            .ok_or_else(|| refuse(OutOfRange, format!("value is a percentage and must be within 0..100, got {v}"))),
        (None, Some(n), Some(d)) => {
            let n = count("numerator", n)?;
            let d = count("denominator", d)?;
            if d == 0 {
                return Err(refuse(OutOfRange, "denominator must be greater than 0"));
            }
            if n > d {
                return Err(refuse(OutOfRange, format!("numerator {n} is above denominator {d}")));
            }
            Figure::from_counts(n, d).ok_or_else(|| refuse(OutOfRange, "counts out of range"))
        }
        (None, None, None) => {
            Err(refuse(InvalidField, "give either value (a percentage) or numerator and denominator (counts)"))
        }
        (Some(_), _, _) => Err(refuse(InvalidField, "give either value or numerator and denominator, not both")),
        (None, _, _) => Err(refuse(InvalidField, "numerator and denominator must be given together")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    /// The fields of a submission, owned, so a test can change one.
    #[derive(Clone)]
    struct Raw {
        event_id: String,
        indicator: String,
        org_unit: String,
        period: String,
        value: Option<f64>,
        numerator: Option<f64>,
        denominator: Option<f64>,
        reported_at: String,
        note: String,
    }

    fn raw() -> Raw {
        Raw {
            event_id: "e1".into(),
            indicator: "smartphone_adults".into(),
            org_unit: "883".into(),
            period: "2024-06".into(),
            value: None,
            numerator: Some(123_456.0),
            denominator: Some(170_000.0),
            reported_at: String::new(),
            note: String::new(),
        }
    }

    fn check(dept: &str, f: impl FnOnce(&mut Raw)) -> Result<Observation, Refusal> {
        let mut r = raw();
        f(&mut r);
        let submission = Submission {
            event_id: &r.event_id,
            indicator: &r.indicator,
            org_unit: &r.org_unit,
            period: &r.period,
            value: r.value,
            numerator: r.numerator,
            denominator: r.denominator,
            reported_at: &r.reported_at,
            note: &r.note,
        };
        let receipt = Receipt { department: dept, received_at: Utc::now(), position: Position::default() };
        validate(&submission, &receipt, &Catalog::built_in(), today())
    }

    fn reason(dept: &str, f: impl FnOnce(&mut Raw)) -> RejectReason {
        check(dept, f).unwrap_err().reason
    }

    #[test]
    fn a_good_observation_computes_its_percentage_from_counts() {
        let o = check("dic", |_| {}).unwrap();
        assert!((o.figure().value().get() - 72.621_176_470_588_24).abs() < 1e-9);
        assert_eq!(o.figure().counts(), Some((123_456, 170_000)));
        assert_eq!(o.period().to_string(), "2024-06");
    }

    #[test]
    fn each_reason_is_given_for_its_own_fault() {
        use RejectReason::*;
        assert_eq!(reason("dic", |r| r.event_id.clear()), InvalidField);
        assert_eq!(reason("dic", |r| r.event_id = "x".repeat(129)), InvalidField);
        assert_eq!(reason("dic", |r| r.indicator = "smartphones".into()), UnknownIndicator);
        assert_eq!(reason("doh", |_| {}), Forbidden);
        assert_eq!(reason("nobody", |_| {}), Forbidden);
        assert_eq!(reason("dic", |r| r.org_unit = "999".into()), UnknownOrgUnit);
        assert_eq!(reason("dic", |r| r.period = "2025-09".into()), InactiveOrgUnit);
        assert_eq!(reason("dic", |r| r.period = "2024-13".into()), InvalidField);
        assert_eq!(reason("dic", |r| r.period = "2024-Q2".into()), InvalidField);
        assert_eq!(reason("dic", |r| r.period = "2027-01".into()), FuturePeriod);
        assert_eq!(reason("dic", |r| r.numerator = Some(-1.0)), OutOfRange);
        assert_eq!(reason("dic", |r| r.numerator = Some(200_000.0)), OutOfRange);
        assert_eq!(reason("dic", |r| r.denominator = Some(0.0)), OutOfRange);
        assert_eq!(reason("dic", |r| r.numerator = Some(f64::NAN)), OutOfRange);
        assert_eq!(reason("dic", |r| r.numerator = Some(1.5)), InvalidField);
        assert_eq!(reason("dic", |r| r.denominator = Some(1e300)), OutOfRange);
        assert_eq!(reason("dic", |r| r.denominator = None), InvalidField);
        assert_eq!(reason("dic", |r| r.value = Some(50.0)), InvalidField);
        let value_only = |v: f64| {
            move |r: &mut Raw| {
                r.numerator = None;
                r.denominator = None;
                r.value = Some(v)
            }
        };
        assert_eq!(reason("dic", value_only(100.5)), OutOfRange);
        assert_eq!(reason("dic", value_only(-0.1)), OutOfRange);
        assert_eq!(reason("dic", value_only(f64::INFINITY)), OutOfRange);
        assert!(check("dic", value_only(100.0)).is_ok());
        assert_eq!(reason("dic", |r| r.reported_at = "yesterday".into()), InvalidField);
        assert_eq!(reason("dic", |r| r.note = "số liệu\0tháng 6".into()), InvalidField);
        assert!(check("dic", |r| r.note = "Sở TT&TT:\n\t\"đã rà soát\" 😀".into()).is_ok());
    }

    #[test]
    fn details_name_what_to_fix() {
        let r = check("doh", |_| {}).unwrap_err();
        assert_eq!(r.detail, "indicator `smartphone_adults` is reported by dic, not by `doh`");
        let r = check("dic", |r| r.period = "2024".into()).unwrap_err();
        assert!(r.detail.contains("reported monthly: period must be YYYY-MM"), "{}", r.detail);
    }

    #[test]
    fn a_unit_reports_only_while_it_exists_and_a_retired_one_names_its_successors() {
        let r = check("dic", |r| r.period = "2025-09".into()).unwrap_err();
        assert_eq!(r.reason, RejectReason::InactiveOrgUnit);
        assert!(r.detail.contains("`883` is not a unit on 2025-09-30"), "{}", r.detail);
        assert!(r.detail.contains("Long Xuyên until 2025-06-30"), "{}", r.detail);
        assert!(r.detail.contains("30292 Phường Bình Đức"), "{}", r.detail);
        // A code kept from old Kiên Giang exists only from the reform.
        let r = check("dic", |r| (r.org_unit, r.period) = ("31006".into(), "2025-03".into())).unwrap_err();
        assert_eq!(r.reason, RejectReason::InactiveOrgUnit);
        assert!(r.detail.contains("from 2025-07-01"), "{}", r.detail);
        assert!(check("dic", |r| (r.org_unit, r.period) = ("31006".into(), "2025-09".into())).is_ok());
        assert!(check("dic", |r| (r.org_unit, r.period) = ("30292".into(), "2025-03".into())).is_ok());
        assert!(check("dic", |r| (r.org_unit, r.period) = ("30292".into(), "2025-09".into())).is_ok());
    }

    #[test]
    fn the_current_period_is_accepted_but_not_the_next() {
        // A unit of the new province: the district of `raw()` is retired by then.
        assert!(check("dic", |r| (r.org_unit, r.period) = ("30292".into(), "2026-11".into())).is_ok());
        let next = |r: &mut Raw| (r.org_unit, r.period) = ("30292".into(), "2026-12".into());
        assert_eq!(reason("dic", next), RejectReason::FuturePeriod);
    }
}
