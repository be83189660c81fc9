//! `tiendo demo`: a scripted 2023–2025 story of An Giang's departments reporting, from the
//! seed's baselines, across the 1 July 2025 reform (districts, then the old communes, then the
//! units of the new province), to the 2025 plan's verdict on each indicator. It runs through
//! the real pipeline on an embedded SQLite database, printing alerts and rejections as they
//! happen and the status table at each step.
//!
//! It uses its own subject prefix and a fresh database, so it never touches a real
//! deployment's data on the same NATS server, and removes its streams when done.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};
use tiendo_bus::names::header;
use tiendo_bus::StreamKind;
use tiendo_domain::alert::AlertKind;
use tiendo_domain::trajectory::Status;
use tiendo_domain::{Catalog, OrgUnitCode, Period};
use tiendo_proto::v1::{Alert, Rejection};
use tiendo_settings::Settings;
use tiendo_testkit::nats::{self, NatsServer};
use tiendo_testkit::{idle, Collector};
use tokio_util::sync::CancellationToken;

use crate::{status, Up};

/// Adults (15+) per district, for the smartphone counts; a district's communes share its adults.
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

/// Who reports the smartphone figures in a step: the tree changed under the departments.
#[derive(Clone, Copy)]
enum Reporters {
    /// The eleven districts of old An Giang (until the reform).
    Districts,
    /// The 155 communes of old An Giang, as the district level was being wound up.
    OldCommunes,
    /// The 102 units of the new An Giang (code 91), from 1 July 2025.
    NewUnits,
}

/// One step of the story: a month, who reports, and the figures.
struct Step {
    month: &'static str,
    headline: &'static str,
    reporters: Reporters,
    /// Smartphone share (percent) for every unit but the laggards.
    typical: f64,
    /// (district, share) exceptions; a district's communes share its figure.
    laggards: &'static [(&'static str, f64)],
    /// Province-level percentages: (department, indicator, value).
    province: &'static [(&'static str, &'static str, f64)],
}

const STORY: [Step; 8] = [
    Step {
        month: "2023-06",
        headline: "mid-2023: districts report smartphone ownership; first SME and telehealth figures",
        reporters: Reporters::Districts,
        typical: 68.3,
        laggards: &[("891", 67.6)],
        province: &[("dpi", "sme_digital_platforms", 32.5), ("doh", "telehealth_adults", 8.0)],
    },
    Step {
        month: "2023-12",
        headline: "end of 2023: Tri Tôn (891) stalls",
        reporters: Reporters::Districts,
        typical: 70.8,
        laggards: &[("891", 68.0)],
        province: &[],
    },
    Step {
        month: "2024-06",
        headline: "mid-2024: Châu Phú (889) and Chợ Mới (893) stall too; the province falls behind",
        reporters: Reporters::Districts,
        typical: 73.4,
        laggards: &[("891", 68.5), ("889", 68.5), ("893", 67.5)],
        province: &[("dpi", "sme_digital_platforms", 37.0), ("doh", "telehealth_adults", 15.0)],
    },
    Step {
        month: "2024-12",
        headline: "end of 2024: a campaign starts to pay off; the province recovers",
        reporters: Reporters::Districts,
        typical: 75.8,
        laggards: &[("891", 71.0), ("889", 74.0), ("893", 74.2)],
        province: &[("dic", "fiber_households", 79.3), ("dic", "online_public_services_adults", 38.0)],
    },
    Step {
        month: "2025-03",
        headline: "early 2025: the districts are being wound up; the old communes report",
        reporters: Reporters::OldCommunes,
        typical: 77.0,
        laggards: &[("891", 75.6)],
        province: &[],
    },
    Step {
        month: "2025-06",
        headline: "mid-2025, the last month before the reform: the province is back on its path",
        reporters: Reporters::OldCommunes,
        typical: 78.0,
        laggards: &[("891", 77.0)],
        province: &[
            ("dpi", "sme_digital_platforms", 47.5),
            ("doh", "telehealth_adults", 26.0),
            ("dic", "online_public_services_adults", 44.0),
        ],
    },
    Step {
        month: "2025-09",
        headline: "1 July 2025: districts abolished; the 102 units of the new An Giang (91) report",
        reporters: Reporters::NewUnits,
        typical: 79.4,
        laggards: &[],
        province: &[],
    },
    Step {
        month: "2025-12",
        headline: "end of 2025: the deadline; the plan's verdict on each indicator",
        reporters: Reporters::NewUnits,
        typical: 80.6,
        laggards: &[],
        province: &[
            ("dpi", "sme_digital_platforms", 51.0),
            ("doh", "telehealth_adults", 31.0),
            ("dic", "fiber_households", 79.6),
            ("dic", "online_public_services_adults", 50.0),
            ("tax", "einvoice_businesses", 98.5),
        ],
    },
];

/// The smartphone reports of a step, one per reporting unit, as counts.
fn smartphone_reports(catalog: &Catalog, step: &Step) -> anyhow::Result<Vec<Value>> {
    let period: Period = step.month.parse()?;
    let date = period.end();
    let tree = catalog.tree();
    let share_of =
        |district: &str| step.laggards.iter().find(|(c, _)| *c == district).map(|(_, s)| *s).unwrap_or(step.typical);
    let mut units: Vec<(String, u64, f64)> = Vec::new();
    match step.reporters {
        Reporters::Districts => {
            units.extend(DISTRICTS.iter().map(|(code, adults)| (code.to_string(), *adults, share_of(code))));
        }
        Reporters::OldCommunes => {
            for (district, adults) in DISTRICTS {
                let communes = tree.children_at(&OrgUnitCode::parse(district)?, date);
                let each = adults / communes.len().max(1) as u64;
                units.extend(communes.into_iter().map(|c| (c.to_string(), each, share_of(district))));
            }
        }
        Reporters::NewUnits => {
            for unit in tree.children_at(&OrgUnitCode::parse("91")?, date) {
                let adults = 8_000 + unit.as_str().parse::<u64>().unwrap_or(0) % 17 * 1_000;
                units.push((unit.to_string(), adults, step.typical));
            }
        }
    }
    Ok(units
        .into_iter()
        .map(|(code, adults, share)| {
            json!({
                "event_id": format!("dic-smartphone-{}-{code}", step.month),
                "indicator": "smartphone_adults",
                "org_unit": code,
                "period": step.month,
                "numerator": (adults as f64 * share / 100.0).round() as u64,
                "denominator": adults,
            })
        })
        .collect())
}

/// A figure for old An Giang as a whole (code 89: the province, then the territory).
fn province(department: &str, indicator: &str, month: &str, value: f64) -> Value {
    json!({
        "event_id": format!("{department}-{indicator}-{month}"),
        "indicator": indicator,
        "org_unit": "89",
        "period": month,
        "value": value,
    })
}

/// How long the demo keeps its pages up after the story.
pub enum Serve {
    /// Not at all: stop when the story ends.
    No,
    /// Until this future completes (Ctrl-C for `tiendo demo --serve`).
    Until(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
}

/// Runs the demo with `settings` (NATS URL and prefix, HTTP address), writing to `out`; then,
/// with [`Serve::Until`], keeps the pipeline and its pages up until told to stop.
pub async fn run(mut settings: Settings, out: &mut (impl Write + Send), serve: Serve) -> anyhow::Result<()> {
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
    let http = up.http_addr();
    writeln!(
        out,
        "tiendo is up: subjects under `{}.`, SQLite at {}, pages at http://{http}/, metrics at http://{http}/metrics\n",
        bus.names.prefix(),
        dir.path().join("demo.db").display(),
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

    let territory = OrgUnitCode::parse("89")?;
    for (n, step) in STORY.iter().enumerate() {
        writeln!(out, "== {} ==", step.headline)?;
        let reports = smartphone_reports(&catalog, step)?;
        writeln!(out, "   (dic reports smartphone ownership for {} units)", reports.len())?;
        publish("dic", Value::Array(reports.clone()), format!("dic-{}", step.month)).await?;
        for (department, indicator, value) in step.province {
            let msg_id = format!("{department}-{indicator}-{}", step.month);
            publish(department, province(department, indicator, step.month, *value), msg_id).await?;
        }
        if n == 0 {
            writeln!(out, "   (a few mistakes, as a clerk would make them)")?;
            publish("gso", province("gso", "smartphone_adults", step.month, 70.0), "gso-oops-1".into()).await?;
            let mut typo = province("dic", "fiber_households", "2023-6", 79.0);
            typo["event_id"] = json!("dic-fiber-2023-6");
            publish("dic", typo, "dic-oops-2".into()).await?;
            let mut too_many = reports[0].clone();
            too_many["event_id"] = json!("dic-smartphone-typo");
            too_many["numerator"] = json!(300_000);
            publish("dic", too_many, "dic-oops-3".into()).await?;
        }
        if n == 2 {
            writeln!(out, "   (dic re-sends the whole 2024-06 batch by mistake: same event ids, nothing changes)")?;
            publish("dic", Value::Array(reports.clone()), format!("dic-{}-again", step.month)).await?;
            writeln!(out, "   (dic revises Long Xuyên's 2024-06 figure: a new event id replaces the old figure)")?;
            let mut revision = reports[0].clone();
            revision["event_id"] = json!("dic-smartphone-2024-06-883-rev1");
            revision["numerator"] = json!(161_000);
            publish("dic", revision, "dic-2024-06-rev1".into()).await?;
        }
        if n == 6 {
            writeln!(out, "   (a clerk still reports Long Xuyên (883), a district the reform retired)")?;
            let mut retired = reports[0].clone();
            retired["event_id"] = json!("dic-smartphone-2025-09-883");
            retired["org_unit"] = json!("883");
            publish("dic", retired, "dic-2025-09-retired".into()).await?;
        }
        idle::wait_idle(&bus, Duration::from_secs(60)).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        for r in rejections.take() {
            writeln!(
                out,
                "   REJECTED  to {:<6} event {:<28} {:<17} {}",
                r.department,
                format!("`{}`", r.event_id),
                r.reason,
                r.detail
            )?;
        }
        for a in alerts.take() {
            let unit = a
                .period
                .parse::<Period>()
                .ok()
                .zip(OrgUnitCode::parse(&a.org_unit).ok())
                .and_then(|(p, code)| catalog.tree().unit_at(&code, p.end()).map(|u| u.name.clone()))
                .unwrap_or_default();
            if a.kind == AlertKind::Forecast.as_str() {
                let projected = a.projected.map_or_else(|| "–".to_owned(), |p| format!("{p:.1}%"));
                writeln!(
                    out,
                    "   FORECAST {:<8} {} @ {} {} ({}): {:.1}% now; the trend reaches {projected} by the target date, \
                     against {:.1}%: outlook {}, progress {}  [{}]",
                    a.state.to_uppercase(),
                    a.indicator,
                    a.org_unit,
                    unit,
                    a.period,
                    a.value,
                    a.target,
                    a.outlook,
                    a.progress,
                    a.alert_id
                )?;
                continue;
            }
            writeln!(
                out,
                "   ALERT {:<8} {} @ {} {} ({}): {:.1}% against {:.1}%, gap {:+.1} pp, status {}  [{}]",
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
        let table: Vec<status::Row> = status::rows(&db, &catalog)
            .await?
            .into_iter()
            .filter(|r| r.org_unit == territory || r.status == Status::Behind)
            .collect();
        writeln!(out, "\n{}", indent(&status::render(&catalog, &table)))?;
    }

    writeln!(
        out,
        "== final trajectory table (every unit of every plan) ==\n{}",
        indent(&status::render(&catalog, &status::rows(&db, &catalog).await?))
    )?;
    let verdicts: Vec<status::Row> =
        status::rows(&db, &catalog).await?.into_iter().filter(|r| r.org_unit == territory && r.verdict).collect();
    writeln!(out, "== the 2025 plan's verdict, indicator by indicator (old An Giang, 89) ==")?;
    for r in &verdicts {
        let target = r.target.map(|t| format!("{:.1}%", t.get())).unwrap_or_default();
        writeln!(out, "   {:<32} {:>6.1}% against {target:<6}  {}", r.indicator.as_str(), r.value.get(), r.status)?;
    }
    if let Serve::Until(stop) = serve {
        writeln!(out, "\nThe story is told. Open http://{http}/ in a browser (Ctrl-C to stop).")?;
        out.flush()?;
        stop.await;
    }
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
