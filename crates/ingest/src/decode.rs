//! Decoding what a department sent. Pure: bytes in, observations and refusals out, one item
//! per observation (or one refusal for a message too broken to split), in order.

use tiendo_bus::ContentType;
use tiendo_domain::reason::{Refusal, RejectReason};
use tiendo_domain::validate::quote;
use tiendo_proto::v1::{Observation, ObservationBatch};
use tiendo_proto::Message as _;

/// One decoded item.
#[derive(Debug)]
pub enum Item {
    Observation(Observation),
    /// With the event id when it could be read, so the clerk knows which row to fix.
    Refused {
        event_id: String,
        refusal: Refusal,
    },
}

fn malformed(event_id: String, detail: impl Into<String>) -> Item {
    Item::Refused { event_id, refusal: Refusal::new(RejectReason::Malformed, detail) }
}

/// Decodes a payload of the given content type.
pub fn decode(payload: &[u8], content_type: ContentType) -> Vec<Item> {
    match content_type {
        ContentType::Protobuf => match ObservationBatch::decode(payload) {
            Ok(batch) if batch.observations.is_empty() => {
                vec![malformed(String::new(), "the batch holds no observations")]
            }
            Ok(batch) => batch.observations.into_iter().map(Item::Observation).collect(),
            Err(e) => vec![malformed(String::new(), format!("not a protobuf ObservationBatch: {e}"))],
        },
        ContentType::Json => decode_json(payload),
    }
}

fn decode_json(payload: &[u8]) -> Vec<Item> {
    let value: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => return vec![malformed(String::new(), format!("not valid JSON: {e}"))],
    };
    match value {
        serde_json::Value::Array(items) if items.is_empty() => {
            vec![malformed(String::new(), "the array holds no observations")]
        }
        serde_json::Value::Array(items) => items.into_iter().map(decode_one).collect(),
        v @ serde_json::Value::Object(_) => vec![decode_one(v)],
        other => vec![malformed(
            String::new(),
            format!("expected a JSON object or an array of objects, got {}", kind(&other)),
        )],
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn decode_one(v: serde_json::Value) -> Item {
    let event_id = match &v {
        serde_json::Value::Object(map) => map.get("event_id").and_then(|e| e.as_str()).map(quote).unwrap_or_default(),
        other => return malformed(String::new(), format!("expected an observation object, got {}", kind(other))),
    };
    match serde_json::from_value::<Observation>(v) {
        Ok(o) => Item::Observation(o),
        Err(e) => malformed(event_id, format!("observation not understood: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(payload: &str) -> Vec<String> {
        decode(payload.as_bytes(), ContentType::Json)
            .into_iter()
            .map(|i| match i {
                Item::Observation(o) => format!("ok:{}", o.event_id),
                Item::Refused { event_id, refusal } => format!("{}:{event_id}:{}", refusal.reason, refusal.detail),
            })
            .collect()
    }

    #[test]
    fn a_single_object_and_an_array_both_decode() {
        let one = r#"{"event_id":"a","indicator":"smartphone_adults","org_unit":"89","period":"2024-06","value":70}"#;
        assert_eq!(reasons(one), ["ok:a"]);
        assert_eq!(reasons(&format!("[{one},{one}]")), ["ok:a", "ok:a"]);
    }

    #[test]
    fn one_bad_row_is_refused_alone_with_its_event_id() {
        let r = reasons(r#"[{"event_id":"a"},{"event_id":"b","valeu":3},7]"#);
        assert_eq!(r[0], "ok:a");
        assert!(r[1].starts_with("malformed:b:") && r[1].contains("unknown field `valeu`"), "{}", r[1]);
        assert!(r[2].starts_with("malformed::expected an observation object, got a number"), "{}", r[2]);
    }

    #[test]
    fn wrong_types_broken_json_and_empty_batches_are_malformed() {
        assert!(reasons(r#"{"event_id":"a","value":"70"}"#)[0].starts_with("malformed:a:"));
        assert!(reasons("{not json")[0].starts_with("malformed::not valid JSON"));
        assert!(reasons("[]")[0].contains("no observations"));
        assert!(reasons("\"hello\"")[0].contains("got a string"));
        assert!(reasons(&"[".repeat(10_000))[0].starts_with("malformed::not valid JSON"));
    }

    #[test]
    fn protobuf_batches_decode_and_garbage_is_malformed() {
        let batch =
            ObservationBatch { observations: vec![Observation { event_id: "p1".into(), ..Default::default() }] };
        let items = decode(&batch.encode_to_vec(), ContentType::Protobuf);
        assert!(matches!(&items[..], [Item::Observation(o)] if o.event_id == "p1"));
        let garbage = decode(&[0xff, 0xff, 0xff], ContentType::Protobuf);
        assert!(matches!(&garbage[..], [Item::Refused { refusal, .. }] if refusal.reason == RejectReason::Malformed));
    }
}
