-- Shared scopes: OAuth2 scopes defined once and used by many APIs, with the roles that
-- may obtain them (`bindings`, a JSON list).
CREATE TABLE shared_scopes (
    id          TEXT   PRIMARY KEY,
    tenant_id   TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    body        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
