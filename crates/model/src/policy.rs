//! Throttling policies as the reference's Admin v4 API shapes them: subscription
//! policies (business plans), application policies, and advanced (API and resource)
//! policies with conditional groups. The traffic manager enforces them; this module only
//! describes and validates them.

use crate::FieldError;
use crate::custom_rule::RequestAttributes;
use crate::throttle_window::{Limit, TimeUnit};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which kind of policy, as the `/throttling/policies/{level}` path names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PolicyLevel {
    /// Business plans consumers subscribe with.
    Subscription,
    /// Per-application quotas.
    Application,
    /// API- and resource-level policies with conditional groups.
    Advanced,
    /// Custom rules: a limit per key template, for the requests a condition selects.
    Custom,
}

impl PolicyLevel {
    /// Every level.
    pub const ALL: [PolicyLevel; 4] = [
        PolicyLevel::Subscription,
        PolicyLevel::Application,
        PolicyLevel::Advanced,
        PolicyLevel::Custom,
    ];

    /// The path segment and stored name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            PolicyLevel::Subscription => "subscription",
            PolicyLevel::Application => "application",
            PolicyLevel::Advanced => "advanced",
            PolicyLevel::Custom => "custom",
        }
    }

    /// The reference's `type` discriminator for policies of this level.
    pub const fn type_name(&self) -> &'static str {
        match self {
            PolicyLevel::Subscription => "SubscriptionThrottlePolicy",
            PolicyLevel::Application => "ApplicationThrottlePolicy",
            PolicyLevel::Advanced => "AdvancedThrottlePolicy",
            PolicyLevel::Custom => "CustomRule",
        }
    }
}

impl fmt::Display for PolicyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PolicyLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown policy level `{s}`; use subscription, application, advanced or custom"))
    }
}

/// A limit: so many requests, or so much data, per time window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ThrottleLimit {
    /// `REQUESTCOUNTLIMIT` or `BANDWIDTHLIMIT`.
    #[serde(rename = "type")]
    pub limit_type: String,
    /// For `REQUESTCOUNTLIMIT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_count: Option<RequestCountLimit>,
    /// For `BANDWIDTHLIMIT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthLimit>,
}

/// `requestCount` requests per `unitTime` `timeUnit`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequestCountLimit {
    /// `sec`, `min`, `hour`, `day` or `month`.
    pub time_unit: String,
    /// How many time units make the window.
    pub unit_time: u32,
    /// Requests allowed per window.
    pub request_count: u64,
}

/// `dataAmount` `dataUnit`s per `unitTime` `timeUnit`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BandwidthLimit {
    /// `sec`, `min`, `hour`, `day` or `month`.
    pub time_unit: String,
    /// How many time units make the window.
    pub unit_time: u32,
    /// Data allowed per window.
    pub data_amount: u64,
    /// `KB`, `MB` or `GB`.
    pub data_unit: String,
}

/// A short-window cap on top of a quota (`rateLimitCount` per `rateLimitTimeUnit`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BurstLimit {
    /// Requests allowed per burst window (0: none).
    pub rate_limit_count: u64,
    /// `sec` or `min`.
    pub rate_limit_time_unit: String,
}

// The policy structs below repeat their common header fields (policyId, policyName,
// displayName, description, isDeployed, type) instead of sharing them through
// `#[serde(flatten)]`: flattening hides unknown fields from `serde_ignored`, and the REST
// API must name every field it ignores.

/// A subscription policy (business plan).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPolicy {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// Unique name per level (`Gold`).
    pub policy_name: String,
    /// Label for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Output only: always true (policies take effect through the event hub).
    #[serde(default)]
    pub is_deployed: bool,
    /// Output only: `SubscriptionThrottlePolicy`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    /// The quota.
    pub default_limit: ThrottleLimit,
    /// Burst control: requests per `rateLimitTimeUnit` (0: none).
    #[serde(default)]
    pub rate_limit_count: u64,
    /// `sec` or `min`, when `rateLimitCount` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_time_unit: Option<String>,
    /// Whether calls beyond the quota are refused (true) or only counted, for billing.
    #[serde(default = "yes")]
    pub stop_on_quota_reach: bool,
    /// `FREE`, `COMMERCIAL`.
    #[serde(default = "free")]
    pub billing_plan: String,
}

/// An application policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPolicy {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// Unique name per level (`10PerMin`).
    pub policy_name: String,
    /// Label for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Output only.
    #[serde(default)]
    pub is_deployed: bool,
    /// Output only: `ApplicationThrottlePolicy`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    /// The quota.
    pub default_limit: ThrottleLimit,
    /// Optional burst control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_limit: Option<BurstLimit>,
}

/// An advanced (API or resource) policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdvancedPolicy {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// Unique name per level (`10KPerMin`).
    pub policy_name: String,
    /// Label for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Output only.
    #[serde(default)]
    pub is_deployed: bool,
    /// Output only: `AdvancedThrottlePolicy`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    /// The limit when no conditional group matches.
    pub default_limit: ThrottleLimit,
    /// Limits that apply to requests matching all of a group's conditions.
    #[serde(default)]
    pub conditional_groups: Vec<ConditionalGroup>,
}

/// Conditions that, when all match, select `limit` instead of the default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConditionalGroup {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// All must match.
    pub conditions: Vec<ThrottleCondition>,
    /// The limit for matching requests.
    pub limit: ThrottleLimit,
}

/// One condition of a group; `invertCondition` negates it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ThrottleCondition {
    /// `HEADERCONDITION`, `IPCONDITION`, `JWTCLAIMSCONDITION` or `QUERYPARAMETERCONDITION`.
    #[serde(rename = "type")]
    pub condition_type: String,
    /// Match when the condition does not hold.
    #[serde(default)]
    pub invert_condition: bool,
    /// For `HEADERCONDITION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_condition: Option<HeaderCondition>,
    /// For `IPCONDITION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_condition: Option<IpCondition>,
    /// For `JWTCLAIMSCONDITION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_claims_condition: Option<JwtClaimsCondition>,
    /// For `QUERYPARAMETERCONDITION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_parameter_condition: Option<QueryParameterCondition>,
}

/// A request header equals a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HeaderCondition {
    /// Header name.
    pub header_name: String,
    /// Expected value.
    pub header_value: String,
}

/// The client address is one address, or in a range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IpCondition {
    /// `IPSPECIFIC` or `IPRANGE`.
    pub ip_condition_type: String,
    /// For `IPSPECIFIC`.
    #[serde(rename = "specificIP", default, skip_serializing_if = "Option::is_none")]
    pub specific_ip: Option<String>,
    /// For `IPRANGE`: first address.
    #[serde(rename = "startingIP", default, skip_serializing_if = "Option::is_none")]
    pub starting_ip: Option<String>,
    /// For `IPRANGE`: last address.
    #[serde(rename = "endingIP", default, skip_serializing_if = "Option::is_none")]
    pub ending_ip: Option<String>,
}

/// A JWT claim matches a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JwtClaimsCondition {
    /// Claim name or URI.
    pub claim_url: String,
    /// Expected value.
    pub attribute: String,
}

/// A query parameter equals a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct QueryParameterCondition {
    /// Parameter name.
    pub parameter_name: String,
    /// Expected value.
    pub parameter_value: String,
}

impl ConditionalGroup {
    /// Whether every condition of the group holds for the request (an empty group never
    /// matches: it would silently replace the default limit for everyone).
    pub fn matches(&self, req: &dyn RequestAttributes) -> bool {
        !self.conditions.is_empty() && self.conditions.iter().all(|c| c.matches(req))
    }
}

impl ThrottleCondition {
    /// Whether the condition holds for the request, inverted when `invertCondition` is
    /// set. A condition missing its details never holds (and is not inverted into holding).
    pub fn matches(&self, req: &dyn RequestAttributes) -> bool {
        let held = match self.condition_type.as_str() {
            "HEADERCONDITION" => self
                .header_condition
                .as_ref()
                .map(|h| req.header(&h.header_name).is_some_and(|v| v == h.header_value)),
            "QUERYPARAMETERCONDITION" => self
                .query_parameter_condition
                .as_ref()
                .map(|q| req.query(&q.parameter_name).is_some_and(|v| v == q.parameter_value)),
            "JWTCLAIMSCONDITION" => self
                .jwt_claims_condition
                .as_ref()
                .map(|j| req.claim(&j.claim_url).is_some_and(|v| v == j.attribute)),
            "IPCONDITION" => self.ip_condition.as_ref().and_then(|ip| {
                let client: std::net::IpAddr = req.variable("clientIp").parse().ok()?;
                ip.contains(client)
            }),
            _ => None,
        };
        match held {
            Some(held) => held != self.invert_condition,
            None => false,
        }
    }
}

impl IpCondition {
    /// Whether `client` is the specific address or within the (inclusive) range; `None`
    /// when the condition's addresses are missing or unreadable.
    pub fn contains(&self, client: std::net::IpAddr) -> Option<bool> {
        let parse = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
        match self.ip_condition_type.as_str() {
            "IPSPECIFIC" => Some(parse(&self.specific_ip)? == client),
            "IPRANGE" => {
                let (start, end) = (parse(&self.starting_ip)?, parse(&self.ending_ip)?);
                // Addresses compare only within one family.
                Some(start.is_ipv4() == client.is_ipv4() && start <= client && client <= end)
            }
            _ => None,
        }
    }
}

fn yes() -> bool {
    true
}
fn free() -> String {
    "FREE".into()
}

/// The time units limits may use.
pub const TIME_UNITS: [&str; 5] = ["sec", "min", "hour", "day", "month"];

fn validate_name(name: &str, e: &mut Vec<FieldError>) {
    if name.is_empty()
        || name.len() > 60
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        e.push(FieldError::new(
            "policyName",
            "must be 1 to 60 letters, digits, _ - or .",
        ));
    }
}

fn validate_time_unit(field: &str, unit: &str, e: &mut Vec<FieldError>) {
    if !TIME_UNITS.contains(&unit) {
        e.push(FieldError::new(
            field,
            format!("`{unit}` must be one of {}", TIME_UNITS.join(", ")),
        ));
    }
}

impl ThrottleLimit {
    /// A request-count limit (used for the built-in defaults).
    pub fn requests(count: u64, unit: &str) -> Self {
        Self {
            limit_type: "REQUESTCOUNTLIMIT".into(),
            request_count: Some(RequestCountLimit {
                time_unit: unit.into(),
                unit_time: 1,
                request_count: count,
            }),
            bandwidth: None,
        }
    }

    /// The limit ready for counting; `None` for an effectively unlimited one (at least
    /// [`defaults::UNLIMITED_REQUESTS`] requests) or one that does not validate.
    pub fn compile(&self) -> Option<Limit> {
        match (self.limit_type.as_str(), &self.request_count, &self.bandwidth) {
            ("REQUESTCOUNTLIMIT", Some(rc), _) if rc.request_count > 0 => {
                (rc.request_count < defaults::UNLIMITED_REQUESTS).then_some(Limit {
                    amount: rc.request_count,
                    bandwidth: false,
                    unit: rc.time_unit.parse().ok()?,
                    unit_time: rc.unit_time.max(1),
                })
            }
            ("BANDWIDTHLIMIT", _, Some(bw)) if bw.data_amount > 0 => {
                let unit: u64 = match bw.data_unit.as_str() {
                    "KB" => 1 << 10,
                    "MB" => 1 << 20,
                    "GB" => 1 << 30,
                    _ => return None,
                };
                Some(Limit {
                    amount: bw.data_amount.saturating_mul(unit),
                    bandwidth: true,
                    unit: bw.time_unit.parse().ok()?,
                    unit_time: bw.unit_time.max(1),
                })
            }
            _ => None,
        }
    }

    /// Checks the limit, naming fields under `at` (`defaultLimit`).
    pub fn validate(&self, at: &str, e: &mut Vec<FieldError>) {
        match (self.limit_type.as_str(), &self.request_count, &self.bandwidth) {
            ("REQUESTCOUNTLIMIT", Some(rc), _) => {
                validate_time_unit(&format!("{at}.requestCount.timeUnit"), &rc.time_unit, e);
                if rc.unit_time == 0 {
                    e.push(FieldError::new(
                        format!("{at}.requestCount.unitTime"),
                        "must be at least 1",
                    ));
                }
                if rc.request_count == 0 {
                    e.push(FieldError::new(
                        format!("{at}.requestCount.requestCount"),
                        "must be at least 1",
                    ));
                }
            }
            ("REQUESTCOUNTLIMIT", None, _) => {
                e.push(FieldError::new(
                    format!("{at}.requestCount"),
                    "is required for REQUESTCOUNTLIMIT",
                ));
            }
            ("BANDWIDTHLIMIT", _, Some(bw)) => {
                validate_time_unit(&format!("{at}.bandwidth.timeUnit"), &bw.time_unit, e);
                if bw.unit_time == 0 {
                    e.push(FieldError::new(
                        format!("{at}.bandwidth.unitTime"),
                        "must be at least 1",
                    ));
                }
                if bw.data_amount == 0 {
                    e.push(FieldError::new(
                        format!("{at}.bandwidth.dataAmount"),
                        "must be at least 1",
                    ));
                }
                if !matches!(bw.data_unit.as_str(), "KB" | "MB" | "GB") {
                    e.push(FieldError::new(
                        format!("{at}.bandwidth.dataUnit"),
                        "must be KB, MB or GB",
                    ));
                }
            }
            ("BANDWIDTHLIMIT", _, None) => {
                e.push(FieldError::new(
                    format!("{at}.bandwidth"),
                    "is required for BANDWIDTHLIMIT",
                ));
            }
            (other, _, _) => e.push(FieldError::new(
                format!("{at}.type"),
                format!("`{other}` must be REQUESTCOUNTLIMIT or BANDWIDTHLIMIT"),
            )),
        }
    }
}

impl SubscriptionPolicy {
    /// Checks every field, naming each bad one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate_name(&self.policy_name, &mut e);
        self.default_limit.validate("defaultLimit", &mut e);
        if self.rate_limit_count > 0 {
            match self.rate_limit_time_unit.as_deref() {
                Some("sec" | "min") => {}
                _ => e.push(FieldError::new(
                    "rateLimitTimeUnit",
                    "must be sec or min when rateLimitCount is set",
                )),
            }
        }
        if !matches!(self.billing_plan.as_str(), "FREE" | "COMMERCIAL") {
            e.push(FieldError::new("billingPlan", "must be FREE or COMMERCIAL"));
        }
        e
    }
}

/// A burst limit (`rateLimitCount` per `rateLimitTimeUnit`), when one is set.
pub fn burst_limit(count: u64, unit: Option<&str>) -> Option<Limit> {
    (count > 0).then_some(())?;
    Some(Limit {
        amount: count,
        bandwidth: false,
        unit: unit?.parse::<TimeUnit>().ok()?,
        unit_time: 1,
    })
}

impl ApplicationPolicy {
    /// Checks every field, naming each bad one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate_name(&self.policy_name, &mut e);
        self.default_limit.validate("defaultLimit", &mut e);
        if let Some(b) = &self.burst_limit
            && b.rate_limit_count > 0
            && !matches!(b.rate_limit_time_unit.as_str(), "sec" | "min")
        {
            e.push(FieldError::new("burstLimit.rateLimitTimeUnit", "must be sec or min"));
        }
        e
    }
}

impl AdvancedPolicy {
    /// Checks every field, naming each bad one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate_name(&self.policy_name, &mut e);
        self.default_limit.validate("defaultLimit", &mut e);
        for (g, group) in self.conditional_groups.iter().enumerate() {
            let at = format!("conditionalGroups[{g}]");
            if group.conditions.is_empty() {
                e.push(FieldError::new(
                    format!("{at}.conditions"),
                    "name at least one condition",
                ));
            }
            group.limit.validate(&format!("{at}.limit"), &mut e);
            for (c, cond) in group.conditions.iter().enumerate() {
                validate_condition(cond, &format!("{at}.conditions[{c}]"), &mut e);
            }
        }
        e
    }
}

fn validate_condition(c: &ThrottleCondition, at: &str, e: &mut Vec<FieldError>) {
    let missing = |what: &str| FieldError::new(format!("{at}.{what}"), format!("is required for {}", c.condition_type));
    match c.condition_type.as_str() {
        "HEADERCONDITION" => match &c.header_condition {
            Some(h) if !h.header_name.is_empty() => {}
            Some(_) => e.push(FieldError::new(
                format!("{at}.headerCondition.headerName"),
                "must not be empty",
            )),
            None => e.push(missing("headerCondition")),
        },
        "QUERYPARAMETERCONDITION" => match &c.query_parameter_condition {
            Some(q) if !q.parameter_name.is_empty() => {}
            Some(_) => e.push(FieldError::new(
                format!("{at}.queryParameterCondition.parameterName"),
                "must not be empty",
            )),
            None => e.push(missing("queryParameterCondition")),
        },
        "JWTCLAIMSCONDITION" => match &c.jwt_claims_condition {
            Some(j) if !j.claim_url.is_empty() => {}
            Some(_) => e.push(FieldError::new(
                format!("{at}.jwtClaimsCondition.claimUrl"),
                "must not be empty",
            )),
            None => e.push(missing("jwtClaimsCondition")),
        },
        "IPCONDITION" => match &c.ip_condition {
            None => e.push(missing("ipCondition")),
            Some(ip) => {
                let parse = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<std::net::IpAddr>().ok());
                match ip.ip_condition_type.as_str() {
                    "IPSPECIFIC" if parse(&ip.specific_ip).is_some() => {}
                    "IPSPECIFIC" => e.push(FieldError::new(
                        format!("{at}.ipCondition.specificIP"),
                        "must be an IP address",
                    )),
                    "IPRANGE" => match (parse(&ip.starting_ip), parse(&ip.ending_ip)) {
                        (Some(a), Some(b)) if a.is_ipv4() == b.is_ipv4() && a <= b => {}
                        (Some(_), Some(_)) => e.push(FieldError::new(
                            format!("{at}.ipCondition"),
                            "startingIP must not be above endingIP, and both must be the same family",
                        )),
                        _ => e.push(FieldError::new(
                            format!("{at}.ipCondition"),
                            "startingIP and endingIP must be IP addresses",
                        )),
                    },
                    other => e.push(FieldError::new(
                        format!("{at}.ipCondition.ipConditionType"),
                        format!("`{other}` must be IPSPECIFIC or IPRANGE"),
                    )),
                }
            }
        },
        other => e.push(FieldError::new(
            format!("{at}.type"),
            format!("`{other}` must be HEADERCONDITION, IPCONDITION, JWTCLAIMSCONDITION or QUERYPARAMETERCONDITION"),
        )),
    }
}

/// The policies installed at first start, as in the reference.
pub mod defaults {
    use super::*;

    /// Effectively unlimited (the reference uses `Integer.MAX_VALUE` requests per minute).
    pub const UNLIMITED_REQUESTS: u64 = 2_147_483_647;

    fn subscription(name: &str, per_min: u64, description: &str) -> SubscriptionPolicy {
        SubscriptionPolicy {
            policy_id: None,
            policy_name: name.into(),
            display_name: Some(name.into()),
            description: Some(description.into()),
            is_deployed: true,
            policy_type: None,
            default_limit: ThrottleLimit::requests(per_min, "min"),
            rate_limit_count: 0,
            rate_limit_time_unit: None,
            stop_on_quota_reach: true,
            billing_plan: "FREE".into(),
        }
    }

    /// Bronze 1000/min, Silver 2000/min, Gold 5000/min, Unlimited.
    pub fn subscription_policies() -> Vec<SubscriptionPolicy> {
        vec![
            subscription("Bronze", 1000, "Allows 1000 requests per minute"),
            subscription("Silver", 2000, "Allows 2000 requests per minute"),
            subscription("Gold", 5000, "Allows 5000 requests per minute"),
            subscription("Unlimited", UNLIMITED_REQUESTS, "Allows unlimited requests"),
        ]
    }

    /// 10PerMin, 20PerMin, 50PerMin, Unlimited.
    pub fn application_policies() -> Vec<ApplicationPolicy> {
        [
            ("10PerMin", 10),
            ("20PerMin", 20),
            ("50PerMin", 50),
            ("Unlimited", UNLIMITED_REQUESTS),
        ]
        .into_iter()
        .map(|(name, n)| ApplicationPolicy {
            policy_id: None,
            policy_name: name.into(),
            display_name: Some(name.into()),
            description: Some(format!(
                "Allows {} requests per minute",
                if name == "Unlimited" {
                    "unlimited".to_string()
                } else {
                    n.to_string()
                }
            )),
            is_deployed: true,
            policy_type: None,
            default_limit: ThrottleLimit::requests(n, "min"),
            burst_limit: None,
        })
        .collect()
    }

    /// 10KPerMin, 20KPerMin, 50KPerMin, Unlimited.
    pub fn advanced_policies() -> Vec<AdvancedPolicy> {
        [
            ("10KPerMin", 10_000),
            ("20KPerMin", 20_000),
            ("50KPerMin", 50_000),
            ("Unlimited", UNLIMITED_REQUESTS),
        ]
        .into_iter()
        .map(|(name, n)| AdvancedPolicy {
            policy_id: None,
            policy_name: name.into(),
            display_name: Some(name.into()),
            description: Some(format!(
                "Allows {} requests per minute",
                if name == "Unlimited" {
                    "unlimited".to_string()
                } else {
                    n.to_string()
                }
            )),
            is_deployed: true,
            policy_type: None,
            default_limit: ThrottleLimit::requests(n, "min"),
            conditional_groups: Vec::new(),
        })
        .collect()
    }
}

/// A policy as the portals list it for choosing (the reference's `ThrottlingPolicy`
/// schema, shared by the Publisher's and the Developer Portal's `/throttling-policies`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ThrottlingPolicy))]
#[serde(rename_all = "camelCase")]
pub struct ThrottlingPolicySummary {
    /// Policy name (what APIs and subscriptions refer to).
    pub name: String,
    /// Label for the portals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `subscription` or `api` (as asked for).
    pub policy_level: String,
    /// `REQUESTCOUNT` or `BANDWIDTHVOLUME`.
    pub quota_policy_type: String,
    /// Requests (or data amount, for bandwidth) per `unitTime` `timeUnit`s.
    pub request_count: i64,
    /// How many `timeUnit`s the quota spans.
    pub unit_time: i64,
    /// `min`, `hour`, `day`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_unit: Option<String>,
    /// `KB`, `MB` or `GB`, for a bandwidth quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_unit: Option<String>,
    /// Burst control: requests per `rateLimitTimeUnit` (0: none).
    pub rate_limit_count: i64,
    /// `sec` or `min`, when there is a burst limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_time_unit: Option<String>,
    /// Whether calls stop at the quota (false: counted, not refused).
    pub stop_on_quota_reach: bool,
    /// `FREE` or `COMMERCIAL`.
    pub tier_plan: String,
}

/// The policies of one level a portal user can choose (the reference's
/// `ThrottlingPolicyList`, in both the Publisher's and the Developer Portal's API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThrottlingPolicyList {
    /// Items in `list`.
    pub count: usize,
    /// The policies.
    pub list: Vec<ThrottlingPolicySummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(json: serde_json::Value) -> ThrottleCondition {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn every_condition_kind_matches_and_inverts() {
        use crate::custom_rule::test_request::req;
        let r = req();
        let cases = [
            (
                serde_json::json!({"type": "HEADERCONDITION", "headerCondition": {"headerName": "X-Tier", "headerValue": "gold"}}),
                true,
            ),
            (
                serde_json::json!({"type": "HEADERCONDITION", "headerCondition": {"headerName": "X-Tier", "headerValue": "silver"}}),
                false,
            ),
            (
                serde_json::json!({"type": "QUERYPARAMETERCONDITION", "queryParameterCondition": {"parameterName": "debug", "parameterValue": "1"}}),
                true,
            ),
            (
                serde_json::json!({"type": "QUERYPARAMETERCONDITION", "queryParameterCondition": {"parameterName": "nope", "parameterValue": "1"}}),
                false,
            ),
            (
                serde_json::json!({"type": "JWTCLAIMSCONDITION", "jwtClaimsCondition": {"claimUrl": "department", "attribute": "sales"}}),
                true,
            ),
            (
                serde_json::json!({"type": "JWTCLAIMSCONDITION", "jwtClaimsCondition": {"claimUrl": "department", "attribute": "hr"}}),
                false,
            ),
            (
                serde_json::json!({"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPSPECIFIC", "specificIP": "10.1.2.3"}}),
                true,
            ),
            (
                serde_json::json!({"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPSPECIFIC", "specificIP": "10.1.2.4"}}),
                false,
            ),
            (
                serde_json::json!({"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPRANGE", "startingIP": "10.1.0.0", "endingIP": "10.1.255.255"}}),
                true,
            ),
            (
                serde_json::json!({"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPRANGE", "startingIP": "10.1.2.4", "endingIP": "10.1.2.9"}}),
                false,
            ),
            (
                serde_json::json!({"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPRANGE", "startingIP": "::", "endingIP": "ffff::"}}),
                false,
            ),
        ];
        for (json, expected) in cases {
            let mut c = condition(json.clone());
            assert_eq!(c.matches(&r), expected, "{json}");
            c.invert_condition = true;
            assert_eq!(c.matches(&r), !expected, "inverted {json}");
        }
        // Incomplete or unknown conditions hold neither way.
        for json in [
            serde_json::json!({"type": "HEADERCONDITION"}),
            serde_json::json!({"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPRANGE", "startingIP": "10.0.0.0"}}),
            serde_json::json!({"type": "GEOCONDITION"}),
        ] {
            let mut c = condition(json.clone());
            assert!(!c.matches(&r), "{json}");
            c.invert_condition = true;
            assert!(!c.matches(&r), "inverted {json}");
        }
    }

    #[test]
    fn a_group_needs_every_condition_and_at_least_one() {
        use crate::custom_rule::test_request::req;
        let limit = serde_json::json!({"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 5}});
        let group = |conditions: serde_json::Value| -> ConditionalGroup {
            serde_json::from_value(serde_json::json!({"conditions": conditions, "limit": limit})).unwrap()
        };
        let gold = serde_json::json!({"type": "HEADERCONDITION", "headerCondition": {"headerName": "x-tier", "headerValue": "gold"}});
        let sales = serde_json::json!({"type": "JWTCLAIMSCONDITION", "jwtClaimsCondition": {"claimUrl": "department", "attribute": "sales"}});
        let hr = serde_json::json!({"type": "JWTCLAIMSCONDITION", "jwtClaimsCondition": {"claimUrl": "department", "attribute": "hr"}});
        assert!(group(serde_json::json!([gold, sales])).matches(&req()));
        assert!(!group(serde_json::json!([gold, hr])).matches(&req()));
        assert!(!group(serde_json::json!([])).matches(&req()));
    }

    #[test]
    fn defaults_are_valid_and_match_the_reference() {
        let subs = defaults::subscription_policies();
        assert_eq!(
            subs.iter().map(|p| p.policy_name.as_str()).collect::<Vec<_>>(),
            ["Bronze", "Silver", "Gold", "Unlimited"]
        );
        assert_eq!(
            subs[0].default_limit.request_count.as_ref().unwrap().request_count,
            1000
        );
        assert!(subs.iter().all(|p| p.validate().is_empty()));
        assert!(defaults::application_policies().iter().all(|p| p.validate().is_empty()));
        assert!(defaults::advanced_policies().iter().all(|p| p.validate().is_empty()));
    }

    #[test]
    fn advanced_conditions_are_checked() {
        let p: AdvancedPolicy = serde_json::from_value(serde_json::json!({
            "policyName": "Bad name",
            "defaultLimit": {"type": "BANDWIDTHLIMIT", "bandwidth": {"timeUnit": "week", "unitTime": 1, "dataAmount": 0, "dataUnit": "TB"}},
            "conditionalGroups": [
                {"conditions": [], "limit": {"type": "REQUESTCOUNTLIMIT"}},
                {"conditions": [
                    {"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPRANGE", "startingIP": "10.0.0.9", "endingIP": "10.0.0.1"}},
                    {"type": "HEADERCONDITION"},
                    {"type": "COOKIECONDITION"},
                    {"type": "IPCONDITION", "invertCondition": true, "ipCondition": {"ipConditionType": "IPSPECIFIC", "specificIP": "::1"}}
                ], "limit": {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 5}}}
            ]
        }))
        .unwrap();
        let fields: Vec<String> = p.validate().into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [
                "policyName",
                "defaultLimit.bandwidth.timeUnit",
                "defaultLimit.bandwidth.dataAmount",
                "defaultLimit.bandwidth.dataUnit",
                "conditionalGroups[0].conditions",
                "conditionalGroups[0].limit.requestCount",
                "conditionalGroups[1].conditions[0].ipCondition",
                "conditionalGroups[1].conditions[1].headerCondition",
                "conditionalGroups[1].conditions[2].type",
            ]
        );
    }

    #[test]
    fn limits_compile_for_counting() {
        use crate::throttle_window::TimeUnit;
        let limit = |json: serde_json::Value| serde_json::from_value::<ThrottleLimit>(json).unwrap().compile();
        assert_eq!(
            limit(
                serde_json::json!({"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 2, "requestCount": 10}})
            ),
            Some(Limit {
                amount: 10,
                bandwidth: false,
                unit: TimeUnit::Minute,
                unit_time: 2
            })
        );
        assert_eq!(
            limit(
                serde_json::json!({"type": "BANDWIDTHLIMIT", "bandwidth": {"timeUnit": "hour", "unitTime": 1, "dataAmount": 3, "dataUnit": "MB"}})
            ),
            Some(Limit {
                amount: 3 << 20,
                bandwidth: true,
                unit: TimeUnit::Hour,
                unit_time: 1
            })
        );
        // Unlimited plans and broken limits are not counted.
        assert_eq!(
            ThrottleLimit::requests(defaults::UNLIMITED_REQUESTS, "min").compile(),
            None
        );
        assert_eq!(ThrottleLimit::requests(5, "fortnight").compile(), None);
        assert_eq!(limit(serde_json::json!({"type": "BANDWIDTHLIMIT"})), None);
        assert_eq!(
            burst_limit(5, Some("sec")).map(|l| (l.amount, l.unit)),
            Some((5, TimeUnit::Second))
        );
        assert_eq!(burst_limit(0, Some("sec")), None);
        assert_eq!(burst_limit(5, None), None);
    }

    #[test]
    fn burst_needs_a_short_unit() {
        let mut p = defaults::subscription_policies().remove(0);
        p.rate_limit_count = 10;
        assert_eq!(p.validate()[0].field, "rateLimitTimeUnit");
        p.rate_limit_time_unit = Some("sec".into());
        assert!(p.validate().is_empty());
    }
}
