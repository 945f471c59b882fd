//! OpenAPI definitions: parse (JSON or YAML; OpenAPI 3.0, 3.1 and Swagger 2.0), validate
//! with errors that name where in the document the problem is, derive an API's
//! operations and defaults from it, and keep it in step when operations change.
//!
//! Definitions are handled as `serde_json::Value`, not as typed models: one reader
//! covers all three version lines (the typed crates each cover one), and hostile input
//! can produce errors but never panics (a property test feeds it random documents).

use serde_json::{Map, Value, json};
use tollgate_model::api::{Endpoint, EndpointConfig, Endpoints, Operation, VERBS};
use tollgate_model::{Api, FieldError};

/// Largest definition accepted, in bytes (the REST body limit usually bites first).
pub const MAX_DEFINITION_BYTES: usize = 10 * 1024 * 1024;

/// The OpenAPI line a document belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecVersion {
    /// Swagger 2.0.
    Swagger2,
    /// OpenAPI 3.0.x.
    OpenApi30,
    /// OpenAPI 3.1.x.
    OpenApi31,
}

/// A parsed, validated definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    /// The document, as JSON.
    pub doc: Value,
    /// Which line it is.
    pub version: SpecVersion,
    /// The `openapi`/`swagger` field as written.
    pub version_text: String,
}

/// Parses and validates `bytes` (JSON or YAML). Errors name the place in the document
/// (`paths./pets/{id}.get`) and say what is wrong; all of them are reported at once.
pub fn parse(bytes: &[u8]) -> Result<Definition, Vec<FieldError>> {
    let fail = |m: String| vec![FieldError::new("definition", m)];
    if bytes.len() > MAX_DEFINITION_BYTES {
        return Err(fail(format!("is larger than {MAX_DEFINITION_BYTES} bytes")));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text".into()))?;
    if text.trim().is_empty() {
        return Err(fail("is empty".into()));
    }
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(json_err) => {
            let trimmed = text.trim_start();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                return Err(fail(format!("is not valid JSON: {json_err}")));
            }
            parse_yaml(text).map_err(|e| fail(format!("is neither valid JSON nor valid YAML: {e}")))?
        }
    };
    validate(doc)
}

/// Reads YAML within the limits every YAML Tollgate takes from outside has.
fn parse_yaml(text: &str) -> Result<Value, String> {
    tollgate_project::yaml::parse(text)
}

fn validate(doc: Value) -> Result<Definition, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(root) = doc.as_object() else {
        return Err(vec![FieldError::new(
            "definition",
            "must be an object at the top level",
        )]);
    };
    let (version, version_text) = match (root.get("openapi"), root.get("swagger")) {
        (Some(Value::String(v)), _) if v.starts_with("3.0") => (SpecVersion::OpenApi30, v.clone()),
        (Some(Value::String(v)), _) if v.starts_with("3.1") => (SpecVersion::OpenApi31, v.clone()),
        (_, Some(Value::String(v))) if v == "2.0" => (SpecVersion::Swagger2, v.clone()),
        (Some(v), _) => {
            return Err(vec![FieldError::new(
                "definition.openapi",
                format!(
                    "`{}` is not supported; use OpenAPI 3.0.x, 3.1.x or Swagger 2.0",
                    display(v)
                ),
            )]);
        }
        (None, Some(v)) => {
            return Err(vec![FieldError::new(
                "definition.swagger",
                format!(
                    "`{}` is not supported; use OpenAPI 3.0.x, 3.1.x or Swagger 2.0",
                    display(v)
                ),
            )]);
        }
        (None, None) => {
            return Err(vec![FieldError::new(
                "definition",
                "has no `openapi` (3.x) or `swagger` (2.0) field; is it an OpenAPI document?",
            )]);
        }
    };
    match root.get("info").and_then(Value::as_object) {
        None => errors.push(FieldError::new("definition.info", "is required and must be an object")),
        Some(info) => {
            for key in ["title", "version"] {
                match info.get(key) {
                    Some(Value::String(s)) if !s.trim().is_empty() => {}
                    _ => errors.push(FieldError::new(
                        format!("definition.info.{key}"),
                        "is required and must be a non-empty string",
                    )),
                }
            }
        }
    }
    match root.get("paths") {
        None if version == SpecVersion::OpenApi31 => {}
        None => errors.push(FieldError::new("definition.paths", "is required")),
        Some(Value::Object(paths)) => {
            for (path, item) in paths {
                let here = format!("definition.paths.{path}");
                if path.starts_with("x-") {
                    continue;
                }
                if let Err(m) = tollgate_model::api::validate_target(path) {
                    errors.push(FieldError::new(&here, format!("is not a usable path template: {m}")));
                }
                let Some(item) = item.as_object() else {
                    errors.push(FieldError::new(&here, "must be an object"));
                    continue;
                };
                for (method, op) in item {
                    if is_verb(method) && !op.is_object() {
                        errors.push(FieldError::new(format!("{here}.{method}"), "must be an object"));
                    }
                }
            }
        }
        Some(_) => errors.push(FieldError::new("definition.paths", "must be an object")),
    }
    if errors.is_empty() {
        Ok(Definition {
            doc,
            version,
            version_text,
        })
    } else {
        Err(errors)
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_verb(method: &str) -> bool {
    VERBS.iter().any(|v| v.eq_ignore_ascii_case(method)) || method.eq_ignore_ascii_case("trace")
}

impl Definition {
    fn info_str(&self, key: &str) -> Option<String> {
        self.doc.get("info")?.get(key)?.as_str().map(str::to_string)
    }

    /// `info.title`, usable as an API name (characters the name rule forbids dropped).
    pub fn title(&self) -> Option<String> {
        self.info_str("title")
            .map(|t| {
                t.chars()
                    .filter(|c| !"~!@#;:%^*()+={}|\\<>\"',&$[]/".contains(*c))
                    .collect::<String>()
                    .trim()
                    .chars()
                    .take(60)
                    .collect::<String>()
            })
            // A title of only characters a name may not hold names nothing.
            .filter(|t| !t.is_empty())
    }

    /// `info.version`.
    pub fn version(&self) -> Option<String> {
        self.info_str("version")
    }

    /// `info.description`.
    pub fn description(&self) -> Option<String> {
        self.info_str("description")
    }

    /// The backend URL the document names: `servers[0].url` (3.x) or
    /// `schemes[0]://host/basePath` (2.0), when absolute.
    pub fn server_url(&self) -> Option<String> {
        let url = match self.version {
            SpecVersion::Swagger2 => {
                let host = self.doc.get("host")?.as_str()?;
                let scheme = self
                    .doc
                    .get("schemes")
                    .and_then(Value::as_array)
                    .and_then(|s| s.first())
                    .and_then(Value::as_str)
                    .unwrap_or("https");
                let base = self.doc.get("basePath").and_then(Value::as_str).unwrap_or("");
                format!("{scheme}://{host}{base}")
            }
            _ => self
                .doc
                .get("servers")?
                .as_array()?
                .first()?
                .get("url")?
                .as_str()?
                .to_string(),
        };
        (url.starts_with("http://") || url.starts_with("https://")).then(|| url.trim_end_matches('/').to_string())
    }

    /// The operations the document defines, in document order. The reference's
    /// extensions are honoured: `x-auth-type`, `x-throttling-tier`, and `security: []`
    /// meaning no authentication.
    pub fn operations(&self) -> Vec<Operation> {
        let mut ops = Vec::new();
        let Some(paths) = self.doc.get("paths").and_then(Value::as_object) else {
            return ops;
        };
        for (path, item) in paths {
            let Some(item) = item.as_object() else { continue };
            if path.starts_with("x-") {
                continue;
            }
            for (method, op) in item {
                let verb = method.to_ascii_uppercase();
                if !VERBS.contains(&verb.as_str()) {
                    continue;
                }
                let auth_type = op
                    .get("x-auth-type")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        op.get("security")
                            .and_then(Value::as_array)
                            .filter(|s| s.is_empty())
                            .map(|_| "None".to_string())
                    })
                    .unwrap_or_else(|| "Application & Application User".into());
                let throttling_policy = op
                    .get("x-throttling-tier")
                    .and_then(Value::as_str)
                    .unwrap_or("Unlimited")
                    .to_string();
                ops.push(Operation {
                    id: None,
                    target: path.clone(),
                    verb,
                    auth_type,
                    throttling_policy,
                    scopes: Vec::new(),
                });
            }
        }
        ops
    }

    /// The definition as compact JSON text, as stored.
    pub fn to_json(&self) -> String {
        self.doc.to_string()
    }
}

/// Fills what `api` leaves open from the definition: name, version and description from
/// `info`, the production endpoint from the servers, and the operations from the paths
/// (an operation the API already has keeps its settings).
pub fn apply_to_api(def: &Definition, api: &mut Api) {
    if api.name.trim().is_empty()
        && let Some(t) = def.title()
    {
        api.name = t;
    }
    if api.version.trim().is_empty()
        && let Some(v) = def.version()
    {
        api.version = v;
    }
    if api.description.is_none() {
        api.description = def.description();
    }
    if api.endpoint_config.is_none()
        && let Some(url) = def.server_url()
    {
        api.endpoint_config = Some(EndpointConfig {
            endpoint_type: "http".into(),
            production_endpoints: Some(Endpoints::One(Endpoint { url, config: None })),
            sandbox_endpoints: None,
            production_failovers: Vec::new(),
            sandbox_failovers: Vec::new(),
            algo_combo: None,
        });
    }
    let existing = std::mem::take(&mut api.operations);
    api.operations = def
        .operations()
        .into_iter()
        .map(|op| {
            existing
                .iter()
                .find(|e| e.target == op.target && e.verb.eq_ignore_ascii_case(&op.verb))
                .cloned()
                .unwrap_or(op)
        })
        .collect();
}

/// A minimal OpenAPI 3.0 document for an API created without one, so that every API
/// has a definition to show and export.
pub fn generate(api: &Api) -> Value {
    let mut paths = Map::new();
    for op in &api.operations {
        let item = paths.entry(op.target.clone()).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(op.verb.to_ascii_lowercase(), operation_stub(op));
        }
    }
    json!({
        "openapi": "3.0.1",
        "info": {
            "title": api.name,
            "version": api.version,
            "description": api.description.clone().unwrap_or_default(),
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
    })
}

fn operation_stub(op: &Operation) -> Value {
    let mut v = json!({
        "responses": { "default": { "description": "Default response" } },
        "x-auth-type": op.auth_type,
        "x-throttling-tier": op.throttling_policy,
    });
    if op.auth_type == "None"
        && let Some(o) = v.as_object_mut()
    {
        o.insert("security".into(), json!([]));
    }
    v
}

/// Brings a stored definition in step with `api`'s operations: paths and verbs the API
/// no longer has are removed, new ones are added as stubs, and the reference's
/// extensions carry each operation's auth type and throttling policy. `info.version`
/// follows the API's version.
pub fn sync(doc: &mut Value, api: &Api) {
    let Some(root) = doc.as_object_mut() else { return };
    if let Some(info) = root.get_mut("info").and_then(Value::as_object_mut) {
        info.insert("version".into(), json!(api.version));
    }
    let paths = root.entry("paths").or_insert_with(|| json!({}));
    let Some(paths) = paths.as_object_mut() else { return };
    // Remove operations the API no longer has.
    for (path, item) in paths.iter_mut() {
        if let Some(item) = item.as_object_mut() {
            // Method keys are read in any case but written in lower case (as OpenAPI has
            // them), so that `GET` and the `get` added below are not two operations.
            let upper: Vec<String> = item
                .keys()
                .filter(|k| is_verb(k) && k.chars().any(|c| c.is_ascii_uppercase()))
                .cloned()
                .collect();
            for key in upper {
                if let Some(operation) = item.remove(&key) {
                    item.entry(key.to_ascii_lowercase()).or_insert(operation);
                }
            }
            item.retain(|method, _| {
                !is_verb(method)
                    || api
                        .operations
                        .iter()
                        .any(|op| &op.target == path && op.verb.eq_ignore_ascii_case(method))
            });
        }
    }
    paths.retain(|path, item| path.starts_with("x-") || item.as_object().is_none_or(|o| o.keys().any(|k| is_verb(k))));
    // Add or annotate the API's operations.
    for op in &api.operations {
        let item = paths.entry(op.target.clone()).or_insert_with(|| json!({}));
        let Some(item) = item.as_object_mut() else { continue };
        let entry = item
            .entry(op.verb.to_ascii_lowercase())
            .or_insert_with(|| operation_stub(op));
        if let Some(o) = entry.as_object_mut() {
            o.insert("x-auth-type".into(), json!(op.auth_type));
            o.insert("x-throttling-tier".into(), json!(op.throttling_policy));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETSTORE_YAML: &str = r#"
openapi: 3.0.3
info:
  title: Swagger Petstore
  version: 1.0.0
  description: Pets.
servers:
  - url: https://petstore.example.com/v1/
paths:
  /pets:
    get:
      responses: { "200": { description: ok } }
    post:
      x-throttling-tier: 10KPerMin
      responses: { "201": { description: created } }
  /pets/{petId}:
    get:
      security: []
      responses: { "200": { description: ok } }
    delete:
      x-auth-type: Application
      responses: { "204": { description: gone } }
    parameters:
      - name: petId
        in: path
"#;

    #[test]
    fn yaml_openapi_3_gives_operations_and_defaults() {
        let def = parse(PETSTORE_YAML.as_bytes()).unwrap();
        assert_eq!(def.version, SpecVersion::OpenApi30);
        let ops = def.operations();
        let summary: Vec<(String, String, String, String)> = ops
            .iter()
            .map(|o| {
                (
                    o.verb.clone(),
                    o.target.clone(),
                    o.auth_type.clone(),
                    o.throttling_policy.clone(),
                )
            })
            .collect();
        assert_eq!(summary.len(), 4);
        assert!(summary.contains(&(
            "POST".into(),
            "/pets".into(),
            "Application & Application User".into(),
            "10KPerMin".into()
        )));
        assert!(summary.contains(&("GET".into(), "/pets/{petId}".into(), "None".into(), "Unlimited".into())));
        assert!(summary.contains(&(
            "DELETE".into(),
            "/pets/{petId}".into(),
            "Application".into(),
            "Unlimited".into()
        )));
        assert_eq!(def.server_url().as_deref(), Some("https://petstore.example.com/v1"));
        assert_eq!(def.title().as_deref(), Some("Swagger Petstore"));
    }

    #[test]
    fn swagger_2_and_openapi_3_1_are_read() {
        let s2 = br#"{"swagger":"2.0","info":{"title":"Old","version":"1"},"host":"api.example.com","basePath":"/v1","schemes":["http"],"paths":{"/a":{"get":{}}}}"#;
        let def = parse(s2).unwrap();
        assert_eq!(def.version, SpecVersion::Swagger2);
        assert_eq!(def.server_url().as_deref(), Some("http://api.example.com/v1"));
        let s31 = br#"{"openapi":"3.1.0","info":{"title":"Hooks","version":"2"},"webhooks":{}}"#;
        assert_eq!(parse(s31).unwrap().version, SpecVersion::OpenApi31);
    }

    /// Found by the long fuzz run: a YAML number stored as JSON must read back as the same
    /// number, to the last bit (serde_json's `float_roundtrip`).
    #[test]
    fn numbers_read_back_exactly_from_the_stored_json() {
        let yaml = b"openapi: 3.1.0\ninfo:\n  title: Menu\n  version: '2.0'\nx-n: [9.9999999999e100, 0.1, 2.2250738585072014e-308, 1.7976931348623157e308]\n";
        let def = parse(yaml).unwrap();
        let again = parse(def.to_json().as_bytes()).unwrap();
        assert_eq!(again, def);
        assert_eq!(again.doc["x-n"][0].as_f64(), Some(9.9999999999e100));
    }

    #[test]
    fn invalid_documents_are_explained() {
        let fields = |b: &[u8]| parse(b).unwrap_err().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(b""), ["definition"]);
        assert_eq!(fields(b"{\"openapi\": \"3.0.0\""), ["definition"]);
        assert_eq!(fields(br#"{"openapi":"4.0.0","info":{}}"#), ["definition.openapi"]);
        assert_eq!(fields(br#"{"info":{}}"#), ["definition"]);
        assert_eq!(
            fields(br#"{"openapi":"3.0.0","info":{"title":""},"paths":{"pets":{"get":1}}}"#),
            [
                "definition.info.title",
                "definition.info.version",
                "definition.paths.pets",
                "definition.paths.pets.get"
            ]
        );
        assert_eq!(fields(b"- just\n- a list\n"), ["definition"]);
    }

    #[test]
    fn sync_follows_the_operations() {
        let def = parse(PETSTORE_YAML.as_bytes()).unwrap();
        let mut api: Api = serde_json::from_value(json!({"name":"P","context":"/p","version":"2.0.0"})).unwrap();
        apply_to_api(&def, &mut api);
        api.operations.retain(|o| o.verb != "DELETE");
        api.operations.push(Operation {
            id: None,
            target: "/owners".into(),
            verb: "GET".into(),
            auth_type: "None".into(),
            throttling_policy: "Unlimited".into(),
            scopes: vec![],
        });
        let mut doc = def.doc.clone();
        sync(&mut doc, &api);
        let reparsed = validate(doc.clone()).unwrap();
        let mut ops: Vec<(String, String)> = reparsed.operations().into_iter().map(|o| (o.verb, o.target)).collect();
        ops.sort();
        assert_eq!(
            ops,
            [
                ("GET".to_string(), "/owners".to_string()),
                ("GET".into(), "/pets".into()),
                ("GET".into(), "/pets/{petId}".into()),
                ("POST".into(), "/pets".into())
            ]
        );
        assert_eq!(doc["info"]["version"], "2.0.0");
        // The path-level `parameters` entry survives.
        assert!(doc["paths"]["/pets/{petId}"]["parameters"].is_array());
    }

    #[test]
    fn sync_writes_a_method_key_of_any_case_once() {
        // Found by fuzz/openapi_import: `GET` was kept and `get` added beside it.
        let def = parse(
            br#"{"openapi":"3.0.3","info":{"title":"T","version":"1"},
            "paths":{"/a":{"GET":{"summary":"kept","responses":{"200":{"description":"ok"}}}}}}"#,
        )
        .unwrap();
        let mut api: Api = serde_json::from_value(json!({"name":"T","context":"/t","version":"1"})).unwrap();
        apply_to_api(&def, &mut api);
        assert_eq!(api.operations.len(), 1);
        let mut doc = def.doc.clone();
        sync(&mut doc, &api);
        let item = doc["paths"]["/a"].as_object().unwrap();
        assert_eq!(item.keys().collect::<Vec<_>>(), ["get"], "{doc}");
        assert_eq!(item["get"]["summary"], "kept");
        assert_eq!(validate(doc).unwrap().operations().len(), 1);
    }

    #[test]
    fn generated_definitions_parse_back() {
        let api: Api = serde_json::from_value(json!({"name":"G","context":"/g","version":"1",
            "operations":[{"target":"/x/{id}","verb":"PUT"},{"target":"/x/{id}","verb":"GET","authType":"None"}]}))
        .unwrap();
        let def = validate(generate(&api)).unwrap();
        assert_eq!(def.operations().len(), 2);
        assert!(
            def.operations()
                .iter()
                .any(|o| o.verb == "GET" && o.auth_type == "None")
        );
    }

    #[test]
    fn yaml_alias_bombs_are_refused() {
        // One list of 2,000 aliases to a list of 2,000 values: 4 million values from about
        // 20 kB, which yaml_serde's own repetition guard lets through.
        let mut doc = String::from("openapi: 3.0.0\ninfo: {title: t, version: '1'}\nl0: &l0 [");
        doc.push_str(&vec!["x"; 2000].join(", "));
        doc.push_str("]\nl1: [");
        doc.push_str(&vec!["*l0"; 2000].join(", "));
        doc.push_str("]\n");
        doc.push_str("paths: {}\n");
        // Refused by the expansion guard, before the values are built (how long that takes is
        // measured by the fuzz target's timeout, not asserted here).
        let err = parse(doc.as_bytes()).unwrap_err();
        assert!(err[0].message.contains("expands to more than"), "{err:?}");
        // Honest anchors still work.
        let ok = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\nx-common: &r {description: ok}\npaths:\n  /a:\n    get: {responses: {'200': *r}}\n";
        assert_eq!(parse(ok.as_bytes()).unwrap().operations().len(), 1);
    }

    #[test]
    fn deeply_nested_flow_collections_are_refused() {
        // Found by fuzz/openapi_import: each nested flow mapping doubled the YAML reader's time.
        let doc = format!("openapi: 3.0.0\ni: &a {}{}\n", "{".repeat(35), "}".repeat(35));
        // Refused by the nesting count before the YAML reader sees it (the reader's time is
        // the fuzz target's timeout to watch, not asserted here).
        let err = parse(doc.as_bytes()).unwrap_err();
        assert!(err[0].message.contains("nest more than 16 deep"), "{err:?}");
        // Brackets in quoted scalars and comments do not count; honest flow style still works.
        let ok = "openapi: 3.0.0\ninfo: {title: '{{{{{{{{{{{{{{{{{{{{', version: \"[[[[[[[[[[[[[[[[[[[[[\"}\n# {{{{{{{{{{{{{{{{{{{{{{\npaths: {/a: {get: {responses: {'200': {description: ok}}}}}\n";
        assert_eq!(parse(ok.as_bytes()).unwrap().operations().len(), 1);
        assert_eq!(tollgate_project::yaml::flow_depth("a: [{b: [c]}]", 100), 3);
        // A comment ends at a CR too (found by the long run: the rest was taken as comment).
        let doc = format!("openapi: 3.0.0\ri: {{\r#c\r{}{}\n", "{".repeat(40), "}".repeat(41));
        let err = parse(doc.as_bytes()).unwrap_err();
        assert!(err[0].message.contains("nest more than 16 deep"), "{err:?}");
    }

    mod fuzz {
        use super::super::parse;
        use proptest::prelude::*;

        const SEED: &str = r#"{"openapi":"3.0.0","info":{"title":"T","version":"1"},"paths":{"/a/{b}":{"get":{"security":[]},"post":{"x-auth-type":"None"}}}}"#;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse(&bytes).map(|d| d.operations());
            }

            #[test]
            fn truncated_documents_never_panic(cut in 0usize..SEED.len()) {
                let _ = parse(&SEED.as_bytes()[..cut]).map(|d| d.operations());
            }

            #[test]
            fn mutated_documents_never_panic(pos in 0usize..SEED.len(), byte in any::<u8>()) {
                let mut doc = SEED.as_bytes().to_vec();
                doc[pos] = byte;
                if let Ok(d) = parse(&doc) {
                    let _ = d.operations();
                    let _ = d.server_url();
                }
            }

            #[test]
            fn random_yaml_shapes_never_panic(s in "[a-z{}\\[\\]:/ \\n-]{0,200}") {
                let _ = parse(s.as_bytes()).map(|d| d.operations());
            }
        }
    }
}
