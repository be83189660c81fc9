//! `tiendo deadletters`: what the services gave up on, and sending it back after a fix.

use anyhow::Context as _;
use bytes::Bytes;
use tiendo_bus::async_nats::jetstream::message::PublishMessage;
use tiendo_bus::names::{header, msg_id};
use tiendo_bus::{Bus, StreamKind};

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its position in the dead-letter stream: what `redrive` takes.
    pub seq: u64,
    /// The service that gave up (the last token of `<prefix>.deadletter.<service>`).
    pub service: String,
    pub reason: String,
    /// Where it was first published, and where a redrive sends it again.
    pub subject: String,
    pub content_type: Option<String>,
    pub payload: Bytes,
    pub at: String,
}

/// Every dead letter still in the stream, oldest first.
pub async fn list(bus: &Bus) -> anyhow::Result<Vec<DeadLetter>> {
    let mut stream =
        bus.js.get_stream(bus.names.stream(StreamKind::DeadLetter)).await.context("opening the dead-letter stream")?;
    let state = stream.info().await?.state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else { continue };
        let value = |name: &str| m.headers.get(name).map(|v| v.as_str().to_owned());
        out.push(DeadLetter {
            seq,
            service: m.subject.rsplit('.').next().unwrap_or_default().to_owned(),
            reason: value(header::DEAD_REASON).unwrap_or_default(),
            subject: value(header::DEAD_SUBJECT).unwrap_or_default(),
            content_type: value(header::CONTENT_TYPE),
            payload: m.payload.clone(),
            at: m.time.to_string(),
        });
    }
    Ok(out)
}

/// Publishes the chosen dead letters (all when `seqs` is empty) to their original subjects
/// and removes them from the dead-letter stream. Returns how many were sent.
pub async fn redrive(bus: &Bus, seqs: &[u64]) -> anyhow::Result<usize> {
    let stream = bus.js.get_stream(bus.names.stream(StreamKind::DeadLetter)).await?;
    let mut sent = 0;
    for dl in list(bus).await? {
        if !seqs.is_empty() && !seqs.contains(&dl.seq) {
            continue;
        }
        if dl.subject.is_empty() {
            tracing::warn!(seq = dl.seq, "dead letter without its original subject; left in place");
            continue;
        }
        let mut publish =
            PublishMessage::build().payload(dl.payload.clone()).message_id(msg_id::redrive(dl.seq, &dl.at));
        if let Some(ct) = &dl.content_type {
            publish = publish.header(header::CONTENT_TYPE, ct.as_str());
        }
        bus.js.send_publish(dl.subject.clone(), publish).await?.await.context("republishing a dead letter")?;
        stream.delete_message(dl.seq).await.context("removing a redriven dead letter")?;
        sent += 1;
    }
    Ok(sent)
}
