//! The indicator catalog and the organisation tree, read from a reviewable TOML file
//! (`deploy/catalog/an_giang.toml` is built in as the default).
//!
//! Loading checks the whole file once (every owner is a department, every parent exists, the
//! tree has no cycle, targets are percentages), so the rest of the system never re-checks it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::ids::{DepartmentCode, IndicatorId, OrgUnitCode};
use crate::percent::Percent;
use crate::period::Frequency;

/// The catalog shipped with tiendo: An Giang's 2025 digital-transformation targets.
pub const BUILT_IN: &str = include_str!("../../../deploy/catalog/an_giang.toml");

/// How a figure is compared with its target. `more_than` is strict ("trên 50%").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    AtLeast,
    MoreThan,
    AtMost,
    LessThan,
}

impl Comparator {
    /// True when the target is met by `value`.
    pub fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Comparator::AtLeast => value >= target,
            Comparator::MoreThan => value > target,
            Comparator::AtMost => value <= target,
            Comparator::LessThan => value < target,
        }
    }

    /// True when higher figures are better.
    pub fn rising(self) -> bool {
        matches!(self, Comparator::AtLeast | Comparator::MoreThan)
    }
}

/// A figure the province has committed to.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub id: IndicatorId,
    pub pillar: String,
    pub name: String,
    pub owners: Vec<DepartmentCode>,
    /// Where the path starts; `None` takes the first province-level figure instead.
    pub baseline: Option<Baseline>,
    pub target: Percent,
    pub comparator: Comparator,
    pub target_date: NaiveDate,
    pub reported: Frequency,
    /// Percentage points below the trajectory still counted as `at_risk`, not `behind`.
    pub tolerance: f64,
}

impl Indicator {
    pub fn is_owned_by(&self, department: &DepartmentCode) -> bool {
        self.owners.contains(department)
    }
}

/// A figure and the date it describes: the start of an indicator's trajectory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub value: Percent,
    pub date: NaiveDate,
}

/// A provincial department or agency that owns figures.
#[derive(Debug, Clone)]
pub struct Department {
    pub code: DepartmentCode,
    pub name_vi: String,
    pub name_en: String,
}

/// A node of the organisation tree.
#[derive(Debug, Clone)]
pub struct OrgUnit {
    pub code: OrgUnitCode,
    pub name: String,
    pub level: String,
    pub parent: Option<OrgUnitCode>,
    pub children: Vec<OrgUnitCode>,
}

/// The whole catalog, checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    indicators: BTreeMap<IndicatorId, Indicator>,
    departments: BTreeMap<DepartmentCode, Department>,
    units: HashMap<OrgUnitCode, OrgUnit>,
    roots: Vec<OrgUnitCode>,
}

/// Why a catalog file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("catalog: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default, rename = "department")]
    departments: Vec<RawDepartment>,
    #[serde(default, rename = "org_unit")]
    units: Vec<RawOrgUnit>,
    #[serde(default, rename = "indicator")]
    indicators: Vec<RawIndicator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    code: String,
    name_vi: String,
    name_en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrgUnit {
    code: String,
    name: String,
    level: String,
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    id: String,
    pillar: String,
    name: String,
    owners: Vec<String>,
    baseline: Option<f64>,
    baseline_date: Option<NaiveDate>,
    target: f64,
    comparator: Comparator,
    target_date: NaiveDate,
    reported: Frequency,
    tolerance: Option<f64>,
}

/// Tolerance when an indicator sets none, in percentage points.
pub const DEFAULT_TOLERANCE: f64 = 1.0;

fn invalid(msg: String) -> CatalogError {
    CatalogError::Invalid(msg)
}

impl Catalog {
    /// The built-in catalog.
    pub fn built_in() -> Self {
        Self::from_toml(BUILT_IN).expect("the built-in catalog is checked by a unit test")
    }

    /// Parses and checks a catalog file's text.
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let raw: RawCatalog = toml::from_str(text)?;
        let mut departments = BTreeMap::new();
        for d in raw.departments {
            let code = DepartmentCode::parse(&d.code).map_err(|e| invalid(e.to_string()))?;
            let dept = Department { code: code.clone(), name_vi: d.name_vi, name_en: d.name_en };
            if departments.insert(code, dept).is_some() {
                return Err(invalid(format!("department `{}` is listed twice", d.code)));
            }
        }

        let mut units: HashMap<OrgUnitCode, OrgUnit> = HashMap::new();
        for u in raw.units {
            let code = OrgUnitCode::parse(&u.code).map_err(|e| invalid(e.to_string()))?;
            let parent = u.parent.as_deref().map(OrgUnitCode::parse).transpose().map_err(|e| invalid(e.to_string()))?;
            let unit = OrgUnit { code: code.clone(), name: u.name, level: u.level, parent, children: vec![] };
            if units.insert(code, unit).is_some() {
                return Err(invalid(format!("org_unit `{}` is listed twice", u.code)));
            }
        }
        let links: Vec<(OrgUnitCode, OrgUnitCode)> =
            units.values().filter_map(|u| u.parent.clone().map(|p| (u.code.clone(), p))).collect();
        for (child, parent) in links {
            let p = units
                .get_mut(&parent)
                .ok_or_else(|| invalid(format!("org_unit `{child}` has unknown parent `{parent}`")))?;
            p.children.push(child);
        }
        for u in units.values_mut() {
            u.children.sort();
        }
        let mut roots: Vec<OrgUnitCode> =
            units.values().filter(|u| u.parent.is_none()).map(|u| u.code.clone()).collect();
        roots.sort();

        let mut indicators = BTreeMap::new();
        for i in raw.indicators {
            let id = IndicatorId::parse(&i.id).map_err(|e| invalid(e.to_string()))?;
            let mut owners = vec![];
            for o in &i.owners {
                let code = DepartmentCode::parse(o).map_err(|e| invalid(e.to_string()))?;
                if !departments.contains_key(&code) {
                    return Err(invalid(format!("indicator `{id}` is owned by unknown department `{o}`")));
                }
                owners.push(code);
            }
            if owners.is_empty() {
                return Err(invalid(format!("indicator `{id}` has no owner")));
            }
            let not_percent = || invalid(format!("indicator `{id}`: baseline and target must be percentages"));
            let target = Percent::new(i.target).ok_or_else(not_percent)?;
            let baseline_value = i.baseline.map(|b| Percent::new(b).ok_or_else(not_percent)).transpose()?;
            let baseline = match (baseline_value, i.baseline_date) {
                (Some(value), Some(date)) => Some(Baseline { value, date }),
                (None, None) => None,
                _ => return Err(invalid(format!("indicator `{id}`: set baseline and baseline_date together"))),
            };
            let tolerance = i.tolerance.unwrap_or(DEFAULT_TOLERANCE);
            if !(tolerance.is_finite() && tolerance >= 0.0) {
                return Err(invalid(format!("indicator `{id}`: tolerance must be a non-negative number")));
            }
            let indicator = Indicator {
                id: id.clone(),
                pillar: i.pillar,
                name: i.name,
                owners,
                baseline,
                target,
                comparator: i.comparator,
                target_date: i.target_date,
                reported: i.reported,
                tolerance,
            };
            if indicators.insert(id, indicator).is_some() {
                return Err(invalid(format!("indicator `{}` is listed twice", i.id)));
            }
        }

        let catalog = Catalog { indicators, departments, units, roots };
        catalog.check_acyclic()?;
        Ok(catalog)
    }

    fn check_acyclic(&self) -> Result<(), CatalogError> {
        for start in self.units.keys() {
            let mut steps = 0;
            let mut cur = self.units[start].parent.as_ref();
            while let Some(p) = cur {
                steps += 1;
                if steps > self.units.len() {
                    return Err(invalid(format!("org_unit `{start}` is its own ancestor")));
                }
                cur = self.units[p].parent.as_ref();
            }
        }
        Ok(())
    }

    /// The indicator with this id.
    pub fn indicator(&self, id: &IndicatorId) -> Option<&Indicator> {
        self.indicators.get(id)
    }

    /// The indicator a sender named, if the text is a valid id in the catalog.
    pub fn find_indicator(&self, id: &str) -> Option<&Indicator> {
        IndicatorId::parse(id).ok().and_then(|id| self.indicators.get(&id))
    }

    pub fn indicators(&self) -> impl Iterator<Item = &Indicator> {
        self.indicators.values()
    }

    /// The department with this code.
    pub fn department(&self, code: &DepartmentCode) -> Option<&Department> {
        self.departments.get(code)
    }

    /// The department a subject named, if the text is a valid code in the catalog.
    pub fn find_department(&self, code: &str) -> Option<&Department> {
        DepartmentCode::parse(code).ok().and_then(|c| self.departments.get(&c))
    }

    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    /// The unit with this code.
    pub fn unit(&self, code: &OrgUnitCode) -> Option<&OrgUnit> {
        self.units.get(code)
    }

    /// The unit a sender named, if the text is a valid code in the tree.
    pub fn find_unit(&self, code: &str) -> Option<&OrgUnit> {
        OrgUnitCode::parse(code).ok().and_then(|c| self.units.get(&c))
    }

    /// Units without a parent (the provinces).
    pub fn roots(&self) -> &[OrgUnitCode] {
        &self.roots
    }

    pub fn units(&self) -> impl Iterator<Item = &OrgUnit> {
        self.units.values()
    }

    /// `code`'s parent, grandparent, … up to its root; empty for a root or an unknown code.
    pub fn ancestors(&self, code: &OrgUnitCode) -> Vec<OrgUnitCode> {
        let mut out = vec![];
        let mut cur = self.units.get(code).and_then(|u| u.parent.as_ref());
        while let Some(p) = cur {
            out.push(p.clone());
            cur = self.units.get(p).and_then(|u| u.parent.as_ref());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_has_every_seed_figure() {
        let c = Catalog::built_in();
        assert_eq!(c.indicators().count(), 17);
        assert_eq!(c.departments().count(), 9);
        assert_eq!(c.roots().len(), 1);
        assert_eq!(c.find_unit("89").unwrap().children.len(), 11);
        let s = c.find_indicator("smartphone_adults").unwrap();
        assert_eq!(s.baseline.map(|b| b.value.get()), Some(66.2));
        assert_eq!(s.baseline.map(|b| b.date), NaiveDate::from_ymd_opt(2023, 2, 13));
        assert_eq!((s.target.get(), s.comparator), (80.0, Comparator::AtLeast));
        let sme = c.find_indicator("sme_digital_platforms").unwrap();
        assert_eq!(sme.baseline.map(|b| b.value.get()), Some(30.0));
        assert_eq!((sme.target.get(), sme.comparator), (50.0, Comparator::MoreThan));
        assert!(c.find_indicator("telehealth_adults").unwrap().baseline.is_none());
        assert_eq!(sme.reported, Frequency::Monthly);
        let he = c.find_indicator("digital_governance_higher_ed").unwrap();
        assert_eq!(he.owners.len(), 2);
        assert!(c.indicators().all(|i| i.target_date == NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()));
    }

    #[test]
    fn ancestors_walk_up_to_the_province() {
        let c = Catalog::built_in();
        let code = OrgUnitCode::parse("883").unwrap();
        assert_eq!(c.ancestors(&code), vec![OrgUnitCode::parse("89").unwrap()]);
        assert!(c.ancestors(&OrgUnitCode::parse("89").unwrap()).is_empty());
    }

    #[test]
    fn a_catalog_with_an_unknown_owner_or_parent_or_a_cycle_is_refused() {
        let base = r#"
            [[department]]
            code = "dic"
            name_vi = "x"
            name_en = "x"
        "#;
        let owner = format!(
            "{base}\n[[indicator]]\nid=\"a\"\npillar=\"p\"\nname=\"n\"\nowners=[\"zzz\"]\ntarget=1\ncomparator=\"at_least\"\ntarget_date=\"2025-01-01\"\nreported=\"yearly\"\n"
        );
        assert!(Catalog::from_toml(&owner).unwrap_err().to_string().contains("zzz"));
        let parent = format!("{base}\n[[org_unit]]\ncode=\"1\"\nname=\"a\"\nlevel=\"x\"\nparent=\"2\"\n");
        assert!(Catalog::from_toml(&parent).is_err());
        let cycle = format!(
            "{base}\n[[org_unit]]\ncode=\"1\"\nname=\"a\"\nlevel=\"x\"\nparent=\"2\"\n[[org_unit]]\ncode=\"2\"\nname=\"b\"\nlevel=\"x\"\nparent=\"1\"\n"
        );
        assert!(Catalog::from_toml(&cycle).unwrap_err().to_string().contains("ancestor"));
        assert!(Catalog::from_toml("[[departmnet]]").is_err());
    }
}
