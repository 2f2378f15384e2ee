//! The per-step trace of an execution, as the portal's execution view shows it.
//!
//! Entries hold the messages as they were (shared, not copied) and unmasked:
//! most traces are never kept, so masking is paid only when a trace is
//! serialized, through [`MaskedTrace`] — the only way a trace leaves.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::Message;
use crate::field::Undo;
use crate::mask::Mask;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceStatus {
    Ok,
    Error,
    Skipped,
}

/// One step run.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// The step id, or its path when it has none.
    pub step: Arc<str>,
    /// The step type.
    pub kind: &'static str,
    pub status: TraceStatus,
    /// Microseconds from the start of the execution.
    pub start_us: u64,
    pub duration_us: u64,
    /// The input message (unmasked), when payloads are traced.
    pub input: Option<Message>,
    /// The output (unmasked), when payloads are traced.
    pub output: Option<Message>,
    /// The error object (unmasked), when the step failed.
    pub error: Option<Value>,
    /// Where the input and the output are found when they were not kept
    /// as they were: the message was changed in place after, and the
    /// journal can take the changes back. Resolved by [`materialize`].
    pub(crate) pending: [Option<Pending>; 2],
}

/// A message as it was around a change the journal kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Before the journal's change with this index.
    Before(usize),
    /// After it.
    After(usize),
}

impl Pending {
    fn shifted(self, by: usize) -> Self {
        match self {
            Pending::Before(i) => Pending::Before(i + by),
            Pending::After(i) => Pending::After(i + by),
        }
    }
}

/// One change made to a message in place (a `set`), with what takes it
/// back.
///
/// Writing steps used to copy the message whenever the trace still held it
/// (the trace keeps every step's input and output, for failed executions):
/// two `set` steps copied the whole message twice, and the copies were
/// dropped again for every execution whose trace was not kept. Now, when
/// everything else holding the message is the trace (or this journal), the
/// step changes it in place and the holders are pointed at "the message
/// before change j" instead; the few traces that are kept are rebuilt from
/// the journal when they are shown.
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    /// Applied in reverse order to the message after the change, they give
    /// the message before it.
    pub undo: Vec<Undo>,
    /// The message after the change.
    pub after: After,
}

/// Where the message after a change is.
#[derive(Debug, Clone)]
pub(crate) enum After {
    /// Here: nothing changed it since.
    Held(Message),
    /// It was changed in place again: it is the message before that change.
    Before(usize),
}

/// What is holding a step's input while the step runs.
#[derive(Debug)]
pub(crate) enum Open {
    Held(Message),
    Pending(Pending),
}

/// Appends a branch's journal to `journal`, and points its trace entries at
/// the journal's new indices.
pub(crate) fn append_journal(
    journal: &mut Vec<Edit>,
    branch: Vec<Edit>,
    entries: &mut [TraceEntry],
) {
    let by = journal.len();
    if by > 0 {
        for entry in entries.iter_mut() {
            for slot in entry.pending.iter_mut().flatten() {
                *slot = slot.shifted(by);
            }
        }
    }
    journal.extend(branch.into_iter().map(|mut edit| {
        if let After::Before(i) = &mut edit.after {
            *i += by;
        }
        edit
    }));
}

/// The trace with every input and output in place, rebuilt from the
/// journal where a change was made in place (a copy per change, paid only
/// for a trace that is shown or stored).
pub(crate) fn materialize(entries: &[TraceEntry], journal: &[Edit]) -> Vec<TraceEntry> {
    // A change's "after" is always the message before a later change (or
    // held), so walking the journal from its end, every "after" needed is
    // already known.
    let mut before: Vec<Option<Message>> = vec![None; journal.len()];
    let mut after: Vec<Option<Message>> = vec![None; journal.len()];
    for (i, edit) in journal.iter().enumerate().rev() {
        let then = match &edit.after {
            After::Held(message) => Some(message.clone()),
            After::Before(next) => before.get(*next).cloned().flatten(),
        };
        if let Some(then) = then {
            let mut value = (*then).clone();
            for undo in edit.undo.iter().rev() {
                undo.apply(&mut value);
            }
            before[i] = Some(Arc::new(value));
            after[i] = Some(then);
        }
    }
    let find = |pending: Pending| match pending {
        Pending::Before(i) => before.get(i).cloned().flatten(),
        Pending::After(i) => after.get(i).cloned().flatten(),
    };
    entries
        .iter()
        .map(|entry| {
            let mut entry = entry.clone();
            let [input, output] = entry.pending;
            if let Some(p) = input {
                entry.input = find(p);
            }
            if let Some(p) = output {
                entry.output = find(p);
            }
            entry.pending = [None, None];
            entry
        })
        .collect()
}

/// A trace with its mask applied as it is serialized: sensitive fields and
/// secrets come out as `***`.
pub struct MaskedTrace<'a> {
    pub entries: std::borrow::Cow<'a, [TraceEntry]>,
    pub mask: &'a Mask,
}

impl MaskedTrace<'_> {
    /// The trace as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "[]".to_owned())
    }
}

impl Serialize for MaskedTrace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.entries.len()))?;
        for entry in self.entries.iter() {
            seq.serialize_element(&MaskedEntry {
                entry,
                mask: self.mask,
            })?;
        }
        seq.end()
    }
}

struct MaskedEntry<'a> {
    entry: &'a TraceEntry,
    mask: &'a Mask,
}

impl Serialize for MaskedEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.entry;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("step", &*e.step)?;
        map.serialize_entry("type", e.kind)?;
        map.serialize_entry("status", &e.status)?;
        map.serialize_entry("startUs", &e.start_us)?;
        map.serialize_entry("durationUs", &e.duration_us)?;
        let payloads = [
            ("input", e.input.as_deref()),
            ("output", e.output.as_deref()),
            ("error", e.error.as_ref()),
        ];
        for (name, value) in payloads {
            let Some(value) = value else { continue };
            if self.mask.is_empty() {
                map.serialize_entry(name, value)?;
            } else {
                map.serialize_entry(name, &self.mask.masked(value))?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::testing::Mocks;
    use crate::{Execution, Plan, RunOptions};

    fn plan(yaml: &str) -> Plan {
        crate::load_str(
            "t.yaml",
            yaml,
            sluice_spec::Format::Yaml,
            None,
            &crate::Catalog::core(),
        )
        .expect("compiles")
    }

    /// Runs `yaml` twice: as executions run, and with every change copied
    /// as before the journal (mocks turn changes in place off).
    async fn both(yaml: &str, input: Value) -> (Execution, Execution) {
        let plan = plan(yaml);
        let options = |mocks| RunOptions {
            trace_payloads: true,
            mocks,
            ..RunOptions::default()
        };
        let in_place = plan.execute(input.clone(), options(None)).await;
        let copied = plan
            .execute(input, options(Some(Mocks::new(Map::new()))))
            .await;
        (in_place, copied)
    }

    /// The trace without its times.
    fn shown(execution: &Execution) -> Vec<Value> {
        execution
            .trace()
            .iter()
            .map(|e| {
                json!({
                    "step": &*e.step, "type": e.kind, "status": e.status,
                    "input": e.input.as_deref(), "output": e.output.as_deref(), "error": e.error,
                })
            })
            .collect()
    }

    async fn same_trace(yaml: &str, input: Value) -> Execution {
        let (in_place, copied) = both(yaml, input).await;
        assert!(copied.journal.is_empty());
        assert_eq!(shown(&in_place), shown(&copied), "{yaml}");
        assert_eq!(
            in_place
                .result
                .as_ref()
                .map(|m| (**m).clone())
                .map_err(|e| e.to_value()),
            copied
                .result
                .as_ref()
                .map(|m| (**m).clone())
                .map_err(|e| e.to_value()),
        );
        assert!(
            in_place.masked_trace().to_json().len() > 2,
            "the trace serializes"
        );
        in_place
    }

    #[tokio::test]
    async fn the_benchmark_pipeline_changes_in_place_and_traces_the_same() {
        let yaml = r#"
name: t
steps:
  - type: set
    values: { body.greeting: hello }
  - type: choice
    when:
      - condition: "{{ message.body.n > 10 }}"
        steps: [{ type: set, values: { body.branch: gt10 } }]
    otherwise:
      - { type: set, values: { body.branch: le10 } }
  - type: response
    body: "{{ message.body }}"
"#;
        let input = json!({"body": {"n": 42, "name": "order-1"}, "headers": {"a": "b"}});
        let execution = same_trace(yaml, input.clone()).await;
        assert_eq!(execution.journal.len(), 2, "both sets changed in place");
        let trace = execution.trace();
        assert_eq!(trace[0].input.as_deref(), Some(&input));
        assert_eq!(
            trace[0].output.as_ref().unwrap()["body"]["greeting"],
            "hello"
        );
        assert!(
            trace[0].output.as_ref().unwrap()["body"]
                .get("branch")
                .is_none()
        );
        assert_eq!(
            trace[2].step.as_ref(),
            "steps[1]",
            "the choice after its branch"
        );
        assert_eq!(trace[2].input, trace[0].output);
        assert_eq!(trace[2].output.as_ref().unwrap()["body"]["branch"], "gt10");
    }

    #[tokio::test]
    async fn writes_and_removals_at_every_depth_trace_the_same() {
        let yaml = r#"
name: t
steps:
  - type: set
    values: { a: 1, b.c: "{{ message.x }}", "list[3]": z, x: replaced }
  - type: log
    message: "{{ message.a }}"
  - type: set
    values: { b.c.d: deeper, a: { nested: true } }
    remove: [x, "list[0]", nothing.here]
  - type: set
    if: "{{ message.a == 1 }}"
    values: { skipped: true }
  - type: set
    values: { last: "{{ message.b }}" }
    remove: [b]
"#;
        let execution = same_trace(yaml, json!({"x": {"keep": [1, 2]}, "list": [0], "z": 1})).await;
        assert_eq!(execution.journal.len(), 3);
    }

    #[tokio::test]
    async fn loops_branches_handlers_and_step_outputs_trace_the_same() {
        let cases = [
            (
                r#"
name: t
steps:
  - type: for-each
    items: "{{ message.items }}"
    collect: true
    steps:
      - type: json
        value: { v: "{{ item }}" }
      - type: set
        values: { double: "{{ message.v * 2 }}" }
  - type: set
    values: { done: true }
"#,
                json!({"items": [1, 2, 3]}),
            ),
            (
                r#"
name: t
steps:
  - type: for-each
    items: "{{ message }}"
    parallel: 3
    collect: true
    steps:
      - type: json
        value: { v: "{{ item }}" }
      - type: set
        values: { seen: true }
      - type: set
        values: { again: "{{ message.seen }}" }
"#,
                json!([1, 2, 3, 4]),
            ),
            (
                r#"
name: t
steps:
  - type: set
    values: { before: 1 }
  - type: parallel
    branches:
      left:
        - { type: set, values: { side: left } }
        - { type: set, values: { more: 1 } }
      right:
        - { type: set, values: { side: right } }
  - type: set
    values: { after: true }
"#,
                json!({"n": 1}),
            ),
            (
                r#"
name: t
steps:
  - type: block
    steps:
      - type: set
        values: { touched: true }
      - type: throw-error
        message: nope
    onException:
      - type: set
        values: { recovered: "{{ error.message }}" }
  - type: set
    values: { after: true }
"#,
                json!({"id": 1}),
            ),
            (
                r#"
name: t
steps:
  - id: first
    type: set
    values: { a: 1 }
  - type: set
    values: { b: "{{ steps.first.a }}" }
  - type: set
    values: { c: 3 }
  - type: set
    values: { x: 1 }
    into: inner
  - type: do-while
    condition: "{{ message.page < 3 }}"
    steps:
      - type: set
        values: { page: "{{ (message.page ?? 0) + 1 }}" }
  - type: set
    values: { bad: "{{ message.nope.deeper + 1 }}" }
    failOnError: false
  - type: set
    values: { end: "{{ steps.first }}" }
"#,
                json!({"start": true}),
            ),
            (
                r#"
name: t
steps:
  - type: retry
    attempts: 2
    steps:
      - type: set
        values: { tried: true }
      - type: throw-error
        message: down
        status: 503
  - type: set
    values: { never: true }
onException:
  - type: set
    values: { handled: "{{ error.message }}" }
"#,
                json!({"n": 1}),
            ),
        ];
        for (yaml, input) in cases {
            same_trace(yaml, input).await;
        }
    }

    #[tokio::test]
    async fn a_message_held_by_a_step_output_is_copied_not_changed() {
        let yaml = r#"
name: t
steps:
  - id: kept
    type: json
    value: { n: 1 }
  - type: set
    values: { n: 2 }
  - type: set
    values: { was: "{{ steps.kept.n }}" }
"#;
        let execution = same_trace(yaml, json!({})).await;
        assert_eq!(
            **execution.result.as_ref().unwrap(),
            json!({"n": 2, "was": 1})
        );
    }

    #[tokio::test]
    async fn branches_past_the_trace_limit_leave_no_journal_behind() {
        let yaml = r#"
name: t
steps:
  - type: for-each
    items: "{{ message }}"
    parallel: 8
    steps:
      - type: json
        value: { v: "{{ item }}" }
      - type: set
        values: { seen: true }
"#;
        let items: Vec<u32> = (0..12_000).collect();
        let execution = plan(yaml)
            .execute(
                json!(items),
                RunOptions {
                    trace_payloads: true,
                    ..RunOptions::default()
                },
            )
            .await;
        assert!(execution.result.is_ok());
        let kept = execution.steps.len();
        assert!(kept <= 10_000, "{kept}");
        assert!(
            execution.journal.len() <= kept / 2,
            "{} changes journaled for {kept} entries",
            execution.journal.len()
        );
    }
}
