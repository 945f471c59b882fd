//! Store tests against real databases: every test body runs on SQLite and, when a server
//! is reachable, on a fresh PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tollgate_config::DatabaseConfig;
use tollgate_events::control::PolicyChange;
use tollgate_events::{ControlEvent, EventKind, NewEvent};
use tollgate_model::{NewUser, Role, TenantId};
use tollgate_store::users::Bootstrap;
use tollgate_store::{Database, DatabaseName, connect, events, tenants, users};
use tollgate_testkit::{TestDb, all_engines};

async fn open(test_db: &TestDb, name: DatabaseName) -> Database {
    let db = connect(name, test_db.url(), &DatabaseConfig::default()).await.unwrap();
    db.migrate().await.unwrap();
    db
}

fn new_user(username: &str, password: &str, roles: &[Role]) -> NewUser {
    NewUser {
        tenant_id: TenantId::DEFAULT,
        username: username.into(),
        password: password.into(),
        email: None,
        roles: roles.to_vec(),
    }
}

async fn super_tenant(db: &Database) -> tollgate_model::Tenant {
    tenants::get(db, TenantId::DEFAULT).await.unwrap().unwrap()
}

fn new_tenant(domain: &str, admin: &str) -> tenants::NewTenant {
    tenants::NewTenant {
        domain: domain.into(),
        name: String::new(),
        admin_username: admin.into(),
        admin_password: format!("{admin}-password"),
        admin_email: Some(format!("{admin}@{domain}")),
    }
}

#[tokio::test]
async fn tenants_are_created_whole_named_uniquely_and_keep_their_users_apart() {
    for t in all_engines("tenants").await {
        let shared = open(&t, DatabaseName::Shared).await;
        let am_db = t.sibling("am").await;
        let am = open(&am_db, DatabaseName::Am).await;
        let engine = t.engine();
        let (acme, admin) = tenants::create(&shared, new_tenant("acme.com", "admin")).await.unwrap();
        assert!(acme.active && !acme.is_super(), "{engine}");
        assert_eq!(acme.name, "acme.com");
        assert_eq!(admin.roles, vec![Role::Admin]);
        // The same administrator name exists in both tenants, with its own password.
        users::ensure_admin(&shared, "admin", Some("super-password"))
            .await
            .unwrap();
        assert!(
            users::authenticate(&shared, &acme, "admin", "admin-password")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            users::authenticate(&shared, &acme, "admin", "super-password")
                .await
                .unwrap()
                .is_none()
        );
        let sup = super_tenant(&shared).await;
        assert!(
            users::authenticate(&shared, &sup, "admin", "admin-password")
                .await
                .unwrap()
                .is_none()
        );

        // A taken domain and bad fields write nothing.
        let dup = tenants::create(&shared, new_tenant("acme.com", "root"))
            .await
            .unwrap_err();
        assert!(dup.to_string().contains("already exists"), "{engine}: {dup}");
        let bad = tenants::create(
            &shared,
            tenants::NewTenant {
                admin_password: "x".into(),
                ..new_tenant("Bad_Domain", "a b")
            },
        )
        .await
        .unwrap_err();
        let text = bad.to_string();
        for field in ["domain", "adminUsername", "adminPassword"] {
            assert!(text.contains(field), "{engine}: {text} names {field}");
        }
        let (_, total) = tenants::list(&shared, 0, 100).await.unwrap();
        assert_eq!(total, 2, "{engine}: only carbon.super and acme.com");

        // Names resolve to their tenant; an unknown domain is part of a super-tenant name.
        let (t1, u1) = tenants::resolve_user(&shared, "admin@acme.com").await.unwrap().unwrap();
        assert_eq!((t1.id, u1.as_str()), (acme.id, "admin"));
        let (t2, u2) = tenants::resolve_user(&shared, "bob@mail.example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((t2.id, u2.as_str()), (TenantId::DEFAULT, "bob@mail.example"));

        // A super-tenant user named like a new domain (anyone may sign up so) does not keep
        // the tenant from being created; they are reported, and the name now signs in to
        // the tenant.
        users::create(
            &shared,
            new_user("carol@globex.com", "carol-password", &[Role::Subscriber]),
        )
        .await
        .unwrap();
        assert_eq!(
            tenants::shadowed_users(&shared, "globex.com").await.unwrap(),
            ["carol@globex.com"],
            "{engine}"
        );
        assert!(tenants::shadowed_users(&shared, "lobex.com").await.unwrap().is_empty());
        let (globex, _) = tenants::create(&shared, new_tenant("globex.com", "admin"))
            .await
            .unwrap();
        let (t3, u3) = tenants::resolve_user(&shared, "carol@globex.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((t3.id, u3.as_str()), (globex.id, "carol"), "{engine}");

        // The AM side: state, Default environment and default policies, once.
        tenants::provision(&am, &acme).await.unwrap();
        tenants::provision(&am, &acme).await.unwrap();
        let states = tenants::states(&am).await.unwrap();
        assert!(states.iter().any(|s| s.domain == "acme.com" && s.active), "{engine}");
        let envs = tollgate_store::environments::list(&am, acme.id).await.unwrap();
        assert_eq!(envs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["Default"]);
        let gold = tollgate_store::policies::names(&am, acme.id, tollgate_model::policy::PolicyLevel::Subscription)
            .await
            .unwrap();
        assert!(gold.iter().any(|n| n == "Gold"), "{engine}: {gold:?}");
        let changed = events::latest_seq(&am).await.unwrap();

        // Deactivation is kept in both databases, with one event; the super tenant stays.
        assert!(tenants::set_active(&shared, acme.id, false).await.unwrap());
        let acme = tenants::get(&shared, acme.id).await.unwrap().unwrap();
        assert!(!acme.active);
        tenants::provision(&am, &acme).await.unwrap();
        assert_eq!(events::latest_seq(&am).await.unwrap(), changed + 1, "{engine}");
        assert!(
            tenants::states(&am)
                .await
                .unwrap()
                .iter()
                .any(|s| s.domain == "acme.com" && !s.active)
        );
        assert!(tenants::set_active(&shared, TenantId::DEFAULT, false).await.is_err());
    }
}

#[tokio::test]
async fn migrations_apply_twice_and_seed_the_default_tenant() {
    for t in all_engines("migrations").await {
        let shared = open(&t, DatabaseName::Shared).await;
        // A second run (another node starting) is a no-op.
        assert_eq!(shared.migrate().await.unwrap(), 5);
        let tenant = tenants::find_by_domain(&shared, "carbon.super").await.unwrap().unwrap();
        assert_eq!(tenant.id, TenantId::DEFAULT, "{}", t.engine());
        let am_db = t.sibling("am").await;
        let am = open(&am_db, DatabaseName::Am).await;
        assert_eq!(events::latest_seq(&am).await.unwrap(), 0);
        shared.ping(Duration::from_secs(2)).await.unwrap();
        am.ping(Duration::from_secs(2)).await.unwrap();
    }
}

#[tokio::test]
async fn am_and_shared_may_share_one_database() {
    for t in all_engines("same_db").await {
        let am = open(&t, DatabaseName::Am).await;
        let shared = open(&t, DatabaseName::Shared).await;
        am.migrate().await.unwrap();
        users::create(&shared, new_user("both", "password-1", &[Role::Creator]))
            .await
            .unwrap();
        let mut tx = am.begin().await.unwrap();
        events::append(&mut tx, &policy_event()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(events::latest_seq(&am).await.unwrap(), 1, "{}", t.engine());
    }
}

#[tokio::test]
async fn concurrent_migrations_do_not_race() {
    for t in all_engines("migrate_race").await {
        let a = connect(DatabaseName::Am, t.url(), &DatabaseConfig::default())
            .await
            .unwrap();
        let b = connect(DatabaseName::Am, t.url(), &DatabaseConfig::default())
            .await
            .unwrap();
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.unwrap();
        rb.unwrap();
    }
}

#[tokio::test]
async fn users_are_created_found_listed_and_unique_ignoring_case() {
    for t in all_engines("users").await {
        let db = open(&t, DatabaseName::Shared).await;
        let alice = users::create(
            &db,
            new_user("Alice", "alice-password", &[Role::Subscriber, Role::Creator]),
        )
        .await
        .unwrap();
        assert_eq!(alice.roles, [Role::Creator, Role::Subscriber]);
        let found = users::find_by_username(&db, TenantId::DEFAULT, "alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, alice, "{}", t.engine());

        let dup = users::create(&db, new_user("ALICE", "other-password", &[]))
            .await
            .unwrap_err();
        assert!(
            matches!(dup, tollgate_store::Error::Domain(tollgate_model::Error::Conflict(_))),
            "{dup:?}"
        );

        users::create(&db, new_user("bob", "bob-password", &[])).await.unwrap();
        users::create(&db, new_user("carol", "carol-password", &[Role::Admin]))
            .await
            .unwrap();
        let (page, total) = users::list(&db, TenantId::DEFAULT, 1, 1).await.unwrap();
        assert_eq!(total, 3);
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].username, "bob");
        assert!(page[0].roles.is_empty());
    }
}

#[tokio::test]
async fn invalid_users_write_nothing() {
    for t in all_engines("users_invalid").await {
        let db = open(&t, DatabaseName::Shared).await;
        let err = users::create(&db, new_user("no spaces allowed", "short", &[]))
            .await
            .unwrap_err();
        let model_err: tollgate_model::Error = err.into();
        let fields: Vec<_> = model_err.field_errors().iter().map(|f| f.field.clone()).collect();
        assert_eq!(fields, ["username", "password"]);
        let (_, total) = users::list(&db, TenantId::DEFAULT, 0, 10).await.unwrap();
        assert_eq!(total, 0, "{}", t.engine());
    }
}

#[tokio::test]
async fn authentication_checks_passwords() {
    for t in all_engines("authn").await {
        let db = open(&t, DatabaseName::Shared).await;
        users::create(&db, new_user("dave", "dave-password", &[Role::Publisher]))
            .await
            .unwrap();
        let p = users::authenticate(&db, &super_tenant(&db).await, "dave", "dave-password")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.username, "dave");
        assert!(p.has_role(Role::Publisher) && !p.has_role(Role::Admin));
        assert!(
            users::authenticate(&db, &super_tenant(&db).await, "dave", "wrong")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            users::authenticate(&db, &super_tenant(&db).await, "nobody", "dave-password")
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn bootstrap_admin_is_created_once() {
    for t in all_engines("bootstrap").await {
        let db = open(&t, DatabaseName::Shared).await;
        let first = users::ensure_admin(&db, "admin", None).await.unwrap();
        let Bootstrap::CreatedWithGeneratedPassword(pw) = first else {
            panic!("expected a generated password, got {first:?}");
        };
        assert!(
            users::authenticate(&db, &super_tenant(&db).await, "admin", &pw)
                .await
                .unwrap()
                .is_some()
        );
        // A later start with a configured password changes nothing.
        assert_eq!(
            users::ensure_admin(&db, "admin", Some("another-password"))
                .await
                .unwrap(),
            Bootstrap::Existing
        );
        assert!(
            users::authenticate(&db, &super_tenant(&db).await, "admin", &pw)
                .await
                .unwrap()
                .is_some()
        );
        // Two nodes bootstrapping at once: one creates, the other sees it.
        let (a, b) = tokio::join!(
            users::ensure_admin(&db, "root2", Some("configured-pw")),
            users::ensure_admin(&db, "root2", Some("configured-pw"))
        );
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(outcomes, [Bootstrap::Created, Bootstrap::Existing], "{}", t.engine());
    }
}

fn policy_event() -> NewEvent {
    NewEvent::new(
        TenantId::DEFAULT,
        None,
        ControlEvent::PolicyUpserted(PolicyChange {
            level: tollgate_model::policy::PolicyLevel::Subscription,
            policy_id: "gold".into(),
            policy: serde_json::json!({"policyName": "Gold"}),
        }),
    )
}

#[tokio::test]
async fn outbox_sequences_increase_and_rollback_leaves_nothing() {
    for t in all_engines("outbox").await {
        let db = open(&t, DatabaseName::Am).await;
        let mut tx = db.begin().await.unwrap();
        let s1 = events::append(&mut tx, &policy_event()).await.unwrap();
        let s2 = events::append(&mut tx, &policy_event()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!((s1, s2), (1, 2));

        let mut tx = db.begin().await.unwrap();
        events::append(&mut tx, &policy_event()).await.unwrap();
        drop(tx); // rolled back
        assert_eq!(events::latest_seq(&db).await.unwrap(), 2, "{}", t.engine());

        let read = events::read_since(&db, 1, 10).await.unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].seq, 2);
        assert_eq!(read[0].kind, EventKind::PolicyUpserted);
        assert_eq!(read[0].payload["policyId"], "gold");
    }
}

#[tokio::test]
async fn concurrent_appends_get_distinct_gap_free_sequences() {
    for t in all_engines("outbox_concurrent").await {
        let db = open(&t, DatabaseName::Am).await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    let mut tx = db.begin().await.unwrap();
                    events::append(&mut tx, &policy_event()).await.unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let all = events::read_since(&db, 0, 1000).await.unwrap();
        let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "{}", t.engine());
    }
}

#[tokio::test]
async fn unreachable_database_fails_fast_naming_the_key() {
    let settings = DatabaseConfig {
        connect_timeout: Duration::from_secs(3),
        ..DatabaseConfig::default()
    };
    let err = connect(DatabaseName::Am, "postgres://tg:secret@127.0.0.1:1/nowhere", &settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("[database.am] url"), "{err}");
    assert!(err.contains("TOLLGATE_DATABASE__AM__URL"), "{err}");
    assert!(!err.contains("secret"), "password leaked: {err}");
}

#[tokio::test]
async fn default_policies_are_installed_once() {
    use tollgate_model::policy::PolicyLevel;
    use tollgate_store::policies;
    for t in all_engines("default_policies").await {
        let db = open(&t, DatabaseName::Am).await;
        let (a, b) = tokio::join!(
            policies::install_defaults(&db, TenantId::DEFAULT),
            policies::install_defaults(&db, TenantId::DEFAULT)
        );
        assert_eq!(
            [a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(),
            1,
            "{}",
            t.engine()
        );
        assert_eq!(
            policies::names(&db, TenantId::DEFAULT, PolicyLevel::Subscription)
                .await
                .unwrap(),
            ["Bronze", "Gold", "Silver", "Unlimited"]
        );
        // A deleted default stays deleted.
        let bronze = policies::get(&db, TenantId::DEFAULT, PolicyLevel::Subscription, "Bronze")
            .await
            .unwrap()
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        policies::delete(&mut tx, &bronze.id).await.unwrap();
        tx.commit().await.unwrap();
        assert!(!policies::install_defaults(&db, TenantId::DEFAULT).await.unwrap());
        assert_eq!(
            policies::names(&db, TenantId::DEFAULT, PolicyLevel::Subscription)
                .await
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            policies::names(&db, TenantId::DEFAULT, PolicyLevel::Advanced)
                .await
                .unwrap()
                .len(),
            4
        );
        assert_eq!(events::latest_seq(&db).await.unwrap(), 12);
    }
}

#[tokio::test]
async fn a_snapshot_holds_what_an_environment_serves_as_of_its_sequence() {
    use tollgate_store::{apis, applications, keys, oauth, subscriptions};
    for test_db in all_engines("store_snapshot").await {
        let am = open(&test_db, DatabaseName::Am).await;
        let api: tollgate_model::Api = serde_json::from_value(serde_json::json!({
            "name": "Pets", "context": "/pets", "version": "1.0.0", "policies": ["Gold"],
            "operations": [{"target": "/pets/{id}", "verb": "GET"}]
        }))
        .unwrap();
        let mut published = api.clone();
        published.life_cycle_status = Some(tollgate_model::LifecycleState::Published);
        let mut tx = am.begin().await.unwrap();
        apis::insert(
            &mut tx,
            &apis::StoredApi {
                id: "api-1".into(),
                tenant_id: TenantId::DEFAULT,
                api: published,
                definition: None,
                revision_counter: 1,
                created_at: 1,
                updated_at: 1,
            },
        )
        .await
        .unwrap();
        apis::insert_revision(
            &mut tx,
            &apis::RevisionRow {
                id: "rev-1".into(),
                api_id: "api-1".into(),
                number: 1,
                description: None,
                body: serde_json::to_string(&api).unwrap(),
                definition: None,
                created_at: 1,
            },
        )
        .await
        .unwrap();
        apis::upsert_deployment(
            &mut tx,
            &apis::DeploymentRow {
                api_id: "api-1".into(),
                environment: "Default".into(),
                revision_id: "rev-1".into(),
                vhost: None,
                display_on_devportal: true,
                deployed_at: 1,
            },
        )
        .await
        .unwrap();
        let app = applications::ApplicationRow {
            id: "app-1".into(),
            name: "Shop".into(),
            owner: "sam".into(),
            throttling_policy: "10PerMin".into(),
            description: None,
            token_type: "JWT".into(),
            status: "APPROVED".into(),
            attributes: "{}".into(),
        };
        applications::insert(&mut tx, TenantId::DEFAULT, &app, 1).await.unwrap();
        subscriptions::insert(
            &mut tx,
            TenantId::DEFAULT,
            "sub-1",
            "app-1",
            "api-1",
            "Gold",
            "UNBLOCKED",
            1,
        )
        .await
        .unwrap();
        keys::insert(
            &mut tx,
            TenantId::DEFAULT,
            &keys::KeyRow {
                id: "km-1".into(),
                application_id: "app-1".into(),
                key_type: "PRODUCTION".into(),
                key_manager: "Resident Key Manager".into(),
                mode: "CREATED".into(),
                consumer_key: "ck-1".into(),
                secret_hash: Some("hash".into()),
                grant_types: "[]".into(),
                callback_url: None,
                scopes: "[]".into(),
                validity_seconds: 0,
            },
            1,
        )
        .await
        .unwrap();
        oauth::insert_revocation(
            &mut tx,
            TenantId::DEFAULT,
            oauth::RevocationKind::TokenId,
            "jti-live",
            5,
            10_000,
        )
        .await
        .unwrap();
        oauth::insert_revocation(
            &mut tx,
            TenantId::DEFAULT,
            oauth::RevocationKind::TokenId,
            "jti-old",
            5,
            50,
        )
        .await
        .unwrap();
        events::append(&mut tx, &policy_event()).await.unwrap();
        tx.commit().await.unwrap();
        tollgate_store::policies::install_defaults(&am, TenantId::DEFAULT)
            .await
            .unwrap();

        let snap = tollgate_store::snapshot::read(&am, "Default", 100).await.unwrap();
        let plans: Vec<&str> = snap
            .subscription_policies
            .iter()
            .map(|p| p.policy_name.as_str())
            .collect();
        assert!(plans.contains(&"Gold") && plans.contains(&"Unlimited"), "{plans:?}");
        assert_eq!(snap.seq, events::latest_seq(&am).await.unwrap());
        assert_eq!(snap.environment, "Default");
        assert_eq!(snap.apis.len(), 1, "{}", test_db.engine());
        assert_eq!(snap.apis[0].revision_id, "rev-1");
        assert_eq!(snap.apis[0].api.operations[0].target, "/pets/{id}");
        assert_eq!(
            snap.apis[0].life_cycle_status,
            tollgate_model::LifecycleState::Published
        );
        assert_eq!(snap.applications[0].tier, "10PerMin");
        assert_eq!(snap.subscriptions[0].throttling_policy, "Gold");
        assert_eq!(snap.key_mappings[0].consumer_key, "ck-1");
        let revoked: Vec<&str> = snap.revocations.iter().map(|r| r.subject.as_str()).collect();
        assert_eq!(revoked, ["jti-live"], "expired revocations are left out");
        let json = serde_json::to_string(&snap).unwrap();
        assert!(!json.contains("\"hash\""), "no secret hash in a snapshot");
        assert_eq!(serde_json::from_str::<tollgate_events::Snapshot>(&json).unwrap(), snap);

        let other = tollgate_store::snapshot::read(&am, "internal", 100).await.unwrap();
        assert!(other.apis.is_empty(), "another environment serves nothing");
        assert_eq!(other.applications.len(), 1);
    }
}

#[tokio::test]
async fn an_outbox_watcher_wakes_on_notify_from_another_connection() {
    let Some(t) = tollgate_testkit::postgres("outbox_notify").await else {
        return;
    };
    let db = open(&t, DatabaseName::Am).await;
    let mut watcher = events::OutboxWatcher::new(&db).await.unwrap();
    // Use up a wake-up this process's own commits may have left.
    watcher.changed(Duration::from_millis(10)).await;
    // Another connection (as another node would) announces a commit.
    let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(t.url())
        .await
        .unwrap();
    let woke = tokio::spawn(async move {
        // Without the notification this would sleep the whole minute.
        watcher.changed(Duration::from_secs(60)).await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sqlx::query("SELECT pg_notify($1, '1')")
        .bind(events::NOTIFY_CHANNEL)
        .execute(&mut other)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), woke)
        .await
        .expect("the watcher woke on NOTIFY, not on its one-minute timeout")
        .unwrap();
}

#[tokio::test]
async fn compaction_keeps_the_newest_event_so_sequences_never_restart() {
    for t in all_engines("outbox_compact").await {
        let db = open(&t, DatabaseName::Am).await;
        for _ in 0..3 {
            let mut tx = db.begin().await.unwrap();
            events::append(&mut tx, &policy_event()).await.unwrap();
            tx.commit().await.unwrap();
        }
        let deleted = events::compact(&db, i64::MAX).await.unwrap();
        assert_eq!(deleted, 2, "{}", t.engine());
        assert_eq!(events::oldest_seq(&db).await.unwrap(), Some(3));
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            events::append(&mut tx, &policy_event()).await.unwrap(),
            4,
            "{}",
            t.engine()
        );
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn gateway_reports_count_live_deployed_and_failed_gateways_and_old_ones_are_pruned() {
    use tollgate_events::GatewayReport;
    use tollgate_store::gateway_status;
    for t in all_engines("gateway_status").await {
        let db = open(&t, DatabaseName::Am).await;
        let report = |id: &str, env: &str, revisions: &[&str], failed: &[&str]| GatewayReport {
            gateway_id: id.into(),
            environment: env.into(),
            sequence: 7,
            revisions: revisions.iter().map(|r| r.to_string()).collect(),
            failed: failed.iter().map(|r| r.to_string()).collect(),
            unchanged: false,
        };
        gateway_status::record(&db, &report("gw-a", "Default", &["r1"], &[]), 1_000)
            .await
            .unwrap();
        gateway_status::record(&db, &report("gw-b", "Default", &[], &["r1"]), 1_000)
            .await
            .unwrap();
        gateway_status::record(&db, &report("gw-c", "Default", &["r1"], &[]), 100)
            .await
            .unwrap();
        gateway_status::record(&db, &report("gw-d", "internal", &["r1"], &[]), 1_000)
            .await
            .unwrap();
        let counts = gateway_status::counts(&db, "Default", "r1", 500).await.unwrap();
        assert_eq!(
            (counts.live, counts.deployed, counts.failed),
            (2, 1, 1),
            "{}",
            t.engine()
        );
        // A newer report replaces the older one of the same gateway.
        gateway_status::record(&db, &report("gw-b", "Default", &["r1"], &[]), 1_100)
            .await
            .unwrap();
        let counts = gateway_status::counts(&db, "Default", "r1", 500).await.unwrap();
        assert_eq!(
            (counts.live, counts.deployed, counts.failed),
            (2, 2, 0),
            "{}",
            t.engine()
        );
        // An unchanged report keeps the revisions and refreshes the time: gw-c, silent
        // since 100, is live again and still serves r1; a gateway never heard of is refused.
        let mut refresh = report("gw-c", "Default", &[], &[]);
        refresh.unchanged = true;
        assert!(gateway_status::record(&db, &refresh, 1_200).await.unwrap());
        let counts = gateway_status::counts(&db, "Default", "r1", 500).await.unwrap();
        assert_eq!((counts.live, counts.deployed), (3, 3), "{}", t.engine());
        refresh.gateway_id = "gw-unknown".into();
        assert!(!gateway_status::record(&db, &refresh, 1_200).await.unwrap());
        // Pruning forgets every gateway silent since before the cut-off.
        assert_eq!(
            gateway_status::prune(&db, 1_150).await.unwrap(),
            3,
            "gw-a, gw-b and gw-d are gone"
        );
        let counts = gateway_status::counts(&db, "Default", "r1", 0).await.unwrap();
        assert_eq!(counts.live, 1, "only gw-c is left; {}", t.engine());
    }
}

mod analytics_usage {
    use super::*;
    use tollgate_store::analytics::{self, Dimension, Granularity, UsageCounts, UsageFilter, UsageKey};

    fn key(minute: i64, app: &str, status: i64) -> UsageKey {
        UsageKey {
            bucket_start: minute * 60_000,
            environment: "Default".into(),
            api_id: "api-1".into(),
            api_name: "Pets".into(),
            api_version: "1.0".into(),
            resource: "/pets".into(),
            method: "GET".into(),
            application_id: app.into(),
            subscriber: "ann".into(),
            status,
            error_code: if status == 429 { 900802 } else { 0 },
        }
    }

    fn calls(n: i64, ms: f64) -> UsageCounts {
        let mut c = UsageCounts::default();
        for _ in 0..n {
            c.record(ms, Some(ms / 2.0), Some(100));
        }
        c
    }

    #[tokio::test]
    async fn rows_add_up_group_by_any_dimension_and_expire() {
        for t in all_engines("analytics_usage").await {
            let am = open(&t, DatabaseName::Am).await;
            let rows = vec![
                (key(1, "app-a", 200), calls(3, 4.0)),
                (key(1, "app-b", 429), calls(2, 1.0)),
                (key(2, "app-a", 503), calls(1, 700.0)),
            ];
            analytics::add(&am, &[(Granularity::Minute, rows.clone())])
                .await
                .unwrap();
            // A second flush into the same bucket adds, never replaces.
            analytics::add(&am, &[(Granularity::Minute, rows[..1].to_vec())])
                .await
                .unwrap();
            let all = UsageFilter {
                from: 0,
                to: i64::MAX,
                ..UsageFilter::default()
            };
            let total = analytics::query(&am, Granularity::Minute, &[], &all, 10).await.unwrap();
            assert_eq!(total.len(), 1, "{}", t.engine());
            let g = &total[0];
            assert_eq!(
                (g.counts.requests, g.client_errors, g.server_errors, g.throttled),
                (9, 2, 1, 2),
                "{}",
                t.engine()
            );
            assert_eq!(g.counts.response_bytes, 900);
            assert_eq!(g.counts.gateway_buckets.iter().sum::<i64>(), 9);
            let by_app = analytics::query(&am, Granularity::Minute, &[Dimension::Application], &all, 10)
                .await
                .unwrap();
            let counts: Vec<_> = by_app
                .iter()
                .map(|g| (g.dimensions[0].1.as_str().unwrap_or("").to_string(), g.counts.requests))
                .collect();
            assert_eq!(
                counts,
                [("app-a".to_string(), 7), ("app-b".to_string(), 2)],
                "busiest first"
            );
            let by_time = analytics::query(
                &am,
                Granularity::Minute,
                &[Dimension::Time, Dimension::StatusClass],
                &all,
                10,
            )
            .await
            .unwrap();
            let series: Vec<_> = by_time
                .iter()
                .map(|g| {
                    (
                        g.dimensions[0].1.as_i64(),
                        g.dimensions[1].1.as_i64(),
                        g.counts.requests,
                    )
                })
                .collect();
            assert!(series.contains(&(Some(60_000), Some(2), 6)), "{series:?}");
            assert!(series.contains(&(Some(120_000), Some(5), 1)), "{series:?}");
            let one_app = UsageFilter {
                application_id: Some("app-b".into()),
                ..all.clone()
            };
            let b = analytics::query(&am, Granularity::Minute, &[Dimension::ErrorCode], &one_app, 10)
                .await
                .unwrap();
            assert_eq!(b[0].dimensions[0].1.as_i64(), Some(900802));
            let nothing = UsageFilter {
                from: 10 * 60_000,
                ..all.clone()
            };
            assert!(
                analytics::query(&am, Granularity::Minute, &[], &nothing, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "no rows, no group"
            );
            assert_eq!(
                analytics::delete_before(&am, Granularity::Minute, 2 * 60_000)
                    .await
                    .unwrap(),
                2
            );
            assert_eq!(analytics::row_count(&am, Granularity::Minute).await.unwrap(), 1);
        }
    }
}
