//! Multi-row `INSERT`s written straight from models.
//!
//! sea-orm's `insert_many` turns every model into an active model, then sea-query walks every
//! value to write the statement and copies it into its list of parameters: for a chunk of 256
//! figures, 4,352 values handled three times. That was about 40% of aggregation's own work
//! per observation on SQLite, done while the one connection waits (docs/performance.md,
//! issue 15, change 15). Here sea-query writes the statement for one row once per flush; the
//! rows' placeholders are repeated from it, and each value is read from its model once.
//! Alerting writes its figures, standings and alerts the same way (change 18).

use std::fmt::Write as _;

use sea_orm::sea_query::{InsertStatement, OnConflict, Query, ReturningClause, SimpleExpr};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Iterable, ModelTrait, QueryResult, Statement, Value};

/// An `INSERT` into `E`'s table of every column, with an optional `ON CONFLICT` clause and an
/// optional `RETURNING` clause, as text around its rows: built once, then used for any number
/// of rows.
pub struct Insert<E: EntityTrait> {
    backend: DbBackend,
    /// Up to and including `VALUES `.
    head: String,
    /// After the rows: the `ON CONFLICT` and `RETURNING` clauses, if any.
    tail: String,
    entity: std::marker::PhantomData<E>,
}

impl<E: EntityTrait> Insert<E> {
    /// The statement's text for `backend`, as sea-query writes it for one row.
    pub fn new(backend: DbBackend, on_conflict: Option<OnConflict>) -> Self {
        Self::returning(backend, on_conflict, None)
    }

    /// The same, with a `RETURNING` clause: run it with [`Insert::query`].
    pub fn returning(backend: DbBackend, on_conflict: Option<OnConflict>, returning: Option<ReturningClause>) -> Self {
        let sql = backend.build(&statement::<E>(1, on_conflict, returning)).sql;
        // One row of placeholders only: `(?, ?, …)` or `($1, $2, …)`, no parentheses inside.
        let values = sql.find(" VALUES (").map(|i| i + " VALUES ".len());
        let end = values.and_then(|v| sql[v..].find(')').map(|e| v + e + 1));
        let (Some(values), Some(end)) = (values, end) else {
            unreachable!("sea-query writes an INSERT as `… VALUES (…)…`: {sql}")
        };
        Self {
            backend,
            head: sql[..values].to_string(),
            tail: sql[end..].to_string(),
            entity: std::marker::PhantomData,
        }
    }

    /// The statement's text for `rows` rows.
    pub fn sql(&self, rows: usize) -> String {
        let columns = E::Column::iter().count();
        let mut sql = String::with_capacity(self.head.len() + self.tail.len() + rows * columns * 5);
        sql.push_str(&self.head);
        let mut n = 0;
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                match self.backend {
                    DbBackend::Postgres => {
                        let _ = write!(sql, "${n}");
                    }
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql.push_str(&self.tail);
        sql
    }

    /// Writes `models` in one statement (callers keep to [`crate::ROWS_PER_STATEMENT`]).
    pub async fn execute<C: ConnectionTrait>(&self, db: &C, models: &[E::Model]) -> Result<(), DbErr> {
        if models.is_empty() {
            return Ok(());
        }
        let statement = Statement::from_sql_and_values(self.backend, self.sql(models.len()), self.values(models));
        db.execute(statement).await?;
        Ok(())
    }

    /// Writes `models` in one statement and returns the rows its `RETURNING` clause names.
    pub async fn query<C: ConnectionTrait>(&self, db: &C, models: &[E::Model]) -> Result<Vec<QueryResult>, DbErr> {
        if models.is_empty() {
            return Ok(Vec::new());
        }
        db.query_all(Statement::from_sql_and_values(self.backend, self.sql(models.len()), self.values(models))).await
    }

    /// The statement's values, row after row, each row's in column order.
    fn values(&self, models: &[E::Model]) -> Vec<Value> {
        let mut values = Vec::with_capacity(models.len() * E::Column::iter().count());
        for model in models {
            values.extend(E::Column::iter().map(|c| model.get(c)));
        }
        values
    }
}

/// sea-query's statement for `rows` rows of placeholders (the values are never sent).
fn statement<E: EntityTrait>(
    rows: usize,
    on_conflict: Option<OnConflict>,
    returning: Option<ReturningClause>,
) -> InsertStatement {
    let mut insert = Query::insert();
    insert.into_table(E::default()).columns(E::Column::iter());
    for _ in 0..rows {
        insert.values_panic(E::Column::iter().map(|_| SimpleExpr::Value(Value::Int(Some(0)))));
    }
    if let Some(on_conflict) = on_conflict {
        insert.on_conflict(on_conflict);
    }
    if let Some(returning) = returning {
        insert.returning(returning);
    }
    insert
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::OnConflict;
    use sea_orm::{ActiveModelTrait, DbBackend, IntoActiveModel, QueryTrait};

    use super::*;
    use crate::entity::{alert, alert_figure, figure, observation, standing};

    fn upsert() -> OnConflict {
        use figure::Column::*;
        OnConflict::columns([Indicator, OrgUnit, Period]).update_columns([SumNumerator, Version]).to_owned()
    }

    fn figure(i: usize) -> figure::Model {
        figure::Model {
            indicator: "smartphone_adults".into(),
            org_unit: format!("{i}"),
            period: "2025-06".into(),
            period_end: "2025-06-30".into(),
            direct_value: i.is_multiple_of(2).then_some(0.5),
            direct_numerator: Some(1),
            direct_denominator: None,
            direct_event_id: Some(format!("e{i}")),
            direct_department: None,
            direct_seq: Some(7),
            direct_index: Some(0),
            sum_numerator: 3,
            sum_denominator: 4,
            covered: 1,
            value_only: 0,
            version: 2,
            updated_at: "2025-07-01T00:00:00+00:00".into(),
        }
    }

    fn observation(i: usize) -> observation::Model {
        observation::Model {
            department: "dic".into(),
            event_id: format!("e{i}"),
            indicator: "smartphone_adults".into(),
            org_unit: "89".into(),
            period: "2025-06".into(),
            value: 0.5,
            numerator: Some(1),
            denominator: Some(2),
            source_seq: 7,
            source_index: i as i32,
            received_at: "2025-07-01T00:00:00+00:00".into(),
            applied_at: "2025-07-01T00:00:01+00:00".into(),
            note: None,
        }
    }

    /// `Insert`'s text and values for `models` are exactly what `insert_many` builds.
    fn same_as_insert_many<E: EntityTrait>(backend: DbBackend, models: &[E::Model], on_conflict: Option<OnConflict>)
    where
        E::Model: IntoActiveModel<E::ActiveModel> + Clone,
    {
        let mut theirs = E::insert_many(models.iter().map(|m| m.clone().into_active_model().reset_all()));
        if let Some(on_conflict) = on_conflict.clone() {
            theirs = theirs.on_conflict(on_conflict);
        }
        let theirs = theirs.build(backend);
        let ours = Insert::<E>::new(backend, on_conflict);
        assert_eq!(ours.sql(models.len()), theirs.sql);
        assert_eq!(Some(ours.values(models)), theirs.values.map(|v| v.0));
    }

    fn standing(i: usize) -> standing::Model {
        standing::Model {
            plan: "ke-hoach-2025".into(),
            indicator: "smartphone_adults".into(),
            org_unit: format!("{i}"),
            period: "2025-06".into(),
            period_end: "2025-06-30".into(),
            value: 71.5,
            expected: i.is_multiple_of(2).then_some(75.0),
            gap: Some(-3.5),
            target: None,
            status: "behind".into(),
            coverage: Some(0.9),
            progress: Some("moderate_progress".into()),
            score: None,
            projected: Some(78.0),
            expected_attainment: i.is_multiple_of(3).then(|| "2026-03-31".into()),
            outlook: Some("cloudy".into()),
            judged_at: "2025-07-01T00:00:00+00:00".into(),
        }
    }

    fn alert(i: usize) -> alert::Model {
        alert::Model {
            alert_id: format!("ke-hoach-2025:smartphone_adults:{i}:trajectory"),
            plan: "ke-hoach-2025".into(),
            indicator: "smartphone_adults".into(),
            org_unit: format!("{i}"),
            kind: "trajectory".into(),
            state: "firing".into(),
            episodes: i as i64,
            fired_at: "2025-07-01T00:00:00+00:00".into(),
            resolved_at: None,
        }
    }

    fn alert_figure(i: usize) -> alert_figure::Model {
        alert_figure::Model {
            indicator: "smartphone_adults".into(),
            org_unit: format!("{i}"),
            period: "2025-06".into(),
            period_end: "2025-06-30".into(),
            value: i.is_multiple_of(2).then_some(50.5),
            version: i as i64,
        }
    }

    /// For any number of rows, on both databases, with and without a conflict clause, the
    /// statement and its values are exactly what sea-orm's `insert_many` builds from the
    /// same models.
    #[test]
    fn a_statement_is_the_one_sea_orms_insert_many_builds() {
        use alert::Column as A;
        use standing::Column as S;
        let refire = OnConflict::column(A::AlertId).update_columns([A::State, A::Episodes]).to_owned();
        let restand = OnConflict::columns([S::Plan, S::Indicator, S::OrgUnit]).update_columns([S::Value]).to_owned();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for rows in [1, 2, 3, 17, 256] {
                let figures: Vec<_> = (0..rows).map(figure).collect();
                same_as_insert_many::<figure::Entity>(backend, &figures, Some(upsert()));
                let observations: Vec<_> = (0..rows).map(observation).collect();
                same_as_insert_many::<observation::Entity>(backend, &observations, None);
                let standings: Vec<_> = (0..rows).map(standing).collect();
                same_as_insert_many::<standing::Entity>(backend, &standings, Some(restand.clone()));
                let alerts: Vec<_> = (0..rows).map(alert).collect();
                same_as_insert_many::<alert::Entity>(backend, &alerts, Some(refire.clone()));
            }
        }
    }

    /// With a `RETURNING` clause and a conditional update, the statement is the one sea-query
    /// writes from the same values, the clauses after the rows included.
    #[test]
    fn a_statement_with_returning_is_the_one_sea_query_builds() {
        use alert_figure::Column as F;
        use sea_orm::sea_query::{Alias, Expr};
        let newer = || {
            OnConflict::columns([F::Indicator, F::OrgUnit, F::Period])
                .update_columns([F::Value, F::Version])
                .action_and_where(
                    Expr::col((Alias::new("excluded"), F::Version)).gt(Expr::col((alert_figure::Entity, F::Version))),
                )
                .to_owned()
        };
        let returning = || Query::returning().columns([F::Indicator, F::OrgUnit, F::Period]);
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for rows in [1, 2, 256] {
                let models: Vec<_> = (0..rows).map(alert_figure).collect();
                let mut theirs = Query::insert();
                theirs.into_table(alert_figure::Entity).columns(F::iter());
                for m in &models {
                    theirs.values_panic(F::iter().map(|c| SimpleExpr::Value(m.get(c))));
                }
                theirs.on_conflict(newer()).returning(returning());
                let theirs = backend.build(&theirs);
                let ours = Insert::<alert_figure::Entity>::returning(backend, Some(newer()), Some(returning()));
                assert_eq!(ours.sql(models.len()), theirs.sql);
                assert_eq!(Some(ours.values(&models)), theirs.values.map(|v| v.0));
                assert!(theirs.sql.contains(" WHERE ") && theirs.sql.contains(" RETURNING "), "{}", theirs.sql);
            }
        }
    }
}
