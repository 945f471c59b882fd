//! The Admin portal's throttling-policy pages (`/admin/policies/{level}`): the policies
//! of each level and a form for a new one. Every level shares the limit (a request
//! count or a bandwidth per time window); business plans add a burst cap and billing,
//! application policies a burst cap, advanced policies one conditional group (a header,
//! query parameter, claim or IP condition with its own limit), custom rules a key
//! template and a condition.

use crate::PortalsState;
use crate::admin::{failed, redraw, show};
use crate::form::{FormData, problem, refused};
use crate::rest::{ADMIN, RestError, enc};
use crate::session::{Visitor, see_other};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tollgate_model::Role;

/// The policy levels the Admin REST API stores, as the pages name them.
pub(crate) const LEVELS: &[(&str, &str)] = &[
    ("subscription", "Business plans (subscription)"),
    ("application", "Application"),
    ("advanced", "Advanced (API and resource)"),
    ("custom", "Custom rules"),
];

/// The condition kinds of an advanced policy's group, with what their two fields mean.
const CONDITIONS: &[(&str, &str)] = &[
    ("HEADERCONDITION", "Header equals"),
    ("QUERYPARAMETERCONDITION", "Query parameter equals"),
    ("JWTCLAIMSCONDITION", "JWT claim equals"),
    ("IPCONDITION", "Client IP is"),
];

/// The policy routes of the Admin portal.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route("/admin/policies/{level}", get(policies).post(create_policy))
        .route("/admin/policies/{level}/{policy_id}/delete", post(delete_policy))
}

/// The levels as the templates list them.
pub(crate) fn levels() -> Value {
    LEVELS
        .iter()
        .map(|(k, label)| json!({ "key": k, "label": label }))
        .collect()
}

async fn policies_context(state: &PortalsState, visitor: &Visitor, level: &str) -> Result<Value, RestError> {
    let list = state
        .rest()
        .get(visitor.token(), &format!("{ADMIN}/throttling/policies/{}", enc(level)))
        .await?;
    let label = LEVELS
        .iter()
        .find(|(k, _)| *k == level)
        .map(|(_, l)| *l)
        .unwrap_or(level);
    let conditions: Vec<Value> = CONDITIONS
        .iter()
        .map(|(k, l)| json!({ "value": k, "label": l }))
        .collect();
    Ok(json!({
        "level": level, "label": label, "levels": levels(), "policies": list["list"],
        "conditions": conditions,
    }))
}

/// The policies of one level, with a form for a new one.
async fn policies(State(state): State<PortalsState>, visitor: Visitor, Path(level): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    show(
        &state,
        &visitor,
        "admin/policies.html",
        policies_context(&state, &visitor, &level).await,
        json!({ "values": {
                    "limitType": "REQUESTCOUNTLIMIT", "timeUnit": "min", "unitTime": "1", "dataUnit": "MB",
                    "rateLimitTimeUnit": "sec", "billingPlan": "FREE", "stopOnQuotaReach": "on",
                    "keyTemplate": "$userId:$apiContext",
                } }),
    )
}

/// A number as JSON, or the text as typed when it is none (the REST API then names it).
pub(crate) fn number_or_text(s: &str) -> Value {
    s.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Checks that the form's numbers are whole numbers, naming the first that is not (the
/// REST API could only say "invalid type" for the whole body).
fn check_numbers(level: &str, form: &FormData) -> Result<(), RestError> {
    let mut wanted = vec![("unitTime", "Per")];
    if form.get("limitType") == "BANDWIDTHLIMIT" {
        wanted.push(("dataAmount", "Data"));
    } else {
        wanted.push(("requestCount", "Requests"));
    }
    if matches!(level, "subscription" | "application") && !form.get("rateLimitCount").is_empty() {
        wanted.push(("rateLimitCount", "Burst limit"));
    }
    if level == "advanced" && !form.get("conditionType").is_empty() {
        wanted.push(("groupRequestCount", "Requests when the condition holds"));
    }
    for (name, label) in wanted {
        if form.get(name).parse::<u64>().is_err() {
            return Err(problem(name, &format!("{label} must be a whole number, e.g. 100")));
        }
    }
    Ok(())
}

/// A limit from the form: `prefix` names the request-count field (`requestCount` for the
/// default limit, `groupRequestCount` for an advanced policy's group).
fn limit(form: &FormData, count_field: &str) -> Value {
    if form.get("limitType") == "BANDWIDTHLIMIT" && count_field == "requestCount" {
        json!({
            "type": "BANDWIDTHLIMIT",
            "bandwidth": {
                "dataAmount": number_or_text(form.get("dataAmount")),
                "dataUnit": form.get("dataUnit"),
                "timeUnit": form.get("timeUnit"),
                "unitTime": number_or_text(form.get("unitTime")),
            }
        })
    } else {
        json!({
            "type": "REQUESTCOUNTLIMIT",
            "requestCount": {
                "requestCount": number_or_text(form.get(count_field)),
                "timeUnit": form.get("timeUnit"),
                "unitTime": number_or_text(form.get("unitTime")),
            }
        })
    }
}

/// The one condition of an advanced policy's group, from the form's name and value.
fn condition(form: &FormData) -> Value {
    let (name, value) = (form.get("conditionName"), form.get("conditionValue"));
    let mut c = json!({
        "type": form.get("conditionType"),
        "invertCondition": form.get("invertCondition") == "on",
    });
    match form.get("conditionType") {
        "HEADERCONDITION" => c["headerCondition"] = json!({ "headerName": name, "headerValue": value }),
        "QUERYPARAMETERCONDITION" => {
            c["queryParameterCondition"] = json!({ "parameterName": name, "parameterValue": value });
        }
        "JWTCLAIMSCONDITION" => c["jwtClaimsCondition"] = json!({ "claimUrl": name, "attribute": value }),
        "IPCONDITION" => match value.split_once('-') {
            Some((from, to)) => {
                c["ipCondition"] = json!({
                    "ipConditionType": "IPRANGE", "startingIP": from.trim(), "endingIP": to.trim(),
                });
            }
            None => c["ipCondition"] = json!({ "ipConditionType": "IPSPECIFIC", "specificIP": value }),
        },
        _ => {}
    }
    c
}

/// The Admin REST body of a new policy of `level` from the form.
fn policy_body(level: &str, form: &FormData) -> Value {
    let optional = |name: &str| match form.get(name) {
        "" => Value::Null,
        v => json!(v),
    };
    let mut body = json!({
        "policyName": form.get("policyName"),
        "displayName": form.get("policyName"),
        "description": optional("description"),
        "defaultLimit": limit(form, "requestCount"),
    });
    let burst = !form.get("rateLimitCount").is_empty();
    match level {
        "subscription" => {
            body["billingPlan"] = json!(form.get("billingPlan"));
            body["stopOnQuotaReach"] = json!(form.get("stopOnQuotaReach") == "on");
            if burst {
                body["rateLimitCount"] = number_or_text(form.get("rateLimitCount"));
                body["rateLimitTimeUnit"] = json!(form.get("rateLimitTimeUnit"));
            }
        }
        "application" if burst => {
            body["burstLimit"] = json!({
                "rateLimitCount": number_or_text(form.get("rateLimitCount")),
                "rateLimitTimeUnit": form.get("rateLimitTimeUnit"),
            });
        }
        "advanced" if !form.get("conditionType").is_empty() => {
            body["conditionalGroups"] = json!([{
                "description": optional("conditionDescription"),
                "conditions": [condition(form)],
                "limit": limit(form, "groupRequestCount"),
            }]);
        }
        "custom" => {
            body["keyTemplate"] = json!(form.get("keyTemplate"));
            body["condition"] = optional("condition");
        }
        _ => {}
    }
    body
}

/// The form field a REST error path belongs to (`defaultLimit.requestCount.unitTime` →
/// `unitTime`, an advanced group's condition and limit → its three fields).
fn form_field(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    if let Some(rest) = path.strip_prefix("conditionalGroups[0].") {
        return if rest.starts_with("limit") {
            "groupRequestCount".into()
        } else if matches!(last, "headerName" | "parameterName" | "claimUrl") {
            "conditionName".into()
        } else if rest.ends_with("].type") || last == "ipConditionType" {
            "conditionType".into()
        } else {
            "conditionValue".into()
        };
    }
    match (path, last) {
        ("defaultLimit.bandwidth", _) => "dataAmount".into(),
        (_, "bandwidth" | "type") if path.starts_with("defaultLimit") => "limitType".into(),
        _ => last.to_string(),
    }
}

/// Creates a policy of the level from the form.
async fn create_policy(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(level): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let result = match check_numbers(&level, &form) {
        Err(e) => Err(e),
        Ok(()) => state
            .rest()
            .post(
                visitor.token(),
                &format!("{ADMIN}/throttling/policies/{}", enc(&level)),
                policy_body(&level, &form),
            )
            .await
            .map_err(|mut e| {
                e.fields = e.fields.into_iter().map(|(k, v)| (form_field(&k), v)).collect();
                crate::form::conflict_on(e, "policyName")
            }),
    };
    match result {
        Ok(_) => see_other(&format!("/admin/policies/{}", enc(&level))),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(e) => redraw(
            &state,
            &visitor,
            "admin/policies.html",
            policies_context(&state, &visitor, &level).await,
            refused(form.values(), &e),
        ),
    }
}

async fn delete_policy(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path((level, policy_id)): Path<(String, String)>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let path = format!("{ADMIN}/throttling/policies/{}/{}", enc(&level), enc(&policy_id));
    match state.rest().delete(visitor.token(), &path).await {
        Ok(_) => see_other(&format!("/admin/policies/{}", enc(&level))),
        Err(e) if e.status == 401 || e.status == 404 => failed(&state, &visitor, e),
        Err(e) => redraw(
            &state,
            &visitor,
            "admin/policies.html",
            policies_context(&state, &visitor, &level).await,
            json!({ "delete_error": e.message }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> FormData {
        FormData(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn an_advanced_policy_carries_one_group_with_its_condition() {
        let f = form(&[
            ("policyName", "partners"),
            ("limitType", "REQUESTCOUNTLIMIT"),
            ("requestCount", "100"),
            ("unitTime", "1"),
            ("timeUnit", "min"),
            ("conditionType", "IPCONDITION"),
            ("conditionValue", "10.0.0.1 - 10.0.0.9"),
            ("groupRequestCount", "1000"),
        ]);
        assert!(check_numbers("advanced", &f).is_ok());
        let b = policy_body("advanced", &f);
        let g = &b["conditionalGroups"][0];
        assert_eq!(g["conditions"][0]["ipCondition"]["ipConditionType"], "IPRANGE");
        assert_eq!(g["conditions"][0]["ipCondition"]["endingIP"], "10.0.0.9");
        assert_eq!(g["limit"]["requestCount"]["requestCount"], 1000);
        assert_eq!(b["defaultLimit"]["requestCount"]["requestCount"], 100);
        assert!(b.get("keyTemplate").is_none());
    }

    #[test]
    fn numbers_are_checked_for_the_chosen_limit_only() {
        let bandwidth = form(&[("limitType", "BANDWIDTHLIMIT"), ("dataAmount", "5"), ("unitTime", "1")]);
        assert!(check_numbers("subscription", &bandwidth).is_ok());
        assert_eq!(
            policy_body("subscription", &bandwidth)["defaultLimit"]["bandwidth"]["dataAmount"],
            5
        );
        let e = check_numbers(
            "application",
            &form(&[("requestCount", "10"), ("unitTime", "1"), ("rateLimitCount", "x")]),
        )
        .err()
        .map(|e| e.fields.into_keys().collect::<Vec<_>>());
        assert_eq!(e, Some(vec!["rateLimitCount".to_string()]));
    }

    #[test]
    fn rest_error_paths_land_on_the_form_fields() {
        assert_eq!(form_field("defaultLimit.requestCount.unitTime"), "unitTime");
        assert_eq!(form_field("defaultLimit.type"), "limitType");
        assert_eq!(
            form_field("conditionalGroups[0].limit.requestCount.requestCount"),
            "groupRequestCount"
        );
        assert_eq!(
            form_field("conditionalGroups[0].conditions[0].headerCondition.headerName"),
            "conditionName"
        );
        assert_eq!(
            form_field("conditionalGroups[0].conditions[0].ipCondition.specificIP"),
            "conditionValue"
        );
        assert_eq!(form_field("conditionalGroups[0].conditions[0].type"), "conditionType");
        assert_eq!(form_field("keyTemplate"), "keyTemplate");
        assert_eq!(form_field("burstLimit.rateLimitTimeUnit"), "rateLimitTimeUnit");
    }
}
