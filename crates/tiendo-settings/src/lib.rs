//! Settings for every tiendo service and command.
//!
//! Layers, later ones winning: built-in defaults, then an optional TOML file (`tiendo.toml` in
//! the working directory, or the path given with `--config`), then environment variables named
//! `TIENDO__<SECTION>__<KEY>` (for example `TIENDO__NATS__URL`). Unknown keys are errors, so a
//! typo never silently falls back to a default. Loading has no side effects.
//!
//! The keys are a wire contract with operators: README.md ("Settings") lists each one.
//!
//! Secrets are typed: a password is a [`SecretString`] and a URL that may carry credentials a
//! [`SecretUrl`], so `Debug` and `Display` hide them whatever struct holds them.
//!
//! # Layout
//! - [`Settings`] and its sections, with their defaults in [`Settings::load`].
//! - [`SecretUrl`] and [`redact_url`]: a URL whose password never reaches output.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
pub use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Environment variable prefix.
pub const ENV_PREFIX: &str = "TIENDO";
/// Separator between the prefix, section and key in environment variable names.
pub const ENV_SEPARATOR: &str = "__";
/// Settings file read from the working directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "tiendo.toml";

/// The environment variable that sets `key` (`nats.url` → `TIENDO__NATS__URL`).
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{ENV_SEPARATOR}{}", key.replace('.', ENV_SEPARATOR).to_uppercase())
}

/// Every setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub catalog: CatalogSettings,
    pub pipeline: PipelineSettings,
    pub aggregation: AggregationSettings,
    pub alerting: AlertingSettings,
}

/// The message bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URL(s), comma separated: the seed list of a cluster.
    pub url: SecretUrl,
    /// Copies JetStream keeps of each stream tiendo creates (1..=5): 1 on a single server,
    /// 3 on a cluster of three, so a stream survives the loss of one node.
    pub replicas: usize,
    /// Prefix of every subject, stream and consumer name (`[A-Za-z0-9_-]`), so several
    /// provinces or test runs share one server without seeing each other.
    pub prefix: String,
    /// Optional user and password.
    pub user: Option<String>,
    pub password: Option<SecretString>,
    /// Optional NATS credentials file (JWT + nkey seed).
    pub credentials_file: Option<PathBuf>,
    /// Subject prefix of this client's reply inboxes (default `_INBOX`). A department sets
    /// its own (`_INBOX_dic`), so the server can let it read its replies and no one else's.
    pub inbox_prefix: Option<String>,
    /// Require TLS to the server.
    pub tls_required: bool,
    /// PEM file of the certificate authority that signed the server's certificate.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

/// The database: SQLite (`sqlite://path?mode=rwc`) or PostgreSQL (`postgres://…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretUrl,
    /// Pool size. SQLite always uses one connection: it has a single writer anyway.
    pub max_connections: u32,
}

/// The HTTP endpoints: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
}

/// The indicator catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// A catalog TOML file; absent means the built-in An Giang catalog.
    pub path: Option<PathBuf>,
}

/// How consumers pull and retry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Most messages a consumer handles in one batch (one database transaction).
    pub batch_size: usize,
    /// Seconds before an unacknowledged message is delivered again.
    pub ack_wait_secs: u64,
    /// Failed attempts at one message before it is given up and dead-lettered (holding it
    /// through an outage is no attempt).
    pub max_deliver: i64,
    /// Days the streams keep messages.
    pub retention_days: u64,
}

/// How aggregation instances share the work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregationSettings {
    /// false: every instance reads one shared consumer (`aggregation`), and instances that
    /// write the same figures at once conflict. true: one consumer per indicator
    /// (`aggregation-<indicator>`), and this instance reads only the indicators it owns, so
    /// instances never write the same figures.
    pub partitioned: bool,
    /// When partitioned: how many instances share the indicators (all with the same catalog).
    pub instances: u32,
    /// When partitioned: which of them this one is (1..=instances).
    pub instance: u32,
}

/// How alerting judges.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingSettings {
    /// Before a period's due date, a roll-up is judged only once this share of the reports it
    /// depends on is in (0..1; 1: all of them); until then it is `incomplete`.
    pub min_coverage: f64,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings: {0}")]
    Config(#[from] config::ConfigError),
    #[error("settings: nats.prefix `{0}` may contain only letters, digits, `_` and `-`")]
    Prefix(String),
    #[error("settings: alerting.min_coverage must be within 0..1, got {0}")]
    Coverage(f64),
    #[error("settings: aggregation.instance must be within 1..=aggregation.instances, got {instance} of {instances}")]
    Instance { instance: u32, instances: u32 },
    #[error("settings: aggregation.instances is {0}, but only a partitioned aggregation (aggregation.partitioned = true) shares its work out")]
    Unpartitioned(u32),
    #[error("settings: nats.replicas must be within 1..=5 (JetStream's limit), got {0}")]
    Replicas(usize),
}

impl Settings {
    /// Loads defaults, then `file` (or `tiendo.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(file, Environment::with_prefix(ENV_PREFIX).separator(ENV_SEPARATOR))
    }

    /// Defaults and `file` only, ignoring the environment: for tests and tools that must not
    /// pick up an operator's variables.
    pub fn defaults() -> Self {
        Self::builder().build().and_then(Config::try_deserialize).expect("built-in defaults are valid")
    }

    fn builder() -> config::ConfigBuilder<config::builder::DefaultState> {
        let set = |b: config::ConfigBuilder<_>, k: &str, v: config::Value| b.set_default(k, v).expect("static key");
        let mut b = Config::builder();
        b = set(b, "nats.url", "nats://127.0.0.1:4222".into());
        b = set(b, "nats.prefix", "tiendo".into());
        b = set(b, "nats.replicas", 1.into());
        b = set(b, "nats.tls_required", false.into());
        b = set(b, "database.url", "sqlite://tiendo.db?mode=rwc".into());
        b = set(b, "database.max_connections", 8.into());
        b = set(b, "http.listen", "127.0.0.1:9464".into());
        b = set(b, "catalog.path", config::Value::from(Option::<String>::None));
        b = set(b, "pipeline.batch_size", 512.into());
        b = set(b, "pipeline.ack_wait_secs", 30.into());
        b = set(b, "pipeline.max_deliver", 10.into());
        b = set(b, "pipeline.retention_days", 400.into());
        b = set(b, "aggregation.partitioned", false.into());
        b = set(b, "aggregation.instances", 1.into());
        b = set(b, "aggregation.instance", 1.into());
        b = set(b, "alerting.min_coverage", 1.0.into());
        b
    }

    fn load_from(file: Option<&Path>, env: Environment) -> Result<Self, SettingsError> {
        let mut b = Self::builder();
        b = match file {
            Some(path) => b.add_source(File::from(path).format(FileFormat::Toml).required(true)),
            None => b.add_source(File::new(DEFAULT_FILE, FileFormat::Toml).required(false)),
        };
        let settings: Settings = b.add_source(env.try_parsing(true)).build()?.try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let p = &self.nats.prefix;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(SettingsError::Prefix(p.clone()));
        }
        if !(1..=5).contains(&self.nats.replicas) {
            return Err(SettingsError::Replicas(self.nats.replicas));
        }
        let a = &self.aggregation;
        if !(1..=a.instances).contains(&a.instance) {
            return Err(SettingsError::Instance { instance: a.instance, instances: a.instances });
        }
        if !a.partitioned && a.instances != 1 {
            return Err(SettingsError::Unpartitioned(a.instances));
        }
        let c = self.alerting.min_coverage;
        if !(0.0..=1.0).contains(&c) {
            return Err(SettingsError::Coverage(c));
        }
        Ok(())
    }
}

/// A URL that may carry a password (`postgres://user:secret@host/db`, `nats://u:p@host`, or a
/// comma-separated list of them). `Debug` and `Display` show it with every password
/// replaced; only [`SecretUrl::expose`] gives the real text, for connecting.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL as given, password included: for connecting, never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with every password replaced by `<redacted>`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl From<String> for SecretUrl {
    fn from(s: String) -> Self {
        SecretUrl(s)
    }
}

impl From<&str> for SecretUrl {
    fn from(s: &str) -> Self {
        SecretUrl(s.to_owned())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://user:secret@host` → `scheme://user:<redacted>@host`, for each URL of a
/// comma-separated list.
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!("{}{}:<redacted>{}", &url[..scheme_end + 3], &userinfo[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Environment {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Environment::with_prefix(ENV_PREFIX).separator(ENV_SEPARATOR).source(Some(map))
    }

    #[test]
    fn defaults_are_embedded_sqlite_and_local_nats() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.nats.url.expose(), "nats://127.0.0.1:4222");
        assert_eq!(s.nats.prefix, "tiendo");
        assert!(s.database.url.expose().starts_with("sqlite://"));
        assert!(s.catalog.path.is_none());
        assert!(s.http.listen.ip().is_loopback(), "metrics and health are not exposed beyond this host by default");
        assert!(!s.nats.tls_required);
        assert_eq!(s.nats.replicas, 1, "one copy: what a single server can keep");
    }

    #[test]
    fn environment_variables_override_with_double_underscores() {
        let s = Settings::load_from(
            None,
            env(&[
                ("TIENDO__NATS__PREFIX", "t1"),
                ("TIENDO__HTTP__LISTEN", "127.0.0.1:0"),
                ("TIENDO__PIPELINE__BATCH_SIZE", "7"),
            ]),
        )
        .unwrap();
        assert_eq!((s.nats.prefix.as_str(), s.http.listen.port(), s.pipeline.batch_size), ("t1", 0, 7));
    }

    #[test]
    fn each_key_has_its_environment_variable() {
        assert_eq!(env_var("nats.url"), "TIENDO__NATS__URL");
        assert_eq!(env_var("pipeline.ack_wait_secs"), "TIENDO__PIPELINE__ACK_WAIT_SECS");
        let s = Settings::load_from(None, env(&[(&env_var("pipeline.max_deliver"), "3")])).unwrap();
        assert_eq!(s.pipeline.max_deliver, 3);
    }

    #[test]
    fn a_misspelt_key_is_an_error_not_a_default() {
        assert!(Settings::load_from(None, env(&[("TIENDO__NATS__URLL", "x")])).is_err());
        assert!(Settings::load_from(None, env(&[("TIENDO__NATS__PREFIX", "a.b")])).is_err());
        assert!(Settings::load_from(None, env(&[("TIENDO__ALERTING__MIN_COVERAGE", "1.5")])).is_err());
    }

    #[test]
    fn replicas_are_between_one_and_five() {
        let replicas = |v: &str| Settings::load_from(None, env(&[("TIENDO__NATS__REPLICAS", v)]));
        assert_eq!(replicas("3").unwrap().nats.replicas, 3);
        assert_eq!(replicas("5").unwrap().nats.replicas, 5);
        assert!(matches!(replicas("0"), Err(SettingsError::Replicas(0))));
        assert!(matches!(replicas("6"), Err(SettingsError::Replicas(6))));
        assert!(matches!(replicas("-1"), Err(SettingsError::Config(_))));
    }

    #[test]
    fn an_aggregation_instance_is_one_of_the_partitioned_instances() {
        let load = |vars: &[(&str, &str)]| Settings::load_from(None, env(vars));
        let s = load(&[]).unwrap();
        assert_eq!((s.aggregation.partitioned, s.aggregation.instances, s.aggregation.instance), (false, 1, 1));
        let share = [
            ("TIENDO__AGGREGATION__PARTITIONED", "true"),
            ("TIENDO__AGGREGATION__INSTANCES", "3"),
            ("TIENDO__AGGREGATION__INSTANCE", "3"),
        ];
        let s = load(&share).unwrap();
        assert_eq!((s.aggregation.partitioned, s.aggregation.instances, s.aggregation.instance), (true, 3, 3));
        let beyond = [share[0], share[1], ("TIENDO__AGGREGATION__INSTANCE", "4")];
        assert!(matches!(load(&beyond), Err(SettingsError::Instance { instance: 4, instances: 3 })));
        let zero = [share[0], share[1], ("TIENDO__AGGREGATION__INSTANCE", "0")];
        assert!(matches!(load(&zero), Err(SettingsError::Instance { instance: 0, instances: 3 })));
        let shared = [("TIENDO__AGGREGATION__INSTANCES", "2")];
        assert!(matches!(load(&shared), Err(SettingsError::Unpartitioned(2))), "sharing out needs partitions");
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let mut s = Settings::defaults();
        s.database.url = "postgres://tiendo:hunter2@db:5432/tiendo".into();
        s.nats.password = Some("hunter3".into());
        s.nats.url = "nats://a:hunter4@n1:4222,nats://b:hunter5@n2:4222".into();
        let shown = format!("{s:?}");
        for secret in ["hunter2", "hunter3", "hunter4", "hunter5"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(!s.nats.url.to_string().contains("hunter4"), "Display hides it too");
        assert!(shown.contains("postgres://tiendo:<redacted>@db:5432/tiendo"));
    }
}
