//! The gateway crate (the data plane) depends on no database driver: it serves API calls
//! from the snapshot and events the traffic manager sends it, never from a database
//! (docs/architecture.md, "Components and profiles" and "The two databases"). A dependency
//! that pulls `sqlx` in, such as `tollgate-http` (whose authentication reads users from the
//! database) instead of `tollgate-listener`, would put a database driver in every build of
//! the gateway crate (its tests, its fuzz targets) and within reach of its code; this test
//! fails when one does. (The `tollgate` binary links `sqlx` anyway, for the control plane.)

use std::path::Path;
use std::process::Command;

/// Crates whose presence in the gateway's normal dependency tree means a database reached it.
const FORBIDDEN: &[&str] = &["sqlx", "tollgate-store"];

#[test]
fn gateway_dependency_tree_holds_no_database_driver() {
    // CI always runs the tests through cargo, which sets CARGO; run by hand, fall back to PATH.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(&cargo)
        .current_dir(&workspace)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "tollgate-gateway",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{} tree` to check the gateway's dependencies: {e}; this test needs cargo",
                Path::new(&cargo).display()
            )
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`cargo tree -p tollgate-gateway` failed ({}):\n{stderr}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("tollgate-gateway ")),
        "`cargo tree` did not list the gateway itself; its output:\n{stdout}"
    );
    let mut found: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            FORBIDDEN
                .iter()
                .any(|f| name == f || name.starts_with(&format!("{f}-")))
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    assert!(
        found.is_empty(),
        "the gateway depends (normal dependencies) on {found:?}: a database driver must not reach \
         the data plane; find who pulls it with `cargo tree -p tollgate-gateway -e normal -i sqlx` \
         (the listeners come from tollgate-listener, not tollgate-http)"
    );
}
