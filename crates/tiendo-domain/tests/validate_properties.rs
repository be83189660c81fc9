//! Property tests of validation: a good observation with exactly one fault, of a random kind
//! and a random value, is refused with that fault's reason; nothing panics.

use chrono::{NaiveDate, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tiendo_domain::validate::{validate, Receipt, Submission};
use tiendo_domain::{Catalog, Position, RejectReason};

const CASES: u32 = 4_000;

#[derive(Debug, Clone)]
enum Fault {
    EventId(String),
    Indicator(String),
    Department(String),
    OrgUnit(String),
    Period(String),
    FuturePeriod(i32, u8),
    Value(f64),
    NegativeCount(f64),
    NumeratorAboveDenominator(u64, u64),
    FractionalCount(f64),
}

impl Fault {
    fn reason(&self) -> RejectReason {
        use RejectReason::*;
        match self {
            Fault::EventId(_) | Fault::Period(_) | Fault::FractionalCount(_) => InvalidField,
            Fault::Indicator(_) => UnknownIndicator,
            Fault::Department(_) => Forbidden,
            Fault::OrgUnit(_) => UnknownOrgUnit,
            Fault::FuturePeriod(..) => FuturePeriod,
            Fault::Value(_) | Fault::NegativeCount(_) | Fault::NumeratorAboveDenominator(..) => OutOfRange,
        }
    }
}

fn fault() -> impl Strategy<Value = Fault> {
    let catalog = Catalog::built_in();
    let known_indicators: Vec<String> = catalog.indicators().map(|i| i.id.to_string()).collect();
    let known_units: Vec<String> = catalog.tree().all().map(|u| u.code.to_string()).collect();
    prop_oneof![
        prop_oneof![Just(String::new()), "[a-z]{129,300}", "[a-z]{0,5}[\u{0}-\u{1f}][a-z]{0,5}"]
            .prop_map(Fault::EventId),
        any::<String>()
            .prop_filter("not a catalog id", move |s| !s.is_empty() && !known_indicators.contains(s))
            .prop_map(Fault::Indicator),
        prop_oneof![
            Just("doh".to_owned()),
            Just("gso".to_owned()),
            Just("tax".to_owned()),
            "[a-z]{1,10}".prop_filter("not dic", |s| s != "dic")
        ]
        .prop_map(Fault::Department),
        any::<String>()
            .prop_filter("not a unit", move |s| !s.is_empty() && !known_units.contains(s))
            .prop_map(Fault::OrgUnit),
        any::<String>().prop_filter("not a YYYY-MM period", |s| !is_month(s)).prop_map(Fault::Period),
        (2027..=2100i32, 1..=12u8).prop_map(|(y, m)| Fault::FuturePeriod(y, m)),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (100.000_001..1e308f64),
            (-1e308..-0.000_001f64)
        ]
        .prop_map(Fault::Value),
        (1.0..1e15f64).prop_map(|x| Fault::NegativeCount(-x.floor().max(1.0))),
        (1..1_000_000_000u64, 1..1_000_000u64).prop_map(|(d, extra)| Fault::NumeratorAboveDenominator(d + extra, d)),
        (0..1_000_000u64, 0.01..0.99f64).prop_map(|(n, f)| Fault::FractionalCount(n as f64 + f)),
    ]
}

fn is_month(s: &str) -> bool {
    s.len() == 7 && s.parse::<tiendo_domain::Period>().is_ok_and(|p| p.frequency() == tiendo_domain::Frequency::Monthly)
}

/// A submission's fields, owned, so a fault can replace one.
#[derive(Debug, Clone)]
struct Raw {
    event_id: String,
    indicator: String,
    org_unit: String,
    period: String,
    value: Option<f64>,
    numerator: Option<f64>,
    denominator: Option<f64>,
}

fn with_fault(fault: &Fault) -> (Raw, String) {
    let mut o = Raw {
        event_id: "e1".into(),
        indicator: "smartphone_adults".into(),
        org_unit: "883".into(),
        period: "2024-06".into(),
        value: None,
        numerator: Some(10.0),
        denominator: Some(20.0),
    };
    let mut department = "dic".to_owned();
    match fault.clone() {
        Fault::EventId(s) => o.event_id = s,
        Fault::Indicator(s) => o.indicator = s,
        Fault::Department(s) => department = s,
        Fault::OrgUnit(s) => o.org_unit = s,
        Fault::Period(s) => o.period = s,
        Fault::FuturePeriod(y, m) => o.period = format!("{y:04}-{m:02}"),
        Fault::Value(v) => (o.value, o.numerator, o.denominator) = (Some(v), None, None),
        Fault::NegativeCount(n) => o.numerator = Some(n),
        Fault::NumeratorAboveDenominator(n, d) => (o.numerator, o.denominator) = (Some(n as f64), Some(d as f64)),
        Fault::FractionalCount(n) => o.numerator = Some(n),
    }
    (o, department)
}

fn check(
    raw: &Raw,
    department: &str,
    catalog: &Catalog,
    today: NaiveDate,
) -> Result<(), tiendo_domain::reason::Refusal> {
    let submission = Submission {
        event_id: &raw.event_id,
        indicator: &raw.indicator,
        org_unit: &raw.org_unit,
        period: &raw.period,
        value: raw.value,
        numerator: raw.numerator,
        denominator: raw.denominator,
        ..Default::default()
    };
    let receipt = Receipt { department, received_at: Utc::now(), position: Position::default() };
    validate(&submission, &receipt, catalog, today).map(|_| ())
}

#[test]
fn one_fault_of_any_kind_is_refused_with_its_own_reason() {
    let catalog = Catalog::built_in();
    let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let ran = std::sync::atomic::AtomicU32::new(0);
    let reasons = std::sync::Mutex::new(std::collections::BTreeSet::new());
    runner
        .run(&fault(), |f| {
            ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            reasons.lock().unwrap().insert(f.reason().as_str());
            let (raw, department) = with_fault(&f);
            let refusal = check(&raw, &department, &catalog, today).expect_err("a faulty observation is refused");
            prop_assert_eq!(refusal.reason, f.reason(), "{:?}: {}", f, refusal.detail);
            prop_assert!(!refusal.detail.is_empty());
            prop_assert!(refusal.detail.chars().count() < 400, "details stay readable: {}", refusal.detail);
            Ok(())
        })
        .unwrap();
    let ran = ran.into_inner();
    println!("validation property: {ran} single-fault cases ran");
    assert_eq!(ran, CASES, "every case ran");
    // The faults generated reach every reason validation can give for one faulty field.
    let reasons = reasons.into_inner().unwrap();
    let expected =
        ["forbidden", "future_period", "invalid_field", "out_of_range", "unknown_indicator", "unknown_org_unit"];
    assert_eq!(reasons.into_iter().collect::<Vec<_>>(), expected);
}
