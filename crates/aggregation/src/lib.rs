//! The aggregation service: keeps every unit's figure and its ancestors' roll-ups.
//!
//! Reads `<prefix>.valid.>` (`ValidBatch` messages); for each observation, in one database
//! transaction with the rest of the batch in hand: ignores an event id its department used before, stores the figure as the
//! unit's direct observation for its period (a revision replaces, never adds), and moves the
//! running sums of each ancestor by the difference, so an observation touches only its own
//! unit and its ancestors. Each changed figure is written to the outbox in the same
//! transaction and published after the commit to `<prefix>.aggregates.<indicator>.<org_unit>`.
//!
//! # Layout
//! - [`apply`]: one observation applied inside a transaction.
//! - [`Aggregation`]: the service: consumer, batching, transactions, outbox relay.

pub mod apply;

use std::collections::HashMap;
use std::time::Instant;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use tiendo_bus::consume::{self, Decision, Delivery, Handler};
use tiendo_bus::{ContentType, Outgoing, StreamKind};
use tiendo_domain::Catalog;
use tiendo_proto::v1::{Aggregate, ValidBatch, ValidObservation};
use tiendo_proto::Message as _;
use tiendo_runtime::{Deps, Service};
use tiendo_store::sea_orm;
use tokio_util::sync::CancellationToken;

pub use crate::apply::Outcome;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = "aggregation";

/// The built aggregation service.
pub struct Aggregation {
    deps: Deps,
    db: DatabaseConnection,
    consumer: tiendo_bus::async_nats::jetstream::consumer::PullConsumer,
}

impl Aggregation {
    /// Opens and migrates the database, creates the streams and the durable consumer.
    pub async fn build(deps: Deps) -> anyhow::Result<Self> {
        let db = deps.database().await?;
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let consumer = deps.bus.ensure_consumer(StreamKind::Valid, NAME, &deps.settings.pipeline).await?;
        deps.watch_consumer(NAME, consumer.clone());
        deps.telemetry.pipeline().touch(NAME);
        deps.telemetry.readiness().set(NAME, true);
        Ok(Self { deps, db, consumer })
    }
}

impl Service for Aggregation {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let relay = tokio::spawn(tiendo_store::outbox::relay_periodically(
            self.db.clone(),
            self.deps.bus.clone(),
            NAME,
            shutdown.clone(),
        ));
        let p = &self.deps.settings.pipeline;
        let handler = AggregationHandler { deps: self.deps.clone(), db: self.db.clone() };
        let result =
            consume::run(&self.deps.bus, self.consumer, NAME, p.batch_size, p.max_deliver, &handler, shutdown).await;
        relay.abort();
        result
    }
}

/// Applies `items` in order inside the caller's transaction; returns each one's outcome and
/// the changed figures (the latest version of each key only). Used by the service and by
/// `tiendo replay`.
pub async fn apply_observations<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    items: &[&ValidObservation],
    now: &str,
) -> Result<(Vec<Outcome>, Vec<Aggregate>), DbErr> {
    let mut changes = Changes::default();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut work = apply::UnitOfWork::default();
    let keys: Vec<(String, String)> = items.iter().map(|o| (o.department.clone(), o.event_id.clone())).collect();
    work.prefetch(db, &keys).await?;
    for obs in items {
        outcomes.push(apply::apply(db, &mut work, catalog, obs, now, &mut |a| changes.push(a)).await?);
    }
    work.flush(db).await?;
    Ok((outcomes, changes.figures))
}

struct AggregationHandler {
    deps: Deps,
    db: DatabaseConnection,
}

/// Changed figures of one transaction, the latest version of each key only.
#[derive(Default)]
struct Changes {
    index: HashMap<(String, String, String), usize>,
    figures: Vec<Aggregate>,
}

impl Changes {
    fn push(&mut self, a: Aggregate) {
        let key = (a.indicator.clone(), a.org_unit.clone(), a.period.clone());
        match self.index.get(&key) {
            Some(&i) => self.figures[i] = a,
            None => {
                self.index.insert(key, self.figures.len());
                self.figures.push(a);
            }
        }
    }
}

impl AggregationHandler {
    /// Applies `items` in one transaction; returns each one's outcome, in order.
    async fn apply_all(&self, items: Vec<&ValidObservation>) -> Result<Vec<Outcome>, DbErr> {
        let tx: DatabaseTransaction = tiendo_store::begin(&self.db).await?;
        let now = (self.deps.clock)().to_rfc3339();
        let (outcomes, figures) = apply_observations(&tx, &self.deps.catalog, &items, &now).await?;
        let names = &self.deps.bus.names;
        let messages: Vec<Outgoing> = figures
            .into_iter()
            .map(|a| {
                consume::outgoing(
                    names.aggregates(&a.indicator, &a.org_unit),
                    format!("a:{}:{}:{}:{}", a.indicator, a.org_unit, a.period, a.version),
                    serde_json::to_vec(&a).unwrap_or_default(),
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
            Outcome::Applied | Outcome::Superseded => m.accepted.with_label_values(&[NAME]).inc(),
            Outcome::Duplicate => m.duplicates.with_label_values(&[NAME]).inc(),
        }
    }
}

impl Handler for AggregationHandler {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Decision> {
        let started = Instant::now();
        let metrics = self.deps.telemetry.pipeline();
        metrics.messages.with_label_values(&[NAME]).inc_by(batch.len() as u64);
        let mut decisions = vec![Decision::Ack; batch.len()];
        // Every observation of every message, each tagged with its message: one that keeps
        // failing holds back only its own message (the others of that message are applied and,
        // when it comes back, recognised as already done).
        let mut decoded = Vec::with_capacity(batch.len());
        for (i, d) in batch.iter().enumerate() {
            match ValidBatch::decode(d.payload().as_ref()) {
                Ok(b) => decoded.extend(b.observations.into_iter().map(|v| (i, v))),
                Err(e) => decisions[i] = Decision::DeadLetter(format!("not a ValidBatch: {e}")),
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
