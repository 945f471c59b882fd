//! An API project: `api.yaml` (the API), `Definitions/swagger.yaml` (its OpenAPI
//! definition), `Docs/<name>/document.yaml` with each document's content,
//! `deployment_environments.yaml` (where it is deployed) and `api_meta.yaml` (what the
//! reference's CLI records for later imports), in YAML or JSON.

use crate::ProjectError;
use crate::archive::Files;
use crate::decode::{self, FORMAT_VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use tollgate_model::Api;
use tollgate_model::document::Document;

/// How the project's files are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` files (the reference's default).
    #[default]
    Yaml,
    /// `.json` files.
    Json,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }

    /// Parses the reference's `format` parameter (`YAML`, `JSON`, any case).
    pub fn parse(text: &str) -> Option<Format> {
        match text.to_ascii_uppercase().as_str() {
            "YAML" | "YML" => Some(Format::Yaml),
            "JSON" => Some(Format::Json),
            _ => None,
        }
    }
}

/// One environment the API is (to be) deployed to (`deployment_environments.yaml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEnvironment {
    /// The gateway environment's name.
    pub deployment_environment: String,
    /// The virtual host (default: the environment's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_vhost: Option<String>,
    /// Whether the Developer Portal lists the environment's URLs.
    #[serde(default = "yes")]
    pub display_on_devportal: bool,
}

fn yes() -> bool {
    true
}

/// A document's content as the project carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentContent {
    /// The text of an `INLINE` or `MARKDOWN` document.
    Text(String),
    /// The file of a `FILE` document.
    File {
        /// Its name.
        name: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

/// A document with its content.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectDocument {
    /// The metadata (`document.yaml`).
    pub document: Document,
    /// The content, when the document has one (not for `URL` documents).
    pub content: Option<DocumentContent>,
}

/// `api_meta.yaml`: written by the reference's CLI for its later imports (no envelope).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiMeta {
    /// The API's name.
    #[serde(default)]
    pub name: String,
    /// The API's version.
    #[serde(default)]
    pub version: String,
    /// How the reference's CLI imports the project.
    #[serde(default)]
    pub deploy: MetaDeploy,
}

/// `api_meta.yaml`'s `deploy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaDeploy {
    /// Import options.
    #[serde(default)]
    pub import: MetaImport,
}

/// `api_meta.yaml`'s `deploy.import`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaImport {
    /// Import over an existing API.
    #[serde(default)]
    pub update: bool,
    /// Keep the provider the project names.
    #[serde(default = "yes")]
    pub preserve_provider: bool,
    /// Delete the oldest revision when the API has the most it may keep.
    #[serde(default)]
    pub rotate_revision: bool,
}

impl Default for MetaImport {
    fn default() -> Self {
        MetaImport {
            update: true,
            preserve_provider: true,
            rotate_revision: false,
        }
    }
}

/// An API with everything its project carries.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiProject {
    /// The API, as the Publisher REST API shapes it.
    pub api: Api,
    /// Where the API was read from (`api.yaml` or `api.json`), for errors.
    pub api_file: String,
    /// The OpenAPI definition, when the project has one.
    pub definition: Option<Value>,
    /// Where the definition was read from (`Definitions/swagger.yaml`), for errors.
    pub definition_file: Option<String>,
    /// The documents.
    pub documents: Vec<ProjectDocument>,
    /// Where to deploy; `None` when the project has no `deployment_environments` file.
    pub deployments: Option<Vec<DeploymentEnvironment>>,
    /// What the project holds that Tollgate does not use: fields with a value, and
    /// files it does not read. Never dropped silently.
    pub warnings: Vec<String>,
}

/// Finds `stem.yaml`, `stem.yml` or `stem.json`.
pub(crate) fn find<'a>(files: &'a Files, stem: &str) -> Option<(String, &'a [u8])> {
    ["yaml", "yml", "json"].iter().find_map(|ext| {
        let path = format!("{stem}.{ext}");
        files.get(&path).map(|b| (path, b))
    })
}

/// A document name as a folder name: the reference's rule (anything but letters,
/// digits, `.` and `-` becomes `_`).
pub fn folder_name(name: &str) -> String {
    let folded: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // `..`, `.` and nothing name no folder of their own.
    if folded.chars().all(|c| c == '.') {
        "_".repeat(folded.len().max(1))
    } else {
        folded
    }
}

impl ApiProject {
    /// Reads a project from its files. Every file it does not use is named in
    /// `warnings`.
    pub fn from_files(files: &Files) -> Result<ApiProject, ProjectError> {
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut warnings = Vec::new();
        let (api_file, bytes) = find(files, "api").ok_or_else(|| {
            ProjectError::Missing(
                "api.yaml (or api.json) at its top; is this an API project exported by the reference or by Tollgate?"
                    .into(),
            )
        })?;
        used.insert(api_file.clone());
        let api_file = api_file.to_string();
        let data = decode::envelope(&api_file, bytes, &["api"])?;
        let (api, unknown): (Api, _) = decode::typed(&api_file, "data", &data)?;
        warnings.extend(
            unknown
                .into_iter()
                .map(|f| format!("{api_file}: {f} is not supported by Tollgate and was not imported")),
        );

        let mut definition = None;
        let mut definition_file = None;
        if let Some((path, bytes)) = find(files, "Definitions/swagger").or_else(|| find(files, "Definitions/openapi")) {
            used.insert(path.clone());
            definition = Some(decode::parse(&path, bytes)?);
            definition_file = Some(path);
        }

        let mut deployments = None;
        if let Some((path, bytes)) = find(files, "deployment_environments") {
            used.insert(path.clone());
            let data = decode::envelope(&path, bytes, &["deployment_environments"])?;
            let (list, unknown): (Vec<DeploymentEnvironment>, _) = decode::typed(&path, "data", &data)?;
            warnings.extend(
                unknown
                    .into_iter()
                    .map(|f| format!("{path}: {f} is not supported by Tollgate")),
            );
            deployments = Some(list);
        }
        if let Some((path, _)) = find(files, "api_meta") {
            // The reference's CLI reads it; the server does not, and neither does Tollgate.
            used.insert(path);
        }

        let mut documents = Vec::new();
        let folders: BTreeSet<&str> = files
            .under("Docs")
            .filter_map(|(rest, _)| rest.split_once('/').map(|(folder, _)| folder))
            .collect();
        for folder in folders {
            let stem = format!("Docs/{folder}/document");
            let Some((path, bytes)) = find(files, &stem) else {
                continue;
            };
            used.insert(path.clone());
            let data = decode::envelope(&path, bytes, &["document"])?;
            let (document, unknown): (Document, _) = decode::typed(&path, "data", &data)?;
            warnings.extend(
                unknown
                    .into_iter()
                    .map(|f| format!("{path}: {f} is not supported by Tollgate")),
            );
            let content = document_content(files, folder, &document, &mut used);
            documents.push(ProjectDocument { document, content });
        }

        for path in files.files.keys() {
            if !used.contains(path) {
                warnings.push(format!("{path} is not imported: {}", why_not_read(path)));
            }
        }
        Ok(ApiProject {
            api,
            api_file,
            definition,
            definition_file,
            documents,
            deployments,
            warnings,
        })
    }

    /// The project's files. `top` is the archive's folder (`<name>-<version>`).
    pub fn to_files(&self, format: Format) -> Result<Files, ProjectError> {
        let ext = format.extension();
        let mut files = Files {
            top: Some(self.top_folder()),
            ..Files::default()
        };
        files.put(format!("api.{ext}"), write_envelope(format, "api", &self.api)?);
        if let Some(def) = &self.definition {
            files.put(format!("Definitions/swagger.{ext}"), write(format, def)?);
        }
        if let Some(deployments) = &self.deployments
            && !deployments.is_empty()
        {
            files.put(
                format!("deployment_environments.{ext}"),
                write_envelope(format, "deployment_environments", deployments)?,
            );
        }
        let meta = ApiMeta {
            name: self.api.name.clone(),
            version: self.api.version.clone(),
            deploy: MetaDeploy::default(),
        };
        // Always YAML, as the reference's CLI writes it.
        files.put(
            "api_meta.yaml",
            yaml_serde::to_string(&meta).map_err(|e| ProjectError::Write(e.to_string()))?,
        );
        let mut taken = BTreeSet::new();
        for d in &self.documents {
            let mut folder = folder_name(&d.document.name);
            let mut n = 2;
            while !taken.insert(folder.clone()) {
                folder = format!("{}-{n}", folder_name(&d.document.name));
                n += 1;
            }
            let mut meta = d.document.clone();
            meta.document_id = None;
            files.put(
                format!("Docs/{folder}/document.{ext}"),
                write_envelope(format, "document", &meta)?,
            );
            // A content file never takes the metadata's name.
            let content_name = |name: String| {
                if name.starts_with("document.") {
                    format!("content-{name}")
                } else {
                    name
                }
            };
            match &d.content {
                Some(DocumentContent::Text(text)) => files.put(
                    format!("Docs/{folder}/{}", content_name(folder.clone())),
                    text.as_bytes(),
                ),
                Some(DocumentContent::File { name, bytes }) => files.put(
                    format!("Docs/{folder}/{}", content_name(folder_name(name))),
                    bytes.clone(),
                ),
                None => {}
            }
        }
        Ok(files)
    }

    /// `<name>-<version>`, the reference's top folder.
    pub fn top_folder(&self) -> String {
        format!("{}-{}", folder_name(&self.api.name), folder_name(&self.api.version))
    }
}

/// Finds a document's content: for a file, the file it names; for text, the file named
/// after the folder or after the document (the reference writes one and reads the other).
fn document_content(
    files: &Files,
    folder: &str,
    document: &Document,
    used: &mut BTreeSet<String>,
) -> Option<DocumentContent> {
    let source = document.source_type.to_ascii_uppercase();
    let mut take = |name: &str| -> Option<Vec<u8>> {
        // The metadata is never the content (a content file so named was written as
        // `content-document.yaml`).
        if ["document.yaml", "document.yml", "document.json"].contains(&name) {
            return None;
        }
        let path = format!("Docs/{folder}/{name}");
        let bytes = files.get(&path)?.to_vec();
        used.insert(path);
        Some(bytes)
    };
    match source.as_str() {
        "FILE" => {
            let name = document.file_name.clone()?;
            let bytes = take(&name)
                .or_else(|| take(&folder_name(&name)))
                .or_else(|| take(&format!("content-{}", folder_name(&name))))?;
            Some(DocumentContent::File { name, bytes })
        }
        "INLINE" | "MARKDOWN" => {
            let bytes = take(folder)
                .or_else(|| take(&document.name))
                .or_else(|| take(&format!("content-{folder}")))?;
            Some(DocumentContent::Text(String::from_utf8_lossy(&bytes).into_owned()))
        }
        _ => None,
    }
}

/// Why a file of the project is not read, by the folder the reference puts it in.
fn why_not_read(path: &str) -> &'static str {
    let top = path.split('/').next().unwrap_or(path);
    match top {
        "Image" => "Tollgate keeps no API thumbnails",
        "Endpoint-certificates" | "Client-certificates" => "Tollgate does not manage certificates per API yet",
        "Policies" | "Sequences" | "Interceptors" => "Tollgate has no mediation policies yet",
        "WSDL" | "SoapToRest" => "Tollgate does not serve SOAP APIs",
        "Definitions" => "Tollgate reads only Definitions/swagger.yaml or .json (OpenAPI)",
        "Docs" => "no document.yaml names it",
        _ => "Tollgate does not read this file",
    }
}

/// A file's `{type, version, data}`, in the reference's order.
#[derive(Serialize)]
struct Envelope<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    version: &'a str,
    data: T,
}

/// Writes `data` in its envelope as the format's text.
pub fn write_envelope<T: Serialize>(format: Format, kind: &str, data: &T) -> Result<Vec<u8>, ProjectError> {
    write(
        format,
        &Envelope {
            kind,
            version: FORMAT_VERSION,
            data,
        },
    )
}

/// Writes a value as the format's text.
pub fn write<T: Serialize + ?Sized>(format: Format, value: &T) -> Result<Vec<u8>, ProjectError> {
    match format {
        Format::Yaml => yaml_serde::to_string(value)
            .map(String::into_bytes)
            .map_err(|e| ProjectError::Write(e.to_string())),
        Format::Json => {
            let mut out = serde_json::to_vec_pretty(value).map_err(|e| ProjectError::Write(e.to_string()))?;
            out.push(b'\n');
            Ok(out)
        }
    }
}
