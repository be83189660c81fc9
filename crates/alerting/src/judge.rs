//! One changed figure applied inside the caller's transaction: stored, judged against its
//! trajectory, and an alert fired or resolved when its (indicator, org unit) enters or leaves
//! `behind`.

use chrono::NaiveDate;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use tiendo_domain::catalog::{Baseline, Indicator};
use tiendo_domain::trajectory::{judge, Status};
use tiendo_domain::{Catalog, OrgUnitCode};
use tiendo_proto::v1::{Aggregate, Alert};
use tiendo_store::entity::{alert, alert_event, alert_figure, alert_state};
use tiendo_store::sea_orm;

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and judged.
    Judged,
    /// Its version is not newer than the one stored: a redelivery or a stale copy.
    Stale,
    /// Not about an indicator or unit in this catalog: ignored.
    Unknown,
}

fn date(s: &str) -> Result<NaiveDate, DbErr> {
    s.parse().map_err(|e| DbErr::Custom(format!("bad period_end `{s}`: {e}")))
}

/// Applies `agg`; each alert message to send goes to `alerts`.
pub async fn apply<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    agg: &Aggregate,
    now: &str,
    alerts: &mut impl FnMut(Alert),
) -> Result<Outcome, DbErr> {
    let (Some(indicator), Some(unit)) = (catalog.indicator(&agg.indicator), catalog.unit(&agg.org_unit)) else {
        return Ok(Outcome::Unknown);
    };
    let key = (agg.indicator.clone(), agg.org_unit.clone(), agg.period.clone());
    if let Some(stored) = alert_figure::Entity::find_by_id(key).one(db).await? {
        if stored.version >= agg.version as i64 {
            return Ok(Outcome::Stale);
        }
    }
    date(&agg.period_end)?;
    alert_figure::Entity::insert(alert_figure::ActiveModel {
        indicator: Set(agg.indicator.clone()),
        org_unit: Set(agg.org_unit.clone()),
        period: Set(agg.period.clone()),
        period_end: Set(agg.period_end.clone()),
        value: Set(agg.value),
        version: Set(agg.version as i64),
    })
    .on_conflict(
        OnConflict::columns([
            alert_figure::Column::Indicator,
            alert_figure::Column::OrgUnit,
            alert_figure::Column::Period,
        ])
        .update_columns([alert_figure::Column::PeriodEnd, alert_figure::Column::Value, alert_figure::Column::Version])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;

    // A province figure can move the baseline of an indicator that has none in the catalog:
    // then every unit of that indicator is judged again.
    let units: Vec<String> = if indicator.baseline.is_none() && unit.parent.is_none() {
        alert_figure::Entity::find()
            .select_only()
            .column(alert_figure::Column::OrgUnit)
            .distinct()
            .filter(alert_figure::Column::Indicator.eq(indicator.id.as_str()))
            .into_tuple()
            .all(db)
            .await?
    } else {
        vec![agg.org_unit.clone()]
    };
    for u in units {
        judge_unit(db, catalog, indicator, &u, now, alerts).await?;
    }
    Ok(Outcome::Judged)
}

/// The figure of the latest period known for (indicator, unit), with a value.
async fn latest<C: ConnectionTrait>(
    db: &C,
    indicator: &str,
    unit: &str,
    earliest: bool,
) -> Result<Option<alert_figure::Model>, DbErr> {
    let q = alert_figure::Entity::find()
        .filter(alert_figure::Column::Indicator.eq(indicator))
        .filter(alert_figure::Column::OrgUnit.eq(unit))
        .filter(alert_figure::Column::Value.is_not_null());
    let q = if earliest {
        q.order_by_asc(alert_figure::Column::PeriodEnd).order_by_asc(alert_figure::Column::Period)
    } else {
        q.order_by_desc(alert_figure::Column::PeriodEnd).order_by_desc(alert_figure::Column::Period)
    };
    q.one(db).await
}

/// The catalog's baseline, or else the earliest province-level figure (whatever order the
/// figures arrived in, so a replay gives the same answer).
async fn baseline<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    indicator: &Indicator,
    unit: &str,
) -> Result<Option<Baseline>, DbErr> {
    if let Some(b) = indicator.baseline {
        return Ok(Some(b));
    }
    let code = OrgUnitCode::parse(unit).map_err(|e| DbErr::Custom(e.to_string()))?;
    let root = catalog.ancestors(&code).pop().unwrap_or(code);
    let Some(first) = latest(db, indicator.id.as_str(), root.as_str(), true).await? else {
        return Ok(None);
    };
    Ok(first.value.map(|value| Baseline { value, date: date(&first.period_end).unwrap_or_default() }))
}

async fn judge_unit<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    indicator: &Indicator,
    unit: &str,
    now: &str,
    alerts: &mut impl FnMut(Alert),
) -> Result<(), DbErr> {
    let Some(figure) = latest(db, indicator.id.as_str(), unit, false).await? else { return Ok(()) };
    let Some(value) = figure.value else { return Ok(()) };
    let Some(baseline) = baseline(db, catalog, indicator, unit).await? else { return Ok(()) };
    let j = judge(indicator, baseline, date(&figure.period_end)?, value);

    let key = (indicator.id.to_string(), unit.to_owned());
    let previous = alert_state::Entity::find_by_id(key).one(db).await?;
    let mut open_alert_id = previous.as_ref().and_then(|p| p.open_alert_id.clone());
    let mut alerts_fired = previous.as_ref().map(|p| p.alerts_fired).unwrap_or(0);
    let departments: Vec<String> = indicator.owners.iter().map(|o| o.to_string()).collect();
    let message = |alert_id: &str, state: &str| Alert {
        alert_id: alert_id.to_owned(),
        state: state.to_owned(),
        indicator: indicator.id.to_string(),
        org_unit: unit.to_owned(),
        period: figure.period.clone(),
        value,
        expected: j.expected,
        gap: j.gap,
        target: indicator.target,
        status: j.status.as_str().to_owned(),
        at: now.to_owned(),
        departments: departments.clone(),
    };

    let transition = match (&open_alert_id, j.status == Status::Behind) {
        (None, true) => {
            alerts_fired += 1;
            let id = format!("{}:{unit}:{alerts_fired}", indicator.id);
            alert::Entity::insert(alert::ActiveModel {
                alert_id: Set(id.clone()),
                indicator: Set(indicator.id.to_string()),
                org_unit: Set(unit.to_owned()),
                state: Set("firing".into()),
                fired_at: Set(now.to_owned()),
                resolved_at: Set(None),
            })
            .exec_without_returning(db)
            .await?;
            open_alert_id = Some(id.clone());
            Some(message(&id, "firing"))
        }
        (Some(id), false) => {
            if let Some(a) = alert::Entity::find_by_id(id.clone()).one(db).await? {
                let mut a = a.into_active_model();
                a.state = Set("resolved".into());
                a.resolved_at = Set(Some(now.to_owned()));
                a.update(db).await?;
            }
            let m = message(id, "resolved");
            open_alert_id = None;
            Some(m)
        }
        _ => None,
    };
    if let Some(m) = transition {
        alert_event::Entity::insert(alert_event::ActiveModel {
            alert_id: Set(m.alert_id.clone()),
            state: Set(m.state.clone()),
            period: Set(m.period.clone()),
            value: Set(m.value),
            expected: Set(m.expected),
            gap: Set(m.gap),
            status: Set(m.status.clone()),
            at: Set(now.to_owned()),
            ..Default::default()
        })
        .exec_without_returning(db)
        .await?;
        alerts(m);
    }

    use alert_state::Column as S;
    alert_state::Entity::insert(alert_state::ActiveModel {
        indicator: Set(indicator.id.to_string()),
        org_unit: Set(unit.to_owned()),
        period: Set(figure.period.clone()),
        period_end: Set(figure.period_end.clone()),
        value: Set(value),
        expected: Set(j.expected),
        gap: Set(j.gap),
        target: Set(indicator.target),
        status: Set(j.status.as_str().to_owned()),
        open_alert_id: Set(open_alert_id),
        alerts_fired: Set(alerts_fired),
        judged_at: Set(now.to_owned()),
    })
    .on_conflict(
        OnConflict::columns([S::Indicator, S::OrgUnit])
            .update_columns([
                S::Period,
                S::PeriodEnd,
                S::Value,
                S::Expected,
                S::Gap,
                S::Target,
                S::Status,
                S::OpenAlertId,
                S::AlertsFired,
                S::JudgedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
