//! Trajectories: where an indicator should be on a given day, on the straight path from a
//! plan's baseline to its target, how a figure stands against that, and the plan's final
//! verdict on the figure of its last period.

use std::fmt;

use chrono::NaiveDate;

use crate::percent::Percent;
use crate::period::days_between;
use crate::plan::{Baseline, Goal, PlanIndicator};

/// How a figure stands. A wire contract (alerts, gauges, `tiendo status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The target's comparator holds (before the deadline: already; on the final period: the
    /// plan's verdict).
    Achieved,
    /// At or ahead of the trajectory.
    OnTrack,
    /// Behind, but by less than the plan's tolerance.
    AtRisk,
    /// Behind by the tolerance or more: an alert fires.
    Behind,
    /// The verdict on the plan's final period: the target was not met. An alert fires.
    Missed,
    /// The plan sets no target for this indicator: the figure is followed, not judged.
    Monitored,
    /// A roll-up whose expected reports are not all in, before their due date: not judged
    /// yet, and nothing fires.
    Incomplete,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Achieved,
        Status::OnTrack,
        Status::AtRisk,
        Status::Behind,
        Status::Missed,
        Status::Monitored,
        Status::Incomplete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Achieved => "achieved",
            Status::OnTrack => "on_track",
            Status::AtRisk => "at_risk",
            Status::Behind => "behind",
            Status::Missed => "missed",
            Status::Monitored => "monitored",
            Status::Incomplete => "incomplete",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A figure judged against its plan, in percentages and percentage points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub value: Percent,
    /// Where the path says the figure should be on its date (the target itself for a
    /// verdict); none for a monitored indicator.
    pub expected: Option<f64>,
    /// `value − expected`, mirrored for a falling target, so positive is always good.
    pub gap: Option<f64>,
    pub status: Status,
}

/// Expected value on `date`: `baseline + (target − baseline) × clamp((d − d0) / (dT − d0), 0, 1)`,
/// in whole days.
pub fn expected(baseline: Baseline, goal: Goal, date: NaiveDate) -> f64 {
    let span = days_between(baseline.date, goal.date);
    let fraction =
        if span <= 0 { 1.0 } else { (days_between(baseline.date, date) as f64 / span as f64).clamp(0.0, 1.0) };
    baseline.value.get() + (goal.target.get() - baseline.value.get()) * fraction
}

fn mirrored(goal: Goal, value: Percent, expected: f64) -> f64 {
    if goal.comparator.rising() {
        value.get() - expected
    } else {
        expected - value.get()
    }
}

/// Judges `value`, the figure of a period ending on `date`, for a plan's `entry`: on the
/// plan's final period (`closing`), the verdict, `achieved` when the comparator holds (no
/// tolerance; strict comparators strict) else `missed`; before it, against the path from
/// `baseline` (the plan's, or its territory's first figure). `None` when there is a target
/// but no baseline yet to start a path from.
pub fn judge(
    entry: &PlanIndicator,
    baseline: Option<Baseline>,
    date: NaiveDate,
    value: Percent,
    closing: bool,
) -> Option<Judgement> {
    let Some(goal) = entry.goal else {
        return Some(Judgement { value, expected: None, gap: None, status: Status::Monitored });
    };
    let achieved = goal.comparator.holds(value.get(), goal.target.get());
    if closing {
        let target = goal.target.get();
        let status = if achieved { Status::Achieved } else { Status::Missed };
        return Some(Judgement { value, expected: Some(target), gap: Some(mirrored(goal, value, target)), status });
    }
    let expected = expected(baseline?, goal, date);
    let gap = mirrored(goal, value, expected);
    let status = if achieved {
        Status::Achieved
    } else if gap >= 0.0 {
        Status::OnTrack
    } else if gap > -entry.tolerance {
        Status::AtRisk
    } else {
        Status::Behind
    };
    Some(Judgement { value, expected: Some(expected), gap: Some(gap), status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::ids::{IndicatorId, PlanId};
    use crate::plan::Comparator;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn pct(v: f64) -> Percent {
        Percent::new(v).unwrap()
    }

    fn entry(indicator: &str) -> PlanIndicator {
        let c = Catalog::built_in();
        let plan = c.plan(&PlanId::parse("an_giang_2025").unwrap()).unwrap();
        plan.indicator(&IndicatorId::parse(indicator).unwrap()).unwrap().clone()
    }

    #[test]
    fn the_path_runs_straight_from_baseline_to_target_and_stays_there() {
        let i = entry("smartphone_adults");
        let (b, g) = (i.baseline.unwrap(), i.goal.unwrap());
        assert_eq!(expected(b, g, d("2023-02-13")), 66.2);
        assert_eq!(expected(b, g, d("2020-01-01")), 66.2);
        assert_eq!(expected(b, g, d("2025-12-31")), 80.0);
        assert_eq!(expected(b, g, d("2026-06-30")), 80.0);
        // 2024-06-30 is 503 days after 2023-02-13, of 1052 days to 2025-12-31.
        let mid = expected(b, g, d("2024-06-30"));
        assert!((mid - (66.2 + 13.8 * 503.0 / 1052.0)).abs() < 1e-9, "{mid}");
    }

    #[test]
    fn status_follows_the_gap_and_the_tolerance() {
        let i = entry("smartphone_adults");
        let b = i.baseline;
        let on = d("2024-06-30");
        let e = expected(b.unwrap(), i.goal.unwrap(), on);
        let status = |v: f64| judge(&i, b, on, pct(v), false).unwrap().status;
        assert_eq!(status(e), Status::OnTrack);
        assert_eq!(status(e - 0.5), Status::AtRisk);
        assert_eq!(status(e - 1.0), Status::Behind);
        assert_eq!(status(80.0), Status::Achieved);
    }

    #[test]
    fn the_final_verdict_has_no_tolerance_and_more_than_is_strict() {
        let sme = entry("sme_digital_platforms");
        let end = d("2025-12-31");
        assert_eq!(judge(&sme, sme.baseline, end, pct(50.0), true).unwrap().status, Status::Missed);
        assert_eq!(judge(&sme, sme.baseline, end, pct(50.01), true).unwrap().status, Status::Achieved);
        let phones = entry("smartphone_adults");
        // 79.5 is within the tolerance of the path, but the verdict knows no tolerance.
        assert_eq!(judge(&phones, phones.baseline, end, pct(79.5), false).unwrap().status, Status::AtRisk);
        let verdict = judge(&phones, phones.baseline, end, pct(79.5), true).unwrap();
        assert_eq!((verdict.status, verdict.expected, verdict.gap), (Status::Missed, Some(80.0), Some(-0.5)));
        assert_eq!(judge(&phones, phones.baseline, end, pct(80.0), true).unwrap().status, Status::Achieved);
    }

    #[test]
    fn a_falling_target_mirrors_the_gap() {
        let mut i = entry("smartphone_adults");
        i.goal = Some(Goal { target: pct(10.0), comparator: Comparator::AtMost, date: d("2025-12-31") });
        let b = Some(Baseline { value: pct(30.0), date: d("2023-01-01") });
        let j = judge(&i, b, d("2025-12-31"), pct(12.0), false).unwrap();
        assert_eq!((j.expected, j.gap, j.status), (Some(10.0), Some(-2.0), Status::Behind));
        assert_eq!(judge(&i, b, d("2025-12-31"), pct(9.0), false).unwrap().status, Status::Achieved);
    }

    #[test]
    fn a_monitored_indicator_is_followed_not_judged_and_a_target_without_a_baseline_waits() {
        let einvoice = entry("einvoice_businesses");
        let j = judge(&einvoice, einvoice.baseline, d("2024-06-30"), pct(97.0), true).unwrap();
        assert_eq!((j.status, j.expected, j.gap), (Status::Monitored, None, None));
        let telehealth = entry("telehealth_adults");
        assert!(judge(&telehealth, None, d("2024-06-30"), pct(12.0), false).is_none());
        assert_eq!(judge(&telehealth, None, d("2025-12-31"), pct(31.0), true).unwrap().status, Status::Achieved);
    }
}
