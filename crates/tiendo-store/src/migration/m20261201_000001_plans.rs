//! Plans (issue 10): alerting judges each plan's (indicator, org unit), so its standings and
//! alerts are keyed by plan. `alert_states` becomes `standings` (expected, gap and target may
//! be absent: an indicator a plan only monitors), and each alert is one row per (plan,
//! indicator, unit, kind) with a stable id. The old rows are dropped, not converted: they
//! carried no plan, and alerting judges every key again with the next figure it is told of
//! (`tiendo replay` rebuilds everything at once).

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use super::frozen::{self, standing};
use crate::entity::alert;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000001_plans"
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
        drop(manager, frozen::alert_state::Entity).await?;
        drop(manager, frozen::alert::Entity).await?;
        create(manager, standing::Entity).await?;
        create(manager, alert::Entity).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, alert::Entity).await?;
        drop(manager, standing::Entity).await?;
        create(manager, frozen::alert_state::Entity).await?;
        create(manager, frozen::alert::Entity).await
    }
}
