//! A throttling policy as a file: the reference's `{type: throttling policy, subtype,
//! version, data}`, where `subtype` names the level and `data` is the policy in the
//! Admin REST API's shape for that level. Unlike API and application projects, a policy
//! travels as one YAML or JSON file, not a zip.

use crate::ProjectError;
use crate::api::{Format, write};
use crate::decode::{self, FORMAT_VERSION, READABLE_VERSIONS};
use serde::Serialize;
use serde_json::Value;
use tollgate_model::policy::PolicyLevel;

/// The envelope's `type`.
pub const POLICY_TYPE: &str = "throttling policy";

/// The reference's subtype of each level.
pub fn subtype(level: PolicyLevel) -> &'static str {
    match level {
        PolicyLevel::Subscription => "subscription policy",
        PolicyLevel::Application => "application policy",
        PolicyLevel::Advanced => "advanced policy",
        PolicyLevel::Custom => "custom rule",
    }
}

/// The level a subtype names (the reference once wrote `subcription policy`).
fn level_of(subtype: &str) -> Option<PolicyLevel> {
    match subtype.trim().to_ascii_lowercase().as_str() {
        "subscription policy" | "subcription policy" => Some(PolicyLevel::Subscription),
        "application policy" => Some(PolicyLevel::Application),
        "advanced policy" | "api policy" => Some(PolicyLevel::Advanced),
        "custom rule" | "global policy" => Some(PolicyLevel::Custom),
        _ => None,
    }
}

/// The file name the reference's CLI gives an exported policy:
/// `Subscription-Gold.yaml`.
pub fn file_name(level: PolicyLevel, name: &str, format: Format) -> String {
    let kind = match level {
        PolicyLevel::Subscription => "Subscription",
        PolicyLevel::Application => "Application",
        PolicyLevel::Advanced => "Advanced",
        PolicyLevel::Custom => "Custom",
    };
    format!("{kind}-{}.{}", crate::api::folder_name(name), format.extension())
}

/// Reads a policy file: its level and its `data`.
pub fn read(file: &str, bytes: &[u8]) -> Result<(PolicyLevel, Value), ProjectError> {
    let mut value = decode::parse(file, bytes)?;
    let field = |field: &str, message: String| ProjectError::Field {
        file: file.to_string(),
        field: field.to_string(),
        message,
    };
    let Some(obj) = value.as_object_mut() else {
        return Err(field(
            "",
            "must be a mapping with type, subtype, version and data".into(),
        ));
    };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    if !kind.eq_ignore_ascii_case(POLICY_TYPE) {
        return Err(field(
            "type",
            format!("is `{kind}`; a policy file has type `{POLICY_TYPE}`"),
        ));
    }
    let version = obj.get("version").and_then(Value::as_str).unwrap_or_default();
    if !version.starts_with(READABLE_VERSIONS) {
        return Err(ProjectError::Version {
            file: file.to_string(),
            found: version.to_string(),
        });
    }
    let sub = obj.get("subtype").and_then(Value::as_str).unwrap_or_default();
    let level = level_of(sub).ok_or_else(|| {
        field(
            "subtype",
            format!("`{sub}` must be subscription policy, application policy, advanced policy or custom rule"),
        )
    })?;
    let data = obj.remove("data").ok_or_else(|| field("data", "is missing".into()))?;
    Ok((level, data))
}

/// Writes a policy file.
pub fn write_policy<T: Serialize>(format: Format, level: PolicyLevel, data: &T) -> Result<Vec<u8>, ProjectError> {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        subtype: &'a str,
        version: &'a str,
        data: &'a T,
    }
    write(
        format,
        &Envelope {
            kind: POLICY_TYPE,
            subtype: subtype(level),
            version: FORMAT_VERSION,
            data,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_policy_reads_back_with_its_level() {
        for level in PolicyLevel::ALL {
            let data = serde_json::json!({"policyName": "Gold"});
            for format in [Format::Yaml, Format::Json] {
                let bytes = write_policy(format, level, &data).unwrap();
                let (back, d) = read("p", &bytes).unwrap();
                assert_eq!((back, d), (level, data.clone()));
            }
        }
        assert_eq!(
            file_name(PolicyLevel::Subscription, "Gold", Format::Yaml),
            "Subscription-Gold.yaml"
        );
    }

    #[test]
    fn the_reference_spellings_and_bad_files() {
        let ok = b"type: throttling policy\nsubtype: subcription policy\nversion: v4.2.0\ndata: {policyName: x}\n";
        assert_eq!(read("p", ok).unwrap().0, PolicyLevel::Subscription);
        for (text, needle) in [
            ("type: api\nsubtype: custom rule\nversion: v4.2.0\ndata: {}\n", "type"),
            (
                "type: throttling policy\nsubtype: weird\nversion: v4.2.0\ndata: {}\n",
                "subtype",
            ),
            (
                "type: throttling policy\nsubtype: custom rule\nversion: v2\ndata: {}\n",
                "v2",
            ),
            (
                "type: throttling policy\nsubtype: custom rule\nversion: v4.2.0\n",
                "data",
            ),
            ("[1, 2", "p:"),
        ] {
            let e = read("p", text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
