//! Live updates: the web service's subscription to the bus, and the server-sent events it
//! feeds to open pages.
//!
//! The feed subscribes (core NATS, nothing durable: the store is the record) to alerts,
//! alerting's `judged` notices, rejections and overdue notices, and to aggregates while a page
//! listens. Each message becomes a [`LiveEvent`] naming what it touched (`i:<indicator>`,
//! `u:<org unit>`, `d:<department>`, `alerts`); a page lists the tags it shows
//! (`data-watch`), and its script fetches the page again when an event touches one. So a page
//! always shows what the store says, and changes within a fraction of a second of the commit
//! that changed it.
//!
//! Aggregates are the busiest subject by far, about one message per observation applied, and
//! an event with no page to hear it is dropped; so with no page listening the feed does not
//! subscribe to them, and the bus does not deliver them to this service (docs/performance.md,
//! issue 15, change 24). Rejections are read whether a page listens or not: the department
//! pages list them.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};
use serde::Serialize;
use tiendo_bus::async_nats::jetstream::consumer::{pull, DeliverPolicy};
use tiendo_bus::async_nats::Subscriber;
use tiendo_bus::{Bus, StreamKind};
use tiendo_proto::v1::{Aggregate, Alert, Judged, Overdue, Rejection};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::Shared;

/// Events kept for a slow page before it is told to refresh everything.
pub const BACKLOG: usize = 256;
/// The most rejections read back from the stream at start.
const HISTORY: u64 = 20_000;
/// How often the feed checks whether a page listens, besides being told when one starts or
/// stops (a page that stops may be counted a moment after it says so).
const PAGES_RECHECK: Duration = Duration::from_secs(1);

/// What one bus message touched, as sent to pages.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LiveEvent {
    /// `figure`, `alert`, `judged`, `rejection`, `overdue`; or `refresh` (a page fell behind:
    /// everything may have changed).
    pub kind: &'static str,
    pub tags: BTreeSet<String>,
}

impl LiveEvent {
    fn new(kind: &'static str) -> Self {
        LiveEvent { kind, tags: BTreeSet::new() }
    }

    fn figure(mut self, indicator: &str, org_unit: &str) -> Self {
        self.tags.insert(format!("i:{indicator}"));
        self.tags.insert(format!("u:{org_unit}"));
        self
    }

    fn tag(mut self, tag: String) -> Self {
        self.tags.insert(tag);
        self
    }
}

/// Turns one bus message into the event pages hear, keeping rejections on the way; `None`
/// for a message that names nothing (it cannot be decoded).
pub(crate) fn event_of(shared: &Shared, kind: Source, payload: &[u8]) -> Option<LiveEvent> {
    match kind {
        Source::Aggregates => {
            let a: Aggregate = serde_json::from_slice(payload).ok()?;
            Some(LiveEvent::new("figure").figure(&a.indicator, &a.org_unit))
        }
        Source::Alerts => {
            let a: Alert = serde_json::from_slice(payload).ok()?;
            Some(LiveEvent::new("alert").figure(&a.indicator, &a.org_unit).tag("alerts".into()))
        }
        Source::Judged => {
            let j: Judged = serde_json::from_slice(payload).ok()?;
            Some(j.figures.iter().fold(LiveEvent::new("judged"), |e, f| e.figure(&f.indicator, &f.org_unit)))
        }
        Source::Rejected => {
            let r: Rejection = serde_json::from_slice(payload).ok()?;
            shared.rejections.record(&shared.catalog, &r);
            Some(LiveEvent::new("rejection").tag(format!("d:{}", r.department)))
        }
        Source::Overdue => {
            let o: Overdue = serde_json::from_slice(payload).ok()?;
            Some(LiveEvent::new("overdue").tag(format!("d:{}", o.department)).tag(format!("i:{}", o.indicator)))
        }
    }
}

/// What the feed listens to: four streams' subjects, and alerting's notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Aggregates,
    Alerts,
    Judged,
    Rejected,
    Overdue,
}

impl Source {
    /// The `source` label of `tiendo_web_feed_messages_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::Aggregates => "aggregates",
            Source::Alerts => "alerts",
            Source::Judged => "judged",
            Source::Rejected => "rejected",
            Source::Overdue => "overdue",
        }
    }
}

/// Listens to the bus until `shutdown`, feeding open pages; reads the rejections stream's
/// recent end first. Returns when the subscriptions end or `shutdown` is cancelled.
pub async fn feed(shared: Arc<Shared>, bus: Bus, shutdown: CancellationToken) -> anyhow::Result<()> {
    let names = &bus.names;
    let mut subscriptions = Vec::new();
    for (kind, subject) in [
        (Source::Alerts, names.stream_subjects(StreamKind::Alerts)),
        (Source::Judged, names.judged()),
        (Source::Rejected, names.stream_subjects(StreamKind::Rejected)),
        (Source::Overdue, names.stream_subjects(StreamKind::Overdue)),
    ] {
        let sub = bus.client.subscribe(subject.clone()).await.with_context(|| format!("subscribing to {subject}"))?;
        subscriptions.push(sub.map(move |m| (kind, m)).boxed());
    }
    // Subscribed first, read back second: a rejection published in between arrives both
    // ways, and is kept once.
    if let Err(e) = read_back_rejections(&shared, &bus).await {
        tracing::warn!(error = %e, "reading back recent rejections; the department pages start empty");
    }
    let mut messages = futures::stream::select_all(subscriptions);
    let mut aggregates: Option<Subscriber> = None;
    let mut recheck = tokio::time::interval(PAGES_RECHECK);
    loop {
        let listening = shared.live.receiver_count() > 0;
        if listening && aggregates.is_none() {
            let subject = names.stream_subjects(StreamKind::Aggregates);
            let sub =
                bus.client.subscribe(subject.clone()).await.with_context(|| format!("subscribing to {subject}"))?;
            // An aggregate published before the server has this is not heard; alerting's
            // `judged` notice of the same figure follows, and refreshes the page.
            bus.client.flush().await.with_context(|| format!("subscribing to {subject}"))?;
            aggregates = Some(sub);
        } else if !listening {
            // Dropping the subscriber unsubscribes.
            aggregates = None;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = shared.pages.notified() => {}
            _ = recheck.tick() => {}
            next = next_of(&mut aggregates) => {
                let Some(m) = next else { anyhow::bail!("the bus subscription to aggregates ended") };
                pass_on(&shared, Source::Aggregates, &m.payload);
            }
            next = messages.next() => {
                let Some((kind, m)) = next else { anyhow::bail!("the bus subscriptions ended") };
                pass_on(&shared, kind, &m.payload);
            }
        }
    }
}

/// The next message of `subscription`; never, without one.
async fn next_of(subscription: &mut Option<Subscriber>) -> Option<tiendo_bus::async_nats::Message> {
    match subscription {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

/// Counts one message of `kind` and sends its event to the pages listening, if any.
fn pass_on(shared: &Shared, kind: Source, payload: &[u8]) {
    shared.metrics.feed_messages.with_label_values(&[kind.label()]).inc();
    if let Some(event) = event_of(shared, kind, payload) {
        // No page listening is fine.
        let _ = shared.live.send(event);
    }
}

/// Reads the latest rejections from their stream into the department lists.
async fn read_back_rejections(shared: &Shared, bus: &Bus) -> anyhow::Result<()> {
    let Ok(mut stream) = bus.js.get_stream(bus.names.stream(StreamKind::Rejected)).await else {
        return Ok(()); // No stream yet: nothing was ever rejected.
    };
    let state = stream.info().await?.state.clone();
    if state.messages == 0 {
        return Ok(());
    }
    let start = state.first_sequence.max(state.last_sequence.saturating_sub(HISTORY - 1));
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut seen = start.saturating_sub(1);
    while seen < state.last_sequence {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await else { break };
        let m = m.map_err(|e| anyhow::anyhow!("reading the rejections stream: {e}"))?;
        seen = m.info().map(|i| i.stream_sequence).unwrap_or(seen + 1);
        if let Ok(r) = serde_json::from_slice::<Rejection>(&m.payload) {
            shared.rejections.record(&shared.catalog, &r);
        }
    }
    Ok(())
}

/// `GET /events`: server-sent events, one per bus message that touched something, until the
/// page closes or the service stops.
pub async fn events(State(shared): State<Arc<Shared>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = shared.live.subscribe();
    shared.metrics.live_clients.inc();
    // The feed follows the aggregates from now on.
    shared.pages.notify_one();
    let closing = shared.closing.clone();
    let guard = ClientGuard(shared.clone());
    let stream = futures::stream::unfold((receiver, guard), |(mut rx, guard)| async move {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(_)) => LiveEvent::new("refresh"),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        let data = serde_json::to_string(&event).unwrap_or_default();
        Some((Ok(Event::default().data(data)), (rx, guard)))
    })
    .take_until(closing.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Counts an open event stream while it lives, and tells the feed when it ends.
struct ClientGuard(Arc<Shared>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.metrics.live_clients.dec();
        // The stream's receiver may be dropped after this: the feed's recheck then sees it.
        self.0.pages.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_what_it_touched() {
        let e = LiveEvent::new("figure").figure("smartphone_adults", "883").tag("alerts".into());
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "figure", "tags": ["alerts", "i:smartphone_adults", "u:883"]}));
    }
}
