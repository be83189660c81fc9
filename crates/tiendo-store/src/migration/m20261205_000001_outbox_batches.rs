//! The outbox keeps one row per transaction (`outbox_batches`, its messages framed in one
//! body) instead of one row per message (`outbox`). Messages still waiting in the old table
//! move to the new one, in order, and back on the way down. Bodies are framed by
//! [`crate::outbox::encode`]: a later framing must still read this one, since rows it wrote
//! may be waiting in the table.

use std::collections::BTreeMap;

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Schema};
use sea_orm_migration::prelude::*;

use super::frozen::outbox as old;
use crate::entity::outbox;
use crate::outbox::{decode, Row};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000001_outbox_batches"
    }
}

/// Old rows read, and new rows written, per step of the move.
const MOVED_PER_STEP: u64 = 1_000;

/// Creates an outbox table and its index by (service, id), the order its relay reads.
async fn create<E: EntityTrait>(
    manager: &SchemaManager<'_>,
    entity: E,
    index: &str,
    service: E::Column,
    id: E::Column,
) -> Result<(), DbErr> {
    let schema = Schema::new(manager.get_database_backend());
    manager.create_table(schema.create_table_from_entity(entity).if_not_exists().to_owned()).await?;
    let index = Index::create().name(index).table(entity).col(service).col(id).if_not_exists().to_owned();
    manager.create_index(index).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, outbox::Entity, "outbox_batches_by_service", outbox::Column::Service, outbox::Column::Id)
            .await?;
        // Each step's messages become one row per service; steps go in id order, so each
        // service's messages stay in the order they were written.
        let db = manager.get_connection();
        let mut after = 0;
        loop {
            let step = old::Entity::find()
                .filter(old::Column::Id.gt(after))
                .order_by_asc(old::Column::Id)
                .limit(MOVED_PER_STEP)
                .all(db)
                .await?;
            let Some(last) = step.last() else { break };
            after = last.id;
            let mut by_service: BTreeMap<&str, Vec<Row>> = BTreeMap::new();
            for m in &step {
                by_service.entry(&m.service).or_default().push(Row {
                    subject: &m.subject,
                    msg_id: &m.msg_id,
                    content_type: &m.content_type,
                    payload: &m.payload,
                });
            }
            for (service, rows) in by_service {
                crate::outbox::enqueue(db, service, &rows).await?;
            }
        }
        manager.drop_table(Table::drop().table(old::Entity).if_exists().to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, old::Entity, "outbox_by_service", old::Column::Service, old::Column::Id).await?;
        let db = manager.get_connection();
        let mut after = 0;
        loop {
            let Some(batch) = outbox::Entity::find()
                .filter(outbox::Column::Id.gt(after))
                .order_by_asc(outbox::Column::Id)
                .one(db)
                .await?
            else {
                break;
            };
            after = batch.id;
            let messages = decode(&batch.body)
                .map_err(|e| DbErr::Migration(format!("outbox row {} cannot be read: {e}", batch.id)))?;
            for step in messages.chunks(MOVED_PER_STEP as usize) {
                let rows = step.iter().map(|m| old::ActiveModel {
                    service: Set(batch.service.clone()),
                    subject: Set(m.subject.clone()),
                    msg_id: Set(m.msg_id.clone()),
                    content_type: Set(m.content_type.clone()),
                    payload: Set(m.payload.clone()),
                    ..Default::default()
                });
                old::Entity::insert_many(rows).exec_without_returning(db).await?;
            }
        }
        manager.drop_table(Table::drop().table(outbox::Entity).if_exists().to_owned()).await
    }
}
