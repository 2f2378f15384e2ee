//! Pipeline files: reading YAML and JSON into a JSON document with source
//! positions, the typed envelope of a pipeline (name, trigger, steps, tests),
//! human durations and sizes, the problems a file can have, and the JSON
//! Schema of the whole format.
//!
//! This crate does not know what a step *does*: step types are described to
//! it by a [`StepKind`] list that the engine (and connector crates) supply,
//! so the schema and the structural validation always match what runs.

mod brokers;
mod document;
mod human;
mod path;
mod pipeline;
mod problem;
mod schema;
mod yaml;

pub use brokers::{
    EmailAfter, EmailTrigger, KafkaStart, KafkaTrigger, MqttTrigger, NatsTrigger, RabbitmqTrigger,
};
pub use document::{Document, Format, Position, SourceMap};
pub use human::{ByteSize, HumanDuration};
pub use path::FieldPath;
pub use pipeline::{
    BodyEncoding, COMMON_STEP_FIELDS, EventTrigger, HttpAuth, HttpTrigger, PipelineDef,
    SchedulerTrigger, StepCommon, StepDef, TestCase, Trigger,
};
pub use problem::{Problem, Problems};
pub use schema::{StepKind, StructureValidator, pipeline_schema};
