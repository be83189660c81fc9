//! The README's first command: `tiendo demo` tells its whole story, starting its own
//! nats-server when none answers at the configured URL; with `--serve` its pages stay up.

use std::sync::{Arc, Mutex};

use tiendo_settings::Settings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_starts_its_own_nats_server_and_tells_the_whole_story() {
    let mut settings = Settings::defaults();
    // Nothing listens on port 1: the demo must start a local server.
    settings.nats.url = "nats://127.0.0.1:1".into();
    let http = tiendo_testkit::free_addr();
    settings.http.listen = http;
    // `--serve`: once the story is told, its pages answer until told to stop.
    let pages = Arc::new(Mutex::new(Vec::new()));
    let seen = pages.clone();
    let serve = tiendo::demo::Serve::Until(Box::pin(async move {
        for path in ["/", "/indicators/smartphone_adults", "/alerts", "/api/v1/indicators"] {
            let page = tiendo_testkit::http::get(http, path).await;
            seen.lock().unwrap().push((path, page));
        }
    }));
    let mut out = Vec::new();
    tiendo::demo::run(settings, &mut out, serve).await.expect("the demo runs");
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&format!("Open http://{http}/ in a browser")), "{out}");
    let pages = pages.lock().unwrap();
    assert_eq!(pages.len(), 4);
    for (path, (code, body)) in pages.iter() {
        assert_eq!(*code, 200, "{path}: {body}");
    }
    assert!(pages[0].1 .1.contains("Dân số trưởng thành có điện thoại thông minh"), "{}", pages[0].1 .1);
    assert!(pages[1].1 .1.contains("data-period=\"2025-12\""), "the chart reaches the deadline");
    assert!(pages[2].1 .1.contains("an_giang_2025:online_public_services_adults:89:verdict"));
    assert!(pages[3].1 .1.contains("\"status\":\"missed\""));
    assert!(out.contains("started a local one"), "{out}");
    for needle in [
        "REJECTED  to gso",
        "forbidden",
        "invalid_field",
        "out_of_range",
        "ALERT FIRING   smartphone_adults @ 89 An Giang (2024-06)",
        "ALERT RESOLVED smartphone_adults @ 89 An Giang (2024-12)",
        "ALERT FIRING   telehealth_adults @ 89",
        "final trajectory table",
        "achieved",
        // Across the reform: the old communes, then the new province's units; a retired district refused.
        "ownership for 155 units",
        "ownership for 102 units",
        "inactive_org_unit org_unit `883` is not a unit on 2025-09-30",
        "30292 Phường Bình Đức",
        // The deadline: the plan's verdict, some achieved, some missed (exactly 50% misses "more than 50%").
        "the 2025 plan's verdict",
        "ALERT FIRING   online_public_services_adults @ 89",
        "status missed  [an_giang_2025:online_public_services_adults:89:verdict]",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
    assert_eq!(out.matches("ALERT FIRING   smartphone_adults @ 89 ").count(), 1, "{out}");
    // The verdict table, one line per indicator: its final figure, target and verdict.
    let verdicts = out.split("the 2025 plan's verdict").nth(1).expect("the verdict table");
    let verdict = |indicator: &str| -> Vec<&str> {
        let line = verdicts.lines().find(|l| l.split_whitespace().next() == Some(indicator));
        line.map(|l| l.split_whitespace().collect()).unwrap_or_default()
    };
    assert_eq!(verdict("smartphone_adults"), ["smartphone_adults", "80.6%", "against", "80.0%", "achieved"]);
    assert_eq!(
        verdict("online_public_services_adults"),
        ["online_public_services_adults", "50.0%", "against", "50.0%", "missed"]
    );
    assert_eq!(verdict("fiber_households"), ["fiber_households", "79.6%", "against", "80.0%", "missed"]);
    assert!(verdict("einvoice_businesses").is_empty(), "a monitored indicator gets no verdict");
}

/// Credentials in a URL never reach output: `tiendo demo`'s printed story and its logs, with
/// a NATS URL and a database URL that carry passwords.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_no_password_it_was_given() {
    let out = tokio::process::Command::new(tiendo_tests::fleet::binary("tiendo"))
        .arg("demo")
        .env("TIENDO__NATS__URL", "nats://tiendo:n4ts-s3cret@127.0.0.1:1")
        .env("TIENDO__DATABASE__URL", "postgres://tiendo:pg-s3cret@127.0.0.1:1/tiendo")
        .env("TIENDO__HTTP__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .output()
        .await
        .expect("tiendo demo runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The URL is named, its password is not.
    assert!(stdout.contains("No NATS server at nats://tiendo:<redacted>@127.0.0.1:1"), "{stdout}");
    for secret in ["n4ts-s3cret", "pg-s3cret"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} logged:\n{stderr}");
    }
}
