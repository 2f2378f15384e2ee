//! The engine's hot path: a compiled 5-step pipeline
//! (set → choice → set → log → response) run in-process per message.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sluice_engine::{Catalog, Mask, RunOptions, load_str};
use sluice_spec::Format;

const PIPELINE: &str = r#"
name: bench
trigger: { type: http, methods: [POST] }
steps:
  - type: set
    values: { greeting: hello }
  - type: choice
    when:
      - condition: "{{ message.n > 10 }}"
        steps: [{ type: set, values: { branch: gt10 } }]
    otherwise:
      - { type: set, values: { branch: le10 } }
  - type: log
    level: debug
    message: "order {{ message.name }} went {{ message.branch }}"
  - type: response
    status: 200
"#;

fn five_steps(c: &mut Criterion) {
    let plan = match load_str("bench.yaml", PIPELINE, Format::Yaml, None, &Catalog::core()) {
        Ok(plan) => plan,
        Err(e) => panic!("{e}"),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("{e}"),
    };
    let options = RunOptions::default();
    let input = json!({"n": 42, "name": "order-1"});
    c.bench_function("pipeline/5-steps", |b| {
        b.iter(|| {
            let execution =
                runtime.block_on(plan.execute(black_box(input.clone()), options.clone()));
            black_box(execution.response)
        })
    });
    // As the server runs executions: every step's input and output traced
    // (and dropped with the execution, as for most calls).
    let traced = RunOptions {
        trace_payloads: true,
        ..RunOptions::default()
    };
    c.bench_function("pipeline/5-steps-traced", |b| {
        b.iter(|| {
            let execution =
                runtime.block_on(plan.execute(black_box(input.clone()), traced.clone()));
            black_box(execution.response)
        })
    });
}

/// A record's input written out with an environment's accounts to hide
/// (every execution of such an environment does it, for its input and
/// output).
fn masked_record(c: &mut Criterion) {
    let accounts = json!({
        "crm": {"type": "basic", "user": "integration", "password": "hunter2-long"},
        "erp": {"type": "api-key", "key": "k-0123456789abcdef"},
    });
    let mask = Mask::new(
        vec![vec!["card".into(), "number".into()]],
        Mask::account_secrets(&accounts),
    );
    let message = json!({
        "body": {"order": "o-1", "customer": {"name": "Ada", "email": "ada@example.com"},
                 "card": {"number": "4111111111111111"},
                 "lines": [{"sku": "a", "qty": 2, "price": 9.5}, {"sku": "b", "qty": 1, "price": 20}]},
        "headers": {"host": "api.example.com", "content-type": "application/json", "user-agent": "curl/8"},
        "query": {}, "params": {}, "method": "POST", "path": "/", "contentType": "application/json"
    });
    c.bench_function("mask/record-json", |b| {
        b.iter(|| black_box(mask.value_json(black_box(&message))))
    });
}

criterion_group!(benches, five_steps, masked_record);
criterion_main!(benches);
