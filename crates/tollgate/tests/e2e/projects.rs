//! API projects in the reference's format, end to end: projects written as the reference
//! exports them import, deploy and answer through the gateway; a node's APIs exported
//! and imported into fresh nodes (SQLite and PostgreSQL) export again the same and answer
//! the same; `tollgate apply` creates, changes nothing, follows one change, prunes, and
//! leaves the server as it was when a project is bad; hostile archives are refused.

use crate::cli::run;
use crate::gateway_flow::{ADMIN, Client, backend, node_with, standard_operations};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the reference's projects are kept (the project crate's fixtures).
fn reference_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../project/tests/fixtures/reference")
}

/// Copies the reference projects into `to`, their backends pointed at `backend`.
fn copy_fixtures(to: &Path, backend: SocketAddr) {
    let from = reference_fixtures();
    let mut pending = vec![from.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.strip_prefix(&from).unwrap());
            if path.is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let bytes = match String::from_utf8(bytes) {
                    Ok(text) => text
                        .replace("http://backend.internal:8080", &format!("http://{backend}/v1"))
                        .into_bytes(),
                    Err(e) => e.into_bytes(),
                };
                std::fs::write(target, bytes).unwrap();
            }
        }
    }
}

/// `tollgate ARGS` as the administrator, with extra environment variables for the
/// command (the params file's `${VAR}`s).
fn tollgate_cli(mgmt: SocketAddr, args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args).args([
        "--server",
        &format!("http://{mgmt}"),
        "--user",
        ADMIN.0,
        "--password",
        ADMIN.1,
    ]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TOLLGATE_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Imports the three reference projects (PaymentsAPI with its params for `prod`).
fn import_reference_projects(mgmt: SocketAddr, dir: &Path, backend: SocketAddr) -> String {
    let mut printed = String::new();
    for name in ["OrderAPI-1.0.0", "InventoryAPI-2.1.0"] {
        let path = dir.join(name);
        let (code, out, err) = run(mgmt, &["import", "api", "-f", path.to_str().unwrap()], ADMIN);
        assert_eq!(code, 0, "{name}: {out}{err}");
        printed.push_str(&out);
    }
    let path = dir.join("PaymentsAPI-1.0.0");
    let params = dir.join("params/payments_params.yaml");
    let env = [
        ("PAYMENTS_BACKEND", format!("http://{backend}/v1")),
        ("PAYMENTS_PASSWORD", "not-used".to_string()),
    ];
    let args = [
        "import",
        "api",
        "-f",
        path.to_str().unwrap(),
        "--params",
        params.to_str().unwrap(),
        "-e",
        "prod",
    ];
    let (code, out, err) = tollgate_cli(mgmt, &args, &env);
    assert_eq!(code, 0, "{out}{err}");
    printed.push_str(&out);
    printed
}

/// An API's id by name, through the Publisher API.
async fn api_id(c: &Client, name: &str) -> String {
    let (status, body) = c
        .rest(
            ADMIN,
            Method::GET,
            &format!("/publisher/v4/apis?query=name:{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no API {name}: {body}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What the backend received for a call through the gateway, once the gateway serves it.
async fn backend_uri(c: &Client, path: &str, token: &str) -> String {
    let (status, body) = c.eventually(path, token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["uri"].as_str().unwrap_or_default().to_string()
}

/// DEV's token for an application subscribed to each named API.
async fn token_for(c: &Client, names: &[&str]) -> String {
    let (app, ck, cs, _) = c.app_with_keys("projects-app").await;
    for name in names {
        let id = api_id(c, name).await;
        c.subscribe_app(&app, &id).await;
    }
    c.token(&ck, &cs).await
}

/// The calls every node serving the reference projects must answer alike: path → the
/// backend path it reaches.
const CALLS: [&str; 3] = [
    "/orders/1.0.0/orders",
    "/payments/1.0.0/charges/42",
    "/inventory/2.1.0/items/sku-1",
];

async fn answers(c: &Client, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    for path in CALLS {
        out.push(backend_uri(c, path, token).await);
    }
    out
}

#[tokio::test]
async fn reference_projects_import_deploy_and_answer_through_the_gateway() {
    let backend = backend().await;
    let (_node, c) = node_with(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path(), backend.addr);

    // Without its params, PaymentsAPI names an environment this node lacks: refused,
    // and nothing of it is written.
    let path = dir.path().join("PaymentsAPI-1.0.0");
    let (code, out, err) = run(c.mgmt, &["import", "api", "-f", path.to_str().unwrap()], ADMIN);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("deployment_environments#data[0].deploymentEnvironment")
            && err.contains("no gateway environment named `Staging`"),
        "{err}"
    );
    let (_, list) = c.rest(ADMIN, Method::GET, "/publisher/v4/apis", None).await;
    assert_eq!(list["count"], 0, "{list}");

    let printed = import_reference_projects(c.mgmt, dir.path(), backend.addr);
    assert!(printed.contains("Created OrderAPI 1.0.0"), "{printed}");
    for warned in [
        "data.endpointConfig.endpoint_security is not supported",
        "data.responseCachingEnabled is not supported",
        "data.operations[2].operationPolicies is not supported",
        "Image/icon.png is not imported",
        "security is not applied",
    ] {
        assert!(printed.contains(warned), "no warning `{warned}`:\n{printed}");
    }

    // Lifecycle, documents and deployments are as the projects say.
    let order = api_id(&c, "OrderAPI").await;
    let (_, api) = c
        .rest(ADMIN, Method::GET, &format!("/publisher/v4/apis/{order}"), None)
        .await;
    assert_eq!(api["lifeCycleStatus"], "PUBLISHED");
    let (_, docs) = c
        .rest(
            ADMIN,
            Method::GET,
            &format!("/publisher/v4/apis/{order}/documents"),
            None,
        )
        .await;
    assert_eq!(docs["count"], 4, "{docs}");
    let guide = docs["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "Getting started")
        .unwrap()["documentId"]
        .as_str()
        .unwrap()
        .to_string();
    let text = c
        .http
        .get(format!(
            "http://{}/api/am/publisher/v4/apis/{order}/documents/{guide}/content",
            c.mgmt
        ))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("call `GET /orders`"), "{text}");
    let payments = api_id(&c, "PaymentsAPI").await;
    let (_, deps) = c
        .rest(
            ADMIN,
            Method::GET,
            &format!("/publisher/v4/apis/{payments}/deployments"),
            None,
        )
        .await;
    assert_eq!(deps["list"][0]["name"], "Default", "{deps}");

    // Calls reach the backends the projects (and the params) name.
    let token = token_for(&c, &["OrderAPI", "PaymentsAPI", "InventoryAPI"]).await;
    let got = answers(&c, &token).await;
    assert_eq!(got[0], "/v1/orders-v1/orders");
    assert_eq!(got[1], "/v1/payments-live/charges/42");
    assert!(got[2].ends_with("/items/sku-1"), "{got:?}");
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        seen.insert(backend_uri(&c, CALLS[2], &token).await);
    }
    assert_eq!(
        seen,
        BTreeSet::from([
            "/v1/stock-a/items/sku-1".to_string(),
            "/v1/stock-b/items/sku-1".to_string()
        ]),
        "load-balanced endpoints take turns"
    );
}

/// Reads an exported tree into path → content, with ids and timestamps blanked.
fn comparable_tree(root: &Path) -> BTreeMap<String, String> {
    let files = tollgate_project::archive::read_dir(root, tollgate_project::Limits::default()).unwrap();
    files
        .files
        .into_iter()
        .map(|(path, bytes)| {
            let text = String::from_utf8_lossy(&bytes).to_string();
            let text = if path.ends_with(".yaml") && !path.starts_with("Docs/") || path.ends_with("document.yaml") {
                let mut value: Value = yaml_value(&text);
                blank_ids_and_times(&mut value);
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                text
            };
            (path, text)
        })
        .collect()
}

fn yaml_value(text: &str) -> Value {
    serde_json::to_value(yaml_serde::from_str::<Value>(text).unwrap()).unwrap()
}

fn blank_ids_and_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if matches!(
                    k.as_str(),
                    "id" | "documentId" | "createdTime" | "lastUpdatedTime" | "createdBy" | "lastUpdatedBy"
                ) {
                    *child = json!("-");
                } else {
                    blank_ids_and_times(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(blank_ids_and_times),
        _ => {}
    }
}

/// Exports every API of the node at `mgmt` into `dir` as directories.
fn export_all(mgmt: SocketAddr, dir: &Path) -> String {
    let (code, out, err) = run(mgmt, &["export", "apis", "--unzip", "-d", dir.to_str().unwrap()], ADMIN);
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[tokio::test]
async fn every_api_of_a_node_moves_to_fresh_nodes_and_exports_and_answers_the_same() {
    let backend = backend().await;
    let (_a, a) = node_with(&[]).await;
    let fixtures = tempfile::tempdir().unwrap();
    copy_fixtures(fixtures.path(), backend.addr);
    import_reference_projects(a.mgmt, fixtures.path(), backend.addr);
    // And one made through the REST API, with a shared scope and a CORS policy.
    a.deploy_api(
        "Pets",
        "/pets",
        json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}}),
    )
    .await;
    let token = token_for(&a, &["OrderAPI", "PaymentsAPI", "InventoryAPI", "Pets"]).await;
    let before = answers(&a, &token).await;
    let pets_before = backend_uri(&a, "/pets/1.0.0/pets/7", &token).await;

    let exported = tempfile::tempdir().unwrap();
    let out = export_all(a.mgmt, exported.path());
    assert!(out.contains("Exported 4 APIs"), "{out}");
    let original = comparable_tree(exported.path());

    // A fresh SQLite node, and a fresh all-in-one node on PostgreSQL when there is one.
    let pg = match (
        tollgate_testkit::postgres("projects_am").await,
        tollgate_testkit::postgres("projects_shared").await,
    ) {
        (Some(am), Some(shared)) => Some((am, shared)),
        _ => None,
    };
    let mut targets = vec![("sqlite", Vec::new())];
    if let Some((am, shared)) = &pg {
        targets.push((
            "postgres",
            vec![
                ("TOLLGATE_DATABASE__AM__URL", am.url().to_string()),
                ("TOLLGATE_DATABASE__SHARED__URL", shared.url().to_string()),
            ],
        ));
    }
    for (engine, env) in targets {
        let (_b, b) = node_with(&env).await;
        let (code, out, err) = run(b.mgmt, &["apply", "-f", exported.path().to_str().unwrap()], ADMIN);
        assert_eq!(code, 0, "{engine}: {out}{err}");
        assert_eq!(
            out.lines().filter(|l| l.starts_with("created ")).count(),
            4,
            "{engine}: {out}"
        );
        let (code, out, _) = run(b.mgmt, &["apply", "-f", exported.path().to_str().unwrap()], ADMIN);
        assert_eq!(code, 0);
        assert!(out.contains("Nothing to change"), "{engine}: {out}");

        let again = tempfile::tempdir().unwrap();
        export_all(b.mgmt, again.path());
        let copy = comparable_tree(again.path());
        assert_eq!(
            copy.keys().collect::<Vec<_>>(),
            original.keys().collect::<Vec<_>>(),
            "{engine}: the same files"
        );
        for (path, text) in &original {
            assert_eq!(&copy[path], text, "{engine}: {path} differs after the round trip");
        }
        let token = token_for(&b, &["OrderAPI", "PaymentsAPI", "InventoryAPI", "Pets"]).await;
        assert_eq!(
            answers(&b, &token).await[..2],
            before[..2],
            "{engine}: calls answer the same"
        );
        assert_eq!(
            backend_uri(&b, "/pets/1.0.0/pets/7", &token).await,
            pets_before,
            "{engine}"
        );
    }
}

/// Writes a small API project (a directory) for the apply tests.
fn write_project(root: &Path, name: &str, description: &str, policy: &str, backend: SocketAddr) {
    let dir = root.join(format!("{name}-1.0.0"));
    std::fs::create_dir_all(&dir).unwrap();
    let api = json!({
        "type": "api", "version": "v4.5.0",
        "data": {
            "name": name, "version": "1.0.0", "context": format!("/{}", name.to_lowercase()),
            "description": description, "policies": [policy], "lifeCycleStatus": "PUBLISHED",
            "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": format!("http://{backend}/v1")}},
            "operations": standard_operations(),
            "scopes": [{"scope": {"name": "pets_write"}, "shared": true}],
        }
    });
    std::fs::write(dir.join("api.yaml"), yaml_serde::to_string(&api).unwrap()).unwrap();
    let deployments = json!({"type": "deployment_environments", "version": "v4.5.0",
        "data": [{"deploymentEnvironment": "Default", "displayOnDevportal": true}]});
    std::fs::write(
        dir.join("deployment_environments.yaml"),
        yaml_serde::to_string(&deployments).unwrap(),
    )
    .unwrap();
}

/// The description of the API named `name`, or `None` when there is no such API.
async fn description(c: &Client, name: &str) -> Option<String> {
    let (_, list) = c
        .rest(
            ADMIN,
            Method::GET,
            &format!("/publisher/v4/apis?query=name:{name}"),
            None,
        )
        .await;
    let id = list["list"].as_array()?.iter().find(|a| a["name"] == name)?["id"]
        .as_str()?
        .to_string();
    let (_, api) = c
        .rest(ADMIN, Method::GET, &format!("/publisher/v4/apis/{id}"), None)
        .await;
    Some(api["description"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn apply_creates_changes_nothing_follows_a_change_prunes_and_refuses_as_a_whole() {
    let backend = backend().await;
    let (_node, c) = node_with(&[]).await;
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    let path = root.to_str().unwrap();
    write_project(root, "Alpha", "first", "Gold", backend.addr);
    write_project(root, "Beta", "second", "Gold", backend.addr);

    let (code, out, err) = run(c.mgmt, &["apply", "-f", path], ADMIN);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("created Alpha 1.0.0") && out.contains("created Beta 1.0.0"),
        "{out}"
    );
    assert!(out.contains("2 created, 0 updated, 0 deleted, 0 unchanged"), "{out}");
    let token = token_for(&c, &["Alpha"]).await;
    assert_eq!(backend_uri(&c, "/alpha/1.0.0/pets/1", &token).await, "/v1/pets/1");

    let (code, out, _) = run(c.mgmt, &["apply", "-f", path], ADMIN);
    assert_eq!(code, 0);
    assert!(out.contains("Nothing to change: the server matches"), "{out}");
    assert!(!out.contains("created") && !out.contains("updated"), "{out}");

    // One field changes: --dry-run shows it and writes nothing; apply then makes it so.
    write_project(root, "Alpha", "first, revised", "Gold", backend.addr);
    let (code, out, _) = run(c.mgmt, &["apply", "-f", path, "--dry-run"], ADMIN);
    assert_eq!(code, 0);
    assert!(
        out.contains("would update Alpha 1.0.0") && out.contains("changed description"),
        "{out}"
    );
    assert!(out.contains("unchanged Beta 1.0.0"), "{out}");
    assert_eq!(description(&c, "Alpha").await.as_deref(), Some("first"));
    let (code, out, _) = run(c.mgmt, &["apply", "-f", path], ADMIN);
    assert_eq!(code, 0);
    assert!(
        out.contains("updated Alpha 1.0.0") && out.contains("deployed revision 2 to Default"),
        "{out}"
    );
    assert_eq!(description(&c, "Alpha").await.as_deref(), Some("first, revised"));

    // A bad project (an unknown business plan) among good changes: nothing is written.
    write_project(root, "Alpha", "third", "Gold", backend.addr);
    write_project(root, "Gamma", "new", "NoSuchPlan", backend.addr);
    let (code, out, err) = run(c.mgmt, &["apply", "-f", path], ADMIN);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Gamma-1.0.0") && out.contains("NoSuchPlan"), "{out}");
    assert!(
        err.contains("1 of 3 projects were refused; nothing was changed"),
        "{err}"
    );
    assert_eq!(description(&c, "Alpha").await.as_deref(), Some("first, revised"));
    assert_eq!(description(&c, "Gamma").await, None);

    // --prune removes what the tree no longer has (--dry-run first: only says so).
    std::fs::remove_dir_all(root.join("Gamma-1.0.0")).unwrap();
    std::fs::remove_dir_all(root.join("Beta-1.0.0")).unwrap();
    let (code, out, _) = run(c.mgmt, &["apply", "-f", path, "--prune", "--dry-run"], ADMIN);
    assert_eq!(code, 0);
    assert!(out.contains("would delete Beta 1.0.0"), "{out}");
    assert!(description(&c, "Beta").await.is_some());
    let (code, out, err) = run(c.mgmt, &["apply", "-f", path, "--prune"], ADMIN);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("deleted Beta 1.0.0") && out.contains("updated Alpha 1.0.0"),
        "{out}"
    );
    assert_eq!(description(&c, "Beta").await, None);
    assert_eq!(description(&c, "Alpha").await.as_deref(), Some("third"));
}

/// A zip of `entries` written as given (names unchecked), for hostile archives.
fn raw_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        out.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

const API_YAML: &str =
    "type: api\nversion: v4.2.0\ndata:\n  name: Hostile\n  version: 1.0.0\n  context: /hostile\n  policies: [Gold]\n";

/// `POST /apis/import` with a zip (and query), as `who`; status and body.
async fn post_import(c: &Client, who: (&str, &str), zip: Vec<u8>, query: &str) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(zip).file_name("p.zip"));
    let r = c
        .http
        .post(format!("http://{}/api/am/publisher/v4/apis/import{query}", c.mgmt))
        .basic_auth(who.0, Some(who.1))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The first error's field and message of a refusal.
fn first_error(body: &Value) -> String {
    format!(
        "{} {}",
        body["error"][0]["code"].as_str().unwrap_or(""),
        body["error"][0]["message"]
            .as_str()
            .unwrap_or(body["description"].as_str().unwrap_or(""))
    )
}

#[tokio::test]
async fn hostile_and_broken_projects_are_refused_before_anything_is_written() {
    let (_node, c) = node_with(&[]).await;
    let bomb = {
        // 100 MiB of zeros deflate to about 100 KB.
        let zeros = vec![0u8; 100 << 20];
        raw_zip(&[("p/api.yaml", API_YAML.as_bytes()), ("p/Docs/a/a", &zeros)])
    };
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let symlink = {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.start_file("p/api.yaml", zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(API_YAML.as_bytes()).unwrap();
        out.add_symlink(
            "p/Definitions/swagger.yaml",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        out.finish().unwrap().into_inner()
    };
    let many: Vec<(String, Vec<u8>)> = (0..2_100).map(|i| (format!("p/Docs/d{i}/x"), vec![b'x'])).collect();
    let many = raw_zip(&many.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect::<Vec<_>>());
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("zip-slip", raw_zip(&[("p/api.yaml", API_YAML.as_bytes()), ("p/../../etc/cron.d/x", b"x")]), "file", "leaves the project"),
        ("absolute path", raw_zip(&[("/p/api.yaml", API_YAML.as_bytes())]), "file", "absolute path"),
        ("zip bomb", bomb, "file", "inflates to more than"),
        ("symlink", symlink, "file", "symbolic link"),
        ("too many entries", many, "file", "entries; at most 2000"),
        ("not a zip", b"PK\x03\x04 but not really".to_vec(), "file", "not a zip archive"),
        ("no api.yaml", raw_zip(&[("p/README.md", b"hi")]), "file", "no api.yaml"),
        ("YAML error", raw_zip(&[("p/api.yaml", b"type: api\nversion: v4.2.0\ndata:\n  name: [oops\n")]), "api.yaml", "line"),
        ("unknown format version", raw_zip(&[("p/api.yaml", b"type: api\nversion: v9.0.0\ndata: {}\n")]), "api.yaml", "`v9.0.0` is not supported"),
        ("wrong type", raw_zip(&[("p/api.yaml", b"type: application\nversion: v4.2.0\ndata: {}\n")]), "api.yaml#type", "must have type api"),
        ("bad field", raw_zip(&[("p/api.yaml", b"type: api\nversion: v4.2.0\ndata: {name: X, version: '1', context: /x, operations: [{target: /a, verb: [1]}]}\n")]), "api.yaml#data.operations[0].verb", "invalid type"),
        ("bad definition", raw_zip(&[("p/api.yaml", API_YAML.as_bytes()), ("p/Definitions/swagger.yaml", b"openapi: 3.0.1\ninfo: {title: x, version: '1'}\npaths: 7\n")]), "Definitions/swagger.yaml#", ""),
        ("unparsable definition", raw_zip(&[("p/api.yaml", API_YAML.as_bytes()), ("p/Definitions/swagger.yaml", b"{{{")]), "Definitions/swagger.yaml", ""),
        ("unknown plan", raw_zip(&[("p/api.yaml", API_YAML.replace("Gold", "Platinum").as_bytes())]), "api.yaml#data.policies[0]", "unknown subscription policy `Platinum`"),
        ("bad document", raw_zip(&[("p/api.yaml", API_YAML.as_bytes()), ("p/Docs/x/document.yaml", b"type: document\nversion: v4.2.0\ndata: {name: x, type: NOVEL, sourceType: INLINE}\n")]), "Docs[x]#data.type", ""),
    ];
    for (what, zip, field, message) in cases {
        let (status, body) = post_import(&c, ADMIN, zip, "").await;
        assert_eq!(status, 400, "{what}: {body}");
        let got = first_error(&body);
        assert!(got.starts_with(field), "{what}: field `{field}` expected: {got}");
        assert!(got.contains(message), "{what}: `{message}` expected: {got}");
    }
    let (_, list) = c.rest(ADMIN, Method::GET, "/publisher/v4/apis", None).await;
    assert_eq!(list["count"], 0, "nothing was written: {list}");

    // No `file` part, and a body that is not multipart.
    let r = c
        .http
        .post(format!("http://{}/api/am/publisher/v4/apis/import", c.mgmt))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(first_error(&r.json().await.unwrap()).starts_with("file "));
    let r = c
        .http
        .post(format!("http://{}/api/am/publisher/v4/apis/import", c.mgmt))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A good project: created once; again without overwrite is 409; a dry run of a change
    // writes nothing; the developer (no creator role) may not import at all.
    let good = raw_zip(&[("Hostile-1.0.0/api.yaml", API_YAML.as_bytes())]);
    let (status, body) = post_import(&c, ADMIN, good.clone(), "").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("CREATED")), "{body}");
    let (status, body) = post_import(&c, ADMIN, good.clone(), "").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["description"].as_str().unwrap().contains("overwrite=true"),
        "{body}"
    );
    let changed = raw_zip(&[(
        "Hostile-1.0.0/api.yaml",
        API_YAML.replace("context: /hostile", "context: /changed").as_bytes(),
    )]);
    let (status, body) = post_import(&c, ADMIN, changed, "?overwrite=true&dryRun=true").await;
    assert_eq!(
        (status, body["status"].as_str(), body["dryRun"].as_bool()),
        (200, Some("UPDATED"), Some(true)),
        "{body}"
    );
    let id = body["id"].as_str().unwrap().to_string();
    let (_, api) = c
        .rest(ADMIN, Method::GET, &format!("/publisher/v4/apis/{id}"), None)
        .await;
    assert_eq!(api["context"], "/hostile");
    let (status, body) = post_import(&c, crate::gateway_flow::DEV, good.clone(), "?overwrite=true").await;
    assert_eq!(status, 403, "{body}");
    // The lifecycle: a project moves the API along it; a retired API stays retired; a
    // project that names no state keeps the API's.
    let with_state = |state: &str| {
        raw_zip(&[(
            "Hostile-1.0.0/api.yaml",
            API_YAML
                .replace(
                    "policies: [Gold]",
                    &format!("policies: [Gold]\n  lifeCycleStatus: {state}"),
                )
                .as_bytes(),
        )])
    };
    let (status, body) = post_import(&c, ADMIN, with_state("RETIRED"), "?overwrite=true").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["changes"].to_string().contains("lifecycle Created → Retired"),
        "{body}"
    );
    let (status, body) = post_import(&c, ADMIN, with_state("PUBLISHED"), "?overwrite=true").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        first_error(&body).starts_with("api.yaml#data.lifeCycleStatus"),
        "{body}"
    );
    let (status, body) = post_import(&c, ADMIN, good.clone(), "?overwrite=true").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("UNCHANGED")), "{body}");
    let (_, api) = c
        .rest(ADMIN, Method::GET, &format!("/publisher/v4/apis/{id}"), None)
        .await;
    assert_eq!(api["lifeCycleStatus"], "RETIRED");
    // Params naming an entry the file lacks, and an entry without a params file.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(good.clone()).file_name("p.zip"))
        .text(
            "params",
            "environments:\n  - name: dev\n    configs: {policies: [Gold]}\n",
        );
    let r = c
        .http
        .post(format!(
            "http://{}/api/am/publisher/v4/apis/import?overwrite=true&paramsEnvironment=prod",
            c.mgmt
        ))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(first_error(&body).contains("no entry named `prod`"), "{body}");
    let (status, body) = post_import(&c, ADMIN, good, "?overwrite=true&paramsEnvironment=prod").await;
    assert_eq!(status, 400, "{body}");
    assert!(first_error(&body).starts_with("paramsEnvironment"), "{body}");
}

#[tokio::test]
async fn export_answers_the_reference_parameters_and_refuses_bad_ones() {
    let backend = backend().await;
    let (_node, c) = node_with(&[]).await;
    let id = c
        .deploy_api(
            "Exported",
            "/exported",
            json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}}),
        )
        .await;
    let get = |query: String| {
        let url = format!("http://{}/api/am/publisher/v4/apis/export?{query}", c.mgmt);
        let http = c.http.clone();
        async move {
            let r = http.get(url).basic_auth(ADMIN.0, Some(ADMIN.1)).send().await.unwrap();
            let status = r.status().as_u16();
            let disposition = r
                .headers()
                .get("content-disposition")
                .map(|v| v.to_str().unwrap().to_string());
            (status, disposition, r.bytes().await.unwrap().to_vec())
        }
    };
    let (status, disposition, zip) = get(format!("apiId={id}&format=JSON&preserveStatus=false")).await;
    assert_eq!(status, 200);
    assert_eq!(
        disposition.as_deref(),
        Some("attachment; filename=\"admin-Exported-1.0.0.zip\"")
    );
    let files = tollgate_project::archive::read_zip(&zip, tollgate_project::Limits::default()).unwrap();
    assert_eq!(files.top.as_deref(), Some("Exported-1.0.0"));
    let api: Value = serde_json::from_slice(files.get("api.json").unwrap()).unwrap();
    assert_eq!(
        (api["type"].as_str(), api["data"]["lifeCycleStatus"].as_str()),
        (Some("api"), Some("CREATED"))
    );
    assert!(files.get("Definitions/swagger.json").is_some() && files.get("deployment_environments.json").is_some());
    let (status, _, zip) = get("name=Exported&version=1.0.0&latestRevision=true".into()).await;
    assert_eq!(status, 200);
    let files = tollgate_project::archive::read_zip(&zip, tollgate_project::Limits::default()).unwrap();
    assert!(String::from_utf8_lossy(files.get("api.yaml").unwrap()).contains("lifeCycleStatus: PUBLISHED"));
    for (query, status, needle) in [
        (format!("apiId={id}&format=XML"), 400, "format"),
        ("name=Exported".to_string(), 400, "apiId"),
        ("name=Exported&version=9.9.9".to_string(), 404, ""),
        (format!("apiId={id}&providerName=someone-else"), 404, ""),
        (format!("apiId={id}&revisionNumber=seven"), 400, "revisionNumber"),
        (format!("apiId={id}&revisionNumber=7"), 404, ""),
    ] {
        let (got, _, body) = get(query.clone()).await;
        assert_eq!(got, status, "{query}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains(needle), "{query}");
    }
}

#[tokio::test]
async fn policies_and_applications_move_between_nodes_and_bad_files_are_refused() {
    use crate::gateway_flow::DEV;
    let backend = backend().await;
    let (_a, a) = node_with(&[]).await;
    let (_b, b) = node_with(&[]).await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_str().unwrap().to_string();

    // A subscription policy, exported from A and imported into B.
    let silver = json!({"policyName": "Copper", "description": "500 a minute", "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
        "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 500}}});
    let (status, body) = a
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/throttling/policies/subscription",
            Some(silver),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (code, out, err) = run(
        a.mgmt,
        &["export", "policy", "-n", "Copper", "-t", "sub", "-d", &dir],
        ADMIN,
    );
    assert_eq!(code, 0, "{out}{err}");
    let file = work.path().join("Subscription-Copper.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("type: throttling policy\nsubtype: subscription policy\nversion: v4."),
        "{text}"
    );
    let file = file.to_str().unwrap();
    let (code, out, err) = run(b.mgmt, &["import", "policy", "-f", file], ADMIN);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Created subscription policy Copper"), "{out}");
    let (code, _, err) = run(b.mgmt, &["import", "policy", "-f", file], ADMIN);
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains("--update"), "{err}");
    let (code, out, _) = run(b.mgmt, &["import", "policy", "-f", file, "--update"], ADMIN);
    assert_eq!((code, out.starts_with("Unchanged")), (0, true), "{out}");
    std::fs::write(file, text.replace("requestCount: 500", "requestCount: 600")).unwrap();
    let (code, out, _) = run(b.mgmt, &["import", "policy", "-f", file, "--update"], ADMIN);
    assert_eq!((code, out.starts_with("Updated")), (0, true), "{out}");
    let (_, got) = b
        .rest(
            ADMIN,
            Method::GET,
            "/admin/v4/throttling/policies/subscription/Copper",
            None,
        )
        .await;
    assert_eq!(got["defaultLimit"]["requestCount"]["requestCount"], 600, "{got}");
    // Bad policy files change nothing.
    for (text, needle) in [
        (
            text.replace("subtype: subscription policy", "subtype: premium policy"),
            "subtype",
        ),
        (
            text.replace("requestCount: 500", "requestCount: -5")
                .replace("policyName: Copper", "policyName: Tin"),
            "requestCount",
        ),
        (text.replace("version: v4.5.0", "version: v3.2.0"), "v3.2.0"),
        ("{not yaml".to_string(), "file"),
    ] {
        std::fs::write(work.path().join("bad.yaml"), &text).unwrap();
        let bad = work.path().join("bad.yaml");
        let r = b
            .http
            .post(format!("http://{}/api/am/admin/v4/throttling/policies/import", b.mgmt))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .multipart(reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(std::fs::read(&bad).unwrap()).file_name("bad.yaml"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{text}");
        let body: Value = r.json().await.unwrap();
        assert!(body.to_string().contains(needle), "{needle}: {body}");
    }
    let (_, bronze) = b
        .rest(
            ADMIN,
            Method::GET,
            "/admin/v4/throttling/policies/subscription/Tin",
            None,
        )
        .await;
    assert_eq!(bronze["code"], 404, "{bronze}");

    // An application with a subscription, exported by its owner on A, imported on B.
    for node in [&a, &b] {
        let tree = tempfile::tempdir().unwrap();
        write_project(tree.path(), "Shop", "the shop", "Gold", backend.addr);
        let (code, out, err) = run(node.mgmt, &["apply", "-f", tree.path().to_str().unwrap()], ADMIN);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (app, _, _, _) = a.app_with_keys("mobile").await;
    let shop = api_id(&a, "Shop").await;
    a.subscribe_app(&app, &shop).await;
    let (code, out, err) = run(
        a.mgmt,
        &["export", "app", "-n", "mobile", "--with-keys", "-d", &dir],
        DEV,
    );
    assert_eq!(code, 0, "{out}{err}");
    let zip_path = work.path().join(format!("{}_mobile.zip", DEV.0));
    let files =
        tollgate_project::archive::read_zip(&std::fs::read(&zip_path).unwrap(), tollgate_project::Limits::default())
            .unwrap();
    assert_eq!(files.top.as_deref(), Some(format!("{}-mobile", DEV.0).as_str()));
    let text = String::from_utf8_lossy(files.get("application.yaml").unwrap()).to_string();
    assert!(
        text.contains("consumerKey:") && text.contains("apiName: Shop"),
        "{text}"
    );
    assert!(!text.contains("consumerSecret"), "secrets never leave: {text}");

    let zip = zip_path.to_str().unwrap();
    let (code, out, err) = run(b.mgmt, &["import", "app", "-f", zip], DEV);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("Created application mobile") && out.contains("subscribed to Shop 1.0.0 with Gold"),
        "{out}"
    );
    assert!(out.contains("keys are not imported"), "{out}");
    let created = out.clone();
    let (code, _, err) = run(b.mgmt, &["import", "app", "-f", zip], DEV);
    assert_eq!(code, 1);
    assert!(err.contains("409"), "{err}");
    let (code, out, _) = run(b.mgmt, &["import", "app", "-f", zip, "--update"], DEV);
    assert_eq!((code, out.starts_with("Unchanged")), (0, true), "{out}");
    // The imported application works on B once it has keys.
    let imported = created.split(['(', ')']).nth(1).unwrap().to_string();
    let (status, keys) = b
        .rest(
            DEV,
            Method::POST,
            &format!("/devportal/v3/applications/{imported}/generate-keys"),
            Some(json!({"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]})),
        )
        .await;
    assert_eq!(status, 200, "{keys}");
    let token = b
        .token(
            keys["consumerKey"].as_str().unwrap(),
            keys["consumerSecret"].as_str().unwrap(),
        )
        .await;
    assert_eq!(backend_uri(&b, "/shop/1.0.0/pets/3", &token).await, "/v1/pets/3");

    // A project naming an API the node lacks is refused whole; skipSubscriptions imports
    // the application alone. Someone else's owner needs an administrator.
    let orphan = raw_zip(&[(
        "x-orphan/application.yaml",
        b"type: application\nversion: v4.2.0\ndata:\n  applicationInfo: {name: orphan, throttlingPolicy: Unlimited}\n  subscribedAPIs:\n    - apiId: {apiName: Missing, version: 1.0.0}\n      throttlingPolicy: Gold\n",
    )]);
    let post = |query: &'static str, zip: Vec<u8>, who: (&'static str, &'static str)| {
        let url = format!("http://{}/api/am/devportal/v3/applications/import{query}", b.mgmt);
        let http = b.http.clone();
        async move {
            let r = http
                .post(url)
                .basic_auth(who.0, Some(who.1))
                .multipart(
                    reqwest::multipart::Form::new()
                        .part("file", reqwest::multipart::Part::bytes(zip).file_name("a.zip")),
                )
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (_, before) = b.rest(DEV, Method::GET, "/devportal/v3/applications", None).await;
    let (status, body) = post("", orphan.clone(), DEV).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        first_error(&body).starts_with("application.yaml#data.subscribedAPIs[0]"),
        "{body}"
    );
    let (_, after) = b.rest(DEV, Method::GET, "/devportal/v3/applications", None).await;
    assert_eq!(after["count"], before["count"], "nothing was written: {after}");
    let (status, body) = post("?skipSubscriptions=true", orphan.clone(), DEV).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("CREATED")), "{body}");
    let (status, body) = post("?appOwner=admin", orphan.clone(), DEV).await;
    assert_eq!(status, 403, "{body}");
    for (zip, field) in [
        (raw_zip(&[("x/application.yaml", b"type: application\nversion: v4.2.0\ndata:\n  applicationInfo: {name: bad, throttlingPolicy: NoSuchTier}\n")]), "application.yaml#data.applicationInfo.throttlingPolicy"),
        (raw_zip(&[("x/other.yaml", b"x")]), "file"),
        (raw_zip(&[("x/../../application.yaml", b"x")]), "file"),
    ] {
        let (status, body) = post("", zip, DEV).await;
        assert_eq!(status, 400, "{body}");
        assert!(first_error(&body).starts_with(field), "{field}: {body}");
    }
    // Export refuses what it cannot find or may not show.
    for (query, status) in [
        ("appName=nope", 404),
        ("", 400),
        ("appName=mobile&appOwner=admin", 403),
        ("appName=mobile&format=XML", 400),
    ] {
        let r = b
            .http
            .get(format!(
                "http://{}/api/am/devportal/v3/applications/export?{query}",
                b.mgmt
            ))
            .basic_auth(DEV.0, Some(DEV.1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{query}");
    }
}
