//! Time for the progress methods, in years, from the figures' own dates (never the wall
//! clock, so a closed plan's history is judged the same any day):
//!
//! - between two periods of one frequency: the number of periods ÷ periods per year, so a
//!   yearly series counts whole years as Open SDG does (2015 → 2021 is exactly 6);
//! - from a baseline date to a period's end: days ÷ 365.25;
//! - a target date counts as the end of its final period (the caller passes that period).

use chrono::{Days, NaiveDate};

use crate::period::{days_between, Frequency, Period};

/// Periods of `frequency` in a year.
pub fn per_year(frequency: Frequency) -> i64 {
    match frequency {
        Frequency::Yearly => 1,
        Frequency::Quarterly => 4,
        Frequency::Monthly => 12,
    }
}

/// The period's place on a line of periods of its frequency.
fn index(p: Period) -> i64 {
    match p {
        Period::Year(y) => i64::from(y),
        Period::Quarter(y, q) => i64::from(y) * 4 + i64::from(q) - 1,
        Period::Month(y, m) => i64::from(y) * 12 + i64::from(m) - 1,
    }
}

/// The period `n` periods after `p` (before it for a negative `n`).
pub fn shift(p: Period, n: i64) -> Period {
    let i = index(p) + n;
    match p {
        Period::Year(_) => Period::Year(i as i32),
        Period::Quarter(..) => Period::Quarter(i.div_euclid(4) as i32, (i.rem_euclid(4) + 1) as u8),
        Period::Month(..) => Period::Month(i.div_euclid(12) as i32, (i.rem_euclid(12) + 1) as u8),
    }
}

/// Years from period `a` to period `b` of the same frequency: periods ÷ periods per year.
pub fn years(a: Period, b: Period) -> f64 {
    (index(b) - index(a)) as f64 / per_year(a.frequency()) as f64
}

/// Years from a date to another: days ÷ 365.25.
pub fn years_since(from: NaiveDate, to: NaiveDate) -> f64 {
    days_between(from, to) as f64 / 365.25
}

/// The date `t` years after the end of period `origin`, on the periods' own axis: the end of
/// the period `t` lands on, or, between two period ends, as far into the next period as the
/// fraction says (rounded to a day). So a line that reaches its value exactly at a period's
/// end gives that period's last day.
pub fn date_at(origin: Period, t: f64) -> Option<NaiveDate> {
    let steps = t * per_year(origin.frequency()) as f64;
    if !steps.is_finite() || steps.abs() > 1e6 {
        return None;
    }
    // A whole number of periods, up to rounding noise in the fit.
    let whole = steps.round();
    if (steps - whole).abs() < 1e-9 {
        return Some(shift(origin, whole as i64).end());
    }
    let k = steps.floor();
    let from = shift(origin, k as i64).end();
    let next = shift(origin, k as i64 + 1).end();
    let days = (days_between(from, next) as f64 * (steps - k)).round() as u64;
    from.checked_add_days(Days::new(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        s.parse().unwrap()
    }

    #[test]
    fn yearly_series_count_whole_years_and_others_fractions() {
        assert_eq!(years(p("2015"), p("2021")), 6.0);
        assert_eq!(years(p("2015"), p("2030")), 15.0);
        assert_eq!(years(p("2024-Q3"), p("2025-Q1")), 0.5);
        assert_eq!(years(p("2024-11"), p("2025-02")), 0.25);
        assert_eq!(years_since("2023-02-13".parse().unwrap(), "2024-02-13".parse().unwrap()), 365.0 / 365.25);
    }

    #[test]
    fn periods_shift_across_years_and_dates_land_on_period_ends() {
        assert_eq!(shift(p("2024-11"), 3).to_string(), "2025-02");
        assert_eq!(shift(p("2024-Q1"), -1).to_string(), "2023-Q4");
        assert_eq!(date_at(p("2020"), 5.0).map(|d| d.to_string()).as_deref(), Some("2025-12-31"));
        assert_eq!(date_at(p("2024-01"), 0.25).map(|d| d.to_string()).as_deref(), Some("2024-04-30"));
        // Half-way through February 2024 (29 days) from the end of January: 15 days on.
        assert_eq!(date_at(p("2024-01"), 0.5 / 12.0).map(|d| d.to_string()).as_deref(), Some("2024-02-15"));
        assert_eq!(date_at(p("2024-01"), f64::NAN), None);
    }
}
