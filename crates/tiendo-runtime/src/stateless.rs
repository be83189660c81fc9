//! The consumer kit of the services that keep no state (ingest, validation): read each
//! message of a batch, gather what goes on to the next stage into a few batch messages, send
//! each refusal to its department, publish everything, then acknowledge.
//!
//! Nothing is stored, so a message is acknowledged only after everything it turned into is
//! on the bus; the outgoing ids derive from stream positions, so a redelivered message
//! publishes the same ids again and JetStream drops the copies. When the bus will not store
//! them, the batch is held (an outage), never counted as a failed attempt.

use std::time::Instant;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::{Decision, Delivery, Handler};
use tiendo_bus::{Outgoing, StreamKind};
use tiendo_domain::RejectReason;
use tiendo_telemetry::PipelineMetrics;
use tokio_util::sync::CancellationToken;

use crate::consumer::Consumer;
use crate::failure::Failure;
use crate::{Deps, Service};

/// What a stateless service does with each message.
pub trait Stateless: Send + Sync + 'static {
    /// Consumer name and `service` metric label.
    const NAME: &'static str;
    /// The stream it consumes.
    const STREAM: StreamKind;
    /// An item carried on to the next stage.
    type Forward: Send;

    /// Reads one message: its items go on through `out.forward`, its refusals through
    /// `out.reject`. An error means the message as a whole cannot be read.
    fn read(&self, delivery: &Delivery, now: DateTime<Utc>, out: &mut Output<Self::Forward>) -> Result<(), Failure>;

    /// The message that carries `items`, which share `key`, to the next stage.
    fn forward(&self, key: &str, items: Vec<Self::Forward>) -> Outgoing;
}

/// What the messages of one batch turned into, counted as it is gathered.
pub struct Output<'a, F> {
    service: &'static str,
    metrics: &'a PipelineMetrics,
    forwards: Vec<(String, F)>,
    messages: Vec<Outgoing>,
}

impl<F> Output<'_, F> {
    /// An item that passed, to go on in a message for `key`.
    pub fn forward(&mut self, key: String, item: F) {
        self.metrics.received.with_label_values(&[self.service]).inc();
        self.metrics.accepted.with_label_values(&[self.service]).inc();
        self.forwards.push((key, item));
    }

    /// An item refused for `reason`, and the rejection that tells its department;
    /// `department` labels the metric (`unknown` for a department not in the catalog).
    pub fn reject(&mut self, department: &str, reason: RejectReason, rejection: Outgoing) {
        self.metrics.received.with_label_values(&[self.service]).inc();
        self.metrics.rejected.with_label_values(&[self.service, department, reason.as_str()]).inc();
        self.messages.push(rejection);
    }

    fn mark(&self) -> (usize, usize) {
        (self.forwards.len(), self.messages.len())
    }

    fn rewind(&mut self, (forwards, messages): (usize, usize)) {
        self.forwards.truncate(forwards);
        self.messages.truncate(messages);
    }
}

/// A built stateless service.
pub struct StatelessService<S: Stateless> {
    deps: Deps,
    consumer: Consumer,
    service: S,
}

impl<S: Stateless> StatelessService<S> {
    /// Creates the streams and the durable consumer; marks the service ready.
    pub async fn build(deps: Deps, service: S) -> anyhow::Result<Self> {
        let consumer = Consumer::prepare(&deps, S::STREAM, S::NAME).await?;
        Ok(Self { deps, consumer, service })
    }
}

impl<S: Stateless> Service for StatelessService<S> {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let handler = StatelessHandler { deps: self.deps.clone(), service: self.service };
        self.consumer.run(&self.deps, S::NAME, &handler, shutdown).await
    }
}

struct StatelessHandler<S> {
    deps: Deps,
    service: S,
}

impl<S: Stateless> Handler for StatelessHandler<S> {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Decision> {
        let started = Instant::now();
        let metrics = self.deps.telemetry.pipeline();
        metrics.messages.with_label_values(&[S::NAME]).inc_by(batch.len() as u64);
        let now = (self.deps.clock)();
        let mut out = Output { service: S::NAME, metrics, forwards: Vec::new(), messages: Vec::new() };
        let mut decisions: Vec<Decision> = batch
            .iter()
            .map(|d| {
                let mark = out.mark();
                match self.service.read(d, now, &mut out) {
                    Ok(()) => Decision::Ack,
                    Err(failure) => {
                        out.rewind(mark);
                        failure.decision()
                    }
                }
            })
            .collect();
        // The whole batch's items travel on in a few messages, one key each.
        let mut messages = out.messages;
        for (key, items) in tiendo_bus::group_into_messages(out.forwards) {
            messages.push(self.service.forward(&key, items));
        }
        // Nothing was wrong with the messages: the bus would not store what they turned into
        // (down, failing over, full). They are held like through a database outage, and sent
        // again, under the same ids, once it takes them.
        if let Err(e) = self.deps.bus.publish_all(messages).await {
            tracing::warn!(service = S::NAME, error = %e, "publishing failed; holding the batch");
            for d in decisions.iter_mut().filter(|d| **d == Decision::Ack) {
                *d = Failure::outage(anyhow::anyhow!("publishing to the next stage failed: {e:#}")).decision();
            }
        }
        metrics.batch_seconds.with_label_values(&[S::NAME]).observe(started.elapsed().as_secs_f64());
        decisions
    }

    fn dead_lettered(&self, _d: &Delivery, _reason: &str) {
        self.deps.telemetry.pipeline().dead_letters.with_label_values(&[S::NAME]).inc();
    }
}
