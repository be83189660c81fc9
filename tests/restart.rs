//! Crashes: the services are killed where they stand (no graceful stop, nothing more acked)
//! in the middle of a stream of observations with revisions and duplicate event ids, and
//! restarted. At the end every figure equals the one computed here, independently, from what
//! was published, and every event id counts once.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::Value;
use tiendo_tests::{counts, db_matrix, Db, TestApp, DISTRICTS};

const MONTHS: [&str; 6] = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"];

/// What was published, in order, and what the figures must be.
struct Story {
    messages: Vec<Value>,
    /// (district, month) → (numerator, denominator) of the last published observation.
    expected: BTreeMap<(String, String), (i64, i64)>,
    unique_ids: usize,
}

fn story(observations: usize, per_message: usize) -> Story {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261127);
    let mut all: Vec<(String, String, String, u64, u64)> = Vec::new();
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut expected = BTreeMap::new();
    for i in 0..observations {
        let unit = DISTRICTS[rng.random_range(0..DISTRICTS.len())].to_owned();
        let month = MONTHS[rng.random_range(0..MONTHS.len())].to_owned();
        let denominator = rng.random_range(1_000..100_000u64);
        let numerator = rng.random_range(0..=denominator);
        // 1% reuse an earlier event id with another payload: they must change nothing.
        let event_id = if i > 10 && rng.random_bool(0.01) {
            all[rng.random_range(0..all.len())].0.clone()
        } else {
            format!("e{i}")
        };
        if !owner.contains_key(&event_id) {
            owner.insert(event_id.clone(), i);
            expected.insert((unit.clone(), month.clone()), (numerator as i64, denominator as i64));
        }
        all.push((event_id, unit, month, numerator, denominator));
    }
    let messages = all
        .chunks(per_message)
        .map(|chunk| {
            Value::Array(
                chunk
                    .iter()
                    .map(|(id, unit, month, n, d)| counts(id, "smartphone_adults", unit, month, *n, *d))
                    .collect(),
            )
        })
        .collect();
    Story { messages, expected, unique_ids: owner.len() }
}

async fn check(app: &TestApp, story: &Story) {
    for ((unit, month), (n, d)) in &story.expected {
        let f = app.figure("smartphone_adults", unit, month).await.expect("district figure");
        assert_eq!((f.direct_numerator, f.direct_denominator), (Some(*n), Some(*d)), "{unit} {month}");
    }
    for month in MONTHS {
        let (n, d, c) = story
            .expected
            .iter()
            .filter(|((_, m), _)| m == month)
            .fold((0, 0, 0), |(n, d, c), (_, (x, y))| (n + x, d + y, c + 1));
        let p = app.figure("smartphone_adults", "89", month).await.expect("province figure");
        assert_eq!((p.sum_numerator, p.sum_denominator, p.covered), (n, d, c), "province {month}");
    }
    assert_eq!(app.observations().await as usize, story.unique_ids);
    // Alerting saw the last version of the province's latest month.
    let (n, d) =
        story.expected.iter().filter(|((_, m), _)| m == "2024-06").fold((0, 0), |(n, d), (_, (x, y))| (n + x, d + y));
    let value = app
        .metric("tiendo_indicator_value_ratio", &[("indicator", "smartphone_adults"), ("org_unit", "89")])
        .await
        .expect("province gauge");
    assert!((value - n as f64 / d as f64).abs() < 1e-9, "{value} vs {}", n as f64 / d as f64);
}

async fn services_killed_mid_stream_lose_nothing_and_count_nothing_twice(db: Db) {
    let story = story(3_000, 50);
    let mut app = TestApp::spawn(db).await;
    let third = story.messages.len() / 3;
    for m in &story.messages[..third] {
        app.publish("dic", m).await;
    }
    while app.observations().await == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.crash().await;
    // Departments keep publishing while tiendo is down: JetStream keeps it.
    for m in &story.messages[third..2 * third] {
        app.publish("dic", m).await;
    }
    app.restart().await;
    for m in &story.messages[2 * third..] {
        app.publish("dic", m).await;
    }
    // Kill it again while it works through the backlog.
    let applied = app.observations().await;
    while app.observations().await == applied {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.restart().await;
    app.wait_idle().await;
    check(&app, &story).await;
    app.cleanup().await;
}

db_matrix!(services_killed_mid_stream_lose_nothing_and_count_nothing_twice);
