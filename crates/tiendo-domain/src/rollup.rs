//! Roll-ups: how the figures of a unit's children add up to the unit's own, incrementally.
//!
//! A parent keeps running sums of what its children contribute. When one child's figure
//! changes, the parent's sums move by the difference between the child's new and old
//! contribution: no sibling is read again, so an observation touches only its own ancestors.

/// What a unit's figure is for one indicator and period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effective {
    /// Nothing known.
    None,
    /// Counts that can be summed into a parent.
    Counts { numerator: u64, denominator: u64 },
    /// A percentage alone: it cannot be summed, and its parent says it left it out.
    ValueOnly(f64),
}

impl Effective {
    /// The percentage, when there is one.
    pub fn value(self) -> Option<f64> {
        match self {
            Effective::None => None,
            Effective::Counts { numerator, denominator } => Some(100.0 * numerator as f64 / denominator as f64),
            Effective::ValueOnly(v) => Some(v),
        }
    }

    /// What this figure adds to its parent's sums.
    pub fn contribution(self) -> Sums {
        match self {
            Effective::None => Sums::default(),
            Effective::Counts { numerator, denominator } => {
                Sums { numerator: numerator as i64, denominator: denominator as i64, covered: 1, value_only: 0 }
            }
            Effective::ValueOnly(_) => Sums { value_only: 1, ..Sums::default() },
        }
    }
}

/// A parent's running sums over its children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub numerator: i64,
    pub denominator: i64,
    /// Children whose counts are in the sums.
    pub covered: i64,
    /// Children left out because they reported only a percentage.
    pub value_only: i64,
}

impl Sums {
    /// `self + (new − old)`: the sums after one child's contribution changed.
    pub fn moved(self, old: Sums, new: Sums) -> Sums {
        Sums {
            numerator: self.numerator + new.numerator - old.numerator,
            denominator: self.denominator + new.denominator - old.denominator,
            covered: self.covered + new.covered - old.covered,
            value_only: self.value_only + new.value_only - old.value_only,
        }
    }

    /// The roll-up's own figure: counts when at least one child contributed counts.
    pub fn effective(self) -> Effective {
        if self.covered > 0 && self.denominator > 0 {
            Effective::Counts { numerator: self.numerator as u64, denominator: self.denominator as u64 }
        } else {
            Effective::None
        }
    }
}

/// A unit's figure: its own direct observation when it has one, otherwise its children's roll-up.
pub fn effective(direct: Option<Effective>, rollup: Sums) -> Effective {
    direct.unwrap_or_else(|| rollup.effective())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64, d: u64) -> Effective {
        Effective::Counts { numerator: n, denominator: d }
    }

    #[test]
    fn a_revision_replaces_a_childs_contribution_instead_of_adding_to_it() {
        let s = Sums::default().moved(Sums::default(), counts(10, 100).contribution());
        let s = s.moved(Sums::default(), counts(30, 100).contribution());
        assert_eq!(s.effective().value(), Some(20.0));
        let s = s.moved(counts(10, 100).contribution(), counts(50, 100).contribution());
        assert_eq!(s.effective(), counts(80, 200));
        assert_eq!(s.covered, 2);
    }

    #[test]
    fn value_only_children_are_left_out_and_counted_as_such() {
        let s = Sums::default().moved(Sums::default(), Effective::ValueOnly(90.0).contribution());
        assert_eq!(s.effective(), Effective::None);
        let s = s.moved(Sums::default(), counts(1, 4).contribution());
        assert_eq!((s.effective().value(), s.covered, s.value_only), (Some(25.0), 1, 1));
        let back = s.moved(Effective::ValueOnly(90.0).contribution(), counts(3, 4).contribution());
        assert_eq!((back.effective(), back.covered, back.value_only), (counts(4, 8), 2, 0));
    }

    #[test]
    fn a_direct_figure_overrides_the_rollup() {
        let rollup = Sums::default().moved(Sums::default(), counts(1, 2).contribution());
        assert_eq!(effective(Some(Effective::ValueOnly(70.0)), rollup).value(), Some(70.0));
        assert_eq!(effective(None, rollup).value(), Some(50.0));
    }
}
