//! The integration-test harness: starts the real `tiendo up` in-process against the real NATS
//! server and a real database, each test in its own namespace, and hands back a [`TestApp`]
//! with helpers to publish as a department and to read what came out.
//!
//! Each test gets a fresh subject prefix (so its own streams and consumers) and a fresh
//! database: an SQLite file in a temporary folder, or a new PostgreSQL database. Tests run
//! in parallel and never see each other's data.
//!
//! Environment: `TIENDO_TEST_NATS_URL` (default `nats://127.0.0.1:4222`),
//! `TIENDO_TEST_POSTGRES_URL` (an admin URL, default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! # Layout
//! - [`Db`]: which database a test runs on; [`db_matrix!`] runs a test on both.
//! - [`TestApp`]: spawn, publish, wait, read, crash and restart.
//! - [`Fleet`]: the four services as separate processes, to kill with SIGKILL.
//! - [`servers`]: a private nats-server and a proxy to cut PostgreSQL, for fault tests.
//! - [`story`]: a stream with revisions and reused ids, and the figures it must produce.

pub mod fleet;
pub mod servers;
pub mod story;

pub use fleet::Fleet;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use tiendo::Up;
use tiendo_bus::{Bus, StreamKind};
use tiendo_proto::v1::{Aggregate, Alert, Rejection};
use tiendo_settings::Settings;
use tiendo_store::entity::{figure, observation};
use tiendo_store::sea_orm::{self, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(db: Db)` as two tests, `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! db_matrix {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Db::Postgres).await
                }
            }
        )*
    };
}

fn nats_url() -> String {
    std::env::var("TIENDO_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn postgres_admin_url() -> String {
    std::env::var("TIENDO_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(tag: &str) -> String {
    format!("t{tag}{}_{:08x}", chrono::Utc::now().format("%H%M%S"), rand::random::<u32>())
}

/// Messages seen on a core subscription, collected in the background.
pub struct Seen<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T: Clone> Seen<T> {
    pub fn all(&self) -> Vec<T> {
        self.items.lock().unwrap().clone()
    }
}

async fn collect<T: serde::de::DeserializeOwned + Send + 'static>(bus: &Bus, subject: String) -> Seen<T> {
    let mut sub = bus.client.subscribe(subject).await.expect("subscribe");
    bus.client.flush().await.expect("flush");
    let items = Arc::new(Mutex::new(Vec::new()));
    let sink = items.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Ok(v) = serde_json::from_slice::<T>(&m.payload) {
                sink.lock().unwrap().push(v);
            }
        }
    });
    Seen { items }
}

/// A running `tiendo up` with its own namespace.
pub struct TestApp {
    pub settings: Settings,
    /// The test's own connection, as a department would have.
    pub bus: Bus,
    pub db: DatabaseConnection,
    pub http: std::net::SocketAddr,
    pub rejections: Seen<Rejection>,
    pub alerts: Seen<Alert>,
    pub aggregates: Seen<Aggregate>,
    running: Option<(CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    pg_database: Option<String>,
    _dir: tempfile::TempDir,
    published: u64,
}

impl TestApp {
    /// Starts tiendo (`tiendo up`, in-process) on `db` in a fresh namespace.
    pub async fn spawn(db: Db) -> TestApp {
        let mut app = Self::namespace(db).await;
        let (running, http) = Self::start(&app.settings).await;
        app.running = Some(running);
        app.http = http;
        app
    }

    /// A fresh namespace (prefix, database, subscriptions) with no services running: for
    /// tests that run the services as processes ([`Fleet`]).
    pub async fn namespace(db: Db) -> TestApp {
        Self::namespace_with(db, |_| {}).await
    }

    /// As [`TestApp::namespace`], with settings adjusted by `configure` (another NATS server,
    /// another database host, pipeline limits) before anything connects.
    pub async fn namespace_with(db: Db, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::defaults();
        settings.nats.url = nats_url();
        settings.nats.prefix = unique("");
        settings.http.listen = "127.0.0.1:0".parse().unwrap();
        settings.pipeline.ack_wait_secs = 2;
        settings.pipeline.retention_days = 1;
        let mut pg_database = None;
        settings.database.url = match db {
            Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
            Db::Postgres => {
                let name = unique("db");
                let admin = sea_orm::Database::connect(postgres_admin_url()).await.expect("PostgreSQL is reachable");
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
                admin.close().await.ok();
                let base = postgres_admin_url();
                let url = format!("{}/{name}", &base[..base.rfind('/').expect("admin URL names a database")]);
                pg_database = Some(name);
                url
            }
        };
        // The test reads the database directly, even when `configure` routes the services
        // through a proxy.
        let direct = settings.database.clone();
        configure(&mut settings);
        let bus = Bus::connect(&settings.nats, "tiendo-test").await.expect("NATS is reachable");
        let prefix = settings.nats.prefix.clone();
        let rejections = collect(&bus, format!("{prefix}.rejected.>")).await;
        let alerts = collect(&bus, format!("{prefix}.alerts.>")).await;
        let aggregates = collect(&bus, format!("{prefix}.aggregates.>")).await;
        // Migrated here so the test can read tables before any service has started.
        let db = tiendo_store::connect(&direct).await.expect("database");
        tiendo_store::migrate(&db).await.expect("migrations");
        TestApp {
            settings,
            bus,
            db,
            http: "127.0.0.1:9".parse().unwrap(),
            rejections,
            alerts,
            aggregates,
            running: None,
            pg_database,
            _dir: dir,
            published: 0,
        }
    }

    async fn start(
        settings: &Settings,
    ) -> ((CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>), std::net::SocketAddr) {
        let up = Up::build(settings.clone()).await.expect("tiendo up builds");
        let http = up.http_addr();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(up.run_until_stopped(shutdown.clone()));
        ((shutdown, handle), http)
    }

    /// Kills the services where they stand, as `kill -9` would: no batch is finished, nothing
    /// more is acknowledged.
    pub async fn crash(&mut self) {
        if let Some((_, handle)) = self.running.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Starts the services again on the same streams and database.
    pub async fn restart(&mut self) {
        self.crash().await;
        let (running, http) = Self::start(&self.settings).await;
        self.running = Some(running);
        self.http = http;
    }

    /// Publishes `payload` (JSON) as `department`, as a department would: JetStream, with a
    /// fresh `Nats-Msg-Id`, waiting for the durable receipt.
    pub async fn publish(&mut self, department: &str, payload: &Value) {
        self.published += 1;
        let id = format!("test-msg-{}", self.published);
        self.publish_bytes(department, payload.to_string().into_bytes(), None, &id).await;
    }

    /// Publishes raw bytes, with an optional `Content-Type`.
    pub async fn publish_bytes(&self, department: &str, payload: Vec<u8>, content_type: Option<&str>, msg_id: &str) {
        let mut headers = tiendo_bus::async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        if let Some(ct) = content_type {
            headers.insert("Content-Type", ct);
        }
        // Retried a few times: a server that has just restarted answers "no responders" until
        // JetStream has recovered its streams. The message id makes a retry harmless.
        let payload = bytes::Bytes::from(payload);
        for attempt in 1.. {
            let sent =
                self.bus.js.publish_with_headers(self.bus.names.ingest(department), headers.clone(), payload.clone());
            let stored = match sent.await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match stored {
                Ok(()) => return,
                Err(e) if attempt < 50 => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("publish failed: {e}"),
            }
        }
    }

    /// Waits until every stage has nothing pending (and the outboxes are relayed).
    pub async fn wait_idle(&self) {
        tiendo::idle::wait_idle(&self.bus, Duration::from_secs(60)).await.expect("the pipeline goes idle");
    }

    /// Waits until `check` holds, or panics after `timeout` with `what`.
    pub async fn wait_for<F: Fn(&Self) -> bool>(&self, what: &str, timeout: Duration, check: F) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The stored figure row of (indicator, unit, period).
    pub async fn figure(&self, indicator: &str, unit: &str, period: &str) -> Option<figure::Model> {
        figure::Entity::find_by_id((indicator.to_owned(), unit.to_owned(), period.to_owned()))
            .one(&self.db)
            .await
            .expect("query figures")
    }

    /// How many observations aggregation has stored (one per department and event id).
    pub async fn observations(&self) -> u64 {
        observation::Entity::find().count(&self.db).await.expect("count observations")
    }

    /// `GET path` on the HTTP endpoints: (status, body).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path).await
    }

    /// The value of one sample in `/metrics`, e.g. `metric("tiendo_indicator_behind", &[("org_unit", "89")])`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let (_, body) = self.http_get("/metrics").await;
        sample(&body, name, labels)
    }

    /// Stops the services gracefully, removes the streams and the PostgreSQL database.
    pub async fn cleanup(mut self) {
        if let Some((shutdown, handle)) = self.running.take() {
            shutdown.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
        }
        for kind in StreamKind::ALL {
            let _ = self.bus.js.delete_stream(self.bus.names.stream(kind)).await;
        }
        self.db.clone().close().await.ok();
        if let Some(name) = self.pg_database.take() {
            if let Ok(admin) = sea_orm::Database::connect(postgres_admin_url()).await {
                let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                admin.close().await.ok();
            }
        }
    }
}

/// `GET path` at `addr`: (status, body); status 0 when nothing answers.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return (0, String::new()) };
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Finds one sample in Prometheus text output: the line for `name` carrying every label.
pub fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' ')))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// One observation as a department writes it, with counts.
pub fn counts(event_id: &str, indicator: &str, unit: &str, period: &str, numerator: u64, denominator: u64) -> Value {
    serde_json::json!({
        "event_id": event_id, "indicator": indicator, "org_unit": unit, "period": period,
        "numerator": numerator, "denominator": denominator,
    })
}

/// One observation given as a percentage.
pub fn percent(event_id: &str, indicator: &str, unit: &str, period: &str, value: f64) -> Value {
    serde_json::json!({
        "event_id": event_id, "indicator": indicator, "org_unit": unit, "period": period, "value": value,
    })
}

/// The eleven districts of An Giang in the built-in catalog.
pub const DISTRICTS: [&str; 11] = ["883", "884", "886", "887", "888", "889", "890", "891", "892", "893", "894"];
