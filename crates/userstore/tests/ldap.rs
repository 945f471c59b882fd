//! The LDAP store against a real OpenLDAP server (`slapd`, seeded by the test-support
//! crate): sign-in by binding as the user, roles from groups, injection, locked
//! accounts, the role cache, outages and the next URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;
use tollgate_config::{Secret, UserStoreConfig};
use tollgate_testkit::Slapd;
use tollgate_testkit::ldap::{GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD};
use tollgate_userstore::{LdapStore, UserStoreError};

/// The store for the seeded directory: `apiPublishers` → publisher and creator,
/// `apiSubscribers` → subscriber.
fn config(slapd: &Slapd) -> UserStoreConfig {
    let mut role_mapping = BTreeMap::new();
    role_mapping.insert(
        "apiPublishers".to_string(),
        vec!["publisher".to_string(), "creator".to_string()],
    );
    role_mapping.insert("apisubscribers".to_string(), vec!["subscriber".to_string()]);
    UserStoreConfig {
        urls: vec![slapd.url.clone()],
        bind_dn: SERVICE_DN.into(),
        bind_password: Some(Secret::new(SERVICE_PASSWORD)),
        user_search_base: PEOPLE_DN.into(),
        group_search_base: GROUPS_DN.into(),
        role_mapping,
        cache_ttl: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(2),
        ..UserStoreConfig::default()
    }
}

/// A URL where nothing listens.
fn dead_url() -> String {
    format!("ldap://127.0.0.1:{}", tollgate_testkit::free_port())
}

#[tokio::test]
async fn a_directory_user_signs_in_with_the_roles_their_groups_map_to() {
    let Some(slapd) = Slapd::start() else { return };
    let store = LdapStore::new(&config(&slapd)).unwrap();

    let alice = store
        .authenticate("alice", "alice-password")
        .await
        .unwrap()
        .expect("alice signs in");
    assert_eq!(alice.dn, format!("uid=alice,{PEOPLE_DN}"));
    assert_eq!(alice.groups, ["apiPublishers", "apiSubscribers"]);
    assert_eq!(
        alice.roles,
        ["creator", "publisher", "subscriber"],
        "group names match ignoring case"
    );
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    let bob = store
        .authenticate("bob", "bob-password")
        .await
        .unwrap()
        .expect("bob signs in");
    assert_eq!(bob.roles, ["subscriber"]);
    let dave = store
        .authenticate("dave", "dave-password")
        .await
        .unwrap()
        .expect("dave signs in");
    assert!(dave.groups.is_empty() && dave.roles.is_empty(), "{dave:?}");
    // The name is matched as the directory matches `uid` (ignoring case).
    assert!(store.authenticate("ALICE", "alice-password").await.unwrap().is_some());

    for (name, password, why) in [
        ("alice", "bob-password", "another's password"),
        ("alice", "", "an empty password (never an anonymous bind)"),
        ("carol", "carol-password", "a locked account"),
        ("nobody", "nobody-password", "an unknown user"),
        ("", "alice-password", "an empty name"),
    ] {
        assert_eq!(store.authenticate(name, password).await.unwrap(), None, "{why}");
    }
}

#[tokio::test]
async fn names_that_try_to_rewrite_the_filter_find_nothing() {
    let Some(slapd) = Slapd::start() else { return };
    let store = LdapStore::new(&config(&slapd)).unwrap();
    for name in [
        "*",
        "a*",
        "*)(uid=*",
        "alice)(uid=*",
        "admin)(|(objectClass=*",
        "alice)(|(uid=bob",
        "\\2a",
        "alice\\",
    ] {
        for password in ["alice-password", "bob-password", "x"] {
            assert_eq!(
                store.authenticate(name, password).await.unwrap(),
                None,
                "{name} / {password}"
            );
        }
        assert_eq!(store.find(name).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn roles_follow_the_directory_once_the_cache_has_expired() {
    let Some(slapd) = Slapd::start() else { return };
    let store = LdapStore::new(&config(&slapd)).unwrap();
    let alice = store.find("alice").await.unwrap().unwrap();
    assert!(alice.roles.contains(&"publisher".to_string()), "{alice:?}");

    slapd.remove_member("apiPublishers", "alice");
    let cached = store.find("alice").await.unwrap().unwrap();
    assert!(
        cached.roles.contains(&"publisher".to_string()),
        "still cached: {cached:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fresh = store.find("alice").await.unwrap().unwrap();
    assert_eq!(fresh.roles, ["subscriber"], "after cache_ttl");
    // A sign-in reads the groups afresh.
    let signed_in = store.authenticate("alice", "alice-password").await.unwrap().unwrap();
    assert_eq!(signed_in.roles, ["subscriber"]);
}

#[tokio::test]
async fn a_directory_that_is_down_is_unavailable_not_a_wrong_password_and_recovers() {
    let Some(mut slapd) = Slapd::start() else { return };
    let store = LdapStore::new(&config(&slapd)).unwrap();
    assert!(store.authenticate("alice", "alice-password").await.unwrap().is_some());

    slapd.stop();
    for (name, password) in [("alice", "alice-password"), ("alice", "wrong")] {
        match store.authenticate(name, password).await {
            Err(UserStoreError::Unavailable { store, reason }) => {
                assert_eq!(store, "the primary store");
                assert!(reason.contains(&slapd.url), "{reason}");
            }
            other => panic!("{name}/{password} while the directory is down: {other:?}"),
        }
    }
    let message = store
        .authenticate("alice", "alice-password")
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("cannot be reached"), "{message}");

    // Back up: the same store signs in again (its kept connections are replaced).
    slapd.resume();
    assert!(store.authenticate("alice", "alice-password").await.unwrap().is_some());
    assert_eq!(store.authenticate("alice", "wrong").await.unwrap(), None);
}

#[tokio::test]
async fn the_next_url_is_tried_when_the_first_does_not_answer() {
    let Some(slapd) = Slapd::start() else { return };
    let store = LdapStore::new(&UserStoreConfig {
        urls: vec![dead_url(), slapd.url.clone()],
        ..config(&slapd)
    })
    .unwrap();
    assert!(store.authenticate("bob", "bob-password").await.unwrap().is_some());
    assert_eq!(store.authenticate("bob", "alice-password").await.unwrap(), None);
}

#[tokio::test]
async fn a_refused_service_account_says_which_settings_to_check() {
    let Some(slapd) = Slapd::start() else { return };
    let store = LdapStore::new(&UserStoreConfig {
        bind_password: Some(Secret::new("not-the-service-password")),
        ..config(&slapd)
    })
    .unwrap();
    match store.authenticate("alice", "alice-password").await {
        Err(e @ UserStoreError::Directory { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("bind_dn") && message.contains("[[user_store]]"),
                "{message}"
            );
            assert!(!message.contains("not-the-service-password"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A store without a bind password is not made at all.
    let err = LdapStore::new(&UserStoreConfig {
        bind_password: None,
        ..config(&slapd)
    })
    .unwrap_err();
    assert!(err.to_string().contains("anonymous bind"), "{err}");
}

#[tokio::test]
async fn a_directory_is_listed_in_pages_past_its_servers_size_limit() {
    // slapd answers at most 500 entries per search unless the client pages (RFC 2696).
    let mut ldif = tollgate_testkit::ldap::SEED.to_string();
    for i in 0..600 {
        ldif.push_str(&format!(
            "\ndn: uid=user{i:04},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: user{i:04}\ncn: User {i}\nsn: {i}\n"
        ));
    }
    let Some(slapd) = Slapd::start_with(&ldif) else { return };
    let store = LdapStore::new(&config(&slapd)).unwrap();

    let (all, total) = store.list(0, 1000).await.unwrap();
    assert_eq!(total, 604, "every person, past the server's limit of 500");
    assert_eq!(all.len(), 604);
    let (first, total) = store.list(0, 2).await.unwrap();
    assert_eq!(total, 604);
    let names: Vec<_> = first.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob"], "sorted by name");
    assert_eq!(first[0].roles, ["creator", "publisher", "subscriber"]);
    assert_eq!(first[1].roles, ["subscriber"]);
    let (page, _) = store.list(4, 2).await.unwrap();
    let names: Vec<_> = page.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["user0000", "user0001"]);
    assert!(page[0].roles.is_empty());
    let (past, total) = store.list(700, 10).await.unwrap();
    assert_eq!((past.len(), total), (0, 604));

    // A filter that names no attribute to list by is a configuration error, said so.
    let mut odd = config(&slapd);
    odd.user_filter = Some("(&(objectClass=person)(|(uid={username})(mail={username})))".into());
    let listed = LdapStore::new(&odd).unwrap().list(0, 10).await;
    assert!(listed.is_ok(), "the first `(attr={{username}})` is used: {listed:?}");
}

/// The seeded directory as a writable store, bound as its manager (the seed's service
/// account may only read).
fn writable(slapd: &Slapd) -> UserStoreConfig {
    UserStoreConfig {
        read_only: false,
        bind_dn: tollgate_testkit::ldap::MANAGER_DN.into(),
        bind_password: Some(Secret::new(tollgate_testkit::ldap::MANAGER_PASSWORD)),
        ..config(slapd)
    }
}

#[tokio::test]
async fn a_writable_directory_gets_new_users_with_hashed_passwords_and_groups_for_their_roles() {
    let Some(slapd) = Slapd::start() else { return };
    let store = LdapStore::new(&writable(&slapd)).unwrap();

    let erin = store
        .create_user("erin", "erin-password-1", Some("erin@example.com"), &["subscriber"])
        .await
        .unwrap();
    assert_eq!(erin.dn, format!("uid=erin,{PEOPLE_DN}"));
    assert_eq!(erin.groups, ["apiSubscribers"]);
    assert_eq!(erin.roles, ["subscriber"]);
    assert_eq!(erin.email.as_deref(), Some("erin@example.com"));
    // She signs in with her password, which the directory keeps hashed.
    let signed_in = store.authenticate("erin", "erin-password-1").await.unwrap();
    assert_eq!(signed_in.map(|u| u.roles), Some(vec!["subscriber".to_string()]));
    assert!(store.authenticate("erin", "wrong").await.unwrap().is_none());
    let stored = slapd.search(&format!("uid=erin,{PEOPLE_DN}"), "userPassword");
    assert!(stored.contains("userPassword:: "), "a hash, base64 in LDIF: {stored}");
    assert!(!stored.contains("erin-password-1"), "{stored}");

    // A name taken, a role no group maps to, and a read-only store add nothing.
    let taken = store.create_user("alice", "another-password", None, &[]).await;
    assert!(matches!(taken, Err(UserStoreError::Exists { .. })), "{taken:?}");
    let unmapped = store.create_user("frank", "frank-password-1", None, &["admin"]).await;
    assert!(
        matches!(&unmapped, Err(UserStoreError::CannotAdd { reason, .. }) if reason.contains("role_mapping")),
        "{unmapped:?}"
    );
    let read_only = LdapStore::new(&config(&slapd)).unwrap();
    let refused = read_only.create_user("frank", "frank-password-1", None, &[]).await;
    assert!(
        matches!(&refused, Err(UserStoreError::CannotAdd { reason, .. }) if reason.contains("read-only")),
        "{refused:?}"
    );
    assert!(store.find("frank").await.unwrap().is_none(), "nothing was written");

    // An entry the filter does not find (dave has no mail) is someone else's: adding the
    // name is a conflict, and the entry is left alone.
    let mut picky = writable(&slapd);
    picky.user_filter = Some("(&(objectClass=person)(uid={username})(mail=*))".into());
    let picky = LdapStore::new(&picky).unwrap();
    let clash = picky
        .create_user("dave", "dave-new-password", None, &["subscriber"])
        .await;
    assert!(matches!(clash, Err(UserStoreError::Exists { .. })), "{clash:?}");
    assert!(
        store.authenticate("dave", "dave-password").await.unwrap().is_some(),
        "dave's entry and password are untouched"
    );

    // A sign-up asking for `subscriber` joins a group that gives only that, never one
    // that also gives more (first in the mapping's order here).
    let mut wide = writable(&slapd);
    wide.role_mapping = BTreeMap::from([
        (
            "apiPublishers".to_string(),
            vec!["publisher".to_string(), "subscriber".to_string()],
        ),
        ("apiSubscribers".to_string(), vec!["subscriber".to_string()]),
    ]);
    let hana = LdapStore::new(&wide)
        .unwrap()
        .create_user("hana", "hana-password-1", None, &["subscriber"])
        .await
        .unwrap();
    assert_eq!(hana.groups, ["apiSubscribers"]);
    assert_eq!(hana.roles, ["subscriber"]);

    // A step that fails undoes the entry: here the "group" is an organizational unit,
    // which cannot take a member.
    let mut odd = writable(&slapd);
    odd.group_search_base = tollgate_testkit::ldap::BASE_DN.into();
    odd.group_name_attribute = "ou".into();
    odd.role_mapping = BTreeMap::from([("people".to_string(), vec!["admin".to_string()])]);
    let odd = LdapStore::new(&odd).unwrap();
    let failed = odd.create_user("gina", "gina-password-1", None, &["admin"]).await;
    assert!(matches!(failed, Err(UserStoreError::Directory { .. })), "{failed:?}");
    assert!(
        store.find("gina").await.unwrap().is_none(),
        "the entry was removed again"
    );
    assert!(store.authenticate("gina", "gina-password-1").await.unwrap().is_none());
}

#[tokio::test]
async fn a_filter_with_another_attribute_signs_users_in_by_it_too() {
    // As Active Directory's preset does with userPrincipalName: here the email address.
    let Some(slapd) = Slapd::start() else { return };
    let mut either = config(&slapd);
    either.user_filter = Some("(&(objectClass=person)(|(uid={username})(mail={username})))".into());
    let store = LdapStore::new(&either).unwrap();
    let by_mail = store
        .authenticate("alice@example.com", "alice-password")
        .await
        .unwrap()
        .expect("alice signs in with her email address");
    assert_eq!(by_mail.dn, format!("uid=alice,{PEOPLE_DN}"));
    assert_eq!(by_mail.roles, ["creator", "publisher", "subscriber"]);
    assert!(store.authenticate("alice", "alice-password").await.unwrap().is_some());
    assert!(
        store
            .authenticate("*@example.com", "alice-password")
            .await
            .unwrap()
            .is_none()
    );
    // Listed by the first attribute the filter names.
    let (users, _) = store.list(0, 1).await.unwrap();
    assert_eq!(users[0].username, "alice");
}
