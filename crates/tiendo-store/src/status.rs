//! The status of every plan, as alerting last judged it, and who has reported: the read model
//! `tiendo status` prints and the web pages show. Reads only.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tiendo_domain::alert::{alert_id, AlertKind};
use tiendo_domain::progress::Outlook;
use tiendo_domain::reporting::{Rates, Reports};
use tiendo_domain::trajectory::Status;
use tiendo_domain::{Catalog, IndicatorId, OrgUnitCode, Percent, Period, PlanId, PlanKey};

use crate::StoreError;

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub plan: PlanId,
    pub indicator: IndicatorId,
    pub org_unit: OrgUnitCode,
    /// The unit's name on the period's end date.
    pub unit_name: String,
    pub period: Period,
    pub value: Percent,
    pub expected: Option<f64>,
    pub gap: Option<f64>,
    pub target: Option<Percent>,
    pub status: Status,
    /// True when the status is the plan's verdict on its final period (`achieved` or `missed`).
    pub verdict: bool,
    /// The key's alerts firing now.
    pub alerts: Vec<String>,
    /// The progress methods' view: category, score, trend.
    pub outlook: Outlook,
    /// Received ÷ expected of the reports the figure depends on, when alerting worked it out.
    pub coverage: Option<f64>,
}

/// Reads every judged key: by plan, then indicator, the plan's territory first.
pub async fn rows(db: &DatabaseConnection, catalog: &Catalog) -> Result<Vec<Row>, StoreError> {
    let firing: HashSet<String> = crate::alerting::firing(db).await?.into_iter().collect();
    let tree = catalog.tree();
    let mut rows: Vec<Row> = crate::alerting::all_standings(db)
        .await?
        .into_iter()
        .map(|(key, s)| {
            let date = s.period.end();
            let closing = catalog
                .plan(&key.plan)
                .and_then(|p| p.indicator(&key.indicator))
                .zip(catalog.indicator(&key.indicator))
                .is_some_and(|(entry, i)| s.period == entry.final_period(i.reported));
            let verdict = closing && matches!(s.judgement.status, Status::Achieved | Status::Missed);
            Row {
                unit_name: tree.unit_at(&key.org_unit, date).map(|u| u.name.clone()).unwrap_or_default(),
                alerts: alerts(&key, &firing),
                plan: key.plan,
                indicator: key.indicator,
                org_unit: key.org_unit,
                period: s.period,
                value: s.judgement.value,
                expected: s.judgement.expected,
                gap: s.judgement.gap,
                target: s.target,
                status: s.judgement.status,
                verdict,
                outlook: s.outlook,
                coverage: s.coverage,
            }
        })
        .collect();
    let depth = |r: &Row| tree.ancestors_at(&r.org_unit, r.period.end()).len();
    rows.sort_by(|a, b| {
        (&a.plan, &a.indicator, depth(a), &a.org_unit).cmp(&(&b.plan, &b.indicator, depth(b), &b.org_unit))
    });
    Ok(rows)
}

fn alerts(key: &PlanKey, firing: &HashSet<String>) -> Vec<String> {
    AlertKind::ALL.iter().map(|k| alert_id(key, *k)).filter(|id| firing.contains(id)).collect()
}

/// One indicator's latest period whose reports are due: what `tiendo status --reporting` shows.
#[derive(Debug, Clone)]
pub struct Reporting {
    pub indicator: IndicatorId,
    pub period: Period,
    /// The last day its reports were on time.
    pub due: chrono::NaiveDate,
    pub rates: Rates,
    /// The units whose reports are missing: code and name.
    pub missing: Vec<(OrgUnitCode, String)>,
}

/// Every indicator's latest period due at `now`, and who has reported it.
pub async fn reporting(
    db: &DatabaseConnection,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<Vec<Reporting>, StoreError> {
    let periods: Vec<(IndicatorId, Period)> = catalog
        .indicators()
        .map(|i| (i.id.clone(), catalog.clock().latest_due(i.reported, i.calendar.due_days, now)))
        .collect();
    reporting_of(db, catalog, &periods, now).await
}

/// Who has reported each of these (indicator, period), as of `now`; unknown indicators are
/// left out.
pub async fn reporting_of(
    db: &DatabaseConnection,
    catalog: &Catalog,
    periods: &[(IndicatorId, Period)],
    now: DateTime<Utc>,
) -> Result<Vec<Reporting>, StoreError> {
    let mut out = Vec::with_capacity(periods.len());
    for (id, period) in periods {
        let Some(i) = catalog.indicator(id) else { continue };
        let period = *period;
        let own = crate::reporting::receipts(db, &i.id, period).await?;
        let reports = Reports::at(catalog.tree(), &i.calendar, catalog.clock(), period, &own, now);
        let missing = reports
            .missing()
            .map(|r| {
                let name = catalog.tree().unit_at(&r.unit, period.end()).map(|u| u.name.clone()).unwrap_or_default();
                (r.unit.clone(), name)
            })
            .collect();
        out.push(Reporting {
            indicator: i.id.clone(),
            period,
            due: catalog.clock().due_date(period, i.calendar.due_days),
            rates: reports.rates(),
            missing,
        });
    }
    Ok(out)
}
