//! Mock responses compiled from an OpenAPI document, for APIs whose
//! `endpointImplementationType` is `MOCKED_OAS`: the gateway answers such an API itself,
//! from what the document documents, instead of calling a backend (decision 016).
//!
//! Compiling walks the document once per deployment (not per call): for every operation,
//! each documented response with its status, content type, default body and named
//! examples, bodies already rendered to text. Bodies come from the document's examples
//! or, failing those, are generated from the response's schema ([`example_for_schema`]).
//! The document is untrusted input: references are followed with a depth limit and a
//! cycle check, and generation stops after a bounded number of values.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The mock responses of one operation of a definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationMock {
    /// The HTTP method, upper-case.
    pub verb: String,
    /// The path template as the definition writes it (`/pets/{petId}`), which is the
    /// operation's `target`.
    pub target: String,
    /// The documented responses; the first is the default one (the lowest 2xx, else
    /// `default`, else the first documented). Never empty: an operation that documents
    /// none answers 200 without a body.
    pub responses: Vec<MockResponse>,
}

/// One documented response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MockResponse {
    /// The response's key in the document: `200`, `4XX` or `default`.
    pub code: String,
    /// The status answered: the code itself, the first of a range (`4XX` → 400), or 200
    /// for `default`.
    pub status: u16,
    /// The content type answered with (`application/json` when several are documented),
    /// if the response documents a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The default body, rendered; none for 204 and when nothing is documented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Named examples (OpenAPI 3 `examples`), rendered, which `Prefer: example=<name>`
    /// picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<MockExample>,
}

impl MockResponse {
    /// A response documented without a body (yet).
    fn without_body(code: &str, status: u16) -> Self {
        Self {
            code: code.to_string(),
            status,
            content_type: None,
            body: None,
            examples: Vec::new(),
        }
    }
}

/// A named example body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MockExample {
    /// Its name in the document.
    pub name: String,
    /// The body, rendered.
    pub body: String,
}

/// The verbs an OpenAPI path item may hold, as the document spells them.
const VERBS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// How deep references and nested schemas are followed.
const MAX_DEPTH: usize = 24;

/// How many values one generated body may hold, so that a document whose schemas fan out
/// cannot make an enormous one.
const MAX_VALUES: usize = 2_000;

/// The mock responses of every operation of `doc` (OpenAPI 3.x or Swagger 2.0, as JSON).
/// A document without `paths` yields none.
pub fn compile(doc: &Value) -> Vec<OperationMock> {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let swagger2 = doc.get("swagger").is_some();
    let mut out = Vec::new();
    for (target, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (verb, op) in item {
            if !VERBS.contains(&verb.as_str()) {
                continue;
            }
            let mut responses = Vec::new();
            if let Some(documented) = op.get("responses").and_then(Value::as_object) {
                for (code, response) in documented {
                    let Some(status) = status_of(code) else { continue };
                    let response = follow(doc, response);
                    responses.push(if swagger2 {
                        response_2(doc, op, code, status, response)
                    } else {
                        response_3(doc, code, status, response)
                    });
                }
            }
            order(&mut responses);
            if responses.is_empty() {
                responses.push(MockResponse::without_body("200", 200));
            }
            out.push(OperationMock {
                verb: verb.to_ascii_uppercase(),
                target: target.clone(),
                responses,
            });
        }
    }
    out
}

/// The status a response key answers with, if it is one OpenAPI allows.
fn status_of(code: &str) -> Option<u16> {
    if code == "default" {
        return Some(200);
    }
    if let Ok(n) = code.parse::<u16>() {
        return (100..=599).contains(&n).then_some(n);
    }
    let b = code.as_bytes();
    if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].eq_ignore_ascii_case(b"XX") {
        return Some(u16::from(b[0] - b'0') * 100);
    }
    None
}

/// Puts the default response first: the lowest exact 2xx, else a `2XX` range, else
/// `default`, else the first. The rest keep their order, exact codes before ranges and
/// `default`, so that a preferred status finds the exact one first.
fn order(responses: &mut Vec<MockResponse>) {
    let rank = |r: &MockResponse| match r.code.as_str() {
        "default" => 2,
        c if c.parse::<u16>().is_ok() => 0,
        _ => 1,
    };
    responses.sort_by_key(|r| (rank(r), r.status));
    let default = responses
        .iter()
        .position(|r| rank(r) == 0 && (200..300).contains(&r.status))
        .or_else(|| responses.iter().position(|r| rank(r) == 1 && r.status == 200))
        .or_else(|| responses.iter().position(|r| r.code == "default"));
    if let Some(i) = default {
        let d = responses.remove(i);
        responses.insert(0, d);
    }
}

/// Whether a status has no body (RFC 9110: 1xx, 204, 304).
fn bodiless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// An OpenAPI 3.x response: its content types' `example`, `examples` and `schema`.
fn response_3(doc: &Value, code: &str, status: u16, response: &Value) -> MockResponse {
    let mut out = MockResponse::without_body(code, status);
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return out;
    };
    let Some((media, media_type)) =
        pick_content(content.keys().map(String::as_str)).and_then(|k| content.get_key_value(k))
    else {
        return out;
    };
    if bodiless(status) {
        return out;
    }
    let content_type = concrete(media);
    if let Some(named) = media_type.get("examples").and_then(Value::as_object) {
        for (name, example) in named {
            if let Some(value) = follow(doc, example).get("value") {
                out.examples.push(MockExample {
                    name: name.clone(),
                    body: render(value, &content_type),
                });
            }
        }
    }
    out.body = match media_type.get("example") {
        Some(example) => Some(render(example, &content_type)),
        None => match out.examples.first() {
            Some(first) => Some(first.body.clone()),
            None => media_type
                .get("schema")
                .and_then(|s| example_for_schema(s, doc))
                .map(|v| render(&v, &content_type)),
        },
    };
    out.content_type = Some(content_type);
    out
}

/// A Swagger 2.0 response: `examples.<mime>`, else one generated from `schema`, in the
/// operation's (or the document's) `produces`.
fn response_2(doc: &Value, op: &Value, code: &str, status: u16, response: &Value) -> MockResponse {
    let mut out = MockResponse::without_body(code, status);
    if bodiless(status) {
        return out;
    }
    let examples = response.get("examples").and_then(Value::as_object);
    if let Some((mime, example)) =
        examples.and_then(|e| pick_content(e.keys().map(String::as_str)).and_then(|k| e.get_key_value(k)))
    {
        let content_type = concrete(mime);
        out.body = Some(render(example, &content_type));
        out.content_type = Some(content_type);
        return out;
    }
    if let Some(schema) = response.get("schema") {
        let produces = op
            .get("produces")
            .or_else(|| doc.get("produces"))
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default();
        let content_type = concrete(pick_content(produces.into_iter()).unwrap_or("application/json"));
        out.body = example_for_schema(schema, doc).map(|v| render(&v, &content_type));
        out.content_type = Some(content_type);
    }
    out
}

/// The content type to answer with among those documented: `application/json`, else a
/// JSON one (`application/problem+json`), else the first.
fn pick_content<'a>(types: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let types: Vec<&str> = types.collect();
    types
        .iter()
        .find(|t| t.eq_ignore_ascii_case("application/json"))
        .or_else(|| types.iter().find(|t| t.to_ascii_lowercase().contains("json")))
        .or_else(|| types.first())
        .copied()
}

/// A content type a response can carry: a range (`*/*`, `application/*`) answers JSON.
fn concrete(media: &str) -> String {
    if media.contains('*') || media.trim().is_empty() {
        "application/json".into()
    } else {
        media.trim().to_string()
    }
}

/// A value as a body of `content_type`: JSON for JSON types, a string as it is for
/// others (`text/plain`, XML written out in the document), anything else as JSON.
fn render(value: &Value, content_type: &str) -> String {
    match value {
        Value::String(s) if !content_type.to_ascii_lowercase().contains("json") => s.clone(),
        other => other.to_string(),
    }
}

/// `value`, or what its local `$ref` (`#/components/responses/NotFound`) points to,
/// followed a few times; a reference that leads nowhere gives `null`.
fn follow<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => match resolve(doc, r) {
                Some(target) => value = target,
                None => return &Value::Null,
            },
            None => return value,
        }
    }
    &Value::Null
}

/// What a local reference (`#/definitions/Pet`) points to in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// An example value for `schema`, with references resolved against `doc`: its own
/// `example`, `default`, `const` or first `enum` value; `allOf` merged, the first of
/// `oneOf`/`anyOf`; else a placeholder per type (format-aware strings, 0, `true`, arrays
/// of one item, objects of their properties). A reference already being expanded (a
/// cycle) is left out: an array of it is empty, a property of it absent. `None` when
/// nothing can be said.
pub fn example_for_schema(schema: &Value, doc: &Value) -> Option<Value> {
    Generator {
        doc,
        values: 0,
        expanding: Vec::new(),
    }
    .value(schema, 0)
}

struct Generator<'a> {
    doc: &'a Value,
    values: usize,
    expanding: Vec<&'a str>,
}

impl<'a> Generator<'a> {
    fn value(&mut self, schema: &'a Value, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH || self.values >= MAX_VALUES {
            return None;
        }
        self.values += 1;
        let s = schema.as_object()?;
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            if self.expanding.contains(&r) {
                return None;
            }
            let target = resolve(self.doc, r)?;
            self.expanding.push(r);
            let v = self.value(target, depth + 1);
            self.expanding.pop();
            return v;
        }
        for key in ["example", "default", "const"] {
            if let Some(v) = s.get(key) {
                return Some(v.clone());
            }
        }
        if let Some(first) = s.get("examples").and_then(Value::as_array).and_then(|e| e.first()) {
            return Some(first.clone());
        }
        if let Some(first) = s.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
            return Some(first.clone());
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            let mut merged: Option<Value> = None;
            let own = s.contains_key("properties").then(|| self.object(s, depth));
            for part in all.iter().map(|p| self.value(p, depth + 1)).chain([own]).flatten() {
                merged = Some(match (merged, part) {
                    (Some(Value::Object(mut a)), Value::Object(b)) => {
                        a.extend(b);
                        Value::Object(a)
                    }
                    (Some(a), Value::Null) => a,
                    (_, b) => b,
                });
            }
            return merged;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(first) = s.get(key).and_then(Value::as_array).and_then(|a| a.first()) {
                return self.value(first, depth + 1);
            }
        }
        let declared = match s.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null"),
            _ => None,
        };
        let ty = declared.or_else(|| {
            if s.contains_key("properties") || s.contains_key("additionalProperties") {
                Some("object")
            } else if s.contains_key("items") {
                Some("array")
            } else {
                None
            }
        });
        let bound = || {
            s.get("minimum")
                .or_else(|| s.get("exclusiveMinimum"))
                .and_then(Value::as_f64)
        };
        Some(match ty? {
            "string" => Value::String(string_for(s.get("format").and_then(Value::as_str)).into()),
            "integer" => json!(bound().map_or(0, |m| m.ceil() as i64)),
            "number" => bound().map_or(json!(0), |m| json!(m)),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            "array" => Value::Array(
                s.get("items")
                    .and_then(|i| self.value(i, depth + 1))
                    .into_iter()
                    .collect(),
            ),
            "object" => self.object(s, depth),
            _ => return None,
        })
    }

    /// An object of the schema's properties, each with its example.
    fn object(&mut self, s: &'a Map<String, Value>, depth: usize) -> Value {
        let mut out = Map::new();
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                if let Some(v) = self.value(prop, depth + 1) {
                    out.insert(name.clone(), v);
                }
            }
        }
        Value::Object(out)
    }
}

/// A placeholder string of a `format`.
fn string_for(format: Option<&str>) -> &'static str {
    match format {
        Some("date-time") => "2024-01-01T00:00:00Z",
        Some("date") => "2024-01-01",
        Some("time") => "00:00:00Z",
        Some("uuid") => "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        Some("email") => "user@example.com",
        Some("uri" | "url" | "uri-reference" | "iri") => "https://example.com",
        Some("hostname") => "example.com",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        Some("byte") => "c3RyaW5n",
        _ => "string",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn op<'a>(mocks: &'a [OperationMock], verb: &str, target: &str) -> &'a OperationMock {
        mocks
            .iter()
            .find(|m| m.verb == verb && m.target == target)
            .unwrap_or_else(|| panic!("no mock for {verb} {target}: {mocks:?}"))
    }

    #[test]
    fn openapi3_example_and_named_examples_are_taken_as_documented() {
        let doc = json!({
            "openapi": "3.0.3",
            "paths": {"/pets/{id}": {"get": {"responses": {
                "404": {"$ref": "#/components/responses/NotFound"},
                "200": {"content": {
                    "application/xml": {"example": "<pet/>"},
                    "application/json": {
                        "example": {"id": 1, "name": "Rex"},
                        "examples": {
                            "cat": {"value": {"id": 2, "name": "Tom"}},
                            "ref": {"$ref": "#/components/examples/Fish"},
                            "external": {"externalValue": "https://example.com/x.json"}
                        }
                    }
                }},
                "204": {"content": {"application/json": {"example": {"never": true}}}}
            }}}},
            "components": {
                "responses": {"NotFound": {"content": {"application/problem+json": {
                    "examples": {"gone": {"value": {"code": 404}}}
                }}}},
                "examples": {"Fish": {"value": {"id": 3, "name": "Nemo"}}}
            }
        });
        let mocks = compile(&doc);
        let get = op(&mocks, "GET", "/pets/{id}");
        let codes: Vec<&str> = get.responses.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["200", "204", "404"], "the lowest 2xx first");
        let ok = &get.responses[0];
        assert_eq!(ok.content_type.as_deref(), Some("application/json"));
        assert_eq!(ok.body.as_deref(), Some(r#"{"id":1,"name":"Rex"}"#));
        let names: Vec<&str> = ok.examples.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["cat", "ref"], "externalValue has no value to answer with");
        assert_eq!(ok.examples[1].body, r#"{"id":3,"name":"Nemo"}"#);
        assert_eq!(get.responses[1].body, None, "204 has no body");
        let not_found = &get.responses[2];
        assert_eq!(not_found.status, 404);
        assert_eq!(not_found.content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(
            not_found.body.as_deref(),
            Some(r#"{"code":404}"#),
            "the first named example"
        );
    }

    #[test]
    fn a_schema_is_generated_with_refs_formats_and_cycles_cut() {
        let doc = json!({
            "openapi": "3.1.0",
            "paths": {"/nodes": {"post": {"responses": {
                "default": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
                "201": {"content": {"text/plain": {"schema": {"type": "string"}}}}
            }}}},
            "components": {"schemas": {"Node": {"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"},
                "at": {"type": "string", "format": "date-time"},
                "mail": {"type": "string", "format": "email"},
                "size": {"type": "integer", "minimum": 3},
                "ratio": {"type": "number"},
                "ok": {"type": ["boolean", "null"]},
                "kind": {"type": "string", "enum": ["leaf", "branch"]},
                "label": {"type": "string", "default": "root"},
                "parent": {"$ref": "#/components/schemas/Node"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                "tags": {"type": "array", "items": {"type": "string"}},
                "missing": {"$ref": "#/components/schemas/Nowhere"}
            }}}}
        });
        let mocks = compile(&doc);
        let post = op(&mocks, "POST", "/nodes");
        assert_eq!(post.responses[0].code, "201");
        assert_eq!(
            post.responses[0].body.as_deref(),
            Some("string"),
            "text is sent as text"
        );
        let node: Value = serde_json::from_str(post.responses[1].body.as_deref().unwrap()).unwrap();
        assert_eq!(
            node,
            json!({"id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "at": "2024-01-01T00:00:00Z",
                   "mail": "user@example.com", "size": 3, "ratio": 0, "ok": true, "kind": "leaf",
                   "label": "root", "children": [], "tags": ["string"]})
        );
    }

    #[test]
    fn all_of_is_merged_and_one_of_any_of_take_the_first() {
        let doc = json!({"components": {"schemas": {
            "Base": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "Named": {"properties": {"name": {"type": "string", "example": "Rex"}}}
        }}});
        let schema = json!({"allOf": [{"$ref": "#/components/schemas/Base"}, {"$ref": "#/components/schemas/Named"}],
                            "properties": {"extra": {"type": "boolean"}}});
        assert_eq!(
            example_for_schema(&schema, &doc),
            Some(json!({"id": 0, "name": "Rex", "extra": true}))
        );
        let one = json!({"oneOf": [{"type": "string", "format": "ipv4"}, {"type": "integer"}]});
        assert_eq!(example_for_schema(&one, &doc), Some(json!("192.0.2.1")));
        let any = json!({"anyOf": [{"const": 7}, {"type": "string"}]});
        assert_eq!(example_for_schema(&any, &doc), Some(json!(7)));
    }

    #[test]
    fn swagger2_examples_and_schemas_are_used_in_the_produced_type() {
        let doc = json!({
            "swagger": "2.0",
            "produces": ["application/xml", "application/json"],
            "paths": {"/orders/{id}": {
                "get": {"responses": {
                    "200": {"schema": {"$ref": "#/definitions/Order"},
                            "examples": {"application/json": {"id": 9, "state": "open"}}},
                    "400": {"description": "bad"},
                    "404": {"schema": {"$ref": "#/definitions/Error"}}
                }},
                "delete": {"produces": ["text/plain"], "responses": {"204": {"description": "gone"}}}
            }},
            "definitions": {
                "Order": {"type": "object", "properties": {"id": {"type": "integer"}}},
                "Error": {"type": "object", "properties": {"code": {"type": "integer", "example": 404},
                          "cause": {"$ref": "#/definitions/Error"}}}
            }
        });
        let mocks = compile(&doc);
        let get = op(&mocks, "GET", "/orders/{id}");
        assert_eq!(get.responses[0].body.as_deref(), Some(r#"{"id":9,"state":"open"}"#));
        assert_eq!(get.responses[0].content_type.as_deref(), Some("application/json"));
        let bad = get.responses.iter().find(|r| r.status == 400).unwrap();
        assert_eq!((bad.content_type.as_deref(), bad.body.as_deref()), (None, None));
        let missing = get.responses.iter().find(|r| r.status == 404).unwrap();
        assert_eq!(missing.body.as_deref(), Some(r#"{"code":404}"#), "the cycle is cut");
        assert_eq!(missing.content_type.as_deref(), Some("application/json"));
        let delete = op(&mocks, "DELETE", "/orders/{id}");
        assert_eq!(delete.responses[0].status, 204);
        assert_eq!(delete.responses[0].body, None);
    }

    #[test]
    fn the_default_response_is_the_lowest_2xx_else_default_else_the_first() {
        let codes = |responses: Value| -> Vec<String> {
            let doc = json!({"openapi": "3.0.0", "paths": {"/x": {"get": {"responses": responses}}}});
            compile(&doc)[0].responses.iter().map(|r| r.code.clone()).collect()
        };
        assert_eq!(codes(json!({"500": {}, "202": {}, "201": {}})), ["201", "202", "500"]);
        assert_eq!(
            codes(json!({"500": {}, "default": {}, "4XX": {}})),
            ["default", "500", "4XX"]
        );
        assert_eq!(codes(json!({"503": {}, "404": {}})), ["404", "503"]);
        assert_eq!(codes(json!({})), ["200"], "nothing documented: 200 without a body");
        assert_eq!(codes(json!({"2XX": {}, "400": {}})), ["2XX", "400"]);
    }

    #[test]
    fn hostile_documents_give_bounded_answers_and_never_panic() {
        // Nonsense where objects belong, unknown verbs, codes out of range.
        for doc in [
            json!(null),
            json!({"paths": []}),
            json!({"paths": {"/a": 5, "/b": {"get": 7, "trace": {}, "post": {"responses": []}}}}),
            json!({"paths": {"/a": {"get": {"responses": {"999": {}, "abc": {}, "200": 5}}}}}),
            json!({"paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/nowhere"}}}}}}),
            json!({"paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/paths/~1a/get/responses/200"}}}}}}),
        ] {
            let _ = compile(&doc);
        }
        // A schema that doubles at every level stays bounded.
        let mut defs = Map::new();
        for i in 0..40 {
            defs.insert(
                format!("S{i}"),
                json!({"properties": {"a": {"$ref": format!("#/d/S{}", i + 1)}, "b": {"$ref": format!("#/d/S{}", i + 1)}}}),
            );
        }
        let doc = json!({"d": defs});
        let v = example_for_schema(&json!({"$ref": "#/d/S0"}), &doc).unwrap();
        assert!(v.to_string().len() < 200_000);
        assert_eq!(example_for_schema(&json!(true), &doc), None);
        assert_eq!(example_for_schema(&json!({}), &doc), None);
    }
}
