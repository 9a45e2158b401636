//! Library errors. Every error that comes from user input carries a location.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a user's file: `path:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl Location {
    pub fn new(file: &Path, line: usize, col: usize) -> Location {
        Location {
            file: file.to_path_buf(),
            line,
            col,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax or structure error in a user's file (exit code 4).
    #[error("{loc}: {msg}{}", fmt_snippet(.snippet))]
    Parse {
        loc: Location,
        msg: String,
        snippet: String,
    },
    /// A template failed to render.
    #[error("{0}")]
    Template(String),
    /// Bad command-line options (exit code 5).
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Other(String),
}

fn fmt_snippet(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("\n\n{s}")
    }
}

impl Error {
    pub fn parse(loc: Location, msg: impl Into<String>) -> Error {
        Error::Parse {
            loc,
            msg: msg.into(),
            snippet: String::new(),
        }
    }

    /// Adds the offending line when the file can be read.
    pub fn with_snippet(self) -> Error {
        match self {
            Error::Parse { loc, msg, snippet } if snippet.is_empty() => {
                let snippet = std::fs::read_to_string(&loc.file)
                    .map(|t| crate::yaml::snippet(&t, loc.line, loc.col))
                    .unwrap_or_default();
                Error::Parse { loc, msg, snippet }
            }
            other => other,
        }
    }

    /// Exit code as ansible-playbook documents them.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse { .. } => 4,
            Error::Usage(_) => 5,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
