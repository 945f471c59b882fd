//! `tollgate export`, `tollgate import` and `tollgate apply`: API projects in the
//! reference's format between files and a control plane, over the Publisher REST API
//! (`/apis/export`, `/apis/import`). Projects are checked locally first, so that a typo
//! is reported with its file and line before anything is sent.

use crate::cli::{ApplyArgs, ExportCommand, ImportCommand, Output, ProjectFormat};
use crate::rest_client::{Client, emit, say, step};
use crate::{Failure, exit};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tollgate_project::api::ApiProject;
use tollgate_project::params::substitute;
use tollgate_project::{Files, Limits, archive};

const PUBLISHER: &str = "/api/am/publisher/v4";
const ADMIN: &str = "/api/am/admin/v4";
use crate::app_cli::DEVPORTAL;
/// The params file a project directory may hold beside its api.yaml.
const PARAMS_FILE: &str = "api_params.yaml";

fn local(e: impl std::fmt::Display) -> Failure {
    Failure::new(exit::CONFIG, e)
}

fn format_name(f: ProjectFormat) -> &'static str {
    match f {
        ProjectFormat::Yaml => "YAML",
        ProjectFormat::Json => "JSON",
    }
}

/// `<name>_<version>.zip`, as the reference's CLI names exports.
fn zip_name(name: &str, version: &str) -> String {
    let clean = |s: &str| tollgate_project::api::folder_name(s);
    format!("{}_{}.zip", clean(name), clean(version))
}

/// Runs `tollgate export …`.
pub async fn export(command: ExportCommand, output: Output) -> Result<(), Failure> {
    match command {
        ExportCommand::Api {
            conn,
            name,
            version,
            provider,
            format,
            latest,
            preserve_status,
            dir,
        } => {
            let client = Client::connect(&conn, PUBLISHER).await?;
            let mut req = client.http.get(client.url("/apis/export")).query(&[
                ("name", name.as_str()),
                ("version", version.as_str()),
                ("format", format_name(format)),
                ("preserveStatus", if preserve_status { "true" } else { "false" }),
                ("latestRevision", if latest { "true" } else { "false" }),
            ]);
            if let Some(p) = &provider {
                req = req.query(&[("providerName", p)]);
            }
            let zip = client.download(req).await?;
            let path = dir.join(zip_name(&name, &version));
            write_file(&path, &zip)?;
            emit(output, &json!({"name": name, "version": version, "file": path}), || {
                say(&format!("Exported {name} {version} to {}", path.display()));
            });
            Ok(())
        }
        ExportCommand::Apis {
            conn,
            format,
            preserve_status,
            dir,
            unzip,
        } => {
            let client = Client::connect(&conn, PUBLISHER).await?;
            let apis = list_apis(&client).await?;
            std::fs::create_dir_all(&dir).map_err(|e| local(format!("cannot create {}: {e}", dir.display())))?;
            let mut written = Vec::new();
            for (i, api) in apis.iter().enumerate() {
                let req = client.http.get(client.url("/apis/export")).query(&[
                    ("apiId", api.id.as_str()),
                    ("format", format_name(format)),
                    ("preserveStatus", if preserve_status { "true" } else { "false" }),
                ]);
                let zip = client.download(req).await?;
                let path = if unzip {
                    let files = archive::read_zip(&zip, Limits::default()).map_err(local)?;
                    let top = files
                        .top
                        .clone()
                        .unwrap_or_else(|| format!("{}-{}", api.name, api.version));
                    fresh(dir.join(tollgate_project::api::folder_name(&top)))?
                } else {
                    fresh(dir.join(zip_name(&api.name, &api.version)))?
                };
                if unzip {
                    let files = archive::read_zip(&zip, Limits::default()).map_err(local)?;
                    archive::write_dir(&path, &files).map_err(local)?;
                } else {
                    write_file(&path, &zip)?;
                }
                step(
                    output,
                    &format!(
                        "[{}/{}] exported {} {} to {}",
                        i + 1,
                        apis.len(),
                        api.name,
                        api.version,
                        path.display()
                    ),
                );
                written.push(json!({"id": api.id, "name": api.name, "version": api.version, "file": path}));
            }
            emit(output, &json!({"count": written.len(), "list": written}), || {
                say(&format!("Exported {} APIs to {}", written.len(), dir.display()));
            });
            Ok(())
        }
        ExportCommand::App {
            conn,
            name,
            owner,
            with_keys,
            format,
            dir,
        } => {
            let client = Client::connect(&conn, DEVPORTAL).await?;
            let mut req = client.http.get(client.url("/applications/export")).query(&[
                ("appName", name.as_str()),
                ("format", format_name(format)),
                ("withKeys", if with_keys { "true" } else { "false" }),
            ]);
            if let Some(o) = &owner {
                req = req.query(&[("appOwner", o)]);
            }
            let zip = client.download(req).await?;
            // The owner as the server wrote it (the caller may be signed in by token).
            let files = archive::read_zip(&zip, Limits::default()).map_err(local)?;
            let project = tollgate_project::application::ApplicationProject::from_files(&files).map_err(local)?;
            let who = project.info["owner"]
                .as_str()
                .map(String::from)
                .or(owner)
                .unwrap_or_default();
            let path = dir.join(format!(
                "{}_{}.zip",
                tollgate_project::api::folder_name(&who),
                tollgate_project::api::folder_name(&name)
            ));
            write_file(&path, &zip)?;
            emit(output, &json!({"name": name, "file": path}), || {
                say(&format!("Exported application {name} to {}", path.display()));
            });
            Ok(())
        }
        ExportCommand::Policy {
            conn,
            name,
            kind,
            format,
            dir,
        } => {
            let client = Client::connect(&conn, ADMIN).await?;
            let mut req = client
                .http
                .get(client.url("/throttling/policies/export"))
                .query(&[("name", name.as_str()), ("format", format_name(format))]);
            if let Some(k) = &kind {
                req = req.query(&[("type", k)]);
            }
            let bytes = client.download(req).await?;
            let (level, _) = tollgate_project::policy::read("policy", &bytes).map_err(local)?;
            let format = match format {
                ProjectFormat::Yaml => tollgate_project::api::Format::Yaml,
                ProjectFormat::Json => tollgate_project::api::Format::Json,
            };
            let path = dir.join(tollgate_project::policy::file_name(level, &name, format));
            write_file(&path, &bytes)?;
            emit(
                output,
                &json!({"name": name, "level": level.as_str(), "file": path}),
                || {
                    say(&format!("Exported the {level} policy {name} to {}", path.display()));
                },
            );
            Ok(())
        }
    }
}

/// `path`, when nothing is there yet: two APIs whose names fold to one file name (`Pets
/// API` and `Pets_API`) must not land in one place.
fn fresh(path: PathBuf) -> Result<PathBuf, Failure> {
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(local(format!(
            "{} already exists; export into an empty directory (-d)",
            path.display()
        )));
    }
    Ok(path)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| local(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| local(format!("cannot write {}: {e}", path.display())))
}

/// An API on the server, as listed.
struct Listed {
    id: String,
    name: String,
    version: String,
}

/// Every API of the caller's tenant, page by page.
async fn list_apis(client: &Client) -> Result<Vec<Listed>, Failure> {
    let mut out = Vec::new();
    loop {
        let offset = out.len().to_string();
        let body = client
            .send(
                client
                    .http
                    .get(client.url("/apis"))
                    .query(&[("limit", "1000"), ("offset", offset.as_str())]),
            )
            .await?;
        let page = body["list"].as_array().cloned().unwrap_or_default();
        let total = body["pagination"]["total"].as_u64().unwrap_or(0) as usize;
        for a in &page {
            out.push(Listed {
                id: a["id"].as_str().unwrap_or_default().to_string(),
                name: a["name"].as_str().unwrap_or_default().to_string(),
                version: a["version"].as_str().unwrap_or_default().to_string(),
            });
        }
        if page.is_empty() || out.len() >= total {
            return Ok(out);
        }
    }
}

/// A project ready to send: its zip, its params file (with `${VAR}` substituted), and
/// its name and version as read locally.
struct LocalProject {
    path: PathBuf,
    zip: Vec<u8>,
    params: Option<String>,
    name: String,
    version: String,
    /// The context the gateway serves it at (`/pets/1.0.0`), and the one its versions share.
    context: (String, String),
    default_version: bool,
}

/// Reads a project from a directory or a zip and checks it as the server will; a
/// directory's api_params.yaml is taken out as its params.
fn read_project(path: &Path, params: Option<&Path>) -> Result<LocalProject, Failure> {
    let at = |e: tollgate_project::ProjectError| local(format!("{}: {e}", path.display()));
    let (mut files, top) = if path.is_dir() {
        let files = archive::read_dir(path, Limits::default()).map_err(at)?;
        let top = files.top.clone();
        (files, top)
    } else {
        let bytes = std::fs::read(path).map_err(|e| local(format!("cannot read {}: {e}", path.display())))?;
        let files = archive::read_zip(&bytes, Limits::default()).map_err(at)?;
        let top = files.top.clone();
        (files, top)
    };
    let mut params_text = match params {
        Some(p) => Some(std::fs::read(p).map_err(|e| local(format!("cannot read {}: {e}", p.display())))?),
        None => None,
    };
    if let Some(inside) = files.files.remove(PARAMS_FILE) {
        params_text.get_or_insert(inside);
    }
    let project = ApiProject::from_files(&files).map_err(at)?;
    let params = match params_text {
        Some(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| local(format!("{}: {PARAMS_FILE} is not UTF-8 text", path.display())))?;
            Some(substitute(&text, |name| std::env::var(name).ok()).map_err(at)?)
        }
        None => None,
    };
    let top = top.unwrap_or_else(|| project.top_folder());
    let zip = archive::write_zip(
        &top,
        &Files {
            files: files.files,
            top: None,
        },
    )
    .map_err(at)?;
    Ok(LocalProject {
        path: path.to_path_buf(),
        zip,
        params,
        context: (
            project.api.resolved_context(),
            tollgate_model::api::base_context(&project.api.context),
        ),
        default_version: project.api.is_default_version,
        name: project.api.name,
        version: project.api.version,
    })
}

/// How one import is asked for.
#[derive(Clone, Copy)]
struct ImportOptions<'a> {
    environment: Option<&'a str>,
    overwrite: bool,
    preserve_provider: bool,
    rotate_revision: bool,
    dry_run: bool,
}

/// Sends one project to `POST /apis/import`; the server's outcome.
async fn send_project(client: &Client, project: &LocalProject, o: ImportOptions<'_>) -> Result<Value, Failure> {
    let zip = reqwest::multipart::Part::bytes(project.zip.clone())
        .file_name("project.zip")
        .mime_str("application/zip")
        .map_err(|e| local(e.to_string()))?;
    let mut form = reqwest::multipart::Form::new().part("file", zip);
    if let Some(params) = &project.params {
        form = form.part(
            "params",
            reqwest::multipart::Part::text(params.clone()).file_name(PARAMS_FILE),
        );
    }
    let flag = |b: bool| if b { "true" } else { "false" };
    let mut req = client.http.post(client.url("/apis/import")).query(&[
        ("overwrite", flag(o.overwrite)),
        ("preserveProvider", flag(o.preserve_provider)),
        ("rotateRevision", flag(o.rotate_revision)),
        ("dryRun", flag(o.dry_run)),
    ]);
    if let Some(env) = o.environment.filter(|_| project.params.is_some()) {
        req = req.query(&[("paramsEnvironment", env)]);
    }
    client.send(req.multipart(form)).await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Prints an outcome's changes and warnings, indented under its line.
fn print_details(output: Output, outcome: &Value) {
    for c in strings(&outcome["changes"]) {
        step(output, &format!("    {c}"));
    }
    for w in strings(&outcome["warnings"]) {
        step(output, &format!("    warning: {w}"));
    }
}

/// Runs `tollgate import …`.
pub async fn import(command: ImportCommand, output: Output) -> Result<(), Failure> {
    match command {
        ImportCommand::Api {
            conn,
            file,
            params,
            environment,
            update,
            preserve_provider,
            rotate_revision,
            dry_run,
        } => {
            if environment.is_some() && params.is_none() && !file.join(PARAMS_FILE).is_file() {
                return Err(local("-e names an entry of a params file; pass --params FILE"));
            }
            let project = read_project(&file, params.as_deref())?;
            let client = Client::connect(&conn, PUBLISHER).await?;
            let options = ImportOptions {
                environment: environment.as_deref(),
                overwrite: update,
                preserve_provider,
                rotate_revision,
                dry_run,
            };
            let outcome = send_project(&client, &project, options).await?;
            emit(output, &outcome, || {
                let status = outcome["status"].as_str().unwrap_or("");
                let verb = match (dry_run, status) {
                    (true, "CREATED") => "Would create",
                    (true, "UPDATED") => "Would update",
                    (_, "UNCHANGED") => "Unchanged:",
                    (false, "CREATED") => "Created",
                    _ => "Updated",
                };
                say(&format!(
                    "{verb} {} {} ({})",
                    project.name,
                    project.version,
                    outcome["id"].as_str().unwrap_or("")
                ));
                print_details(output, &outcome);
            });
            Ok(())
        }
        ImportCommand::App {
            conn,
            file,
            update,
            skip_subscriptions,
            preserve_owner,
            owner,
        } => {
            let zip = if file.is_dir() {
                let files = archive::read_dir(&file, Limits::default()).map_err(local)?;
                let top = files.top.clone().unwrap_or_else(|| "application".into());
                archive::write_zip(
                    &top,
                    &Files {
                        files: files.files,
                        top: None,
                    },
                )
                .map_err(local)?
            } else {
                std::fs::read(&file).map_err(|e| local(format!("cannot read {}: {e}", file.display())))?
            };
            let client = Client::connect(&conn, DEVPORTAL).await?;
            let part = reqwest::multipart::Part::bytes(zip)
                .file_name("application.zip")
                .mime_str("application/zip")
                .map_err(|e| local(e.to_string()))?;
            let flag = |b: bool| if b { "true" } else { "false" };
            let mut req = client.http.post(client.url("/applications/import")).query(&[
                ("update", flag(update)),
                ("skipSubscriptions", flag(skip_subscriptions)),
                ("preserveOwner", flag(preserve_owner)),
            ]);
            if let Some(o) = &owner {
                req = req.query(&[("appOwner", o)]);
            }
            let outcome = client
                .send(req.multipart(reqwest::multipart::Form::new().part("file", part)))
                .await?;
            emit(output, &outcome, || {
                say(&format!(
                    "{} application {} of {} ({})",
                    title(outcome["status"].as_str().unwrap_or("")),
                    outcome["name"].as_str().unwrap_or(""),
                    outcome["owner"].as_str().unwrap_or(""),
                    outcome["applicationId"].as_str().unwrap_or("")
                ));
                print_details(output, &outcome);
            });
            Ok(())
        }
        ImportCommand::Policy { conn, file, update } => {
            let bytes = std::fs::read(&file).map_err(|e| local(format!("cannot read {}: {e}", file.display())))?;
            tollgate_project::policy::read(&file.display().to_string(), &bytes).map_err(local)?;
            let client = Client::connect(&conn, ADMIN).await?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "policy.yaml".into());
            let part = reqwest::multipart::Part::bytes(bytes).file_name(name);
            let req = client
                .http
                .post(client.url("/throttling/policies/import"))
                .query(&[("overwrite", if update { "true" } else { "false" })]);
            let outcome = client
                .send(req.multipart(reqwest::multipart::Form::new().part("file", part)))
                .await?;
            emit(output, &outcome, || {
                say(&format!(
                    "{} {} {} ({})",
                    title(outcome["status"].as_str().unwrap_or("")),
                    outcome["subtype"].as_str().unwrap_or(""),
                    outcome["policyName"].as_str().unwrap_or(""),
                    outcome["policyId"].as_str().unwrap_or("")
                ));
                print_details(output, &outcome);
            });
            Ok(())
        }
    }
}

/// `CREATED` as `Created`, for result lines.
fn title(status: &str) -> String {
    let lower = status.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The projects of a tree: directories holding api.yaml or api.json (not searched
/// further) and .zip files, in path order.
fn find_projects(root: &Path) -> Result<Vec<PathBuf>, Failure> {
    if !root.is_dir() {
        return Err(local(format!("{} is not a directory", root.display())));
    }
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if ["api.yaml", "api.yml", "api.json"]
            .iter()
            .any(|f| dir.join(f).is_file())
        {
            found.push(dir);
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| local(format!("cannot read {}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| local(format!("cannot read {}: {e}", dir.display())))?;
            let kind = entry.file_type().map_err(|e| local(e.to_string()))?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden || kind.is_symlink() {
                continue;
            }
            if kind.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip")) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Refuses a tree whose projects clash with each other: the server checks each project
/// against what it has, not against the others about to arrive.
fn check_together(projects: &[LocalProject]) -> Result<(), Failure> {
    let mut errors = Vec::new();
    for (i, a) in projects.iter().enumerate() {
        for b in &projects[i + 1..] {
            let same_api = a.name.eq_ignore_ascii_case(&b.name);
            if a.context.0 == b.context.0 {
                errors.push(format!(
                    "{} and {} both serve {}",
                    a.path.display(),
                    b.path.display(),
                    a.context.0
                ));
            } else if !same_api && a.context.1 == b.context.1 {
                errors.push(format!(
                    "{} and {} are different APIs with the same context {}",
                    a.path.display(),
                    b.path.display(),
                    a.context.1
                ));
            }
            if same_api && a.default_version && b.default_version {
                errors.push(format!(
                    "{} and {} are both the default version of {}",
                    a.path.display(),
                    b.path.display(),
                    a.name
                ));
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(local(format!(
        "the projects clash; nothing was changed: {}",
        errors.join("; ")
    )))
}

/// Runs `tollgate apply`: every project is first checked by the server without writing
/// (a dry run), so that one bad project leaves the server as it was; then what differs
/// is imported, and with --prune what the tree lacks is deleted.
pub async fn apply(args: ApplyArgs, output: Output) -> Result<(), Failure> {
    let paths = find_projects(&args.file)?;
    if paths.is_empty() {
        return Err(local(format!(
            "{} holds no API project (a directory with api.yaml, or a .zip)",
            args.file.display()
        )));
    }
    let mut projects = Vec::with_capacity(paths.len());
    let mut keys = BTreeSet::new();
    for path in &paths {
        let p = read_project(path, None)?;
        if !keys.insert((p.name.to_lowercase(), p.version.clone())) {
            return Err(local(format!(
                "{}: a second project for {} {}; each API may appear once",
                path.display(),
                p.name,
                p.version
            )));
        }
        projects.push(p);
    }
    check_together(&projects)?;
    let client = Client::connect(&args.conn, PUBLISHER).await?;
    let options = ImportOptions {
        environment: args.environment.as_deref(),
        overwrite: true,
        preserve_provider: true,
        rotate_revision: true,
        dry_run: true,
    };
    // 1. Check everything; write nothing.
    let mut plans = Vec::with_capacity(projects.len());
    let mut failed = 0usize;
    for p in &projects {
        match send_project(&client, p, options).await {
            Ok(outcome) => plans.push(outcome),
            Err(e) => {
                failed += 1;
                step(output, &format!("error {}: {}", p.path.display(), e.message));
                plans.push(Value::Null);
            }
        }
    }
    if failed > 0 {
        return Err(Failure::new(
            exit::OTHER,
            format!(
                "{failed} of {} projects were refused; nothing was changed",
                projects.len()
            ),
        ));
    }
    let doomed: Vec<Listed> = if args.prune {
        list_apis(&client)
            .await?
            .into_iter()
            .filter(|a| !keys.contains(&(a.name.to_lowercase(), a.version.clone())))
            .collect()
    } else {
        Vec::new()
    };

    // 2. Import what differs, delete what the tree lacks.
    let (mut created, mut updated, mut unchanged) = (0usize, 0usize, 0usize);
    let mut results = Vec::new();
    for (p, plan) in projects.iter().zip(&plans) {
        let status = plan["status"].as_str().unwrap_or("");
        let outcome = if status == "UNCHANGED" || args.dry_run {
            plan.clone()
        } else {
            send_project(
                &client,
                p,
                ImportOptions {
                    dry_run: false,
                    ..options
                },
            )
            .await?
        };
        let status = outcome["status"].as_str().unwrap_or("").to_string();
        let verb = match (args.dry_run, status.as_str()) {
            (_, "UNCHANGED") => "unchanged",
            (true, "CREATED") => "would create",
            (true, _) => "would update",
            (false, "CREATED") => "created",
            (false, _) => "updated",
        };
        match status.as_str() {
            "CREATED" => created += 1,
            "UNCHANGED" => unchanged += 1,
            _ => updated += 1,
        }
        step(
            output,
            &format!("{verb} {} {} ({})", p.name, p.version, p.path.display()),
        );
        print_details(output, &outcome);
        results.push(outcome);
    }
    let mut deleted = Vec::new();
    for api in &doomed {
        if args.dry_run {
            step(output, &format!("would delete {} {}", api.name, api.version));
        } else {
            client
                .send(client.http.delete(client.url(&format!("/apis/{}", api.id))))
                .await
                .map_err(|e| {
                    Failure::new(
                        e.code,
                        format!("cannot delete {} {}: {}", api.name, api.version, e.message),
                    )
                })?;
            step(output, &format!("deleted {} {}", api.name, api.version));
        }
        deleted.push(json!({"id": api.id, "name": api.name, "version": api.version}));
    }
    let summary = json!({
        "dryRun": args.dry_run,
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "deleted": deleted.len(),
        "projects": results,
        "deletedApis": deleted,
    });
    emit(output, &summary, || {
        if created + updated + deleted.len() == 0 {
            say(&format!(
                "Nothing to change: the server matches {} ({unchanged} APIs)",
                args.file.display()
            ));
        } else {
            let would = if args.dry_run { "would be " } else { "" };
            say(&format!(
                "{created} {would}created, {updated} {would}updated, {} {would}deleted, {unchanged} unchanged",
                deleted.len()
            ));
        }
    });
    Ok(())
}
