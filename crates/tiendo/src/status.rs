//! The status tables as text: every plan's (indicator, org unit) as alerting last judged it
//! (the plan's verdict where its final figure is in, the current status otherwise), and who has
//! reported each indicator's latest period that is due. The rows are read by
//! `tiendo_store::status`, which the web pages share.

use tiendo_domain::{Catalog, Percent, PlanId};
pub use tiendo_store::status::{reporting, rows, Reporting, Row};

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
