//! The policy file: YAML in, a validated [`Config`] out, or every problem with its location.
//!
//! Loading has two layers. `shape` mirrors the YAML with serde (unknown keys are errors);
//! `build` turns it into the runtime types of `runtime`, checking values, loading certificate
//! material and applying environment overrides, and collecting all problems instead of
//! stopping at the first. `mcp-edge validate` and `mcp-edge run` call the same [`load`].

mod build;
pub mod error;
mod interpolation;
pub mod openapi;
pub mod review;
pub mod runtime;
mod shape;
pub mod template;
pub mod tls_material;
pub mod units;

use std::collections::HashMap;
use std::path::Path;

pub use error::{ConfigError, ConfigErrors, Source};
pub use runtime::*;
pub use template::PathTemplate;
pub use tls_material::{TlsFile, TlsMaterial, TlsPaths, TlsProblem};

/// Environment variables visible to the loader (`${VAR}` and the overrides; a bare `$NAME` is
/// text, see `interpolation`).
pub type Environment = HashMap<String, String>;

/// Policy files larger than this are refused before parsing.
const MAX_CONFIG_BYTES: usize = 4 << 20;

/// Loads and validates the policy at `path` with the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let environment: Environment = std::env::vars().collect();
    load_with_environment(path, &environment)
}

/// Loads and validates the policy at `path` with an explicit environment (used by tests).
pub fn load_with_environment(path: &Path, environment: &Environment) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let fail = |message: String| ConfigErrors {
        file: file.clone(),
        errors: vec![ConfigError { file: file.clone(), source: Source::Document, key: String::new(), message }],
    };
    let text = std::fs::read_to_string(path).map_err(|error| fail(format!("cannot read the policy file: {error}")))?;
    if text.len() > MAX_CONFIG_BYTES {
        return Err(fail(format!("the policy file is larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let (raw, escapes) = parse(&text, environment)
        .map_err(|error| ConfigErrors { file: file.clone(), errors: vec![error.in_file(&file)] })?;
    let as_written = |mut error: ConfigError| {
        error.source = escapes.original(error.source);
        error
    };
    let mut builder = build::Builder::new(path, environment);
    let mut config = builder.build(raw, path);
    if builder.errors.is_empty() {
        config.warnings = builder.warnings.into_iter().map(as_written).collect();
        return Ok(config);
    }
    let mut errors: Vec<ConfigError> = builder.errors.into_iter().map(as_written).collect();
    // Whole-document problems first, then environment overrides, then in file order.
    errors.sort_by_key(|error| match error.source {
        Source::Document => (0, 0, 0),
        Source::Env(_) => (1, 0, 0),
        Source::File { line, column } => (2, line, column),
    });
    Err(ConfigErrors { file, errors })
}

/// A parse error before the file name is known to it.
struct ParseError {
    source: Source,
    message: String,
}

impl ParseError {
    fn in_file(self, file: &str) -> ConfigError {
        ConfigError { file: file.to_string(), source: self.source, key: String::new(), message: self.message }
    }
}

/// Parses the policy with `${VAR}` interpolated (and nothing else, see `interpolation`), and
/// the escapes needed to report locations in the file as written.
fn parse(text: &str, environment: &Environment) -> Result<(shape::RawConfig, interpolation::Escapes), ParseError> {
    match interpolation::escape_bare_dollars(text) {
        Ok((escaped, escapes)) => match parse_escaped(&escaped, environment) {
            Ok(raw) => Ok((raw, escapes)),
            Err(mut error) => {
                error.source = escapes.original(error.source);
                Err(error)
            }
        },
        // Not YAML to the event parser: the loader's own message says why, the same as before
        // escaping existed. Should the loader accept what the event parser refused, the file is
        // refused all the same, as no `$` in it could be told apart.
        Err(scan) => Err(parse_escaped(text, environment).err().unwrap_or_else(|| {
            let marker = scan.marker();
            ParseError {
                source: Source::File { line: marker.line() as u64, column: marker.col() as u64 + 1 },
                message: scan.info(),
            }
        })),
    }
}

fn parse_escaped(text: &str, environment: &Environment) -> Result<shape::RawConfig, ParseError> {
    let budget = serde_saphyr::budget! {
        max_depth: 32,
        max_nodes: 50_000,
        max_aliases: 100,
        max_anchors: 100,
        max_documents: 1,
    };
    let options = serde_saphyr::options! {
        budget: budget,
        property_syntax: serde_saphyr::PropertySyntax::DockerComposeWithNulls,
    }
    .with_properties(environment.clone());
    let raw: Option<shape::RawConfig> = serde_saphyr::from_str_with_options(text, options).map_err(|error| {
        let source = error
            .location()
            .filter(|location| location.line() > 0)
            .map_or(Source::Document, |location| Source::File { line: location.line(), column: location.column() });
        ParseError { source, message: describe_parse_error(&error) }
    })?;
    Ok(raw.unwrap_or_default())
}

/// The parser's message without its own location prefix or source snippet (we print ours).
fn describe_parse_error(error: &serde_saphyr::Error) -> String {
    let rendered = error.without_snippet().render_with_formatter(&serde_saphyr::UserMessageFormatter);
    let first = rendered.lines().find(|line| !line.trim().is_empty()).unwrap_or_default().trim();
    let first = first.strip_prefix("error:").unwrap_or(first).trim();
    // Drop a leading "line L column C:" which we already print as file:L:C.
    let message = match first.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        Some((position, message)) if position.contains("column") => message,
        _ => first,
    };
    // And a trailing "at line L, column C", for the same reason.
    match message.rfind(" at line ") {
        Some(index) if message[index..].contains("column") => message[..index].to_string(),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests;
