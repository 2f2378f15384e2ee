//! Evaluation speed of compiled expressions (compiling is done once, outside
//! the measured loop, as the engine does at load time).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sluice_expr::{Scope, Template};

fn bench(c: &mut Criterion) {
    let message = json!({
        "total": 150,
        "status": "open",
        "customer": {"name": "Ada Lovelace", "tier": "gold"},
        "lines": [{"sku": "A-1", "qty": 2, "price": 9.5}, {"sku": "B-2", "qty": 1, "price": 30}]
    });
    let scope = Scope::new(&message);
    let cases = [
        (
            "condition",
            "{{ message.total > 100 && message.status == 'open' }}",
        ),
        ("path", "{{ message.lines[1].sku }}"),
        (
            "arithmetic",
            "{{ message.lines[0].qty * message.lines[0].price + message.lines[1].price }}",
        ),
        ("function", "{{ UPPERCASE(message.customer.name) }}"),
        ("if", "{{ IF(message.customer.tier == 'gold', 0.1, 0) }}"),
        (
            "mixed_text",
            "Order for {{ message.customer.name }}: {{ message.total }} ({{ message.status }})",
        ),
        (
            "sum_jsonpath",
            "{{ SUM(JSONPATH(message, '$.lines[*].price')) }}",
        ),
    ];
    let mut group = c.benchmark_group("expr");
    for (name, source) in cases {
        let template = Template::compile(source).expect("benchmark expressions compile");
        group.bench_function(name, |b| {
            b.iter(|| black_box(template.eval(black_box(&scope)).map(|v| v.is_null())))
        });
    }
    let condition = Template::compile(cases[0].1).expect("the condition compiles");
    group.bench_function("condition_is_true", |b| {
        b.iter(|| black_box(condition.is_true(black_box(&scope))))
    });
    group.bench_function("compile_condition", |b| {
        b.iter(|| {
            Template::compile(black_box(
                "{{ message.total > 100 && message.status == 'open' }}",
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
