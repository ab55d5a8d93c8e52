//! The tools, with their schemas compiled once and their MCP `Tool` objects rendered once.
//!
//! Hand-written tools' schemas are compiled when the policy is built; imported tools'
//! (OpenAPI) on their first call. The loader has already compiled every imported schema once
//! to check it, and a compiled validator costs far more memory than the schema: a
//! 1 000-operation document then holds validators only for the tools that are used.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use jsonschema::error::ValidationErrorKind;
use serde_json::{Value, json};

use super::param_headers::{self, ParamHeader};
use crate::config::Tool;
use crate::request::Principal;
use crate::request::scopes::missing_scopes;

/// A tool ready to be listed and called.
pub struct CatalogueTool {
    /// The tool as the policy declares it, but for its `output_schema`, which lives once, in
    /// `definition` (`outputSchema`): with a large imported catalogue the schemas are most of
    /// the memory. The input schema stays (argument coercion reads it).
    pub config: Tool,
    validators: OnceLock<Result<Validators, String>>,
    /// The MCP `Tool` object (`tools/list`, `GET /api/tools`).
    pub definition: Value,
    /// The properties its input schema mirrors into `Mcp-Param-*` headers (`x-mcp-header`).
    pub param_headers: Vec<ParamHeader>,
}

/// A tool's compiled input and output schemas.
struct Validators {
    input: jsonschema::Validator,
    output: Option<jsonschema::Validator>,
}

impl Validators {
    /// The validators of the tool named `name` with this MCP `Tool` object.
    fn compile(name: &str, definition: &Value) -> Result<Self, String> {
        let input = jsonschema::draft202012::new(&closed_to_undeclared(&definition["inputSchema"]))
            .map_err(|error| format!("tool {name}: input_schema: {error}"))?;
        let output = match definition.get("outputSchema") {
            Some(output_schema) => Some(
                jsonschema::draft202012::new(output_schema)
                    .map_err(|error| format!("tool {name}: output_schema: {error}"))?,
            ),
            None => None,
        };
        Ok(Self { input, output })
    }
}

impl CatalogueTool {
    fn validators(&self) -> Result<&Validators, &str> {
        self.validators
            .get_or_init(|| Validators::compile(&self.config.name, &self.definition))
            .as_ref()
            .map_err(String::as_str)
    }

    /// Validates call arguments; `Err` names each offending field without echoing values.
    pub fn validate(&self, arguments: &Value) -> Result<(), String> {
        let validators = self.validators().map_err(|error| format!("the tool's schema does not compile: {error}"))?;
        let problems: Vec<String> = validators
            .input
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
        self.validators()
            .is_ok_and(|validators| validators.output.as_ref().is_none_or(|output| output.is_valid(structured_content)))
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
            if let Some(output_schema) = &tool.output_schema {
                definition["outputSchema"] = output_schema.clone();
            }
            let validators = OnceLock::new();
            if tool.binding.is_none() {
                let _ = validators.set(Ok(Validators::compile(&tool.name, &definition)?));
            }
            let param_headers =
                param_headers::declared(&tool.input_schema).map_err(|error| format!("tool {}: {error}", tool.name))?;
            let config = Tool { output_schema: None, ..tool.clone() };
            catalogue.by_name.insert(tool.name.clone(), catalogue.tools.len());
            catalogue.tools.push(Arc::new(CatalogueTool { config, validators, definition, param_headers }));
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

    /// One page of the `Tool` objects this principal may call, in catalogue order, from
    /// `cursor` on, and the cursor of the next page when there is one.
    ///
    /// A cursor names the last tool of the page before it (base64url, opaque to clients),
    /// rather than an offset, so a page is where the client left off even when a reload
    /// added tools or the principal's scopes filter differently; a cursor whose tool is gone
    /// is refused, and the client starts over.
    pub fn page(
        &self,
        principal: Option<&Principal>,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<Page, InvalidCursor> {
        let start = match cursor {
            None => 0,
            Some(cursor) => self.after(cursor).ok_or(InvalidCursor)?,
        };
        let mut tools = Vec::new();
        let mut next = None;
        for (index, tool) in self.tools.iter().enumerate().skip(start) {
            if !tool.allowed_for(principal) {
                continue;
            }
            if tools.len() == size.max(1) {
                next = Some(cursor_after(&self.tools[index - 1].config.name));
                break;
            }
            tools.push(tool.definition.clone());
        }
        Ok(Page { tools, next_cursor: next })
    }

    /// The index after the tool a cursor names.
    fn after(&self, cursor: &str) -> Option<usize> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let name = String::from_utf8(bytes).ok()?.strip_prefix(CURSOR_PREFIX)?.to_string();
        self.by_name.get(&name).map(|index| index + 1)
    }
}

const CURSOR_PREFIX: &str = "after:";

fn cursor_after(name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{name}"))
}

/// One page of `tools/list`.
#[derive(Debug)]
pub struct Page {
    pub tools: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// A `cursor` this catalogue did not issue (or whose tool a reload removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

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
            binding: None,
            fixed: serde_json::Map::new(),
            defaults: serde_json::Map::new(),
            rate_limit: None,
            source: crate::config::ToolSource::Policy,
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
    fn pages_cover_every_allowed_tool_once_in_order() {
        let mut tools = Vec::new();
        for n in 0..25 {
            let mut one = tool(json!({"type": "object"})).config.clone();
            one.name = format!("t{n:02}");
            if n % 5 == 0 {
                one.scopes = vec!["admin".to_string()];
            }
            tools.push(one);
        }
        let catalogue = Catalogue::new(&tools).expect("catalogue");
        let reader = Principal {
            subject: "reader".into(),
            method: crate::request::AuthMethod::Bearer,
            scopes: Vec::new(),
            token_id: "t".into(),
            forwardable_jwt: None,
            dpop_jkt: None,
        };
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let page = catalogue.page(Some(&reader), cursor.as_deref(), 7).expect("page");
            assert!(page.tools.len() <= 7);
            seen.extend(page.tools.iter().map(|tool| tool["name"].as_str().expect("name").to_string()));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        let expected: Vec<String> = (0..25).filter(|n| n % 5 != 0).map(|n| format!("t{n:02}")).collect();
        assert_eq!(seen, expected);
        assert_eq!(catalogue.page(None, Some("bm90LWEtY3Vyc29y"), 7).map(|page| page.tools.len()), Err(InvalidCursor));
        assert_eq!(catalogue.page(None, Some("%%%"), 7).map(|page| page.tools.len()), Err(InvalidCursor));
        let whole = catalogue.page(Some(&reader), None, 100).expect("one page");
        assert_eq!((whole.tools.len(), whole.next_cursor), (20, None));
        assert_eq!(catalogue.page(None, None, 100).expect("all").tools.len(), 25, "no principal: auth none");
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
