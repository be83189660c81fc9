//! Wires a tiendo service to what it needs, the same way for a standalone service binary,
//! for `tiendo up` (four services in one process) and for the integration tests.
//!
//! # Layout
//! - [`Deps`]: settings, the bus, the catalog, telemetry, the clock, and the database
//!   (connected and migrated on first use, so services that need none never open it).
//! - [`Service`]: what a service offers once built: `run_until_stopped(shutdown)`.
//! - [`stateful`]: the consumer, transaction and outbox shared by aggregation and alerting.
//! - [`standalone`]: the `main` of a single-service binary.
//! - [`shutdown_signal`]: Ctrl-C or SIGTERM.

pub mod stateful;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use tiendo_bus::async_nats::jetstream::consumer::PullConsumer;
use tiendo_bus::Bus;
use tiendo_domain::Catalog;
use tiendo_settings::Settings;
use tiendo_store::sea_orm::DatabaseConnection;
use tiendo_telemetry::Telemetry;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// "Now", passed in so tests can fix it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Everything a service is built from.
#[derive(Clone)]
pub struct Deps {
    pub settings: Settings,
    pub bus: Bus,
    pub catalog: Arc<Catalog>,
    pub telemetry: Arc<Telemetry>,
    pub clock: Clock,
    db: Arc<OnceCell<DatabaseConnection>>,
}

impl Deps {
    /// Connects to NATS, loads the catalog and registers the NATS readiness probe. The
    /// database is opened later, by the first service that asks for it.
    pub async fn connect(settings: Settings, telemetry: Arc<Telemetry>, client_name: &str) -> anyhow::Result<Self> {
        let catalog = Arc::new(load_catalog(&settings)?);
        let bus = Bus::connect(&settings.nats, client_name).await?;
        let probe_bus = bus.clone();
        telemetry.readiness().probe("nats", move || probe_bus.is_connected());
        Ok(Self { settings, bus, catalog, telemetry, clock: system_clock(), db: Arc::new(OnceCell::new()) })
    }

    /// The database, connected and migrated once per `Deps` (shared by its clones).
    pub async fn database(&self) -> anyhow::Result<DatabaseConnection> {
        let db = self
            .db
            .get_or_try_init(|| async {
                let db = tiendo_store::connect(&self.settings.database).await?;
                tiendo_store::migrate(&db).await?;
                self.telemetry.readiness().set("database_migrations", true);
                watch_database(&self.telemetry, db.clone())?;
                anyhow::Ok(db)
            })
            .await?;
        Ok(db.clone())
    }

    /// Reports `service`'s consumer backlog in `/metrics`, read from JetStream at each scrape.
    pub fn watch_consumer(&self, service: &'static str, consumer: PullConsumer) {
        let metrics = self.telemetry.pipeline().clone();
        self.telemetry.add_refresher(Arc::new(move || {
            let (mut consumer, metrics) = (consumer.clone(), metrics.clone());
            Box::pin(async move {
                match consumer.info().await {
                    Ok(info) => {
                        metrics.consumer_pending.with_label_values(&[service]).set(info.num_pending as f64);
                        metrics.consumer_ack_pending.with_label_values(&[service]).set(info.num_ack_pending as f64);
                    }
                    Err(e) => tracing::warn!(service, error = %e, "reading consumer info for /metrics"),
                }
            })
        }));
    }

    /// Today's date, by the clock.
    pub fn today(&self) -> NaiveDate {
        (self.clock)().date_naive()
    }
}

/// How often the database is pinged for `tiendo_database_up` and `/readyz`.
const DATABASE_PING_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Pings the database in the background: `tiendo_database_up` and the `database` readiness
/// check follow the answer, so an outage shows on `/readyz` and in Prometheus.
fn watch_database(telemetry: &Arc<Telemetry>, db: DatabaseConnection) -> anyhow::Result<()> {
    let up = Arc::new(AtomicBool::new(true));
    let gauge = tiendo_telemetry::prometheus::Gauge::new("tiendo_database_up", "1 when the database answers a ping.")?;
    telemetry.registry().register(Box::new(gauge.clone()))?;
    gauge.set(1.0);
    let probe = up.clone();
    telemetry.readiness().probe("database", move || probe.load(Ordering::Relaxed));
    let weak = Arc::downgrade(telemetry);
    tokio::spawn(async move {
        // Stops when the telemetry (the process's services) is gone.
        while weak.strong_count() > 0 {
            let ok = tokio::time::timeout(DATABASE_PING_EVERY, db.ping()).await.is_ok_and(|r| r.is_ok());
            if ok != up.swap(ok, Ordering::Relaxed) {
                tracing::warn!(database_up = ok, "database availability changed");
            }
            gauge.set(if ok { 1.0 } else { 0.0 });
            tokio::time::sleep(DATABASE_PING_EVERY).await;
        }
    });
    Ok(())
}

/// The catalog file named by `catalog.path`, or the built-in one.
pub fn load_catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    match &settings.catalog.path {
        None => Ok(Catalog::built_in()),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading catalog {}", path.display()))?;
            Catalog::from_toml(&text).with_context(|| format!("loading catalog {}", path.display()))
        }
    }
}

/// A built service.
pub trait Service: Send + 'static {
    /// Runs until `shutdown` is cancelled; finishes the batch in hand first.
    fn run_until_stopped(
        self,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

/// Command-line arguments every single-service binary accepts.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// Settings file (default: ./tiendo.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The whole `main` of a single-service binary: settings, logs, dependencies, the HTTP
/// endpoints, the service, until Ctrl-C or SIGTERM.
pub async fn standalone<S, F, Fut>(name: &str, build: F) -> anyhow::Result<()>
where
    S: Service,
    F: FnOnce(Deps) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<S>>,
{
    use clap::Parser as _;
    let args = ServiceArgs::parse();
    let settings = Settings::load(args.config.as_deref())?;
    tiendo_telemetry::init_tracing();
    let telemetry = Telemetry::new();
    // Not ready until the service itself says so, whatever the other checks say meanwhile.
    telemetry.readiness().set(name, false);
    let listener = tokio::net::TcpListener::bind(settings.http.listen)
        .await
        .with_context(|| format!("listening on {}", settings.http.listen))?;
    tracing::info!(service = name, http = %listener.local_addr()?, "starting");
    let shutdown = CancellationToken::new();
    let http = tokio::spawn(tiendo_telemetry::http::serve(listener, telemetry.clone(), shutdown.clone()));
    let deps = Deps::connect(settings, telemetry, &format!("tiendo-{name}")).await?;
    let service = build(deps).await?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping");
        stop.cancel();
    });
    let result = service.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    let _ = http.await;
    result
}
