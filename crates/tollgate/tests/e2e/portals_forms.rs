//! Every portal form that takes input, refusing bad input over plain HTTP (no browser), on
//! one all-in-one node: the answer is a 4xx page that says what is wrong next to the
//! field (a `field-error`) or in the form's `alert error` box, keeps what was typed, and
//! nothing changes, which is checked through the REST APIs as the owner or an
//! administrator. The browser story (`portals.rs`) covers sign-up, a duplicate new
//! application, import, the endpoint edit, an empty deploy, the consumer secret, new
//! policies, the IP deny policy, the environment port, new users and the last admin;
//! this covers the other forms, and the CSRF check at the HTTP level.
//!
//! Setup goes through REST (basic auth); every assertion is about what a page answered.
//! The separate tests at the end pin defects found and fixed: a URL that cannot be
//! tested, chosen grant types lost on a refused keys form, and non-numbers sent to REST
//! as they were (rating, token and API-key validity).

use crate::{READY, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_testkit::PortalSession;
use tollgate_testkit::portal_client::{checked_values, field_error, form, input_value, page_text, texts_with_class};

const PETSTORE: &str = include_str!("fixtures/petstore.yaml");
const ADMIN: (&str, &str) = ("admin", "test-admin-password");
const PUBLISHER: (&str, &str) = ("pia", "pia-password-1");
const DEV: (&str, &str) = ("dana", "dana-password-1");
const OTHER: (&str, &str) = ("olga", "olga-password-1");

const DEVPORTAL: &str = "/api/am/devportal/v3";
const PUBLISHER_API: &str = "/api/am/publisher/v4";
const ADMIN_API: &str = "/api/am/admin/v4";

/// The REST APIs with basic auth, for setup and for checking that nothing changed.
struct Rest {
    base: String,
    client: reqwest::Client,
}

impl Rest {
    async fn call(
        &self,
        (user, password): (&str, &str),
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(user, Some(password));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A call that must succeed; its JSON answer.
    async fn ok(&self, who: (&str, &str), method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(who, method.clone(), path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} as {}: {status} {answer}",
            who.0
        );
        answer
    }

    async fn get(&self, who: (&str, &str), path: &str) -> Value {
        self.ok(who, Method::GET, path, None).await
    }
}

/// The ids the checks need, made through REST.
struct World {
    rest: Rest,
    /// The petstore, published, offering Gold and Unlimited.
    petstore: String,
    /// An API left in CREATED, with no revision yet.
    draft: String,
    /// The developer's applications.
    dev_default_app: String,
    dev_shop_app: String,
    /// The other developer's subscription (their DefaultApplication to the petstore).
    other_sub: String,
    /// An application of the other developer's with no subscription.
    other_spare_app: String,
}

async fn setup(base: &str) -> World {
    let rest = Rest {
        base: base.to_string(),
        client: tollgate_testkit::http(),
    };
    rest.ok(
        ADMIN,
        Method::POST,
        &format!("{ADMIN_API}/users"),
        Some(json!({"username": PUBLISHER.0, "password": PUBLISHER.1, "roles": ["creator", "publisher"]})),
    )
    .await;
    for (user, password) in [DEV, OTHER] {
        let (status, body) = rest
            .call(
                ADMIN,
                Method::POST,
                &format!("{DEVPORTAL}/signup"),
                Some(json!({"username": user, "password": password, "email": format!("{user}@example.com")})),
            )
            .await;
        assert_eq!(status, 201, "sign-up of {user}: {body}");
    }
    let petstore = crate::consumer_flow::publish_petstore_as(&rest.client, &rest.base, PUBLISHER).await;
    let draft = rest
        .ok(
            PUBLISHER,
            Method::POST,
            &format!("{PUBLISHER_API}/apis"),
            Some(
                json!({"name": "Orders", "version": "1.0.0", "context": "/orders", "policies": ["Unlimited"],
                        "description": "Order book"}),
            ),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let default_app = |apps: &Value| {
        apps["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "DefaultApplication")
            .map(|a| a["applicationId"].as_str().unwrap().to_string())
            .expect("sign-up made a DefaultApplication")
    };
    let dev_default_app = default_app(&rest.get(DEV, &format!("{DEVPORTAL}/applications")).await);
    let dev_shop_app = rest
        .ok(
            DEV,
            Method::POST,
            &format!("{DEVPORTAL}/applications"),
            Some(json!({"name": "Shop", "throttlingPolicy": "Unlimited", "description": "for pets"})),
        )
        .await["applicationId"]
        .as_str()
        .unwrap()
        .to_string();
    let other_default_app = default_app(&rest.get(OTHER, &format!("{DEVPORTAL}/applications")).await);
    let other_sub = rest
        .ok(
            OTHER,
            Method::POST,
            &format!("{DEVPORTAL}/subscriptions"),
            Some(json!({"applicationId": other_default_app, "apiId": petstore, "throttlingPolicy": "Unlimited"})),
        )
        .await["subscriptionId"]
        .as_str()
        .unwrap()
        .to_string();
    let other_spare_app = rest
        .ok(
            OTHER,
            Method::POST,
            &format!("{DEVPORTAL}/applications"),
            Some(json!({"name": "Spare", "throttlingPolicy": "Unlimited"})),
        )
        .await["applicationId"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        rest,
        petstore,
        draft,
        dev_default_app,
        dev_shop_app,
        other_sub,
        other_spare_app,
    }
}

/// A page's text, shortened, for assertion messages.
fn shown(html: &str) -> String {
    let text = page_text(html);
    match text.char_indices().nth(1500) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Checks a refused form: a 400 page that still draws form `form_id`, with an error
/// containing `needle` next to the control named `field`. Returns the form's HTML.
fn refused_at(step: &str, (status, html): (u16, &str), form_id: &str, field: &str, needle: &str) -> String {
    assert_eq!(status, 400, "{step}: status; the page said: {}", shown(html));
    let f = form(html, form_id).unwrap_or_else(|| panic!("{step}: no #{form_id} on the page: {}", shown(html)));
    let error = field_error(&f, field).unwrap_or_else(|| {
        panic!(
            "{step}: no field-error next to `{field}`; errors shown: {:?} / {:?}",
            texts_with_class(html, "field-error"),
            texts_with_class(html, "alert error")
        )
    });
    assert!(
        error.contains(needle),
        "{step}: the error next to `{field}` is {error:?}, not about {needle:?}"
    );
    f
}

/// Checks a refused action: a 400 page whose `alert error` box contains every one of
/// `needles`.
fn refused_with_alert(step: &str, (status, html): (u16, &str), needles: &[&str]) {
    assert_eq!(status, 400, "{step}: status; the page said: {}", shown(html));
    let alerts = texts_with_class(html, "alert error").join(" | ");
    for needle in needles {
        assert!(
            alerts.contains(needle),
            "{step}: the error box says {alerts:?}, not {needle:?}"
        );
    }
}

async fn subscriptions_of(w: &World, who: (&str, &str), app: &str) -> Vec<Value> {
    w.rest
        .get(who, &format!("{DEVPORTAL}/subscriptions?applicationId={app}"))
        .await["list"]
        .as_array()
        .unwrap()
        .clone()
}

async fn devportal_forms(w: &World, dev: &PortalSession) {
    let api = &w.petstore;
    let subscribe = format!("/devportal/apis/{api}/subscribe");

    // Subscribing with a plan the API does not offer.
    let (status, html, _) = dev
        .post_form(
            &subscribe,
            &[("applicationId", &w.dev_default_app), ("throttlingPolicy", "Bronze")],
        )
        .await;
    let f = &refused_at(
        "subscribe with Bronze",
        (status, &html),
        "subscribe-form",
        "throttlingPolicy",
        "does not offer `Bronze`",
    );
    assert_eq!(
        input_value(f, "applicationId").as_deref(),
        Some(w.dev_default_app.as_str())
    );
    assert!(
        subscriptions_of(w, DEV, &w.dev_default_app).await.is_empty(),
        "nothing subscribed"
    );

    // Subscribing another user's application.
    let (status, html, _) = dev
        .post_form(
            &subscribe,
            &[("applicationId", &w.other_spare_app), ("throttlingPolicy", "Gold")],
        )
        .await;
    refused_at(
        "subscribe another's application",
        (status, &html),
        "subscribe-form",
        "applicationId",
        "you have no application",
    );
    assert!(
        subscriptions_of(w, OTHER, &w.other_spare_app).await.is_empty(),
        "nothing subscribed for the other user"
    );

    // Ratings out of range and not a number; the earlier rating stays.
    w.rest
        .ok(
            DEV,
            Method::PUT,
            &format!("{DEVPORTAL}/apis/{api}/user-rating"),
            Some(json!({"rating": 4})),
        )
        .await;
    let rate = format!("/devportal/apis/{api}/rating");
    let (status, html, _) = dev.post_form(&rate, &[("rating", "9")]).await;
    refused_with_alert("rating 9", (status, &html), &["rating", "from 1 to 5"]);
    let (status, html, _) = dev.post_form(&rate, &[("rating", "abc")]).await;
    refused_with_alert("rating abc", (status, &html), &["rating"]);
    let ratings = w.rest.get(DEV, &format!("{DEVPORTAL}/apis/{api}/ratings")).await;
    assert_eq!(ratings["count"], 1, "{ratings}");
    assert_eq!(ratings["list"][0]["rating"], 4, "the rating is unchanged: {ratings}");

    // Editing an application: an empty name, then another application's name.
    let shop = &w.dev_shop_app;
    let edit = format!("/devportal/applications/{shop}/edit");
    let (status, html, _) = dev
        .post_form(
            &edit,
            &[
                ("name", ""),
                ("throttlingPolicy", "Unlimited"),
                ("tokenType", "JWT"),
                ("description", "renamed shop"),
            ],
        )
        .await;
    let f = &refused_at("empty name", (status, &html), "application-form", "name", "is required");
    assert_eq!(input_value(f, "description").as_deref(), Some("renamed shop"), "kept");
    let (status, html, _) = dev
        .post_form(
            &edit,
            &[
                ("name", "DefaultApplication"),
                ("throttlingPolicy", "Unlimited"),
                ("tokenType", "OAUTH"),
                ("description", "clash"),
            ],
        )
        .await;
    let f = &refused_at(
        "duplicate name",
        (status, &html),
        "application-form",
        "name",
        "already have an application named `DefaultApplication`",
    );
    assert_eq!(input_value(f, "name").as_deref(), Some("DefaultApplication"), "kept");
    assert_eq!(input_value(f, "description").as_deref(), Some("clash"), "kept");
    assert_eq!(input_value(f, "tokenType").as_deref(), Some("OAUTH"), "kept");
    let app = w.rest.get(DEV, &format!("{DEVPORTAL}/applications/{shop}")).await;
    assert_eq!(
        (
            app["name"].as_str(),
            app["description"].as_str(),
            app["tokenType"].as_str()
        ),
        (Some("Shop"), Some("for pets"), Some("JWT")),
        "the application is unchanged: {app}"
    );

    // Generating OAuth keys with bad input.
    let keys = format!("/devportal/applications/{shop}/keys");
    let (status, html, _) = dev.post_form(&keys, &[("keyType", "PRODUCTION")]).await;
    refused_at(
        "keys without a grant type",
        (status, &html),
        "keys-form",
        "grantType",
        "at least one grant type",
    );
    let (status, html, _) = dev
        .post_form(
            &keys,
            &[
                ("keyType", "SANDBOX"),
                ("grantType", "authorization_code"),
                ("callbackUrl", "ftp://cb.example/back"),
            ],
        )
        .await;
    let f = &refused_at(
        "keys with an ftp callback",
        (status, &html),
        "keys-form",
        "callbackUrl",
        "http:// or https://",
    );
    assert_eq!(
        input_value(f, "callbackUrl").as_deref(),
        Some("ftp://cb.example/back"),
        "kept"
    );
    assert_eq!(input_value(f, "keyType").as_deref(), Some("SANDBOX"), "kept");
    let (status, html, _) = dev
        .post_form(&keys, &[("keyType", "PRODUCTION"), ("grantType", "authorization_code")])
        .await;
    refused_at(
        "authorization_code without a callback",
        (status, &html),
        "keys-form",
        "callbackUrl",
        "required for the authorization_code grant",
    );
    let (status, html, _) = dev
        .post_form(&keys, &[("keyType", "STAGING"), ("grantType", "client_credentials")])
        .await;
    refused_at(
        "keys of type STAGING",
        (status, &html),
        "keys-form",
        "keyType",
        "STAGING",
    );
    let oauth_keys = w
        .rest
        .get(DEV, &format!("{DEVPORTAL}/applications/{shop}/oauth-keys"))
        .await;
    assert_eq!(oauth_keys["count"], 0, "no keys were made: {oauth_keys}");

    // Test tokens: keys first (through REST, for the secret), then bad validity and scopes.
    let (mapping, secret) = production_keys(w).await;
    let (mapping, secret) = (mapping.as_str(), secret.as_str());
    let token = format!("/devportal/applications/{shop}/token");
    let (status, html, _) = dev
        .post_form(
            &token,
            &[
                ("keyMappingId", mapping),
                ("consumerSecret", secret),
                ("validityPeriod", "99999999999"),
                ("scopes", "apim:subscribe"),
            ],
        )
        .await;
    let f = &refused_at(
        "token valid for 3000 years",
        (status, &html),
        "token-form",
        "validityPeriod",
        "must be 0 to",
    );
    assert_eq!(input_value(f, "validityPeriod").as_deref(), Some("99999999999"), "kept");
    assert_eq!(input_value(f, "scopes").as_deref(), Some("apim:subscribe"), "kept");
    assert_eq!(input_value(f, "consumerSecret"), None, "the secret is not echoed");
    assert!(!html.contains("id=\"access-token\""), "no token was issued");
    let (status, html, _) = dev
        .post_form(
            &token,
            &[
                ("keyMappingId", mapping),
                ("consumerSecret", secret),
                ("validityPeriod", "soon"),
                ("scopes", ""),
            ],
        )
        .await;
    refused_with_alert("token validity `soon`", (status, &html), &["validityPeriod"]);
    let f = &form(&html, "token-form").unwrap();
    assert_eq!(input_value(f, "validityPeriod").as_deref(), Some("soon"), "kept");
    assert!(!html.contains("id=\"access-token\""), "no token was issued");
    let (status, html, _) = dev
        .post_form(
            &token,
            &[
                ("keyMappingId", mapping),
                ("consumerSecret", secret),
                ("validityPeriod", "600"),
                ("scopes", "apim:subscribe no_such_scope"),
            ],
        )
        .await;
    let f = &refused_at(
        "token with an unknown scope",
        (status, &html),
        "token-form",
        "scopes",
        "no_such_scope",
    );
    assert_eq!(
        input_value(f, "scopes").as_deref(),
        Some("apim:subscribe no_such_scope"),
        "kept"
    );
    assert!(!html.contains("id=\"access-token\""), "no token was issued");

    // API keys with a bad validity or key type.
    let api_key = format!("/devportal/applications/{shop}/api-key");
    let (status, html, _) = dev
        .post_form(
            &api_key,
            &[("keyType", "PRODUCTION"), ("validityPeriod", "99999999999")],
        )
        .await;
    let f = &refused_at(
        "API key valid for 3000 years",
        (status, &html),
        "api-key-form",
        "validityPeriod",
        "must be between 1 and",
    );
    assert_eq!(input_value(f, "validityPeriod").as_deref(), Some("99999999999"), "kept");
    assert!(!html.contains("id=\"api-key\""), "no API key was issued");
    let (status, html, _) = dev
        .post_form(&api_key, &[("keyType", "PRODUCTION"), ("validityPeriod", "a week")])
        .await;
    refused_with_alert("API key validity `a week`", (status, &html), &["validityPeriod"]);
    let f = &form(&html, "api-key-form").unwrap();
    assert_eq!(input_value(f, "validityPeriod").as_deref(), Some("a week"), "kept");
    assert!(!html.contains("id=\"api-key\""), "no API key was issued");
    let (status, html, _) = dev
        .post_form(&api_key, &[("keyType", "STAGING"), ("validityPeriod", "3600")])
        .await;
    refused_with_alert("API key of type STAGING", (status, &html), &["STAGING"]);
    assert!(!html.contains("id=\"api-key\""), "no API key was issued");
    let oauth_keys = w
        .rest
        .get(DEV, &format!("{DEVPORTAL}/applications/{shop}/oauth-keys"))
        .await;
    assert_eq!(oauth_keys["count"], 1, "only the REST-made keys: {oauth_keys}");

    // Unsubscribing another user's subscription: not found, and it stays.
    let (status, html, _) = dev
        .post_form(
            &format!("/devportal/subscriptions/{}/delete", w.other_sub),
            &[("back", "/devportal/applications")],
        )
        .await;
    assert_eq!(status, 404, "another's subscription: {}", shown(&html));
    assert!(
        page_text(&html).contains(&w.other_sub),
        "the page names it: {}",
        shown(&html)
    );
    let still = w
        .rest
        .get(OTHER, &format!("{DEVPORTAL}/subscriptions/{}", w.other_sub))
        .await;
    assert_eq!(still["status"], "UNBLOCKED", "the subscription stays: {still}");
}

/// Production keys of the developer's Shop application, made through REST: the key
/// mapping id and the consumer secret.
async fn production_keys(w: &World) -> (String, String) {
    let made = w
        .rest
        .ok(
            DEV,
            Method::POST,
            &format!("{DEVPORTAL}/applications/{}/generate-keys", w.dev_shop_app),
            Some(json!({"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]})),
        )
        .await;
    (
        made["keyMappingId"].as_str().unwrap().to_string(),
        made["consumerSecret"].as_str().unwrap().to_string(),
    )
}

/// Checks that a page speaks of no JSON internals (a REST parse error shown as is).
fn no_json_jargon(step: &str, html: &str) {
    let text = page_text(html);
    for jargon in ["invalid type", "expected i64", "line 1 column", "null"] {
        assert!(
            !text.contains(jargon),
            "{step}: the page says {jargon:?}: {}",
            shown(html)
        );
    }
}

async fn publisher_forms(w: &World, publisher: &PortalSession) {
    let api_names = || async {
        w.rest.get(PUBLISHER, &format!("{PUBLISHER_API}/apis?limit=1000")).await["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{} {}", a["name"].as_str().unwrap(), a["version"].as_str().unwrap()))
            .collect::<Vec<_>>()
    };
    let before = api_names().await;

    // Creating an API: a bad context, no version, a name and version already taken.
    let new = "/publisher/apis/new";
    let typed = |name: &'static str, version: &'static str, context: &'static str| {
        [
            ("name", name),
            ("version", version),
            ("context", context),
            ("endpoint", "http://backend.example/v1"),
            ("description", "Stock levels"),
            ("policies", "Gold"),
            ("policies", "Unlimited"),
        ]
    };
    let (status, html, _) = publisher
        .post_form(new, &typed("Inventory", "1.0.0", "/inv entory"))
        .await;
    let f = &refused_at(
        "bad context",
        (status, &html),
        "create-form",
        "context",
        "may contain only",
    );
    for (field, value) in [
        ("name", "Inventory"),
        ("version", "1.0.0"),
        ("context", "/inv entory"),
        ("endpoint", "http://backend.example/v1"),
        ("description", "Stock levels"),
    ] {
        assert_eq!(input_value(f, field).as_deref(), Some(value), "{field} kept");
    }
    assert_eq!(checked_values(f, "policies"), ["Gold", "Unlimited"], "plans kept");
    let (status, html, _) = publisher.post_form(new, &typed("Inventory", "", "/inventory")).await;
    let f = &refused_at(
        "no version",
        (status, &html),
        "create-form",
        "version",
        "1 to 30 characters",
    );
    assert_eq!(input_value(f, "context").as_deref(), Some("/inventory"), "kept");
    let (status, html, _) = publisher
        .post_form(new, &typed("Swagger Petstore", "1.0.0", "/petstore-two"))
        .await;
    let f = &refused_at(
        "name and version taken",
        (status, &html),
        "create-form",
        "name",
        "already exists",
    );
    assert_eq!(input_value(f, "context").as_deref(), Some("/petstore-two"), "kept");
    assert_eq!(api_names().await, before, "no API was created");

    // A lifecycle action the state does not allow, and one that does not exist.
    let draft = &w.draft;
    let lifecycle = format!("/publisher/apis/{draft}/lifecycle");
    for (action, needle) in [
        ("Retire", "`Retire` is not allowed from Created"),
        ("Explode", "unknown action `Explode`"),
    ] {
        let (status, html, _) = publisher.post_form(&lifecycle, &[("action", action)]).await;
        refused_with_alert(&format!("lifecycle {action}"), (status, &html), &[needle, "Publish"]);
        assert!(
            page_text(&html).contains("State: Created"),
            "the page shows the state unchanged: {}",
            shown(&html)
        );
    }
    let state = w.rest.get(PUBLISHER, &format!("{PUBLISHER_API}/apis/{draft}")).await;
    assert_eq!(state["lifeCycleStatus"], "CREATED", "{state}");

    // Revisions: a description too long; then one past the most allowed.
    let revisions = format!("/publisher/apis/{draft}/revisions");
    let long = "x".repeat(300);
    let (status, html, _) = publisher.post_form(&revisions, &[("description", &long)]).await;
    refused_with_alert("revision description", (status, &html), &["description", "255"]);
    let f = &form(&html, "revision-form").unwrap();
    assert_eq!(input_value(f, "description").as_deref(), Some(long.as_str()), "kept");
    let revision_ids = || async {
        w.rest
            .get(PUBLISHER, &format!("{PUBLISHER_API}/apis/{draft}/revisions"))
            .await["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(revision_ids().await.is_empty(), "no revision was made");
    for n in 1..=5 {
        w.rest
            .ok(
                PUBLISHER,
                Method::POST,
                &format!("{PUBLISHER_API}/apis/{draft}/revisions"),
                Some(json!({"description": format!("r{n}")})),
            )
            .await;
    }
    let (status, html, _) = publisher.post_form(&revisions, &[("description", "sixth")]).await;
    refused_with_alert("a sixth revision", (status, &html), &["already has 5 revisions"]);
    let f = &form(&html, "revision-form").unwrap();
    assert_eq!(input_value(f, "description").as_deref(), Some("sixth"), "kept");
    let ids = revision_ids().await;
    assert_eq!(ids.len(), 5, "no sixth revision");

    // Deploying to an unknown environment; undeploying a revision from where it is not.
    let (first, second) = (ids[0].clone(), ids[1].clone());
    w.rest
        .ok(
            PUBLISHER,
            Method::POST,
            &format!("{PUBLISHER_API}/apis/{draft}/deploy-revision?revisionId={first}"),
            Some(json!([{"name": "Default"}])),
        )
        .await;
    // Which revision is deployed where (not the gateways' acknowledgements, which arrive
    // on their own time).
    let deployments = || async {
        let all = w
            .rest
            .get(PUBLISHER, &format!("{PUBLISHER_API}/apis/{draft}/deployments"))
            .await;
        all["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["revisionUuid"].clone(), d["name"].clone(), d["status"].clone()))
            .collect::<Vec<_>>()
    };
    let deployed = deployments().await;
    let (status, html, _) = publisher
        .post_form(
            &format!("/publisher/apis/{draft}/deploy"),
            &[("revisionId", &second), ("environment", "Nowhere")],
        )
        .await;
    refused_with_alert(
        "deploy to Nowhere",
        (status, &html),
        &["no gateway environment named `Nowhere`"],
    );
    let (status, html, _) = publisher
        .post_form(
            &format!("/publisher/apis/{draft}/undeploy"),
            &[("revisionId", &second), ("environment", "Default")],
        )
        .await;
    refused_with_alert(
        "undeploy a revision not deployed",
        (status, &html),
        &["this revision is not deployed to `Default`"],
    );
    assert_eq!(deployments().await, deployed, "the deployments are unchanged");

    // Blocking with a state that does not exist; blocking an unknown subscription.
    let block = format!("/publisher/apis/{}/subscriptions/block", w.petstore);
    let (status, html, _) = publisher
        .post_form(
            &block,
            &[
                ("subscriptionId", &w.other_sub),
                ("action", "block"),
                ("blockState", "FROZEN"),
            ],
        )
        .await;
    assert_eq!(status, 400, "block FROZEN: {}", shown(&html));
    assert!(
        page_text(&html).contains("`FROZEN` must be BLOCKED or PROD_ONLY_BLOCKED"),
        "block FROZEN: {}",
        shown(&html)
    );
    for action in ["block", "unblock"] {
        let (status, html, _) = publisher
            .post_form(
                &block,
                &[("subscriptionId", "no-such-subscription"), ("action", action)],
            )
            .await;
        assert_eq!(status, 404, "{action} an unknown subscription: {}", shown(&html));
        assert!(
            page_text(&html).contains("no-such-subscription"),
            "{action}: the page names it: {}",
            shown(&html)
        );
    }
    let subs = w
        .rest
        .get(
            PUBLISHER,
            &format!("{PUBLISHER_API}/subscriptions?apiId={}", w.petstore),
        )
        .await;
    let sub = subs["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subscriptionId"] == w.other_sub.as_str())
        .unwrap_or_else(|| panic!("the subscription is listed: {subs}"));
    assert_eq!(
        sub["subscriptionStatus"].as_str().or(sub["status"].as_str()),
        Some("UNBLOCKED"),
        "{sub}"
    );

    test_endpoint_with_bad_urls(w, publisher).await;
}

/// "Test endpoint" with URLs it cannot test: the reason is said next to the endpoint,
/// what was typed is kept, nothing is saved. Returns the statuses the page answered.
async fn test_endpoint_with_bad_urls(w: &World, publisher: &PortalSession) -> Vec<u16> {
    let draft = &w.draft;
    let test = format!("/publisher/apis/{draft}/test-endpoint");
    let mut statuses = Vec::new();
    for (url, needle) in [
        ("ftp://backend.example/v1", "only http://"),
        ("http://back end.example/", "not a valid URL"),
        // The addresses URL import refuses: the node's own network (and the metadata service).
        ("http://127.0.0.1:1/admin", "url_import_allow_private"),
        ("http://169.254.169.254/latest/meta-data/", "url_import_allow_private"),
        ("http://[::1]/", "url_import_allow_private"),
    ] {
        let (status, html, _) = publisher
            .post_form(
                &test,
                &[
                    ("description", "Orders, edited"),
                    ("tags", "orders, shop"),
                    ("endpoint", url),
                    ("policies", "Unlimited"),
                ],
            )
            .await;
        statuses.push(status);
        let f = &form(&html, "edit-form").unwrap_or_else(|| panic!("test {url}: {}", shown(&html)));
        let error = field_error(f, "endpoint").unwrap_or_default();
        assert!(error.contains(needle), "test {url}: next to the endpoint: {error:?}");
        assert_eq!(input_value(f, "endpoint").as_deref(), Some(url), "kept");
        assert_eq!(input_value(f, "tags").as_deref(), Some("orders, shop"), "kept");
        assert_eq!(input_value(f, "description").as_deref(), Some("Orders, edited"), "kept");
    }
    let api = w.rest.get(PUBLISHER, &format!("{PUBLISHER_API}/apis/{draft}")).await;
    assert_eq!(api["description"], "Order book", "nothing saved: {api}");
    assert_eq!(api["tags"], json!([]), "nothing saved: {api}");
    statuses
}

async fn admin_forms(w: &World, admin: &PortalSession) {
    // A user's roles with one that does not exist.
    let (status, html, _) = admin
        .post_form(
            &format!("/admin/users/{}", DEV.0),
            &[("roles", "subscriber"), ("roles", "superhero"), ("enabled", "on")],
        )
        .await;
    refused_with_alert("role superhero", (status, &html), &[DEV.0, "superhero"]);
    let user = w.rest.get(ADMIN, &format!("{ADMIN_API}/users/{}", DEV.0)).await;
    assert_eq!(user["roles"], json!(["subscriber"]), "roles unchanged: {user}");
    assert_eq!(user["enabled"], true, "{user}");

    // Deny policies of an unknown type, and with an empty value.
    let deny_count = || async {
        w.rest
            .get(ADMIN, &format!("{ADMIN_API}/throttling/deny-policies"))
            .await["count"]
            .clone()
    };
    let before = deny_count().await;
    let (status, html, _) = admin
        .post_form(
            "/admin/deny-policies",
            &[("conditionType", "COUNTRY"), ("conditionValue", "Atlantis")],
        )
        .await;
    let f = &refused_at(
        "deny type COUNTRY",
        (status, &html),
        "deny-form",
        "conditionType",
        "`COUNTRY` must be API, APPLICATION, IP, IPRANGE or USER",
    );
    assert_eq!(input_value(f, "conditionValue").as_deref(), Some("Atlantis"), "kept");
    for (kind, needle) in [("API", "API context"), ("USER", "user name"), ("APPLICATION", "owner:")] {
        let (status, html, _) = admin
            .post_form(
                "/admin/deny-policies",
                &[("conditionType", kind), ("conditionValue", "")],
            )
            .await;
        let f = &refused_at(
            &format!("deny {kind} with no value"),
            (status, &html),
            "deny-form",
            "conditionValue",
            needle,
        );
        assert_eq!(input_value(f, "conditionType").as_deref(), Some(kind), "kept");
    }
    assert_eq!(deny_count().await, before, "no deny policy was added");

    // Deleting a plan an API uses, and the built-in one.
    let plan = w
        .rest
        .ok(
            ADMIN,
            Method::POST,
            &format!("{ADMIN_API}/throttling/policies/subscription"),
            Some(json!({
                "policyName": "Pets10", "displayName": "Pets10", "billingPlan": "FREE", "stopOnQuotaReach": true,
                "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
                                 "requestCount": {"requestCount": 10, "timeUnit": "min", "unitTime": 1}},
            })),
        )
        .await;
    let plan_id = plan["policyId"].as_str().unwrap().to_string();
    w.rest
        .ok(
            PUBLISHER,
            Method::POST,
            &format!("{PUBLISHER_API}/apis"),
            Some(json!({"name": "Plans", "version": "1.0.0", "context": "/plans", "policies": ["Pets10"]})),
        )
        .await;
    let plans = || async {
        w.rest
            .get(ADMIN, &format!("{ADMIN_API}/throttling/policies/subscription"))
            .await["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["policyName"].as_str().unwrap().to_string(),
                    p["policyId"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let before = plans().await;
    let unlimited = before.iter().find(|(n, _)| n == "Unlimited").unwrap().1.clone();
    for (id, needle) in [
        (&plan_id, "is in use by API `Plans` 1.0.0"),
        (&unlimited, "`Unlimited` is built in"),
    ] {
        let (status, html, _) = admin
            .post_form(&format!("/admin/policies/subscription/{id}/delete"), &[])
            .await;
        refused_with_alert(&format!("delete {needle}"), (status, &html), &[needle]);
    }
    assert_eq!(plans().await, before, "no plan was deleted");
}

async fn csrf_checks(w: &World, dev: &PortalSession, publisher: &PortalSession, admin: &PortalSession) {
    let app_names = || async {
        w.rest.get(DEV, &format!("{DEVPORTAL}/applications?limit=1000")).await["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let before = app_names().await;
    let token = dev.cookie("tg_csrf").expect("the session has a CSRF cookie");
    let wrong = "A".repeat(43);
    let same_site = dev.base().to_string();
    let app = |name: &'static str| [("name", name), ("throttlingPolicy", "Unlimited"), ("tokenType", "JWT")];
    let no_field: Vec<(&str, &str)> = app("NoCsrfField").to_vec();
    let wrong_field: Vec<(&str, &str)> = [("csrf", wrong.as_str())].into_iter().chain(app("WrongCsrf")).collect();
    let other_site: Vec<(&str, &str)> = [("csrf", token.as_str())].into_iter().chain(app("OtherSite")).collect();
    for (what, fields, origin) in [
        ("no csrf field", &no_field, same_site.as_str()),
        ("a wrong csrf field", &wrong_field, same_site.as_str()),
        ("another site's Origin", &other_site, "http://evil.example"),
    ] {
        let (status, html, location) = dev
            .post_form_raw("/devportal/applications", fields, &[("Origin", origin)])
            .await;
        assert_eq!(status, 403, "{what}: {}", shown(&html));
        assert_eq!(location, None, "{what}");
        assert!(
            page_text(&html).contains("This form cannot be accepted"),
            "{what}: {}",
            shown(&html)
        );
    }
    assert_eq!(app_names().await, before, "no application was created");
    // A fresh visitor with no CSRF cookie at all, echoing someone else's token.
    let anonymous = PortalSession::signed_out(dev.base());
    let (status, _, _) = anonymous
        .post_form_raw(
            "/devportal/signup",
            &[
                ("csrf", &token),
                ("username", "mallory"),
                ("password", "mallory-password-1"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 403, "a form without a CSRF cookie");
    let (status, _) = w
        .rest
        .call(ADMIN, Method::GET, &format!("{ADMIN_API}/users/mallory"), None)
        .await;
    assert_eq!(status, 404, "no user was signed up");

    // An Admin form too; then the same form with the right token works, so the refusals
    // above were the CSRF check's.
    let deny = || async {
        w.rest
            .get(ADMIN, &format!("{ADMIN_API}/throttling/deny-policies"))
            .await["count"]
            .clone()
    };
    let before = deny().await;
    let (status, _, _) = admin
        .post_form_raw(
            "/admin/deny-policies",
            &[("conditionType", "USER"), ("conditionValue", "mallory")],
            &[],
        )
        .await;
    assert_eq!(status, 403, "an admin form without its csrf field");
    assert_eq!(deny().await, before, "no deny policy was added");

    // A multipart upload carries its token in the action's query.
    let api_names = || async {
        w.rest.get(PUBLISHER, &format!("{PUBLISHER_API}/apis?limit=1000")).await["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let apis_before = api_names().await;
    let boundary = "portal-forms-boundary";
    let upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"context\"\r\n\r\n/uploaded\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"policies\"\r\n\r\nUnlimited\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"uploaded.yaml\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}\r\n--{boundary}--\r\n",
        PETSTORE.replace("title: Swagger Petstore", "title: Uploaded Store")
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let publisher_token = publisher.cookie("tg_csrf").expect("a CSRF cookie");
    let as_field =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{publisher_token}\r\n{upload}");
    for (what, path, body) in [
        ("no csrf parameter", "/publisher/apis/import".to_string(), &upload),
        (
            "a wrong csrf parameter",
            format!("/publisher/apis/import?csrf={wrong}"),
            &upload,
        ),
        (
            "the token as a part, not in the query",
            "/publisher/apis/import".to_string(),
            &as_field,
        ),
    ] {
        let (status, html, _) = publisher
            .post_bytes(&path, &content_type, body.clone().into_bytes(), &[])
            .await;
        assert_eq!(status, 403, "an upload with {what}: {}", shown(&html));
        assert!(page_text(&html).contains("This form cannot be accepted"), "{what}");
    }
    assert_eq!(api_names().await, apis_before, "no API was imported");
    let (status, html, location) = publisher
        .post_bytes(
            &format!("/publisher/apis/import?csrf={publisher_token}"),
            &content_type,
            upload.into_bytes(),
            &[],
        )
        .await;
    assert_eq!(status, 303, "the upload with its token: {}", shown(&html));
    assert!(location.is_some_and(|l| l.starts_with("/publisher/apis/")));
    assert!(api_names().await.contains(&"Uploaded Store".to_string()));

    let (status, html, location) = dev.post_form("/devportal/applications", &app("WithCsrf")).await;
    assert_eq!(status, 303, "the same form with its token: {}", shown(&html));
    assert!(location.is_some_and(|l| l.starts_with("/devportal/applications/")));
    assert!(app_names().await.contains(&"WithCsrf".to_string()));
}

/// A ready all-in-one node with the world set up, and its base URL.
async fn start() -> (tollgate_testkit::Node, String, World) {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let base = format!("http://{mgmt}");
    let world = setup(&base).await;
    (node, base, world)
}

#[tokio::test]
async fn portal_forms_refuse_bad_input_and_change_nothing() {
    let (_node, base, world) = start().await;
    let dev = PortalSession::sign_in(&base, DEV.0, DEV.1).await;
    let publisher = PortalSession::sign_in(&base, PUBLISHER.0, PUBLISHER.1).await;
    let admin = PortalSession::sign_in(&base, ADMIN.0, ADMIN.1).await;
    devportal_forms(&world, &dev).await;
    publisher_forms(&world, &publisher).await;
    admin_forms(&world, &admin).await;
    csrf_checks(&world, &dev, &publisher, &admin).await;
}

#[tokio::test]
async fn test_endpoint_answers_a_url_it_cannot_test_with_a_4xx() {
    let (_node, base, world) = start().await;
    let publisher = PortalSession::sign_in(&base, PUBLISHER.0, PUBLISHER.1).await;
    let statuses = test_endpoint_with_bad_urls(&world, &publisher).await;
    assert!(statuses.iter().all(|s| (400..500).contains(s)), "{statuses:?}");
}

#[tokio::test]
async fn a_refused_keys_form_keeps_the_chosen_grant_types() {
    let (_node, base, world) = start().await;
    let dev = PortalSession::sign_in(&base, DEV.0, DEV.1).await;
    let (status, html, _) = dev
        .post_form(
            &format!("/devportal/applications/{}/keys", world.dev_shop_app),
            &[
                ("keyType", "PRODUCTION"),
                ("grantType", "password"),
                ("grantType", "authorization_code"),
                ("callbackUrl", "ftp://cb.example/back"),
            ],
        )
        .await;
    let f = &refused_at(
        "keys with an ftp callback",
        (status, &html),
        "keys-form",
        "callbackUrl",
        "http:// or https://",
    );
    assert_eq!(
        checked_values(f, "grantType"),
        ["password", "authorization_code"],
        "the grant types chosen are checked again"
    );
}

#[tokio::test]
async fn a_rating_that_is_not_a_number_is_named_in_plain_words() {
    let (_node, base, world) = start().await;
    let dev = PortalSession::sign_in(&base, DEV.0, DEV.1).await;
    let (status, html, _) = dev
        .post_form(
            &format!("/devportal/apis/{}/rating", world.petstore),
            &[("rating", "abc")],
        )
        .await;
    refused_with_alert("rating abc", (status, &html), &["rating", "whole number from 1 to 5"]);
    no_json_jargon("rating abc", &html);
}

#[tokio::test]
async fn a_token_validity_that_is_not_a_number_is_named_next_to_the_field() {
    let (_node, base, world) = start().await;
    let dev = PortalSession::sign_in(&base, DEV.0, DEV.1).await;
    let (mapping, secret) = production_keys(&world).await;
    let (status, html, _) = dev
        .post_form(
            &format!("/devportal/applications/{}/token", world.dev_shop_app),
            &[
                ("keyMappingId", &mapping),
                ("consumerSecret", &secret),
                ("validityPeriod", "soon"),
                ("scopes", ""),
            ],
        )
        .await;
    refused_at(
        "token validity `soon`",
        (status, &html),
        "token-form",
        "validityPeriod",
        "seconds",
    );
    no_json_jargon("token validity `soon`", &html);
}

#[tokio::test]
async fn an_api_key_validity_that_is_not_a_number_is_named_next_to_the_field() {
    let (_node, base, world) = start().await;
    let dev = PortalSession::sign_in(&base, DEV.0, DEV.1).await;
    let (status, html, _) = dev
        .post_form(
            &format!("/devportal/applications/{}/api-key", world.dev_shop_app),
            &[("keyType", "PRODUCTION"), ("validityPeriod", "a week")],
        )
        .await;
    refused_at(
        "API key validity `a week`",
        (status, &html),
        "api-key-form",
        "validityPeriod",
        "seconds",
    );
    no_json_jargon("API key validity `a week`", &html);
}

#[tokio::test]
async fn an_expired_session_is_renewed_with_its_refresh_token_until_sign_out() {
    let (_node, base, _world) = start().await;
    let dev = PortalSession::sign_in(&base, DEV.0, DEV.1).await;
    let first = dev.cookie("tg_session").expect("a session cookie");
    let refresh = dev.cookie("tg_refresh").expect("a refresh cookie");
    // The access token's cookie has expired in the browser; the refresh token renews it.
    dev.forget_cookie("tg_session");
    let (status, html) = dev.get("/devportal/applications").await;
    assert_eq!(status, 200, "{}", page_text(&html));
    assert!(page_text(&html).contains(&format!("Signed in as {}", DEV.0)));
    let renewed = dev.cookie("tg_session").expect("a new session cookie");
    assert_ne!(renewed, first, "a new access token");
    assert_ne!(
        dev.cookie("tg_refresh"),
        Some(refresh.clone()),
        "the refresh token rotated"
    );
    // A refresh token used once is refused: with it, the page is for a signed-out visitor.
    let replay = PortalSession::signed_out(&base);
    replay.set_cookie("tg_refresh", &refresh);
    let (status, _) = replay.get("/devportal/applications").await;
    assert_eq!(status, 303, "an old refresh token signs nobody in");
    assert_eq!(replay.cookie("tg_refresh"), None, "and its cookie is deleted");
    // Signing out revokes both tokens: nothing renews the session afterwards (a fresh
    // session, untouched by the replay above).
    let dev = PortalSession::sign_in(&base, DEV.0, DEV.1).await;
    let kept = dev.cookie("tg_refresh").expect("refresh cookie");
    let before = PortalSession::signed_out(&base);
    before.set_cookie("tg_refresh", &kept);
    let (status, _) = before.get("/devportal/applications").await;
    assert_eq!(status, 200, "the refresh token works before signing out");
    let kept = before.cookie("tg_refresh").expect("rotated refresh cookie");
    dev.set_cookie("tg_refresh", &kept);
    let (status, _, _) = dev.post_form("/portals/sign-out", &[]).await;
    assert_eq!(status, 303);
    let after = PortalSession::signed_out(&base);
    after.set_cookie("tg_refresh", &kept);
    let (status, _) = after.get("/devportal/applications").await;
    assert_eq!(status, 303, "a signed-out session's refresh token is revoked");
}

#[tokio::test]
async fn renewals_of_many_sessions_are_not_capped_by_the_portals_client_limit() {
    // Two token requests a second per client (bursts of four): ten renewals in a row
    // would be refused if the portals' shared client were limited like any other.
    let mut node = tollgate()
        .env("TOLLGATE_KEY_MANAGER__TOKEN_REQUESTS_PER_SECOND", "2")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let base = format!("http://{mgmt}");
    let admin = PortalSession::sign_in(&base, ADMIN.0, ADMIN.1).await;
    for i in 0..10 {
        admin.forget_cookie("tg_session");
        let (status, html) = admin.get("/admin").await;
        assert_eq!(status, 200, "renewal {i}: {}", page_text(&html));
    }
}
