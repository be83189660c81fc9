//! End-to-end throughput: observations per second from the first publish until aggregation
//! has applied the last one, with the four services running in this process (`tiendo up`),
//! one observation per message or JSON arrays of them.
//!
//! [`push`] is the measuring loop, shared with the memory part (which runs the services in a
//! child process instead).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tiendo_bus::Outgoing;
use tiendo_proto::v1::Rejection;
use tiendo_store::sea_orm::DatabaseConnection;
use tiendo_testkit::Collector;

use super::options::{Options, Part};
use super::progress::{self, Phases};
use super::report::{number, Sample};
use super::target::{Environment, Namespace, Services};
use super::workload::{self, Country, Workload};
use super::Measured;

/// One run of [`Part::Single`] or [`Part::Batched`] on `workload`.
pub async fn run(
    env: &Environment,
    options: &Options,
    part: Part,
    run: usize,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let ns = env.namespace(part, run, "", Some(country)).await?;
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
    let per_s = n / pushed.elapsed.as_secs_f64();
    let (key, label) = match part {
        Part::Batched => ("batched_obs_per_s", format!("end to end, {} obs per message", options.batch)),
        _ => ("single_obs_per_s", "end to end, 1 obs per message".to_owned()),
    };
    Ok(Measured {
        samples: vec![Sample::new(key, label, "obs/s", per_s)],
        notes: vec![format!(
            "{} obs in {count} messages applied in {:.2} s ({} obs/s); caught up: {}{}",
            workload.observations.len(),
            pushed.elapsed.as_secs_f64(),
            number(per_s),
            pushed.phases.describe(),
            if pushed.drained { "" } else { " (alerting still busy when the run ended)" }
        )],
    })
}

/// What [`push`] saw.
pub struct Pushed {
    /// From the first publish until aggregation had applied the last observation.
    pub elapsed: Duration,
    pub phases: Phases,
    /// Whether every stage (alerting too) caught up before the drain limit.
    pub drained: bool,
}

/// Publishes `messages` (pipelined, as tiendo publishes) and waits until aggregation has
/// applied them all (within `limit`; `db` must then hold `expected` observations), then
/// lets the other stages drain. `alive` is
/// asked at every poll whether the services still run. Fails on any rejection: the workload
/// is all valid.
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
    let start = Instant::now();
    let publisher = {
        let (bus, published) = (ns.bus.clone(), published.clone());
        tokio::spawn(async move {
            let result = bus.publish_all(messages).await;
            let _ = published.set(result.map(|()| Instant::now()).map_err(|e| format!("{e:#}")));
        })
    };
    let mut phases = Phases::default();
    let applied = progress::wait_applied(db, &ns.bus, expected, (start, limit), &mut phases, |phases| {
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
    let applied = match applied {
        Ok(at) => at,
        Err(e) => {
            publisher.abort();
            return Err(e);
        }
    };
    let elapsed = applied.duration_since(start);
    let limit = (elapsed * 2).max(Duration::from_secs(30));
    let drained = progress::drain(&ns.bus, start, &mut phases, limit).await?;
    Ok(Pushed { elapsed, phases, drained })
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
