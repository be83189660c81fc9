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

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::{Decision, Delivery, Handler};
use tiendo_bus::{Outgoing, StreamKind};
use tiendo_runtime::consumer::Consumer;
use tiendo_runtime::{Deps, Failure, FailureKind, Service};
use tiendo_store::error::Fault;
use tiendo_store::sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};
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

/// Most lanes of a batch applied at once on PostgreSQL (see [`Stateful::lane`]), and at most
/// half the pool: the rest is for the process's other services (docs/performance.md, issue 15,
/// change 13).
pub const LANES: usize = 4;

/// Fewest items per lane: a batch of fewer is applied in one transaction. Each transaction
/// has its fixed costs (the reads that start it, its outbox row, the commit), which a small
/// batch split into lanes pays several times over: at 1,000 observations a second, batches of
/// a few dozen split four ways took p99 to the alert from 33 to 59 ms on PostgreSQL.
pub const LANE_ITEMS: usize = 500;

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

    /// The lane `item` belongs to in its batch. Items of different lanes never write the same
    /// rows, so where the database takes several writers at once (PostgreSQL) a batch's lanes
    /// are applied concurrently, each in transactions of its own. `None` for any item (the
    /// default): the batch is one lane.
    fn lane<'a>(&self, _item: &'a Self::Item) -> Option<&'a str> {
        None
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

    /// How many lanes of a batch are applied at once: one on SQLite (one connection),
    /// [`LANES`] or half the pool on PostgreSQL, whichever is less.
    fn lanes(&self) -> usize {
        match self.db.get_database_backend() {
            DbBackend::Postgres => LANES.min(self.deps.settings.database.max_connections as usize / 2).max(1),
            _ => 1,
        }
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
        let lanes = self.lanes();
        let turn = outbox::Turn::default();
        let pending = self.deps.telemetry.pipeline().outbox_pending.with_label_values(&[S::NAME]);
        let relay = outbox::relay_periodically(db, bus, S::NAME, turn.clone(), pending, shutdown.clone());
        let mut background = vec![tokio::spawn(relay)];
        background.extend(self.tasks.into_iter().map(|task| tokio::spawn(task(shutdown.clone()))));
        let handler =
            StatefulHandler { deps: self.deps.clone(), db: self.db, state: self.state, outbox_turn: turn, lanes };
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
    /// Most lanes of a batch applied at once.
    lanes: usize,
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

    /// Applies one lane's items, in transactions of at most [`ITEMS_PER_TRANSACTION`]. A
    /// message spread over two transactions is acked after both; if the second fails, its
    /// redelivery finds the first one's items already done. Returns how many transactions
    /// failed, and the decision for each message whose items failed.
    async fn apply_lane(
        &self,
        lane: &[(usize, S::Item)],
        committed: &Mutex<Committed>,
    ) -> (u64, Vec<(usize, Decision)>) {
        let mut failures = Vec::new();
        let mut failed = 0;
        for chunk in lane.chunks(ITEMS_PER_TRANSACTION) {
            failed += self.apply_chunk(chunk, &mut failures, committed).await;
        }
        (failed, failures)
    }

    /// Applies `items` (each tagged with its message's index in the batch): all at once
    /// first; if that transaction fails and the database is there, one at a time, so only
    /// the items that fail alone make their messages wait (their decisions join `failures`).
    /// Returns how many transactions failed.
    async fn apply_chunk(
        &self,
        items: &[(usize, S::Item)],
        failures: &mut Vec<(usize, Decision)>,
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
            failures.extend(items.iter().map(|(i, _)| (*i, decision.clone())));
            return failed;
        }
        tracing::warn!(service = S::NAME, error = %error, "batch transaction failed; applying one by one");
        for (i, t) in items {
            match self.transaction_retrying(vec![t], committed).await {
                Ok(outcomes) => outcomes.iter().for_each(|o| self.count(o)),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(service = S::NAME, error = %e, kind = ?e.kind(), "a message's transaction failed");
                    failures.push((*i, e.into_failure().decision()));
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
        // Lanes apart, at once; each in transactions of bounded size (a batch of large
        // messages can carry hundreds of thousands of items).
        let lanes = (items.len() / LANE_ITEMS).clamp(1, self.lanes);
        let lanes = split_lanes(items, lanes, |item| self.state.lane(item));
        let _turn = self.outbox_turn.read().await;
        let committed = Mutex::new(Committed::default());
        let done = futures::future::join_all(lanes.iter().map(|lane| self.apply_lane(lane, &committed))).await;
        for (failed, failures) in done {
            metrics.database_errors.with_label_values(&[S::NAME]).inc_by(failed);
            failures.into_iter().for_each(|(i, decision)| decisions[i] = decision);
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

/// `items` in at most `lanes` lanes: the items of one key together and in their order, the
/// keys spread so that the lanes are about as long as each other (the longest key first, each
/// into the shortest lane). One lane when `lanes` is 1 or any item has no key.
fn split_lanes<T>(items: Vec<(usize, T)>, lanes: usize, key: impl Fn(&T) -> Option<&str>) -> Vec<Vec<(usize, T)>> {
    if lanes <= 1 {
        return vec![items];
    }
    // The key's group of each item, and each group's length.
    let grouped = {
        let mut groups: HashMap<&str, usize> = HashMap::new();
        let mut lengths: Vec<usize> = Vec::new();
        let mut of_item = Vec::with_capacity(items.len());
        for (_, item) in &items {
            let Some(k) = key(item) else { break };
            let next = groups.len();
            let g = *groups.entry(k).or_insert(next);
            if g == lengths.len() {
                lengths.push(0);
            }
            lengths[g] += 1;
            of_item.push(g);
        }
        (of_item.len() == items.len()).then_some((of_item, lengths))
    };
    let Some((of_item, lengths)) = grouped else { return vec![items] };
    let mut by_length: Vec<usize> = (0..lengths.len()).collect();
    by_length.sort_by_key(|g| std::cmp::Reverse(lengths[*g]));
    let mut lane_lengths = vec![0; lanes.min(lengths.len()).max(1)];
    let mut lane_of = vec![0; lengths.len()];
    for g in by_length {
        let shortest = (0..lane_lengths.len()).min_by_key(|l| lane_lengths[*l]).unwrap_or(0);
        lane_of[g] = shortest;
        lane_lengths[shortest] += lengths[g];
    }
    let mut out: Vec<Vec<(usize, T)>> = lane_lengths.iter().map(|n| Vec::with_capacity(*n)).collect();
    for (item, g) in items.into_iter().zip(of_item) {
        out[lane_of[g]].push(item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_lanes;

    #[test]
    fn a_keys_items_stay_in_one_lane_in_their_order_and_the_lanes_are_balanced() {
        let items: Vec<(usize, &str)> =
            vec![(0, "a"), (0, "b"), (1, "a"), (2, "c"), (2, "a"), (3, "b"), (4, "d"), (5, "a")];
        let lanes = split_lanes(items, 2, |k| Some(*k));
        // a has 4 items, b 2, c 1, d 1: a alone, then b, c and d in the other lane.
        assert_eq!(
            lanes,
            vec![vec![(0, "a"), (1, "a"), (2, "a"), (5, "a")], vec![(0, "b"), (2, "c"), (3, "b"), (4, "d")]]
        );
    }

    #[test]
    fn one_lane_when_there_is_one_or_an_item_has_no_key() {
        let items: Vec<(usize, &str)> = vec![(0, "a"), (1, "b"), (2, "")];
        assert_eq!(split_lanes(items.clone(), 1, |k| Some(*k)).len(), 1);
        let lanes = split_lanes(items.clone(), 4, |k| (!k.is_empty()).then_some(*k));
        assert_eq!(lanes, vec![items.clone()]);
        assert_eq!(split_lanes(items, 8, |k| Some(*k)).len(), 3, "no more lanes than keys");
        assert_eq!(split_lanes(Vec::<(usize, &str)>::new(), 4, |k| Some(*k)).len(), 1);
    }
}
