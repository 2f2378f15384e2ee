//! Field paths as users read them: `steps[3].when[0].condition`.

use std::fmt;

/// The path of a field inside a pipeline file, printed the way users write
/// it: keys joined by dots, indices in brackets, odd keys quoted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// The document root (prints as an empty string).
    pub fn root() -> Self {
        FieldPath(String::new())
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> Self {
        let mut out = self.0.clone();
        push_key(&mut out, key);
        FieldPath(out)
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// This path extended by a suffix that is already in path form
    /// (`.a.b[2]`, as expression compilers report it).
    pub fn suffix(&self, suffix: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(suffix.trim_start_matches('.').to_owned())
        } else {
            FieldPath(format!("{}{suffix}", self.0))
        }
    }

    /// The path of a JSON pointer (`/steps/3/when`), reading numeric
    /// segments as indices.
    pub fn from_pointer(pointer: &str) -> Self {
        let mut path = FieldPath::root();
        for raw in pointer.split('/').skip(1) {
            let segment = raw.replace("~1", "/").replace("~0", "~");
            path = match segment.parse::<usize>() {
                Ok(i) if !segment.starts_with('+') => path.index(i),
                _ => path.key(&segment),
            };
        }
        path
    }

    /// A path from its printed form.
    pub(crate) fn from_text(text: &str) -> FieldPath {
        FieldPath(text.to_owned())
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn starts_with(&self, other: &FieldPath) -> bool {
        self.0.starts_with(&other.0)
            && matches!(
                self.0.as_bytes().get(other.0.len()),
                None | Some(b'.' | b'[')
            )
    }
}

fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '@'));
    if plain {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
    } else {
        out.push_str("['");
        out.push_str(&key.replace('\'', "\\'"));
        out.push_str("']");
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(root)")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_user_paths() {
        let p = FieldPath::root().key("steps").index(3).key("when").index(0);
        assert_eq!(p.key("condition").as_str(), "steps[3].when[0].condition");
        assert_eq!(FieldPath::root().key("odd key").as_str(), "['odd key']");
        assert_eq!(p.suffix(".a[1]").as_str(), "steps[3].when[0].a[1]");
    }

    #[test]
    fn reads_pointers() {
        assert_eq!(
            FieldPath::from_pointer("/steps/2/values/a~1b").as_str(),
            "steps[2].values['a/b']"
        );
    }

    #[test]
    fn prefix_respects_segments() {
        let steps1 = FieldPath::root().key("steps").index(1);
        assert!(steps1.key("id").starts_with(&steps1));
        assert!(
            !FieldPath::root()
                .key("steps")
                .index(10)
                .starts_with(&steps1)
        );
    }
}
