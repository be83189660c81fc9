//! End-to-end throughput: observations per second from the first publish until alerting has
//! judged every figure and every announcement is published (the headline figures), and until
//! aggregation had applied the last observation (figures `…_to_aggregation_…`), with the
//! four services running in this process (`tiendo up`), one observation per message or JSON
//! arrays of them. [`progress`] says where each clock stops.
//!
//! [`push`] is the measuring loop, shared with the instances part (services as processes)
//! and the memory part (a `tiendo up` child process).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tiendo_bus::Outgoing;
use tiendo_proto::v1::Rejection;
use tiendo_store::sea_orm::DatabaseConnection;
use tiendo_testkit::Collector;

use super::cpu::{self, Spent};
use super::options::{Options, Part};
use super::progress::{self, Phases};
use super::report::{number, Sample};
use super::target::{DatabaseKind, Environment, Namespace, Services};
use super::workload::{self, Country, Workload};
use super::Measured;

/// One run of [`Part::Single`] or [`Part::Batched`] on `workload`; with `--also-sqlite`, the
/// batched part measures on SQLite too.
pub async fn run(
    env: &Environment,
    options: &Options,
    part: Part,
    run: usize,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let mut measured = measure_on(env, env.database_kind(), options, part, run, country, workload).await?;
    if part == Part::Batched && options.also_sqlite && env.database_kind() != DatabaseKind::Sqlite {
        let sqlite = measure_on(env, DatabaseKind::Sqlite, options, part, run, country, workload).await?;
        let per_s = sqlite.samples.iter().find(|s| s.key == key(part, "")).map_or(f64::NAN, |s| s.value);
        measured.samples.push(Sample::new(
            "batched_sqlite_obs_per_s",
            format!("end to end through alerting, {} obs per message, SQLite", options.batch),
            "obs/s",
            per_s,
        ));
        measured.notes.extend(sqlite.notes.into_iter().map(|n| format!("SQLite: {n}")));
    }
    Ok(measured)
}

/// The key of `part`'s throughput figure: `single_obs_per_s`, `batched_to_aggregation_obs_per_s`, …
fn key(part: Part, to: &str) -> String {
    format!("{}{to}_obs_per_s", part.name())
}

async fn measure_on(
    env: &Environment,
    database: DatabaseKind,
    options: &Options,
    part: Part,
    run: usize,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let tag = if database == env.database_kind() { "" } else { database.as_str() };
    let ns = env.namespace_on(database, part, run, tag, Some(country)).await?;
    let result = measure(&ns, options, part, country, workload).await;
    ns.close().await;
    result
}

async fn measure(
    ns: &Namespace,
    options: &Options,
    part: Part,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let per_message = if part == Part::Batched { options.batch } else { 1 };
    let messages = workload::messages(&ns.bus.names, country, &workload.observations, per_message);
    let count = messages.len();
    let services = Services::start(&ns.settings).await?;
    let db = ns.database().await?;
    let pushed = push(ns, &db, messages, workload.distinct, options.timeout, || services.check_running()).await;
    let stopped = services.stop().await;
    db.close().await.ok();
    let pushed = pushed?;
    stopped?;

    let n = workload.observations.len() as f64;
    let what = match part {
        Part::Batched => format!("{} obs per message", options.batch),
        _ => "1 obs per message".to_owned(),
    };
    let (through, to) = (n / pushed.through_alerting.as_secs_f64(), n / pushed.to_aggregation.as_secs_f64());
    let observations = workload.observations.len();
    let (cpu_per_obs, bound) = (pushed.cpu.per_observation(observations), pushed.cpu.bound(observations, cpu::cores()));
    Ok(Measured {
        samples: vec![
            Sample::new(key(part, ""), format!("end to end through alerting, {what}"), "obs/s", through),
            Sample::new(key(part, "_to_aggregation"), format!("end to end to aggregation, {what}"), "obs/s", to),
            Sample::new(
                format!("{}_cpu_us_per_obs", part.name()),
                format!("CPU per observation, all parties, {what}"),
                "µs",
                cpu_per_obs,
            ),
            Sample::new(key(part, "_cpu_bound"), format!("most the cores allow at that CPU, {what}"), "obs/s", bound),
        ],
        notes: vec![pushed.describe(observations, count)],
    })
}

/// What [`push`] saw.
pub struct Pushed {
    /// From the first publish until aggregation had applied the last observation.
    pub to_aggregation: Duration,
    /// From the first publish until alerting had judged every figure and every announcement
    /// was published.
    pub through_alerting: Duration,
    pub phases: Phases,
    /// Figures aggregation holds at the end, every one judged by alerting.
    pub figures: u64,
    /// CPU by party from the first publish until the through-alerting clock stopped.
    pub cpu: Spent,
}

impl Pushed {
    /// `n` observations in `messages` messages: both clocks, each stage's catch-up, the CPU
    /// each party spent.
    pub fn describe(&self, n: usize, messages: usize) -> String {
        let (to, through) = (self.to_aggregation.as_secs_f64(), self.through_alerting.as_secs_f64());
        format!(
            "{n} obs in {messages} messages: applied in {to:.2} s ({} obs/s), {} figures judged in {through:.2} s ({} \
             obs/s; alerting {:.2} s after aggregation); caught up: {}; {}",
            number(n as f64 / to),
            self.figures,
            number(n as f64 / through),
            through - to,
            self.phases.describe(),
            self.cpu.describe(n, cpu::cores())
        )
    }
}

/// Publishes `messages` (pipelined, as tiendo publishes) and waits until aggregation has
/// applied them all (`db` must then hold `expected` observations) and alerting has judged
/// every figure, within `limit`. `alive` is asked at every poll whether the services still
/// run. Fails on any rejection: the workload is all valid.
pub async fn push(
    ns: &Namespace,
    db: &DatabaseConnection,
    messages: Vec<Outgoing>,
    expected: u64,
    limit: Duration,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Pushed> {
    let rejections = Rejections::watch(ns).await?;
    let published: Arc<OnceLock<Result<Instant, String>>> = Arc::new(OnceLock::new());
    let cpu = cpu::Clock::start();
    let start = Instant::now();
    let publisher = {
        let (bus, published) = (ns.bus.clone(), published.clone());
        tokio::spawn(async move {
            let result = bus.publish_all(messages).await;
            let _ = published.set(result.map(|()| Instant::now()).map_err(|e| format!("{e:#}")));
        })
    };
    let mut phases = Phases::default();
    let done = progress::wait_done(db, &ns.bus, expected, (start, limit), &mut phases, |phases| {
        alive()?;
        rejections.check()?;
        match published.get() {
            Some(Err(e)) => anyhow::bail!("publishing failed: {e}"),
            Some(Ok(at)) => {
                phases.published.get_or_insert(at.duration_since(start).as_secs_f64());
            }
            None => {}
        }
        Ok(())
    })
    .await;
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            publisher.abort();
            return Err(e);
        }
    };
    let cpu = cpu.stop();
    Ok(Pushed {
        to_aggregation: done.aggregation.duration_since(start),
        through_alerting: done.alerting.duration_since(start),
        phases,
        figures: progress::figures(db).await?,
        cpu,
    })
}

/// Watches the namespace's `rejected` subjects: the workload is all valid, so any rejection
/// fails the run.
struct Rejections(Collector<String>);

impl Rejections {
    async fn watch(ns: &Namespace) -> anyhow::Result<Self> {
        let collector = Collector::start(&ns.bus, ns.bus.names.rejected("*"), |payload| {
            Some(match serde_json::from_slice::<Rejection>(payload) {
                Ok(r) => format!("{} `{}`: {} ({})", r.department, r.event_id, r.reason, r.detail),
                Err(_) => String::from_utf8_lossy(payload).into_owned(),
            })
        })
        .await?;
        Ok(Self(collector))
    }

    fn check(&self) -> anyhow::Result<()> {
        match self.0.all().as_slice() {
            [] => Ok(()),
            all => anyhow::bail!("tiendo rejected {} observation(s) of a valid workload; first: {}", all.len(), all[0]),
        }
    }
}
