//! One observation applied inside the caller's transaction.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use tiendo_domain::rollup::{effective, Effective, Sums};
use tiendo_domain::{Catalog, OrgUnitCode, Period};
use tiendo_proto::v1::{Aggregate, ValidObservation};
use tiendo_store::entity::{figure, observation};
use tiendo_store::sea_orm;

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

async fn load<C: ConnectionTrait>(db: &C, indicator: &str, unit: &str, period: Period) -> Result<Row, DbErr> {
    let key = (indicator.to_owned(), unit.to_owned(), period.to_string());
    let model = figure::Entity::find_by_id(key).one(db).await?.unwrap_or_else(|| figure::Model {
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
    });
    Ok(Row { model })
}

async fn save<C: ConnectionTrait>(db: &C, row: &mut Row, now: &str) -> Result<(), DbErr> {
    use figure::Column::*;
    row.model.version += 1;
    row.model.updated_at = now.to_owned();
    // Every column is written: the upsert below is one statement whether the row is new or not.
    let am = row.model.clone().into_active_model().reset_all();
    figure::Entity::insert(am)
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
    Ok(())
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
    catalog: &Catalog,
    obs: &ValidObservation,
    now: &str,
    changed: &mut impl FnMut(Aggregate),
) -> Result<Outcome, DbErr> {
    let (unit, period) = parse_key(&obs.org_unit, &obs.period)?;
    let position = (obs.source_seq as i64, obs.source_index as i32);
    let existing = observation::Entity::find_by_id((obs.department.clone(), obs.event_id.clone())).one(db).await?;
    let model = stored(obs, now);
    match existing {
        Some(e) if (e.source_seq, e.source_index) <= position => Ok(Outcome::Duplicate),
        Some(e) => {
            // A later reuse of this id got here first (a redelivery overtook it). The id
            // belongs to this earlier observation: it takes the row, and both figures it
            // touches are recomputed from what is stored.
            model.clone().into_active_model().reset_all().update(db).await?;
            let (old_unit, old_period) = parse_key(&e.org_unit, &e.period)?;
            refresh(db, catalog, &e.indicator, &old_unit, old_period, now, changed).await?;
            if (e.indicator.as_str(), &old_unit, old_period) != (obs.indicator.as_str(), &unit, period) {
                refresh(db, catalog, &obs.indicator, &unit, period, now, changed).await?;
            }
            Ok(Outcome::Applied)
        }
        None => {
            observation::Entity::insert(model.clone().into_active_model()).exec_without_returning(db).await?;
            let row = load(db, &obs.indicator, unit.as_str(), period).await?;
            if matches!((row.model.direct_seq, row.model.direct_index), (Some(s), Some(i)) if (s, i) > position) {
                return Ok(Outcome::Superseded);
            }
            place(db, catalog, row, Some(Direct::from(&model)), &unit, period, now, changed).await?;
            Ok(Outcome::Applied)
        }
    }
}

/// Recomputes a unit's direct figure from the stored observations: the last published one.
async fn refresh<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    indicator: &str,
    unit: &OrgUnitCode,
    period: Period,
    now: &str,
    changed: &mut impl FnMut(Aggregate),
) -> Result<(), DbErr> {
    use observation::Column as O;
    let last = observation::Entity::find()
        .filter(O::Indicator.eq(indicator))
        .filter(O::OrgUnit.eq(unit.as_str()))
        .filter(O::Period.eq(period.to_string()))
        .order_by_desc(O::SourceSeq)
        .order_by_desc(O::SourceIndex)
        .one(db)
        .await?;
    let row = load(db, indicator, unit.as_str(), period).await?;
    place(db, catalog, row, last.as_ref().map(Direct::from), unit, period, now, changed).await
}

/// Sets a unit's direct figure and moves its ancestors' sums by the difference.
#[allow(clippy::too_many_arguments)]
async fn place<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    mut row: Row,
    direct: Option<Direct>,
    unit: &OrgUnitCode,
    period: Period,
    now: &str,
    changed: &mut impl FnMut(Aggregate),
) -> Result<(), DbErr> {
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
    save(db, &mut row, now).await?;
    changed(row.to_wire(catalog));

    let indicator = row.model.indicator.clone();
    let (mut old, mut new) = (before.contribution(), after.contribution());
    for parent in catalog.ancestors(unit) {
        if old == new {
            break;
        }
        let mut p = load(db, &indicator, parent.as_str(), period).await?;
        let p_before = p.effective();
        p.set_sums(p.sums().moved(old, new));
        let p_after = p.effective();
        save(db, &mut p, now).await?;
        changed(p.to_wire(catalog));
        (old, new) = (p_before.contribution(), p_after.contribution());
    }
    Ok(())
}
