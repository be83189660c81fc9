//! The outbox: the messages a change must announce are written in the same transaction as
//! the change (one row per transaction); after the commit they are published from memory
//! ([`publish`]) and the row is deleted once JetStream has stored them. A crash or a failed
//! publish between commit and delete leaves the row for the relay ([`relay`],
//! [`relay_periodically`]), and stable message ids make a second publish harmless.

use tiendo_bus::{Bus, ContentType, Outgoing};
use tiendo_store::outbox::{self, Row};
use tiendo_store::sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tiendo_telemetry::prometheus::Gauge;
use tokio_util::sync::CancellationToken;

/// Most transactions' rows one relay pass reads at once (each holds up to a few thousand
/// messages).
pub const RELAY_BATCH: u64 = 16;

/// How often the outbox is relayed even when no message arrives.
pub const RELAY_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// What transactions added to an outbox: the messages, and their rows to delete once they
/// are published.
#[derive(Debug, Default)]
pub struct Enqueued {
    ids: Vec<i64>,
    messages: Vec<Outgoing>,
}

impl Enqueued {
    /// Nothing was added.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Adds what another transaction enqueued.
    pub fn extend(&mut self, other: Enqueued) {
        self.ids.extend(other.ids);
        self.messages.extend(other.messages);
    }
}

/// Adds `messages` to `service`'s outbox inside the caller's transaction.
pub async fn enqueue<C: ConnectionTrait>(db: &C, service: &str, messages: Vec<Outgoing>) -> Result<Enqueued, DbErr> {
    let rows: Vec<Row> = messages
        .iter()
        .map(|m| Row {
            subject: &m.subject,
            msg_id: &m.msg_id,
            content_type: m.content_type.as_str(),
            payload: &m.payload,
        })
        .collect();
    let ids = outbox::enqueue(db, service, &rows).await?.into_iter().collect();
    Ok(Enqueued { ids, messages })
}

/// Publishes what committed transactions enqueued, without reading it back, then deletes
/// their rows. On error the rows stay for [`relay`]; a message published twice is dropped
/// by JetStream (same message id) or recognised by its consumer.
pub async fn publish<C: ConnectionTrait>(db: &C, bus: &Bus, enqueued: Enqueued) -> anyhow::Result<usize> {
    let n = enqueued.messages.len();
    bus.publish_all(enqueued.messages).await?;
    outbox::delete(db, &enqueued.ids).await?;
    Ok(n)
}

/// Publishes `service`'s pending messages, oldest first, until none is left. Returns how many.
/// Each transaction's row is deleted as soon as its messages are stored, so a pass that
/// fails half way publishes again only what it had not finished.
pub async fn relay<C: ConnectionTrait>(db: &C, bus: &Bus, service: &str) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let batches = outbox::pending(db, service, RELAY_BATCH).await?;
        if batches.is_empty() {
            return Ok(total);
        }
        for batch in batches {
            total += batch.messages.len();
            bus.publish_all(batch.messages.into_iter().map(|m| {
                let content_type = ContentType::from_header(Some(&m.content_type));
                Outgoing::new(m.subject, m.msg_id, m.payload, content_type)
            }))
            .await?;
            outbox::delete(db, &[batch.id]).await?;
        }
    }
}

/// Whose turn it is at a process's outbox: batches (any number at once, each from its first
/// commit until its messages are published and their rows deleted: `read`), or a relay pass
/// (alone: `write`). Without it, a pass that runs between a batch's commit and its delete
/// publishes the batch's messages a second time: JetStream drops the copy, but subscribers on
/// core NATS (pages, tools) see the message twice.
pub type Turn = std::sync::Arc<tokio::sync::RwLock<()>>;

/// Relays `service`'s outbox every [`RELAY_EVERY`] until `shutdown`: picks up what a crash or
/// a failed publish left behind. Each pass waits for `turn`, and ends by setting `pending`
/// (`tiendo_outbox_pending_messages`): 0 after a pass that emptied the outbox, the messages
/// still waiting after one that failed (the bus away, a row it cannot read). Not a count
/// after every pass: with several instances of a service, another instance's batch may be
/// between its commit and its publish, and that is not stuck.
pub async fn relay_periodically(
    db: DatabaseConnection,
    bus: Bus,
    service: &'static str,
    turn: Turn,
    pending: Gauge,
    shutdown: CancellationToken,
) {
    loop {
        let pass = async {
            let _turn = turn.write().await;
            let relayed = relay(&db, &bus, service).await;
            let left = if relayed.is_ok() { Ok(0) } else { outbox::count(&db, Some(service)).await };
            match left {
                Ok(left) => pending.set(left as f64),
                Err(e) => tracing::debug!(service, error = %e, "counting the outbox failed"),
            }
            relayed
        };
        if let Err(e) = pass.await {
            tracing::warn!(service, error = %e, "outbox relay failed; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RELAY_EVERY) => {}
        }
    }
}
