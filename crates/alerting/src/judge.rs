//! A batch of changed figures applied inside the caller's transaction: stored, then every
//! plan's (indicator, org unit) they touch judged once, on its latest figure within the plan
//! against the plan's trajectory, or on its final period with the plan's verdict; an alert
//! fires or resolves when a key enters or leaves `behind` (its trajectory alert) or `missed`
//! (its verdict alert). Before a period's due date, a roll-up whose expected reports are not
//! all in (less than `alerting.min_coverage` of them) is `incomplete`: not judged, and no
//! alert moves. The tables are `tiendo_store::alerting`; this module holds the judgement only.

use chrono::{DateTime, Utc};
use tiendo_domain::alert::{alert_id, AlertKind, AlertState, PlanKey, Standing, Transition};
use tiendo_domain::figure::FigureVersion;
use tiendo_domain::plan::{Baseline, Plan, PlanIndicator};
use tiendo_domain::progress::assess;
use tiendo_domain::reporting::{Receipt, Reports};
use tiendo_domain::trajectory::judge;
use tiendo_domain::trajectory::Status;
use tiendo_domain::{Catalog, FigureKey, IndicatorId, OrgUnitCode, Percent, Period, PlanId, UnitKey};
use tiendo_store::alerting::{self, AlertRecord, Judged, Latest, SeriesAsk};
use tiendo_store::hash::{HashMap, HashMapExt, HashSet, HashSetExt};
use tiendo_store::sea_orm::ConnectionTrait;
use tiendo_store::StoreError;

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and judged.
    Judged,
    /// Its version is not newer than one stored or in the same batch: a redelivery or a
    /// stale copy.
    Stale,
    /// Not about an indicator of this catalog, or a unit it has on the period's end date: ignored.
    Unknown,
}

/// What judging needs besides the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    /// `alerting.min_coverage`: before the due date, the share of expected reports in that a
    /// roll-up needs to be judged.
    pub min_coverage: f64,
}

/// Stores and judges `items` inside the caller's transaction at `now`; returns each one's
/// outcome and the alerts that fired or resolved, in the order their keys first appear.
///
/// Only the newest version of each figure is stored; each plan's (indicator, org unit) is
/// judged once, on what is stored after the whole batch, as if the batch had arrived at once.
pub async fn judge_batch<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    judging: Judging,
    items: &[&FigureVersion],
    now: DateTime<Utc>,
) -> Result<(Vec<Outcome>, Vec<Transition>), StoreError> {
    let mut outcomes = vec![Outcome::Stale; items.len()];
    // The first copy of the newest version of each figure.
    let mut newest: HashMap<&FigureKey, usize> = HashMap::new();
    for (i, f) in items.iter().enumerate() {
        let known = catalog.indicator(&f.key.indicator).is_some()
            && catalog.tree().unit_at(&f.key.org_unit, f.key.period.end()).is_some();
        if !known {
            outcomes[i] = Outcome::Unknown;
            continue;
        }
        let first = newest.entry(&f.key).or_insert(i);
        if f.version > items[*first].version {
            *first = i;
        }
    }
    let mut newest: Vec<usize> = newest.into_values().collect();
    newest.sort_unstable();
    let candidates: Vec<&FigureVersion> = newest.iter().map(|&i| items[i]).collect();
    let written = alerting::store_newer_figures(db, &candidates).await?;
    let fresh: Vec<&FigureVersion> = newest
        .into_iter()
        .filter(|&i| written.contains(&items[i].key))
        .map(|i| {
            outcomes[i] = Outcome::Judged;
            items[i]
        })
        .collect();

    let keys = keys_to_judge(db, catalog, &fresh).await?;
    let judged = judge_keys(db, catalog, judging, &keys, now).await?;
    alerting::save(db, &judged, now).await?;
    Ok((outcomes, judged.transitions))
}

/// Judges `keys` at `now` on what is stored; returns their new standings and the alerts that
/// fired or resolved, for the caller to save.
pub async fn judge_keys<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    judging: Judging,
    keys: &[PlanKey],
    now: DateTime<Utc>,
) -> Result<Judged, StoreError> {
    let series = series(db, catalog, keys).await?;
    let ids: Vec<String> = keys.iter().flat_map(|k| AlertKind::ALL.map(|kind| alert_id(k, kind))).collect();
    let alerts = alerting::alerts(db, &ids).await?;
    let mut baselines = Baselines::default();
    let mut reports = ReportCache::default();
    let mut judged = Judged::default();
    for key in keys {
        let Some(s) = series.get(key) else { continue };
        let Some(figure) = s.recent.last() else { continue };
        let Some((plan, entry)) = plan_entry(catalog, key) else { continue };
        let Some(indicator) = catalog.indicator(&key.indicator) else { continue };
        let closing = figure.period == entry.final_period(indicator.reported);
        let baseline = match (closing, entry.baseline) {
            (false, None) => baselines.get(db, plan, entry).await?,
            (_, baseline) => baseline,
        };
        let Some(mut judgement) = judge(entry, baseline, figure.period.end(), figure.value, closing) else { continue };
        // Before the due date, a figure whose reports are not all in is not judged yet.
        let due = catalog.clock().due(figure.period, indicator.calendar.due_days);
        let mut coverage = None;
        if now < due {
            let c = reports.coverage(db, catalog, &key.indicator, figure.period, &key.org_unit, now).await?;
            coverage = Some(c);
            if c < judging.min_coverage {
                judgement.status = Status::Incomplete;
            }
        }
        let target = entry.goal.map(|g| g.target);
        let figures: Vec<(Period, Percent)> = s.recent.iter().map(|f| (f.period, f.value)).collect();
        let first = s.first.map(|f| (f.period, f.value));
        let outlook = assess(entry, indicator.reported, indicator.trend_window, first, &figures, closing);
        if judgement.status != Status::Incomplete {
            for kind in AlertKind::ALL {
                let id = alert_id(key, kind);
                let record = alerts.get(&id);
                let firing = record.is_some_and(|r| r.state == AlertState::Firing);
                let episodes = record.map_or(0, |r: &AlertRecord| r.episodes);
                let (state, episode) = match (kind.fires_on(judgement.status, &outlook), firing) {
                    (true, false) => (AlertState::Firing, episodes + 1),
                    (false, true) => (AlertState::Resolved, episodes),
                    _ => continue,
                };
                let c = match coverage {
                    Some(c) => c,
                    None => reports.coverage(db, catalog, &key.indicator, figure.period, &key.org_unit, now).await?,
                };
                coverage = Some(c);
                judged.transitions.push(Transition {
                    alert_id: id,
                    kind,
                    state,
                    episode,
                    key: key.clone(),
                    period: figure.period,
                    judgement,
                    target,
                    departments: indicator.owners.clone(),
                    coverage: c,
                    outlook,
                    at: now,
                });
            }
        }
        let standing = Standing { period: figure.period, judgement, target, coverage, outlook, judged_at: now };
        judged.standings.push((key.clone(), standing));
    }
    Ok(judged)
}

/// The reports of each (indicator, period) a batch asks about, read once per batch.
#[derive(Default)]
struct ReportCache(HashMap<(IndicatorId, Period), (std::collections::HashMap<OrgUnitCode, Receipt>, Reports)>);

impl ReportCache {
    /// How much of what `unit`'s figure of `period` depends on is in.
    async fn coverage<C: ConnectionTrait>(
        &mut self,
        db: &C,
        catalog: &Catalog,
        indicator: &IndicatorId,
        period: Period,
        unit: &OrgUnitCode,
        now: DateTime<Utc>,
    ) -> Result<f64, StoreError> {
        let key = (indicator.clone(), period);
        if !self.0.contains_key(&key) {
            let Some(i) = catalog.indicator(indicator) else { return Ok(1.0) };
            let own = tiendo_store::reporting::receipts(db, indicator, period).await?;
            let reports = Reports::at(catalog.tree(), &i.calendar, catalog.clock(), period, &own, now);
            self.0.insert(key.clone(), (own, reports));
        }
        let (own, reports) = &self.0[&key];
        Ok(reports.coverage(catalog.tree(), unit, own.contains_key(unit)))
    }
}

fn plan_entry<'a>(catalog: &'a Catalog, key: &PlanKey) -> Option<(&'a Plan, &'a PlanIndicator)> {
    let plan = catalog.plan(&key.plan)?;
    Some((plan, plan.indicator(&key.indicator)?))
}

/// The last day a plan judges an indicator: the end of its final period.
fn horizon(catalog: &Catalog, entry: &PlanIndicator) -> Option<chrono::NaiveDate> {
    catalog.indicator(&entry.indicator).map(|i| entry.final_period(i.reported).end())
}

/// The plans' (indicator, org unit) keys these stored figures move, in order of first
/// appearance: every plan that holds the indicator and whose territory held the unit on the
/// figure's date, up to the plan's final period. A figure of a plan's own territory can move
/// the baseline of an indicator the plan gives none: then every unit with a figure of that
/// indicator is judged again.
async fn keys_to_judge<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    figures: &[&FigureVersion],
) -> Result<Vec<PlanKey>, StoreError> {
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    let mut everywhere: HashSet<(&PlanId, &IndicatorId)> = HashSet::new();
    for f in figures {
        let date = f.key.period.end();
        for (plan, entry) in catalog.plans_of(&f.key.indicator) {
            if horizon(catalog, entry).is_none_or(|until| date > until)
                || !catalog.tree().is_within(&f.key.org_unit, &plan.scope, date)
            {
                continue;
            }
            let moves_baseline = entry.baseline.is_none() && f.key.org_unit == plan.scope;
            let units = if !moves_baseline {
                vec![f.key.org_unit.clone()]
            } else if everywhere.insert((&plan.id, &f.key.indicator)) {
                alerting::units_with_figures(db, &f.key.indicator).await?
            } else {
                vec![]
            };
            for org_unit in units {
                let key = PlanKey { plan: plan.id.clone(), indicator: f.key.indicator.clone(), org_unit };
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
        }
    }
    Ok(keys)
}

/// The figures a key is judged and assessed on.
struct Series {
    /// Its latest figures within the plan, oldest first: the trend's window, the last of them
    /// the figure judged.
    recent: Vec<Latest>,
    /// Its first figure within the plan: the progress measure's base when the plan gives no
    /// baseline.
    first: Option<Latest>,
}

/// Each key's figures: its latest `trend_window` with a value up to the plan's final period,
/// among those of a unit within the plan's territory on the figure's date (a code can belong to
/// another unit at another time), and its first. Read for the whole batch at once
/// ([`alerting::series_figures`]).
async fn series<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    keys: &[PlanKey],
) -> Result<HashMap<PlanKey, Series>, StoreError> {
    let mut asked: Vec<(&PlanKey, &Plan)> = Vec::with_capacity(keys.len());
    let mut asks = Vec::with_capacity(keys.len());
    for key in keys {
        let Some((plan, entry)) = plan_entry(catalog, key) else { continue };
        let (Some(until), Some(i)) = (horizon(catalog, entry), catalog.indicator(&key.indicator)) else { continue };
        let unit = UnitKey { indicator: key.indicator.clone(), org_unit: key.org_unit.clone() };
        asked.push((key, plan));
        asks.push(SeriesAsk { key: unit, until, n: i.trend_window, first: entry.baseline.is_none() });
    }
    let found = alerting::series_figures(db, &asks).await?;
    let mut out = HashMap::with_capacity(asks.len());
    for (((key, plan), ask), figures) in asked.into_iter().zip(&asks).zip(found) {
        let within = |f: &Latest| catalog.tree().is_within(&key.org_unit, &plan.scope, f.period.end());
        let mut kept: Vec<Latest> = figures.recent.iter().filter(|f| within(f)).copied().collect();
        if kept.len() < figures.recent.len() {
            // A code that belonged to another unit within the window: look further back.
            kept = alerting::figures_until(db, &ask.key, ask.until).await?;
            kept.retain(within);
            kept.truncate(ask.n);
        }
        kept.reverse();
        if kept.is_empty() {
            continue;
        }
        let first = figures.first.filter(within);
        out.insert(key.clone(), Series { recent: kept, first });
    }
    Ok(out)
}

/// The baseline of each plan's indicator that gives none: the earliest figure of the plan's
/// territory (whatever order the figures arrived in, so a replay gives the same answer). Read
/// once per batch, after the batch's figures are stored.
#[derive(Default)]
struct Baselines(HashMap<(PlanId, IndicatorId), Option<Baseline>>);

impl Baselines {
    async fn get<C: ConnectionTrait>(
        &mut self,
        db: &C,
        plan: &Plan,
        entry: &PlanIndicator,
    ) -> Result<Option<Baseline>, StoreError> {
        let key = (plan.id.clone(), entry.indicator.clone());
        if let Some(known) = self.0.get(&key) {
            return Ok(*known);
        }
        let territory = UnitKey { indicator: entry.indicator.clone(), org_unit: plan.scope.clone() };
        let first = alerting::first_figure(db, &territory).await?;
        let baseline = first.map(|f| Baseline { value: f.value, date: f.period.end() });
        self.0.insert(key, baseline);
        Ok(baseline)
    }
}
