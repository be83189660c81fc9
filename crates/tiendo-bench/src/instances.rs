//! Instance scaling: end-to-end throughput of the batched workload with 1, 2 and 4 (`--instances`)
//! aggregation processes sharing one PostgreSQL database, partitioned (`aggregation.partitioned`:
//! each process owns a share of the indicators, one consumer per indicator); and, for
//! reference, one process reading the one shared consumer (`scale_out_shared_obs_per_s_1`, the
//! default mode). On SQLite (one writer) the part is skipped with a note.
//!
//! Every service is its own process (the `tiendo-<service>` binaries in `--service-binaries`,
//! started on the namespace's settings, see [`process`]): ingest, validation and alerting
//! once, aggregation once (shared) or `n` times (partitioned), each in a fresh namespace.
//! The figure is the clock to aggregation (alerting stays one process, so through alerting
//! it would measure alerting); the notes give both clocks.
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
/// Key of the reference figure: one process, one shared consumer.
const SHARED: &str = "scale_out_shared_obs_per_s_1";

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
    let counts = std::iter::once((1, false)).chain(options.instances.iter().map(|&n| (n, true)));
    for (n, partitioned) in counts {
        let tag = if partitioned { n.to_string() } else { "shared".to_owned() };
        let ns = env.namespace(Part::Instances, run, &tag, Some(country)).await?;
        let result = measure(&ns, options, n, partitioned, country, workload).await;
        ns.close().await;
        let (sample, note) = result?;
        measured.samples.push(sample);
        measured.notes.push(note);
    }
    Ok(measured)
}

/// The settings of aggregation process `i` of `n`.
fn share(i: usize, n: usize, partitioned: bool) -> Vec<(String, String)> {
    use tiendo_settings::env_var;
    vec![
        (env_var("aggregation.partitioned"), partitioned.to_string()),
        (env_var("aggregation.instances"), n.to_string()),
        (env_var("aggregation.instance"), i.to_string()),
    ]
}

async fn measure(
    ns: &Namespace,
    options: &Options,
    n: usize,
    partitioned: bool,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<(Sample, String)> {
    // Migrated before any service starts, so the services never race to migrate it.
    let db = ns.database().await?;
    let mut fleet = Vec::new();
    let result = async {
        let services = [service::INGEST, service::VALIDATION, service::ALERTING]
            .into_iter()
            .map(|s| (s, s.to_owned(), vec![]))
            .chain(
                (1..=n)
                    .map(|i| (service::AGGREGATION, format!("{}-{i}", service::AGGREGATION), share(i, n, partitioned))),
            );
        // One at a time, so no two create the same stream or consumer at once.
        for (service, name, settings) in services {
            let binary = options.service_binaries.join(format!("tiendo-{service}"));
            let mut child = Child::spawn(ns, &binary, options.config.as_deref(), &[], &settings, name)?;
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
        let (key, mode) =
            if partitioned { (format!("{KEY}{n}"), "partitioned") } else { (SHARED.to_owned(), "one shared consumer") };
        let label = format!("to aggregation, {} obs per message, {n} aggregation process(es), {mode}", options.batch);
        let note = format!("{n} aggregation process(es), {mode}: {}", pushed.describe(count, messages));
        anyhow::Ok((Sample::new(key, label, "obs/s", per_s), note))
    }
    .await;
    for child in fleet {
        child.stop().await;
    }
    db.close().await.ok();
    result
}

/// Adds each count's median over one partitioned process's (`scale_out_ratio_<n>_to_1`), and
/// one partitioned process's over one reading the shared consumer
/// (`scale_out_partitioned_to_shared_1`).
pub fn derive(report: &mut Report) {
    let counts: Vec<(usize, f64)> = report
        .figures
        .iter()
        .filter_map(|f| f.key.strip_prefix(KEY).and_then(|n| n.parse().ok()).map(|n: usize| (n, f.median)))
        .collect();
    let Some(&(_, one)) = counts.iter().find(|(n, _)| *n == 1) else { return };
    if let Some(shared) = report.figures.iter().find(|f| f.key == SHARED).map(|f| f.median) {
        report.derive(
            "scale_out_partitioned_to_shared_1",
            "to aggregation, 1 process: partitioned / shared",
            "ratio",
            one / shared,
        );
    }
    for &(n, per_s) in counts.iter().filter(|(n, _)| *n != 1) {
        let label = format!("to aggregation, {n} partitioned aggregation processes / 1");
        report.derive(&format!("scale_out_ratio_{n}_to_1"), &label, "ratio", per_s / one);
    }
}
