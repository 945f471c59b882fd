//! The README's walkthroughs ("Your first API" and "Tenants"), run as they stand: the
//! lines between a block's `NAME:begin` and `NAME:end` markers go to `bash -e` against a
//! fresh all-in-one node on the default ports, from a directory laid out as the quick
//! start leaves it (`data/` from `tollgate serve`, `examples/` from the checkout), with
//! the built `tollgate` first on the PATH. The README cannot drift from the product.
//! Both use the default ports, so nextest runs them one at a time (test group
//! `default-ports`).

use crate::{READY, tollgate};
use std::path::Path;
use std::process::Command;

/// A walkthrough's commands: the fenced block between the README's `name` markers.
fn block(readme: &str, name: &str) -> String {
    let begin = readme
        .find(&format!("<!-- {name}:begin -->"))
        .unwrap_or_else(|| panic!("the README marks its {name} block"));
    let end = readme[begin..]
        .find(&format!("<!-- {name}:end -->"))
        .unwrap_or_else(|| panic!("the {name} block's end marker"))
        + begin;
    readme[begin..end]
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the tools the walkthrough calls besides `tollgate` are here; without them the
/// test is skipped with a reason, unless CI requires them.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["bash", "curl", "jq"]
        .into_iter()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("REQUIRE_WALKTHROUGH_TOOLS").is_none(),
        "the walkthrough needs {missing:?} (apt-get install {})",
        missing.join(" ")
    );
    eprintln!(
        "SKIPPED: the README walkthrough needs {missing:?}; apt-get install {}",
        missing.join(" ")
    );
    false
}

#[test]
fn the_walkthrough_block_is_found_and_holds_only_commands() {
    let found = block(
        "x\n<!-- walkthrough:begin -->\n```sh\na\nb\n```\n<!-- walkthrough:end -->\ny",
        "walkthrough",
    );
    assert_eq!(found, "a\nb");
}

/// What a walkthrough printed, with the node that served it (still running).
struct Ran {
    stdout: String,
    node: tollgate_testkit::node::Node,
    _work: tempfile::TempDir,
}

/// Runs the README's `name` block (at most `max_lines` commands) against a fresh node on
/// the default ports.
async fn run_block(name: &str, max_lines: usize) -> Ran {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let script = block(&readme, name);
    assert!(
        script.lines().count() <= max_lines,
        "at most {max_lines} commands:\n{script}"
    );

    // The directory the quick start leaves: `data/` of a node started there.
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    std::os::unix::fs::symlink(repo.join("examples"), work.join("examples")).unwrap();
    for port in [9443, 8280] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is taken: the walkthrough uses the default ports; stop whatever holds it"
        );
    }
    let mut node = tollgate()
        .env_remove("TOLLGATE_ADMIN_PASSWORD")
        .env("TOLLGATE_MANAGEMENT__LISTEN", "127.0.0.1:9443")
        .env("TOLLGATE_GATEWAY__LISTEN", "127.0.0.1:8280")
        .data_dir(work.join("data"))
        .spawn();
    node.wait_ready(READY).await;

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tollgate"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-x", "-c", &script])
        .current_dir(&work)
        .env("PATH", path)
        .env("HOME", &work)
        .env("XDG_CONFIG_HOME", work.join("config"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TOLLGATE_")) {
        cmd.env_remove(k);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the {name} block failed ({}):\n{stdout}\n{stderr}\nnode:\n{}",
        out.status,
        node.output()
    );
    Ran {
        stdout,
        node,
        _work: dir,
    }
}

/// The last command's answer: the pets of the example document, from the mock.
fn assert_pets(stdout: &str) {
    let last = &stdout[stdout.rfind("\n[").map_or(0, |i| i + 1)..];
    let pets: serde_json::Value =
        serde_json::from_str(last.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_eq!(pets[0]["name"], "Rex", "{pets}");
    assert_eq!(pets[1]["name"], "Tom", "{pets}");
}

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written_and_ends_with_a_200_through_the_gateway() {
    if !tools_present() {
        return;
    }
    let ran = run_block("walkthrough", 10).await;
    assert_pets(&ran.stdout);
}

#[tokio::test]
async fn the_readme_tenants_flow_runs_as_written_and_stays_inside_its_tenant() {
    if !tools_present() {
        return;
    }
    let ran = run_block("tenants", 12).await;
    assert_pets(&ran.stdout);
    // The super tenant sees none of it: no API in its Publisher, nothing at the bare path.
    let http = tollgate_testkit::http();
    let password = std::fs::read_to_string(ran.node.data_dir().join("admin-password")).unwrap();
    let apis: serde_json::Value = http
        .get("http://127.0.0.1:9443/api/am/publisher/v4/apis")
        .basic_auth("admin", Some(password.trim()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apis["count"], 0, "the super tenant lists acme's API: {apis}");
    let bare = http
        .get("http://127.0.0.1:8280/petstore/1.0.0/pets")
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 404, "acme's API answers outside /t/acme.com");
}
