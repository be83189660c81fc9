//! The per-indicator gauges ops alert on. Read from the database just before each scrape, so
//! every alerting instance reports the same shared state, not what it happened to see.
//! Names are a wire contract (README.md "Metrics", deploy/prometheus/, dashboards).

use chrono::NaiveTime;
use prometheus::{GaugeVec, Opts, Registry};
use tiendo_domain::trajectory::Status;
use tiendo_domain::Catalog;
use tiendo_store::sea_orm::DatabaseConnection;
use tiendo_store::StoreError;
use tiendo_telemetry::prometheus;

/// Gauges per (indicator, org_unit), and per indicator from the catalog.
pub struct IndicatorGauges {
    value: GaugeVec,
    expected: GaugeVec,
    gap: GaugeVec,
    behind: GaugeVec,
    period_end: GaugeVec,
    target: GaugeVec,
    tolerance: GaugeVec,
    target_date: GaugeVec,
    reporting_interval: GaugeVec,
    info: GaugeVec,
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn timestamp(date: chrono::NaiveDate) -> f64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp() as f64
}

impl IndicatorGauges {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let unit = &["indicator", "org_unit"];
        let ind = &["indicator"];
        Ok(Self {
            value: gauge(
                registry,
                "tiendo_indicator_value_ratio",
                "Latest figure of the indicator for the unit (0..1).",
                unit,
            )?,
            expected: gauge(
                registry,
                "tiendo_indicator_expected_ratio",
                "Where the trajectory says the figure should be on its date (0..1).",
                unit,
            )?,
            gap: gauge(
                registry,
                "tiendo_indicator_gap_ratio",
                "Figure minus trajectory, positive is good (0..1 scale).",
                unit,
            )?,
            behind: gauge(
                registry,
                "tiendo_indicator_behind",
                "1 when the figure is behind its trajectory by the tolerance or more.",
                unit,
            )?,
            period_end: gauge(
                registry,
                "tiendo_indicator_period_end_timestamp_seconds",
                "Last day of the period of the latest figure (Unix time).",
                unit,
            )?,
            target: gauge(registry, "tiendo_indicator_target_ratio", "Target of the indicator (0..1).", ind)?,
            tolerance: gauge(
                registry,
                "tiendo_indicator_tolerance_ratio",
                "How far below the trajectory still counts as at risk, not behind (0..1 scale).",
                ind,
            )?,
            target_date: gauge(
                registry,
                "tiendo_indicator_target_timestamp_seconds",
                "Date by which the target is to be met (Unix time).",
                ind,
            )?,
            reporting_interval: gauge(
                registry,
                "tiendo_indicator_reporting_interval_seconds",
                "How often the indicator is expected to be reported.",
                ind,
            )?,
            info: gauge(
                registry,
                "tiendo_indicator_info",
                "Always 1: the indicator's owning department and pillar, for joins.",
                &["indicator", "department", "pillar"],
            )?,
        })
    }

    /// Sets every gauge from the catalog and the stored standings.
    pub async fn refresh(&self, db: &DatabaseConnection, catalog: &Catalog) -> Result<(), StoreError> {
        let standings = tiendo_store::alerting::all_standings(db).await?;
        for g in [&self.value, &self.expected, &self.gap, &self.behind, &self.period_end] {
            g.reset();
        }
        for i in catalog.indicators() {
            let id = i.id.as_str();
            self.target.with_label_values(&[id]).set(i.target.ratio());
            self.tolerance.with_label_values(&[id]).set(i.tolerance / 100.0);
            self.target_date.with_label_values(&[id]).set(timestamp(i.target_date));
            self.reporting_interval.with_label_values(&[id]).set(f64::from(i.reported.days()) * 86_400.0);
            for owner in &i.owners {
                self.info.with_label_values(&[id, owner.as_str(), &i.pillar]).set(1.0);
            }
        }
        for (key, s) in standings {
            let labels = [key.indicator.as_str(), key.org_unit.as_str()];
            self.value.with_label_values(&labels).set(s.judgement.value.ratio());
            self.expected.with_label_values(&labels).set(s.judgement.expected / 100.0);
            self.gap.with_label_values(&labels).set(s.judgement.gap / 100.0);
            let behind = s.judgement.status == Status::Behind;
            self.behind.with_label_values(&labels).set(if behind { 1.0 } else { 0.0 });
            self.period_end.with_label_values(&labels).set(timestamp(s.period.end()));
        }
        Ok(())
    }
}
