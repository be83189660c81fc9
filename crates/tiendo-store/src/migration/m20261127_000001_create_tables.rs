//! The first schema: aggregation's observations and figures, alerting's tables, the outbox.
//!
//! Tables are created from the entities as they stood at this migration: the ones that have
//! changed since are frozen in [`super::frozen`]. When an entity changes, write the change as
//! a new migration, and freeze the old shape there if this one used it.

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use super::frozen::observation;
use super::frozen::{alert, alert_state, outbox};
use crate::entity::{alert_event, alert_figure, figure};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000001_create_tables"
    }
}

async fn create<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    let schema = Schema::new(manager.get_database_backend());
    manager.create_table(schema.create_table_from_entity(entity).if_not_exists().to_owned()).await
}

async fn drop<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    manager.drop_table(Table::drop().table(entity).if_exists().to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, observation::Entity).await?;
        create(manager, figure::Entity).await?;
        create(manager, outbox::Entity).await?;
        create(manager, alert_figure::Entity).await?;
        create(manager, alert_state::Entity).await?;
        create(manager, alert::Entity).await?;
        create(manager, alert_event::Entity).await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_by_service")
                    .table(outbox::Entity)
                    .col(outbox::Column::Service)
                    .col(outbox::Column::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("observations_by_figure")
                    .table(observation::Entity)
                    .col(observation::Column::Indicator)
                    .col(observation::Column::OrgUnit)
                    .col(observation::Column::Period)
                    .col(observation::Column::SourceSeq)
                    .col(observation::Column::SourceIndex)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, alert_event::Entity).await?;
        drop(manager, alert::Entity).await?;
        drop(manager, alert_state::Entity).await?;
        drop(manager, alert_figure::Entity).await?;
        drop(manager, outbox::Entity).await?;
        drop(manager, figure::Entity).await?;
        drop(manager, observation::Entity).await
    }
}
