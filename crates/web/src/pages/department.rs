//! `/departments/{code}`: what a department owns and how each stands, its latest rejections
//! (reason, detail, event id, time) and the overdue notices it was sent.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Html;
use maud::html;
use tiendo_domain::DepartmentCode;

use super::indicator::department_name;
use super::overview::indicator_name;
use super::{columns, layout, status, time, Ctx, Failed, PageError};
use crate::Shared;

/// Overdue notices listed, latest first.
const NOTICES_SHOWN: usize = 20;
/// Missing units named per notice; the rest are counted.
const MISSING_NAMED: usize = 12;

pub async fn page(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    Path(code): Path<String>,
) -> Result<Html<String>, Failed> {
    let catalog = &shared.catalog;
    let code = DepartmentCode::parse(&code).map_err(|_| ctx.fail(PageError::NotFound))?;
    if catalog.department(&code).is_none() {
        return Err(ctx.fail(PageError::NotFound));
    }
    let db = shared.db().ok_or_else(|| ctx.unavailable("not connected yet"))?;
    let rows = tiendo_store::status::rows(&db, catalog).await.map_err(|e| ctx.unavailable(e))?;
    let notices = tiendo_store::reporting::notices(&db, Some(code.as_str())).await.map_err(|e| ctx.unavailable(e))?;
    let rejections = shared.rejections.of(&code);
    let (t, lang) = (ctx.t(), ctx.lang);
    let zone = catalog.clock().time_zone;
    let name = department_name(catalog, lang, &code);
    let owned: Vec<_> = catalog.indicators().filter(|i| i.is_owned_by(&code)).collect();
    let tree = catalog.tree();
    let body = html! {
        h1 { (name) }
        h2 { (t.indicator) }
        table class="status-table" {
            (columns(&[(t.indicator, false), (t.plan, false), (t.period, false), (t.value, true), (t.status, false)]))
            tbody {
                @for i in &owned {
                    @let plans: Vec<_> = catalog.plans_of(&i.id).collect();
                    @if plans.is_empty() {
                        tr data-indicator=(i.id.as_str()) {
                            th scope="row" { a href=(ctx.href(&format!("/indicators/{}", i.id))) { (indicator_name(lang, i)) } }
                            td { "–" } td { "–" } td class="num" { "–" } td { "–" }
                        }
                    }
                    @for (plan, _) in plans {
                        @let row = rows.iter().find(|r| r.plan == plan.id && r.indicator == i.id && r.org_unit == plan.scope);
                        tr data-indicator=(i.id.as_str()) {
                            th scope="row" {
                                a href=(ctx.href_with(&format!("/indicators/{}", i.id), &[("plan", plan.id.as_str())])) { (indicator_name(lang, i)) }
                            }
                            td { (plan.id.as_str()) }
                            @if let Some(r) = row {
                                td class="period" { (r.period.to_string()) }
                                td class="num" data-cell="value" { (lang.percent(r.value.get())) }
                                td { (status(lang, r.status)) }
                            } @else {
                                td { "–" } td class="num" data-cell="value" { "–" } td { (t.no_figure) }
                            }
                        }
                    }
                }
            }
        }
        h2 { (t.rejections) }
        @if rejections.is_empty() { p { (t.no_rejections) } } @else {
            table class="rejections" {
                (columns(&[(t.time, false), (t.event_id, false), (t.reason, false), (t.detail, false)]))
                tbody {
                    @for r in &rejections {
                        tr data-reason=(r.reason_code) {
                            td { @if let Some(at) = r.at { (time(lang, at, zone)) } }
                            td class="event-id" { code { (r.event_id) } }
                            td {
                                code { (r.reason_code) }
                                @if let Some(reason) = r.reason { br; (lang.reason(reason)) }
                            }
                            td class="detail" { (r.detail) }
                        }
                    }
                }
            }
        }
        h2 { (t.overdue) }
        @if notices.is_empty() { p { (t.no_overdue) } } @else {
            table class="overdue" {
                (columns(&[(t.indicator, false), (t.period, false), (t.due, false), (t.received, true), (t.missing, false)]))
                tbody {
                    @for n in notices.iter().take(NOTICES_SHOWN) {
                        tr data-indicator=(n.indicator.as_str()) {
                            th scope="row" {
                                @if let Some(i) = catalog.indicator(&n.indicator) { (indicator_name(lang, i)) } @else { (n.indicator.as_str()) }
                            }
                            td class="period" { (n.period.to_string()) }
                            td { (n.due) }
                            td class="num" { (n.received) "/" (n.expected) }
                            td {
                                @for (k, u) in n.missing.iter().take(MISSING_NAMED).enumerate() {
                                    @if k > 0 { ", " }
                                    (u.as_str()) " " (tree.unit_at(u, n.period.end()).map(|x| x.name.as_str()).unwrap_or_default())
                                }
                                @if n.missing.len() > MISSING_NAMED { " … (+" (n.missing.len() - MISSING_NAMED) ")" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&ctx, &format!("/departments/{code}"), &name, &format!("d:{code}"), body))
}
