//! Partitioned aggregation (`aggregation.partitioned`): one consumer per indicator, each
//! aggregation process reading the indicators it owns, every service its own process. Two
//! instances each apply their own share and nothing else; an instance killed mid-batch
//! loses nothing and counts nothing twice; switching between one shared consumer and
//! partitions, either way, neither skips a message nor replays the stream.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;
use tiendo_bus::names::{consumer, service};
use tiendo_bus::StreamKind;
use tiendo_settings::Settings;
use tiendo_store::entity::{figure, observation};
use tiendo_store::sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tiendo_tests::{counts, db_matrix, sample, Db, Fleet, TestApp, DISTRICTS};

/// Monthly indicators of the built-in catalog that `dic` reports by district until the reform.
const INDICATORS: [&str; 4] =
    ["digital_signature_adults", "fiber_households", "online_public_services_adults", "smartphone_adults"];
const MONTHS: [&str; 3] = ["2024-04", "2024-05", "2024-06"];

/// One row: event id, indicator, district, month, numerator, denominator.
type Row = (String, &'static str, &'static str, &'static str, u64, u64);

/// Rows over every indicator, district and month from a fixed seed: many revise a figure,
/// 1% reuse an earlier event id of the same indicator with another payload (aggregation
/// ignores them).
fn rows(count: usize, seed: u64, first_id: usize) -> Vec<Row> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut rows: Vec<Row> = Vec::new();
    for i in 0..count {
        let indicator = INDICATORS[rng.random_range(0..INDICATORS.len())];
        let denominator = rng.random_range(1_000..100_000u64);
        let numerator = rng.random_range(0..=denominator);
        let earlier: Vec<&Row> = rows.iter().filter(|r| r.1 == indicator).collect();
        let event_id = if !earlier.is_empty() && rng.random_bool(0.01) {
            earlier[rng.random_range(0..earlier.len())].0.clone()
        } else {
            format!("e{}", first_id + i)
        };
        let unit = DISTRICTS[rng.random_range(0..DISTRICTS.len())];
        rows.push((event_id, indicator, unit, MONTHS[rng.random_range(0..MONTHS.len())], numerator, denominator));
    }
    rows
}

/// Messages of `per_message` rows, each mixing indicators (validation splits them).
fn messages(rows: &[Row], per_message: usize) -> Vec<Value> {
    rows.chunks(per_message)
        .map(|chunk| Value::Array(chunk.iter().map(|(id, i, u, m, n, d)| counts(id, i, u, m, *n, *d)).collect()))
        .collect()
}

/// What `rows` (published in order) must leave: each (indicator, district, month)'s figure
/// from the last row whose event id was new, and the rows that count, by indicator.
struct Expected {
    figures: BTreeMap<(&'static str, &'static str, &'static str), (i64, i64)>,
    counted: HashMap<&'static str, u64>,
}

fn expected(rows: &[Row]) -> Expected {
    let mut seen = std::collections::HashSet::new();
    let mut figures = BTreeMap::new();
    let mut counted = HashMap::new();
    for (id, indicator, unit, month, n, d) in rows {
        if seen.insert(id.clone()) {
            figures.insert((*indicator, *unit, *month), (*n as i64, *d as i64));
            *counted.entry(*indicator).or_default() += 1;
        }
    }
    Expected { figures, counted }
}

async fn check(app: &TestApp, e: &Expected) {
    let figure = |indicator: &str, unit: &str, month: &str| {
        figure::Entity::find_by_id((indicator.to_owned(), unit.to_owned(), month.to_owned())).one(&app.db)
    };
    for ((indicator, unit, month), (n, d)) in &e.figures {
        let f = figure(indicator, unit, month).await.unwrap().expect("district figure");
        assert_eq!((f.direct_numerator, f.direct_denominator), (Some(*n), Some(*d)), "{indicator} {unit} {month}");
    }
    for indicator in INDICATORS {
        for month in MONTHS {
            let (n, d, c) = e
                .figures
                .iter()
                .filter(|((i, _, m), _)| *i == indicator && *m == month)
                .fold((0, 0, 0), |(n, d, c), (_, (x, y))| (n + x, d + y, c + 1));
            let p = figure(indicator, "89", month).await.unwrap().expect("province figure");
            assert_eq!((p.sum_numerator, p.sum_denominator, p.covered), (n, d, c), "province {indicator} {month}");
        }
        let stored = observation::Entity::find()
            .filter(observation::Column::Indicator.eq(indicator))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, e.counted.get(indicator).copied().unwrap_or(0), "observations of {indicator}");
    }
}

/// `settings` as aggregation instance `instance` of `instances`, partitioned.
fn partitioned(settings: &Settings, instances: u32, instance: u32) -> Settings {
    let mut s = settings.clone();
    s.aggregation.partitioned = true;
    s.aggregation.instances = instances;
    s.aggregation.instance = instance;
    s
}

/// The indicators of [`INDICATORS`] the instance of `settings` owns.
fn owned(app: &TestApp, settings: &Settings) -> Vec<&'static str> {
    let catalog = tiendo_domain::Catalog::built_in();
    let shares = tiendo_aggregation::partition::shares(&app.bus.names, &catalog, &settings.aggregation).unwrap();
    INDICATORS
        .into_iter()
        .filter(|i| shares.iter().any(|s| s.owned && s.consumer == consumer::partition(service::AGGREGATION, i)))
        .collect()
}

/// The names of aggregation's consumers on the valid stream, sorted.
async fn aggregation_consumers(app: &TestApp) -> Vec<String> {
    let stream = app.bus.js.get_stream(app.bus.names.stream(StreamKind::Valid)).await.unwrap();
    tiendo_bus::connect::consumers_of(&stream, service::AGGREGATION).await.unwrap()
}

/// Messages the consumers of `indicators` have delivered and not yet had acknowledged.
async fn in_hand(app: &TestApp, indicators: &[&str]) -> u64 {
    let Ok(stream) = app.bus.js.get_stream(app.bus.names.stream(StreamKind::Valid)).await else { return 0 };
    let mut total = 0;
    for i in indicators {
        let name = consumer::partition(service::AGGREGATION, i);
        let Ok(mut c) = stream.get_consumer::<tiendo_bus::async_nats::jetstream::consumer::pull::Config>(&name).await
        else {
            continue;
        };
        total += c.info().await.map_or(0, |info| info.num_ack_pending as u64);
    }
    total
}

/// A counter of aggregation's in the process `name`'s `/metrics`.
async fn counter(fleet: &Fleet, name: &str, metric: &str) -> f64 {
    let (_, body) = tiendo_tests::http_get(fleet.addr(name), "/metrics").await;
    sample(&body, metric, &[("service", service::AGGREGATION)]).unwrap_or(0.0)
}

async fn publish_all(app: &TestApp, messages: &[Value], tag: &str) {
    for (i, m) in messages.iter().enumerate() {
        app.publish_bytes("dic", m.to_string().into_bytes(), None, &format!("{tag}-{i}")).await;
    }
}

/// Every service as its own process, aggregation twice: `aggregation` (instance 1 of 2) and
/// `aggregation-2`; with their settings.
async fn two_instances(db: Db) -> (TestApp, Fleet, Settings, Settings) {
    let app = TestApp::namespace(db).await;
    let (first, second) = (partitioned(&app.settings, 2, 1), partitioned(&app.settings, 2, 2));
    let mut fleet = Fleet::start(&first).await;
    fleet.spawn_as("aggregation-2", service::AGGREGATION, second.clone());
    fleet.wait_ready("aggregation-2").await;
    (app, fleet, first, second)
}

async fn two_partitioned_instances_each_apply_only_the_indicators_they_own(db: Db) {
    let (app, mut fleet, first, second) = two_instances(db).await;
    let rows = rows(3_000, 1, 0);
    publish_all(&app, &messages(&rows, 30), "two").await;
    app.wait_idle().await;
    let e = expected(&rows);
    check(&app, &e).await;
    let mut consumers: Vec<String> = tiendo_domain::Catalog::built_in()
        .indicators()
        .map(|i| consumer::partition(service::AGGREGATION, &i.id.to_string()))
        .collect();
    consumers.sort();
    assert_eq!(aggregation_consumers(&app).await, consumers, "one consumer per indicator, the shared one gone");
    // Each applied its own indicators' observations, all of them, and nothing else. Not an
    // exact count: on SQLite the two processes (and alerting) take turns at one file, a
    // transaction that finds it locked hands its messages back, and a reused id whose later
    // use overtakes the first is counted as applied twice (the stored rows above are exact).
    for (name, settings) in [(service::AGGREGATION, &first), ("aggregation-2", &second)] {
        let mine = owned(&app, settings);
        assert!(!mine.is_empty(), "{name} owns some of {INDICATORS:?}");
        let fresh: u64 = mine.iter().map(|i| e.counted.get(i).copied().unwrap_or(0)).sum();
        let sent = rows.iter().filter(|r| mine.contains(&r.1)).count() as f64;
        let accepted = counter(&fleet, name, "tiendo_observations_accepted_total").await;
        assert!(
            (fresh as f64..=sent).contains(&accepted),
            "{name} owns {mine:?}: {accepted} applied, {fresh} new of {sent}"
        );
    }
    // With the second instance down, its indicators wait, and the first reports their backlog.
    fleet.kill("aggregation-2").await;
    let theirs = owned(&app, &second)[0];
    let late = counts("late", theirs, "883", MONTHS[0], 1, 2).to_string().into_bytes();
    app.publish_bytes("dic", late, None, "late").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter(&fleet, service::AGGREGATION, "tiendo_consumer_pending_messages").await < 1.0 {
        assert!(Instant::now() < deadline, "the backlog of a dead instance's indicator is reported by the other");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(fleet);
    app.cleanup().await;
}

async fn a_partitioned_instance_killed_mid_batch_loses_nothing_and_counts_nothing_twice(db: Db) {
    let (app, mut fleet, _, second) = two_instances(db).await;
    let victims = owned(&app, &second);
    let rows = rows(12_000, 2, 0);
    let all = messages(&rows, 100);
    let mut kills = Vec::new();
    for (n, chunk) in all.chunks(all.len() / 4 + 1).enumerate() {
        let tag = format!("kill-{n}");
        let publishing = publish_all(&app, chunk, &tag);
        let killing = async {
            // Killed while a batch of its own is in its hands: delivered, not acknowledged.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut held = in_hand(&app, &victims).await;
            while held == 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
                held = in_hand(&app, &victims).await;
            }
            kills.push(held);
            fleet.restart("aggregation-2").await;
        };
        futures::join!(publishing, killing);
    }
    app.wait_idle().await;
    eprintln!("kills of aggregation-2 (messages in its hands): {kills:?}");
    assert!(kills.iter().filter(|k| **k > 0).count() >= 3, "most kills land mid-batch: {kills:?}");
    check(&app, &expected(&rows)).await;
    drop(fleet);
    app.cleanup().await;
}

async fn switching_between_one_consumer_and_partitions_neither_skips_nor_replays(db: Db) {
    let app = TestApp::namespace(db).await;
    let shared = app.settings.clone();
    let mut fleet = Fleet::start(&shared).await;
    // Event ids are reused within a part only, so each part's duplicates are its own.
    let parts: Vec<Vec<Row>> = (0..3).map(|k| rows(1_000, 3 + k as u64, k * 1_000)).collect();
    publish_all(&app, &messages(&parts[0], 20), "one").await;
    app.wait_idle().await;
    assert_eq!(aggregation_consumers(&app).await, vec![service::AGGREGATION.to_owned()]);
    // Each switch: aggregation stopped, departments publish (validation passes it all on, so
    // it waits in the valid stream), aggregation starts in the other mode.
    let switches = [(&parts[1], partitioned(&shared, 1, 1)), (&parts[2], shared.clone())];
    for (n, (part, settings)) in switches.into_iter().enumerate() {
        fleet.kill(service::AGGREGATION).await;
        let sent = messages(part, 20);
        publish_all(&app, &sent, &format!("switch-{n}")).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stages = tiendo_testkit::idle::stages(&app.bus).await.unwrap();
            let validation_done = stages.iter().take(2).all(|(_, p, a)| p + a == 0);
            if validation_done {
                break;
            }
            assert!(Instant::now() < deadline, "validation passed the part on: {stages:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        fleet.spawn_as(service::AGGREGATION, service::AGGREGATION, settings.clone());
        fleet.wait_ready(service::AGGREGATION).await;
        app.wait_idle().await;
        let fresh = expected(part).counted.values().sum::<u64>();
        let applied = counter(&fleet, service::AGGREGATION, "tiendo_observations_accepted_total").await;
        let duplicates = counter(&fleet, service::AGGREGATION, "tiendo_observations_duplicate_total").await;
        assert_eq!(applied, fresh as f64, "switch {n}: every observation published meanwhile applied, none skipped");
        let reused = (part.len() as u64 - fresh) as f64;
        assert_eq!(duplicates, reused, "switch {n}: the part's own reused ids only; nothing from before came again");
        let consumers = aggregation_consumers(&app).await;
        if settings.aggregation.partitioned {
            assert!(consumers.len() > 1 && !consumers.contains(&service::AGGREGATION.to_owned()), "{consumers:?}");
        } else {
            assert_eq!(consumers, vec![service::AGGREGATION.to_owned()]);
        }
    }
    check(&app, &expected(&parts.concat())).await;
    drop(fleet);
    app.cleanup().await;
}

async fn two_instances_owning_the_same_indicators_by_mistake_still_count_everything_once(db: Db) {
    // Both configured as instance 1 of 1: they compete for every indicator's consumer, as
    // instances of the shared consumer do, and their (repeatable read) transactions write the
    // same province rows at once. A transaction that would overwrite another's sum must fail
    // and be retried.
    let app = TestApp::namespace(db).await;
    let both = partitioned(&app.settings, 1, 1);
    let mut fleet = Fleet::start(&both).await;
    fleet.spawn_as("aggregation-2", service::AGGREGATION, both.clone());
    fleet.wait_ready("aggregation-2").await;
    let rows = rows(6_000, 4, 0);
    publish_all(&app, &messages(&rows, 25), "same").await;
    app.wait_idle().await;
    check(&app, &expected(&rows)).await;
    let mut conflicts = 0.0;
    for name in [service::AGGREGATION, "aggregation-2"] {
        let accepted = counter(&fleet, name, "tiendo_observations_accepted_total").await;
        assert!(accepted > 0.0, "{name} applied observations too");
        conflicts += counter(&fleet, name, "tiendo_database_errors_total").await;
    }
    eprintln!("transactions that failed and were tried again: {conflicts}");
    drop(fleet);
    app.cleanup().await;
}

/// A partitioned consumer hands over its share of a batch's bytes (`BATCH_BYTES` ÷ the
/// indicators its process reads) but asks the server for at least its largest message: a
/// valid message larger than the share is still delivered, handled alone, and the messages
/// behind it follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_consumer_takes_a_message_larger_than_its_share_of_a_batch() {
    let app = TestApp::namespace(Db::Sqlite).await;
    let fleet = Fleet::start(&partitioned(&app.settings, 1, 1)).await;
    // A thousand observations of one indicator (validation's largest valid message) with the
    // longest event ids allowed, in Vietnamese (128 characters, 3 bytes each), then small
    // messages of every indicator.
    let row = |i: usize| -> Row {
        let id = format!("{}{i:04}", "ế".repeat(124));
        (id, INDICATORS[0], DISTRICTS[i % DISTRICTS.len()], MONTHS[i % 3], 1, 2)
    };
    let big: Vec<Row> = (0..1_000).map(row).collect();
    let big_message = &messages(&big, big.len())[0];
    let max = app.bus.client.server_info().max_payload;
    assert!(big_message.to_string().len() < max, "the large message fits the server");
    let small = rows(600, 8, 0);
    publish_all(&app, std::slice::from_ref(big_message), "big").await;
    publish_all(&app, &messages(&small, 20), "small").await;
    app.wait_idle().await;
    check(&app, &expected(&[big.clone(), small].concat())).await;
    // The share it was larger than.
    let stream = app.bus.js.get_stream(app.bus.names.stream(StreamKind::Valid)).await.unwrap();
    let last = stream.clone().info().await.unwrap().state.last_sequence;
    let mut largest = 0;
    for seq in 1..=last {
        largest = largest.max(stream.get_raw_message(seq).await.unwrap().payload.len());
    }
    let share = tiendo_bus::consume::BATCH_BYTES / tiendo_domain::Catalog::built_in().indicators().count();
    eprintln!("the largest valid message: {largest} bytes; a consumer's share of a batch: {share}");
    assert!(largest > share, "a valid message of {largest} bytes, over the share of {share}");
    let accepted = counter(&fleet, service::AGGREGATION, "tiendo_observations_accepted_total").await;
    assert!(accepted >= big.len() as f64, "{accepted} applied");
    drop(fleet);
    app.cleanup().await;
}

/// Records what a consumer hands over; its first batch takes 5 s.
#[derive(Default)]
struct SlowFirst {
    batches: std::sync::Mutex<Vec<Vec<u64>>>,
}

impl tiendo_bus::consume::Handler for SlowFirst {
    async fn handle(&self, batch: &[tiendo_bus::consume::Delivery]) -> Vec<tiendo_bus::consume::Decision> {
        let first = {
            let mut batches = self.batches.lock().unwrap();
            batches.push(batch.iter().map(|d| d.stream_seq).collect());
            batches.len() == 1
        };
        if first {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        batch.iter().map(|_| tiendo_bus::consume::Decision::Ack).collect()
    }
}

/// A consumer sharing its process with others hands its handler its share of what it took at
/// a time, and tells the server that every message it took and has not yet settled is in
/// hand: with `ack_wait` at 2 s and the first batch taking 5 s, a pull request waiting
/// meanwhile gets nothing delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_keeps_in_hand_what_it_took_beyond_the_batch_it_handles() {
    use futures::StreamExt;
    use tiendo_bus::async_nats::jetstream::consumer::{pull, AckPolicy};
    use tiendo_bus::consume::{Attempts, Delivery, Hand};
    let app = TestApp::namespace(Db::Sqlite).await;
    app.bus.ensure_streams(&app.settings.pipeline).await.unwrap();
    let subject = app.bus.names.valid("kept_in_hand");
    for _ in 0..10 {
        app.bus.js.publish(subject.clone(), vec![b'x'; 600].into()).await.unwrap().await.unwrap();
    }
    let stream = app.bus.js.get_stream(app.bus.names.stream(StreamKind::Valid)).await.unwrap();
    let ack_wait = Duration::from_secs(2);
    let config = pull::Config {
        durable_name: Some("kept-in-hand".into()),
        filter_subject: subject,
        ack_policy: AckPolicy::Explicit,
        ack_wait,
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.unwrap();
    let pull = |expires| {
        let consumer = consumer.clone();
        async move {
            let fetched = consumer.fetch().max_messages(10).expires(expires).messages().await.unwrap();
            fetched.map(|m| Delivery::new(m.unwrap())).collect::<Vec<_>>().await
        }
    };
    let taken = pull(Duration::from_secs(5)).await;
    assert_eq!(taken.len(), 10, "all ten taken at once");
    // A second pull request waits while they are handed over: what the server delivers again
    // comes to it.
    let handler = SlowFirst::default();
    let hand = Hand { bus: &app.bus, service: "test", max_deliver: 5, batch_bytes: 1024, ack_wait };
    let mut attempts = Attempts::default();
    let (again, ()) = tokio::join!(pull(Duration::from_secs(8)), hand.over(&taken, &handler, &mut attempts));
    let batches = handler.batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 5, "batches of the share, 1 KiB: two messages each: {batches:?}");
    let again: Vec<u64> = again.iter().map(|d| d.stream_seq).collect();
    assert!(again.is_empty(), "nothing taken was delivered again, yet {again:?} were");
    app.cleanup().await;
}

db_matrix!(
    two_instances_owning_the_same_indicators_by_mistake_still_count_everything_once,
    two_partitioned_instances_each_apply_only_the_indicators_they_own,
    a_partitioned_instance_killed_mid_batch_loses_nothing_and_counts_nothing_twice,
    switching_between_one_consumer_and_partitions_neither_skips_nor_replays,
);
