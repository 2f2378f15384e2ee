//! Running step lists: the common step fields (`if`, `into`, `timeout`,
//! `failOnError`), mocks, step outputs and the trace, applied once here
//! for every step type.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::steps::{Node, Writes};
use crate::trace::{After, Edit, Open, Pending};
use crate::{Context, FlowError, Message, StepList, TraceEntry, TraceStatus};

/// Runs `steps` in order over `message`.
pub async fn run_steps(
    steps: &StepList,
    mut message: Message,
    cx: &mut Context,
) -> Result<Message, FlowError> {
    for node in steps.0.iter() {
        message = run_node(node, message, cx).await?;
    }
    Ok(message)
}

async fn run_node(node: &Node, message: Message, cx: &mut Context) -> Result<Message, FlowError> {
    if let Some(condition) = &node.condition {
        let go = cx
            .condition(condition, &message)
            .map_err(|e| e.at_step(&node.label))?;
        if !go {
            record(
                cx,
                node,
                Instant::now(),
                TraceStatus::Skipped,
                [None, None],
                [None, None],
                None,
            );
            return Ok(message);
        }
    }
    let started = Instant::now();
    let shared = &cx.shared;
    if shared.trace_payloads
        && shared.mocks.is_none()
        && node.into.is_none()
        && cx.trace.len() < shared.max_trace_entries
        && let Some(Ok(writes)) = node.step.writes(&message, cx)
    {
        // A failure to compute falls through: `run` fails the same way.
        return Ok(write_in_place(node, writes, message, cx, started));
    }
    // The input is held where a writing step inside can find it (and point
    // it at the journal instead of copying the message).
    let depth = cx.open.len();
    if cx.shared.trace_payloads {
        cx.open.push(Open::Held(message.clone()));
    }
    let kept = node.into.as_ref().map(|_| message.clone());

    let mocked = match (&cx.shared.mocks, &node.id) {
        (Some(mocks), Some(id)) => mocks.next(id),
        _ => None,
    };
    let result = match mocked {
        Some(result) => result.map(Arc::new),
        None => {
            let future = node.step.run(message, cx);
            match node.timeout {
                Some(limit) => match tokio::time::timeout(limit, future).await {
                    Ok(result) => result,
                    Err(_) => Err(FlowError::timeout(limit)),
                },
                None => future.await,
            }
        }
    };
    // Inputs left by steps inside that were cut short go with it.
    let input = if cx.open.len() > depth {
        cx.open.truncate(depth + 1);
        cx.open.pop()
    } else {
        None
    };
    let (input, pending) = match input {
        Some(Open::Held(message)) => (Some(message), None),
        Some(Open::Pending(pending)) => (None, Some(pending)),
        None => (None, None),
    };

    let output = match result {
        Ok(output) => output,
        Err(error) => {
            let error = error.at_step(&node.label);
            record(
                cx,
                node,
                started,
                TraceStatus::Error,
                [input.clone(), None],
                [pending, None],
                Some(error.to_value()),
            );
            if node.fail_on_error {
                return Err(error);
            }
            let mut failure = Map::new();
            failure.insert("success".into(), Value::Bool(false));
            failure.insert("error".into(), error.to_value());
            Arc::new(Value::Object(failure))
        }
    };
    if let Some(id) = &node.id {
        cx.outputs.insert(id.to_string(), output.clone());
    }
    let next = match (&node.into, kept) {
        (Some(field), Some(mut whole)) => {
            let value = Arc::unwrap_or_clone(output.clone());
            field.set(Arc::make_mut(&mut whole), value);
            whole
        }
        _ => output.clone(),
    };
    let traced_output = cx.shared.trace_payloads.then_some(output);
    record(
        cx,
        node,
        started,
        TraceStatus::Ok,
        [input, traced_output],
        [pending, None],
        None,
    );
    Ok(next)
}

/// Applies a writing step's `writes` to `message`: in place, with an undo
/// in the journal, when only the trace holds the message besides; else on
/// a copy, the trace keeping the message as it was.
fn write_in_place(
    node: &Node,
    writes: Writes<'_>,
    mut message: Message,
    cx: &mut Context,
    started: Instant,
) -> Message {
    let change = cx.detach(&message);
    let input = change.is_none().then(|| message.clone());
    let target = Arc::make_mut(&mut message);
    let undo = match change {
        Some(_) => writes.apply_keeping(target),
        None => {
            writes.apply(target);
            Vec::new()
        }
    };
    if let Some(id) = &node.id {
        cx.outputs.insert(id.to_string(), message.clone());
    }
    match change {
        Some(change) => {
            cx.journal.push(Edit {
                undo,
                after: After::Held(message.clone()),
            });
            record(
                cx,
                node,
                started,
                TraceStatus::Ok,
                [None, None],
                [Some(Pending::Before(change)), Some(Pending::After(change))],
                None,
            );
        }
        None => record(
            cx,
            node,
            started,
            TraceStatus::Ok,
            [input, Some(message.clone())],
            [None, None],
            None,
        ),
    }
    message
}

fn record(
    cx: &mut Context,
    node: &Node,
    started: Instant,
    status: TraceStatus,
    [input, output]: [Option<Message>; 2],
    pending: [Option<Pending>; 2],
    error: Option<Value>,
) {
    if cx.trace.len() >= cx.shared.max_trace_entries {
        return;
    }
    // Kept as they are: masking is paid when (and if) the trace is shown.
    let entry = TraceEntry {
        step: node.label.clone(),
        kind: node.kind,
        status,
        start_us: micros(started.saturating_duration_since(cx.shared.started)),
        duration_us: micros(started.elapsed()),
        input,
        output,
        error,
        pending,
    };
    cx.trace.push(entry);
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs `steps`; when they fail and `handlers` exist, runs the handlers with
/// the error at `{{ error }}` and `input` as the message. What the handlers
/// yield is the result.
pub(crate) async fn run_guarded(
    steps: &StepList,
    handlers: &StepList,
    input: Message,
    cx: &mut Context,
) -> Result<Message, FlowError> {
    if handlers.is_empty() {
        return run_steps(steps, input, cx).await;
    }
    match run_steps(steps, input.clone(), cx).await {
        Ok(output) => Ok(output),
        Err(error) => handle(handlers, error, input, cx).await,
    }
}

/// Runs exception handlers for `error` over `message`.
pub(crate) async fn handle(
    handlers: &StepList,
    error: FlowError,
    message: Message,
    cx: &mut Context,
) -> Result<Message, FlowError> {
    let saved = cx.set_error(Some(error.to_value()));
    let result = run_steps(handlers, message, cx).await;
    cx.set_error(saved);
    result
}
