-- Applications (Developer Portal) and their subscriptions to APIs. The Developer Portal
-- creates them; the Publisher lists and blocks subscriptions; gateways validate them.
CREATE TABLE applications (
    id                TEXT   PRIMARY KEY,
    tenant_id         TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    owner             TEXT   NOT NULL,
    throttling_policy TEXT   NOT NULL,
    description       TEXT,
    token_type        TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    attributes        TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (tenant_id, owner, name)
);

-- status: UNBLOCKED, BLOCKED, PROD_ONLY_BLOCKED, ON_HOLD, REJECTED (the reference's).
CREATE TABLE subscriptions (
    id                TEXT   PRIMARY KEY,
    tenant_id         TEXT   NOT NULL,
    application_id    TEXT   NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    api_id            TEXT   NOT NULL REFERENCES apis (id),
    throttling_policy TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (application_id, api_id)
);

CREATE INDEX subscriptions_api ON subscriptions (api_id);
