//! The `tiendo` command and the all-in-one process.
//!
//! `tiendo up` runs the five services (ingest, validation, aggregation, alerting, web) in one
//! process, behind one HTTP listener (the web pages beside `/metrics` and `/readyz`), sharing
//! one NATS connection and one database pool. They still talk only over NATS, exactly as when
//! each runs as its own binary. The integration tests and the benchmark start the very same
//! [`Up`] in-process.
//!
//! # Layout
//! - [`Up`]: build and run the five services in one process.
//! - [`status`]: the trajectory table, read from the database.
//! - [`publish`]: `tiendo publish`, a department's file (JSON or CSV) onto the bus.
//! - [`replay`]: `tiendo replay`, figures rebuilt from the retained stream into an empty database.
//! - [`deadletters`]: `tiendo deadletters`, list and re-drive what the services gave up on.
//! - [`demo`]: the scripted 2023–2025 story.
//!
//! `tiendo bench` runs the `tiendo-bench` binary beside this one (crate `tiendo-bench`).

pub mod deadletters;
pub mod demo;
pub mod publish;
pub mod replay;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tiendo_bus::names::STAGES;
use tiendo_runtime::{Deps, Service};
use tiendo_settings::Settings;
use tiendo_stateful::Database;
use tiendo_telemetry::Telemetry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The five services, built and ready to run, with their shared HTTP listener.
pub struct Up {
    pub deps: Deps,
    /// The database aggregation and alerting share.
    pub db: Database,
    listener: TcpListener,
    ingest: tiendo_ingest::Ingest,
    validation: tiendo_validation::Validation,
    aggregation: tiendo_aggregation::Aggregation,
    alerting: tiendo_alerting::Alerting,
    web: tiendo_web::Web,
    web_feed: tiendo_web::WebService,
}

impl Up {
    /// Binds `http.listen`, connects, migrates, creates streams and consumers.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, tiendo_runtime::system_clock()).await
    }

    /// As [`Up::build`], with a given clock (tests fix "today").
    pub async fn build_with(settings: Settings, clock: tiendo_runtime::Clock) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("listening on {}", settings.http.listen))?;
        let telemetry = Telemetry::new();
        for (_, service) in STAGES {
            telemetry.readiness().set(service, false);
        }
        let mut deps = Deps::connect(settings, telemetry, "tiendo-up").await?;
        deps.clock = clock;
        // One database for both stateful services: on SQLite, its one connection.
        let db = Database::open(&deps).await?;
        let (web, web_feed) = tiendo_web::build(&deps, db.connection().clone())?;
        Ok(Self {
            web,
            web_feed,
            ingest: tiendo_ingest::build(deps.clone()).await?,
            validation: tiendo_validation::build(deps.clone()).await?,
            aggregation: tiendo_aggregation::build(deps.clone(), &db).await?,
            alerting: tiendo_alerting::build(deps.clone(), &db).await?,
            db,
            deps,
            listener,
        })
    }

    /// Where the web pages, `/metrics`, `/healthz` and `/readyz` are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The telemetry all four services report to.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.deps.telemetry.clone()
    }

    /// Runs everything until `shutdown`; if one service fails, stops the others and returns
    /// its error.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        let http = tokio::spawn(tiendo_telemetry::http::serve_with(
            self.listener,
            self.deps.telemetry.clone(),
            self.web.router(),
            stop.clone(),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.ingest.run_until_stopped(stop.clone()));
        tasks.spawn(self.validation.run_until_stopped(stop.clone()));
        tasks.spawn(self.aggregation.run_until_stopped(stop.clone()));
        tasks.spawn(self.alerting.run_until_stopped(stop.clone()));
        tasks.spawn(self.web_feed.run_until_stopped(stop.clone()));
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let r = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = r {
                tracing::error!(error = %e, "a service stopped with an error; stopping the others");
                if result.is_ok() {
                    result = Err(e);
                }
            }
            stop.cancel();
        }
        let _ = http.await;
        result
    }
}
