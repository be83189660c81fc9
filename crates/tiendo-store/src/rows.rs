//! Multi-row `INSERT`s written straight from models.
//!
//! sea-orm's `insert_many` turns every model into an active model, then sea-query walks every
//! value to write the statement and copies it into its list of parameters: for a chunk of 256
//! figures, 4,352 values handled three times. That was about 40% of aggregation's own work
//! per observation on SQLite, done while the one connection waits (docs/performance.md,
//! issue 15, change 15). Here sea-query writes the statement for one row once per flush; the
//! rows' placeholders are repeated from it, and each value is read from its model once.
//! Alerting writes its figures, standings and alerts the same way (change 18).
//!
//! On PostgreSQL the rows travel as one parameter, a JSON array of objects read by
//! `json_populate_recordset` (change 28): one statement text for any number of rows, prepared
//! once per connection, instead of a `VALUES` list of 4,352 placeholders that PostgreSQL
//! plans again at every execution (`plan_cache_mode = force_custom_plan`, change 11) and whose
//! parameters it reads one by one. PostgreSQL's CPU per row of `figures` written: 14–16 µs
//! with `VALUES`, about 10 with JSON (about 9 with one array per column and `UNNEST`, which
//! sea-query cannot bind with `NULL` elements).

use std::io::Write as _;

use sea_orm::sea_query::{InsertStatement, OnConflict, Query, ReturningClause, SimpleExpr};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic, Iterable, ModelTrait, QueryResult, Statement, Value,
};

/// An `INSERT` into `E`'s table of every column, with an optional `ON CONFLICT` clause and an
/// optional `RETURNING` clause, as text around its rows: built once, then used for any number
/// of rows.
pub struct Insert<E: EntityTrait> {
    backend: DbBackend,
    /// Up to and including `VALUES ` (SQLite); on PostgreSQL the whole `SELECT` of the rows.
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
        let head = match backend {
            DbBackend::Postgres => {
                let columns: Vec<String> = E::Column::iter().map(|c| format!("\"{}\"", c.as_str())).collect();
                let into = &sql[..values - " VALUES ".len()];
                let table = E::default().table_name().to_owned();
                format!(
                    "{into} SELECT {} FROM json_populate_recordset(NULL::\"{table}\", CAST($1 AS json))",
                    columns.join(", ")
                )
            }
            _ => sql[..values].to_string(),
        };
        Self { backend, head, tail: sql[end..].to_string(), entity: std::marker::PhantomData }
    }

    /// The statement's text for `rows` rows (on PostgreSQL, the same for any number).
    pub fn sql(&self, rows: usize) -> String {
        if self.backend == DbBackend::Postgres {
            return format!("{}{}", self.head, self.tail);
        }
        let columns = E::Column::iter().count();
        let mut sql = String::with_capacity(self.head.len() + self.tail.len() + rows * columns * 5);
        sql.push_str(&self.head);
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push('?');
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
        let statement = Statement::from_sql_and_values(self.backend, self.sql(models.len()), self.values(models)?);
        db.execute(statement).await?;
        Ok(())
    }

    /// Writes `models` in one statement and returns the rows its `RETURNING` clause names.
    pub async fn query<C: ConnectionTrait>(&self, db: &C, models: &[E::Model]) -> Result<Vec<QueryResult>, DbErr> {
        if models.is_empty() {
            return Ok(Vec::new());
        }
        db.query_all(Statement::from_sql_and_values(self.backend, self.sql(models.len()), self.values(models)?)).await
    }

    /// The statement's values: on SQLite row after row, each row's in column order; on
    /// PostgreSQL one JSON text of them all ([`json_rows`]).
    fn values(&self, models: &[E::Model]) -> Result<Vec<Value>, DbErr> {
        if self.backend == DbBackend::Postgres {
            return Ok(vec![Value::String(Some(Box::new(json_rows::<E>(models)?)))]);
        }
        let mut values = Vec::with_capacity(models.len() * E::Column::iter().count());
        for model in models {
            values.extend(E::Column::iter().map(|c| model.get(c)));
        }
        Ok(values)
    }
}

/// `models` as a JSON array of objects keyed by column name, as `json_populate_recordset`
/// reads them. Numbers are written in their shortest form that reads back as the same value;
/// a value JSON cannot carry (a non-finite number; a type no table of tiendo's has) is refused,
/// never written as something else.
fn json_rows<E: EntityTrait>(models: &[E::Model]) -> Result<String, DbErr> {
    let text = |out: &mut Vec<u8>, s: &str| {
        serde_json::to_writer(out, s).map_err(|e| DbErr::Custom(format!("writing a row as JSON: {e}")))
    };
    // Each column's `"name":`, written once.
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for column in E::Column::iter() {
        let mut key = Vec::new();
        text(&mut key, column.as_str())?;
        key.push(b':');
        keys.push(key);
    }
    let mut out: Vec<u8> = Vec::with_capacity(models.len() * keys.len() * 24);
    out.push(b'[');
    for (i, model) in models.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"{" } else { b",{" });
        for (j, (column, key)) in E::Column::iter().zip(&keys).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            // `write!` into a `Vec<u8>` cannot fail.
            match model.get(column) {
                Value::String(Some(s)) => text(&mut out, &s)?,
                Value::Double(Some(x)) if x.is_finite() => {
                    let _ = write!(out, "{x:?}");
                }
                Value::BigInt(Some(n)) => {
                    let _ = write!(out, "{n}");
                }
                Value::Int(Some(n)) => {
                    let _ = write!(out, "{n}");
                }
                Value::String(None) | Value::Double(None) | Value::BigInt(None) | Value::Int(None) => {
                    out.extend_from_slice(b"null")
                }
                other => {
                    let name = column.as_str();
                    return Err(DbErr::Custom(format!("column `{name}`: no JSON form for {other:?}")));
                }
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    String::from_utf8(out).map_err(|e| DbErr::Custom(format!("a row's JSON is not UTF-8: {e}")))
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
        same_statement::<E>(backend, &ours, models, theirs.sql, theirs.values.map(|v| v.0).unwrap_or_default());
    }

    /// On SQLite `ours` is exactly `theirs`, text and values. On PostgreSQL its text is
    /// theirs with the `VALUES` list replaced by the rows read from one JSON parameter, and
    /// that parameter holds, row by row and column by column, the values theirs binds.
    fn same_statement<E: EntityTrait>(
        backend: DbBackend,
        ours: &Insert<E>,
        models: &[E::Model],
        sql: String,
        values: Vec<Value>,
    ) {
        let our_values = ours.values(models).unwrap();
        if backend == DbBackend::Sqlite {
            assert_eq!(ours.sql(models.len()), sql);
            assert_eq!(our_values, values);
            return;
        }
        // Theirs: `INSERT INTO … (…) VALUES (…), … [ON CONFLICT …] [RETURNING …]`.
        let start = sql.find(" VALUES (").unwrap();
        let tail = [" ON CONFLICT ", " RETURNING "].iter().filter_map(|c| sql.find(c)).min().unwrap_or(sql.len());
        let tail = &sql[tail..];
        let table = E::default().table_name().to_owned();
        let columns: Vec<String> = E::Column::iter().map(|c| format!("\"{}\"", c.as_str())).collect();
        let expected = format!(
            "{} SELECT {} FROM json_populate_recordset(NULL::\"{table}\", CAST($1 AS json)){tail}",
            &sql[..start],
            columns.join(", ")
        );
        assert_eq!(ours.sql(models.len()), expected);
        assert_eq!(ours.sql(1), expected, "one text for any number of rows");
        let [Value::String(Some(json))] = our_values.as_slice() else { panic!("one text parameter: {our_values:?}") };
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(json).unwrap();
        let columns: Vec<String> = E::Column::iter().map(|c| c.as_str().to_owned()).collect();
        assert_eq!(rows.len() * columns.len(), values.len());
        for (row, theirs) in rows.iter().zip(values.chunks(columns.len())) {
            assert_eq!(row.len(), columns.len());
            for (column, value) in columns.iter().zip(theirs) {
                assert_eq!(row[column], json_of(value), "{column}");
            }
        }
    }

    fn json_of(v: &Value) -> serde_json::Value {
        match v {
            Value::String(s) => s.as_deref().map_or(serde_json::Value::Null, |s| s.as_str().into()),
            Value::Double(x) => x.map_or(serde_json::Value::Null, Into::into),
            Value::BigInt(n) => n.map_or(serde_json::Value::Null, Into::into),
            Value::Int(n) => n.map_or(serde_json::Value::Null, Into::into),
            other => panic!("no table of tiendo's has {other:?}"),
        }
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
    /// statement and its values are what sea-orm's `insert_many` builds from the same models
    /// (on PostgreSQL, with the rows in one JSON parameter: [`same_statement`]).
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
                assert!(theirs.sql.contains(" WHERE ") && theirs.sql.contains(" RETURNING "), "{}", theirs.sql);
                same_statement(backend, &ours, &models, theirs.sql, theirs.values.map(|v| v.0).unwrap_or_default());
            }
        }
    }
}
