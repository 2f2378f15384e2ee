//! The explicit list of step types: each entry names a type, gives the
//! JSON Schema of its fields and compiles its config into a runtime step.

use std::sync::{Arc, OnceLock};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;
use sluice_spec::{StepKind, StructureValidator};

use crate::compile::StepCx;
use crate::steps::{self, Step};

/// How one step type is described and compiled.
#[derive(Clone, Copy)]
pub struct StepFactory {
    pub kind: StepKind,
    /// Reads the step's config (through the context) and builds its runtime.
    pub compile: fn(&mut StepCx<'_, '_>) -> Option<Box<dyn Step>>,
}

/// The schema function for a config type.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    T::json_schema(generator)
}

/// Every step type a pipeline may use.
#[derive(Clone)]
pub struct Catalog {
    factories: Vec<StepFactory>,
    schema: Arc<OnceLock<(Value, Result<StructureValidator, String>)>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.factories.iter().map(|f| f.kind.name))
            .finish()
    }
}

impl Catalog {
    /// The engine's own steps: logic and data.
    pub fn core() -> Self {
        Catalog::from_factories(vec![
            // Logic.
            steps::choice::FACTORY,
            steps::block::FACTORY,
            steps::for_each::FACTORY,
            steps::do_while::FACTORY,
            steps::parallel::FACTORY,
            steps::retry::FACTORY,
            steps::throw_error::FACTORY,
            steps::assert::FACTORY,
            steps::delay::FACTORY,
            steps::call::FACTORY,
            // Data.
            steps::set::FACTORY,
            steps::json::FACTORY,
            steps::jq::FACTORY,
            steps::jsonpath::FACTORY,
            steps::jolt::FACTORY,
            steps::template::FACTORY,
            steps::script::FACTORY,
            steps::validate::FACTORY,
            steps::log::FACTORY,
            steps::response::FACTORY,
            steps::session::FACTORY,
            steps::object_store::FACTORY,
            steps::publish::FACTORY,
        ])
    }

    /// A catalog of exactly these step types.
    pub fn from_factories(factories: Vec<StepFactory>) -> Self {
        Catalog {
            factories,
            schema: Arc::new(OnceLock::new()),
        }
    }

    /// Adds step types (connector crates register theirs this way).
    pub fn extend(&mut self, more: impl IntoIterator<Item = StepFactory>) {
        self.factories.extend(more);
        self.schema = Arc::new(OnceLock::new());
    }

    /// The factory of step type `name`.
    pub fn get(&self, name: &str) -> Option<&StepFactory> {
        self.factories.iter().find(|f| f.kind.name == name)
    }

    /// Every step type.
    pub fn kinds(&self) -> impl Iterator<Item = &StepKind> {
        self.factories.iter().map(|f| &f.kind)
    }

    /// The known type nearest to a misspelt `name`, when one is close.
    pub fn closest(&self, name: &str) -> Option<&'static str> {
        self.factories
            .iter()
            .map(|f| (edit_distance(name, f.kind.name), f.kind.name))
            .filter(|(d, candidate)| *d <= 2.max(candidate.len() / 3))
            .min_by_key(|(d, _)| *d)
            .map(|(_, n)| n)
    }

    /// The JSON Schema of pipeline files using this catalog.
    pub fn schema(&self) -> &Value {
        &self.compiled_schema().0
    }

    pub(crate) fn validator(&self) -> Result<&StructureValidator, &str> {
        self.compiled_schema().1.as_ref().map_err(String::as_str)
    }

    fn compiled_schema(&self) -> &(Value, Result<StructureValidator, String>) {
        self.schema.get_or_init(|| {
            let kinds: Vec<StepKind> = self.kinds().copied().collect();
            let schema = sluice_spec::pipeline_schema(&kinds);
            let validator = StructureValidator::new(&schema);
            (schema, validator)
        })
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}
