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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// What a block condition is checked against: one API call, as the gateway knows it.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockedCall<'a> {
    /// The API's versioned context (`/pizza/1.0.0`, `/t/acme.com/pizza/1.0.0`).
    pub api_context: &'a str,
    /// How long the `/t/{domain}` prefix of `api_context` is (0 in the super tenant): an
    /// `API` condition of a tenant may name the context with it (as the reference stores
    /// a tenant's contexts) or without (as its publisher sees it).
    pub tenant_prefix_len: usize,
    /// The calling application's owner and name, when authenticated.
    pub application: Option<(&'a str, &'a str)>,
    /// The end user (the token's subject), when authenticated.
    pub user: Option<&'a str>,
    /// The caller's address.
    pub client_ip: Option<IpAddr>,
}

/// The body of `PATCH /throttling/deny-policy/{conditionId}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BlockConditionStatus {
    /// Ignored (the path names the condition); accepted because the reference sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// Whether this condition refuses `call`. Disabled conditions refuse nothing; an IP
    /// condition with `invert` refuses every address but the ones it names.
    pub fn blocks(&self, call: &BlockedCall<'_>) -> bool {
        if !self.condition_status {
            return false;
        }
        let text = || self.condition_value.as_str().map(str::trim).unwrap_or("");
        match self.condition_type.as_str() {
            "API" => {
                let named = text().trim_end_matches('/');
                let context = call.api_context.trim_end_matches('/');
                !named.is_empty()
                    && (context == named || context.get(call.tenant_prefix_len..).is_some_and(|bare| bare == named))
            }
            "APPLICATION" => call
                .application
                .is_some_and(|(owner, name)| text().split_once(':') == Some((owner, name))),
            "USER" => call.user.is_some_and(|u| {
                let blocked = text();
                u.eq_ignore_ascii_case(blocked)
                    || u.split('@')
                        .next()
                        .is_some_and(|bare| bare.eq_ignore_ascii_case(blocked))
            }),
            "IP" | "IPRANGE" => {
                let Some(ip) = call.client_ip else { return false };
                let get = |k: &str| {
                    self.condition_value
                        .get(k)
                        .and_then(Value::as_str)
                        .and_then(|s| s.trim().parse::<IpAddr>().ok())
                };
                let named = if self.condition_type == "IP" {
                    get("fixedIp").map(|fixed| fixed == ip)
                } else {
                    match (get("startingIp"), get("endingIp")) {
                        (Some(a), Some(b)) => Some(a.is_ipv4() == ip.is_ipv4() && a <= ip && ip <= b),
                        _ => None,
                    }
                };
                match named {
                    Some(named) => named != self.invert().unwrap_or(false),
                    None => false,
                }
            }
            _ => false,
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
    fn enabled_conditions_block_matching_calls() {
        let call = BlockedCall {
            api_context: "/pizza/1.0.0",
            tenant_prefix_len: 0,
            application: Some(("alice", "PizzaApp")),
            user: Some("alice@carbon.super"),
            client_ip: Some("10.1.2.3".parse().unwrap()),
        };
        let cases = [
            (cond("API", json!("/pizza/1.0.0/")), true),
            (cond("API", json!("/pizza/2.0.0")), false),
            (cond("APPLICATION", json!("alice:PizzaApp")), true),
            (cond("APPLICATION", json!("bob:PizzaApp")), false),
            (cond("USER", json!("Alice")), true),
            (cond("USER", json!("bob")), false),
            (cond("IP", json!({"fixedIp": "10.1.2.3"})), true),
            (cond("IP", json!({"fixedIp": "10.1.2.4"})), false),
            (cond("IP", json!({"fixedIp": "10.1.2.4", "invert": true})), true),
            (cond("IP", json!({"fixedIp": "10.1.2.3", "invert": true})), false),
            (
                cond("IPRANGE", json!({"startingIp": "10.1.0.0", "endingIp": "10.1.255.255"})),
                true,
            ),
            (
                cond("IPRANGE", json!({"startingIp": "10.2.0.0", "endingIp": "10.2.255.255"})),
                false,
            ),
            (
                cond(
                    "IPRANGE",
                    json!({"startingIp": "10.2.0.0", "endingIp": "10.2.255.255", "invert": true}),
                ),
                true,
            ),
        ];
        for (c, expected) in cases {
            assert_eq!(c.blocks(&call), expected, "{c:?}");
            let disabled = BlockCondition {
                condition_status: false,
                ..c.clone()
            };
            assert!(!disabled.blocks(&call), "a disabled condition blocks nothing: {c:?}");
        }
        // An anonymous call (a resource without authentication) is blocked by API and IP
        // conditions only.
        let anonymous = BlockedCall {
            application: None,
            user: None,
            ..call
        };
        assert!(!cond("USER", json!("alice")).blocks(&anonymous));
        // A tenant's API: its context named with or without the prefix, not another's.
        let tenants = BlockedCall {
            api_context: "/t/acme.com/pizza/1.0.0",
            tenant_prefix_len: "/t/acme.com".len(),
            ..anonymous
        };
        assert!(cond("API", json!("/t/acme.com/pizza/1.0.0")).blocks(&tenants));
        assert!(cond("API", json!("/pizza/1.0.0/")).blocks(&tenants));
        assert!(!cond("API", json!("/t/beta.org/pizza/1.0.0")).blocks(&tenants));
        assert!(!cond("API", json!("/1.0.0")).blocks(&tenants));
        assert!(!cond("API", json!("/pizza/1.0.0")).blocks(&BlockedCall {
            tenant_prefix_len: 0,
            ..tenants
        }));
        assert!(!cond("APPLICATION", json!("alice:PizzaApp")).blocks(&anonymous));
        assert!(cond("IP", json!({"fixedIp": "10.1.2.3"})).blocks(&anonymous));
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
