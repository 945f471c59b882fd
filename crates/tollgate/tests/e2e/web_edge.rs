//! The management listener's edge against an outside attacker: password guessing over
//! HTTP Basic (locks, a cap on concurrent hashing), the sign-in redirect, security
//! headers, file permissions under `data/`.

use crate::{READY, tollgate};
use serde_json::Value;

const ADMIN_USERS: &str = "/api/am/admin/v4/users";

#[tokio::test]
async fn basic_auth_guesses_lock_the_user_before_argon2_and_answer_429_in_the_envelope() {
    let mut node = tollgate()
        .env("TOLLGATE_MANAGEMENT__MAX_FAILED_SIGN_INS", "3")
        .env("TOLLGATE_MANAGEMENT__SIGN_IN_LOCKOUT", "10m")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let client = tollgate_testkit::http();
    let url = format!("http://{mgmt}{ADMIN_USERS}");
    for i in 0..3 {
        let r = client
            .get(&url)
            .basic_auth("admin", Some(format!("guess-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // The right password, now: refused, and told for how long.
    let r = client
        .get(&url)
        .basic_auth("admin", Some("test-admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    assert_eq!(r.headers()["content-type"].to_str().unwrap(), "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 429, "{body}");
    assert_eq!(body["message"], "Too Many Requests", "{body}");
    assert!(body["description"].as_str().unwrap().contains("locked"), "{body}");
}

#[tokio::test]
async fn three_hundred_parallel_guesses_keep_memory_flat() {
    // Locks off: only the cap on concurrent hashing stands between the guesses and memory.
    let mut node = tollgate()
        .env("TOLLGATE_MANAGEMENT__MAX_FAILED_SIGN_INS", "0")
        .env("TOLLGATE_MANAGEMENT__MAX_FAILED_SIGN_INS_PER_ADDRESS", "0")
        .env("TOLLGATE_MANAGEMENT__MAX_CONCURRENT_PASSWORD_CHECKS", "2")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let client = tollgate_testkit::http();
    let url = format!("http://{mgmt}{ADMIN_USERS}");
    // One check first, so that the baseline includes one argon2 working set.
    let r = client
        .get(&url)
        .basic_auth("admin", Some("warm-up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let before = node.peak_rss_kb();
    let guesses: Vec<_> = (0..300)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                client
                    .get(&url)
                    .basic_auth(format!("user{i}"), Some("password1"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for g in guesses {
        *statuses.entry(g.await.unwrap().unwrap()).or_default() += 1;
    }
    let growth_mb = node.peak_rss_kb().saturating_sub(before) / 1024;
    eprintln!("300 parallel Basic guesses: answers {statuses:?}, peak RSS grew by {growth_mb} MB");
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 503),
        "only refusals: {statuses:?}"
    );
    assert!(
        growth_mb < 100,
        "peak RSS grew by {growth_mb} MB for 300 parallel guesses"
    );
}

#[tokio::test]
async fn sign_in_goes_back_only_to_a_path_on_this_site() {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let base = format!("http://{mgmt}");
    // `next` as it appears in the query string; the portals see it percent-decoded once.
    for (next, expected) in [
        ("/%09/evil.example.com", "/devportal"),
        ("/%0A/evil.example.com", "/devportal"),
        ("%2F%2Fevil.example.com", "/devportal"),
        ("/%5Cevil.example.com", "/devportal"),
        ("/%2509/evil.example.com", "/devportal"),
        ("https://evil.example.com/", "/devportal"),
        ("/publisher/apis", "/publisher/apis"),
        ("/devportal/apis%3Fquery%3Dpets", "/devportal/apis?query=pets"),
    ] {
        let (_, location) =
            tollgate_testkit::PortalSession::sign_in_with_next(&base, "admin", "test-admin-password", next).await;
        assert_eq!(location.as_deref(), Some(expected), "next={next}");
    }
}

#[tokio::test]
async fn every_rest_answer_says_nosniff_and_plain_http_sends_no_hsts() {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let client = tollgate_testkit::http();
    let admin = |req: reqwest::RequestBuilder| req.basic_auth("admin", Some("test-admin-password"));
    let cases = [
        (admin(client.get(format!("http://{mgmt}{ADMIN_USERS}"))), 200),
        (client.get(format!("http://{mgmt}{ADMIN_USERS}")), 401),
        (
            admin(client.post(format!("http://{mgmt}{ADMIN_USERS}")))
                .header("content-type", "application/json")
                .body("{not json"),
            400,
        ),
        (
            admin(client.get(format!("http://{mgmt}/api/am/publisher/v4/apis/no-such-api"))),
            404,
        ),
        (client.get(format!("http://{mgmt}/no/such/path")), 404),
        (client.head(format!("http://{mgmt}/api/am/devportal/v3/apis")), 200),
    ];
    for (req, status) in cases {
        let r = req.send().await.unwrap();
        let what = format!("{} {}", r.url().path(), r.status());
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert_eq!(
            r.headers().get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{what}"
        );
        assert!(!r.headers().contains_key("strict-transport-security"), "{what}");
    }
}

/// Every file and directory under `dir` with group or other permission bits, and its mode.
fn open_to_others(dir: &std::path::Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            found.push((entry.path().display().to_string(), format!("{mode:o}")));
        }
        if entry.file_type().unwrap().is_dir() {
            found.extend(open_to_others(&entry.path()));
        }
    }
    found
}

#[tokio::test]
async fn what_the_node_writes_under_data_is_its_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    // One data directory the node creates, one an operator made open to everyone.
    let fresh = tmp.path().join("fresh/data");
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [fresh, open] {
        let mut node = tollgate().env_remove("TOLLGATE_ADMIN_PASSWORD").data_dir(&dir).spawn();
        let mgmt = node.wait_ready(READY).await;
        // Make the node write more: a failed sign-in, an API (persisted gateway state).
        let _ = tollgate_testkit::http()
            .get(format!("http://{mgmt}{ADMIN_USERS}"))
            .basic_auth("admin", Some("wrong"))
            .send()
            .await
            .unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(format!("{mode:o}"), "700", "{}", dir.display());
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            files.iter().any(|f| f == "am.db") && files.iter().any(|f| f == "admin-password"),
            "{files:?}"
        );
        assert_eq!(
            open_to_others(&dir),
            Vec::<(String, String)>::new(),
            "in {}",
            dir.display()
        );
    }
}

#[tokio::test]
async fn the_refresh_cookie_lives_as_long_as_the_refresh_token() {
    let mut node = tollgate()
        .env("TOLLGATE_KEY_MANAGER__REFRESH_TOKEN_VALIDITY", "2h")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let session =
        tollgate_testkit::PortalSession::sign_in(&format!("http://{mgmt}"), "admin", "test-admin-password").await;
    let line = session.set_cookie_line("tg_refresh").expect("a refresh cookie");
    assert!(line.contains("; Max-Age=7200;"), "{line}");
    // A renewed session (the access token's cookie gone) gets a refresh cookie as long.
    session.forget_cookie("tg_session");
    let (status, _) = session.get("/devportal").await;
    assert_eq!(status, 200);
    assert!(session.cookie("tg_session").is_some(), "the session was renewed");
    let renewed = session.set_cookie_line("tg_refresh").unwrap();
    assert!(renewed.contains("; Max-Age=7200;") && renewed != line, "{renewed}");
}

#[tokio::test]
async fn self_sign_up_is_limited_per_address_through_the_api_and_the_portal() {
    let mut node = tollgate().env("TOLLGATE_DEVPORTAL__SELF_SIGNUPS_PER_HOUR", "2").spawn();
    let mgmt = node.wait_ready(READY).await;
    let client = tollgate_testkit::http();
    for name in ["gina", "hank"] {
        let r = client
            .post(format!("http://{mgmt}/api/am/devportal/v3/signup"))
            .json(&serde_json::json!({"username": name, "password": format!("{name}-password")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
    }
    // The portal's form calls the API in-process, for the same address.
    let visitor = tollgate_testkit::PortalSession::signed_out(&format!("http://{mgmt}"));
    let (status, html, _) = visitor
        .post_form(
            "/devportal/signup",
            &[("username", "ivan"), ("password", "ivan-password")],
        )
        .await;
    assert_eq!(status, 429, "{}", tollgate_testkit::portal_client::page_text(&html));
    assert!(
        tollgate_testkit::portal_client::page_text(&html).contains("too many sign-ups"),
        "{}",
        tollgate_testkit::portal_client::page_text(&html)
    );
    let r = client
        .get(format!("http://{mgmt}{ADMIN_USERS}/ivan"))
        .basic_auth("admin", Some("test-admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "nobody was signed up");
}
