//! Tenants on the Developer Portal REST API: two tenants (`acme.com`, `beta.com`) and the
//! super tenant all hold an API of the same name, context and version. Anonymous callers
//! browse one tenant's catalogue by `X-WSO2-Tenant` or `?tenant=` and see only its APIs;
//! signed-in callers act in their own tenant and get 404 for any other; an unknown or
//! deactivated tenant is a 404 naming it; sign-up creates the user and their default
//! application in the tenant the request or the name names, and nothing when refused.

use super::*;
use tollgate_model::Tenant;
use tollgate_store::apis::{DeploymentRow, RevisionRow};
use tollgate_store::tenants::{self, NewTenant};

/// A tenant with its first administrator, provisioned on the AM side.
async fn tenant(s: &Server, domain: &str) -> Tenant {
    let (t, _) = tenants::create(
        &s.shared,
        NewTenant {
            domain: domain.into(),
            name: String::new(),
            admin_username: "admin".into(),
            admin_password: "admin-password".into(),
            admin_email: None,
        },
    )
    .await
    .unwrap();
    tenants::provision(&s.am, &t).await.unwrap();
    t
}

/// A subscriber of `tenant` called `name`, whose password is `<name>@<domain>-password`
/// as [`Server::req`] sends it.
async fn user_in(s: &Server, tenant: &Tenant, name: &str) {
    users::create(
        &s.shared,
        NewUser {
            tenant_id: tenant.id,
            username: name.into(),
            password: format!("{}-password", tenant.qualify(name)),
            email: None,
            roles: vec![Role::Subscriber],
        },
    )
    .await
    .unwrap();
}

/// Deploys `api` to the `Default` environment (a revision and a deployment row).
async fn deploy(am: &Database, api: &str) {
    let mut tx = am.begin().await.unwrap();
    let number = apis::next_revision_number(&mut tx, api).await.unwrap();
    let revision = RevisionRow {
        id: uuid::Uuid::now_v7().to_string(),
        api_id: api.into(),
        number,
        description: None,
        body: "{}".into(),
        definition: None,
        created_at: now_millis(),
    };
    apis::insert_revision(&mut tx, &revision).await.unwrap();
    apis::upsert_deployment(
        &mut tx,
        &DeploymentRow {
            api_id: api.into(),
            environment: "Default".into(),
            revision_id: revision.id.clone(),
            vhost: None,
            display_on_devportal: true,
            deployed_at: now_millis(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Two tenants beside the super tenant, each with a published `Pets` at `/pets` (the
/// super tenant's comes from [`start`]) and acme with a draft as well.
struct Tenants {
    acme: Tenant,
    beta: Tenant,
    acme_pets: String,
    beta_pets: String,
    acme_draft: String,
}

async fn two_tenants(s: &Server) -> Tenants {
    let acme = tenant(s, "acme.com").await;
    let beta = tenant(s, "beta.com").await;
    let acme_pets = insert_api_in(&s.am, acme.id, "Pets", "/pets", true).await;
    let beta_pets = insert_api_in(&s.am, beta.id, "Pets", "/pets", true).await;
    let acme_draft = insert_api_in(&s.am, acme.id, "Draft", "/draft", false).await;
    Tenants {
        acme,
        beta,
        acme_pets,
        beta_pets,
        acme_draft,
    }
}

/// The ids of a catalogue page.
fn ids(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["list"]
        .as_array()
        .unwrap_or_else(|| panic!("no list: {body}"))
        .iter()
        .map(|a| text(&a["id"]))
        .collect();
    v.sort();
    v
}

impl Server {
    /// An anonymous `GET` naming a tenant by header.
    async fn get_in(&self, tenant: &str, path: &str) -> (u16, Value) {
        self.send(self.req(None, Method::GET, path).header("X-WSO2-Tenant", tenant))
            .await
    }

    /// The number of users of `tenant`.
    async fn users_of(&self, tenant: TenantId) -> i64 {
        users::list(&self.shared, tenant, 0, 1000).await.unwrap().1
    }
}

#[tokio::test]
async fn anonymous_callers_browse_one_tenant_by_header_or_query() {
    for db in all_engines("dp_tenant_browse").await {
        let s = start(&db).await;
        let e = s.engine;
        let t = two_tenants(&s).await;

        // No tenant named: the super tenant's catalogue only.
        let (status, body) = s.call(None, Method::GET, "/apis", None).await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(ids(&body), vec![s.published.clone()], "[{e}] {body}");

        // By header and by query: that tenant's APIs only, the same name in each.
        for (how, tenant, want) in [
            ("header", "acme.com", &t.acme_pets),
            ("header", "ACME.com", &t.acme_pets),
            ("header", "beta.com", &t.beta_pets),
            ("header", "carbon.super", &s.published),
            ("query", "acme.com", &t.acme_pets),
            ("query", "beta.com", &t.beta_pets),
        ] {
            let (status, body) = if how == "header" {
                s.get_in(tenant, "/apis").await
            } else {
                s.call(None, Method::GET, &format!("/apis?tenant={tenant}&limit=10"), None)
                    .await
            };
            assert_eq!(status, 200, "[{e}] {how} {tenant}: {body}");
            assert_eq!(ids(&body), vec![want.clone()], "[{e}] {how} {tenant}: {body}");
            assert_eq!(body["pagination"]["total"], 1, "[{e}] {how} {tenant}: {body}");
            assert_eq!(body["list"][0]["name"], "Pets", "[{e}] {body}");
        }
        // An empty header is no header (as in the reference).
        let (status, body) = s.get_in("", "/apis").await;
        assert_eq!((status, ids(&body)), (200, vec![s.published.clone()]), "[{e}] {body}");
        // A search stays inside the tenant.
        let (status, body) = s
            .call(None, Method::GET, "/apis?tenant=acme.com&query=name:Pets", None)
            .await;
        assert_eq!((status, ids(&body)), (200, vec![t.acme_pets.clone()]), "[{e}] {body}");
        let (status, body) = s
            .call(None, Method::GET, "/apis?tenant=acme.com&query=status:CREATED", None)
            .await;
        assert_eq!(
            (status, body["count"].clone()),
            (200, json!(0)),
            "[{e}] a draft: {body}"
        );

        // One API: only under its own tenant; another tenant's id does not exist there.
        for (tenant, id, want) in [
            ("acme.com", &t.acme_pets, 200),
            ("beta.com", &t.acme_pets, 404),
            ("carbon.super", &t.acme_pets, 404),
            ("acme.com", &s.published, 404),
            ("acme.com", &t.acme_draft, 404),
        ] {
            for path in [
                format!("/apis/{id}"),
                format!("/apis/{id}/documents"),
                format!("/apis/{id}/ratings"),
            ] {
                let (status, body) = s.get_in(tenant, &path).await;
                assert_eq!(status, want, "[{e}] {tenant} {path}: {body}");
            }
        }
        let (status, _) = s.call(None, Method::GET, &format!("/apis/{}", t.acme_pets), None).await;
        assert_eq!(
            status, 404,
            "[{e}] a tenant's API is not in the super tenant's catalogue"
        );

        // The gateway URLs of a tenant's API carry its prefix; the super tenant's do not.
        deploy(&s.am, &t.acme_pets).await;
        deploy(&s.am, &s.published).await;
        let (status, body) = s.get_in("acme.com", &format!("/apis/{}", t.acme_pets)).await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(
            body["endpointURLs"][0]["URLs"]["http"], "http://localhost:8280/t/acme.com/pets/1.0.0",
            "[{e}] {body}"
        );
        let (_, body) = s.call(None, Method::GET, &format!("/apis/{}", s.published), None).await;
        assert_eq!(
            body["endpointURLs"][0]["URLs"]["http"], "http://localhost:8280/pets/1.0.0",
            "[{e}] {body}"
        );

        // Plans are the tenant's own: one added to acme is not offered elsewhere.
        let mut tx = s.am.begin().await.unwrap();
        tollgate_store::policies::insert(
            &mut tx,
            t.acme.id,
            tollgate_model::policy::PolicyLevel::Subscription,
            &uuid::Uuid::now_v7().to_string(),
            "AcmePlatinum",
            &json!({"policyName": "AcmePlatinum", "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
                    "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 10}}}),
            false,
            now_millis(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let plans = |body: &Value| -> Vec<String> {
            body["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| text(&p["name"]))
                .collect()
        };
        let (status, body) = s.get_in("acme.com", "/throttling-policies/subscription").await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert!(plans(&body).contains(&"AcmePlatinum".to_string()), "[{e}] {body}");
        assert!(plans(&body).contains(&"Gold".to_string()), "[{e}] defaults: {body}");
        for other in ["beta.com", "carbon.super"] {
            let (status, body) = s.get_in(other, "/throttling-policies/subscription").await;
            assert_eq!(status, 200, "[{e}] {body}");
            assert!(
                !plans(&body).contains(&"AcmePlatinum".to_string()),
                "[{e}] {other}: {body}"
            );
        }

        // Unknown and deactivated tenants: 404 naming them, by header and by query.
        for path in ["/apis", "/throttling-policies/subscription"] {
            let (status, body) = s.get_in("nope.example", path).await;
            assert_eq!(status, 404, "[{e}] {path}: {body}");
            assert!(text(&body["description"]).contains("`nope.example`"), "[{e}] {body}");
            let (status, body) = s
                .call(None, Method::GET, &format!("{path}?tenant=nope.example"), None)
                .await;
            assert_eq!(status, 404, "[{e}] {path}: {body}");
            assert!(text(&body["description"]).contains("`nope.example`"), "[{e}] {body}");
        }
        tenants::set_active(&s.shared, t.beta.id, false).await.unwrap();
        for path in ["/apis".to_string(), format!("/apis/{}", t.beta_pets)] {
            let (status, body) = s.get_in("beta.com", &path).await;
            assert_eq!(status, 404, "[{e}] deactivated {path}: {body}");
            assert!(text(&body["description"]).contains("`beta.com`"), "[{e}] {body}");
        }
        tenants::set_active(&s.shared, t.beta.id, true).await.unwrap();
        let (status, body) = s.get_in("beta.com", "/apis").await;
        assert_eq!(
            (status, ids(&body)),
            (200, vec![t.beta_pets.clone()]),
            "[{e}] reactivated"
        );

        // Bad input: two different tenants named, a header that is not text.
        let (status, body) = s
            .send(
                s.req(None, Method::GET, "/apis?tenant=beta.com")
                    .header("X-WSO2-Tenant", "acme.com"),
            )
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        let d = text(&body["description"]);
        assert!(d.contains("acme.com") && d.contains("beta.com"), "[{e}] {body}");
        let (status, body) = s
            .call(None, Method::GET, "/apis?tenant=acme.com&tenant=beta.com", None)
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        let (status, body) = s
            .send(s.req(None, Method::GET, "/apis").header(
                "X-WSO2-Tenant",
                reqwest::header::HeaderValue::from_bytes(b"acm\xe9.com").unwrap(),
            ))
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert!(text(&body["description"]).contains("X-WSO2-Tenant"), "[{e}] {body}");
        // The same tenant named twice is one tenant.
        let (status, body) = s
            .send(
                s.req(None, Method::GET, "/apis?tenant=acme.com")
                    .header("X-WSO2-Tenant", "acme.com"),
            )
            .await;
        assert_eq!((status, ids(&body)), (200, vec![t.acme_pets.clone()]), "[{e}] {body}");
    }
}

#[tokio::test]
async fn signed_in_callers_act_in_their_own_tenant_only() {
    for db in all_engines("dp_tenant_signed_in").await {
        let s = start(&db).await;
        let e = s.engine;
        let t = two_tenants(&s).await;
        // `alice` exists in the super tenant (from `start`) and now in acme as well.
        user_in(&s, &t.acme, "alice").await;

        let (status, body) = s.by("alice@acme.com", Method::GET, "/apis", None).await;
        assert_eq!((status, ids(&body)), (200, vec![t.acme_pets.clone()]), "[{e}] {body}");
        let (status, body) = s.by("alice", Method::GET, "/apis", None).await;
        assert_eq!((status, ids(&body)), (200, vec![s.published.clone()]), "[{e}] {body}");
        // Naming their own tenant is fine.
        let (status, body) = s
            .send(
                s.req(Some("alice@acme.com"), Method::GET, "/apis")
                    .header("X-WSO2-Tenant", "acme.com"),
            )
            .await;
        assert_eq!((status, ids(&body)), (200, vec![t.acme_pets.clone()]), "[{e}] {body}");

        // Naming another tenant, existing or not, is a 404 naming it, on the catalogue and
        // on the signed-in operations alike; nothing is read.
        for (user, other) in [
            ("alice@acme.com", "beta.com"),
            ("alice@acme.com", "carbon.super"),
            ("alice@acme.com", "nope.example"),
            ("alice", "acme.com"),
        ] {
            for path in [
                "/apis".to_string(),
                format!("/apis/{}", t.beta_pets),
                "/applications".to_string(),
                "/subscriptions".to_string(),
                "/throttling-policies/application".to_string(),
            ] {
                let (status, body) = s
                    .send(s.req(Some(user), Method::GET, &path).header("X-WSO2-Tenant", other))
                    .await;
                assert_eq!(status, 404, "[{e}] {user} naming {other} on {path}: {body}");
                assert!(
                    text(&body["description"]).contains(&format!("`{other}`")),
                    "[{e}] {body}"
                );
                assert!(body.get("list").is_none(), "[{e}] {body}");
                let (status, _) = s
                    .by(
                        user,
                        Method::GET,
                        &format!("{path}{}tenant={other}", if path.contains('?') { "&" } else { "?" }),
                        None,
                    )
                    .await;
                assert_eq!(status, 404, "[{e}] {user} ?tenant={other} on {path}");
            }
        }
        // A write naming another tenant changes nothing.
        let seq = s.seq().await;
        let (status, body) = s
            .send(
                s.req(Some("alice@acme.com"), Method::POST, "/applications")
                    .header("X-WSO2-Tenant", "beta.com")
                    .json(&json!({"name": "Elsewhere", "throttlingPolicy": "Unlimited"})),
            )
            .await;
        assert_eq!(status, 404, "[{e}] {body}");
        assert_eq!(s.seq().await, seq, "[{e}] no event");
        assert_eq!(s.app_count("alice@acme.com").await, 0, "[{e}]");

        // Another tenant's API cannot be subscribed to, even by id: the answer is the one
        // for an id that names nothing (a bad reference in the body: 400 on `apiId`).
        let app = s.create_app("alice@acme.com", "Shop").await;
        let (status, body) = s.subscribe("alice@acme.com", &app, &t.beta_pets, "Gold").await;
        assert_eq!(
            (status, fields(&body)),
            (400, vec!["apiId".to_string()]),
            "[{e}] {body}"
        );
        let nothing = uuid::Uuid::now_v7().to_string();
        let (_, none) = s.subscribe("alice@acme.com", &app, &nothing, "Gold").await;
        assert_eq!(
            text(&body["description"]).replace(&t.beta_pets, "ID"),
            text(&none["description"]).replace(&nothing, "ID"),
            "[{e}]"
        );
        let (status, body) = s.subscribe("alice@acme.com", &app, &t.acme_pets, "Gold").await;
        assert_eq!(status, 201, "[{e}] {body}");
        // A test token names its owner as they sign in, so it resolves to acme's alice.
        let (km, _, secret) = s.generate_keys("alice@acme.com", &app).await;
        let (status, token) = s
            .generate_token("alice@acme.com", &app, &km, json!({"consumerSecret": secret}))
            .await;
        assert_eq!(status, 200, "[{e}] {token}");
        assert_eq!(
            jwt_payload(&text(&token["accessToken"]))["sub"],
            "alice@acme.com",
            "[{e}]"
        );
        // The super tenant's alice does not see acme's alice's application.
        assert_eq!(s.app_count("alice").await, 0, "[{e}]");
        let (status, _) = s.by("alice", Method::GET, &format!("/applications/{app}"), None).await;
        assert_eq!(status, 404, "[{e}]");
    }
}

#[tokio::test]
async fn sign_up_goes_into_the_named_tenant_and_nowhere_else() {
    for db in all_engines("dp_tenant_signup").await {
        let s = start(&db).await;
        let e = s.engine;
        let t = two_tenants(&s).await;
        let signup = |how: Option<(&str, &str)>, body: Value| {
            let mut req = s.req(None, Method::POST, "/signup");
            if let Some(("query", d)) = how {
                req = s.req(None, Method::POST, &format!("/signup?tenant={d}"));
            } else if let Some((_, d)) = how {
                req = req.header("X-WSO2-Tenant", d);
            }
            s.send(req.json(&body))
        };

        // By header: the user, their subscriber role and DefaultApplication, all in acme.
        let seq = s.seq().await;
        let (status, body) = signup(
            Some(("header", "acme.com")),
            json!({"username": "dave", "password": "dave@acme.com-password"}),
        )
        .await;
        assert_eq!(status, 201, "[{e}] {body}");
        assert_eq!(body["username"], "dave@acme.com", "[{e}] {body}");
        assert_eq!(body["tenantDomain"], "acme.com", "[{e}] {body}");
        assert_eq!(body["roles"], json!(["subscriber"]), "[{e}] {body}");
        let dave = users::find_by_username(&s.shared, t.acme.id, "dave")
            .await
            .unwrap()
            .expect("dave in acme");
        assert_eq!(dave.roles, vec![Role::Subscriber]);
        assert!(
            users::find_by_username(&s.shared, TenantId::DEFAULT, "dave")
                .await
                .unwrap()
                .is_none(),
            "[{e}] not in the super tenant"
        );
        let events = events::read_since(&s.am, seq, 100).await.unwrap();
        assert_eq!(events.len(), 1, "[{e}] {events:?}");
        assert_eq!(events[0].kind.as_str(), "application_upserted");
        assert_eq!(events[0].tenant_id, t.acme.id, "[{e}] the event is acme's");
        let (status, apps) = s.by("dave@acme.com", Method::GET, "/applications", None).await;
        assert_eq!(status, 200, "[{e}] {apps}");
        assert_eq!(apps["list"][0]["name"], "DefaultApplication", "[{e}] {apps}");
        let (status, body) = s.by("dave@acme.com", Method::GET, "/apis", None).await;
        assert_eq!((status, ids(&body)), (200, vec![t.acme_pets.clone()]), "[{e}] {body}");
        // `dave` (the super tenant's name) is nobody.
        assert_eq!(s.by("dave", Method::GET, "/applications", None).await.0, 401);

        // By query, the same name in another tenant; by a qualified name, without either.
        let (status, body) = signup(
            Some(("query", "beta.com")),
            json!({"username": "dave", "password": "dave@beta.com-password"}),
        )
        .await;
        assert_eq!(
            (status, text(&body["username"])),
            (201, "dave@beta.com".into()),
            "[{e}] {body}"
        );
        let (status, body) = signup(
            None,
            json!({"username": "erin@acme.com", "password": "erin@acme.com-password"}),
        )
        .await;
        assert_eq!(
            (status, text(&body["username"])),
            (201, "erin@acme.com".into()),
            "[{e}] {body}"
        );
        assert!(
            users::find_by_username(&s.shared, t.acme.id, "erin")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(s.app_count("erin@acme.com").await, 1, "[{e}]");
        // Both: they must agree; a name whose domain is no tenant is part of the name.
        let (status, body) = signup(
            Some(("header", "acme.com")),
            json!({"username": "gus@acme.com", "password": "gus@acme.com-password"}),
        )
        .await;
        assert_eq!(
            (status, text(&body["username"])),
            (201, "gus@acme.com".into()),
            "[{e}] {body}"
        );
        let (status, body) = signup(
            Some(("header", "acme.com")),
            json!({"username": "hal@mail.example", "password": "hal@mail.example@acme.com-password"}),
        )
        .await;
        assert_eq!(
            (status, text(&body["username"])),
            (201, "hal@mail.example@acme.com".into()),
            "[{e}] {body}"
        );
        assert_eq!(s.app_count("hal@mail.example@acme.com").await, 1, "[{e}]");

        // Refused: nothing created anywhere, no event.
        tenants::set_active(&s.shared, t.beta.id, false).await.unwrap();
        let counts = || async {
            (
                s.users_of(TenantId::DEFAULT).await,
                s.users_of(t.acme.id).await,
                s.users_of(t.beta.id).await,
            )
        };
        let (before, seq) = (counts().await, s.seq().await);
        for (how, body, status, needle) in [
            (
                Some(("header", "nope.example")),
                json!({"username": "ivy"}),
                404,
                "`nope.example`",
            ),
            (
                Some(("query", "nope.example")),
                json!({"username": "ivy"}),
                404,
                "`nope.example`",
            ),
            (
                Some(("header", "beta.com")),
                json!({"username": "ivy"}),
                404,
                "`beta.com`",
            ),
            (None, json!({"username": "ivy@beta.com"}), 404, "`beta.com`"),
            (
                Some(("header", "acme.com")),
                json!({"username": "ivy@beta.com"}),
                400,
                "username",
            ),
            (
                Some(("header", "carbon.super")),
                json!({"username": "ivy@acme.com"}),
                400,
                "username",
            ),
            (Some(("header", "acme.com")), json!({"username": "dave"}), 409, "dave"),
            (Some(("header", "acme.com")), json!({"username": "DAVE"}), 409, "DAVE"),
            (
                Some(("header", "acme.com")),
                json!({"username": "ivy", "password": "short"}),
                400,
                "password",
            ),
            (
                Some(("header", "acme.com")),
                json!({"username": "bad name!"}),
                400,
                "username",
            ),
        ] {
            let mut body = body;
            if body.get("password").is_none() {
                body["password"] = json!("ivy-password");
            }
            let (got, answer) = signup(how, body.clone()).await;
            assert_eq!(got, status, "[{e}] {how:?} {body}: {answer}");
            assert!(answer.to_string().contains(needle), "[{e}] {how:?} {body}: {answer}");
        }
        // Two tenants named by the request itself.
        let (status, body) = s
            .send(
                s.req(None, Method::POST, "/signup?tenant=beta.com")
                    .header("X-WSO2-Tenant", "acme.com")
                    .json(&json!({"username": "ivy", "password": "ivy-password"})),
            )
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(counts().await, before, "[{e}] nobody was created");
        assert_eq!(s.seq().await, seq, "[{e}] no event");
        assert!(
            users::find_by_username(&s.shared, t.beta.id, "ivy")
                .await
                .unwrap()
                .is_none()
                && users::find_by_username(&s.shared, t.acme.id, "ivy")
                    .await
                    .unwrap()
                    .is_none(),
            "[{e}]"
        );
        // A deactivated tenant's users cannot sign in either; reactivated, they can.
        assert_eq!(s.by("dave@beta.com", Method::GET, "/applications", None).await.0, 401);
        tenants::set_active(&s.shared, t.beta.id, true).await.unwrap();
        assert_eq!(s.app_count("dave@beta.com").await, 1, "[{e}]");
    }
}
