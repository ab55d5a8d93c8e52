//! Policies as data. A test writes its part of the policy as a `serde_json::Value`
//! (`json!({"auth": {"mode": "none"}})`), changes it by index (`policy["auth"]["mode"] = ...`),
//! and `TestEdge` writes it out as YAML, so no test spells YAML inside `format!` with `{{ }}`
//! escapes. Text stays possible (`&str`) for the tests whose point is the text: malformed YAML
//! and errors located by line and column.

use serde_json::{Map, Value, json};

/// What `TestEdge::new` and `TestEdge::rewrite_policy` accept: the test's part of the policy
/// file, as YAML text.
pub trait PolicyText {
    fn policy_yaml(&self) -> String;
}

impl PolicyText for str {
    fn policy_yaml(&self) -> String {
        self.to_string()
    }
}

impl PolicyText for String {
    fn policy_yaml(&self) -> String {
        self.clone()
    }
}

impl PolicyText for Value {
    fn policy_yaml(&self) -> String {
        to_yaml(self)
    }
}

impl<T: PolicyText + ?Sized> PolicyText for &T {
    fn policy_yaml(&self) -> String {
        (**self).policy_yaml()
    }
}

/// No authentication: the start of most policies.
pub fn open() -> Value {
    json!({"auth": {"mode": "none"}})
}

/// Static bearer authentication with these token values (no ids, no scopes).
pub fn bearer(tokens: &[&str]) -> Value {
    json!({"auth": {"mode": "bearer", "bearer": {"tokens": tokens}}})
}

/// A block-style YAML document for a JSON value whose top level is an object. Strings are
/// written double-quoted with JSON escapes (a subset of YAML's), so a value never turns into
/// another type on the way (`"on"`, `"1.0"`, `"null"` stay strings).
pub fn to_yaml(value: &Value) -> String {
    let Value::Object(map) = value else { panic!("a policy is a mapping, not {value}") };
    let mut out = String::new();
    write_mapping(map, 0, &mut out);
    out
}

fn write_mapping(map: &Map<String, Value>, indent: usize, out: &mut String) {
    for (key, value) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&scalar(&Value::String(key.clone())));
        out.push(':');
        write_nested(value, indent + 2, out);
    }
}

fn write_sequence(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key goes on the dash's line, the others under it.
                let mut nested = String::new();
                write_mapping(map, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(&nested[indent + 2..]);
            }
            _ => write_nested(item, indent + 2, out),
        }
    }
}

/// After `key:` or `-`: a scalar (or an empty collection) on the same line, else the
/// collection on the next lines at `indent`.
fn write_nested(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_mapping(map, indent, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_sequence(items, indent, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(value));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".to_string(),
        Value::Array(_) => "[]".to_string(),
        // JSON's quoting and escapes are valid YAML; a plain key reads better.
        Value::String(text) if is_plain(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Strings that YAML reads back as the same string when written without quotes: a letter
/// first, then letters, digits, `_` and `-`, and not one of YAML's words for other types.
fn is_plain(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|char| char.is_ascii_alphanumeric() || char == '_' || char == '-')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "auth": {"mode": "bearer", "bearer": {"tokens": [{"id": "a", "value": "x: y"}, "plain", "on"]}},
            "tools": [{"name": "t", "path": "/c/{id}", "input_schema": {"type": "object", "properties": {}}}],
            "limits": {"max_body_bytes": "1KiB", "enabled": false, "count": 3, "list": [], "quote": "a\"b\\c\n"},
        })
    }

    #[test]
    fn nested_values_come_out_as_block_yaml() {
        assert_eq!(
            to_yaml(&sample()),
            "auth:\n  bearer:\n    tokens:\n      - id: a\n        value: \"x: y\"\n      - plain\n      - \"on\"\n  mode: bearer\n\
             limits:\n  count: 3\n  enabled: false\n  list: []\n  max_body_bytes: \"1KiB\"\n  quote: \"a\\\"b\\\\c\\n\"\n\
             tools:\n  - input_schema:\n      properties: {}\n      type: object\n    name: t\n    path: \"/c/{id}\"\n"
        );
    }

    #[test]
    fn the_yaml_reads_back_as_the_same_value() {
        let read: Value = serde_saphyr::from_str(&to_yaml(&sample())).expect("valid YAML");
        assert_eq!(read, sample());
    }
}
