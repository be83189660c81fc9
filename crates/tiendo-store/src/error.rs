//! What went wrong with the database, in the terms a caller acts on: the store says what
//! happened; the service's consumer kit decides what that means for the message.

use sea_orm::{DbErr, RuntimeErr};

/// A failed read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A stored row does not hold what its table promises (a code that does not parse, a
    /// count that is not a share): it will fail the same way every time.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Which way a database error points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database cannot be reached or cannot work at all (connection refused or lost, no
    /// connection free, disk full): nothing about the data, it will pass when the database is back.
    Unavailable,
    /// The database answered and refused this attempt for a reason that can pass on its own
    /// (a serialization conflict, a deadlock, a busy or read-only database, a timeout).
    Conflict,
    /// The database refused the data itself (a constraint, a type), or stored data is
    /// corrupt: the same attempt will fail again.
    Refused,
}

impl StoreError {
    /// Which way this error points.
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::Db(e) => fault(e),
            StoreError::Corrupt(_) => Fault::Refused,
        }
    }
}

/// Classifies a sea-orm error by what the driver reported.
pub fn fault(e: &DbErr) -> Fault {
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) => return Fault::Unavailable,
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => s,
        DbErr::Conn(_) => return Fault::Unavailable,
        DbErr::Exec(_) | DbErr::Query(_) => return Fault::Conflict,
        _ => return Fault::Refused,
    };
    match sqlx {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => Fault::Unavailable,
        Sqlx::Database(db) => match db.code() {
            Some(code) if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() => sqlite_code(&code),
            Some(code) => sqlstate(&code),
            None => Fault::Conflict,
        },
        Sqlx::RowNotFound
        | Sqlx::ColumnNotFound(_)
        | Sqlx::ColumnDecode { .. }
        | Sqlx::Decode(_)
        | Sqlx::TypeNotFound { .. }
        | Sqlx::ColumnIndexOutOfBounds { .. } => Fault::Refused,
        _ => Fault::Conflict,
    }
}

/// An SQLite result code: a number, possibly an extended one whose low byte is the primary code.
fn sqlite_code(code: &str) -> Fault {
    let Ok(n) = code.parse::<u32>() else { return Fault::Conflict };
    match n & 0xff {
        // Plain SQLITE_BUSY comes after the 10-second busy timeout (every transaction takes the
        // write lock first: `connect::SQLITE_WRITE_LOCK`): another process (aggregation and
        // alerting run as two on one file) has held the write lock all that time. That is
        // the database being unavailable to this one, not this message failing: held, and
        // never counted against `pipeline.max_deliver`.
        5 if n == 5 => Fault::Unavailable,
        // SQLITE_BUSY_SNAPSHOT and the like, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_INTERRUPT
        5 | 6 | 8 | 9 => Fault::Conflict,
        // SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOLFS
        10 | 11 | 13 | 14 | 22 => Fault::Unavailable,
        // SQLITE_CONSTRAINT: a unique key taken is a race another writer won; others are the data.
        19 if n == 2067 || n == 1555 => Fault::Conflict,
        // SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE
        19 | 20 | 25 => Fault::Refused,
        _ => Fault::Conflict,
    }
}

/// A PostgreSQL SQLSTATE: five characters, the first two its class.
fn sqlstate(code: &str) -> Fault {
    match code {
        // serialization_failure, deadlock_detected, unique_violation (a concurrent insert won),
        // read_only_sql_transaction (a replica, or a primary being demoted), lock_not_available,
        // query_canceled (a statement timeout)
        "40001" | "40P01" | "23505" | "25006" | "55P03" | "57014" => Fault::Conflict,
        // admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped
        "57P01" | "57P02" | "57P03" | "57P04" => Fault::Unavailable,
        _ if code.starts_with("08") || code.starts_with("53") || code.starts_with("58") => Fault::Unavailable,
        _ if code.starts_with("22") || code.starts_with("23") || code.starts_with("42") => Fault::Refused,
        _ => Fault::Conflict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_codes_point_the_right_way() {
        assert_eq!(sqlstate("40001"), Fault::Conflict);
        assert_eq!(sqlstate("23505"), Fault::Conflict);
        assert_eq!(sqlstate("25006"), Fault::Conflict);
        assert_eq!(sqlstate("08006"), Fault::Unavailable);
        assert_eq!(sqlstate("57P01"), Fault::Unavailable);
        assert_eq!(sqlstate("53100"), Fault::Unavailable, "disk full waits for space");
        assert_eq!(sqlstate("22003"), Fault::Refused);
        assert_eq!(sqlstate("23502"), Fault::Refused);
        assert_eq!(sqlite_code("5"), Fault::Unavailable, "SQLITE_BUSY, after the busy timeout");
        assert_eq!(sqlite_code("517"), Fault::Conflict, "SQLITE_BUSY_SNAPSHOT");
        assert_eq!(sqlite_code("13"), Fault::Unavailable, "SQLITE_FULL");
        assert_eq!(sqlite_code("2067"), Fault::Conflict, "SQLITE_CONSTRAINT_UNIQUE");
        assert_eq!(sqlite_code("787"), Fault::Refused, "SQLITE_CONSTRAINT_FOREIGNKEY");
        assert_eq!(fault(&DbErr::Custom("x".into())), Fault::Refused);
        assert_eq!(fault(&DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)), Fault::Unavailable);
    }
}
