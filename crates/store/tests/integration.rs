//! Store tests against real databases: every test body runs on SQLite and, when a server
//! is reachable, on a fresh PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tollgate_config::DatabaseConfig;
use tollgate_events::{EventKind, NewEvent};
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

#[tokio::test]
async fn migrations_apply_twice_and_seed_the_default_tenant() {
    for t in all_engines("migrations").await {
        let shared = open(&t, DatabaseName::Shared).await;
        // A second run (another node starting) is a no-op.
        assert_eq!(shared.migrate().await.unwrap(), 3);
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
        let p = users::authenticate(&db, TenantId::DEFAULT, "dave", "dave-password")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.username, "dave");
        assert!(p.has_role(Role::Publisher) && !p.has_role(Role::Admin));
        assert!(
            users::authenticate(&db, TenantId::DEFAULT, "dave", "wrong")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            users::authenticate(&db, TenantId::DEFAULT, "nobody", "dave-password")
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
            users::authenticate(&db, TenantId::DEFAULT, "admin", &pw)
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
            users::authenticate(&db, TenantId::DEFAULT, "admin", &pw)
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
    NewEvent {
        kind: EventKind::PolicyUpserted,
        tenant_id: TenantId::DEFAULT,
        environment: None,
        payload: serde_json::json!({"policyId": "gold"}),
    }
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
