//! Trend forecast: a least-squares line over the latest figures, projected to the target time and graded with
//! the weather symbols of Germany's sustainability indicator report (Deutsche Nachhaltigkeitsstrategie).

use std::cmp::Ordering;
use std::fmt;

use super::{Direction, Target};
use crate::plan::Comparator;

/// Default number of latest figures the line is fitted to (the German report uses the latest six).
pub const DEFAULT_WINDOW: usize = 6;
/// Smallest window, and smallest number of figures, that gives a forecast.
pub const MIN_WINDOW: usize = 3;
/// A relative miss strictly below this (5 %) is `sun`.
pub const SUN_BELOW: f64 = 0.05;
/// A relative miss from 5 % up to and including this (20 %) is `partly_cloudy`; above it, `cloudy`.
pub const PARTLY_CLOUDY_UP_TO: f64 = 0.20;

/// Weather symbol of a forecast. Wire strings: `sun`, `partly_cloudy`, `cloudy`, `thunderstorm`,
/// `not_available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weather {
    /// The projection meets the target, or misses it by less than 5 % of the current distance to it.
    Sun,
    /// Misses by 5 % to 20 % of the current distance.
    PartlyCloudy,
    /// Moving towards the target but missing by more than 20 %.
    Cloudy,
    /// Flat or moving away from the target, which the projection misses.
    Thunderstorm,
    /// No forecast.
    NotAvailable,
}

impl Weather {
    /// All symbols, best first.
    pub const ALL: [Weather; 5] =
        [Weather::Sun, Weather::PartlyCloudy, Weather::Cloudy, Weather::Thunderstorm, Weather::NotAvailable];

    /// The symbol a stored or received word names.
    pub fn parse(s: &str) -> Option<Weather> {
        Weather::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Weather::Sun => "sun",
            Weather::PartlyCloudy => "partly_cloudy",
            Weather::Cloudy => "cloudy",
            Weather::Thunderstorm => "thunderstorm",
            Weather::NotAvailable => "not_available",
        }
    }
}

impl fmt::Display for Weather {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fitted line, stored around the means of the fitted points for accuracy:
/// `value(t) = mean_value + slope · (t − mean_time)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Change of value per year.
    pub slope: f64,
    /// Mean time of the fitted points.
    pub mean_time: f64,
    /// Mean value of the fitted points.
    pub mean_value: f64,
}

impl Line {
    /// The line's value at time `t`.
    pub fn value_at(&self, t: f64) -> f64 {
        self.mean_value + self.slope * (t - self.mean_time)
    }

    /// The time at which the line has `value`; `None` for a flat line or a non-finite result.
    pub fn time_of(&self, value: f64) -> Option<f64> {
        if self.slope == 0.0 {
            return None;
        }
        let t = self.mean_time + (value - self.mean_value) / self.slope;
        t.is_finite().then_some(t)
    }
}

/// Ordinary least-squares line through `(time, value)` points. `None` when there are fewer than two distinct
/// times or any number is not finite.
pub fn fit_line(points: &[(f64, f64)]) -> Option<Line> {
    if points.is_empty() || points.iter().any(|&(t, v)| !t.is_finite() || !v.is_finite()) {
        return None;
    }
    let n = points.len() as f64;
    let mean_time = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_value = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_time) * (p.0 - mean_time)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_time) * (p.1 - mean_value)).sum();
    if sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    [slope, mean_time, mean_value].iter().all(|x| x.is_finite()).then_some(Line { slope, mean_time, mean_value })
}

/// A trend forecast against a target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// The weather symbol.
    pub weather: Weather,
    /// The line's value at the target time.
    pub projected: Option<f64>,
    /// When the target is (expected to be) reached: the latest figure's time if the latest value already
    /// meets the target; else the time the line reaches the target value if the line moves towards it and
    /// that time is not before the latest figure; else `None`.
    pub expected_attainment: Option<f64>,
    /// Relative shortfall `|target − projected| / |target − latest|`; 0 when the projection meets the target;
    /// `None` when the latest value equals the target but the projection misses it, or when not available.
    pub miss: Option<f64>,
    /// Slope of the fitted line, value per year.
    pub slope: Option<f64>,
    /// Number of figures the line was fitted to (0 when none).
    pub points_used: usize,
}

impl Forecast {
    /// The `not_available` forecast.
    pub fn not_available() -> Self {
        Forecast {
            weather: Weather::NotAvailable,
            projected: None,
            expected_attainment: None,
            miss: None,
            slope: None,
            points_used: 0,
        }
    }
}

/// Weather for a relative miss of a line moving towards the target: < 5 % `sun`, 5 %–20 % (both included)
/// `partly_cloudy`, > 20 % `cloudy`; NaN or negative gives `not_available`.
pub fn grade_miss(miss: f64) -> Weather {
    if miss.is_nan() || miss < 0.0 {
        Weather::NotAvailable
    } else if miss < SUN_BELOW {
        Weather::Sun
    } else if miss <= PARTLY_CLOUDY_UP_TO {
        Weather::PartlyCloudy
    } else {
        Weather::Cloudy
    }
}

/// Forecast from `(time_in_years, value)` figures against `target` (whose `years_from_base` is on the same time
/// axis as the figures).
///
/// The line is fitted to the latest `window` figures (all of them if fewer; `window` ≥ [`MIN_WINDOW`], usually
/// [`DEFAULT_WINDOW`]). No forecast (`not_available`) when `window` < 3, fewer than 3 figures, fewer than 2
/// distinct times, any non-finite number, or a target time not after the latest figure. The latest value is
/// the figure at the latest time (the mean if several share it). Input order does not matter.
pub fn forecast(points: &[(f64, f64)], window: usize, target: &Target) -> Forecast {
    if window < MIN_WINDOW
        || points.len() < MIN_WINDOW
        || !target.value.is_finite()
        || !target.years_from_base.is_finite()
        || points.iter().any(|&(t, v)| !t.is_finite() || !v.is_finite())
    {
        return Forecast::not_available();
    }
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let used = &sorted[sorted.len().saturating_sub(window)..];
    let Some(line) = fit_line(used) else {
        return Forecast::not_available();
    };
    let Some(&(latest_time, _)) = used.last() else {
        return Forecast::not_available();
    };
    let at_latest: Vec<f64> = used.iter().filter(|p| p.0 == latest_time).map(|p| p.1).collect();
    let latest = at_latest.iter().sum::<f64>() / at_latest.len() as f64;

    let mut result = Forecast { slope: Some(line.slope), points_used: used.len(), ..Forecast::not_available() };
    let target_time = target.years_from_base;
    if target_time <= latest_time {
        return result;
    }
    let projected = line.value_at(target_time);
    if !projected.is_finite() {
        return result;
    }

    let comparator = target.comparator;
    let towards = line.slope * comparator.direction().sign() > 0.0;
    let expected_attainment = if comparator.holds(latest, target.value) {
        Some(latest_time)
    } else if towards {
        line.time_of(target.value).filter(|&t| t >= latest_time)
    } else {
        None
    };

    let gap = (target.value - latest).abs();
    let raw_miss =
        if gap > 0.0 { Some((target.value - projected).abs() / gap).filter(|m| m.is_finite()) } else { None };
    let (weather, miss) = if comparator.holds(projected, target.value) {
        (Weather::Sun, Some(0.0))
    } else if !towards {
        (Weather::Thunderstorm, raw_miss)
    } else {
        match raw_miss {
            Some(m) => (grade_miss(m), Some(m)),
            // The latest value sits exactly on the target but the projection misses it: the relative miss
            // is unbounded, so grade it as more than 20 %.
            None => (Weather::Cloudy, None),
        }
    };

    result.weather = weather;
    result.projected = Some(projected);
    result.expected_attainment = expected_attainment;
    result.miss = miss;
    result
}

/// Whether a projection misses its target by more than `tolerance` (in the indicator's unit, e.g. percentage
/// points): `target − projected > tolerance` for a rising target (`at_least`, `more_than`),
/// `projected − target > tolerance` for a falling one. Strict comparators are treated like their non-strict
/// counterparts (a projection exactly on the target misses by zero). A negative or NaN tolerance counts as
/// zero; a NaN projection or target gives `false` (there is nothing to warn about; the forecast itself is
/// `not_available`).
pub fn early_warning(projected: f64, target: f64, comparator: Comparator, tolerance: f64) -> bool {
    let tolerance = if tolerance > 0.0 { tolerance } else { 0.0 };
    let shortfall = match comparator.direction() {
        Direction::Increase => target - projected,
        Direction::Decrease => projected - target,
    };
    shortfall.partial_cmp(&tolerance) == Some(Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::super::measure::{progress, Category};
    use super::*;

    const EPS: f64 = 1e-9;

    fn close(actual: Option<f64>, expected: f64) {
        let a = actual.unwrap_or_else(|| panic!("expected Some({expected}), got None"));
        assert!((a - expected).abs() < EPS, "expected {expected}, got {a}");
    }

    fn at_least(value: f64, time: f64) -> Target {
        Target::new(value, time, Comparator::AtLeast)
    }

    #[test]
    fn exactly_linear_data_gives_the_exact_attainment_time() {
        // 10, 12, 14, 16 at t = 0..3: slope 2, line 10 + 2t, reaches 20 at t = 5; at t = 10 it is 30.
        let points = [(0.0, 10.0), (1.0, 12.0), (2.0, 14.0), (3.0, 16.0)];
        let f = forecast(&points, DEFAULT_WINDOW, &at_least(20.0, 10.0));
        close(f.expected_attainment, 5.0);
        close(f.slope, 2.0);
        close(f.projected, 30.0);
        assert_eq!(f.weather, Weather::Sun);
        close(f.miss, 0.0);
        assert_eq!(f.points_used, 4);
    }

    #[test]
    fn a_surge_followed_by_a_plateau_misses_the_target_despite_a_high_latest_value() {
        // Surge 10 → 60 → 76, then a plateau near 80; the window keeps the latest six (t = 2..7).
        let points =
            [(0.0, 10.0), (1.0, 60.0), (2.0, 76.0), (3.0, 78.0), (4.0, 79.0), (5.0, 80.0), (6.0, 80.0), (7.0, 80.0)];
        let target = at_least(95.0, 15.0);
        let f = forecast(&points, DEFAULT_WINDOW, &target);
        // Mean time 4.5, mean value 473/6; Σ(t − 4.5)·v = −2.5·76 − 1.5·78 − 0.5·79 + 0.5·80 + 1.5·80 + 2.5·80 = 13.5;
        // Σ(t − 4.5)² = 17.5; slope = 13.5/17.5 ≈ 0.7714; projected = 473/6 + 0.7714·(15 − 4.5) ≈ 86.933.
        let slope = 13.5 / 17.5;
        let projected = 473.0 / 6.0 + slope * 10.5;
        assert_eq!(f.points_used, 6);
        close(f.slope, slope);
        close(f.projected, projected);
        close(f.miss, (95.0 - projected) / (95.0 - 80.0)); // ≈ 0.538
        assert_eq!(f.weather, Weather::Cloudy);
        close(f.expected_attainment, 4.5 + (95.0 - 473.0 / 6.0) / slope); // ≈ 25.5, after the target time
        assert!(early_warning(projected, 95.0, Comparator::AtLeast, 2.0));
        assert!(early_warning(f.projected.unwrap_or(f64::NAN), 95.0, Comparator::AtLeast, 2.0));
        // The growth-rate measure from t = 0 (10) to t = 7 (80) calls the same series on track:
        // R = (8^(1/7) − 1) / (9.5^(1/15) − 1) ≈ 2.14.
        let p = progress(10.0, 80.0, 7.0, Some(&target), Direction::Increase);
        assert_eq!(p.category, Category::SubstantialProgress);
    }

    #[test]
    fn fewer_than_three_figures_give_no_forecast_while_two_suffice_for_the_progress_category() {
        let points = [(0.0, 50.0), (6.0, 60.0)];
        let target = at_least(80.0, 15.0);
        assert_eq!(forecast(&points, DEFAULT_WINDOW, &target), Forecast::not_available());
        assert_eq!(forecast(&[], DEFAULT_WINDOW, &target), Forecast::not_available());
        let p = progress(50.0, 60.0, 6.0, Some(&target), Direction::Increase);
        assert_eq!(p.category, Category::SubstantialProgress);
    }

    #[test]
    fn a_window_below_three_gives_no_forecast_and_a_large_window_uses_every_figure() {
        let points = [(0.0, 10.0), (1.0, 12.0), (2.0, 14.0), (3.0, 16.0)];
        let target = at_least(20.0, 10.0);
        assert_eq!(forecast(&points, 2, &target), Forecast::not_available());
        assert_eq!(forecast(&points, 100, &target).points_used, 4);
        // Window 3 keeps t = 1..3 (still exactly linear).
        let f = forecast(&points, 3, &target);
        assert_eq!(f.points_used, 3);
        close(f.expected_attainment, 5.0);
    }

    #[test]
    fn figures_all_at_one_time_give_no_forecast() {
        let points = [(2.0, 10.0), (2.0, 12.0), (2.0, 14.0)];
        assert_eq!(forecast(&points, DEFAULT_WINDOW, &at_least(20.0, 10.0)), Forecast::not_available());
    }

    #[test]
    fn a_non_finite_figure_or_target_gives_no_forecast() {
        let points = [(0.0, 10.0), (1.0, f64::NAN), (2.0, 14.0), (3.0, 16.0)];
        assert_eq!(forecast(&points, DEFAULT_WINDOW, &at_least(20.0, 10.0)), Forecast::not_available());
        let good = [(0.0, 10.0), (1.0, 12.0), (2.0, 14.0)];
        assert_eq!(forecast(&good, DEFAULT_WINDOW, &at_least(f64::INFINITY, 10.0)), Forecast::not_available());
    }

    #[test]
    fn a_target_time_not_after_the_latest_figure_gives_no_weather() {
        let points = [(0.0, 10.0), (1.0, 12.0), (2.0, 14.0), (3.0, 16.0)];
        let f = forecast(&points, DEFAULT_WINDOW, &at_least(20.0, 3.0));
        assert_eq!(f.weather, Weather::NotAvailable);
        assert_eq!(f.projected, None);
        close(f.slope, 2.0);
    }

    // Weather boundaries on the exact line v = t through (0, 0), (1, 1), (2, 2): latest 2, target 22, so the
    // current distance is 20 and the projection at time T is T.

    fn weather_at(target_time: f64) -> Forecast {
        forecast(&[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)], DEFAULT_WINDOW, &at_least(22.0, target_time))
    }

    #[test]
    fn a_miss_of_two_and_a_half_percent_is_sun() {
        let f = weather_at(21.5); // |22 − 21.5| / 20 = 0.025
        close(f.miss, 0.025);
        assert_eq!(f.weather, Weather::Sun);
    }

    #[test]
    fn a_miss_of_exactly_five_percent_is_partly_cloudy() {
        let f = weather_at(21.0); // 1 / 20 = 0.05
        assert_eq!(f.miss, Some(0.05));
        assert_eq!(f.weather, Weather::PartlyCloudy);
    }

    #[test]
    fn a_miss_of_exactly_twenty_percent_is_partly_cloudy() {
        let f = weather_at(18.0); // 4 / 20 = 0.2
        assert_eq!(f.miss, Some(0.2));
        assert_eq!(f.weather, Weather::PartlyCloudy);
    }

    #[test]
    fn a_miss_of_twenty_five_percent_is_cloudy() {
        let f = weather_at(17.0); // 5 / 20 = 0.25
        assert_eq!(f.miss, Some(0.25));
        assert_eq!(f.weather, Weather::Cloudy);
    }

    #[test]
    fn a_projection_meeting_the_target_is_sun_with_zero_miss() {
        let f = weather_at(30.0);
        assert_eq!(f.weather, Weather::Sun);
        assert_eq!(f.miss, Some(0.0));
        close(f.expected_attainment, 22.0);
    }

    #[test]
    fn miss_grades_switch_exactly_at_five_and_twenty_percent() {
        assert_eq!(grade_miss(0.0), Weather::Sun);
        assert_eq!(grade_miss(0.05f64.next_down()), Weather::Sun);
        assert_eq!(grade_miss(0.05), Weather::PartlyCloudy);
        assert_eq!(grade_miss(0.2), Weather::PartlyCloudy);
        assert_eq!(grade_miss(0.2f64.next_up()), Weather::Cloudy);
        assert_eq!(grade_miss(f64::NAN), Weather::NotAvailable);
        assert_eq!(grade_miss(-0.1), Weather::NotAvailable);
    }

    #[test]
    fn a_line_moving_away_from_the_target_is_a_thunderstorm_with_no_attainment() {
        // 20, 18, 16: slope −2; at t = 10 the line is 18 − 2·9 = 0; target 30, latest 16.
        let f = forecast(&[(0.0, 20.0), (1.0, 18.0), (2.0, 16.0)], DEFAULT_WINDOW, &at_least(30.0, 10.0));
        assert_eq!(f.weather, Weather::Thunderstorm);
        assert_eq!(f.expected_attainment, None);
        close(f.projected, 0.0);
        close(f.miss, 30.0 / 14.0);
    }

    #[test]
    fn a_flat_line_short_of_the_target_is_a_thunderstorm() {
        let f = forecast(&[(0.0, 70.0), (1.0, 70.0), (2.0, 70.0)], DEFAULT_WINDOW, &at_least(80.0, 10.0));
        assert_eq!(f.weather, Weather::Thunderstorm);
        assert_eq!(f.expected_attainment, None);
        close(f.miss, 1.0); // |80 − 70| / |80 − 70|
    }

    #[test]
    fn a_flat_line_already_meeting_the_target_is_sun_attained_at_the_latest_figure() {
        let f = forecast(&[(0.0, 90.0), (1.0, 90.0), (2.0, 90.0)], DEFAULT_WINDOW, &at_least(80.0, 10.0));
        assert_eq!(f.weather, Weather::Sun);
        close(f.expected_attainment, 2.0);
    }

    #[test]
    fn a_falling_target_is_reached_when_the_line_drops_to_it() {
        // 50, 45, 40: slope −5, mean (1, 45): reaches 20 at 1 + (20 − 45)/(−5) = 6; at t = 10 it is 0.
        let target = Target::new(20.0, 10.0, Comparator::AtMost);
        let f = forecast(&[(0.0, 50.0), (1.0, 45.0), (2.0, 40.0)], DEFAULT_WINDOW, &target);
        close(f.expected_attainment, 6.0);
        close(f.projected, 0.0);
        assert_eq!(f.weather, Weather::Sun);
    }

    #[test]
    fn a_latest_value_on_the_target_with_a_projection_short_of_it_is_cloudy_without_a_miss() {
        // 19, 10, 20: mean (1, 49/3), slope (−19 + 20)/2 = 0.5; at t = 4 the line is 49/3 + 1.5 ≈ 17.83 < 20.
        let f = forecast(&[(0.0, 19.0), (1.0, 10.0), (2.0, 20.0)], DEFAULT_WINDOW, &at_least(20.0, 4.0));
        close(f.projected, 49.0 / 3.0 + 1.5);
        assert_eq!(f.weather, Weather::Cloudy);
        assert_eq!(f.miss, None);
        close(f.expected_attainment, 2.0); // the latest value already meets the target
    }

    #[test]
    fn a_rising_line_that_crossed_the_target_before_the_latest_figure_has_no_attainment_time() {
        // 10, 30, 15: mean (1, 55/3), slope (−10 + 15)/2 = 2.5; crosses 16 at 1 + (16 − 55/3)/2.5 ≈ 0.07 < 2,
        // while the latest value 15 is still short of 16. The projection at t = 5 (≈ 28.3) meets it.
        let f = forecast(&[(0.0, 10.0), (1.0, 30.0), (2.0, 15.0)], DEFAULT_WINDOW, &at_least(16.0, 5.0));
        assert_eq!(f.expected_attainment, None);
        close(f.projected, 55.0 / 3.0 + 2.5 * 4.0);
        assert_eq!(f.weather, Weather::Sun);
    }

    #[test]
    fn several_figures_at_the_latest_time_are_averaged() {
        // (0, 0), (1, 1), (2, 1), (2, 3): latest value (1 + 3)/2 = 2 → distance to 22 is 20.
        // Mean (1.25, 1.25); Sxx = 1.5625 + 0.0625 + 0.5625 + 0.5625 = 2.75;
        // Sxy = (−1.25)(−1.25) + (−0.25)(−0.25) + 0.75·(−0.25) + 0.75·1.75 = 2.75; slope 1.
        let f = forecast(&[(0.0, 0.0), (1.0, 1.0), (2.0, 1.0), (2.0, 3.0)], DEFAULT_WINDOW, &at_least(22.0, 21.0));
        close(f.slope, 1.0);
        close(f.projected, 21.0);
        close(f.miss, 1.0 / 20.0);
    }

    #[test]
    fn the_order_of_the_figures_does_not_matter() {
        let target = at_least(95.0, 15.0);
        let ordered = [(2.0, 76.0), (3.0, 78.0), (4.0, 79.0), (5.0, 80.0), (6.0, 80.0), (7.0, 80.0)];
        let shuffled = [(6.0, 80.0), (2.0, 76.0), (7.0, 80.0), (4.0, 79.0), (3.0, 78.0), (5.0, 80.0)];
        assert_eq!(forecast(&ordered, DEFAULT_WINDOW, &target), forecast(&shuffled, DEFAULT_WINDOW, &target));
    }

    #[test]
    fn early_warning_fires_only_beyond_the_tolerance() {
        assert!(early_warning(86.0, 90.0, Comparator::AtLeast, 2.0)); // short by 4 > 2
        assert!(!early_warning(86.0, 90.0, Comparator::AtLeast, 4.0)); // short by exactly 4: no warning
        assert!(!early_warning(95.0, 90.0, Comparator::AtLeast, 0.0)); // overshoot
        assert!(early_warning(12.0, 10.0, Comparator::AtMost, 1.0)); // 2 above a falling target
        assert!(!early_warning(9.0, 10.0, Comparator::LessThan, 0.0));
        assert!(!early_warning(90.0, 90.0, Comparator::MoreThan, 0.0)); // strict: zero shortfall, no warning
        assert!(early_warning(89.0, 90.0, Comparator::AtLeast, -5.0)); // negative tolerance counts as 0
        assert!(!early_warning(f64::NAN, 90.0, Comparator::AtLeast, 0.0));
    }

    #[test]
    fn weather_wire_strings_are_exact() {
        let wire: Vec<&str> = Weather::ALL.iter().map(|w| w.as_str()).collect();
        assert_eq!(wire, ["sun", "partly_cloudy", "cloudy", "thunderstorm", "not_available"]);
        for w in Weather::ALL {
            assert_eq!(Weather::parse(&w.to_string()), Some(w));
        }
    }

    #[test]
    fn fit_line_needs_two_distinct_finite_times() {
        assert_eq!(fit_line(&[]), None);
        assert_eq!(fit_line(&[(1.0, 2.0)]), None);
        let line = fit_line(&[(0.0, 1.0), (2.0, 5.0)]);
        close(line.map(|l| l.slope), 2.0);
        close(line.map(|l| l.value_at(3.0)), 7.0);
        close(line.and_then(|l| l.time_of(9.0)), 4.0);
        assert_eq!(fit_line(&[(0.0, 1.0), (f64::INFINITY, 5.0)]), None);
    }
}
