//! Tools from an API's own OpenAPI document (DESIGN.md §18): Swagger 2.0, OpenAPI 3.0 and
//! 3.1, JSON or YAML, read from a file or fetched from a URL while the policy loads.
//!
//! The document is read as a `serde_json::Value` and walked over the subset of the
//! specification a tool needs (paths, operations, parameters, request bodies, responses,
//! schemas), rather than through a model crate: `openapiv3` knows 3.0 only, `oas3` 3.1
//! only, neither reads Swagger 2.0, and both refuse whole documents over one field they
//! model differently, where a walker can skip what it does not need and name every problem
//! it meets by JSON pointer. `document` loads and parses; `refs` resolves local `$ref`s and
//! turns each schema into a self-contained JSON Schema 2020-12; `schema` reads what one part of
//! the document says; `translate` makes one
//! [`Tool`](super::Tool) per operation, the same runtime type a hand-written `tools:` entry
//! becomes, so everything after loading treats both alike.

pub mod document;
pub mod refs;
mod schema;
pub mod translate;

use std::fmt;

/// A problem in an OpenAPI document, located by JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    /// RFC 6901 pointer into the document (`/paths/~1pet/post/requestBody`); empty for the
    /// document as a whole.
    pub pointer: String,
    pub message: String,
}

impl Problem {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at #{}: {}", self.pointer, self.message)
        }
    }
}

/// Appends one reference token to a JSON pointer, escaped (`/` → `~1`, `~` → `~0`).
pub fn push_pointer(pointer: &str, token: &str) -> String {
    if token.contains(['~', '/']) {
        format!("{pointer}/{}", token.replace('~', "~0").replace('/', "~1"))
    } else {
        format!("{pointer}/{token}")
    }
}
