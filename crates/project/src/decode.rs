//! Reading the project's YAML and JSON files: every file is `{type, version, data}`, and
//! its errors name the file and the line (syntax) or the field (shape). Fields Tollgate
//! does not know are reported, never dropped silently, unless their value is one that
//! changes nothing (`null`, `false`, empty, or the reference's default).

use crate::ProjectError;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The format versions Tollgate reads: the reference's 4.x projects.
pub const READABLE_VERSIONS: &str = "v4.";

/// The format version Tollgate writes.
pub const FORMAT_VERSION: &str = "v4.5.0";

/// Parses a YAML or JSON file into a value; a syntax error names the file and line.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Value, ProjectError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ProjectError::Syntax {
        file: file.to_string(),
        message: format!("not UTF-8 text ({e})"),
    })?;
    crate::yaml::parse(text).map_err(|message| ProjectError::Syntax {
        file: file.to_string(),
        message,
    })
}

/// The `data` of a `{type, version, data}` file whose `type` is one of `kinds`
/// (compared without case), with its format version checked.
pub fn envelope(file: &str, bytes: &[u8], kinds: &[&str]) -> Result<Value, ProjectError> {
    let mut value = parse(file, bytes)?;
    let field = |field: &str, message: String| ProjectError::Field {
        file: file.to_string(),
        field: field.to_string(),
        message,
    };
    let Some(obj) = value.as_object_mut() else {
        return Err(field("", "must be a mapping with type, version and data".into()));
    };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    if !kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)) {
        return Err(field(
            "type",
            format!("is `{kind}`; this file must have type {}", kinds.join(" or ")),
        ));
    }
    let version = obj.get("version").and_then(Value::as_str).unwrap_or_default();
    if !version.starts_with(READABLE_VERSIONS) {
        return Err(ProjectError::Version {
            file: file.to_string(),
            found: version.to_string(),
        });
    }
    obj.remove("data").ok_or_else(|| field("data", "is missing".into()))
}

/// Deserialises `value` (found at `prefix` in `file`) into `T`; gives the fields `T`
/// does not know whose value is not neutral, as paths (`data.operations[0].x`).
pub fn typed<T: DeserializeOwned>(file: &str, prefix: &str, value: &Value) -> Result<(T, Vec<String>), ProjectError> {
    let mut ignored = Vec::new();
    let result: Result<T, _> = {
        // `?` marks an `Option`'s content in serde_ignored's paths: not a key.
        let mut record = |path: serde_ignored::Path<'_>| {
            let text = path.to_string();
            ignored.push(text.split('.').filter(|p| *p != "?").collect::<Vec<_>>().join("."))
        };
        let de = serde_ignored::Deserializer::new(value, &mut record);
        serde_path_to_error::deserialize(de)
    };
    let typed = result.map_err(|e| {
        let path = e.path().to_string();
        ProjectError::Field {
            file: file.to_string(),
            field: join(prefix, if path == "." { "" } else { &path }),
            message: e.into_inner().to_string(),
        }
    })?;
    let mut unknown: Vec<String> = ignored
        .into_iter()
        .filter(|p| lookup(value, p).is_none_or(|v| !neutral(p, v)))
        .map(|p| join(prefix, &indexed(&p)))
        .collect();
    unknown.sort();
    unknown.dedup();
    Ok((typed, unknown))
}

/// `a.0.b` as `a[0].b`, as the field paths of shape errors are written.
fn indexed(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}.{path}"),
    }
}

/// Follows a serde_ignored path (`a.0.b`) through a value.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Object(m) => m.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Values of unknown fields that change nothing: empty, off, or the reference's
/// default for that field, or fields that describe the reference's own server.
fn neutral(path: &str, value: &Value) -> bool {
    let key = path.rsplit('.').next().unwrap_or(path);
    if SERVER_OWNED.contains(&key) {
        return true;
    }
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) if s.is_empty() => true,
        Value::Array(a) if a.is_empty() => true,
        Value::Object(m) => m.iter().all(|(k, v)| neutral(&format!("{path}.{k}"), v)),
        other => DEFAULTS.iter().any(|(k, v)| *k == key && is(other, v)),
    }
}

/// Whether `value` is the default written as `text` (a string, a number, `true`, or a
/// one-element list `[x]`).
fn is(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s.eq_ignore_ascii_case(text),
        Value::Number(n) => n.to_string() == text,
        Value::Bool(true) => text == "true",
        Value::Array(a) => text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .is_some_and(|inner| a.len() == 1 && is(&a[0], inner)),
        _ => false,
    }
}

/// Fields the reference writes into every export that describe its server or repeat
/// another field; they mean nothing to the API.
const SERVER_OWNED: &[&str] = &[
    "additionalPropertiesMap",
    "lastUpdatedTimestamp",
    "revisionId",
    "revisionedApiId",
    "workflowStatus",
    "gatewayVendor",
    "gatewayType",
    "organizationId",
    "isRevision",
    "hasThumbnail",
    "initiatedFromGateway",
    "subscriberCount",
    "isDeployed",
];

/// The reference's default values: a field left at its default needs no support.
const DEFAULTS: &[(&str, &str)] = &[
    ("accessControl", "NONE"),
    ("subscriptionAvailability", "CURRENT_TENANT"),
    ("audience", "PUBLIC"),
    ("cacheTimeout", "300"),
    ("cacheTimeout", "0"),
    ("maxTps", "0"),
    ("enableStore", "true"),
    ("keyManagers", "[all]"),
    ("endpoint_type", "http"),
    ("failOver", "true"),
    ("algoClassName", "org.apache.synapse.endpoints.algorithms.RoundRobin"),
    ("type", "NONE"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Small {
        name: String,
        #[allow(dead_code)]
        #[serde(default)]
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Item {
        #[allow(dead_code)]
        x: u32,
    }

    #[test]
    fn a_syntax_error_names_file_and_line() {
        let e = parse("api.yaml", b"type: api\ndata:\n  name: [unclosed\n").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("api.yaml: "), "{text}");
        assert!(text.contains("line"), "{text}");
    }

    #[test]
    fn the_envelope_checks_type_and_version() {
        let ok = envelope("api.yaml", b"type: api\nversion: v4.2.0\ndata: {name: a}\n", &["api"]).unwrap();
        assert_eq!(ok["name"], "a");
        let e = envelope("api.yaml", b"type: application\nversion: v4.2.0\ndata: {}\n", &["api"]).unwrap_err();
        assert!(e.to_string().contains("must have type api"), "{e}");
        let e = envelope("api.yaml", b"type: api\nversion: v9.0.0\ndata: {}\n", &["api"]).unwrap_err();
        assert!(matches!(e, ProjectError::Version { .. }), "{e}");
        assert!(e.to_string().contains("v9.0.0"), "{e}");
        let e = envelope("api.yaml", b"type: api\nversion: v4.1.0\n", &["api"]).unwrap_err();
        assert!(e.to_string().contains("data"), "{e}");
    }

    #[test]
    fn unknown_fields_are_named_unless_neutral() {
        let v: Value = serde_json::json!({
            "name": "a",
            "items": [{"x": 1, "colour": "red"}],
            "enableSchemaValidation": false,
            "accessControl": "NONE",
            "responseCachingEnabled": true,
            "mediationPolicies": [],
            "endpointSecurity": {"type": "basic", "enabled": false}
        });
        let (s, unknown) = typed::<Small>("api.yaml", "data", &v).unwrap();
        assert_eq!(s.name, "a");
        assert_eq!(
            unknown,
            vec![
                "data.endpointSecurity".to_string(),
                "data.items[0].colour".to_string(),
                "data.responseCachingEnabled".to_string()
            ]
        );
    }

    #[test]
    fn a_shape_error_names_the_field() {
        let v: Value = serde_json::json!({"name": "a", "items": [{"x": "many"}]});
        let e = typed::<Small>("api.yaml", "data", &v).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("data.items[0].x"), "{text}");
    }
}
