//! Opening the database.

use std::time::Duration;

use anyhow::Context as _;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tiendo_settings::DatabaseSettings;

use crate::migration::Migrator;

/// True for an SQLite URL.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Rows an SQLite query may hand over before its reader takes them. sqlx runs SQLite on a
/// thread of its own and passes rows through a channel; with its default of 50, reading a
/// few thousand rows (a batch's prefetch, `RETURNING` ids) switches threads every few rows.
const ROW_BUFFER_SIZE: usize = 4096;

/// Opens the database. SQLite gets one connection in WAL mode: it has a single writer, and
/// one connection serialises the services' transactions instead of failing them with "busy".
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(settings.url.expose());
    options.sqlx_logging(false).connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(5));
    if is_sqlite(settings.url.expose()) {
        options.max_connections(1).min_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
                .row_buffer_size(ROW_BUFFER_SIZE)
        });
    } else {
        options.max_connections(settings.max_connections.max(1));
    }
    let db = Database::connect(options).await.with_context(|| format!("connecting to database {}", settings.url))?;
    Ok(db)
}

/// Applies every pending migration. Several services may start at once against one database:
/// a failed attempt (another one migrating) is retried a few times.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match Migrator::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "migration failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(e).context("running database migrations"),
        }
    }
}

/// Begins a transaction: serializable on PostgreSQL, so two instances updating the same
/// roll-up cannot both commit a stale sum (the loser fails and its messages are retried).
/// SQLite transactions are serializable already.
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => db.begin_with_config(Some(IsolationLevel::Serializable), None).await,
        _ => db.begin().await,
    }
}
