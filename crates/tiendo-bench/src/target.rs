//! Where the benchmark runs. [`Environment`]: the NATS server (a private one unless told
//! otherwise) and the kind of database. [`Namespace`]: what one run of one part gets for
//! itself: a fresh subject prefix (so its own streams and consumers), a fresh database (an
//! SQLite file in a temporary folder, or a PostgreSQL database created for it) and a catalog
//! file. Closing a namespace deletes its streams and drops its PostgreSQL database; nothing
//! else on the server is touched. [`Services`]: the pipeline run in-process on a namespace.

use std::ops::Deref;

use anyhow::Context as _;
use tiendo::Up;
use tiendo_bus::Bus;
use tiendo_settings::{NatsSettings, Settings};
use tiendo_store::sea_orm;
use tiendo_testkit::namespace;
use tiendo_testkit::nats::{self, NatsServer};
pub use tiendo_testkit::DatabaseKind;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::options::{Options, Part};
use super::workload::Country;

/// `--remove-leftovers`: what a benchmark of namespace prefix `prefix` left on the NATS server
/// of `--nats-url` and on the PostgreSQL server of `--database-url`, removed. It never starts
/// a private nats-server: the one a killed benchmark started died with it, streams and all.
pub async fn remove_leftovers(mut base: Settings, options: &Options, prefix: &str) -> anyhow::Result<String> {
    let url = options.nats_url.as_deref().context("--remove-leftovers needs --nats-url")?;
    anyhow::ensure!(nats::reachable(url), "{} does not answer", tiendo_settings::redact_url(url));
    base.nats.url = url.into();
    if let Some(database) = &options.database_url {
        anyhow::ensure!(
            database.starts_with("postgres://") || database.starts_with("postgresql://"),
            "--database-url takes a PostgreSQL URL: a benchmark's SQLite files are in temporary folders"
        );
    }
    remove_named(&base.nats, options.database_url.as_deref(), prefix).await
}

/// Deletes the streams and drops the PostgreSQL databases (when `postgres_admin` is given)
/// whose names start with `prefix`. Says what it removed.
async fn remove_named(nats: &NatsSettings, postgres_admin: Option<&str>, prefix: &str) -> anyhow::Result<String> {
    let bus = Bus::connect(nats, "tiendo-bench").await?;
    let mut streams = 0;
    for name in namespace::streams_named(&bus, prefix).await? {
        bus.js.delete_stream(&name).await.with_context(|| format!("deleting stream {name}"))?;
        streams += 1;
    }
    let mut databases = 0;
    if let Some(admin_url) = postgres_admin {
        let admin = sea_orm::Database::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {}", tiendo_settings::redact_url(admin_url)))?;
        for name in namespace::databases_named(&admin, prefix).await? {
            namespace::drop_database(&admin, &name).await.with_context(|| format!("dropping database {name}"))?;
            databases += 1;
        }
        admin.close().await.ok();
    }
    Ok(format!("{streams} streams and {databases} databases"))
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
    _local: Option<NatsServer>,
}

impl Environment {
    /// Uses `--nats-url` when it answers, else starts a private nats-server; checks that
    /// `--database-url`, if given, is a PostgreSQL server that answers.
    pub async fn open(mut base: Settings, options: &Options) -> anyhow::Result<Self> {
        let (nats, local) = match &options.nats_url {
            Some(url) if nats::reachable(url) => {
                base.nats.url = url.as_str().into();
                (format!("given, {}", base.nats.url), None)
            }
            requested => {
                let local = NatsServer::start().await?;
                base.nats.url = local.url().into();
                let why = match requested {
                    Some(url) => format!("{} did not answer", tiendo_settings::redact_url(url)),
                    None => "no --nats-url".to_owned(),
                };
                (format!("private nats-server at {} ({why})", local.url()), Some(local))
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

    /// What the name of every namespace (subject prefix, PostgreSQL database) of this
    /// benchmark starts with, and no other's: `bench_<time>_<process id>_`.
    pub fn namespace_prefix(&self) -> String {
        format!("bench_{}_", self.stamp)
    }

    /// Removes what this benchmark's namespaces left on the servers: their streams and, on
    /// PostgreSQL, their databases (names starting with [`Environment::namespace_prefix`]).
    /// For a run abandoned half way (a run that ends closes its own namespace). Says what it
    /// removed.
    pub async fn sweep(&self) -> anyhow::Result<String> {
        remove_named(&self.base.nats, self.postgres_admin.as_deref(), &self.namespace_prefix()).await
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

    /// A fresh namespace for `run` of `part` on the benchmark's database; `country`'s catalog
    /// when given, else the built-in one. `tag` tells namespaces of the same run apart (e.g.
    /// a tree size).
    pub async fn namespace(
        &self,
        part: Part,
        run: usize,
        tag: &str,
        country: Option<&Country>,
    ) -> anyhow::Result<Namespace> {
        self.namespace_on(self.database_kind(), part, run, tag, country).await
    }

    /// As [`Environment::namespace`], on `database`: SQLite is always at hand, PostgreSQL
    /// only with `--database-url`.
    pub async fn namespace_on(
        &self,
        database: DatabaseKind,
        part: Part,
        run: usize,
        tag: &str,
        country: Option<&Country>,
    ) -> anyhow::Result<Namespace> {
        let name = format!("{}{}{tag}_{run}", self.namespace_prefix(), part.name());
        let admin = match database {
            DatabaseKind::Sqlite => None,
            DatabaseKind::Postgres => Some(self.postgres_admin.as_deref().context("PostgreSQL needs --database-url")?),
        };
        let mut inner = tiendo_testkit::Namespace::create(self.base.clone(), &name, admin).await?;
        if let Some(country) = country {
            inner.use_catalog(&country.catalog_toml())?;
        }
        let bus = Bus::connect(&inner.settings.nats, "tiendo-bench").await?;
        Ok(Namespace { inner, bus })
    }
}

/// One run's prefix, database and catalog (a testkit namespace), with the benchmark's own
/// connection to NATS.
pub struct Namespace {
    inner: tiendo_testkit::Namespace,
    /// The benchmark's connection, as a department (or an operator) would have.
    pub bus: Bus,
}

impl Deref for Namespace {
    type Target = tiendo_testkit::Namespace;

    fn deref(&self) -> &tiendo_testkit::Namespace {
        &self.inner
    }
}

impl Namespace {
    /// Deletes the namespace's streams and drops its PostgreSQL database.
    pub async fn close(self) {
        self.inner.close(&self.bus).await;
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
