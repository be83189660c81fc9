//! The validation service: checks each received observation against the catalog.
//!
//! Reads `<prefix>.received.<department>`; publishes the observations that pass to
//! `<prefix>.valid.<indicator>` (protobuf `ValidBatch`, up to a thousand each) and each that fails to
//! `<prefix>.rejected.<department>` (JSON `Rejection`, with the reason code and what to fix).
//! The rules themselves live in `tiendo_domain::validate`; this crate only moves messages.
//!
//! # Layout
//! - [`Validator`]: checking one `ReceivedBatch`; the consumer, batching and publishing
//!   around it are `tiendo_runtime::stateless`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::Delivery;
use tiendo_bus::names::{msg_id, service};
use tiendo_bus::{Names, Outgoing, StreamKind};
use tiendo_domain::reason::{Refusal, RejectReason};
use tiendo_domain::validate::{quote, validate, Receipt};
use tiendo_domain::Catalog;
use tiendo_proto::convert::{position, rejection, submission};
use tiendo_proto::v1::{ReceivedBatch, ValidBatch, ValidObservation};
use tiendo_proto::Message as _;
use tiendo_runtime::stateless::{Output, Stateless, StatelessService};
use tiendo_runtime::{encode, Deps, Failure};

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = service::VALIDATION;

/// The built validation service.
pub type Validation = StatelessService<Validator>;

/// Creates the streams and the durable consumer; marks the service ready.
pub async fn build(deps: Deps) -> anyhow::Result<Validation> {
    let validator = Validator { names: deps.bus.names.clone(), catalog: deps.catalog.clone() };
    StatelessService::build(deps, validator).await
}

/// What validation does with each `ReceivedBatch`.
pub struct Validator {
    names: Names,
    catalog: Arc<Catalog>,
}

impl Stateless for Validator {
    const NAME: &'static str = NAME;
    const STREAM: StreamKind = StreamKind::Received;
    type Forward = ValidObservation;

    /// Checks every observation of one `ReceivedBatch`: the valid ones go on to aggregation
    /// (grouped by indicator), each refusal back to its department.
    fn read(&self, d: &Delivery, now: DateTime<Utc>, out: &mut Output<ValidObservation>) -> Result<(), Failure> {
        let batch = ReceivedBatch::decode(d.payload().as_ref())
            .map_err(|e| Failure::poison(anyhow::anyhow!("not a ReceivedBatch: {e}")))?;
        let department = self.names.department_of_received(d.subject()).ok_or_else(|| {
            Failure::poison(anyhow::anyhow!("subject {} is not {}", d.subject(), self.names.received("<department>")))
        })?;
        let label = if self.catalog.find_department(department).is_some() { department } else { "unknown" };
        for received in &batch.observations {
            let receipt = Receipt {
                department,
                received_at: tiendo_proto::convert::parse_time("received_at", &received.received_at)
                    .map_err(|e| Failure::poison(anyhow::Error::new(e).context("a received observation")))?,
                position: position(received),
            };
            let checked = match &received.observation {
                Some(o) => validate(&submission(o), &receipt, &self.catalog, self.catalog.clock().today(now)),
                None => Err(Refusal::new(RejectReason::Malformed, "the message carries no observation")),
            };
            match checked {
                Ok(observation) => {
                    out.forward(observation.indicator().to_string(), ValidObservation::from(&observation))
                }
                Err(refusal) => {
                    let event_id = received.observation.as_ref().map(|o| o.event_id.as_str()).unwrap_or_default();
                    let message = encode::json(
                        self.names.rejected(department),
                        msg_id::validation_rejection(received.source_seq, received.source_index),
                        &rejection(&refusal, &quote(event_id), department, now),
                    )?;
                    out.reject(label, refusal.reason, message);
                }
            }
        }
        Ok(())
    }

    fn forward(&self, indicator: &str, observations: Vec<ValidObservation>) -> Outgoing {
        let id = msg_id::batch("v", indicator, observations.iter().map(|o| (o.source_seq, o.source_index)));
        encode::protobuf(self.names.valid(indicator), id, &ValidBatch { observations })
    }
}
