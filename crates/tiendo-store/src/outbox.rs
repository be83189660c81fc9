//! The outbox table: a service writes the messages a change must announce in the same
//! transaction as the change, and deletes them once the bus has stored them. Publishing is
//! the service's consumer kit's business; this module only keeps the rows.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::outbox;
use crate::keys::any_of;
use crate::ROWS_PER_STATEMENT;

pub use crate::entity::outbox::Model as Pending;

/// One message to keep until it is published.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub subject: &'a str,
    pub msg_id: &'a str,
    pub content_type: &'a str,
    pub payload: &'a [u8],
}

/// Adds `rows` to `service`'s outbox inside the caller's transaction; returns their ids, to
/// [`delete`] once they are published.
pub async fn enqueue<'a, C: ConnectionTrait>(db: &C, service: &str, rows: &[Row<'a>]) -> Result<Vec<i64>, DbErr> {
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let models = chunk.iter().map(|m| outbox::ActiveModel {
            service: Set(service.to_owned()),
            subject: Set(m.subject.to_owned()),
            msg_id: Set(m.msg_id.to_owned()),
            content_type: Set(m.content_type.to_owned()),
            payload: Set(m.payload.to_vec()),
            ..Default::default()
        });
        ids.extend(outbox::Entity::insert_many(models).exec_with_returning_keys(db).await?);
    }
    Ok(ids)
}

/// Up to `limit` of `service`'s messages not yet published, oldest first.
pub async fn pending<C: ConnectionTrait>(db: &C, service: &str, limit: u64) -> Result<Vec<Pending>, DbErr> {
    outbox::Entity::find()
        .filter(outbox::Column::Service.eq(service))
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Messages not yet published, of every service.
pub async fn count<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    outbox::Entity::find().count(db).await
}

/// Ids deleted per statement: one bound parameter each.
const IDS_PER_STATEMENT: usize = 4096;

/// Removes published messages.
pub async fn delete<C: ConnectionTrait>(db: &C, ids: &[i64]) -> Result<(), DbErr> {
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let ids = any_of(db.get_database_backend(), outbox::Column::Id, chunk.iter().copied());
        outbox::Entity::delete_many().filter(ids).exec(db).await?;
    }
    Ok(())
}
