//! `tiendo replay`: rebuilds the figures and the alert states from the retained
//! `<prefix>.valid.>` stream into an empty database, with the same code the services run.
//! It publishes nothing: the bus already carried those aggregates and alerts once.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use tiendo_bus::async_nats::jetstream::consumer::{pull, DeliverPolicy};
use tiendo_bus::{Bus, StreamKind};
use tiendo_domain::figure::FigureVersion;
use tiendo_domain::{Catalog, Observation};
use tiendo_store::entity::observation;
use tiendo_store::sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Messages read from the stream.
    pub messages: u64,
    /// Observations they carried.
    pub observations: u64,
    /// Observations applied (revisions included).
    pub applied: u64,
    /// Reused event ids ignored, as the first time.
    pub duplicates: u64,
    /// Messages that were not a `ValidBatch` of valid observations (left out, as the service
    /// dead-letters them).
    pub undecodable: u64,
}

/// Replays the whole valid-observation stream into `db`, which must hold no observations.
pub async fn replay(
    bus: &Bus,
    db: &DatabaseConnection,
    catalog: &Catalog,
    judging: tiendo_alerting::Judging,
    batch_size: usize,
) -> anyhow::Result<Report> {
    tiendo_store::migrate(db).await?;
    if observation::Entity::find().count(db).await? > 0 {
        anyhow::bail!("the target database already holds observations: replay needs an empty one");
    }
    let mut stream =
        bus.js.get_stream(bus.names.stream(StreamKind::Valid)).await.context("opening the valid stream")?;
    let last = stream.info().await?.state.last_sequence;
    let mut report = Report::default();
    if last == 0 {
        return Ok(report);
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig { deliver_policy: DeliverPolicy::All, ..Default::default() })
        .await
        .context("creating a replay consumer")?;
    let mut chunks = consumer.messages().await?.ready_chunks(batch_size.max(1));
    let mut seen = 0;
    while seen < last {
        let chunk = tokio::time::timeout(Duration::from_secs(30), chunks.next())
            .await
            .context("the stream stopped delivering before its last message")?
            .context("the replay consumer ended")?;
        let mut items = Vec::with_capacity(chunk.len());
        for m in chunk {
            let m = m.map_err(|e| anyhow::anyhow!("reading the valid stream: {e}"))?;
            seen = m.info().map(|i| i.stream_sequence).unwrap_or(seen);
            report.messages += 1;
            match tiendo_aggregation::decode(m.payload.as_ref()) {
                Ok(observations) => {
                    report.observations += observations.len() as u64;
                    items.extend(observations);
                }
                Err(_) => report.undecodable += 1,
            }
        }
        let refs: Vec<&Observation> = items.iter().collect();
        let now = chrono::Utc::now();
        let tx = tiendo_store::begin(db).await?;
        let (outcomes, figures) = tiendo_aggregation::apply_observations(&*tx, catalog, &refs, now).await?;
        let versions: Vec<FigureVersion> = figures.iter().map(FigureVersion::from).collect();
        let versions: Vec<&FigureVersion> = versions.iter().collect();
        tiendo_alerting::judge_figures(&*tx, catalog, judging, &versions, now).await?;
        tx.commit().await?;
        for o in outcomes {
            match o {
                tiendo_aggregation::Outcome::Duplicate => report.duplicates += 1,
                _ => report.applied += 1,
            }
        }
    }
    Ok(report)
}
