//! A batch of changed figures applied inside the caller's transaction: stored, each
//! (indicator, org unit) they touch judged once on its latest period against its trajectory,
//! and an alert fired or resolved when that key enters or leaves `behind`. The tables are
//! `tiendo_store::alerting`; this module holds the judgement only.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tiendo_domain::alert::{alert_id, AlertState, Standing, Transition};
use tiendo_domain::catalog::{Baseline, Indicator};
use tiendo_domain::figure::FigureVersion;
use tiendo_domain::trajectory::{judge, Status};
use tiendo_domain::{Catalog, FigureKey, IndicatorId, OrgUnitCode, UnitKey};
use tiendo_store::alerting::{self, Judged, Latest};
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
    /// Not about an indicator or unit in this catalog: ignored.
    Unknown,
}

/// Stores and judges `items` inside the caller's transaction at `now`; returns each one's
/// outcome and the alerts that fired or resolved, in the order their keys first appear.
///
/// Only the newest version of each figure is stored; each (indicator, org unit) is judged
/// once, on what is stored after the whole batch, as if the batch had arrived at once.
pub async fn judge_batch<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    items: &[&FigureVersion],
    now: DateTime<Utc>,
) -> Result<(Vec<Outcome>, Vec<Transition>), StoreError> {
    let mut outcomes = vec![Outcome::Stale; items.len()];
    // The first copy of the newest version of each figure.
    let mut newest: HashMap<&FigureKey, usize> = HashMap::new();
    for (i, f) in items.iter().enumerate() {
        if catalog.indicator(&f.key.indicator).is_none() || catalog.unit(&f.key.org_unit).is_none() {
            outcomes[i] = Outcome::Unknown;
            continue;
        }
        let first = newest.entry(&f.key).or_insert(i);
        if f.version > items[*first].version {
            *first = i;
        }
    }
    let keys: Vec<&FigureKey> = newest.keys().copied().collect();
    let stored = alerting::stored_versions(db, &keys).await?;
    let mut fresh: Vec<usize> = newest
        .into_iter()
        .filter(|(key, i)| stored.get(*key).is_none_or(|&v| v < items[*i].version))
        .map(|(_, i)| i)
        .collect();
    fresh.sort_unstable();
    let fresh: Vec<&FigureVersion> = fresh
        .into_iter()
        .map(|i| {
            outcomes[i] = Outcome::Judged;
            items[i]
        })
        .collect();
    alerting::store_figures(db, &fresh).await?;

    let keys = keys_to_judge(db, catalog, &fresh).await?;
    let latest = alerting::latest_figures(db, &keys).await?;
    let standings = alerting::standings(db, &keys).await?;
    let mut baselines = Baselines::default();
    let mut judged = Judged::default();
    for key in &keys {
        let Some(figure) = latest.get(key) else { continue };
        let Some(indicator) = catalog.indicator(&key.indicator) else { continue };
        let Some(baseline) = baselines.get(db, catalog, indicator, &key.org_unit).await? else { continue };
        judge_key(&mut judged, indicator, key, figure, baseline, standings.get(key), now);
    }
    alerting::save(db, &judged, now).await?;
    Ok((outcomes, judged.transitions))
}

/// The (indicator, org unit) keys these stored figures move, in order of first appearance.
/// A province figure can move the baseline of an indicator that has none in the catalog:
/// then every unit with a figure of that indicator is judged again.
async fn keys_to_judge<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    figures: &[&FigureVersion],
) -> Result<Vec<UnitKey>, StoreError> {
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    let mut everywhere: HashSet<&IndicatorId> = HashSet::new();
    for f in figures {
        let moves_baseline = catalog.indicator(&f.key.indicator).is_some_and(|i| i.baseline.is_none())
            && catalog.unit(&f.key.org_unit).is_some_and(|u| u.parent.is_none());
        let units = if !moves_baseline {
            vec![f.key.org_unit.clone()]
        } else if everywhere.insert(&f.key.indicator) {
            alerting::units_with_figures(db, &f.key.indicator).await?
        } else {
            vec![]
        };
        for org_unit in units {
            let key = UnitKey { indicator: f.key.indicator.clone(), org_unit };
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

/// Each indicator's baseline: the catalog's, or else the earliest province-level figure
/// (whatever order the figures arrived in, so a replay gives the same answer). Read once per
/// (indicator, root unit) per batch, after the batch's figures are stored.
#[derive(Default)]
struct Baselines(HashMap<UnitKey, Option<Baseline>>);

impl Baselines {
    async fn get<C: ConnectionTrait>(
        &mut self,
        db: &C,
        catalog: &Catalog,
        indicator: &Indicator,
        unit: &OrgUnitCode,
    ) -> Result<Option<Baseline>, StoreError> {
        if let Some(b) = indicator.baseline {
            return Ok(Some(b));
        }
        let root = catalog.ancestors(unit).pop().unwrap_or_else(|| unit.clone());
        let key = UnitKey { indicator: indicator.id.clone(), org_unit: root };
        if let Some(known) = self.0.get(&key) {
            return Ok(*known);
        }
        let first = alerting::first_figure(db, &key).await?;
        let baseline = first.map(|f| Baseline { value: f.value, date: f.period.end() });
        self.0.insert(key, baseline);
        Ok(baseline)
    }
}

/// Judges one key on its latest figure; a transition to or from `behind` fires or resolves
/// its alert.
fn judge_key(
    judged: &mut Judged,
    indicator: &Indicator,
    key: &UnitKey,
    figure: &Latest,
    baseline: Baseline,
    previous: Option<&Standing>,
    now: DateTime<Utc>,
) {
    let j = judge(indicator, baseline, figure.period.end(), figure.value);
    let mut open_alert = previous.and_then(|p| p.open_alert.clone());
    let mut alerts_fired = previous.map_or(0, |p| p.alerts_fired);
    let transition = match (&open_alert, j.status == Status::Behind) {
        (None, true) => {
            alerts_fired += 1;
            let id = alert_id(key, alerts_fired);
            open_alert = Some(id.clone());
            Some((id, AlertState::Firing))
        }
        (Some(id), false) => {
            let id = id.clone();
            open_alert = None;
            Some((id, AlertState::Resolved))
        }
        _ => None,
    };
    if let Some((alert_id, state)) = transition {
        judged.transitions.push(Transition {
            alert_id,
            state,
            key: key.clone(),
            period: figure.period,
            judgement: j,
            target: indicator.target,
            departments: indicator.owners.clone(),
            at: now,
        });
    }
    let standing = Standing {
        period: figure.period,
        judgement: j,
        target: indicator.target,
        open_alert,
        alerts_fired,
        judged_at: now,
    };
    judged.standings.push((key.clone(), standing));
}
