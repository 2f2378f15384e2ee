//! Loading pipeline files: parse, check the structure against the schema,
//! compile every step, and report every problem found.

use std::path::Path;

use sluice_spec::{Document, FieldPath, Format, PipelineDef, Problems};

use crate::compile::Compiler;
use crate::plan::Plan;
use crate::{Catalog, LoadError};

/// Loads and compiles the pipeline file at `path`.
pub fn load_file(path: &Path, catalog: &Catalog) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let name = path.display().to_string();
    load_str(
        &name,
        &text,
        Format::from_path(path),
        path.parent(),
        catalog,
    )
}

/// Loads and compiles pipeline text; `source` names it in problems and
/// `base_dir` is where `call` steps find other pipeline files.
pub fn load_str(
    source: &str,
    text: &str,
    format: Format,
    base_dir: Option<&Path>,
    catalog: &Catalog,
) -> Result<Plan, LoadError> {
    let document = Document::parse(source, text, format).map_err(LoadError::Invalid)?;
    compile_document(&document, catalog, base_dir).map_err(LoadError::Invalid)
}

/// Compiles a parsed document, or gives every problem it has.
pub fn compile_document(
    document: &Document,
    catalog: &Catalog,
    base_dir: Option<&Path>,
) -> Result<Plan, Problems> {
    let mut compiler = Compiler::new(catalog, document, base_dir);
    match catalog.validator() {
        Ok(validator) => {
            for problem in validator.validate(document) {
                compiler.problems.push(problem);
            }
        }
        Err(e) => compiler.problem(FieldPath::root(), format!("internal schema error: {e}")),
    }
    let definition: PipelineDef = match serde_path_to_error::deserialize(&document.value) {
        Ok(d) => d,
        Err(e) => {
            if compiler.problems.is_empty() {
                let path = FieldPath::from_pointer(&pointer_of(&e.path().to_string()));
                compiler.problem(path, e.into_inner().to_string());
            }
            let mut problems = compiler.problems;
            problems.sort();
            return Err(problems);
        }
    };
    let root = FieldPath::root();
    let steps = compiler.steps(&definition.steps, &root.key("steps"));
    let on_exception = compiler.steps(&definition.on_exception, &root.key("onException"));
    let mut sensitive = Vec::new();
    for (i, field) in definition.sensitive_fields.iter().enumerate() {
        match crate::FieldRef::parse(field) {
            Ok(f) => sensitive.push(f.keys().collect()),
            Err(e) => compiler.problem(root.key("sensitiveFields").index(i), e),
        }
    }
    for (i, case) in definition.tests.iter().enumerate() {
        for id in case.mocks.keys() {
            if !compiler.ids.contains_key(id) {
                let path = root.key("tests").index(i).key("mocks").key(id);
                compiler.problem(path, format!("no step has the id '{id}' to mock"));
            }
        }
    }
    compiler.check_step_refs();
    let mut problems = compiler.problems;
    if !problems.is_empty() {
        problems.sort();
        return Err(problems);
    }
    match (steps, on_exception) {
        (Some(steps), Some(on_exception)) => Ok(Plan {
            definition,
            source: document.source.clone(),
            steps,
            on_exception,
            sensitive,
            masks: std::sync::Mutex::default(),
        }),
        // A step failed to compile without saying why: never silently accept it.
        _ => {
            problems.push(document.problem(root, "the pipeline could not be compiled"));
            Err(problems)
        }
    }
}

/// serde_path_to_error prints `a.b[0]`; turn it into a JSON pointer.
fn pointer_of(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if part.is_empty() {
            continue;
        }
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            out.push('/');
            out.push_str(&rest[..open]);
            rest = &rest[open..];
            for index in rest.split('[').filter(|s| !s.is_empty()) {
                out.push('/');
                out.push_str(index.trim_end_matches(']'));
            }
        } else {
            out.push('/');
            out.push_str(rest);
        }
    }
    out
}
