//! Percentages: every figure, baseline and target in tiendo is a share between 0 and 100.

use std::fmt;

/// A finite percentage within 0..=100. Ratios on the metrics side are this ÷ 100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(f64);

impl Percent {
    /// `v` when it is a finite number within 0..=100.
    pub fn new(v: f64) -> Option<Percent> {
        (v.is_finite() && (0.0..=100.0).contains(&v)).then_some(Percent(v))
    }

    /// `100 × numerator ÷ denominator`: counts with `numerator ≤ denominator` and
    /// `denominator > 0`, else `None`.
    pub fn of_counts(numerator: u64, denominator: u64) -> Option<Percent> {
        (denominator > 0 && numerator <= denominator).then(|| Percent(100.0 * numerator as f64 / denominator as f64))
    }

    /// The number, 0..=100.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The share as a ratio, 0..=1 (Prometheus convention).
    pub fn ratio(self) -> f64 {
        self.0 / 100.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finite_shares_between_0_and_100_are_percentages() {
        assert_eq!(Percent::new(72.5).map(Percent::get), Some(72.5));
        assert!(Percent::new(0.0).is_some() && Percent::new(100.0).is_some());
        for bad in [-0.1, 100.1, f64::NAN, f64::INFINITY] {
            assert!(Percent::new(bad).is_none(), "{bad}");
        }
        assert_eq!(Percent::of_counts(1, 4).map(Percent::get), Some(25.0));
        assert!(Percent::of_counts(5, 4).is_none() && Percent::of_counts(0, 0).is_none());
    }
}
