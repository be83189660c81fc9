//! Who has reported: each unit's receipts of one indicator and period (read from the
//! observations aggregation stored, with the time ingest received each), the due periods
//! alerting has acted on, and the overdue notices it sent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tiendo_domain::reporting::{Overdue, Receipt};
use tiendo_domain::trajectory::Status;
use tiendo_domain::{IndicatorId, OrgUnitCode, Period, PlanId, PlanKey};

use crate::entity::{due_period, observation, overdue_notice, standing};
use crate::error::StoreError;
use crate::keys::ByKeys;
use crate::{parse_time, time, ROWS_PER_STATEMENT};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Each unit's first and last receipt of its own reports of `indicator` for `period`.
pub async fn receipts<C: ConnectionTrait>(
    db: &C,
    indicator: &IndicatorId,
    period: Period,
) -> Result<HashMap<OrgUnitCode, Receipt>, StoreError> {
    use observation::Column as O;
    let rows: Vec<(String, String)> = observation::Entity::find()
        .select_only()
        .columns([O::OrgUnit, O::ReceivedAt])
        .filter(O::Indicator.eq(indicator.as_str()))
        .filter(O::Period.eq(period.to_string()))
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<OrgUnitCode, Receipt> = HashMap::new();
    for (unit, at) in rows {
        let unit = OrgUnitCode::parse(&unit).map_err(corrupt)?;
        let at = parse_time(&at)?;
        out.entry(unit)
            .and_modify(|r| {
                r.first = r.first.min(at);
                r.last = r.last.max(at);
            })
            .or_insert(Receipt { first: at, last: at });
    }
    Ok(out)
}

/// Which of these (indicator, period) alerting has acted on the due date of, each found
/// through the table's primary key ([`ByKeys`]).
pub async fn claimed<C: ConnectionTrait>(
    db: &C,
    due: &[(IndicatorId, Period)],
) -> Result<Vec<(IndicatorId, Period)>, StoreError> {
    use due_period::Column as D;
    let mut lookup = ByKeys::<due_period::Entity, 2>::new(db.get_database_backend(), [D::Indicator, D::Period]);
    let mut out = Vec::new();
    for chunk in due.chunks(ROWS_PER_STATEMENT / 2) {
        let keys: Vec<[String; 2]> = chunk.iter().map(|(i, p)| [i.to_string(), p.to_string()]).collect();
        for m in lookup.all(db, &keys).await? {
            out.push((IndicatorId::parse(&m.indicator).map_err(corrupt)?, m.period.parse().map_err(corrupt)?));
        }
    }
    Ok(out)
}

/// Marks `period` of `indicator` as acted on, inside the caller's transaction. A second
/// instance claiming the same one at the same time fails to commit (the key is taken) and
/// finds it claimed on its next pass.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    indicator: &IndicatorId,
    period: Period,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    due_period::Entity::insert(due_period::ActiveModel {
        indicator: Set(indicator.to_string()),
        period: Set(period.to_string()),
        processed_at: Set(time(at)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Records an overdue notice sent at `at`.
pub async fn record_notice<C: ConnectionTrait>(db: &C, o: &Overdue, at: DateTime<Utc>) -> Result<(), StoreError> {
    use overdue_notice::Column as N;
    let missing: Vec<String> = o.missing.iter().map(|(code, _)| code.to_string()).collect();
    overdue_notice::Entity::insert(overdue_notice::ActiveModel {
        department: Set(o.department.to_string()),
        indicator: Set(o.indicator.to_string()),
        period: Set(o.period.to_string()),
        due: Set(o.due.to_string()),
        expected: Set(o.expected as i64),
        received: Set(o.received as i64),
        missing: Set(missing.join(" ")),
        at: Set(time(at)),
    })
    .on_conflict(OnConflict::columns([N::Department, N::Indicator, N::Period]).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A notice as recorded: the missing units by code only.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub department: String,
    pub indicator: IndicatorId,
    pub period: Period,
    pub due: String,
    pub expected: u64,
    pub received: u64,
    pub missing: Vec<OrgUnitCode>,
    pub at: DateTime<Utc>,
}

/// Every notice sent to `department` (all departments when `None`), latest first.
pub async fn notices<C: ConnectionTrait>(db: &C, department: Option<&str>) -> Result<Vec<Notice>, StoreError> {
    use overdue_notice::Column as N;
    let mut q = overdue_notice::Entity::find().order_by_desc(N::At).order_by_asc(N::Indicator);
    if let Some(d) = department {
        q = q.filter(N::Department.eq(d));
    }
    q.all(db)
        .await?
        .into_iter()
        .map(|m| {
            Ok(Notice {
                indicator: IndicatorId::parse(&m.indicator).map_err(corrupt)?,
                period: m.period.parse().map_err(corrupt)?,
                missing: m
                    .missing
                    .split_whitespace()
                    .map(|c| OrgUnitCode::parse(c).map_err(corrupt))
                    .collect::<Result<_, _>>()?,
                at: parse_time(&m.at)?,
                department: m.department,
                due: m.due,
                expected: m.expected as u64,
                received: m.received as u64,
            })
        })
        .collect()
}

/// The keys whose standing on `period` of `indicator` is `incomplete`: to judge once the
/// period's reports are due.
pub async fn incomplete<C: ConnectionTrait>(
    db: &C,
    indicator: &IndicatorId,
    period: Period,
) -> Result<Vec<PlanKey>, StoreError> {
    use standing::Column as S;
    let rows: Vec<(String, String)> = standing::Entity::find()
        .select_only()
        .columns([S::Plan, S::OrgUnit])
        .filter(S::Indicator.eq(indicator.as_str()))
        .filter(S::Period.eq(period.to_string()))
        .filter(S::Status.eq(Status::Incomplete.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(p, u)| {
            Ok(PlanKey {
                plan: PlanId::parse(&p).map_err(corrupt)?,
                indicator: indicator.clone(),
                org_unit: OrgUnitCode::parse(&u).map_err(corrupt)?,
            })
        })
        .collect()
}
