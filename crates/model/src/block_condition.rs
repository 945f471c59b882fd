//! Block conditions (the reference's "deny policies"): calls matching an enabled
//! condition are refused by every gateway with 403 (900805) before any throttling.

use crate::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;

/// A block condition in the reference Admin API's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BlockCondition {
    /// Server-assigned id.
    #[serde(default)]
    pub condition_id: Option<String>,
    /// `API`, `APPLICATION`, `IP`, `IPRANGE` or `USER`.
    pub condition_type: String,
    /// A context (`/pizza/1.0.0`), `owner:application`, a user name, `{"fixedIp",
    /// "invert"}` or `{"startingIp", "endingIp", "invert"}`, by type.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub condition_value: Value,
    /// Whether the condition is enforced.
    #[serde(default = "yes")]
    pub condition_status: bool,
}

fn yes() -> bool {
    true
}

/// The body of `PATCH /throttling/deny-policy/{conditionId}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BlockConditionStatus {
    /// Ignored (the path names the condition); accepted because the reference sends it.
    #[serde(default)]
    pub condition_id: Option<String>,
    /// Enable or disable.
    pub condition_status: bool,
}

impl BlockCondition {
    /// Checks the type and the value's shape for it; returns a canonical key (type and
    /// normalised value) that two equal conditions share, for duplicate detection.
    pub fn validate(&self) -> Result<String, Vec<FieldError>> {
        let bad = |m: String| Err(vec![FieldError::new("conditionValue", m)]);
        let text = || self.condition_value.as_str().map(str::trim).filter(|s| !s.is_empty());
        match self.condition_type.as_str() {
            "API" => match text() {
                Some(c) if c.starts_with('/') && !c.contains(char::is_whitespace) => {
                    Ok(format!("API:{}", c.trim_end_matches('/')))
                }
                _ => bad("must be an API context such as \"/pizzashack/1.0.0\"".into()),
            },
            "APPLICATION" => match text().and_then(|t| t.split_once(':')) {
                Some((owner, app)) if !owner.is_empty() && !app.is_empty() => Ok(format!("APPLICATION:{owner}:{app}")),
                _ => bad("must be \"owner:applicationName\"".into()),
            },
            "USER" => match text() {
                Some(u) if crate::user::validate_username(u.split('@').next().unwrap_or(u)).is_ok() => {
                    Ok(format!("USER:{}", u.to_lowercase()))
                }
                _ => bad("must be a user name".into()),
            },
            "IP" => {
                let ip = self
                    .condition_value
                    .get("fixedIp")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<IpAddr>().ok());
                let invert = self
                    .invert()
                    .map_err(|m| vec![FieldError::new("conditionValue.invert", m)])?;
                match ip {
                    Some(ip) => Ok(format!("IP:{ip}:{invert}")),
                    None => Err(vec![FieldError::new("conditionValue.fixedIp", "must be an IP address")]),
                }
            }
            "IPRANGE" => {
                let get = |k: &str| {
                    self.condition_value
                        .get(k)
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<IpAddr>().ok())
                };
                let invert = self
                    .invert()
                    .map_err(|m| vec![FieldError::new("conditionValue.invert", m)])?;
                match (get("startingIp"), get("endingIp")) {
                    (Some(a), Some(b)) if a.is_ipv4() == b.is_ipv4() && a <= b => {
                        Ok(format!("IPRANGE:{a}-{b}:{invert}"))
                    }
                    (Some(_), Some(_)) => {
                        bad("startingIp must not be above endingIp, and both must be the same family".into())
                    }
                    _ => bad(
                        "must be {\"startingIp\": \"10.0.0.1\", \"endingIp\": \"10.0.0.255\", \"invert\": false}"
                            .into(),
                    ),
                }
            }
            other => Err(vec![FieldError::new(
                "conditionType",
                format!("`{other}` must be API, APPLICATION, IP, IPRANGE or USER"),
            )]),
        }
    }

    fn invert(&self) -> Result<bool, String> {
        match self.condition_value.get("invert") {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err("must be true or false".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(t: &str, v: Value) -> BlockCondition {
        BlockCondition {
            condition_id: None,
            condition_type: t.into(),
            condition_value: v,
            condition_status: true,
        }
    }

    #[test]
    fn values_are_checked_per_type() {
        assert_eq!(
            cond("API", json!("/pizza/1.0.0/")).validate().unwrap(),
            "API:/pizza/1.0.0"
        );
        assert_eq!(
            cond("APPLICATION", json!("admin:Shop")).validate().unwrap(),
            "APPLICATION:admin:Shop"
        );
        assert_eq!(cond("USER", json!("Eve")).validate().unwrap(), "USER:eve");
        assert_eq!(
            cond("IP", json!({"fixedIp": "10.1.1.1"})).validate().unwrap(),
            "IP:10.1.1.1:false"
        );
        assert_eq!(
            cond(
                "IPRANGE",
                json!({"startingIp": "10.0.0.1", "endingIp": "10.0.0.9", "invert": true})
            )
            .validate()
            .unwrap(),
            "IPRANGE:10.0.0.1-10.0.0.9:true"
        );
        let field = |c: BlockCondition| c.validate().unwrap_err()[0].field.clone();
        assert_eq!(field(cond("API", json!("pizza"))), "conditionValue");
        assert_eq!(field(cond("APPLICATION", json!("nocolon"))), "conditionValue");
        assert_eq!(
            field(cond("IP", json!({"fixedIp": "10.1.1"}))),
            "conditionValue.fixedIp"
        );
        assert_eq!(
            field(cond("IP", json!({"fixedIp": "10.1.1.1", "invert": "yes"}))),
            "conditionValue.invert"
        );
        assert_eq!(
            field(cond(
                "IPRANGE",
                json!({"startingIp": "10.0.0.9", "endingIp": "10.0.0.1"})
            )),
            "conditionValue"
        );
        assert_eq!(field(cond("COUNTRY", json!("NZ"))), "conditionType");
        assert_eq!(field(cond("USER", json!(42))), "conditionValue");
    }
}
