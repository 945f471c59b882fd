//! API documents (how-tos, samples, forums…) as the reference's Publisher API shapes them.
//! Their content is inline text, Markdown, a URL, or an uploaded file.

use crate::FieldError;
use serde::{Deserialize, Serialize};

/// A document's metadata (its content is separate: `…/documents/{id}/content`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// Unique per API.
    pub name: String,
    /// `HOWTO`, `SAMPLES`, `PUBLIC_FORUM`, `SUPPORT_FORUM`, `API_MESSAGE_FORMAT`,
    /// `SWAGGER_DOC` or `OTHER` (with `otherTypeName`).
    #[serde(rename = "type")]
    pub doc_type: String,
    /// A line for lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// `INLINE`, `MARKDOWN`, `URL` or `FILE`.
    pub source_type: String,
    /// For `URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// For `FILE`: the uploaded file's name (server-set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// For `INLINE`/`MARKDOWN`: the text may be given here or uploaded as content.
    #[serde(default, skip_serializing, skip_serializing_if = "Option::is_none")]
    pub inline_content: Option<String>,
    /// For `OTHER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_type_name: Option<String>,
    /// `OWNER_ONLY`, `PRIVATE` or `API_LEVEL` (default: as the API).
    #[serde(default = "api_level")]
    pub visibility: String,
    /// Server-set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// Server-set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Server-set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_time: Option<String>,
    /// Server-set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_by: Option<String>,
}

fn api_level() -> String {
    "API_LEVEL".into()
}

/// The document types of the reference.
pub const DOCUMENT_TYPES: [&str; 7] = [
    "HOWTO",
    "SAMPLES",
    "PUBLIC_FORUM",
    "SUPPORT_FORUM",
    "API_MESSAGE_FORMAT",
    "SWAGGER_DOC",
    "OTHER",
];

impl Document {
    /// The document as its author wrote it: without what the server sets (id, times,
    /// authors) and without its content (the file's name, inline text), which is stored
    /// and compared apart.
    pub fn authored(&self) -> Document {
        Document {
            document_id: None,
            file_name: None,
            inline_content: None,
            created_time: None,
            created_by: None,
            last_updated_time: None,
            last_updated_by: None,
            ..self.clone()
        }
    }

    /// Checks every field, naming each bad one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.name.trim().is_empty() || self.name.len() > 60 {
            e.push(FieldError::new("name", "must be 1 to 60 characters"));
        } else if let Some(c) = crate::text::hidden_or_reordering_char(&self.name) {
            e.push(FieldError::new("name", crate::text::hidden_char_message(c)));
        }
        if !DOCUMENT_TYPES.contains(&self.doc_type.as_str()) {
            e.push(FieldError::new(
                "type",
                format!("`{}` must be one of {}", self.doc_type, DOCUMENT_TYPES.join(", ")),
            ));
        }
        if self.doc_type == "OTHER" && self.other_type_name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            e.push(FieldError::new("otherTypeName", "is required when type is OTHER"));
        }
        match self.source_type.as_str() {
            "INLINE" | "MARKDOWN" | "FILE" => {}
            "URL" => {
                let ok = self
                    .source_url
                    .as_deref()
                    .is_some_and(|u| (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8);
                if !ok {
                    e.push(FieldError::new(
                        "sourceUrl",
                        "must be an http:// or https:// URL when sourceType is URL",
                    ));
                }
            }
            other => e.push(FieldError::new(
                "sourceType",
                format!("`{other}` must be INLINE, MARKDOWN, URL or FILE"),
            )),
        }
        if !matches!(self.visibility.as_str(), "OWNER_ONLY" | "PRIVATE" | "API_LEVEL") {
            e.push(FieldError::new(
                "visibility",
                "must be OWNER_ONLY, PRIVATE or API_LEVEL",
            ));
        }
        if self.summary.as_ref().is_some_and(|s| s.len() > 1024) {
            e.push(FieldError::new("summary", "must be at most 1024 characters"));
        }
        e
    }
}
