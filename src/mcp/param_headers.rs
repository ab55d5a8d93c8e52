//! `x-mcp-header` (2026-07-28, SEP-2243): a tool's input schema may mark a top-level property
//! with `"x-mcp-header": "Region"`; a client then repeats that argument in an
//! `Mcp-Param-Region` header, so that a load balancer or WAF can route on it without reading
//! the body. The edge holds the client to it: the header must be there whenever the argument
//! is, absent when the argument is, and equal to it once decoded, or the call is refused with
//! 400 and -32020 (`HeaderMismatch`) before the upstream is called. Otherwise a request could
//! be routed by one value and executed with another.
//!
//! Values: a string as is, a number in its JSON spelling, a boolean as `true`/`false`; a
//! header value wrapped as `=?base64?…?=` is strict, padded base64 of UTF-8 (anything else
//! inside the wrapper is refused, not taken literally); a value without the whole wrapper is
//! literal. Surrounding whitespace is not part of a header value (RFC 9110 §5.5).

use base64::Engine;
use serde_json::{Map, Value};

/// One property a tool mirrors into a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The argument's name.
    pub property: String,
    /// The header, lowercased: `mcp-param-region`.
    pub header: String,
    /// For messages: `Mcp-Param-Region`.
    pub display: String,
}

/// The `x-mcp-header` properties of an input schema; `Err` for a marking that cannot work (not
/// a header token, or named twice).
pub fn declared(input_schema: &Value) -> Result<Vec<ParamHeader>, String> {
    let Some(properties) = input_schema.get("properties").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut headers: Vec<ParamHeader> = Vec::new();
    for (property, schema) in properties {
        let Some(marking) = schema.get("x-mcp-header") else { continue };
        let Some(name) = marking.as_str().filter(|name| is_token(name)) else {
            return Err(format!(
                "input_schema.properties.{property}.x-mcp-header must be a header name (letters, digits, -)"
            ));
        };
        let header = format!("mcp-param-{}", name.to_ascii_lowercase());
        if headers.iter().any(|existing| existing.header == header) {
            return Err(format!("x-mcp-header {name:?} is declared by two properties"));
        }
        headers.push(ParamHeader { property: property.clone(), header, display: format!("Mcp-Param-{name}") });
    }
    Ok(headers)
}

fn is_token(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

/// The header spelling of an argument; `None` for a type a header cannot carry.
fn expected(argument: &Value) -> Option<String> {
    match argument {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A header value as the client meant it: `None` when it is wrapped but not valid base64 of
/// UTF-8.
pub fn decode(value: &str) -> Option<String> {
    let value = value.trim_matches([' ', '\t']);
    match value.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_string()),
    }
}

/// Checks each declared header against the arguments; `Err` is the message of the -32020.
pub fn check<'h>(
    declared: &[ParamHeader],
    arguments: &Map<String, Value>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<(), String> {
    for param in declared {
        let argument = arguments.get(&param.property).filter(|value| !value.is_null());
        match (argument, header(&param.header)) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(format!("{} is required when arguments carry {}", param.display, param.property));
            }
            (None, Some(_)) => {
                return Err(format!("{} is sent but arguments carry no {}", param.display, param.property));
            }
            (Some(argument), Some(value)) => {
                let Some(decoded) = decode(value) else {
                    return Err(format!("{} is not valid =?base64?…?= (padded base64 of UTF-8)", param.display));
                };
                // An argument of a type no header can carry is left to the schema.
                if expected(argument).is_some_and(|expected| expected != decoded) {
                    return Err(format!("{} must match arguments.{}", param.display, param.property));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn region() -> Vec<ParamHeader> {
        declared(&json!({"properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "n": {}}}))
            .expect("declared")
    }

    fn run(arguments: Value, value: Option<&str>) -> Result<(), String> {
        let Value::Object(arguments) = arguments else { panic!("object") };
        check(&region(), &arguments, |name| (name == "mcp-param-region").then_some(value).flatten())
    }

    #[test]
    fn declarations_are_read_and_checked() {
        assert_eq!(region()[0].header, "mcp-param-region");
        assert!(declared(&json!({"properties": {"a": {"x-mcp-header": "bad name"}}})).is_err());
        assert!(declared(&json!({"properties": {"a": {"x-mcp-header": 3}}})).is_err());
        let twice = json!({"properties": {"a": {"x-mcp-header": "R"}, "b": {"x-mcp-header": "r"}}});
        assert!(declared(&twice).is_err());
        assert_eq!(declared(&json!({"type": "object"})), Ok(Vec::new()));
    }

    #[test]
    fn values_are_decoded_and_compared() {
        assert_eq!(run(json!({"region": "Hello"}), Some("=?base64?SGVsbG8=?=")), Ok(()));
        assert_eq!(run(json!({"region": "Hello"}), Some("  Hello ")), Ok(()));
        assert_eq!(run(json!({"region": "SGVsbG8="}), Some("SGVsbG8=")), Ok(()), "no wrapper: literal");
        assert_eq!(run(json!({"region": "=?base64?SGVsbG8="}), Some("=?base64?SGVsbG8=")), Ok(()));
        assert_eq!(run(json!({"region": 42}), Some("42")), Ok(()));
        assert_eq!(run(json!({"n": 1}), None), Ok(()));
        assert_eq!(run(json!({"region": null}), None), Ok(()));
        assert!(run(json!({"region": "Hello"}), Some("=?base64?SGVsbG8?=")).is_err(), "padding");
        assert!(run(json!({"region": "Hello"}), Some("=?base64?SGVs!!!bG8=?=")).is_err(), "alphabet");
        assert!(run(json!({"region": "Hello"}), Some("Bye")).is_err(), "mismatch");
        assert!(run(json!({"region": "Hello"}), None).is_err(), "absent");
        assert!(run(json!({}), Some("Hello")).is_err(), "no argument");
    }
}
