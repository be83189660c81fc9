//! The main path, end to end, on the real NATS server, on SQLite and on PostgreSQL: a
//! department publishes; the figure is validated, rolled up, judged and alerted on.

use std::time::Duration;

use serde_json::json;
use tiendo_tests::{counts, db_matrix, percent, Db, TestApp, DISTRICTS};

const WAIT: Duration = Duration::from_secs(30);

async fn an_observation_reaches_the_province_rollup(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.publish("dic", &counts("e1", "smartphone_adults", "883", "2024-06", 150_000, 200_000)).await;
    app.wait_idle().await;
    let province = app.figure("smartphone_adults", "89", "2024-06").await.expect("the province has a figure");
    assert_eq!((province.sum_numerator, province.sum_denominator, province.covered), (150_000, 200_000, 1));

    app.publish("dic", &counts("e2", "smartphone_adults", "884", "2024-06", 50_000, 100_000)).await;
    app.wait_idle().await;
    let province = app.figure("smartphone_adults", "89", "2024-06").await.unwrap();
    assert_eq!((province.sum_numerator, province.sum_denominator, province.covered), (200_000, 300_000, 2));
    let last =
        app.aggregates.all().into_iter().rfind(|a| a.org_unit == "89").expect("a province aggregate was published");
    assert_eq!((last.children_covered, last.children_total, last.source.as_str()), (2, 11, "rollup"));
    assert!((last.value.unwrap() - 200.0 / 3.0).abs() < 1e-9);
    app.cleanup().await;
}

async fn a_district_revision_replaces_its_figure_instead_of_adding_to_it(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.publish("dic", &counts("r1", "smartphone_adults", "883", "2024-06", 100, 200)).await;
    app.publish("dic", &counts("r2", "smartphone_adults", "884", "2024-06", 100, 100)).await;
    app.publish("dic", &counts("r1-fix", "smartphone_adults", "883", "2024-06", 150, 200)).await;
    app.wait_idle().await;
    let district = app.figure("smartphone_adults", "883", "2024-06").await.unwrap();
    assert_eq!((district.direct_numerator, district.direct_event_id.as_deref()), (Some(150), Some("r1-fix")));
    let province = app.figure("smartphone_adults", "89", "2024-06").await.unwrap();
    assert_eq!((province.sum_numerator, province.sum_denominator, province.covered), (250, 300, 2));
    app.cleanup().await;
}

async fn a_duplicate_event_id_changes_nothing_whatever_its_payload(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.publish("dic", &counts("d1", "smartphone_adults", "883", "2024-06", 100, 200)).await;
    app.wait_idle().await;
    let before = app.figure("smartphone_adults", "89", "2024-06").await.unwrap();
    app.publish("dic", &counts("d1", "smartphone_adults", "883", "2024-06", 190, 200)).await;
    app.publish("dic", &counts("d1", "smartphone_adults", "884", "2024-06", 1, 2)).await;
    app.wait_idle().await;
    let after = app.figure("smartphone_adults", "89", "2024-06").await.unwrap();
    assert_eq!(before, after, "the province figure did not move");
    assert!(app.figure("smartphone_adults", "884", "2024-06").await.is_none());
    assert_eq!(app.observations().await, 1);
    assert_eq!(app.metric("tiendo_observations_duplicate_total", &[("service", "aggregation")]).await, Some(2.0));
    app.cleanup().await;
}

async fn each_rejection_reason_reaches_the_department(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let ok = |id: &str| counts(id, "smartphone_adults", "883", "2024-06", 1, 2);
    let mut unknown_indicator = ok("x-indicator");
    unknown_indicator["indicator"] = json!("smartphones");
    let mut unknown_unit = ok("x-unit");
    unknown_unit["org_unit"] = json!("999");
    let mut bad_period = ok("x-period");
    bad_period["period"] = json!("2024-Q2");
    let mut future = ok("x-future");
    future["period"] = json!("2099-01");
    let mut range = ok("x-range");
    range["numerator"] = json!(3);
    let mut typo = ok("x-typo");
    typo["valeu"] = json!(3);
    // A note PostgreSQL could not store: refused to the department, not dead-lettered.
    let mut nul = ok("x-note");
    nul["note"] = json!("a\u{0}b");
    let batch = json!([ok("good"), unknown_indicator, unknown_unit, bad_period, future, range, typo, nul]);
    app.publish("dic", &batch).await;
    app.publish_bytes("dic", b"{not json".to_vec(), None, "garbage-1").await;
    app.publish("doh", &ok("x-forbidden")).await;
    app.wait_for("nine rejections", WAIT, |a| a.rejections.all().len() >= 9).await;
    app.wait_idle().await;

    let mut got: Vec<(String, String, String)> =
        app.rejections.all().into_iter().map(|r| (r.department, r.event_id, r.reason)).collect();
    got.sort();
    let expected = [
        ("dic", "", "malformed"),
        ("dic", "x-future", "future_period"),
        ("dic", "x-indicator", "unknown_indicator"),
        ("dic", "x-note", "invalid_field"),
        ("dic", "x-period", "invalid_field"),
        ("dic", "x-range", "out_of_range"),
        ("dic", "x-typo", "malformed"),
        ("dic", "x-unit", "unknown_org_unit"),
        ("doh", "x-forbidden", "forbidden"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, expected);
    assert!(app.rejections.all().iter().all(|r| !r.detail.is_empty() && !r.at.is_empty()));
    assert_eq!(app.observations().await, 1, "the good row of the batch went through");
    let rejected = "tiendo_observations_rejected_total";
    assert_eq!(app.metric(rejected, &[("service", "validation"), ("reason", "forbidden")]).await, Some(1.0));
    assert_eq!(app.metric(rejected, &[("service", "ingest"), ("reason", "malformed")]).await, Some(2.0));
    app.cleanup().await;
}

async fn a_department_publishing_another_departments_indicator_is_forbidden(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let mut forged = counts("f1", "smartphone_adults", "883", "2024-06", 1, 2);
    forged["department"] = json!("dic");
    app.publish("doh", &counts("f1", "smartphone_adults", "883", "2024-06", 1, 2)).await;
    app.publish("doh", &forged).await;
    app.wait_for("two rejections", WAIT, |a| a.rejections.all().len() >= 2).await;
    let mut r = app.rejections.all();
    r.sort_by(|a, b| a.reason.cmp(&b.reason));
    assert_eq!((r[0].reason.as_str(), r[0].department.as_str()), ("forbidden", "doh"));
    assert!(r[0].detail.contains("reported by dic"), "{}", r[0].detail);
    // A `department` field cannot override the subject: it is an unknown field, refused.
    assert_eq!((r[1].reason.as_str(), r[1].department.as_str()), ("malformed", "doh"));
    assert!(r[1].detail.contains("unknown field `department`"), "{}", r[1].detail);
    app.wait_idle().await;
    assert_eq!(app.observations().await, 0);
    app.cleanup().await;
}

async fn a_province_falling_behind_fires_exactly_one_alert_and_recovering_resolves_it(db: Db) {
    let mut app = TestApp::spawn(db).await;
    // June 2024: the path is at 72.8%; every district reports 60%.
    let behind: Vec<_> =
        DISTRICTS.iter().map(|d| counts(&format!("jun-{d}"), "smartphone_adults", d, "2024-06", 600, 1000)).collect();
    app.publish("dic", &json!(behind)).await;
    app.wait_idle().await;
    // A re-send of the same month changes nothing and fires nothing new.
    app.publish("dic", &json!(behind)).await;
    app.wait_idle().await;
    let province = |app: &TestApp| app.alerts.all().into_iter().filter(|a| a.org_unit == "89").collect::<Vec<_>>();
    app.wait_for("the province alert", WAIT, |a| !province(a).is_empty()).await;
    let fired = province(&app);
    assert_eq!(fired.len(), 1, "exactly one alert: {fired:?}");
    let a = &fired[0];
    assert_eq!((a.state.as_str(), a.status.as_str(), a.period.as_str()), ("firing", "behind", "2024-06"));
    assert!((a.value - 60.0).abs() < 1e-9 && a.gap < -1.0 && a.target == 80.0, "{a:?}");
    assert_eq!(
        app.metric("tiendo_indicator_behind", &[("indicator", "smartphone_adults"), ("org_unit", "89")]).await,
        Some(1.0)
    );

    // July 2024: everyone at 80%: target met.
    let recovered: Vec<_> =
        DISTRICTS.iter().map(|d| counts(&format!("jul-{d}"), "smartphone_adults", d, "2024-07", 800, 1000)).collect();
    app.publish("dic", &json!(recovered)).await;
    app.wait_for("the province alert to resolve", WAIT, |a| province(a).len() >= 2).await;
    app.wait_idle().await;
    let all = province(&app);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!((all[1].alert_id.as_str(), all[1].state.as_str()), (a.alert_id.as_str(), "resolved"));
    assert_eq!(all[1].status, "achieved");
    let labels = [("indicator", "smartphone_adults"), ("org_unit", "89")];
    assert_eq!(app.metric("tiendo_indicator_behind", &labels).await, Some(0.0));
    app.cleanup().await;
}

/// `econtract_enterprises` has no baseline in the catalog: its path starts at the earliest
/// province figure, and a province figure for an earlier period moves it, so every unit of
/// the indicator is judged again.
async fn an_earlier_province_figure_moves_the_baseline_and_every_unit_is_judged_again(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let district = |app: &TestApp| app.alerts.all().into_iter().filter(|a| a.org_unit == "883").collect::<Vec<_>>();
    // One district at 40% in 2024-Q2: the province rolls up to 40%, its first figure, so
    // the baseline is 40% on 2024-06-30 and both are on their path.
    app.publish("dpi", &counts("q2", "econtract_enterprises", "883", "2024-Q2", 400, 1000)).await;
    app.wait_idle().await;
    assert!(app.alerts.all().is_empty(), "{:?}", app.alerts.all());
    let labels = |u: &'static str| [("indicator", "econtract_enterprises"), ("org_unit", u)];
    assert_eq!(app.metric("tiendo_indicator_behind", &labels("883")).await, Some(0.0));

    // The province reports 60% for 2024-Q1: the baseline is now 60% on 2024-03-31, and the
    // district, which sent nothing new, is behind on it (about 61.8% expected at 2024-06-30).
    app.publish("dpi", &percent("q1", "econtract_enterprises", "89", "2024-Q1", 60.0)).await;
    app.wait_for("the district's alert", WAIT, |a| !district(a).is_empty()).await;
    app.wait_idle().await;
    let fired = district(&app);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!((fired[0].state.as_str(), fired[0].period.as_str()), ("firing", "2024-Q2"));
    assert!((fired[0].expected - (60.0 + 20.0 * 91.0 / 640.0)).abs() < 1e-9, "{:?}", fired[0]);
    assert_eq!(app.metric("tiendo_indicator_behind", &labels("883")).await, Some(1.0));
    app.cleanup().await;
}

async fn the_metrics_show_the_figures_the_path_and_the_counts(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.publish("dic", &counts("m1", "smartphone_adults", "883", "2024-06", 725, 1000)).await;
    app.publish("dpi", &percent("m2", "sme_digital_platforms", "89", "2024-06", 45.0)).await;
    app.wait_idle().await;
    let unit = |u: &'static str| [("indicator", "smartphone_adults"), ("org_unit", u)];
    let value = app.metric("tiendo_indicator_value_ratio", &unit("89")).await.unwrap();
    assert!((value - 0.725).abs() < 1e-12, "{value}");
    // 2024-06-30 is 503 of the 1052 days from 2023-02-13 to 2025-12-31.
    let expected = (66.2 + 13.8 * 503.0 / 1052.0) / 100.0;
    assert!((app.metric("tiendo_indicator_expected_ratio", &unit("89")).await.unwrap() - expected).abs() < 1e-9);
    assert!((app.metric("tiendo_indicator_gap_ratio", &unit("89")).await.unwrap() - (0.725 - expected)).abs() < 1e-9);
    assert_eq!(app.metric("tiendo_indicator_behind", &unit("883")).await, Some(0.0));
    let june_end = chrono::NaiveDate::from_ymd_opt(2024, 6, 30).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(
        app.metric("tiendo_indicator_period_end_timestamp_seconds", &unit("89")).await,
        Some(june_end.timestamp() as f64)
    );
    assert_eq!(app.metric("tiendo_indicator_target_ratio", &[("indicator", "smartphone_adults")]).await, Some(0.8));
    assert_eq!(app.metric("tiendo_indicator_target_ratio", &[("indicator", "sme_digital_platforms")]).await, Some(0.5));
    for service in ["ingest", "validation", "aggregation"] {
        assert_eq!(
            app.metric("tiendo_observations_accepted_total", &[("service", service)]).await,
            Some(2.0),
            "{service}"
        );
    }
    assert!(app.metric("tiendo_batch_duration_seconds_count", &[("service", "aggregation")]).await.unwrap() >= 1.0);
    let (status, body) = app.http_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.http_get("/healthz").await.0, 200);
    app.cleanup().await;
}

/// Aggregation announces each changed figure twice: one JSON message per figure for
/// everyone, and one `FigureBatch` per indicator and transaction for alerting, which judges
/// every figure in it.
async fn alerting_takes_a_transactions_figures_in_one_message_per_indicator(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let rows: Vec<_> = DISTRICTS
        .iter()
        .enumerate()
        .map(|(i, d)| counts(&format!("b{i}"), "smartphone_adults", d, "2024-06", 700 + i as u64, 1_000))
        .collect();
    app.publish("dic", &json!(rows)).await;
    app.wait_idle().await;
    let mut stored = Vec::new();
    for kind in [tiendo_bus::StreamKind::Aggregates, tiendo_bus::StreamKind::Figures] {
        let mut stream = app.bus.js.get_stream(app.bus.names.stream(kind)).await.expect("the stream exists");
        stored.push(stream.info().await.expect("stream info").state.messages);
    }
    let (per_figure, batches) = (stored[0], stored[1]);
    assert_eq!(per_figure, 12, "eleven districts and the province, one message each");
    assert_eq!(batches, 1, "one transaction of one indicator: one batch");
    let judged = app.metric("tiendo_observations_accepted_total", &[("service", "alerting")]).await;
    assert_eq!(judged, Some(12.0), "alerting judged every figure of the batch");
    app.cleanup().await;
}

/// A department's number is the number stored: awkward floats come back bit for bit from
/// aggregation's and alerting's tables (JSON is read with serde_json's `float_roundtrip`;
/// without it 99.99999999999999 was stored as 100, one unit in the last place off), and a
/// note keeps its quotes, backslashes and Vietnamese letters.
async fn stored_values_come_back_bit_for_bit(db: Db) {
    use tiendo_store::entity::{alert_figure, observation};
    use tiendo_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut app = TestApp::spawn(db).await;
    let values = [100.0 / 3.0, 0.1 + 0.2, 66.2, 5e-324, 99.999_999_999_999_99, 0.0, 100.0];
    let note = r#"Số liệu "tạm" \ của xã Bình Đức ’ {"a":1}"#;
    for (i, v) in values.iter().enumerate() {
        let mut row = percent(&format!("bits-{i}"), "smartphone_adults", DISTRICTS[i], "2024-06", *v);
        row["note"] = json!(note);
        app.publish("dic", &row).await;
    }
    app.wait_idle().await;
    for (i, v) in values.iter().enumerate() {
        let unit = DISTRICTS[i];
        let stored = app.figure("smartphone_adults", unit, "2024-06").await.expect("the district's figure");
        assert_eq!(stored.direct_value.map(f64::to_bits), Some(v.to_bits()), "{unit}: {v:e}");
        let judged = alert_figure::Entity::find_by_id(("smartphone_adults".into(), unit.into(), "2024-06".into()))
            .one(&app.db)
            .await
            .unwrap()
            .expect("alerting stored the figure");
        assert_eq!(judged.value.map(f64::to_bits), Some(v.to_bits()), "{unit}: {v:e}");
    }
    let notes: Vec<Option<String>> = observation::Entity::find()
        .filter(observation::Column::EventId.starts_with("bits-"))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.note)
        .collect();
    assert_eq!(notes, vec![Some(note.to_owned()); values.len()]);
    app.cleanup().await;
}

/// Alerting keeps the newest version of each figure, whatever order the versions reach it in:
/// a version older than the stored one, or the same one again (a redelivery, a copy from the
/// relay), is counted as a duplicate and changes nothing; within one message the newest copy
/// of a figure wins.
async fn alerting_keeps_the_newest_version_of_a_figure_whatever_order_versions_arrive_in(db: Db) {
    use tiendo_bus::{ContentType, Outgoing};
    use tiendo_proto::v1::{Aggregate, FigureBatch};
    use tiendo_proto::Message as _;
    use tiendo_store::entity::alert_figure;
    use tiendo_store::sea_orm::EntityTrait;
    let app = TestApp::spawn(db).await;
    let figure = |unit: &str, value: f64, version: u64| Aggregate {
        indicator: "smartphone_adults".into(),
        org_unit: unit.into(),
        period: "2024-06".into(),
        value: Some(value),
        version,
        ..Default::default()
    };
    let (a, b) = (DISTRICTS[0], DISTRICTS[1]);
    let batches = [
        vec![figure(a, 70.0, 2), figure(b, 40.0, 1), figure(b, 45.0, 3), figure(b, 42.0, 2)],
        vec![figure(a, 50.0, 1)],
        vec![figure(a, 71.0, 2), figure(b, 30.0, 3)],
    ];
    for (n, figures) in batches.into_iter().enumerate() {
        let subject = app.bus.names.figures("smartphone_adults");
        let payload = FigureBatch { figures }.encode_to_vec();
        // Each its own message id: JetStream must not be what drops the stale copies.
        let message = Outgoing::new(subject, format!("stale-{n}"), payload, ContentType::Protobuf);
        app.bus.publish_all([message]).await.expect("stored");
        // One at a time, so that the later messages meet the stored versions, not the
        // earlier copies in the same batch.
        app.wait_idle().await;
    }
    for (unit, value, version) in [(a, 70.0, 2), (b, 45.0, 3)] {
        let stored = alert_figure::Entity::find_by_id(("smartphone_adults".into(), unit.into(), "2024-06".into()))
            .one(&app.db)
            .await
            .unwrap()
            .expect("alerting stored the figure");
        assert_eq!((stored.value, stored.version), (Some(value), version), "{unit}");
    }
    let judged = app.metric("tiendo_observations_accepted_total", &[("service", "alerting")]).await;
    assert_eq!(judged, Some(2.0), "one newest version of each of the two figures");
    let stale = app.metric("tiendo_observations_duplicate_total", &[("service", "alerting")]).await;
    assert_eq!(stale, Some(5.0), "every other copy: two in the first message, one, then two");
    app.cleanup().await;
}

db_matrix!(
    an_observation_reaches_the_province_rollup,
    a_district_revision_replaces_its_figure_instead_of_adding_to_it,
    a_duplicate_event_id_changes_nothing_whatever_its_payload,
    each_rejection_reason_reaches_the_department,
    a_department_publishing_another_departments_indicator_is_forbidden,
    a_province_falling_behind_fires_exactly_one_alert_and_recovering_resolves_it,
    an_earlier_province_figure_moves_the_baseline_and_every_unit_is_judged_again,
    the_metrics_show_the_figures_the_path_and_the_counts,
    alerting_takes_a_transactions_figures_in_one_message_per_indicator,
    stored_values_come_back_bit_for_bit,
    alerting_keeps_the_newest_version_of_a_figure_whatever_order_versions_arrive_in,
);

/// Above the server's maximum payload the department's publish fails at once (nothing is
/// stored, so nothing is silently dropped: the sender sees the error); just below, every row
/// of the message is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_just_below_the_servers_limit_are_processed_and_above_it_refused_at_publish() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let max = app.bus.client.server_info().max_payload;
    let row = |i: usize| counts(&format!("big-{i:07}"), "smartphone_adults", DISTRICTS[i % 11], "2024-06", 1, 2);
    let row_len = row(0).to_string().len() + 1;
    let rows = (max - 2 - 512) / row_len;
    let below = serde_json::Value::Array((0..rows).map(row).collect()).to_string();
    assert!(below.len() < max && below.len() > max - 1024, "{} vs {max}", below.len());
    app.publish_bytes("dic", below.into_bytes(), None, "big-below").await;

    let above = serde_json::Value::Array((0..rows + 100).map(row).collect()).to_string();
    assert!(above.len() > max);
    let refused = app.bus.js.publish(app.bus.names.ingest("dic"), above.into_bytes().into()).await;
    assert!(refused.is_err(), "the client refuses a payload above max_payload ({max} bytes)");

    app.wait_idle().await;
    assert_eq!(app.observations().await as usize, rows);
    app.cleanup().await;
}

/// Every PostgreSQL connection tiendo opens plans each statement for its parameters and the
/// tables as they are now, never from a generic plan PostgreSQL cached while the tables were
/// still empty (docs/performance.md, issue 15, change 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_plan_each_statement_for_the_tables_as_they_are() {
    use tiendo_store::sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::namespace(Db::Postgres).await;
    let show = Statement::from_string(app.db.get_database_backend(), "SHOW plan_cache_mode");
    // Several at once, so that the pool opens more than one connection.
    let modes = futures::future::join_all((0..4).map(|_| app.db.query_one(show.clone()))).await;
    for mode in modes {
        let mode: String = mode.expect("SHOW").expect("a row").try_get("", "plan_cache_mode").expect("a text");
        assert_eq!(mode, "force_custom_plan");
    }
    app.cleanup().await;
}

/// Issue 15, change 27: on PostgreSQL a batch's lookups by key (aggregation's figures, and
/// which event ids were used before) search each key through the primary key, in a table
/// that grew since it was last analysed, as every table does in a new deployment's first
/// minutes. Looked up as `IN (SELECT * FROM UNNEST(…))`, such a table was read whole, once
/// per lookup: a hash join over every figure, every observation of the department.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_batchs_lookups_search_each_key_by_index_in_a_table_never_analysed() {
    use tiendo_store::entity::{figure, observation};
    use tiendo_store::keys::ByKeys;
    use tiendo_store::sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::namespace(Db::Postgres).await;
    let db = &app.db;
    let rows = 20_000;
    for fill in [
        format!(
            "INSERT INTO figures (indicator, org_unit, period, period_end, sum_numerator, sum_denominator, covered, \
             value_only, version, updated_at) SELECT 'smartphone_adults', 'u' || n, '2024-06', '2024-06-30', n, 2 * n, \
             1, 0, 1, 'then' FROM generate_series(1, {rows}) AS n"
        ),
        format!(
            "INSERT INTO observations (department, event_id, indicator, org_unit, period, value, source_seq, \
             source_index, received_at, applied_at) SELECT 'dic', 'e' || n, 'smartphone_adults', 'u' || n, '2024-06', \
             50, n, 0, 'then', 'then' FROM generate_series(1, {rows}) AS n"
        ),
    ] {
        db.execute_unprepared(&fill).await.unwrap();
    }
    let plan = |statement: Statement| async move {
        let explain = Statement { sql: format!("EXPLAIN {}", statement.sql), ..statement };
        let lines = db.query_all(explain).await.unwrap();
        lines.iter().map(|l| l.try_get_by_index::<String>(0).unwrap()).collect::<Vec<_>>().join("\n")
    };
    // 128 keys, every 300th unit: u300 … u19800 exist (66), the rest do not.
    let units: Vec<String> = (1..=128).map(|i| format!("u{}", i * 300)).collect();

    use figure::Column as F;
    let mut figures =
        ByKeys::<figure::Entity, 3>::new(db.get_database_backend(), [F::Indicator, F::OrgUnit, F::Period]);
    let keys: Vec<[String; 3]> =
        units.iter().map(|u| ["smartphone_adults".into(), u.clone(), "2024-06".into()]).collect();
    let found = figures.all(db, &keys).await.unwrap();
    assert_eq!(found.len(), 66);
    assert!(found.iter().all(|f| f.sum_denominator == 2 * f.sum_numerator && units.contains(&f.org_unit)));
    let figures_plan = plan(figures.statement(&keys)).await;
    assert!(figures_plan.contains("Index Scan using \"pk-figures\""), "{figures_plan}");

    use observation::Column as O;
    let mut events = ByKeys::<observation::Entity, 2>::new(db.get_database_backend(), [O::Department, O::EventId]);
    let keys: Vec<[String; 2]> = units.iter().map(|u| ["dic".into(), u.replacen('u', "e", 1)]).collect();
    let found = events.all(db, &keys).await.unwrap();
    assert_eq!(found.len(), 66);
    assert!(found.iter().all(|o| format!("e{}", o.source_seq) == o.event_id));
    let events_plan = plan(events.statement(&keys)).await;
    assert!(events_plan.contains("Index Scan using \"pk-observations\""), "{events_plan}");

    for plan in [figures_plan, events_plan] {
        assert!(!plan.contains("Seq Scan") && !plan.contains("Bitmap") && !plan.contains("Hash"), "{plan}");
    }
    app.cleanup().await;
}

/// Issue 15, change 28: on PostgreSQL a multi-row write sends its rows as one JSON
/// parameter. What is read back is exactly what was written: text with quotes, backslashes,
/// control characters and any script; numbers at their extremes and those with no short
/// decimal form; `NULL`s. A value JSON cannot carry is refused, never stored as another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_rows_written_as_one_json_parameter_read_back_exactly() {
    use tiendo_store::entity::{figure, observation};
    use tiendo_store::rows::Insert;
    use tiendo_store::sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
    let app = TestApp::namespace(Db::Postgres).await;
    let db = &app.db;
    let notes = [
        Some("Sở Thông tin và Truyền thông: \"đạt\" 80%\n\tC:\\số liệu\\ 😀 \u{1} </script>".to_owned()),
        None,
        Some(String::new()),
    ];
    let values = [0.1 + 0.2, 1e-300, -0.0, f64::MAX, f64::MIN_POSITIVE, 66.2, 5e-324, 1.0 / 3.0];
    let written: Vec<observation::Model> = values
        .iter()
        .enumerate()
        .map(|(i, &value)| observation::Model {
            department: "dic".into(),
            event_id: format!("e{i}"),
            indicator: "smartphone_adults".into(),
            org_unit: "883".into(),
            period: format!("2024-{:02}", i + 1),
            value,
            numerator: [Some(i64::MAX), None, Some(i64::MIN)][i % 3],
            denominator: [None, Some(0), Some(1)][i % 3],
            source_seq: i as i64,
            source_index: [i32::MAX, 0, i32::MIN][i % 3],
            received_at: "2024-07-01T00:00:00+07:00".into(),
            applied_at: "2024-07-01T00:00:01+07:00".into(),
            note: notes[i % 3].clone(),
        })
        .collect();
    Insert::<observation::Entity>::new(db.get_database_backend(), None).execute(db, &written).await.unwrap();
    let read = observation::Entity::find().order_by_asc(observation::Column::SourceSeq).all(db).await.unwrap();
    assert_eq!(read, written);
    // Bit for bit, the sign of zero included.
    let bits = |rows: &[observation::Model]| rows.iter().map(|o| o.value.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&read), bits(&written));

    let figure = |value: f64| figure::Model {
        indicator: "smartphone_adults".into(),
        org_unit: "883".into(),
        period: "2024-06".into(),
        period_end: "2024-06-30".into(),
        direct_value: Some(value),
        direct_numerator: None,
        direct_denominator: None,
        direct_event_id: Some("e1".into()),
        direct_department: Some("dic".into()),
        direct_seq: Some(1),
        direct_index: Some(0),
        sum_numerator: 0,
        sum_denominator: 0,
        covered: 1,
        value_only: 1,
        version: 1,
        updated_at: "2024-07-01T00:00:01+07:00".into(),
    };
    let insert = Insert::<figure::Entity>::new(db.get_database_backend(), None);
    for refused in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = insert.execute(db, &[figure(refused)]).await.expect_err("refused");
        assert_eq!(tiendo_store::error::fault(&error), tiendo_store::error::Fault::Refused, "{error}");
    }
    assert!(figure::Entity::find().all(db).await.unwrap().is_empty(), "nothing stored in its place");
    app.cleanup().await;
}

/// Issue 15: the benchmark's clocks read the consumers through `idle::Watch`. Once it has
/// found them, each look is one `CONSUMER.INFO` request per consumer and no other JetStream
/// request (the stream and the consumers' names are asked again once a second, not at every
/// look), and it reads what `idle::stages` reads: here ingest's five waiting messages, with
/// the services stopped so that nothing moves between the two readings. The requests counted
/// are those naming this test's stages' streams (other tests share the server); a request
/// naming none would go uncounted, and the watch makes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmarks_watch_asks_each_consumer_once_a_look_and_reads_what_stages_reads() {
    use futures::StreamExt as _;
    use tiendo_bus::names::STAGES;
    use tiendo_testkit::idle;
    let mut app = TestApp::spawn(Db::Sqlite).await;
    app.wait_idle().await;
    app.crash().await;
    for i in 0..5 {
        app.publish("dic", &percent(&format!("w-{i}"), "smartphone_adults", DISTRICTS[0], "2024-06", 70.0)).await;
    }
    let mut watch = idle::Watch::new();
    let first = watch.stages(&app.bus).await.unwrap();
    assert_eq!(first, idle::stages(&app.bus).await.unwrap());
    assert_eq!(first[0], ("ingest", 5, 0), "{first:?}");
    assert!(first[1..].iter().all(|(_, p, a)| p + a == 0), "{first:?}");

    let mut requests = app.bus.client.subscribe("$JS.API.>").await.unwrap();
    app.bus.client.flush().await.unwrap();
    const LOOKS: usize = 10;
    for _ in 0..LOOKS {
        assert_eq!(watch.stages(&app.bus).await.unwrap(), first);
    }
    app.bus.client.flush().await.unwrap();
    // Only the requests about this test's streams: the other tests share the server.
    let ours: Vec<String> = STAGES.iter().map(|(kind, _)| app.bus.names.stream(*kind)).collect();
    let mut asked = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), requests.next()).await {
        if m.subject.split('.').any(|token| ours.iter().any(|s| s == token)) {
            asked.push(m.subject.to_string());
        }
    }
    assert_eq!(asked.len(), LOOKS * first.len(), "{asked:#?}");
    assert!(asked.iter().all(|s| s.starts_with("$JS.API.CONSUMER.INFO.")), "{asked:#?}");
    app.cleanup().await;
}
