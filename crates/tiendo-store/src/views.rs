//! What the web pages read besides every plan's status ([`crate::status`]): a unit's figures
//! over time, the notes departments sent with the observations behind figures, and the alerts
//! (firing now, and their recent history). Reads only; each page is a few statements.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tiendo_domain::alert::{AlertKind, AlertState};
use tiendo_domain::figure::UnitFigure;
use tiendo_domain::trajectory::Status;
use tiendo_domain::{IndicatorId, OrgUnitCode, Period, PlanId};

use crate::entity::{alert, alert_event, figure, observation};
use crate::keys::ByKeys;
use crate::{parse_time, StoreError, ROWS_PER_STATEMENT};

/// Every stored figure of one unit's indicator, oldest period first.
pub async fn series<C: ConnectionTrait>(
    db: &C,
    indicator: &IndicatorId,
    org_unit: &OrgUnitCode,
) -> Result<Vec<UnitFigure>, StoreError> {
    let rows = figure::Entity::find()
        .filter(figure::Column::Indicator.eq(indicator.as_str()))
        .filter(figure::Column::OrgUnit.eq(org_unit.as_str()))
        .order_by_asc(figure::Column::PeriodEnd)
        .order_by_asc(figure::Column::Period)
        .all(db)
        .await?;
    rows.into_iter().map(crate::aggregation::unit_figure).collect()
}

/// The note of the observation behind each of these (unit, period) figures of `indicator`,
/// where that figure is a unit's own observation and its department sent a note.
pub async fn notes<C: ConnectionTrait>(
    db: &C,
    indicator: &IndicatorId,
    figures: &[(OrgUnitCode, Period)],
) -> Result<HashMap<(OrgUnitCode, Period), String>, StoreError> {
    use figure::Column as F;
    use observation::Column as O;
    let backend = db.get_database_backend();
    let mut figure_rows = ByKeys::<figure::Entity, 3>::new(backend, [F::Indicator, F::OrgUnit, F::Period]);
    let mut observation_rows = ByKeys::<observation::Entity, 2>::new(backend, [O::Department, O::EventId]);
    let mut out = HashMap::new();
    for chunk in figures.chunks(ROWS_PER_STATEMENT / 2) {
        let keys: Vec<[String; 3]> =
            chunk.iter().map(|(u, p)| [indicator.to_string(), u.to_string(), p.to_string()]).collect();
        let by_event: HashMap<(String, String), (String, String)> = figure_rows
            .all(db, &keys)
            .await?
            .into_iter()
            .filter_map(|f| Some(((f.direct_department?, f.direct_event_id?), (f.org_unit, f.period))))
            .collect();
        let events: Vec<[String; 2]> = by_event.keys().map(|(d, e)| [d.clone(), e.clone()]).collect();
        for o in observation_rows.all(db, &events).await? {
            let (Some(note), Some((u, p))) = (o.note, by_event.get(&(o.department, o.event_id))) else { continue };
            let unit = OrgUnitCode::parse(u).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let period =
                p.parse().map_err(|e: tiendo_domain::period::PeriodError| StoreError::Corrupt(e.to_string()))?;
            out.insert((unit, period), note);
        }
    }
    Ok(out)
}

/// An alert as the pages show it: what it is about, and its latest firing or resolution.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub alert_id: String,
    pub plan: PlanId,
    pub indicator: IndicatorId,
    pub org_unit: OrgUnitCode,
    pub kind: AlertKind,
    pub state: AlertState,
    pub period: Period,
    /// Percentages, as on the bus.
    pub value: f64,
    pub expected: f64,
    pub gap: f64,
    pub status: Status,
    /// When it fired or resolved.
    pub at: DateTime<Utc>,
}

/// Every alert firing now, with its latest firing; most recent first.
pub async fn firing<C: ConnectionTrait>(db: &C) -> Result<Vec<AlertView>, StoreError> {
    let alerts = alert::Entity::find().filter(alert::Column::State.eq(AlertState::Firing.as_str())).all(db).await?;
    let mut out = Vec::with_capacity(alerts.len());
    for chunk in alerts.chunks(ROWS_PER_STATEMENT) {
        let ids: Vec<&str> = chunk.iter().map(|a| a.alert_id.as_str()).collect();
        // The latest event of each alert: its greatest id.
        let latest: Vec<(String, i64)> = alert_event::Entity::find()
            .select_only()
            .column(alert_event::Column::AlertId)
            .column_as(alert_event::Column::Id.max(), "id")
            .filter(alert_event::Column::AlertId.is_in(ids))
            .group_by(alert_event::Column::AlertId)
            .into_tuple()
            .all(db)
            .await?;
        let events = alert_event::Entity::find()
            .filter(alert_event::Column::Id.is_in(latest.iter().map(|(_, id)| *id)))
            .all(db)
            .await?;
        let about: HashMap<&str, &alert::Model> = chunk.iter().map(|a| (a.alert_id.as_str(), a)).collect();
        for e in events {
            if let Some(a) = about.get(e.alert_id.as_str()) {
                out.push(view(a, &e)?);
            }
        }
    }
    out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.alert_id.cmp(&b.alert_id)));
    Ok(out)
}

/// The latest `limit` firings and resolutions of any alert, most recent first.
pub async fn history<C: ConnectionTrait>(db: &C, limit: u64) -> Result<Vec<AlertView>, StoreError> {
    let events = alert_event::Entity::find().order_by_desc(alert_event::Column::Id).limit(limit).all(db).await?;
    let ids: Vec<&str> = events.iter().map(|e| e.alert_id.as_str()).collect();
    let mut about = HashMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        for a in alert::Entity::find().filter(alert::Column::AlertId.is_in(chunk.iter().copied())).all(db).await? {
            about.insert(a.alert_id.clone(), a);
        }
    }
    events.iter().filter_map(|e| about.get(&e.alert_id).map(|a| view(a, e))).collect()
}

fn view(a: &alert::Model, e: &alert_event::Model) -> Result<AlertView, StoreError> {
    let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("alert {}: {what} `{v}`", a.alert_id));
    let key = crate::parse_key(&a.indicator, &a.org_unit, &e.period)?;
    Ok(AlertView {
        alert_id: a.alert_id.clone(),
        plan: PlanId::parse(&a.plan).map_err(|_| corrupt("plan", &a.plan))?,
        indicator: key.indicator,
        org_unit: key.org_unit,
        kind: AlertKind::parse(&a.kind).ok_or_else(|| corrupt("kind", &a.kind))?,
        state: AlertState::parse(&e.state).ok_or_else(|| corrupt("state", &e.state))?,
        period: key.period,
        value: e.value,
        expected: e.expected,
        gap: e.gap,
        status: Status::parse(&e.status).ok_or_else(|| corrupt("status", &e.status))?,
        at: parse_time(&e.at)?,
    })
}
