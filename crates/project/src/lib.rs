//! Projects: APIs, applications and throttling policies as files, in the reference's
//! project format (what its `apictl` and its `/export` operations write), so that
//! projects move between Tollgate nodes, between the reference and Tollgate, and live in
//! Git. This crate reads and writes the files only; the REST handlers decide what an
//! import changes.
//!
//! Every file is a `{type, version, data}` envelope; `data` carries the same types as
//! the REST API (decision 022).

pub mod api;
pub mod application;
pub mod archive;
pub mod decode;
pub mod params;
pub mod policy;
pub mod yaml;

pub use archive::{Files, Limits};

/// Why a project cannot be read: each names the file and, where it can, the line or
/// field, so that the person who wrote the project can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The archive or directory is unsafe or unreadable (zip-slip, bomb, symlink…).
    #[error("{0}")]
    Archive(String),
    /// A file the project must have is not there.
    #[error("the project has no {0}")]
    Missing(String),
    /// A file is not valid YAML or JSON.
    #[error("{file}: {message}")]
    Syntax {
        /// The file, relative to the project.
        file: String,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A field has the wrong shape or value.
    #[error("{file}: {field}: {message}")]
    Field {
        /// The file, relative to the project.
        file: String,
        /// The field's path inside the file (`data.operations[0].verb`).
        field: String,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// A project could not be written (a value that does not serialise).
    #[error("cannot write the project: {0}")]
    Write(String),
    /// The file's format version is not one Tollgate reads.
    #[error(
        "{file}: format version `{found}` is not supported; Tollgate reads the reference's 4.x projects (version v4.x.x)"
    )]
    Version {
        /// The file.
        file: String,
        /// The version it declares.
        found: String,
    },
}

impl ProjectError {
    /// The field a REST answer names: the file, with the field's path after `#`.
    pub fn field(&self) -> String {
        match self {
            ProjectError::Archive(_) | ProjectError::Missing(_) | ProjectError::Write(_) => "file".into(),
            ProjectError::Syntax { file, .. } | ProjectError::Version { file, .. } => file.clone(),
            ProjectError::Field { file, field, .. } if field.is_empty() => file.clone(),
            ProjectError::Field { file, field, .. } => format!("{file}#{field}"),
        }
    }
}

impl From<ProjectError> for tollgate_model::Error {
    fn from(e: ProjectError) -> Self {
        tollgate_model::Error::Validation(vec![tollgate_model::FieldError::new(e.field(), e.to_string())])
    }
}
