//! Every webhook is verified over its raw body before anything else is done with it.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

fn signature(c: &mut Criterion) {
    let secrets = vec![b"whsec_test_secret_for_benchmarks".to_vec()];
    let rotated = vec![b"whsec_old_secret".to_vec(), secrets[0].clone()];
    // A checkout.session.completed event is about 2 KiB.
    let body = format!(
        r#"{{"id":"evt_1","type":"checkout.session.completed","data":{{"object":{{"id":"cs_1","metadata":{{"payment_id":"x"}},"pad":"{}"}}}}}}"#,
        "x".repeat(1900)
    );
    let now = 1_700_000_000;
    let header = stripe_signature::sign(&secrets[0], now, body.as_bytes());
    let tampered = body.replacen("cs_1", "cs_2", 1);

    c.bench_function("webhook: verify a 2 KiB event", |b| {
        b.iter(|| stripe_signature::verify(&secrets, black_box(&header), black_box(body.as_bytes()), now, 300));
    });
    c.bench_function("webhook: verify against two secrets (rotation)", |b| {
        b.iter(|| stripe_signature::verify(&rotated, black_box(&header), black_box(body.as_bytes()), now, 300));
    });
    c.bench_function("webhook: refuse a tampered body", |b| {
        b.iter(|| stripe_signature::verify(&secrets, black_box(&header), black_box(tampered.as_bytes()), now, 300));
    });
}

criterion_group!(benches, signature);
criterion_main!(benches);
