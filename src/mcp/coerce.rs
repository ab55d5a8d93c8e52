//! Lenient scalars (`mcp.coerce_arguments`, default on; DESIGN.md §21): before the arguments
//! are validated, a scalar of the wrong JSON type is turned into the one the schema declares
//! when that loses nothing and the schema leaves no choice. Clients do this all the time: the
//! MCP Inspector CLI sends `--tool-arg companyId=42` as the number 42 to a string field, models
//! write `"3"` for an integer.
//!
//! - a number where only `string` is declared → its decimal spelling (`42` → `"42"`);
//! - a string where only `integer`, `number` or `boolean` is declared → that value, when the
//!   string is exactly its canonical spelling (`"42"` → 42, `"1.5"` → 1.5, `"true"` → true;
//!   `"042"`, `" 42"`, `"1e3"` for an integer, `"yes"` stay strings and fail validation).
//!
//! "Only" ignores `null` (`type: [string, null]` still means a string). A property whose schema
//! declares several types, or none (`$ref`, `anyOf`, …), is left alone, and so is everything
//! the rules above do not name: validation then refuses it by field, as it would without this.
//! Nested objects (`properties`) and arrays (`items` as one schema) are followed.

use serde_json::{Map, Number, Value};

/// Coerces `arguments` in place against the tool's input schema.
pub fn arguments(schema: &Value, arguments: &mut Map<String, Value>) {
    object(schema, arguments, 0);
}

/// Nesting deeper than this is left to validation (a schema cannot make this loop, but a
/// bound costs nothing).
const MAX_DEPTH: usize = 32;

fn object(schema: &Value, value: &mut Map<String, Value>, depth: usize) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    for (name, property) in properties {
        if let Some(argument) = value.get_mut(name) {
            coerce(property, argument, depth + 1);
        }
    }
}

fn coerce(schema: &Value, value: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => object(schema, map, depth),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|items| items.is_object()) {
                for item in items {
                    coerce(item_schema, item, depth + 1);
                }
            }
        }
        Value::Number(number) if only_type(schema) == Some("string") => *value = Value::String(number.to_string()),
        Value::String(text) => {
            let coerced = match only_type(schema) {
                Some("integer") => integer(text),
                Some("number") => number(text),
                Some("boolean") => match text.as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(coerced) = coerced {
                *value = coerced;
            }
        }
        _ => {}
    }
}

/// The one non-null type the schema declares.
fn only_type(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(name) => Some(name.as_str()),
        Value::Array(names) => {
            let mut names = names.iter().filter_map(Value::as_str).filter(|name| *name != "null");
            let first = names.next()?;
            names.next().is_none().then_some(first)
        }
        _ => None,
    }
}

fn integer(text: &str) -> Option<Value> {
    // Canonical spelling only: `parse` takes `+7` and `007`, which are not how 7 is written.
    let (value, spelled) = match text.parse::<i64>() {
        Ok(signed) => (Value::from(signed), signed.to_string()),
        Err(_) => {
            let unsigned = text.parse::<u64>().ok()?;
            (Value::from(unsigned), unsigned.to_string())
        }
    };
    (spelled == text).then_some(value)
}

fn number(text: &str) -> Option<Value> {
    let number: Number = serde_json::from_str(text).ok()?;
    // Lossless: the string is the number's own spelling (no `1.50`, `+1`, ` 1`, `1e0`).
    (number.to_string() == text).then_some(Value::Number(number))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(schema: &Value, arguments: Value) -> Value {
        let Value::Object(mut arguments) = arguments else { panic!("object") };
        super::arguments(schema, &mut arguments);
        Value::Object(arguments)
    }

    #[test]
    fn scalars_become_the_one_declared_type_when_nothing_is_lost() {
        let schema = json!({"properties": {
            "s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": ["number", "null"]},
            "b": {"type": "boolean"},
        }});
        assert_eq!(
            run(&schema, json!({"s": 42, "i": "-7", "n": "1.5", "b": "false"})),
            json!({"s": "42", "i": -7, "n": 1.5, "b": false})
        );
        assert_eq!(run(&schema, json!({"s": 2.5, "i": "18446744073709551615"}))["i"], json!(u64::MAX));
        for unchanged in [
            json!({"i": "042"}),
            json!({"i": " 4"}),
            json!({"i": "1.0"}),
            json!({"i": "1e3"}),
            json!({"n": "1.50"}),
            json!({"n": "+1"}),
            json!({"b": "yes"}),
            json!({"b": "True"}),
            json!({"s": true}),
            json!({"s": null}),
            json!({"other": 1}),
        ] {
            assert_eq!(run(&schema, unchanged.clone()), unchanged);
        }
    }

    #[test]
    fn ambiguous_schemas_are_left_alone_and_nesting_is_followed() {
        let schema = json!({"properties": {
            "either": {"type": ["string", "integer"]},
            "untyped": {"$ref": "#/$defs/x"},
            "address": {"type": "object", "properties": {"zip": {"type": "string"}}},
            "ids": {"type": "array", "items": {"type": "integer"}},
        }});
        assert_eq!(
            run(&schema, json!({"either": "1", "untyped": 1, "address": {"zip": 1234}, "ids": ["1", "x", 3]})),
            json!({"either": "1", "untyped": 1, "address": {"zip": "1234"}, "ids": [1, "x", 3]})
        );
    }
}
