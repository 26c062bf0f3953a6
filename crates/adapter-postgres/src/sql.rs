//! `Statement`: hand-written SQL with typed binds, run through diesel-async as a prepared
//! statement that the connection caches. A statement is a `Read` or a `Write`, and `PgTx` takes
//! each only where it belongs: only a read may travel with `BEGIN`, only a write may be deferred.
//!
//! Most statements of this adapter are not plain CRUD: multi-row inserts from arrays (`unnest`),
//! batch updates, `INSERT ... ON CONFLICT` inside CTEs, window functions. They are written in SQL,
//! with PostgreSQL's own `$1`, `$2`, ... placeholders. diesel's `sql_query` would do, except that it
//! marks itself "unsafe to cache", so every execution would pay an extra round trip to prepare the
//! statement again. `Statement` renders the same SQL and binds but lets diesel-async's statement
//! cache key it by its text, so each distinct statement is prepared once per connection.
//!
//! Each value is serialised to PostgreSQL's binary format when it is bound, not when the statement
//! is sent: a value that cannot be serialised makes the statement fail (`Statement::check`) before
//! any of it reaches the server, which is what lets `PgTx` defer writes and send them in the
//! pipeline of `COMMIT` (a write that failed to serialise there would be left out of a transaction
//! that commits). Sending then only copies the bytes.
//!
//! The text is written in the source (`&'static str`), or derived from such a text by this module:
//! values only ever travel as binds, never spliced into SQL. Every `$` followed by digits is a
//! placeholder, so the statements of this crate use no dollar quoting.

use std::borrow::Cow;
use std::io::Write as _;
use std::marker::PhantomData;
use std::sync::Arc;

use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::pg::{FailedToLookupTypeError, Pg, PgMetadataCacheKey, PgMetadataLookup, PgTypeMetadata};
use diesel::query_builder::bind_collector::RawBytesBindCollector;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::{Error as DieselError, QueryResult};
use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::{BigInt, HasSqlType, SqlType, Text, Untyped};

/// A statement that only reads (a `SELECT`, possibly locking rows): the only kind that may be sent
/// in one pipeline with `BEGIN`.
pub(crate) type Read = Statement<Reads>;
/// A statement that writes: sent at once, or deferred to the next read or the commit.
pub(crate) type Write = Statement<Writes>;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Reads;
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writes;
/// `BEGIN`, `COMMIT` and the like, which `PgTx` and the store send themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Control;

/// A serialised value, shared so that a statement can be sent again on another connection.
type Bind = Arc<dyn QueryFragment<Pg> + Send + Sync>;

/// SQL text with `$n` placeholders and the values bound to them, in placeholder order.
pub(crate) struct Statement<Kind> {
    text: Cow<'static, str>,
    binds: Vec<Bind>,
    /// The first value that could not be serialised; the statement is then never sent.
    unserialisable: Option<Arc<str>>,
    /// Planned for its values each time it runs rather than prepared once per connection.
    planned_each_time: bool,
    kind: PhantomData<Kind>,
}

impl<Kind> Clone for Statement<Kind> {
    fn clone(&self) -> Self {
        Statement {
            text: self.text.clone(),
            binds: self.binds.clone(),
            unserialisable: self.unserialisable.clone(),
            planned_each_time: self.planned_each_time,
            kind: PhantomData,
        }
    }
}

impl Statement<Reads> {
    /// A read. Its text must not write (checked in debug builds, which every test runs).
    pub(crate) fn new(text: &'static str) -> Read {
        debug_assert!(reads_only(text), "a Read that writes: {text}");
        Statement::with_text(text)
    }
}

impl Statement<Writes> {
    pub(crate) fn new(text: &'static str) -> Write {
        Statement::with_text(text)
    }

    /// This write (an `UPDATE` or `DELETE` without `RETURNING`), turned into one that the server
    /// refuses, aborting the transaction, unless it changes exactly `expected` rows. The check runs
    /// in PostgreSQL (the `expect_changed` function of the migrations) rather than in this
    /// process, so that a write can be sent in the same pipeline as `COMMIT` (see `tx`).
    pub(crate) fn expecting_changed(self, expected: usize, what: &'static str) -> Write {
        let count = self.binds.len();
        let text = format!(
            "WITH changed AS ({} RETURNING 1) SELECT expect_changed(count(*), ${}, ${}) FROM changed",
            self.text,
            count + 1,
            count + 2
        );
        Statement {
            text: Cow::Owned(text),
            ..self
        }
        .bind::<BigInt, _>(i64::try_from(expected).unwrap_or(i64::MAX))
        .bind::<Text, _>(what)
    }
}

impl Statement<Control> {
    pub(crate) fn control(text: &'static str) -> Statement<Control> {
        Statement::with_text(text)
    }
}

impl<Kind> Statement<Kind> {
    fn with_text(text: &'static str) -> Statement<Kind> {
        Statement {
            text: Cow::Borrowed(text),
            binds: Vec::new(),
            unserialisable: None,
            planned_each_time: false,
            kind: PhantomData,
        }
    }

    /// This statement, planned for the values it is sent with each time instead of prepared once
    /// per connection. A prepared statement settles on a generic plan after five runs and keeps
    /// it while the connection lives (or until the table is analysed): for a statement over a
    /// table that grows from empty within minutes, such as the webhook deliveries, that plan scans
    /// the table it once found small for every batch. For the relay's batch statements, which run
    /// a few times a second with many rows each, an extra round trip to prepare costs far less.
    pub(crate) fn planned_each_time(self) -> Statement<Kind> {
        Statement {
            planned_each_time: true,
            ..self
        }
    }

    /// Binds the next placeholder (`$1` first) to `value` as SQL type `ST`, serialising it now.
    pub(crate) fn bind<ST, V>(mut self, value: V) -> Statement<Kind>
    where
        ST: SqlType + TypedExpressionType + Send + Sync + 'static,
        Pg: HasSqlType<ST>,
        V: AsExpression<ST>,
        V::Expression: QueryFragment<Pg>,
    {
        let serialised = match serialise(&value.as_expression()) {
            Ok(serialised) => serialised,
            Err(error) => {
                let placeholder = self.binds.len() + 1;
                self.unserialisable
                    .get_or_insert_with(|| format!("${placeholder} could not be serialised: {error}").into());
                RawValue(None)
            }
        };
        self.binds.push(Arc::new(Serialised::<ST> {
            value: serialised,
            sql_type: PhantomData,
        }));
        self
    }

    /// Whether the statement can be sent: every value serialised, and the text renders (a
    /// placeholder without a bind does not). Checked before anything of it is sent.
    pub(crate) fn check(&self) -> QueryResult<()> {
        if let Some(reason) = &self.unserialisable {
            return Err(DieselError::SerializationError(reason.to_string().into()));
        }
        self.to_sql(&mut diesel::pg::PgQueryBuilder::default(), &Pg)
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// Whether a statement's text only reads: a `SELECT` (or `WITH ... SELECT`) without `INSERT`,
/// `UPDATE` (other than a `FOR ... UPDATE` lock), `DELETE`, `MERGE` or `TRUNCATE`.
fn reads_only(text: &str) -> bool {
    let upper = text.to_ascii_uppercase().replace("FOR NO KEY UPDATE", "").replace("FOR UPDATE", "");
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    matches!(words.first(), Some(&"SELECT" | &"WITH"))
        && !words
            .iter()
            .any(|word| matches!(*word, "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE"))
}

/// Serialises one bound value as diesel would when sending it.
fn serialise(expression: &impl QueryFragment<Pg>) -> QueryResult<RawValue> {
    let mut collector = RawBytesBindCollector::<Pg>::new();
    expression.collect_binds(&mut collector, &mut BuiltInTypesOnly, &Pg)?;
    match (collector.binds.pop(), collector.binds.is_empty()) {
        (Some(bytes), true) => Ok(RawValue(bytes)),
        _ => Err(DieselError::SerializationError("a bind is not exactly one value".into())),
    }
}

/// The metadata lookup for serialising at bind time: the binds of this crate are of PostgreSQL's
/// built-in types, whose type ids are known without asking the server; any other fails.
struct BuiltInTypesOnly;

impl PgMetadataLookup for BuiltInTypesOnly {
    fn lookup_type(&mut self, type_name: &str, schema: Option<&str>) -> PgTypeMetadata {
        let key = PgMetadataCacheKey::new(schema.map(|s| Cow::Owned(s.to_owned())), Cow::Owned(type_name.to_owned()));
        PgTypeMetadata::from_result(Err(FailedToLookupTypeError::new(key)))
    }
}

/// A value in PostgreSQL's binary format; `None` is NULL.
#[derive(Debug)]
struct RawValue(Option<Vec<u8>>);

impl<ST> ToSql<ST, Pg> for RawValue
where
    Pg: HasSqlType<ST>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        match &self.0 {
            Some(bytes) => {
                out.write_all(bytes)?;
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }
}

/// A serialised value of SQL type `ST`, sent as a bind of that type.
struct Serialised<ST> {
    value: RawValue,
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST> QueryFragment<Pg> for Serialised<ST>
where
    Pg: HasSqlType<ST>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, RawValue>(&self.value)
    }
}

impl<Kind> QueryFragment<Pg> for Statement<Kind> {
    /// Copies the text and, at each `$n`, walks bind `n`. diesel numbers binds in the order they
    /// are walked, so the rendered placeholders follow the text even when one is used twice.
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if self.planned_each_time {
            out.unsafe_to_cache_prepared();
        }
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
impl<Kind> QueryId for Statement<Kind> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows come back by column name (`QueryableByName`), like `sql_query`'s.
impl<Kind> Query for Statement<Kind> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{Array, Nullable, Uuid as SqlUuid};

    use super::*;

    #[test]
    fn placeholders_render_in_text_order_and_may_repeat() {
        let statement = Read::new("SELECT $2::text, $1, $2, '$' || 'x' FROM t WHERE a = $1")
            .bind::<BigInt, _>(7_i64)
            .bind::<Text, _>("b");
        let sql = diesel::debug_query::<Pg, _>(&statement).to_string();
        assert!(sql.starts_with("SELECT $1::text, $2, $3, '$' || 'x' FROM t WHERE a = $4"), "{sql}");
    }

    #[test]
    fn an_expected_change_binds_after_the_statement_own_placeholders() {
        let statement = Write::new("UPDATE t SET a = $2 WHERE id = $1")
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
        assert!(statement.check().is_ok());
    }

    #[test]
    fn a_placeholder_without_a_bind_is_an_error() {
        let statement = Read::new("SELECT $2").bind::<BigInt, _>(1_i64);
        assert!(statement.check().is_err());
    }

    #[test]
    fn values_are_serialised_when_bound_as_diesel_would_send_them() {
        let uuid = uuid::Uuid::from_u128(7);
        let statement = Write::new("INSERT INTO t VALUES ($1, $2, $3, $4)")
            .bind::<BigInt, _>(258_i64)
            .bind::<Nullable<Text>, _>(None::<String>)
            .bind::<Array<SqlUuid>, _>(vec![uuid])
            .bind::<Text, _>("é");
        assert!(statement.check().is_ok());
        let mut collector = RawBytesBindCollector::<Pg>::new();
        statement
            .collect_binds(&mut collector, &mut BuiltInTypesOnly, &Pg)
            .expect("collect");
        assert_eq!(collector.binds[0], Some(258_i64.to_be_bytes().to_vec()));
        assert_eq!(collector.binds[1], None);
        assert_eq!(collector.binds[3], Some("é".as_bytes().to_vec()));
        let array = collector.binds[2].as_ref().expect("an array");
        assert!(array.ends_with(uuid.as_bytes()));
    }

    #[test]
    fn only_reads_count_as_reads() {
        assert!(reads_only("SELECT * FROM orders WHERE id = $1 FOR NO KEY UPDATE"));
        assert!(reads_only("with x as (select 1) select * from x for update skip locked"));
        assert!(!reads_only("INSERT INTO t VALUES (1) RETURNING id"));
        assert!(!reads_only("WITH gone AS (DELETE FROM t RETURNING id) SELECT id FROM gone"));
        assert!(!reads_only(
            "WITH changed AS (UPDATE t SET a = 1 RETURNING 1) SELECT count(*) FROM changed"
        ));
    }
}
