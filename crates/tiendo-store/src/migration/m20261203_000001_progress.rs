//! Progress methods (issue 12): each standing keeps the progress category and score, the trend
//! forecast's projection, expected attainment date and weather.

use sea_orm_migration::prelude::*;

use crate::entity::standing;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000001_progress"
    }
}

fn columns() -> Vec<ColumnDef> {
    use standing::Column as S;
    vec![
        ColumnDef::new(S::Progress).string().null().to_owned(),
        ColumnDef::new(S::Score).double().null().to_owned(),
        ColumnDef::new(S::Projected).double().null().to_owned(),
        ColumnDef::new(S::ExpectedAttainment).string().null().to_owned(),
        ColumnDef::new(S::Outlook).string().null().to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite adds one at a time.
        for mut column in columns() {
            manager.alter_table(Table::alter().table(standing::Entity).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use standing::Column as S;
        for c in [S::Progress, S::Score, S::Projected, S::ExpectedAttainment, S::Outlook] {
            manager.alter_table(Table::alter().table(standing::Entity).drop_column(c).to_owned()).await?;
        }
        Ok(())
    }
}
