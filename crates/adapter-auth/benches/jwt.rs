//! Every authenticated request verifies one access token.

use std::hint::black_box;

use adapter_auth::{JwtIssuer, JwtSettings};
use application::ports::security::TokenIssuer;
use criterion::{Criterion, criterion_group, criterion_main};
use domain::ids::UserId;
use domain::user::{Email, PasswordHash, Role, User};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn jwt(c: &mut Criterion) {
    let settings = JwtSettings {
        secret: vec![7; 48],
        issuer: "payments".into(),
        audience: "payments-api".into(),
        access_ttl: Duration::minutes(15),
    };
    let issuer = JwtIssuer::new(settings).unwrap_or_else(|e| panic!("{e}"));
    let user = User {
        id: UserId::from_uuid(Uuid::from_u128(1)),
        email: Email::parse("ann@example.com").unwrap_or_else(|e| panic!("{e}")),
        password_hash: PasswordHash::new(String::new()),
        role: Role::Customer,
        created_at: OffsetDateTime::UNIX_EPOCH,
        suspended_at: None,
    };
    let now = OffsetDateTime::now_utc();
    let token = issuer.issue_access_token(&user, now).unwrap_or_else(|e| panic!("{e}")).token;
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });

    c.bench_function("jwt: verify an access token", |b| {
        b.iter(|| issuer.verify_access_token(black_box(&token), now))
    });
    c.bench_function("jwt: refuse a forged signature", |b| {
        b.iter(|| issuer.verify_access_token(black_box(&forged), now))
    });
    c.bench_function("jwt: issue an access token", |b| {
        b.iter(|| issuer.issue_access_token(black_box(&user), now))
    });
}

criterion_group!(benches, jwt);
criterion_main!(benches);
