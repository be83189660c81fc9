//! One observation applied inside the caller's transaction, through a [`UnitOfWork`] that
//! reads each row once and writes it once per batch.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use tiendo_domain::rollup::{effective, Effective, Sums};
use tiendo_domain::{Catalog, OrgUnitCode, Period};
use tiendo_proto::v1::{Aggregate, ValidObservation};
use tiendo_store::entity::{figure, observation};
use tiendo_store::keys::any_key;
use tiendo_store::{sea_orm, ROWS_PER_STATEMENT};

/// What became of one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, and the roll-ups above it moved.
    Applied,
    /// Its department used this event id before: ignored, whatever its payload.
    Duplicate,
    /// A revision published after this one is already in: stored, but the figure does not
    /// move backwards.
    Superseded,
}

/// A figure row as loaded, or a fresh one.
struct Row {
    model: figure::Model,
}

impl Row {
    fn direct(&self) -> Option<Effective> {
        let m = &self.model;
        match (m.direct_value, m.direct_numerator, m.direct_denominator) {
            (_, Some(n), Some(d)) if d > 0 => Some(Effective::Counts { numerator: n as u64, denominator: d as u64 }),
            (Some(v), _, _) => Some(Effective::ValueOnly(v)),
            _ => None,
        }
    }

    fn sums(&self) -> Sums {
        let m = &self.model;
        Sums {
            numerator: m.sum_numerator,
            denominator: m.sum_denominator,
            covered: m.covered,
            value_only: m.value_only,
        }
    }

    fn effective(&self) -> Effective {
        effective(self.direct(), self.sums())
    }

    fn set_sums(&mut self, s: Sums) {
        let m = &mut self.model;
        (m.sum_numerator, m.sum_denominator, m.covered, m.value_only) =
            (s.numerator, s.denominator, s.covered, s.value_only);
    }

    fn to_wire(&self, catalog: &Catalog) -> Aggregate {
        let m = &self.model;
        let eff = self.effective();
        let counts = match eff {
            Effective::Counts { numerator, denominator } => Some((numerator, denominator)),
            _ => None,
        };
        let children_total = catalog.unit(&m.org_unit).map(|u| u.children.len()).unwrap_or(0);
        Aggregate {
            indicator: m.indicator.clone(),
            org_unit: m.org_unit.clone(),
            period: m.period.clone(),
            value: eff.value(),
            numerator: counts.map(|c| c.0),
            denominator: counts.map(|c| c.1),
            source: if self.direct().is_some() { "direct" } else { "rollup" }.to_owned(),
            children_total: children_total as u32,
            children_covered: m.covered as u32,
            children_value_only: m.value_only as u32,
            version: m.version as u64,
            period_end: m.period_end.clone(),
            at: m.updated_at.clone(),
        }
    }
}

type FigureKey = (String, String, String);
type EventKey = (String, String);

fn fresh(indicator: &str, unit: &str, period: Period) -> figure::Model {
    figure::Model {
        indicator: indicator.to_owned(),
        org_unit: unit.to_owned(),
        period: period.to_string(),
        period_end: period.end().to_string(),
        direct_value: None,
        direct_numerator: None,
        direct_denominator: None,
        direct_event_id: None,
        direct_department: None,
        direct_seq: None,
        direct_index: None,
        sum_numerator: 0,
        sum_denominator: 0,
        covered: 0,
        value_only: 0,
        version: 0,
        updated_at: String::new(),
    }
}

/// What one transaction reads and writes, kept in memory until [`UnitOfWork::flush`]: each
/// figure row is read at most once and written once per batch, however many observations of
/// the batch touch it (a province row is touched by every one of its units' observations).
#[derive(Default)]
pub struct UnitOfWork {
    figures: HashMap<FigureKey, Row>,
    /// Figures known not to exist yet (after a prefetch).
    absent: HashSet<FigureKey>,
    /// Changed figures, in order of first change; `dirty_set` answers "already listed?".
    dirty: Vec<FigureKey>,
    dirty_set: HashSet<FigureKey>,
    /// Observations known to this transaction: `None` when known to be absent.
    observations: HashMap<EventKey, Option<observation::Model>>,
    inserted: Vec<EventKey>,
    inserted_set: HashSet<EventKey>,
    replaced: Vec<EventKey>,
}

impl UnitOfWork {
    /// Reads in one query per few hundred ids which of these (department, event id) exist.
    /// Each query names one department, so it walks the primary key instead of the table.
    pub async fn prefetch<C: ConnectionTrait>(&mut self, db: &C, keys: &[EventKey]) -> Result<(), DbErr> {
        let mut by_department: HashMap<&str, Vec<&str>> = HashMap::new();
        for k in keys.iter().filter(|k| !self.observations.contains_key(*k)) {
            by_department.entry(k.0.as_str()).or_default().push(k.1.as_str());
        }
        for (department, ids) in by_department {
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let found = observation::Entity::find()
                    .filter(observation::Column::Department.eq(department))
                    .filter(observation::Column::EventId.is_in(chunk.iter().copied()))
                    .all(db)
                    .await?;
                for id in chunk {
                    self.observations.entry((department.to_owned(), (*id).to_owned())).or_insert(None);
                }
                for o in found {
                    self.observations.insert((o.department.clone(), o.event_id.clone()), Some(o));
                }
            }
        }
        Ok(())
    }

    /// Reads in one query per few hundred keys the figure rows a batch will touch.
    pub async fn prefetch_figures<C: ConnectionTrait>(
        &mut self,
        db: &C,
        keys: HashSet<FigureKey>,
    ) -> Result<(), DbErr> {
        use figure::Column as F;
        let wanted: Vec<FigureKey> = keys.into_iter().filter(|k| !self.figures.contains_key(k)).collect();
        for chunk in wanted.chunks(ROWS_PER_STATEMENT / 2) {
            let found = figure::Entity::find()
                .filter(any_key(
                    [F::Indicator, F::OrgUnit, F::Period],
                    chunk.iter().map(|(i, u, p)| [i.as_str(), u.as_str(), p.as_str()]),
                ))
                .all(db)
                .await?;
            self.absent.extend(chunk.iter().cloned());
            for model in found {
                let key = (model.indicator.clone(), model.org_unit.clone(), model.period.clone());
                self.absent.remove(&key);
                self.figures.insert(key, Row { model });
            }
        }
        Ok(())
    }

    async fn observation<C: ConnectionTrait>(
        &mut self,
        db: &C,
        key: &EventKey,
    ) -> Result<Option<observation::Model>, DbErr> {
        if let Some(known) = self.observations.get(key) {
            return Ok(known.clone());
        }
        let found = observation::Entity::find_by_id(key.clone()).one(db).await?;
        self.observations.insert(key.clone(), found.clone());
        Ok(found)
    }

    fn store_observation(&mut self, model: observation::Model, replacing: bool) {
        let key = (model.department.clone(), model.event_id.clone());
        if replacing && !self.inserted_set.contains(&key) {
            self.replaced.push(key.clone());
        } else if !replacing {
            self.inserted_set.insert(key.clone());
            self.inserted.push(key.clone());
        }
        self.observations.insert(key, Some(model));
    }

    async fn figure<C: ConnectionTrait>(
        &mut self,
        db: &C,
        indicator: &str,
        unit: &str,
        period: Period,
    ) -> Result<&mut Row, DbErr> {
        let key = (indicator.to_owned(), unit.to_owned(), period.to_string());
        if !self.figures.contains_key(&key) {
            let found = match self.absent.contains(&key) {
                true => None,
                false => figure::Entity::find_by_id(key.clone()).one(db).await?,
            };
            let model = found.unwrap_or_else(|| fresh(indicator, unit, period));
            self.figures.insert(key.clone(), Row { model });
        }
        Ok(self.figures.get_mut(&key).expect("inserted above"))
    }

    fn changed(&mut self, row: &mut Row, now: &str) {
        row.model.version += 1;
        row.model.updated_at = now.to_owned();
        let key = (row.model.indicator.clone(), row.model.org_unit.clone(), row.model.period.clone());
        if self.dirty_set.insert(key.clone()) {
            self.dirty.push(key.clone());
        }
        self.figures.insert(key, Row { model: row.model.clone() });
    }

    /// Writes the observations not yet in the database.
    async fn flush_observations<C: ConnectionTrait>(&mut self, db: &C) -> Result<(), DbErr> {
        let models =
            |keys: &[EventKey], known: &HashMap<EventKey, Option<observation::Model>>| -> Vec<observation::Model> {
                keys.iter().filter_map(|k| known.get(k).cloned().flatten()).collect()
            };
        self.inserted_set.clear();
        for chunk in models(&std::mem::take(&mut self.inserted), &self.observations).chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().cloned().map(|m| m.into_active_model().reset_all());
            observation::Entity::insert_many(rows).exec_without_returning(db).await?;
        }
        for m in models(&std::mem::take(&mut self.replaced), &self.observations) {
            m.into_active_model().reset_all().update(db).await?;
        }
        Ok(())
    }

    /// Writes everything this transaction changed.
    pub async fn flush<C: ConnectionTrait>(&mut self, db: &C) -> Result<(), DbErr> {
        use figure::Column::*;
        self.flush_observations(db).await?;
        let dirty: Vec<figure::Model> = std::mem::take(&mut self.dirty)
            .iter()
            .filter_map(|k| self.figures.get(k))
            .map(|r| r.model.clone())
            .collect();
        for chunk in dirty.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().cloned().map(|m| m.into_active_model().reset_all());
            figure::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([Indicator, OrgUnit, Period])
                        .update_columns([
                            PeriodEnd,
                            DirectValue,
                            DirectNumerator,
                            DirectDenominator,
                            DirectEventId,
                            DirectDepartment,
                            DirectSeq,
                            DirectIndex,
                            SumNumerator,
                            SumDenominator,
                            Covered,
                            ValueOnly,
                            Version,
                            UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?;
        }
        Ok(())
    }
}

/// The figure a unit reported directly: what the `direct_*` columns of its row hold.
struct Direct {
    value: f64,
    numerator: Option<i64>,
    denominator: Option<i64>,
    event_id: String,
    department: String,
    position: (i64, i32),
}

impl From<&observation::Model> for Direct {
    fn from(o: &observation::Model) -> Self {
        Direct {
            value: o.value,
            numerator: o.numerator,
            denominator: o.denominator,
            event_id: o.event_id.clone(),
            department: o.department.clone(),
            position: (o.source_seq, o.source_index),
        }
    }
}

fn stored(obs: &ValidObservation, now: &str) -> observation::Model {
    observation::Model {
        department: obs.department.clone(),
        event_id: obs.event_id.clone(),
        indicator: obs.indicator.clone(),
        org_unit: obs.org_unit.clone(),
        period: obs.period.clone(),
        value: obs.value,
        numerator: obs.numerator.map(|n| n as i64),
        denominator: obs.denominator.map(|d| d as i64),
        source_seq: obs.source_seq as i64,
        source_index: obs.source_index as i32,
        received_at: obs.received_at.clone(),
        applied_at: now.to_owned(),
    }
}

fn parse_key(unit: &str, period: &str) -> Result<(OrgUnitCode, Period), DbErr> {
    // Validation checked both; a failure here is a message that never came from validation.
    let unit = OrgUnitCode::parse(unit).map_err(|e| DbErr::Custom(e.to_string()))?;
    let period = period.parse().map_err(|e| DbErr::Custom(format!("invalid period in a valid observation: {e}")))?;
    Ok((unit, period))
}

/// Applies `obs`; reports each figure it changed to `changed`, the unit's first, then its
/// ancestors' upwards.
///
/// The result depends only on which observations arrived, not on their order: an event id
/// belongs to its first use in publication order (the ingest stream position), and a unit's
/// direct figure is the last-published observation for its period.
pub async fn apply<C: ConnectionTrait>(
    db: &C,
    work: &mut UnitOfWork,
    catalog: &Catalog,
    obs: &ValidObservation,
    now: &str,
    changed: &mut impl FnMut(Aggregate),
) -> Result<Outcome, DbErr> {
    let (unit, period) = parse_key(&obs.org_unit, &obs.period)?;
    let position = (obs.source_seq as i64, obs.source_index as i32);
    let existing = work.observation(db, &(obs.department.clone(), obs.event_id.clone())).await?;
    let model = stored(obs, now);
    match existing {
        Some(e) if (e.source_seq, e.source_index) <= position => Ok(Outcome::Duplicate),
        Some(e) => {
            // A later reuse of this id got here first (a redelivery overtook it). The id
            // belongs to this earlier observation: it takes the row, and both figures it
            // touches are recomputed from what is stored.
            work.store_observation(model, true);
            let (old_unit, old_period) = parse_key(&e.org_unit, &e.period)?;
            refresh(db, work, catalog, &e.indicator, &old_unit, old_period, now, changed).await?;
            if (e.indicator.as_str(), &old_unit, old_period) != (obs.indicator.as_str(), &unit, period) {
                refresh(db, work, catalog, &obs.indicator, &unit, period, now, changed).await?;
            }
            Ok(Outcome::Applied)
        }
        None => {
            let direct = Direct::from(&model);
            work.store_observation(model, false);
            let row = work.figure(db, &obs.indicator, unit.as_str(), period).await?;
            if matches!((row.model.direct_seq, row.model.direct_index), (Some(s), Some(i)) if (s, i) > position) {
                return Ok(Outcome::Superseded);
            }
            place(db, work, catalog, &obs.indicator, Some(direct), &unit, period, now, changed).await?;
            Ok(Outcome::Applied)
        }
    }
}

/// Recomputes a unit's direct figure from the stored observations: the last published one.
#[allow(clippy::too_many_arguments)]
async fn refresh<C: ConnectionTrait>(
    db: &C,
    work: &mut UnitOfWork,
    catalog: &Catalog,
    indicator: &str,
    unit: &OrgUnitCode,
    period: Period,
    now: &str,
    changed: &mut impl FnMut(Aggregate),
) -> Result<(), DbErr> {
    use observation::Column as O;
    // The query below must see this transaction's own observations.
    work.flush_observations(db).await?;
    let last = observation::Entity::find()
        .filter(O::Indicator.eq(indicator))
        .filter(O::OrgUnit.eq(unit.as_str()))
        .filter(O::Period.eq(period.to_string()))
        .order_by_desc(O::SourceSeq)
        .order_by_desc(O::SourceIndex)
        .one(db)
        .await?;
    place(db, work, catalog, indicator, last.as_ref().map(Direct::from), unit, period, now, changed).await
}

/// Sets a unit's direct figure and moves its ancestors' sums by the difference.
#[allow(clippy::too_many_arguments)]
async fn place<C: ConnectionTrait>(
    db: &C,
    work: &mut UnitOfWork,
    catalog: &Catalog,
    indicator: &str,
    direct: Option<Direct>,
    unit: &OrgUnitCode,
    period: Period,
    now: &str,
    changed: &mut impl FnMut(Aggregate),
) -> Result<(), DbErr> {
    let mut row = Row { model: work.figure(db, indicator, unit.as_str(), period).await?.model.clone() };
    let before = row.effective();
    {
        let m = &mut row.model;
        m.direct_value = direct.as_ref().map(|d| d.value);
        m.direct_numerator = direct.as_ref().and_then(|d| d.numerator);
        m.direct_denominator = direct.as_ref().and_then(|d| d.denominator);
        m.direct_event_id = direct.as_ref().map(|d| d.event_id.clone());
        m.direct_department = direct.as_ref().map(|d| d.department.clone());
        m.direct_seq = direct.as_ref().map(|d| d.position.0);
        m.direct_index = direct.as_ref().map(|d| d.position.1);
    }
    let after = row.effective();
    work.changed(&mut row, now);
    changed(row.to_wire(catalog));

    let (mut old, mut new) = (before.contribution(), after.contribution());
    for parent in catalog.ancestors(unit) {
        if old == new {
            break;
        }
        let mut p = Row { model: work.figure(db, indicator, parent.as_str(), period).await?.model.clone() };
        let p_before = p.effective();
        p.set_sums(p.sums().moved(old, new));
        let p_after = p.effective();
        work.changed(&mut p, now);
        changed(p.to_wire(catalog));
        (old, new) = (p_before.contribution(), p_after.contribution());
    }
    Ok(())
}
