//! The organisation tree, with dates. Every unit and every parent link is valid from a date
//! (inclusive) until another (exclusive), so the tree a figure rolls up through is the one of
//! its period's end date. Codes are reused across reforms, so a unit is found by (code, date).
//!
//! Loading checks that records of one code never overlap, that every link joins units that
//! exist for as long as the link does, and that on every date each unit reaches each of its
//! ancestors by one path only: a roll-up then touches each ancestor once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::ids::OrgUnitCode;

/// `[from, to)`: from a date (inclusive; none: always was) until another (exclusive; none:
/// still is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Validity {
    /// True on `date`.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= date) && self.to.is_none_or(|t| date < t)
    }

    /// True when `inner` lies within this one.
    fn covers(&self, inner: &Validity) -> bool {
        let from_ok = match (self.from, inner.from) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a <= b,
        };
        let to_ok = match (self.to, inner.to) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b <= a,
        };
        from_ok && to_ok
    }

    fn overlaps(&self, other: &Validity) -> bool {
        let starts_before_other_ends = match (self.from, other.to) {
            (Some(f), Some(t)) => f < t,
            _ => true,
        };
        let other_starts_before_end = match (other.from, self.to) {
            (Some(f), Some(t)) => f < t,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_end
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.from, self.to) {
            (None, None) => write!(f, "always"),
            (Some(a), None) => write!(f, "from {a}"),
            (None, Some(b)) => write!(f, "until {}", b.pred_opt().unwrap_or(b)),
            (Some(a), Some(b)) => write!(f, "from {a} until {}", b.pred_opt().unwrap_or(b)),
        }
    }
}

/// Where a unit sits in the administration. A wire contract (the reporting calendar names
/// levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Province,
    District,
    Commune,
    /// An area that is no administrative unit but that a plan is about (a province as it was
    /// before a reform): figures roll up into it, nobody is expected to report it.
    Territory,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::District => "district",
            Level::Commune => "commune",
            Level::Territory => "territory",
        }
    }
}

/// One unit, as it was over one span of time.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgUnit {
    pub code: OrgUnitCode,
    pub name: String,
    pub level: Level,
    /// What the administration calls it (city, town, ward, special zone, …).
    pub kind: String,
    pub valid: Validity,
}

/// A unit rolls up into `parent` while the link is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub child: OrgUnitCode,
    pub parent: OrgUnitCode,
    pub valid: Validity,
}

/// Why a tree was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TreeError(pub String);

/// The organisation tree over time.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    units: HashMap<OrgUnitCode, Vec<OrgUnit>>,
    up: HashMap<OrgUnitCode, Vec<Link>>,
    down: HashMap<OrgUnitCode, Vec<Link>>,
}

impl Tree {
    /// Builds and checks a tree from its units and links.
    pub fn new(units: Vec<OrgUnit>, links: Vec<Link>) -> Result<Tree, TreeError> {
        let mut tree = Tree::default();
        for u in units {
            if let (Some(f), Some(t)) = (u.valid.from, u.valid.to) {
                if f >= t {
                    return Err(TreeError(format!("org unit `{}` ends before it begins", u.code)));
                }
            }
            let records = tree.units.entry(u.code.clone()).or_default();
            if records.iter().any(|r| r.valid.overlaps(&u.valid)) {
                return Err(TreeError(format!("org unit `{}` is listed twice for the same dates", u.code)));
            }
            records.push(u);
        }
        for records in tree.units.values_mut() {
            records.sort_by_key(|r| r.valid.from);
        }
        for l in links {
            for (end, code) in [("child", &l.child), ("parent", &l.parent)] {
                let ok = tree.units.get(code).is_some_and(|rs| rs.iter().any(|r| r.valid.covers(&l.valid)));
                if !ok {
                    return Err(TreeError(format!(
                        "the link from `{}` to `{}` ({}) needs its {end} `{code}` for all that time",
                        l.child, l.parent, l.valid
                    )));
                }
            }
            tree.down.entry(l.parent.clone()).or_default().push(l.clone());
            tree.up.entry(l.child.clone()).or_default().push(l);
        }
        for links in tree.down.values_mut() {
            links.sort_by(|a, b| a.child.cmp(&b.child));
        }
        tree.check_paths()?;
        Ok(tree)
    }

    /// On each date the tree changes, each unit reaches each ancestor by one path only.
    fn check_paths(&self) -> Result<(), TreeError> {
        let mut dates: BTreeSet<NaiveDate> = BTreeSet::new();
        for v in self.units.values().flatten().map(|u| u.valid).chain(self.up.values().flatten().map(|l| l.valid)) {
            dates.extend(v.from);
            dates.extend(v.to);
        }
        let first = dates.first().and_then(|d| d.pred_opt()).unwrap_or(NaiveDate::MIN);
        for date in std::iter::once(first).chain(dates) {
            for code in self.units.keys() {
                if self.unit_at(code, date).is_none() {
                    continue;
                }
                let mut seen = HashSet::new();
                let mut frontier = vec![code];
                while let Some(c) = frontier.pop() {
                    for p in self.parents_at(c, date) {
                        if p == code || !seen.insert(p) {
                            return Err(TreeError(format!(
                                "on {date}, org unit `{code}` reaches `{p}` by more than one path (or a cycle)"
                            )));
                        }
                        frontier.push(p);
                    }
                }
            }
        }
        Ok(())
    }

    /// The unit with this code on `date`.
    pub fn unit_at(&self, code: &OrgUnitCode, date: NaiveDate) -> Option<&OrgUnit> {
        self.units.get(code)?.iter().find(|u| u.valid.contains(date))
    }

    /// Every record of this code, oldest first; empty for a code the tree never had.
    pub fn records(&self, code: &OrgUnitCode) -> &[OrgUnit] {
        self.units.get(code).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every unit record of the tree.
    pub fn all(&self) -> impl Iterator<Item = &OrgUnit> {
        self.units.values().flatten()
    }

    /// The units `code` rolls up into on `date`.
    pub fn parents_at<'a>(&'a self, code: &OrgUnitCode, date: NaiveDate) -> impl Iterator<Item = &'a OrgUnitCode> + 'a {
        self.up.get(code).into_iter().flatten().filter(move |l| l.valid.contains(date)).map(|l| &l.parent)
    }

    /// The units that roll up into `code` on `date`, by code.
    pub fn children_at(&self, code: &OrgUnitCode, date: NaiveDate) -> Vec<&OrgUnitCode> {
        self.down.get(code).into_iter().flatten().filter(|l| l.valid.contains(date)).map(|l| &l.child).collect()
    }

    /// Every unit `code` rolls up into on `date`, directly or not, each once: parents first.
    pub fn ancestors_at(&self, code: &OrgUnitCode, date: NaiveDate) -> Vec<OrgUnitCode> {
        let mut out: Vec<OrgUnitCode> = self.parents_at(code, date).cloned().collect();
        let mut i = 0;
        while i < out.len() {
            let next: Vec<OrgUnitCode> = self.parents_at(&out[i], date).filter(|p| !out.contains(p)).cloned().collect();
            out.extend(next);
            i += 1;
        }
        out
    }

    /// True when `code` is `root` or rolls up into it on `date`.
    pub fn is_within(&self, code: &OrgUnitCode, root: &OrgUnitCode, date: NaiveDate) -> bool {
        code == root || self.ancestors_at(code, date).contains(root)
    }

    /// Every unit under `root` on `date` (not `root` itself), by code.
    pub fn descendants_at(&self, root: &OrgUnitCode, date: NaiveDate) -> Vec<OrgUnitCode> {
        let mut out: Vec<OrgUnitCode> = Vec::new();
        let mut frontier = vec![root.clone()];
        while let Some(c) = frontier.pop() {
            for child in self.children_at(&c, date) {
                out.push(child.clone());
                frontier.push(child.clone());
            }
        }
        out
    }

    /// Every link from `code` up to a parent, at any date.
    pub fn links_up(&self, code: &OrgUnitCode) -> &[Link] {
        self.up.get(code).map_or(&[], Vec::as_slice)
    }

    /// Every link from a child down to `code`, at any date.
    pub fn links_down(&self, code: &OrgUnitCode) -> &[Link] {
        self.down.get(code).map_or(&[], Vec::as_slice)
    }

    /// The units that took over from a retired unit: those active on the day it ended whose
    /// code is its own or one of its descendants' on its last day (a district's successors are
    /// the new units that kept one of its communes' codes). Empty for a unit still active.
    pub fn successors(&self, retired: &OrgUnit) -> Vec<&OrgUnit> {
        let Some(end) = retired.valid.to else { return vec![] };
        let last_day = end.pred_opt().unwrap_or(end);
        let mut codes = vec![retired.code.clone()];
        codes.extend(self.descendants_at(&retired.code, last_day));
        let mut out: Vec<&OrgUnit> = codes.iter().filter_map(|c| self.unit_at(c, end)).collect();
        out.sort_by(|a, b| a.code.cmp(&b.code));
        out.dedup_by(|a, b| a.code == b.code);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn code(s: &str) -> OrgUnitCode {
        OrgUnitCode::parse(s).unwrap()
    }

    fn unit(c: &str, level: Level, from: Option<&str>, to: Option<&str>) -> OrgUnit {
        OrgUnit {
            code: code(c),
            name: c.to_uppercase(),
            level,
            kind: String::new(),
            valid: Validity { from: from.map(d), to: to.map(d) },
        }
    }

    fn link(child: &str, parent: &str, from: Option<&str>, to: Option<&str>) -> Link {
        Link { child: code(child), parent: code(parent), valid: Validity { from: from.map(d), to: to.map(d) } }
    }

    /// Before 2025-07-01: p1 → d1 → c1, c2. From then: p2 → c2 (kept) and n1; c2 and n1 also roll into p1.
    fn reform() -> Tree {
        let r = Some("2025-07-01");
        Tree::new(
            vec![
                unit("p1", Level::Province, None, r),
                unit("p1", Level::Territory, r, None),
                unit("d1", Level::District, None, r),
                unit("c1", Level::Commune, None, r),
                unit("c2", Level::Commune, None, r),
                unit("p2", Level::Province, r, None),
                unit("c2", Level::Commune, r, None),
                unit("n1", Level::Commune, r, None),
            ],
            vec![
                link("d1", "p1", None, r),
                link("c1", "d1", None, r),
                link("c2", "d1", None, r),
                link("c2", "p2", r, None),
                link("n1", "p2", r, None),
                link("c2", "p1", r, None),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_unit_is_found_by_code_and_date() {
        let t = reform();
        assert_eq!(t.unit_at(&code("d1"), d("2025-06-30")).map(|u| u.level), Some(Level::District));
        assert!(t.unit_at(&code("d1"), d("2025-07-01")).is_none());
        assert_eq!(t.unit_at(&code("p1"), d("2025-07-01")).map(|u| u.level), Some(Level::Territory));
        assert!(t.unit_at(&code("p2"), d("2025-06-30")).is_none());
        assert_eq!(t.records(&code("c2")).len(), 2);
        assert!(t.records(&code("zz")).is_empty());
    }

    #[test]
    fn ancestors_follow_the_links_of_the_date_into_every_parent() {
        let t = reform();
        assert_eq!(t.ancestors_at(&code("c2"), d("2025-06-30")), vec![code("d1"), code("p1")]);
        let mut after = t.ancestors_at(&code("c2"), d("2025-07-31"));
        after.sort();
        assert_eq!(after, vec![code("p1"), code("p2")]);
        assert_eq!(t.ancestors_at(&code("n1"), d("2025-07-31")), vec![code("p2")]);
        assert_eq!(t.children_at(&code("p1"), d("2025-07-31")), vec![&code("c2")]);
        assert!(t.is_within(&code("c1"), &code("p1"), d("2024-01-31")));
        assert!(!t.is_within(&code("n1"), &code("p1"), d("2025-07-31")));
    }

    #[test]
    fn a_retired_unit_names_the_units_that_kept_its_codes() {
        let t = reform();
        let d1 = &t.records(&code("d1"))[0];
        let names: Vec<&str> = t.successors(d1).iter().map(|u| u.code.as_str()).collect();
        assert_eq!(names, ["c2"]);
        assert!(t.successors(&t.records(&code("p2"))[0]).is_empty(), "still active");
    }

    #[test]
    fn overlapping_records_links_outliving_their_units_and_two_paths_are_refused() {
        let overlap = Tree::new(
            vec![unit("a", Level::Province, None, None), unit("a", Level::Province, Some("2020-01-01"), None)],
            vec![],
        );
        assert!(overlap.unwrap_err().0.contains("twice"));
        let outlives = Tree::new(
            vec![unit("a", Level::Province, None, None), unit("b", Level::District, None, Some("2020-01-01"))],
            vec![link("b", "a", None, None)],
        );
        assert!(outlives.unwrap_err().0.contains("child `b`"));
        let two_paths = Tree::new(
            vec![
                unit("a", Level::Province, None, None),
                unit("b", Level::District, None, None),
                unit("c", Level::Commune, None, None),
            ],
            vec![link("b", "a", None, None), link("c", "b", None, None), link("c", "a", None, None)],
        );
        assert!(two_paths.unwrap_err().0.contains("more than one path"));
        let cycle = Tree::new(
            vec![unit("a", Level::Province, None, None), unit("b", Level::District, None, None)],
            vec![link("b", "a", None, None), link("a", "b", None, None)],
        );
        assert!(cycle.is_err());
    }
}
