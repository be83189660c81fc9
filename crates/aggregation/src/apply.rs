//! One observation applied inside the caller's transaction.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel};
use tiendo_domain::rollup::{effective, Effective, Sums};
use tiendo_domain::{Catalog, OrgUnitCode, Period};
use tiendo_proto::v1::{Aggregate, ValidObservation};
use tiendo_store::entity::{figure, processed_event};
use tiendo_store::sea_orm;

/// What became of one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, and the roll-ups above it moved.
    Applied,
    /// Its department used this event id before: ignored, whatever its payload.
    Duplicate,
    /// A revision published after this one is already in: recorded, not applied, so the
    /// figure never moves backwards.
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

async fn record<C: ConnectionTrait>(db: &C, obs: &ValidObservation, outcome: &str, now: &str) -> Result<(), DbErr> {
    processed_event::Entity::insert(processed_event::ActiveModel {
        department: Set(obs.department.clone()),
        event_id: Set(obs.event_id.clone()),
        outcome: Set(outcome.to_owned()),
        applied_at: Set(now.to_owned()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Applies `obs`; reports each figure it changed to `changed`, the unit's first, then its
/// ancestors' upwards.
pub async fn apply<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    obs: &ValidObservation,
    now: &str,
    changed: &mut impl FnMut(Aggregate),
) -> Result<Outcome, DbErr> {
    let key = (obs.department.clone(), obs.event_id.clone());
    if processed_event::Entity::find_by_id(key).one(db).await?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    // Validation checked both; a failure here is a message that never came from validation.
    let period: Period =
        obs.period.parse().map_err(|e| DbErr::Custom(format!("invalid period in valid observation: {e}")))?;
    let unit = OrgUnitCode::parse(&obs.org_unit).map_err(|e| DbErr::Custom(e.to_string()))?;

    let mut row = load(db, &obs.indicator, &obs.org_unit, period).await?;
    let position = (obs.source_seq as i64, obs.source_index as i32);
    if let (Some(seq), Some(index)) = (row.model.direct_seq, row.model.direct_index) {
        if (seq, index) > position {
            record(db, obs, "superseded", now).await?;
            return Ok(Outcome::Superseded);
        }
    }

    let before = row.effective();
    {
        let m = &mut row.model;
        m.direct_value = Some(obs.value);
        m.direct_numerator = obs.numerator.map(|n| n as i64);
        m.direct_denominator = obs.denominator.map(|d| d as i64);
        m.direct_event_id = Some(obs.event_id.clone());
        m.direct_department = Some(obs.department.clone());
        m.direct_seq = Some(position.0);
        m.direct_index = Some(position.1);
    }
    let after = row.effective();
    save(db, &mut row, now).await?;
    changed(row.to_wire(catalog));

    let (mut old, mut new) = (before.contribution(), after.contribution());
    for parent in catalog.ancestors(&unit) {
        if old == new {
            break;
        }
        let mut p = load(db, &obs.indicator, parent.as_str(), period).await?;
        let p_before = p.effective();
        p.set_sums(p.sums().moved(old, new));
        let p_after = p.effective();
        save(db, &mut p, now).await?;
        changed(p.to_wire(catalog));
        (old, new) = (p_before.contribution(), p_after.contribution());
    }
    record(db, obs, "applied", now).await?;
    Ok(Outcome::Applied)
}
