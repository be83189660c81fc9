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

use crate::readiness::Readiness;
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
    let status = if Readiness::passes(&report) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A probe that changes between readings (NATS lost while `/readyz` is answered): the
    /// status says what the body says. It once read the probes twice, and a test saw 503 with
    /// every check "ok".
    #[tokio::test]
    async fn readyz_answers_from_one_reading_of_its_checks() {
        let t = Telemetry::new();
        let up = AtomicBool::new(false);
        // Each reading gives the opposite of the last.
        t.readiness().probe("nats", move || !up.fetch_xor(true, Ordering::SeqCst));
        for _ in 0..6 {
            let response = readyz(State(t.clone())).await.into_response();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            let expected = if body.contains("not ready") { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            assert_eq!(status, expected, "{body}");
        }
    }
}
