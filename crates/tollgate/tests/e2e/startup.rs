//! The quick start: `tollgate serve` with no config and no other service.

use crate::{READY, tollgate};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tollgate_testkit::NodeBuilder;

#[tokio::test]
async fn all_in_one_with_no_config_is_ready_on_sqlite_and_prints_the_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    // No TOLLGATE_ADMIN_PASSWORD: the node must generate one.
    let mut node = tollgate()
        .env_remove("TOLLGATE_ADMIN_PASSWORD")
        .data_dir(dir.path())
        .spawn();
    let mgmt = node.wait_ready(READY).await;

    let ready: serde_json::Value = tollgate_testkit::get_json(format!("http://{mgmt}/health/ready"))
        .await
        .1;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["databases"]["am"], "ok");
    assert_eq!(ready["databases"]["shared"], "ok");
    assert_eq!(
        ready["gateway"]["state"], "state loaded",
        "ready only once the gateway has its state"
    );
    assert!(dir.path().join("am.db").exists(), "am.db missing");
    assert!(dir.path().join("shared.db").exists(), "shared.db missing");

    let pw_file = dir.path().join("admin-password");
    let mode = std::fs::metadata(&pw_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(&pw_file).unwrap().trim().to_string();
    assert!(password.len() >= 20);
    assert!(node.output().contains(&password), "generated password not printed");

    // The generated password works, and the gateway answers as the reference does.
    let client = tollgate_testkit::http();
    let users = client
        .get(format!("http://{mgmt}/api/am/admin/v4/users"))
        .basic_auth("admin", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    let gw = node.listener("gateway");
    let r = client
        .get(format!("http://{gw}/pizzashack/1.0.0/menu"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 900906);

    let metrics = client
        .get(format!("http://{mgmt}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tollgate_build_info{version=\""), "{metrics}");
    assert!(metrics.contains("tollgate_management_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("tollgate_store_pool_connections{database=\"am\""),
        "{metrics}"
    );
    // The live heap a running node holds, counted by its allocator (more than a megabyte)
    // when built with `heap-stats`; not published (nothing counts it) without.
    let heap = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tollgate_process_heap_bytes "));
    if cfg!(feature = "heap-stats") {
        let heap: f64 = heap
            .unwrap_or_else(|| panic!("no tollgate_process_heap_bytes in {metrics}"))
            .parse()
            .unwrap();
        assert!(heap > 1e6, "{heap}");
    } else {
        assert_eq!(heap, None, "{metrics}");
    }

    node.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(node.wait_exit(Duration::from_secs(30)).success());

    // A restart on the same data keeps the administrator and prints no password.
    let mut again = NodeBuilder::serve(env!("CARGO_BIN_EXE_tollgate"))
        .env_remove("TOLLGATE_ADMIN_PASSWORD")
        .data_dir(dir.path())
        .spawn();
    again.wait_ready(READY).await;
    assert!(
        !again.output().contains("password:"),
        "password printed again:\n{}",
        again.output()
    );
    assert_eq!(std::fs::read_to_string(&pw_file).unwrap().trim(), password);
}

#[tokio::test]
async fn configured_admin_password_is_used_and_never_logged() {
    let mut node = tollgate()
        .env("TOLLGATE_ADMIN_PASSWORD", "configured-secret-pw")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let client = tollgate_testkit::http();
    let ok = client
        .get(format!("http://{mgmt}/api/am/admin/v4/roles"))
        .basic_auth("admin", Some("configured-secret-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let roles: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(roles["count"], 4);
    assert!(!node.output().contains("configured-secret-pw"));
    assert!(!node.data_dir().join("admin-password").exists());
}

#[tokio::test]
async fn version_and_default_config_commands() {
    let bin = env!("CARGO_BIN_EXE_tollgate");
    let out = std::process::Command::new(bin).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tollgate {}", env!("CARGO_PKG_VERSION"))
    );

    let out = std::process::Command::new(bin)
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[database.am]") && text.contains("listen = \"0.0.0.0:8280\""));
    // The printed file is a valid config that `config check` accepts.
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), &text).unwrap();
    let out = std::process::Command::new(bin)
        .args(["config", "check", "--config"])
        .arg(f.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn migrate_command_prepares_both_databases() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeBuilder::command(env!("CARGO_BIN_EXE_tollgate"), &["migrate", "--log-format", "json"])
        .data_dir(dir.path())
        .spawn();
    assert!(node.wait_exit(READY).success(), "{}", node.output());
    assert!(dir.path().join("am.db").exists() && dir.path().join("shared.db").exists());
    assert!(node.output().contains("Database migrations applied."));
}
