-- Block conditions (deny policies). `value_key` is the type and normalised value, so that
-- the same condition cannot be added twice.
CREATE TABLE block_conditions (
    id         TEXT    PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    value_key  TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    UNIQUE (tenant_id, value_key)
);
