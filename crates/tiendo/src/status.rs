//! The status tables: every plan's (indicator, org unit) as alerting last judged it (the
//! plan's verdict where its final figure is in, the current status otherwise), and who has
//! reported each indicator's latest period that is due.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tiendo_domain::alert::{alert_id, AlertKind};
use tiendo_domain::progress::Outlook;
use tiendo_domain::reporting::{Rates, Reports};
use tiendo_domain::trajectory::Status;
use tiendo_domain::{Catalog, IndicatorId, OrgUnitCode, Percent, Period, PlanId, PlanKey};
use tiendo_store::sea_orm::DatabaseConnection;

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
}

/// Reads every judged key: by plan, then indicator, the plan's territory first.
pub async fn rows(db: &DatabaseConnection, catalog: &Catalog) -> anyhow::Result<Vec<Row>> {
    let firing: HashSet<String> = tiendo_store::alerting::firing(db).await?.into_iter().collect();
    let tree = catalog.tree();
    let mut rows: Vec<Row> = tiendo_store::alerting::all_standings(db)
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

fn percent(v: Option<f64>, width: usize) -> String {
    v.map_or_else(|| format!("{:>width$}", "–"), |v| format!("{:>w$.1}%", v, w = width - 1))
}

/// Renders rows as fixed-width tables, one per plan.
pub fn render(catalog: &Catalog, rows: &[Row]) -> String {
    let mut out = String::new();
    let mut plan: Option<&PlanId> = None;
    for r in rows {
        if plan != Some(&r.plan) {
            plan = Some(&r.plan);
            let about = catalog
                .plan(&r.plan)
                .map(|p| format!("{}; territory {}, until {}", p.name, p.scope, p.target_date))
                .unwrap_or_default();
            out.push_str(&format!("plan {} ({about})\n", r.plan));
            out.push_str(&format!(
                "{:<30} {:<24} {:<8} {:>7} {:>8} {:>7} {:>7}  {:<22} {:>5}  {:<13} {:>9} {:<10}  {}\n",
                "indicator",
                "org unit",
                "period",
                "value",
                "expected",
                "gap",
                "target",
                "progress",
                "score",
                "outlook",
                "projected",
                "attained",
                "status"
            ));
        }
        let unit = format!("{} {}", r.org_unit, r.unit_name);
        let unit: String = unit.chars().take(24).collect();
        let gap = r.gap.map_or_else(|| format!("{:>7}", "–"), |g| format!("{g:>+7.1}"));
        let status = if r.verdict { format!("{} (verdict)", r.status) } else { r.status.to_string() };
        let alerts = if r.alerts.is_empty() { String::new() } else { format!(" (alert {})", r.alerts.join(", ")) };
        let o = &r.outlook;
        let score = o.score.map_or_else(|| format!("{:>5}", "–"), |s| format!("{s:>+5.1}"));
        let attained = o.expected_attainment.map_or_else(|| "–".to_owned(), |d| d.to_string());
        out.push_str(&format!(
            "{:<30} {:<24} {:<8} {:>6.1}% {} {gap} {}  {:<22} {score}  {:<13} {} {attained:<10}  {status}{alerts}\n",
            r.indicator.as_str(),
            unit,
            r.period.to_string(),
            r.value.get(),
            percent(r.expected, 8),
            percent(r.target.map(Percent::get), 7),
            o.progress.as_str(),
            o.weather.as_str(),
            percent(o.projected, 9),
        ));
    }
    if rows.is_empty() {
        out.push_str("(nothing judged yet)\n");
    }
    out
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
) -> anyhow::Result<Vec<Reporting>> {
    let mut out = Vec::new();
    for i in catalog.indicators() {
        let period = catalog.clock().latest_due(i.reported, i.calendar.due_days, now);
        let own = tiendo_store::reporting::receipts(db, &i.id, period).await?;
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

/// Most missing units listed by name per indicator; the rest are counted.
const MISSING_LISTED: usize = 12;

/// Renders the reporting table: per indicator, the counts, then the missing units.
pub fn render_reporting(rows: &[Reporting]) -> String {
    let mut out = format!(
        "{:<30} {:<8} {:<10} {:>8} {:>8} {:>7} {:>6}\n",
        "indicator", "period", "due", "expected", "received", "on time", "rate"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<30} {:<8} {:<10} {:>8} {:>8} {:>7} {:>5.0}%\n",
            r.indicator.as_str(),
            r.period.to_string(),
            r.due.to_string(),
            r.rates.expected,
            r.rates.received,
            r.rates.on_time,
            100.0 * r.rates.reporting_rate()
        ));
        if !r.missing.is_empty() {
            let listed: Vec<String> =
                r.missing.iter().take(MISSING_LISTED).map(|(code, name)| format!("{code} {name}")).collect();
            let more = r.missing.len().saturating_sub(MISSING_LISTED);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            out.push_str(&format!("    missing: {}{more}\n", listed.join(", ")));
        }
    }
    out
}
