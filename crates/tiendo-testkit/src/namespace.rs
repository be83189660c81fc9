//! A namespace of one's own on shared servers: a fresh subject prefix (so its own streams and
//! consumers), a fresh database (an SQLite file in a temporary folder, or a PostgreSQL
//! database created for it) and a folder for its files. Closing it deletes its streams and
//! drops its PostgreSQL database; nothing else on the servers is touched. Tests and benchmark
//! runs each take one, so they run side by side without seeing each other's data.

use std::path::Path;

use anyhow::Context as _;
use tiendo_bus::{Bus, StreamKind};
use tiendo_settings::{DatabaseSettings, Settings};
use tiendo_store::sea_orm::{self, ConnectionTrait, DatabaseConnection};

/// The database a namespace runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

/// A name no other run is using: `prefix`, the time and a random number.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}_{:08x}", chrono::Utc::now().format("%H%M%S"), rand::random::<u32>())
}

/// One run's prefix, database and folder.
pub struct Namespace {
    /// Settings for the services of this namespace: its prefix and database. Change them
    /// (a proxy in front of the database, another NATS server) before connecting anything.
    pub settings: Settings,
    /// The database as created, whatever the services are later pointed at.
    direct: DatabaseSettings,
    postgres: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl Namespace {
    /// A namespace called `name` (letters, digits, `_`) from `base`: SQLite when
    /// `postgres_admin` is `None`, else a database created through that admin URL.
    pub async fn create(mut base: Settings, name: &str, postgres_admin: Option<&str>) -> anyhow::Result<Namespace> {
        let dir = tempfile::tempdir()?;
        base.nats.prefix = name.to_owned();
        let postgres = match postgres_admin {
            None => {
                base.database.url = format!("sqlite://{}?mode=rwc", dir.path().join("tiendo.db").display()).into();
                None
            }
            Some(admin_url) => {
                let admin = sea_orm::Database::connect(admin_url).await.context("connecting to PostgreSQL")?;
                let created = admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await;
                admin.close().await.ok();
                created.with_context(|| format!("creating database {name}"))?;
                base.database.url = with_database(admin_url, name)?.into();
                Some((admin_url.to_owned(), name.to_owned()))
            }
        };
        Ok(Namespace { direct: base.database.clone(), settings: base, postgres, dir })
    }

    pub fn kind(&self) -> DatabaseKind {
        if self.postgres.is_some() {
            DatabaseKind::Postgres
        } else {
            DatabaseKind::Sqlite
        }
    }

    /// A connection of the caller's own to the namespace's database, migrated: straight to
    /// the database as created, even when the services go through a proxy.
    pub async fn database(&self) -> anyhow::Result<DatabaseConnection> {
        let db = tiendo_store::connect(&self.direct).await?;
        tiendo_store::migrate(&db).await?;
        Ok(db)
    }

    /// The folder this namespace keeps its files in (catalog, SQLite file, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Uses the catalog `toml` (written to the namespace's folder) instead of the built-in one.
    pub fn use_catalog(&mut self, toml: &str) -> anyhow::Result<()> {
        let path = self.dir.path().join("catalog.toml");
        std::fs::write(&path, toml).context("writing the catalog")?;
        self.settings.catalog.path = Some(path);
        Ok(())
    }

    /// Deletes the namespace's streams (through `bus`) and drops its PostgreSQL database.
    pub async fn close(self, bus: &Bus) {
        for kind in StreamKind::ALL {
            // A stream nobody created is not an error.
            let _ = bus.js.delete_stream(bus.names.stream(kind)).await;
        }
        let Some((admin_url, name)) = self.postgres else { return };
        match sea_orm::Database::connect(admin_url.as_str()).await {
            Ok(admin) => {
                if let Err(e) = drop_database(&admin, &name).await {
                    tracing::warn!(database = name, error = %e, "could not drop the namespace's database");
                }
                admin.close().await.ok();
            }
            Err(e) => tracing::warn!(database = name, error = %e, "could not drop the namespace's database"),
        }
    }
}

/// The streams on `bus`'s server of the namespaces whose name starts with `prefix`.
pub async fn streams_named(bus: &Bus, prefix: &str) -> anyhow::Result<Vec<String>> {
    use futures::TryStreamExt as _;
    let start = tiendo_bus::names::stream_case(prefix);
    let names: Vec<String> = bus.js.stream_names().try_collect().await.context("listing streams")?;
    Ok(names.into_iter().filter(|n| n.starts_with(&start)).collect())
}

/// The databases on `admin`'s PostgreSQL server whose name starts with `prefix`.
pub async fn databases_named(admin: &DatabaseConnection, prefix: &str) -> Result<Vec<String>, sea_orm::DbErr> {
    let sql = sea_orm::Statement::from_string(admin.get_database_backend(), "SELECT datname FROM pg_database");
    let rows = admin.query_all(sql).await?;
    Ok(rows.iter().filter_map(|r| r.try_get::<String>("", "datname").ok()).filter(|n| n.starts_with(prefix)).collect())
}

/// Drops database `name` on `admin`'s PostgreSQL server, closing its sessions.
pub async fn drop_database(admin: &DatabaseConnection, name: &str) -> Result<(), sea_orm::DbErr> {
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.map(drop)
}

/// `url` with its database name replaced by `name`, keeping any query string.
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map(|i| i + 3).context("a database URL has a scheme")?;
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    Ok(match query {
        Some(q) => format!("{}/{name}?{q}", &base[..path]),
        None => format!("{}/{name}", &base[..path]),
    })
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_database_url_gets_the_new_name_and_keeps_its_options() {
        let to = |u: &str| with_database(u, "b1").unwrap();
        assert_eq!(to("postgres://postgres@127.0.0.1:5432/test"), "postgres://postgres@127.0.0.1:5432/b1");
        assert_eq!(to("postgres://u:p@db/test?sslmode=disable"), "postgres://u:p@db/b1?sslmode=disable");
        assert_eq!(to("postgres://db:5432"), "postgres://db:5432/b1");
        assert!(with_database("nonsense", "b1").is_err());
    }
}
