-- Throttling policies (subscription, application, advanced). `body` is the policy in the
-- reference's Admin API shape; `level` and `name` are what lookups and uniqueness need.
CREATE TABLE throttle_policies (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    level        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    is_read_only BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    UNIQUE (tenant_id, level, name)
);

-- One-time set-up steps already done per tenant (such as installing the default
-- policies), so that what an administrator deletes is not recreated at the next start.
CREATE TABLE bootstrap_markers (
    tenant_id TEXT   NOT NULL,
    name      TEXT   NOT NULL,
    done_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
