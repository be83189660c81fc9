//! Opening the database, and on SQLite checkpointing its WAL beside the transactions.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::Context as _;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tiendo_settings::DatabaseSettings;
use tokio::sync::OwnedMutexGuard;

use crate::migration::Migrator;

/// True for an SQLite URL.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Rows an SQLite query may hand over before its reader takes them. sqlx runs SQLite on a
/// thread of its own and passes rows through a channel; with its default of 50, reading a
/// few thousand rows (a batch's prefetch, `RETURNING` ids) switches threads every few rows.
const ROW_BUFFER_SIZE: usize = 4096;

/// SQLite keeps its temporary files in memory. Inside a transaction every multi-row `INSERT`
/// journals the pages it changes so that it alone can be undone; with temporary files on
/// disk, the statement journal spills to a file past 64 KiB, a `pwrite` per page: 11% of the
/// SQLite thread's time in a batched run (docs/performance.md, issue 15, change 14).
pub const SQLITE_TEMP_STORE: (&str, &str) = ("temp_store", "memory");

/// SQLite's page cache per connection, in KiB when negative: 16 MiB instead of the default
/// 2 MiB. A transaction of 5,000 observations changes more pages than 2 MiB holds, and SQLite
/// then writes dirty pages to the WAL before the commit, and again at the commit.
pub const SQLITE_CACHE_SIZE: (&str, &str) = ("cache_size", "-16384");

/// When the one connection checkpoints the WAL by itself: once the WAL holds this many pages
/// (4 KiB each, so 64 MiB) instead of SQLite's 1,000. That checkpoint runs in the connection
/// that has just committed, copying pages into the database file and syncing it while every
/// transaction waits for the connection; with none at all, SQLite ran 8–9% faster
/// (docs/performance.md, issue 15, change 26). A process's stateful services checkpoint from
/// a connection of their own instead ([`Checkpointer`]), so that this one, by then, finds
/// little left to copy; it only bounds the WAL where no checkpointer runs (a command such as
/// `tiendo replay`) or one falls behind.
pub const SQLITE_WAL_AUTOCHECKPOINT: (&str, &str) = ("wal_autocheckpoint", "16384");

/// PostgreSQL plans each statement for its parameters and the tables as they are now, never
/// with a generic plan it cached earlier. sqlx prepares a statement once per connection, and
/// PostgreSQL moves a prepared statement to a generic plan after five executions; in a new
/// database that plan is made while the tables are nearly empty and have no statistics, and
/// it stays until autovacuum analyses them (a minute or more later): aggregation's lookup of
/// a batch's event ids then used the primary key by department alone and filtered the ids,
/// reading every observation of the department, slower as the table grew (0.05 → 1.5 ms a
/// lookup over a 10-second run). The price is planning at every execution, about 0.08 ms a
/// lookup once the plans would have been right (docs/performance.md, issue 15, change 11).
const PLAN_CACHE_MODE: (&str, &str) = ("plan_cache_mode", "force_custom_plan");

/// Opens the database. SQLite gets one connection in WAL mode: it has a single writer, and
/// one connection serialises the services' transactions instead of failing them with "busy";
/// its temporary files in memory and a larger page cache ([`SQLITE_TEMP_STORE`],
/// [`SQLITE_CACHE_SIZE`]).
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
                .pragma(SQLITE_TEMP_STORE.0, SQLITE_TEMP_STORE.1)
                .pragma(SQLITE_CACHE_SIZE.0, SQLITE_CACHE_SIZE.1)
                .pragma(SQLITE_WAL_AUTOCHECKPOINT.0, SQLITE_WAL_AUTOCHECKPOINT.1)
        });
    } else {
        options.max_connections(settings.max_connections.max(1));
        options.map_sqlx_postgres_opts(|o| o.options([PLAN_CACHE_MODE]));
    }
    let db = Database::connect(options).await.with_context(|| format!("connecting to database {}", settings.url))?;
    Ok(db)
}

/// A second connection to an SQLite database, used only to checkpoint its WAL: copying what
/// transactions committed into the database file off the one connection the transactions
/// share (see [`SQLITE_WAL_AUTOCHECKPOINT`]).
pub struct Checkpointer {
    connection: sea_orm::sqlx::SqliteConnection,
}

/// What one checkpoint pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// Pages in the WAL.
    pub wal: i64,
    /// Of them, those now copied into the database file.
    pub copied: i64,
}

impl Checkpointer {
    /// A checkpointer for the database of `settings`; `None` when it is not an SQLite file
    /// (PostgreSQL checkpoints by itself).
    pub async fn open(settings: &DatabaseSettings) -> anyhow::Result<Option<Checkpointer>> {
        use sea_orm::sqlx::ConnectOptions as _;
        let url = settings.url.expose();
        if !is_sqlite(url) || url.contains(":memory:") || url.contains("mode=memory") {
            return Ok(None);
        }
        let options: SqliteConnectOptions = url.parse().context("reading the SQLite URL")?;
        let connection = options
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .context("opening the SQLite checkpointer's connection")?;
        Ok(Some(Checkpointer { connection }))
    }

    /// Copies into the database file the pages the WAL holds, as far as no reader still
    /// needs their older versions, without waiting for the writer or blocking it (a `PASSIVE`
    /// checkpoint). When it copies the whole WAL, the next transaction starts the WAL afresh.
    pub async fn pass(&mut self) -> anyhow::Result<Checkpointed> {
        let (_busy, wal, copied): (i64, i64, i64) =
            sea_orm::sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut self.connection).await?;
        Ok(Checkpointed { wal, copied })
    }
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

/// How a PostgreSQL transaction is isolated from the others (SQLite's are serializable
/// whatever is asked: it has one writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Two instances updating the same roll-up cannot both commit a stale sum, and no
    /// transaction acts on a read another one made stale (the loser fails and is retried).
    /// The price: PostgreSQL tracks every row a transaction reads, coarsening to whole tables
    /// past `max_pred_locks_per_transaction`, so large concurrent transactions fail each
    /// other even when they write different rows.
    #[default]
    Serializable,
    /// A snapshot: two transactions writing the same row still cannot both commit (the
    /// loser fails and is retried), but reads are not tracked. Right for writers whose every
    /// read that decides a write is of a row they write too (aggregation).
    RepeatableRead,
}

/// Begins a [`Isolation::Serializable`] transaction: see [`begin_with`].
pub async fn begin(db: &DatabaseConnection) -> Result<Transaction, DbErr> {
    begin_with(db, Isolation::Serializable).await
}

/// Begins a transaction isolated as `isolation` on PostgreSQL.
///
/// On SQLite the transaction also holds the database's turn (there is one connection anyway),
/// so that a transaction that fails can replace the connection before anyone else uses it: see
/// [`Transaction`].
pub async fn begin_with(db: &DatabaseConnection, isolation: Isolation) -> Result<Transaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let level = match isolation {
                Isolation::Serializable => IsolationLevel::Serializable,
                Isolation::RepeatableRead => IsolationLevel::RepeatableRead,
            };
            let tx = db.begin_with_config(Some(level), None).await?;
            Ok(Transaction { tx: Some(tx), turn: None, db: db.clone() })
        }
        _ => {
            let turn = sqlite_turn(db).lock_owned().await;
            let tx = db.begin().await?;
            let tx = Transaction { tx: Some(tx), turn: Some(turn), db: db.clone() };
            // Dropped on failure: rolled back, and the connection replaced.
            tx.execute_unprepared(SQLITE_WRITE_LOCK).await?;
            Ok(tx)
        }
    }
}

/// The first statement of every SQLite transaction: a write that changes nothing, so the
/// transaction takes the database's write lock before it reads anything, waiting out the busy
/// timeout for it when another process holds it (`BEGIN IMMEDIATE`, which sea-orm cannot ask
/// for). A transaction that reads first and only then writes is refused at once with
/// SQLITE_BUSY when another connection holds the lock: SQLite does not wait for a reader to
/// become a writer. aggregation's transactions read first; run as processes of their own on
/// one file, one of them failed so whenever alerting was writing, and its messages went back
/// to the stream to come again after later ones (`tests/faults.rs`
/// `on_sqlite_a_transaction_that_reads_first_waits_for_another_processs_write_lock`).
const SQLITE_WRITE_LOCK: &str = "DELETE FROM observations WHERE 0";

/// A transaction, committed with [`Transaction::commit`]; dropped, it is rolled back.
///
/// Why the wrapper: when SQLite fails a statement for a full disk or an I/O error it may roll
/// the transaction back by itself. sqlx then still counts the transaction as open (its
/// `ROLLBACK` fails, "no transaction is active"), so the connection's next transaction would
/// be a mere savepoint, whose "commit" writes nothing to the file: the writes would be
/// acknowledged and lost. A failed SQLite transaction therefore closes its connection (the
/// pool opens a fresh one) while it still holds the database's turn.
pub struct Transaction {
    tx: Option<DatabaseTransaction>,
    turn: Option<OwnedMutexGuard<()>>,
    db: DatabaseConnection,
}

impl std::ops::Deref for Transaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        self.tx.as_ref().expect("a transaction is used only until it commits")
    }
}

impl Transaction {
    /// Commits; on failure the connection is replaced (on SQLite) before the error returns.
    pub async fn commit(mut self) -> Result<(), DbErr> {
        let Some(tx) = self.tx.take() else { return Ok(()) };
        let result = tx.commit().await;
        if result.is_err() {
            if let Some(turn) = self.turn.take() {
                renew_sqlite_connection(&self.db).await;
                drop(turn);
            }
        }
        result
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        let (Some(tx), Some(turn)) = (self.tx.take(), self.turn.take()) else { return };
        // Not committed: a failure on the way. The rollback is queued on the connection by
        // sea-orm; the connection is then replaced, all before the turn passes on.
        let db = self.db.clone();
        drop(tx);
        tokio::spawn(async move {
            renew_sqlite_connection(&db).await;
            drop(turn);
        });
    }
}

/// Closes the SQLite pool's connection, so the next use opens a fresh one (with the same
/// pragmas) that holds no transaction.
async fn renew_sqlite_connection(db: &DatabaseConnection) {
    let pool = db.get_sqlite_connection_pool();
    match tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await {
        Ok(Ok(conn)) => {
            if let Err(e) = conn.close().await {
                tracing::warn!(error = %e, "closing the SQLite connection after a failed transaction");
            }
        }
        _ => tracing::warn!("no SQLite connection to renew after a failed transaction"),
    }
}

/// Whose turn it is to write to one SQLite database.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// The turn of the SQLite database `db` is a pool of: one per pool, shared by its clones.
fn sqlite_turn(db: &DatabaseConnection) -> Turn {
    static TURNS: Mutex<Vec<(Weak<SqliteConnectOptions>, Turn)>> = Mutex::new(Vec::new());
    let options = db.get_sqlite_connection_pool().connect_options();
    let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    turns.retain(|(o, _)| o.strong_count() > 0);
    if let Some((_, turn)) = turns.iter().find(|(o, _)| o.upgrade().is_some_and(|o| Arc::ptr_eq(&o, &options))) {
        return turn.clone();
    }
    let turn = Arc::new(tokio::sync::Mutex::new(()));
    turns.push((Arc::downgrade(&options), turn.clone()));
    turn
}
