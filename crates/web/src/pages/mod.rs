//! The HTML pages: what every page shares (the request's context, the layout, error pages,
//! headers, the static files), and one module per page.
//!
//! Every string that came from outside (a department's note, event id or rejection detail, a
//! name from a catalog file) goes through maud's escaping: nothing here writes raw HTML.

pub mod alerts;
pub mod department;
pub mod indicator;
pub mod overview;
pub mod unit;

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use tiendo_domain::alert::AlertKind;
use tiendo_domain::progress::{Category, Outlook, Weather};
use tiendo_domain::trajectory::Status;

use crate::i18n::{Lang, Text};
use crate::Shared;

/// Every response's `Content-Security-Policy`: this origin's script and style only, no
/// inline script or style, no frames, no forms elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What a page knows of its request: the language, the query, "now", whether the bus is up.
pub struct Ctx {
    pub lang: Lang,
    /// The language was asked for in the query (`?lang=`): links keep asking for it.
    explicit: bool,
    query: Vec<(String, String)>,
    pub now: DateTime<Utc>,
    pub bus_up: bool,
}

impl Ctx {
    pub fn t(&self) -> &'static Text {
        self.lang.text()
    }

    /// A query parameter, if given (the first, if given twice).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A link to `path` in this page's language.
    pub fn href(&self, path: &str) -> String {
        self.href_with(path, &[])
    }

    /// A link to `path` with query `params`, in this page's language.
    pub fn href_with(&self, path: &str, params: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        if self.explicit {
            pairs.push(("lang", self.lang.code()));
        }
        with_query(path, &pairs)
    }

    /// This page in the other language.
    fn other_language(&self, path: &str) -> String {
        let other = match self.lang {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        };
        let mut pairs: Vec<(&str, &str)> =
            self.query.iter().filter(|(k, _)| k != "lang").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.push(("lang", other.code()));
        with_query(path, &pairs)
    }

    /// The error page for `error`, in this page's language.
    pub fn fail(&self, error: PageError) -> Failed {
        Failed { lang: self.lang, error }
    }

    /// The outage page: the database did not answer (logged here, with its error).
    pub fn unavailable(&self, e: impl std::fmt::Display) -> Failed {
        tracing::warn!(error = %e, "a page could not read the database");
        self.fail(PageError::Unavailable)
    }
}

fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    format!("{path}?{}", query.join("&"))
}

/// Percent-encodes a query component.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl FromRequestParts<Arc<Shared>> for Ctx {
    type Rejection = Failed;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let negotiated = Lang::negotiate(&parts.headers);
        let bad = |why: String| Failed { lang: negotiated, error: PageError::BadRequest(why) };
        let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| bad(format!("the query string cannot be read: {e}")))?;
        let asked = query.iter().find(|(k, _)| k == "lang").map(|(_, v)| v.as_str());
        let (lang, explicit) = match asked {
            None => (negotiated, false),
            Some(code) => match Lang::parse(code) {
                Some(l) => (l, true),
                None => return Err(bad(format!("lang must be `vi` or `en`, not `{code}`"))),
            },
        };
        Ok(Ctx { lang, explicit, query, now: (shared.clock)(), bus_up: shared.bus_up() })
    }
}

/// Why a page cannot be shown.
#[derive(Debug, Clone, PartialEq)]
pub enum PageError {
    /// No such page, indicator, unit or department.
    NotFound,
    /// A parameter that cannot be right; the text says which and why.
    BadRequest(String),
    /// The database did not answer.
    Unavailable,
}

/// An error page in a language.
#[derive(Debug)]
pub struct Failed {
    lang: Lang,
    error: PageError,
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        let t = self.lang.text();
        let (code, title, detail) = match &self.error {
            PageError::NotFound => (StatusCode::NOT_FOUND, t.not_found, t.not_found_detail.to_owned()),
            PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, t.bad_request, why.clone()),
            PageError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, t.unavailable, t.unavailable_detail.to_owned()),
        };
        let page = html! {
            (DOCTYPE)
            html lang=(self.lang.code()) {
                (head(self.lang, title, false))
                body {
                    main id="main" class="error" data-error=(code.as_u16()) {
                        h1 { (code.as_u16()) " · " (title) }
                        p { (detail) }
                        p { a href="/" { (t.back_home) } }
                    }
                }
            }
        };
        (code, Html(page.into_string())).into_response()
    }
}

/// A page, with its layout: `watch` names what the page shows, for live updates.
pub fn layout(ctx: &Ctx, path: &str, title: &str, watch: &str, body: Markup) -> Html<String> {
    let t = ctx.t();
    let page = html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            (head(ctx.lang, title, true))
            body {
                header class="site" {
                    nav aria-label=(t.site) {
                        a class="brand" href=(ctx.href("/")) { "tiendo" }
                        a href=(ctx.href("/")) { (t.overview) }
                        a href=(ctx.href("/alerts")) { (t.alerts) }
                        a href="/api/v1/indicators" { (t.api) }
                        a class="language" href=(ctx.other_language(path)) hreflang=(other(ctx.lang).code()) lang=(other(ctx.lang).code()) {
                            (t.other_language)
                        }
                    }
                }
                main id="main" data-watch=(watch) data-generated=(ctx.now.to_rfc3339()) {
                    @if !ctx.bus_up {
                        p class="banner outage" role="status" { (t.bus_down) }
                    }
                    (body)
                }
                footer class="site" {
                    p {
                        span id="live-state" data-ok=(t.live) data-lost=(t.live_paused) role="status" {
                            (if ctx.bus_up { t.live } else { t.live_paused })
                        }
                    }
                }
            }
        }
    };
    Html(page.into_string())
}

fn other(lang: Lang) -> Lang {
    match lang {
        Lang::Vi => Lang::En,
        Lang::En => Lang::Vi,
    }
}

/// A table's header row: each column's label, and whether it holds numbers (right-aligned).
pub fn columns(labels: &[(&str, bool)]) -> Markup {
    html! {
        thead {
            tr {
                @for (label, numeric) in labels {
                    @if *numeric { th scope="col" class="num" { (label) } } @else { th scope="col" { (label) } }
                }
            }
        }
    }
}

/// The `<head>` of every page; `live`: with the live-update script.
fn head(lang: Lang, title: &str, live: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · " (lang.text().site) }
            link rel="stylesheet" href="/static/style.css";
            @if live { script src="/static/live.js" defer {} }
        }
    }
}

/// A status, as words and a symbol (colour is only a third signal).
pub fn status(lang: Lang, s: Status) -> Markup {
    let symbol = match s {
        Status::Achieved => "✔",
        Status::OnTrack => "▲",
        Status::AtRisk => "◆",
        Status::Behind => "▼",
        Status::Missed => "✖",
        Status::Monitored => "●",
        Status::Incomplete => "◌",
    };
    html! {
        span class={ "status status-" (s.as_str()) } data-status=(s.as_str()) {
            span aria-hidden="true" { (symbol) } " " (lang.status(s))
        }
    }
}

/// The progress category, in words.
pub fn category(lang: Lang, c: Category) -> Markup {
    html! { span class={ "progress progress-" (c.as_str()) } data-progress=(c.as_str()) { (lang.category(c)) } }
}

/// The outlook, as a weather symbol and words.
pub fn weather(lang: Lang, w: Weather) -> Markup {
    let symbol = match w {
        Weather::Sun => "☀",
        Weather::PartlyCloudy => "⛅",
        Weather::Cloudy => "☁",
        Weather::Thunderstorm => "⛈",
        Weather::NotAvailable => "–",
    };
    html! {
        span class={ "outlook outlook-" (w.as_str()) } data-outlook=(w.as_str()) {
            span aria-hidden="true" { (symbol) } " " (lang.weather(w))
        }
    }
}

/// The progress and outlook cells of a row.
pub fn outlook_cells(lang: Lang, o: &Outlook) -> Markup {
    html! {
        td class="words" { (category(lang, o.progress)) }
        td class="num" { @if let Some(s) = o.score { (lang.score(s)) } @else { "–" } }
        td class="words" { (weather(lang, o.weather)) }
    }
}

/// An alert kind, in words.
pub fn kind(lang: Lang, k: AlertKind) -> Markup {
    html! { span class={ "kind kind-" (k.as_str()) } data-kind=(k.as_str()) { (lang.kind(k)) } }
}

/// A percentage or a dash.
pub fn percent(lang: Lang, v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| lang.percent(v))
}

/// Percentage points or a dash.
pub fn points(lang: Lang, v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| lang.points(v))
}

/// A time in the province's clock, to the minute.
pub fn time(lang: Lang, at: DateTime<Utc>, zone: chrono_tz::Tz) -> Markup {
    let local = at.with_timezone(&zone);
    let shown = match lang {
        Lang::Vi => local.format("%H:%M %d/%m/%Y").to_string(),
        Lang::En => local.format("%Y-%m-%d %H:%M").to_string(),
    };
    html! { time datetime=(at.to_rfc3339()) { (shown) } }
}

/// Adds the security headers to every response and counts it by route.
pub async fn headers(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let code = response.status().as_u16().to_string();
    shared.metrics.requests.with_label_values(&[route.as_str(), code.as_str()]).inc();
    response
}

/// Any path that is not a page: a 404 page.
pub async fn not_found(ctx: Result<Ctx, Failed>) -> Failed {
    match ctx {
        Ok(ctx) => ctx.fail(PageError::NotFound),
        Err(failed) => failed,
    }
}

/// `GET /static/style.css`.
pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../static/style.css"))
}

/// `GET /static/live.js`.
pub async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../static/live.js"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_an_asked_language_and_encode_their_query() {
        assert_eq!(with_query("/", &[]), "/");
        assert_eq!(with_query("/a", &[("org_unit", "8 9&x"), ("lang", "en")]), "/a?org_unit=8%209%26x&lang=en");
    }
}
