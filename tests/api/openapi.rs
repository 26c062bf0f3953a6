//! The OpenAPI document covers every route the server answers, and is valid OpenAPI.

use std::path::Path;
use std::process::Command;

use crate::helpers::{Backend, TestApp};
use crate::on_every_backend;

on_every_backend!(every_route_is_in_the_openapi_document_and_the_document_is_valid);

async fn every_route_is_in_the_openapi_document_and_the_document_is_valid(app: TestApp) {
    let reply = app.get("/api/v1/openapi.json", None).await;
    let document = reply.assert_status(200).clone();
    let paths = &document["paths"];
    let missing: Vec<String> = http_actix::routes::ROUTES
        .iter()
        .filter(|(method, path)| paths[*path][*method].is_null())
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    let undocumented_errors: Vec<String> = http_actix::routes::ROUTES
        .iter()
        .filter(|(_, path)| path.starts_with("/api/"))
        .filter_map(|(method, path)| {
            let operation = &paths[*path][*method];
            let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            let mut wanted = vec!["429"];
            if secured {
                wanted.push("401");
            }
            if operation["requestBody"].is_object() {
                wanted.extend(["400", "413", "415", "422"]);
            }
            let missing: Vec<&str> = wanted.into_iter().filter(|s| operation["responses"][*s].is_null()).collect();
            (!missing.is_empty()).then(|| format!("{method} {path}: {missing:?}"))
        })
        .collect();
    assert!(undocumented_errors.is_empty(), "common errors missing: {undocumented_errors:?}");
    let checkout = &paths["/api/v1/orders"]["post"]["responses"];
    assert!(checkout["402"].is_object(), "a declined card is documented as 402");
    every_input_says_what_is_valid(&document);
    every_operation_id_is_a_unique_snake_case_name(&document);

    let file = std::env::temp_dir().join(format!("openapi-{}.json", uuid::Uuid::now_v7()));
    std::fs::write(&file, reply.text.as_bytes()).expect("write the document");
    let script = "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "the OpenAPI document is not valid (or the validator is missing: `pip install openapi-spec-validator`, which `make test` does):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let docs = app.http.get(format!("{}/docs/", app.base)).send().await.expect("docs");
    assert_eq!(docs.status().as_u16(), 200);
    assert!(
        docs.text().await.unwrap_or_default().contains("swagger"),
        "the interactive documentation is served"
    );
}

/// The checked-in client is what the generator makes of the document the server serves, so a
/// change to the API fails here until `make api-client` regenerates the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_client_matches_the_served_document() {
    let app = TestApp::spawn(Backend::Memory).await;
    let document = app.get("/api/v1/openapi.json", None).await.assert_status(200).clone();
    let generated = api_client::codegen::generate(&document).expect("the client generates");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/api-client/src/generated.rs");
    if std::env::var_os("UPDATE_API_CLIENT").is_some() {
        std::fs::write(&path, &generated).expect("write the client");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).expect("the checked-in client");
    if checked_in != generated {
        let (mut ours, mut theirs) = (checked_in.lines(), generated.lines());
        // Where they part; past the last line when only the final line break differs.
        let line = (1..)
            .find(|_| {
                let (a, b) = (ours.next(), theirs.next());
                a != b || a.is_none()
            })
            .unwrap_or_default();
        panic!(
            "crates/api-client/src/generated.rs differs from what the served document generates from line {line}; run `make api-client`"
        );
    }
}

/// Generated clients name their methods after the operation ids (`orders_create`).
fn every_operation_id_is_a_unique_snake_case_name(document: &serde_json::Value) {
    let mut seen = std::collections::BTreeSet::new();
    for item in document["paths"].as_object().into_iter().flatten().map(|(_, item)| item) {
        for operation in item.as_object().into_iter().flatten().map(|(_, operation)| operation) {
            let id = operation["operationId"].as_str().unwrap_or_default();
            let snake = id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            assert!(snake, "operation id {id:?} is not a snake-case name");
            assert!(seen.insert(id.to_owned()), "operation id {id:?} is used twice");
        }
    }
}

/// Every string a request sends has a pattern, an enum or a format, every integer a range, and
/// every parameter of a kind (limit, cursor, currency, Idempotency-Key) its rule, with the statuses
/// that refuse them documented.
fn every_input_says_what_is_valid(document: &serde_json::Value) {
    let mut loose = Vec::new();
    for (name, schema) in document["components"]["schemas"].as_object().into_iter().flatten() {
        if !(name.ends_with("Request") || name.ends_with("RequestBody") || name.ends_with("Patch")) {
            continue;
        }
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let types = property["type"].to_string();
            let described = if types.contains("integer") {
                property["minimum"].is_number() && property["maximum"].is_number()
            } else if types.contains("string") {
                property["pattern"].is_string() || property["enum"].is_array() || property["format"].is_string()
            } else {
                true
            };
            if !described {
                loose.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(loose.is_empty(), "request fields without a rule: {loose:?}");
    let mut missing = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                let (rule, statuses): (bool, &[&str]) = match parameter["name"].as_str().unwrap_or_default() {
                    "limit" => (schema["minimum"] == 1 && schema["maximum"] == 100, &["400"]),
                    "cursor" => (schema["pattern"].is_string(), &["400"]),
                    "currency" => (
                        schema["enum"]
                            .as_array()
                            .is_some_and(|codes| codes.contains(&serde_json::json!("USD"))),
                        // A currency filter in a query is a malformed query (400); a currency
                        // naming the wallet or statement is refused as content (422).
                        if parameter["in"] == "query" && path.starts_with("/api/v1/admin/") {
                            &["400"]
                        } else {
                            &["422"]
                        },
                    ),
                    "Idempotency-Key" => (schema["pattern"].is_string(), &["400", "409", "422"]),
                    _ => (true, &[]),
                };
                let undocumented: Vec<&&str> = statuses.iter().filter(|s| operation["responses"][**s].is_null()).collect();
                if !rule || !undocumented.is_empty() {
                    missing.push(format!(
                        "{method} {path} {}: rule {rule}, undocumented {undocumented:?}",
                        parameter["name"]
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "parameters without their rule or statuses: {missing:?}");
}
