//! The outbox: a service writes the messages a change must announce in the same transaction
//! as the change; after the commit it publishes them from memory ([`publish_enqueued`]) and
//! deletes them once JetStream has stored them. A crash or a failed publish between commit
//! and delete leaves them in the table for the relay ([`relay`], [`relay_periodically`]),
//! and their stable message ids make a second publish harmless.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tiendo_bus::{Bus, ContentType, Outgoing};

use crate::entity::outbox;
use crate::ROWS_PER_STATEMENT;

/// Most messages one relay pass publishes.
pub const RELAY_BATCH: u64 = 1024;

/// What one transaction added to an outbox: the messages, and their rows to delete once
/// they are published.
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

/// Adds messages to `service`'s outbox, inside the caller's transaction. Once it commits,
/// [`publish_enqueued`] publishes them from memory; if that never happens (a crash, a failed
/// publish), [`relay`] finds them in the table.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    service: &str,
    messages: Vec<Outgoing>,
) -> Result<Enqueued, sea_orm::DbErr> {
    let mut ids = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(|m| outbox::ActiveModel {
            service: Set(service.to_owned()),
            subject: Set(m.subject.clone()),
            msg_id: Set(m.msg_id.clone()),
            content_type: Set(m.content_type.as_str().to_owned()),
            payload: Set(m.payload.to_vec()),
            ..Default::default()
        });
        ids.extend(outbox::Entity::insert_many(rows).exec_with_returning_keys(db).await?);
    }
    Ok(Enqueued { ids, messages })
}

/// Publishes what committed transactions enqueued, without reading it back, then deletes
/// their rows. On error the rows stay for [`relay`]; a message published twice is dropped
/// by JetStream (same message id) or recognised by its consumer.
pub async fn publish_enqueued<C: ConnectionTrait>(db: &C, bus: &Bus, enqueued: Enqueued) -> anyhow::Result<usize> {
    let n = enqueued.messages.len();
    bus.publish_all(enqueued.messages).await?;
    delete(db, enqueued.ids).await?;
    Ok(n)
}

/// Ids deleted per statement: one bound parameter each.
const IDS_PER_STATEMENT: usize = 4096;

async fn delete<C: ConnectionTrait>(db: &C, ids: Vec<i64>) -> Result<(), sea_orm::DbErr> {
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        outbox::Entity::delete_many().filter(outbox::Column::Id.is_in(chunk.iter().copied())).exec(db).await?;
    }
    Ok(())
}

/// Publishes `service`'s pending messages, oldest first, until none is left. Returns how many.
pub async fn relay<C: ConnectionTrait>(db: &C, bus: &Bus, service: &str) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Service.eq(service))
            .order_by_asc(outbox::Column::Id)
            .limit(RELAY_BATCH)
            .all(db)
            .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        bus.publish_all(rows.into_iter().map(|r| Outgoing {
            content_type: ContentType::from_header(Some(&r.content_type)),
            subject: r.subject,
            msg_id: r.msg_id,
            payload: r.payload.into(),
        }))
        .await?;
        total += ids.len();
        delete(db, ids).await?;
    }
}

/// How often the outbox is relayed even when no message arrives.
pub const RELAY_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Relays `service`'s outbox every [`RELAY_EVERY`] until `shutdown`: picks up what a crash or
/// a failed publish left behind.
pub async fn relay_periodically(
    db: sea_orm::DatabaseConnection,
    bus: Bus,
    service: &'static str,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Err(e) = relay(&db, &bus, service).await {
            tracing::warn!(service, error = %e, "outbox relay failed; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RELAY_EVERY) => {}
        }
    }
}
