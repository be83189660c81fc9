//! Trajectories: where an indicator should be on a given day, on the straight path from its
//! baseline to its target, and how a figure stands against that.

use std::fmt;

use chrono::NaiveDate;

use crate::catalog::{Baseline, Indicator};
use crate::percent::Percent;
use crate::period::days_between;

/// How a figure stands. A wire contract (alerts, `tiendo status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The target's comparator already holds.
    Achieved,
    /// At or ahead of the trajectory.
    OnTrack,
    /// Behind, but by less than the indicator's tolerance.
    AtRisk,
    /// Behind by the tolerance or more: an alert fires.
    Behind,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Achieved => "achieved",
            Status::OnTrack => "on_track",
            Status::AtRisk => "at_risk",
            Status::Behind => "behind",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Achieved, Status::OnTrack, Status::AtRisk, Status::Behind].into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A figure judged against its trajectory, in percentages and percentage points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub value: Percent,
    /// On the path from baseline to target, so a percentage too.
    pub expected: f64,
    /// `value − expected`, mirrored for a falling target, so positive is always good.
    pub gap: f64,
    pub status: Status,
}

/// Expected value on `date`: `baseline + (target − baseline) × clamp((d − d0) / (dT − d0), 0, 1)`,
/// in whole days.
pub fn expected(baseline: Baseline, target: Percent, target_date: NaiveDate, date: NaiveDate) -> f64 {
    let span = days_between(baseline.date, target_date);
    let fraction =
        if span <= 0 { 1.0 } else { (days_between(baseline.date, date) as f64 / span as f64).clamp(0.0, 1.0) };
    baseline.value.get() + (target.get() - baseline.value.get()) * fraction
}

/// Judges `value` observed on `date` for `indicator`, on the path from `baseline` (the
/// catalog's, or the first province-level figure for an indicator without one).
pub fn judge(indicator: &Indicator, baseline: Baseline, date: NaiveDate, value: Percent) -> Judgement {
    let expected = expected(baseline, indicator.target, indicator.target_date, date);
    let gap = if indicator.comparator.rising() { value.get() - expected } else { expected - value.get() };
    let status = if indicator.comparator.holds(value.get(), indicator.target.get()) {
        Status::Achieved
    } else if gap >= 0.0 {
        Status::OnTrack
    } else if gap > -indicator.tolerance {
        Status::AtRisk
    } else {
        Status::Behind
    };
    Judgement { value, expected, gap, status }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Comparator};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn pct(v: f64) -> Percent {
        Percent::new(v).unwrap()
    }

    fn smartphones() -> Indicator {
        Catalog::built_in().find_indicator("smartphone_adults").unwrap().clone()
    }

    #[test]
    fn the_path_runs_straight_from_baseline_to_target_and_stays_there() {
        let i = smartphones();
        let b = i.baseline.unwrap();
        assert_eq!(expected(b, pct(80.0), i.target_date, d("2023-02-13")), 66.2);
        assert_eq!(expected(b, pct(80.0), i.target_date, d("2020-01-01")), 66.2);
        assert_eq!(expected(b, pct(80.0), i.target_date, d("2025-12-31")), 80.0);
        assert_eq!(expected(b, pct(80.0), i.target_date, d("2026-06-30")), 80.0);
        // 2024-06-30 is 503 days after 2023-02-13, of 1052 days to 2025-12-31.
        let mid = expected(b, pct(80.0), i.target_date, d("2024-06-30"));
        assert!((mid - (66.2 + 13.8 * 503.0 / 1052.0)).abs() < 1e-9, "{mid}");
    }

    #[test]
    fn status_follows_the_gap_and_the_tolerance() {
        let i = smartphones();
        let b = i.baseline.unwrap();
        let on = d("2024-06-30");
        let e = expected(b, pct(80.0), i.target_date, on);
        assert_eq!(judge(&i, b, on, pct(e)).status, Status::OnTrack);
        assert_eq!(judge(&i, b, on, pct(e - 0.5)).status, Status::AtRisk);
        assert_eq!(judge(&i, b, on, pct(e - 1.0)).status, Status::Behind);
        assert_eq!(judge(&i, b, on, pct(80.0)).status, Status::Achieved);
    }

    #[test]
    fn more_than_is_strict() {
        let i = Catalog::built_in().find_indicator("sme_digital_platforms").unwrap().clone();
        let b = i.baseline.unwrap();
        assert_eq!(judge(&i, b, d("2025-12-31"), pct(50.0)).status, Status::OnTrack);
        assert_eq!(judge(&i, b, d("2025-12-31"), pct(50.01)).status, Status::Achieved);
    }

    #[test]
    fn a_falling_target_mirrors_the_gap() {
        let mut i = smartphones();
        i.comparator = Comparator::AtMost;
        i.target = pct(10.0);
        let b = Baseline { value: pct(30.0), date: d("2023-01-01") };
        let j = judge(&i, b, d("2025-12-31"), pct(12.0));
        assert_eq!((j.expected, j.gap, j.status), (10.0, -2.0, Status::Behind));
        assert_eq!(judge(&i, b, d("2025-12-31"), pct(9.0)).status, Status::Achieved);
    }
}
