//! `tollgate api …`, `tollgate app …` and `tollgate token` against a running node, as
//! separate processes.

use crate::{READY, tollgate};
use std::process::Command;

fn cli(mgmt: std::net::SocketAddr, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["api"];
    full.extend_from_slice(args);
    run(mgmt, &full, ("admin", "test-admin-password"))
}

/// Runs `tollgate ARGS --server … --user … --password …` with no `TOLLGATE_*` variables.
pub(crate) fn run(mgmt: std::net::SocketAddr, args: &[&str], (user, password): (&str, &str)) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args);
    cmd.args([
        "--server",
        &format!("http://{mgmt}"),
        "--user",
        user,
        "--password",
        password,
    ]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TOLLGATE_")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn import_list_publish_and_deploy_from_the_command_line() {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/fixtures/petstore.yaml");

    let (code, out, err) = cli(
        mgmt,
        &[
            "import",
            fixture,
            "--context",
            "/petstore",
            "--policies",
            "Gold,Unlimited",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Created API Swagger Petstore 1.0.0 ("), "{out}");
    assert!(out.contains("with 5 operations at /petstore"), "{out}");
    let id = out.split(['(', ')']).nth(1).unwrap().to_string();

    let (code, out, _) = cli(mgmt, &["list"]);
    assert_eq!(code, 0);
    let row = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("Swagger Petstore") && row.contains("CREATED"), "{row}");

    let (code, out, _) = cli(mgmt, &["lifecycle", &id, "Publish"]);
    assert_eq!((code, out.trim()), (0, format!("API {id} is now Published.").as_str()));
    let (code, _, err) = cli(mgmt, &["lifecycle", &id, "Retire"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("tollgate: error: the server refused the request (400") && err.contains("Block"),
        "{err}"
    );

    // A deploy to an environment that does not exist changes nothing: the revision the
    // command made for it goes again, and the error names the environments there are.
    let publisher = format!("http://{mgmt}/api/am/publisher/v4/apis/{id}");
    let get = |path: &'static str| {
        let url = format!("{publisher}{path}");
        async move {
            let r = tollgate_testkit::http()
                .get(url)
                .basic_auth("admin", Some("test-admin-password"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    assert_eq!(get("/revisions").await["count"], 0);
    let (code, out, err) = cli(mgmt, &["deploy", &id, "--env", "Default", "--env", "internal"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no gateway environment named `internal`; the environments are `Default`"),
        "{err}"
    );
    assert!(
        out.contains("Created Revision 1") && out.contains("Removed revision"),
        "{out}"
    );
    assert_eq!(get("/revisions").await["count"], 0);
    assert_eq!(get("/deployments").await["count"], 0);

    let (code, out, err) = cli(
        mgmt,
        &["deploy", &id, "--env", "Default", "--description", "from the CLI"],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Revision numbers are not reused (as in the reference): the removed one was 1.
    assert!(
        out.contains("Created Revision 2") && out.contains("to Default."),
        "{out}"
    );
    let (_, deps) =
        tollgate_testkit::get_json(format!("http://{mgmt}/api/am/publisher/v4/apis/{id}/deployments")).await;
    // Unauthenticated: the deployments are checked below with credentials instead.
    assert_eq!(deps["code"], 900902);
    let deps: serde_json::Value = tollgate_testkit::http()
        .get(format!("http://{mgmt}/api/am/publisher/v4/apis/{id}/deployments"))
        .basic_auth("admin", Some("test-admin-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deps["list"][0]["name"], "Default");

    let (code, out, _) = cli(mgmt, &["list", "--query", "status:PUBLISHED"]);
    assert_eq!(code, 0);
    assert!(out.contains("PUBLISHED"), "{out}");

    // Wrong password and unreachable server: one clear line, distinct exit codes.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    let out = cmd
        .args([
            "api",
            "list",
            "--server",
            &format!("http://{mgmt}"),
            "--password",
            "wrong",
        ])
        .env_remove("TOLLGATE_ADMIN_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let (code, _, err) = {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        cli(free, &["list"])
    };
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("is a control plane running there?"), "{err}");
}

#[tokio::test]
async fn a_consumer_creates_an_application_keys_and_a_token_from_the_command_line() {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let client = tollgate_testkit::http();
    let signup = client
        .post(format!("http://{mgmt}/api/am/devportal/v3/signup"))
        .json(&serde_json::json!({"username": "cli-dev", "password": "cli-dev-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status().as_u16(), 201);
    let dev = ("cli-dev", "cli-dev-password");

    let (code, out, err) = run(mgmt, &["app", "create", "Shop", "--policy", "10PerMin"], dev);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("Created application Shop (") && out.contains("policy 10PerMin"),
        "{out}"
    );
    let (code, _, err) = run(mgmt, &["app", "create", "Shop"], dev);
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains("Shop"), "{err}");

    let (code, out, err) = run(mgmt, &["app", "keys", "Shop"], dev);
    assert_eq!(code, 0, "{out}{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("consumerSecret:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(err.contains("cannot be shown again"), "{err}");

    let (code, token, err) = run(
        mgmt,
        &[
            "token",
            "Shop",
            "--consumer-secret",
            &secret,
            "--scope",
            "apim:subscribe",
        ],
        dev,
    );
    assert_eq!(code, 0, "{err}");
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT on stdout alone: {token}");
    let apps = client
        .get(format!("http://{mgmt}/api/am/devportal/v3/applications"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(apps.status().as_u16(), 200, "the printed token works");

    let (code, _, err) = run(mgmt, &["token", "Shop", "--consumer-secret", "wrong"], dev);
    assert_eq!(code, 1);
    assert!(err.contains("consumerSecret"), "{err}");
    let (code, _, err) = run(mgmt, &["token", "NoSuchApp", "--consumer-secret", "x"], dev);
    assert_eq!(code, 1);
    assert!(err.contains("no application") && err.contains("NoSuchApp"), "{err}");
}

/// Runs `tollgate ARGS` as a user whose config directory is `home` (where `tollgate login`
/// keeps its token), from `home`, with `stdin` on standard input and no `TOLLGATE_*`
/// variables: nothing but the arguments and the kept login say who is asking.
fn as_user(home: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TOLLGATE_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn login_import_with_publish_and_deploy_signup_and_subscribe_from_the_command_line() {
    use std::os::unix::fs::PermissionsExt as _;
    let backend = tollgate_testkit::backend::RecordingBackend::serve(
        axum::Router::new().fallback(|| async { axum::Json(serde_json::json!({"from": "backend"})) }),
    )
    .await;
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let gateway = node.listener("gateway");
    let server = format!("http://{mgmt}");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let credentials = home.join("config/tollgate/credentials.json");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/fixtures/petstore.yaml");

    // Not logged in, no password, no data directory here: one line saying what to do.
    let (code, _, err) = as_user(home, &["api", "list", "--server", &server], None);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("not logged in") && err.contains("tollgate login"), "{err}");

    // A wrong password keeps nothing.
    let (code, _, err) = as_user(home, &["login", "--server", &server, "--password", "wrong"], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("wrong username or password"), "{err}");
    assert!(!credentials.exists());

    let (code, out, err) = as_user(
        home,
        &["login", "--server", &server, "--password-stdin"],
        Some("test-admin-password\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("Logged in to {server} as admin")), "{out}");
    let kept = std::fs::read_to_string(&credentials).unwrap();
    assert!(
        !kept.contains("test-admin-password"),
        "the password is never kept: {kept}"
    );
    let mode = std::fs::metadata(&credentials).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // From a file to a served API in one command, with the kept login and server; a
    // deploy to an environment that does not exist leaves no revision.
    let (code, out, err) = as_user(
        home,
        &[
            "api",
            "import",
            fixture,
            "--context",
            "/nowhere",
            "--name",
            "Nowhere",
            "--endpoint",
            "http://127.0.0.1:9",
            "--deploy",
            "Nowhere",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no gateway environment named `Nowhere`") && err.contains("`Default`"),
        "{err}"
    );
    assert!(out.contains("Removed revision"), "{out}");
    let (code, out, _) = as_user(home, &["api", "list", "--query", "name:Nowhere", "-o", "json"], None);
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let nowhere = listed["list"][0]["id"].as_str().unwrap().to_string();
    let revisions: serde_json::Value = tollgate_testkit::http()
        .get(format!("{server}/api/am/publisher/v4/apis/{nowhere}/revisions"))
        .basic_auth("admin", Some("test-admin-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revisions["count"], 0, "{revisions}");

    // --security takes only what the gateway knows.
    let (code, _, err) = as_user(
        home,
        &[
            "api",
            "import",
            fixture,
            "--context",
            "/x",
            "--security",
            "oauth2,magic",
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown security `magic`"), "{err}");

    let endpoint = format!("http://{}", backend.addr);
    let (code, out, err) = as_user(
        home,
        &[
            "api",
            "import",
            fixture,
            "--context",
            "/clipets",
            "--endpoint",
            &endpoint,
            "--security",
            "oauth2,api_key",
            "--publish",
            "--deploy",
            "Default",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let api: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(api["lifeCycleStatus"], "PUBLISHED", "{api}");
    assert_eq!(api["securityScheme"], serde_json::json!(["oauth2", "api_key"]), "{api}");
    assert!(
        err.contains("Published API") && err.contains("Deployed revision") && err.contains("to Default"),
        "steps go to stderr under -o json: {err}"
    );

    // A developer signs up and logs in; the kept login is now theirs.
    let (code, out, err) = as_user(
        home,
        &[
            "signup",
            "dora",
            "--email",
            "dora@example.com",
            "--password",
            "dora-password-1",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Created user dora"), "{out}");
    let (code, _, err) = as_user(
        home,
        &[
            "signup",
            "dora",
            "--email",
            "dora@example.com",
            "--password",
            "dora-password-1",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains("dora"), "{err}");
    let (code, _, err) = as_user(
        home,
        &[
            "login",
            "--server",
            &server,
            "--user",
            "dora",
            "--password",
            "dora-password-1",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = as_user(home, &["app", "create", "DoraShop"], None);
    assert_eq!(code, 0, "{err}");
    // Unknown API, unknown application, a plan the API does not offer: one line each.
    for (api, app, plan, says) in [
        ("NoSuchApi", "DoraShop", "Unlimited", ["NoSuchApi", "tollgate api list"]),
        (
            "Swagger Petstore",
            "NoSuchApp",
            "Unlimited",
            ["no application", "NoSuchApp"],
        ),
        (
            "Swagger Petstore",
            "DoraShop",
            "NoSuchPlan",
            ["throttlingPolicy", "NoSuchPlan"],
        ),
    ] {
        let (code, _, err) = as_user(home, &["subscribe", api, "--app", app, "--plan", plan], None);
        assert_eq!(code, 1, "{err}");
        assert!(says.iter().all(|s| err.contains(s)), "{err}");
    }
    let (code, out, err) = as_user(
        home,
        &[
            "subscribe",
            "Swagger Petstore:1.0.0",
            "--app",
            "DoraShop",
            "--plan",
            "Unlimited",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let subscription: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(subscription["status"], "UNBLOCKED", "{subscription}");
    assert_eq!(subscription["throttlingPolicy"], "Unlimited");

    let (code, out, err) = as_user(home, &["app", "keys", "DoraShop", "-o", "json"], None);
    assert_eq!(code, 0, "{err}");
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    let secret = keys["consumerSecret"].as_str().unwrap();
    let (code, token, err) = as_user(home, &["token", "DoraShop", "--consumer-secret", secret], None);
    assert_eq!(code, 0, "{err}");
    let called = tollgate_testkit::http()
        .get(format!("http://{gateway}/clipets/1.0.0/pets"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 200);
    assert_eq!(called.json::<serde_json::Value>().await.unwrap()["from"], "backend");

    // An expired login is renewed with its refresh token, and the renewal kept.
    let mut kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    let old = kept["servers"][&server]["accessToken"].clone();
    kept["servers"][&server]["expiresAt"] = serde_json::json!(0);
    std::fs::write(&credentials, kept.to_string()).unwrap();
    let (code, _, err) = as_user(home, &["app", "create", "DoraShop2"], None);
    assert_eq!(code, 0, "{err}");
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    assert_ne!(kept["servers"][&server]["accessToken"], old, "a new access token");
    assert!(kept["servers"][&server]["expiresAt"].as_i64().unwrap() > 0);

    // Logging out revokes the kept token and forgets it.
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    let dora_token = kept["servers"][&server]["accessToken"].as_str().unwrap().to_string();
    let (code, out, err) = as_user(home, &["logout"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Logged out"), "{out}");
    let apps = tollgate_testkit::http()
        .get(format!("{server}/api/am/devportal/v3/applications"))
        .bearer_auth(&dora_token)
        .send()
        .await
        .unwrap();
    assert_eq!(apps.status(), 401, "the kept token is revoked");
    let (code, _, err) = as_user(home, &["app", "create", "Later", "--server", &server], None);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("not logged in"), "{err}");
    let (code, _, err) = as_user(home, &["logout", "--server", &server], None);
    assert_eq!(code, 64);
    assert!(err.contains("not logged in"), "{err}");
}
