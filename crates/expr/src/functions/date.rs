use super::FunctionDef;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[];
