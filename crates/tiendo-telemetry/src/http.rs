//! `GET /metrics`, `GET /healthz`, `GET /readyz`, and beside them the routes of a service that
//! serves people (the web pages) when the process runs one.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Telemetry;

/// The endpoints' router.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(telemetry)
}

async fn metrics(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], t.render().await)
}

async fn readyz(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    let report = t.readiness().report();
    let body: String =
        report.iter().map(|(name, ok)| format!("{name}: {}\n", if *ok { "ok" } else { "not ready" })).collect();
    let status = if t.readiness().is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body)
}

/// Serves the endpoints on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with(listener, telemetry, Router::new(), shutdown).await
}

/// Serves the endpoints and `routes` (which may have the fallback) on `listener` until
/// `shutdown` is cancelled; requests in flight finish first.
pub async fn serve_with(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    routes: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(telemetry).merge(routes))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
