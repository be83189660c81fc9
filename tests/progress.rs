//! Progress methods beyond the straight line (issue 12), through the pipeline, on SQLite and
//! PostgreSQL. Every expected value is worked out here by hand from the method's formulas
//! (docs/methods.md), never by calling the code under test.

use std::time::Duration;

use serde_json::json;
use tiendo_tests::{db_matrix, percent, Db, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// The built-in catalog plus three test plans on old An Giang (89), for yearly indicators, with
/// no baseline (the progress measure then counts whole years from the first figure, as Open SDG).
fn catalog() -> String {
    format!(
        r#"{}
[[plan]]
id = "sdg_rising"
name = "Open SDG's rising case"
scope = "89"
target_date = "2030-12-31"

[[plan.indicator]]
id = "digital_economy_grdp_share"
target = 80.0
comparator = "at_least"

[[plan.indicator]]
id = "digital_workforce_share"
direction = "increase"

[[plan]]
id = "sdg_falling"
name = "Open SDG's falling case"
scope = "89"
target_date = "2030-12-31"

[[plan.indicator]]
id = "digital_governance_schools"
target = 50.0
comparator = "at_most"

[[plan]]
id = "linear"
name = "A straight line"
scope = "89"
target_date = "2030-12-31"

[[plan.indicator]]
id = "digital_governance_higher_ed"
target = 20.0
comparator = "at_least"
"#,
        tiendo_domain::catalog::BUILT_IN
    )
}

fn year(event: &str, indicator: &str, y: u32, value: f64) -> serde_json::Value {
    percent(&format!("{event}-{y}"), indicator, "89", &y.to_string(), value)
}

fn close(actual: Option<f64>, expected: f64, what: &str) {
    let a = actual.unwrap_or_else(|| panic!("{what}: no value"));
    assert!((a - expected).abs() < 1e-9, "{what}: {a} against {expected}");
}

async fn open_sdgs_worked_cases_and_the_target_less_variant(db: Db) {
    let mut app = TestApp::spawn_with_catalog(db, &catalog()).await;
    // Rising: 50 (2015) → 60 (2021) against at least 80 in 2030: 6 years observed, 15 needed.
    app.publish(
        "gso",
        &json!([
            year("g", "digital_economy_grdp_share", 2015, 50.0),
            year("g", "digital_economy_grdp_share", 2021, 60.0)
        ]),
    )
    .await;
    // Falling: 100 (2015) → 80 (2020) against at most 50 in 2030: 5 years observed, 15 needed.
    app.publish(
        "doet",
        &json!([
            year("s", "digital_governance_schools", 2015, 100.0),
            year("s", "digital_governance_schools", 2020, 80.0)
        ]),
    )
    .await;
    // No target, rising is good: 2.0 (2015) → 2.1 (2021).
    app.publish(
        "dolisa",
        &json!([year("w", "digital_workforce_share", 2015, 2.0), year("w", "digital_workforce_share", 2021, 2.1)]),
    )
    .await;
    app.wait_idle().await;
    let score =
        |plan: &'static str, indicator: &'static str| [("plan", plan), ("indicator", indicator), ("org_unit", "89")];

    let observed = (60f64 / 50.0).powf(1.0 / 6.0) - 1.0;
    let required = (80f64 / 50.0).powf(1.0 / 15.0) - 1.0;
    let ratio = observed / required; // about 0.969: at least 0.95, substantial progress
    assert!((0.95..1.0).contains(&ratio), "{ratio}");
    let expected = 50.0 / 7.0 * (ratio - 0.60); // Open SDG's score above a ratio of 0.60
    close(
        app.metric("tiendo_indicator_progress_score", &score("sdg_rising", "digital_economy_grdp_share")).await,
        expected,
        "rising",
    );

    let observed = (80f64 / 100.0).powf(1.0 / 5.0) - 1.0;
    let required = (50f64 / 100.0).powf(1.0 / 15.0) - 1.0;
    let ratio = -observed / required.abs(); // a falling target: the observed fall counts as progress
    assert!((0.95..1.0).contains(&ratio), "{ratio}");
    close(
        app.metric("tiendo_indicator_progress_score", &score("sdg_falling", "digital_governance_schools")).await,
        50.0 / 7.0 * (ratio - 0.60),
        "falling",
    );

    let growth = (2.1f64 / 2.0).powf(1.0 / 6.0) - 1.0; // about 0.82% a year: from 0.5% to 1.5%, moderate
    assert!((0.005..0.015).contains(&growth), "{growth}");
    close(
        app.metric("tiendo_indicator_progress_score", &score("sdg_rising", "digital_workforce_share")).await,
        250.0 * growth - 1.25,
        "target-less",
    );

    let rows = tiendo::status::rows(&app.db, &tiendo_domain::Catalog::built_in()).await.unwrap();
    let category = |plan: &str, indicator: &str| {
        rows.iter()
            .find(|r| r.plan.as_str() == plan && r.indicator.as_str() == indicator && r.org_unit.as_str() == "89")
            .map(|r| (r.outlook.progress.as_str(), r.outlook.weather.as_str()))
    };
    // Two figures give a category, but no forecast: that needs three.
    assert_eq!(category("sdg_rising", "digital_economy_grdp_share"), Some(("substantial_progress", "not_available")));
    assert_eq!(category("sdg_falling", "digital_governance_schools"), Some(("substantial_progress", "not_available")));
    assert_eq!(category("sdg_rising", "digital_workforce_share"), Some(("moderate_progress", "not_available")));
    assert_eq!(
        app.metric("tiendo_indicator_projected_ratio", &score("sdg_rising", "digital_economy_grdp_share")).await,
        None
    );
    assert!(app.alerts.all().iter().all(|a| a.kind != "forecast"), "{:?}", app.alerts.all());
    app.cleanup().await;
}

async fn exactly_linear_figures_give_the_exact_attainment_date(db: Db) {
    let mut app = TestApp::spawn_with_catalog(db, &catalog()).await;
    // +2 a year from 10 in 2020: 20 is reached in 2025, whose last day is the attainment date.
    let rows: Vec<_> = [(2020, 10.0), (2021, 12.0), (2022, 14.0), (2023, 16.0)]
        .iter()
        .map(|(y, v)| year("h", "digital_governance_higher_ed", *y, *v))
        .collect();
    app.publish("doet", &json!(rows)).await;
    app.wait_idle().await;
    let labels = [("plan", "linear"), ("indicator", "digital_governance_higher_ed"), ("org_unit", "89")];
    let end_of_2025 = chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    close(
        app.metric("tiendo_indicator_expected_attainment_timestamp_seconds", &labels).await,
        end_of_2025.timestamp() as f64,
        "attainment",
    );
    // The line at 2030: 10 + 2 × 10 = 30%.
    close(app.metric("tiendo_indicator_projected_ratio", &labels).await, 0.30, "projection");
    app.cleanup().await;
}

async fn a_surge_then_a_plateau_raises_the_forecast_alert_while_still_on_track(db: Db) {
    let mut app = TestApp::spawn(db).await;
    // The 2025 plan: at least 80% by 2025-12-31, from 66.2% on 2023-02-13.
    let months = ["2023-12", "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"];
    let values = [70.0, 75.9, 76.0, 76.0, 76.0, 76.0, 76.0];
    let rows: Vec<_> =
        months.iter().zip(values).map(|(m, v)| percent(&format!("s-{m}"), "smartphone_adults", "89", m, v)).collect();
    app.publish("dic", &json!(rows)).await;
    let forecast = |a: &TestApp| a.alerts.all().into_iter().filter(|x| x.kind == "forecast").collect::<Vec<_>>();
    app.wait_for("the forecast alert", WAIT, |a| !forecast(a).is_empty()).await;
    app.wait_idle().await;

    // The straight path on 2024-06-30 (503 of 1052 days): 66.2 + 13.8 × 503 / 1052 ≈ 72.8 < 76.
    let path = 66.2 + 13.8 * 503.0 / 1052.0;
    assert!(76.0 > path);
    let labels = [("plan", "an_giang_2025"), ("indicator", "smartphone_adults"), ("org_unit", "89")];
    assert_eq!(app.metric("tiendo_indicator_behind", &labels).await, Some(0.0));
    assert!(app.alerts.all().iter().all(|a| a.kind != "trajectory"), "on track: no trajectory alert");

    // The line through the latest six (2024-01..06, t = 0..5 months) and its value at 2025-12 (t = 23).
    let ys = [75.9, 76.0, 76.0, 76.0, 76.0, 76.0];
    let (tm, ym) = (2.5, ys.iter().sum::<f64>() / 6.0);
    let sxy: f64 = ys.iter().enumerate().map(|(t, y)| (t as f64 - tm) * (y - ym)).sum();
    let sxx: f64 = (0..6).map(|t| (t as f64 - tm).powi(2)).sum();
    let projected = ym + sxy / sxx * (23.0 - tm);
    assert!(80.0 - projected > 1.0, "misses the target by more than the tolerance: {projected}");
    let fired = forecast(&app);
    assert_eq!(fired.len(), 1, "{fired:?}");
    let a = &fired[0];
    assert_eq!(
        (a.state.as_str(), a.status.as_str(), a.alert_id.as_str()),
        ("firing", "on_track", "an_giang_2025:smartphone_adults:89:forecast")
    );
    close(a.projected, projected, "projected");
    // Moving towards 80 but missing it by (80 − projected) / (80 − 76) > 20%: cloudy.
    assert!((80.0 - projected) / 4.0 > 0.20);
    assert_eq!(a.outlook, "cloudy");
    close(app.metric("tiendo_indicator_projected_ratio", &labels).await, projected / 100.0, "gauge");

    // Growth resumes: 77, 78, 79 for 2024-07..09. The latest six (2024-04..09, t = 0..5) are
    // 76, 76, 76, 77, 78, 79: mean 77, slope Σ(t−2.5)(y−77) / Σ(t−2.5)² = 11 / 17.5 a month, and at
    // 2025-12 (t = 20) the line reaches 77 + 11 / 17.5 × 17.5 = 88 ≥ 80: sun, and the alert resolves.
    // (If alerting meets 2024-08 before 2024-09, the alert resolves there already: 76, 76, 76, 76,
    // 77, 78 give 76.5 + 6.5 / 17.5 × 18.5 ≈ 83.4 at 2025-12. Either way, one resolution.)
    let more: Vec<_> = [("2024-07", 77.0), ("2024-08", 78.0), ("2024-09", 79.0)]
        .iter()
        .map(|(m, v)| percent(&format!("s-{m}"), "smartphone_adults", "89", m, *v))
        .collect();
    app.publish("dic", &json!(more)).await;
    app.wait_for("the forecast alert to resolve", WAIT, |a| forecast(a).len() == 2).await;
    app.wait_idle().await;
    let fired = forecast(&app);
    assert_eq!(fired.len(), 2, "{fired:?}");
    let b = &fired[1];
    assert_eq!(
        (b.state.as_str(), b.alert_id.as_str(), b.outlook.as_str()),
        ("resolved", "an_giang_2025:smartphone_adults:89:forecast", "sun")
    );
    assert!(b.projected.is_some_and(|p| p >= 80.0), "{b:?}");
    close(app.metric("tiendo_indicator_projected_ratio", &labels).await, 0.88, "gauge after growth resumes");
    app.cleanup().await;
}

/// Alerting reads every judged key's latest figures and first figure for a whole batch at
/// once (on PostgreSQL one statement each, with each key's own horizon and window); it must
/// find what the per-group queries find: periods ending on the same day (a month and its
/// quarter) come greatest period first, a horizon cuts later figures, a window keeps the
/// latest `n`, a figure without a value is passed over, and a key with none gets nothing.
async fn series_for_a_batch_agree_with_the_queries_per_group(db: Db) {
    use tiendo_domain::figure::FigureVersion;
    use tiendo_domain::{FigureKey, IndicatorId, OrgUnitCode, Percent, UnitKey};
    use tiendo_store::alerting::{self, SeriesAsk};
    let app = TestApp::spawn(db).await;
    let unit = |i: &str, u: &str| UnitKey {
        indicator: IndicatorId::parse(i).unwrap(),
        org_unit: OrgUnitCode::parse(u).unwrap(),
    };
    let mut stored = vec![];
    for (i, u, periods) in [
        (
            "smartphone_adults",
            "89",
            &["2023-01", "2023-02", "2023-03", "2023-Q1", "2023-04", "2024-06", "2025-12", "2026-02"][..],
        ),
        ("smartphone_adults", "883", &["2024-01", "2024-02"][..]),
        ("fiber_households", "89", &["2023-Q4", "2024-Q1", "2024-Q2"][..]),
    ] {
        for (n, p) in periods.iter().enumerate() {
            let UnitKey { indicator, org_unit } = unit(i, u);
            let key = FigureKey { indicator, org_unit, period: p.parse().unwrap() };
            // One figure without a value, which no read may return.
            let value = (p != &"2023-02").then(|| Percent::new(10.0 + n as f64).unwrap());
            stored.push(FigureVersion { key, value, version: 1 });
        }
    }
    let written = alerting::store_newer_figures(&app.db, &stored.iter().collect::<Vec<_>>()).await.unwrap();
    assert_eq!(written.len(), stored.len(), "nothing was stored before: every figure is written");
    let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let asks = vec![
        SeriesAsk { key: unit("smartphone_adults", "89"), until: date("2025-12-31"), n: 3, first: true },
        SeriesAsk { key: unit("smartphone_adults", "89"), until: date("2023-03-31"), n: 6, first: false },
        SeriesAsk { key: unit("smartphone_adults", "89"), until: date("2023-03-31"), n: 1, first: false },
        SeriesAsk { key: unit("smartphone_adults", "883"), until: date("2025-12-31"), n: 3, first: true },
        SeriesAsk { key: unit("fiber_households", "89"), until: date("2024-06-30"), n: 2, first: true },
        SeriesAsk { key: unit("fiber_households", "891"), until: date("2025-12-31"), n: 3, first: true },
        SeriesAsk { key: unit("smartphone_adults", "89"), until: date("2022-12-31"), n: 3, first: true },
    ];
    let batch = alerting::series_figures(&app.db, &asks).await.unwrap();
    let periods = |f: &[alerting::Latest]| f.iter().map(|l| l.period.to_string()).collect::<Vec<_>>();
    assert_eq!(periods(&batch[0].recent), ["2025-12", "2024-06", "2023-04"]);
    assert_eq!(batch[0].first.map(|f| f.period.to_string()).as_deref(), Some("2023-01"));
    assert_eq!(
        periods(&batch[1].recent),
        ["2023-Q1", "2023-03", "2023-01"],
        "same end day: the quarter first; 2023-02 has no value"
    );
    assert_eq!(batch[1].first, None, "not asked for");
    assert_eq!(periods(&batch[2].recent), ["2023-Q1"], "a window that ends within a day's periods");
    assert_eq!(periods(&batch[3].recent), ["2024-02", "2024-01"]);
    assert_eq!(periods(&batch[4].recent), ["2024-Q2", "2024-Q1"]);
    assert_eq!(batch[4].first.map(|f| f.period.to_string()).as_deref(), Some("2023-Q4"));
    assert_eq!(batch[5], Default::default(), "a key with no figure");
    assert_eq!(batch[6], Default::default(), "a horizon before every figure");
    for (ask, found) in asks.iter().zip(&batch) {
        let recent = alerting::recent_figures(&app.db, std::slice::from_ref(&ask.key), ask.until, ask.n).await.unwrap();
        assert_eq!(found.recent, recent.get(&ask.key).cloned().unwrap_or_default(), "{ask:?}");
        if ask.first {
            let first = alerting::first_figures(&app.db, std::slice::from_ref(&ask.key), ask.until).await.unwrap();
            assert_eq!(found.first, first.get(&ask.key).copied(), "{ask:?}");
        }
    }
    app.cleanup().await;
}

db_matrix!(
    open_sdgs_worked_cases_and_the_target_less_variant,
    exactly_linear_figures_give_the_exact_attainment_date,
    a_surge_then_a_plateau_raises_the_forecast_alert_while_still_on_track,
    series_for_a_batch_agree_with_the_queries_per_group,
);
