//! The engine's hot path: a compiled 5-step pipeline
//! (set → choice → set → log → response) run in-process per message.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sluice_engine::{Catalog, RunOptions, load_str};
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

criterion_group!(benches, five_steps);
criterion_main!(benches);
