//! Starting a tiendo binary as a child process on a namespace: the settings it needs, as the
//! `TIENDO__…` environment variables it reads.

use std::net::SocketAddr;

use tiendo_settings::{env_var, ExposeSecret as _, Settings};

/// The environment that points a tiendo process at `settings`' NATS server(s), prefix, replicas,
/// database, catalog and pipeline limits, with its HTTP endpoints on `http`.
pub fn env(settings: &Settings, http: SocketAddr) -> Vec<(String, String)> {
    let p = &settings.pipeline;
    let mut vars = vec![
        (env_var("nats.url"), settings.nats.url.expose().to_owned()),
        (env_var("nats.prefix"), settings.nats.prefix.clone()),
        (env_var("nats.replicas"), settings.nats.replicas.to_string()),
        (env_var("database.url"), settings.database.url.expose().to_owned()),
        (env_var("http.listen"), http.to_string()),
        (env_var("pipeline.batch_size"), p.batch_size.to_string()),
        (env_var("pipeline.ack_wait_secs"), p.ack_wait_secs.to_string()),
        (env_var("pipeline.max_deliver"), p.max_deliver.to_string()),
        (env_var("pipeline.retention_days"), p.retention_days.to_string()),
        (env_var("aggregation.partitioned"), settings.aggregation.partitioned.to_string()),
        (env_var("aggregation.instances"), settings.aggregation.instances.to_string()),
        (env_var("aggregation.instance"), settings.aggregation.instance.to_string()),
        (env_var("alerting.min_coverage"), settings.alerting.min_coverage.to_string()),
    ];
    if let Some(user) = &settings.nats.user {
        vars.push((env_var("nats.user"), user.clone()));
    }
    if let Some(password) = &settings.nats.password {
        vars.push((env_var("nats.password"), password.expose_secret().to_owned()));
    }
    if let Some(catalog) = &settings.catalog.path {
        vars.push((env_var("catalog.path"), catalog.display().to_string()));
    }
    vars
}
