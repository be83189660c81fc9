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
//! - [`Ingester`]: reading one department message; the consumer, batching and publishing
//!   around it are `tiendo_runtime::stateless`.

pub mod decode;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::Delivery;
use tiendo_bus::names::{msg_id, service};
use tiendo_bus::{Names, Outgoing, StreamKind};
use tiendo_domain::Catalog;
use tiendo_proto::convert::rejection;
use tiendo_proto::v1::{ReceivedBatch, ReceivedObservation};
use tiendo_runtime::stateless::{Output, Stateless, StatelessService};
use tiendo_runtime::{encode, Deps, Failure};

use crate::decode::Item;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = service::INGEST;

/// The built ingest service.
pub type Ingest = StatelessService<Ingester>;

/// Creates the streams and the durable consumer; marks the service ready.
pub async fn build(deps: Deps) -> anyhow::Result<Ingest> {
    let ingester = Ingester { names: deps.bus.names.clone(), catalog: deps.catalog.clone() };
    StatelessService::build(deps, ingester).await
}

/// What ingest does with each department message.
pub struct Ingester {
    names: Names,
    catalog: std::sync::Arc<Catalog>,
}

impl Stateless for Ingester {
    const NAME: &'static str = NAME;
    const STREAM: StreamKind = StreamKind::Ingest;
    type Forward = ReceivedObservation;

    /// Decodes one department message: its observations go on to validation (grouped by
    /// department), its refusals straight back to the department.
    fn read(&self, d: &Delivery, now: DateTime<Utc>, out: &mut Output<ReceivedObservation>) -> Result<(), Failure> {
        let department = self.names.department_of_ingest(d.subject()).ok_or_else(|| {
            Failure::poison(anyhow::anyhow!("subject {} is not {}", d.subject(), self.names.ingest("<department>")))
        })?;
        let label = if self.catalog.find_department(department).is_some() { department } else { "unknown" };
        let received_at = tiendo_proto::convert::timestamp(now);
        for (index, item) in decode::decode(d.payload(), d.content_type()).into_iter().enumerate() {
            match item {
                Item::Observation(observation) => out.forward(
                    department.to_owned(),
                    ReceivedObservation {
                        observation: Some(observation),
                        department: department.to_owned(),
                        received_at: received_at.clone(),
                        source_seq: d.stream_seq,
                        source_index: index as u32,
                    },
                ),
                Item::Refused { event_id, refusal } => {
                    let message = encode::json(
                        self.names.rejected(department),
                        msg_id::ingest_rejection(d.stream_seq, index),
                        &rejection(&refusal, &event_id, department, now),
                    )?;
                    out.reject(label, refusal.reason, message);
                }
            }
        }
        Ok(())
    }

    fn forward(&self, department: &str, observations: Vec<ReceivedObservation>) -> Outgoing {
        let id = msg_id::batch("r", department, observations.iter().map(|o| (o.source_seq, o.source_index)));
        encode::protobuf(self.names.received(department), id, &ReceivedBatch { observations })
    }
}
