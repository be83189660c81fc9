//! Who has reported (issue 11): an index to read one indicator's and period's receipts
//! (`observations` by indicator and period), the due periods alerting has acted on and the
//! overdue notices it sent, and each standing's coverage.

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::entity::{due_period, observation, overdue_notice, standing};

pub struct Migration;

/// The index's name.
const RECEIPTS: &str = "observations_by_period";

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_reporting"
    }
}

async fn create<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    let schema = Schema::new(manager.get_database_backend());
    manager.create_table(schema.create_table_from_entity(entity).if_not_exists().to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use observation::Column as O;
        manager
            .create_index(
                Index::create()
                    .name(RECEIPTS)
                    .table(observation::Entity)
                    .col(O::Indicator)
                    .col(O::Period)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        create(manager, due_period::Entity).await?;
        create(manager, overdue_notice::Entity).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(standing::Entity)
                    .add_column(ColumnDef::new(standing::Column::Coverage).double().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(standing::Entity).drop_column(standing::Column::Coverage).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(overdue_notice::Entity).if_exists().to_owned()).await?;
        manager.drop_table(Table::drop().table(due_period::Entity).if_exists().to_owned()).await?;
        manager.drop_index(Index::drop().name(RECEIPTS).table(observation::Entity).if_exists().to_owned()).await
    }
}
