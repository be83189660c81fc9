//! Property tests of what ingest and validation make of anything a department could send:
//! random bytes, random JSON of any shape and depth, huge and odd numbers, odd unicode, empty
//! and 10,000-element arrays. Nothing panics, every item comes out as an observation or a
//! refusal, and whatever is not decodable is refused `malformed`.

use chrono::{NaiveDate, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use tiendo_bus::ContentType;
use tiendo_domain::validate::{validate, Receipt};
use tiendo_domain::{Catalog, Position, RejectReason};
use tiendo_ingest::decode::{decode, Item};
use tiendo_proto::convert::submission;

const CASES: u32 = 3_000;

fn run<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>) -> u32
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let ran = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&strategy, |v| {
            ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            check(v)
        })
        .unwrap();
    let ran = ran.into_inner();
    println!("{name}: {ran} cases ran");
    ran
}

/// Decodes, then validates each decoded observation, as the pipeline does.
fn through_pipeline(payload: &[u8], ct: ContentType) -> Vec<Result<(), RejectReason>> {
    let catalog = Catalog::built_in();
    let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    decode(payload, ct)
        .into_iter()
        .map(|item| match item {
            Item::Observation(o) => {
                let receipt = Receipt { department: "dic", received_at: Utc::now(), position: Position::default() };
                validate(&submission(&o), &receipt, &catalog, today).map(|_| ()).map_err(|r| r.reason)
            }
            Item::Refused { refusal, .. } => Err(refusal.reason),
        })
        .collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event_id".to_owned()),
                    Just("indicator".to_owned()),
                    Just("org_unit".to_owned()),
                    Just("period".to_owned()),
                    Just("value".to_owned()),
                    Just("numerator".to_owned()),
                    Just("denominator".to_owned()),
                    any::<String>()
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn random_bytes_never_panic_and_are_refused_malformed() {
    let ran = run("random bytes", prop::collection::vec(any::<u8>(), 0..2048), |bytes| {
        for ct in [ContentType::Json, ContentType::Protobuf] {
            let out = through_pipeline(&bytes, ct);
            prop_assert!(!out.is_empty(), "every message gets at least one answer");
            if ct == ContentType::Json && serde_json::from_slice::<Value>(&bytes).is_err() {
                prop_assert_eq!(out, vec![Err(RejectReason::Malformed)]);
            }
        }
        Ok(())
    });
    assert_eq!(ran, CASES, "every case ran");
}

#[test]
fn any_json_gets_one_answer_per_row() {
    let batches = std::sync::atomic::AtomicU32::new(0);
    let ran = run("random JSON", json_value(), |v| {
        let rows = match &v {
            Value::Array(a) if !a.is_empty() => a.len(),
            _ => 1,
        };
        if rows > 1 {
            batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let out = through_pipeline(v.to_string().as_bytes(), ContentType::Json);
        prop_assert_eq!(out.len(), rows);
        for (i, r) in out.iter().enumerate() {
            let row = if let Value::Array(a) = &v { a.get(i) } else { Some(&v) };
            let is_object = matches!(row, Some(Value::Object(_)));
            if !is_object {
                prop_assert_eq!(r, &Err(RejectReason::Malformed));
            }
        }
        Ok(())
    });
    assert_eq!(ran, CASES, "every case ran");
    // Batches of several rows, where one bad row must not take its neighbours down, were tried.
    let batches = batches.into_inner();
    assert!(batches * 10 >= CASES, "only {batches} of {CASES} cases were batches of several rows");
}

#[test]
fn edge_shapes_get_the_right_reason() {
    let good = json!({"event_id": "a", "indicator": "smartphone_adults", "org_unit": "883", "period": "2024-06",
                      "numerator": 1, "denominator": 2});
    let answers = |p: &str| through_pipeline(p.as_bytes(), ContentType::Json);
    // Deep nesting, beyond the decoder's recursion limit.
    assert_eq!(answers(&format!("{}{}", "[".repeat(5_000), "]".repeat(5_000))), vec![Err(RejectReason::Malformed)]);
    // Numbers beyond f64, and beyond 2^53.
    assert_eq!(
        answers(&good.to_string().replace("\"numerator\":1", "\"numerator\":1e400")),
        vec![Err(RejectReason::Malformed)]
    );
    let mut huge = good.clone();
    huge["denominator"] = json!(1e300);
    assert_eq!(answers(&huge.to_string()), vec![Err(RejectReason::OutOfRange)]);
    // NaN cannot be written in JSON, but protobuf carries it.
    let nan = tiendo_proto::v1::ObservationBatch {
        observations: vec![tiendo_proto::v1::Observation {
            event_id: "n".into(),
            indicator: "smartphone_adults".into(),
            org_unit: "883".into(),
            period: "2024-06".into(),
            value: Some(f64::NAN),
            ..Default::default()
        }],
    };
    use prost::Message as _;
    assert_eq!(through_pipeline(&nan.encode_to_vec(), ContentType::Protobuf), vec![Err(RejectReason::OutOfRange)]);
    // Odd unicode where ids go.
    let mut odd = good.clone();
    odd["indicator"] = json!("smartphone_adults\u{200b}");
    assert_eq!(answers(&odd.to_string()), vec![Err(RejectReason::UnknownIndicator)]);
    odd["indicator"] = json!("smartphone_adults");
    odd["org_unit"] = json!("８８３");
    assert_eq!(answers(&odd.to_string()), vec![Err(RejectReason::UnknownOrgUnit)]);
    // Empty, and 10,000 rows.
    assert_eq!(answers("[]"), vec![Err(RejectReason::Malformed)]);
    let rows: Vec<Value> = (0..10_000)
        .map(|i| {
            let mut r = good.clone();
            r["event_id"] = json!(format!("e{i}"));
            r
        })
        .collect();
    let out = answers(&Value::Array(rows).to_string());
    assert_eq!(out.len(), 10_000);
    assert!(out.iter().all(|r| r.is_ok()));
}
