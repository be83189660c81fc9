//! Instance scaling: end-to-end throughput of the batched workload with 1, 2 and 4 (`--instances`)
//! aggregation processes sharing one PostgreSQL database and one durable consumer. On SQLite
//! (one writer) the part is skipped with a note.
//!
//! Every service is its own process (the `tiendo-<service>` binaries in `--service-binaries`,
//! started on the namespace's settings, see [`process`]): ingest, validation and alerting
//! once, aggregation `n` times, each count in a fresh namespace. The figure is the clock to
//! aggregation (alerting stays one process, so through alerting it would measure alerting);
//! the notes give both clocks.
//!
//! [`process`]: super::process

use tiendo_bus::names::service;

use super::options::{Options, Part};
use super::process::Child;
use super::report::{Report, Sample};
use super::target::{DatabaseKind, Environment, Namespace};
use super::throughput;
use super::workload::{self, Country, Workload};
use super::Measured;

/// Keys of the per-count figures: this, then the number of aggregation processes.
const KEY: &str = "scale_out_obs_per_s_";

/// One run of [`Part::Instances`]: every count of aggregation processes in turn.
pub async fn run(
    env: &Environment,
    options: &Options,
    run: usize,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let mut measured = Measured::default();
    if env.database_kind() != DatabaseKind::Postgres {
        measured.notes.push("skipped: instances share a database only on PostgreSQL (--database-url)".to_owned());
        return Ok(measured);
    }
    for &n in &options.instances {
        let ns = env.namespace(Part::Instances, run, &n.to_string(), Some(country)).await?;
        let result = measure(&ns, options, n, country, workload).await;
        ns.close().await;
        let (sample, note) = result?;
        measured.samples.push(sample);
        measured.notes.push(note);
    }
    Ok(measured)
}

async fn measure(
    ns: &Namespace,
    options: &Options,
    n: usize,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<(Sample, String)> {
    // Migrated before any service starts, so the services never race to migrate it.
    let db = ns.database().await?;
    let mut fleet = Vec::new();
    let result = async {
        let services = [service::INGEST, service::VALIDATION, service::ALERTING]
            .into_iter()
            .map(|s| (s, s.to_owned()))
            .chain((1..=n).map(|i| (service::AGGREGATION, format!("{}-{i}", service::AGGREGATION))));
        // One at a time, so no two create the same stream or consumer at once.
        for (service, name) in services {
            let binary = options.service_binaries.join(format!("tiendo-{service}"));
            let mut child = Child::spawn(ns, &binary, options.config.as_deref(), &[], name)?;
            child.wait_ready().await?;
            fleet.push(child);
        }
        let outgoing = workload::messages(&ns.bus.names, country, &workload.observations, options.batch);
        let messages = outgoing.len();
        let pushed = throughput::push(ns, &db, outgoing, workload.distinct, options.timeout, || {
            fleet.iter_mut().try_for_each(Child::check_running)
        })
        .await?;
        let count = workload.observations.len();
        let per_s = count as f64 / pushed.to_aggregation.as_secs_f64();
        let label = format!("to aggregation, {} obs per message, {n} aggregation process(es)", options.batch);
        let note = format!("{n} aggregation process(es): {}", pushed.describe(count, messages));
        anyhow::Ok((Sample::new(format!("{KEY}{n}"), label, "obs/s", per_s), note))
    }
    .await;
    for child in fleet {
        child.stop().await;
    }
    db.close().await.ok();
    result
}

/// Adds each count's median over one process's (`scale_out_ratio_<n>_to_1`).
pub fn derive(report: &mut Report) {
    let counts: Vec<(usize, f64)> = report
        .figures
        .iter()
        .filter_map(|f| f.key.strip_prefix(KEY).and_then(|n| n.parse().ok()).map(|n: usize| (n, f.median)))
        .collect();
    let Some(&(_, one)) = counts.iter().find(|(n, _)| *n == 1) else { return };
    for &(n, per_s) in counts.iter().filter(|(n, _)| *n != 1) {
        let label = format!("to aggregation, {n} aggregation processes / 1");
        report.derive(&format!("scale_out_ratio_{n}_to_1"), &label, "ratio", per_s / one);
    }
}
