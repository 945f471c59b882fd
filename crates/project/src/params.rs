//! `api_params.yaml`: per-environment values that override a project at import (the
//! reference's params file). `environments` lists entries by name; the one chosen for
//! the import replaces the endpoints, the deployment environments and the business plans.
//! `${VAR}` references are the client's to substitute (the server never reads its own
//! environment for them).

use crate::ProjectError;
use crate::api::{ApiProject, DeploymentEnvironment};
use crate::decode;
use serde::Deserialize;
use serde_json::Value;
use tollgate_model::api::{Endpoint, EndpointConfig, Endpoints};

const FILE: &str = "api_params.yaml";

/// The params file.
#[derive(Clone, Debug, Deserialize)]
pub struct ApiParams {
    /// One entry per target environment.
    pub environments: Vec<ParamsEnvironment>,
}

/// One target environment's values.
#[derive(Clone, Debug, Deserialize)]
pub struct ParamsEnvironment {
    /// The name the import chooses it by.
    pub name: String,
    /// The values.
    #[serde(default)]
    pub configs: Option<Value>,
}

/// The values Tollgate applies (the reference's keys, in its casing).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Configs {
    endpoint_type: Option<String>,
    endpoint_routing_policy: Option<String>,
    endpoints: Option<SideEndpoints>,
    load_balance_endpoints: Option<LoadBalance>,
    failover_endpoints: Option<Failover>,
    security: Option<Value>,
    deployment_environments: Option<Vec<DeploymentEnvironment>>,
    certs: Option<Value>,
    mutual_ssl_certs: Option<Value>,
    policies: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct SideEndpoints {
    production: Option<Endpoint>,
    sandbox: Option<Endpoint>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadBalance {
    #[serde(default)]
    production: Vec<Endpoint>,
    #[serde(default)]
    sandbox: Vec<Endpoint>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Failover {
    production: Option<Endpoint>,
    #[serde(default)]
    production_failovers: Vec<Endpoint>,
    sandbox: Option<Endpoint>,
    #[serde(default)]
    sandbox_failovers: Vec<Endpoint>,
}

impl ApiParams {
    /// Parses a params file.
    pub fn parse(bytes: &[u8]) -> Result<ApiParams, ProjectError> {
        let value = decode::parse(FILE, bytes)?;
        let (params, unknown): (ApiParams, Vec<String>) = decode::typed(FILE, "", &value)?;
        if let Some(field) = unknown.first() {
            return Err(ProjectError::Field {
                file: FILE.into(),
                field: field.clone(),
                message: "is not a key of the params file (it has `environments`, each with `name` and `configs`)"
                    .into(),
            });
        }
        Ok(params)
    }

    /// Applies the entry named `environment` (or the only entry, when `None`) to
    /// `project`; what Tollgate cannot apply is added to the project's warnings.
    pub fn apply(&self, environment: Option<&str>, project: &mut ApiProject) -> Result<(), ProjectError> {
        let names = || {
            self.environments
                .iter()
                .map(|e| format!("`{}`", e.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (index, entry) = match environment {
            Some(name) => self
                .environments
                .iter()
                .enumerate()
                .find(|(_, e)| e.name == name)
                .ok_or_else(|| ProjectError::Field {
                    file: FILE.into(),
                    field: "environments".into(),
                    message: format!("has no entry named `{name}`; it has {}", names()),
                })?,
            None if self.environments.len() == 1 => (0, &self.environments[0]),
            None => {
                return Err(ProjectError::Field {
                    file: FILE.into(),
                    field: "environments".into(),
                    message: format!(
                        "has {} entries ({}); name the one to apply (tollgate import api -e NAME, or paramsEnvironment=NAME)",
                        self.environments.len(),
                        names()
                    ),
                });
            }
        };
        let Some(configs) = &entry.configs else {
            return Ok(());
        };
        let prefix = format!("environments[{index}].configs");
        let (configs, unknown): (Configs, _) = decode::typed(FILE, &prefix, configs)?;
        let warn = |w: &mut Vec<String>, what: String| w.push(format!("{FILE}: {what}"));
        for f in unknown {
            warn(
                &mut project.warnings,
                format!("{f} is not supported by Tollgate and was not applied"),
            );
        }
        if let Some(t) = &configs.endpoint_type
            && !matches!(t.to_ascii_lowercase().as_str(), "rest" | "http")
        {
            return Err(ProjectError::Field {
                file: FILE.into(),
                field: format!("{prefix}.endpointType"),
                message: format!("`{t}` is not supported; Tollgate proxies to HTTP (rest) endpoints"),
            });
        }
        if let Some(config) = endpoint_config(&configs, &prefix)? {
            project.api.endpoint_config = Some(config);
        }
        if let Some(security) = &configs.security
            && enabled_anywhere(security)
        {
            warn(
                &mut project.warnings,
                format!("{prefix}.security is not applied: Tollgate does not authenticate to backends yet"),
            );
        }
        for (key, value) in [("certs", &configs.certs), ("mutualSslCerts", &configs.mutual_ssl_certs)] {
            if value
                .as_ref()
                .is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty()))
            {
                warn(
                    &mut project.warnings,
                    format!("{prefix}.{key} is not applied: Tollgate does not manage certificates per API yet"),
                );
            }
        }
        if let Some(envs) = configs.deployment_environments {
            project.deployments = Some(envs);
        }
        if let Some(policies) = configs.policies
            && !policies.is_empty()
        {
            project.api.policies = policies;
        }
        Ok(())
    }
}

/// Whether any side of `security` says `enabled: true`.
fn enabled_anywhere(security: &Value) -> bool {
    security.as_object().is_some_and(|m| {
        m.values().any(|side| {
            side.get("enabled")
                .is_some_and(|e| e == &Value::Bool(true) || e == "true")
        })
    })
}

/// The endpoint configuration the params describe, if they describe one.
fn endpoint_config(c: &Configs, prefix: &str) -> Result<Option<EndpointConfig>, ProjectError> {
    let routing = c.endpoint_routing_policy.as_deref().map(str::to_ascii_lowercase);
    let bad = |field: &str, message: &str| ProjectError::Field {
        file: FILE.into(),
        field: format!("{prefix}.{field}"),
        message: message.into(),
    };
    let empty = |endpoint_type: &str| EndpointConfig {
        endpoint_type: endpoint_type.into(),
        production_endpoints: None,
        sandbox_endpoints: None,
        production_failovers: Vec::new(),
        sandbox_failovers: Vec::new(),
        algo_combo: None,
    };
    match routing.as_deref() {
        None => {
            let Some(e) = &c.endpoints else { return Ok(None) };
            Ok(Some(EndpointConfig {
                production_endpoints: e.production.clone().map(Endpoints::One),
                sandbox_endpoints: e.sandbox.clone().map(Endpoints::One),
                ..empty("http")
            }))
        }
        Some("load_balanced") => {
            let lb = c.load_balance_endpoints.as_ref().ok_or_else(|| {
                bad(
                    "loadBalanceEndpoints",
                    "is required with endpointRoutingPolicy: load_balanced",
                )
            })?;
            if lb.production.is_empty() && lb.sandbox.is_empty() {
                return Err(bad("loadBalanceEndpoints", "lists no production or sandbox endpoint"));
            }
            let many = |v: &Vec<Endpoint>| (!v.is_empty()).then(|| Endpoints::Many(v.clone()));
            Ok(Some(EndpointConfig {
                production_endpoints: many(&lb.production),
                sandbox_endpoints: many(&lb.sandbox),
                ..empty("load_balance")
            }))
        }
        Some("failover") => {
            let f = c
                .failover_endpoints
                .as_ref()
                .ok_or_else(|| bad("failoverEndpoints", "is required with endpointRoutingPolicy: failover"))?;
            if f.production.is_some() && f.production_failovers.is_empty() {
                return Err(bad(
                    "failoverEndpoints.productionFailovers",
                    "lists no failover for the production endpoint",
                ));
            }
            if f.sandbox.is_some() && f.sandbox_failovers.is_empty() {
                return Err(bad(
                    "failoverEndpoints.sandboxFailovers",
                    "lists no failover for the sandbox endpoint",
                ));
            }
            Ok(Some(EndpointConfig {
                production_endpoints: f.production.clone().map(Endpoints::One),
                sandbox_endpoints: f.sandbox.clone().map(Endpoints::One),
                production_failovers: f.production_failovers.clone(),
                sandbox_failovers: f.sandbox_failovers.clone(),
                ..empty("failover")
            }))
        }
        Some(other) => Err(bad(
            "endpointRoutingPolicy",
            &format!("`{other}` must be load_balanced or failover (or left out for one endpoint)"),
        )),
    }
}

/// Substitutes `${NAME}` in a params file's text from `lookup`, as the reference's CLI
/// does before sending it; an unset name is an error naming it.
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ProjectError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            out.push_str(&rest[start..start + 2 + end + 1]);
        } else {
            let value = lookup(name).ok_or_else(|| ProjectError::Field {
                file: FILE.into(),
                field: format!("${{{name}}}"),
                message: format!("the environment variable {name} is not set"),
            })?;
            out.push_str(&value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
