//! Generating the client from the served OpenAPI document.
//!
//! The server describes itself in OpenAPI 3.1 (utoipa 5); progenitor, the generator, reads 3.0
//! (through the `openapiv3` crate). [`down_convert`] rewrites the few 3.1 forms the document uses
//! into their 3.0 equivalents and keeps only what a client of the API calls: the operations under
//! `/api/v1/`, less the receivers of payment providers' webhooks, which only the providers call.
//! [`generate`] turns the result into formatted Rust source, which is checked in as
//! `src/generated.rs`; a black-box test regenerates it from the live document and fails when the two
//! differ.

use serde_json::{Map, Value, json};

/// Why the client could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The document, once converted, does not read as OpenAPI 3.0.
    #[error("the converted document is not OpenAPI 3.0: {0}")]
    NotOpenApi30(#[from] serde_json::Error),
    /// progenitor cannot generate a client of it.
    #[error("progenitor refused the document: {0}")]
    Generator(#[from] progenitor::Error),
    /// What progenitor generated is not Rust (a generator bug).
    #[error("the generated code does not parse: {0}")]
    Syntax(#[from] syn::Error),
}

/// Whether a path is one a client of the API calls.
fn is_client_path(path: &str) -> bool {
    path.starts_with("/api/v1/") && !path.starts_with("/api/v1/webhooks/")
}

/// The served OpenAPI 3.1 document as the OpenAPI 3.0 document of the client's operations.
pub fn down_convert(document: &Value) -> Value {
    let mut converted = document.clone();
    if let Some(root) = converted.as_object_mut() {
        root.insert("openapi".into(), json!("3.0.3"));
        // 3.1 only: a top-level `webhooks` map, the JSON Schema dialect, an SPDX licence id.
        root.remove("webhooks");
        root.remove("jsonSchemaDialect");
        if let Some(license) = root
            .get_mut("info")
            .and_then(|info| info.get_mut("license"))
            .and_then(Value::as_object_mut)
        {
            license.remove("identifier");
        }
        if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
            paths.retain(|path, _| is_client_path(path));
        }
    }
    rewrite(&mut converted);
    converted
}

/// Rewrites every 3.1 construct below `value`, bottom-up.
fn rewrite(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(rewrite),
        Value::Object(object) => {
            object.values_mut().for_each(rewrite);
            rewrite_object(object);
        }
        _ => {}
    }
}

fn rewrite_object(object: &mut Map<String, Value>) {
    // Errors are `application/problem+json`; progenitor decodes JSON bodies only when they are
    // declared `application/json`, and the body is JSON either way.
    if let Some(content) = object.get_mut("content").and_then(Value::as_object_mut)
        && let Some(problem) = content.remove("application/problem+json")
    {
        content.entry("application/json").or_insert(problem);
    }
    // `type: [T, "null"]` is 3.0's `type: T, nullable: true`.
    if let Some(Value::Array(types)) = object.get("type") {
        let (nulls, others): (Vec<&Value>, Vec<&Value>) = types.iter().partition(|t| *t == "null");
        if let [single] = others.as_slice() {
            let single = (*single).clone();
            let nullable = !nulls.is_empty();
            object.insert("type".into(), single);
            if nullable {
                object.insert("nullable".into(), json!(true));
            }
        }
    }
    // `oneOf: [{type: null}, S]` (an optional reference) is `allOf: [S], nullable: true`, since a
    // 3.0 reference takes no siblings.
    for combinator in ["oneOf", "anyOf"] {
        if let Some(Value::Array(variants)) = object.get(combinator) {
            let is_null = |variant: &Value| variant.get("type") == Some(&json!("null"));
            if variants.iter().any(is_null) {
                let rest: Vec<Value> = variants.iter().filter(|variant| !is_null(variant)).cloned().collect();
                object.remove(combinator);
                if let [single] = rest.as_slice() {
                    object.insert("allOf".into(), json!([single]));
                } else {
                    object.insert(combinator.into(), Value::Array(rest));
                }
                object.insert("nullable".into(), json!(true));
            }
        }
    }
    // A schema's `examples` list is 3.0's single `example`.
    if let Some(Value::Array(examples)) = object.get("examples")
        && object.contains_key("type")
    {
        let first = examples.first().cloned();
        object.remove("examples");
        if let Some(first) = first {
            object.insert("example".into(), first);
        }
    }
    if let Some(constant) = object.remove("const") {
        object.insert("enum".into(), json!([constant]));
    }
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        if let Some(limit) = object.get(exclusive).filter(|limit| limit.is_number()).cloned() {
            object.insert(bound.into(), limit);
            object.insert(exclusive.into(), json!(true));
        }
    }
    // A parameter is left out, never sent as null: an optional one is `required: false` alone.
    if object.contains_key("in")
        && let Some(schema) = object.get_mut("schema").and_then(Value::as_object_mut)
    {
        schema.remove("nullable");
    }
    for only_in_3_1 in ["$schema", "contentMediaType", "contentEncoding"] {
        object.remove(only_in_3_1);
    }
}

/// The Rust source of the client of `document` (the served OpenAPI 3.1 document), formatted.
pub fn generate(document: &Value) -> Result<String, CodegenError> {
    let spec: openapiv3::OpenAPI = serde_json::from_value(down_convert(document))?;
    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Positional)
        .with_tag(progenitor::TagStyle::Merged)
        .with_inner_type(quote::quote! { crate::Credentials })
        .with_pre_hook(quote::quote! { crate::Credentials::apply })
        .with_derive("PartialEq");
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator.generate_tokens(&spec)?;
    let file: syn::File = syn::parse2(tokens)?;
    let body = prettyplease::unparse(&file);
    Ok(format!(
        "// Generated by `api_client::codegen::generate` from the served OpenAPI document: do not edit.\n\
         // Regenerate with `make api-client`; a black-box test fails when this file and the document differ.\n\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::down_convert;

    #[test]
    fn nullable_types_and_optional_references_become_3_0_nullables() {
        let document = json!({
            "openapi": "3.1.0",
            "paths": {},
            "components": {"schemas": {"Order": {"type": "object", "properties": {
                "note": {"type": ["string", "null"]},
                "refund": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Refund"}]},
                "count": {"type": "integer", "exclusiveMinimum": 0, "examples": [3]},
            }}}}
        });
        let converted = down_convert(&document);
        let properties = &converted["components"]["schemas"]["Order"]["properties"];
        assert_eq!(converted["openapi"], "3.0.3");
        assert_eq!(properties["note"], json!({"type": "string", "nullable": true}));
        assert_eq!(
            properties["refund"],
            json!({"allOf": [{"$ref": "#/components/schemas/Refund"}], "nullable": true})
        );
        assert_eq!(
            properties["count"],
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "example": 3})
        );
    }

    #[test]
    fn only_the_paths_a_client_calls_are_kept_and_problems_are_json() {
        let document = json!({
            "openapi": "3.1.0",
            "paths": {
                "/api/v1/orders": {"post": {"responses": {"409": {"content": {"application/problem+json": {"schema": {}}}}}}},
                "/api/v1/webhooks/stripe": {"post": {}},
                "/admin/": {"get": {}},
            }
        });
        let converted = down_convert(&document);
        let paths = converted["paths"].as_object().expect("paths");
        assert_eq!(paths.keys().collect::<Vec<_>>(), ["/api/v1/orders"]);
        let content = &paths["/api/v1/orders"]["post"]["responses"]["409"]["content"];
        assert!(content["application/json"].is_object() && content["application/problem+json"].is_null());
    }
}
