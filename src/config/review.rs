//! The catalogue as a security team reviews it before deploying (`mcp-edge tools`): each
//! tool's name, method, upstream path, arguments with where each goes, scopes and where it
//! was declared. It is read from the same `Config::tools` the MCP endpoint and `/api/tools`
//! serve, after imports and overrides, so what is reviewed is what runs.

use serde_json::{Value, json};

use super::runtime::{ArgumentPlace, Config, Tool};

/// `{"tools": [{"name", "method", "path", "arguments": [{"name", "in", "required"}], "scopes", "source"}]}`
/// (DESIGN.md §18); a fixed argument (`tool_overrides`) is listed with `"fixed": true`.
pub fn catalogue(config: &Config) -> Value {
    let tools: Vec<Value> = config.tools.iter().map(|tool| describe(config, tool)).collect();
    json!({"tools": tools})
}

fn describe(config: &Config, tool: &Tool) -> Value {
    let arguments: Vec<Value> = arguments(tool)
        .into_iter()
        .map(|(name, place, required, fixed)| {
            let mut argument = json!({"name": name, "in": place, "required": required});
            if fixed {
                argument["fixed"] = json!(true);
            }
            argument
        })
        .collect();
    let mut described = json!({
        "name": tool.name,
        "method": tool.method.as_str(),
        "path": upstream_path(config, tool),
        "arguments": arguments,
        "scopes": tool.scopes,
        "source": tool.source.to_string(),
    });
    if let Some(origin) = tool.binding.as_ref().and_then(|binding| binding.origin.as_ref()) {
        described["origin"] = json!(origin.origin().ascii_serialization());
    }
    described
}

/// The path the upstream receives: imported tools carry the whole path from the origin;
/// hand-written ones are joined to `upstream.base_url`'s path.
fn upstream_path(config: &Config, tool: &Tool) -> String {
    if tool.binding.is_some() {
        tool.path.to_string()
    } else {
        format!("{}{}", config.upstream.base_url.path().trim_end_matches('/'), tool.path)
    }
}

/// `(name, in, required, fixed)` for every argument, the published ones in schema order
/// then the fixed ones.
fn arguments(tool: &Tool) -> Vec<(String, &'static str, bool, bool)> {
    let required: Vec<&str> = tool
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let published = tool.input_schema.get("properties").and_then(Value::as_object).into_iter().flatten();
    let mut list: Vec<(String, &'static str, bool, bool)> = published
        .map(|(name, _)| (name.clone(), place(tool, name), required.contains(&name.as_str()), false))
        .collect();
    list.extend(tool.fixed.keys().map(|name| (name.clone(), place(tool, name), true, true)));
    list
}

/// Where an argument goes: by its binding (imported), else the §5 rule.
fn place(tool: &Tool, name: &str) -> &'static str {
    if let Some(binding) = &tool.binding {
        return binding.arguments.get(name).map_or("none", |argument| argument.place.as_str());
    }
    if tool.path.variables().any(|variable| variable == name) {
        return ArgumentPlace::Path.as_str();
    }
    if tool
        .headers
        .values()
        .any(|template| template.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) == Some(name))
    {
        return ArgumentPlace::Header.as_str();
    }
    let listed = |list: &Option<Vec<String>>| list.as_ref().map(|list| list.iter().any(|entry| entry == name));
    match (listed(&tool.query), listed(&tool.body)) {
        (Some(true), _) => "query",
        (_, Some(true)) => "body",
        (Some(false), _) | (_, Some(false)) => "none",
        (None, None) if matches!(tool.method, http::Method::POST | http::Method::PUT | http::Method::PATCH) => "body",
        (None, None) => "query",
    }
}

/// The same catalogue as text, one block per tool.
pub fn catalogue_text(config: &Config) -> String {
    let mut out = String::new();
    for tool in &config.tools {
        let scopes = if tool.scopes.is_empty() { "none".to_string() } else { tool.scopes.join(" ") };
        out.push_str(&format!(
            "{}  {} {}  scopes: {scopes}  ({})\n",
            tool.name,
            tool.method,
            upstream_path(config, tool),
            tool.source
        ));
        for (name, place, required, fixed) in arguments(tool) {
            let note = match (required, fixed) {
                (_, true) => "  fixed",
                (true, false) => "  required",
                (false, false) => "",
            };
            out.push_str(&format!("    {name}  {place}{note}\n"));
        }
    }
    out.push_str(&format!("{} tools\n", config.tools.len()));
    out
}
