//! Servers a fault test owns, so breaking them disturbs no other test: a private nats-server
//! (killed and restarted on the same port and storage), and a TCP proxy in front of
//! PostgreSQL (cut to make the database unreachable from the services, then restored).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A nats-server with JetStream on a free port, its storage in a temporary folder. Killed on drop.
pub struct NatsServer {
    pub port: u16,
    pub store: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        Self::start_with(vec![]).await
    }

    /// With extra command-line arguments (e.g. `--tls…`).
    pub async fn start_with(args: Vec<String>) -> NatsServer {
        let mut s = NatsServer { port: free_port(), store: tempfile::tempdir().unwrap(), args, child: None };
        s.spawn().await;
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let binary: PathBuf = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| "nats-server".into());
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.store.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        wait_listening(SocketAddr::from(([127, 0, 0, 1], self.port))).await;
    }

    /// `kill -9`, then start again on the same port and storage.
    pub async fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().expect("SIGKILL");
            let _ = c.wait().await;
        }
        self.spawn().await;
    }
}

/// A TCP proxy to `target`. `cut()` drops every connection and refuses new ones, as a dead
/// database server would; `restore()` accepts again on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Arc<Proxy> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (up, _) = watch::channel(true);
        let proxy = Arc::new(Proxy { addr, up });
        let p = proxy.clone();
        tokio::spawn(async move {
            loop {
                p.up.subscribe().wait_for(|up| *up).await.ok();
                let listener = loop {
                    match TcpListener::bind(p.addr).await {
                        Ok(l) => break l,
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                };
                let mut down = p.up.subscribe();
                loop {
                    tokio::select! {
                        _ = down.wait_for(|up| !*up) => break,
                        accepted = listener.accept() => {
                            let Ok((mut inbound, _)) = accepted else { continue };
                            let mut cut = p.up.subscribe();
                            tokio::spawn(async move {
                                let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                    _ = cut.wait_for(|up| !*up) => {}
                                }
                            });
                        }
                    }
                }
            }
        });
        wait_listening(addr).await;
        proxy
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}
