-- Key manager and Developer Portal: OAuth2 clients (key mappings), signing keys, refresh
-- tokens and opaque access tokens, authorization codes, API keys, revocations, external
-- key managers and API ratings. Secrets and tokens are stored only as peppered SHA-256
-- hashes (`*_hash`), never in clear.

-- One OAuth2 client per application, key type and key manager (`keyMappingId` = id).
-- mode CREATED: issued here, `secret_hash` set; MAPPED: a client of an external key
-- manager, with no secret kept.
CREATE TABLE application_keys (
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
    UNIQUE (key_manager, consumer_key)
);

-- JWT signing keys. `private_sealed` is the PKCS#8 private key sealed with AES-256-GCM
-- under the key manager's secret (base64); `retired_at` set means it no longer signs but
-- is still published until every token it signed has expired (`publish_until`).
CREATE TABLE signing_keys (
    kid            TEXT   PRIMARY KEY,
    alg            TEXT   NOT NULL,
    public_jwk     TEXT   NOT NULL,
    private_sealed TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT,
    publish_until  BIGINT
);

-- Refresh tokens, and access tokens of applications whose tokenType is OAUTH (opaque).
-- kind: access | refresh. A rotated refresh token is revoked, never deleted, so that its
-- reuse is recognised.
CREATE TABLE oauth_tokens (
    token_hash     TEXT   PRIMARY KEY,
    kind           TEXT   NOT NULL,
    jti            TEXT   NOT NULL,
    tenant_id      TEXT   NOT NULL,
    consumer_key   TEXT   NOT NULL,
    application_id TEXT   NOT NULL,
    key_type       TEXT   NOT NULL,
    username       TEXT   NOT NULL,
    scope          TEXT   NOT NULL,
    grant_type     TEXT   NOT NULL,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX oauth_tokens_consumer_key ON oauth_tokens (consumer_key);
CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at);

-- Authorization codes (single use, short-lived), with the PKCE challenge.
CREATE TABLE authorization_codes (
    code_hash      TEXT   PRIMARY KEY,
    consumer_key   TEXT   NOT NULL,
    username       TEXT   NOT NULL,
    redirect_uri   TEXT   NOT NULL,
    scope          TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    nonce          TEXT,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

-- API keys: signed JWTs bound to an application; the hash finds one for revocation.
CREATE TABLE api_keys (
    id             TEXT   PRIMARY KEY,
    tenant_id      TEXT   NOT NULL,
    application_id TEXT   NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    key_type       TEXT   NOT NULL,
    key_name       TEXT   NOT NULL,
    key_hash       TEXT   NOT NULL UNIQUE,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT,
    revoked_at     BIGINT
);

-- Revocations the gateways must honour: a token id (`jti`), or every token of a consumer
-- key issued before `revoked_at` (kind consumer_key). Kept until `expires_at`.
CREATE TABLE revocations (
    id          TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL,
    subject     TEXT   NOT NULL,
    tenant_id   TEXT   NOT NULL,
    revoked_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX revocations_subject ON revocations (subject);

-- Third-party key managers (any OIDC provider) whose tokens gateways accept.
CREATE TABLE key_managers (
    id             TEXT    PRIMARY KEY,
    tenant_id      TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    enabled        BOOLEAN NOT NULL,
    jwks           TEXT,
    jwks_fetched_at BIGINT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE UNIQUE INDEX key_managers_tenant_lower_name ON key_managers (tenant_id, lower(name));

-- One rating per user and API.
CREATE TABLE api_ratings (
    id         TEXT    PRIMARY KEY,
    api_id     TEXT    NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    username   TEXT    NOT NULL,
    rating     INTEGER NOT NULL,
    created_at BIGINT  NOT NULL,
    UNIQUE (api_id, username)
);

CREATE UNIQUE INDEX applications_tenant_owner_lower_name ON applications (tenant_id, owner, lower(name));
