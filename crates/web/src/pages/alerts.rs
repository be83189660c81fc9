//! `/alerts`: every alert firing now, and the latest firings and resolutions.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;
use maud::{html, Markup};
use tiendo_store::views::AlertView;

use super::overview::indicator_name;
use super::{columns, kind, layout, status, time, Ctx, Failed};
use crate::Shared;

/// Firings and resolutions in the history.
const HISTORY: u64 = 50;

pub async fn page(ctx: Ctx, State(shared): State<Arc<Shared>>) -> Result<Html<String>, Failed> {
    let db = shared.db().ok_or_else(|| ctx.unavailable("not connected yet"))?;
    let firing = tiendo_store::views::firing(&db).await.map_err(|e| ctx.unavailable(e))?;
    let history = tiendo_store::views::history(&db, HISTORY).await.map_err(|e| ctx.unavailable(e))?;
    let t = ctx.t();
    let body = html! {
        h1 { (t.alerts) }
        h2 { (t.firing_now) }
        @if firing.is_empty() { p { (t.no_alerts) } } @else { (table(&ctx, &shared, &firing, "firing")) }
        h2 { (t.history) }
        @if history.is_empty() { p { (t.none) } } @else { (table(&ctx, &shared, &history, "history")) }
    };
    Ok(layout(&ctx, "/alerts", t.alerts, "alerts", body))
}

fn table(ctx: &Ctx, shared: &Shared, alerts: &[AlertView], class: &str) -> Markup {
    let (t, lang, catalog) = (ctx.t(), ctx.lang, &shared.catalog);
    let zone = catalog.clock().time_zone;
    html! {
        table class={ "alerts " (class) } {
            (columns(&[(t.time, false), (t.state, false), (t.kind, false), (t.indicator, false), (t.unit, false), (t.period, false), (t.value, true), (t.expected, true), (t.status, false), (t.plan, false)]))
            tbody {
                @for a in alerts {
                    tr data-alert-id=(a.alert_id) data-state=(a.state.as_str()) {
                        td { (time(lang, a.at, zone)) }
                        td { (lang.state(a.state)) }
                        td { (kind(lang, a.kind)) }
                        th scope="row" {
                            a href=(ctx.href_with(&format!("/indicators/{}", a.indicator), &[("plan", a.plan.as_str())])) {
                                @if let Some(i) = catalog.indicator(&a.indicator) { (indicator_name(lang, i)) } @else { (a.indicator.as_str()) }
                            }
                        }
                        td {
                            a href=(ctx.href(&format!("/units/{}", a.org_unit))) {
                                (a.org_unit.as_str()) " "
                                (catalog.tree().unit_at(&a.org_unit, a.period.end()).map(|u| u.name.as_str()).unwrap_or_default())
                            }
                        }
                        td class="period" { (a.period.to_string()) }
                        td class="num" { (lang.percent(a.value)) }
                        td class="num" { (lang.percent(a.expected)) }
                        td { (status(lang, a.status)) }
                        td { (a.plan.as_str()) }
                    }
                }
            }
        }
    }
}
