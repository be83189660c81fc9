//! `tiendo demo`: a scripted 2023–2025 story of An Giang's departments reporting, from the
//! seed's baselines, run through the real pipeline on an embedded SQLite database, printing
//! alerts and rejections as they happen and the trajectory table at each step.
//!
//! It uses its own subject prefix and a fresh database, so it never touches a real
//! deployment's data on the same NATS server, and removes its streams when done.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};
use tiendo_bus::names::header;
use tiendo_bus::StreamKind;
use tiendo_domain::OrgUnitCode;
use tiendo_proto::v1::{Alert, Rejection};
use tiendo_settings::Settings;
use tiendo_testkit::nats::{self, NatsServer};
use tiendo_testkit::{idle, Collector};
use tokio_util::sync::CancellationToken;

use crate::{status, Up};

/// Adults (15+) per district, for the smartphone counts.
const DISTRICTS: [(&str, u64); 11] = [
    ("883", 220_000),
    ("884", 110_000),
    ("886", 140_000),
    ("887", 120_000),
    ("888", 150_000),
    ("889", 190_000),
    ("890", 95_000),
    ("891", 100_000),
    ("892", 130_000),
    ("893", 260_000),
    ("894", 140_000),
];

/// One step of the story: a month, and the smartphone share of each district that month.
struct Step {
    month: &'static str,
    headline: &'static str,
    /// Share (percent) for every district but the laggards.
    typical: f64,
    /// (district, share) exceptions.
    laggards: &'static [(&'static str, f64)],
    /// SMEs on digital platforms, province-level percentage from the dpi.
    sme: Option<f64>,
    /// Telehealth users, province-level percentage from the doh (no baseline in the catalog).
    telehealth: Option<f64>,
}

const STORY: [Step; 6] = [
    Step {
        month: "2023-06",
        headline: "mid-2023: districts report smartphone ownership; first SME and telehealth figures",
        typical: 68.3,
        laggards: &[("891", 67.6)],
        sme: Some(32.5),
        telehealth: Some(8.0),
    },
    Step {
        month: "2023-12",
        headline: "end of 2023: Tri Tôn (891) stalls",
        typical: 70.8,
        laggards: &[("891", 68.0)],
        sme: None,
        telehealth: None,
    },
    Step {
        month: "2024-06",
        headline: "mid-2024: Châu Phú (889) and Chợ Mới (893) stall too; the province falls behind",
        typical: 73.4,
        laggards: &[("891", 68.5), ("889", 68.5), ("893", 67.5)],
        sme: Some(37.0),
        telehealth: Some(15.0),
    },
    Step {
        month: "2024-12",
        headline: "end of 2024: a campaign starts to pay off; the province recovers",
        typical: 75.8,
        laggards: &[("891", 71.0), ("889", 74.0), ("893", 74.2)],
        sme: None,
        telehealth: None,
    },
    Step {
        month: "2025-06",
        headline: "mid-2025: the province is back on its path",
        typical: 78.0,
        laggards: &[("891", 75.0)],
        sme: Some(47.5),
        telehealth: Some(26.0),
    },
    Step {
        month: "2025-12",
        headline: "end of 2025: targets met",
        typical: 80.6,
        laggards: &[("891", 80.2)],
        sme: Some(51.0),
        telehealth: Some(31.0),
    },
];

fn smartphone_reports(step: &Step) -> Vec<Value> {
    DISTRICTS
        .iter()
        .map(|(code, adults)| {
            let share = step.laggards.iter().find(|(c, _)| c == code).map(|(_, s)| *s).unwrap_or(step.typical);
            json!({
                "event_id": format!("dic-smartphone-{}-{code}", step.month),
                "indicator": "smartphone_adults",
                "org_unit": code,
                "period": step.month,
                "numerator": (*adults as f64 * share / 100.0).round() as u64,
                "denominator": adults,
            })
        })
        .collect()
}

fn province(department: &str, indicator: &str, month: &str, value: f64) -> Value {
    json!({
        "event_id": format!("{department}-{indicator}-{month}"),
        "indicator": indicator,
        "org_unit": "89",
        "period": month,
        "value": value,
    })
}

/// Runs the demo with `settings` (NATS URL and prefix, HTTP address), writing to `out`.
pub async fn run(mut settings: Settings, out: &mut (impl Write + Send)) -> anyhow::Result<()> {
    let _local = if nats::reachable(settings.nats.url.expose()) {
        writeln!(out, "Using the NATS server at {}.", settings.nats.url)?;
        None
    } else {
        let local = NatsServer::start().await?;
        writeln!(out, "No NATS server at {}: started a local one at {}.", settings.nats.url, local.url())?;
        settings.nats.url = local.url().into();
        Some(local)
    };
    let dir = tempfile::tempdir()?;
    settings.database.url = format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display()).into();
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%3f");
    settings.nats.prefix = format!("{}_demo_{stamp}", settings.nats.prefix);

    let up = Up::build(settings).await?;
    let (bus, db, catalog) = (up.deps.bus.clone(), up.db.connection().clone(), up.deps.catalog.clone());
    writeln!(
        out,
        "tiendo is up: subjects under `{}.`, SQLite at {}, metrics at http://{}/metrics\n",
        bus.names.prefix(),
        dir.path().join("demo.db").display(),
        up.http_addr()
    )?;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(up.run_until_stopped(shutdown.clone()));

    let alerts = Collector::<Alert>::json(&bus, bus.names.stream_subjects(StreamKind::Alerts)).await?;
    let rejections = Collector::<Rejection>::json(&bus, bus.names.stream_subjects(StreamKind::Rejected)).await?;
    let publish = |department: &str, payload: Value, msg_id: String| {
        let (bus, subject) = (bus.clone(), bus.names.ingest(department));
        async move {
            let mut headers = tiendo_bus::async_nats::HeaderMap::new();
            headers.insert(header::MSG_ID, msg_id.as_str());
            bus.js.publish_with_headers(subject, headers, payload.to_string().into()).await?.await?;
            anyhow::Ok(())
        }
    };

    for (n, step) in STORY.iter().enumerate() {
        writeln!(out, "== {} ==", step.headline)?;
        publish("dic", Value::Array(smartphone_reports(step)), format!("dic-{}", step.month)).await?;
        if let Some(v) = step.sme {
            publish("dpi", province("dpi", "sme_digital_platforms", step.month, v), format!("dpi-{}", step.month))
                .await?;
        }
        if let Some(v) = step.telehealth {
            publish("doh", province("doh", "telehealth_adults", step.month, v), format!("doh-{}", step.month)).await?;
        }
        if n == 0 {
            writeln!(out, "   (a few mistakes, as a clerk would make them)")?;
            publish("gso", province("gso", "smartphone_adults", step.month, 70.0), "gso-oops-1".into()).await?;
            let mut typo = province("dic", "fiber_households", "2023-6", 79.0);
            typo["event_id"] = json!("dic-fiber-2023-6");
            publish("dic", typo, "dic-oops-2".into()).await?;
            let mut too_many = smartphone_reports(step)[0].clone();
            too_many["event_id"] = json!("dic-smartphone-typo");
            too_many["numerator"] = json!(300_000);
            publish("dic", too_many, "dic-oops-3".into()).await?;
        }
        if n == 2 {
            writeln!(out, "   (dic re-sends the whole 2024-06 batch by mistake: same event ids, nothing changes)")?;
            publish("dic", Value::Array(smartphone_reports(step)), format!("dic-{}-again", step.month)).await?;
            writeln!(out, "   (dic revises Long Xuyên's 2024-06 figure: a new event id replaces the old figure)")?;
            let mut revision = smartphone_reports(step)[0].clone();
            revision["event_id"] = json!("dic-smartphone-2024-06-883-rev1");
            revision["numerator"] = json!(161_000);
            publish("dic", revision, "dic-2024-06-rev1".into()).await?;
        }
        idle::wait_idle(&bus, Duration::from_secs(60)).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        for r in rejections.take() {
            writeln!(
                out,
                "   REJECTED  to {:<6} event {:<28} {:<14} {}",
                r.department,
                format!("`{}`", r.event_id),
                r.reason,
                r.detail
            )?;
        }
        for a in alerts.take() {
            let unit = catalog.find_unit(&a.org_unit).map(|u| u.name.as_str()).unwrap_or("");
            writeln!(
                out,
                "   ALERT {:<8} {} @ {} {} ({}): {:.1}% against {:.1}% on the path, gap {:+.1} pp, status {}  [{}]",
                a.state.to_uppercase(),
                a.indicator,
                a.org_unit,
                unit,
                a.period,
                a.value,
                a.expected,
                a.gap,
                a.status,
                a.alert_id
            )?;
        }
        let province = OrgUnitCode::parse("89")?;
        let table: Vec<status::Row> = status::rows(&db, &catalog)
            .await?
            .into_iter()
            .filter(|r| r.org_unit == province || r.status == tiendo_domain::trajectory::Status::Behind)
            .collect();
        writeln!(out, "\n{}", indent(&status::render(&table)))?;
    }

    writeln!(
        out,
        "== final trajectory table (every unit) ==\n{}",
        indent(&status::render(&status::rows(&db, &catalog).await?))
    )?;
    shutdown.cancel();
    running.await.context("joining the services")??;
    for kind in StreamKind::ALL {
        let _ = bus.js.delete_stream(bus.names.stream(kind)).await;
    }
    writeln!(out, "Demo done: its streams were removed. Run `tiendo up` to keep a pipeline running.")?;
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   {l}\n")).collect()
}
