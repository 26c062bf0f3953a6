//! `Statement`: hand-written SQL with typed binds, run through diesel-async as a prepared
//! statement that the connection caches.
//!
//! Most statements of this adapter are not plain CRUD: multi-row inserts from arrays (`unnest`),
//! batch updates, `INSERT ... ON CONFLICT` inside CTEs, window functions. They are written in SQL,
//! with PostgreSQL's own `$1`, `$2`, ... placeholders. diesel's `sql_query` would do, except that it
//! marks itself "unsafe to cache", so every execution would pay an extra round trip to prepare the
//! statement again. `Statement` renders the same SQL and binds but lets diesel-async's statement
//! cache key it by its text, so each distinct statement is prepared once per connection.
//!
//! The text is written in the source (`&'static str`), or derived from such a text by this module:
//! values only ever travel as binds, never spliced into SQL. Every `$` followed by digits is a
//! placeholder, so the statements of this crate use no dollar quoting.

use std::borrow::Cow;
use std::sync::Arc;

use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::{Error as DieselError, QueryResult};
use diesel::sql_types::{BigInt, SqlType, Text, Untyped};

/// Shared, so that a statement can be sent again on another connection (see `tx`).
type Bind<'a> = Arc<dyn QueryFragment<Pg> + Send + Sync + 'a>;

/// SQL text with `$n` placeholders and the values bound to them, in placeholder order.
#[derive(Clone)]
pub(crate) struct Statement<'a> {
    text: Cow<'static, str>,
    binds: Vec<Bind<'a>>,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(text: &'static str) -> Statement<'a> {
        Statement {
            text: Cow::Borrowed(text),
            binds: Vec::new(),
        }
    }

    /// This write (an `UPDATE` or `DELETE` without `RETURNING`), turned into one that the server
    /// refuses, aborting the transaction, unless it changes exactly `expected` rows. The check runs
    /// in PostgreSQL (the `expect_changed` function of the migrations) rather than in this
    /// process, so that a write can be sent in the same pipeline as `COMMIT` (see `tx`).
    pub(crate) fn expecting_changed(self, expected: usize, what: &'static str) -> Statement<'a> {
        let count = self.binds.len();
        let text = format!(
            "WITH changed AS ({} RETURNING 1) SELECT expect_changed(count(*), ${}, ${}) FROM changed",
            self.text,
            count + 1,
            count + 2
        );
        Statement {
            text: Cow::Owned(text),
            binds: self.binds,
        }
        .bind::<BigInt, _>(i64::try_from(expected).unwrap_or(i64::MAX))
        .bind::<Text, _>(what)
    }

    /// Renders the SQL without running it: a statement that cannot be rendered (a placeholder
    /// without a bind) fails here, before it could be left out of a pipeline that commits.
    pub(crate) fn check_renders(&self) -> QueryResult<()> {
        self.to_sql(&mut diesel::pg::PgQueryBuilder::default(), &Pg)
    }

    /// Binds the next placeholder (`$1` first) to `value` as SQL type `ST`.
    pub(crate) fn bind<ST, V>(mut self, value: V) -> Statement<'a>
    where
        ST: SqlType + TypedExpressionType,
        V: AsExpression<ST>,
        V::Expression: QueryFragment<Pg> + Send + Sync + 'a,
    {
        self.binds.push(Arc::new(value.as_expression()));
        self
    }
}

impl QueryFragment<Pg> for Statement<'_> {
    /// Copies the text and, at each `$n`, walks bind `n`. diesel numbers binds in the order they
    /// are walked, so the rendered placeholders follow the text even when one is used twice.
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest: &str = &self.text;
        while let Some(dollar) = rest.find('$') {
            let after = &rest[dollar + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push_sql(&rest[..=dollar]);
                rest = after;
                continue;
            }
            out.push_sql(&rest[..dollar]);
            let number: usize = after[..digits]
                .parse()
                .map_err(|_| DieselError::QueryBuilderError(format!("bad placeholder in: {}", self.text).into()))?;
            let bind = number
                .checked_sub(1)
                .and_then(|index| self.binds.get(index))
                .ok_or_else(|| DieselError::QueryBuilderError(format!("placeholder ${number} has no bind in: {}", self.text).into()))?;
            bind.walk_ast(out.reborrow())?;
            rest = &after[digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// Not a static id: the statement cache keys these statements by their rendered SQL and bind
/// types, which is what lets them be cached at all.
impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows come back by column name (`QueryableByName`), like `sql_query`'s.
impl Query for Statement<'_> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_in_text_order_and_may_repeat() {
        let statement = Statement::new("SELECT $2::text, $1, $2, '$' || 'x' FROM t WHERE a = $1")
            .bind::<BigInt, _>(7_i64)
            .bind::<Text, _>("b");
        let sql = diesel::debug_query::<Pg, _>(&statement).to_string();
        assert!(sql.starts_with("SELECT $1::text, $2, $3, '$' || 'x' FROM t WHERE a = $4"), "{sql}");
    }

    #[test]
    fn an_expected_change_binds_after_the_statement_own_placeholders() {
        let statement = Statement::new("UPDATE t SET a = $2 WHERE id = $1")
            .bind::<BigInt, _>(7_i64)
            .bind::<BigInt, _>(8_i64)
            .expecting_changed(1, "t row");
        let sql = diesel::debug_query::<Pg, _>(&statement).to_string();
        assert!(
            sql.starts_with(
                "WITH changed AS (UPDATE t SET a = $1 WHERE id = $2 RETURNING 1) SELECT expect_changed(count(*), $3, $4) FROM changed"
            ),
            "{sql}"
        );
        assert!(statement.check_renders().is_ok());
    }

    #[test]
    fn a_placeholder_without_a_bind_is_an_error() {
        let statement = Statement::new("SELECT $2").bind::<BigInt, _>(1_i64);
        assert!(statement.check_renders().is_err());
    }
}
