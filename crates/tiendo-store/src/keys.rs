//! Looking rows up by a batch of keys, in the form each database plans best.

use std::collections::HashMap;

use sea_orm::sea_query::{ArrayType, Condition, Expr, SimpleExpr, ValueType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, IdenStatic, QueryFilter, QueryTrait,
    Statement, Value,
};

/// Rows whose `columns` equal one of `keys`, as SQLite plans best: `(a = ? AND b = ?) OR
/// (a = ? AND b = ?) …`, one index search per key. The row-value form `(a, b) IN ((?, ?), …)`
/// SQLite 3.40 (Debian 12's) plans as a scan of the whole table (25 ms for 128 keys among
/// 77,000 rows, against 0.8 ms for this form). PostgreSQL's form is [`ByKeys`]'.
fn or_of_keys<C, V, const N: usize>(columns: [C; N], keys: impl IntoIterator<Item = [V; N]>) -> Condition
where
    C: ColumnTrait,
    V: Into<Value>,
{
    keys.into_iter().fold(Condition::any(), |any, key| {
        let all = columns.iter().zip(key).fold(Condition::all(), |all, (c, v)| all.add(Expr::col(*c).eq(v)));
        any.add(all)
    })
}

/// Rows whose `column` equals one of `values` (text or 64-bit integers): on PostgreSQL
/// `column = ANY($1)`, one array parameter and one statement text whatever the number of
/// values, prepared once per connection (an `IN` list is a new statement for every length,
/// planned anew: about 2–3 ms for 256 event ids); on SQLite `column IN (?, …)`.
pub fn any_of<C, V>(backend: DbBackend, column: C, values: impl IntoIterator<Item = V>) -> SimpleExpr
where
    C: ColumnTrait,
    V: Into<Value> + ValueType,
{
    let sql_type = match V::array_type() {
        ArrayType::String => Some("text"),
        ArrayType::BigInt => Some("bigint"),
        _ => None,
    };
    match sql_type {
        Some(t) if backend == DbBackend::Postgres => {
            let sql = format!("\"{}\" = ANY(CAST($1 AS {t}[]))", column.as_str());
            Expr::cust_with_values(sql, [array(values)])
        }
        _ => column.is_in(values),
    }
}

/// `values` as one PostgreSQL array parameter.
pub(crate) fn array<V: Into<Value> + ValueType>(values: impl IntoIterator<Item = V>) -> Value {
    let list: Vec<Value> = values.into_iter().map(Into::into).collect();
    Value::Array(V::array_type(), Some(Box::new(list)))
}

/// `E`'s rows whose text `columns`, a unique key of the table, equal one of a batch of keys:
/// each key found through that key's index, however many rows the table has and whatever
/// PostgreSQL's statistics say. The values are bound straight from the keys.
///
/// - SQLite: [`or_of_keys`]' form, its text written once for each number of keys (sea-query
///   writing the `OR` of a few hundred keys again for every chunk was 8% of aggregation's
///   whole time per observation: docs/performance.md, issue 15, change 20).
/// - PostgreSQL: one text for any number of keys, each key joined to at most one row
///   (`UNNEST(…) AS k CROSS JOIN LATERAL (SELECT * … WHERE a = k.c1 AND … LIMIT 1)`), which
///   PostgreSQL can only run as one index search per key. The form used before, `(a, b) IN
///   (SELECT * FROM UNNEST(…))`, left the plan to the statistics, and a table that grew since
///   it was last analysed (a new deployment's first minutes, every benchmark run) got a hash
///   join over the whole table: each lookup read every figure, and the event ids' lookup every
///   observation of the department (issue 15, change 27).
pub struct ByKeys<E: EntityTrait, const N: usize> {
    backend: DbBackend,
    columns: [E::Column; N],
    /// The statement's text by number of keys (0 on PostgreSQL: one text for all).
    texts: HashMap<usize, String>,
}

impl<E: EntityTrait, const N: usize> ByKeys<E, N>
where
    E::Model: FromQueryResult,
{
    pub fn new(backend: DbBackend, columns: [E::Column; N]) -> Self {
        Self { backend, columns, texts: HashMap::new() }
    }

    /// The rows of `keys` that exist (callers keep to a few hundred keys per call).
    pub async fn all<C: ConnectionTrait>(&mut self, db: &C, keys: &[[String; N]]) -> Result<Vec<E::Model>, DbErr> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        E::find().from_raw_sql(self.statement(keys)).all(db).await
    }

    /// The statement for `keys` (what [`ByKeys::all`] runs; public so that a test can ask
    /// PostgreSQL how it plans it): its text, and the values in the order of its placeholders.
    pub fn statement(&mut self, keys: &[[String; N]]) -> Statement {
        let (backend, columns) = (self.backend, self.columns);
        let postgres = backend == DbBackend::Postgres;
        let sql = self.texts.entry(if postgres { 0 } else { keys.len() }).or_insert_with(|| {
            if postgres {
                return lateral::<E, N>(columns);
            }
            let blank = std::iter::repeat_n([""; N], keys.len());
            E::find().filter(or_of_keys(columns, blank)).build(backend).sql
        });
        let values: Vec<Value> = if postgres {
            (0..N).map(|c| array(keys.iter().map(|k| k[c].clone()))).collect()
        } else {
            keys.iter().flat_map(|k| k.iter().cloned().map(Value::from)).collect()
        };
        Statement::from_sql_and_values(backend, sql.clone(), values)
    }
}

/// PostgreSQL's text for [`ByKeys`]: `$1`…`$N` are one text array per column.
fn lateral<E: EntityTrait, const N: usize>(columns: [E::Column; N]) -> String {
    let arrays: Vec<String> = (1..=N).map(|i| format!("CAST(${i} AS text[])")).collect();
    let names: Vec<String> = (1..=N).map(|i| format!("c{i}")).collect();
    let matches: Vec<String> = columns.iter().zip(&names).map(|(c, k)| format!("\"{}\" = k.{k}", c.as_str())).collect();
    format!(
        "SELECT r.* FROM UNNEST({}) AS k({}) CROSS JOIN LATERAL (SELECT * FROM \"{}\" WHERE {} LIMIT 1) AS r",
        arrays.join(", "),
        names.join(", "),
        E::default().table_name(),
        matches.join(" AND "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::figure;

    /// For any number of keys: on SQLite `ByKeys`' statement is exactly the one sea-orm builds
    /// from the same keys with [`or_of_keys`], text and values, the text written once per number
    /// of keys; on PostgreSQL one text in all, each key searched on its own, and one array of
    /// each column's values.
    #[test]
    fn a_lookup_is_the_statement_sea_orm_builds_on_sqlite_and_one_search_per_key_on_postgres() {
        use figure::Column as F;
        let columns = [F::Indicator, F::OrgUnit, F::Period];
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let mut lookup = ByKeys::<figure::Entity, 3>::new(backend, columns);
            for n in [1, 2, 128, 5, 128] {
                let keys: Vec<[String; 3]> = (0..n)
                    .map(|i| [format!("indicator_{}", i % 8), format!("{i}"), format!("2025-{:02}", i % 12 + 1)])
                    .collect();
                let ours = lookup.statement(&keys);
                if backend == DbBackend::Postgres {
                    let lateral = "SELECT r.* FROM UNNEST(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[])) \
                                   AS k(c1, c2, c3) CROSS JOIN LATERAL (SELECT * FROM \"figures\" WHERE \
                                   \"indicator\" = k.c1 AND \"org_unit\" = k.c2 AND \"period\" = k.c3 LIMIT 1) AS r";
                    assert_eq!(ours.sql, lateral);
                    let arrays = (0..3).map(|c| array(keys.iter().map(|k| k[c].clone()))).collect();
                    assert_eq!(ours.values, Some(sea_orm::Values(arrays)), "{n} keys");
                    continue;
                }
                let theirs = figure::Entity::find().filter(or_of_keys(columns, keys.iter().cloned())).build(backend);
                assert_eq!(ours.sql, theirs.sql, "{backend:?}, {n} keys");
                assert_eq!(ours.values, theirs.values, "{backend:?}, {n} keys");
            }
            let texts = if backend == DbBackend::Postgres { 1 } else { 4 };
            assert_eq!(lookup.texts.len(), texts, "{backend:?}");
        }
    }
}
