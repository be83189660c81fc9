//! The web service: every plan's live status for people, in a browser, in Vietnamese (the
//! default) or English, and the same data as a JSON API.
//!
//! Read-only: it reads the store (standings, figures, alerts, reports) and listens to the bus
//! (aggregates, alerts, alerting's `judged` notices, rejections, overdue notices) to tell open
//! pages when to refresh. Pages are rendered on the server (maud escapes every string a
//! department sent); one small script (`/static/live.js`) refreshes them on server-sent
//! events. It keeps serving while NATS or the database is down, and says so on every page and
//! on `/readyz`.
//!
//! Under `tiendo up` the pages share the process's listener, bus and database ([`build`]);
//! alone (`tiendo-web`), [`start`] connects to both in the background and keeps retrying.
//!
//! # Layout
//! - [`Web`]: the shared state and the router; [`build`] and [`WebService`] for `tiendo up`;
//!   [`start`] for the standalone binary.
//! - [`live`]: the bus feed and `GET /events`.
//! - [`rejections`]: each department's latest rejections, kept from the bus.
//! - [`pages`]: the HTML pages, one module each; errors and headers.
//! - [`chart`]: the indicator chart, SVG drawn by hand.
//! - [`api`]: the JSON API under `/api/v1/`.
//! - [`i18n`]: the two languages.

pub mod api;
pub mod chart;
pub mod i18n;
pub mod live;
pub mod pages;
pub mod rejections;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::get;
use axum::Router;
use tiendo_bus::Bus;
use tiendo_domain::Catalog;
use tiendo_runtime::{Clock, Deps, Service};
use tiendo_settings::Settings;
use tiendo_store::sea_orm::DatabaseConnection;
use tiendo_telemetry::prometheus::{IntCounterVec, IntGauge, Opts};
use tiendo_telemetry::Telemetry;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::live::LiveEvent;
use crate::rejections::Rejections;

/// The service's name: its readiness check and log field.
pub const NAME: &str = "web";

/// How often the standalone service retries NATS and the database, and pings the database.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// What every request handler shares.
pub struct Shared {
    pub(crate) catalog: Arc<Catalog>,
    db: RwLock<Option<DatabaseConnection>>,
    pub(crate) live: broadcast::Sender<LiveEvent>,
    pub(crate) rejections: Rejections,
    pub(crate) clock: Clock,
    pub(crate) metrics: WebMetrics,
    /// Cancelled when the service stops: ends the open event streams, so the listener can
    /// shut down.
    pub(crate) closing: CancellationToken,
    /// The bus, while the feed is subscribed to it.
    feeding: RwLock<Option<Bus>>,
    /// Told when a page starts or stops listening: the feed follows the aggregates only while
    /// one listens.
    pub(crate) pages: tokio::sync::Notify,
}

impl Shared {
    /// The database, once connected.
    pub(crate) fn db(&self) -> Option<DatabaseConnection> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True while the bus feed is subscribed and its connection is up: pages update live.
    pub(crate) fn bus_up(&self) -> bool {
        self.feeding.read().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(Bus::is_connected)
    }

    fn feeding(&self, bus: Option<Bus>) {
        *self.feeding.write().unwrap_or_else(|e| e.into_inner()) = bus;
    }
}

/// The web service's own metrics (names are a wire contract: README, "Metrics").
pub(crate) struct WebMetrics {
    /// `tiendo_web_requests_total{route,code}`.
    pub(crate) requests: IntCounterVec,
    /// `tiendo_web_live_clients`.
    pub(crate) live_clients: IntGauge,
    /// `tiendo_web_feed_messages_total{source}`.
    pub(crate) feed_messages: IntCounterVec,
}

impl WebMetrics {
    fn register(telemetry: &Telemetry) -> anyhow::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("tiendo_web_requests_total", "Requests the web service answered, by route and status code."),
            &["route", "code"],
        )?;
        let live_clients = IntGauge::new("tiendo_web_live_clients", "Pages listening for live updates now.")?;
        let feed_messages = IntCounterVec::new(
            Opts::new(
                "tiendo_web_feed_messages_total",
                "Bus messages the live feed read, by source (aggregates only while a page listens).",
            ),
            &["source"],
        )?;
        telemetry.registry().register(Box::new(requests.clone()))?;
        telemetry.registry().register(Box::new(live_clients.clone()))?;
        telemetry.registry().register(Box::new(feed_messages.clone()))?;
        Ok(Self { requests, live_clients, feed_messages })
    }
}

/// The pages' state and router.
#[derive(Clone)]
pub struct Web {
    shared: Arc<Shared>,
}

impl Web {
    /// The pages for `catalog`, reporting to `telemetry`, with "now" from `clock`. No
    /// database and no bus yet: pages say so until [`Web::set_database`] and the feed run.
    pub fn new(catalog: Arc<Catalog>, telemetry: &Telemetry, clock: Clock) -> anyhow::Result<Web> {
        let (live, _) = broadcast::channel(live::BACKLOG);
        let shared = Shared {
            catalog,
            db: RwLock::new(None),
            live,
            rejections: Rejections::default(),
            clock,
            metrics: WebMetrics::register(telemetry).context("registering the web metrics")?,
            closing: CancellationToken::new(),
            feeding: RwLock::new(None),
            pages: tokio::sync::Notify::new(),
        };
        Ok(Web { shared: Arc::new(shared) })
    }

    /// The database the pages read.
    pub fn set_database(&self, db: DatabaseConnection) {
        *self.shared.db.write().unwrap_or_else(|e| e.into_inner()) = Some(db);
    }

    /// Every route: pages, API, static files and events; anything else is a 404 page.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(pages::overview::page))
            .route("/indicators/{id}", get(pages::indicator::page))
            .route("/units/{code}", get(pages::unit::page))
            .route("/departments/{code}", get(pages::department::page))
            .route("/alerts", get(pages::alerts::page))
            .route("/events", get(live::events))
            .route("/static/style.css", get(pages::style))
            .route("/static/live.js", get(pages::script))
            .nest("/api/v1", api::router())
            .fallback(pages::not_found)
            .layer(axum::middleware::from_fn_with_state(self.shared.clone(), pages::headers))
            .with_state(self.shared.clone())
    }

    /// Listens to the bus until `shutdown`, resubscribing after an error; ends the open event
    /// streams when it stops.
    pub async fn run_feed(&self, bus: Bus, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            self.shared.feeding(Some(bus.clone()));
            let result = live::feed(self.shared.clone(), bus.clone(), shutdown.clone()).await;
            self.shared.feeding(None);
            if let Err(e) = result {
                tracing::warn!(error = %e, "the web service's bus feed stopped; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                }
            }
        }
        self.shared.closing.cancel();
    }

    /// Adds readiness check `name`: the feed is subscribed and the bus connected.
    fn watch_bus(&self, telemetry: &Telemetry, name: &str) {
        let shared = self.shared.clone();
        telemetry.readiness().probe(name, move || shared.bus_up());
    }
}

/// The web pages of `tiendo up`: on the process's bus and database. Serve [`Web::router`]
/// on the process's listener and run the [`WebService`] beside the other services.
pub fn build(deps: &Deps, db: DatabaseConnection) -> anyhow::Result<(Web, WebService)> {
    let web = Web::new(deps.catalog.clone(), &deps.telemetry, deps.clock.clone())?;
    web.set_database(db);
    // The process's `nats` and `database` checks speak for the connections; whether the feed
    // is subscribed shows on the pages themselves.
    deps.telemetry.readiness().set(NAME, true);
    Ok((web.clone(), WebService { web, bus: deps.bus.clone() }))
}

/// The web service's work beside its routes: the bus feed.
pub struct WebService {
    web: Web,
    bus: Bus,
}

impl Service for WebService {
    async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.web.run_feed(self.bus, shutdown).await;
        Ok(())
    }
}

/// The standalone web service, running.
pub struct Running {
    /// Where it serves.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops it and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Starts the web service alone: serves at once on `http.listen`, then connects to the
/// database and NATS in the background, retrying every two seconds, so it is up (showing the
/// outage) whatever is down. Stops when `shutdown` is cancelled.
pub async fn start(settings: Settings, clock: Clock, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let telemetry = Telemetry::new();
    let catalog = Arc::new(tiendo_runtime::load_catalog(&settings)?);
    let web = Web::new(catalog, &telemetry, clock)?;
    let listener = tokio::net::TcpListener::bind(settings.http.listen)
        .await
        .with_context(|| format!("listening on {}", settings.http.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(service = NAME, http = %addr, "starting");
    let db_up = Arc::new(AtomicBool::new(false));
    let probe = db_up.clone();
    telemetry.readiness().probe("database", move || probe.load(Ordering::Relaxed));
    telemetry.readiness().set(NAME, true);
    // Until connected; then the live probe replaces it.
    telemetry.readiness().set("nats", false);

    let http =
        tokio::spawn(tiendo_telemetry::http::serve_with(listener, telemetry.clone(), web.router(), shutdown.clone()));
    let database = tokio::spawn(keep_database(web.clone(), settings.clone(), db_up, shutdown.clone()));
    let feed = {
        let (web, telemetry, stop) = (web.clone(), telemetry.clone(), shutdown.clone());
        tokio::spawn(async move {
            let bus = loop {
                match Bus::connect(&settings.nats, "tiendo-web").await {
                    Ok(bus) => break bus,
                    Err(e) => tracing::warn!(error = %e, "connecting to NATS; retrying"),
                }
                tokio::select! {
                    _ = stop.cancelled() => { web.shared.closing.cancel(); return; }
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                }
            };
            web.watch_bus(&telemetry, "nats");
            web.run_feed(bus, stop).await;
        })
    };
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            let _ = feed.await;
            database.abort();
            let _ = http.await;
        }
    });
    Ok(Running { addr, shutdown, task })
}

/// Connects to the database, retrying, then pings it: `db_up` follows the answer.
async fn keep_database(web: Web, settings: Settings, db_up: Arc<AtomicBool>, shutdown: CancellationToken) {
    let db = loop {
        match tiendo_store::connect(&settings.database).await {
            Ok(db) => break db,
            Err(e) => tracing::warn!(error = %e, "connecting to the database; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY_EVERY) => {}
        }
    };
    web.set_database(db.clone());
    while !shutdown.is_cancelled() {
        let ok = tokio::time::timeout(RETRY_EVERY, db.ping()).await.is_ok_and(|r| r.is_ok());
        if ok != db_up.swap(ok, Ordering::Relaxed) {
            tracing::warn!(database_up = ok, "database availability changed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}
