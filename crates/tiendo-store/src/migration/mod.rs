//! Migrations, oldest first. A migration, once released, never changes what it does: add a
//! new one (and freeze in [`frozen`] any entity shape an old one used).

use sea_orm_migration::prelude::*;

mod frozen;
mod m20261127_000001_create_tables;
mod m20261128_000001_alert_figures_latest;
mod m20261201_000001_plans;
mod m20261202_000001_reporting;
mod m20261203_000001_progress;
mod m20261204_000001_notes;
mod m20261205_000001_outbox_batches;
mod m20261205_000002_outbox_lz4;
mod m20261205_000003_one_observation_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_tables::Migration),
            Box::new(m20261128_000001_alert_figures_latest::Migration),
            Box::new(m20261201_000001_plans::Migration),
            Box::new(m20261202_000001_reporting::Migration),
            Box::new(m20261203_000001_progress::Migration),
            Box::new(m20261204_000001_notes::Migration),
            Box::new(m20261205_000001_outbox_batches::Migration),
            Box::new(m20261205_000002_outbox_lz4::Migration),
            Box::new(m20261205_000003_one_observation_index::Migration),
        ]
    }
}
