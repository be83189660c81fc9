//! Whether the pipeline has caught up: every stage's durable consumer has nothing pending and
//! nothing unacknowledged, twice in a row (a message moving between stages is seen on one pass
//! or the other, since each stage publishes before it acks); and, when the database is at
//! hand, no committed message is still waiting in an outbox for the relay.

use std::time::{Duration, Instant};

use tiendo_bus::async_nats::jetstream::consumer::PullConsumer;
use tiendo_bus::connect::consumers_of;
use tiendo_bus::names::STAGES;
use tiendo_bus::Bus;
use tiendo_store::sea_orm::DatabaseConnection;

/// Messages waiting in the pipeline now: pending plus unacknowledged, over every stage.
pub async fn backlog(bus: &Bus) -> anyhow::Result<u64> {
    Ok(stages(bus).await?.iter().map(|(_, pending, ack_pending)| pending + ack_pending).sum())
}

/// Per stage, in pipeline order: (service, pending, acknowledgement pending), summed over the
/// service's consumers (partitioned aggregation has one per indicator). A stage with no
/// consumer yet is an error: its service has not started.
pub async fn stages(bus: &Bus) -> anyhow::Result<Vec<(&'static str, u64, u64)>> {
    Watch::new().stages(bus).await
}

/// How often a [`Watch`] lists the stages' consumers again (a partitioned service's consumers
/// are created as it starts).
const RELIST: Duration = Duration::from_secs(1);

/// The same reading as [`stages`] for a caller that looks every few milliseconds (the
/// benchmark's clocks): the streams and their consumers' names are found once a [`RELIST`],
/// and each look asks only each consumer's numbers, one request a consumer. Finding them asks
/// for the stream, the consumers' names and each consumer (three requests a stage and one
/// more a consumer), each answered by nats-server and announced on `$JS.EVENT.ADVISORY.API`;
/// made at every look every 20 ms, they were load the benchmark put on what it measured
/// (docs/performance.md, issue 15).
pub struct Watch {
    consumers: Vec<(&'static str, Vec<PullConsumer>)>,
    listed: Option<Instant>,
}

impl Default for Watch {
    fn default() -> Self {
        Self::new()
    }
}

impl Watch {
    pub fn new() -> Self {
        Self { consumers: Vec::new(), listed: None }
    }

    /// What [`stages`] returns, read now.
    pub async fn stages(&mut self, bus: &Bus) -> anyhow::Result<Vec<(&'static str, u64, u64)>> {
        if self.listed.is_none_or(|at| at.elapsed() >= RELIST) {
            self.consumers = list(bus).await?;
            self.listed = Some(Instant::now());
        }
        let mut out = Vec::with_capacity(self.consumers.len());
        for (service, consumers) in &mut self.consumers {
            let (mut pending, mut ack_pending) = (0, 0);
            for c in consumers {
                let info = c.info().await?;
                pending += info.num_pending;
                ack_pending += info.num_ack_pending as u64;
            }
            out.push((*service, pending, ack_pending));
        }
        Ok(out)
    }
}

/// Every stage's consumers, in pipeline order; an error when a stage has none yet.
async fn list(bus: &Bus) -> anyhow::Result<Vec<(&'static str, Vec<PullConsumer>)>> {
    let mut out = Vec::new();
    for (kind, service) in STAGES {
        let stream = bus.js.get_stream(bus.names.stream(kind)).await?;
        let mut consumers = Vec::new();
        for name in consumers_of(&stream, service).await? {
            consumers.push(stream.get_consumer(&name).await.map_err(|e| anyhow::anyhow!("consumer {name}: {e}"))?);
        }
        anyhow::ensure!(!consumers.is_empty(), "{service} has no consumer on {}", bus.names.stream(kind));
        out.push((service, consumers));
    }
    Ok(out)
}

/// Waits until the backlog is zero on two passes in a row, or `timeout` passes.
pub async fn wait_idle(bus: &Bus, timeout: Duration) -> anyhow::Result<()> {
    wait(bus, None, timeout).await
}

/// As [`wait_idle`], and every outbox in `db` empty on the same passes: a message committed by
/// aggregation or alerting but not yet published is work still in the pipeline.
pub async fn wait_idle_with_outbox(bus: &Bus, db: &DatabaseConnection, timeout: Duration) -> anyhow::Result<()> {
    wait(bus, Some(db), timeout).await
}

async fn wait(bus: &Bus, db: Option<&DatabaseConnection>, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    while quiet < 2 {
        // A look that fails (a consumer's info times out for a few seconds after a NATS
        // failover, the database is away) is not a quiet pass: look again until the deadline.
        let outbox = match db {
            Some(db) => tiendo_store::outbox::count(db, None).await.map_err(anyhow::Error::from),
            None => Ok(0),
        };
        let backlog = backlog(bus).await;
        if Instant::now() > deadline {
            let stages = stages(bus).await;
            anyhow::bail!("the pipeline still has messages after {timeout:?}: {stages:?}, outbox {outbox:?}");
        }
        quiet = match (backlog, outbox) {
            (Ok(0), Ok(0)) => quiet + 1,
            _ => 0,
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
