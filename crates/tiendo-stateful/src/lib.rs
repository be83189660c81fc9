//! The consumer kit of the services that keep state (aggregation, alerting): decode a batch
//! of messages, apply it in one database transaction together with the messages that change
//! must announce (the outbox), publish those after the commit, then acknowledge.
//!
//! A message is acknowledged only after its transaction committed, so a crash before the ack
//! means a redelivery the service recognises (event ids and figure versions are stored in the
//! transaction that applies them). A failed transaction is sorted by [`ApplyError::kind`]:
//! an outage holds the batch, anything else is retried one message at a time so that only
//! the messages that fail alone wait.
//!
//! # Layout
//! - [`Stateful`]: what a service supplies (decode, apply, how outcomes count).
//! - [`StatefulService`]: the built service: consumer, transactions, outbox relay.
//! - [`database`]: [`Database`], opened once per process and shared.
//! - [`outbox`]: enqueue in the transaction, publish after it, relay what was left.
//! - [`Task`]: work beside the messages, on the clock (alerting's due dates).

pub mod database;
pub mod outbox;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::{Decision, Delivery, Handler};
use tiendo_bus::{Outgoing, StreamKind};
use tiendo_runtime::consumer::Consumer;
use tiendo_runtime::{Deps, Failure, FailureKind, Service};
use tiendo_store::error::Fault;
use tiendo_store::sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use tiendo_store::{Isolation, StoreError};
use tokio_util::sync::CancellationToken;

pub use database::Database;
use outbox::Enqueued;

/// What the batch's committed transactions left to send.
#[derive(Default)]
struct Committed {
    messages: Enqueued,
    notices: Vec<Notice>,
}

/// Most items applied in one transaction.
pub const ITEMS_PER_TRANSACTION: usize = 5_000;

/// Times a transaction that failed with a conflict is tried again at once, after a short
/// random pause, before its messages go back to the stream.
pub const CONFLICT_RETRIES: u32 = 4;

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

/// What one transaction did: an outcome per item, the messages to announce, and the notices
/// for live views.
#[derive(Debug)]
pub struct Applied<O> {
    pub outcomes: Vec<O>,
    /// Kept in the outbox with the transaction and published through JetStream: never lost.
    pub messages: Vec<Outgoing>,
    /// Published on core NATS once the transaction committed, at most once: hints for live
    /// views (a page to refresh), never anything a consumer counts on.
    pub notices: Vec<Notice>,
}

/// A core NATS message sent after a commit, at most once.
#[derive(Debug, Clone)]
pub struct Notice {
    pub subject: String,
    pub payload: bytes::Bytes,
}

/// Why applying items failed: the store's error, or a failure the service classified itself.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<DbErr> for ApplyError {
    fn from(e: DbErr) -> Self {
        ApplyError::Store(StoreError::Db(e))
    }
}

impl ApplyError {
    /// What the failure means for the messages: the database being unavailable is an
    /// outage; a conflict is transient; data the database refuses is poison.
    pub fn kind(&self) -> FailureKind {
        match self {
            ApplyError::Store(e) => match e.fault() {
                Fault::Unavailable => FailureKind::Outage,
                Fault::Conflict => FailureKind::Transient,
                Fault::Refused => FailureKind::Poison,
            },
            ApplyError::Failure(f) => f.kind,
        }
    }

    fn into_failure(self) -> Failure {
        match self {
            ApplyError::Failure(f) => f,
            other => Failure::new(other.kind(), other),
        }
    }
}

/// What a stateful service does with its messages.
pub trait Stateful: Send + Sync + 'static {
    /// Consumer name and `service` metric label.
    const NAME: &'static str;
    /// The stream it consumes.
    const STREAM: StreamKind;
    type Item: Send + Sync;
    type Outcome: Send;

    /// The items of one message, each checked; or why that message can never be applied.
    fn decode(&self, delivery: &Delivery) -> Result<Vec<Self::Item>, Failure>;

    /// Applies `items`, in order, inside `tx`, at `now`.
    fn apply(
        &self,
        tx: &DatabaseTransaction,
        items: &[&Self::Item],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Applied<Self::Outcome>, ApplyError>> + Send;

    fn counted(outcome: &Self::Outcome) -> Counted;

    /// How its transactions are isolated on PostgreSQL.
    fn isolation(&self) -> Isolation {
        Isolation::Serializable
    }
}

/// Work a service does beside its messages (on the clock), run until the shutdown token.
pub type Task = Box<dyn FnOnce(CancellationToken) -> futures::future::BoxFuture<'static, ()> + Send>;

/// A built stateful service.
pub struct StatefulService<S: Stateful> {
    deps: Deps,
    db: DatabaseConnection,
    consumers: Vec<Consumer>,
    state: Arc<S>,
    tasks: Vec<Task>,
}

impl<S: Stateful> StatefulService<S> {
    /// Creates the streams and the durable consumer on `db`, and marks the service ready.
    pub async fn build(deps: Deps, db: &Database, state: S) -> anyhow::Result<Self> {
        let consumer = Consumer::prepare(&deps, S::STREAM, S::NAME).await?;
        Ok(Self::on(deps, db, state, vec![consumer]))
    }

    /// The service reading `consumers` (prepared by the caller) at once, each with its own
    /// loop: their batches are applied concurrently, so they must not write the same rows
    /// (aggregation's partitions: one indicator each).
    pub fn on(deps: Deps, db: &Database, state: S, consumers: Vec<Consumer>) -> Self {
        Self { deps, db: db.connection().clone(), consumers, state: Arc::new(state), tasks: vec![] }
    }

    /// Runs `task` beside the consumer for as long as the service runs.
    pub fn with_task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }
}

impl<S: Stateful> Service for StatefulService<S> {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (bus, db) = (self.deps.bus.clone(), self.db.clone());
        let turn = outbox::Turn::default();
        let pending = self.deps.telemetry.pipeline().outbox_pending.with_label_values(&[S::NAME]);
        let relay = outbox::relay_periodically(db, bus, S::NAME, turn.clone(), pending, shutdown.clone());
        let mut background = vec![tokio::spawn(relay)];
        background.extend(self.tasks.into_iter().map(|task| tokio::spawn(task(shutdown.clone()))));
        let handler = StatefulHandler { deps: self.deps.clone(), db: self.db, state: self.state, outbox_turn: turn };
        let runs = self.consumers.into_iter().map(|c| c.run(&self.deps, S::NAME, &handler, shutdown.clone()));
        let result = futures::future::try_join_all(runs).await.map(drop);
        background.iter().for_each(|t| t.abort());
        result
    }
}

struct StatefulHandler<S: Stateful> {
    deps: Deps,
    db: DatabaseConnection,
    state: Arc<S>,
    /// Held (shared with the other consumers' batches) from a batch's first transaction until
    /// its messages are published, so the relay never publishes them a second time meanwhile.
    outbox_turn: outbox::Turn,
}

impl<S: Stateful> StatefulHandler<S> {
    /// One transaction: the items' effects and the outbox row announcing them, together.
    /// Once it commits, its messages join `committed`, to publish.
    async fn transaction(
        &self,
        items: Vec<&S::Item>,
        committed: &Mutex<Committed>,
    ) -> Result<Vec<S::Outcome>, ApplyError> {
        let tx = tiendo_store::begin_with(&self.db, self.state.isolation()).await?;
        let applied = self.state.apply(&tx, &items, (self.deps.clock)()).await?;
        let enqueued = outbox::enqueue(&*tx, S::NAME, applied.messages).await?;
        tx.commit().await?;
        let mut committed = committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        committed.messages.extend(enqueued);
        committed.notices.extend(applied.notices);
        Ok(applied.outcomes)
    }

    /// [`Self::transaction`], tried again in place when it fails with a conflict (above all
    /// PostgreSQL's serialization failures, when two instances write the same figures): a
    /// conflict usually clears within milliseconds, while handing the messages back would make
    /// them wait out the retry backoff (0.5 s and more) and, with several instances, fail again
    /// message by message. Pauses are random (up to 20, 40, 80, 160 ms) so that the
    /// transactions that collided do not collide again. Each conflict counts in
    /// `tiendo_database_errors_total`.
    async fn transaction_retrying(
        &self,
        items: Vec<&S::Item>,
        committed: &Mutex<Committed>,
    ) -> Result<Vec<S::Outcome>, ApplyError> {
        let mut attempt = 0;
        loop {
            match self.transaction(items.clone(), committed).await {
                Err(e) if e.kind() == FailureKind::Transient && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    self.deps.telemetry.pipeline().database_errors.with_label_values(&[S::NAME]).inc();
                    tracing::debug!(service = S::NAME, error = %e, attempt, "a transaction conflicted; trying again");
                    let pause = rand::random_range(1..=10u64 << attempt);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    }

    /// Applies `items` (each tagged with its message's index in the batch): all at once
    /// first; if that transaction fails and the database is there, one at a time, so only
    /// the items that fail alone make their messages wait. Returns how many transactions failed.
    async fn apply_chunk(
        &self,
        items: &[(usize, S::Item)],
        decisions: &mut [Decision],
        committed: &Mutex<Committed>,
    ) -> u64 {
        let all: Vec<&S::Item> = items.iter().map(|(_, t)| t).collect();
        let error = match self.transaction_retrying(all, committed).await {
            Ok(outcomes) => {
                outcomes.iter().for_each(|o| self.count(o));
                return 0;
            }
            Err(e) => e,
        };
        let mut failed = 1;
        if error.kind() == FailureKind::Outage || items.len() == 1 {
            tracing::warn!(service = S::NAME, error = %error, kind = ?error.kind(), "a transaction failed");
            let decision = error.into_failure().decision();
            items.iter().for_each(|(i, _)| decisions[*i] = decision.clone());
            return failed;
        }
        tracing::warn!(service = S::NAME, error = %error, "batch transaction failed; applying one by one");
        for (i, t) in items {
            match self.transaction_retrying(vec![t], committed).await {
                Ok(outcomes) => outcomes.iter().for_each(|o| self.count(o)),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(service = S::NAME, error = %e, kind = ?e.kind(), "a message's transaction failed");
                    decisions[*i] = e.into_failure().decision();
                }
            }
        }
        failed
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
                Err(failure) => decisions[i] = failure.decision(),
            }
        }
        // Transactions of bounded size: a batch of large messages can carry hundreds of
        // thousands of items. A message spread over two transactions is acked after both; if
        // the second fails, its redelivery finds the first one's items already done.
        let _turn = self.outbox_turn.read().await;
        let committed = Mutex::new(Committed::default());
        for chunk in items.chunks(ITEMS_PER_TRANSACTION) {
            let failed = self.apply_chunk(chunk, &mut decisions, &committed).await;
            metrics.database_errors.with_label_values(&[S::NAME]).inc_by(failed);
        }
        // Published before the batch is acknowledged, so a consumer that has caught up means
        // its announcements are on the bus; what fails stays in the outbox for the relay.
        let Committed { messages, notices } = committed.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !messages.is_empty() {
            if let Err(e) = outbox::publish(&self.db, &self.deps.bus, messages).await {
                tracing::warn!(service = S::NAME, error = %e, "publishing the outbox failed; the periodic relay will retry");
            }
        }
        for n in notices {
            if let Err(e) = self.deps.bus.client.publish(n.subject, n.payload).await {
                tracing::debug!(service = S::NAME, error = %e, "a notice for live views was not sent");
            }
        }
        metrics.batch_seconds.with_label_values(&[S::NAME]).observe(started.elapsed().as_secs_f64());
        decisions
    }

    fn dead_lettered(&self, _d: &Delivery, _reason: &str) {
        self.deps.telemetry.pipeline().dead_letters.with_label_values(&[S::NAME]).inc();
    }
}
