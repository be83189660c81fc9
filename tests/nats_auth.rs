//! The NATS permissions shipped in deploy/nats/nats-server.conf, against a real nats-server
//! started from that very file on a free port: a department publishes only its own
//! observations and reads only its own rejections, its own overdue-report notices and its own
//! indicators' alerts; the service user runs the whole pipeline.
//!
//! Needs `nats-server` (`NATS_SERVER_BIN`, else /usr/sbin/nats-server, else on PATH). Each
//! test starts its own server, so the fixed prefix `tiendo` that the file grants is safe here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use futures::StreamExt;
use serde_json::json;
use tiendo_bus::async_nats::{self, jetstream, Event, ServerError};
use tiendo_bus::{Bus, StreamKind};
use tiendo_settings::Settings;
use tokio_util::sync::CancellationToken;

/// The users of the shipped file that these tests log in as.
const USERS: [&str; 10] = ["tiendo", "dic", "doit", "dpi", "sbv", "doh", "doet", "dolisa", "tax", "gso"];

/// How long a message that must not arrive is waited for.
const QUIET: Duration = Duration::from_millis(500);

fn password(user: &str) -> String {
    format!("p-test-{user}")
}

/// A nats-server running the shipped configuration, killed on drop.
struct NatsServer {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NatsServer {
    /// Starts nats-server with a copy of the shipped file whose `listen` asks for a free port
    /// and whose JetStream store is a temporary folder; the port is read from the ports file.
    async fn start() -> anyhow::Result<Self> {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/nats-server.conf");
        let text = std::fs::read_to_string(&shipped).with_context(|| format!("reading {}", shipped.display()))?;
        let dir = tempfile::tempdir()?;
        let store = dir.path().join("jetstream");
        let mut replaced = (false, false);
        let config: String = text
            .lines()
            .map(|line| {
                if line.starts_with("listen:") {
                    replaced.0 = true;
                    "listen: 127.0.0.1:-1".to_owned()
                } else if line.trim_start().starts_with("store_dir:") {
                    replaced.1 = true;
                    format!("  store_dir: {:?}", store.display().to_string())
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        if replaced != (true, true) {
            bail!("{} no longer has a `listen:` line and a `store_dir:` line", shipped.display());
        }
        let conf = dir.path().join("nats-server.conf");
        std::fs::write(&conf, config)?;
        let log = std::fs::File::create(dir.path().join("nats-server.log"))?;
        let mut command = Command::new(nats_server_bin());
        command.arg("-c").arg(&conf).arg("--ports_file_dir").arg(dir.path()).stdout(Stdio::null()).stderr(log);
        for user in USERS {
            command.env(format!("NATS_PASSWORD_{}", user.to_uppercase()), password(user));
        }
        tiendo_testkit::child::dies_with_parent(&mut command);
        let child = command.spawn().context("starting nats-server (set NATS_SERVER_BIN if it is not on PATH)")?;
        let mut server = Self { child, url: String::new(), dir };
        server.url = server.wait_for_port().await?;
        Ok(server)
    }

    async fn wait_for_port(&mut self) -> anyhow::Result<String> {
        let ports = self.dir.path().join(format!("nats-server_{}.ports", self.child.id()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ports) {
                let v: serde_json::Value = serde_json::from_str(&text)?;
                if let Some(url) = v["nats"][0].as_str() {
                    return Ok(url.to_owned());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join("nats-server.log")).unwrap_or_default();
                bail!("nats-server exited with {status}:\n{log}");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("nats-server wrote no ports file within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// tiendo's settings for `user`, against this server.
    fn settings(&self, user: &str) -> Settings {
        let mut s = Settings::defaults();
        s.nats.url = self.url.as_str().into();
        s.nats.prefix = "tiendo".into();
        s.nats.user = Some(user.into());
        s.nats.password = Some(password(user).into());
        if user != "tiendo" {
            s.nats.inbox_prefix = Some(format!("_INBOX_{user}"));
        }
        s
    }

    /// `user`'s connection, as tiendo makes it.
    async fn bus(&self, user: &str) -> anyhow::Result<Bus> {
        Bus::connect(&self.settings(user).nats, &format!("test-{user}")).await
    }

    /// A plain client for `user` that records the errors the server sends it.
    async fn client(&self, user: &str) -> anyhow::Result<(async_nats::Client, Violations)> {
        let violations = Violations::default();
        // A loaded machine can refuse the first attempt; a few more are cheap.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let seen = violations.0.clone();
            let mut options = async_nats::ConnectOptions::with_user_and_password(user.into(), password(user));
            if user != "tiendo" {
                options = options.custom_inbox_prefix(format!("_INBOX_{user}"));
            }
            let connected = options
                .event_callback(move |event| {
                    let seen = seen.clone();
                    async move {
                        if let Event::ServerError(ServerError::Other(e)) = event {
                            seen.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                        }
                    }
                })
                .connect(self.url.as_str())
                .await;
            match connected {
                Ok(client) => return Ok((client, violations)),
                Err(e) if attempt >= 10 => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

fn nats_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return bin.into();
    }
    let sbin = Path::new("/usr/sbin/nats-server");
    if sbin.exists() {
        sbin.into()
    } else {
        "nats-server".into()
    }
}

/// The `-ERR` messages a client received, such as `Permissions Violation for Publish to "x"`.
#[derive(Clone, Default)]
struct Violations(Arc<Mutex<Vec<String>>>);

impl Violations {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until the server has reported a violation whose text contains `what`.
    async fn wait_for(&self, what: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if self.all().iter().any(|v| v.contains(what)) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("no violation containing `{what}` within 5 s; saw {:?}", self.all())
    }
}

/// The next message of `sub` within `within`, if any.
async fn next_within(sub: &mut async_nats::Subscriber, within: Duration) -> Option<async_nats::Message> {
    tokio::time::timeout(within, sub.next()).await.ok().flatten()
}

fn smartphones(district: &str, period: &str, numerator: u32) -> serde_json::Value {
    json!({
        "event_id": format!("nats-auth-{district}-{period}"),
        "indicator": "smartphone_adults",
        "org_unit": district,
        "period": period,
        "numerator": numerator,
        "denominator": 1000,
    })
}

#[tokio::test]
async fn the_service_user_runs_the_pipeline_and_a_department_gets_its_receipt_rejections_overdue_notices_and_alerts() {
    let server = NatsServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = server.settings("tiendo");
    settings.database.url = format!("sqlite://{}?mode=rwc", dir.path().join("tiendo.db").display()).into();
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    // Streams, consumers and migrations: everything the services set up, as the service user.
    let up = tiendo::Up::build(settings).await.unwrap();
    assert!(up.telemetry().readiness().is_ready(), "{:?}", up.telemetry().readiness().report());

    // Subscribed before the services run: on its first look at the (real) clock, alerting
    // finds each indicator's latest due period with no report at all in this fresh database,
    // and sends each owner its overdue notice at once.
    let (dic, violations) = server.client("dic").await.unwrap();
    let mut rejections = dic.subscribe("tiendo.rejected.dic").await.unwrap();
    let mut overdue = dic.subscribe("tiendo.overdue.dic").await.unwrap();
    let mut alerts = dic.subscribe("tiendo.alerts.smartphone_adults.>").await.unwrap();
    dic.flush().await.unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(up.run_until_stopped(shutdown.clone()));

    let notice = next_within(&mut overdue, Duration::from_secs(30)).await.expect("an overdue notice for dic");
    let notice: serde_json::Value = serde_json::from_slice(&notice.payload).unwrap();
    assert_eq!(notice["department"], "dic", "{notice}");

    // What `tiendo publish --department dic` does: the stream's receipt comes back.
    let mut batch: Vec<_> = ["883", "884", "886", "887", "888", "889", "890", "891", "892", "893", "894"]
        .iter()
        .map(|d| smartphones(d, "2024-06", 600))
        .collect();
    batch.push(smartphones("883", "2099-01", 600));
    let clerk = server.bus("dic").await.unwrap();
    let mut out = Vec::new();
    tiendo::publish::run(&clerk, "dic", serde_json::to_vec(&batch).unwrap(), Duration::ZERO, &mut out).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("stored in TIENDO_INGEST"), "{out}");

    let rejection = next_within(&mut rejections, Duration::from_secs(30)).await.expect("dic's rejection");
    assert!(String::from_utf8_lossy(&rejection.payload).contains("2099-01"));
    let alert = next_within(&mut alerts, Duration::from_secs(30)).await.expect("an alert for dic's indicator");
    assert!(alert.subject.starts_with("tiendo.alerts.smartphone_adults."), "{}", alert.subject);
    assert_eq!(violations.all(), Vec::<String>::new());

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_department_cannot_publish_as_another_department() {
    let server = NatsServer::start().await.unwrap();
    let service = server.bus("tiendo").await.unwrap();
    let mut stream = service.ensure_stream(StreamKind::Ingest, &Settings::defaults().pipeline).await.unwrap();

    let (dic, violations) = server.client("dic").await.unwrap();
    dic.publish("tiendo.ingest.doh", "[]".into()).await.unwrap();
    dic.flush().await.unwrap();
    violations.wait_for(r#"Permissions Violation for Publish to "tiendo.ingest.doh""#).await.unwrap();

    // Through JetStream, as `tiendo publish` does: no receipt, nothing stored.
    let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(1)).build(dic.clone());
    let receipt = async { js.publish("tiendo.ingest.doh", "[]".into()).await?.await.map_err(anyhow::Error::from) };
    assert!(receipt.await.is_err(), "dic got a receipt for doh's subject");
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
}

#[tokio::test]
async fn a_department_cannot_read_another_departments_rejections_overdue_notices_or_alerts() {
    let server = NatsServer::start().await.unwrap();
    let (dic, violations) = server.client("dic").await.unwrap();
    let (doh, doh_violations) = server.client("doh").await.unwrap();
    let mut snooped_rejections = dic.subscribe("tiendo.rejected.doh").await.unwrap();
    let mut snooped_overdue = dic.subscribe("tiendo.overdue.doh").await.unwrap();
    let mut snooped_alerts = dic.subscribe("tiendo.alerts.telehealth_adults.>").await.unwrap();
    let mut own_rejections = doh.subscribe("tiendo.rejected.doh").await.unwrap();
    let mut own_overdue = doh.subscribe("tiendo.overdue.doh").await.unwrap();
    let mut own_alerts = doh.subscribe("tiendo.alerts.telehealth_adults.>").await.unwrap();
    dic.flush().await.unwrap();
    doh.flush().await.unwrap();
    violations.wait_for(r#"Permissions Violation for Subscription to "tiendo.rejected.doh""#).await.unwrap();
    violations.wait_for(r#"Permissions Violation for Subscription to "tiendo.overdue.doh""#).await.unwrap();
    violations
        .wait_for(r#"Permissions Violation for Subscription to "tiendo.alerts.telehealth_adults.>""#)
        .await
        .unwrap();

    let service = server.bus("tiendo").await.unwrap();
    service.client.publish("tiendo.rejected.doh", "r".into()).await.unwrap();
    service.client.publish("tiendo.overdue.doh", "o".into()).await.unwrap();
    service.client.publish("tiendo.alerts.telehealth_adults.89", "a".into()).await.unwrap();
    service.client.flush().await.unwrap();

    // doh, whose they are, receives all three: so they were sent, and dic did not get them.
    assert!(next_within(&mut own_rejections, Duration::from_secs(5)).await.is_some());
    assert!(next_within(&mut own_overdue, Duration::from_secs(5)).await.is_some());
    assert!(next_within(&mut own_alerts, Duration::from_secs(5)).await.is_some());
    assert!(next_within(&mut snooped_rejections, QUIET).await.is_none());
    assert!(next_within(&mut snooped_overdue, QUIET).await.is_none());
    assert!(next_within(&mut snooped_alerts, QUIET).await.is_none());
    assert_eq!(doh_violations.all(), Vec::<String>::new());
}

#[tokio::test]
async fn a_department_cannot_reach_the_jetstream_api() {
    let server = NatsServer::start().await.unwrap();
    let service = server.bus("tiendo").await.unwrap();
    service.ensure_stream(StreamKind::Ingest, &Settings::defaults().pipeline).await.unwrap();

    let (dic, violations) = server.client("dic").await.unwrap();
    let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(1)).build(dic);
    assert!(js.get_stream("TIENDO_INGEST").await.is_err());
    violations.wait_for(r#"Permissions Violation for Publish to "$JS.API.STREAM.INFO.TIENDO_INGEST""#).await.unwrap();
    assert!(js.delete_stream("TIENDO_INGEST").await.is_err());
    violations.wait_for(r#"Permissions Violation for Publish to "$JS.API.STREAM.DELETE.TIENDO_INGEST""#).await.unwrap();
    assert!(service.js.get_stream("TIENDO_INGEST").await.is_ok(), "the stream must still be there");
}

#[tokio::test]
async fn a_department_cannot_read_the_inboxes_the_services_consume_from() {
    let server = NatsServer::start().await.unwrap();
    let (dic, violations) = server.client("dic").await.unwrap();
    let _all = dic.subscribe("_INBOX.>").await.unwrap();
    let _two_tokens = dic.subscribe("_INBOX.*").await.unwrap();
    let _replies = dic.subscribe("_INBOX.*.*").await.unwrap();
    let _another_departments = dic.subscribe("_INBOX_doh.>").await.unwrap();
    dic.flush().await.unwrap();
    violations.wait_for(r#"Permissions Violation for Subscription to "_INBOX.>""#).await.unwrap();
    violations.wait_for(r#"Permissions Violation for Subscription to "_INBOX.*""#).await.unwrap();
    violations.wait_for(r#"Permissions Violation for Subscription to "_INBOX.*.*""#).await.unwrap();
    violations.wait_for(r#"Permissions Violation for Subscription to "_INBOX_doh.>""#).await.unwrap();
}

#[tokio::test]
async fn the_service_user_creates_every_stream_and_consumes_through_the_jetstream_api() {
    let server = NatsServer::start().await.unwrap();
    let (client, violations) = server.client("tiendo").await.unwrap();
    let service =
        Bus { js: jetstream::new(client.clone()), client, names: tiendo_bus::Names::new("tiendo"), replicas: 1 };
    service.ensure_streams(&Settings::defaults().pipeline).await.unwrap();
    let consumer = service.ensure_consumer(StreamKind::Ingest, "ingest", &Settings::defaults().pipeline).await.unwrap();
    service.js.publish("tiendo.ingest.dic", "[]".into()).await.unwrap().await.unwrap();
    let mut messages = consumer.fetch().max_messages(1).messages().await.unwrap();
    let message = messages.next().await.expect("one message").unwrap();
    message.ack().await.unwrap();
    service.client.flush().await.unwrap();
    for kind in StreamKind::ALL {
        let name = service.names.stream(kind);
        assert!(service.js.get_stream(&name).await.is_ok(), "{name}");
    }
    assert_eq!(violations.all(), Vec::<String>::new());
}

#[tokio::test]
async fn a_department_cannot_publish_onto_the_pipelines_internal_subjects() {
    let server = NatsServer::start().await.unwrap();
    let (dic, violations) = server.client("dic").await.unwrap();
    // Past ingest or validation, a forged message would skip the checks.
    for subject in [
        "tiendo.received.dic",
        "tiendo.valid.smartphone_adults",
        "tiendo.rejected.doh",
        "tiendo.overdue.dic",
        "tiendo.aggregates.smartphone_adults.89",
        "tiendo.alerts.smartphone_adults.89",
        "tiendo.deadletter.aggregation",
    ] {
        dic.publish(subject, "forged".into()).await.unwrap();
        dic.flush().await.unwrap();
        violations.wait_for(&format!(r#"Permissions Violation for Publish to "{subject}""#)).await.unwrap();
    }
}
