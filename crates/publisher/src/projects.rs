//! `GET /apis/export` and `POST /apis/import`: an API with its definition, documents,
//! lifecycle state and deployments as a project in the reference's format (decision 022).
//!
//! An import is checked whole before anything is written and runs in one AM transaction
//! (rolled back for `dryRun`); documents, which live in the shared database, are then
//! replaced in one transaction of their own (if that fails, the answer says so and a
//! re-run completes it). A project that matches what the node has writes nothing: the
//! answer lists what was created or changed, so that `tollgate apply` can be re-run.

use crate::PublisherState;
use crate::apis::{ensure_unique, load, not_found, validate};
use crate::definition;
use crate::revisions::{DeploymentRequest, check_environments, deploy_in, snapshot_in};
use crate::types::ImportOutcome;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use tollgate_http::auth::{AdminRole, CreatorOrPublisherRole, CreatorRole, PublisherRole, grants};
use tollgate_http::{ApiError, ApiMultipart, ApiQuery, Authenticated};
use tollgate_model::document::Document;
use tollgate_model::{Api, Error, FieldError, LifecycleState, Principal, TenantId, now_millis};
use tollgate_project::api::{ApiProject, DeploymentEnvironment, DocumentContent, Format, ProjectDocument, folder_name};
use tollgate_project::params::ApiParams;
use tollgate_project::{Limits, archive};
use tollgate_store::apis::{self, RevisionRow, StoredApi};
use tollgate_store::documents::{self, Content, DocumentWithContent};

/// Most bytes one document's content in a project may have (as for uploads).
const MAX_DOCUMENT_BYTES: usize = crate::documents::MAX_FILE_BYTES;
/// Most documents one project may carry (and one API may have to be exported).
const MAX_DOCUMENTS: usize = 500;

/// Query of `GET /apis/export` (the reference's parameters).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ExportQuery {
    api_id: Option<String>,
    name: Option<String>,
    version: Option<String>,
    provider_name: Option<String>,
    format: Option<String>,
    preserve_status: Option<bool>,
    latest_revision: bool,
    revision_number: Option<String>,
}

/// `GET /apis/export`: the API as a zip in the reference's project layout.
#[utoipa::path(get, path = "/apis/export", operation_id = "get_apis_export", tag = "Import Export", summary = "Export an API as a project (zip)", params(("apiId" = Option<String>, Query, description = "API id (or name and version)"), ("name" = Option<String>, Query, description = "API name"), ("version" = Option<String>, Query, description = "API version"), ("providerName" = Option<String>, Query, description = "Provider, to check"), ("format" = Option<String>, Query, description = "YAML (default) or JSON"), ("preserveStatus" = Option<bool>, Query, description = "Keep the lifecycle state (default true)"), ("latestRevision" = Option<bool>, Query, description = "Export the newest revision instead of the working copy"), ("revisionNumber" = Option<String>, Query, description = "Export this revision")), responses((status = 200, description = "The project as application/zip"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn export(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let format = match q.format.as_deref() {
        None => Format::Yaml,
        Some(f) => Format::parse(f).ok_or_else(|| Error::field("format", format!("`{f}` must be YAML or JSON")))?,
    };
    let stored = find_for_export(&state, tenant, &q).await?;
    let project = project_of(&state, &stored, &q).await?;
    let files = project.to_files(format).map_err(|e| Error::Internal(e.to_string()))?;
    let zip = archive::write_zip(&project.top_folder(), &files).map_err(|e| Error::Internal(e.to_string()))?;
    let provider = folder_name(&stored.api.provider.clone().unwrap_or_default());
    let file = format!("{provider}-{}.zip", project.top_folder());
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        zip,
    )
        .into_response())
}

async fn find_for_export(state: &PublisherState, tenant: TenantId, q: &ExportQuery) -> Result<StoredApi, ApiError> {
    let stored = match (&q.api_id, &q.name, &q.version) {
        (Some(id), _, _) => load(state, tenant, id).await?,
        (None, Some(name), Some(version)) => apis::find_by_name(&state.am, tenant, name, version)
            .await?
            .ok_or_else(|| not_found(&format!("{name} {version}")))?,
        _ => {
            return Err(Error::field("apiId", "name the API: apiId, or name and version").into());
        }
    };
    if let Some(provider) = &q.provider_name
        && stored.api.provider.as_deref() != Some(provider.as_str())
    {
        return Err(not_found(&format!(
            "{} {} of {provider}",
            stored.api.name, stored.api.version
        )));
    }
    Ok(stored)
}

/// The project of an API as it is stored: the working copy, or a revision.
async fn project_of(state: &PublisherState, stored: &StoredApi, q: &ExportQuery) -> Result<ApiProject, ApiError> {
    let revision = if q.latest_revision {
        apis::revisions(&state.am, &stored.id).await?.pop()
    } else if let Some(n) = &q.revision_number {
        let n: i64 = n
            .trim()
            .parse()
            .map_err(|_| Error::field("revisionNumber", format!("`{n}` must be a revision number")))?;
        Some(
            apis::revisions(&state.am, &stored.id)
                .await?
                .into_iter()
                .find(|r| r.number == n)
                .ok_or_else(|| Error::not_found("revision", n.to_string()))?,
        )
    } else {
        None
    };
    let (mut api, definition_text) = match revision {
        Some(rev) => (
            serde_json::from_str::<Api>(&rev.body).map_err(|e| Error::Internal(format!("revision body: {e}")))?,
            rev.definition,
        ),
        None => (stored.api.clone(), stored.definition.clone()),
    };
    api.id = Some(stored.id.clone());
    api.provider = stored.api.provider.clone();
    api.life_cycle_status = if q.preserve_status.unwrap_or(true) {
        stored.api.life_cycle_status
    } else {
        Some(LifecycleState::Created)
    };
    api.created_time = stored.api.created_time.clone();
    api.last_updated_time = stored.api.last_updated_time.clone();
    let definition = definition_text.as_deref().and_then(|d| serde_json::from_str(d).ok());
    let documents = stored_documents(state, stored)
        .await?
        .into_iter()
        .map(|d| ProjectDocument {
            content: match d.content {
                Content::Text(t) => Some(DocumentContent::Text(t)),
                Content::File { name, bytes, .. } => Some(DocumentContent::File { name, bytes }),
                Content::None => None,
            },
            document: d.document,
        })
        .collect();
    let deployments = apis::deployments(&state.am, &stored.id)
        .await?
        .into_iter()
        .map(|d| DeploymentEnvironment {
            deployment_environment: d.environment,
            deployment_vhost: d.vhost,
            display_on_devportal: d.display_on_devportal,
        })
        .collect();
    Ok(ApiProject {
        api,
        api_file: "api.yaml".into(),
        definition,
        definition_file: None,
        documents,
        deployments: Some(deployments),
        warnings: Vec::new(),
    })
}

/// An API's documents with their content, by name.
async fn stored_documents(state: &PublisherState, stored: &StoredApi) -> Result<Vec<DocumentWithContent>, ApiError> {
    let (docs, total) = documents::list(&state.shared, stored.tenant_id, &stored.id, 0, MAX_DOCUMENTS as i64).await?;
    if total > MAX_DOCUMENTS as i64 {
        return Err(Error::Conflict(format!(
            "the API has {total} documents; a project carries at most {MAX_DOCUMENTS}"
        ))
        .into());
    }
    let mut out = Vec::with_capacity(docs.len());
    for document in docs {
        let content = match &document.document_id {
            Some(id) => documents::content(&state.shared, id).await?,
            None => Content::None,
        };
        out.push(DocumentWithContent { document, content });
    }
    Ok(out)
}

/// Query of `POST /apis/import`: the reference's parameters, with our `dryRun` and
/// `paramsEnvironment`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ImportQuery {
    preserve_provider: Option<bool>,
    overwrite: bool,
    rotate_revision: bool,
    dry_run: bool,
    params_environment: Option<String>,
}

/// `POST /apis/import` (multipart `file`: the project as a zip; optional `params`: an
/// `api_params.yaml` whose entry `paramsEnvironment` overrides the project).
#[utoipa::path(post, path = "/apis/import", operation_id = "post_apis_import", tag = "Import Export", summary = "Import an API project (zip): create or update the API, its documents, state and deployments", params(("preserveProvider" = Option<bool>, Query, description = "Keep the project's provider (default true; another user's needs an administrator)"), ("overwrite" = Option<bool>, Query, description = "Update the API when it exists"), ("rotateRevision" = Option<bool>, Query, description = "At the most revisions, delete the oldest undeployed one"), ("dryRun" = Option<bool>, Query, description = "Check and report what would change; write nothing"), ("paramsEnvironment" = Option<String>, Query, description = "The entry of the params file to apply")), request_body(content = crate::api_doc::ProjectImportForm, content_type = "multipart/form-data"), responses((status = 200, description = "What was created, changed or left alone, and what was not imported", body = ImportOutcome), (status = 409, description = "The API exists and overwrite is false"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn import(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    form: ApiMultipart,
) -> Result<Response, ApiError> {
    let parts = form.into_parts().await?;
    let zip = parts
        .get("file")
        .ok_or_else(|| Error::field("file", "send the project as a zip in the multipart part `file`"))?;
    let files = archive::read_zip(zip, Limits::UPLOAD).map_err(Error::from)?;
    let mut project = ApiProject::from_files(&files).map_err(Error::from)?;
    match (parts.get("params"), &q.params_environment) {
        (Some(params), env) => ApiParams::parse(params)
            .and_then(|p| p.apply(env.as_deref(), &mut project))
            .map_err(Error::from)?,
        (None, Some(_)) => {
            return Err(Error::field(
                "paramsEnvironment",
                "needs a params file in the multipart part `params`",
            )
            .into());
        }
        (None, None) => {}
    }
    let outcome = import_project(&state, auth.principal(), project, &q).await?;
    Ok((StatusCode::OK, axum::Json(outcome)).into_response())
}

/// The API's fields that carry meaning for comparison: without the server-owned ones.
fn comparable(api: &Api) -> Value {
    let mut v = serde_json::to_value(api).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        for k in ["id", "provider", "lifeCycleStatus", "createdTime", "lastUpdatedTime"] {
            m.remove(k);
        }
    }
    v
}

/// The top-level fields in which two APIs differ.
fn changed_fields(old: &Api, new: &Api) -> Vec<String> {
    let (a, b) = (comparable(old), comparable(new));
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return vec!["the API".into()];
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
        .collect()
}

/// Whether `rev` holds exactly this API and definition.
fn revision_matches(rev: &RevisionRow, stored: &StoredApi) -> bool {
    let Ok(api) = serde_json::from_str::<Api>(&rev.body) else {
        return false;
    };
    let def = |d: &Option<String>| d.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
    comparable(&api) == comparable(&stored.api) && def(&rev.definition) == def(&stored.definition)
}

/// A guess at a document file's media type from its extension.
fn media_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Checks the project's documents and gives them in the store's form.
fn project_documents(project: &ApiProject) -> Result<Vec<DocumentWithContent>, ApiError> {
    if project.documents.len() > MAX_DOCUMENTS {
        return Err(Error::field("Docs", format!("a project may carry at most {MAX_DOCUMENTS} documents")).into());
    }
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for d in &project.documents {
        let field = |f: &str| format!("Docs[{}]#data.{f}", d.document.name);
        for e in d.document.validate() {
            errors.push(FieldError::new(field(&e.field), e.message));
        }
        if !names.insert(d.document.name.to_lowercase()) {
            errors.push(FieldError::new(field("name"), "two documents have this name"));
        }
        let mut document: Document = d.document.clone();
        document.document_id = None;
        let size = match &d.content {
            Some(DocumentContent::Text(t)) => t.len(),
            Some(DocumentContent::File { bytes, .. }) => bytes.len(),
            None => 0,
        };
        if size > MAX_DOCUMENT_BYTES {
            errors.push(FieldError::new(
                field("content"),
                format!("the content is larger than {MAX_DOCUMENT_BYTES} bytes"),
            ));
        }
        let content = match &d.content {
            Some(DocumentContent::Text(t)) => Content::Text(t.clone()),
            Some(DocumentContent::File { name, bytes }) => Content::File {
                name: name.clone(),
                media_type: media_type(name).into(),
                bytes: bytes.clone(),
            },
            None => Content::None,
        };
        out.push(DocumentWithContent { document, content });
    }
    Error::check_fields(errors)?;
    Ok(out)
}

/// What differs between the stored documents and the project's, as change lines.
fn document_changes(old: &[DocumentWithContent], new: &[DocumentWithContent]) -> Vec<String> {
    let meta = Document::authored;
    let mut changes = Vec::new();
    for n in new {
        match old.iter().find(|o| o.document.name == n.document.name) {
            None => changes.push(format!("added document `{}`", n.document.name)),
            Some(o) if meta(&o.document) != meta(&n.document) || !same_content(&o.content, &n.content) => {
                changes.push(format!("changed document `{}`", n.document.name))
            }
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| n.document.name == o.document.name) {
            changes.push(format!("removed document `{}`", o.document.name));
        }
    }
    changes
}

fn same_content(a: &Content, b: &Content) -> bool {
    match (a, b) {
        (
            Content::File {
                name: n1, bytes: b1, ..
            },
            Content::File {
                name: n2, bytes: b2, ..
            },
        ) => n1 == n2 && b1 == b2,
        (a, b) => a == b,
    }
}

/// The provider of an API an import creates: the project's, kept only for an
/// administrator (`preserveProvider`, default true, as in the reference), else the caller.
fn provider_for_new(
    principal: &Principal,
    api: &Api,
    q: &ImportQuery,
    api_file: &str,
    warnings: &mut Vec<String>,
) -> Result<String, ApiError> {
    let preserve = q.preserve_provider.unwrap_or(true);
    match api.provider.clone().filter(|p| !p.is_empty()) {
        Some(p) if p == principal.username => Ok(p),
        Some(p) if preserve => {
            if grants::<AdminRole>(principal) {
                Ok(p)
            } else {
                Err(Error::Forbidden(format!(
                    "{api_file}: the project's provider is `{p}`; only an administrator imports an API as another provider; import with preserveProvider=false (tollgate import api --preserve-provider=false) to become its provider"
                ))
                .into())
            }
        }
        Some(p) => {
            warnings.push(format!(
                "{api_file}: provider `{p}` replaced by `{}` (preserveProvider=false)",
                principal.username
            ));
            Ok(principal.username.clone())
        }
        None => Ok(principal.username.clone()),
    }
}

/// Refuses a caller without the publisher role for what the project `does`.
fn require_publisher(principal: &Principal, does: &str) -> Result<(), ApiError> {
    if grants::<PublisherRole>(principal) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "the project {does}, which needs the publisher role; `{}` does not have it (leave lifeCycleStatus and deployment_environments as they are on the server, or ask a publisher)",
        principal.username
    ))
    .into())
}

/// Whether the lifecycle leads from `from` to `to` by allowed actions.
fn reachable(from: LifecycleState, to: LifecycleState) -> bool {
    let mut seen = vec![from];
    let mut next = vec![from];
    while let Some(state) = next.pop() {
        for action in state.actions() {
            if let Some(s) = state.apply(*action)
                && !seen.contains(&s)
            {
                if s == to {
                    return true;
                }
                seen.push(s);
                next.push(s);
            }
        }
    }
    false
}

/// Creates or updates the API the project describes; see the module's comment.
async fn import_project(
    state: &PublisherState,
    principal: &Principal,
    project: ApiProject,
    q: &ImportQuery,
) -> Result<ImportOutcome, ApiError> {
    let tenant = principal.tenant_id;
    let api_file = project.api_file.clone();
    let mut api = project.api.clone();
    let mut warnings = project.warnings.clone();

    // The definition, checked as any OpenAPI import is.
    let definition = match (&project.definition, &project.definition_file) {
        (Some(doc), file) => {
            let file = file.clone().unwrap_or_else(|| "Definitions/swagger.yaml".into());
            let bytes = serde_json::to_vec(doc).map_err(|e| Error::Internal(e.to_string()))?;
            let def = definition::parse(&bytes)
                .map_err(|errors| ApiError(Error::Validation(errors).with_field_prefix(&format!("{file}#"))))?;
            Some(def.doc)
        }
        (None, _) => None,
    };

    // The lifecycle state the project names; none keeps the API's (CREATED when new).
    let named_state = api.life_cycle_status;
    let deployments: Vec<DeploymentEnvironment> = project.deployments.clone().unwrap_or_default();
    validate(state, tenant, &mut api)
        .await
        .map_err(|e| ApiError(e.0.with_field_prefix(&format!("{api_file}#data."))))?;
    let new_documents = project_documents(&project)?;
    let mut seen = HashSet::new();
    for (i, d) in deployments.iter().enumerate() {
        if !seen.insert(d.deployment_environment.as_str()) {
            return Err(Error::field(
                format!("deployment_environments#data[{i}].deploymentEnvironment"),
                format!("`{}` is listed twice", d.deployment_environment),
            )
            .into());
        }
    }

    let mut tx = state.am.begin().await?;
    let existing = apis::find_by_name_in(&mut tx, tenant, &api.name, &api.version).await?;
    if existing.is_some() && !q.overwrite {
        return Err(Error::Conflict(format!(
            "an API named `{}` with version `{}` already exists; import with overwrite=true (tollgate import api --update) to update it",
            api.name, api.version
        ))
        .into());
    }
    ensure_unique(&mut tx, tenant, &api, existing.as_ref().map(|e| e.id.as_str())).await?;
    let now = now_millis();
    let mut changes = Vec::new();
    let created = existing.is_none();
    let id = match existing {
        None => {
            api.id = None;
            api.created_time = None;
            api.last_updated_time = None;
            api.provider = Some(provider_for_new(principal, &api, q, &api_file, &mut warnings)?);
            api.life_cycle_status = Some(LifecycleState::Created);
            let mut doc = definition.unwrap_or_else(|| definition::generate(&api));
            definition::sync(&mut doc, &api);
            let stored = StoredApi {
                id: uuid::Uuid::now_v7().to_string(),
                tenant_id: tenant,
                api,
                definition: Some(doc.to_string()),
                revision_counter: 0,
                created_at: now,
                updated_at: now,
            };
            if stored.api.is_default_version {
                apis::clear_other_default_versions(&mut tx, tenant, &stored.api.name, &stored.id).await?;
            }
            apis::insert(&mut tx, &stored)
                .await
                .map_err(crate::apis::conflict_on_race)?;
            apis::record_lifecycle(
                &mut tx,
                &stored.id,
                None,
                LifecycleState::Created,
                &principal.username,
                now,
            )
            .await?;
            changes.push("created the API".to_string());
            stored.id
        }
        Some(current) => {
            // Found by name in any case: the stored name stays (a rename is a new API).
            api.name = current.api.name.clone();
            api.id = current.api.id.clone();
            api.provider = current.api.provider.clone();
            api.life_cycle_status = current.api.life_cycle_status;
            api.created_time = current.api.created_time.clone();
            api.last_updated_time = current.api.last_updated_time.clone();
            let old_doc: Option<Value> = current.definition.as_deref().and_then(|d| serde_json::from_str(d).ok());
            let mut doc = definition
                .or_else(|| old_doc.clone())
                .unwrap_or_else(|| definition::generate(&api));
            definition::sync(&mut doc, &api);
            let fields = changed_fields(&current.api, &api);
            let definition_changed = old_doc.as_ref() != Some(&doc);
            if !fields.is_empty() || definition_changed {
                if !fields.is_empty() {
                    changes.push(format!("changed {}", fields.join(", ")));
                }
                if definition_changed {
                    changes.push("changed the definition".to_string());
                }
                if api.is_default_version {
                    apis::clear_other_default_versions(&mut tx, tenant, &api.name, &current.id).await?;
                }
                let updated = StoredApi {
                    api,
                    definition: Some(doc.to_string()),
                    updated_at: now.max(current.updated_at + 1),
                    ..current.clone()
                };
                apis::update(&mut tx, &updated)
                    .await
                    .map_err(crate::apis::conflict_on_race)?;
            }
            current.id
        }
    };
    let mut stored = crate::apis::load_in(&mut tx, tenant, &id).await?;

    // The lifecycle state the project has: a publisher's change, along the lifecycle.
    let current_state = stored.api.life_cycle_status.unwrap_or_default();
    let target_state = named_state.unwrap_or(current_state);
    if target_state != current_state {
        require_publisher(principal, "changes the API's lifecycle state")?;
        if !reachable(current_state, target_state) {
            return Err(Error::field(
                format!("{api_file}#data.lifeCycleStatus"),
                format!(
                    "the API is {} and cannot become {} (the lifecycle allows no way there)",
                    current_state.display_name(),
                    target_state.display_name()
                ),
            )
            .into());
        }
        crate::lifecycle::set_state_in(&mut tx, &stored, target_state, &principal.username).await?;
        changes.push(format!(
            "lifecycle {} → {}",
            current_state.display_name(),
            target_state.display_name()
        ));
        stored = crate::apis::load_in(&mut tx, tenant, &id).await?;
    }

    // Deployments: each listed environment serves a revision equal to the API as
    // imported; a new revision is made only when none is.
    if !deployments.is_empty() {
        let names: Vec<(String, &str)> = deployments
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    format!("deployment_environments#data[{i}].deploymentEnvironment"),
                    d.deployment_environment.as_str(),
                )
            })
            .collect();
        check_environments(&mut tx, state, tenant, &names).await?;
        let serving = apis::deployments_in(&mut tx, &id).await?;
        let revisions = apis::revisions_in(&mut tx, &id).await?;
        let pending: Vec<&DeploymentEnvironment> = deployments
            .iter()
            .filter(|d| {
                let current = serving.iter().find(|s| s.environment == d.deployment_environment);
                !current.is_some_and(|c| {
                    c.display_on_devportal == d.display_on_devportal
                        && d.deployment_vhost.as_ref().is_none_or(|v| c.vhost.as_ref() == Some(v))
                        && revisions
                            .iter()
                            .find(|r| r.id == c.revision_id)
                            .is_some_and(|r| revision_matches(r, &stored))
                })
            })
            .collect();
        if !pending.is_empty() {
            require_publisher(principal, "deploys the API")?;
            let rev = match revisions.last().filter(|r| revision_matches(r, &stored)) {
                Some(r) => r.clone(),
                None => {
                    let r = snapshot_in(
                        &mut tx,
                        state.max_revisions_per_api,
                        &stored,
                        Some("Imported from a project".into()),
                        q.rotate_revision,
                    )
                    .await?;
                    changes.push(format!("made revision {}", r.number));
                    r
                }
            };
            let requests: Vec<DeploymentRequest> = pending
                .iter()
                .map(|d| DeploymentRequest {
                    name: d.deployment_environment.clone(),
                    vhost: d.deployment_vhost.clone(),
                    display_on_devportal: d.display_on_devportal,
                })
                .collect();
            deploy_in(&mut tx, state, &stored, &rev, &requests, "deployment_environments#data").await?;
            let names: Vec<&str> = requests.iter().map(|r| r.name.as_str()).collect();
            changes.push(format!("deployed revision {} to {}", rev.number, names.join(", ")));
        }
    }

    // Documents live in the shared database: compared now, written after the commit.
    let old_documents = if created {
        Vec::new()
    } else {
        stored_documents(state, &stored).await?
    };
    let document_changes = document_changes(&old_documents, &new_documents);
    changes.extend(document_changes.iter().cloned());

    let status = if created {
        "CREATED"
    } else if changes.is_empty() {
        "UNCHANGED"
    } else {
        "UPDATED"
    };
    if q.dry_run {
        // Dropped without commit: every write above is rolled back.
        drop(tx);
    } else {
        tx.commit().await?;
        if !document_changes.is_empty() {
            documents::replace_for_api(
                &state.shared,
                tenant,
                &id,
                &new_documents,
                &principal.username,
                now_millis(),
            )
            .await
            .map_err(|e| {
                tracing::error!(api_id = %id, error = %e, "An imported API's documents could not be written.");
                Error::Unavailable(format!(
                    "the API was imported, but its documents could not be written ({e}); import the project again to complete it"
                ))
            })?;
        }
        if !changes.is_empty() {
            tracing::info!(api_id = %id, name = %stored.api.name, version = %stored.api.version, status, by = %principal.username, "API project imported.");
        }
    }
    Ok(ImportOutcome {
        id,
        name: stored.api.name,
        version: stored.api.version,
        status: status.into(),
        dry_run: q.dry_run,
        changes,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::reachable;
    use tollgate_model::LifecycleState::*;

    #[test]
    fn the_lifecycle_decides_which_states_an_import_reaches() {
        assert!(reachable(Created, Published));
        assert!(reachable(Created, Retired));
        assert!(reachable(Published, Created));
        assert!(reachable(Blocked, Published));
        assert!(!reachable(Retired, Published));
        assert!(!reachable(Retired, Created));
    }
}
