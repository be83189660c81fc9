//! Memory: the peak resident set (VmHWM, in MiB) of a real `tiendo up` process (the
//! `tiendo` binary, or `--tiendo-binary`, started as a child with `TIENDO__…` settings)
//! after `--memory-observations` observations are published to it in JSON arrays, read once
//! alerting has drained: every figure judged, every announcement published (the
//! through-alerting clock of [`throughput::push`]). The resident set is sampled every second
//! meanwhile, so steady growth shows in the notes.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::options::{Options, Part};
use super::process::Child;
use super::report::{number, Sample};
use super::target::{Environment, Namespace};
use super::throughput;
use super::workload::{self, Country, Workload};
use super::Measured;

/// One run of [`Part::Memory`].
pub async fn run(
    env: &Environment,
    options: &Options,
    run: usize,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let ns = env.namespace(Part::Memory, run, "", Some(country)).await?;
    let result = measure(&ns, options, country, workload).await;
    ns.close().await;
    result
}

async fn measure(
    ns: &Namespace,
    options: &Options,
    country: &Country,
    workload: &Workload,
) -> anyhow::Result<Measured> {
    let mut child = Child::spawn(ns, &options.tiendo_binary, options.config.as_deref(), &["up"], &[], "tiendo-up")?;
    let result = async {
        child.wait_ready().await?;
        let pid = child.pid()?;
        let db = ns.database().await?;
        let outgoing = workload::messages(&ns.bus.names, country, &workload.observations, options.batch);
        let messages = outgoing.len();
        let mut rss = Sampler::default();
        let pushed = throughput::push(ns, &db, outgoing, workload.distinct, options.timeout, || {
            child.check_running()?;
            rss.sample(pid);
            Ok(())
        })
        .await;
        db.close().await.ok();
        let pushed = pushed?;
        // Read only now: `push` returns once alerting has drained.
        let peak = status_kb(pid, "VmHWM")? as f64 / 1024.0;
        let end = status_kb(pid, "VmRSS")? as f64 / 1024.0;
        let n = workload.observations.len();
        anyhow::Ok(Measured {
            samples: vec![Sample::new(
                "memory_peak_rss_mib",
                format!("peak RSS of tiendo up, {} obs", number(n as f64)),
                "MiB",
                peak,
            )],
            notes: vec![
                pushed.describe(n, messages),
                format!("RSS {end:.0} MiB at the end; each second: {}", rss.describe()),
            ],
        })
    }
    .await;
    child.stop().await;
    result
}

/// A `kB` field of `/proc/<pid>/status`, e.g. `VmHWM` (peak resident set) or `VmRSS`.
fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (Linux only)"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// The resident set, read at most once a second.
#[derive(Default)]
struct Sampler {
    last: Option<Instant>,
    mib: Vec<f64>,
}

impl Sampler {
    fn sample(&mut self, pid: u32) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        self.last = Some(Instant::now());
        if let Ok(kb) = status_kb(pid, "VmRSS") {
            self.mib.push(kb as f64 / 1024.0);
        }
    }

    fn describe(&self) -> String {
        let shown: Vec<String> = self.mib.iter().map(|m| format!("{m:.0}")).collect();
        format!("[{}] MiB", shown.join(" "))
    }
}
