//! The reference's 4.x projects (fixtures composed from its format's documentation) read
//! into Tollgate's types, with what Tollgate does not support named as warnings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use tollgate_project::api::{ApiProject, DocumentContent, Format};
use tollgate_project::params::{ApiParams, substitute};
use tollgate_project::{Limits, archive};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference")
        .join(name)
}

fn read(name: &str) -> ApiProject {
    let files = archive::read_dir(&fixture(name), Limits::default()).unwrap();
    ApiProject::from_files(&files).unwrap()
}

fn warned(p: &ApiProject, needle: &str) -> bool {
    p.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn a_yaml_project_with_documents_and_unsupported_fields() {
    let p = read("OrderAPI-1.0.0");
    assert_eq!((p.api.name.as_str(), p.api.version.as_str()), ("OrderAPI", "1.0.0"));
    assert_eq!(p.api.operations.len(), 3);
    assert_eq!(p.api.policies, ["Unlimited", "Gold"]);
    assert!(p.definition.as_ref().unwrap()["paths"]["/orders"]["post"].is_object());
    let deployments = p.deployments.as_ref().unwrap();
    assert_eq!(deployments[0].deployment_environment, "Default");
    assert_eq!(p.documents.len(), 4);
    let by_name = |n: &str| p.documents.iter().find(|d| d.document.name == n).unwrap();
    assert_eq!(
        by_name("Getting started").content,
        Some(DocumentContent::Text(
            "# Getting started\n\nSubscribe, get a token, call `GET /orders`.\n".into()
        ))
    );
    assert!(
        matches!(&by_name("Rate-card").content, Some(DocumentContent::File { name, .. }) if name == "rate-card.txt")
    );
    assert_eq!(by_name("Forum").content, None);
    // What Tollgate does not support is named, each once.
    for needle in [
        "data.endpointConfig.endpoint_security",
        "data.responseCachingEnabled",
        "data.businessInformation",
        "data.operations[2].operationPolicies",
        "Image/icon.png",
    ] {
        assert!(warned(&p, needle), "no warning for {needle}: {:#?}", p.warnings);
    }
    // Defaults and the reference's own bookkeeping are not noise.
    for quiet in [
        "accessControl",
        "keyManagers",
        "gatewayVendor",
        "organizationId",
        "operations[0]",
        "api_meta",
        "cacheTimeout",
    ] {
        assert!(!warned(&p, quiet), "warned about {quiet}: {:#?}", p.warnings);
    }
}

#[test]
fn a_json_project_with_load_balanced_endpoints() {
    let p = read("InventoryAPI-2.1.0");
    let ec = p.api.endpoint_config.as_ref().unwrap();
    assert_eq!(ec.endpoint_type, "load_balance");
    assert_eq!(ec.production_endpoints.as_ref().unwrap().as_slice().len(), 2);
    assert!(p.api.is_default_version);
    assert_eq!(p.deployments.unwrap().len(), 1);
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
}

#[test]
fn a_failover_project_and_its_params() {
    let mut p = read("PaymentsAPI-1.0.0");
    let ec = p.api.endpoint_config.as_ref().unwrap();
    assert_eq!(ec.endpoint_type, "failover");
    assert_eq!(ec.production_failovers.len(), 1);
    assert_eq!(p.definition, None);
    assert_eq!(p.deployments.as_ref().unwrap()[0].deployment_environment, "Staging");

    let text = std::fs::read_to_string(fixture("params/payments_params.yaml")).unwrap();
    let err = substitute(&text, |_| None).unwrap_err().to_string();
    assert!(err.contains("PAYMENTS_BACKEND"), "{err}");
    let text = substitute(&text, |name| Some(format!("<{name}>"))).unwrap();
    let params = ApiParams::parse(text.as_bytes()).unwrap();
    let err = params.apply(None, &mut p.clone()).unwrap_err().to_string();
    assert!(err.contains("`dev`, `prod`"), "{err}");
    let err = params.apply(Some("qa"), &mut p.clone()).unwrap_err().to_string();
    assert!(err.contains("no entry named `qa`"), "{err}");
    params.apply(Some("prod"), &mut p).unwrap();
    let ec = p.api.endpoint_config.as_ref().unwrap();
    assert_eq!(ec.endpoint_type, "failover");
    assert_eq!(
        ec.production_endpoints.as_ref().unwrap().as_slice()[0].url,
        "<PAYMENTS_BACKEND>/payments-live"
    );
    assert_eq!(
        ec.production_failovers[0].url,
        "<PAYMENTS_BACKEND>/payments-live-standby"
    );
    assert_eq!(ec.sandbox_endpoints, None);
    assert_eq!(p.api.policies, ["Gold", "Unlimited"]);
    let d = &p.deployments.as_ref().unwrap()[0];
    assert_eq!(
        (d.deployment_environment.as_str(), d.deployment_vhost.as_deref()),
        ("Default", Some("localhost"))
    );
    assert!(warned(&p, "security is not applied"), "{:#?}", p.warnings);
}

#[test]
fn bad_params_name_the_key() {
    for (text, needle) in [
        (
            "environments: [{name: a, configs: {endpointRoutingPolicy: random}}]",
            "endpointRoutingPolicy",
        ),
        (
            "environments: [{name: a, configs: {endpointRoutingPolicy: failover, failoverEndpoints: {production: {url: http://x}}}}]",
            "productionFailovers",
        ),
        (
            "environments: [{name: a, configs: {endpointType: aws}}]",
            "endpointType",
        ),
        ("environment: []", "environment"),
        (
            "environments: [{name: a, configs: {endpoints: {production: {url: [1]}}}}]",
            "endpoints.production.url",
        ),
    ] {
        let mut p = read("PaymentsAPI-1.0.0");
        let err = ApiParams::parse(text.as_bytes()).and_then(|params| params.apply(None, &mut p));
        let err = err.unwrap_err().to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn export_then_read_gives_the_same_project_in_both_formats() {
    let p = read("OrderAPI-1.0.0");
    for format in [Format::Yaml, Format::Json] {
        let files = p.to_files(format).unwrap();
        assert!(files.get(&format!("api.{}", format.extension())).is_some());
        let zip = archive::write_zip(&p.top_folder(), &files).unwrap();
        let back = ApiProject::from_files(&archive::read_zip(&zip, Limits::default()).unwrap()).unwrap();
        assert_eq!(back.api, p.api);
        assert_eq!(back.definition, p.definition);
        assert_eq!(back.deployments, p.deployments);
        let names = |p: &ApiProject| {
            p.documents
                .iter()
                .map(|d| (d.document.name.clone(), d.content.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&back), names(&p));
        assert!(back.warnings.is_empty(), "{format:?}: {:#?}", back.warnings);
    }
}

#[test]
fn a_broken_project_names_file_and_line_or_field() {
    let mut files = archive::read_dir(&fixture("OrderAPI-1.0.0"), Limits::default()).unwrap();
    let mut broken = files.clone();
    broken.put("api.yaml", "type: api\nversion: v4.2.0\ndata:\n  name: [x\n");
    let e = ApiProject::from_files(&broken).unwrap_err().to_string();
    assert!(e.starts_with("api.yaml: ") && e.contains("line"), "{e}");
    broken.put("api.yaml", "type: api\nversion: v4.2.0\ndata:\n  name: x\n  context: /x\n  version: '1'\n  operations: [{target: /a, verb: 7}]\n");
    let e = ApiProject::from_files(&broken).unwrap_err().to_string();
    assert!(e.contains("data.operations[0].verb"), "{e}");
    broken.put("api.yaml", "type: api\nversion: v3.2.0\ndata: {}\n");
    let e = ApiProject::from_files(&broken).unwrap_err().to_string();
    assert!(e.contains("v3.2.0"), "{e}");
    files.files.remove("api.yaml");
    let e = ApiProject::from_files(&files).unwrap_err().to_string();
    assert!(e.contains("no api.yaml"), "{e}");
    let mut bad_def = archive::read_dir(&fixture("OrderAPI-1.0.0"), Limits::default()).unwrap();
    bad_def.put("Definitions/swagger.yaml", "openapi: 3.0.1\npaths: {\n");
    let e = ApiProject::from_files(&bad_def).unwrap_err().to_string();
    assert!(e.starts_with("Definitions/swagger.yaml: "), "{e}");
}

#[test]
fn documents_with_awkward_names_round_trip() {
    use tollgate_project::api::{ProjectDocument, folder_name};
    assert_eq!(folder_name(".."), "__");
    assert_eq!(folder_name("."), "_");
    assert_eq!(folder_name(""), "_");
    assert_eq!(folder_name("Pets API/v2"), "Pets_API_v2");
    let mut p = read("OrderAPI-1.0.0");
    let doc = |name: &str, source: &str, file: Option<&str>| {
        let mut d = p.documents[0].document.clone();
        d.name = name.into();
        d.source_type = source.into();
        d.file_name = file.map(String::from);
        d
    };
    let extra = vec![
        ProjectDocument {
            document: doc("..", "INLINE", None),
            content: Some(DocumentContent::Text("dots".into())),
        },
        ProjectDocument {
            document: doc("document", "FILE", Some("document.yaml")),
            content: Some(DocumentContent::File {
                name: "document.yaml".into(),
                bytes: b"not metadata".to_vec(),
            }),
        },
        ProjectDocument {
            document: doc("Same Name", "MARKDOWN", None),
            content: Some(DocumentContent::Text("one".into())),
        },
        ProjectDocument {
            document: doc("Same_Name", "MARKDOWN", None),
            content: Some(DocumentContent::Text("two".into())),
        },
    ];
    p.documents.extend(extra);
    let files = p.to_files(Format::Yaml).unwrap();
    let zip = archive::write_zip(&p.top_folder(), &files).unwrap();
    let back = ApiProject::from_files(&archive::read_zip(&zip, Limits::default()).unwrap()).unwrap();
    let by_name = |name: &str| {
        back.documents
            .iter()
            .find(|d| d.document.name == name)
            .unwrap()
            .content
            .clone()
    };
    assert_eq!(by_name(".."), Some(DocumentContent::Text("dots".into())));
    assert_eq!(by_name("Same Name"), Some(DocumentContent::Text("one".into())));
    assert_eq!(by_name("Same_Name"), Some(DocumentContent::Text("two".into())));
    assert!(matches!(by_name("document"), Some(DocumentContent::File { bytes, .. }) if bytes == b"not metadata"));
    assert_eq!(back.documents.len(), p.documents.len());
}

#[test]
fn writing_a_directory_never_follows_a_link_and_reading_one_refuses_odd_files() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("Docs")).unwrap();
    let mut files = tollgate_project::Files::default();
    files.put("Docs/x/document.yaml", "x");
    let e = archive::write_dir(dir.path(), &files).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing was written outside"
    );

    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("api.yaml"), "x").unwrap();
    nix_free_fifo(&tree.path().join("pipe"));
    let e = archive::read_dir(tree.path(), Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

/// Makes a FIFO with mkfifo(1) (no libc binding needed).
fn nix_free_fifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
}
