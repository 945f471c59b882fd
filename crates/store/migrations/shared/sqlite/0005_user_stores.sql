-- Directories a tenant registers through the Admin REST API (issue 28, decision 021):
-- its users sign in as DOMAIN/alice@tenant. `settings` is the store's configuration as
-- JSON without its bind password, which is kept sealed (AES-256-GCM under the node's
-- secrets key) in `bind_password_sealed`. A domain is unique within its tenant only.
CREATE TABLE user_stores (
    id                    TEXT   PRIMARY KEY,
    tenant_id             TEXT   NOT NULL,
    domain                TEXT   NOT NULL,
    settings              TEXT   NOT NULL,
    bind_password_sealed  TEXT   NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, domain)
);
