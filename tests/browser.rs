//! The web pages in a real browser (issue 13): Debian's headless Chromium over WebDriver,
//! against the running pipeline. Each test saves screenshots under `target/screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install chromium
//! chromium-driver`; scripts/services.sh installs them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tiendo_testkit::browser::Browser;
use tiendo_tests::{counts, Db, TestApp, DISTRICTS};

const WAIT: Duration = Duration::from_secs(30);
/// How soon an open page must show a new figure (issue 13).
const LIVE_WITHIN: Duration = Duration::from_secs(2);
const SCRIPT: &str = "<script>alert(1)</script>";

/// Smartphone ownership per 1,000 adults in every district, by month: growth that flattens.
const MONTHS: [(&str, u64); 6] =
    [("2024-01", 700), ("2024-02", 720), ("2024-03", 730), ("2024-04", 735), ("2024-05", 738), ("2024-06", 740)];

fn screenshot(name: &str) -> PathBuf {
    // target/debug/deps/<test binary> → target/screenshots/<name>.png
    let exe = std::env::current_exe().expect("current exe");
    let target = exe.ancestors().nth(3).expect("target/").to_path_buf();
    target.join("screenshots").join(format!("{name}.png"))
}

async fn publish_months(app: &mut TestApp, months: &[(&str, u64)]) {
    let mut rows = Vec::new();
    for (month, per_thousand) in months {
        for d in DISTRICTS {
            let mut row = counts(&format!("s-{month}-{d}"), "smartphone_adults", d, month, *per_thousand, 1000);
            if d == "883" && *month == "2024-06" {
                row["note"] = json!(SCRIPT);
            }
            rows.push(row);
        }
    }
    app.publish("dic", &json!(rows)).await;
    app.wait_idle().await;
}

async fn browser() -> Browser {
    Browser::start("vi-VN,vi").await.expect("headless Chromium starts")
}

fn url(app: &TestApp, path: &str) -> String {
    format!("http://{}{path}", app.http)
}

/// Runs `script` and returns its string result.
async fn text(b: &Browser, script: &str) -> String {
    b.run(script, json!([])).await.unwrap().as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_lists_every_indicator_of_the_plan_in_vietnamese_and_in_english() {
    let mut app = TestApp::spawn(Db::Sqlite).await;
    publish_months(&mut app, &MONTHS[..3]).await;
    let b = browser().await;
    b.open(&url(&app, "/")).await.unwrap();
    let catalog = tiendo_domain::Catalog::built_in();
    let plan = catalog.plans().next().unwrap();
    let mut expected: Vec<String> = plan.indicators.keys().map(|i| i.to_string()).collect();
    expected.sort();
    let listed = b
        .run(
            "return [...document.querySelectorAll('section[data-plan=\"an_giang_2025\"] tbody tr[data-indicator]')]\
               .map(r => r.dataset.indicator).sort();",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(listed, json!(expected));
    assert_eq!(text(&b, "return document.documentElement.lang;").await, "vi");
    let headers =
        text(&b, "return [...document.querySelectorAll('thead th')].map(t => t.textContent).join('|');").await;
    for label in ["Chỉ tiêu", "Số liệu", "Trạng thái", "Tiến bộ", "Triển vọng", "Tỷ lệ báo cáo"]
    {
        assert!(headers.contains(label), "{label} in {headers}");
    }
    let smartphone =
        "return document.querySelector('tr[data-indicator=\"smartphone_adults\"] [data-cell=\"status\"]').textContent;";
    let vi_status = text(&b, smartphone).await;
    assert!(["Đúng tiến độ", "Có nguy cơ chậm", "Chậm tiến độ"].iter().any(|s| vi_status.contains(s)), "{vi_status}");
    b.screenshot(&screenshot("overview-vi")).await.unwrap();

    b.open(&url(&app, "/?lang=en")).await.unwrap();
    assert_eq!(text(&b, "return document.documentElement.lang;").await, "en");
    let headers =
        text(&b, "return [...document.querySelectorAll('thead th')].map(t => t.textContent).join('|');").await;
    for label in ["Indicator", "Figure", "Status", "Progress", "Outlook", "Reporting rate"] {
        assert!(headers.contains(label), "{label} in {headers}");
    }
    let en_status = text(&b, smartphone).await;
    assert!(["On track", "At risk", "Behind"].iter().any(|s| en_status.contains(s)), "{en_status}");
    b.screenshot(&screenshot("overview-en")).await.unwrap();
    b.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indicator_chart_has_one_point_per_stored_period_and_notes_stay_text() {
    let mut app = TestApp::spawn(Db::Sqlite).await;
    publish_months(&mut app, &MONTHS).await;
    let b = browser().await;
    b.open(&url(&app, "/indicators/smartphone_adults")).await.unwrap();
    let drawn = b
        .run("return [...document.querySelectorAll('svg.chart [data-period]')].map(p => p.dataset.period);", json!([]))
        .await
        .unwrap();
    let stored: Value =
        serde_json::from_str(&app.http_get("/api/v1/indicators/smartphone_adults/series?org_unit=89").await.1).unwrap();
    let stored: Vec<Value> = stored["points"].as_array().unwrap().iter().map(|p| p["period"].clone()).collect();
    assert_eq!(stored.len(), MONTHS.len());
    assert_eq!(drawn, json!(stored), "one point per stored period, in order");
    let shapes = text(
        &b,
        "return ['path', 'band', 'trend', 'target'].filter(c => document.querySelector('svg.chart .' + c)).join(' ');",
    )
    .await;
    assert_eq!(shapes, "path band trend target", "the path, its tolerance band, the trend and the target");
    // The note a department sent: text in its cell, no element, no script run.
    let note = b
        .run(
            "const c = document.querySelector('tr[data-org-unit=\"883\"] [data-cell=\"note\"]'); \
             return [c.textContent, c.children.length, document.querySelectorAll('main script').length];",
            json!([]),
        )
        .await
        .unwrap();
    assert_eq!(note, json!([SCRIPT, 0, 0]));
    b.screenshot(&screenshot("indicator")).await.unwrap();
    for (name, path) in [("unit", "/units/883"), ("department", "/departments/dic"), ("alerts", "/alerts")] {
        b.open(&url(&app, path)).await.unwrap();
        assert_eq!(text(&b, "return document.querySelector('main').dataset.error || 'ok';").await, "ok", "{path}");
        b.screenshot(&screenshot(name)).await.unwrap();
    }
    b.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_a_figure_changes_the_open_pages_within_two_seconds_without_a_reload() {
    let mut app = TestApp::spawn(Db::Sqlite).await;
    publish_months(&mut app, &MONTHS[..3]).await;
    let overview = browser().await;
    let indicator = browser().await;
    overview.open(&url(&app, "/")).await.unwrap();
    indicator.open(&url(&app, "/indicators/smartphone_adults")).await.unwrap();
    for b in [&overview, &indicator] {
        b.wait_until(
            "the live connection",
            "return document.getElementById('live-state').dataset.connected === 'true';",
            WAIT,
        )
        .await
        .unwrap();
        // Gone if the page reloads.
        b.run("window.tiendoMarker = 'still the same page';", json!([])).await.unwrap();
    }
    let cell =
        "return document.querySelector('tr[data-indicator=\"smartphone_adults\"] [data-cell=\"value\"]').textContent;";
    assert_eq!(text(&overview, cell).await, "73,0 %");
    let published = Instant::now();
    publish_months(&mut app, &MONTHS[3..4]).await;
    let on_overview = overview
        .wait_until(
            "the overview's new figure",
            "return document.querySelector('tr[data-indicator=\"smartphone_adults\"] [data-cell=\"value\"]').textContent === '73,5 %';",
            WAIT,
        )
        .await
        .unwrap();
    let on_chart = indicator
        .wait_until(
            "the chart's new point",
            "return document.querySelectorAll('svg.chart [data-period]').length === 4;",
            WAIT,
        )
        .await
        .unwrap();
    let seen = published.elapsed();
    eprintln!(
        "live: published to shown {seen:?} (after the idle pipeline: overview {on_overview:?}, chart {on_chart:?})"
    );
    for b in [&overview, &indicator] {
        assert_eq!(text(b, "return window.tiendoMarker;").await, "still the same page", "no reload");
    }
    assert!(
        seen <= LIVE_WITHIN,
        "the pages showed the figure {seen:?} after it was published (overview {on_overview:?}, chart {on_chart:?} \
         after the pipeline was idle)"
    );
    overview.close().await;
    indicator.close().await;
    app.cleanup().await;
}
