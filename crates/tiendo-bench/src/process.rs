//! tiendo binaries run as child processes on a run's namespace: `tiendo up` for the memory
//! part, the `tiendo-<service>` binaries for the instances part. Each gets the namespace's
//! settings as the `TIENDO__…` variables it reads ([`tiendo_testkit::child::env`], as the
//! process tests start them), `--config` passed on, its HTTP endpoints on a free port and its
//! log in the namespace's folder; it is killed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::Command;

use super::target::Namespace;

/// How long a child may take to answer `/readyz` with 200.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running tiendo binary.
pub struct Child {
    /// For messages and the log's name, e.g. `aggregation-2`.
    name: String,
    child: tokio::process::Child,
    http: SocketAddr,
    log: PathBuf,
}

impl Child {
    /// Starts `binary` (with `--config` when given, then `args`) on `ns`, with `settings`
    /// (`TIENDO__…` variables) over the namespace's, logging warnings and errors to
    /// `<name>.log` in the namespace's folder.
    pub fn spawn(
        ns: &Namespace,
        binary: &Path,
        config: Option<&Path>,
        args: &[&str],
        settings: &[(String, String)],
        name: impl Into<String>,
    ) -> anyhow::Result<Child> {
        let name = name.into();
        let http = tiendo_testkit::free_addr();
        let log = ns.dir().join(format!("{name}.log"));
        let mut command = Command::new(binary);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        command
            .args(args)
            .envs(tiendo_testkit::child::env(&ns.settings, http))
            .envs(settings.iter().cloned())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        tiendo_testkit::child::dies_with_parent(command.as_std_mut());
        let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        Ok(Child { name, child, http, log })
    }

    /// The child's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().with_context(|| format!("{} has no process id", self.name))
    }

    /// Waits until the child answers `/readyz` with 200; fails if it exits or takes too long.
    pub async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        while tiendo_testkit::http::get(self.http, "/readyz").await.0 != 200 {
            self.check_running()?;
            anyhow::ensure!(Instant::now() < deadline, "{} was not ready within {READY_WITHIN:?}", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Fails, with the end of its log, if the child has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => anyhow::bail!("{}", self.exited(status)),
            None => Ok(()),
        }
    }

    /// Kills the child and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// "<name> exited (…)", with the end of its log.
    fn exited(&self, status: ExitStatus) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("{} exited ({status}); the end of its log:\n{}", self.name, tail.join("\n"))
    }
}
