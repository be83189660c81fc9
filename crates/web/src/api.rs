//! The JSON API under `/api/v1/`: the pages' data for programs. Field names are a wire
//! contract (README, "Web pages and API"); each names its unit: `_percent` is 0..100, `_pp`
//! percentage points, `_ratio` 0..1, dates `YYYY-MM-DD`, times RFC 3339.
//!
//! - `GET /api/v1/indicators`: every indicator with its plans' latest status for the plan's
//!   territory, and who has reported its latest due period.
//! - `GET /api/v1/indicators/{id}`: one of them.
//! - `GET /api/v1/indicators/{id}/series?org_unit=`: a unit's figures over time (default: the
//!   territory of the latest plan that holds the indicator).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tiendo_domain::figure::UnitFigure;
use tiendo_domain::rollup::Effective;
use tiendo_domain::{Catalog, Indicator, IndicatorId, OrgUnitCode};
use tiendo_store::status::{Reporting, Row};

use crate::Shared;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/indicators", get(indicators))
        .route("/indicators/{id}", get(indicator))
        .route("/indicators/{id}/series", get(series))
        .fallback(|| async { ApiError::NotFound("no such API route".into()) })
}

/// Why an API request failed, as `{"error": "...", "status": N}`.
#[derive(Debug)]
pub enum ApiError {
    NotFound(String),
    BadRequest(String),
    Unavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, error) = match self {
            ApiError::NotFound(e) => (StatusCode::NOT_FOUND, e),
            ApiError::BadRequest(e) => (StatusCode::BAD_REQUEST, e),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "the database cannot be read".to_owned()),
        };
        (code, Json(serde_json::json!({"error": error, "status": code.as_u16()}))).into_response()
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "an API request could not read the database");
    ApiError::Unavailable
}

/// `GET /api/v1/indicators`.
#[derive(Debug, Serialize)]
pub struct IndicatorsJson {
    pub generated_at: String,
    pub indicators: Vec<IndicatorJson>,
}

/// One indicator and how it stands in each plan that holds it.
#[derive(Debug, Serialize)]
pub struct IndicatorJson {
    pub id: String,
    /// In English, and in Vietnamese.
    pub name: String,
    pub name_vi: String,
    pub pillar: String,
    pub owners: Vec<String>,
    /// `yearly`, `quarterly` or `monthly`.
    pub reported: &'static str,
    /// Its latest period whose reports are due.
    pub reporting: Option<ReportingJson>,
    pub plans: Vec<PlanStatusJson>,
}

#[derive(Debug, Serialize)]
pub struct ReportingJson {
    pub period: String,
    pub due: String,
    pub expected: u64,
    pub received: u64,
    pub on_time: u64,
    pub reporting_rate_ratio: f64,
}

/// An indicator in a plan, and the plan territory's latest standing.
#[derive(Debug, Serialize)]
pub struct PlanStatusJson {
    pub plan: String,
    /// The plan's territory: the unit `latest` is about.
    pub org_unit: String,
    pub target_percent: Option<f64>,
    /// `at_least`, `more_than`, `at_most`, `less_than`; none for a monitored indicator.
    pub comparator: Option<&'static str>,
    pub target_date: String,
    pub tolerance_pp: f64,
    pub baseline_percent: Option<f64>,
    pub baseline_date: Option<String>,
    /// None before the territory's first figure.
    pub latest: Option<StandingJson>,
}

/// How a unit's figure stands in a plan.
#[derive(Debug, Serialize)]
pub struct StandingJson {
    pub period: String,
    pub period_end: String,
    pub value_percent: f64,
    pub expected_percent: Option<f64>,
    pub gap_pp: Option<f64>,
    /// `achieved`, `on_track`, `at_risk`, `behind`, `missed`, `monitored`, `incomplete`.
    pub status: &'static str,
    /// True when `status` is the plan's verdict on its final period.
    pub verdict: bool,
    /// Open SDG's category, and its score (−5..5).
    pub progress: &'static str,
    pub score: Option<f64>,
    /// `sun`, `partly_cloudy`, `cloudy`, `thunderstorm`, `not_available`.
    pub outlook: &'static str,
    pub projected_percent: Option<f64>,
    pub expected_attainment: Option<String>,
    pub coverage_ratio: Option<f64>,
    pub alerts_firing: Vec<String>,
}

impl From<&Row> for StandingJson {
    fn from(r: &Row) -> Self {
        StandingJson {
            period: r.period.to_string(),
            period_end: r.period.end().to_string(),
            value_percent: r.value.get(),
            expected_percent: r.expected,
            gap_pp: r.gap,
            status: r.status.as_str(),
            verdict: r.verdict,
            progress: r.outlook.progress.as_str(),
            score: r.outlook.score,
            outlook: r.outlook.weather.as_str(),
            projected_percent: r.outlook.projected,
            expected_attainment: r.outlook.expected_attainment.map(|d| d.to_string()),
            coverage_ratio: r.coverage,
            alerts_firing: r.alerts.clone(),
        }
    }
}

fn indicator_json(
    catalog: &Catalog,
    i: &Indicator,
    rows: &[Row],
    reporting: &HashMap<&IndicatorId, &Reporting>,
) -> IndicatorJson {
    IndicatorJson {
        id: i.id.to_string(),
        name: i.name.clone(),
        name_vi: i.name_vi.clone(),
        pillar: i.pillar.clone(),
        owners: i.owners.iter().map(|d| d.to_string()).collect(),
        reported: i.reported.as_str(),
        reporting: reporting.get(&i.id).map(|r| ReportingJson {
            period: r.period.to_string(),
            due: r.due.to_string(),
            expected: r.rates.expected,
            received: r.rates.received,
            on_time: r.rates.on_time,
            reporting_rate_ratio: r.rates.reporting_rate(),
        }),
        plans: catalog
            .plans_of(&i.id)
            .map(|(plan, entry)| PlanStatusJson {
                plan: plan.id.to_string(),
                org_unit: plan.scope.to_string(),
                target_percent: entry.goal.map(|g| g.target.get()),
                comparator: entry.goal.map(|g| g.comparator.as_str()),
                target_date: entry.until.to_string(),
                tolerance_pp: entry.tolerance,
                baseline_percent: entry.baseline.map(|b| b.value.get()),
                baseline_date: entry.baseline.map(|b| b.date.to_string()),
                latest: rows
                    .iter()
                    .find(|r| r.plan == plan.id && r.indicator == i.id && r.org_unit == plan.scope)
                    .map(StandingJson::from),
            })
            .collect(),
    }
}

async fn read(shared: &Shared) -> Result<(Vec<Row>, Vec<Reporting>), ApiError> {
    let db = shared.db().ok_or_else(|| unavailable("not connected yet"))?;
    let rows = tiendo_store::status::rows(&db, &shared.catalog).await.map_err(unavailable)?;
    let reporting =
        tiendo_store::status::reporting(&db, &shared.catalog, (shared.clock)()).await.map_err(unavailable)?;
    Ok((rows, reporting))
}

async fn indicators(State(shared): State<Arc<Shared>>) -> Result<Json<IndicatorsJson>, ApiError> {
    let (rows, reporting) = read(&shared).await?;
    let reporting: HashMap<&IndicatorId, &Reporting> = reporting.iter().map(|r| (&r.indicator, r)).collect();
    let catalog = &shared.catalog;
    Ok(Json(IndicatorsJson {
        generated_at: (shared.clock)().to_rfc3339(),
        indicators: catalog.indicators().map(|i| indicator_json(catalog, i, &rows, &reporting)).collect(),
    }))
}

fn find<'a>(catalog: &'a Catalog, id: &str) -> Result<&'a Indicator, ApiError> {
    IndicatorId::parse(id)
        .ok()
        .and_then(|id| catalog.indicator(&id))
        .ok_or_else(|| ApiError::NotFound(format!("no indicator `{id}`")))
}

async fn indicator(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Result<Json<IndicatorJson>, ApiError> {
    let i = find(&shared.catalog, &id)?;
    let (rows, reporting) = read(&shared).await?;
    let reporting: HashMap<&IndicatorId, &Reporting> = reporting.iter().map(|r| (&r.indicator, r)).collect();
    Ok(Json(indicator_json(&shared.catalog, i, &rows, &reporting)))
}

/// `GET /api/v1/indicators/{id}/series`.
#[derive(Debug, Serialize)]
pub struct SeriesJson {
    pub indicator: String,
    pub org_unit: String,
    /// The unit's latest name.
    pub unit_name: String,
    pub points: Vec<PointJson>,
}

/// One stored period of a unit's figure.
#[derive(Debug, Serialize)]
pub struct PointJson {
    pub period: String,
    pub period_end: String,
    /// None when nothing usable is known (a roll-up of children that reported only percentages).
    pub value_percent: Option<f64>,
    pub numerator: Option<u64>,
    pub denominator: Option<u64>,
    /// `direct` (the unit's own observation) or `rollup` (its children summed).
    pub source: &'static str,
    pub children_covered: i64,
    pub children_value_only: i64,
    /// Increases with every change of this period's figure.
    pub version: u64,
}

impl From<&UnitFigure> for PointJson {
    fn from(f: &UnitFigure) -> Self {
        let effective = f.effective();
        let (numerator, denominator) = match effective {
            Effective::Counts { numerator, denominator } => (Some(numerator), Some(denominator)),
            _ => (None, None),
        };
        PointJson {
            period: f.key.period.to_string(),
            period_end: f.key.period.end().to_string(),
            value_percent: effective.value(),
            numerator,
            denominator,
            source: f.source().as_str(),
            children_covered: f.sums.covered,
            children_value_only: f.sums.value_only,
            version: f.version,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct SeriesQuery {
    org_unit: Option<String>,
}

async fn series(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    query: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SeriesJson>, ApiError> {
    let catalog = &shared.catalog;
    let i = find(catalog, &id)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let unit = match query.org_unit.as_deref() {
        Some(code) => OrgUnitCode::parse(code)
            .map_err(|e| ApiError::BadRequest(format!("org_unit `{code}` is not a unit code: {e}")))?,
        None => catalog
            .plans_of(&i.id)
            .max_by_key(|(p, _)| p.target_date)
            .map(|(p, _)| p.scope.clone())
            .ok_or_else(|| ApiError::BadRequest("org_unit is required: no plan holds this indicator".into()))?,
    };
    let records = catalog.tree().records(&unit);
    let Some(latest) = records.last() else {
        return Err(ApiError::NotFound(format!("no unit `{unit}`")));
    };
    let db = shared.db().ok_or_else(|| unavailable("not connected yet"))?;
    let figures = tiendo_store::views::series(&db, &i.id, &unit).await.map_err(unavailable)?;
    Ok(Json(SeriesJson {
        indicator: i.id.to_string(),
        org_unit: unit.to_string(),
        unit_name: latest.name.clone(),
        points: figures.iter().map(PointJson::from).collect(),
    }))
}
