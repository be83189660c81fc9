//! Where the benchmark runs. [`Environment`]: the NATS server (a private one unless told
//! otherwise) and the kind of database. [`Namespace`]: what one run of one part gets for
//! itself: a fresh subject prefix (so its own streams and consumers), a fresh database (an
//! SQLite file in a temporary folder, or a PostgreSQL database created for it) and a catalog
//! file. Closing a namespace deletes its streams and drops its PostgreSQL database; nothing
//! else on the server is touched. [`Services`]: the pipeline run in-process on a namespace.

use std::path::Path;

use anyhow::Context as _;
use tiendo_bus::{Bus, StreamKind};
use tiendo_settings::Settings;
use tiendo_store::sea_orm::{self, ConnectionTrait, DatabaseConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::options::{Options, Part};
use super::workload::Country;
use crate::local_nats::{self, LocalNats};
use crate::Up;

/// The database the pipeline runs on.
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

/// The servers every part of one benchmark uses.
pub struct Environment {
    base: Settings,
    /// For the report: which NATS server, said in words.
    pub nats: String,
    /// The PostgreSQL admin URL, when the benchmark runs on PostgreSQL.
    postgres_admin: Option<String>,
    /// Tells this benchmark's prefixes and databases apart from any other's.
    stamp: String,
    _local: Option<LocalNats>,
}

impl Environment {
    /// Uses `--nats-url` when it answers, else starts a private nats-server; checks that
    /// `--database-url`, if given, is a PostgreSQL server that answers.
    pub async fn open(mut base: Settings, options: &Options) -> anyhow::Result<Self> {
        let (nats, local) = match &options.nats_url {
            Some(url) if local_nats::reachable(url) => {
                base.nats.url = url.clone();
                (format!("given, {}", tiendo_settings::redact_url(url)), None)
            }
            requested => {
                let local = local_nats::start().await?;
                base.nats.url = local.url.clone();
                let why = match requested {
                    Some(url) => format!("{} did not answer", tiendo_settings::redact_url(url)),
                    None => "no --nats-url".to_owned(),
                };
                (format!("private nats-server at {} ({why})", local.url), Some(local))
            }
        };
        let postgres_admin = match &options.database_url {
            None => None,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let admin = sea_orm::Database::connect(url.as_str())
                    .await
                    .with_context(|| format!("connecting to {}", tiendo_settings::redact_url(url)))?;
                admin.close().await.ok();
                Some(url.clone())
            }
            Some(_) => anyhow::bail!("--database-url takes a PostgreSQL URL; SQLite (a temporary file) is the default"),
        };
        base.http.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let stamp = format!("{}_{}", chrono::Utc::now().format("%m%d%H%M%S"), std::process::id());
        Ok(Self { base, nats, postgres_admin, stamp, _local: local })
    }

    pub fn database_kind(&self) -> DatabaseKind {
        if self.postgres_admin.is_some() {
            DatabaseKind::Postgres
        } else {
            DatabaseKind::Sqlite
        }
    }

    /// The settings every namespace starts from (the NATS URL chosen, HTTP on a free port).
    pub fn base(&self) -> &Settings {
        &self.base
    }

    /// A fresh namespace for `run` of `part`; `country`'s catalog when given, else the
    /// built-in one. `tag` tells namespaces of the same run apart (e.g. a tree size).
    pub async fn namespace(
        &self,
        part: Part,
        run: usize,
        tag: &str,
        country: Option<&Country>,
    ) -> anyhow::Result<Namespace> {
        let name = format!("bench_{}_{}{tag}_{run}", self.stamp, part.name());
        let dir = tempfile::tempdir()?;
        let mut settings = self.base.clone();
        settings.nats.prefix = name.clone();
        if let Some(country) = country {
            let path = dir.path().join("catalog.toml");
            std::fs::write(&path, country.catalog_toml()).context("writing the synthetic catalog")?;
            settings.catalog.path = Some(path);
        }
        let database = FreshDatabase::create(self.postgres_admin.as_deref(), &name, dir.path()).await?;
        settings.database.url = database.url.clone();
        let bus = match Bus::connect(&settings.nats, "tiendo-bench").await {
            Ok(bus) => bus,
            Err(e) => {
                database.drop_now().await;
                return Err(e);
            }
        };
        Ok(Namespace { settings, bus, database, dir })
    }
}

/// One run's prefix, database and catalog, with the benchmark's own connection to NATS.
pub struct Namespace {
    /// Settings for the services of this run: its prefix, database and catalog.
    pub settings: Settings,
    /// The benchmark's connection, as a department (or an operator) would have.
    pub bus: Bus,
    database: FreshDatabase,
    dir: tempfile::TempDir,
}

impl Namespace {
    /// A connection of the benchmark's own to this run's database, migrated.
    pub async fn database(&self) -> anyhow::Result<DatabaseConnection> {
        let db = tiendo_store::connect(&self.settings.database).await?;
        tiendo_store::migrate(&db).await?;
        Ok(db)
    }

    /// The folder this namespace keeps its files in (catalog, SQLite file, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Deletes the namespace's streams and drops its PostgreSQL database.
    pub async fn close(self) {
        for kind in StreamKind::ALL {
            // A stream the part never created is not an error.
            let _ = self.bus.js.delete_stream(self.bus.names.stream(kind)).await;
        }
        self.database.drop_now().await;
    }
}

/// The four services running in this process, exactly as `tiendo up` runs them.
pub struct Services {
    shutdown: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
}

impl Services {
    /// Builds (connects, migrates, creates streams and consumers) and starts them.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let up = Up::build(settings.clone()).await?;
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(up.run_until_stopped(shutdown.clone()));
        Ok(Self { shutdown, running })
    }

    /// Fails if they have stopped on their own (a service returned an error).
    pub fn check_running(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.running.is_finished(), "the services stopped during the run");
        Ok(())
    }

    /// Stops them gracefully; their error, if one failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.running.await?
    }
}

/// A database nobody used before: an SQLite file in `dir`, or a PostgreSQL database named
/// after the namespace, created on the admin URL's server.
struct FreshDatabase {
    url: String,
    postgres: Option<(String, String)>,
}

impl FreshDatabase {
    async fn create(postgres_admin: Option<&str>, name: &str, dir: &Path) -> anyhow::Result<Self> {
        let Some(admin_url) = postgres_admin else {
            let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
            return Ok(Self { url, postgres: None });
        };
        let admin = sea_orm::Database::connect(admin_url).await.context("connecting to PostgreSQL")?;
        let created = admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await;
        admin.close().await.ok();
        created.with_context(|| format!("creating database {name}"))?;
        Ok(Self { url: with_database(admin_url, name)?, postgres: Some((admin_url.to_owned(), name.to_owned())) })
    }

    /// Drops the PostgreSQL database (the SQLite file goes with its temporary folder).
    async fn drop_now(self) {
        let Some((admin_url, name)) = self.postgres else { return };
        match sea_orm::Database::connect(admin_url.as_str()).await {
            Ok(admin) => {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                if let Err(e) = admin.execute_unprepared(&sql).await {
                    tracing::warn!(database = name, error = %e, "could not drop the benchmark's database");
                }
                admin.close().await.ok();
            }
            Err(e) => tracing::warn!(database = name, error = %e, "could not drop the benchmark's database"),
        }
    }
}

/// `url` with its database name replaced by `name`, keeping any query string.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
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
