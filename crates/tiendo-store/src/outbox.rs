//! The outbox: a service writes the messages a change must announce in the same transaction
//! as the change; the relay publishes them after the commit and deletes them once JetStream
//! has stored them. A crash between commit and publish leaves them in the table for the next
//! relay, and their stable message ids make a second publish harmless.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tiendo_bus::{Bus, ContentType, Outgoing};

use crate::entity::outbox;

/// Rows inserted per statement.
const ROWS_PER_STATEMENT: usize = 256;

/// Most messages one relay pass publishes.
pub const RELAY_BATCH: u64 = 1024;

/// Adds messages to `service`'s outbox, inside the caller's transaction.
pub async fn enqueue<C: ConnectionTrait>(db: &C, service: &str, messages: Vec<Outgoing>) -> Result<(), sea_orm::DbErr> {
    if messages.is_empty() {
        return Ok(());
    }
    // A few hundred rows per statement: SQLite limits the bound parameters of one statement.
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(|m| outbox::ActiveModel {
            service: Set(service.to_owned()),
            subject: Set(m.subject.clone()),
            msg_id: Set(m.msg_id.clone()),
            content_type: Set(m.content_type.as_str().to_owned()),
            payload: Set(m.payload.to_vec()),
            ..Default::default()
        });
        outbox::Entity::insert_many(rows).exec_without_returning(db).await?;
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
        outbox::Entity::delete_many().filter(outbox::Column::Id.is_in(ids)).exec(db).await?;
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
