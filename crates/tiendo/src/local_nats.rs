//! A throwaway nats-server for the demo, when none answers at the configured URL.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// A nats-server child process, killed when dropped.
pub struct LocalNats {
    pub url: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// True when something accepts TCP connections at the host and port of `url`.
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

/// Starts `nats-server` with JetStream on a free loopback port, storing in a temporary folder.
pub async fn start() -> anyhow::Result<LocalNats> {
    let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nats-server");
    let child = Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting nats-server (Debian package `nats-server`)")?;
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reachable(&url) {
        if Instant::now() > deadline {
            anyhow::bail!("nats-server did not start listening on {url}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(LocalNats { url, _child: child, _dir: dir })
}
