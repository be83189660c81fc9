//! The catalog: departments, indicators, the organisation tree over time and the plans, read
//! from a reviewable TOML file (`deploy/catalog/an_giang.toml` is built in as the default).
//!
//! Loading checks the whole file once (every owner is a department, every link joins units
//! that exist for as long as it does, every plan's scope and indicators exist, targets are
//! percentages), so the rest of the system never re-checks it.
//!
//! The file's sections: `[[department]]`, `[[indicator]]`, `[[plan]]` with its
//! `[[plan.indicator]]` entries, and `[tree]` with `units` and `links` (README, "Catalog").

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::ids::{DepartmentCode, IndicatorId, OrgUnitCode, PlanId};
use crate::percent::Percent;
use crate::period::Frequency;
use crate::plan::{Baseline, Comparator, Goal, Plan, PlanIndicator, DEFAULT_TOLERANCE};
use crate::reporting::{Calendar, Clock, RawLevel, DEFAULT_DUE_DAYS};
use crate::tree::{Level, Link, OrgUnit, Tree, Validity};

/// The catalog shipped with tiendo: An Giang's departments, indicators, organisation tree
/// before and after the 2025 reform, and the 2025 plan.
pub const BUILT_IN: &str = include_str!("../../../deploy/catalog/an_giang.toml");

/// A figure a department reports.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub id: IndicatorId,
    pub pillar: String,
    /// In English.
    pub name: String,
    /// In Vietnamese (the English name when the catalog gives none).
    pub name_vi: String,
    pub owners: Vec<DepartmentCode>,
    pub reported: Frequency,
    /// Who reports it directly, and when it is due.
    pub calendar: Calendar,
    /// How many of a unit's latest figures the trend forecast is fitted to (at least 3).
    pub trend_window: usize,
}

impl Indicator {
    pub fn is_owned_by(&self, department: &DepartmentCode) -> bool {
        self.owners.contains(department)
    }
}

/// A provincial department or agency that owns figures.
#[derive(Debug, Clone)]
pub struct Department {
    pub code: DepartmentCode,
    pub name_vi: String,
    pub name_en: String,
}

/// The whole catalog, checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    indicators: BTreeMap<IndicatorId, Indicator>,
    departments: BTreeMap<DepartmentCode, Department>,
    tree: Tree,
    plans: BTreeMap<PlanId, Plan>,
    clock: Clock,
}

/// The province's time zone when the catalog names none.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";

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
    #[serde(default, rename = "indicator")]
    indicators: Vec<RawIndicator>,
    #[serde(default, rename = "plan")]
    plans: Vec<RawPlan>,
    #[serde(default)]
    tree: RawTree,
    #[serde(default)]
    calendar: RawCalendar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    /// IANA name; "today" and due dates are the province's.
    time_zone: Option<String>,
    /// Default days after a period's end by which its reports are due.
    due_days: Option<u32>,
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
struct RawIndicator {
    id: String,
    pillar: String,
    name: String,
    name_vi: Option<String>,
    owners: Vec<String>,
    reported: Frequency,
    /// The levels whose units report it directly, by date; none: the province.
    #[serde(default)]
    reported_by: Vec<RawLevel>,
    due_days: Option<u32>,
    trend_window: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTree {
    #[serde(default)]
    units: Vec<RawUnit>,
    #[serde(default)]
    links: Vec<RawLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    code: String,
    name: String,
    level: Level,
    #[serde(default)]
    kind: String,
    /// Rolls up into this unit for as long as the unit itself is valid.
    parent: Option<String>,
    valid_from: Option<NaiveDate>,
    valid_to: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    child: String,
    parent: String,
    valid_from: Option<NaiveDate>,
    valid_to: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    id: String,
    name: String,
    name_vi: Option<String>,
    scope: String,
    target_date: NaiveDate,
    #[serde(default, rename = "indicator")]
    indicators: Vec<RawPlanIndicator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlanIndicator {
    id: String,
    baseline: Option<f64>,
    baseline_date: Option<NaiveDate>,
    target: Option<f64>,
    comparator: Option<Comparator>,
    target_date: Option<NaiveDate>,
    tolerance: Option<f64>,
    /// For an indicator without a target: which way is good (increase | decrease).
    direction: Option<crate::progress::Direction>,
}

fn invalid(msg: String) -> CatalogError {
    CatalogError::Invalid(msg)
}

fn parsed<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, CatalogError> {
    r.map_err(|e| invalid(e.to_string()))
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
            let code = parsed(DepartmentCode::parse(&d.code))?;
            let dept = Department { code: code.clone(), name_vi: d.name_vi, name_en: d.name_en };
            if departments.insert(code, dept).is_some() {
                return Err(invalid(format!("department `{}` is listed twice", d.code)));
            }
        }

        let zone = raw.calendar.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE);
        let clock = Clock {
            time_zone: zone
                .parse()
                .map_err(|_| invalid(format!("time zone `{zone}` is not an IANA time zone name")))?,
        };
        let default_due = raw.calendar.due_days.unwrap_or(DEFAULT_DUE_DAYS);
        let mut indicators = BTreeMap::new();
        for i in raw.indicators {
            let id = parsed(IndicatorId::parse(&i.id))?;
            let mut owners = vec![];
            for o in &i.owners {
                let code = parsed(DepartmentCode::parse(o))?;
                if !departments.contains_key(&code) {
                    return Err(invalid(format!("indicator `{id}` is owned by unknown department `{o}`")));
                }
                owners.push(code);
            }
            if owners.is_empty() {
                return Err(invalid(format!("indicator `{id}` has no owner")));
            }
            let levels = match i.reported_by.as_slice() {
                [] => vec![(Level::Province, Validity::default())],
                given => given.iter().map(|l| (l.level, Validity { from: l.valid_from, to: l.valid_to })).collect(),
            };
            let calendar = Calendar { levels, due_days: i.due_days.unwrap_or(default_due) };
            let trend_window = i.trend_window.unwrap_or(crate::progress::DEFAULT_WINDOW);
            if trend_window < crate::progress::MIN_WINDOW {
                return Err(invalid(format!(
                    "indicator `{id}`: trend_window must be at least {}",
                    crate::progress::MIN_WINDOW
                )));
            }
            let indicator = Indicator {
                id: id.clone(),
                pillar: i.pillar,
                name_vi: i.name_vi.unwrap_or_else(|| i.name.clone()),
                name: i.name,
                owners,
                reported: i.reported,
                calendar,
                trend_window,
            };
            if indicators.insert(id, indicator).is_some() {
                return Err(invalid(format!("indicator `{}` is listed twice", i.id)));
            }
        }

        let tree = tree(raw.tree)?;
        let mut plans = BTreeMap::new();
        for p in raw.plans {
            let plan = plan(p, &indicators, &tree)?;
            let id = plan.id.clone();
            if plans.insert(id.clone(), plan).is_some() {
                return Err(invalid(format!("plan `{id}` is listed twice")));
            }
        }
        Ok(Catalog { indicators, departments, tree, plans, clock })
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

    /// The province's clock: its time zone, for "today" and due dates.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The organisation tree over time.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The plan with this id.
    pub fn plan(&self, id: &PlanId) -> Option<&Plan> {
        self.plans.get(id)
    }

    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }

    /// The plans that hold `indicator`, each with its entry for it.
    pub fn plans_of<'a>(
        &'a self,
        indicator: &'a IndicatorId,
    ) -> impl Iterator<Item = (&'a Plan, &'a PlanIndicator)> + 'a {
        self.plans.values().filter_map(move |p| p.indicator(indicator).map(|i| (p, i)))
    }
}

fn validity(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Validity {
    Validity { from, to }
}

fn tree(raw: RawTree) -> Result<Tree, CatalogError> {
    let mut units = Vec::with_capacity(raw.units.len());
    let mut links = Vec::with_capacity(raw.units.len() + raw.links.len());
    for u in raw.units {
        let code = parsed(OrgUnitCode::parse(&u.code))?;
        let valid = validity(u.valid_from, u.valid_to);
        if let Some(parent) = &u.parent {
            links.push(Link { child: code.clone(), parent: parsed(OrgUnitCode::parse(parent))?, valid });
        }
        units.push(OrgUnit { code, name: u.name, level: u.level, kind: u.kind, valid });
    }
    for l in raw.links {
        links.push(Link {
            child: parsed(OrgUnitCode::parse(&l.child))?,
            parent: parsed(OrgUnitCode::parse(&l.parent))?,
            valid: validity(l.valid_from, l.valid_to),
        });
    }
    Tree::new(units, links).map_err(|e| invalid(e.0))
}

fn plan(p: RawPlan, indicators: &BTreeMap<IndicatorId, Indicator>, tree: &Tree) -> Result<Plan, CatalogError> {
    let id = parsed(PlanId::parse(&p.id))?;
    let scope = parsed(OrgUnitCode::parse(&p.scope))?;
    if tree.records(&scope).is_empty() {
        return Err(invalid(format!("plan `{id}` is about `{scope}`, which is not in the tree")));
    }
    let mut entries = BTreeMap::new();
    for i in p.indicators {
        let indicator = parsed(IndicatorId::parse(&i.id))?;
        if !indicators.contains_key(&indicator) {
            return Err(invalid(format!("plan `{id}` holds `{indicator}`, which is not an indicator of the catalog")));
        }
        let not_percent = || invalid(format!("plan `{id}`, `{indicator}`: baseline and target must be percentages"));
        let baseline = match (i.baseline, i.baseline_date) {
            (Some(value), Some(date)) => Some(Baseline { value: Percent::new(value).ok_or_else(not_percent)?, date }),
            (None, None) => None,
            _ => return Err(invalid(format!("plan `{id}`, `{indicator}`: set baseline and baseline_date together"))),
        };
        let until = i.target_date.unwrap_or(p.target_date);
        let goal = match (i.target, i.comparator) {
            (Some(target), Some(comparator)) => {
                Some(Goal { target: Percent::new(target).ok_or_else(not_percent)?, comparator, date: until })
            }
            (None, None) => None,
            _ => return Err(invalid(format!("plan `{id}`, `{indicator}`: set target and comparator together"))),
        };
        if baseline.is_some_and(|b| b.date >= until) {
            return Err(invalid(format!("plan `{id}`, `{indicator}`: the baseline must come before the target date")));
        }
        let tolerance = i.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(invalid(format!("plan `{id}`, `{indicator}`: tolerance must be a non-negative number")));
        }
        let direction = match (goal, i.direction) {
            (Some(g), Some(d)) if d != g.comparator.direction() => {
                return Err(invalid(format!("plan `{id}`, `{indicator}`: direction `{d}` contradicts the comparator")));
            }
            (Some(g), _) => g.comparator.direction(),
            (None, d) => d.unwrap_or(crate::progress::Direction::Increase),
        };
        let entry = PlanIndicator { indicator: indicator.clone(), baseline, goal, tolerance, until, direction };
        if entries.insert(indicator.clone(), entry).is_some() {
            return Err(invalid(format!("plan `{id}` holds `{indicator}` twice")));
        }
    }
    Ok(Plan {
        id,
        name_vi: p.name_vi.unwrap_or_else(|| p.name.clone()),
        name: p.name,
        scope,
        target_date: p.target_date,
        indicators: entries,
    })
}

#[cfg(test)]
mod tests;
