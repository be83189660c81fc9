//! Open SDG's progress measure (Statistics Canada's method), reimplemented.
//!
//! Source read: `sdg/ProgressMeasure.py` in open-sdg/sdg-build and `docs/progress-methodology.md` in
//! open-sdg/open-sdg. Departures and decisions are listed in `methods.md`.

use std::fmt;

use super::{Direction, Target};

/// Ratio threshold for `substantial_progress` (R ≥ 0.95).
pub const SUBSTANTIAL_RATIO: f64 = 0.95;
/// Ratio threshold for `moderate_progress` (0.60 ≤ R < 0.95); below it down to 0 is `limited_progress`.
pub const MODERATE_RATIO: f64 = 0.60;
/// Target-less threshold for `substantial_progress`: directed CAGR ≥ 1.5 % a year (times the limit factor C).
pub const SUBSTANTIAL_GROWTH: f64 = 0.015;
/// Target-less threshold for `moderate_progress`: directed CAGR ≥ 0.5 % a year (times C).
pub const MODERATE_GROWTH: f64 = 0.005;
/// Open SDG replaces a base value or a target value of zero by this (signed like the base in tiendo).
pub const ZERO_SUBSTITUTE: f64 = 0.001;
/// Exponent `a` of Open SDG's limit scaling factor C.
pub const LIMIT_EXPONENT: f64 = 4.44;
/// Score given to a series whose target is achieved.
pub const TARGET_ACHIEVED_SCORE: f64 = 5.0;

/// Progress category. Wire strings are those of Open SDG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// `target_achieved`: the current value meets the target.
    TargetAchieved,
    /// `substantial_progress` ("on track").
    SubstantialProgress,
    /// `moderate_progress` ("progress made but acceleration needed").
    ModerateProgress,
    /// `limited_progress`.
    LimitedProgress,
    /// `deterioration`: moving the wrong way.
    Deterioration,
    /// `not_available`: cannot be assessed.
    NotAvailable,
}

impl Category {
    /// All categories, best first.
    pub const ALL: [Category; 6] = [
        Category::TargetAchieved,
        Category::SubstantialProgress,
        Category::ModerateProgress,
        Category::LimitedProgress,
        Category::Deterioration,
        Category::NotAvailable,
    ];

    /// The category a stored or received word names.
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The wire string, e.g. `substantial_progress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::TargetAchieved => "target_achieved",
            Category::SubstantialProgress => "substantial_progress",
            Category::ModerateProgress => "moderate_progress",
            Category::LimitedProgress => "limited_progress",
            Category::Deterioration => "deterioration",
            Category::NotAvailable => "not_available",
        }
    }

    /// The category of a score, as Open SDG assigns an aggregate (mean) score: [2.5, 5] substantial,
    /// [0, 2.5) moderate, [−2.5, 0) limited, [−5, −2.5) deterioration. A score outside [−5, 5] or NaN gives
    /// `not_available`. `target_achieved` is never returned: Open SDG reports it for an aggregate only when
    /// every series achieved its target, which a score alone cannot tell.
    pub fn from_score(score: f64) -> Category {
        if (2.5..=5.0).contains(&score) {
            Category::SubstantialProgress
        } else if (0.0..2.5).contains(&score) {
            Category::ModerateProgress
        } else if (-2.5..0.0).contains(&score) {
            Category::LimitedProgress
        } else if (-5.0..-2.5).contains(&score) {
            Category::Deterioration
        } else {
            Category::NotAvailable
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of the progress measure for one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The category.
    pub category: Category,
    /// Score in −5..5 (5 when the target is achieved); `None` when not available.
    pub score: Option<f64>,
    /// With a target: R = s·d·CAGR_observed / |CAGR_required|. `None` without a target, when undefined
    /// (e.g. required growth of zero) or not finite.
    pub ratio: Option<f64>,
    /// Without a target: the value compared with the thresholds, s·d·CAGR_observed.
    pub directed_growth: Option<f64>,
    /// CAGR from the base figure to the current figure (after zero substitution), not yet signed.
    pub observed_cagr: Option<f64>,
    /// With a target: CAGR from the base figure to the target value at the target time.
    pub required_cagr: Option<f64>,
}

impl Progress {
    /// The `not_available` result with every number `None`.
    pub fn not_available() -> Self {
        Progress {
            category: Category::NotAvailable,
            score: None,
            ratio: None,
            directed_growth: None,
            observed_cagr: None,
            required_cagr: None,
        }
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Compound annual growth rate `(to / from)^(1 / years) − 1`.
///
/// `None` when `years` is not positive, when `from` and `to` have opposite signs or `from` is zero (an
/// exponential model cannot pass through zero or change sign), or when the result is not finite.
pub fn cagr(from: f64, to: f64, years: f64) -> Option<f64> {
    if years.is_nan() || years <= 0.0 || from == 0.0 {
        return None;
    }
    let growth_factor = to / from;
    if growth_factor.is_nan() || growth_factor < 0.0 {
        return None;
    }
    finite(growth_factor.powf(1.0 / years) - 1.0)
}

/// Category of a growth ratio R: ≥ 0.95 substantial, [0.60, 0.95) moderate, [0, 0.60) limited, < 0
/// deterioration; NaN gives `not_available`.
pub fn ratio_category(ratio: f64) -> Category {
    if ratio >= SUBSTANTIAL_RATIO {
        Category::SubstantialProgress
    } else if ratio >= MODERATE_RATIO {
        Category::ModerateProgress
    } else if ratio >= 0.0 {
        Category::LimitedProgress
    } else if ratio < 0.0 {
        Category::Deterioration
    } else {
        Category::NotAvailable
    }
}

/// Score of a growth ratio R, Open SDG's piecewise-linear map with exact coefficients:
/// `(50/7)·(R − 0.6)` capped at 5 for R ≥ 0.6 (0 at 0.6, 2.5 at 0.95, 5 at 1.3), and `(25/6)·R − 2.5`
/// floored at −5 below (−2.5 at 0, −5 at −0.6). `None` for NaN.
pub fn ratio_score(ratio: f64) -> Option<f64> {
    if ratio.is_nan() {
        None
    } else if ratio >= MODERATE_RATIO {
        Some((50.0 / 7.0 * (ratio - MODERATE_RATIO)).min(5.0))
    } else {
        Some((25.0 / 6.0 * ratio - 2.5).max(-5.0))
    }
}

/// Category of a directed growth rate g = s·d·CAGR for an indicator without a target, with thresholds
/// 1.5 %·C, 0.5 %·C and 0 (C = limit factor, 1 without a limit). `not_available` for NaN or
/// a factor outside [0, 1].
pub fn growth_category(directed_growth: f64, factor: f64) -> Category {
    if !(0.0..=1.0).contains(&factor) {
        return Category::NotAvailable;
    }
    let g = directed_growth;
    if g >= SUBSTANTIAL_GROWTH * factor {
        Category::SubstantialProgress
    } else if g >= MODERATE_GROWTH * factor {
        Category::ModerateProgress
    } else if g >= 0.0 {
        Category::LimitedProgress
    } else if g < 0.0 {
        Category::Deterioration
    } else {
        Category::NotAvailable
    }
}

/// Score of a directed growth rate without a target (Open SDG's map): −5 at −2 % or below, −2.5 at 0,
/// 0 at 0.5 %·C, 2.5 at 1.5 %·C, 5 at 2 %·C or above, linear in between; 5 for g ≥ 0 when C = 0.
/// `None` for NaN or a factor outside [0, 1].
pub fn growth_score(directed_growth: f64, factor: f64) -> Option<f64> {
    let g = directed_growth;
    if g.is_nan() || !(0.0..=1.0).contains(&factor) {
        return None;
    }
    let score = if g < 0.0 {
        (125.0 * g - 2.5).max(-5.0)
    } else if factor == 0.0 {
        5.0
    } else if g >= SUBSTANTIAL_GROWTH * factor {
        (500.0 * g / factor - 5.0).min(5.0)
    } else if g >= MODERATE_GROWTH * factor {
        250.0 * g / factor - 1.25
    } else {
        500.0 * g / factor - 2.5
    };
    finite(score)
}

/// Open SDG's limit scaling factor C in [0, 1] for a target-less indicator with a natural limit
/// (a ceiling when the good direction is up, a floor when it is down), from the base value:
/// with b = |base| and l = |limit|: C = 1 if b ≥ 2l; 1 − (b/l)^4.44 if b ≤ l; 1 − ((2l − b)/l)^4.44 otherwise.
/// `None` for non-finite input.
pub fn limit_coefficient(base: f64, limit: f64) -> Option<f64> {
    if !base.is_finite() || !limit.is_finite() {
        return None;
    }
    let b = base.abs();
    let l = limit.abs();
    let c = if b >= 2.0 * l {
        1.0
    } else if b <= l {
        1.0 - (b / l).powf(LIMIT_EXPONENT)
    } else {
        1.0 - ((2.0 * l - b) / l).powf(LIMIT_EXPONENT)
    };
    finite(c)
}

/// Open SDG's `sign`: −1 when the (original) base value is negative, else +1.
fn base_sign(base: f64) -> f64 {
    if base < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// Whether two values lie strictly on opposite sides of zero (Open SDG's mixed-sign check).
fn mixed_sign(a: f64, b: f64) -> bool {
    (a > 0.0 && b < 0.0) || (a < 0.0 && b > 0.0)
}

/// The progress measure of one series from its base figure and its current figure.
///
/// * `base`, `current`: the indicator's values at the base time and at the latest time.
/// * `years_from_base`: time from the base figure to the current figure, in years (must be > 0: two
///   distinct figures).
/// * `target`: the quantitative target, its time counted in years from the base figure; `None` for a
///   target-less indicator.
/// * `direction`: which way is good. With a target it must agree with the target's comparator, otherwise
///   the result is `not_available`.
///
/// With a target, `target_achieved` (score 5) whenever the current value meets it, even if growth rates
/// cannot be computed. Otherwise R = s·d·CAGR_observed / |CAGR_required| is graded 0.95 / 0.60 / 0.
/// Without a target, g = s·d·CAGR_observed is graded 1.5 % / 0.5 % / 0.
pub fn progress(
    base: f64,
    current: f64,
    years_from_base: f64,
    target: Option<&Target>,
    direction: Direction,
) -> Progress {
    match target {
        Some(target) => with_target(base, current, years_from_base, target, direction),
        None => without_target(base, current, years_from_base, direction, 1.0),
    }
}

/// The target-less progress measure of a series with a natural `limit` (a ceiling for
/// [`Direction::Increase`], a floor for [`Direction::Decrease`]): the growth thresholds above zero are scaled
/// by [`limit_coefficient`]`(base, limit)`. Open SDG ignores limits when a target is set, so this takes none.
pub fn progress_with_limit(
    base: f64,
    current: f64,
    years_from_base: f64,
    limit: f64,
    direction: Direction,
) -> Progress {
    match limit_coefficient(base, limit) {
        Some(factor) => without_target(base, current, years_from_base, direction, factor),
        None => Progress::not_available(),
    }
}

fn without_target(base: f64, current: f64, years: f64, direction: Direction, factor: f64) -> Progress {
    if !base.is_finite() || !current.is_finite() || !years.is_finite() || years <= 0.0 {
        return Progress::not_available();
    }
    let sign = base_sign(base);
    let base = if base == 0.0 { ZERO_SUBSTITUTE } else { base };
    if mixed_sign(base, current) {
        return Progress::not_available();
    }
    let Some(observed) = cagr(base, current, years) else {
        return Progress::not_available();
    };
    let directed = sign * direction.sign() * observed;
    match (growth_category(directed, factor), growth_score(directed, factor)) {
        (Category::NotAvailable, _) | (_, None) => Progress::not_available(),
        (category, score) => Progress {
            category,
            score,
            ratio: None,
            directed_growth: Some(directed),
            observed_cagr: Some(observed),
            required_cagr: None,
        },
    }
}

fn with_target(base: f64, current: f64, years: f64, target: &Target, direction: Direction) -> Progress {
    let inputs = [base, current, years, target.value, target.years_from_base];
    if inputs.iter().any(|x| !x.is_finite()) || years <= 0.0 || target.comparator.direction() != direction {
        return Progress::not_available();
    }
    // Achievement is judged against the target as given (before any zero substitution).
    let achieved = target.is_met_by(current);
    let sign = base_sign(base);
    let d = direction.sign();
    let base_used = if base == 0.0 { ZERO_SUBSTITUTE } else { base };
    let target_used = if target.value == 0.0 { ZERO_SUBSTITUTE * base_sign(base_used) } else { target.value };

    let observed = if mixed_sign(base_used, current) { None } else { cagr(base_used, current, years) };
    let required = cagr(base_used, target_used, target.years_from_base);
    let directed = observed.map(|o| sign * d * o);
    let ratio = match (directed, required) {
        (Some(g), Some(r)) if r != 0.0 => finite(g / r.abs()),
        _ => None,
    };

    if achieved {
        return Progress {
            category: Category::TargetAchieved,
            score: Some(TARGET_ACHIEVED_SCORE),
            ratio,
            directed_growth: None,
            observed_cagr: observed,
            required_cagr: required,
        };
    }

    let (category, score) = match (directed, required, ratio) {
        (_, _, Some(r)) => (ratio_category(r), ratio_score(r)),
        // Required growth of zero (target equal to the base) or a ratio too large to represent: take the
        // limit of R, whose sign is that of the directed observed growth.
        (Some(g), Some(_), None) => match limit_of_ratio(g) {
            Some(graded) => graded,
            None => return Progress::not_available(),
        },
        _ => return Progress::not_available(),
    };
    Progress { category, score, ratio, directed_growth: None, observed_cagr: observed, required_cagr: required }
}

/// Category and score in the limit |R| → ∞, whose sign is that of the directed observed growth `g`
/// (R = 0 when `g` is zero).
fn limit_of_ratio(g: f64) -> Option<(Category, Option<f64>)> {
    if g > 0.0 {
        Some((Category::SubstantialProgress, Some(5.0)))
    } else if g < 0.0 {
        Some((Category::Deterioration, Some(-5.0)))
    } else if g == 0.0 {
        Some((Category::LimitedProgress, ratio_score(0.0)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Comparator;

    const EPS: f64 = 1e-9;

    fn close(actual: Option<f64>, expected: f64) {
        let a = actual.unwrap_or_else(|| panic!("expected Some({expected}), got None"));
        assert!((a - expected).abs() < EPS, "expected {expected}, got {a}");
    }

    // The two worked cases below come from the tiendo brief; no worked example with expected outputs was
    // found in open-sdg/open-sdg docs/progress-methodology.md or in open-sdg/sdg-build tests/.

    #[test]
    fn a_rising_series_50_to_60_against_80_by_2030_is_substantial_progress() {
        // 2015 → 2021: 6 years; 2015 → 2030: 15 years.
        let observed = (60f64 / 50.0).powf(1.0 / 6.0) - 1.0; // ≈ 0.030853
        let required = (80f64 / 50.0).powf(1.0 / 15.0) - 1.0; // ≈ 0.031830
        let ratio = observed / required; // s = +1, d = +1: ≈ 0.96933 ≥ 0.95
        assert!((ratio - 0.96933).abs() < 1e-5);
        let target = Target::new(80.0, 15.0, Comparator::AtLeast);
        let p = progress(50.0, 60.0, 6.0, Some(&target), Direction::Increase);
        close(p.observed_cagr, observed);
        close(p.required_cagr, required);
        close(p.ratio, ratio);
        assert_eq!(p.category, Category::SubstantialProgress);
        close(p.score, 50.0 / 7.0 * (ratio - 0.6)); // ≈ 2.638
    }

    #[test]
    fn a_falling_series_100_to_80_against_50_by_2030_is_substantial_progress() {
        // 2015 → 2020: 5 years; 2015 → 2030: 15 years.
        let observed = (80f64 / 100.0).powf(1.0 / 5.0) - 1.0; // ≈ −0.043648
        let required = (50f64 / 100.0).powf(1.0 / 15.0) - 1.0; // ≈ −0.045158
        let (s, d) = (1.0, -1.0);
        let ratio = s * d * observed / required.abs(); // ≈ 0.96654
        assert!((ratio - 0.96654).abs() < 1e-5);
        let target = Target::new(50.0, 15.0, Comparator::AtMost);
        let p = progress(100.0, 80.0, 5.0, Some(&target), Direction::Decrease);
        close(p.observed_cagr, observed);
        close(p.required_cagr, required);
        close(p.ratio, ratio);
        assert_eq!(p.category, Category::SubstantialProgress);
        close(p.score, 50.0 / 7.0 * (ratio - 0.6)); // ≈ 2.618
    }

    #[test]
    fn sdg_build_fixture_1_1_1_with_default_options_is_deterioration() {
        // open-sdg/sdg-build tests/assets/progress-calculation/data/indicator_1-1-1.csv (headline rows:
        // 2020 → 100, 2021 → 120) with indicator-config/1-1-1.yml (auto_progress_calculation only). Defaults:
        // base year 2015 is absent so 2020 is used, direction "negative", no target. The fixture states no
        // expected output; this is Open SDG's rule applied by hand.
        let g = -(120.0 / 100.0 - 1.0); // s = +1, d = −1, one year: −0.2
        let p = progress(100.0, 120.0, 1.0, None, Direction::Decrease);
        close(p.directed_growth, g);
        assert_eq!(p.category, Category::Deterioration);
        close(p.score, -5.0); // max(125·(−0.2) − 2.5, −5) = max(−27.5, −5)
    }

    #[test]
    fn sdg_build_fixture_3_3_3_with_a_zero_target_is_deterioration() {
        // open-sdg/sdg-build tests/assets/progress-calculation/data/indicator_3-3-3.csv (headline 2015 → 1.55,
        // 2019 → 1.82) with indicator-config/3-3-3.yml (direction negative, target 0 → replaced by 0.001,
        // target year defaults to 2030). No expected output is stated in the fixture; computed by hand.
        let observed = (1.82f64 / 1.55).powf(1.0 / 4.0) - 1.0; // ≈ 0.040962
        let required = (0.001f64 / 1.55).powf(1.0 / 15.0) - 1.0; // ≈ −0.387211
        let ratio = -observed / required.abs(); // ≈ −0.105788
        let target = Target::new(0.0, 15.0, Comparator::AtMost);
        let p = progress(1.55, 1.82, 4.0, Some(&target), Direction::Decrease);
        close(p.ratio, ratio);
        assert_eq!(p.category, Category::Deterioration);
        close(p.score, 25.0 / 6.0 * ratio - 2.5); // ≈ −2.9408 (Open SDG's 4.1667·R − 2.5 gives −2.94079)
    }

    #[test]
    fn a_target_less_rise_of_three_percent_over_two_years_is_moderate_progress() {
        let g = (103f64 / 100.0).powf(1.0 / 2.0) - 1.0; // ≈ 0.014889, just under 1.5 %
        let p = progress(100.0, 103.0, 2.0, None, Direction::Increase);
        close(p.observed_cagr, g);
        close(p.directed_growth, g);
        assert_eq!(p.category, Category::ModerateProgress);
        close(p.score, 250.0 * g - 1.25); // ≈ 2.4723
        assert_eq!(p.ratio, None);
    }

    #[test]
    fn a_target_less_fall_is_progress_when_lower_is_better() {
        let observed = (180f64 / 200.0).powf(1.0 / 4.0) - 1.0; // ≈ −0.025996
        let p = progress(200.0, 180.0, 4.0, None, Direction::Decrease);
        close(p.directed_growth, -observed);
        assert_eq!(p.category, Category::SubstantialProgress);
        close(p.score, 5.0); // 500·0.025996 − 5 ≈ 8.0, capped at 5
    }

    #[test]
    fn a_target_less_flat_series_is_limited_progress_with_score_minus_two_and_a_half() {
        let p = progress(42.0, 42.0, 3.0, None, Direction::Increase);
        close(p.directed_growth, 0.0);
        assert_eq!(p.category, Category::LimitedProgress);
        close(p.score, -2.5);
    }

    #[test]
    fn target_less_growth_boundaries_fall_in_the_upper_category() {
        assert_eq!(growth_category(0.015, 1.0), Category::SubstantialProgress);
        assert_eq!(growth_category(0.015f64.next_down(), 1.0), Category::ModerateProgress);
        assert_eq!(growth_category(0.005, 1.0), Category::ModerateProgress);
        assert_eq!(growth_category(0.005f64.next_down(), 1.0), Category::LimitedProgress);
        assert_eq!(growth_category(0.0, 1.0), Category::LimitedProgress);
        assert_eq!(growth_category(-f64::MIN_POSITIVE, 1.0), Category::Deterioration);
        assert_eq!(growth_category(f64::NAN, 1.0), Category::NotAvailable);
        close(growth_score(0.015, 1.0), 2.5);
        close(growth_score(0.005, 1.0), 0.0);
        close(growth_score(0.0, 1.0), -2.5);
        close(growth_score(0.02, 1.0), 5.0);
        close(growth_score(-0.02, 1.0), -5.0);
        close(growth_score(-0.01, 1.0), -3.75); // 125·(−0.01) − 2.5
        close(growth_score(0.01, 1.0), 1.25); // 250·0.01 − 1.25
        close(growth_score(0.0025, 1.0), -1.25); // 500·0.0025 − 2.5
    }

    #[test]
    fn ratio_boundaries_095_060_and_0_fall_in_the_upper_category() {
        assert_eq!(ratio_category(0.95), Category::SubstantialProgress);
        assert_eq!(ratio_category(0.95f64.next_down()), Category::ModerateProgress);
        assert_eq!(ratio_category(0.60), Category::ModerateProgress);
        assert_eq!(ratio_category(0.60f64.next_down()), Category::LimitedProgress);
        assert_eq!(ratio_category(0.0), Category::LimitedProgress);
        assert_eq!(ratio_category(-0.0), Category::LimitedProgress);
        assert_eq!(ratio_category(-f64::MIN_POSITIVE), Category::Deterioration);
        assert_eq!(ratio_category(f64::NAN), Category::NotAvailable);
    }

    #[test]
    fn ratio_scores_match_the_category_edges_and_are_clamped() {
        close(ratio_score(0.95), 2.5);
        close(ratio_score(0.60), 0.0);
        close(ratio_score(0.0), -2.5);
        close(ratio_score(1.3), 5.0);
        close(ratio_score(2.0), 5.0);
        close(ratio_score(-0.6), -5.0);
        close(ratio_score(-3.0), -5.0);
        close(ratio_score(0.3), 25.0 / 6.0 * 0.3 - 2.5); // −1.25
        assert_eq!(ratio_score(f64::NAN), None);
        // Monotone across the break at 0.6.
        assert!(ratio_score(0.6f64.next_down()) <= ratio_score(0.6));
    }

    #[test]
    fn a_series_that_has_not_moved_has_a_ratio_of_exactly_zero_and_limited_progress() {
        let target = Target::new(80.0, 15.0, Comparator::AtLeast);
        let p = progress(50.0, 50.0, 6.0, Some(&target), Direction::Increase);
        close(p.ratio, 0.0);
        assert_eq!(p.category, Category::LimitedProgress);
        close(p.score, -2.5);
    }

    #[test]
    fn a_series_moving_away_from_its_target_is_deterioration() {
        let observed = (45f64 / 50.0).powf(1.0 / 5.0) - 1.0;
        let required = (80f64 / 50.0).powf(1.0 / 15.0) - 1.0;
        let target = Target::new(80.0, 15.0, Comparator::AtLeast);
        let p = progress(50.0, 45.0, 5.0, Some(&target), Direction::Increase);
        close(p.ratio, observed / required);
        assert_eq!(p.category, Category::Deterioration);
    }

    #[test]
    fn a_current_value_equal_to_an_at_least_target_is_target_achieved_with_score_five() {
        let target = Target::new(60.0, 15.0, Comparator::AtLeast);
        let p = progress(50.0, 60.0, 6.0, Some(&target), Direction::Increase);
        assert_eq!(p.category, Category::TargetAchieved);
        close(p.score, 5.0);
        close(p.ratio, ((60f64 / 50.0).powf(1.0 / 6.0) - 1.0) / ((60f64 / 50.0).powf(1.0 / 15.0) - 1.0));
    }

    #[test]
    fn a_current_value_equal_to_a_more_than_target_is_not_achieved() {
        let target = Target::new(60.0, 15.0, Comparator::MoreThan);
        let p = progress(50.0, 60.0, 6.0, Some(&target), Direction::Increase);
        let ratio = ((60f64 / 50.0).powf(1.0 / 6.0) - 1.0) / ((60f64 / 50.0).powf(1.0 / 15.0) - 1.0); // ≈ 2.523
        close(p.ratio, ratio);
        assert_eq!(p.category, Category::SubstantialProgress);
        close(p.score, 5.0);
    }

    #[test]
    fn at_most_and_less_than_targets_respect_strictness() {
        let at_most = Target::new(20.0, 10.0, Comparator::AtMost);
        let less_than = Target::new(20.0, 10.0, Comparator::LessThan);
        assert_eq!(progress(30.0, 20.0, 4.0, Some(&at_most), Direction::Decrease).category, Category::TargetAchieved);
        let strict = progress(30.0, 20.0, 4.0, Some(&less_than), Direction::Decrease);
        assert_ne!(strict.category, Category::TargetAchieved);
        // R = −CAGR_o / |CAGR_r| with CAGR_o = (20/30)^(1/4) − 1 and CAGR_r = (20/30)^(1/10) − 1.
        let ratio = -((20f64 / 30.0).powf(0.25) - 1.0) / ((20f64 / 30.0).powf(0.1) - 1.0).abs();
        close(strict.ratio, ratio);
    }

    #[test]
    fn a_comparator_that_contradicts_the_direction_is_not_available() {
        let target = Target::new(80.0, 15.0, Comparator::AtMost);
        assert_eq!(progress(50.0, 60.0, 6.0, Some(&target), Direction::Increase), Progress::not_available());
    }

    #[test]
    fn a_target_equal_to_the_base_that_is_no_longer_met_is_deterioration_with_score_minus_five() {
        let target = Target::new(50.0, 15.0, Comparator::AtLeast);
        let p = progress(50.0, 45.0, 3.0, Some(&target), Direction::Increase);
        assert_eq!(p.category, Category::Deterioration);
        close(p.score, -5.0);
        close(p.required_cagr, 0.0);
        assert_eq!(p.ratio, None);
    }

    #[test]
    fn a_strict_target_equal_to_an_unchanged_base_is_limited_progress() {
        let target = Target::new(50.0, 15.0, Comparator::MoreThan);
        let p = progress(50.0, 50.0, 3.0, Some(&target), Direction::Increase);
        assert_eq!(p.category, Category::LimitedProgress);
        close(p.score, -2.5);
        assert_eq!(p.ratio, None);
    }

    #[test]
    fn a_zero_base_is_replaced_by_one_thousandth() {
        let g = (2f64 / 0.001).powf(1.0 / 2.0) - 1.0; // √2000 − 1 ≈ 43.72
        let p = progress(0.0, 2.0, 2.0, None, Direction::Increase);
        close(p.observed_cagr, g);
        assert_eq!(p.category, Category::SubstantialProgress);
        close(p.score, 5.0);
    }

    #[test]
    fn a_zero_current_value_is_a_fall_of_one_hundred_percent_a_year() {
        let p = progress(8.0, 0.0, 2.0, None, Direction::Decrease);
        close(p.observed_cagr, -1.0);
        close(p.directed_growth, 1.0);
        assert_eq!(p.category, Category::SubstantialProgress);
    }

    #[test]
    fn a_zero_target_under_a_negative_base_is_replaced_by_minus_one_thousandth() {
        // Base −10 rising to −5 (good direction up), target 0 → −0.001 (tiendo signs the substitute like the
        // base). s = −1, d = +1.
        let observed = (-5f64 / -10.0).powf(1.0 / 5.0) - 1.0; // ≈ −0.129449
        let required = (-0.001f64 / -10.0).powf(1.0 / 15.0) - 1.0; // ≈ −0.458830
        let (s, d) = (-1.0, 1.0);
        let ratio = s * d * observed / required.abs(); // ≈ 0.282129
        let target = Target::new(0.0, 15.0, Comparator::AtLeast);
        let p = progress(-10.0, -5.0, 5.0, Some(&target), Direction::Increase);
        close(p.ratio, ratio);
        assert_eq!(p.category, Category::LimitedProgress);
    }

    #[test]
    fn a_negative_series_getting_more_negative_is_progress_when_lower_is_better() {
        let observed = (20f64 / 10.0).powf(1.0 / 4.0) - 1.0; // ≈ 0.189207
        let p = progress(-10.0, -20.0, 4.0, None, Direction::Decrease);
        let (s, d) = (-1.0, -1.0);
        close(p.directed_growth, s * d * observed);
        assert_eq!(p.category, Category::SubstantialProgress);
    }

    #[test]
    fn values_of_mixed_sign_are_not_available_unless_the_target_is_met() {
        assert_eq!(progress(-5.0, 5.0, 3.0, None, Direction::Increase), Progress::not_available());
        let target = Target::new(3.0, 15.0, Comparator::AtLeast);
        let p = progress(-5.0, 5.0, 3.0, Some(&target), Direction::Increase);
        assert_eq!(p.category, Category::TargetAchieved);
        close(p.score, 5.0);
        assert_eq!(p.ratio, None);
        let unmet = Target::new(9.0, 15.0, Comparator::AtLeast);
        assert_eq!(progress(-5.0, 5.0, 3.0, Some(&unmet), Direction::Increase), Progress::not_available());
    }

    #[test]
    fn a_target_on_the_other_side_of_zero_from_the_base_is_not_available_unless_met() {
        let target = Target::new(-2.0, 15.0, Comparator::AtMost);
        assert_eq!(progress(5.0, 4.0, 3.0, Some(&target), Direction::Decrease), Progress::not_available());
        assert_eq!(progress(5.0, -3.0, 3.0, Some(&target), Direction::Decrease).category, Category::TargetAchieved);
    }

    #[test]
    fn a_single_figure_or_zero_elapsed_time_is_not_available_even_when_the_target_is_met() {
        let target = Target::new(60.0, 15.0, Comparator::AtLeast);
        assert_eq!(progress(70.0, 70.0, 0.0, Some(&target), Direction::Increase), Progress::not_available());
        assert_eq!(progress(70.0, 70.0, 0.0, None, Direction::Increase), Progress::not_available());
        assert_eq!(progress(50.0, 60.0, -1.0, None, Direction::Increase), Progress::not_available());
    }

    #[test]
    fn two_figures_half_a_year_apart_are_annualised() {
        let g = (101f64 / 100.0).powf(1.0 / 0.5) - 1.0; // 1.01² − 1 = 0.0201
        let p = progress(100.0, 101.0, 0.5, None, Direction::Increase);
        close(p.observed_cagr, g);
        assert_eq!(p.category, Category::SubstantialProgress);
    }

    #[test]
    fn a_target_time_not_after_the_base_is_not_available_unless_met() {
        let target = Target::new(80.0, 0.0, Comparator::AtLeast);
        assert_eq!(progress(50.0, 60.0, 6.0, Some(&target), Direction::Increase), Progress::not_available());
        let met = Target::new(55.0, 0.0, Comparator::AtLeast);
        assert_eq!(progress(50.0, 60.0, 6.0, Some(&met), Direction::Increase).category, Category::TargetAchieved);
    }

    #[test]
    fn non_finite_inputs_are_not_available() {
        let target = Target::new(80.0, 15.0, Comparator::AtLeast);
        let nan_target = Target::new(f64::NAN, 15.0, Comparator::AtLeast);
        assert_eq!(progress(f64::NAN, 60.0, 6.0, Some(&target), Direction::Increase), Progress::not_available());
        assert_eq!(progress(50.0, f64::INFINITY, 6.0, None, Direction::Increase), Progress::not_available());
        assert_eq!(progress(50.0, 60.0, f64::NAN, None, Direction::Increase), Progress::not_available());
        assert_eq!(progress(50.0, 60.0, 6.0, Some(&nan_target), Direction::Increase), Progress::not_available());
        assert_eq!(progress(1e-300, 1e300, 1.0, None, Direction::Increase), Progress::not_available());
    }

    #[test]
    fn a_limit_near_the_base_lowers_the_growth_thresholds() {
        // Base 90 with a ceiling of 100: C = 1 − (90/100)^4.44 ≈ 0.373622.
        let c = 1.0 - (90f64 / 100.0).powf(4.44);
        close(limit_coefficient(90.0, 100.0), c);
        let g = (91.2f64 / 90.0).powf(1.0 / 2.0) - 1.0; // ≈ 0.0066446: moderate without a limit
        assert_eq!(progress(90.0, 91.2, 2.0, None, Direction::Increase).category, Category::ModerateProgress);
        let p = progress_with_limit(90.0, 91.2, 2.0, 100.0, Direction::Increase);
        assert_eq!(p.category, Category::SubstantialProgress); // g ≥ 0.015·C ≈ 0.0056043
        close(p.score, 500.0 * g / c - 5.0); // ≈ 3.892
    }

    #[test]
    fn the_limit_coefficient_follows_its_three_cases() {
        close(limit_coefficient(250.0, 100.0), 1.0); // b ≥ 2l
        close(limit_coefficient(0.0, 0.0), 1.0); // b ≥ 2l when both are zero
        close(limit_coefficient(0.0, 100.0), 1.0); // 1 − 0^4.44
        close(limit_coefficient(100.0, 100.0), 0.0); // 1 − 1^4.44
        close(limit_coefficient(120.0, 100.0), 1.0 - (80f64 / 100.0).powf(4.44)); // floor side
        close(limit_coefficient(-90.0, -100.0), 1.0 - 0.9f64.powf(4.44)); // absolute values
        assert_eq!(limit_coefficient(f64::NAN, 100.0), None);
    }

    #[test]
    fn a_base_at_its_limit_that_holds_is_substantial_and_one_that_slips_is_scored_as_usual() {
        let held = progress_with_limit(100.0, 100.0, 3.0, 100.0, Direction::Increase);
        assert_eq!(held.category, Category::SubstantialProgress);
        close(held.score, 5.0);
        let slipped = progress_with_limit(100.0, 99.0, 1.0, 100.0, Direction::Increase);
        assert_eq!(slipped.category, Category::Deterioration);
        close(slipped.score, 125.0 * (99.0 / 100.0 - 1.0) - 2.5); // −3.75
    }

    #[test]
    fn aggregate_scores_map_to_categories_like_open_sdg() {
        assert_eq!(Category::from_score(5.0), Category::SubstantialProgress);
        assert_eq!(Category::from_score(2.5), Category::SubstantialProgress);
        assert_eq!(Category::from_score(2.5f64.next_down()), Category::ModerateProgress);
        assert_eq!(Category::from_score(0.0), Category::ModerateProgress);
        assert_eq!(Category::from_score(-f64::MIN_POSITIVE), Category::LimitedProgress);
        assert_eq!(Category::from_score(-2.5), Category::LimitedProgress);
        assert_eq!(Category::from_score((-2.5f64).next_down()), Category::Deterioration);
        assert_eq!(Category::from_score(-5.0), Category::Deterioration);
        assert_eq!(Category::from_score(5.5), Category::NotAvailable);
        assert_eq!(Category::from_score(f64::NAN), Category::NotAvailable);
    }

    #[test]
    fn category_wire_strings_are_open_sdg_s() {
        let wire: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            wire,
            [
                "target_achieved",
                "substantial_progress",
                "moderate_progress",
                "limited_progress",
                "deterioration",
                "not_available"
            ]
        );
        for c in Category::ALL {
            assert_eq!(Category::parse(&c.to_string()), Some(c));
        }
        assert!(Category::parse("on_track").is_none());
    }

    #[test]
    fn cagr_refuses_zero_bases_sign_changes_and_empty_spans() {
        close(cagr(100.0, 121.0, 2.0), 0.1);
        assert_eq!(cagr(0.0, 1.0, 2.0), None);
        assert_eq!(cagr(1.0, -1.0, 2.0), None);
        assert_eq!(cagr(1.0, 2.0, 0.0), None);
        close(cagr(-4.0, -1.0, 2.0), -0.5);
    }
}
