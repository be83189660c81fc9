//! The aggregation service: keeps every unit's figure and its ancestors' roll-ups.
//!
//! Reads `<prefix>.valid.>` (`ValidBatch` messages); for each observation, in one database
//! transaction with the rest of the batch in hand: ignores an event id its department used
//! before, stores the figure as the unit's direct observation for its period (a revision replaces, never adds), and moves the
//! running sums of each ancestor by the difference, so an observation touches only its own
//! unit and its ancestors. Each changed figure is written to the outbox in the same
//! transaction and published after the commit to `<prefix>.aggregates.<indicator>.<org_unit>`.
//!
//! # Layout
//! - [`apply`]: one observation applied inside a transaction.
//! - [`Aggregator`]: decoding and applying a batch; the consumer, transactions and outbox
//!   relay around it are `tiendo_runtime::stateful`.

pub mod apply;

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use tiendo_bus::consume::{self, Delivery};
use tiendo_bus::{ContentType, Outgoing, StreamKind};
use tiendo_domain::Catalog;
use tiendo_proto::v1::{Aggregate, ValidBatch, ValidObservation};
use tiendo_proto::Message as _;
use tiendo_runtime::stateful::{Counted, Stateful, StatefulService};
use tiendo_runtime::Deps;
use tiendo_store::sea_orm;

pub use crate::apply::Outcome;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = "aggregation";

/// The built aggregation service.
pub type Aggregation = StatefulService<Aggregator>;

/// Opens and migrates the database, creates the streams and the durable consumer.
pub async fn build(deps: Deps) -> anyhow::Result<Aggregation> {
    StatefulService::build(deps, Aggregator).await
}

/// What aggregation does with each batch of `ValidBatch` messages.
pub struct Aggregator;

impl Stateful for Aggregator {
    const NAME: &'static str = NAME;
    const STREAM: StreamKind = StreamKind::Valid;
    type Item = ValidObservation;
    type Outcome = Outcome;

    fn decode(&self, delivery: &Delivery) -> Result<Vec<ValidObservation>, String> {
        ValidBatch::decode(delivery.payload().as_ref())
            .map(|b| b.observations)
            .map_err(|e| format!("not a ValidBatch: {e}"))
    }

    async fn apply(
        &self,
        tx: &DatabaseTransaction,
        deps: &Deps,
        items: &[&ValidObservation],
        now: &str,
    ) -> Result<(Vec<Outcome>, Vec<Outgoing>), DbErr> {
        let (outcomes, figures) = apply_observations(tx, &deps.catalog, items, now).await?;
        let names = &deps.bus.names;
        let messages = figures
            .into_iter()
            .map(|a| {
                consume::outgoing(
                    names.aggregates(&a.indicator, &a.org_unit),
                    format!("a:{}:{}:{}:{}", a.indicator, a.org_unit, a.period, a.version),
                    serde_json::to_vec(&a).unwrap_or_default(),
                    ContentType::Json,
                )
            })
            .collect();
        Ok((outcomes, messages))
    }

    fn counted(outcome: &Outcome) -> Counted {
        match outcome {
            Outcome::Applied | Outcome::Superseded => Counted::Accepted,
            Outcome::Duplicate => Counted::Duplicate,
        }
    }
}

/// Applies `items` in order inside the caller's transaction; returns each one's outcome and
/// the changed figures (the latest version of each key only). Used by the service and by
/// `tiendo replay`.
pub async fn apply_observations<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    items: &[&ValidObservation],
    now: &str,
) -> Result<(Vec<Outcome>, Vec<Aggregate>), DbErr> {
    let mut changes = Changes::default();
    let mut outcomes = Vec::with_capacity(items.len());
    let mut work = apply::UnitOfWork::default();
    let keys: Vec<(String, String)> = items.iter().map(|o| (o.department.clone(), o.event_id.clone())).collect();
    work.prefetch(db, &keys).await?;
    let mut figures = std::collections::HashSet::new();
    for o in items {
        if let Ok(unit) = tiendo_domain::OrgUnitCode::parse(&o.org_unit) {
            for u in std::iter::once(unit.clone()).chain(catalog.ancestors(&unit)) {
                figures.insert((o.indicator.clone(), u.to_string(), o.period.clone()));
            }
        }
    }
    work.prefetch_figures(db, figures).await?;
    for obs in items {
        outcomes.push(apply::apply(db, &mut work, catalog, obs, now, &mut |a| changes.push(a)).await?);
    }
    work.flush(db).await?;
    Ok((outcomes, changes.figures))
}

/// Changed figures of one transaction, the latest version of each key only.
#[derive(Default)]
struct Changes {
    index: HashMap<(String, String, String), usize>,
    figures: Vec<Aggregate>,
}

impl Changes {
    fn push(&mut self, a: Aggregate) {
        let key = (a.indicator.clone(), a.org_unit.clone(), a.period.clone());
        match self.index.get(&key) {
            Some(&i) => self.figures[i] = a,
            None => {
                self.index.insert(key, self.figures.len());
                self.figures.push(a);
            }
        }
    }
}
