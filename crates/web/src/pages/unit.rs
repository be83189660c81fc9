//! `/units/{code}`: a unit's indicators under every plan that judges it, and the tree around
//! it with dates: every unit that held the code, what it was part of and what was part of it,
//! and for a retired unit the units that took over.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Html;
use maud::{html, Markup};
use tiendo_domain::tree::{Link, Validity};
use tiendo_domain::OrgUnitCode;

use super::overview::indicator_name;
use super::{columns, layout, outlook_cells, percent, points, status, Ctx, Failed, PageError};
use crate::i18n::Lang;
use crate::Shared;

pub async fn page(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    Path(code): Path<String>,
) -> Result<Html<String>, Failed> {
    let catalog = &shared.catalog;
    let code = OrgUnitCode::parse(&code)
        .map_err(|e| ctx.fail(PageError::BadRequest(format!("`{code}` is not a unit code: {e}"))))?;
    let tree = catalog.tree();
    let records = tree.records(&code);
    if records.is_empty() {
        return Err(ctx.fail(PageError::NotFound));
    }
    let db = shared.db().ok_or_else(|| ctx.unavailable("not connected yet"))?;
    let rows = tiendo_store::status::rows(&db, catalog).await.map_err(|e| ctx.unavailable(e))?;
    let (t, lang) = (ctx.t(), ctx.lang);
    let title = format!("{} {}", code, records.last().map(|u| u.name.as_str()).unwrap_or_default());
    let mine: Vec<_> = rows.iter().filter(|r| r.org_unit == code).collect();
    let unit_link = |c: &OrgUnitCode| {
        let name = tree.records(c).last().map(|u| u.name.clone()).unwrap_or_default();
        html! { a href=(ctx.href(&format!("/units/{c}"))) { (c.as_str()) " " (name) } }
    };
    let body = html! {
        h1 { (title) }
        h2 { (t.records) }
        table class="records" {
            (columns(&[(t.unit, false), (t.level, false), (t.valid, false), (t.successors, false)]))
            tbody {
                @for u in records {
                    tr {
                        th scope="row" { (u.name) @if !u.kind.is_empty() { " (" (u.kind) ")" } }
                        td { (u.level.as_str()) }
                        td { (validity(lang, &u.valid)) @if u.valid.to.is_some() { " · " (t.retired) } }
                        td {
                            @let next = tree.successors(u);
                            @if next.is_empty() { "–" }
                            @for (i, s) in next.iter().enumerate() {
                                @if i > 0 { ", " }
                                (unit_link(&s.code))
                            }
                        }
                    }
                }
            }
        }
        (links(&ctx, t.parents, tree.links_up(&code), |l| &l.parent, &unit_link))
        (links(&ctx, t.children, tree.links_down(&code), |l| &l.child, &unit_link))
        h2 { (t.indicator) }
        @if mine.is_empty() { p { (t.no_figure) } } @else {
            table class="status-table" {
                (columns(&[(t.plan, false), (t.indicator, false), (t.period, false), (t.value, true), (t.expected, true), (t.gap, true), (t.status, false), (t.progress, false), (t.score, true), (t.outlook, false)]))
                tbody {
                    @for r in &mine {
                        tr data-indicator=(r.indicator.as_str()) {
                            td { (r.plan.as_str()) }
                            th scope="row" {
                                a href=(ctx.href_with(&format!("/indicators/{}", r.indicator), &[("plan", r.plan.as_str())])) {
                                    @if let Some(i) = catalog.indicator(&r.indicator) { (indicator_name(lang, i)) } @else { (r.indicator.as_str()) }
                                }
                            }
                            td class="period" { (r.period.to_string()) }
                            td class="num" data-cell="value" { (lang.percent(r.value.get())) }
                            td class="num" { (percent(lang, r.expected)) }
                            td class="num" { (points(lang, r.gap)) }
                            td { (status(lang, r.status)) }
                            (outlook_cells(lang, &r.outlook))
                        }
                    }
                }
            }
        }
    };
    Ok(layout(&ctx, &format!("/units/{code}"), &title, &format!("u:{code}"), body))
}

/// A table of links with their dates: to parents or to children.
fn links(
    ctx: &Ctx,
    heading: &str,
    links: &[Link],
    other: impl Fn(&Link) -> &OrgUnitCode,
    unit_link: &impl Fn(&OrgUnitCode) -> Markup,
) -> Markup {
    let t = ctx.t();
    html! {
        h2 { (heading) }
        @if links.is_empty() { p { (t.none) } } @else {
            table class="links" {
                (columns(&[(t.unit, false), (t.valid, false)]))
                tbody {
                    @for l in links {
                        tr { td { (unit_link(other(l))) } td { (validity(ctx.lang, &l.valid)) } }
                    }
                }
            }
        }
    }
}

/// `from 01/07/2025 until 30/06/2025`, in words of the page's language.
fn validity(lang: Lang, v: &Validity) -> String {
    let t = lang.text();
    let last_day = |d: chrono::NaiveDate| lang.date(d.pred_opt().unwrap_or(d));
    match (v.from, v.to) {
        (None, None) => t.always.to_owned(),
        (Some(a), None) => format!("{} {}", t.since, lang.date(a)),
        (None, Some(b)) => format!("{} {}", t.until, last_day(b)),
        (Some(a), Some(b)) => format!("{} {} {} {}", t.since, lang.date(a), t.until, last_day(b)),
    }
}
