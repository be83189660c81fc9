//! The aggregation service: keeps every unit's figure and its ancestors' roll-ups.
//!
//! Reads `<prefix>.valid.>` (`ValidBatch` messages), each observation parsed once into a
//! checked [`Observation`]; for each, in one database transaction with the rest of the batch
//! in hand: ignores an event id its department used before, stores the figure as the unit's
//! direct observation for its period (a revision replaces, never adds), and moves the running
//! sums of each ancestor by the difference, along the tree of the period's end date (into
//! every parent a unit has then), so an observation touches only its own unit and its
//! ancestors, each once. Each changed figure (its newest version in the transaction) is written
//! to the outbox in the same transaction and published after the commit twice: on its own to
//! `<prefix>.aggregates.<indicator>.<org_unit>` (JSON, for everyone), and with the
//! transaction's other figures of its indicator in a `FigureBatch` on
//! `<prefix>.figures.<indicator>` (alerting's input: one delivery per indicator and
//! transaction rather than one per figure).
//!
//! Instances share one consumer, or, with `aggregation.partitioned`, the indicators
//! ([`partition`]).
//!
//! # Layout
//! - [`apply`]: one observation applied, and the roll-up above it.
//! - [`partition`]: which consumers an instance reads.
//! - [`Aggregator`]: decoding and applying a batch; the consumer, transactions and outbox
//!   around it are `tiendo_stateful`, the tables `tiendo_store::aggregation`.

pub mod apply;
pub mod partition;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tiendo_bus::consume::Delivery;
use tiendo_bus::names::{msg_id, service};
use tiendo_bus::{Names, Outgoing, StreamKind};
use tiendo_domain::figure::UnitFigure;
use tiendo_domain::{Catalog, FigureKey, Observation};
use tiendo_proto::convert::aggregate;
use tiendo_proto::v1::Aggregate;
use tiendo_proto::v1::{FigureBatch, ValidBatch};
use tiendo_proto::Message as _;
use tiendo_runtime::consumer::Consumer;
use tiendo_runtime::{encode, Deps, Failure};
use tiendo_stateful::{Applied, ApplyError, Counted, Database, Stateful, StatefulService};
use tiendo_store::aggregation::Work;
use tiendo_store::hash::{HashMap, HashMapExt, HashSet, HashSetExt};
use tiendo_store::sea_orm::{ConnectionTrait, DatabaseTransaction};
use tiendo_store::{Isolation, StoreError};

pub use crate::apply::Outcome;

/// Service name: consumer name and `service` metric label.
pub const NAME: &str = service::AGGREGATION;

/// Most figures in one `FigureBatch` message: about 100 bytes each, well under NATS's 1 MB.
pub const FIGURES_PER_MESSAGE: usize = 2_000;

/// The built aggregation service.
pub type Aggregation = StatefulService<Aggregator>;

/// Creates the streams and the service's durable consumers (taking over from those of the
/// other mode, see [`partition`]) on `db`.
pub async fn build(deps: Deps, db: &Database) -> anyhow::Result<Aggregation> {
    let aggregator = Aggregator { names: deps.bus.names.clone(), catalog: deps.catalog.clone() };
    let shares = partition::shares(&deps.bus.names, &deps.catalog, &deps.settings.aggregation)?;
    let wanted: Vec<(String, Option<String>)> = shares.iter().map(|s| (s.consumer.clone(), s.filter.clone())).collect();
    let consumers = Consumer::prepare_all(&deps, StreamKind::Valid, NAME, &wanted).await?;
    let owned: Vec<Consumer> = consumers.into_iter().zip(&shares).filter(|(_, s)| s.owned).map(|(c, _)| c).collect();
    // Their batches are in memory at once: each takes a share of what one consumer would.
    let sharing = owned.len();
    let owned = owned.into_iter().map(|c| c.sharing(sharing)).collect();
    Ok(StatefulService::on(deps, db, aggregator, owned))
}

/// What aggregation does with each batch of `ValidBatch` messages.
pub struct Aggregator {
    names: Names,
    catalog: Arc<Catalog>,
}

/// The observations of a `ValidBatch` message, each checked: a message validation could not
/// have sent is poison.
pub fn decode(payload: &[u8]) -> Result<Vec<Observation>, Failure> {
    let batch = ValidBatch::decode(payload).map_err(|e| Failure::poison(anyhow::anyhow!("not a ValidBatch: {e}")))?;
    batch
        .observations
        .iter()
        .map(|o| {
            Observation::try_from(o).map_err(|e| {
                Failure::poison(anyhow::anyhow!("observation `{}` is not a valid observation: {e}", o.event_id))
            })
        })
        .collect()
}

impl Stateful for Aggregator {
    const NAME: &'static str = NAME;
    const STREAM: StreamKind = StreamKind::Valid;
    type Item = Observation;
    type Outcome = Outcome;

    fn decode(&self, delivery: &Delivery) -> Result<Vec<Observation>, Failure> {
        decode(delivery.payload())
    }

    async fn apply(
        &self,
        tx: &DatabaseTransaction,
        items: &[&Observation],
        now: DateTime<Utc>,
    ) -> Result<Applied<Outcome>, ApplyError> {
        let (outcomes, figures) = apply_observations(tx, &self.catalog, items, now).await?;
        let wire: Vec<Aggregate> = figures.iter().map(|f| aggregate(f, children(&self.catalog, f))).collect();
        let mut messages = wire
            .iter()
            .map(|a| {
                encode::json(
                    self.names.aggregates(&a.indicator, &a.org_unit),
                    msg_id::aggregate(&a.indicator, &a.org_unit, &a.period, a.version),
                    a,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        messages.extend(figure_batches(&self.names, wire));
        Ok(Applied { outcomes, messages, notices: vec![] })
    }

    fn counted(outcome: &Outcome) -> Counted {
        match outcome {
            Outcome::Applied | Outcome::Superseded => Counted::Accepted,
            Outcome::Duplicate => Counted::Duplicate,
        }
    }

    /// Repeatable read, in either mode: every row whose reading decides a write is a row the
    /// transaction writes (an observation's event id and figure, each ancestor it moves, and
    /// the figure that supersedes it, written back as it is: [`apply`]), so of two
    /// transactions changing the same figure (two instances of the shared consumer, or
    /// partitions owned twice by mistake) one fails and is tried again. Serializable would
    /// also fail transactions over the index pages they only read: a batch's lanes, which
    /// write different indicators, failed each other until they ran slower together than
    /// one after the other (docs/performance.md, issue 15, change 13).
    fn isolation(&self) -> Isolation {
        Isolation::RepeatableRead
    }

    /// A figure belongs to one indicator, and so do its ancestors' roll-ups: observations of
    /// different indicators never write the same row.
    fn lane<'a>(&self, item: &'a Observation) -> Option<&'a str> {
        Some(item.indicator().as_str())
    }
}

/// Alerting's messages: `figures` grouped by indicator (in order of first appearance), at
/// most [`FIGURES_PER_MESSAGE`] per message.
fn figure_batches(names: &Names, figures: Vec<Aggregate>) -> Vec<Outgoing> {
    let mut by_indicator: Vec<(String, Vec<Aggregate>)> = Vec::new();
    for a in figures {
        match by_indicator.iter_mut().find(|(indicator, _)| *indicator == a.indicator) {
            Some((_, group)) => group.push(a),
            None => by_indicator.push((a.indicator.clone(), vec![a])),
        }
    }
    let mut messages = Vec::new();
    for (indicator, group) in by_indicator {
        for chunk in group.chunks(FIGURES_PER_MESSAGE) {
            let id =
                msg_id::figures(&indicator, chunk.iter().map(|a| (a.org_unit.as_str(), a.period.as_str(), a.version)));
            messages.push(encode::protobuf(names.figures(&indicator), id, &FigureBatch { figures: chunk.to_vec() }));
        }
    }
    messages
}

/// How many children the figure's unit has in the tree on its period's end date.
fn children(catalog: &Catalog, f: &UnitFigure) -> u32 {
    catalog.tree().children_at(&f.key.org_unit, f.key.period.end()).len() as u32
}

/// Applies `items` in order inside the caller's transaction; returns each one's outcome and
/// the changed figures (the latest version of each key only). Used by the service and by
/// `tiendo replay`.
pub async fn apply_observations<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    items: &[&Observation],
    now: DateTime<Utc>,
) -> Result<(Vec<Outcome>, Vec<UnitFigure>), StoreError> {
    let mut outcomes = Vec::with_capacity(items.len());
    // Each observation touches its unit's figure and its ancestors' (two on a three-level tree).
    let mut figures = HashSet::with_capacity(items.len() * 3);
    for o in items {
        figures.insert(o.key().clone());
        for ancestor in catalog.tree().ancestors_at(o.org_unit(), o.period().end()) {
            figures.insert(o.key().for_unit(ancestor));
        }
    }
    let mut changes =
        Changes { index: HashMap::with_capacity(figures.len()), figures: Vec::with_capacity(figures.len()) };
    let mut work = Work::with_capacity(items.len(), figures.len());
    work.prefetch_events(db, items.iter().copied()).await?;
    work.prefetch_figures(db, figures).await?;
    for obs in items {
        outcomes.push(apply::apply(db, &mut work, catalog, obs, now, &mut |f| changes.push(f)).await?);
    }
    work.flush(db).await?;
    Ok((outcomes, changes.figures))
}

/// Changed figures of one transaction, the latest version of each key only.
struct Changes {
    index: HashMap<FigureKey, usize>,
    figures: Vec<UnitFigure>,
}

impl Changes {
    fn push(&mut self, f: &UnitFigure) {
        match self.index.get(&f.key) {
            Some(&i) => self.figures[i] = f.clone(),
            None => {
                self.index.insert(f.key.clone(), self.figures.len());
                self.figures.push(f.clone());
            }
        }
    }
}
