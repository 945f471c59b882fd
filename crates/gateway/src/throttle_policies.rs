//! Which limits a call is counted against (docs/architecture.md, "Gateway request path",
//! step 10), in the reference order: API-level or resource-level advanced policy (with
//! conditional groups), the subscription's business plan and its burst control, the
//! application's policy (per application and end user), then custom rules. The policies are compiled once, when the
//! gateway learns of them from the event hub; a call only renders counter keys.

use foldhash::HashMap;
use std::sync::Arc;
use tollgate_model::custom_rule::{Condition, CustomPolicy, KeyTemplate, RequestAttributes};
use tollgate_model::policy::{
    AdvancedPolicy, ApplicationPolicy, ConditionalGroup, PolicyLevel, SubscriptionPolicy, burst_limit,
};
use tollgate_model::throttle_window::Limit;

/// Which kind of limit refused a call: the reference's error code for each
/// (docs/architecture.md, "Gateway request path").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleKind {
    /// API-level advanced policy (900800).
    Api,
    /// Resource-level advanced policy (900802).
    Resource,
    /// The subscription's business plan (900804).
    Subscription,
    /// The business plan's burst control (900807).
    SubscriptionBurst,
    /// The application's policy (900803).
    Application,
    /// A custom rule (900806).
    Custom,
}

impl ThrottleKind {
    /// The reference's error code.
    pub const fn code(self) -> i64 {
        match self {
            ThrottleKind::Api => 900_800,
            ThrottleKind::Resource => 900_802,
            ThrottleKind::Subscription => 900_804,
            ThrottleKind::SubscriptionBurst => 900_807,
            ThrottleKind::Application => 900_803,
            ThrottleKind::Custom => 900_806,
        }
    }

    /// A label for metrics and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ThrottleKind::Api => "api",
            ThrottleKind::Resource => "resource",
            ThrottleKind::Subscription => "subscription",
            ThrottleKind::SubscriptionBurst => "subscription_burst",
            ThrottleKind::Application => "application",
            ThrottleKind::Custom => "custom",
        }
    }
}

/// One limit a call is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Which kind of limit.
    pub kind: ThrottleKind,
    /// The counter: kind, policy and whose calls it counts.
    pub key: String,
    /// The limit.
    pub limit: Limit,
    /// Whether calls beyond the limit are refused (false: counted only, for billing).
    pub enforce: bool,
}

/// A business plan ready for counting.
#[derive(Clone, Debug)]
struct Plan {
    quota: Option<Limit>,
    burst: Option<Limit>,
    stop_on_quota_reach: bool,
}

/// An advanced policy ready for counting.
#[derive(Clone, Debug)]
struct Advanced {
    default: Option<Limit>,
    groups: Vec<(ConditionalGroup, Option<Limit>)>,
}

/// A custom rule ready for counting.
#[derive(Clone, Debug)]
struct Custom {
    name: String,
    template: KeyTemplate,
    condition: Option<Condition>,
    limit: Option<Limit>,
}

/// Every throttling policy of one tenant the gateway knows, by level and name. Cloning is
/// cheap (the maps are shared until one changes).
#[derive(Clone, Debug, Default)]
pub struct ThrottlePolicies {
    /// What custom rules' counters are keyed by besides the rule (another tenant's rule of
    /// the same name and template counts apart): empty for the super tenant, whose keys
    /// stay as they were before tenants.
    scope: Arc<str>,
    subscription: Arc<HashMap<String, Plan>>,
    application: Arc<HashMap<String, Plan>>,
    advanced: Arc<HashMap<String, Advanced>>,
    /// In name order, so that the checks' order does not depend on hashing.
    custom: Arc<Vec<Custom>>,
    /// The subscription policies as the Admin API shapes them.
    subscription_policies: Arc<HashMap<String, Arc<SubscriptionPolicy>>>,
}

/// What the policies need to know of a call.
pub struct Call<'a> {
    /// The API's id.
    pub api_id: &'a str,
    /// The API-level advanced policy, if the API names one.
    pub api_policy: Option<&'a str>,
    /// The matched operation's index and advanced policy.
    pub operation: (usize, &'a str),
    /// The caller's application id, subscription plan, application policy and user, when
    /// the resource needs authentication.
    pub consumer: Option<Consumer<'a>>,
    /// Headers, query, claims and `$variables`.
    pub attributes: &'a dyn RequestAttributes,
}

/// The authenticated side of a call.
pub struct Consumer<'a> {
    /// Application id.
    pub application_id: &'a str,
    /// The subscription's business plan.
    pub plan: Option<&'a str>,
    /// The application's throttling policy.
    pub application_policy: &'a str,
    /// The end user (the token's subject).
    pub user: &'a str,
}

impl ThrottlePolicies {
    /// No policies yet, of `tenant`. The other counters' keys name the application or
    /// API, whose ids no two tenants share; only custom rules' keys need the tenant.
    pub fn for_tenant(tenant: tollgate_model::TenantId) -> Self {
        Self {
            scope: if tenant == tollgate_model::TenantId::DEFAULT {
                Arc::from("")
            } else {
                Arc::from(tenant.to_string())
            },
            ..Self::default()
        }
    }

    /// How many policies it holds, of every level.
    pub fn len(&self) -> usize {
        self.subscription.len() + self.application.len() + self.advanced.len() + self.custom.len()
    }

    /// Whether any policy could limit a call (the request path skips everything otherwise).
    pub fn is_empty(&self) -> bool {
        self.subscription
            .values()
            .all(|p| p.quota.is_none() && p.burst.is_none())
            && self
                .application
                .values()
                .all(|p| p.quota.is_none() && p.burst.is_none())
            && self
                .advanced
                .values()
                .all(|a| a.default.is_none() && a.groups.is_empty())
            && self.custom.iter().all(|c| c.limit.is_none())
    }

    /// Adds or replaces a policy of `level` from its Admin API shape; false when it cannot
    /// be read.
    pub fn upsert(&mut self, level: PolicyLevel, body: &serde_json::Value) -> bool {
        fn read<T: serde::de::DeserializeOwned>(level: PolicyLevel, body: &serde_json::Value) -> Option<T> {
            serde_json::from_value(body.clone())
                .map_err(
                    |e| tracing::warn!(%level, error = %e, "Skipping a throttling policy this gateway cannot read."),
                )
                .ok()
        }
        match level {
            PolicyLevel::Subscription => read(level, body).map(|p| self.add_subscription(p)),
            PolicyLevel::Application => read(level, body).map(|p| self.add_application(p)),
            PolicyLevel::Advanced => read(level, body).map(|p| self.add_advanced(p)),
            PolicyLevel::Custom => read(level, body).map(|p| self.add_custom(p)),
        }
        .is_some()
    }

    /// Removes the policy `name` of `level`.
    pub fn remove(&mut self, level: PolicyLevel, name: &str) {
        match level {
            PolicyLevel::Subscription => {
                Arc::make_mut(&mut self.subscription).remove(name);
                Arc::make_mut(&mut self.subscription_policies).remove(name);
            }
            PolicyLevel::Application => {
                Arc::make_mut(&mut self.application).remove(name);
            }
            PolicyLevel::Advanced => {
                Arc::make_mut(&mut self.advanced).remove(name);
            }
            PolicyLevel::Custom => Arc::make_mut(&mut self.custom).retain(|c| c.name != name),
        }
    }

    /// Adds or replaces a business plan.
    pub fn add_subscription(&mut self, p: SubscriptionPolicy) {
        let plan = Plan {
            quota: p.default_limit.compile(),
            burst: burst_limit(p.rate_limit_count, p.rate_limit_time_unit.as_deref()),
            stop_on_quota_reach: p.stop_on_quota_reach,
        };
        Arc::make_mut(&mut self.subscription).insert(p.policy_name.clone(), plan);
        Arc::make_mut(&mut self.subscription_policies).insert(p.policy_name.clone(), Arc::new(p));
    }

    /// Adds or replaces an application policy.
    pub fn add_application(&mut self, p: ApplicationPolicy) {
        let plan = Plan {
            quota: p.default_limit.compile(),
            burst: p
                .burst_limit
                .as_ref()
                .and_then(|b| burst_limit(b.rate_limit_count, Some(&b.rate_limit_time_unit))),
            stop_on_quota_reach: true,
        };
        Arc::make_mut(&mut self.application).insert(p.policy_name, plan);
    }

    /// Adds or replaces an advanced policy.
    pub fn add_advanced(&mut self, p: AdvancedPolicy) {
        let advanced = Advanced {
            default: p.default_limit.compile(),
            groups: p
                .conditional_groups
                .into_iter()
                .map(|g| {
                    let limit = g.limit.compile();
                    (g, limit)
                })
                .collect(),
        };
        Arc::make_mut(&mut self.advanced).insert(p.policy_name, advanced);
    }

    /// Adds or replaces a custom rule (skipped, with a warning, if it does not parse).
    pub fn add_custom(&mut self, p: CustomPolicy) {
        let template = match KeyTemplate::parse(&p.key_template) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(policy = %p.policy_name, error = %e, "Skipping a custom rule whose key template does not parse.");
                return;
            }
        };
        let condition = match p.condition.as_deref().map(Condition::parse).transpose() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(policy = %p.policy_name, error = %e, "Skipping a custom rule whose condition does not parse.");
                return;
            }
        };
        let custom = Custom {
            limit: p.default_limit.compile(),
            name: p.policy_name,
            template,
            condition,
        };
        let rules = Arc::make_mut(&mut self.custom);
        rules.retain(|c| c.name != custom.name);
        rules.push(custom);
        rules.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The business plan of that name, as the Admin API shapes it.
    pub fn subscription_policy(&self, name: &str) -> Option<&Arc<SubscriptionPolicy>> {
        self.subscription_policies.get(name)
    }

    /// The limits `call` is counted against, in the order they are checked.
    pub fn checks(&self, call: &Call<'_>) -> Vec<Check> {
        let mut checks = Vec::new();
        // Advanced: the API-level policy replaces the resources' policies.
        let (kind, policy_name) = match call.api_policy {
            Some(p) => (ThrottleKind::Api, p),
            None => (ThrottleKind::Resource, call.operation.1),
        };
        // Keys are formatted only for limits that apply: most calls have none.
        if let Some(policy) = self.advanced.get(policy_name) {
            let group = policy
                .groups
                .iter()
                .enumerate()
                .find(|(_, (g, _))| g.matches(call.attributes));
            let (group, limit) = match group {
                Some((i, (_, limit))) => (Some(i), *limit),
                None => (None, policy.default),
            };
            if let Some(limit) = limit {
                let mut number = itoa::Buffer::new();
                let mut key = [kind.as_str(), policy_name, call.api_id].join(":");
                if call.api_policy.is_none() {
                    key.push(':');
                    key.push_str(number.format(call.operation.0));
                }
                if let Some(i) = group {
                    key.push_str("#g");
                    key.push_str(number.format(i));
                }
                checks.push(Check {
                    kind,
                    key,
                    limit,
                    enforce: true,
                });
            }
        }
        if let Some(consumer) = &call.consumer {
            if let Some(name) = consumer.plan
                && let Some(plan) = self.subscription.get(name)
                && (plan.quota.is_some() || plan.burst.is_some())
            {
                if let Some(limit) = plan.quota {
                    checks.push(Check {
                        kind: ThrottleKind::Subscription,
                        key: ["sub", name, consumer.application_id, call.api_id].join(":"),
                        limit,
                        enforce: plan.stop_on_quota_reach,
                    });
                }
                if let Some(limit) = plan.burst {
                    checks.push(Check {
                        kind: ThrottleKind::SubscriptionBurst,
                        key: ["burst", name, consumer.application_id, call.api_id].join(":"),
                        limit,
                        enforce: true,
                    });
                }
            }
            if let Some(plan) = self
                .application
                .get(consumer.application_policy)
                .filter(|p| p.quota.is_some() || p.burst.is_some())
            {
                for (limit, prefix) in [(plan.quota, "app"), (plan.burst, "appburst")] {
                    if let Some(limit) = limit {
                        checks.push(Check {
                            kind: ThrottleKind::Application,
                            key: [
                                prefix,
                                consumer.application_policy,
                                consumer.application_id,
                                consumer.user,
                            ]
                            .join(":"),
                            limit,
                            enforce: true,
                        });
                    }
                }
            }
        }
        for rule in self.custom.iter() {
            if let Some(limit) = rule.limit
                && rule.condition.as_ref().is_none_or(|c| c.matches(call.attributes))
            {
                let rendered = rule.template.render(call.attributes);
                let key = if self.scope.is_empty() {
                    ["custom", &rule.name, &rendered].join(":")
                } else {
                    ["custom", &rule.name, &self.scope, &rendered].join(":")
                };
                checks.push(Check {
                    kind: ThrottleKind::Custom,
                    key,
                    limit,
                    enforce: true,
                });
            }
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap as StdMap;
    use tollgate_model::throttle_window::TimeUnit;

    struct Attrs(StdMap<&'static str, &'static str>);

    impl RequestAttributes for Attrs {
        fn variable(&self, name: &str) -> &str {
            self.0.get(name).copied().unwrap_or("")
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.0.get(format!("h:{}", name.to_ascii_lowercase()).as_str()).copied()
        }
        fn query(&self, _: &str) -> Option<&str> {
            None
        }
        fn claim(&self, _: &str) -> Option<&str> {
            None
        }
    }

    fn limit(n: u64, unit: &str) -> serde_json::Value {
        json!({"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": unit, "unitTime": 1, "requestCount": n}})
    }

    fn policies() -> ThrottlePolicies {
        let mut p = ThrottlePolicies::default();
        assert!(p.is_empty());
        assert!(p.upsert(
            PolicyLevel::Subscription,
            &json!({"policyName": "Tiny", "defaultLimit": limit(10, "min"), "rateLimitCount": 5, "rateLimitTimeUnit": "sec"})
        ));
        assert!(p.upsert(
            PolicyLevel::Subscription,
            &json!({"policyName": "Billing", "defaultLimit": limit(3, "min"), "stopOnQuotaReach": false})
        ));
        assert!(p.upsert(
            PolicyLevel::Subscription,
            &json!({"policyName": "Unlimited", "defaultLimit": limit(2_147_483_647, "min")})
        ));
        assert!(p.upsert(
            PolicyLevel::Application,
            &json!({"policyName": "10PerMin", "defaultLimit": limit(10, "min")})
        ));
        assert!(p.upsert(
            PolicyLevel::Advanced,
            &json!({"policyName": "Gated", "defaultLimit": limit(100, "hour"), "conditionalGroups": [
                {"conditions": [{"type": "HEADERCONDITION", "headerCondition": {"headerName": "x-tier", "headerValue": "free"}}],
                 "limit": limit(2, "min")}
            ]})
        ));
        assert!(p.upsert(
            PolicyLevel::Custom,
            &json!({"policyName": "PerIp", "keyTemplate": "$clientIp:$apiContext", "condition": "$method == 'POST'",
                    "defaultLimit": limit(7, "day")})
        ));
        assert!(!p.upsert(PolicyLevel::Advanced, &json!({"policyName": 3})));
        assert!(!p.is_empty());
        p
    }

    fn attrs(pairs: &[(&'static str, &'static str)]) -> Attrs {
        Attrs(pairs.iter().copied().collect())
    }

    fn call<'a>(attributes: &'a Attrs, api_policy: Option<&'a str>, plan: Option<&'a str>) -> Call<'a> {
        Call {
            api_id: "api1",
            api_policy,
            operation: (2, "Gated"),
            consumer: Some(Consumer {
                application_id: "app1",
                plan,
                application_policy: "10PerMin",
                user: "alice",
            }),
            attributes,
        }
    }

    #[test]
    fn every_kind_is_checked_in_the_reference_order() {
        let p = policies();
        let a = attrs(&[("clientIp", "10.0.0.1"), ("apiContext", "/pizza/1"), ("method", "POST")]);
        let checks = p.checks(&call(&a, None, Some("Tiny")));
        let got: Vec<(ThrottleKind, &str, u64, TimeUnit)> = checks
            .iter()
            .map(|c| (c.kind, c.key.as_str(), c.limit.amount, c.limit.unit))
            .collect();
        assert_eq!(
            got,
            [
                (ThrottleKind::Resource, "resource:Gated:api1:2", 100, TimeUnit::Hour),
                (ThrottleKind::Subscription, "sub:Tiny:app1:api1", 10, TimeUnit::Minute),
                (
                    ThrottleKind::SubscriptionBurst,
                    "burst:Tiny:app1:api1",
                    5,
                    TimeUnit::Second
                ),
                (
                    ThrottleKind::Application,
                    "app:10PerMin:app1:alice",
                    10,
                    TimeUnit::Minute
                ),
                (ThrottleKind::Custom, "custom:PerIp:10.0.0.1:/pizza/1", 7, TimeUnit::Day),
            ]
        );
        assert!(checks.iter().all(|c| c.enforce));
        assert_eq!(
            checks.iter().map(|c| c.kind.code()).collect::<Vec<_>>(),
            [900_802, 900_804, 900_807, 900_803, 900_806]
        );
    }

    #[test]
    fn groups_api_level_policies_unlimited_plans_and_conditions() {
        let p = policies();
        // A matching conditional group has its own limit and counter; the API-level policy
        // replaces the resource's. The custom rule's condition does not hold for GET.
        let a = attrs(&[("h:x-tier", "free"), ("method", "GET")]);
        let checks = p.checks(&call(&a, Some("Gated"), Some("Unlimited")));
        let got: Vec<(ThrottleKind, &str, u64)> = checks
            .iter()
            .map(|c| (c.kind, c.key.as_str(), c.limit.amount))
            .collect();
        assert_eq!(
            got,
            [
                (ThrottleKind::Api, "api:Gated:api1#g0", 2),
                (ThrottleKind::Application, "app:10PerMin:app1:alice", 10),
            ]
        );
        // A plan that only counts.
        let checks = p.checks(&call(&a, None, Some("Billing")));
        let billing = checks.iter().find(|c| c.kind == ThrottleKind::Subscription).unwrap();
        assert!(!billing.enforce);
        // Without a consumer only API-level and custom limits apply.
        let anonymous = Call {
            consumer: None,
            ..call(&a, None, None)
        };
        assert_eq!(p.checks(&anonymous).len(), 1);
    }

    #[test]
    fn policies_are_replaced_and_removed_by_name() {
        let mut p = policies();
        let a = attrs(&[("method", "POST")]);
        assert!(p.upsert(
            PolicyLevel::Subscription,
            &json!({"policyName": "Tiny", "defaultLimit": limit(20, "min")})
        ));
        let checks = p.checks(&call(&a, None, Some("Tiny")));
        let sub = checks.iter().find(|c| c.kind == ThrottleKind::Subscription).unwrap();
        // The counter key is the same: changing the limit does not reset the count.
        assert_eq!((sub.key.as_str(), sub.limit.amount), ("sub:Tiny:app1:api1", 20));
        assert!(!checks.iter().any(|c| c.kind == ThrottleKind::SubscriptionBurst));
        for (level, name) in [
            (PolicyLevel::Subscription, "Tiny"),
            (PolicyLevel::Application, "10PerMin"),
            (PolicyLevel::Advanced, "Gated"),
            (PolicyLevel::Custom, "PerIp"),
        ] {
            p.remove(level, name);
        }
        assert!(p.checks(&call(&a, None, Some("Tiny"))).is_empty());
        assert!(p.subscription_policy("Tiny").is_none());
    }
}
