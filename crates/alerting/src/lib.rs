//! The alerting service: judges every figure against its indicator's trajectory.
//!
//! Reads `<prefix>.aggregates.>`; stores each figure (ignoring versions it has already seen),
//! judges the latest period of its (indicator, org unit) against the straight path from
//! baseline to target, and when that key enters `behind` publishes a `firing` alert on
//! `<prefix>.alerts.<indicator>.<org_unit>`; when it leaves, the same alert id `resolved`.
//! States, alerts and their history are stored, and alert messages leave through the outbox,
//! so each transition is announced exactly once in effect. Serves the per-indicator gauges.
//!
//! # Layout
//! - [`judge`]: one figure applied and judged inside a transaction.
//! - [`gauges`]: the `tiendo_indicator_*` gauges, refreshed from the database on scrape.
//! - [`Alerting`]: the service.

pub mod gauges;
pub mod judge;

use std::sync::Arc;
use std::time::Instant;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tiendo_bus::consume::{self, Decision, Delivery, Handler};
use tiendo_bus::{ContentType, Outgoing, StreamKind};
use tiendo_domain::Catalog;
use tiendo_proto::v1::{Aggregate, Alert};
use tiendo_runtime::{Deps, Service};
use tiendo_store::sea_orm;
use tokio_util::sync::CancellationToken;

use crate::gauges::IndicatorGauges;
pub use crate::judge::Outcome;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = "alerting";

/// The built alerting service.
pub struct Alerting {
    deps: Deps,
    db: DatabaseConnection,
    consumer: tiendo_bus::async_nats::jetstream::consumer::PullConsumer,
}

impl Alerting {
    /// Opens and migrates the database, creates the streams, the consumer and the gauges.
    pub async fn build(deps: Deps) -> anyhow::Result<Self> {
        let db = deps.database().await?;
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let consumer = deps.bus.ensure_consumer(StreamKind::Aggregates, NAME, &deps.settings.pipeline).await?;
        deps.watch_consumer(NAME, consumer.clone());
        let gauges = Arc::new(IndicatorGauges::register(deps.telemetry.registry())?);
        let (db2, catalog) = (db.clone(), deps.catalog.clone());
        deps.telemetry.add_refresher(Arc::new(move || {
            let (gauges, db, catalog) = (gauges.clone(), db2.clone(), catalog.clone());
            Box::pin(async move {
                if let Err(e) = gauges.refresh(&db, &catalog).await {
                    tracing::warn!(error = %e, "reading indicator states for /metrics");
                }
            })
        }));
        deps.telemetry.pipeline().touch(NAME);
        deps.telemetry.readiness().set(NAME, true);
        Ok(Self { deps, db, consumer })
    }
}

impl Service for Alerting {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let relay = tokio::spawn(tiendo_store::outbox::relay_periodically(
            self.db.clone(),
            self.deps.bus.clone(),
            NAME,
            shutdown.clone(),
        ));
        let p = &self.deps.settings.pipeline;
        let handler = AlertingHandler { deps: self.deps.clone(), db: self.db.clone() };
        let result =
            consume::run(&self.deps.bus, self.consumer, NAME, p.batch_size, p.max_deliver, &handler, shutdown).await;
        relay.abort();
        result
    }
}

/// Stores and judges `items` in order inside the caller's transaction; returns each one's
/// outcome and the alert messages to send. Used by the service and by `tiendo replay`.
pub async fn judge_figures<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    items: &[&Aggregate],
    now: &str,
) -> Result<(Vec<Outcome>, Vec<Alert>), DbErr> {
    let mut alerts = Vec::new();
    let mut outcomes = Vec::with_capacity(items.len());
    for agg in items {
        outcomes.push(judge::apply(db, catalog, agg, now, &mut |a| alerts.push(a)).await?);
    }
    Ok((outcomes, alerts))
}

struct AlertingHandler {
    deps: Deps,
    db: DatabaseConnection,
}

impl AlertingHandler {
    async fn apply_all(&self, items: Vec<&Aggregate>) -> Result<Vec<Outcome>, DbErr> {
        let tx = tiendo_store::begin(&self.db).await?;
        let now = (self.deps.clock)().to_rfc3339();
        let (outcomes, alerts) = judge_figures(&tx, &self.deps.catalog, &items, &now).await?;
        let names = &self.deps.bus.names;
        let messages: Vec<Outgoing> = alerts
            .into_iter()
            .map(|alert| {
                consume::outgoing(
                    names.alerts(&alert.indicator, &alert.org_unit),
                    format!("al:{}:{}", alert.alert_id, alert.state),
                    serde_json::to_vec(&alert).unwrap_or_default(),
                    ContentType::Json,
                )
            })
            .collect();
        tiendo_store::outbox::enqueue(&tx, NAME, messages).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    fn count(&self, outcome: &Outcome) {
        let m = self.deps.telemetry.pipeline();
        m.received.with_label_values(&[NAME]).inc();
        match outcome {
            Outcome::Judged => m.accepted.with_label_values(&[NAME]).inc(),
            Outcome::Stale => m.duplicates.with_label_values(&[NAME]).inc(),
            Outcome::Unknown => {}
        }
    }
}

impl Handler for AlertingHandler {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Decision> {
        let started = Instant::now();
        let metrics = self.deps.telemetry.pipeline();
        metrics.messages.with_label_values(&[NAME]).inc_by(batch.len() as u64);
        let mut decisions = vec![Decision::Ack; batch.len()];
        let mut decoded = Vec::with_capacity(batch.len());
        for (i, d) in batch.iter().enumerate() {
            match serde_json::from_slice::<Aggregate>(d.payload()) {
                Ok(a) => decoded.push((i, a)),
                Err(e) => decisions[i] = Decision::DeadLetter(format!("not an Aggregate: {e}")),
            }
        }
        let failed = tiendo_store::batch::apply_batch(
            &self.db,
            &decoded,
            &mut decisions,
            |items| self.apply_all(items),
            |o| self.count(o),
        )
        .await;
        metrics.database_errors.with_label_values(&[NAME]).inc_by(failed);
        if let Err(e) = tiendo_store::outbox::relay(&self.db, &self.deps.bus, NAME).await {
            tracing::warn!(error = %e, "outbox relay failed; the periodic relay will retry");
        }
        metrics.batch_seconds.with_label_values(&[NAME]).observe(started.elapsed().as_secs_f64());
        decisions
    }

    fn dead_lettered(&self, _d: &Delivery, _reason: &str) {
        self.deps.telemetry.pipeline().dead_letters.with_label_values(&[NAME]).inc();
    }
}
