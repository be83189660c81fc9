//! On PostgreSQL, the outbox's bodies are compressed with LZ4 instead of PostgreSQL's own
//! `pglz`. A body holds all of a transaction's messages, often more than the 2 kB past which
//! PostgreSQL compresses a value (TOAST), and is deleted as soon as it is published:
//! compressing it is pure overhead, and `pglz_compress` was 6.7% of PostgreSQL's time in a
//! batched benchmark run (docs/performance.md, issue 15, change 17). A server built without
//! LZ4 support keeps `pglz` (the migration raises a PostgreSQL notice saying so). SQLite
//! does not compress values: nothing to do there.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000002_outbox_lz4"
    }
}

/// Sets the body column's compression, or leaves it (with a notice) on a server that does not
/// have the method. `EXECUTE` defers parsing, so a server too old for `SET COMPRESSION` is
/// caught as well.
fn set_compression(method: &str) -> String {
    format!(
        "DO $$ BEGIN \
           EXECUTE 'ALTER TABLE outbox_batches ALTER COLUMN body SET COMPRESSION {method}'; \
         EXCEPTION WHEN feature_not_supported OR syntax_error THEN \
           RAISE NOTICE 'outbox_batches.body keeps its compression: %', SQLERRM; \
         END $$"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(&set_compression("lz4")).await.map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(&set_compression("default")).await.map(|_| ())
    }
}
