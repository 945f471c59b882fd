-- A consumer key mapped from a third-party key manager is unique within its tenant, not
-- across tenants: two tenants may register the same identity provider under the same name
-- and map the same client (decision 019). SQLite cannot drop a table constraint, so the
-- table is rebuilt with the same columns; nothing references it.
CREATE TABLE application_keys_rebuilt (
    id                TEXT   PRIMARY KEY,
    tenant_id         TEXT   NOT NULL,
    application_id    TEXT   NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    key_type          TEXT   NOT NULL,
    key_manager       TEXT   NOT NULL,
    mode              TEXT   NOT NULL,
    consumer_key      TEXT   NOT NULL,
    secret_hash       TEXT,
    grant_types       TEXT   NOT NULL,
    callback_url      TEXT,
    scopes            TEXT   NOT NULL,
    validity_seconds  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (application_id, key_type, key_manager),
    UNIQUE (tenant_id, key_manager, consumer_key)
);

INSERT INTO application_keys_rebuilt
    (id, tenant_id, application_id, key_type, key_manager, mode, consumer_key, secret_hash,
     grant_types, callback_url, scopes, validity_seconds, created_at, updated_at)
SELECT id, tenant_id, application_id, key_type, key_manager, mode, consumer_key, secret_hash,
       grant_types, callback_url, scopes, validity_seconds, created_at, updated_at
FROM application_keys;

DROP TABLE application_keys;

ALTER TABLE application_keys_rebuilt RENAME TO application_keys;
