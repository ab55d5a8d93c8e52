//! Configuration problems with their location, collected rather than stopping at the first.

use std::fmt;

/// Where a configuration value came from, so a problem can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A position in the policy file (1-based line and column).
    File { line: u64, column: u64 },
    /// An environment override such as `API_BASE_URL`.
    Env(&'static str),
    /// The policy file as a whole (a missing section, an unreadable file).
    Document,
}

/// One problem in the configuration: where it is, which key, and what is allowed instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub source: Source,
    /// Dotted key path such as `upstream.retry.backoff`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::File { line, column } => write!(f, "{}:{line}:{column}: ", self.file)?,
            Source::Env(name) => write!(f, "environment variable {name}: ")?,
            Source::Document => write!(f, "{}: ", self.file)?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            writeln!(f, "{error}")?;
        }
        let count = self.errors.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(f, "{count} {noun} in {}", self.file)
    }
}

impl std::error::Error for ConfigErrors {}
