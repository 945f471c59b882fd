-- API documents (shared database). `body` is the document's metadata as JSON; the
-- content is inline text or an uploaded file's bytes.
CREATE TABLE api_documents (
    id           TEXT   PRIMARY KEY,
    tenant_id    TEXT   NOT NULL,
    api_id       TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    body         TEXT   NOT NULL,
    text_content TEXT,
    file_content BLOB,
    file_name    TEXT,
    media_type   TEXT,
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT   NOT NULL,
    UNIQUE (api_id, name)
);

CREATE INDEX api_documents_api ON api_documents (tenant_id, api_id);
