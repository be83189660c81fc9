//! The alerting service: judges every figure against its indicator's trajectory.
//!
//! Reads `<prefix>.aggregates.>`, each `Aggregate` parsed once into a [`FigureVersion`];
//! stores each figure (ignoring versions it has already seen), and for every plan that holds
//! the indicator and whose territory holds the unit, judges the unit's latest figure within
//! the plan against the straight path from baseline to target, or, on the plan's final
//! period, gives the verdict (`achieved` or `missed`). When a key enters `behind` (or
//! `missed`) it publishes a `firing` alert on `<prefix>.alerts.<indicator>.<org_unit>`; when
//! it leaves, the same alert id `resolved`. Standings, alerts and their history are stored,
//! and alert messages leave through the outbox, so each transition is announced exactly once
//! in effect. Serves the per-plan gauges.
//!
//! # Layout
//! - [`judge`]: a batch of figures stored and judged inside a transaction.
//! - [`gauges`]: the `tiendo_indicator_*` gauges, refreshed from the database on scrape.
//! - [`Judge`]: decoding and judging a batch; the consumer, transactions and outbox around it
//!   are `tiendo_stateful`, the tables `tiendo_store::alerting`.

pub mod gauges;
pub mod judge;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::Delivery;
use tiendo_bus::names::{msg_id, service};
use tiendo_bus::{Names, StreamKind};
use tiendo_domain::figure::FigureVersion;
use tiendo_domain::Catalog;
use tiendo_proto::v1::{Aggregate, Alert};
use tiendo_runtime::{encode, Deps, Failure};
use tiendo_stateful::{Applied, ApplyError, Counted, Database, Stateful, StatefulService};
use tiendo_store::sea_orm::DatabaseTransaction;

use crate::gauges::IndicatorGauges;
pub use crate::judge::{judge_batch as judge_figures, Outcome};

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = service::ALERTING;

/// The built alerting service.
pub type Alerting = StatefulService<Judge>;

/// Creates the streams, the consumer and the gauges on `db`.
pub async fn build(deps: Deps, db: &Database) -> anyhow::Result<Alerting> {
    let gauges = Arc::new(IndicatorGauges::register(deps.telemetry.registry())?);
    let (connection, catalog) = (db.connection().clone(), deps.catalog.clone());
    deps.telemetry.add_refresher(Arc::new(move || {
        let (gauges, db, catalog) = (gauges.clone(), connection.clone(), catalog.clone());
        Box::pin(async move {
            if let Err(e) = gauges.refresh(&db, &catalog).await {
                tracing::warn!(error = %e, "reading indicator standings for /metrics");
            }
        })
    }));
    let judge = Judge { names: deps.bus.names.clone(), catalog: deps.catalog.clone() };
    StatefulService::build(deps, db, judge).await
}

/// What alerting does with each batch of `Aggregate` messages.
pub struct Judge {
    names: Names,
    catalog: Arc<Catalog>,
}

impl Stateful for Judge {
    const NAME: &'static str = NAME;
    const STREAM: StreamKind = StreamKind::Aggregates;
    type Item = FigureVersion;
    type Outcome = Outcome;

    fn decode(&self, delivery: &Delivery) -> Result<Vec<FigureVersion>, Failure> {
        let aggregate: Aggregate = serde_json::from_slice(delivery.payload())
            .map_err(|e| Failure::poison(anyhow::anyhow!("not an Aggregate: {e}")))?;
        let figure = FigureVersion::try_from(&aggregate)
            .map_err(|e| Failure::poison(anyhow::anyhow!("not a figure tiendo could have sent: {e}")))?;
        Ok(vec![figure])
    }

    async fn apply(
        &self,
        tx: &DatabaseTransaction,
        items: &[&FigureVersion],
        now: DateTime<Utc>,
    ) -> Result<Applied<Outcome>, ApplyError> {
        let (outcomes, transitions) = judge_figures(tx, &self.catalog, items, now).await?;
        let messages = transitions
            .iter()
            .map(|t| {
                encode::json(
                    self.names.alerts(t.key.indicator.as_str(), t.key.org_unit.as_str()),
                    msg_id::alert(&t.alert_id, t.state.as_str(), t.episode),
                    &Alert::from(t),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Applied { outcomes, messages })
    }

    fn counted(outcome: &Outcome) -> Counted {
        match outcome {
            Outcome::Judged => Counted::Accepted,
            Outcome::Stale => Counted::Duplicate,
            Outcome::Unknown => Counted::Ignored,
        }
    }
}
