//! Login, refresh with rotation, reuse detection and logout over HTTP.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};
use crate::on_every_backend;

on_every_backend!(refresh_tokens_rotate_and_reuse_revokes_the_session);

async fn refresh_tokens_rotate_and_reuse_revokes_the_session(app: TestApp) {
    let user = app.user("customer").await;
    let login = app
        .post("/api/v1/auth/login", None, &json!({"email": user.email, "password": PASSWORD}))
        .await;
    let login = login.assert_status(200).clone();
    assert_eq!(login["token_type"], "Bearer");
    assert!(login["expires_in"].as_i64().is_some_and(|s| s > 0 && s <= 900));
    let me = app.get("/api/v1/auth/me", login["access_token"].as_str()).await;
    assert_eq!(me.assert_status(200)["email"], json!(user.email));

    let first = login["refresh_token"].clone();
    let rotated = app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": first})).await;
    let rotated = rotated.assert_status(200).clone();
    assert_ne!(rotated["refresh_token"], first);
    app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": first}))
        .await
        .assert_problem(401, "refresh_token_reused");
    app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": rotated["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_refresh_token");

    let again = app
        .post("/api/v1/auth/login", None, &json!({"email": user.email, "password": PASSWORD}))
        .await
        .assert_status(200)
        .clone();
    let out = app
        .post("/api/v1/auth/logout", None, &json!({"refresh_token": again["refresh_token"]}))
        .await;
    assert_eq!(out.status, 204);
    app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": again["refresh_token"]}))
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.post(
        "/api/v1/auth/login",
        None,
        &json!({"email": user.email, "password": "wrong password 9"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
}
