//! `/indicators/{id}`: one indicator under one plan (`?plan=`, default: the plan with the
//! latest target date): the plan territory's figures over time on a chart with the path, the
//! tolerance band, the trend and the target; then every unit's latest figure, most behind
//! first, with its report coverage and the note its department sent.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Html;
use maud::{html, Markup};
use tiendo_domain::plan::PlanIndicator;
use tiendo_domain::progress::time::years;
use tiendo_domain::progress::trend::fit_line;
use tiendo_domain::{Catalog, Indicator, IndicatorId, Plan, PlanId};
use tiendo_store::status::Row;

use super::overview::indicator_name;
use super::{layout, outlook_cells, percent, points, status, Ctx, Failed, PageError};
use crate::chart::{self, Chart};
use crate::i18n::Lang;
use crate::Shared;

/// A plan and its entry for one indicator.
pub type PlanEntry<'a> = (&'a Plan, &'a PlanIndicator);

/// The indicator and the plan the page is about.
pub fn resolve<'a>(
    catalog: &'a Catalog,
    id: &str,
    plan: Option<&str>,
) -> Result<(&'a Indicator, Option<PlanEntry<'a>>), PageError> {
    let indicator = IndicatorId::parse(id).ok().and_then(|id| catalog.indicator(&id)).ok_or(PageError::NotFound)?;
    let mut plans: Vec<PlanEntry> = catalog.plans_of(&indicator.id).collect();
    plans.sort_by_key(|(p, _)| p.target_date);
    let chosen = match plan {
        None => plans.last().copied(),
        Some(asked) => {
            let found = PlanId::parse(asked).ok().and_then(|id| plans.iter().find(|(p, _)| p.id == id).copied());
            Some(found.ok_or_else(|| {
                PageError::BadRequest(format!("no plan `{asked}` holds the indicator `{}`", indicator.id))
            })?)
        }
    };
    Ok((indicator, chosen))
}

pub async fn page(ctx: Ctx, State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Result<Html<String>, Failed> {
    let catalog = &shared.catalog;
    let (indicator, chosen) = resolve(catalog, &id, ctx.param("plan")).map_err(|e| ctx.fail(e))?;
    let db = shared.db().ok_or_else(|| ctx.unavailable("not connected yet"))?;
    let (t, lang) = (ctx.t(), ctx.lang);
    let name = indicator_name(lang, indicator);
    let path = format!("/indicators/{}", indicator.id);
    let watch = format!("i:{}", indicator.id);
    let Some((plan, entry)) = chosen else {
        let body = html! { h1 { (name) } p { (t.no_plan) } };
        return Ok(layout(&ctx, &path, name, &watch, body));
    };
    let series = tiendo_store::views::series(&db, &indicator.id, &plan.scope).await.map_err(|e| ctx.unavailable(e))?;
    let figures: Vec<chart::Point> = series
        .iter()
        .filter_map(|f| f.effective().value().map(|value| chart::Point { period: f.key.period, value }))
        .collect();
    let rows = tiendo_store::status::rows(&db, catalog).await.map_err(|e| ctx.unavailable(e))?;
    let mut units: Vec<&Row> = rows.iter().filter(|r| r.plan == plan.id && r.indicator == indicator.id).collect();
    units.sort_by(|a, b| match (a.gap, b.gap) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.org_unit.cmp(&b.org_unit)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.org_unit.cmp(&b.org_unit),
    });
    let keys: Vec<_> = units.iter().map(|r| (r.org_unit.clone(), r.period)).collect();
    let notes = tiendo_store::views::notes(&db, &indicator.id, &keys).await.map_err(|e| ctx.unavailable(e))?;
    let territory = units.iter().find(|r| r.org_unit == plan.scope).copied();
    let drawn = chart_of(indicator, entry, &figures);
    let plans: Vec<&Plan> = catalog.plans_of(&indicator.id).map(|(p, _)| p).collect();
    let plan_name = match lang {
        Lang::Vi => &plan.name_vi,
        Lang::En => &plan.name,
    };
    let body = html! {
        h1 { (name) }
        p class="facts" {
            (t.owners) ": "
            @for (i, d) in indicator.owners.iter().enumerate() {
                @if i > 0 { ", " }
                a href=(ctx.href(&format!("/departments/{d}"))) { (department_name(catalog, lang, d)) }
            }
            " · " (t.plan) ": " (plan_name)
            @if let Some(g) = entry.goal {
                " · " (t.target) ": " (lang.comparator(g.comparator)) " " (lang.percent(g.target.get())) ", " (t.target_date) " " (lang.date(g.date))
            }
        }
        @if plans.len() > 1 {
            nav class="plans" aria-label=(t.other_plans) {
                (t.other_plans) ": "
                @for p in &plans {
                    @if p.id == plan.id { strong { (p.id.as_str()) } } @else {
                        a href=(ctx.href_with(&path, &[("plan", p.id.as_str())])) { (p.id.as_str()) }
                    }
                    " "
                }
            }
        }
        @if let Some(r) = territory { (summary(lang, t, r)) }
        figure class="chart" {
            (chart::render(&drawn, lang, &format!("{name}: {} {}", plan.scope, unit_name(catalog, &plan.scope))))
            figcaption {
                (t.chart) ": " a href=(ctx.href(&format!("/units/{}", plan.scope))) { (plan.scope.as_str()) " " (unit_name(catalog, &plan.scope)) }
                ul class="legend" {
                    li class="legend-figures" { (t.legend_figures) }
                    @if drawn.path.is_some() { li class="legend-path" { (t.legend_path) } li class="legend-band" { (t.legend_band) } }
                    @if drawn.trend.is_some() { li class="legend-trend" { (t.legend_trend) } }
                    @if drawn.target.is_some() { li class="legend-target" { (t.legend_target) } }
                }
            }
        }
        h2 { (t.every_unit) }
        table class="status-table units" {
            caption { (t.every_unit) ": " (name) }
            thead {
                tr {
                    th scope="col" { (t.unit) }
                    th scope="col" { (t.period) }
                    th scope="col" class="num" { (t.value) }
                    th scope="col" class="num" { (t.expected) }
                    th scope="col" class="num" aria-sort="ascending" { (t.gap) }
                    th scope="col" { (t.status) }
                    th scope="col" { (t.progress) }
                    th scope="col" class="num" { (t.score) }
                    th scope="col" { (t.outlook) }
                    th scope="col" class="num" { (t.coverage) }
                    th scope="col" { (t.note) }
                }
            }
            tbody {
                @for r in &units {
                    tr data-org-unit=(r.org_unit.as_str()) {
                        th scope="row" {
                            a href=(ctx.href(&format!("/units/{}", r.org_unit))) { (r.org_unit.as_str()) " " (r.unit_name) }
                        }
                        td class="period" { (r.period.to_string()) }
                        td class="num" data-cell="value" { (lang.percent(r.value.get())) }
                        td class="num" { (percent(lang, r.expected)) }
                        td class="num" data-cell="gap" { (points(lang, r.gap)) }
                        td data-cell="status" { (status(lang, r.status)) }
                        (outlook_cells(lang, &r.outlook))
                        td class="num" { @if let Some(c) = r.coverage { (lang.ratio(c)) } @else { "–" } }
                        td class="note" data-cell="note" { @if let Some(n) = notes.get(&(r.org_unit.clone(), r.period)) { (n) } }
                    }
                }
            }
        }
    };
    Ok(layout(&ctx, &path, name, &watch, body))
}

/// The territory's standing in a sentence or two.
fn summary(lang: Lang, t: &crate::i18n::Text, r: &Row) -> Markup {
    html! {
        dl class="summary" data-org-unit=(r.org_unit.as_str()) {
            dt { (t.value) " (" (r.period.to_string()) ")" } dd data-cell="value" { (lang.percent(r.value.get())) }
            dt { (t.expected) } dd { (percent(lang, r.expected)) }
            dt { (t.status) } dd { (status(lang, r.status)) }
            dt { (t.progress) } dd { (super::category(lang, r.outlook.progress)) }
            dt { (t.outlook) } dd { (super::weather(lang, r.outlook.weather)) }
            dt { (t.projected) } dd { (percent(lang, r.outlook.projected)) }
            dt { (t.attainment) } dd { @if let Some(d) = r.outlook.expected_attainment { (lang.date(d)) } @else { "–" } }
        }
    }
}

/// What the chart draws: the figures, the plan's path and band, the trend over the latest
/// `trend_window` figures within the plan (as alerting fits it) to the end of the plan's
/// final period while the plan is open, and the target.
fn chart_of(indicator: &Indicator, entry: &PlanIndicator, figures: &[chart::Point]) -> Chart {
    let final_period = entry.final_period(indicator.reported);
    let within: Vec<&chart::Point> = figures.iter().filter(|p| p.period.end() <= final_period.end()).collect();
    let path = entry.goal.and_then(|g| {
        let from = match entry.baseline {
            Some(b) => (b.date, b.value.get()),
            None => within.first().map(|p| (p.period.end(), p.value))?,
        };
        Some(chart::Path {
            from,
            to: (g.date, g.target.get()),
            tolerance: entry.tolerance,
            rising: g.comparator.rising(),
        })
    });
    let recent = &within[within.len().saturating_sub(indicator.trend_window)..];
    let open = within.last().is_some_and(|p| p.period != final_period);
    let trend = (entry.goal.is_some() && open && recent.len() >= tiendo_domain::progress::MIN_WINDOW)
        .then(|| {
            let origin = recent[0].period;
            let pts: Vec<(f64, f64)> = recent.iter().map(|p| (years(origin, p.period), p.value)).collect();
            let line = fit_line(&pts)?;
            Some(((origin.end(), line.value_at(0.0)), (final_period.end(), line.value_at(years(origin, final_period)))))
        })
        .flatten();
    Chart { points: figures.to_vec(), path, trend, target: entry.goal.map(|g| (g.date, g.target.get())) }
}

fn unit_name(catalog: &Catalog, code: &tiendo_domain::OrgUnitCode) -> String {
    catalog.tree().records(code).last().map(|u| u.name.clone()).unwrap_or_default()
}

/// A department's name in a language, or its code when the catalog does not know it.
pub fn department_name(catalog: &Catalog, lang: Lang, code: &tiendo_domain::DepartmentCode) -> String {
    match catalog.department(code) {
        Some(d) => match lang {
            Lang::Vi => d.name_vi.clone(),
            Lang::En => d.name_en.clone(),
        },
        None => code.to_string(),
    }
}
