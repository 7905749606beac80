//! `PlanError`: why a plan file was not accepted.

use std::fmt;

/// One problem in a plan file. `line` and `column` are 1-based; both are 0 when the problem has
/// no place in the file (e.g. a value built in code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Problem {
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            column,
            message: message.into(),
        }
    }

    /// A problem at a spanned value's location.
    pub fn at<T>(value: &crate::Spanned<T>, message: impl Into<String>) -> Self {
        Self::new(value.line(), value.column(), message)
    }
}

/// A plan could not be read or is not valid.
///
/// Display is `FILE: cannot read: ERROR` for I/O errors, and otherwise one line
/// `FILE:LINE:COL: MESSAGE` per problem (`FILE: MESSAGE` for a problem without a location).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{}", ProblemLines { file, problems })]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl PlanError {
    /// The plan file's name as given to `load` or `parse_str`.
    pub fn file(&self) -> &str {
        match self {
            PlanError::Read { file, .. } | PlanError::Invalid { file, .. } => file,
        }
    }

    /// The problems found, in file order (empty for an I/O error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            PlanError::Read { .. } => &[],
            PlanError::Invalid { problems, .. } => problems,
        }
    }

    /// `(line, column, message)` of every problem, in file order.
    pub fn locations(&self) -> Vec<(usize, usize, &str)> {
        self.problems()
            .iter()
            .map(|p| (p.line, p.column, p.message.as_str()))
            .collect()
    }
}

struct ProblemLines<'a> {
    file: &'a str,
    problems: &'a [Problem],
}

impl fmt::Display for ProblemLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.file, p.message)?;
            } else {
                write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, p.message)?;
            }
        }
        Ok(())
    }
}
