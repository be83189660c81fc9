//! A nats-server of one's own: JetStream on a free loopback port, storage in a temporary
//! folder, killed when dropped. The demo starts one when none answers, the benchmark runs on
//! one so no other client disturbs its figures, fault tests kill and restart one. Three of
//! them clustered are [`crate::cluster`]'s.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// Where Debian's package puts the binary, or the PATH.
pub(crate) fn binary() -> PathBuf {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "nats-server".into())
}

/// True when something accepts TCP connections at the host and port of `url` (the first of
/// a comma-separated list).
pub fn reachable(url: &str) -> bool {
    let first = url.split(',').next().unwrap_or(url);
    let hostport = first.trim().trim_start_matches("nats://").trim_start_matches("tls://");
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    use std::net::ToSocketAddrs;
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// A nats-server child process with JetStream.
pub struct NatsServer {
    pub port: u16,
    pub store: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one and waits until it listens.
    pub async fn start() -> anyhow::Result<NatsServer> {
        Self::start_with(vec![]).await
    }

    /// With extra command-line arguments (e.g. `--tls…`).
    pub async fn start_with(args: Vec<String>) -> anyhow::Result<NatsServer> {
        let mut s = NatsServer { port: crate::free_port(), store: tempfile::tempdir()?, args, child: None };
        s.spawn().await?;
        Ok(s)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(binary());
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.store.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        crate::child::dies_with_parent(command.as_std_mut());
        let child = command.spawn().context("starting nats-server (Debian package `nats-server`)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !reachable(&self.url()) {
            anyhow::ensure!(Instant::now() < deadline, "nats-server did not start listening on {}", self.url());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// `kill -9`, then start again on the same port and storage.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.start_kill().context("SIGKILL")?;
            let _ = c.wait().await;
        }
        self.spawn().await
    }
}
