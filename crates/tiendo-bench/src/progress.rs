//! Watching a run from outside, as an operator would, and stopping the end-to-end clocks:
//!
//! - **to aggregation**: aggregation's durable consumer, and every consumer before it, has
//!   nothing pending and nothing unacknowledged (aggregation acknowledges only after its
//!   transaction commits and its figures are published), after the last publish; then the
//!   `observations` table must hold one row per distinct (department, event id).
//! - **through alerting**: every stage's consumer in [`STAGES`] is idle as above, no outbox
//!   row is left (every announcement published), and alerting has stored every figure
//!   aggregation holds at its current version ([`unjudged`] is zero): each figure the
//!   workload changed has been judged and its alerts announced. The consumers are named by
//!   [`STAGES`] and the rest is read from tables, so the clock does not depend on the
//!   subject alerting consumes.
//!
//! Only reads: the consumers' state through JetStream (one request a consumer a poll, the
//! consumers found again once a second: [`idle::Watch`]), and the database through the
//! benchmark's own connection, only once the consumers say a stage is done, so watching costs
//! the pipeline little. Gives up when nothing moves for [`STALL`], so a stuck pipeline fails
//! the benchmark with its state instead of hanging it.

use std::time::{Duration, Instant};

use tiendo_bus::names::{service, STAGES};
use tiendo_bus::Bus;
use tiendo_store::entity::{alert_figure, figure, observation};
use tiendo_store::sea_orm::sea_query::{Alias, Condition, Expr, JoinType, Query};
use tiendo_store::sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait};
use tiendo_testkit::idle;

/// How long nothing may move before a run is declared stalled.
pub const STALL: Duration = Duration::from_secs(60);

/// How often the consumers are read: the resolution of the end-to-end clocks.
pub const POLL: Duration = Duration::from_millis(20);

/// How long to wait before counting unjudged figures again after a count that was not zero
/// (the count joins two tables of every figure: not a query to repeat every [`POLL`]).
const RECOUNT: Duration = Duration::from_millis(200);

/// Rows of the `observations` table.
pub async fn stored(db: &DatabaseConnection) -> anyhow::Result<u64> {
    Ok(observation::Entity::find().count(db).await?)
}

/// Rows of the `figures` table: every (indicator, org unit, period) aggregation holds.
pub async fn figures(db: &DatabaseConnection) -> anyhow::Result<u64> {
    Ok(figure::Entity::find().count(db).await?)
}

/// Figures aggregation holds that alerting has not stored at their current version: rows of
/// `figures` with no row of `alert_figures` for the same key at the same or a later version.
pub async fn unjudged(db: &DatabaseConnection) -> anyhow::Result<u64> {
    use alert_figure::Column as A;
    use figure::Column as F;
    let (f, a) = (figure::Entity, alert_figure::Entity);
    let same_key = Condition::all()
        .add(Expr::col((f, F::Indicator)).equals((a, A::Indicator)))
        .add(Expr::col((f, F::OrgUnit)).equals((a, A::OrgUnit)))
        .add(Expr::col((f, F::Period)).equals((a, A::Period)));
    let behind = Condition::any()
        .add(Expr::col((a, A::Version)).is_null())
        .add(Expr::col((a, A::Version)).lt(Expr::col((f, F::Version))));
    let query = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from(f)
        .join(JoinType::LeftJoin, a, same_key)
        .cond_where(behind)
        .to_owned();
    let row = db.query_one(db.get_database_backend().build(&query)).await?;
    let n: i64 = row.map_or(Ok(0), |r| r.try_get("", "n"))?;
    Ok(n as u64)
}

/// Where a stage sits in [`STAGES`].
fn stage(name: &str) -> usize {
    STAGES.iter().position(|(_, consumer)| *consumer == name).unwrap_or(STAGES.len() - 1)
}

/// When each stage of the pipeline had nothing left (it and every stage before it), seconds
/// after `start`. A stage counts as caught up only once publishing has finished.
#[derive(Debug, Clone)]
pub struct Phases {
    pub published: Option<f64>,
    /// In [`STAGES`] order (ingest, validation, aggregation, alerting, …).
    pub caught_up: Vec<Option<f64>>,
    /// When the database confirmed that alerting had judged every figure and every
    /// announcement was published (the through-alerting clock).
    pub judged: Option<f64>,
}

impl Default for Phases {
    fn default() -> Self {
        Self { published: None, caught_up: vec![None; STAGES.len()], judged: None }
    }
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

    /// When aggregation (and every stage before it) had caught up.
    pub fn aggregation(&self) -> Option<f64> {
        self.caught_up[stage(service::AGGREGATION)]
    }

    /// Whether every stage's consumer has caught up.
    pub fn all_caught_up(&self) -> bool {
        self.caught_up.iter().all(Option::is_some)
    }

    /// E.g. `published 1.20 s, ingest 1.31 s, validation 2.05 s, aggregation 9.50 s, alerting
    /// 15.10 s, judged 15.12 s`.
    pub fn describe(&self) -> String {
        let at = |t: Option<f64>| t.map_or("–".to_owned(), |t| format!("{t:.2} s"));
        let mut parts = vec![format!("published {}", at(self.published))];
        for ((_, stage), t) in STAGES.iter().zip(&self.caught_up) {
            parts.push(format!("{stage} {}", at(*t)));
        }
        parts.push(format!("judged {}", at(self.judged)));
        parts.join(", ")
    }
}

/// When the two end-to-end clocks stopped.
#[derive(Debug, Clone, Copy)]
pub struct Finish {
    /// Aggregation had applied (and announced) every observation.
    pub aggregation: Instant,
    /// Alerting had judged every figure and every announcement was published.
    pub alerting: Instant,
}

/// Waits until aggregation has caught up after the last publish (then checks that it
/// stored `expected` observations), and then until alerting is done (see the module doc);
/// returns when each was seen. `check` runs at every poll: it records in the phases when
/// publishing finished, and stops the wait early with its error (a publish failed, a
/// service died). Fails when nothing moves for [`STALL`], when `limit` has passed since
/// `start`, or when the count is not `expected` (observations lost, or an event id counted
/// twice).
pub async fn wait_done(
    db: &DatabaseConnection,
    bus: &Bus,
    expected: u64,
    (start, limit): (Instant, Duration),
    phases: &mut Phases,
    mut check: impl FnMut(&mut Phases) -> anyhow::Result<()>,
) -> anyhow::Result<Finish> {
    let mut applied: Option<Instant> = None;
    // What moved last (consumers' backlogs, then outbox messages and unjudged figures once the
    // consumers are idle), and when.
    let mut last = (vec![], Instant::now());
    let mut left = (None, None);
    let mut watch = idle::Watch::new();
    loop {
        check(phases)?;
        let stages = watch.stages(bus).await?;
        let now = Instant::now();
        phases.record(&stages, now.duration_since(start).as_secs_f64());
        if applied.is_none() && phases.aggregation().is_some() {
            let n = stored(db).await?;
            anyhow::ensure!(
                n == expected,
                "aggregation caught up with {n} observations stored, {expected} expected; consumers: {stages:?}"
            );
            applied = Some(now);
        }
        if let (Some(aggregation), true) = (applied, phases.all_caught_up()) {
            // The consumers say alerting is done; the tables must agree. The clock stops at
            // the consumers' reading, which the tables confirm.
            let outbox = tiendo_store::outbox::count(db, None).await?;
            let unjudged = if outbox == 0 { Some(unjudged(db).await?) } else { None };
            if unjudged == Some(0) {
                phases.judged = Some(now.duration_since(start).as_secs_f64());
                return Ok(Finish { aggregation, alerting: now });
            }
            left = (Some(outbox), unjudged);
            if unjudged.is_some() {
                tokio::time::sleep(RECOUNT).await;
            }
        }
        let elapsed = now.duration_since(start);
        let state = || {
            format!(
                "consumers: {stages:?}; messages in outboxes: {:?}; figures alerting has not stored: {:?}",
                left.0, left.1
            )
        };
        if elapsed > limit {
            anyhow::bail!(
                "too slow: {} of {expected} observations stored after {limit:?}; {}",
                stored(db).await?,
                state()
            );
        }
        let moving: Vec<u64> =
            stages.iter().flat_map(|(_, p, a)| [*p, *a]).chain([left.0, left.1].into_iter().flatten()).collect();
        if moving != last.0 {
            last = (moving, now);
        } else if now.duration_since(last.1) > STALL {
            anyhow::bail!(
                "stalled: {} of {expected} observations stored, nothing moved for {STALL:?}; {}",
                stored(db).await?,
                state()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stage idle but those named, which have `backlog` messages.
    fn reading(busy: &[&str], backlog: u64) -> Vec<(&'static str, u64, u64)> {
        STAGES.iter().map(|(_, c)| (*c, 0, if busy.contains(c) { backlog } else { 0 })).collect()
    }

    #[test]
    fn a_stage_catches_up_only_with_every_stage_before_it_and_after_the_last_publish() {
        let mut p = Phases::default();
        p.record(&reading(&[], 0), 0.5);
        assert!(p.caught_up.iter().all(Option::is_none), "nothing counts before publishing ends");
        p.published = Some(1.0);
        p.record(&reading(&[service::VALIDATION, service::ALERTING], 3), 1.5);
        assert_eq!(p.caught_up[stage(service::INGEST)], Some(1.5));
        assert_eq!(p.aggregation(), None, "validation still has work for aggregation");
        p.record(&reading(&[service::ALERTING], 1), 2.0);
        assert_eq!(p.aggregation(), Some(2.0));
        assert!(!p.all_caught_up());
        p.record(&reading(&[], 0), 2.5);
        assert!(p.all_caught_up());
        assert_eq!(p.caught_up[stage(service::ALERTING)], Some(2.5));
    }
}
