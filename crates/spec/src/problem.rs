//! Problems found in a pipeline file, each with where it is.

use std::fmt;

use crate::{FieldPath, Position};

/// One thing wrong with a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the document (`steps[3].when[0].condition`).
    pub path: FieldPath,
    /// What is wrong, in words a user can act on.
    pub message: String,
    /// Line and column in the file, when known.
    pub position: Option<Position>,
}

impl Problem {
    /// A problem at `path` with no position yet.
    pub fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Problem {
            path,
            message: message.into(),
            position: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.position {
            write!(f, "{}:{}: ", p.line, p.column)?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem of one file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    /// The file (or other source name) the problems are in.
    pub file: String,
    pub items: Vec<Problem>,
}

impl Problems {
    /// No problems yet, for `source`.
    pub fn new(source: impl Into<String>) -> Self {
        Problems {
            file: source.into(),
            items: Vec::new(),
        }
    }

    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a problem unless the same one (or one at the same path) is
    /// already there.
    pub fn push(&mut self, problem: Problem) {
        if !self
            .items
            .iter()
            .any(|p| p.path == problem.path && p.message == problem.message)
        {
            self.items.push(problem);
        }
    }

    /// Whether a problem was already reported at `path` or inside it.
    pub fn has_problem_under(&self, path: &FieldPath) -> bool {
        self.items.iter().any(|p| p.path.starts_with(path))
    }

    /// Sorts by position (problems without one last, by path).
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            let key = |p: &Problem| {
                p.position
                    .map_or((usize::MAX, usize::MAX), |x| (x.line, x.column))
            };
            key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
        });
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let gap = if p.position.is_some() { "" } else { " " };
            write!(f, "{}:{gap}{p}", self.file)?;
        }
        Ok(())
    }
}
