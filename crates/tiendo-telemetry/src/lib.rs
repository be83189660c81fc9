//! Metrics, health and readiness for tiendo's services, and the HTTP endpoints that serve
//! them: `GET /metrics` (Prometheus text format), `GET /healthz`, `GET /readyz`.
//!
//! One [`Telemetry`] per process: `tiendo up` runs four services behind one listener, so the
//! pipeline metrics carry a `service` label instead of being registered four times.
//!
//! # Layout
//! - [`metrics`]: the pipeline metrics every service counts (names are a wire contract).
//! - [`readiness`]: named checks that must all pass for `/readyz` to answer 200.
//! - [`http`]: the endpoints.
//! - [`init_tracing`]: logs to stderr, filtered by `RUST_LOG`.

pub mod http;
pub mod metrics;
pub mod readiness;

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
pub use metrics::PipelineMetrics;
pub use prometheus;
pub use readiness::Readiness;

/// Work to do just before `/metrics` is rendered, such as reading gauges from the database so
/// every instance reports the same shared state.
pub type Refresher = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Longest a refresher may take before `/metrics` is served without it.
pub const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The process's metrics registry, pipeline metrics and readiness checks.
pub struct Telemetry {
    registry: prometheus::Registry,
    pipeline: PipelineMetrics,
    readiness: Readiness,
    refreshers: Mutex<Vec<Refresher>>,
}

impl Telemetry {
    pub fn new() -> Arc<Self> {
        let registry = prometheus::Registry::new();
        let pipeline = PipelineMetrics::register(&registry).expect("pipeline metrics register once per registry");
        Arc::new(Self { registry, pipeline, readiness: Readiness::default(), refreshers: Mutex::new(vec![]) })
    }

    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    pub fn pipeline(&self) -> &PipelineMetrics {
        &self.pipeline
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn add_refresher(&self, r: Refresher) {
        self.refreshers.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }

    /// Runs every refresher, then renders the registry in the text format.
    pub async fn render(&self) -> String {
        let refreshers: Vec<Refresher> = self.refreshers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A refresher waiting on a dead database must not hold the scrape: the gauges keep
        // their last values, and `tiendo_database_up` / `tiendo_ready` say why.
        for r in refreshers {
            if tokio::time::timeout(REFRESH_TIMEOUT, r()).await.is_err() {
                tracing::warn!("a metrics refresher took longer than {REFRESH_TIMEOUT:?}; serving the last values");
            }
        }
        for (check, ok) in self.readiness.report() {
            self.pipeline.ready.with_label_values(&[&check]).set(if ok { 1.0 } else { 0.0 });
        }
        let mut out = String::new();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "rendering metrics");
        }
        out
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,async_nats=warn,sea_orm_migration=warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
