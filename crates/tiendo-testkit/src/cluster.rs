//! A NATS cluster of one's own: three nats-servers on loopback, each with JetStream, its own
//! store, its own client and route ports and its own `server_name`, routed to the other two.
//! A test SIGKILLs a node and starts it again, and asks which node leads a stream. Every node
//! is killed when the cluster is dropped.
//!
//! It only starts and stops servers; what tiendo does on them is the test's to watch.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tiendo_bus::async_nats::{self, jetstream};
use tokio::process::{Child, Command};

use crate::nats::{binary, reachable};

/// How long a cluster may take to elect its JetStream leaders before [`NatsCluster::start`]
/// gives up.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One node: its name, ports and store, and its process while it runs.
struct Node {
    name: String,
    port: u16,
    route_port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl Node {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Three nats-servers with JetStream, clustered on loopback.
pub struct NatsCluster {
    name: String,
    nodes: Vec<Node>,
    /// Each node's log (`<server name>.log`), removed with the cluster.
    logs: tempfile::TempDir,
}

impl NatsCluster {
    /// How many nodes: the smallest cluster that keeps a quorum of an R3 stream with one lost.
    pub const SIZE: usize = 3;

    /// Starts the three nodes and waits until JetStream can place a stream on all three. A
    /// node that does not come up (a port picked free was taken meanwhile by a parallel test)
    /// means a new cluster on new ports, up to three times.
    pub async fn start() -> anyhow::Result<NatsCluster> {
        let mut attempt = 1;
        loop {
            match Self::start_once().await {
                Ok(cluster) => return Ok(cluster),
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, attempt, "a NATS cluster did not start; trying new ports");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn start_once() -> anyhow::Result<NatsCluster> {
        let mut nodes = Vec::new();
        for i in 1..=Self::SIZE {
            nodes.push(Node {
                name: format!("nats-{i}"),
                port: crate::free_port(),
                route_port: crate::free_port(),
                store: tempfile::tempdir()?,
                child: None,
            });
        }
        let name = crate::namespace::unique("tiendo_test_cluster_");
        let mut cluster = NatsCluster { name, nodes, logs: tempfile::tempdir()? };
        for i in 0..Self::SIZE {
            cluster.start_node(i).await?;
        }
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    /// The seed list, comma separated, as `nats.url` takes it.
    pub fn url(&self) -> String {
        self.nodes.iter().map(Node::url).collect::<Vec<_>>().join(",")
    }

    /// The URL of node `i` alone.
    pub fn node_url(&self, i: usize) -> String {
        self.nodes[i].url()
    }

    /// The `server_name` of node `i` (`nats-1` …), as JetStream names a stream's leader.
    pub fn server_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The folder of the nodes' logs, while the cluster lives.
    pub fn logs(&self) -> &Path {
        self.logs.path()
    }

    /// The last lines of each node's log, to explain a failure before the folder is gone.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(self.logs.path().join(format!("{}.log", node.name))).unwrap_or_default();
            let all: Vec<&str> = log.lines().collect();
            out += &format!("--- {}\n{}\n", node.name, all[all.len().saturating_sub(lines)..].join("\n"));
        }
        out
    }

    /// `kill -9` node `i`: no goodbye to its routes or clients, its store as the kill left it.
    pub async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.start_kill().context("SIGKILL")?;
            let _ = child.wait().await;
        }
        Ok(())
    }

    /// Starts node `i` (again) on its ports and store, and waits until it listens. It then
    /// rejoins the cluster and catches up its streams by itself.
    pub async fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| format!("nats://127.0.0.1:{}", n.route_port))
            .collect();
        let node = &self.nodes[i];
        let mut command = Command::new(binary());
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &node.port.to_string(), "-n", &node.name])
            .args(["--cluster_name", &self.name])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", node.route_port)])
            .args(["--routes", &routes.join(",")])
            .arg("-sd")
            .arg(node.store.path())
            .arg("-l")
            .arg(self.logs.path().join(format!("{}.log", node.name)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        crate::child::dies_with_parent(command.as_std_mut());
        let child = command.spawn().context("starting nats-server (Debian package `nats-server`)")?;
        let (name, url) = (node.name.clone(), node.url());
        self.nodes[i].child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !reachable(&url) {
            if Instant::now() > deadline {
                anyhow::bail!("nats-server {name} did not start listening on {url}:\n{}", self.log_tails(5));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The node whose `server_name` is `name`.
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The node that leads `stream` now, asked through `js`.
    pub async fn leader_of(&self, js: &jetstream::Context, stream: &str) -> anyhow::Result<usize> {
        let mut s = js.get_stream(stream).await.with_context(|| format!("stream {stream}"))?;
        let info = s.info().await.with_context(|| format!("info of stream {stream}"))?;
        let leader = info.cluster.as_ref().and_then(|c| c.leader.as_deref()).context("the stream has no leader")?;
        self.node_named(leader).with_context(|| format!("the leader `{leader}` is not a node of this cluster"))
    }

    /// Waits until `stream` has a leader and every node holds a current copy (the leader
    /// counts itself; each replica must be online and caught up).
    pub async fn wait_in_sync(&self, js: &jetstream::Context, stream: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match js.get_stream(stream).await {
                Ok(mut s) => match s.info().await {
                    Ok(info) => {
                        let cluster = info.cluster.clone().unwrap_or_default();
                        let current = cluster.replicas.iter().filter(|p| p.current && !p.offline).count();
                        if cluster.leader.is_some() && current + 1 == Self::SIZE {
                            return Ok(());
                        }
                        last = format!("leader {:?}, replicas {:?}", cluster.leader, cluster.replicas);
                    }
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("stream {stream} not in sync on {} nodes after {timeout:?}: {last}", Self::SIZE)
    }

    /// Until JetStream has elected its meta leader and knows all three nodes, a stream
    /// cannot be placed: create (and delete) one with a copy on each node until it works.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let seeds: Vec<String> = self.nodes.iter().map(Node::url).collect();
        let client = async_nats::connect(seeds).await.context("connecting to the cluster")?;
        let mut js = jetstream::new(client);
        // A request made before the meta leader is elected is never answered: ask again soon.
        js.set_timeout(Duration::from_secs(2));
        let probe = jetstream::stream::Config {
            name: crate::namespace::unique("probe"),
            subjects: vec![format!("{}.probe", self.name)],
            num_replicas: Self::SIZE,
            ..Default::default()
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match js.create_stream(probe.clone()).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => tracing::debug!(error = %e, "the cluster is not ready yet"),
                Err(e) => {
                    anyhow::bail!("the cluster was not ready after {READY_WITHIN:?}: {e}\n{}", self.log_tails(10))
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        js.delete_stream(&probe.name).await.context("deleting the probe stream")?;
        Ok(())
    }
}
