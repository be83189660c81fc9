//! A batch of changed figures applied inside the caller's transaction: stored, each
//! (indicator, org unit) they touch judged once on its latest period against its trajectory,
//! and an alert fired or resolved when that key enters or leaves `behind`.
//!
//! Reads and writes go by the batch (a few statements per few hundred rows), never a query
//! per figure: alerting shares the database with aggregation, on SQLite one connection, and
//! every statement it runs is time aggregation waits.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::sea_query::{Alias, Condition, Expr, JoinType, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use tiendo_domain::catalog::{Baseline, Indicator};
use tiendo_domain::trajectory::{judge, Judgement, Status};
use tiendo_domain::{Catalog, OrgUnitCode};
use tiendo_proto::alert_state::{FIRING, RESOLVED};
use tiendo_proto::v1::{Aggregate, Alert};
use tiendo_store::entity::{alert, alert_event, alert_figure, alert_state};
use tiendo_store::keys::any_key;
use tiendo_store::{sea_orm, ROWS_PER_STATEMENT};

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and judged.
    Judged,
    /// Its version is not newer than one stored or in the same batch: a redelivery or a
    /// stale copy.
    Stale,
    /// Not about an indicator or unit in this catalog: ignored.
    Unknown,
}

type FigureKey = (String, String, String);
/// (indicator, org unit): what alerting judges.
type UnitKey = (String, String);

fn figure_key(a: &Aggregate) -> FigureKey {
    (a.indicator.clone(), a.org_unit.clone(), a.period.clone())
}

fn date(s: &str) -> Result<NaiveDate, DbErr> {
    s.parse().map_err(|e| DbErr::Custom(format!("bad period_end `{s}`: {e}")))
}

/// Stores and judges `items` inside the caller's transaction; returns each one's outcome and
/// the alert messages to send, in the order their keys first appear in `items`.
///
/// Only the newest version of each figure is stored; each (indicator, org unit) is judged
/// once, on what is stored after the whole batch, as if the batch had arrived at once.
pub async fn judge_batch<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    items: &[&Aggregate],
    now: &str,
) -> Result<(Vec<Outcome>, Vec<Alert>), DbErr> {
    let mut outcomes = vec![Outcome::Stale; items.len()];
    // The first copy of the newest version of each figure.
    let mut newest: HashMap<FigureKey, usize> = HashMap::new();
    for (i, a) in items.iter().enumerate() {
        if catalog.indicator(&a.indicator).is_none() || catalog.unit(&a.org_unit).is_none() {
            outcomes[i] = Outcome::Unknown;
            continue;
        }
        let first = newest.entry(figure_key(a)).or_insert(i);
        if a.version > items[*first].version {
            *first = i;
        }
    }
    let stored = stored_versions(db, newest.keys()).await?;
    let mut fresh: Vec<usize> = newest
        .into_iter()
        .filter(|(key, i)| stored.get(key).is_none_or(|&v| v < items[*i].version as i64))
        .map(|(_, i)| i)
        .collect();
    fresh.sort_unstable();
    for &i in &fresh {
        date(&items[i].period_end)?;
        outcomes[i] = Outcome::Judged;
    }
    store_figures(db, fresh.iter().map(|&i| items[i])).await?;

    let keys = keys_to_judge(db, catalog, fresh.iter().map(|&i| items[i])).await?;
    let latest = latest_figures(db, &keys).await?;
    let states = states(db, &keys).await?;
    let mut baselines = Baselines::default();
    let mut writes = Writes::default();
    for key in &keys {
        let Some(figure) = latest.get(key) else { continue };
        let Some(indicator) = catalog.indicator(&key.0) else { continue };
        let Some(baseline) = baselines.get(db, catalog, indicator, &key.1).await? else { continue };
        writes.judge(indicator, &key.1, figure, baseline, states.get(key), now)?;
    }
    writes.flush(db, now).await?;
    Ok((outcomes, writes.alerts))
}

/// The stored versions of those of these figures that are stored.
async fn stored_versions<'a, C: ConnectionTrait>(
    db: &C,
    keys: impl Iterator<Item = &'a FigureKey>,
) -> Result<HashMap<FigureKey, i64>, DbErr> {
    use alert_figure::Column as F;
    let keys: Vec<&FigureKey> = keys.collect();
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<(String, String, String, i64)> = alert_figure::Entity::find()
            .select_only()
            .columns([F::Indicator, F::OrgUnit, F::Period, F::Version])
            .filter(any_key(
                [F::Indicator, F::OrgUnit, F::Period],
                chunk.iter().map(|(i, u, p)| [i.as_str(), u.as_str(), p.as_str()]),
            ))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(|(i, u, p, v)| ((i, u, p), v)));
    }
    Ok(out)
}

async fn store_figures<'a, C: ConnectionTrait>(
    db: &C,
    figures: impl Iterator<Item = &'a Aggregate>,
) -> Result<(), DbErr> {
    use alert_figure::Column as F;
    let rows: Vec<alert_figure::ActiveModel> = figures
        .map(|a| alert_figure::ActiveModel {
            indicator: Set(a.indicator.clone()),
            org_unit: Set(a.org_unit.clone()),
            period: Set(a.period.clone()),
            period_end: Set(a.period_end.clone()),
            value: Set(a.value),
            version: Set(a.version as i64),
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        alert_figure::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([F::Indicator, F::OrgUnit, F::Period])
                    .update_columns([F::PeriodEnd, F::Value, F::Version])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The (indicator, org unit) keys these stored figures move, in order of first appearance.
/// A province figure can move the baseline of an indicator that has none in the catalog:
/// then every unit with a figure of that indicator is judged again.
async fn keys_to_judge<'a, C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    figures: impl Iterator<Item = &'a Aggregate>,
) -> Result<Vec<UnitKey>, DbErr> {
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    let mut everywhere = HashSet::new();
    for a in figures {
        let moves_baseline = catalog.indicator(&a.indicator).is_some_and(|i| i.baseline.is_none())
            && catalog.unit(&a.org_unit).is_some_and(|u| u.parent.is_none());
        let units = if !moves_baseline {
            vec![a.org_unit.clone()]
        } else if everywhere.insert(a.indicator.clone()) {
            alert_figure::Entity::find()
                .select_only()
                .column(alert_figure::Column::OrgUnit)
                .distinct()
                .filter(alert_figure::Column::Indicator.eq(a.indicator.as_str()))
                .into_tuple()
                .all(db)
                .await?
        } else {
            vec![]
        };
        for unit in units {
            let key = (a.indicator.clone(), unit);
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

/// The figure of the latest period with a value of each key, in a few queries: each key
/// (a `VALUES` list) joined to its figure whose period ends last, found through the
/// `alert_figures_latest` index rather than by reading every period of the key.
async fn latest_figures<C: ConnectionTrait>(
    db: &C,
    keys: &[UnitKey],
) -> Result<HashMap<UnitKey, alert_figure::Model>, DbErr> {
    use alert_figure::Column as F;
    use alert_figure::Entity as Figures;
    // A VALUES list's columns are column1, column2, … on SQLite and PostgreSQL alike.
    let (k, indicator, unit, g) = (Alias::new("k"), Alias::new("column1"), Alias::new("column2"), Alias::new("g"));
    let of_key = |table: &Alias| {
        Condition::all()
            .add(Expr::col((table.clone(), F::Indicator)).equals((k.clone(), indicator.clone())))
            .add(Expr::col((table.clone(), F::OrgUnit)).equals((k.clone(), unit.clone())))
    };
    let f = Alias::new("f");
    let mut out: HashMap<UnitKey, alert_figure::Model> = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let last_end = Query::select()
            .expr(Expr::col((g.clone(), F::PeriodEnd)).max())
            .from_as(Figures, g.clone())
            .cond_where(of_key(&g).add(Expr::col((g.clone(), F::Value)).is_not_null()))
            .to_owned();
        let query = Query::select()
            .columns([F::Indicator, F::OrgUnit, F::Period, F::PeriodEnd, F::Value, F::Version].map(|c| (f.clone(), c)))
            .from_values(chunk.iter().cloned(), k.clone())
            .join_as(JoinType::InnerJoin, Figures, f.clone(), of_key(&f))
            .and_where(Expr::col((f.clone(), F::Value)).is_not_null())
            .and_where(Expr::col((f.clone(), F::PeriodEnd)).in_subquery(last_end))
            .to_owned();
        for m in alert_figure::Model::find_by_statement(db.get_database_backend().build(&query)).all(db).await? {
            // Periods of one key ending on the same day (a month and its quarter): the
            // greatest period wins, as it always has.
            let key = (m.indicator.clone(), m.org_unit.clone());
            if out.get(&key).is_none_or(|o| o.period < m.period) {
                out.insert(key, m);
            }
        }
    }
    Ok(out)
}

async fn states<C: ConnectionTrait>(db: &C, keys: &[UnitKey]) -> Result<HashMap<UnitKey, alert_state::Model>, DbErr> {
    use alert_state::Column as S;
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let rows = alert_state::Entity::find()
            .filter(any_key([S::Indicator, S::OrgUnit], chunk.iter().map(|(i, u)| [i.as_str(), u.as_str()])))
            .all(db)
            .await?;
        out.extend(rows.into_iter().map(|m| ((m.indicator.clone(), m.org_unit.clone()), m)));
    }
    Ok(out)
}

/// Each indicator's baseline: the catalog's, or else the earliest province-level figure
/// (whatever order the figures arrived in, so a replay gives the same answer). Read once per
/// (indicator, root unit) per batch, after the batch's figures are stored.
#[derive(Default)]
struct Baselines(HashMap<(String, String), Option<Baseline>>);

impl Baselines {
    async fn get<C: ConnectionTrait>(
        &mut self,
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
        let key = (indicator.id.to_string(), root.to_string());
        if let Some(known) = self.0.get(&key) {
            return Ok(*known);
        }
        use alert_figure::Column as F;
        let first = alert_figure::Entity::find()
            .filter(F::Indicator.eq(indicator.id.as_str()))
            .filter(F::OrgUnit.eq(root.as_str()))
            .filter(F::Value.is_not_null())
            .order_by_asc(F::PeriodEnd)
            .order_by_asc(F::Period)
            .one(db)
            .await?;
        let baseline = match first {
            Some(f) => f.value.map(|value| Baseline { value, date: date(&f.period_end).unwrap_or_default() }),
            None => None,
        };
        self.0.insert(key, baseline);
        Ok(baseline)
    }
}

/// What judging a batch writes, kept until [`Writes::flush`]; and the alert messages.
#[derive(Default)]
struct Writes {
    fired: Vec<alert::ActiveModel>,
    resolved: Vec<String>,
    events: Vec<alert_event::ActiveModel>,
    states: Vec<alert_state::ActiveModel>,
    alerts: Vec<Alert>,
}

impl Writes {
    /// Judges one key on its latest figure; a transition to or from `behind` fires or
    /// resolves its alert.
    fn judge(
        &mut self,
        indicator: &Indicator,
        unit: &str,
        figure: &alert_figure::Model,
        baseline: Baseline,
        previous: Option<&alert_state::Model>,
        now: &str,
    ) -> Result<(), DbErr> {
        let Some(value) = figure.value else { return Ok(()) };
        let j = judge(indicator, baseline, date(&figure.period_end)?, value);
        let mut open_alert_id = previous.and_then(|p| p.open_alert_id.clone());
        let mut alerts_fired = previous.map(|p| p.alerts_fired).unwrap_or(0);
        match (&open_alert_id, j.status == Status::Behind) {
            (None, true) => {
                alerts_fired += 1;
                let id = format!("{}:{unit}:{alerts_fired}", indicator.id);
                self.fired.push(alert::ActiveModel {
                    alert_id: Set(id.clone()),
                    indicator: Set(indicator.id.to_string()),
                    org_unit: Set(unit.to_owned()),
                    state: Set(FIRING.into()),
                    fired_at: Set(now.to_owned()),
                    resolved_at: Set(None),
                });
                self.transition(indicator, unit, figure, value, &j, &id, FIRING, now);
                open_alert_id = Some(id);
            }
            (Some(id), false) => {
                self.resolved.push(id.clone());
                self.transition(indicator, unit, figure, value, &j, id, RESOLVED, now);
                open_alert_id = None;
            }
            _ => {}
        }
        self.states.push(alert_state::ActiveModel {
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
        });
        Ok(())
    }

    /// An alert's history row and its message.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &mut self,
        indicator: &Indicator,
        unit: &str,
        figure: &alert_figure::Model,
        value: f64,
        j: &Judgement,
        alert_id: &str,
        state: &str,
        now: &str,
    ) {
        let m = Alert {
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
            departments: indicator.owners.iter().map(|o| o.to_string()).collect(),
        };
        self.events.push(alert_event::ActiveModel {
            alert_id: Set(m.alert_id.clone()),
            state: Set(m.state.clone()),
            period: Set(m.period.clone()),
            value: Set(m.value),
            expected: Set(m.expected),
            gap: Set(m.gap),
            status: Set(m.status.clone()),
            at: Set(now.to_owned()),
            ..Default::default()
        });
        self.alerts.push(m);
    }

    async fn flush<C: ConnectionTrait>(&mut self, db: &C, now: &str) -> Result<(), DbErr> {
        for chunk in self.fired.chunks(ROWS_PER_STATEMENT) {
            alert::Entity::insert_many(chunk.iter().cloned()).exec_without_returning(db).await?;
        }
        for chunk in self.resolved.chunks(ROWS_PER_STATEMENT) {
            alert::Entity::update_many()
                .col_expr(alert::Column::State, Expr::value(RESOLVED))
                .col_expr(alert::Column::ResolvedAt, Expr::value(now))
                .filter(alert::Column::AlertId.is_in(chunk.iter().cloned()))
                .exec(db)
                .await?;
        }
        for chunk in self.events.chunks(ROWS_PER_STATEMENT) {
            alert_event::Entity::insert_many(chunk.iter().cloned()).exec_without_returning(db).await?;
        }
        use alert_state::Column as S;
        for chunk in self.states.chunks(ROWS_PER_STATEMENT) {
            alert_state::Entity::insert_many(chunk.iter().cloned())
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
        }
        Ok(())
    }
}
