//! Searching the catalog over HTTP on every backend: by name or description, whatever the case,
//! paginated, pattern characters taken literally, bad searches refused naming `q`.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_every_backend;

on_every_backend!(buyers_search_the_catalog_by_name_and_description);

fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["name"].as_str().expect("name"))
        .collect()
}

async fn buyers_search_the_catalog_by_name_and_description(app: TestApp) {
    let ann = app.user("merchant").await;
    for (name, description) in [
        ("Blue MUG", "Holds coffee"),
        ("Kettle", "Boils water for your mug"),
        ("100% cotton shirt", "Soft"),
        ("Pen", "Writes"),
    ] {
        let body = json!({"name": name, "description": description, "price": "5.00", "currency": "USD", "stock": 3});
        app.post("/api/v1/products", Some(&ann.token), &body).await.assert_status(201);
    }
    let search = |query: &str| {
        let app = &app;
        let url = format!("/api/v1/products?{query}");
        async move { app.get(&url, None).await.assert_status(200).clone() }
    };
    assert_eq!(
        names(&search("q=mug").await),
        vec!["Kettle", "Blue MUG"],
        "name or description, any case"
    );
    let first = search("q=Mug&limit=1").await;
    assert_eq!(names(&first), vec!["Kettle"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    assert_eq!(names(&search(&format!("q=Mug&limit=1&cursor={cursor}")).await), vec!["Blue MUG"]);
    assert_eq!(names(&search("q=0%25").await), vec!["100% cotton shirt"], "`%` taken literally");
    assert!(names(&search("q=_").await).is_empty(), "`_` matches only itself");
    assert_eq!(names(&search(&format!("q=%20pen%20&merchant_id={}", ann.id)).await), vec!["Pen"]);
    for bad in ["q=", "q=%20%20", "q=%07bell", &format!("q={}", "x".repeat(101))] {
        let reply = app.get(&format!("/api/v1/products?{bad}"), None).await;
        reply.assert_problem(400, "invalid_query");
        assert_eq!(reply.body["errors"][0]["field"], json!("q"), "{bad}: {}", reply.text);
    }
}
