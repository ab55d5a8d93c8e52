//! `tool_overrides`: a security team's changes to any tool, imported or hand-written, keyed
//! by the tool's name before the change: a new name or description, scopes, a per-tool rate
//! limit, and per argument a fixed value (sent upstream, removed from the published schema,
//! refused from callers) or a default (sent when the caller leaves it out).

use serde_json::Value;

use super::*;

impl Builder<'_> {
    pub(super) fn with_overrides(
        &mut self,
        mut tools: Vec<Tool>,
        overrides: &std::collections::BTreeMap<String, Located<RawToolOverride>>,
    ) -> Vec<Tool> {
        for (name, located) in overrides {
            let key = format!("tool_overrides.{name}");
            let Some(tool) = tools.iter_mut().find(|tool| tool.name == *name) else {
                self.at(located, &key, format!("{name:?} names no tool (keys are tool names before any rename)"));
                continue;
            };
            let raw = &located.value;
            if let Some(description) = &raw.description {
                tool.description = description.clone();
            }
            if let Some(scopes) = &raw.scopes {
                tool.scopes = scopes.clone();
            }
            if let Some(rate_limit) = &raw.rate_limit {
                tool.rate_limit = Some(self.tool_quota(&key, rate_limit));
            }
            for (argument, change) in &raw.arguments {
                let problem = apply_argument(tool, argument, change);
                if let Err(message) = problem {
                    self.at(located, &format!("{key}.arguments.{argument}"), message);
                }
            }
            if let Some(new_name) = &raw.name {
                if !is_tool_name(new_name) {
                    self.at(
                        located,
                        &format!("{key}.name"),
                        format!("{new_name:?} is not a tool name; use 1 to 128 of A-Z a-z 0-9 _ . -"),
                    );
                } else {
                    tool.name = new_name.clone();
                }
            }
        }
        // Names declared twice are reported where they are declared; only a rename can
        // make a new clash.
        let renamed = overrides.values().any(|located| located.value.name.is_some());
        let mut seen = HashSet::new();
        for tool in tools.iter().filter(|_| renamed) {
            if !seen.insert(tool.name.clone()) {
                self.problem(
                    Source::Document,
                    "tool_overrides",
                    format!("after the overrides two tools are named {:?}", tool.name),
                );
            }
        }
        tools
    }
}

/// One argument's override on `tool`'s schema and values.
fn apply_argument(tool: &mut Tool, argument: &str, change: &RawArgumentOverride) -> Result<(), String> {
    let Some(properties) = tool.input_schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return Err(format!("the tool declares no argument {argument:?}"));
    };
    let Some(property) = properties.get_mut(argument) else {
        return Err(format!("the tool declares no argument {argument:?}"));
    };
    if let Some(description) = &change.description
        && let Value::Object(schema) = property
    {
        schema.insert("description".into(), Value::String(description.clone()));
    }
    match (&change.value, &change.default) {
        (Some(_), Some(_)) => return Err("set value (fixed) or default, not both".to_string()),
        (Some(value), None) => {
            check_value(property, value)?;
            properties.remove(argument);
            unrequire(&mut tool.input_schema, argument);
            tool.fixed.insert(argument.to_string(), value.clone());
        }
        (None, Some(value)) => {
            check_value(property, value)?;
            if let Value::Object(schema) = property {
                schema.insert("default".into(), value.clone());
            }
            unrequire(&mut tool.input_schema, argument);
            tool.defaults.insert(argument.to_string(), value.clone());
        }
        (None, None) => {}
    }
    Ok(())
}

/// A fixed or default value must be one the argument's own schema accepts.
fn check_value(schema: &Value, value: &Value) -> Result<(), String> {
    let validator =
        jsonschema::draft202012::new(schema).map_err(|error| format!("its schema does not compile: {error}"))?;
    if validator.is_valid(value) { Ok(()) } else { Err("the value does not match the argument's schema".to_string()) }
}

fn unrequire(schema: &mut Value, argument: &str) {
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|name| name.as_str() != Some(argument));
    }
}
