//! Memory: the peak resident set (VmHWM) of a real `tiendo up` process (this same binary,
//! or `--tiendo-binary`, started as a child with `TIENDO__…` settings) after
//! `--memory-observations` observations are published to it in JSON arrays and it has
//! caught up, alerting included. The resident set is sampled every second meanwhile, so
//! steady growth shows in the notes.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

use super::options::{Options, Part};
use super::report::{number, Sample};
use super::target::{Environment, Namespace};
use super::throughput;
use super::workload::{self, Country, Workload};
use super::Measured;

/// How long the child may take to answer `/readyz` with 200.
const READY_WITHIN: Duration = Duration::from_secs(30);

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
    let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let log = ns.dir().join("tiendo-up.log");
    let mut command = Command::new(&options.tiendo_binary);
    if let Some(config) = &options.config {
        command.arg("--config").arg(config);
    }
    command
        .arg("up")
        .envs(tiendo_testkit::child::env(&ns.settings, http))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true);
    let mut child = command.spawn().with_context(|| format!("starting {} up", options.tiendo_binary.display()))?;
    let pid = child.id().context("the child has no process id")?;
    let result = async {
        wait_ready(&mut child, http, &log).await?;
        let db = ns.database().await?;
        let messages = workload::messages(&ns.bus.names, country, &workload.observations, options.batch);
        let mut rss = Sampler::default();
        let pushed = throughput::push(ns, &db, messages, workload.distinct, options.timeout, || {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("{}", exited(status, &log));
            }
            rss.sample(pid);
            Ok(())
        })
        .await;
        db.close().await.ok();
        let pushed = pushed?;
        let peak = status_kb(pid, "VmHWM")? as f64 / 1024.0;
        let end = status_kb(pid, "VmRSS")? as f64 / 1024.0;
        let per_s = workload.observations.len() as f64 / pushed.elapsed.as_secs_f64();
        anyhow::Ok(Measured {
            samples: vec![Sample::new(
                "memory_peak_rss_mb",
                format!("peak RSS of tiendo up, {} obs", number(workload.observations.len() as f64)),
                "MiB",
                peak,
            )],
            notes: vec![format!(
                "{} obs applied in {:.1} s ({} obs/s); RSS {:.0} MiB at the end; each second: {}",
                workload.observations.len(),
                pushed.elapsed.as_secs_f64(),
                number(per_s),
                end,
                rss.describe()
            )],
        })
    }
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    result
}

/// Waits until the child answers `/readyz` with 200; fails if it exits or takes too long.
async fn wait_ready(child: &mut Child, http: std::net::SocketAddr, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_WITHIN;
    while tiendo_testkit::http::get(http, "/readyz").await.0 != 200 {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("{}", exited(status, log));
        }
        anyhow::ensure!(Instant::now() < deadline, "tiendo up was not ready within {READY_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// "tiendo up exited (…)", with the end of its log.
fn exited(status: ExitStatus, log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(10).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("tiendo up exited ({status}); the end of its log:\n{}", tail.join("\n"))
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
