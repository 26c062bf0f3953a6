//! The stylesheet and script, embedded in the binary and served under names that carry a hash
//! of their content, so browsers may keep them for a year and still never see a stale one.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::PageError;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

fn versioned(stem: &str, extension: &str, content: &str) -> String {
    let hash = Sha256::digest(content.as_bytes());
    let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("/assets/{stem}.{short}.{extension}")
}

static CSS_PATH: LazyLock<String> = LazyLock::new(|| versioned("app", "css", CSS));
static JS_PATH: LazyLock<String> = LazyLock::new(|| versioned("app", "js", JS));

pub fn css_path() -> &'static str {
    &CSS_PATH
}

pub fn js_path() -> &'static str {
    &JS_PATH
}

/// `GET /assets/{name}`: only the current names; an old hash is a 404, not a stale file.
pub async fn serve(name: web::Path<String>) -> Result<HttpResponse, PageError> {
    let path = format!("/assets/{name}");
    let (content, kind) = if path == css_path() {
        (CSS, "text/css; charset=utf-8")
    } else if path == js_path() {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return Err(PageError::NotFound);
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, kind))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(content))
}
