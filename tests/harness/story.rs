//! A stream of observations with revisions and reused event ids, and the figures it must
//! produce, computed here independently of tiendo.

use std::collections::{BTreeMap, HashMap};

use rand::{Rng, SeedableRng};
use serde_json::Value;
use tiendo_store::entity::{figure, observation};
use tiendo_store::sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

use crate::{counts, TestApp, DISTRICTS};

pub const MONTHS: [&str; 6] = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"];

/// One row: event id, district, month, numerator, denominator.
type Row = (String, String, String, u64, u64);

/// What was published, in order, and what the figures must be.
pub struct Story {
    rows: Vec<Row>,
    per_message: usize,
    pub messages: Vec<Value>,
    /// (district, month) → (numerator, denominator) of the last published observation.
    pub expected: BTreeMap<(String, String), (i64, i64)>,
    pub unique_ids: usize,
}

/// `observations` rows in messages of `per_message`, drawn from a fixed seed: 1% reuse an
/// earlier event id with another payload, and many rows revise a (district, month) figure.
pub fn story(observations: usize, per_message: usize) -> Story {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261127);
    let mut rows: Vec<Row> = Vec::new();
    for i in 0..observations {
        let unit = DISTRICTS[rng.random_range(0..DISTRICTS.len())].to_owned();
        let month = MONTHS[rng.random_range(0..MONTHS.len())].to_owned();
        let denominator = rng.random_range(1_000..100_000u64);
        let numerator = rng.random_range(0..=denominator);
        let event_id = if i > 10 && rng.random_bool(0.01) {
            rows[rng.random_range(0..rows.len())].0.clone()
        } else {
            format!("e{i}")
        };
        rows.push((event_id, unit, month, numerator, denominator));
    }
    Story::from_rows(rows, per_message)
}

impl Story {
    fn from_rows(rows: Vec<Row>, per_message: usize) -> Story {
        let mut owners: HashMap<&str, usize> = HashMap::new();
        let mut expected = BTreeMap::new();
        for (i, (id, unit, month, n, d)) in rows.iter().enumerate() {
            // An event id belongs to its first use; the last first-use row of a key wins.
            if !owners.contains_key(id.as_str()) {
                owners.insert(id, i);
                expected.insert((unit.clone(), month.clone()), (*n as i64, *d as i64));
            }
        }
        let unique_ids = owners.len();
        let messages = rows
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
        Story { rows, per_message, messages, expected, unique_ids }
    }

    /// The story of only its first `messages` messages.
    pub fn prefix(&self, messages: usize) -> Story {
        let rows = self.rows[..(messages * self.per_message).min(self.rows.len())].to_vec();
        Story::from_rows(rows, self.per_message)
    }

    /// The last month's province figure the story must produce: (numerator, denominator).
    pub fn province(&self, month: &str) -> (i64, i64) {
        self.expected.iter().filter(|((_, m), _)| m == month).fold((0, 0), |(n, d), (_, (x, y))| (n + x, d + y))
    }
}

pub async fn check(app: &TestApp, story: &Story) {
    check_db(&app.db, story).await;
    // Alerting saw the last version of the province's latest month.
    let (n, d) = story.province(MONTHS[5]);
    let value = app
        .metric("tiendo_indicator_value_ratio", &[("indicator", "smartphone_adults"), ("org_unit", "89")])
        .await
        .expect("province gauge");
    assert!((value - n as f64 / d as f64).abs() < 1e-9, "{value} vs {}", n as f64 / d as f64);
}

/// Checks every figure and the observation count in the database.
pub async fn check_db(db: &DatabaseConnection, story: &Story) {
    let figure = |unit: &str, month: &str| {
        figure::Entity::find_by_id(("smartphone_adults".to_owned(), unit.to_owned(), month.to_owned())).one(db)
    };
    for ((unit, month), (n, d)) in &story.expected {
        let f = figure(unit, month).await.unwrap().expect("district figure");
        assert_eq!((f.direct_numerator, f.direct_denominator), (Some(*n), Some(*d)), "{unit} {month}");
    }
    for month in MONTHS {
        let (n, d, c) = story
            .expected
            .iter()
            .filter(|((_, m), _)| m == month)
            .fold((0, 0, 0), |(n, d, c), (_, (x, y))| (n + x, d + y, c + 1));
        let p = figure("89", month).await.unwrap().expect("province figure");
        assert_eq!((p.sum_numerator, p.sum_denominator, p.covered), (n, d, c), "province {month}");
    }
    assert_eq!(observation::Entity::find().count(db).await.unwrap() as usize, story.unique_ids);
}
