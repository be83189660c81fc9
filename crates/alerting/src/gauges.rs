//! The per-indicator gauges ops alert on, per plan. Read from the database just before each
//! scrape, so every alerting instance reports the same shared state, not what it happened to see.
//! Names are a wire contract (README.md "Metrics", deploy/prometheus/, dashboards).

use chrono::{DateTime, NaiveTime, Utc};
use prometheus::{GaugeVec, Opts, Registry};
use tiendo_domain::reporting::Reports;
use tiendo_domain::trajectory::Status;
use tiendo_domain::Catalog;
use tiendo_store::sea_orm::DatabaseConnection;
use tiendo_store::StoreError;
use tiendo_telemetry::prometheus;

/// Gauges per (plan, indicator, org_unit) from the standings, per (plan, indicator) and per
/// indicator from the catalog.
pub struct IndicatorGauges {
    value: GaugeVec,
    expected: GaugeVec,
    gap: GaugeVec,
    behind: GaugeVec,
    period_end: GaugeVec,
    verdict: GaugeVec,
    progress_score: GaugeVec,
    projected: GaugeVec,
    attainment: GaugeVec,
    target: GaugeVec,
    tolerance: GaugeVec,
    target_date: GaugeVec,
    reporting_interval: GaugeVec,
    info: GaugeVec,
    plan_info: GaugeVec,
    reports_expected: GaugeVec,
    reports_received: GaugeVec,
    reports_on_time: GaugeVec,
    reporting_rate: GaugeVec,
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
        let unit = &["plan", "indicator", "org_unit"];
        let plan = &["plan", "indicator"];
        Ok(Self {
            value: gauge(
                registry,
                "tiendo_indicator_value_ratio",
                "The figure the plan judged for the unit: its latest within the plan (0..1).",
                unit,
            )?,
            expected: gauge(
                registry,
                "tiendo_indicator_expected_ratio",
                "Where the plan's trajectory says the figure should be on its date (0..1).",
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
                "1 when the figure is behind its plan's trajectory by the tolerance or more.",
                unit,
            )?,
            period_end: gauge(
                registry,
                "tiendo_indicator_period_end_timestamp_seconds",
                "Last day of the period of the figure judged (Unix time).",
                unit,
            )?,
            verdict: gauge(
                registry,
                "tiendo_plan_verdict",
                "The plan's verdict on its final period: 1 achieved, 0 missed; absent before the final figure.",
                unit,
            )?,
            progress_score: gauge(
                registry,
                "tiendo_indicator_progress_score",
                "Open SDG's progress score of the unit's figures since the plan's base (-5..5; 5: target achieved).",
                unit,
            )?,
            projected: gauge(
                registry,
                "tiendo_indicator_projected_ratio",
                "The trend over the unit's latest figures, projected to the plan's target date (0..1 scale, unbounded).",
                unit,
            )?,
            attainment: gauge(
                registry,
                "tiendo_indicator_expected_attainment_timestamp_seconds",
                "When the trend reaches the plan's target (Unix time); absent when flat or moving away.",
                unit,
            )?,
            target: gauge(
                registry,
                "tiendo_indicator_target_ratio",
                "The plan's target for the indicator (0..1), with its comparator.",
                &["plan", "indicator", "comparator"],
            )?,
            tolerance: gauge(
                registry,
                "tiendo_indicator_tolerance_ratio",
                "How far below the trajectory still counts as at risk, not behind (0..1 scale).",
                plan,
            )?,
            target_date: gauge(
                registry,
                "tiendo_indicator_target_timestamp_seconds",
                "Date by which the plan's target is to be met, or until which it follows a monitored indicator (Unix time).",
                plan,
            )?,
            reporting_interval: gauge(
                registry,
                "tiendo_indicator_reporting_interval_seconds",
                "How often the indicator is expected to be reported.",
                &["indicator"],
            )?,
            info: gauge(
                registry,
                "tiendo_indicator_info",
                "Always 1: the indicator's owning department and pillar, for joins.",
                &["indicator", "department", "pillar"],
            )?,
            plan_info: gauge(
                registry,
                "tiendo_plan_info",
                "Always 1: the unit a plan is about (its territory), for joins.",
                &["plan", "scope"],
            )?,
            reports_expected: gauge(
                registry,
                "tiendo_reports_expected",
                "Reports expected for the indicator's latest period whose due date has passed.",
                &["indicator", "department"],
            )?,
            reports_received: gauge(
                registry,
                "tiendo_reports_received",
                "Of those, the reports received (on time or late).",
                &["indicator", "department"],
            )?,
            reports_on_time: gauge(
                registry,
                "tiendo_reports_on_time",
                "Of those, the reports received by their due date.",
                &["indicator", "department"],
            )?,
            reporting_rate: gauge(
                registry,
                "tiendo_reporting_rate_ratio",
                "Received ÷ expected reports for the indicator's latest due period, capped at 1.",
                &["indicator", "department"],
            )?,
        })
    }

    /// Sets every gauge from the catalog, the stored standings and, for the reporting
    /// gauges, the receipts of each indicator's latest period due at `now`.
    pub async fn refresh(
        &self,
        db: &DatabaseConnection,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.refresh_reports(db, catalog, now).await?;
        let standings = tiendo_store::alerting::all_standings(db).await?;
        for g in [
            &self.value,
            &self.expected,
            &self.gap,
            &self.behind,
            &self.period_end,
            &self.verdict,
            &self.progress_score,
            &self.projected,
            &self.attainment,
        ] {
            g.reset();
        }
        for i in catalog.indicators() {
            let id = i.id.as_str();
            self.reporting_interval.with_label_values(&[id]).set(f64::from(i.reported.days()) * 86_400.0);
            for owner in &i.owners {
                self.info.with_label_values(&[id, owner.as_str(), &i.pillar]).set(1.0);
            }
        }
        for plan in catalog.plans() {
            self.plan_info.with_label_values(&[plan.id.as_str(), plan.scope.as_str()]).set(1.0);
            for (id, entry) in &plan.indicators {
                let labels = [plan.id.as_str(), id.as_str()];
                self.target_date.with_label_values(&labels).set(timestamp(entry.until));
                if let Some(goal) = entry.goal {
                    let comparator = goal.comparator.as_str();
                    self.target
                        .with_label_values(&[plan.id.as_str(), id.as_str(), comparator])
                        .set(goal.target.ratio());
                    self.tolerance.with_label_values(&labels).set(entry.tolerance / 100.0);
                }
            }
        }
        for (key, s) in standings {
            let labels = [key.plan.as_str(), key.indicator.as_str(), key.org_unit.as_str()];
            self.value.with_label_values(&labels).set(s.judgement.value.ratio());
            if let (Some(expected), Some(gap)) = (s.judgement.expected, s.judgement.gap) {
                self.expected.with_label_values(&labels).set(expected / 100.0);
                self.gap.with_label_values(&labels).set(gap / 100.0);
            }
            let behind = s.judgement.status == Status::Behind;
            self.behind.with_label_values(&labels).set(if behind { 1.0 } else { 0.0 });
            self.period_end.with_label_values(&labels).set(timestamp(s.period.end()));
            if let Some(score) = s.outlook.score {
                self.progress_score.with_label_values(&labels).set(score);
            }
            if let Some(projected) = s.outlook.projected {
                self.projected.with_label_values(&labels).set(projected / 100.0);
            }
            if let Some(date) = s.outlook.expected_attainment {
                self.attainment.with_label_values(&labels).set(timestamp(date));
            }
            let closing = catalog
                .plan(&key.plan)
                .and_then(|p| p.indicator(&key.indicator))
                .zip(catalog.indicator(&key.indicator))
                .is_some_and(|(entry, i)| s.period == entry.final_period(i.reported));
            if closing {
                let verdict = match s.judgement.status {
                    Status::Achieved => Some(1.0),
                    Status::Missed => Some(0.0),
                    _ => None,
                };
                if let Some(v) = verdict {
                    self.verdict.with_label_values(&labels).set(v);
                }
            }
        }
        Ok(())
    }

    async fn refresh_reports(
        &self,
        db: &DatabaseConnection,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for (id, period) in crate::deadline::latest_due(catalog, now) {
            let Some(i) = catalog.indicator(&id) else { continue };
            let own = tiendo_store::reporting::receipts(db, &id, period).await?;
            let rates = Reports::at(catalog.tree(), &i.calendar, catalog.clock(), period, &own, now).rates();
            for department in &i.owners {
                let labels = [id.as_str(), department.as_str()];
                self.reports_expected.with_label_values(&labels).set(rates.expected as f64);
                self.reports_received.with_label_values(&labels).set(rates.received as f64);
                self.reports_on_time.with_label_values(&labels).set(rates.on_time as f64);
                self.reporting_rate.with_label_values(&labels).set(rates.reporting_rate());
            }
        }
        Ok(())
    }
}
