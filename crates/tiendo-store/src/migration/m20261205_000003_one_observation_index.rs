//! One index on `observations` serves both of its lookups other than the event id: aggregation's
//! last observation of a figure (indicator, org unit, period, newest first) and alerting's
//! receipts of an indicator's period (indicator, period). Before, each had its own index
//! (`observations_by_figure`, `observations_by_period`), and every observation stored wrote
//! both. With the period before the org unit, the receipts' two columns are the index's
//! prefix and the figure's three are still all equalities before the order by position
//! (docs/performance.md, issue 15, change 19).

use sea_orm_migration::prelude::*;

use crate::entity::observation;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000003_one_observation_index"
    }
}

/// The index this migration creates.
const BOTH: &str = "observations_by_period_and_unit";
/// The indexes it replaces, as m20261127_000001_create_tables and m20261202_000001_reporting
/// created them.
const BY_FIGURE: &str = "observations_by_figure";
const BY_PERIOD: &str = "observations_by_period";

fn index(name: &str, columns: &[observation::Column]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(observation::Entity).if_not_exists();
    for column in columns {
        index.col(*column);
    }
    index
}

async fn drop(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager.drop_index(Index::drop().name(name).table(observation::Entity).if_exists().to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use observation::Column as O;
        let columns = [O::Indicator, O::Period, O::OrgUnit, O::SourceSeq, O::SourceIndex];
        manager.create_index(index(BOTH, &columns)).await?;
        drop(manager, BY_FIGURE).await?;
        drop(manager, BY_PERIOD).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use observation::Column as O;
        manager
            .create_index(index(BY_FIGURE, &[O::Indicator, O::OrgUnit, O::Period, O::SourceSeq, O::SourceIndex]))
            .await?;
        manager.create_index(index(BY_PERIOD, &[O::Indicator, O::Period])).await?;
        drop(manager, BOTH).await
    }
}
