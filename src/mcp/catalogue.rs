//! The tools, with their schemas compiled once and their MCP `Tool` objects rendered once.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::Tool;
use crate::edge::auth::Principal;
use crate::edge::auth::scopes::missing_scopes;

/// A tool ready to be listed and called.
pub struct CatalogueTool {
    pub tool: Tool,
    validator: jsonschema::Validator,
    output_validator: Option<jsonschema::Validator>,
    /// The MCP `Tool` object (`tools/list`, `GET /api/tools`).
    pub definition: Value,
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
                format!("{field}: {}", error.masked())
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
        missing_scopes(principal, &self.tool.scopes).is_empty()
    }
}

/// Every configured tool.
#[derive(Default)]
pub struct Catalogue {
    tools: Vec<CatalogueTool>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.iter().map(|tool| &tool.tool.name)).finish()
    }
}

impl Catalogue {
    pub fn new(tools: &[Tool]) -> Result<Self, String> {
        let mut catalogue = Catalogue::default();
        for tool in tools {
            let validator = jsonschema::draft202012::new(&tool.input_schema)
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
            catalogue.by_name.insert(tool.name.clone(), catalogue.tools.len());
            catalogue.tools.push(CatalogueTool { tool: tool.clone(), validator, output_validator, definition });
        }
        Ok(catalogue)
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&CatalogueTool> {
        self.by_name.get(name).map(|index| &self.tools[*index])
    }

    /// The `Tool` objects this principal may call.
    pub fn list(&self, principal: Option<&Principal>) -> Vec<Value> {
        self.tools.iter().filter(|tool| tool.allowed_for(principal)).map(|tool| tool.definition.clone()).collect()
    }
}
