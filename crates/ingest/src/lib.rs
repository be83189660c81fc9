//! The ingest service: the front door for departments.
//!
//! Reads what departments publish on `<prefix>.ingest.<department>` (one JSON observation, a
//! JSON array of them, or a protobuf `ObservationBatch`), stamps each observation with the
//! department (from the subject, never from the payload) and the time it was received, and
//! passes them on to validation in `ReceivedBatch` messages (up to a thousand observations of
//! one department each, gathered from the whole batch of department messages in hand). What cannot be decoded is
//! rejected here with reason `malformed`. It checks nothing against the catalog: that is
//! validation's job.
//!
//! # Layout
//! - [`decode`]: bytes → observations or refusals (pure, unit-tested).
//! - [`Ingest`]: the service: consumer, handler, publishing.

pub mod decode;

use std::time::Instant;

use tiendo_bus::consume::{self, Decision, Delivery, Handler};
use tiendo_bus::{ContentType, Outgoing, StreamKind};
use tiendo_proto::v1::{ReceivedBatch, ReceivedObservation};
use tiendo_proto::Message as _;
use tiendo_runtime::{Deps, Service};
use tokio_util::sync::CancellationToken;

use crate::decode::Item;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = "ingest";

/// The built ingest service.
pub struct Ingest {
    deps: Deps,
    consumer: tiendo_bus::async_nats::jetstream::consumer::PullConsumer,
}

impl Ingest {
    /// Creates the streams and the durable consumer; marks the service ready.
    pub async fn build(deps: Deps) -> anyhow::Result<Self> {
        deps.bus.ensure_streams(&deps.settings.pipeline).await?;
        let consumer = deps.bus.ensure_consumer(StreamKind::Ingest, NAME, &deps.settings.pipeline).await?;
        deps.watch_consumer(NAME, consumer.clone());
        deps.telemetry.pipeline().touch(NAME);
        deps.telemetry.readiness().set(NAME, true);
        Ok(Self { deps, consumer })
    }
}

impl Service for Ingest {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let p = &self.deps.settings.pipeline;
        let handler = IngestHandler { deps: self.deps.clone() };
        consume::run(&self.deps.bus, self.consumer, NAME, p.batch_size, p.max_deliver, &handler, shutdown).await
    }
}

struct IngestHandler {
    deps: Deps,
}

impl IngestHandler {
    /// Every message one department message turns into.
    /// Decodes one department message: its observations go to `received` (by department),
    /// its refusals straight to `out`.
    fn outputs(
        &self,
        d: &Delivery,
        received: &mut Vec<(String, ReceivedObservation)>,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        let names = &self.deps.bus.names;
        let metrics = self.deps.telemetry.pipeline();
        let department = names
            .department_of_ingest(d.subject())
            .ok_or_else(|| format!("subject {} is not {}", d.subject(), names.ingest("<department>")))?;
        let label = if self.deps.catalog.department(department).is_some() { department } else { "unknown" };
        let now = (self.deps.clock)().to_rfc3339();
        let items = decode::decode(d.payload(), ContentType::from_header(d.header("Content-Type")));
        for (index, item) in items.into_iter().enumerate() {
            metrics.received.with_label_values(&[NAME]).inc();
            match item {
                Item::Observation(observation) => {
                    metrics.accepted.with_label_values(&[NAME]).inc();
                    received.push((
                        department.to_owned(),
                        ReceivedObservation {
                            observation: Some(observation),
                            department: department.to_owned(),
                            received_at: now.clone(),
                            source_seq: d.stream_seq,
                            source_index: index as u32,
                        },
                    ));
                }
                Item::Refused { event_id, refusal } => {
                    metrics.rejected.with_label_values(&[NAME, label, refusal.reason.as_str()]).inc();
                    let wire = refusal.to_wire(&event_id, department, &now);
                    out.push(consume::outgoing(
                        names.rejected(department),
                        format!("rj:i:{}:{index}", d.stream_seq),
                        serde_json::to_vec(&wire).unwrap_or_default(),
                        ContentType::Json,
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Handler for IngestHandler {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Decision> {
        let started = Instant::now();
        let metrics = self.deps.telemetry.pipeline();
        metrics.messages.with_label_values(&[NAME]).inc_by(batch.len() as u64);
        let (mut received, mut out) = (Vec::new(), Vec::new());
        let mut decisions: Vec<Decision> = batch
            .iter()
            .map(|d| match self.outputs(d, &mut received, &mut out) {
                Ok(()) => Decision::Ack,
                Err(reason) => Decision::DeadLetter(reason),
            })
            .collect();
        // The whole batch's observations travel on in a few messages, one department each.
        for (department, observations) in tiendo_bus::group_into_messages(received) {
            let id =
                tiendo_bus::batch_id("r", &department, observations.iter().map(|o| (o.source_seq, o.source_index)));
            let message = ReceivedBatch { observations };
            out.push(consume::outgoing(
                self.deps.bus.names.received(&department),
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
