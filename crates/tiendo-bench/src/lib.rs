//! `tiendo-bench` (also `tiendo bench`): how fast the pipeline goes, measured the same way
//! every time.
//!
//! Seven parts, each run `--runs` times (every figure is the median), each run in a
//! namespace of its own (subject prefix, database, catalog) that is removed afterwards: the
//! JetStream ceiling, end-to-end throughput one observation per message and in arrays
//! (through alerting, and to aggregation), latency at a steady load, aggregation cost as the
//! tree grows, throughput with 1, 2 and 4 aggregation processes (PostgreSQL), and the memory
//! of a real `tiendo up` process. `docs/performance.md` says what each figure means, where
//! each clock starts and stops, and the targets.
//!
//! The benchmark only drives and watches the pipeline from outside (publishing as departments
//! do, reading the database and the consumers' state); it never changes how a service works.
//!
//! # Layout
//! - [`options`]: the flags ([`Args`]) and the plan they resolve to ([`Options`]).
//! - [`workload`]: the synthetic country (catalog TOML) and observation streams.
//! - [`target`]: the NATS server and, per run, a namespace of the test kit's
//!   ([`target::Namespace`]: a fresh prefix, database and catalog) and the services in-process.
//! - [`progress`]: when each stage caught up, and the two end-to-end clocks (to aggregation,
//!   through alerting).
//! - [`process`]: tiendo binaries as child processes on a namespace.
//! - [`ceiling`], [`throughput`], [`latency`], [`scale`], [`instances`], [`memory`]: the parts.
//! - [`report`]: medians, targets, the table and the JSON file.

pub mod ceiling;
pub mod cpu;
pub mod instances;
pub mod latency;
pub mod memory;
pub mod options;
pub mod process;
pub mod progress;
pub mod report;
pub mod scale;
pub mod target;
pub mod throughput;
pub mod workload;

use std::io::Write;
use std::time::Instant;

use serde_json::json;
use tiendo_settings::Settings;

pub use options::{Args, Options, Part};
pub use report::Report;

/// `tiendo-bench --version`: the package's version and the commit the binary was built
/// from, as reports name it ([`report::commit`]).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TIENDO_BUILD_COMMIT"), ")");

use report::{number, Sample};
use target::Environment;
use workload::{Country, Workload};

/// Units of the synthetic country the pipeline parts run on: a few hundred, so figures
/// spread over many keys as a real province's do.
pub const COUNTRY_UNITS: usize = 400;

/// What one run of one part measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub samples: Vec<Sample>,
    /// Details in words: phase timings, anything odd.
    pub notes: Vec<String>,
}

/// `tiendo bench`: runs every part, prints the table and writes the JSON file. Fails after
/// writing them if a part failed.
pub async fn main(settings: Settings, options: &Options, out: &mut (impl Write + Send)) -> anyhow::Result<()> {
    main_until(settings, options, out, std::future::pending()).await
}

/// As [`main`], abandoned when `stop` resolves (the binary passes Ctrl-C and SIGTERM): the
/// run in hand is dropped (its child processes are killed, its temporary folder removed),
/// then the streams and PostgreSQL databases of this benchmark's namespaces are removed, and
/// it fails without writing the table or the JSON file. With `--remove-leftovers` it measures
/// nothing: it removes what a killed benchmark left and says what.
pub async fn main_until(
    settings: Settings,
    options: &Options,
    out: &mut (impl Write + Send),
    stop: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    if let Some(prefix) = &options.remove_leftovers {
        let removed = target::remove_leftovers(settings, options, prefix).await?;
        writeln!(out, "removed {removed} named {prefix}*")?;
        return Ok(());
    }
    let report = run(settings, options, out, stop).await?;
    writeln!(out, "\n{}", report.table())?;
    report.write_json(&options.json)?;
    writeln!(out, "figures written to {}", options.json.display())?;
    anyhow::ensure!(
        report.failures.is_empty(),
        "{} part(s) failed: {}",
        report.failures.len(),
        report.failures.join("; ")
    );
    Ok(())
}

/// Runs every part of `options`, printing progress to `out`, until `stop` resolves (see
/// [`main_until`]). A part that fails is recorded in [`Report::failures`] and the others
/// still run.
pub async fn run(
    settings: Settings,
    options: &Options,
    out: &mut (impl Write + Send),
    stop: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<Report> {
    let mut stop = std::pin::pin!(stop);
    let pipeline_batch = settings.pipeline.batch_size;
    let env = Environment::open(settings, options).await?;
    let cores = cpu::cores();
    let mut report =
        Report::new(report::commit(), cores, env.database_kind(), env.nats.clone(), options.runs, options.smoke);
    let inputs = Inputs::generate(options);
    report.sizes = inputs.sizes(options, pipeline_batch);
    writeln!(
        out,
        "tiendo bench: {} run(s) of {}; NATS: {}; database: {}; namespaces {}*",
        options.runs,
        options.parts.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
        env.nats,
        env.database_kind().as_str(),
        env.namespace_prefix(),
    )?;
    for &part in &options.parts {
        for run in 1..=options.runs {
            writeln!(out, "{} run {run}/{} …", part.name(), options.runs)?;
            out.flush()?;
            let started = Instant::now();
            let measured = tokio::select! {
                biased;
                () = &mut stop => {
                    writeln!(out, "  interrupted: removing this benchmark's streams and databases")?;
                    let removed = env.sweep().await?;
                    anyhow::bail!("interrupted during {} run {run}; removed {removed}", part.name());
                }
                measured = run_once(&env, options, &inputs, part, run) => measured,
            };
            let measured = match measured {
                Ok(m) => m,
                Err(e) => {
                    writeln!(out, "  FAILED: {e:#}")?;
                    report.failures.push(format!("{} run {run}: {e:#}", part.name()));
                    break;
                }
            };
            for s in &measured.samples {
                writeln!(out, "  {}: {} {}", s.label, number(s.value), s.unit)?;
            }
            for n in &measured.notes {
                writeln!(out, "  {n}")?;
                report.notes.push(format!("{} run {run}: {n}", part.name()));
            }
            writeln!(out, "  ({:.1} s)", started.elapsed().as_secs_f64())?;
            measured.samples.into_iter().for_each(|s| report.add(s));
        }
    }
    derive(&mut report);
    Ok(report)
}

/// One run of one part.
async fn run_once(
    env: &Environment,
    options: &Options,
    inputs: &Inputs,
    part: Part,
    run: usize,
) -> anyhow::Result<Measured> {
    let country = &inputs.country;
    match part {
        Part::Ceiling => ceiling::run(env, run, country, &inputs.workload).await,
        Part::Single | Part::Batched => throughput::run(env, options, part, run, country, &inputs.workload).await,
        Part::Latency => latency::run(env, options, run, country).await,
        Part::Scale => scale::run(env, options, run).await,
        Part::Instances => instances::run(env, options, run, country, &inputs.workload).await,
        Part::Memory => memory::run(env, options, run, country, &inputs.memory).await,
    }
}

/// The synthetic country and the observation streams, generated once for every run; a
/// stream no chosen part needs is left empty.
struct Inputs {
    country: Country,
    /// For the ceiling, the end-to-end and the instances parts.
    workload: Workload,
    /// For the memory part.
    memory: Workload,
}

impl Inputs {
    fn generate(options: &Options) -> Self {
        let country = Country::with_about(COUNTRY_UNITS);
        let wants = |parts: &[Part]| options.parts.iter().any(|p| parts.contains(p));
        let size = |n: u64, parts: &[Part]| if wants(parts) { n } else { 0 };
        let end_to_end = [Part::Ceiling, Part::Single, Part::Batched, Part::Instances];
        let workload = workload::mixed(&country, size(options.observations, &end_to_end), 1);
        let memory = workload::mixed(&country, size(options.memory_observations, &[Part::Memory]), 2);
        Self { country, workload, memory }
    }

    /// Every size the benchmark used, for the JSON file.
    fn sizes(&self, options: &Options, pipeline_batch: usize) -> serde_json::Value {
        json!({
            "country_units": self.country.units(),
            "country_communes": self.country.leaves(),
            "indicators": workload::INDICATORS,
            "periods": workload::MONTHS,
            "revision_share": workload::REVISIONS,
            "duplicate_share": workload::DUPLICATES,
            "observations": options.observations,
            "distinct_event_ids": self.workload.distinct,
            "batch": options.batch,
            "latency_rate": options.latency_rate,
            "latency_secs": options.latency_secs,
            "scale_units": options.scale_sizes.iter().map(|&s| Country::with_about(s).units()).collect::<Vec<_>>(),
            "scale_observations": options.scale_observations,
            "scale_batch": options.scale_batch,
            "instances": options.instances,
            "also_sqlite": options.also_sqlite,
            "memory_observations": options.memory_observations,
            "pipeline_batch_size": pipeline_batch,
        })
    }
}

/// Figures computed from other figures' medians.
fn derive(report: &mut Report) {
    let median = |r: &Report, key: &str| r.figure(key).map(|f| f.median);
    let ratios = [
        (
            "single_ratio_to_ceiling",
            "single_obs_per_s",
            "ceiling_obs_per_s",
            "through alerting, 1 obs per message / ceiling",
        ),
        ("batched_ratio_to_ceiling", "batched_obs_per_s", "ceiling_obs_per_s", "through alerting, batched / ceiling"),
        (
            "single_cpu_bound_ratio_to_ceiling",
            "single_cpu_bound_obs_per_s",
            "ceiling_obs_per_s",
            "the most the cores allow, 1 obs per message / ceiling",
        ),
        (
            "batched_cpu_bound_ratio_to_ceiling",
            "batched_cpu_bound_obs_per_s",
            "ceiling_obs_per_s",
            "the most the cores allow, batched / ceiling",
        ),
        (
            "batched_postgres_to_sqlite",
            "batched_obs_per_s",
            "batched_sqlite_obs_per_s",
            "through alerting, batched, PostgreSQL / SQLite",
        ),
    ];
    for (key, over, under, label) in ratios {
        if let (Some(a), Some(b)) = (median(report, over), median(report, under)) {
            report.derive(key, label, "ratio", a / b);
        }
    }
    scale::derive(report);
    instances::derive(report);
}
