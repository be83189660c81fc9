//! The README's first command: `tiendo demo` tells its whole story, starting its own
//! nats-server when none answers at the configured URL.

use tiendo_settings::Settings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_starts_its_own_nats_server_and_tells_the_whole_story() {
    let mut settings = Settings::defaults();
    // Nothing listens on port 1: the demo must start a local server.
    settings.nats.url = "nats://127.0.0.1:1".into();
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    let mut out = Vec::new();
    tiendo::demo::run(settings, &mut out).await.expect("the demo runs");
    let out = String::from_utf8(out).unwrap();
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
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
    assert_eq!(out.matches("ALERT FIRING   smartphone_adults @ 89 ").count(), 1, "{out}");
}
