//! Who can do what: department identity comes from the subject only (see tests/pipeline.rs),
//! the bus can be reached over TLS, and the HTTP endpoints serve health and metrics only.
//! NATS permissions per department are in tests/nats_auth.rs.

use std::path::Path;
use std::process::Command;

use tiendo_testkit::NatsServer;
use tiendo_tests::{counts, Db, TestApp};

/// A certificate authority and a server certificate for 127.0.0.1, made with openssl.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tiendo test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_over_tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let path = |f: &str| dir.path().join(f).display().to_string();
    let server = NatsServer::start_with(vec![
        "--tls".into(),
        "--tlscert".into(),
        path("server.pem"),
        "--tlskey".into(),
        path("server.key"),
    ])
    .await
    .unwrap();

    // Without the CA, the server's certificate is not trusted: the client never connects.
    let mut untrusted = tiendo_settings::Settings::defaults().nats;
    untrusted.url = server.url().into();
    untrusted.tls_required = true;
    if let Ok(bus) = tiendo_bus::Bus::connect(&untrusted, "untrusted").await {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert!(!bus.is_connected(), "a client without the CA must not get through");
    }

    let url = server.url();
    let ca = dir.path().join("ca.pem");
    let mut app = TestApp::namespace_with(Db::Sqlite, |s| {
        s.nats.url = url.into();
        s.nats.tls_required = true;
        s.nats.tls_ca_file = Some(ca);
    })
    .await;
    app.restart().await;
    app.publish("dic", &counts("tls-1", "smartphone_adults", "883", "2024-06", 3, 4)).await;
    app.wait_idle().await;
    let province = app.figure("smartphone_adults", "89", "2024-06").await.expect("rolled up over TLS");
    assert_eq!((province.sum_numerator, province.sum_denominator), (3, 4));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_endpoints_serve_health_metrics_and_the_read_only_pages_and_nothing_else() {
    let app = TestApp::spawn(Db::Sqlite).await;
    assert_eq!(app.http_get("/healthz").await.0, 200);
    assert_eq!(app.http_get("/readyz").await.0, 200);
    assert_eq!(app.http_get("/metrics").await.0, 200);
    assert_eq!(app.http_get("/").await.0, 200, "the web pages");
    for path in ["/admin", "/metrics/../etc/passwd", "/api/v1/observations", "/debug/pprof", "/events/x"] {
        assert_eq!(app.http_get(path).await.0, 404, "{path}");
    }
    assert!(tiendo_settings::Settings::defaults().http.listen.ip().is_loopback());
    app.cleanup().await;
}
