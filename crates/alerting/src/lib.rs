//! The alerting service: judges every figure against its indicator's trajectory.
//!
//! Reads `<prefix>.aggregates.>`; stores each figure (ignoring versions it has already seen),
//! judges the latest period of its (indicator, org unit) against the straight path from
//! baseline to target, and when that key enters `behind` publishes a `firing` alert on
//! `<prefix>.alerts.<indicator>.<org_unit>`; when it leaves, the same alert id `resolved`.
//! States, alerts and their history are stored, and alert messages leave through the outbox,
//! so each transition is announced exactly once in effect. Serves the per-indicator gauges.
//!
//! # Layout
//! - [`judge`]: a batch of figures stored and judged inside a transaction.
//! - [`gauges`]: the `tiendo_indicator_*` gauges, refreshed from the database on scrape.
//! - [`Judge`]: decoding and judging a batch; the consumer, transactions and outbox relay
//!   around it are `tiendo_runtime::stateful`.

pub mod gauges;
pub mod judge;

use std::sync::Arc;

use sea_orm::{DatabaseTransaction, DbErr};
use tiendo_bus::consume::{self, Delivery};
use tiendo_bus::{ContentType, Outgoing, StreamKind};
use tiendo_proto::v1::Aggregate;
use tiendo_runtime::stateful::{Counted, Stateful, StatefulService};
use tiendo_runtime::Deps;
use tiendo_store::sea_orm;

use crate::gauges::IndicatorGauges;
pub use crate::judge::Outcome;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = "alerting";

/// The built alerting service.
pub type Alerting = StatefulService<Judge>;

/// Opens and migrates the database, creates the streams, the consumer and the gauges.
pub async fn build(deps: Deps) -> anyhow::Result<Alerting> {
    let db = deps.database().await?;
    let gauges = Arc::new(IndicatorGauges::register(deps.telemetry.registry())?);
    let catalog = deps.catalog.clone();
    deps.telemetry.add_refresher(Arc::new(move || {
        let (gauges, db, catalog) = (gauges.clone(), db.clone(), catalog.clone());
        Box::pin(async move {
            if let Err(e) = gauges.refresh(&db, &catalog).await {
                tracing::warn!(error = %e, "reading indicator states for /metrics");
            }
        })
    }));
    deps.telemetry.pipeline().touch(NAME);
    StatefulService::build(deps, Judge).await
}

/// What alerting does with each batch of `Aggregate` messages.
pub struct Judge;

impl Stateful for Judge {
    const NAME: &'static str = NAME;
    const STREAM: StreamKind = StreamKind::Aggregates;
    type Item = Aggregate;
    type Outcome = Outcome;

    fn decode(&self, delivery: &Delivery) -> Result<Vec<Aggregate>, String> {
        serde_json::from_slice::<Aggregate>(delivery.payload())
            .map(|a| vec![a])
            .map_err(|e| format!("not an Aggregate: {e}"))
    }

    async fn apply(
        &self,
        tx: &DatabaseTransaction,
        deps: &Deps,
        items: &[&Aggregate],
        now: &str,
    ) -> Result<(Vec<Outcome>, Vec<Outgoing>), DbErr> {
        let (outcomes, alerts) = judge_figures(tx, &deps.catalog, items, now).await?;
        let names = &deps.bus.names;
        let messages = alerts
            .into_iter()
            .map(|alert| {
                consume::outgoing(
                    names.alerts(&alert.indicator, &alert.org_unit),
                    format!("al:{}:{}", alert.alert_id, alert.state),
                    serde_json::to_vec(&alert).unwrap_or_default(),
                    ContentType::Json,
                )
            })
            .collect();
        Ok((outcomes, messages))
    }

    fn counted(outcome: &Outcome) -> Counted {
        match outcome {
            Outcome::Judged => Counted::Accepted,
            Outcome::Stale => Counted::Duplicate,
            Outcome::Unknown => Counted::Ignored,
        }
    }
}

/// Stores and judges `items` inside the caller's transaction ([`judge::judge_batch`]);
/// returns each one's outcome and the alert messages to send. Used by the service and by
/// `tiendo replay`.
pub use crate::judge::judge_batch as judge_figures;
