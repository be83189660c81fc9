//! The web pages and the JSON API over HTTP (issue 13), against the running pipeline: what
//! they show, in which language, the headers every response carries, escaping, errors, the
//! live event stream, and the standalone service riding out NATS and database outages. The
//! same pages in a real browser: tests/browser.rs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::{json, Value};
use tiendo_testkit::http::{fetch, Response};
use tiendo_testkit::Proxy;
use tiendo_tests::{counts, db_matrix, percent, Db, TestApp, DISTRICTS};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const SCRIPT: &str = "<script>alert(1)</script>";

async fn get(app: &TestApp, path: &str) -> Response {
    fetch(app.http, path, &[]).await
}

/// The built-in plan's indicators, from the catalog.
fn plan_indicators() -> Vec<String> {
    let catalog = tiendo_domain::Catalog::built_in();
    let plan = catalog.plans().next().expect("the built-in plan");
    plan.indicators.keys().map(|i| i.to_string()).collect()
}

/// Three months of smartphone counts for every district (so 89 rolls up three periods), and a
/// note on 883's latest.
async fn publish_three_months(app: &mut TestApp) {
    let mut rows = Vec::new();
    for (m, month) in ["2024-01", "2024-02", "2024-03"].iter().enumerate() {
        for d in DISTRICTS {
            rows.push(counts(&format!("s-{month}-{d}"), "smartphone_adults", d, month, 700 + 10 * m as u64, 1000));
        }
    }
    rows[2 * DISTRICTS.len()]["note"] = json!(SCRIPT);
    app.publish("dic", &json!(rows)).await;
    app.wait_idle().await;
}

async fn pages_and_api_read_the_store(db: Db) {
    let mut app = TestApp::spawn(db).await;
    publish_three_months(&mut app).await;
    for path in ["/", "/indicators/smartphone_adults", "/units/883", "/units/89", "/departments/dic", "/alerts"] {
        let r = get(&app, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"), "{path}");
    }
    // The overview lists every indicator of the plan once; 89's smartphone figure is 72%.
    let home = get(&app, "/").await.body;
    for id in plan_indicators() {
        assert_eq!(home.matches(&format!("data-indicator=\"{id}\"")).count(), 1, "{id}");
    }
    assert!(home.contains("72,0 %"), "89's March figure, written the Vietnamese way");
    // The chart: one point per stored period of the plan's territory.
    let page = get(&app, "/indicators/smartphone_adults").await.body;
    assert_eq!(page.matches("class=\"point\"").count(), 3, "{page}");
    for month in ["2024-01", "2024-02", "2024-03"] {
        assert!(page.contains(&format!("data-period=\"{month}\"")), "{month}");
    }
    // Every district's row, most behind first: all equal here, so by code.
    let first = page.find("data-org-unit=\"883\"").expect("883's row");
    assert!(first < page.find("data-org-unit=\"894\"").expect("894's row"));

    let api: Value = serde_json::from_str(&get(&app, "/api/v1/indicators").await.body).unwrap();
    let indicators = api["indicators"].as_array().unwrap();
    assert_eq!(indicators.len(), tiendo_domain::Catalog::built_in().indicators().count());
    let smartphone = indicators.iter().find(|i| i["id"] == "smartphone_adults").unwrap();
    let latest = &smartphone["plans"][0]["latest"];
    assert_eq!((latest["period"].as_str(), latest["value_percent"].as_f64()), (Some("2024-03"), Some(72.0)));
    assert_eq!(smartphone["plans"][0]["target_percent"].as_f64(), Some(80.0));
    assert_eq!(smartphone["plans"][0]["comparator"], "at_least");
    assert!(latest["expected_percent"].as_f64().is_some_and(|e| e > 66.2 && e < 80.0), "{latest}");

    let series: Value =
        serde_json::from_str(&get(&app, "/api/v1/indicators/smartphone_adults/series?org_unit=89").await.body).unwrap();
    let points = series["points"].as_array().unwrap();
    let got: Vec<(&str, f64, &str)> = points
        .iter()
        .map(|p| (p["period"].as_str().unwrap(), p["value_percent"].as_f64().unwrap(), p["source"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("2024-01", 70.0, "rollup"), ("2024-02", 71.0, "rollup"), ("2024-03", 72.0, "rollup")]);
    assert_eq!((points[0]["numerator"].as_u64(), points[0]["denominator"].as_u64()), (Some(7700), Some(11000)));
    assert_eq!(points[0]["children_covered"].as_i64(), Some(11));
    // Without org_unit: the plan's territory.
    let default: Value =
        serde_json::from_str(&get(&app, "/api/v1/indicators/smartphone_adults/series").await.body).unwrap();
    assert_eq!(default["org_unit"], "89");
    assert_eq!(default["points"].as_array().map(Vec::len), Some(3));
    app.cleanup().await;
}

async fn every_response_carries_the_security_headers_and_a_bad_request_gets_a_page_not_a_panic(db: Db) {
    let app = TestApp::spawn(db).await;
    let cases = [
        ("/", 200),
        ("/static/live.js", 200),
        ("/static/style.css", 200),
        ("/api/v1/indicators", 200),
        ("/nope", 404),
        ("/indicators/nope", 404),
        ("/indicators/%3Cscript%3E", 404),
        ("/units/99999", 404),
        ("/departments/nope", 404),
        ("/api/v1/nope", 404),
        ("/api/v1/indicators/nope", 404),
        ("/api/v1/indicators/smartphone_adults/series?org_unit=99999", 404),
        ("/?lang=fr", 400),
        ("/?sort=sideways", 400),
        ("/units/not%20a%20code", 400),
        ("/indicators/smartphone_adults?plan=nope", 400),
        ("/api/v1/indicators/smartphone_adults/series?org_unit=%21%21", 400),
    ];
    for (path, code) in cases {
        let r = get(&app, path).await;
        assert_eq!(r.status, code, "{path}: {}", r.body);
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{path}: {csp:?}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        if path.starts_with("/api/") && code != 200 {
            let error: Value = serde_json::from_str(&r.body).expect("API errors are JSON");
            assert_eq!(error["status"].as_u64(), Some(code as u64), "{path}");
        } else if code != 200 {
            assert!(r.body.contains(&format!("data-error=\"{code}\"")), "{path}: an error page: {}", r.body);
        }
    }
    // Whatever the path, an answer: never a dropped connection or a 500.
    let mut rng = rand::rng();
    for _ in 0..200 {
        let segment: String = (0..rng.random_range(1..24))
            .map(|_| {
                let c = rng.random_range(0x21u8..0x7f) as char;
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else {
                    format!("%{:02X}", c as u8)
                }
            })
            .collect();
        let prefix =
            ["/", "/indicators/", "/units/", "/departments/", "/api/v1/indicators/", "/?lang="][rng.random_range(0..6)];
        let path = format!("{prefix}{segment}");
        let code = get(&app, &path).await.status;
        assert!([200, 400, 404].contains(&code), "{path}: {code}");
    }
    app.cleanup().await;
}

async fn what_a_department_sent_is_shown_as_text(db: Db) {
    let mut app = TestApp::spawn(db).await;
    publish_three_months(&mut app).await;
    let bad = json!({"event_id": "<b>id</b>", "indicator": "<img src=x onerror=alert(2)>", "org_unit": "883",
                     "period": "2024-01", "value": 50});
    app.publish("dic", &bad).await;
    app.wait_for("the rejection", WAIT, |a| !a.rejections.all().is_empty()).await;
    let page = get(&app, "/indicators/smartphone_adults").await.body;
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the note, escaped");
    assert!(!page.contains(SCRIPT));
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let page = get(&app, "/departments/dic").await.body;
        if page.contains("unknown_indicator") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"), "the detail, escaped: {page}");
    assert!(page.contains("&lt;b&gt;id&lt;/b&gt;"), "the event id, escaped: {page}");
    assert!(!page.contains("<img src=x") && !page.contains("<b>id</b>"));
    app.cleanup().await;
}

async fn vietnamese_by_default_and_english_on_request() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let vi = get(&app, "/").await.body;
    assert!(vi.contains("<html lang=\"vi\">") && vi.contains("Chỉ tiêu") && vi.contains("Tổng quan"), "{vi}");
    assert!(vi.contains("Dân số trưởng thành có điện thoại thông minh"), "the catalog's Vietnamese names");
    let en = fetch(app.http, "/", &[("Accept-Language", "en-US,en;q=0.9")]).await.body;
    assert!(en.contains("<html lang=\"en\">") && en.contains("Indicator") && en.contains("Adults with a smartphone"));
    let asked = fetch(app.http, "/?lang=vi", &[("Accept-Language", "en-US")]).await.body;
    assert!(asked.contains("<html lang=\"vi\">"), "the query wins over the browser");
    let en = get(&app, "/?lang=en").await.body;
    assert!(en.contains("<html lang=\"en\">"));
    assert!(en.contains("href=\"/alerts?lang=en\""), "links keep the language asked for");
    assert!(en.contains("href=\"/?lang=vi\""), "and offer the other one");
    app.cleanup().await;
}

/// `tiendo_web_feed_messages_total{source}`, 0 before the first.
async fn feed_read(app: &TestApp, source: &str) -> f64 {
    app.metric("tiendo_web_feed_messages_total", &[("source", source)]).await.unwrap_or(0.0)
}

async fn the_event_stream_names_what_changed() {
    let mut app = TestApp::spawn(Db::Sqlite).await;
    // No page listens yet: the feed reads alerting's notice of the figure, not its aggregate.
    app.publish("dic", &percent("e0", "smartphone_adults", "884", "2024-01", 70.0)).await;
    app.wait_idle().await;
    let deadline = Instant::now() + WAIT;
    while feed_read(&app, "judged").await == 0.0 {
        assert!(Instant::now() < deadline, "the web never heard alerting's notice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(feed_read(&app, "aggregates").await, 0.0, "aggregates read with no page listening");

    let mut stream = tokio::net::TcpStream::connect(app.http).await.unwrap();
    stream.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n").await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // The headers first: the stream is open before anything is published.
    while !seen.contains("\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf)).await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");
    app.publish("dic", &percent("e1", "smartphone_adults", "883", "2024-01", 70.0)).await;
    let deadline = Instant::now() + WAIT;
    while !(seen.contains("\"kind\":\"judged\"") && seen.contains("\"u:89\"")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut buf)).await.expect("an event in time").unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("\"kind\":\"figure\""), "the aggregate too: {seen}");
    assert!(seen.contains("\"i:smartphone_adults\""));
    let read = feed_read(&app, "aggregates").await;
    assert!(read > 0.0, "read while the page listens");

    // The page leaves: within the feed's recheck (1 s) it stops reading the aggregates.
    drop(stream);
    let deadline = Instant::now() + WAIT;
    while app.metric("tiendo_web_live_clients", &[]).await != Some(0.0) {
        assert!(Instant::now() < deadline, "the page is still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let judged = feed_read(&app, "judged").await;
    app.publish("dic", &percent("e2", "smartphone_adults", "886", "2024-01", 70.0)).await;
    app.wait_idle().await;
    while feed_read(&app, "judged").await == judged {
        assert!(Instant::now() < deadline, "the web never heard alerting's notice of e2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(feed_read(&app, "aggregates").await, read, "aggregates read after the page left");
    app.cleanup().await;
}

/// Waits until `path` answers `code`.
async fn until_status(addr: SocketAddr, path: &str, code: u16) -> Response {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = fetch(addr, path, &[]).await;
        if r.status == code {
            return r;
        }
        assert!(Instant::now() < deadline, "{path} never answered {code}; last {}: {}", r.status, r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_standalone_service_stays_up_while_nats_or_the_database_is_down() {
    let mut app = TestApp::spawn(Db::Postgres).await;
    publish_three_months(&mut app).await;
    let nats = Proxy::start(tiendo_tests::nats_addr()).await.unwrap();
    let postgres = Proxy::start(tiendo_tests::postgres_addr()).await.unwrap();
    let mut settings = app.settings.clone();
    settings.nats.url = format!("nats://{}", nats.addr).into();
    settings.database.url = settings
        .database
        .url
        .expose()
        .replace(&tiendo_tests::postgres_addr().to_string(), &postgres.addr.to_string())
        .into();
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    // Both down before it starts: it serves anyway, and says what is missing.
    nats.cut();
    postgres.cut();
    let stop = CancellationToken::new();
    let web = tiendo_web::start(settings, tiendo_runtime::system_clock(), stop.clone()).await.unwrap();
    let addr = web.addr;
    let ready = until_status(addr, "/readyz", 503).await.body;
    assert!(ready.contains("database: not ready") && ready.contains("nats: not ready"), "{ready}");
    assert_eq!(fetch(addr, "/healthz", &[]).await.status, 200);
    let page = until_status(addr, "/", 503).await.body;
    assert!(page.contains("Không đọc được cơ sở dữ liệu"), "{page}");

    nats.restore();
    postgres.restore();
    until_status(addr, "/readyz", 200).await;
    let page = until_status(addr, "/", 200).await.body;
    assert!(page.contains("72,0 %") && !page.contains("class=\"banner outage\""), "{page}");

    nats.cut();
    let ready = until_status(addr, "/readyz", 503).await.body;
    assert!(ready.contains("nats: not ready") && ready.contains("database: ok"), "{ready}");
    let page = until_status(addr, "/", 200).await.body;
    assert!(page.contains("class=\"banner outage\""), "the stored figures, and a word that they may be stale");
    nats.restore();
    until_status(addr, "/readyz", 200).await;

    postgres.cut();
    let page = until_status(addr, "/indicators/smartphone_adults", 503).await.body;
    assert!(page.contains("data-error=\"503\""), "{page}");
    let api = until_status(addr, "/api/v1/indicators", 503).await.body;
    assert!(api.contains("\"status\":503"), "{api}");
    postgres.restore();
    until_status(addr, "/indicators/smartphone_adults", 200).await;
    web.stop().await;
    app.cleanup().await;
}

db_matrix!(
    pages_and_api_read_the_store,
    every_response_carries_the_security_headers_and_a_bad_request_gets_a_page_not_a_panic,
    what_a_department_sent_is_shown_as_text,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vietnamese_by_default_english_on_request() {
    vietnamese_by_default_and_english_on_request().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_tells_a_page_what_changed() {
    the_event_stream_names_what_changed().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_service_alone_rides_out_nats_and_database_outages() {
    the_standalone_service_stays_up_while_nats_or_the_database_is_down().await
}
