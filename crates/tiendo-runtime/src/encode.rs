//! Encoding outgoing messages. An encoding failure is an error of the message being built,
//! never an empty payload on the bus.

use tiendo_bus::{ContentType, Outgoing};

use crate::failure::Failure;

/// A JSON message (rejections, aggregates, alerts: what people and tools read).
pub fn json<T: serde::Serialize>(subject: String, msg_id: String, value: &T) -> Result<Outgoing, Failure> {
    let payload =
        serde_json::to_vec(value).map_err(|e| Failure::poison(anyhow::Error::new(e).context("encoding JSON")))?;
    Ok(Outgoing::new(subject, msg_id, payload, ContentType::Json))
}

/// A protobuf message (batches between stages). Encoding into a vector cannot fail.
pub fn protobuf<M: tiendo_proto::Message>(subject: String, msg_id: String, value: &M) -> Outgoing {
    Outgoing::new(subject, msg_id, value.encode_to_vec(), ContentType::Protobuf)
}
