//! Notes (issue 13): an observation keeps the department's note, for the pages to show.

use sea_orm_migration::prelude::*;

use crate::entity::observation;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_notes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut note = ColumnDef::new(observation::Column::Note).string().null().to_owned();
        manager.alter_table(Table::alter().table(observation::Entity).add_column(&mut note).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(observation::Entity).drop_column(observation::Column::Note).to_owned())
            .await
    }
}
