//! Wires a tiendo service to what it needs, the same way for a standalone service binary,
//! for `tiendo up` (every service in one process) and for the integration tests; and the
//! consumer kit of the services that keep no state.
//!
//! No database here: ingest and validation link no database driver. The services that keep
//! state build on `tiendo-stateful`, which adds the database, transactions and the outbox.
//!
//! # Layout
//! - [`Deps`]: settings, the bus, the catalog, telemetry, the clock.
//! - [`Service`]: what a service offers once built: `run_until_stopped(shutdown)`.
//! - [`failure`]: [`Failure`] and its kinds: poison, transient, outage.
//! - [`consumer`]: a service's durable consumer, prepared and run.
//! - [`stateless`]: the consumer kit of ingest and validation.
//! - [`encode`]: outgoing messages as JSON or protobuf.
//! - [`standalone`]: the `main` of a single-service binary.
//! - [`shutdown_signal`]: Ctrl-C or SIGTERM.

pub mod consumer;
pub mod encode;
pub mod failure;
pub mod stateless;

pub use failure::{Failure, FailureKind};

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tiendo_bus::async_nats::jetstream::consumer::PullConsumer;
use tiendo_bus::Bus;
use tiendo_domain::Catalog;
use tiendo_settings::Settings;
use tiendo_telemetry::Telemetry;
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
}

impl Deps {
    /// Connects to NATS, loads the catalog and registers the NATS readiness probe.
    pub async fn connect(settings: Settings, telemetry: Arc<Telemetry>, client_name: &str) -> anyhow::Result<Self> {
        let catalog = Arc::new(load_catalog(&settings)?);
        let bus = Bus::connect(&settings.nats, client_name).await?;
        let probe_bus = bus.clone();
        telemetry.readiness().probe("nats", move || probe_bus.is_connected());
        Ok(Self { settings, bus, catalog, telemetry, clock: system_clock() })
    }

    /// Reports `service`'s consumer backlog in `/metrics` (the sum over its `consumers`), read
    /// from JetStream at each scrape.
    pub fn watch_consumers(&self, service: &'static str, consumers: Vec<PullConsumer>) {
        let metrics = self.telemetry.pipeline().clone();
        self.telemetry.add_refresher(Arc::new(move || {
            let (mut consumers, metrics) = (consumers.clone(), metrics.clone());
            Box::pin(async move {
                let (mut pending, mut ack_pending) = (0, 0);
                for consumer in &mut consumers {
                    match consumer.info().await {
                        Ok(info) => {
                            pending += info.num_pending;
                            ack_pending += info.num_ack_pending;
                        }
                        Err(e) => {
                            tracing::warn!(service, error = %e, "reading consumer info for /metrics");
                            return;
                        }
                    }
                }
                metrics.consumer_pending.with_label_values(&[service]).set(pending as f64);
                metrics.consumer_ack_pending.with_label_values(&[service]).set(ack_pending as f64);
            })
        }));
    }
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
