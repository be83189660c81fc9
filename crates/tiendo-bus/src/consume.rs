//! The consumer loop: pull a batch, let the service decide about each message, apply the
//! decisions. The service commits its effects before it answers, so an ack always follows a
//! commit, and a crash before the ack means a redelivery the service recognises.
//!
//! `pipeline.max_deliver` counts failed attempts ([`Decision::Retry`]), which the loop counts
//! itself: JetStream's delivery count also counts the deliveries of a message held through an
//! outage ([`Decision::Hold`]), and a long outage must not leave a healthy message one
//! ordinary failure away from the dead letters.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::Message;
use bytes::Bytes;
use futures::{FutureExt as _, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::connect::Bus;
use crate::names::{header, msg_id};
use crate::publish::ContentType;

/// One message handed to a service.
pub struct Delivery {
    pub message: Message,
    /// Position in its stream: stable across redeliveries, so derived ids are too.
    pub stream_seq: u64,
    /// 1 on first delivery.
    pub delivered: i64,
}

impl Delivery {
    /// A delivered message, with its position and delivery count from its metadata.
    pub fn new(message: Message) -> Self {
        let (stream_seq, delivered) = message.info().map(|i| (i.stream_sequence, i.delivered)).unwrap_or((0, 1));
        Self { message, stream_seq, delivered }
    }

    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    /// A header's value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str())
    }

    /// How the payload is encoded, from its `Content-Type` header.
    pub fn content_type(&self) -> ContentType {
        ContentType::from_header(self.header(header::CONTENT_TYPE))
    }
}

/// What the service decided about one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Done: its effects are committed (or it needed none).
    Ack,
    /// Handling it failed: deliver again after the delay, doubled for each earlier failed
    /// attempt (see [`backoff`]); once it has failed `pipeline.max_deliver` times, move it to
    /// the dead-letter subject with `reason`.
    Retry { delay: Duration, reason: String },
    /// Not this message's fault (the database or the bus is down): deliver again after the
    /// delay, however many times it takes. Never dead-letters, and never counts as an attempt.
    Hold(Duration),
}

/// A service's batch handler.
pub trait Handler: Send + Sync {
    /// Decides about every message of the batch, in order; returns one decision per message.
    fn handle(&self, batch: &[Delivery]) -> impl Future<Output = Vec<Decision>> + Send;

    /// Called when a message is moved to the dead-letter subject, for the service to count.
    fn dead_lettered(&self, _delivery: &Delivery, _reason: &str) {}
}

/// Longest delay between two deliveries of a failing message.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The delay after failed attempt `failures`: `base` doubled for each earlier failed attempt.
pub fn backoff(base: Duration, failures: i64) -> Duration {
    let doublings = failures.clamp(1, 16) as u32 - 1;
    base.saturating_mul(1 << doublings).min(MAX_RETRY_DELAY)
}

/// A message's failed attempts are forgotten after this long without another: it was
/// acknowledged by another instance, or its stream was removed.
const FAILURES_KEPT_FOR: Duration = Duration::from_secs(30 * 60);

/// The failed attempts of the messages this loop has seen fail, by stream sequence. Kept in
/// memory: after a restart, or on another instance, a poison message takes up to
/// `max_deliver` more attempts before it is dead-lettered, never fewer.
#[derive(Default)]
pub struct Attempts {
    failed: HashMap<u64, (i64, Instant)>,
    settled: u64,
}

impl Attempts {
    /// Records one more failed attempt of `seq`; how many it has now.
    pub fn failed(&mut self, seq: u64) -> i64 {
        let entry = self.failed.entry(seq).or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
        entry.0
    }

    /// `seq` is done with (acknowledged or dead-lettered).
    pub fn forget(&mut self, seq: u64) {
        self.failed.remove(&seq);
        self.settled += 1;
        if self.settled.is_multiple_of(4096) {
            self.failed.retain(|_, (_, last)| last.elapsed() < FAILURES_KEPT_FOR);
        }
    }

    /// How many failed attempts `seq` has had.
    pub fn of(&self, seq: u64) -> i64 {
        self.failed.get(&seq).map_or(0, |(n, _)| *n)
    }
}

/// Most payload bytes buffered for one consumer: with arrays of 1,000 observations, 512
/// messages would be half a million observations decoded at once (a 692 MiB peak for
/// `tiendo up`); 4 MiB is about 25,000 JSON observations, still plenty to amortise a
/// transaction over.
pub const BATCH_BYTES: usize = 4 << 20;

/// How much one consumer asks the server for, and takes in hand, at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    /// Messages in a pull request, and in a batch handed to the handler.
    messages: usize,
    /// Bytes in a pull request, and taken from the connection at a time: at least the
    /// server's largest payload and [`PULL_MARGIN`], since a message larger than a pull
    /// request's byte limit would never be delivered.
    pull_bytes: usize,
    /// Payload bytes in a batch handed to the handler (the message that crosses it is the
    /// last taken, so a large message still comes alone). What the handler holds decoded is
    /// what costs memory; what was taken beyond it waits, undecoded, for the next batch.
    batch_bytes: usize,
}

/// Room in a pull request beyond the server's largest payload, for what the server counts
/// besides it (the subject, the headers): a pull request must fit the largest message.
const PULL_MARGIN: usize = 64 << 10;

/// What one consumer takes at a time: its share of `batch_size` and of [`BATCH_BYTES`] when
/// `sharing` consumers run in one process (their batches are in memory at once), at least one
/// message. Only the pull request is raised to the server's largest payload: with eight
/// partitioned consumers, raising their batches too held four times a shared consumer's
/// observations decoded at once (docs/performance.md, issue 15, change 12).
fn batch_limits(batch_size: usize, sharing: usize, max_payload: usize) -> Limits {
    let sharing = sharing.max(1);
    let batch_bytes = (BATCH_BYTES / sharing).max(1);
    Limits {
        messages: (batch_size / sharing).max(1),
        pull_bytes: batch_bytes.max(max_payload + PULL_MARGIN),
        batch_bytes,
    }
}

/// Runs `handler` over `consumer` until `shutdown` is cancelled. What was taken from the
/// connection is finished first, so a graceful stop leaves nothing half done. When the
/// connection drops or the server restarts, the message stream is opened again; nothing is
/// lost meanwhile, since whatever was delivered and not acknowledged is delivered again.
///
/// `sharing` consumers run together in this process (a partitioned service's): each hands
/// its handler that share of `batch_size` messages and of [`BATCH_BYTES`] at a time, so the
/// process holds about what one consumer would decoded (and, undecoded, up to one pull
/// request's bytes per consumer: see `Limits`).
#[allow(clippy::too_many_arguments)]
pub async fn run<H: Handler>(
    bus: &Bus,
    mut consumer: PullConsumer,
    service: &str,
    batch_size: usize,
    sharing: usize,
    max_deliver: i64,
    handler: &H,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let limits = batch_limits(batch_size, sharing, bus.client.server_info().max_payload);
    let ack_wait = consumer.info().await.map(|i| i.config.ack_wait).unwrap_or(Duration::from_secs(30));
    let hand = Hand { bus, service, max_deliver, batch_bytes: limits.batch_bytes, ack_wait };
    let mut pause = Duration::from_millis(100);
    let mut attempts = Attempts::default();
    loop {
        let opened = consumer
            .stream()
            .max_messages_per_batch(limits.messages)
            .max_bytes_per_batch(limits.pull_bytes)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        match opened {
            Ok(messages) => {
                pause = Duration::from_millis(100);
                let mut messages = messages.fuse();
                loop {
                    let first = tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        first = messages.next() => first,
                    };
                    let Some(first) = first else { break };
                    let chunk = top_up(&mut messages, first, limits.messages, limits.pull_bytes, weight).await;
                    let mut batch = Vec::with_capacity(chunk.len());
                    let mut broken = false;
                    for item in chunk {
                        match item {
                            Ok(m) => batch.push(Delivery::new(m)),
                            Err(e) => {
                                tracing::warn!(service, error = %e, "consumer stream error; reopening it");
                                broken = true;
                            }
                        }
                    }
                    hand.over(&batch, handler, &mut attempts).await;
                    if broken {
                        break;
                    }
                }
            }
            Err(e) => tracing::warn!(service, error = %e, "cannot open the consumer's message stream; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// A batch: `first`, then what the connection has already received, up to `limit` items
/// and `max_bytes` (by `size`; the item that crosses it is the last taken). A message stream
/// shows only what the connection's reader has parsed, one socket read (at most 64 KiB) at a
/// time; taking only what was ready at once gave aggregation 40–80 messages a batch while
/// hundreds more were delivered and waiting (docs/performance.md, issue 15, change 8). So
/// once the ready messages are taken the task yields, letting the reader run, and takes
/// again, until a yield brings nothing new. No timer: an idle stream costs one yield.
async fn top_up<S: Stream + Unpin>(
    stream: &mut S,
    first: S::Item,
    limit: usize,
    max_bytes: usize,
    size: impl Fn(&S::Item) -> usize,
) -> Vec<S::Item> {
    let mut bytes = size(&first);
    let mut chunk = vec![first];
    let full = |chunk: &Vec<S::Item>, bytes: usize| chunk.len() >= limit || bytes >= max_bytes;
    let mut yielded = false;
    loop {
        let before = chunk.len();
        while !full(&chunk, bytes) {
            match stream.next().now_or_never() {
                Some(Some(item)) => {
                    bytes += size(&item);
                    chunk.push(item);
                }
                // Ended: hand over what is here; the caller's next poll sees the end.
                Some(None) => return chunk,
                None => break,
            }
        }
        if full(&chunk, bytes) || (yielded && chunk.len() == before) {
            return chunk;
        }
        yielded = true;
        tokio::task::yield_now().await;
    }
}

/// How a consumer hands what it took from the connection to its handler.
pub struct Hand<'a> {
    pub bus: &'a Bus,
    pub service: &'a str,
    pub max_deliver: i64,
    /// Payload bytes in a batch handed to the handler (see `Limits`).
    pub batch_bytes: usize,
    /// The consumer's acknowledgement wait: progress is sent every half of it.
    pub ack_wait: Duration,
}

impl Hand<'_> {
    /// Hands `taken` (delivered messages, in order) to `handler` `batch_bytes` at a time and
    /// settles each batch's messages by its decisions. While a batch is handled, the server
    /// hears that every message of `taken` not yet settled is in hand, so none waiting its
    /// turn is delivered again.
    pub async fn over<H: Handler>(&self, taken: &[Delivery], handler: &H, attempts: &mut Attempts) {
        let mut start = 0;
        while start < taken.len() {
            let end = start + first_batch(&taken[start..], self.batch_bytes, |d| d.payload().len());
            let decisions = with_progress(&taken[start..], self.ack_wait, handler.handle(&taken[start..end])).await;
            debug_assert_eq!(decisions.len(), end - start);
            for (delivery, decision) in taken[start..end].iter().zip(decisions) {
                settle(self.bus, self.service, self.max_deliver, delivery, decision, handler, attempts).await;
            }
            start = end;
        }
    }
}

/// How many of `items` make the first batch of at most `max_bytes` (by `size`; the item that
/// crosses it is the last taken, so there is always at least one).
fn first_batch<T>(items: &[T], max_bytes: usize, size: impl Fn(&T) -> usize) -> usize {
    let mut bytes = 0;
    for (i, item) in items.iter().enumerate() {
        bytes += size(item);
        if bytes >= max_bytes {
            return i + 1;
        }
    }
    items.len()
}

/// What a delivered message weighs against a batch's byte limit.
fn weight(item: &Result<Message, impl std::error::Error>) -> usize {
    item.as_ref().map_or(0, |m| m.payload.len())
}

/// Runs `work` while telling the server, every half `ack_wait`, that the batch is still in
/// hand: a batch that takes longer than `ack_wait` (a large message, a slow database) is not
/// delivered a second time while it is being handled.
async fn with_progress<T>(batch: &[Delivery], ack_wait: Duration, work: impl Future<Output = T>) -> T {
    let beat = async {
        let period = (ack_wait / 2).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            for d in batch {
                let _ = d.message.ack_with(AckKind::Progress).await;
            }
        }
    };
    tokio::select! {
        out = work => out,
        never = beat => never,
    }
}

async fn settle<H: Handler>(
    bus: &Bus,
    service: &str,
    max_deliver: i64,
    d: &Delivery,
    decision: Decision,
    handler: &H,
    attempts: &mut Attempts,
) {
    let result = match decision {
        Decision::Ack => {
            attempts.forget(d.stream_seq);
            d.message.ack().await
        }
        Decision::Retry { delay, reason } => {
            let failures = attempts.failed(d.stream_seq);
            if max_deliver > 0 && failures >= max_deliver {
                let reason = format!("still failing after {failures} attempts: {reason}");
                tracing::error!(service, seq = d.stream_seq, %reason, "moving message to the dead-letter subject");
                match dead_letter(bus, service, d, &reason).await {
                    Ok(()) => {
                        attempts.forget(d.stream_seq);
                        handler.dead_lettered(d, &reason);
                        d.message.ack_with(AckKind::Term).await
                    }
                    // Not stored anywhere yet: let it come back rather than lose it.
                    Err(e) => {
                        tracing::error!(service, error = %e, "dead-letter publish failed; will retry");
                        d.message.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await
                    }
                }
            } else {
                tracing::warn!(service, seq = d.stream_seq, failures, delivered = d.delivered, %reason, "will retry");
                d.message.ack_with(AckKind::Nak(Some(backoff(delay, failures)))).await
            }
        }
        Decision::Hold(delay) => d.message.ack_with(AckKind::Nak(Some(delay))).await,
    };
    if let Err(e) = result {
        tracing::warn!(service, seq = d.stream_seq, error = %e, "acknowledgement not sent; the message will be redelivered");
    }
}

async fn dead_letter(bus: &Bus, service: &str, d: &Delivery, reason: &str) -> anyhow::Result<()> {
    use async_nats::jetstream::message::PublishMessage;
    let publish = PublishMessage::build()
        .payload(d.payload().clone())
        .message_id(msg_id::dead_letter(service, d.stream_seq))
        .header(header::DEAD_REASON, reason)
        .header(header::DEAD_SUBJECT, d.subject());
    let publish = match d.header(header::CONTENT_TYPE) {
        Some(ct) => publish.header(header::CONTENT_TYPE, ct),
        None => publish,
    };
    bus.js.send_publish(bus.names.dead_letter(service), publish).await?.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_attempts_count_and_settled_messages_are_forgotten() {
        let mut a = Attempts::default();
        assert_eq!((a.failed(7), a.failed(7), a.failed(8)), (1, 2, 1));
        assert_eq!(a.of(7), 2);
        a.forget(7);
        assert_eq!(a.of(7), 0);
        assert_eq!(a.failed(7), 1, "a message failing again after it was settled starts over");
        assert_eq!(a.of(8), 1);
    }

    /// A stream like a connection's messages: `total` items, of which `burst` are ready at a
    /// time; the next burst is ready once the task has let others run (it wakes itself).
    fn bursts(total: usize, burst: usize) -> impl Stream<Item = usize> + Unpin {
        let (mut next, mut ready) = (0, burst);
        futures::stream::poll_fn(move |cx| {
            if next == total {
                return std::task::Poll::Ready(None);
            }
            if ready == 0 {
                ready = burst;
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            ready -= 1;
            next += 1;
            std::task::Poll::Ready(Some(next - 1))
        })
    }

    #[tokio::test]
    async fn a_batch_takes_what_the_connection_delivers_after_the_first_ready_messages() {
        let mut s = bursts(100, 8);
        let first = s.next().await.unwrap();
        let batch = top_up(&mut s, first, 30, usize::MAX, |_| 1).await;
        assert_eq!(batch, (0..30).collect::<Vec<_>>(), "more than the first burst of 8, up to the limit");
        let first = s.next().await.unwrap();
        assert_eq!(
            top_up(&mut s, first, 1000, usize::MAX, |_| 1).await,
            (30..100).collect::<Vec<_>>(),
            "to the end of the stream"
        );
        assert_eq!(s.next().await, None);
    }

    #[tokio::test]
    async fn a_batch_stops_at_its_byte_limit() {
        let mut s = bursts(100, 8);
        let first = s.next().await.unwrap();
        // Item i weighs i bytes: 0 + 1 + … + 10 = 55 crosses 50 at the 11th item.
        assert_eq!(top_up(&mut s, first, 512, 50, |i| *i).await, (0..11).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_batch_stops_when_nothing_more_arrives() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        let mut s = tokio_stream_of(rx);
        let first = s.next().await.unwrap();
        // The sender stays open: nothing more is coming, and the batch must not wait for it.
        assert_eq!(top_up(&mut s, first, 512, usize::MAX, |_| 1).await, vec![0, 1, 2, 3, 4]);
        drop(tx);
    }

    fn tokio_stream_of<T>(mut rx: tokio::sync::mpsc::UnboundedReceiver<T>) -> impl Stream<Item = T> + Unpin {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[test]
    fn a_batch_ends_with_the_item_that_crosses_its_bytes() {
        let len = |s: &&str| s.len();
        assert_eq!(first_batch(&["ab", "cd", "ef"], 4, len), 2, "exactly full");
        assert_eq!(first_batch(&["ab", "cde", "f"], 4, len), 2, "the crossing one included");
        assert_eq!(first_batch(&["abcdefgh", "i"], 4, len), 1, "a large item alone");
        assert_eq!(first_batch(&["a", "b"], 4, len), 2, "all, when they fit");
        assert_eq!(first_batch::<&str>(&[], 4, len), 0);
    }

    #[test]
    fn consumers_run_together_share_one_consumers_batch() {
        let mib = 1 << 20;
        let limits = |messages, pull_bytes, batch_bytes| Limits { messages, pull_bytes, batch_bytes };
        assert_eq!(batch_limits(512, 1, mib), limits(512, BATCH_BYTES, BATCH_BYTES));
        assert_eq!(batch_limits(512, 2, mib), limits(256, BATCH_BYTES / 2, BATCH_BYTES / 2));
        let largest = mib + PULL_MARGIN;
        assert_eq!(
            batch_limits(512, 8, mib),
            limits(64, largest, BATCH_BYTES / 8),
            "a pull request never below the largest message; a batch still its share"
        );
        assert_eq!(batch_limits(3, 8, mib), limits(1, largest, BATCH_BYTES / 8), "at least one message");
        assert_eq!(batch_limits(512, 0, 8 * mib), limits(512, 8 * mib + PULL_MARGIN, BATCH_BYTES));
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_minute() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1), Duration::from_secs(1));
        assert_eq!(backoff(base, 2), Duration::from_secs(2));
        assert_eq!(backoff(base, 4), Duration::from_secs(8));
        assert_eq!(backoff(base, 10), MAX_RETRY_DELAY);
        assert_eq!(backoff(base, i64::MAX), MAX_RETRY_DELAY);
    }
}
