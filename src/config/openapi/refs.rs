//! Local `$ref`s, resolved only where an imported operation reaches them, and schemas made
//! self-contained JSON Schema 2020-12 for `inputSchema` and `outputSchema`.
//!
//! A ref is local when it is a fragment of this document (`#/components/schemas/Pet`,
//! `#/definitions/Pet`) or names a schema of this document by its `$id` (OpenAPI 3.1,
//! optionally with an `$anchor` or a pointer after `#`). Anything else would make the edge
//! read another file or URL while loading a policy, so it is refused with the pointer where
//! the ref stands; bundling the document (`redocly bundle`, `swagger-cli bundle`) turns such
//! refs local. Schemas are inlined, because models fill flat, self-contained schemas far
//! better than `$ref` chains; a schema that refers to itself is cut where it recurses (the
//! recursion point accepts any value, which the API still validates), and a total node
//! budget stops documents whose shared refs would expand exponentially.
//!
//! Swagger 2.0 and OpenAPI 3.0 schemas are a dialect of JSON Schema draft 4/5: `nullable`
//! (and 2.0's `x-nullable`) becomes a `"null"` type, boolean `exclusiveMinimum`/`Maximum`
//! become the numeric form, and `type: file` a string.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{Problem, push_pointer};

/// Nodes all schemas of one document may expand to.
const NODE_BUDGET: usize = 2_000_000;
/// Nested refs followed at most along one path.
const MAX_REF_DEPTH: usize = 64;

/// Keywords whose value is a map of schemas.
const SCHEMA_MAPS: [&str; 5] = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
/// Keywords whose value is one schema (or, for `items`, a list in older drafts).
const SCHEMA_ONE: [&str; 11] = [
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords dropped from inlined schemas: identifiers that only mean something at their
/// place in the document, and OpenAPI annotations a validator need not see.
const DROPPED: [&str; 10] = [
    "$id",
    "$schema",
    "$anchor",
    "$dynamicAnchor",
    "$vocabulary",
    "$comment",
    "xml",
    "externalDocs",
    "discriminator",
    "example",
];

/// Resolves the refs of one document.
pub struct Resolver<'a> {
    document: &'a Value,
    /// `$id` → pointer of the schema carrying it; `$id#anchor` → pointer of the anchor.
    ids: HashMap<String, String>,
    budget: Cell<usize>,
    warnings: RefCell<Vec<Problem>>,
    /// Inlined targets and the nodes they cost, for refs met again (a schema shared by many
    /// operations is walked once). Only expansions that cut no recursion are kept: a cut
    /// depends on the path that led there.
    inlined: RefCell<HashMap<String, (Value, usize)>>,
    /// Whether the expansion under way has cut a recursion.
    cut: Cell<bool>,
}

impl<'a> Resolver<'a> {
    pub fn new(document: &'a Value) -> Self {
        let mut ids = HashMap::new();
        for root in ["/components/schemas", "/definitions"] {
            if let Some(schemas) = document.pointer(root) {
                collect_ids(schemas, root, "", &mut ids, 0);
            }
        }
        Self {
            document,
            ids,
            budget: Cell::new(NODE_BUDGET),
            warnings: RefCell::new(Vec::new()),
            inlined: RefCell::new(HashMap::new()),
            cut: Cell::new(false),
        }
    }

    /// What resolving left to tell an operator (e.g. a `$ref` that is not a string).
    pub fn take_warnings(&self) -> Vec<Problem> {
        self.warnings.take()
    }

    /// Records something an operator should know about the document.
    pub fn warn(&self, pointer: &str, message: String) {
        self.warnings.borrow_mut().push(Problem::new(pointer, message));
    }

    /// The pointer a ref written at `at` names, or why it cannot be followed.
    fn target(&self, reference: &str, at: &str) -> Result<String, Problem> {
        let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let fragment = percent_encoding::percent_decode_str(fragment).decode_utf8_lossy().into_owned();
        let external = || {
            Problem::new(
                push_pointer(at, "$ref"),
                format!(
                    "$ref {reference:?} points outside this document; external references are not \
                     supported: bundle the document into one file (e.g. `redocly bundle`)"
                ),
            )
        };
        let pointer = if base.is_empty() {
            if fragment.is_empty() || fragment.starts_with('/') {
                fragment
            } else {
                self.ids.get(&format!("#{fragment}")).cloned().ok_or_else(external)?
            }
        } else {
            let schema = self.ids.get(base).ok_or_else(external)?;
            if fragment.is_empty() {
                schema.clone()
            } else if fragment.starts_with('/') {
                format!("{schema}{fragment}")
            } else {
                self.ids.get(&format!("{base}#{fragment}")).cloned().ok_or_else(external)?
            }
        };
        if self.document.pointer(&pointer).is_none() {
            return Err(Problem::new(push_pointer(at, "$ref"), format!("$ref {reference:?} points at nothing")));
        }
        Ok(pointer)
    }

    /// `value` at `pointer`, its `$ref` (and the ref's ref...) followed: for parameters,
    /// request bodies and responses. Returns the object and where it lives.
    pub fn follow(&self, value: &'a Value, pointer: &str) -> Result<(&'a Value, String), Problem> {
        let (mut value, mut pointer) = (value, pointer.to_string());
        for _ in 0..MAX_REF_DEPTH {
            let Some(reference) = value.get("$ref") else { return Ok((value, pointer)) };
            let Some(reference) = reference.as_str() else {
                return Err(Problem::new(push_pointer(&pointer, "$ref"), "$ref must be a string"));
            };
            let target = self.target(reference, &pointer)?;
            value = self.document.pointer(&target).unwrap_or(&Value::Null);
            pointer = target;
        }
        Err(Problem::new(pointer, "$ref chain is too long or circular"))
    }

    /// `schema` (at `pointer`) with every ref inlined and the dialect made 2020-12.
    pub fn schema(&self, schema: &Value, pointer: &str) -> Result<Value, Problem> {
        self.inline(schema, pointer, &mut Vec::new())
    }

    fn spend(&self, pointer: &str) -> Result<(), Problem> {
        self.spend_many(pointer, 1)
    }

    fn spend_many(&self, pointer: &str, nodes: usize) -> Result<(), Problem> {
        let left = self.budget.get();
        if left < nodes {
            return Err(Problem::new(
                pointer,
                format!("schemas expand to more than {NODE_BUDGET} nodes (refs shared too deeply)"),
            ));
        }
        self.budget.set(left - nodes);
        Ok(())
    }

    fn inline(&self, value: &Value, pointer: &str, stack: &mut Vec<String>) -> Result<Value, Problem> {
        self.spend(pointer)?;
        let Value::Object(map) = value else { return Ok(value.clone()) };
        if let Some(reference) = map.get("$ref") {
            return self.inline_ref(reference, map, pointer, stack);
        }
        let mut out = Map::new();
        for (key, item) in map {
            if DROPPED.contains(&key.as_str()) || key.starts_with("x-") {
                continue;
            }
            let at = push_pointer(pointer, key);
            let inlined = if SCHEMA_MAPS.contains(&key.as_str()) {
                match item {
                    Value::Object(schemas) => {
                        let mut inlined = Map::new();
                        for (name, schema) in schemas {
                            inlined.insert(name.clone(), self.inline(schema, &push_pointer(&at, name), stack)?);
                        }
                        Value::Object(inlined)
                    }
                    other => other.clone(),
                }
            } else if SCHEMA_ONE.contains(&key.as_str()) || SCHEMA_LISTS.contains(&key.as_str()) {
                match item {
                    Value::Array(schemas) => Value::Array(
                        schemas
                            .iter()
                            .enumerate()
                            .map(|(index, schema)| self.inline(schema, &push_pointer(&at, &index.to_string()), stack))
                            .collect::<Result<_, _>>()?,
                    ),
                    schema => self.inline(schema, &at, stack)?,
                }
            } else {
                item.clone()
            };
            out.insert(key.clone(), inlined);
        }
        to_2020_12(&mut out, map);
        Ok(Value::Object(out))
    }

    fn inline_ref(
        &self,
        reference: &Value,
        map: &Map<String, Value>,
        pointer: &str,
        stack: &mut Vec<String>,
    ) -> Result<Value, Problem> {
        let Some(text) = reference.as_str() else {
            // A YAML `$ref: #/...` is a comment, so the ref is null (the 3.1 petstore has one).
            self.warn(&push_pointer(pointer, "$ref"), "$ref is not a string; the schema accepts any value".into());
            return Ok(json!({}));
        };
        let target = self.target(text, pointer)?;
        let cached = self.inlined.borrow().get(&target).cloned();
        let mut inlined = if let Some((value, nodes)) = cached {
            self.spend_many(pointer, nodes)?;
            value
        } else if stack.contains(&target) || stack.len() >= MAX_REF_DEPTH {
            self.cut.set(true);
            json!({"description": format!("(recursive: {text})")})
        } else {
            let resolved = self.document.pointer(&target).unwrap_or(&Value::Null);
            let (outer_cut, before) = (self.cut.replace(false), self.budget.get());
            stack.push(target.clone());
            let inlined = self.inline(resolved, &target, stack);
            stack.pop();
            let inlined = inlined?;
            if !self.cut.get() {
                self.inlined.borrow_mut().insert(target.clone(), (inlined.clone(), before - self.budget.get()));
            }
            self.cut.set(outer_cut || self.cut.get());
            inlined
        };
        // Siblings of `$ref` (3.1 applies them; 3.0 documents write descriptions there).
        let siblings: Map<String, Value> =
            map.iter().filter(|(key, _)| *key != "$ref").map(|(k, v)| (k.clone(), v.clone())).collect();
        if siblings.is_empty() {
            return Ok(inlined);
        }
        let Value::Object(siblings) = self.inline(&Value::Object(siblings), pointer, stack)? else {
            return Ok(inlined);
        };
        if let Value::Object(target) = &mut inlined {
            for (key, value) in siblings {
                match (key.as_str(), target.get_mut(&key), &value) {
                    ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                        for name in more {
                            if !existing.contains(name) {
                                existing.push(name.clone());
                            }
                        }
                    }
                    _ => {
                        target.insert(key, value);
                    }
                }
            }
        }
        Ok(inlined)
    }
}

/// The `$id`s (and `$anchor`s under them) of the schemas below `value`.
fn collect_ids(value: &Value, pointer: &str, base: &str, ids: &mut HashMap<String, String>, depth: usize) {
    if depth > 64 {
        return;
    }
    match value {
        Value::Object(map) => {
            let mut base = base.to_string();
            if let Some(id) = map.get("$id").and_then(Value::as_str) {
                ids.insert(id.to_string(), pointer.to_string());
                base = id.to_string();
            }
            if let Some(anchor) = map.get("$anchor").and_then(Value::as_str) {
                ids.insert(format!("{base}#{anchor}"), pointer.to_string());
            }
            for (key, item) in map {
                collect_ids(item, &push_pointer(pointer, key), &base, ids, depth + 1);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_ids(item, &push_pointer(pointer, &index.to_string()), base, ids, depth + 1);
            }
        }
        _ => {}
    }
}

/// Draft 4/5 spellings (Swagger 2.0, OpenAPI 3.0) in their 2020-12 form. `original` is the
/// schema as written, for the `x-` keys `out` no longer has.
fn to_2020_12(out: &mut Map<String, Value>, original: &Map<String, Value>) {
    let nullable = [out.remove("nullable"), original.get("x-nullable").cloned()]
        .iter()
        .any(|flag| flag.as_ref().and_then(Value::as_bool) == Some(true));
    if out.get("type").and_then(Value::as_str) == Some("file") {
        out.insert("type".into(), json!("string"));
    }
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        match out.get(exclusive) {
            Some(Value::Bool(true)) => match out.remove(bound) {
                Some(value) => {
                    out.insert(exclusive.into(), value);
                }
                None => {
                    out.remove(exclusive);
                }
            },
            Some(Value::Bool(false)) => {
                out.remove(exclusive);
            }
            _ => {}
        }
    }
    if nullable {
        match out.get_mut("type") {
            Some(Value::String(single)) => {
                let single = std::mem::take(single);
                out.insert("type".into(), json!([single, "null"]));
            }
            Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
            Some(_) => {}
            // `{allOf: [{$ref: Priority}], nullable: true}` (Swashbuckle's nullable enum):
            // no type to widen, so the schema or null.
            None => {
                let description = out.remove("description");
                let inner = std::mem::take(out);
                out.insert("anyOf".into(), json!([Value::Object(inner), {"type": "null"}]));
                if let Some(description) = description {
                    out.insert("description".into(), description);
                }
                return;
            }
        }
        if let Some(Value::Array(values)) = out.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_refs_are_inlined_with_their_siblings() {
        let document = json!({"components": {"schemas": {
            "Pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "tag": {"$ref": "#/components/schemas/Tag"}}},
            "Tag": {"type": "object", "properties": {"id": {"type": "integer"}}, "xml": {"name": "tag"}},
        }}});
        let resolver = Resolver::new(&document);
        let schema =
            resolver.schema(&json!({"$ref": "#/components/schemas/Pet", "required": ["tag"]}), "/x").expect("schema");
        assert_eq!(schema["properties"]["tag"], json!({"type": "object", "properties": {"id": {"type": "integer"}}}));
        assert_eq!(schema["required"], json!(["name", "tag"]));
    }

    #[test]
    fn recursion_is_cut_and_external_refs_are_refused_where_they_stand() {
        let document = json!({"definitions": {
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}},
            "Remote": {"$ref": "other.json#/definitions/X"},
        }});
        let resolver = Resolver::new(&document);
        let node = resolver.schema(&json!({"$ref": "#/definitions/Node"}), "/p").expect("node");
        assert_eq!(node["properties"]["next"]["properties"]["next"], Value::Null, "cut at the first repeat: {node}");
        let refused = resolver.schema(&json!({"$ref": "#/definitions/Remote"}), "/p").expect_err("external");
        assert_eq!(refused.pointer, "/definitions/Remote/$ref");
        assert!(refused.message.contains("other.json"), "{refused}");
        let missing = resolver.schema(&json!({"$ref": "#/definitions/Nope"}), "/q").expect_err("missing");
        assert_eq!(missing.pointer, "/q/$ref");
    }

    #[test]
    fn ids_and_anchors_of_the_document_resolve() {
        let document = json!({"components": {"schemas": {"Details": {
            "$id": "/components/schemas/details", "type": "object",
            "properties": {"id": {"$anchor": "details_id", "type": "integer"}},
        }}}});
        let resolver = Resolver::new(&document);
        let id = resolver.schema(&json!({"$ref": "/components/schemas/details#details_id"}), "/p").expect("anchor");
        assert_eq!(id, json!({"type": "integer"}));
    }

    #[test]
    fn the_openapi_30_dialect_becomes_2020_12() {
        let document = json!({});
        let resolver = Resolver::new(&document);
        let schema = resolver
            .schema(
                &json!({"type": "integer", "nullable": true, "minimum": 1, "exclusiveMinimum": true, "enum": [1, 2]}),
                "",
            )
            .expect("schema");
        assert_eq!(schema, json!({"type": ["integer", "null"], "exclusiveMinimum": 1, "enum": [1, 2, null]}));
        let untyped = resolver
            .schema(&json!({"allOf": [{"enum": ["Low"]}], "nullable": true, "description": "d"}), "")
            .expect("schema");
        assert_eq!(untyped, json!({"anyOf": [{"allOf": [{"enum": ["Low"]}]}, {"type": "null"}], "description": "d"}));
    }

    #[test]
    fn shared_refs_cannot_expand_without_bound() {
        // Each level refers to the previous one twice: 2^40 nodes if expanded.
        let mut schemas = Map::new();
        schemas.insert("L0".into(), json!({"type": "string"}));
        for level in 1..40 {
            let previous = format!("#/definitions/L{}", level - 1);
            schemas
                .insert(format!("L{level}"), json!({"properties": {"a": {"$ref": previous}, "b": {"$ref": previous}}}));
        }
        let document = json!({"definitions": schemas});
        let resolver = Resolver::new(&document);
        let refused = resolver.schema(&json!({"$ref": "#/definitions/L39"}), "/p").expect_err("budget");
        assert!(refused.message.contains("nodes"), "{refused}");
    }
}
