//! Tool path templates (`/companies/{companyId}/shifts`), parsed once and rendered per call.
//!
//! Every variable is percent-encoded with everything but letters, digits, `-`, `_` and `~`
//! escaped, so a value can never add a `/`, a query or a fragment; values made only of dots
//! are refused, because `%2E%2E` is `..` to a server that normalises after decoding.
//!
//! It lives in the config layer because a tool's `path` is parsed, and its variables checked
//! against the input schema, while the policy loads; the MCP layer only renders it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters escaped in a path variable: all but `A-Z a-z 0-9 - _ ~`.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<Part>,
}

impl PathTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        Self::parse_with(template, |name| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    }

    /// An OpenAPI path (`/pets/{pet-id}`): a variable is named as its path parameter is,
    /// which may hold any character but `/`, `{` and `}`.
    pub fn parse_openapi(template: &str) -> Result<Self, String> {
        Self::parse_with(template, |name| !name.contains('/'))
    }

    fn parse_with(template: &str, is_name: fn(&str) -> bool) -> Result<Self, String> {
        if !template.starts_with('/') {
            return Err(format!("{template:?} must start with /"));
        }
        if template.contains(['?', '#']) {
            return Err(format!("{template:?} must be a path only (arguments become the query string)"));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (literal, after) = rest.split_at(open);
            if literal.contains('}') {
                return Err(format!("{template:?} has a `}}` without `{{`"));
            }
            let close = after.find('}').ok_or_else(|| format!("{template:?} has a `{{` without `}}`"))?;
            let name = &after[1..close];
            if name.is_empty() || !is_name(name) {
                return Err(format!("{template:?}: {{{name}}} is not a variable name (letters, digits, _)"));
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(literal.to_string()));
            }
            parts.push(Part::Variable(name.to_string()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("{template:?} has a `}}` without `{{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills the variables from `arguments`; `Err` names the offending argument.
    pub fn render(&self, arguments: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
        let mut path = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(literal) => path.push_str(literal),
                Part::Variable(name) => {
                    let value = match arguments.get(name) {
                        Some(serde_json::Value::String(text)) => text.clone(),
                        Some(serde_json::Value::Number(number)) => number.to_string(),
                        Some(serde_json::Value::Bool(flag)) => flag.to_string(),
                        Some(_) => return Err(format!("argument {name} must be a string, number or boolean")),
                        None => return Err(format!("argument {name} is required")),
                    };
                    if value.is_empty() || value.bytes().all(|b| b == b'.') {
                        return Err(format!("argument {name} must not be empty, `.` or `..`"));
                    }
                    // `\` is a path separator to HTTP.sys and IIS, which decode `%5C`: `..\..`
                    // would be traversal there. Control characters have no business in a path.
                    if value.chars().any(|c| c == '\\' || c.is_control()) {
                        return Err(format!("argument {name} must not contain `\\` or control characters"));
                    }
                    path.extend(utf8_percent_encode(&value, PATH_VALUE));
                }
            }
        }
        Ok(path)
    }
}

impl std::fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(literal) => f.write_str(literal)?,
                Part::Variable(name) => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, arguments: &serde_json::Value) -> Result<String, String> {
        PathTemplate::parse(template).expect("template").render(arguments.as_object().expect("object"))
    }

    #[test]
    fn variables_are_filled_and_encoded() {
        assert_eq!(
            render("/companies/{id}/shifts", &serde_json::json!({"id": "42"})),
            Ok("/companies/42/shifts".into())
        );
        assert_eq!(render("/items/{n}", &serde_json::json!({"n": 7})), Ok("/items/7".into()));
        assert_eq!(
            render("/files/{f}", &serde_json::json!({"f": "a/../../b c?d#e"})),
            Ok("/files/a%2F%2E%2E%2F%2E%2E%2Fb%20c%3Fd%23e".into())
        );
        assert_eq!(render("/files/{f}", &serde_json::json!({"f": "é"})), Ok("/files/%C3%A9".into()));
    }

    #[test]
    fn traversal_and_missing_values_are_refused() {
        assert!(render("/files/{f}", &serde_json::json!({"f": ".."})).expect_err("dots").contains("argument f"));
        assert!(render("/files/{f}", &serde_json::json!({"f": "."})).is_err());
        assert!(render("/files/{f}", &serde_json::json!({"f": ""})).is_err());
        assert!(render("/files/{f}", &serde_json::json!({})).expect_err("missing").contains("argument f is required"));
        assert!(render("/files/{f}", &serde_json::json!({"f": {"x": 1}})).is_err());
    }

    #[test]
    fn backslashes_and_control_characters_are_refused() {
        for value in ["..\\..", "a\\..\\b", "\\", "a\u{0}b", "a\nb", "a\rb", "a\tb", "a\u{7f}b", "a\u{85}b"] {
            let refused = render("/files/{f}", &serde_json::json!({ "f": value })).expect_err(value);
            assert!(refused.contains("argument f must not contain"), "{value:?}: {refused}");
        }
        assert_eq!(render("/files/{f}", &serde_json::json!({"f": "a b"})), Ok("/files/a%20b".into()));
    }

    #[test]
    fn malformed_templates_are_refused() {
        for template in ["companies/{id}", "/a/{id", "/a/id}", "/a/{}", "/a/{x-y}", "/a?b={c}"] {
            assert!(PathTemplate::parse(template).is_err(), "{template}");
        }
        let template = PathTemplate::parse("/a/{x}/b/{y_2}").expect("template");
        assert_eq!(template.variables().collect::<Vec<_>>(), ["x", "y_2"]);
        assert_eq!(template.to_string(), "/a/{x}/b/{y_2}");
    }
}
