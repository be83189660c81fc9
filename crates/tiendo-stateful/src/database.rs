//! The database a process's stateful services share: connected and migrated once, pinged
//! in the background so an outage shows on `/readyz` and in `tiendo_database_up`, and, on
//! SQLite, checkpointed in the background from a connection of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tiendo_runtime::Deps;
use tiendo_store::sea_orm::DatabaseConnection;
use tiendo_telemetry::Telemetry;

/// How often the database is pinged for `tiendo_database_up` and `/readyz`.
const PING_EVERY: Duration = Duration::from_secs(2);

/// How often an SQLite database's WAL is checkpointed in the background: often enough that
/// the transactions' connection finds little left to copy when it reaches its own threshold,
/// while a pass with nothing new to copy does next to nothing.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// A connected, migrated, watched database. Cheap to clone: clones share the pool (on
/// SQLite, its one connection).
#[derive(Clone)]
pub struct Database {
    connection: DatabaseConnection,
}

impl Database {
    /// Connects to `database.url`, runs the migrations, and starts the ping that feeds the
    /// `database` readiness check and `tiendo_database_up`, and on SQLite the checkpointer.
    pub async fn open(deps: &Deps) -> anyhow::Result<Database> {
        let connection = tiendo_store::connect(&deps.settings.database).await?;
        tiendo_store::migrate(&connection).await?;
        deps.telemetry.readiness().set("database_migrations", true);
        watch(&deps.telemetry, connection.clone())?;
        // Without it SQLite still checkpoints, in the transactions' connection: slower, not wrong.
        match tiendo_store::Checkpointer::open(&deps.settings.database).await {
            Ok(Some(checkpointer)) => checkpoint(&deps.telemetry, checkpointer),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "no background checkpoints: SQLite checkpoints in the transactions' connection")
            }
        }
        Ok(Database { connection })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }
}

/// Pings the database in the background: `tiendo_database_up` and the `database` readiness
/// check follow the answer. Stops when the process's telemetry is gone.
fn watch(telemetry: &Arc<Telemetry>, db: DatabaseConnection) -> anyhow::Result<()> {
    let up = Arc::new(AtomicBool::new(true));
    let gauge = tiendo_telemetry::metrics::database_up(telemetry.registry())?;
    gauge.set(1.0);
    let probe = up.clone();
    telemetry.readiness().probe("database", move || probe.load(Ordering::Relaxed));
    let weak = Arc::downgrade(telemetry);
    tokio::spawn(async move {
        while weak.strong_count() > 0 {
            let ok = tokio::time::timeout(PING_EVERY, db.ping()).await.is_ok_and(|r| r.is_ok());
            if ok != up.swap(ok, Ordering::Relaxed) {
                tracing::warn!(database_up = ok, "database availability changed");
            }
            gauge.set(if ok { 1.0 } else { 0.0 });
            tokio::time::sleep(PING_EVERY).await;
        }
    });
    Ok(())
}

/// Checkpoints an SQLite database's WAL every [`CHECKPOINT_EVERY`], so that the transactions'
/// one connection seldom has to (`tiendo_store::connect::SQLITE_WAL_AUTOCHECKPOINT`). Stops
/// when the process's telemetry is gone, as the ping does.
fn checkpoint(telemetry: &Arc<Telemetry>, mut checkpointer: tiendo_store::Checkpointer) {
    let weak = Arc::downgrade(telemetry);
    tokio::spawn(async move {
        while weak.strong_count() > 0 {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            if let Err(e) = checkpointer.pass().await {
                tracing::debug!(error = %e, "a background checkpoint failed; the next pass tries again");
            }
        }
    });
}
