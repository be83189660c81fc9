//! A TCP proxy to a server: `cut()` drops every connection and refuses new ones, as a dead
//! server would; `restore()` accepts again on the same port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy listening on a free loopback port.
pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> anyhow::Result<Arc<Proxy>> {
        let addr = crate::free_addr();
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
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "the proxy does not listen on {addr}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(proxy)
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}
