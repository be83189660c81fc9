//! Alerting's tables: the latest version of every figure it was told about, how each plan's
//! (indicator, org unit) stands, every alert and the history of each.
//!
//! Reads and writes go by the batch (a few statements per few hundred rows), never a query
//! per figure: alerting shares the database with aggregation, on SQLite one connection, and
//! every statement it runs is time aggregation waits.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{
    Alias, Condition, Expr, Func, JoinType, OnConflict, Order, Query, SelectStatement, SimpleExpr,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QueryResult, QuerySelect, Statement,
};
use tiendo_domain::alert::{AlertState, PlanKey, Standing, Transition};
use tiendo_domain::figure::FigureVersion;
use tiendo_domain::progress::{Category, Outlook, Weather};
use tiendo_domain::trajectory::{Judgement, Status};
use tiendo_domain::{FigureKey, IndicatorId, OrgUnitCode, Percent, Period, PlanId, UnitKey};

use crate::entity::alert_figure::Column as F;
use crate::entity::{alert, alert_event, alert_figure, standing};
use crate::error::StoreError;
use crate::hash::{HashMap, HashMapExt, HashSet, HashSetExt};
use crate::keys::array;
use crate::rows;
use crate::{key_texts, parse_time, time, ROWS_PER_STATEMENT};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn unit_key(indicator: &str, org_unit: &str) -> Result<UnitKey, StoreError> {
    Ok(UnitKey {
        indicator: IndicatorId::parse(indicator).map_err(corrupt)?,
        org_unit: OrgUnitCode::parse(org_unit).map_err(corrupt)?,
    })
}

fn percent(v: f64) -> Result<Percent, StoreError> {
    Percent::new(v).ok_or_else(|| corrupt(format!("{v} is not a percentage")))
}

/// Stores those of these versions of figures that are newer than what is stored for their
/// keys (or whose keys have nothing stored), in one statement per few hundred figures that
/// both compares and writes (`ON CONFLICT … DO UPDATE … WHERE` the new version is greater,
/// `RETURNING` the keys written); returns the keys written. A version not newer than the
/// stored one (a redelivery, a stale copy) is left alone.
pub async fn store_newer_figures<C: ConnectionTrait>(
    db: &C,
    figures: &[&FigureVersion],
) -> Result<HashSet<FigureKey>, StoreError> {
    let mut written = HashSet::with_capacity(figures.len());
    let insert = rows::Insert::<alert_figure::Entity>::returning(
        db.get_database_backend(),
        Some(newer_only()),
        Some(Query::returning().columns([F::Indicator, F::OrgUnit, F::Period])),
    );
    for chunk in figures.chunks(ROWS_PER_STATEMENT) {
        // The returned rows name their keys as text: found among the chunk's own keys, not
        // parsed again.
        let mut by_text: HashMap<[String; 3], &FigureKey> = HashMap::with_capacity(chunk.len());
        let models: Vec<alert_figure::Model> = chunk
            .iter()
            .map(|f| {
                let [indicator, org_unit, period] = key_texts(&f.key);
                by_text.insert([indicator.clone(), org_unit.clone(), period.clone()], &f.key);
                alert_figure::Model {
                    indicator,
                    org_unit,
                    period,
                    period_end: f.key.period.end().to_string(),
                    value: f.value.map(Percent::get),
                    version: f.version as i64,
                }
            })
            .collect();
        for r in insert.query(db, &models).await? {
            let text: [String; 3] = [r.try_get_by_index(0)?, r.try_get_by_index(1)?, r.try_get_by_index(2)?];
            let key = by_text.get(&text).ok_or_else(|| corrupt(format!("{text:?} was not in the statement")))?;
            written.insert((*key).clone());
        }
    }
    Ok(written)
}

/// Writes a figure over the stored one only when its version is greater.
fn newer_only() -> OnConflict {
    OnConflict::columns([F::Indicator, F::OrgUnit, F::Period])
        .update_columns([F::PeriodEnd, F::Value, F::Version])
        .action_and_where(
            Expr::col((Alias::new("excluded"), F::Version)).gt(Expr::col((alert_figure::Entity, F::Version))),
        )
        .to_owned()
}

/// Every unit with a stored figure of `indicator`.
pub async fn units_with_figures<C: ConnectionTrait>(
    db: &C,
    indicator: &IndicatorId,
) -> Result<Vec<OrgUnitCode>, StoreError> {
    let units: Vec<String> = alert_figure::Entity::find()
        .select_only()
        .column(alert_figure::Column::OrgUnit)
        .distinct()
        .filter(alert_figure::Column::Indicator.eq(indicator.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    units.iter().map(|u| OrgUnitCode::parse(u).map_err(corrupt)).collect()
}

/// A key's figure of its latest period with a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub period: Period,
    pub value: Percent,
}

/// The latest `n` figures with a value, ending on `until` at the latest, of each key, latest
/// first, in a few queries: each key (a `VALUES` list) joined to its figures that end no
/// earlier than its `n`th latest, found through the `alert_figures_latest` index rather than
/// by reading every period of the key. Periods of one key ending on the same day (a month and
/// its quarter) come greatest period first.
pub async fn recent_figures<C: ConnectionTrait>(
    db: &C,
    keys: &[UnitKey],
    until: NaiveDate,
    n: usize,
) -> Result<HashMap<UnitKey, Vec<Latest>>, StoreError> {
    let mut rows: HashMap<(String, String), Vec<alert_figure::Model>> = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        // From the period end of the key's `n`th latest figure; from any when it has fewer.
        let query = figures_of_keys(chunk, until, |g, of_key, period_end| {
            let nth_end = Query::select()
                .column((g.clone(), F::PeriodEnd))
                .from_as(alert_figure::Entity, g.clone())
                .cond_where(of_key)
                .order_by((g.clone(), F::PeriodEnd), Order::Desc)
                .limit(1)
                .offset(n.saturating_sub(1) as u64)
                .to_owned();
            period_end.gte(Func::coalesce([
                SimpleExpr::SubQuery(None, Box::new(nth_end.into_sub_query_statement())),
                Expr::val("").into(),
            ]))
        });
        for m in alert_figure::Model::find_by_statement(db.get_database_backend().build(&query)).all(db).await? {
            rows.entry((m.indicator.clone(), m.org_unit.clone())).or_default().push(m);
        }
    }
    rows.into_iter()
        .map(|((i, u), mut figures)| {
            figures.sort_by(|a, b| b.period_end.cmp(&a.period_end).then_with(|| b.period.cmp(&a.period)));
            figures.truncate(n);
            Ok((unit_key(&i, &u)?, figures.iter().map(latest).collect::<Result<Vec<_>, _>>()?))
        })
        .collect()
}

/// The first figure with a value, ending on `until` at the latest, of each key.
pub async fn first_figures<C: ConnectionTrait>(
    db: &C,
    keys: &[UnitKey],
    until: NaiveDate,
) -> Result<HashMap<UnitKey, Latest>, StoreError> {
    let mut rows: HashMap<(String, String), alert_figure::Model> = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let query = figures_of_keys(chunk, until, |g, of_key, period_end| {
            period_end.in_subquery(
                Query::select()
                    .expr(Expr::col((g.clone(), F::PeriodEnd)).min())
                    .from_as(alert_figure::Entity, g.clone())
                    .cond_where(of_key)
                    .to_owned(),
            )
        });
        for m in alert_figure::Model::find_by_statement(db.get_database_backend().build(&query)).all(db).await? {
            // Periods ending on the same day: the smallest period first, as for a baseline.
            let key = (m.indicator.clone(), m.org_unit.clone());
            if rows.get(&key).is_none_or(|o| m.period < o.period) {
                rows.insert(key, m);
            }
        }
    }
    rows.into_iter().map(|((i, u), m)| Ok((unit_key(&i, &u)?, latest(&m)?))).collect()
}

/// What [`series_figures`] reads for one key: its latest `n` figures with a value ending on
/// `until` at the latest and, when `first`, its first such figure.
#[derive(Debug, Clone)]
pub struct SeriesAsk {
    pub key: UnitKey,
    pub until: NaiveDate,
    pub n: usize,
    pub first: bool,
}

/// What [`series_figures`] found for one [`SeriesAsk`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesFigures {
    /// Latest first, at most `n`.
    pub recent: Vec<Latest>,
    /// Only when asked for.
    pub first: Option<Latest>,
}

/// The figures of every ask, in the order of `asks`, whatever their `until` and `n`.
///
/// - PostgreSQL: two statements for the whole batch (the latest `n`, and the first), each key
///   and its `until` and `n` passed as arrays and joined `LATERAL` to its figures through the
///   `alert_figures_latest` index. Periods ending on the same day are ordered byte by byte
///   (`COLLATE "C"`), as the other queries order them in Rust. One statement text whatever
///   the asks, so it is prepared once per connection. The `VALUES` form of
///   [`recent_figures`] is a new statement for every list length, run twice per (plan,
///   indicator): 6.6 ms per transaction at the median in the latency benchmark, half of
///   alerting's transaction on PostgreSQL; this form, 0.43 ms.
/// - SQLite: [`recent_figures`] and [`first_figures`] once per (`until`, `n`), which its
///   planner runs well (no planning cost worth saving on an in-process database).
pub async fn series_figures<C: ConnectionTrait>(db: &C, asks: &[SeriesAsk]) -> Result<Vec<SeriesFigures>, StoreError> {
    let mut out = vec![SeriesFigures::default(); asks.len()];
    if asks.is_empty() {
        return Ok(out);
    }
    if db.get_database_backend() != DbBackend::Postgres {
        let mut groups: HashMap<(NaiveDate, usize), Vec<usize>> = HashMap::new();
        for (i, a) in asks.iter().enumerate() {
            groups.entry((a.until, a.n)).or_default().push(i);
        }
        for ((until, n), group) in groups {
            let units: Vec<UnitKey> = group.iter().map(|&i| asks[i].key.clone()).collect();
            let recent = recent_figures(db, &units, until, n).await?;
            let wanted: Vec<UnitKey> = group.iter().filter(|&&i| asks[i].first).map(|&i| asks[i].key.clone()).collect();
            let firsts = first_figures(db, &wanted, until).await?;
            for i in group {
                let key = &asks[i].key;
                out[i].recent = recent.get(key).cloned().unwrap_or_default();
                out[i].first = if asks[i].first { firsts.get(key).copied() } else { None };
            }
        }
        return Ok(out);
    }
    // Each ask's key and horizon, as three array parameters.
    let arrays = |asks: &[&SeriesAsk]| {
        vec![
            array(asks.iter().map(|a| a.key.indicator.to_string())),
            array(asks.iter().map(|a| a.key.org_unit.to_string())),
            array(asks.iter().map(|a| a.until.to_string())),
        ]
    };
    // The recent figures of every ask.
    let mut values = arrays(&asks.iter().collect::<Vec<_>>());
    values.push(array(asks.iter().map(|a| a.n as i64)));
    let sql = format!(
        "SELECT k.i AS ask, f.period, f.value FROM UNNEST(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS \
         text[]), CAST($4 AS bigint[])) WITH ORDINALITY AS k(indicator, org_unit, until, n, i) CROSS JOIN LATERAL \
         (SELECT g.period, g.period_end, g.value FROM {FIGURES} g WHERE {OF_KEY} ORDER BY g.period_end DESC, \
         g.period COLLATE \"C\" DESC LIMIT k.n) f ORDER BY k.i, f.period_end DESC, f.period COLLATE \"C\" DESC"
    );
    for row in db.query_all(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await? {
        let (i, latest) = ask_row(&row)?;
        out.get_mut(i).ok_or_else(|| corrupt("an ask out of range"))?.recent.push(latest);
    }
    // The first figure of the asks that want it.
    let firsts: Vec<usize> = (0..asks.len()).filter(|&i| asks[i].first).collect();
    if !firsts.is_empty() {
        let sql = format!(
            "SELECT k.i AS ask, f.period, f.value FROM UNNEST(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS \
             text[])) WITH ORDINALITY AS k(indicator, org_unit, until, i) CROSS JOIN LATERAL (SELECT g.period, \
             g.value FROM {FIGURES} g WHERE {OF_KEY} ORDER BY g.period_end, g.period COLLATE \"C\" LIMIT 1) f"
        );
        let values = arrays(&firsts.iter().map(|&i| &asks[i]).collect::<Vec<_>>());
        for row in db.query_all(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await? {
            let (i, latest) = ask_row(&row)?;
            let ask = *firsts.get(i).ok_or_else(|| corrupt("an ask out of range"))?;
            out[ask].first = Some(latest);
        }
    }
    Ok(out)
}

/// The figures table, and the condition tying its rows `g` to an ask `k`, in
/// [`series_figures`]' PostgreSQL statements.
const FIGURES: &str = "\"alert_figures\"";
const OF_KEY: &str = "g.indicator = k.indicator AND g.org_unit = k.org_unit AND g.value IS NOT NULL AND \
                      g.period_end <= k.until";

/// One row of [`series_figures`]' statements: the ask's index (from 0) and its figure.
fn ask_row(row: &QueryResult) -> Result<(usize, Latest), StoreError> {
    let i: i64 = row.try_get("", "ask")?;
    let period: String = row.try_get("", "period")?;
    let value: Option<f64> = row.try_get("", "value")?;
    let value = value.ok_or_else(|| corrupt("a figure without a value"))?;
    Ok(((i - 1) as usize, Latest { period: period.parse().map_err(corrupt)?, value: percent(value)? }))
}

/// Each key of `chunk` (a `VALUES` list) joined to its figures with a value ending on `until` at
/// the latest, narrowed by `narrow`: given an alias `g` for a subquery, the condition that picks
/// the key's figures of that kind under `g`, and the joined figure's period end, it returns the
/// condition on that period end. A `VALUES` list's columns are column1, column2, … on SQLite and
/// PostgreSQL alike.
fn figures_of_keys(
    chunk: &[UnitKey],
    until: NaiveDate,
    narrow: impl FnOnce(&Alias, Condition, Expr) -> SimpleExpr,
) -> SelectStatement {
    let (k, f, g) = (Alias::new("k"), Alias::new("f"), Alias::new("g"));
    let until = until.to_string();
    let of_key = |table: &Alias| {
        Condition::all()
            .add(Expr::col((table.clone(), F::Indicator)).equals((k.clone(), Alias::new("column1"))))
            .add(Expr::col((table.clone(), F::OrgUnit)).equals((k.clone(), Alias::new("column2"))))
            .add(Expr::col((table.clone(), F::Value)).is_not_null())
            .add(Expr::col((table.clone(), F::PeriodEnd)).lte(until.as_str()))
    };
    let values = chunk.iter().map(|k| (k.indicator.to_string(), k.org_unit.to_string()));
    Query::select()
        .columns([F::Indicator, F::OrgUnit, F::Period, F::PeriodEnd, F::Value, F::Version].map(|c| (f.clone(), c)))
        .from_values(values, k.clone())
        .join_as(JoinType::InnerJoin, alert_figure::Entity, f.clone(), of_key(&f))
        .and_where(narrow(&g, of_key(&g), Expr::col((f.clone(), F::PeriodEnd))))
        .to_owned()
}

fn latest(m: &alert_figure::Model) -> Result<Latest, StoreError> {
    let value = m.value.ok_or_else(|| corrupt("a figure without a value"))?;
    Ok(Latest { period: m.period.parse().map_err(corrupt)?, value: percent(value)? })
}

/// Every figure with a value of one key, ending on `until` at the latest, latest first: for
/// the rare key whose latest figure belongs to a unit that had the same code at another time.
pub async fn figures_until<C: ConnectionTrait>(
    db: &C,
    key: &UnitKey,
    until: NaiveDate,
) -> Result<Vec<Latest>, StoreError> {
    alert_figure::Entity::find()
        .filter(F::Indicator.eq(key.indicator.as_str()))
        .filter(F::OrgUnit.eq(key.org_unit.as_str()))
        .filter(F::Value.is_not_null())
        .filter(F::PeriodEnd.lte(until.to_string()))
        .order_by_desc(F::PeriodEnd)
        .order_by_desc(F::Period)
        .all(db)
        .await?
        .iter()
        .map(latest)
        .collect()
}

/// The earliest period with a value of (indicator, org unit), and that value.
pub async fn first_figure<C: ConnectionTrait>(db: &C, key: &UnitKey) -> Result<Option<Latest>, StoreError> {
    let first = alert_figure::Entity::find()
        .filter(F::Indicator.eq(key.indicator.as_str()))
        .filter(F::OrgUnit.eq(key.org_unit.as_str()))
        .filter(F::Value.is_not_null())
        .order_by_asc(F::PeriodEnd)
        .order_by_asc(F::Period)
        .one(db)
        .await?;
    first.as_ref().map(latest).transpose()
}

fn plan_key(plan: &str, indicator: &str, org_unit: &str) -> Result<PlanKey, StoreError> {
    let u = unit_key(indicator, org_unit)?;
    Ok(PlanKey { plan: PlanId::parse(plan).map_err(corrupt)?, indicator: u.indicator, org_unit: u.org_unit })
}

fn standing(m: standing::Model) -> Result<(PlanKey, Standing), StoreError> {
    let status = Status::parse(&m.status).ok_or_else(|| corrupt(format!("status `{}`", m.status)))?;
    Ok((
        plan_key(&m.plan, &m.indicator, &m.org_unit)?,
        Standing {
            period: m.period.parse().map_err(corrupt)?,
            judgement: Judgement { value: percent(m.value)?, expected: m.expected, gap: m.gap, status },
            target: m.target.map(percent).transpose()?,
            coverage: m.coverage,
            outlook: Outlook {
                progress: m.progress.as_deref().and_then(Category::parse).unwrap_or(Category::NotAvailable),
                score: m.score,
                projected: m.projected,
                expected_attainment: m
                    .expected_attainment
                    .as_deref()
                    .map(|d| d.parse().map_err(corrupt))
                    .transpose()?,
                weather: m.outlook.as_deref().and_then(Weather::parse).unwrap_or(Weather::NotAvailable),
                warning: false,
            },
            judged_at: parse_time(&m.judged_at)?,
        },
    ))
}

/// How every judged key stands.
pub async fn all_standings<C: ConnectionTrait>(db: &C) -> Result<Vec<(PlanKey, Standing)>, StoreError> {
    standing::Entity::find().all(db).await?.into_iter().map(standing).collect()
}

/// An alert's state and how many times it has fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRecord {
    pub state: AlertState,
    pub episodes: u64,
}

/// The alerts with these ids that exist.
pub async fn alerts<C: ConnectionTrait>(db: &C, ids: &[String]) -> Result<HashMap<String, AlertRecord>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let rows = alert::Entity::find()
            .filter(alert::Column::AlertId.is_in(chunk.iter().map(String::as_str)))
            .all(db)
            .await?;
        for m in rows {
            let state = AlertState::parse(&m.state).ok_or_else(|| corrupt(format!("alert state `{}`", m.state)))?;
            out.insert(m.alert_id, AlertRecord { state, episodes: m.episodes as u64 });
        }
    }
    Ok(out)
}

/// The ids of every alert firing now.
pub async fn firing<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = alert::Entity::find()
        .select_only()
        .column(alert::Column::AlertId)
        .filter(alert::Column::State.eq(AlertState::Firing.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids)
}

/// What judging a batch changed: the new standings, and the alerts that fired or resolved.
#[derive(Debug, Default)]
pub struct Judged {
    pub standings: Vec<(PlanKey, Standing)>,
    pub transitions: Vec<Transition>,
}

/// Writes what judging a batch changed, at `now`.
pub async fn save<C: ConnectionTrait>(db: &C, judged: &Judged, now: DateTime<Utc>) -> Result<(), StoreError> {
    let now = time(now);
    use alert::Column as A;
    let backend = db.get_database_backend();
    let fired: Vec<alert::Model> = judged
        .transitions
        .iter()
        .filter(|t| t.state == AlertState::Firing)
        .map(|t| alert::Model {
            alert_id: t.alert_id.clone(),
            plan: t.key.plan.to_string(),
            indicator: t.key.indicator.to_string(),
            org_unit: t.key.org_unit.to_string(),
            kind: t.kind.as_str().to_owned(),
            state: AlertState::Firing.as_str().to_owned(),
            episodes: t.episode as i64,
            fired_at: now.clone(),
            resolved_at: None,
        })
        .collect();
    let refire =
        OnConflict::column(A::AlertId).update_columns([A::State, A::Episodes, A::FiredAt, A::ResolvedAt]).to_owned();
    let insert = rows::Insert::<alert::Entity>::new(backend, Some(refire));
    for chunk in fired.chunks(ROWS_PER_STATEMENT / 4) {
        insert.execute(db, chunk).await?;
    }
    let resolved: Vec<&str> =
        judged.transitions.iter().filter(|t| t.state == AlertState::Resolved).map(|t| t.alert_id.as_str()).collect();
    for chunk in resolved.chunks(ROWS_PER_STATEMENT) {
        alert::Entity::update_many()
            .col_expr(A::State, Expr::value(AlertState::Resolved.as_str()))
            .col_expr(A::ResolvedAt, Expr::value(now.as_str()))
            .filter(A::AlertId.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    let events: Vec<alert_event::ActiveModel> = judged
        .transitions
        .iter()
        .map(|t| alert_event::ActiveModel {
            alert_id: Set(t.alert_id.clone()),
            state: Set(t.state.as_str().to_owned()),
            period: Set(t.period.to_string()),
            value: Set(t.judgement.value.get()),
            expected: Set(t.judgement.expected.unwrap_or_default()),
            gap: Set(t.judgement.gap.unwrap_or_default()),
            status: Set(t.judgement.status.as_str().to_owned()),
            at: Set(now.clone()),
            ..Default::default()
        })
        .collect();
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        alert_event::Entity::insert_many(chunk.iter().cloned()).exec_without_returning(db).await?;
    }
    use standing::Column as S;
    let standings: Vec<standing::Model> = judged
        .standings
        .iter()
        .map(|(k, s)| standing::Model {
            plan: k.plan.to_string(),
            indicator: k.indicator.to_string(),
            org_unit: k.org_unit.to_string(),
            period: s.period.to_string(),
            period_end: s.period.end().to_string(),
            value: s.judgement.value.get(),
            expected: s.judgement.expected,
            gap: s.judgement.gap,
            target: s.target.map(Percent::get),
            status: s.judgement.status.as_str().to_owned(),
            coverage: s.coverage,
            progress: Some(s.outlook.progress.as_str().to_owned()),
            score: s.outlook.score,
            projected: s.outlook.projected,
            expected_attainment: s.outlook.expected_attainment.map(|d| d.to_string()),
            outlook: Some(s.outlook.weather.as_str().to_owned()),
            judged_at: time(s.judged_at),
        })
        .collect();
    let restand = OnConflict::columns([S::Plan, S::Indicator, S::OrgUnit])
        .update_columns([
            S::Period,
            S::PeriodEnd,
            S::Value,
            S::Expected,
            S::Gap,
            S::Target,
            S::Status,
            S::Coverage,
            S::Progress,
            S::Score,
            S::Projected,
            S::ExpectedAttainment,
            S::Outlook,
            S::JudgedAt,
        ])
        .to_owned();
    let insert = rows::Insert::<standing::Entity>::new(backend, Some(restand));
    for chunk in standings.chunks(ROWS_PER_STATEMENT / 2) {
        insert.execute(db, chunk).await?;
    }
    Ok(())
}
