//! Who has reported (issue 11), on SQLite and PostgreSQL, with the services' clock set by the
//! test: before a period's due date a roll-up whose reports are not all in is `incomplete` and
//! fires nothing; at the due date (midnight in Hà Nội, UTC+7) each department hears once which
//! units are missing, and the roll-up is judged on what came in, its alert saying how much.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use tiendo_bus::StreamKind;
use tiendo_domain::{IndicatorId, Period};
use tiendo_proto::v1::Overdue;
use tiendo_store::migration::Migrator;
use tiendo_store::sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use tiendo_tests::{counts, db_matrix, migrate_down_through, Db, Seen, TestApp, DISTRICTS};

const WAIT: Duration = Duration::from_secs(30);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// June 2024's reports are due on 15 July: the end of that day in An Giang is 17:00 UTC.
const BEFORE_DUE: &str = "2024-07-05T03:00:00Z";
const LAST_ON_TIME: &str = "2024-07-15T16:59:59Z";
const DUE: &str = "2024-07-15T17:00:00Z";

/// Each district at 60%: far behind the path (72.8% at the end of June 2024).
fn report(district: &str) -> serde_json::Value {
    counts(&format!("jun-{district}"), "smartphone_adults", district, "2024-06", 600, 1000)
}

async fn overdue(app: &TestApp) -> Seen<Overdue> {
    Seen::json(&app.bus, app.bus.names.stream_subjects(StreamKind::Overdue)).await.unwrap()
}

/// Notices of June 2024's smartphone reports JetStream stored: what a department reading the
/// stream gets, copies dropped. (At start, alerting also acts on each indicator's latest period
/// already due, May 2024 and earlier here, and sends their notices: not these.)
async fn stored_notices(app: &TestApp) -> usize {
    let stream = app.bus.js.get_stream(app.bus.names.stream(StreamKind::Overdue)).await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let mut n = 0;
    for seq in 1..=last {
        let Ok(m) = stream.get_raw_message(seq).await else { continue };
        let o: Overdue = serde_json::from_slice(&m.payload).unwrap();
        n += usize::from(june(&o));
    }
    n
}

fn june(o: &Overdue) -> bool {
    o.indicator == "smartphone_adults" && o.period == "2024-06"
}

async fn units_arriving_one_by_one_are_incomplete_until_the_last_then_fire_once(db: Db) {
    let mut app = TestApp::spawn_at(db, t(BEFORE_DUE)).await;
    let province = |a: &TestApp| a.alerts.all().into_iter().filter(|x| x.org_unit == "89").collect::<Vec<_>>();
    for d in &DISTRICTS[..10] {
        app.publish("dic", &report(d)).await;
        app.wait_idle().await;
        let rows = tiendo::status::rows(&app.db, &tiendo_domain::Catalog::built_in()).await.unwrap();
        let p = rows.iter().find(|r| r.org_unit.as_str() == "89").expect("the province stands somewhere");
        assert_eq!(p.status.as_str(), "incomplete", "after {d}");
        assert!(province(&app).is_empty(), "nothing fires on a partial roll-up: {:?}", province(&app));
    }
    app.publish("dic", &report(DISTRICTS[10])).await;
    app.wait_for("the province's alert", WAIT, |a| !province(a).is_empty()).await;
    app.wait_idle().await;
    let fired = province(&app);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!((fired[0].state.as_str(), fired[0].status.as_str(), fired[0].coverage), ("firing", "behind", 1.0));
    app.cleanup().await;
}

async fn two_missing_districts_get_one_notice_then_the_province_is_judged_on_nine(db: Db) {
    let mut app = TestApp::spawn_at(db, t(BEFORE_DUE)).await;
    let notices = overdue(&app).await;
    let rows: Vec<_> = DISTRICTS[..9].iter().map(|d| report(d)).collect();
    app.publish("dic", &json!(rows)).await;
    app.wait_idle().await;
    assert!(app.alerts.all().iter().all(|a| a.org_unit != "89"), "the province waits for its reports");

    let of_june = || notices.all().into_iter().filter(june).collect::<Vec<_>>();
    // The last second of 15 July in An Giang: not due yet.
    app.clock.as_ref().unwrap().set(t(LAST_ON_TIME));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(of_june().is_empty(), "due only at midnight in An Giang: {:?}", of_june());

    app.clock.as_ref().unwrap().set(t(DUE));
    app.wait_for("the overdue notice", WAIT, |_| !of_june().is_empty()).await;
    app.wait_for("the province's alert", WAIT, |a| a.alerts.all().iter().any(|x| x.org_unit == "89")).await;
    app.wait_idle().await;
    let all = of_june();
    assert_eq!(all.len(), 1, "{all:?}");
    let n = &all[0];
    assert_eq!(
        (n.department.as_str(), n.indicator.as_str(), n.period.as_str(), n.due.as_str()),
        ("dic", "smartphone_adults", "2024-06", "2024-07-15")
    );
    assert_eq!((n.expected, n.received), (11, 9));
    let missing: Vec<(&str, &str)> = n.missing.iter().map(|m| (m.code.as_str(), m.name.as_str())).collect();
    assert_eq!(missing, [("893", "Chợ Mới"), ("894", "Thoại Sơn")]);
    assert_eq!(stored_notices(&app).await, 1);
    let alert = app.alerts.all().into_iter().find(|a| a.org_unit == "89").unwrap();
    assert_eq!((alert.state.as_str(), alert.status.as_str()), ("firing", "behind"));
    assert!((alert.coverage - 9.0 / 11.0).abs() < 1e-12, "{alert:?}");

    // A late report: the figure moves, the report counts as received but late.
    app.clock.as_ref().unwrap().advance(TimeDelta::days(2));
    app.publish("dic", &report("893")).await;
    app.wait_idle().await;
    let province = app.figure("smartphone_adults", "89", "2024-06").await.unwrap();
    assert_eq!(province.covered, 10);
    let labels = [("indicator", "smartphone_adults"), ("department", "dic")];
    assert_eq!(app.metric("tiendo_reports_expected", &labels).await, Some(11.0));
    assert_eq!(app.metric("tiendo_reports_received", &labels).await, Some(10.0));
    assert_eq!(app.metric("tiendo_reports_on_time", &labels).await, Some(9.0));
    let rate = app.metric("tiendo_reporting_rate_ratio", &labels).await.unwrap();
    assert!((rate - 10.0 / 11.0).abs() < 1e-9, "{rate}");
    assert_eq!(stored_notices(&app).await, 1, "the late report sends no second notice");
    app.cleanup().await;
}

async fn expected_reports_follow_the_tree_of_each_periods_end(db: Db) {
    let app = TestApp::spawn_at(db, t("2024-07-16T00:00:00Z")).await;
    let expected = |i: &'static str, d: &'static str| {
        let app = &app;
        async move { app.metric("tiendo_reports_expected", &[("indicator", i), ("department", d)]).await }
    };
    // June 2024: the eleven districts; the SME share from the province.
    assert_eq!(expected("smartphone_adults", "dic").await, Some(11.0));
    assert_eq!(expected("sme_digital_platforms", "dpi").await, Some(1.0));
    // September 2025: the 102 units of the new province.
    app.clock.as_ref().unwrap().set(t("2025-10-16T00:00:00Z"));
    assert_eq!(expected("smartphone_adults", "dic").await, Some(102.0));
    assert_eq!(expected("sme_digital_platforms", "dpi").await, Some(1.0));
    app.cleanup().await;
}

async fn a_restart_and_a_second_instance_around_the_due_date_send_the_notice_once(db: Db) {
    let mut app = TestApp::spawn_at(db, t(BEFORE_DUE)).await;
    let second = app.second_instance().await;
    let rows: Vec<_> = DISTRICTS[..10].iter().map(|d| report(d)).collect();
    app.publish("dic", &json!(rows)).await;
    app.wait_idle().await;
    // Killed where it stands just before the due date, started again just after it.
    app.crash().await;
    app.clock.as_ref().unwrap().set(t(DUE));
    app.restart().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while stored_notices(&app).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no overdue notice");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both instances keep looking at the clock for a while: still one notice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    app.wait_idle().await;
    assert_eq!(stored_notices(&app).await, 1);
    second.stop().await;
    app.cleanup().await;
}

/// The due periods alerting has acted on are found exactly, through their key, in a batch
/// larger than one statement's share (128 keys): those claimed, whichever indicator and period,
/// and none of the others. A period found claimed is one whose notices are not sent again.
async fn the_due_periods_acted_on_are_found_exactly_however_many_are_asked(db: Db) {
    use tiendo_store::reporting::{claim, claimed};
    let app = TestApp::namespace(db).await;
    let indicators =
        ["smartphone_adults", "fibre_households", "sme_digital_platforms"].map(|i| IndicatorId::parse(i).unwrap());
    // 60 months of three indicators, one in four claimed.
    let mut due = Vec::new();
    for m in 0..60 {
        let period: Period = format!("{}-{:02}", 2021 + m / 12, m % 12 + 1).parse().unwrap();
        for (k, indicator) in indicators.iter().enumerate() {
            due.push(((m * 3 + k) % 4 == 0, indicator.clone(), period));
        }
    }
    for (_, indicator, period) in due.iter().filter(|(c, _, _)| *c) {
        claim(&app.db, indicator, *period, t(DUE)).await.unwrap();
    }
    let asked: Vec<(IndicatorId, Period)> = due.iter().map(|(_, i, p)| (i.clone(), *p)).collect();
    assert_eq!(asked.len(), 180);
    let sorted = |keys: Vec<String>| {
        let mut keys = keys;
        keys.sort();
        keys
    };
    let found = sorted(claimed(&app.db, &asked).await.unwrap().iter().map(|(i, p)| format!("{i} {p}")).collect());
    let expected = sorted(due.iter().filter(|(c, _, _)| *c).map(|(_, i, p)| format!("{i} {p}")).collect());
    assert_eq!(expected.len(), 45);
    assert_eq!(found, expected);
    assert!(claimed(&app.db, &[]).await.unwrap().is_empty());
    app.cleanup().await;
}

db_matrix!(
    the_due_periods_acted_on_are_found_exactly_however_many_are_asked,
    units_arriving_one_by_one_are_incomplete_until_the_last_then_fire_once,
    two_missing_districts_get_one_notice_then_the_province_is_judged_on_nine,
    expected_reports_follow_the_tree_of_each_periods_end,
    a_restart_and_a_second_instance_around_the_due_date_send_the_notice_once,
    one_index_on_observations_serves_both_lookups_and_the_migration_undoes_it,
);

/// The indexes on `observations` other than its key, each as `name (column, column, …)`.
async fn observation_indexes(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'observations' \
             AND sql IS NOT NULL ORDER BY name"
        }
        _ => {
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'observations' \
             AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype = 'p') ORDER BY indexname"
        }
    };
    let rows = db.query_all(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter()
        .map(|r| {
            let name: String = r.try_get_by_index(0).unwrap();
            let definition: String = r.try_get_by_index(1).unwrap();
            let columns = definition[definition.rfind('(').unwrap()..].replace('"', "");
            format!("{name} {columns}")
        })
        .collect()
}

/// Issue 15, change 19: one index on `observations`, the period before the org unit, serves
/// both aggregation's last observation of a figure and the receipts of an indicator's period;
/// the two indexes it replaced are gone (one B-tree fewer written per observation). The
/// migration's way down brings them back, and the receipts read the same either way.
async fn one_index_on_observations_serves_both_lookups_and_the_migration_undoes_it(db: Db) {
    let mut app = TestApp::spawn_at(db, t(BEFORE_DUE)).await;
    for d in &DISTRICTS[..3] {
        app.publish("dic", &report(d)).await;
    }
    app.wait_idle().await;
    let indicator = IndicatorId::parse("smartphone_adults").unwrap();
    let period: Period = "2024-06".parse().unwrap();
    let receipts = || async {
        let mut units: Vec<String> = tiendo_store::reporting::receipts(&app.db, &indicator, period)
            .await
            .unwrap()
            .into_keys()
            .map(|u| u.to_string())
            .collect();
        units.sort();
        units
    };
    let reported: Vec<String> = DISTRICTS[..3].iter().map(|d| d.to_string()).collect();
    assert_eq!(receipts().await, reported);
    let one =
        vec!["observations_by_period_and_unit (indicator, period, org_unit, source_seq, source_index)".to_owned()];
    assert_eq!(observation_indexes(&app.db).await, one);
    if db == Db::Sqlite {
        // The two lookups as aggregation and alerting make them, planned on the one index:
        // the figure's with no sort of its own, the receipts' by its first two columns.
        for (lookup, plan) in [
            (
                "SELECT * FROM observations WHERE indicator = 'a' AND org_unit = 'b' AND period = 'c' \
                 ORDER BY source_seq DESC, source_index DESC LIMIT 1",
                "SEARCH observations USING INDEX observations_by_period_and_unit \
                 (indicator=? AND period=? AND org_unit=?)",
            ),
            (
                "SELECT org_unit, received_at FROM observations WHERE indicator = 'a' AND period = 'c'",
                "SEARCH observations USING INDEX observations_by_period_and_unit (indicator=? AND period=?)",
            ),
        ] {
            let explain = format!("EXPLAIN QUERY PLAN {lookup}");
            let rows = app.db.query_all(Statement::from_string(DatabaseBackend::Sqlite, explain)).await.unwrap();
            let steps: Vec<String> = rows.iter().map(|r| r.try_get::<String>("", "detail").unwrap()).collect();
            assert_eq!(steps, vec![plan.to_owned()], "{lookup}");
        }
    }

    migrate_down_through(&app.db, "m20261205_000003_one_observation_index").await;
    let two = vec![
        "observations_by_figure (indicator, org_unit, period, source_seq, source_index)".to_owned(),
        "observations_by_period (indicator, period)".to_owned(),
    ];
    assert_eq!(observation_indexes(&app.db).await, two);
    assert_eq!(receipts().await, reported);
    Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(observation_indexes(&app.db).await, one);
    app.cleanup().await;
}
