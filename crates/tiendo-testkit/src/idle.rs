//! Whether the pipeline has caught up: every stage's durable consumer has nothing pending and
//! nothing unacknowledged, twice in a row (a message moving between stages is seen on one pass
//! or the other, since each stage publishes before it acks).

use std::time::{Duration, Instant};

use tiendo_bus::names::STAGES;
use tiendo_bus::Bus;

/// Messages waiting in the pipeline now: pending plus unacknowledged, over every stage.
pub async fn backlog(bus: &Bus) -> anyhow::Result<u64> {
    Ok(stages(bus).await?.iter().map(|(_, pending, ack_pending)| pending + ack_pending).sum())
}

/// Per stage, in pipeline order: (consumer, pending, acknowledgement pending).
pub async fn stages(bus: &Bus) -> anyhow::Result<Vec<(&'static str, u64, u64)>> {
    let mut out = Vec::new();
    for (kind, consumer) in STAGES {
        let stream = bus.js.get_stream(bus.names.stream(kind)).await?;
        let mut c: tiendo_bus::async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(consumer).await.map_err(|e| anyhow::anyhow!("consumer {consumer}: {e}"))?;
        let info = c.info().await?;
        out.push((consumer, info.num_pending, info.num_ack_pending as u64));
    }
    Ok(out)
}

/// Waits until the backlog is zero on two passes in a row, or `timeout` passes.
pub async fn wait_idle(bus: &Bus, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    while quiet < 2 {
        if Instant::now() > deadline {
            anyhow::bail!("the pipeline still has messages after {timeout:?}: {:?}", stages(bus).await?);
        }
        quiet = if backlog(bus).await? == 0 { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
