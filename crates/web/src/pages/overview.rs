//! `/`: for each plan, every indicator's latest figure for the plan's territory, where its
//! path says it should be, its status, progress and outlook, and how many reports are in.
//! `?sort=gap` puts the indicators furthest behind first.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;
use maud::{html, Markup};
use tiendo_domain::{IndicatorId, Period, Plan};
use tiendo_store::status::{Reporting, Row};

use super::{layout, outlook_cells, percent, points, status, Ctx, Failed, PageError};
use crate::Shared;

/// How the indicators of a plan are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// As the catalog lists them.
    Catalog,
    /// By gap, most behind first; those without a gap last.
    Gap,
}

impl Sort {
    pub fn parse(s: Option<&str>) -> Result<Sort, String> {
        match s {
            None | Some("catalog") => Ok(Sort::Catalog),
            Some("gap") => Ok(Sort::Gap),
            Some(other) => Err(format!("sort must be `gap` or `catalog`, not `{other}`")),
        }
    }
}

pub async fn page(ctx: Ctx, State(shared): State<Arc<Shared>>) -> Result<Html<String>, Failed> {
    let sort = Sort::parse(ctx.param("sort")).map_err(|why| ctx.fail(PageError::BadRequest(why)))?;
    let db = shared.db().ok_or_else(|| ctx.unavailable("not connected yet"))?;
    let catalog = &shared.catalog;
    let rows = tiendo_store::status::rows(&db, catalog).await.map_err(|e| ctx.unavailable(e))?;
    let t = ctx.t();
    let watch: Vec<String> = catalog.plans().map(|p| format!("u:{}", p.scope)).collect();
    let mut tables = Vec::new();
    for plan in catalog.plans() {
        // Who has reported the period each row shows; before the first figure, the latest due.
        let periods: Vec<(IndicatorId, Period)> = catalog
            .indicators()
            .filter(|i| plan.indicator(&i.id).is_some())
            .map(|i| {
                let shown = rows.iter().find(|r| r.plan == plan.id && r.indicator == i.id && r.org_unit == plan.scope);
                let period = shown.map(|r| r.period);
                (
                    i.id.clone(),
                    period.unwrap_or_else(|| catalog.clock().latest_due(i.reported, i.calendar.due_days, ctx.now)),
                )
            })
            .collect();
        let reporting = tiendo_store::status::reporting_of(&db, catalog, &periods, ctx.now)
            .await
            .map_err(|e| ctx.unavailable(e))?;
        let reporting: HashMap<&IndicatorId, &Reporting> = reporting.iter().map(|r| (&r.indicator, r)).collect();
        tables.push(plan_table(&ctx, &shared, plan, &rows, &reporting, sort));
    }
    let body = html! {
        h1 { (t.overview) }
        @for table in tables { (table) }
    };
    Ok(layout(&ctx, "/", t.overview, &watch.join(" "), body))
}

/// One plan: its territory's row for each of its indicators.
fn plan_table(
    ctx: &Ctx,
    shared: &Shared,
    plan: &Plan,
    rows: &[Row],
    reporting: &HashMap<&IndicatorId, &Reporting>,
    sort: Sort,
) -> Markup {
    let (t, lang, catalog) = (ctx.t(), ctx.lang, &shared.catalog);
    let today = catalog.clock().today(ctx.now);
    let closed = today > plan.target_date;
    let scope_name = catalog.tree().records(&plan.scope).last().map(|u| u.name.clone()).unwrap_or_default();
    let mut entries: Vec<(&tiendo_domain::Indicator, Option<&Row>)> = catalog
        .indicators()
        .filter(|i| plan.indicator(&i.id).is_some())
        .map(|i| {
            let row = rows.iter().find(|r| r.plan == plan.id && r.indicator == i.id && r.org_unit == plan.scope);
            (i, row)
        })
        .collect();
    if sort == Sort::Gap {
        entries.sort_by(|a, b| {
            let gap = |e: &(&tiendo_domain::Indicator, Option<&Row>)| e.1.and_then(|r| r.gap);
            match (gap(a), gap(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
    }
    let name = match lang {
        crate::i18n::Lang::Vi => &plan.name_vi,
        crate::i18n::Lang::En => &plan.name,
    };
    let (gap_sort, gap_aria, next_sort) = match sort {
        Sort::Gap => (t.sort_by_catalog, "ascending", "catalog"),
        Sort::Catalog => (t.sort_by_gap, "none", "gap"),
    };
    html! {
        section class="plan" data-plan=(plan.id.as_str()) {
            h2 { (name) }
            p class="plan-facts" {
                (t.scope) ": " a href=(ctx.href(&format!("/units/{}", plan.scope))) { (plan.scope.as_str()) " " (scope_name) }
                " · " (t.target_date) ": " (lang.date(plan.target_date))
                " · " (if closed { t.plan_closed } else { t.plan_open })
            }
            table class="status-table" {
                caption { (name) }
                thead {
                    tr {
                        th scope="col" { (t.indicator) }
                        th scope="col" { (t.period) }
                        th scope="col" class="num" { (t.value) }
                        th scope="col" class="num" { (t.expected) }
                        th scope="col" class="num" aria-sort=(gap_aria) {
                            a href=(ctx.href_with("/", &[("sort", next_sort)])) title=(gap_sort) { (t.gap) " ⇅" }
                        }
                        th scope="col" class="num" { (t.target) }
                        th scope="col" { (t.status) }
                        th scope="col" { (t.progress) }
                        th scope="col" class="num" { (t.score) }
                        th scope="col" { (t.outlook) }
                        th scope="col" class="num" { (t.reporting_rate) }
                    }
                }
                tbody {
                    @for (indicator, row) in &entries {
                        @let entry = plan.indicator(&indicator.id);
                        @let goal = entry.and_then(|e| e.goal);
                        tr data-indicator=(indicator.id.as_str()) data-org-unit=(plan.scope.as_str()) {
                            th scope="row" {
                                a href=(ctx.href_with(&format!("/indicators/{}", indicator.id), &[("plan", plan.id.as_str())])) {
                                    (indicator_name(lang, indicator))
                                }
                            }
                            @match row {
                                Some(r) => {
                                    td class="period" data-cell="period" { (r.period.to_string()) }
                                    td class="num" data-cell="value" { (lang.percent(r.value.get())) }
                                    td class="num" data-cell="expected" { (percent(lang, r.expected)) }
                                    td class="num" data-cell="gap" { (points(lang, r.gap)) }
                                }
                                None => {
                                    td class="period" data-cell="period" { "–" }
                                    td class="num" data-cell="value" { "–" }
                                    td class="num" data-cell="expected" { "–" }
                                    td class="num" data-cell="gap" { "–" }
                                }
                            }
                            td class="num" {
                                @if let Some(g) = goal { (lang.comparator(g.comparator)) " " (lang.percent(g.target.get())) } @else { "–" }
                            }
                            @match row {
                                Some(r) => {
                                    td data-cell="status" { (status(lang, r.status)) }
                                    (outlook_cells(lang, &r.outlook))
                                }
                                None => {
                                    td data-cell="status" { span class="status status-none" data-status="none" { (t.no_figure) } }
                                    td { "–" } td class="num" { "–" } td { "–" }
                                }
                            }
                            td class="num" data-cell="reporting-rate" {
                                @if let Some(rep) = reporting.get(&indicator.id) {
                                    (lang.ratio(rep.rates.reporting_rate()))
                                    " "
                                    span class="detail" { "(" (rep.rates.received) "/" (rep.rates.expected) ", " (rep.period.to_string()) ")" }
                                } @else { "–" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An indicator's name in a language.
pub fn indicator_name(lang: crate::i18n::Lang, i: &tiendo_domain::Indicator) -> &str {
    match lang {
        crate::i18n::Lang::Vi => &i.name_vi,
        crate::i18n::Lang::En => &i.name,
    }
}
