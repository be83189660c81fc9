//! Migrations, oldest first. A migration, once released, never changes: add a new one.

use sea_orm_migration::prelude::*;

mod m20261127_000001_create_tables;
mod m20261128_000001_alert_figures_latest;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_tables::Migration),
            Box::new(m20261128_000001_alert_figures_latest::Migration),
        ]
    }
}
