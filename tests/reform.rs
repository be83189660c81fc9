//! The 1 July 2025 reform and the 2025 deadline (issue 10), on SQLite and PostgreSQL: the tree
//! a figure rolls up through is the one of its period's end date; a unit reports only while
//! it exists; the old province lives on as the 2025 plan's territory; the plan's final period
//! gets a verdict with no tolerance; a second plan on the new province judges its own units.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tiendo_domain::{Catalog, OrgUnitCode};
use tiendo_tests::{counts, db_matrix, percent, Db, TestApp, DISTRICTS};

const WAIT: Duration = Duration::from_secs(30);

/// The built-in catalog plus a synthetic plan on the new province 91 (no real targets are
/// invented in the shipped catalog).
fn catalog_with_a_plan_on_91() -> String {
    format!(
        "{}\n[[plan]]\nid = \"test_91\"\nname = \"A test plan for the new An Giang\"\nscope = \"91\"\n\
         target_date = \"2026-12-31\"\n\n[[plan.indicator]]\nid = \"smartphone_adults\"\nbaseline = 79.0\n\
         baseline_date = \"2025-07-31\"\ntarget = 85.0\ncomparator = \"at_least\"\n",
        tiendo_domain::catalog::BUILT_IN
    )
}

/// The units of the new province, and those among them that kept a code of old An Giang.
fn new_units() -> (Vec<String>, BTreeSet<String>) {
    let c = Catalog::built_in();
    let day = "2025-12-31".parse().unwrap();
    let all: Vec<String> =
        c.tree().children_at(&OrgUnitCode::parse("91").unwrap(), day).iter().map(|u| u.to_string()).collect();
    let territory: BTreeSet<String> =
        c.tree().children_at(&OrgUnitCode::parse("89").unwrap(), day).iter().map(|u| u.to_string()).collect();
    (all, territory)
}

async fn the_territory_and_the_new_province_each_roll_up_exactly_their_own_units(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let (units, territory) = new_units();
    assert_eq!((units.len(), territory.len()), (102, 54));
    // Each unit its own figure, so a sum over the wrong units cannot come out right.
    let figure = |i: usize| (1_000 + 7 * i as u64, 2_000 + 11 * i as u64);
    let rows: Vec<_> = units
        .iter()
        .enumerate()
        .map(|(i, u)| counts(&format!("dec-{u}"), "smartphone_adults", u, "2025-12", figure(i).0, figure(i).1))
        .collect();
    app.publish("dic", &json!(rows)).await;
    app.wait_idle().await;
    let sum = |only: &dyn Fn(&str) -> bool| {
        units
            .iter()
            .enumerate()
            .filter(|(_, u)| only(u))
            .fold((0, 0, 0), |(n, d, c), (i, _)| (n + figure(i).0 as i64, d + figure(i).1 as i64, c + 1))
    };
    let old = app.figure("smartphone_adults", "89", "2025-12").await.expect("the territory has a figure");
    assert_eq!((old.sum_numerator, old.sum_denominator, old.covered), sum(&|u| territory.contains(u)));
    assert_eq!(old.covered, 54);
    let new = app.figure("smartphone_adults", "91", "2025-12").await.expect("the new province has a figure");
    assert_eq!((new.sum_numerator, new.sum_denominator, new.covered), sum(&|_| true));
    let announced = app.aggregates.all().into_iter().rfind(|a| a.org_unit == "89").unwrap();
    assert_eq!(announced.children_total, 54);
    app.cleanup().await;
}

async fn a_retired_district_and_a_unit_not_yet_formed_are_refused_as_inactive(db: Db) {
    let mut app = TestApp::spawn(db).await;
    // 883 is a district until 2025-07-01; 31006 kept a code of old Kiên Giang, so it exists
    // only from then; 91 before the reform was Kiên Giang, which the catalog does not cover.
    let batch = json!([
        counts("late-883", "smartphone_adults", "883", "2025-09", 1, 2),
        counts("early-31006", "smartphone_adults", "31006", "2025-03", 1, 2),
        counts("old-91", "smartphone_adults", "91", "2024-12", 1, 2),
        counts("never", "smartphone_adults", "77777", "2025-09", 1, 2),
        counts("ok-31006", "smartphone_adults", "31006", "2025-09", 1, 2),
    ]);
    app.publish("dic", &batch).await;
    app.wait_for("four rejections", WAIT, |a| a.rejections.all().len() >= 4).await;
    app.wait_idle().await;
    let mut got: Vec<(String, String)> = app.rejections.all().into_iter().map(|r| (r.event_id, r.reason)).collect();
    got.sort();
    let expected = [
        ("early-31006", "inactive_org_unit"),
        ("late-883", "inactive_org_unit"),
        ("never", "unknown_org_unit"),
        ("old-91", "inactive_org_unit"),
    ];
    assert_eq!(got, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let retired = app.rejections.all().into_iter().find(|r| r.event_id == "late-883").unwrap();
    assert!(retired.detail.contains("until 2025-06-30"), "{}", retired.detail);
    assert!(retired.detail.contains("30292 Phường Bình Đức"), "{}", retired.detail);
    let early = app.rejections.all().into_iter().find(|r| r.event_id == "early-31006").unwrap();
    assert!(early.detail.contains("from 2025-07-01"), "{}", early.detail);
    assert_eq!(app.observations().await, 1, "the unit of the new province, reporting after the reform, went through");
    app.cleanup().await;
}

async fn the_old_tree_still_rolls_2024_district_figures_into_89(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let rows: Vec<_> =
        DISTRICTS.iter().map(|d| counts(&format!("d-{d}"), "smartphone_adults", d, "2024-06", 700, 1000)).collect();
    app.publish("dic", &json!(rows)).await;
    app.wait_idle().await;
    let p = app.figure("smartphone_adults", "89", "2024-06").await.expect("the province of 2024");
    assert_eq!((p.sum_numerator, p.sum_denominator, p.covered), (7_700, 11_000, 11));
    assert!(app.figure("smartphone_adults", "91", "2024-06").await.is_none(), "91 did not exist in 2024");
    let announced = app.aggregates.all().into_iter().rfind(|a| a.org_unit == "89").unwrap();
    assert_eq!(announced.children_total, 11);
    app.cleanup().await;
}

async fn a_revision_of_the_final_figure_flips_missed_and_achieved_once_each_way(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let verdict =
        |a: &TestApp| a.alerts.all().into_iter().filter(|x| x.indicator == "sme_digital_platforms").collect::<Vec<_>>();
    let labels = [("plan", "an_giang_2025"), ("indicator", "sme_digital_platforms"), ("org_unit", "89")];
    // The plan's final period for a monthly indicator due 2025-12-31 is 2025-12.
    app.publish("dpi", &percent("dec", "sme_digital_platforms", "89", "2025-12", 49.0)).await;
    app.wait_for("the missed verdict", WAIT, |a| !verdict(a).is_empty()).await;
    app.wait_idle().await;
    assert_eq!(app.metric("tiendo_plan_verdict", &labels).await, Some(0.0));
    app.publish("dpi", &percent("dec-fix", "sme_digital_platforms", "89", "2025-12", 51.0)).await;
    app.wait_for("the verdict to resolve", WAIT, |a| verdict(a).len() >= 2).await;
    app.wait_idle().await;
    assert_eq!(app.metric("tiendo_plan_verdict", &labels).await, Some(1.0));
    app.publish("dpi", &percent("dec-fix-2", "sme_digital_platforms", "89", "2025-12", 48.5)).await;
    app.wait_for("the verdict to fire again", WAIT, |a| verdict(a).len() >= 3).await;
    app.wait_idle().await;
    let all = verdict(&app);
    let seen: Vec<(&str, &str, &str)> =
        all.iter().map(|a| (a.state.as_str(), a.status.as_str(), a.plan.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("firing", "missed", "an_giang_2025"),
            ("resolved", "achieved", "an_giang_2025"),
            ("firing", "missed", "an_giang_2025")
        ]
    );
    assert!(all.iter().all(|a| a.alert_id == "an_giang_2025:sme_digital_platforms:89:verdict"), "{all:?}");
    assert_eq!((all[0].target, all[0].expected), (50.0, 50.0));
    assert_eq!(app.metric("tiendo_plan_verdict", &labels).await, Some(0.0));
    // A later period is stored and rolled up, but never reopens the closed plan's verdict.
    app.publish("dpi", &percent("jan", "sme_digital_platforms", "89", "2026-01", 70.0)).await;
    app.wait_idle().await;
    assert!(app.figure("sme_digital_platforms", "89", "2026-01").await.is_some());
    assert_eq!(app.metric("tiendo_plan_verdict", &labels).await, Some(0.0));
    assert_eq!(verdict(&app).len(), 3, "{:?}", verdict(&app));
    app.cleanup().await;
}

async fn exactly_fifty_against_more_than_fifty_is_missed_and_a_near_miss_of_at_least_too(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.publish("dic", &percent("ops", "online_public_services_adults", "89", "2025-12", 50.0)).await;
    // 79.6% is within the plan's 1-point tolerance of 80%: at risk on the path, missed at the deadline.
    app.publish("dic", &percent("fiber", "fiber_households", "89", "2025-12", 79.6)).await;
    app.wait_for("two verdicts", WAIT, |a| a.alerts.all().len() >= 2).await;
    app.wait_idle().await;
    let mut got: Vec<(String, String, String)> =
        app.alerts.all().into_iter().map(|a| (a.indicator, a.state, a.status)).collect();
    got.sort();
    assert_eq!(
        got,
        [("fiber_households", "firing", "missed"), ("online_public_services_adults", "firing", "missed")]
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    for indicator in ["online_public_services_adults", "fiber_households"] {
        let labels = [("indicator", indicator), ("org_unit", "89")];
        assert_eq!(app.metric("tiendo_plan_verdict", &labels).await, Some(0.0), "{indicator}");
    }
    app.cleanup().await;
}

async fn a_second_plan_on_the_new_province_judges_its_own_units(db: Db) {
    let mut app = TestApp::spawn_with_catalog(db, &catalog_with_a_plan_on_91()).await;
    // 30292 kept a code of old An Giang: both plans judge it. 31006 kept one of Kiên Giang:
    // only the plan on 91 does. In September 2025 both stand at 70%, far behind both paths.
    let batch = json!([
        counts("a", "smartphone_adults", "30292", "2025-09", 700, 1000),
        counts("b", "smartphone_adults", "31006", "2025-09", 700, 1000),
    ]);
    app.publish("dic", &batch).await;
    app.wait_for("the alerts", WAIT, |a| a.alerts.all().len() >= 5).await;
    app.wait_idle().await;
    let mut got: Vec<(String, String)> = app.alerts.all().into_iter().map(|a| (a.plan, a.org_unit)).collect();
    got.sort();
    let expected = [
        ("an_giang_2025", "30292"),
        ("an_giang_2025", "89"),
        ("test_91", "30292"),
        ("test_91", "31006"),
        ("test_91", "91"),
    ];
    assert_eq!(got, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let behind = |p: &'static str, u: &'static str| [("plan", p), ("indicator", "smartphone_adults"), ("org_unit", u)];
    assert_eq!(app.metric("tiendo_indicator_behind", &behind("test_91", "31006")).await, Some(1.0));
    let outside = app.metric("tiendo_indicator_behind", &behind("an_giang_2025", "31006")).await;
    assert_eq!(outside, None, "outside the 2025 plan's territory");
    app.cleanup().await;
}

db_matrix!(
    the_territory_and_the_new_province_each_roll_up_exactly_their_own_units,
    a_retired_district_and_a_unit_not_yet_formed_are_refused_as_inactive,
    the_old_tree_still_rolls_2024_district_figures_into_89,
    a_revision_of_the_final_figure_flips_missed_and_achieved_once_each_way,
    exactly_fifty_against_more_than_fifty_is_missed_and_a_near_miss_of_at_least_too,
    a_second_plan_on_the_new_province_judges_its_own_units,
);
