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
//! The pieces tests share with the benchmark and the demo (servers, namespaces, collectors,
//! waiting for the pipeline) are `tiendo-testkit`'s; this harness adds the test's view.
//!
//! # Layout
//! - [`Db`]: which database a test runs on; [`db_matrix!`] runs a test on both.
//! - [`TestApp`]: spawn, publish, wait, read, crash and restart.
//! - [`Fleet`]: the four services as separate processes, to kill with SIGKILL.
//! - [`story`]: a stream with revisions and reused ids, and the figures it must produce.

pub mod fleet;
pub mod story;

pub use fleet::Fleet;
pub use tiendo_testkit::http::{get as http_get, sample};

use std::time::{Duration, Instant};

use serde_json::Value;
use tiendo::Up;
use tiendo_bus::names::header;
use tiendo_bus::{Bus, StreamKind};
use tiendo_proto::v1::{Aggregate, Alert, Rejection};
use tiendo_settings::Settings;
use tiendo_store::entity::{figure, observation};
use tiendo_store::sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use tiendo_testkit::namespace::unique;
use tiendo_testkit::{Collector, ManualClock, Namespace};
use tokio_util::sync::CancellationToken;

/// Undoes the migrations applied after `name`'s and `name` itself: the schema as it was just
/// before `name`, whatever came after it. Counting steps instead would break each such test
/// whenever a migration is added.
pub async fn migrate_down_through(db: &DatabaseConnection, name: &str) {
    use sea_orm_migration::MigratorTrait;
    let all = tiendo_store::migration::Migrator::migrations();
    let at = all.iter().position(|m| m.name() == name).unwrap_or_else(|| panic!("no migration {name}"));
    let steps = (all.len() - at) as u32;
    tiendo_store::migration::Migrator::down(db, Some(steps))
        .await
        .unwrap_or_else(|e| panic!("down through {name}: {e}"));
}

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

/// The tests' NATS server: `TIENDO_TEST_NATS_URL`, or the machine's.
pub fn nats_url() -> String {
    std::env::var("TIENDO_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The tests' PostgreSQL admin URL: `TIENDO_TEST_POSTGRES_URL`, or the machine's.
pub fn postgres_admin_url() -> String {
    std::env::var("TIENDO_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `host:port` of a URL like `scheme://user:pw@host:port/path`.
fn host_port(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split(['/', '?', ',']).next().unwrap_or(rest);
    host.parse().unwrap_or_else(|e| panic!("`{host}` (from the test server URL) is not an address: {e}"))
}

/// Where the tests' PostgreSQL listens (from `TIENDO_TEST_POSTGRES_URL`): the target of a
/// proxy that cuts it. A service's URL through the proxy replaces this with the proxy's.
pub fn postgres_addr() -> std::net::SocketAddr {
    host_port(&postgres_admin_url())
}

/// Where the tests' NATS server listens (from `TIENDO_TEST_NATS_URL`).
pub fn nats_addr() -> std::net::SocketAddr {
    host_port(&nats_url())
}

/// Messages seen on a subscription, collected in the background.
pub type Seen<T> = Collector<T>;

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
    /// The services' clock, when the test sets the time ([`TestApp::spawn_at`]).
    pub clock: Option<ManualClock>,
    running: Option<Instance>,
    namespace: Option<Namespace>,
    published: u64,
}

impl TestApp {
    /// Starts tiendo (`tiendo up`, in-process) on `db` in a fresh namespace.
    pub async fn spawn(db: Db) -> TestApp {
        let mut app = Self::namespace(db).await;
        app.restart().await;
        app
    }

    /// A fresh namespace (prefix, database, subscriptions) with no services running: for
    /// tests that run the services as processes ([`Fleet`]).
    pub async fn namespace(db: Db) -> TestApp {
        Self::namespace_with(db, |_| {}).await
    }

    /// Starts tiendo on `db` in a fresh namespace, with the catalog `toml` instead of the
    /// built-in one.
    pub async fn spawn_with_catalog(db: Db, toml: &str) -> TestApp {
        let mut app = Self::build(db, Some(toml), |_| {}).await;
        app.restart().await;
        app
    }

    /// Starts tiendo on `db` with its clock at `now`; the test moves it with `app.clock`.
    pub async fn spawn_at(db: Db, now: chrono::DateTime<chrono::Utc>) -> TestApp {
        let mut app = Self::namespace(db).await;
        app.clock = Some(ManualClock::at(now));
        app.restart().await;
        app
    }

    /// Another `tiendo up` on the same namespace and clock: a second instance of every service.
    pub async fn second_instance(&self) -> Instance {
        Instance::start(&self.settings, self.clock.as_ref()).await
    }

    /// As [`TestApp::namespace`], with settings adjusted by `configure` (another NATS server,
    /// another database host, pipeline limits) before anything connects.
    pub async fn namespace_with(db: Db, configure: impl FnOnce(&mut Settings)) -> TestApp {
        Self::build(db, None, configure).await
    }

    async fn build(db: Db, catalog: Option<&str>, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = Settings::defaults();
        settings.nats.url = nats_url().into();
        settings.http.listen = "127.0.0.1:0".parse().unwrap();
        settings.pipeline.ack_wait_secs = 2;
        settings.pipeline.retention_days = 1;
        let admin = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(postgres_admin_url()),
        };
        let mut namespace =
            Namespace::create(settings, &unique("t"), admin.as_deref()).await.expect("a fresh namespace");
        if let Some(toml) = catalog {
            namespace.use_catalog(toml).expect("the test catalog is written");
        }
        let created = namespace.settings.database.url.clone();
        configure(&mut namespace.settings);
        let settings = namespace.settings.clone();
        let bus = Bus::connect(&settings.nats, "tiendo-test").await.expect("NATS is reachable");
        let names = &bus.names;
        let rejections = Collector::json(&bus, names.stream_subjects(StreamKind::Rejected)).await.expect("subscribe");
        let alerts = Collector::json(&bus, names.stream_subjects(StreamKind::Alerts)).await.expect("subscribe");
        let aggregates = Collector::json(&bus, names.stream_subjects(StreamKind::Aggregates)).await.expect("subscribe");
        // Migrated here so the test can read tables before any service has started; straight
        // to the database, even when `configure` routes the services through a proxy. An
        // SQLite file `configure` moved elsewhere (a small disk) is the services' database.
        let moved =
            tiendo_store::connect::is_sqlite(settings.database.url.expose()) && settings.database.url != created;
        let db = if moved {
            let db = tiendo_store::connect(&settings.database).await.expect("database");
            tiendo_store::migrate(&db).await.expect("migrations");
            db
        } else {
            namespace.database().await.expect("database")
        };
        TestApp {
            settings,
            bus,
            db,
            http: "127.0.0.1:9".parse().unwrap(),
            rejections,
            alerts,
            aggregates,
            clock: None,
            running: None,
            namespace: Some(namespace),
            published: 0,
        }
    }

    /// Kills the services where they stand, as `kill -9` would: every task they started
    /// stops at once (consumers, outbox relays, clocks, the HTTP server and its connections,
    /// database pings), no batch is finished, nothing more is acknowledged.
    pub async fn crash(&mut self) {
        if let Some(instance) = self.running.take() {
            instance.crash().await;
        }
    }

    /// Starts the services again on the same streams and database.
    pub async fn restart(&mut self) {
        self.crash().await;
        let instance = Instance::start(&self.settings, self.clock.as_ref()).await;
        self.http = instance.http;
        self.running = Some(instance);
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
        headers.insert(header::MSG_ID, msg_id);
        if let Some(ct) = content_type {
            headers.insert(header::CONTENT_TYPE, ct);
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

    /// Waits until every stage has nothing pending and the outboxes are empty.
    pub async fn wait_idle(&self) {
        tiendo_testkit::idle::wait_idle_with_outbox(&self.bus, &self.db, Duration::from_secs(60))
            .await
            .expect("the pipeline goes idle");
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
        if let Some(instance) = self.running.take() {
            instance.stop().await;
        }
        self.db.clone().close().await.ok();
        if let Some(namespace) = self.namespace.take() {
            namespace.close(&self.bus).await;
        }
    }
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

/// A `tiendo up` on a runtime of its own, as a process runs it: [`Instance::stop`] cancels its
/// shutdown token and waits for the graceful stop; [`Instance::crash`] drops the runtime, and
/// with it every task the services started, wherever they stand.
pub struct Instance {
    runtime: Option<tokio::runtime::Runtime>,
    /// Its database pool, to wait at a crash for the statement SQLite was running.
    db: DatabaseConnection,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Where its HTTP endpoints answer.
    pub http: std::net::SocketAddr,
}

impl Instance {
    /// Builds and runs `tiendo up` with `settings` (and `clock`, if the test sets the time).
    pub async fn start(settings: &Settings, clock: Option<&ManualClock>) -> Instance {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tiendo-up")
            .enable_all()
            .build()
            .expect("a runtime for tiendo up");
        let shutdown = CancellationToken::new();
        let (built, ready) = tokio::sync::oneshot::channel();
        let (settings, clock, stop) = (settings.clone(), clock.map(ManualClock::clock), shutdown.clone());
        let handle = runtime.spawn(async move {
            let up = match clock {
                Some(c) => Up::build_with(settings, c).await?,
                None => Up::build(settings).await?,
            };
            let _ = built.send((up.http_addr(), up.db.connection().clone()));
            up.run_until_stopped(stop).await
        });
        let (http, db) = match ready.await {
            Ok(ready) => ready,
            Err(_) => panic!("tiendo up did not build: {:?}", handle.await),
        };
        Instance { runtime: Some(runtime), db, shutdown, handle, http }
    }

    /// Stops gracefully: the batches in hand are finished; then whatever is left is dropped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let handle = &mut self.handle;
        let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
    }

    /// Stops as `kill -9` would: its tasks are dropped where they stand. A statement the
    /// database was already running when they were (SQLite's runs on a thread of its own, a
    /// `COMMIT` among them) ends as it would have before a real kill; the crash returns once
    /// it has (the pool closed), so nothing the instance started is still at work after it.
    pub async fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let closed = tokio::time::timeout(Duration::from_secs(10), self.db.clone().close()).await;
        assert!(closed.is_ok(), "the crashed instance's database connections were released within 10 s");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
