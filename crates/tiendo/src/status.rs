//! The trajectory table: every (indicator, org unit) as alerting last judged it.

use tiendo_domain::trajectory::Status;
use tiendo_domain::{Catalog, IndicatorId, OrgUnitCode, Percent, Period};
use tiendo_store::sea_orm::DatabaseConnection;

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub indicator: IndicatorId,
    pub org_unit: OrgUnitCode,
    pub unit_name: String,
    pub period: Period,
    pub value: Percent,
    pub expected: f64,
    pub gap: f64,
    pub target: Percent,
    pub status: Status,
    pub alert: Option<String>,
}

/// Reads every judged (indicator, org unit), provinces first within an indicator.
pub async fn rows(db: &DatabaseConnection, catalog: &Catalog) -> anyhow::Result<Vec<Row>> {
    let mut rows: Vec<Row> = tiendo_store::alerting::all_standings(db)
        .await?
        .into_iter()
        .map(|(key, s)| Row {
            unit_name: catalog.unit(&key.org_unit).map(|u| u.name.clone()).unwrap_or_default(),
            indicator: key.indicator,
            org_unit: key.org_unit,
            period: s.period,
            value: s.judgement.value,
            expected: s.judgement.expected,
            gap: s.judgement.gap,
            target: s.target,
            status: s.judgement.status,
            alert: s.open_alert,
        })
        .collect();
    let depth = |code: &OrgUnitCode| catalog.unit(code).map(|u| catalog.ancestors(&u.code).len()).unwrap_or(usize::MAX);
    rows.sort_by(|a, b| {
        (&a.indicator, depth(&a.org_unit), &a.org_unit).cmp(&(&b.indicator, depth(&b.org_unit), &b.org_unit))
    });
    Ok(rows)
}

/// Renders rows as a fixed-width table.
pub fn render(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<30} {:<16} {:<8} {:>7} {:>8} {:>7} {:>7}  {}\n",
        "indicator", "org unit", "period", "value", "expected", "gap", "target", "status"
    );
    for r in rows {
        let unit = format!("{} {}", r.org_unit, r.unit_name);
        let unit: String = unit.chars().take(16).collect();
        out.push_str(&format!(
            "{:<30} {:<16} {:<8} {:>6.1}% {:>7.1}% {:>+7.1} {:>6.1}%  {}{}\n",
            r.indicator.as_str(),
            unit,
            r.period.to_string(),
            r.value.get(),
            r.expected,
            r.gap,
            r.target.get(),
            r.status,
            r.alert.as_deref().map(|a| format!(" (alert {a})")).unwrap_or_default()
        ));
    }
    if rows.is_empty() {
        out.push_str("(nothing judged yet)\n");
    }
    out
}
