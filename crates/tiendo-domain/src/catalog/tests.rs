use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn code(s: &str) -> OrgUnitCode {
    OrgUnitCode::parse(s).unwrap()
}

fn id(s: &str) -> IndicatorId {
    IndicatorId::parse(s).unwrap()
}

#[test]
fn the_built_in_catalog_has_every_seed_figure_in_the_2025_plan() {
    let c = Catalog::built_in();
    assert_eq!(c.indicators().count(), 17);
    assert_eq!(c.departments().count(), 9);
    let plan = c.plan(&PlanId::parse("an_giang_2025").unwrap()).expect("the article's plan");
    assert_eq!(plan.scope, code("89"));
    assert_eq!(plan.indicators.len(), 17);
    let s = plan.indicator(&id("smartphone_adults")).unwrap();
    assert_eq!(s.baseline.map(|b| (b.value.get(), b.date)), Some((66.2, d("2023-02-13"))));
    assert_eq!(s.goal.map(|g| (g.target.get(), g.comparator)), Some((80.0, Comparator::AtLeast)));
    let sme = plan.indicator(&id("sme_digital_platforms")).unwrap();
    assert_eq!(sme.baseline.map(|b| b.value.get()), Some(30.0));
    assert_eq!(sme.goal.map(|g| (g.target.get(), g.comparator)), Some((50.0, Comparator::MoreThan)));
    assert!(plan.indicator(&id("telehealth_adults")).unwrap().baseline.is_none());
    let einvoice = plan.indicator(&id("einvoice_businesses")).unwrap();
    assert_eq!(einvoice.baseline.map(|b| b.value.get()), Some(100.0), "where the province stood");
    assert!(einvoice.goal.is_none(), "the article sets no e-invoice target: monitored only");
    assert_eq!(c.find_indicator("sme_digital_platforms").unwrap().reported, Frequency::Monthly);
    assert_eq!(c.find_indicator("digital_governance_higher_ed").unwrap().owners.len(), 2);
    assert!(plan.indicators.values().all(|i| i.until == d("2025-12-31")));
    assert!(plan.indicators.values().filter_map(|i| i.goal).all(|g| g.date == d("2025-12-31")));
}

/// Rows of a CSV file without quoted fields (the unit files have none).
fn csv(text: &str) -> Vec<BTreeMap<&str, &str>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines.map(|l| header.iter().copied().zip(l.split(',')).collect()).collect()
}

fn names(c: &Catalog, parent: &str, date: &str) -> BTreeSet<(String, String)> {
    let t = c.tree();
    t.children_at(&code(parent), d(date))
        .into_iter()
        .map(|k| (k.to_string(), t.unit_at(k, d(date)).unwrap().name.clone()))
        .collect()
}

#[test]
fn the_built_in_tree_matches_the_unit_files() {
    let c = Catalog::built_in();
    let t = c.tree();
    let old = csv(include_str!("../../../../deploy/catalog/units/old_units.csv"));
    let new = csv(include_str!("../../../../deploy/catalog/units/new_units.csv"));
    let kept = csv(include_str!("../../../../deploy/catalog/units/new_unit_predecessor.csv"));
    let (before, after) = ("2025-06-30", "2025-07-01");

    // Until the reform: 89 → its 11 districts → their 155 communes, as the file lists them.
    let old89: Vec<_> = old.iter().filter(|r| r["province_code"] == "89").collect();
    let districts: BTreeSet<&str> = old89.iter().map(|r| r["district_code"]).collect();
    assert_eq!(districts.len(), 11);
    let children: BTreeSet<String> = names(&c, "89", before).into_iter().map(|(k, _)| k).collect();
    assert_eq!(children, districts.iter().map(|s| s.to_string()).collect());
    for district in &districts {
        let expected: BTreeSet<(String, String)> = old89
            .iter()
            .filter(|r| r["district_code"] == *district)
            .map(|r| (r["commune_code"].to_owned(), r["commune_name"].to_owned()))
            .collect();
        assert_eq!(names(&c, district, before), expected, "district {district}");
    }
    assert_eq!(t.descendants_at(&code("89"), d(before)).len(), 11 + 155);

    // From the reform: 91 → its 102 units; 89 lives on as the territory of its 54 kept codes.
    let expected: BTreeSet<(String, String)> =
        new.iter().map(|r| (r["unit_code"].to_owned(), format!("{} {}", r["unit_kind"], r["unit_name"]))).collect();
    assert_eq!(expected.len(), 102);
    assert_eq!(names(&c, "91", after), expected);
    let territory: BTreeSet<String> =
        kept.iter().filter(|r| r["old_province_code"] == "89").map(|r| r["new_unit_code"].to_owned()).collect();
    assert_eq!(territory.len(), 54);
    let children: BTreeSet<String> = names(&c, "89", after).into_iter().map(|(k, _)| k).collect();
    assert_eq!(children, territory);
    for district in &districts {
        assert!(t.unit_at(&code(district), d(after)).is_none(), "district {district} is retired");
    }
    // Old Kiên Giang is out of scope: code 91 means nothing before the reform.
    assert!(t.unit_at(&code("91"), d(before)).is_none());
    // A code reused across the reform is two units.
    assert_eq!(t.unit_at(&code("30292"), d(before)).unwrap().name, "Phường Bình Khánh");
    assert_eq!(t.unit_at(&code("30292"), d(after)).unwrap().name, "Phường Bình Đức");
    assert_eq!(t.ancestors_at(&code("30292"), d(before)), vec![code("883"), code("89")]);
}

#[test]
fn a_catalog_with_an_unknown_owner_parent_scope_or_indicator_or_a_cycle_is_refused() {
    let base = "[[department]]\ncode = \"dic\"\nname_vi = \"x\"\nname_en = \"x\"\n";
    let indicator = "[[indicator]]\nid=\"a\"\npillar=\"p\"\nname=\"n\"\nowners=[\"dic\"]\nreported=\"yearly\"\n";
    let owner =
        format!("{base}[[indicator]]\nid=\"a\"\npillar=\"p\"\nname=\"n\"\nowners=[\"zzz\"]\nreported=\"yearly\"\n");
    assert!(Catalog::from_toml(&owner).unwrap_err().to_string().contains("zzz"));
    let tree = |units: &str| format!("{base}{indicator}[tree]\nunits = [{units}]\n");
    assert!(Catalog::from_toml(&tree(r#"{ code = "1", name = "a", level = "province", parent = "2" }"#)).is_err());
    let cycle = tree(
        r#"{ code = "1", name = "a", level = "province", parent = "2" }, { code = "2", name = "b", level = "district", parent = "1" }"#,
    );
    assert!(Catalog::from_toml(&cycle).unwrap_err().to_string().contains("path"));
    let one = tree(r#"{ code = "1", name = "a", level = "province" }"#);
    let with_plan =
        |plan: &str| format!("{one}[[plan]]\nid = \"p\"\nname = \"P\"\ntarget_date = \"2025-12-31\"\n{plan}");
    assert!(Catalog::from_toml(&with_plan("scope = \"1\"\n")).is_ok());
    assert!(Catalog::from_toml(&with_plan("scope = \"9\"\n")).unwrap_err().to_string().contains("not in the tree"));
    let unknown = with_plan("scope = \"1\"\n[[plan.indicator]]\nid = \"b\"\ntarget = 5\ncomparator = \"at_least\"\n");
    assert!(Catalog::from_toml(&unknown).unwrap_err().to_string().contains("`b`"));
    let late =
        with_plan("scope = \"1\"\n[[plan.indicator]]\nid = \"a\"\nbaseline = 5\nbaseline_date = \"2026-01-01\"\n");
    assert!(Catalog::from_toml(&late).unwrap_err().to_string().contains("before the target date"));
    // A baseline date that is no date is refused at load, never read as some default day.
    for bad in ["\"2023-02-30\"", "\"13/02/2023\"", "\"\"", "20230213"] {
        let entry = format!("scope = \"1\"\n[[plan.indicator]]\nid = \"a\"\nbaseline = 5\nbaseline_date = {bad}\n");
        let refused = Catalog::from_toml(&with_plan(&entry)).expect_err(bad).to_string();
        assert!(refused.contains("baseline_date"), "{bad}: {refused}");
    }
    assert!(Catalog::from_toml("[[departmnet]]").is_err());
}
