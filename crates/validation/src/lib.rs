//! The validation service: checks each received observation against the catalog.
//!
//! Reads `<prefix>.received.<department>`; publishes the observations that pass to
//! `<prefix>.valid.<indicator>` (protobuf `ValidBatch`, up to a thousand each) and each that fails to
//! `<prefix>.rejected.<department>` (JSON `Rejection`, with the reason code and what to fix).
//! The rules themselves live in `tiendo_domain::validate`; this crate only moves messages.
//!
//! # Layout
//! - [`Validation`]: the service: consumer, handler, publishing.

use std::time::Instant;

use tiendo_bus::consume::{self, Decision, Delivery, Handler};
use tiendo_bus::{ContentType, Outgoing, StreamKind};
use tiendo_domain::validate::validate;
use tiendo_proto::v1::{ReceivedBatch, ValidBatch, ValidObservation};
use tiendo_proto::Message as _;
use tiendo_runtime::{Deps, Service};
use tokio_util::sync::CancellationToken;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = "validation";

/// The built validation service.
pub struct Validation {
    deps: Deps,
    consumer: tiendo_bus::async_nats::jetstream::consumer::PullConsumer,
}

impl Validation {
    /// Creates the streams and the durable consumer; marks the service ready.
    pub async fn build(deps: Deps) -> anyhow::Result<Self> {
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let consumer = deps.bus.ensure_consumer(StreamKind::Received, NAME, &deps.settings.pipeline).await?;
        deps.watch_consumer(NAME, consumer.clone());
        deps.telemetry.pipeline().touch(NAME);
        deps.telemetry.readiness().set(NAME, true);
        Ok(Self { deps, consumer })
    }
}

impl Service for Validation {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let p = &self.deps.settings.pipeline;
        let handler = ValidationHandler { deps: self.deps.clone() };
        consume::run(&self.deps.bus, self.consumer, NAME, p.batch_size, p.max_deliver, &handler, shutdown).await
    }
}

struct ValidationHandler {
    deps: Deps,
}

impl ValidationHandler {
    /// Checks every observation of one `ReceivedBatch`: the valid ones go to `valid` (by
    /// indicator), the refusals straight to `out`, one rejection each.
    fn outputs(
        &self,
        d: &Delivery,
        valid: &mut Vec<(String, ValidObservation)>,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        let names = &self.deps.bus.names;
        let metrics = self.deps.telemetry.pipeline();
        let batch = ReceivedBatch::decode(d.payload().as_ref()).map_err(|e| format!("not a ReceivedBatch: {e}"))?;
        let department = names
            .department_of_received(d.subject())
            .ok_or_else(|| format!("subject {} is not {}", d.subject(), names.received("<department>")))?;
        let now = (self.deps.clock)();
        for received in batch.observations {
            metrics.received.with_label_values(&[NAME]).inc();
            match validate(&received, &self.deps.catalog, now.date_naive()) {
                Ok(observation) => {
                    metrics.accepted.with_label_values(&[NAME]).inc();
                    valid.push((observation.indicator().to_string(), ValidObservation::from(&observation)));
                }
                Err(refusal) => {
                    let label = if self.deps.catalog.department(department).is_some() { department } else { "unknown" };
                    metrics.rejected.with_label_values(&[NAME, label, refusal.reason.as_str()]).inc();
                    let event_id = received.observation.as_ref().map(|o| o.event_id.as_str()).unwrap_or_default();
                    let wire =
                        refusal.to_wire(&tiendo_domain::validate::quote(event_id), department, &now.to_rfc3339());
                    out.push(consume::outgoing(
                        names.rejected(department),
                        format!("rj:v:{}:{}", received.source_seq, received.source_index),
                        serde_json::to_vec(&wire).unwrap_or_default(),
                        ContentType::Json,
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Handler for ValidationHandler {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Decision> {
        let started = Instant::now();
        let metrics = self.deps.telemetry.pipeline();
        metrics.messages.with_label_values(&[NAME]).inc_by(batch.len() as u64);
        let (mut valid, mut out) = (Vec::new(), Vec::new());
        let mut decisions: Vec<Decision> = batch
            .iter()
            .map(|d| match self.outputs(d, &mut valid, &mut out) {
                Ok(()) => Decision::Ack,
                Err(reason) => Decision::DeadLetter(reason),
            })
            .collect();
        for (indicator, observations) in tiendo_bus::group_into_messages(valid) {
            let id = tiendo_bus::batch_id("v", &indicator, observations.iter().map(|o| (o.source_seq, o.source_index)));
            let message = ValidBatch { observations };
            out.push(consume::outgoing(
                self.deps.bus.names.valid(&indicator),
                id,
                message.encode_to_vec(),
                ContentType::Protobuf,
            ));
        }
        consume::publish_or_retry(&self.deps.bus, NAME, out, &mut decisions).await;
        metrics.batch_seconds.with_label_values(&[NAME]).observe(started.elapsed().as_secs_f64());
        decisions
    }

    fn dead_lettered(&self, _d: &Delivery, _reason: &str) {
        self.deps.telemetry.pipeline().dead_letters.with_label_values(&[NAME]).inc();
    }
}
