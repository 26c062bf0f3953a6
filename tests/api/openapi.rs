//! The OpenAPI document covers every route the server answers, and is valid OpenAPI.

use std::process::Command;

use crate::helpers::TestApp;
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
