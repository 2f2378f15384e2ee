//! Turning step definitions into compiled step lists, collecting every
//! problem on the way instead of stopping at the first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{Document, FieldPath, Problem, Problems, StepCommon, StepDef};

use crate::steps::Node;
use crate::{Catalog, FieldRef, StepList};

/// State of compiling one pipeline.
pub(crate) struct Compiler<'c> {
    pub catalog: &'c Catalog,
    pub document: &'c Document,
    pub problems: Problems,
    /// Step id → where it is defined.
    pub ids: HashMap<String, FieldPath>,
    /// Every `steps.<id>` read, with where it was read.
    pub step_refs: Vec<(String, FieldPath)>,
    pub base_dir: Option<PathBuf>,
}

impl<'c> Compiler<'c> {
    pub fn new(catalog: &'c Catalog, document: &'c Document, base_dir: Option<&Path>) -> Self {
        Compiler {
            catalog,
            document,
            problems: Problems::new(document.source.clone()),
            ids: HashMap::new(),
            step_refs: Vec::new(),
            base_dir: base_dir.map(Path::to_path_buf),
        }
    }

    pub fn problem(&mut self, path: FieldPath, message: impl Into<String>) {
        let problem = self.document.problem(path, message);
        self.problems.push(problem);
    }

    /// Reports a deserialization error unless the schema already reported
    /// something there.
    fn deserialize<T: DeserializeOwned>(&mut self, value: Value, path: &FieldPath) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(t) => Some(t),
            Err(e) => {
                let inner = e.path().to_string();
                let at = if inner == "." || inner.is_empty() {
                    path.clone()
                } else {
                    path.suffix(&format!(".{inner}"))
                };
                if !self.problems.has_problem_under(path) {
                    self.problem(at, e.into_inner().to_string());
                }
                None
            }
        }
    }

    /// Compiles a list of steps found at `path`.
    pub fn steps(&mut self, defs: &[StepDef], path: &FieldPath) -> Option<StepList> {
        let mut nodes = Vec::with_capacity(defs.len());
        let mut ok = true;
        for (i, def) in defs.iter().enumerate() {
            match self.step(def, path.index(i)) {
                Some(node) => nodes.push(node),
                None => ok = false,
            }
        }
        ok.then(|| StepList(nodes.into()))
    }

    fn step(&mut self, def: &StepDef, path: FieldPath) -> Option<Node> {
        let Some(kind) = def.kind().map(str::to_owned) else {
            if def.fields.contains_key("type") {
                self.problem(path.key("type"), "the step type must be a string");
            } else {
                self.problem(path, "missing required field \"type\"");
            }
            return None;
        };
        let Some(factory) = self.catalog.get(&kind) else {
            let hint = self
                .catalog
                .closest(&kind)
                .map(|k| format!(" (did you mean '{k}'?)"))
                .unwrap_or_default();
            self.problem(
                path.key("type"),
                format!("unknown step type '{kind}'{hint}"),
            );
            return None;
        };
        let common: Option<StepCommon> =
            self.deserialize(Value::Object(def.common_fields()), &path);
        let common = common.unwrap_or_default();
        if let Some(id) = &common.id {
            if let Some(first) = self.ids.get(id) {
                let message = format!("duplicate step id '{id}' (first used at {first})");
                self.problem(path.key("id"), message);
            } else {
                self.ids.insert(id.clone(), path.clone());
            }
        }
        let condition = match &common.condition {
            Some(src) => Some(self.template(path.key("if"), src)?),
            None => None,
        };
        let into = match &common.into {
            Some(text) => match FieldRef::parse(text) {
                Ok(f) => Some(f),
                Err(e) => {
                    self.problem(path.key("into"), e);
                    return None;
                }
            },
            None => None,
        };
        let mut cx = StepCx {
            compiler: self,
            def,
            path: path.clone(),
        };
        let step = (factory.compile)(&mut cx)?;
        let label: Arc<str> = common.id.as_deref().unwrap_or(path.as_str()).into();
        Some(Node {
            id: common.id.as_deref().map(Arc::from),
            label,
            kind: factory.kind.name,
            condition,
            into,
            timeout: common.timeout.map(|t| t.0),
            fail_on_error: common.fail_on_error.unwrap_or(true),
            step,
        })
    }

    /// Compiles a template at `path`, recording the step ids it reads.
    pub fn template(&mut self, path: FieldPath, src: &str) -> Option<Template> {
        match Template::compile(src) {
            Ok(t) => {
                for id in t.step_refs() {
                    self.step_refs.push((id.to_owned(), path.clone()));
                }
                Some(t)
            }
            Err(e) => {
                self.problem(path, format!("invalid expression: {e}"));
                None
            }
        }
    }

    pub fn value_template(&mut self, path: FieldPath, value: &Value) -> Option<ValueTemplate> {
        match ValueTemplate::compile(value) {
            Ok(t) => {
                for id in t.step_refs() {
                    self.step_refs.push((id.to_owned(), path.clone()));
                }
                Some(t)
            }
            Err((suffix, e)) => {
                self.problem(path.suffix(&suffix), format!("invalid expression: {e}"));
                None
            }
        }
    }

    /// Checks every `steps.<id>` read against the ids defined.
    pub fn check_step_refs(&mut self) {
        let refs = std::mem::take(&mut self.step_refs);
        for (id, path) in refs {
            if !self.ids.contains_key(&id) {
                self.problem(
                    path,
                    format!("no step has the id '{id}' (read as steps.{id})"),
                );
            }
        }
    }
}

/// What a step's compile function sees: its definition, where it stands,
/// and helpers that record problems instead of failing.
pub struct StepCx<'a, 'c> {
    compiler: &'a mut Compiler<'c>,
    def: &'a StepDef,
    path: FieldPath,
}

impl StepCx<'_, '_> {
    /// The path of this step (`steps[2]`).
    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    /// The step's id, or its path when it has none (names it in logs).
    pub fn label(&self) -> String {
        self.def
            .fields
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| self.path.to_string(), str::to_owned)
    }

    /// The step's own fields read into its config type; `None` (with the
    /// problem recorded) when they do not fit.
    pub fn config<T: DeserializeOwned>(&mut self) -> Option<T> {
        let path = self.path.clone();
        self.compiler
            .deserialize(Value::Object(self.def.config_fields()), &path)
    }

    /// Compiles the template in field `field` of this step.
    pub fn template(&mut self, field: &str, src: &str) -> Option<Template> {
        let path = self.path.key(field);
        self.compiler.template(path, src)
    }

    /// Compiles a template found at `path`.
    pub fn template_at(&mut self, path: FieldPath, src: &str) -> Option<Template> {
        self.compiler.template(path, src)
    }

    /// Compiles the JSON tree of field `field` (strings may hold templates).
    pub fn value_template(&mut self, field: &str, value: &Value) -> Option<ValueTemplate> {
        let path = self.path.key(field);
        self.compiler.value_template(path, value)
    }

    /// Compiles a JSON tree found at `path`.
    pub fn value_template_at(&mut self, path: FieldPath, value: &Value) -> Option<ValueTemplate> {
        self.compiler.value_template(path, value)
    }

    /// Compiles nested steps found at `path`.
    pub fn steps(&mut self, path: FieldPath, defs: &[StepDef]) -> Option<StepList> {
        self.compiler.steps(defs, &path)
    }

    /// Parses a dotted field path found at `path`.
    pub fn field_ref(&mut self, path: FieldPath, text: &str) -> Option<FieldRef> {
        match FieldRef::parse(text) {
            Ok(f) => Some(f),
            Err(e) => {
                self.compiler.problem(path, e);
                None
            }
        }
    }

    /// Records a problem at `path`.
    pub fn problem(&mut self, path: FieldPath, message: impl Into<String>) {
        self.compiler.problem(path, message);
    }

    /// The directory of the pipeline file, when it came from one.
    pub fn base_dir(&self) -> Option<&Path> {
        self.compiler.base_dir.as_deref()
    }

    /// The problems so far (for steps that report more than one).
    pub fn problems(&self) -> &[Problem] {
        &self.compiler.problems.items
    }
}
