//! The four services as separate operating-system processes (the `tiendo-<service>`
//! binaries), sharing a test's namespace, so a test can `kill -9` one and start it again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tiendo_bus::names::service;
use tiendo_settings::Settings;
use tokio::process::{Child, Command};

/// The services, by binary suffix.
pub const SERVICES: [&str; 4] = [service::INGEST, service::VALIDATION, service::AGGREGATION, service::ALERTING];

/// Running service processes, by name (a service's, or another given with
/// [`Fleet::spawn_as`]), killed when dropped.
pub struct Fleet {
    settings: Settings,
    running: BTreeMap<&'static str, Process>,
}

/// One running process: its child, HTTP address, binary suffix and settings (to start it again).
struct Process {
    child: Child,
    addr: SocketAddr,
    service: &'static str,
    settings: Settings,
}

/// Where the workspace's binaries are: next to the test binary's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the service binaries first (`cargo build --workspace --bins`, as scripts/test does)",
        path.display()
    );
    path
}

impl Fleet {
    /// Starts every service and waits until each answers `/readyz` with 200.
    pub async fn start(settings: &Settings) -> Fleet {
        let mut fleet = Fleet { settings: settings.clone(), running: BTreeMap::new() };
        for s in SERVICES {
            fleet.spawn(s);
        }
        for s in SERVICES {
            fleet.wait_ready(s).await;
        }
        fleet
    }

    /// Starts one service process (replacing a dead one), on the fleet's settings.
    pub fn spawn(&mut self, service: &'static str) {
        self.spawn_as(service, service, self.settings.clone());
    }

    /// Starts `service`'s binary as the process `name` on `settings` (a second aggregation
    /// instance, or the same one in another mode), replacing a process of that name.
    pub fn spawn_as(&mut self, name: &'static str, service: &'static str, settings: Settings) {
        let addr = tiendo_testkit::free_addr();
        let mut command = Command::new(binary(&format!("tiendo-{service}")));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .envs(tiendo_testkit::child::env(&settings, addr))
            .kill_on_drop(true);
        tiendo_testkit::child::dies_with_parent(command.as_std_mut());
        let child = command.spawn().expect("start a service binary");
        self.running.insert(name, Process { child, addr, service, settings });
    }

    /// Waits until `service` answers `/readyz` with 200; fails at once if its process ended.
    pub async fn wait_ready(&mut self, service: &str) {
        let addr = self.addr(service);
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::http_get(addr, "/readyz").await.0 != 200 {
            let child = &mut self.running.get_mut(service).expect("service is running").child;
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{service} ended before it was ready ({status}); its log is in the test's stderr");
            }
            assert!(Instant::now() < deadline, "{service} did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The HTTP address of a running service.
    pub fn addr(&self, service: &str) -> SocketAddr {
        self.running.get(service).map(|p| p.addr).expect("service is running")
    }

    /// `kill -9`: the process dies where it stands.
    pub async fn kill(&mut self, name: &str) {
        if let Some(mut p) = self.running.remove(name) {
            p.child.start_kill().expect("SIGKILL");
            let _ = p.child.wait().await;
        }
    }

    /// Kills and starts the process `name` again as it was started, and waits until it is ready.
    pub async fn restart(&mut self, name: &'static str) {
        let (service, settings) = match self.running.get(name) {
            Some(p) => (p.service, p.settings.clone()),
            None => (SERVICES.into_iter().find(|s| *s == name).expect("a service's name"), self.settings.clone()),
        };
        self.kill(name).await;
        self.spawn_as(name, service, settings);
        self.wait_ready(name).await;
    }
}
