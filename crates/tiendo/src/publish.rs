//! `tiendo publish`: what a department clerk runs to send a file of observations.
//!
//! Accepts the JSON that departments send (one object or an array), or a CSV spreadsheet
//! whose header names the same fields (`event_id,indicator,org_unit,period,value,numerator,
//! denominator,reported_at,note`; empty cells are left out). Publishes it to
//! `<prefix>.ingest.<department>` through JetStream, waits for the durable receipt, and can
//! wait a few seconds to print the rejections that come back for this department.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use serde_json::{Map, Value};
use tiendo_bus::names::header;
use tiendo_bus::Bus;
use tiendo_proto::v1::Rejection;

/// Fields whose CSV cells are numbers.
const NUMERIC: [&str; 3] = ["value", "numerator", "denominator"];

/// Turns a CSV spreadsheet into the JSON array departments send. A cell that should be a
/// number but is not is passed on as text, so the clerk gets a `malformed` rejection naming it.
pub fn csv_to_json(text: &str) -> anyhow::Result<Value> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().context("reading the CSV header")?.clone();
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("reading CSV row {}", n + 2))?;
        let mut obj = Map::new();
        for (field, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            let value = match cell.parse::<f64>() {
                Ok(x) if NUMERIC.contains(&field) => serde_json::Number::from_f64(x).map(Value::Number),
                _ => None,
            };
            obj.insert(field.to_owned(), value.unwrap_or_else(|| Value::String(cell.to_owned())));
        }
        rows.push(Value::Object(obj));
    }
    Ok(Value::Array(rows))
}

/// A stable message id for a payload: publishing the same file twice within JetStream's
/// duplicate window stores it once.
pub fn content_id(payload: &[u8]) -> String {
    let hash =
        payload.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    format!("publish-{hash:016x}")
}

/// Publishes `payload` as `department`; prints the receipt and, for `wait`, the rejections.
pub async fn run(
    bus: &Bus,
    department: &str,
    payload: Vec<u8>,
    wait: Duration,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let mut rejections = bus.client.subscribe(bus.names.rejected(department)).await?;
    let mut headers = tiendo_bus::async_nats::HeaderMap::new();
    headers.insert(header::MSG_ID, content_id(&payload).as_str());
    headers.insert(header::CONTENT_TYPE, tiendo_bus::ContentType::JSON);
    let ack = bus
        .js
        .publish_with_headers(bus.names.ingest(department), headers, payload.into())
        .await?
        .await
        .context("JetStream did not store the message (is tiendo up?)")?;
    writeln!(
        out,
        "stored in {} as message {}{}",
        ack.stream,
        ack.sequence,
        if ack.duplicate { " (a duplicate of a message already stored: ignored)" } else { "" }
    )?;
    if wait.is_zero() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut count = 0;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rejections.next()).await {
        if let Ok(r) = serde_json::from_slice::<Rejection>(&m.payload) {
            count += 1;
            writeln!(out, "rejected: event `{}`: {}: {}", r.event_id, r.reason, r.detail)?;
        }
    }
    writeln!(out, "{count} rejection(s) for {department} in {wait:?}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spreadsheet_becomes_the_json_departments_send() {
        let csv = "event_id,indicator,org_unit,period,numerator,denominator,value\n\
                   a,smartphone_adults,883,2024-06,10,20,\n\
                   b,sme_digital_platforms,89,2024-06,,,45.5\n\
                   c,smartphone_adults,884,2024-06,ten,20,\n";
        let v = csv_to_json(csv).unwrap();
        assert_eq!(v[0]["numerator"], serde_json::json!(10.0));
        assert!(v[0].get("value").is_none());
        assert_eq!(v[1]["value"], serde_json::json!(45.5));
        assert_eq!(v[1]["period"], serde_json::json!("2024-06"));
        assert_eq!(v[2]["numerator"], serde_json::json!("ten"));
    }

    #[test]
    fn the_same_file_gets_the_same_message_id() {
        assert_eq!(content_id(b"abc"), content_id(b"abc"));
        assert_ne!(content_id(b"abc"), content_id(b"abd"));
    }
}
