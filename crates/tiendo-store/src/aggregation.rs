//! Aggregation's tables: every observation applied (one row per department and event id) and
//! every unit's figure per (indicator, org unit, period).
//!
//! [`Work`] is one transaction's view of them: each row is read at most once and written once
//! per batch, however many observations of the batch touch it (a province's figure is touched
//! by every one of its units' observations). Rows are converted to domain types here, so the
//! service works on checked keys and figures only.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use tiendo_domain::figure::{Direct, UnitFigure};
use tiendo_domain::observation::Figure;
use tiendo_domain::rollup::Sums;
use tiendo_domain::{DepartmentCode, EventId, FigureKey, Observation, Percent, Position};

use crate::entity::{figure, observation};
use crate::error::StoreError;
use crate::hash::{HashMap, HashMapExt, HashSet, HashSetExt};
use crate::keys::ByKeys;
use crate::rows::Insert;
use crate::{key_texts, parse_key, parse_time, time, ROWS_PER_STATEMENT};

/// Who used a (department, event id) first: the figure it reported and where it stands in
/// publication order.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstUse {
    pub key: FigureKey,
    pub position: Position,
}

type EventKey = (DepartmentCode, EventId);

/// One transaction's reads and writes of aggregation's tables, kept in memory until
/// [`Work::flush`]. Made by [`Work::with_capacity`], sized for its batch.
pub struct Work {
    figures: HashMap<FigureKey, UnitFigure>,
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

impl Work {
    /// A transaction's work for about `observations` observations touching about `figures`
    /// figures: its tables sized once, not grown while it runs.
    pub fn with_capacity(observations: usize, figures: usize) -> Self {
        Work {
            figures: HashMap::with_capacity(figures),
            absent: HashSet::with_capacity(figures),
            dirty: Vec::with_capacity(figures),
            dirty_set: HashSet::with_capacity(figures),
            observations: HashMap::with_capacity(observations),
            inserted: Vec::with_capacity(observations),
            inserted_set: HashSet::with_capacity(observations),
            replaced: Vec::new(),
        }
    }

    /// Reads in one query per hundred-odd ids which of these (department, event id) exist,
    /// each found through the primary key ([`ByKeys`]).
    pub async fn prefetch_events<'a, C: ConnectionTrait>(
        &mut self,
        db: &C,
        observations: impl IntoIterator<Item = &'a Observation>,
    ) -> Result<(), StoreError> {
        use observation::Column as O;
        let mut wanted: Vec<EventKey> = Vec::new();
        for o in observations {
            let key = (o.department().clone(), o.event_id().clone());
            if !self.observations.contains_key(&key) {
                // Absent until found; also makes a repeated id asked once.
                self.observations.insert(key.clone(), None);
                wanted.push(key);
            }
        }
        let mut lookup = ByKeys::<observation::Entity, 2>::new(db.get_database_backend(), [O::Department, O::EventId]);
        for chunk in wanted.chunks(ROWS_PER_STATEMENT / 2) {
            let texts: Vec<[String; 2]> = chunk.iter().map(|(d, e)| [d.to_string(), e.to_string()]).collect();
            for o in lookup.all(db, &texts).await? {
                let department = DepartmentCode::parse(&o.department).map_err(corrupt)?;
                let key = (department, EventId::parse(&o.event_id).map_err(corrupt)?);
                self.observations.insert(key, Some(o));
            }
        }
        Ok(())
    }

    /// Reads in one query per few hundred keys the figure rows a batch will touch.
    pub async fn prefetch_figures<C: ConnectionTrait>(
        &mut self,
        db: &C,
        keys: HashSet<FigureKey>,
    ) -> Result<(), StoreError> {
        use figure::Column as F;
        let wanted: Vec<FigureKey> = keys.into_iter().filter(|k| !self.figures.contains_key(k)).collect();
        let mut lookup =
            ByKeys::<figure::Entity, 3>::new(db.get_database_backend(), [F::Indicator, F::OrgUnit, F::Period]);
        for chunk in wanted.chunks(ROWS_PER_STATEMENT / 2) {
            let texts: Vec<[String; 3]> = chunk.iter().map(key_texts).collect();
            let found = lookup.all(db, &texts).await?;
            self.absent.extend(chunk.iter().cloned());
            for model in found {
                let f = unit_figure(model)?;
                self.absent.remove(&f.key);
                self.figures.insert(f.key.clone(), f);
            }
        }
        Ok(())
    }

    /// Who used this observation's (department, event id) first, if anyone did.
    pub async fn first_use<C: ConnectionTrait>(
        &mut self,
        db: &C,
        o: &Observation,
    ) -> Result<Option<FirstUse>, StoreError> {
        let key = (o.department().clone(), o.event_id().clone());
        let model = match self.observations.get(&key) {
            Some(known) => known.clone(),
            None => {
                let found = observation::Entity::find_by_id((key.0.to_string(), key.1.to_string())).one(db).await?;
                self.observations.insert(key, found.clone());
                found
            }
        };
        model
            .map(|m| {
                Ok(FirstUse {
                    key: parse_key(&m.indicator, &m.org_unit, &m.period)?,
                    position: Position { seq: m.source_seq as u64, index: m.source_index as u32 },
                })
            })
            .transpose()
    }

    /// Records `o` as the first use of its event id, applied `at`; `replacing` when a later
    /// use held the id until now.
    pub fn record(&mut self, o: &Observation, at: DateTime<Utc>, replacing: bool) {
        let key = (o.department().clone(), o.event_id().clone());
        if replacing && !self.inserted_set.contains(&key) {
            self.replaced.push(key.clone());
        } else if !replacing {
            self.inserted_set.insert(key.clone());
            self.inserted.push(key.clone());
        }
        self.observations.insert(key, Some(observation_row(o, at)));
    }

    /// The unit's figure as this transaction sees it (empty when it was never stored).
    pub async fn figure<C: ConnectionTrait>(&mut self, db: &C, key: &FigureKey) -> Result<UnitFigure, StoreError> {
        if let Some(f) = self.figures.get(key) {
            return Ok(f.clone());
        }
        let found = match self.absent.contains(key) {
            true => None,
            false => {
                let [i, u, p] = key_texts(key);
                figure::Entity::find_by_id((i, u, p)).one(db).await?.map(unit_figure).transpose()?
            }
        };
        let f = found.unwrap_or_else(|| UnitFigure::empty(key.clone()));
        self.figures.insert(key.clone(), f.clone());
        Ok(f)
    }

    /// Keeps a figure to write at [`Work::flush`]: changed, or read to decide and written
    /// back as it is (so that a concurrent change of it conflicts).
    pub fn changed(&mut self, f: UnitFigure) {
        if self.dirty_set.insert(f.key.clone()) {
            self.dirty.push(f.key.clone());
        }
        self.figures.insert(f.key.clone(), f);
    }

    /// The last-published observation stored for a figure, as its direct figure.
    pub async fn last_direct<C: ConnectionTrait>(
        &mut self,
        db: &C,
        key: &FigureKey,
    ) -> Result<Option<Direct>, StoreError> {
        use observation::Column as O;
        // The query below must see this transaction's own observations.
        self.flush_observations(db).await?;
        let [i, u, p] = key_texts(key);
        let last = observation::Entity::find()
            .filter(O::Indicator.eq(i))
            .filter(O::OrgUnit.eq(u))
            .filter(O::Period.eq(p))
            .order_by_desc(O::SourceSeq)
            .order_by_desc(O::SourceIndex)
            .one(db)
            .await?;
        last.map(|m| direct_of(&m)).transpose()
    }

    /// Writes the observations not yet in the database.
    async fn flush_observations<C: ConnectionTrait>(&mut self, db: &C) -> Result<(), StoreError> {
        let models =
            |keys: &[EventKey], known: &HashMap<EventKey, Option<observation::Model>>| -> Vec<observation::Model> {
                keys.iter().filter_map(|k| known.get(k).cloned().flatten()).collect()
            };
        self.inserted_set.clear();
        let insert = Insert::<observation::Entity>::new(db.get_database_backend(), None);
        for chunk in models(&std::mem::take(&mut self.inserted), &self.observations).chunks(ROWS_PER_STATEMENT) {
            insert.execute(db, chunk).await?;
        }
        for m in models(&std::mem::take(&mut self.replaced), &self.observations) {
            m.into_active_model().reset_all().update(db).await?;
        }
        Ok(())
    }

    /// Writes everything this transaction changed.
    pub async fn flush<C: ConnectionTrait>(&mut self, db: &C) -> Result<(), StoreError> {
        use figure::Column::*;
        self.flush_observations(db).await?;
        let dirty: Vec<figure::Model> =
            std::mem::take(&mut self.dirty).iter().filter_map(|k| self.figures.get(k)).map(figure_row).collect();
        let upsert = OnConflict::columns([Indicator, OrgUnit, Period])
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
            .to_owned();
        let insert = Insert::<figure::Entity>::new(db.get_database_backend(), Some(upsert));
        for chunk in dirty.chunks(ROWS_PER_STATEMENT) {
            insert.execute(db, chunk).await?;
        }
        Ok(())
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn stored_figure(
    value: Option<f64>,
    numerator: Option<i64>,
    denominator: Option<i64>,
) -> Result<Option<Figure>, StoreError> {
    match (value, numerator, denominator) {
        (_, Some(n), Some(d)) if d > 0 => Figure::from_counts(n as u64, d as u64)
            .map(Some)
            .ok_or_else(|| corrupt(format!("counts {n}/{d} are not a share"))),
        (Some(v), _, _) => Percent::new(v)
            .map(|p| Some(Figure::from_value(p)))
            .ok_or_else(|| corrupt(format!("value {v} is not a percentage"))),
        _ => Ok(None),
    }
}

fn direct_of(m: &observation::Model) -> Result<Direct, StoreError> {
    Ok(Direct {
        figure: stored_figure(Some(m.value), m.numerator, m.denominator)?
            .ok_or_else(|| corrupt("observation without a figure"))?,
        event_id: EventId::parse(&m.event_id).map_err(corrupt)?,
        department: DepartmentCode::parse(&m.department).map_err(corrupt)?,
        position: Position { seq: m.source_seq as u64, index: m.source_index as u32 },
    })
}

pub(crate) fn unit_figure(m: figure::Model) -> Result<UnitFigure, StoreError> {
    let key = parse_key(&m.indicator, &m.org_unit, &m.period)?;
    let direct = match stored_figure(m.direct_value, m.direct_numerator, m.direct_denominator)? {
        None => None,
        Some(figure) => Some(Direct {
            figure,
            event_id: EventId::parse(m.direct_event_id.as_deref().unwrap_or_default()).map_err(corrupt)?,
            department: DepartmentCode::parse(m.direct_department.as_deref().unwrap_or_default()).map_err(corrupt)?,
            position: Position { seq: m.direct_seq.unwrap_or(0) as u64, index: m.direct_index.unwrap_or(0) as u32 },
        }),
    };
    Ok(UnitFigure {
        key,
        direct,
        sums: Sums {
            numerator: m.sum_numerator,
            denominator: m.sum_denominator,
            covered: m.covered,
            value_only: m.value_only,
        },
        version: m.version as u64,
        updated_at: match m.updated_at.as_str() {
            "" => None,
            s => Some(parse_time(s)?),
        },
    })
}

fn figure_row(f: &UnitFigure) -> figure::Model {
    let d = f.direct.as_ref();
    let counts = d.and_then(|d| d.figure.counts());
    figure::Model {
        indicator: f.key.indicator.to_string(),
        org_unit: f.key.org_unit.to_string(),
        period: f.key.period.to_string(),
        period_end: f.key.period.end().to_string(),
        direct_value: d.map(|d| d.figure.value().get()),
        direct_numerator: counts.map(|c| c.0 as i64),
        direct_denominator: counts.map(|c| c.1 as i64),
        direct_event_id: d.map(|d| d.event_id.to_string()),
        direct_department: d.map(|d| d.department.to_string()),
        direct_seq: d.map(|d| d.position.seq as i64),
        direct_index: d.map(|d| d.position.index as i32),
        sum_numerator: f.sums.numerator,
        sum_denominator: f.sums.denominator,
        covered: f.sums.covered,
        value_only: f.sums.value_only,
        version: f.version as i64,
        updated_at: f.updated_at.map(time).unwrap_or_default(),
    }
}

fn observation_row(o: &Observation, at: DateTime<Utc>) -> observation::Model {
    let figure = o.figure();
    observation::Model {
        department: o.department().to_string(),
        event_id: o.event_id().to_string(),
        indicator: o.indicator().to_string(),
        org_unit: o.org_unit().to_string(),
        period: o.period().to_string(),
        value: figure.value().get(),
        numerator: figure.counts().map(|c| c.0 as i64),
        denominator: figure.counts().map(|c| c.1 as i64),
        source_seq: o.position().seq as i64,
        source_index: o.position().index as i32,
        received_at: time(o.received_at()),
        applied_at: time(at),
        note: Some(o.note()).filter(|n| !n.is_empty()).map(str::to_owned),
    }
}
