//! Tenants at the key manager: two tenants with the same user names (`admin`, `alice`)
//! and the same application names. Every token's `sub` is the user's qualified name
//! (`alice@acme.com`; bare in the super tenant), built-in clients serve every tenant, an
//! application's client only its own, refresh and code exchange keep the tenant, and a
//! deactivated tenant's grants are refused and its tokens inactive until reactivation.

use super::*;
use tollgate_model::{Principal, Tenant};
use tollgate_store::tenants::{self, NewTenant};
use tollgate_tokens::KeyType;
use tollgate_tokens::cli_client::CLI_CLIENT_ID;
use tollgate_tokens::portals_client::{PORTALS_CALLBACK, PORTALS_CLIENT_ID};

/// The second tenant and its clients, next to the super tenant's (`Km`'s, plus `admin`
/// and `alice` there). Passwords are `{qualified name}-password`.
struct Acme {
    tenant: Tenant,
    /// acme.com's JWT application `main` (the super tenant has one of the same name),
    /// owned by acme.com's `alice`, with every grant.
    main: Client,
    /// acme.com's opaque-token application, owned by acme.com's `alice`.
    opaque: Client,
    /// The super tenant's application `shop`, owned by the super tenant's `alice`.
    super_shop: Client,
    /// acme.com's application `shop`, owned by acme.com's `alice`.
    shop: Client,
}

#[allow(clippy::too_many_arguments)]
async fn register_in(
    tx: &mut Tx,
    service: &TokenService,
    tenant: TenantId,
    id: &str,
    name: &str,
    owner: &str,
    token_type: &str,
    grants: &str,
) -> Client {
    let now = now_millis();
    let app = ApplicationRow {
        id: id.into(),
        name: name.into(),
        owner: owner.into(),
        throttling_policy: "Unlimited".into(),
        description: None,
        token_type: token_type.into(),
        status: "APPROVED".into(),
        attributes: "{}".into(),
    };
    applications::insert(tx, tenant, &app, now).await.unwrap();
    let client = Client {
        id: random_token(16).unwrap(),
        secret: random_token(32).unwrap(),
    };
    let key = KeyRow {
        id: format!("keys-{id}"),
        application_id: app.id,
        key_type: "PRODUCTION".into(),
        key_manager: RESIDENT_KEY_MANAGER.into(),
        mode: "CREATED".into(),
        consumer_key: client.id.clone(),
        secret_hash: Some(service.hash(&client.secret)),
        grant_types: grants.into(),
        callback_url: Some(CALLBACK.into()),
        scopes: "[]".into(),
        validity_seconds: 0,
    };
    keys::insert(tx, tenant, &key, now).await.unwrap();
    client
}

async fn add_user(km: &Km, tenant: &Tenant, username: &str, roles: Vec<Role>) {
    let qualified = tenant.qualify(username);
    users::create(
        &km.shared,
        NewUser {
            tenant_id: tenant.id,
            username: username.into(),
            password: password(&qualified),
            email: Some(format!("{username}@{}.example", tenant.domain.replace('.', "-"))),
            roles,
        },
    )
    .await
    .unwrap();
}

/// Adds `admin` (administrator) and `alice` (subscriber) to the super tenant, and the
/// tenant `acme.com` with its `admin` and an `alice` who is a creator and publisher
/// there, its applications, and a shared scope `orders:read` only acme.com has.
async fn with_acme(km: &Km) -> Acme {
    let carbon = tenants::get(&km.shared, TenantId::DEFAULT).await.unwrap().unwrap();
    add_user(km, &carbon, "admin", vec![Role::Admin]).await;
    add_user(km, &carbon, "alice", vec![Role::Subscriber]).await;
    let (tenant, _) = tenants::create(
        &km.shared,
        NewTenant {
            domain: "acme.com".into(),
            name: "Acme".into(),
            admin_username: "admin".into(),
            admin_password: password("admin@acme.com"),
            admin_email: Some("admin@acme-com.example".into()),
        },
    )
    .await
    .unwrap();
    tenants::provision(&km.am, &tenant).await.unwrap();
    add_user(km, &tenant, "alice", vec![Role::Creator, Role::Publisher]).await;
    let mut tx = km.am.begin().await.unwrap();
    let main = register_in(
        &mut tx,
        &km.service,
        tenant.id,
        "acme-main",
        "main",
        "alice",
        "JWT",
        ALL_GRANTS,
    )
    .await;
    let opaque = register_in(
        &mut tx,
        &km.service,
        tenant.id,
        "acme-opaque",
        "opaque",
        "alice",
        "OAUTH",
        ALL_GRANTS,
    )
    .await;
    let super_shop = register_in(
        &mut tx,
        &km.service,
        TenantId::DEFAULT,
        "super-shop",
        "shop",
        "alice",
        "JWT",
        ALL_GRANTS,
    )
    .await;
    let shop = register_in(
        &mut tx,
        &km.service,
        tenant.id,
        "acme-shop",
        "shop",
        "alice",
        "JWT",
        ALL_GRANTS,
    )
    .await;
    let scope = tollgate_model::api::Scope {
        id: None,
        name: "orders:read".into(),
        display_name: None,
        description: None,
        bindings: vec!["publisher".into()],
    };
    tollgate_store::scopes::insert(&mut tx, tenant.id, "scope-orders", &scope, now_millis())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Acme {
        tenant,
        main,
        opaque,
        super_shop,
        shop,
    }
}

/// Activates or deactivates a tenant as the Admin API does: the shared database, then
/// the AM side's copy.
async fn set_active(km: &Km, tenant: &Tenant, active: bool) {
    assert!(tenants::set_active(&km.shared, tenant.id, active).await.unwrap());
    let now = tenants::get(&km.shared, tenant.id).await.unwrap().unwrap();
    tenants::provision(&km.am, &now).await.unwrap();
}

/// A JWT's payload.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn scopes_of(body: &Value) -> Vec<String> {
    body["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn count_sql(table: &str) -> String {
    format!("SELECT COUNT(*) FROM {table}")
}

impl Km {
    /// Introspects as a node of the cluster (any client's tokens).
    async fn node_introspect(&self, token: &str) -> Value {
        let r = self
            .send(
                self.http
                    .post(self.url("/oauth2/introspect"))
                    .bearer_auth(CLUSTER_SECRET)
                    .form(&[("token", token)]),
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", self.engine, r.text);
        r.body
    }

    /// A password grant through the CLI's built-in public client (no secret).
    async fn cli_password(&self, user: &str, pw: &str, scope: Option<&str>) -> Reply {
        let mut params = vec![
            ("grant_type", "password"),
            ("client_id", CLI_CLIENT_ID),
            ("username", user),
            ("password", pw),
        ];
        if let Some(s) = scope {
            params.push(("scope", s));
        }
        self.form("/oauth2/token", None, &params).await
    }

    /// A refresh through a public built-in client.
    async fn public_refresh(&self, client_id: &str, refresh: &str) -> Reply {
        self.form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh),
            ],
        )
        .await
    }

    /// The REST APIs' bearer path: who the token acts for.
    async fn principal(&self, token: &str) -> Result<Principal, tollgate_model::Error> {
        tollgate_http::Authenticator::new(self.shared.clone())
            .with_tokens(self.service.clone())
            .authenticate(Some(&format!("Bearer {token}")))
            .await
    }

    async fn userinfo(&self, token: &str) -> Reply {
        self.send(self.http.get(self.url("/oauth2/userinfo")).bearer_auth(token))
            .await
    }

    /// Rows in the key manager's tables that a grant writes.
    async fn written(&self) -> [i64; 4] {
        let mut out = [0; 4];
        for (i, table) in ["oauth_tokens", "authorization_codes", "revocations", "events"]
            .iter()
            .enumerate()
        {
            let sql = count_sql(table);
            out[i] = match self.am.reader() {
                Pool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(p).await.unwrap(),
                Pool::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(p).await.unwrap(),
            };
        }
        out
    }

    /// Posts the portals' login page for `user`, with PKCE over `verifier`.
    async fn portals_login(&self, user: &str, pw: &str, verifier: &str) -> Reply {
        let ch = challenge(verifier);
        let form = [
            ("response_type", "code"),
            ("client_id", PORTALS_CLIENT_ID),
            ("redirect_uri", PORTALS_CALLBACK),
            ("state", "st-1"),
            ("code_challenge", ch.as_str()),
            ("code_challenge_method", "S256"),
            ("username", user),
            ("password", pw),
        ];
        self.send(self.http.post(self.url("/oauth2/authorize")).form(&form))
            .await
    }

    /// The portals' login page for `user`, with any verifier (its answer, not followed).
    async fn portals_sign_in_page(&self, user: &str, pw: &str) -> Reply {
        self.portals_login(user, pw, &"v".repeat(43)).await
    }

    /// Signs `user` in to the portals through the login page and exchanges the code with
    /// the portals' public client; the token response.
    async fn portals_sign_in(&self, user: &str) -> Reply {
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let r = self.portals_login(user, &password(user), &verifier).await;
        assert_eq!(r.status, 302, "{}: {}", self.engine, r.text);
        let location = format!("http://x{}", r.header(LOCATION).unwrap());
        let q: HashMap<String, String> = reqwest::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        let code = q.get("code").unwrap_or_else(|| panic!("no code in {location}"));
        self.form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", PORTALS_CLIENT_ID),
                ("redirect_uri", PORTALS_CALLBACK),
                ("code", code),
                ("code_verifier", &verifier),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn the_cli_client_signs_in_a_tenants_user_by_qualified_name_with_that_tenants_roles() {
    for db in all_engines("km_tenant_cli").await {
        let km = start(&db).await;
        let acme = with_acme(&km).await;

        // acme.com's alice is a creator and publisher there; the super tenant's a subscriber.
        let r = km
            .cli_password("alice@acme.com", &password("alice@acme.com"), None)
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let scopes = scopes_of(&r.body);
        assert!(scopes.contains(&"apim:api_create".into()), "{scopes:?}");
        assert!(scopes.contains(&"apim:api_publish".into()), "{scopes:?}");
        assert!(
            !scopes.iter().any(|s| s == "apim:subscribe" || s == "apim:admin"),
            "{scopes:?}"
        );
        let token = r.body["access_token"].as_str().unwrap().to_string();
        let refresh = r.body["refresh_token"].as_str().unwrap().to_string();
        let i = km.node_introspect(&token).await;
        assert_eq!(i["active"], true, "{}: {i}", km.engine);
        assert_eq!(i["sub"], "alice@acme.com");
        assert_eq!(i["username"], "alice@acme.com", "introspection names the tenant");
        let p = km.principal(&token).await.unwrap();
        assert_eq!(
            (p.tenant_id, p.username.as_str(), p.tenant_domain.as_str()),
            (acme.tenant.id, "alice", "acme.com")
        );

        // The super tenant's alice: same name, her own password, roles and bare subject.
        let r = km.cli_password("alice", &password("alice"), None).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let scopes = scopes_of(&r.body);
        assert!(scopes.contains(&"apim:subscribe".into()) && !scopes.contains(&"apim:api_create".into()));
        let i = km.node_introspect(r.body["access_token"].as_str().unwrap()).await;
        assert_eq!(
            (i["sub"].as_str(), i["username"].as_str()),
            (Some("alice"), Some("alice"))
        );
        // Neither password opens the other tenant's alice.
        let r = km.cli_password("alice@acme.com", &password("alice"), None).await;
        km.expect_error(&r, 400, "invalid_grant");
        let r = km.cli_password("alice", &password("alice@acme.com"), None).await;
        km.expect_error(&r, 400, "invalid_grant");

        // acme.com's admin never acts as the super tenant's admin.
        let r = km
            .cli_password("admin@acme.com", &password("admin@acme.com"), None)
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let p = km.principal(r.body["access_token"].as_str().unwrap()).await.unwrap();
        assert_eq!(
            (p.tenant_id, p.qualified_name()),
            (acme.tenant.id, "admin@acme.com".to_string())
        );
        assert_ne!(p.tenant_id, TenantId::DEFAULT);
        let r = km.cli_password("admin", &password("admin"), None).await;
        let p = km.principal(r.body["access_token"].as_str().unwrap()).await.unwrap();
        assert_eq!(
            (p.tenant_id, p.qualified_name()),
            (TenantId::DEFAULT, "admin".to_string())
        );

        // A requested scope is granted from the user's tenant: acme.com's shared scope.
        let r = km
            .cli_password("alice@acme.com", &password("alice@acme.com"), Some("orders:read"))
            .await;
        assert_eq!(
            (r.status, r.body["scope"].as_str()),
            (200, Some("orders:read")),
            "{}",
            r.text
        );
        let r = km.cli_password("alice", &password("alice"), Some("orders:read")).await;
        km.expect_error(&r, 400, "invalid_scope");
        let r = km
            .cli_password("alice@acme.com", &password("alice@acme.com"), Some("apim:subscribe"))
            .await;
        km.expect_error(&r, 400, "invalid_scope");

        // Refreshing keeps the tenant, and re-checks the user there: disabling the super
        // tenant's alice does not touch acme.com's, disabling acme.com's does.
        let super_alice = users::find_by_username(&km.shared, TenantId::DEFAULT, "alice")
            .await
            .unwrap()
            .unwrap();
        users::update_access(&km.shared, &super_alice, None, Some(false))
            .await
            .unwrap();
        let r = km.public_refresh(CLI_CLIENT_ID, &refresh).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let i = km.node_introspect(r.body["access_token"].as_str().unwrap()).await;
        assert_eq!(
            (i["active"].as_bool(), i["sub"].as_str()),
            (Some(true), Some("alice@acme.com"))
        );
        let refresh = r.body["refresh_token"].as_str().unwrap().to_string();
        let acme_alice = users::find_by_username(&km.shared, acme.tenant.id, "alice")
            .await
            .unwrap()
            .unwrap();
        users::update_access(&km.shared, &acme_alice, None, Some(false))
            .await
            .unwrap();
        let r = km.public_refresh(CLI_CLIENT_ID, &refresh).await;
        km.expect_error(&r, 400, "invalid_grant");
        assert!(
            r.body["error_description"].as_str().unwrap().contains("alice@acme.com"),
            "{}",
            r.text
        );
    }
}

#[tokio::test]
async fn an_applications_client_serves_only_its_own_tenants_users() {
    for db in all_engines("km_tenant_app_client").await {
        let km = start(&db).await;
        let acme = with_acme(&km).await;
        let grant = async |client: &Client, user: &str| {
            let pw = password(user);
            km.token(
                client,
                &[("grant_type", "password"), ("username", user), ("password", &pw)],
            )
            .await
        };
        // Each tenant's `shop` takes its own alice, and only her.
        let r = grant(&acme.shop, "alice@acme.com").await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let claims = claims_of(r.body["access_token"].as_str().unwrap());
        assert_eq!(
            (claims["sub"].as_str(), claims["application"]["name"].as_str()),
            (Some("alice@acme.com"), Some("shop"))
        );
        let r = grant(&acme.super_shop, "alice").await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(claims_of(r.body["access_token"].as_str().unwrap())["sub"], "alice");
        for (client, user) in [
            (&acme.shop, "alice"),
            (&acme.shop, "admin"),
            (&acme.super_shop, "alice@acme.com"),
            (&km.main, "admin@acme.com"),
        ] {
            let r = grant(client, user).await;
            km.expect_error(&r, 400, "invalid_grant");
            assert_eq!(
                r.body["error_description"], "wrong username or password",
                "{user}: {}",
                r.text
            );
        }
        // The login page of acme.com's application refuses a super-tenant user, and takes
        // acme.com's; the code's tokens act for her.
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let ch = challenge(&verifier);
        let mut form = vec![
            ("response_type", "code"),
            ("client_id", acme.main.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_challenge", ch.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let pw = password("alice");
        form.extend([("username", "alice"), ("password", pw.as_str())]);
        let r = km.send(km.http.post(km.url("/oauth2/authorize")).form(&form)).await;
        assert_eq!((r.status, r.header(LOCATION)), (401, None), "{}: {}", km.engine, r.text);
        assert!(r.text.contains("Wrong username or password"), "{}", r.text);
    }
}

#[tokio::test]
async fn client_credentials_act_for_the_owner_qualified_with_the_applications_tenant() {
    for db in all_engines("km_tenant_cc").await {
        let km = start(&db).await;
        let acme = with_acme(&km).await;
        // Two applications named `main`, one per tenant.
        let r = km.token(&acme.main, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let token = r.body["access_token"].as_str().unwrap();
        assert_eq!(claims_of(token)["sub"], "alice@acme.com");
        let i = km.introspect(&acme.main, token).await;
        assert_eq!(
            (i["sub"].as_str(), i["application"]["name"].as_str()),
            (Some("alice@acme.com"), Some("main"))
        );
        // The owner's roles in acme.com bind its shared scope.
        let r = km
            .token(
                &acme.main,
                &[("grant_type", "client_credentials"), ("scope", "orders:read")],
            )
            .await;
        assert_eq!(
            (r.status, r.body["scope"].as_str()),
            (200, Some("orders:read")),
            "{}",
            r.text
        );
        let r = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        let token = r.body["access_token"].as_str().unwrap();
        assert_eq!(claims_of(token)["sub"], "dev", "super-tenant tokens are unchanged");
        // Opaque tokens too.
        let r = km.token(&acme.opaque, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let i = km
            .introspect(&acme.opaque, r.body["access_token"].as_str().unwrap())
            .await;
        assert_eq!(
            (i["active"].as_bool(), i["sub"].as_str()),
            (Some(true), Some("alice@acme.com"))
        );
        // The owner's tenant is the application's: without acme.com's alice, no token,
        // although the super tenant has an `alice`.
        let acme_alice = users::find_by_username(&km.shared, acme.tenant.id, "alice")
            .await
            .unwrap()
            .unwrap();
        assert!(users::delete(&km.shared, &acme_alice).await.unwrap());
        let r = km.token(&acme.main, &[("grant_type", "client_credentials")]).await;
        km.expect_error(&r, 400, "invalid_grant");
        // API keys act for the qualified owner as well.
        let app = applications::get(&km.am, acme.tenant.id, "acme-shop")
            .await
            .unwrap()
            .unwrap();
        let mut tx = km.am.begin().await.unwrap();
        let (key, _) = km
            .service
            .issue_api_key(&mut tx, acme.tenant.id, &app.app, KeyType::Production, "k", None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(claims_of(&key)["sub"], "alice@acme.com");
        let i = km.node_introspect(&key).await;
        assert_eq!(
            (i["active"].as_bool(), i["sub"].as_str()),
            (Some(true), Some("alice@acme.com"))
        );
    }
}

#[tokio::test]
async fn codes_refresh_tokens_and_userinfo_keep_the_users_tenant() {
    for db in all_engines("km_tenant_code").await {
        let km = start(&db).await;
        let acme = with_acme(&km).await;
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let code = km.authorization_code(&acme.main, "alice@acme.com", &verifier).await;
        let r = km
            .token(
                &acme.main,
                &[
                    ("grant_type", "authorization_code"),
                    ("redirect_uri", CALLBACK),
                    ("code", &code),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let access = r.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(claims_of(&access)["sub"], "alice@acme.com");
        assert_eq!(claims_of(r.body["id_token"].as_str().unwrap())["sub"], "alice@acme.com");
        let refresh = r.body["refresh_token"].as_str().unwrap().to_string();
        let r = km
            .token(
                &acme.main,
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(
            claims_of(r.body["access_token"].as_str().unwrap())["sub"],
            "alice@acme.com"
        );

        // Userinfo speaks of acme.com's alice (her email, not the super tenant's alice's).
        let r = km
            .token(
                &acme.main,
                &[
                    ("grant_type", "password"),
                    ("username", "alice@acme.com"),
                    ("password", &password("alice@acme.com")),
                    ("scope", "openid email"),
                ],
            )
            .await;
        let u = km.userinfo(r.body["access_token"].as_str().unwrap()).await;
        assert_eq!(u.status, 200, "{}: {}", km.engine, u.text);
        assert_eq!(u.body["sub"], "alice@acme.com");
        assert_eq!(u.body["preferred_username"], "alice@acme.com");
        assert_eq!(u.body["email"], "alice@acme-com.example");
        let r = km
            .token(
                &acme.super_shop,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", &password("alice")),
                    ("scope", "openid email"),
                ],
            )
            .await;
        let u = km.userinfo(r.body["access_token"].as_str().unwrap()).await;
        assert_eq!(
            (u.body["sub"].as_str(), u.body["email"].as_str()),
            (Some("alice"), Some("alice@carbon-super.example"))
        );

        // The portals' client serves every tenant: a session in acme.com with acme.com's roles.
        let r = km.portals_sign_in("alice@acme.com").await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert!(scopes_of(&r.body).contains(&"apim:api_create".into()), "{}", r.text);
        let i = km.node_introspect(r.body["access_token"].as_str().unwrap()).await;
        assert_eq!(i["sub"], "alice@acme.com");
        let r = km
            .public_refresh(PORTALS_CLIENT_ID, r.body["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let p = km.principal(r.body["access_token"].as_str().unwrap()).await.unwrap();
        assert_eq!((p.tenant_id, p.username.as_str()), (acme.tenant.id, "alice"));
        let r = km.portals_sign_in("admin").await;
        let p = km.principal(r.body["access_token"].as_str().unwrap()).await.unwrap();
        assert_eq!((p.tenant_id, p.username.as_str()), (TenantId::DEFAULT, "admin"));
    }
}

#[tokio::test]
async fn a_deactivated_tenant_gets_no_tokens_and_its_tokens_stay_inactive_until_reactivated() {
    for db in all_engines("km_tenant_deactivated").await {
        let km = start(&db).await;
        let acme = with_acme(&km).await;
        // Tokens of every kind, before deactivation.
        let jwt = km.token(&acme.main, &[("grant_type", "client_credentials")]).await;
        let jwt = jwt.body["access_token"].as_str().unwrap().to_string();
        let cli = km
            .cli_password("alice@acme.com", &password("alice@acme.com"), None)
            .await;
        let opaque = cli.body["access_token"].as_str().unwrap().to_string();
        let refresh = cli.body["refresh_token"].as_str().unwrap().to_string();
        let app = applications::get(&km.am, acme.tenant.id, "acme-main")
            .await
            .unwrap()
            .unwrap();
        let mut tx = km.am.begin().await.unwrap();
        let (api_key, _) = km
            .service
            .issue_api_key(&mut tx, acme.tenant.id, &app.app, KeyType::Production, "k", None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let super_token = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        let super_token = super_token.body["access_token"].as_str().unwrap().to_string();
        for t in [&jwt, &opaque, &api_key, &super_token] {
            assert_eq!(km.node_introspect(t).await["active"], true, "{}", km.engine);
        }

        set_active(&km, &acme.tenant, false).await;
        let says_deactivated = |r: &Reply| {
            assert!(
                r.body["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains("acme.com") && d.contains("deactivated")),
                "{}: {}",
                km.engine,
                r.text
            );
        };
        // Its applications' clients, and its users through any client, are refused.
        let r = km.token(&acme.main, &[("grant_type", "client_credentials")]).await;
        km.expect_error(&r, 401, "invalid_client");
        says_deactivated(&r);
        let pw = password("alice@acme.com");
        let r = km
            .token(
                &acme.main,
                &[
                    ("grant_type", "password"),
                    ("username", "alice@acme.com"),
                    ("password", &pw),
                ],
            )
            .await;
        km.expect_error(&r, 401, "invalid_client");
        says_deactivated(&r);
        let r = km.cli_password("alice@acme.com", &pw, None).await;
        km.expect_error(&r, 400, "invalid_grant");
        says_deactivated(&r);
        let r = km.public_refresh(CLI_CLIENT_ID, &refresh).await;
        km.expect_error(&r, 400, "invalid_grant");
        says_deactivated(&r);
        // The login pages say so too.
        let page = km
            .send(km.http.get(km.url("/oauth2/authorize")).query(&[
                ("response_type", "code"),
                ("client_id", acme.main.id.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_challenge", &challenge("v".repeat(43).as_str())),
                ("code_challenge_method", "S256"),
            ]))
            .await;
        assert_eq!(page.status, 400, "{}: {}", km.engine, page.text);
        assert!(page.text.contains("deactivated"), "{}", page.text);
        let r = km.portals_sign_in_page("alice@acme.com", &pw).await;
        assert_eq!((r.status, r.header(LOCATION)), (401, None), "{}: {}", km.engine, r.text);
        assert!(r.text.contains("deactivated"), "{}", r.text);
        // Its tokens are inactive everywhere; the super tenant's are not.
        for t in [&jwt, &opaque, &api_key] {
            assert_eq!(km.node_introspect(t).await["active"], false, "{}", km.engine);
        }
        assert_eq!(km.introspect(&acme.main, &jwt).await["active"], false);
        assert!(km.principal(&opaque).await.is_err());
        assert_eq!(km.userinfo(&jwt).await.status, 401);
        assert_eq!(km.node_introspect(&super_token).await["active"], true);
        let r = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);

        // Reactivation: nothing was deleted, the same tokens work again.
        set_active(&km, &acme.tenant, true).await;
        for t in [&jwt, &opaque, &api_key] {
            assert_eq!(km.node_introspect(t).await["active"], true, "{}", km.engine);
        }
        let p = km.principal(&opaque).await.unwrap();
        assert_eq!(p.tenant_id, acme.tenant.id);
        let r = km.public_refresh(CLI_CLIENT_ID, &refresh).await;
        assert_eq!(r.status, 200, "the refused refresh did not spend it: {}", r.text);
        let r = km.token(&acme.main, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
    }
}

#[tokio::test]
async fn malformed_and_unknown_names_get_clear_oauth_errors_and_change_nothing() {
    for db in all_engines("km_tenant_bad_names").await {
        let km = start(&db).await;
        let acme = with_acme(&km).await;
        let before = km.written().await;
        let pw = password("alice@acme.com");
        for (name, hint) in [
            ("@acme.com", true),
            ("alice@", true),
            ("alice@unknown.example", false),
            ("alice@ACME.COM", false),
            ("alice@acme.com@acme.com", false),
            ("alice@carbon.super", false),
        ] {
            let r = km.cli_password(name, &pw, None).await;
            km.expect_error(&r, 400, "invalid_grant");
            let d = r.body["error_description"].as_str().unwrap();
            assert!(d.starts_with("wrong username or password"), "{name}: {d}");
            assert_eq!(d.contains("name@tenant-domain"), hint, "{name}: {d}");
            let r = km
                .token(
                    &acme.main,
                    &[("grant_type", "password"), ("username", name), ("password", &pw)],
                )
                .await;
            km.expect_error(&r, 400, "invalid_grant");
        }
        let r = km.cli_password("", &pw, None).await;
        km.expect_error(&r, 400, "invalid_request");
        assert_eq!(
            km.written().await,
            before,
            "{}: refused grants wrote nothing",
            km.engine
        );
        // Still possible afterwards, for the right name.
        let r = km.cli_password("alice@acme.com", &pw, None).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
    }
}

#[tokio::test]
async fn the_token_service_refuses_to_issue_a_subject_of_another_tenant() {
    for db in all_engines("km_tenant_service").await {
        let km = start(&db).await;
        let acme = with_acme(&km).await;
        let auth = tollgate_tokens::ClientAuth {
            client_id: acme.main.id.clone(),
            client_secret: acme.main.secret.clone(),
        };
        let client = km.service.authenticate_client(&auth).await.unwrap();
        let issue = async |username: &str| {
            km.service
                .issue(tollgate_tokens::IssueRequest {
                    client: &client,
                    username,
                    scopes: &[],
                    grant_type: "client_credentials",
                    with_refresh_token: false,
                    validity: None,
                    nonce: None,
                })
                .await
        };
        // A bare name is the super tenant's user: never in acme.com's client's token.
        for wrong in ["alice", "dev", "alice@unknown.example"] {
            let e = issue(wrong).await.unwrap_err();
            assert!(matches!(e, tollgate_tokens::Error::WrongTenant(_)), "{wrong}: {e}");
        }
        assert!(issue("alice@acme.com").await.is_ok());
        // The built-in clients' tokens are in their user's tenant.
        let portals = tollgate_tokens::portals_client::client();
        let issued = km
            .service
            .issue(tollgate_tokens::IssueRequest {
                client: &portals,
                username: "alice@acme.com",
                scopes: &[],
                grant_type: "authorization_code",
                with_refresh_token: true,
                validity: None,
                nonce: None,
            })
            .await
            .unwrap();
        let grant = km
            .service
            .refresh_token_grant(&portals, issued.refresh_token.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(
            (grant.tenant, grant.subject.as_str()),
            (acme.tenant.id, "alice@acme.com")
        );

        // Revoking a user's tokens names them qualified: acme.com's alice loses hers, the
        // super tenant's alice keeps hers.
        let super_alice = km.cli_password("alice", &password("alice"), None).await;
        let super_alice = super_alice.body["access_token"].as_str().unwrap().to_string();
        let acme_alice = km.token(&acme.main, &[("grant_type", "client_credentials")]).await;
        let acme_alice = acme_alice.body["access_token"].as_str().unwrap().to_string();
        let mut tx = km.am.begin().await.unwrap();
        tollgate_tokens::revoke_user_tokens(&mut tx, acme.tenant.id, "alice")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(km.node_introspect(&acme_alice).await["active"], false);
        assert_eq!(km.node_introspect(issued.access_token.as_str()).await["active"], false);
        assert_eq!(km.node_introspect(&super_alice).await["active"], true);
        let sql = "SELECT subject FROM revocations WHERE kind = 'user'";
        let subjects: Vec<String> = match km.am.reader() {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
        };
        assert_eq!(subjects, ["alice@acme.com"]);
        let events = tollgate_store::events::read_since(&km.am, 0, 1000).await.unwrap();
        let revoked = events.iter().rev().find(|e| e.kind == EventKind::TokenRevoked).unwrap();
        assert_eq!(
            revoked.tenant_id, acme.tenant.id,
            "the revocation goes to acme.com's gateways"
        );
        assert_eq!(revoked.payload["subject"], "alice@acme.com");
    }
}

#[tokio::test]
async fn a_tenant_the_am_side_does_not_know_yet_gets_no_tokens_until_provisioned() {
    for db in all_engines("km_tenant_unprovisioned").await {
        let km = start(&db).await;
        // Created in the shared database only, as when provisioning failed half-way.
        let (tenant, _) = tenants::create(
            &km.shared,
            NewTenant {
                domain: "globex.com".into(),
                name: String::new(),
                admin_username: "admin".into(),
                admin_password: password("admin@globex.com"),
                admin_email: None,
            },
        )
        .await
        .unwrap();
        let before = km.written().await;
        let pw = password("admin@globex.com");
        let r = km.cli_password("admin@globex.com", &pw, None).await;
        km.expect_error(&r, 503, "temporarily_unavailable");
        assert!(r.text.contains("globex.com"), "{}", r.text);
        let r = km.portals_sign_in_page("admin@globex.com", &pw).await;
        assert_eq!((r.status, r.header(LOCATION)), (503, None), "{}: {}", km.engine, r.text);
        assert_eq!(
            km.written().await,
            before,
            "{}: no token filed under another tenant",
            km.engine
        );
        tenants::provision(&km.am, &tenant).await.unwrap();
        let r = km.cli_password("admin@globex.com", &pw, None).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let i = km.node_introspect(r.body["access_token"].as_str().unwrap()).await;
        assert_eq!(i["sub"], "admin@globex.com");
    }
}
