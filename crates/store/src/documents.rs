//! API documents and their content (shared database).

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result};
use tollgate_model::document::Document;
use tollgate_model::{EpochMillis, TenantId, rfc3339};

struct Row {
    id: String,
    body: String,
    file_name: Option<String>,
    created_at: i64,
    created_by: String,
    updated_at: i64,
    updated_by: String,
}
crate::db::from_row!(Row {
    id,
    body,
    file_name,
    created_at,
    created_by,
    updated_at,
    updated_by
});

impl TryFrom<Row> for Document {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let mut d: Document =
            serde_json::from_str(&r.body).map_err(|e| Error::Corrupt(format!("document {}: {e}", r.id)))?;
        d.document_id = Some(r.id);
        d.file_name = r.file_name;
        d.created_time = Some(rfc3339(r.created_at));
        d.created_by = Some(r.created_by);
        d.last_updated_time = Some(rfc3339(r.updated_at));
        d.last_updated_by = Some(r.updated_by);
        Ok(d)
    }
}

const COLUMNS: &str = "id, body, file_name, created_at, created_by, updated_at, updated_by";

fn body(doc: &Document) -> Result<String> {
    serde_json::to_string(&doc.authored()).map_err(|e| Error::Corrupt(e.to_string()))
}

/// An API's documents by name, with the total.
pub async fn list(
    db: &Database,
    tenant: TenantId,
    api_id: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Document>, i64)> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_documents WHERE tenant_id = $1 AND api_id = $2 ORDER BY lower(name) LIMIT $3 OFFSET $4"
    );
    let rows: Vec<Row> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(api_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
    let total: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_documents WHERE tenant_id = $1 AND api_id = $2"
    )
    .bind(tenant.to_string())
    .bind(api_id)
    .fetch_one(p)
    .await)?;
    Ok((rows.into_iter().map(Document::try_from).collect::<Result<_>>()?, total))
}

/// One document of an API.
pub async fn get(db: &Database, tenant: TenantId, api_id: &str, id: &str) -> Result<Option<Document>> {
    let sql = format!("SELECT {COLUMNS} FROM api_documents WHERE tenant_id = $1 AND api_id = $2 AND id = $3");
    let row: Option<Row> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(api_id)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    row.map(Document::try_from).transpose()
}

/// Stores a new document (with inline text when given); a duplicate name per API is a
/// unique violation.
pub async fn insert(
    db: &Database,
    tenant: TenantId,
    api_id: &str,
    id: &str,
    doc: &Document,
    user: &str,
    at: EpochMillis,
) -> Result<()> {
    let body = body(doc)?;
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |c| {
        sqlx::query(
        "INSERT INTO api_documents (id, tenant_id, api_id, name, body, text_content, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $8)"
    )
    .bind(id)
    .bind(tenant.to_string())
    .bind(api_id)
    .bind(&doc.name)
    .bind(&body)
    .bind(&doc.inline_content)
    .bind(at)
    .bind(user)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    tx.commit().await
}

/// Replaces a document's metadata (and inline text, when given).
pub async fn update(db: &Database, id: &str, doc: &Document, user: &str, at: EpochMillis) -> Result<()> {
    let body = body(doc)?;
    on_pool!(db.writer(), |p| sqlx::query(
        "UPDATE api_documents SET name = $2, body = $3, text_content = COALESCE($4, text_content), \
         updated_at = $5, updated_by = $6 WHERE id = $1"
    )
    .bind(id)
    .bind(&doc.name)
    .bind(&body)
    .bind(&doc.inline_content)
    .bind(at)
    .bind(user)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A document's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Inline text or Markdown.
    Text(String),
    /// An uploaded file.
    File {
        /// Its name.
        name: String,
        /// Its media type.
        media_type: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// Nothing uploaded yet.
    None,
}

/// Sets a document's inline text.
pub async fn set_text(db: &Database, id: &str, text: &str, user: &str, at: EpochMillis) -> Result<()> {
    on_pool!(db.writer(), |p| sqlx::query(
        "UPDATE api_documents SET text_content = $2, file_content = NULL, file_name = NULL, media_type = NULL, \
         updated_at = $3, updated_by = $4 WHERE id = $1"
    )
    .bind(id)
    .bind(text)
    .bind(at)
    .bind(user)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets a document's file.
pub async fn set_file(
    db: &Database,
    id: &str,
    name: &str,
    media_type: &str,
    bytes: &[u8],
    user: &str,
    at: EpochMillis,
) -> Result<()> {
    on_pool!(db.writer(), |p| sqlx::query(
        "UPDATE api_documents SET file_content = $2, file_name = $3, media_type = $4, text_content = NULL, \
         updated_at = $5, updated_by = $6 WHERE id = $1"
    )
    .bind(id)
    .bind(bytes)
    .bind(name)
    .bind(media_type)
    .bind(at)
    .bind(user)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Reads a document's content.
pub async fn content(db: &Database, id: &str) -> Result<Content> {
    type ContentRow = (Option<String>, Option<Vec<u8>>, Option<String>, Option<String>);
    let row: Option<ContentRow> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT text_content, file_content, file_name, media_type FROM api_documents WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)?;
    Ok(match row {
        Some((Some(text), _, _, _)) => Content::Text(text),
        Some((None, Some(bytes), name, media)) => Content::File {
            name: name.unwrap_or_else(|| "document".into()),
            media_type: media.unwrap_or_else(|| "application/octet-stream".into()),
            bytes,
        },
        _ => Content::None,
    })
}

/// Removes a document.
pub async fn delete(db: &Database, id: &str) -> Result<()> {
    on_pool!(db.writer(), |p| sqlx::query("DELETE FROM api_documents WHERE id = $1")
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes every document of an API (when the API is deleted).
pub async fn delete_for_api(db: &Database, tenant: TenantId, api_id: &str) -> Result<u64> {
    Ok(on_pool!(db.writer(), |p| sqlx::query(
        "DELETE FROM api_documents WHERE tenant_id = $1 AND api_id = $2"
    )
    .bind(tenant.to_string())
    .bind(api_id)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?)
}

/// A document with its content, as an import brings it.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentWithContent {
    /// The metadata.
    pub document: Document,
    /// The content ([`Content::None`] for a URL document).
    pub content: Content,
}

/// Makes an API's documents exactly `docs`, in one transaction: a document whose name is
/// already there keeps its id and gets the new metadata and content, new names are
/// added, and documents not named are removed. Used by the project import, so that an
/// API's documents change all at once or not at all.
pub async fn replace_for_api(
    db: &Database,
    tenant: TenantId,
    api_id: &str,
    docs: &[DocumentWithContent],
    user: &str,
    at: EpochMillis,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let existing: Vec<(String, String)> = on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT id, name FROM api_documents WHERE tenant_id = $1 AND api_id = $2"
    )
    .bind(tenant.to_string())
    .bind(api_id)
    .fetch_all(c)
    .await)?;
    for (id, name) in &existing {
        if !docs.iter().any(|d| &d.document.name == name) {
            on_tx!(&mut tx, |c| sqlx::query("DELETE FROM api_documents WHERE id = $1")
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
    }
    for d in docs {
        let body = body(&d.document)?;
        let (text, file, file_name, media_type) = match &d.content {
            Content::Text(t) => (Some(t.clone()), None, None, None),
            Content::File {
                name,
                media_type,
                bytes,
            } => (None, Some(bytes.clone()), Some(name.clone()), Some(media_type.clone())),
            Content::None => (None, None, None, None),
        };
        let id = existing
            .iter()
            .find(|(_, name)| name == &d.document.name)
            .map(|(id, _)| id.clone());
        match id {
            Some(id) => on_tx!(&mut tx, |c| sqlx::query(
                "UPDATE api_documents SET body = $2, text_content = $3, file_content = $4, file_name = $5, \
                 media_type = $6, updated_at = $7, updated_by = $8 WHERE id = $1"
            )
            .bind(&id)
            .bind(&body)
            .bind(&text)
            .bind(&file)
            .bind(&file_name)
            .bind(&media_type)
            .bind(at)
            .bind(user)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?,
            None => on_tx!(&mut tx, |c| {
                sqlx::query(
                "INSERT INTO api_documents (id, tenant_id, api_id, name, body, text_content, file_content, file_name, \
                 media_type, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10, $11)"
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(tenant.to_string())
            .bind(api_id)
            .bind(&d.document.name)
            .bind(&body)
            .bind(&text)
            .bind(&file)
            .bind(&file_name)
            .bind(&media_type)
            .bind(at)
            .bind(user)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            })?,
        };
    }
    tx.commit().await
}
