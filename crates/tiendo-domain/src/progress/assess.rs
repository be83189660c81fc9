//! A plan's (indicator, unit) assessed with the progress methods, from its figures: the
//! progress category and score from the base to the latest figure, the trend forecast over
//! the latest figures, and whether the forecast warns that the target will be missed.

use chrono::NaiveDate;

use super::measure::{progress, Category, Progress};
use super::time::{date_at, years, years_since};
use super::trend::{early_warning, forecast, Weather};
use super::Target;
use crate::percent::Percent;
use crate::period::{Frequency, Period};
use crate::plan::PlanIndicator;

/// What the progress methods say of one plan's (indicator, unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub progress: Category,
    /// −5..5; none when the category is `not_available`.
    pub score: Option<f64>,
    /// The trend line's value at the end of the plan's final period (percent; the line is not
    /// bounded to 0..100).
    pub projected: Option<f64>,
    /// When the line reaches the target; none when it is flat or moving away.
    pub expected_attainment: Option<NaiveDate>,
    /// The forecast graded: sun, partly cloudy, cloudy, thunderstorm; or not available.
    pub weather: Weather,
    /// The projection misses the target by more than the plan's tolerance, while the plan is
    /// still open: the early warning.
    pub warning: bool,
}

impl Outlook {
    /// Nothing to say (no figure).
    pub fn not_available() -> Outlook {
        Outlook {
            progress: Category::NotAvailable,
            score: None,
            projected: None,
            expected_attainment: None,
            weather: Weather::NotAvailable,
            warning: false,
        }
    }
}

/// Assesses a plan's (indicator, unit) of `frequency` from `figures` (oldest first, each within
/// the plan; the last is the latest) and `first`, the unit's first figure within the plan (the
/// progress measure's base when the plan gives no baseline). The trend is fitted to the latest
/// `window` figures. `closing`: the latest figure is the plan's final one (no early warning
/// then: the verdict speaks).
pub fn assess(
    entry: &PlanIndicator,
    frequency: Frequency,
    window: usize,
    first: Option<(Period, Percent)>,
    figures: &[(Period, Percent)],
    closing: bool,
) -> Outlook {
    let Some(&(latest_period, latest)) = figures.last() else { return Outlook::not_available() };
    let final_period = entry.final_period(frequency);
    let direction = entry.goal.map(|g| g.comparator.direction()).unwrap_or(entry.direction);

    // Progress: from the plan's baseline (days ÷ 365.25) or the unit's first figure (periods).
    let measured: Progress = match (entry.baseline, first) {
        (Some(b), _) => {
            let target =
                entry.goal.map(|g| Target::new(g.target.get(), years_since(b.date, final_period.end()), g.comparator));
            progress(b.value.get(), latest.get(), years_since(b.date, latest_period.end()), target.as_ref(), direction)
        }
        (None, Some((p0, v0))) => {
            let target = entry.goal.map(|g| Target::new(g.target.get(), years(p0, final_period), g.comparator));
            progress(v0.get(), latest.get(), years(p0, latest_period), target.as_ref(), direction)
        }
        (None, None) => Progress::not_available(),
    };

    // The trend over the latest figures, on the periods' own axis from the first of them.
    let mut outlook = Outlook { progress: measured.category, score: measured.score, ..Outlook::not_available() };
    let Some(goal) = entry.goal else { return outlook };
    let recent = &figures[figures.len().saturating_sub(window)..];
    let origin = recent[0].0;
    let points: Vec<(f64, f64)> = recent.iter().map(|(p, v)| (years(origin, *p), v.get())).collect();
    let target = Target::new(goal.target.get(), years(origin, final_period), goal.comparator);
    let f = forecast(&points, window, &target);
    outlook.weather = f.weather;
    outlook.projected = f.projected;
    outlook.expected_attainment = f.expected_attainment.and_then(|t| date_at(origin, t));
    outlook.warning =
        !closing && f.projected.is_some_and(|p| early_warning(p, goal.target.get(), goal.comparator, entry.tolerance));
    // The latest figure already meets the target: it was attained in its period.
    if goal.comparator.holds(latest.get(), goal.target.get()) {
        outlook.expected_attainment = Some(latest_period.end());
    }
    outlook
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IndicatorId;
    use crate::plan::{Comparator, Goal};
    use crate::progress::Direction;

    fn pct(v: f64) -> Percent {
        Percent::new(v).unwrap()
    }

    fn p(s: &str) -> Period {
        s.parse().unwrap()
    }

    fn entry(target: Option<(f64, Comparator)>, until: &str) -> PlanIndicator {
        let until: NaiveDate = until.parse().unwrap();
        PlanIndicator {
            indicator: IndicatorId::parse("x").unwrap(),
            baseline: None,
            goal: target.map(|(t, c)| Goal { target: pct(t), comparator: c, date: until }),
            tolerance: 1.0,
            until,
            direction: Direction::Increase,
        }
    }

    #[test]
    fn exactly_linear_yearly_figures_give_the_exact_attainment_date() {
        // 10, 12, 14, 16 in 2020..2023 against at least 20 by 2030: +2 a year reaches 20 in 2025.
        let e = entry(Some((20.0, Comparator::AtLeast)), "2030-12-31");
        let figures: Vec<_> = [("2020", 10.0), ("2021", 12.0), ("2022", 14.0), ("2023", 16.0)]
            .iter()
            .map(|(y, v)| (p(y), pct(*v)))
            .collect();
        let o = assess(&e, Frequency::Yearly, 6, Some(figures[0]), &figures, false);
        assert_eq!(o.expected_attainment, "2025-12-31".parse().ok());
        // The line at 2030: 10 + 2 × 10 = 30; it meets the target, so no warning and sun.
        assert!((o.projected.unwrap() - 30.0).abs() < 1e-9);
        assert_eq!((o.weather, o.warning), (Weather::Sun, false));
    }

    #[test]
    fn fewer_than_three_figures_give_a_category_but_no_forecast() {
        let e = entry(Some((80.0, Comparator::AtLeast)), "2030-12-31");
        let figures = [(p("2015"), pct(50.0)), (p("2021"), pct(60.0))];
        let o = assess(&e, Frequency::Yearly, 6, Some(figures[0]), &figures, false);
        assert_eq!(o.progress, Category::SubstantialProgress);
        assert_eq!((o.weather, o.projected, o.warning), (Weather::NotAvailable, None, false));
    }

    #[test]
    fn a_plateau_warns_and_the_final_period_does_not() {
        // Flat at 76 against at least 80: the line projects 76, 4 points short, past the tolerance of 1.
        let e = entry(Some((80.0, Comparator::AtLeast)), "2025-12-31");
        let figures: Vec<_> = ["2024-01", "2024-02", "2024-03"].iter().map(|m| (p(m), pct(76.0))).collect();
        let o = assess(&e, Frequency::Monthly, 6, Some(figures[0]), &figures, false);
        assert!((o.projected.unwrap() - 76.0).abs() < 1e-9);
        assert!(o.warning);
        assert_eq!(o.weather, Weather::Thunderstorm, "a flat line that misses");
        assert!(!assess(&e, Frequency::Monthly, 6, Some(figures[0]), &figures, true).warning);
    }

    #[test]
    fn a_monitored_indicator_gets_the_target_less_category_and_no_forecast() {
        // 50 → 60 in 6 years: (60/50)^(1/6) − 1 ≈ 3.09% a year, above 1.5%: substantial.
        let e = entry(None, "2030-12-31");
        let figures = [(p("2015"), pct(50.0)), (p("2021"), pct(60.0))];
        let o = assess(&e, Frequency::Yearly, 6, Some(figures[0]), &figures, false);
        assert_eq!(o.progress, Category::SubstantialProgress);
        assert_eq!(o.weather, Weather::NotAvailable);
    }
}
