//! Due dates are events on the clock, not on an arrival. Every [`CHECK_EVERY`], for each
//! indicator, the latest period whose reports are due (in the province's time zone): if
//! alerting has not acted on it yet, it claims it and, in the same transaction, sends each
//! owning department one notice on `<prefix>.overdue.<department>` listing the missing units,
//! and judges the roll-ups of that period still `incomplete`, on what came in.
//!
//! Only each indicator's latest due period is looked at: a fresh install, or one that was
//! stopped for months, sends no notice for every period since 2023. The claim (a row keyed by
//! indicator and period) and the outbox make it once and crash-safe: a second instance
//! claiming the same period fails to commit and finds it done on its next pass.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tiendo_bus::names::msg_id;
use tiendo_bus::{Bus, Outgoing};
use tiendo_domain::reporting::{Overdue, Reports};
use tiendo_domain::{Catalog, IndicatorId, Period};
use tiendo_runtime::{encode, Clock, Deps};
use tiendo_stateful::{outbox, ApplyError, Task};
use tiendo_store::sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio_util::sync::CancellationToken;

use crate::judge::{judge_keys, Judging};
use crate::{alert_messages, NAME};

/// How often the clock is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The task that acts on due dates, for as long as the service runs.
pub fn task(deps: &Deps, db: DatabaseConnection, judging: Judging) -> Task {
    let (catalog, bus, clock) = (deps.catalog.clone(), deps.bus.clone(), deps.clock.clone());
    Box::new(move |shutdown: CancellationToken| {
        Box::pin(async move {
            loop {
                if let Err(e) = pass(&db, &catalog, &bus, &clock, judging).await {
                    tracing::warn!(error = %e, "acting on due dates failed; will retry");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(CHECK_EVERY) => {}
                }
            }
        })
    })
}

/// Each indicator's latest period whose reports were due at `now`.
pub fn latest_due(catalog: &Catalog, now: DateTime<Utc>) -> Vec<(IndicatorId, Period)> {
    catalog
        .indicators()
        .map(|i| (i.id.clone(), catalog.clock().latest_due(i.reported, i.calendar.due_days, now)))
        .collect()
}

/// One look at the clock: acts on what fell due and nobody acted on yet.
async fn pass(
    db: &DatabaseConnection,
    catalog: &Arc<Catalog>,
    bus: &Bus,
    clock: &Clock,
    judging: Judging,
) -> anyhow::Result<()> {
    let now = clock();
    let due = latest_due(catalog, now);
    let claimed = tiendo_store::reporting::claimed(db, &due).await?;
    let todo: Vec<(IndicatorId, Period)> = due.into_iter().filter(|d| !claimed.contains(d)).collect();
    if todo.is_empty() {
        return Ok(());
    }
    let tx = tiendo_store::begin(db).await?;
    let mut messages = Vec::new();
    for (indicator, period) in &todo {
        messages.extend(act(&*tx, catalog, bus, judging, indicator, *period, now).await?);
    }
    let enqueued = outbox::enqueue(&*tx, NAME, messages).await?;
    tx.commit().await?;
    tracing::info!(periods = ?todo, "acted on due dates");
    outbox::publish(db, bus, enqueued).await?;
    Ok(())
}

/// Claims `period` of `indicator`, sends its overdue notices and judges its incomplete
/// roll-ups; returns the messages to announce.
async fn act<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    bus: &Bus,
    judging: Judging,
    indicator: &IndicatorId,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Vec<Outgoing>, ApplyError> {
    tiendo_store::reporting::claim(db, indicator, period, now).await?;
    let Some(i) = catalog.indicator(indicator) else { return Ok(vec![]) };
    let own = tiendo_store::reporting::receipts(db, indicator, period).await?;
    let reports = Reports::at(catalog.tree(), &i.calendar, catalog.clock(), period, &own, now);
    let rates = reports.rates();
    let missing: Vec<_> = reports
        .missing()
        .map(|r| {
            let name = catalog.tree().unit_at(&r.unit, period.end()).map(|u| u.name.clone()).unwrap_or_default();
            (r.unit.clone(), name)
        })
        .collect();
    let mut messages = Vec::new();
    if !missing.is_empty() {
        for department in &i.owners {
            let notice = Overdue {
                department: department.clone(),
                indicator: indicator.clone(),
                period,
                due: catalog.clock().due_date(period, i.calendar.due_days),
                expected: rates.expected,
                received: rates.received,
                missing: missing.clone(),
            };
            tiendo_store::reporting::record_notice(db, &notice, now).await?;
            messages.push(encode::json(
                bus.names.overdue(department.as_str()),
                msg_id::overdue(department.as_str(), indicator.as_str(), &period.to_string()),
                &tiendo_proto::convert::overdue(&notice, now),
            )?);
        }
    }
    let keys = tiendo_store::reporting::incomplete(db, indicator, period).await?;
    let judged = judge_keys(db, catalog, judging, &keys, now).await?;
    tiendo_store::alerting::save(db, &judged, now).await?;
    messages.extend(alert_messages(&bus.names, &judged.transitions)?);
    Ok(messages)
}
