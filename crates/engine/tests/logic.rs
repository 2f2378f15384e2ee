//! Logic steps and the common step fields, through whole pipelines.

mod common;

use common::{error, output, run};
use serde_json::json;

#[tokio::test]
async fn set_choice_and_into() {
    let yaml = r#"
name: t
steps:
  - type: set
    values: { greeting: hello, "customer.name": "{{ UPPERCASE(message.name) }}" }
    remove: [name]
  - type: choice
    when:
      - condition: "{{ message.n > 10 }}"
        steps: [{ type: set, values: { branch: gt10 } }]
    otherwise:
      - { type: set, values: { branch: le10 } }
  - id: extra
    type: json
    value: { doubled: "{{ message.n * 2 }}" }
    into: computed
"#;
    let out = output(yaml, json!({"n": 42, "name": "ada"})).await;
    assert_eq!(
        out,
        json!({"n": 42, "greeting": "hello", "customer": {"name": "ADA"}, "branch": "gt10", "computed": {"doubled": 84}})
    );
    let out = output(yaml, json!({"n": 1, "name": "bo"})).await;
    assert_eq!(out["branch"], "le10");
}

#[tokio::test]
async fn choice_by_jsonpath_and_no_match() {
    let yaml = r#"
name: t
steps:
  - type: choice
    when:
      - jsonpath: "$.items[?@.qty > 5]"
        steps: [{ type: set, values: { bulk: true } }]
"#;
    assert_eq!(
        output(yaml, json!({"items": [{"qty": 9}]})).await["bulk"],
        true
    );
    assert_eq!(
        output(yaml, json!({"items": [{"qty": 1}]})).await,
        json!({"items": [{"qty": 1}]})
    );
}

#[tokio::test]
async fn if_skips_and_steps_outputs_are_readable() {
    let yaml = r#"
name: t
steps:
  - id: first
    type: json
    value: { a: 1 }
  - type: set
    if: "{{ message.a == 2 }}"
    values: { skipped: false }
  - type: json
    value: { fromFirst: "{{ steps.first.a }}" }
"#;
    let execution = run(yaml, json!({})).await;
    assert_eq!(
        *execution.result.clone().expect("ok"),
        json!({"fromFirst": 1})
    );
    let trace = execution.trace();
    let statuses: Vec<_> = trace.iter().map(|t| format!("{:?}", t.status)).collect();
    assert_eq!(statuses, ["Ok", "Skipped", "Ok"]);
    assert_eq!(&*trace[0].step, "first");
    assert_eq!(&*trace[1].step, "steps[1]");
}

#[tokio::test]
async fn fail_on_error_false_gives_the_error_as_output() {
    let yaml = r#"
name: t
steps:
  - id: boom
    type: throw-error
    message: "bad {{ message.x }}"
    status: 422
    code: custom
    failOnError: false
"#;
    let out = output(yaml, json!({"x": 7})).await;
    assert_eq!(
        out,
        json!({"success": false, "error": {"message": "bad 7", "status": 422, "code": "custom", "step": "boom", "details": null}})
    );
}

#[tokio::test]
async fn errors_carry_status_code_and_step_path() {
    let yaml = r#"
name: t
steps:
  - type: block
    steps:
      - type: assert
        condition: "{{ message.total > 0 }}"
        message: "total must be positive, got {{ message.total }}"
"#;
    let e = error(yaml, json!({"total": -1})).await;
    assert_eq!(e["code"], "assertion");
    assert_eq!(e["status"], 400);
    assert_eq!(e["step"], "steps[0].steps[0]");
    assert_eq!(e["message"], "total must be positive, got -1");
}

#[tokio::test]
async fn block_on_exception_sees_the_error_and_recovers() {
    let yaml = r#"
name: t
steps:
  - type: block
    steps:
      - type: set
        values: { touched: true }
      - type: throw-error
        message: nope
        status: 409
    onException:
      - type: json
        value: { recovered: "{{ error.message }}", status: "{{ error.status }}", input: "{{ message }}" }
  - type: set
    values: { after: true }
"#;
    let out = output(yaml, json!({"id": 1})).await;
    assert_eq!(
        out,
        json!({"recovered": "nope", "status": 409, "input": {"id": 1}, "after": true})
    );
}

#[tokio::test]
async fn pipeline_on_exception() {
    let yaml = r#"
name: t
steps:
  - type: throw-error
    message: broken
onException:
  - type: log
    level: error
    message: "failed: {{ error.message }}"
  - type: response
    status: 502
    body: { failed: "{{ error.code }}" }
"#;
    let execution = run(yaml, json!({})).await;
    assert!(execution.result.is_ok());
    let response = execution.response.expect("answered");
    assert_eq!(response.status, 502);
    assert_eq!(*response.body, json!({"failed": "thrown"}));
    assert_eq!(execution.logs[0].message, "failed: broken");
    assert_eq!(execution.logs[0].level, "error");
}

#[tokio::test]
async fn for_each_sequential_collects_in_order() {
    let yaml = r#"
name: t
steps:
  - type: for-each
    items: "{{ message.items }}"
    collect: true
    steps:
      - type: json
        value: { sku: "{{ item.sku }}", position: "{{ index }}", price: "{{ message.price * 2 }}" }
"#;
    let out = output(
        yaml,
        json!({"items": [{"sku": "a", "price": 1}, {"sku": "b", "price": 2}]}),
    )
    .await;
    assert_eq!(
        out,
        json!({"total": 2, "success": 2, "failed": 0, "results": [
            {"sku": "a", "position": 0, "price": 2}, {"sku": "b", "position": 1, "price": 4}]})
    );
}

#[tokio::test(start_paused = true)]
async fn for_each_parallel_runs_concurrently_and_keeps_order() {
    let yaml = r#"
name: t
steps:
  - type: for-each
    items: "{{ message }}"
    parallel: 4
    collect: true
    steps:
      - type: delay
        duration: 1s
      - type: json
        value: "{{ item * 10 }}"
"#;
    let started = tokio::time::Instant::now();
    let out = output(yaml, json!([1, 2, 3, 4, 5, 6, 7, 8])).await;
    assert_eq!(out["results"], json!([10, 20, 30, 40, 50, 60, 70, 80]));
    // Eight one-second items, four at a time: two seconds, not eight.
    assert_eq!(started.elapsed().as_secs(), 2);
}

#[tokio::test]
async fn for_each_failures_with_and_without_handlers() {
    let failing = r#"
name: t
steps:
  - type: for-each
    items: "{{ message }}"
    steps:
      - type: assert
        condition: "{{ item > 0 }}"
"#;
    let e = error(failing, json!([1, -1, 2])).await;
    assert_eq!(e["code"], "assertion");

    let handled = r#"
name: t
steps:
  - type: for-each
    items: "{{ message }}"
    collect: true
    steps:
      - type: assert
        condition: "{{ item > 0 }}"
    onException:
      - type: json
        value: { bad: "{{ item }}", why: "{{ error.code }}" }
"#;
    let out = output(handled, json!([1, -1, 2])).await;
    assert_eq!(out["total"], 3);
    assert_eq!(out["success"], 2);
    assert_eq!(out["failed"], 1);
    assert_eq!(out["results"][1], json!({"bad": -1, "why": "assertion"}));

    let e = error(handled, json!({"not": "an array"})).await;
    assert!(
        e["message"]
            .as_str()
            .expect("text")
            .contains("must be an array"),
        "{e}"
    );
}

#[tokio::test]
async fn do_while_paginates_and_stops_at_max() {
    let yaml = r#"
name: t
steps:
  - type: do-while
    condition: "{{ message.page < 3 }}"
    steps:
      - type: set
        values: { page: "{{ (message.page ?? 0) + 1 }}", "seen": "{{ PUSH(message.seen ?? [], index) }}" }
"#;
    assert_eq!(
        output(yaml, json!({})).await,
        json!({"page": 3, "seen": [0, 1, 2]})
    );

    let endless = r#"
name: t
steps:
  - type: do-while
    condition: "{{ true }}"
    maxIterations: 3
    steps: [{ type: set, values: { n: "{{ (message.n ?? 0) + 1 }}" } }]
"#;
    let e = error(endless, json!({})).await;
    assert_eq!(e["code"], "max_iterations");
    assert_eq!(e["details"]["lastOutput"], json!({"n": 3}));
}

#[tokio::test]
async fn parallel_branches() {
    let yaml = r#"
name: t
steps:
  - type: parallel
    branches:
      prices:
        - { type: json, value: "{{ message.a * 2 }}" }
      names:
        - { type: json, value: "{{ UPPERCASE(message.b) }}" }
"#;
    assert_eq!(
        output(yaml, json!({"a": 2, "b": "x"})).await,
        json!({"prices": 4, "names": "X"})
    );
}

#[tokio::test(start_paused = true)]
async fn retry_with_backoff_then_handler() {
    let yaml = r#"
name: t
steps:
  - type: retry
    attempts: 3
    delay: 100ms
    backoff: exponential
    steps:
      - id: flaky
        type: throw-error
        message: down
        status: 503
    onException:
      - type: json
        value: { gaveUp: "{{ error.details.attempts }}" }
"#;
    let started = tokio::time::Instant::now();
    let execution = run(yaml, json!({})).await;
    assert_eq!(
        *execution.result.clone().expect("handled"),
        json!({"gaveUp": 3})
    );
    // Waits of 100ms then 200ms between the three tries.
    assert_eq!(started.elapsed().as_millis(), 300);
    let tries = execution
        .trace()
        .iter()
        .filter(|t| &*t.step == "flaky")
        .count();
    assert_eq!(tries, 3);
}

#[tokio::test(start_paused = true)]
async fn step_timeout_ends_with_timeout_error() {
    let yaml = r#"
name: t
steps:
  - id: slow
    type: delay
    duration: 5s
    timeout: 1s
"#;
    let e = error(yaml, json!({})).await;
    assert_eq!(e["code"], "timeout");
    assert_eq!(e["status"], 504);
    assert_eq!(e["step"], "slow");
}

#[tokio::test]
async fn response_step_sets_the_answer() {
    let yaml = r#"
name: t
steps:
  - type: response
    status: 201
    headers: { Location: "/orders/{{ message.id }}" }
    body: { created: "{{ message.id }}" }
  - type: set
    values: { after: true }
"#;
    let execution = run(yaml, json!({"id": 9})).await;
    let r = execution.response.expect("answer");
    assert_eq!((r.status, &*r.body), (201, &json!({"created": 9})));
    assert_eq!(r.headers["Location"], "/orders/9");
    assert_eq!(execution.result.expect("ok")["after"], true);
}

#[tokio::test]
async fn a_response_without_body_answers_the_message_as_it_was_without_copying_it() {
    let yaml = r#"
name: t
steps:
  - type: set
    values: { seen: true }
  - type: response
    status: 202
  - type: set
    values: { after: true }
    remove: [id]
"#;
    let plan = common::plan(yaml);
    for trace_payloads in [false, true] {
        let options = sluice_engine::RunOptions {
            trace_payloads,
            ..Default::default()
        };
        let execution = plan.execute(json!({"id": 9}), options).await;
        let r = execution.response.clone().expect("answer");
        // The steps after the response change a copy, never the answer.
        assert_eq!(*r.body, json!({"id": 9, "seen": true}), "{trace_payloads}");
        assert_eq!(
            **execution.result.as_ref().expect("ok"),
            json!({"seen": true, "after": true})
        );
        assert_eq!(
            execution.into_answer().expect("ok"),
            json!({"id": 9, "seen": true})
        );
    }
    // With nothing after it, the answer is the message itself, shared.
    let plan = common::plan("name: t\nsteps:\n  - type: response\n");
    let execution = plan.execute(json!({"id": 9}), Default::default()).await;
    let body = &execution.response.as_ref().expect("answer").body;
    assert!(std::sync::Arc::ptr_eq(
        body,
        execution.result.as_ref().expect("ok")
    ));
}

#[tokio::test]
async fn sensitive_fields_and_accounts_are_masked() {
    let yaml = r#"
name: t
sensitiveFields: [card.number]
steps:
  - type: log
    message: "card {{ message.card.number }} user {{ account.crm.password }}"
"#;
    let plan = common::plan(yaml);
    let options = sluice_engine::RunOptions {
        accounts: std::sync::Arc::new(
            json!({"crm": {"type": "basic", "user": "u", "password": "hunter22"}}),
        ),
        trace_payloads: true,
        ..Default::default()
    };
    let execution = plan
        .execute(json!({"card": {"number": "4111111111111111"}}), options)
        .await;
    assert_eq!(execution.logs[0].message, "card *** user ***");
    let traced = execution.masked_trace().to_json();
    assert!(!traced.contains("4111111111111111"), "{traced}");
    assert!(traced.contains("\"number\":\"***\""), "{traced}");
}

#[tokio::test]
async fn session_and_object_store_in_memory() {
    let yaml = r#"
name: t
steps:
  - type: session
    operation: put
    key: "cart-{{ message.user }}"
    value: { items: 2 }
  - id: cart
    type: session
    operation: get
    key: "cart-{{ message.user }}"
    into: cart
  - type: object-store
    collection: orders
    operation: insert
    document: { _id: "o1", user: "{{ message.user }}", total: 10 }
  - type: object-store
    collection: orders
    operation: upsert
    id: o2
    document: { user: other, total: 5 }
  - type: object-store
    collection: orders
    operation: update
    filter: { _id: o1 }
    set: { total: 12 }
  - type: object-store
    collection: orders
    operation: find
    filter: { user: "{{ steps.cart.items == 2 ? 'x' : 'y' }}" }
"#;
    // The ternary is not in the language: caught at load time with its place.
    let p = common::problems(yaml);
    assert!(p.contains("steps[5].filter.user"), "{p}");

    let yaml = r#"
name: t
steps:
  - type: session
    operation: put
    key: "cart-{{ message.user }}"
    value: { items: 2 }
  - type: session
    operation: get
    key: "cart-{{ message.user }}"
    into: cart
  - type: object-store
    collection: orders
    operation: insert
    document: { _id: "o1", user: "{{ message.user }}", total: 10 }
    into: inserted
  - type: object-store
    collection: orders
    operation: update
    filter: { _id: o1 }
    set: { total: 12 }
    into: updated
  - type: object-store
    collection: orders
    operation: find
    filter: { user: "{{ message.user }}" }
    into: found
  - type: object-store
    collection: orders
    operation: count
    into: counted
"#;
    let out = output(yaml, json!({"user": "ada"})).await;
    assert_eq!(out["cart"], json!({"items": 2}));
    assert_eq!(out["updated"], json!({"matched": 1}));
    assert_eq!(
        out["found"],
        json!([{"_id": "o1", "user": "ada", "total": 12}])
    );
    assert_eq!(out["counted"], json!({"count": 1}));
}

#[tokio::test]
async fn publish_reaches_the_publisher() {
    let events = std::sync::Arc::new(sluice_engine::services::CollectedEvents::default());
    let plan = common::plan(
        r#"
name: t
steps:
  - type: publish
    event: order.created
    payload: { id: "{{ message.id }}" }
"#,
    );
    let options = sluice_engine::RunOptions {
        services: sluice_engine::Services::in_memory(events.clone()),
        ..Default::default()
    };
    let execution = plan.execute(json!({"id": 3}), options).await;
    assert_eq!(execution.into_result().expect("ok"), json!({"id": 3}));
    assert_eq!(
        events.take(),
        vec![("order.created".to_owned(), json!({"id": 3}))]
    );
}
