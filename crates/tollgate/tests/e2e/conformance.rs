//! The REST APIs against the reference's own OpenAPI documents and ours, run by
//! schemathesis through `bench/conformance.py` (decision 018): no server error and no
//! answer outside its schema, for every operation Tollgate implements. Needs schemathesis
//! (`SCHEMATHESIS`: its executable, in a virtualenv whose `python` runs the script) and
//! the directory of the reference's documents (`REFERENCE_REST_DIR`); without them the
//! test is skipped with the reason, unless CI requires them (`REQUIRE_CONFORMANCE`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The schemathesis executable and the reference's documents, or `None` (skipped).
fn tools() -> Option<(PathBuf, PathBuf)> {
    let schemathesis = std::env::var_os("SCHEMATHESIS").map(PathBuf::from);
    let reference = std::env::var_os("REFERENCE_REST_DIR").map(PathBuf::from);
    let problem = match (&schemathesis, &reference) {
        (None, _) => Some("SCHEMATHESIS (pip install schemathesis in a virtualenv) is not set".to_string()),
        (_, None) => Some("REFERENCE_REST_DIR (the reference's REST documents) is not set".to_string()),
        (Some(s), _) if !s.is_file() => Some(format!("SCHEMATHESIS={} is not a file", s.display())),
        (_, Some(r)) if !r.join("publisher-api.yaml").is_file() => Some(format!(
            "REFERENCE_REST_DIR={} holds no publisher-api.yaml",
            r.display()
        )),
        _ => None,
    };
    match problem {
        None => Some((schemathesis?, reference?)),
        Some(why) => {
            assert!(std::env::var_os("REQUIRE_CONFORMANCE").is_none(), "{why}");
            eprintln!("SKIPPED: the conformance run needs schemathesis: {why}");
            None
        }
    }
}

#[test]
fn the_references_documents_and_ours_find_no_server_error_and_no_schema_violation() {
    let Some((schemathesis, reference)) = tools() else {
        return;
    };
    // The virtualenv's python has schemathesis's PyYAML.
    let python = schemathesis.with_file_name("python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/conformance.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(["--bin", env!("CARGO_BIN_EXE_tollgate")])
        .arg("--reference")
        .arg(&reference)
        .arg("--schemathesis")
        .arg(&schemathesis)
        .args(["--max-examples", "5"])
        .output()
        .expect("runs bench/conformance.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "conformance failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Every API was run against both documents, seeded and generated.
    for api in ["publisher", "devportal", "admin"] {
        for run in [
            "reference-seeded",
            "reference-generated",
            "ours-seeded",
            "ours-generated",
        ] {
            let label = format!("{api}-{run}: ");
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&label))
                .unwrap_or_else(|| panic!("no summary line for {label}:\n{stdout}"));
            assert!(!line.contains("failure") && !line.contains("error"), "{line}");
        }
    }
}
