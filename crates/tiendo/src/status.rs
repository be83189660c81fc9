//! The trajectory table: every (indicator, org unit) as alerting last judged it.

use sea_orm::{DatabaseConnection, EntityTrait};
use tiendo_domain::Catalog;
use tiendo_store::entity::alert_state;
use tiendo_store::sea_orm;

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub indicator: String,
    pub org_unit: String,
    pub unit_name: String,
    pub period: String,
    pub value: f64,
    pub expected: f64,
    pub gap: f64,
    pub target: f64,
    pub status: String,
    pub alert: Option<String>,
}

/// Reads every judged (indicator, org unit), provinces first within an indicator.
pub async fn rows(db: &DatabaseConnection, catalog: &Catalog) -> anyhow::Result<Vec<Row>> {
    let mut rows: Vec<Row> = alert_state::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|s| Row {
            unit_name: catalog.unit(&s.org_unit).map(|u| u.name.clone()).unwrap_or_default(),
            indicator: s.indicator,
            org_unit: s.org_unit,
            period: s.period,
            value: s.value,
            expected: s.expected,
            gap: s.gap,
            target: s.target,
            status: s.status,
            alert: s.open_alert_id,
        })
        .collect();
    let depth = |code: &str| catalog.unit(code).map(|u| catalog.ancestors(&u.code).len()).unwrap_or(usize::MAX);
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
            r.indicator,
            unit,
            r.period,
            r.value,
            r.expected,
            r.gap,
            r.target,
            r.status,
            r.alert.as_deref().map(|a| format!(" (alert {a})")).unwrap_or_default()
        ));
    }
    if rows.is_empty() {
        out.push_str("(nothing judged yet)\n");
    }
    out
}
