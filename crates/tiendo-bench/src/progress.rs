//! Watching a run from outside, as an operator would: when each stage of the pipeline has
//! caught up (its durable consumer has nothing pending and nothing unacknowledged, and
//! neither has any stage before it), and how many observations aggregation stored (rows of
//! `observations`: one per department and event id, written in the transaction that
//! applies it, acknowledged only after the commit).
//!
//! Only reads: the consumers' state through JetStream (four cheap requests a poll) and, once
//! at the end, a row count through the benchmark's own database connection, so watching
//! costs the pipeline next to nothing. Gives up when nothing moves for [`STALL`], so a stuck
//! pipeline fails the benchmark with its state instead of hanging it.

use std::time::{Duration, Instant};

use tiendo_bus::Bus;
use tiendo_store::entity::observation;
use tiendo_store::sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

use tiendo_bus::names::STAGES;
use tiendo_testkit::idle;

/// How long nothing may move before a run is declared stalled.
pub const STALL: Duration = Duration::from_secs(60);

/// How often the consumers are read: the resolution of the end-to-end timings.
pub const POLL: Duration = Duration::from_millis(20);

/// Where aggregation sits in [`STAGES`].
const AGGREGATION: usize = 2;

/// Rows of the `observations` table.
pub async fn stored(db: &DatabaseConnection) -> anyhow::Result<u64> {
    Ok(observation::Entity::find().count(db).await?)
}

/// When each stage of the pipeline had nothing left (it and every stage before it), seconds
/// after `start`. A stage counts as caught up only once publishing has finished.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    pub published: Option<f64>,
    /// In [`STAGES`] order: ingest, validation, aggregation, alerting.
    pub caught_up: [Option<f64>; 4],
}

impl Phases {
    /// Records the stages of `stages` (read `at` seconds after the start) that have just
    /// caught up.
    pub fn record(&mut self, stages: &[(&str, u64, u64)], at: f64) {
        if self.published.is_none() {
            return;
        }
        let mut upstream_idle = true;
        for (slot, (_, pending, ack_pending)) in self.caught_up.iter_mut().zip(stages) {
            upstream_idle &= pending + ack_pending == 0;
            if upstream_idle && slot.is_none() {
                *slot = Some(at);
            }
        }
    }

    /// E.g. `published 1.20 s, ingest 1.31 s, validation 2.05 s, aggregation 9.50 s, alerting –`.
    pub fn describe(&self) -> String {
        let at = |t: Option<f64>| t.map_or("–".to_owned(), |t| format!("{t:.2} s"));
        let mut parts = vec![format!("published {}", at(self.published))];
        for ((_, stage), t) in STAGES.iter().zip(self.caught_up) {
            parts.push(format!("{stage} {}", at(t)));
        }
        parts.join(", ")
    }
}

/// Waits until aggregation has caught up after the last publish, then checks that it stored
/// `expected` observations; returns when it was seen caught up. `check` runs at every poll:
/// it records in the phases when publishing finished, and stops the wait early with its
/// error (a publish failed, a service died). Fails when no consumer moves for [`STALL`],
/// when `limit` has passed since `start`, or when the count is not `expected` (observations
/// lost, or an event id counted twice).
pub async fn wait_applied(
    db: &DatabaseConnection,
    bus: &Bus,
    expected: u64,
    (start, limit): (Instant, Duration),
    phases: &mut Phases,
    mut check: impl FnMut(&mut Phases) -> anyhow::Result<()>,
) -> anyhow::Result<Instant> {
    let mut last = (vec![], Instant::now());
    loop {
        check(phases)?;
        let stages = idle::stages(bus).await?;
        let now = Instant::now();
        phases.record(&stages, now.duration_since(start).as_secs_f64());
        if phases.caught_up[AGGREGATION].is_some() {
            let n = stored(db).await?;
            anyhow::ensure!(
                n == expected,
                "aggregation caught up with {n} observations stored, {expected} expected; consumers: {stages:?}"
            );
            return Ok(now);
        }
        if now.duration_since(start) > limit {
            anyhow::bail!(
                "too slow: {} of {expected} observations stored after {limit:?}; consumers: {stages:?}",
                stored(db).await?
            );
        }
        let backlog: Vec<(u64, u64)> = stages.iter().map(|(_, p, a)| (*p, *a)).collect();
        if backlog != last.0 {
            last = (backlog, now);
        } else if now.duration_since(last.1) > STALL {
            anyhow::bail!(
                "stalled: {} of {expected} observations stored, no consumer moved for {STALL:?}; consumers: {stages:?}",
                stored(db).await?
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every stage has caught up (recording the phases), or `limit` passes; returns
/// false on the limit. Used after the measured interval, to let alerting drain.
pub async fn drain(bus: &Bus, start: Instant, phases: &mut Phases, limit: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + limit;
    while phases.caught_up.iter().any(Option::is_none) {
        if Instant::now() > deadline {
            return Ok(false);
        }
        let stages = idle::stages(bus).await?;
        phases.record(&stages, start.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_catches_up_only_with_every_stage_before_it_and_after_the_last_publish() {
        let mut p = Phases::default();
        p.record(&[("i", 0, 0), ("v", 0, 0), ("a", 0, 0), ("al", 0, 0)], 0.5);
        assert_eq!(p.caught_up, [None; 4], "nothing counts before publishing ends");
        p.published = Some(1.0);
        p.record(&[("i", 0, 0), ("v", 3, 0), ("a", 0, 0), ("al", 0, 1)], 1.5);
        assert_eq!(p.caught_up, [Some(1.5), None, None, None]);
        p.record(&[("i", 0, 0), ("v", 0, 0), ("a", 0, 0), ("al", 0, 1)], 2.0);
        assert_eq!(p.caught_up, [Some(1.5), Some(2.0), Some(2.0), None]);
    }
}
