//! The shape shared by the services that keep state (aggregation, alerting): decode a batch
//! of messages, apply it in one database transaction together with the messages that change
//! must announce (the outbox), publish those after the commit, then acknowledge.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tiendo_bus::async_nats::jetstream::consumer::PullConsumer;
use tiendo_bus::consume::{self, Decision, Delivery, Handler};
use tiendo_bus::{Outgoing, StreamKind};
use tiendo_store::outbox::Enqueued;
use tiendo_store::sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use tokio_util::sync::CancellationToken;

use crate::{Deps, Service};

/// Most items applied in one transaction.
pub const ITEMS_PER_TRANSACTION: usize = 5_000;

/// How one applied item is counted in the pipeline metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `tiendo_observations_accepted_total`.
    Accepted,
    /// `tiendo_observations_duplicate_total`.
    Duplicate,
    /// Received, nothing more (not for this catalog).
    Ignored,
}

/// What a stateful service does with its messages.
pub trait Stateful: Send + Sync + 'static {
    /// Consumer name and `service` metric label.
    const NAME: &'static str;
    /// The stream it consumes.
    const STREAM: StreamKind;
    type Item: Send + Sync;
    type Outcome: Send;

    /// The items of one message, or why that message can never be processed.
    fn decode(&self, delivery: &Delivery) -> Result<Vec<Self::Item>, String>;

    /// Applies `items`, in order, inside `tx`: one outcome per item, and the messages to announce.
    fn apply(
        &self,
        tx: &DatabaseTransaction,
        deps: &Deps,
        items: &[&Self::Item],
        now: &str,
    ) -> impl Future<Output = Result<(Vec<Self::Outcome>, Vec<Outgoing>), DbErr>> + Send;

    fn counted(outcome: &Self::Outcome) -> Counted;
}

/// A built stateful service.
pub struct StatefulService<S: Stateful> {
    deps: Deps,
    db: DatabaseConnection,
    consumer: PullConsumer,
    state: Arc<S>,
}

impl<S: Stateful> StatefulService<S> {
    /// Opens and migrates the database, creates the streams and the durable consumer, and
    /// marks the service ready.
    pub async fn build(deps: Deps, state: S) -> anyhow::Result<Self> {
        let db = deps.database().await?;
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let consumer = deps.bus.ensure_consumer(S::STREAM, S::NAME, &deps.settings.pipeline).await?;
        deps.watch_consumer(S::NAME, consumer.clone());
        deps.telemetry.pipeline().touch(S::NAME);
        deps.telemetry.readiness().set(S::NAME, true);
        Ok(Self { deps, db, consumer, state: Arc::new(state) })
    }
}

impl<S: Stateful> Service for StatefulService<S> {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (bus, db) = (self.deps.bus.clone(), self.db.clone());
        let relay = tokio::spawn(tiendo_store::outbox::relay_periodically(db, bus, S::NAME, shutdown.clone()));
        let p = self.deps.settings.pipeline.clone();
        let handler = StatefulHandler { deps: self.deps.clone(), db: self.db, state: self.state };
        let result =
            consume::run(&self.deps.bus, self.consumer, S::NAME, p.batch_size, p.max_deliver, &handler, shutdown).await;
        relay.abort();
        result
    }
}

struct StatefulHandler<S: Stateful> {
    deps: Deps,
    db: DatabaseConnection,
    state: Arc<S>,
}

impl<S: Stateful> StatefulHandler<S> {
    /// One transaction: the items' effects and the outbox rows announcing them, together.
    /// Once it commits, its messages join `committed`, to publish.
    async fn transaction(&self, items: Vec<&S::Item>, committed: &Mutex<Enqueued>) -> Result<Vec<S::Outcome>, DbErr> {
        let tx = tiendo_store::begin(&self.db).await?;
        let now = (self.deps.clock)().to_rfc3339();
        let (outcomes, messages) = self.state.apply(&tx, &self.deps, &items, &now).await?;
        let enqueued = tiendo_store::outbox::enqueue(&tx, S::NAME, messages).await?;
        tx.commit().await?;
        committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(enqueued);
        Ok(outcomes)
    }

    fn count(&self, outcome: &S::Outcome) {
        let m = self.deps.telemetry.pipeline();
        m.received.with_label_values(&[S::NAME]).inc();
        match S::counted(outcome) {
            Counted::Accepted => m.accepted.with_label_values(&[S::NAME]).inc(),
            Counted::Duplicate => m.duplicates.with_label_values(&[S::NAME]).inc(),
            Counted::Ignored => {}
        }
    }
}

impl<S: Stateful> Handler for StatefulHandler<S> {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Decision> {
        let started = Instant::now();
        let metrics = self.deps.telemetry.pipeline();
        metrics.messages.with_label_values(&[S::NAME]).inc_by(batch.len() as u64);
        let mut decisions = vec![Decision::Ack; batch.len()];
        // Every item of every message, tagged with its message: an item that keeps failing
        // holds back only its own message (the others are applied and, when it comes back,
        // recognised as already done).
        let mut items = Vec::with_capacity(batch.len());
        for (i, d) in batch.iter().enumerate() {
            match self.state.decode(d) {
                Ok(decoded) => items.extend(decoded.into_iter().map(|item| (i, item))),
                Err(reason) => decisions[i] = Decision::DeadLetter(reason),
            }
        }
        // Transactions of bounded size: a batch of large messages can carry hundreds of
        // thousands of items. A message spread over two transactions is acked after both; if
        // the second fails, its redelivery finds the first one's items already done.
        let committed = Mutex::new(Enqueued::default());
        for chunk in items.chunks(ITEMS_PER_TRANSACTION) {
            let failed = tiendo_store::batch::apply_batch(
                &self.db,
                chunk,
                &mut decisions,
                |items| self.transaction(items, &committed),
                |o| self.count(o),
            )
            .await;
            metrics.database_errors.with_label_values(&[S::NAME]).inc_by(failed);
        }
        // Published before the batch is acknowledged, so a consumer that has caught up means
        // its announcements are on the bus; what fails stays in the outbox for the relay.
        let committed = committed.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !committed.is_empty() {
            if let Err(e) = tiendo_store::outbox::publish_enqueued(&self.db, &self.deps.bus, committed).await {
                tracing::warn!(service = S::NAME, error = %e, "publishing the outbox failed; the periodic relay will retry");
            }
        }
        metrics.batch_seconds.with_label_values(&[S::NAME]).observe(started.elapsed().as_secs_f64());
        decisions
    }

    fn dead_lettered(&self, _d: &Delivery, _reason: &str) {
        self.deps.telemetry.pipeline().dead_letters.with_label_values(&[S::NAME]).inc();
    }
}
