//! Merchant statements, as JSON or CSV.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use application::ports::store::UnitOfWork;
use application::statements::{Statement, StatementRequest};
use domain::ids::UserId;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::State;
use crate::dto::{StatementResponse, currency, timestamp};
use crate::extract::Authenticated;
use crate::problem::{ApiError, Problem};
use crate::respond::ok;

/// How the statement is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatementFormat {
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// ISO 4217 code, e.g. USD.
    #[param(pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: String,
    /// Start of the period (included), RFC 3339.
    #[param(format = DateTime)]
    pub from: String,
    /// End of the period (excluded), RFC 3339; at most 366 days after `from`.
    #[param(format = DateTime)]
    pub to: String,
    /// The merchant (admins must name one; a merchant may name only itself).
    pub merchant_id: Option<uuid::Uuid>,
    /// `csv` for CSV; otherwise JSON unless `Accept` asks for `text/csv`.
    #[param(inline)]
    pub format: Option<StatementFormat>,
}

/// A merchant's statement for a currency and period: opening balance, gross sales, refunds and
/// every other movement, net and closing balance, computed from the ledger.
#[utoipa::path(get, path = "/api/v1/statements", tag = "statements", security(("bearer" = [])),
    params(StatementQuery),
    responses(
        (status = 200, description = "The statement; CSV (one row per line, opening and closing balance included) with `format=csv` or `Accept: text/csv`",
            content(
                (StatementResponse = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Customers have no statements", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant (or another merchant's)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown currency, a malformed date, a period that is empty or longer than 366 days, or an admin not naming the merchant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn show<U: UnitOfWork>(
    state: State<U>,
    caller: Authenticated,
    req: HttpRequest,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, ApiError> {
    let instant = |field: &str, text: &str| {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 date and time"))
    };
    let request = StatementRequest {
        merchant_id: query.merchant_id.map(UserId::from_uuid),
        currency: currency("currency", &query.currency)?,
        from: instant("from", &query.from)?,
        to: instant("to", &query.to)?,
    };
    let statement = state.app.statement(&caller.0, request).await?;
    if wants_csv(query.format, &req) {
        let name = format!("statement-{}-{}.csv", statement.currency().code(), request.from.date());
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
            .body(csv(&statement, request.from, request.to)));
    }
    Ok(ok(&StatementResponse::new(&statement, request.from, request.to)))
}

/// `format` decides; without it, an `Accept` header naming `text/csv`.
fn wants_csv(format: Option<StatementFormat>, req: &HttpRequest) -> bool {
    match format {
        Some(format) => format == StatementFormat::Csv,
        None => req
            .headers()
            .get_all(header::ACCEPT)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|media| {
                media
                    .split(';')
                    .next()
                    .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("text/csv"))
            }),
    }
}

/// One row per line between the opening and the closing balance, so that a spreadsheet's sum of
/// the `amount` column from `opening_balance` through the lines is the closing balance.
pub fn csv(statement: &Statement, from: OffsetDateTime, to: OffsetDateTime) -> String {
    let (merchant, currency) = (statement.merchant_id().to_string(), statement.currency().code());
    let (from, to) = (timestamp(from), timestamp(to));
    let mut out = String::from("merchant_id,currency,from,to,line,amount,postings\r\n");
    let mut row = |line: &str, amount: String, postings: Option<u64>| {
        let postings = postings.map(|count| count.to_string()).unwrap_or_default();
        let fields = [merchant.as_str(), currency, &from, &to, line, &amount, &postings];
        out.push_str(&fields.map(field).join(","));
        out.push_str("\r\n");
    };
    row("opening_balance", statement.opening_balance().to_major_string(), None);
    for line in statement.lines() {
        row(line.line.as_str(), line.amount.to_major_string(), Some(line.postings));
    }
    row("closing_balance", statement.closing_balance().to_major_string(), None);
    out
}

/// A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(field("12.50"), "12.50");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }
}
