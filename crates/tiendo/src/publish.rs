//! `tiendo publish`: what a department clerk runs to send a file of observations.
//!
//! Accepts the JSON that departments send (one object or an array), or a CSV spreadsheet
//! whose header names the same fields (`event_id,indicator,org_unit,period,value,numerator,
//! denominator,reported_at,note`; empty cells are left out). Publishes it to
//! `<prefix>.ingest.<department>` through JetStream, 500 rows a message, with a progress bar
//! for a large file, waits for the durable receipts, can wait a few seconds to print the
//! rejections that come back for this department, and ends with a summary.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
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

/// Rows per message when a file is split: far below the server's payload limit, and a
/// progress bar moves as each is stored.
pub const ROWS_PER_MESSAGE: usize = 500;

/// Files of more rows than this show a progress bar (on a terminal).
pub const PROGRESS_ABOVE: usize = 300;

/// What publishing a file did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: usize,
    pub messages: usize,
    /// Rows of messages JetStream had already stored (the same file sent within 2 minutes).
    pub already_stored: usize,
    /// Rows whose event id repeats an earlier row of the file: tiendo keeps the first.
    pub repeated_ids: usize,
    /// Rejections that came back within the wait, by reason.
    pub rejected: BTreeMap<String, usize>,
}

impl Summary {
    /// Rows neither rejected nor duplicates (as far as the wait could tell).
    pub fn accepted(&self) -> usize {
        let rejected: usize = self.rejected.values().sum();
        self.rows.saturating_sub(rejected + self.already_stored + self.repeated_ids)
    }
}

/// The messages a file is sent as: its rows, `ROWS_PER_MESSAGE` at a time (a file that is
/// not a JSON object or array goes as it is, for ingest to refuse with a reason).
fn messages(payload: Vec<u8>) -> (Vec<(Vec<u8>, usize)>, usize) {
    let rows = match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Array(rows)) if !rows.is_empty() => rows,
        Ok(object @ Value::Object(_)) => vec![object],
        _ => return (vec![(payload, 1)], 0),
    };
    let mut seen = std::collections::HashSet::new();
    let repeated = rows
        .iter()
        .filter_map(|r| r.get("event_id").and_then(Value::as_str))
        .filter(|id| !seen.insert(id.to_string()))
        .count();
    let chunks = rows.chunks(ROWS_PER_MESSAGE).map(|c| (serde_json::to_vec(c).unwrap_or_default(), c.len())).collect();
    (chunks, repeated)
}

/// Publishes `payload` as `department`; prints the receipt, a progress bar for a large file,
/// the rejections that come back within `wait`, and a summary.
pub async fn run(
    bus: &Bus,
    department: &str,
    payload: Vec<u8>,
    wait: Duration,
    out: &mut impl std::io::Write,
) -> anyhow::Result<Summary> {
    let mut rejections = bus.client.subscribe(bus.names.rejected(department)).await?;
    bus.client.flush().await?;
    let (chunks, repeated_ids) = messages(payload);
    let mut summary = Summary { rows: chunks.iter().map(|(_, n)| n).sum(), repeated_ids, ..Summary::default() };
    let progress = if summary.rows > PROGRESS_ABOVE {
        let bar = ProgressBar::new(summary.rows as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} rows stored ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut acks = Vec::with_capacity(chunks.len());
    for (bytes, rows) in chunks {
        let mut headers = tiendo_bus::async_nats::HeaderMap::new();
        headers.insert(header::MSG_ID, content_id(&bytes).as_str());
        headers.insert(header::CONTENT_TYPE, tiendo_bus::ContentType::JSON);
        let ack = bus.js.publish_with_headers(bus.names.ingest(department), headers, bytes.into()).await?;
        acks.push((ack, rows));
    }
    let mut stored: Vec<(String, u64)> = Vec::new();
    for (ack, rows) in acks {
        let ack = ack.await.context("JetStream did not store the message (is tiendo up?)")?;
        if ack.duplicate {
            summary.already_stored += rows;
        }
        stored.push((ack.stream, ack.sequence));
        progress.inc(rows as u64);
        summary.messages += 1;
    }
    progress.finish_and_clear();
    if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
        let which = if first.1 == last.1 {
            format!("message {}", first.1)
        } else {
            format!("messages {}–{}", first.1, last.1)
        };
        let dup = if summary.already_stored > 0 { " (some already stored: ignored)" } else { "" };
        writeln!(
            out,
            "stored in {} as {which}: {} row(s) in {} message(s){dup}",
            first.0, summary.rows, summary.messages
        )?;
    }
    if !wait.is_zero() {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rejections.next()).await {
            if let Ok(r) = serde_json::from_slice::<Rejection>(&m.payload) {
                writeln!(out, "rejected: event `{}`: {}: {}", r.event_id, r.reason, r.detail)?;
                *summary.rejected.entry(r.reason).or_default() += 1;
            }
        }
        let rejected: usize = summary.rejected.values().sum();
        writeln!(out, "{rejected} rejection(s) for {department} in {wait:?}")?;
    }
    let by_reason: Vec<String> = summary.rejected.iter().map(|(r, n)| format!("{r} {n}")).collect();
    writeln!(
        out,
        "summary: {} row(s); accepted {}{}; rejected {}{}; duplicates {} ({} event id(s) repeated in the file, {} row(s) already stored)",
        summary.rows,
        summary.accepted(),
        if wait.is_zero() { " (rejections not waited for)" } else { "" },
        summary.rejected.values().sum::<usize>(),
        if by_reason.is_empty() { String::new() } else { format!(" ({})", by_reason.join(", ")) },
        summary.repeated_ids + summary.already_stored,
        summary.repeated_ids,
        summary.already_stored,
    )?;
    Ok(summary)
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
    fn a_large_file_is_split_and_repeated_event_ids_are_counted() {
        let rows: Vec<Value> = (0..1200).map(|i| serde_json::json!({"event_id": format!("e{}", i % 1100)})).collect();
        let (chunks, repeated) = messages(serde_json::to_vec(&rows).unwrap());
        assert_eq!(chunks.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [500, 500, 200]);
        assert_eq!(repeated, 100);
        let (raw, _) = messages(b"{not json".to_vec());
        assert_eq!(raw, vec![(b"{not json".to_vec(), 1)], "ingest refuses it, with a reason");
        let s = Summary {
            rows: 10,
            already_stored: 2,
            repeated_ids: 1,
            rejected: [("out_of_range".into(), 3)].into(),
            ..Summary::default()
        };
        assert_eq!(s.accepted(), 4);
    }

    #[test]
    fn the_same_file_gets_the_same_message_id() {
        assert_eq!(content_id(b"abc"), content_id(b"abc"));
        assert_ne!(content_id(b"abc"), content_id(b"abd"));
    }
}
