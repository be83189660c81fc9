//! The alerting service: judges every figure against its indicator's trajectory.
//!
//! Reads `<prefix>.figures.>` (`FigureBatch` messages: the figures one transaction of
//! aggregation changed, per indicator), each `Aggregate` in them parsed once into a
//! [`FigureVersion`];
//! stores each figure (ignoring versions it has already seen), and for every plan that holds
//! the indicator and whose territory holds the unit, judges the unit's latest figure within
//! the plan against the straight path from baseline to target, or, on the plan's final
//! period, gives the verdict (`achieved` or `missed`). When a key enters `behind` (or
//! `missed`) it publishes a `firing` alert on `<prefix>.alerts.<indicator>.<org_unit>`; when
//! it leaves, the same alert id `resolved`. Standings, alerts and their history are stored,
//! and alert messages leave through the outbox, so each transition is announced exactly once
//! in effect. Serves the per-plan gauges.
//!
//! Before a period's due date a roll-up whose expected reports are not all in is
//! `incomplete`; at the due date ([`deadline`]) each department hears which of its reports are
//! missing, and what is incomplete is judged on what came in.
//!
//! # Layout
//! - [`judge`]: a batch of figures stored and judged inside a transaction.
//! - [`deadline`]: due dates as clock events: overdue notices, judging what was incomplete.
//! - [`gauges`]: the `tiendo_indicator_*` gauges, refreshed from the database on scrape.
//! - [`Judge`]: decoding and judging a batch; the consumer, transactions and outbox around it
//!   are `tiendo_stateful`, the tables `tiendo_store::alerting`.

pub mod deadline;
pub mod gauges;
pub mod judge;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::Delivery;
use tiendo_bus::names::{msg_id, service};
use tiendo_bus::{Names, Outgoing, StreamKind};
use tiendo_domain::alert::Transition;
use tiendo_domain::figure::FigureVersion;
use tiendo_domain::{Catalog, FigureKey};
use tiendo_proto::v1::{Alert, FigureBatch, Judged, JudgedFigure};
use tiendo_proto::Message as _;
use tiendo_runtime::{encode, Deps, Failure};
use tiendo_stateful::{Applied, ApplyError, Counted, Database, Notice, Stateful, StatefulService};
use tiendo_store::sea_orm::DatabaseTransaction;

use crate::gauges::IndicatorGauges;
pub use crate::judge::{judge_batch as judge_figures, Judging, Outcome};

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = service::ALERTING;

/// The built alerting service.
pub type Alerting = StatefulService<Judge>;

/// Creates the streams, the consumer, the gauges and the due-date task on `db`.
pub async fn build(deps: Deps, db: &Database) -> anyhow::Result<Alerting> {
    let gauges = Arc::new(IndicatorGauges::register(deps.telemetry.registry())?);
    let (connection, catalog, clock) = (db.connection().clone(), deps.catalog.clone(), deps.clock.clone());
    deps.telemetry.add_refresher(Arc::new(move || {
        let (gauges, db, catalog, now) = (gauges.clone(), connection.clone(), catalog.clone(), clock());
        Box::pin(async move {
            if let Err(e) = gauges.refresh(&db, &catalog, now).await {
                tracing::warn!(error = %e, "reading indicator standings for /metrics");
            }
        })
    }));
    let judging = Judging { min_coverage: deps.settings.alerting.min_coverage };
    let deadlines = deadline::task(&deps, db.connection().clone(), judging);
    let judge = Judge { names: deps.bus.names.clone(), catalog: deps.catalog.clone(), judging };
    Ok(StatefulService::build(deps, db, judge).await?.with_task(deadlines))
}

/// The messages announcing these alerts.
pub fn alert_messages(names: &Names, transitions: &[Transition]) -> Result<Vec<Outgoing>, Failure> {
    transitions
        .iter()
        .map(|t| {
            encode::json(
                names.alerts(t.key.indicator.as_str(), t.key.org_unit.as_str()),
                msg_id::alert(&t.alert_id, t.state.as_str(), t.episode),
                &Alert::from(t),
            )
        })
        .collect()
}

/// The notice for live views naming the figures just judged; none when there are none.
pub fn judged_notice<'a>(
    names: &Names,
    figures: impl Iterator<Item = &'a FigureKey>,
    at: DateTime<Utc>,
) -> Option<Notice> {
    let figures: Vec<JudgedFigure> = figures
        .map(|k| JudgedFigure {
            indicator: k.indicator.to_string(),
            org_unit: k.org_unit.to_string(),
            period: k.period.to_string(),
        })
        .collect();
    if figures.is_empty() {
        return None;
    }
    let judged = Judged { figures, at: at.to_rfc3339() };
    // Plain data: serialising it cannot fail.
    let payload = serde_json::to_vec(&judged).ok()?;
    Some(Notice { subject: names.judged(), payload: payload.into() })
}

/// The figures of a `FigureBatch` message, each checked: a message aggregation could not have
/// sent is poison.
pub fn decode(payload: &[u8]) -> Result<Vec<FigureVersion>, Failure> {
    let batch = FigureBatch::decode(payload).map_err(|e| Failure::poison(anyhow::anyhow!("not a FigureBatch: {e}")))?;
    batch
        .figures
        .iter()
        .map(|a| {
            FigureVersion::try_from(a)
                .map_err(|e| Failure::poison(anyhow::anyhow!("not a figure tiendo could have sent: {e}")))
        })
        .collect()
}

/// What alerting does with each batch of `FigureBatch` messages.
pub struct Judge {
    names: Names,
    catalog: Arc<Catalog>,
    judging: Judging,
}

impl Stateful for Judge {
    const NAME: &'static str = NAME;
    const STREAM: StreamKind = StreamKind::Figures;
    type Item = FigureVersion;
    type Outcome = Outcome;

    fn decode(&self, delivery: &Delivery) -> Result<Vec<FigureVersion>, Failure> {
        decode(delivery.payload())
    }

    async fn apply(
        &self,
        tx: &DatabaseTransaction,
        items: &[&FigureVersion],
        now: DateTime<Utc>,
    ) -> Result<Applied<Outcome>, ApplyError> {
        let (outcomes, transitions) = judge_figures(tx, &self.catalog, self.judging, items, now).await?;
        let judged = items.iter().zip(&outcomes).filter(|(_, o)| **o == Outcome::Judged).map(|(f, _)| &f.key);
        Ok(Applied {
            notices: judged_notice(&self.names, judged, now).into_iter().collect(),
            messages: alert_messages(&self.names, &transitions)?,
            outcomes,
        })
    }

    fn counted(outcome: &Outcome) -> Counted {
        match outcome {
            Outcome::Judged => Counted::Accepted,
            Outcome::Stale => Counted::Duplicate,
            Outcome::Unknown => Counted::Ignored,
        }
    }
}
