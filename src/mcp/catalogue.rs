//! The tools, with their schemas compiled once and their MCP `Tool` objects rendered once.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use serde_json::{Value, json};

use super::param_headers::{self, ParamHeader};
use crate::config::Tool;
use crate::request::Principal;
use crate::request::scopes::missing_scopes;

/// A tool ready to be listed and called.
pub struct CatalogueTool {
    /// The tool as the policy declares it.
    pub config: Tool,
    validator: jsonschema::Validator,
    output_validator: Option<jsonschema::Validator>,
    /// The MCP `Tool` object (`tools/list`, `GET /api/tools`).
    pub definition: Value,
    /// The properties its input schema mirrors into `Mcp-Param-*` headers (`x-mcp-header`).
    pub param_headers: Vec<ParamHeader>,
}

impl CatalogueTool {
    /// Validates call arguments; `Err` names each offending field without echoing values.
    pub fn validate(&self, arguments: &Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(arguments)
            .take(5)
            .map(|error| {
                let path = error.instance_path().to_string();
                let field = if path.is_empty() { "arguments".to_string() } else { format!("arguments{path}") };
                match error.kind() {
                    ValidationErrorKind::UnevaluatedProperties { unexpected }
                    | ValidationErrorKind::AdditionalProperties { unexpected } => {
                        format!("{field}: not declared by the tool: {}", quoted_names(unexpected))
                    }
                    _ => format!("{field}: {}", error.masked()),
                }
            })
            .collect();
        if problems.is_empty() { Ok(()) } else { Err(format!("invalid arguments: {}", problems.join("; "))) }
    }

    /// Whether `structuredContent` conforms to the tool's `output_schema` (if it has one): MCP
    /// requires conforming output when a tool declares a schema.
    pub fn output_conforms(&self, structured_content: &Value) -> bool {
        self.output_validator.as_ref().is_none_or(|validator| validator.is_valid(structured_content))
    }

    pub fn allowed_for(&self, principal: Option<&Principal>) -> bool {
        missing_scopes(principal, &self.config.scopes).is_empty()
    }
}

/// The schema call arguments are checked against: the tool's own, closed to arguments it
/// does not declare unless it says otherwise with `additionalProperties` or
/// `unevaluatedProperties`. Without this, `input_schema` looks like an allow-list but is
/// not: a caller could add `"role": "admin"` or `includeDeleted=true` and the API's model
/// binding would take it (mass assignment). `unevaluatedProperties` rather than
/// `additionalProperties`, so properties declared through `allOf` or `$ref` still count.
/// The published `inputSchema` stays as written.
fn closed_to_undeclared(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut()
        && !object.contains_key("additionalProperties")
        && !object.contains_key("unevaluatedProperties")
    {
        object.insert("unevaluatedProperties".to_string(), Value::Bool(false));
    }
    schema
}

/// `"a", "b"`, each name cut to 64 characters and at most five of them: the names are the
/// caller's own input, echoed back in an error.
fn quoted_names(names: &[String]) -> String {
    let mut listed: Vec<String> =
        names.iter().take(5).map(|name| format!("{:?}", name.chars().take(64).collect::<String>())).collect();
    if names.len() > 5 {
        listed.push(format!("and {} more", names.len() - 5));
    }
    listed.join(", ")
}

/// Every configured tool.
#[derive(Default)]
pub struct Catalogue {
    /// Shared, so that a streamed call can hold its tool past the handler (`shared`).
    tools: Vec<Arc<CatalogueTool>>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.iter().map(|tool| &tool.config.name)).finish()
    }
}

impl Catalogue {
    pub fn new(tools: &[Tool]) -> Result<Self, String> {
        let mut catalogue = Catalogue::default();
        for tool in tools {
            let validator = jsonschema::draft202012::new(&closed_to_undeclared(&tool.input_schema))
                .map_err(|error| format!("tool {}: input_schema: {error}", tool.name))?;
            let mut definition = json!({
                "name": tool.name,
                "description": tool.description,
                "inputSchema": tool.input_schema,
                "annotations": {
                    "readOnlyHint": matches!(tool.method, http::Method::GET | http::Method::HEAD),
                    "idempotentHint": tool.idempotent,
                    "destructiveHint": tool.method == http::Method::DELETE,
                    "openWorldHint": false,
                },
            });
            let output_validator = match &tool.output_schema {
                Some(output_schema) => {
                    definition["outputSchema"] = output_schema.clone();
                    Some(
                        jsonschema::draft202012::new(output_schema)
                            .map_err(|error| format!("tool {}: output_schema: {error}", tool.name))?,
                    )
                }
                None => None,
            };
            let param_headers =
                param_headers::declared(&tool.input_schema).map_err(|error| format!("tool {}: {error}", tool.name))?;
            catalogue.by_name.insert(tool.name.clone(), catalogue.tools.len());
            catalogue.tools.push(Arc::new(CatalogueTool {
                config: tool.clone(),
                validator,
                output_validator,
                definition,
                param_headers,
            }));
        }
        Ok(catalogue)
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&CatalogueTool> {
        self.by_name.get(name).map(|index| &*self.tools[*index])
    }

    /// The tool, to keep beyond this borrow (a call that runs on its own task).
    pub fn shared(&self, name: &str) -> Option<Arc<CatalogueTool>> {
        self.by_name.get(name).map(|index| Arc::clone(&self.tools[*index]))
    }

    /// The `Tool` objects this principal may call.
    pub fn list(&self, principal: Option<&Principal>) -> Vec<Value> {
        self.tools.iter().filter(|tool| tool.allowed_for(principal)).map(|tool| tool.definition.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PathTemplate;

    fn tool(input_schema: Value) -> Arc<CatalogueTool> {
        let tool = Tool {
            name: "t".to_string(),
            description: String::new(),
            method: http::Method::POST,
            path: PathTemplate::parse("/t").expect("template"),
            input_schema,
            output_schema: None,
            idempotent: false,
            scopes: Vec::new(),
            query: None,
            body: None,
            headers: std::collections::BTreeMap::new(),
        };
        Catalogue::new(&[tool]).expect("catalogue").tools.remove(0)
    }

    #[test]
    fn undeclared_arguments_are_refused_by_name() {
        let tool = tool(json!({"type": "object", "properties": {"employeeId": {"type": "string"}}}));
        assert_eq!(tool.validate(&json!({"employeeId": "e-1"})), Ok(()));
        let refused = tool.validate(&json!({"employeeId": "e-1", "approved": true})).expect_err("mass assignment");
        assert!(refused.contains(r#"not declared by the tool: "approved""#), "{refused}");
        assert!(!refused.contains("true"), "values are not echoed: {refused}");
        assert!(tool.validate(&json!({"x": 1})).is_err(), "a schema without properties declares nothing");
        assert_eq!(tool.definition["inputSchema"].get("unevaluatedProperties"), None, "published as written");
    }

    #[test]
    fn a_schema_that_opens_itself_stays_open() {
        let open = tool(json!({"type": "object", "properties": {"a": {}}, "additionalProperties": true}));
        assert_eq!(open.validate(&json!({"a": 1, "b": 2})), Ok(()));
        let typed = tool(json!({"type": "object", "additionalProperties": {"type": "string"}}));
        assert_eq!(typed.validate(&json!({"b": "x"})), Ok(()));
        assert!(typed.validate(&json!({"b": 2})).is_err());
        let closed = tool(json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false}));
        assert!(closed.validate(&json!({"b": 2})).expect_err("closed").contains(r#""b""#));
    }

    #[test]
    fn properties_declared_through_all_of_count_as_declared() {
        let tool = tool(json!({
            "type": "object",
            "allOf": [{"properties": {"a": {"type": "string"}}}, {"properties": {"b": {"type": "integer"}}}],
        }));
        assert_eq!(tool.validate(&json!({"a": "x", "b": 1})), Ok(()));
        assert!(tool.validate(&json!({"a": "x", "c": 1})).expect_err("c").contains(r#""c""#));
    }

    #[test]
    fn long_and_many_undeclared_names_are_cut() {
        let tool = tool(json!({"type": "object"}));
        let mut arguments = serde_json::Map::new();
        for n in 0..9 {
            arguments.insert(format!("{n}{}", "x".repeat(500)), json!(1));
        }
        let refused = tool.validate(&Value::Object(arguments)).expect_err("undeclared");
        assert!(refused.len() < 600, "{} bytes", refused.len());
        assert!(refused.contains("and 4 more"), "{refused}");
    }
}
