-- Token families (RFC 9700 §4.14.2, RFC 6749 §4.1.2): the tokens issued by one grant
-- that brings a refresh token (password, authorization code) and by every refresh after
-- it share a family. A rotated refresh token presented again, or an authorization code
-- used a second time, revokes the family. NULL for tokens issued before families existed
-- and for grants without a refresh token (client credentials).
ALTER TABLE oauth_tokens ADD COLUMN family_id TEXT;
CREATE INDEX oauth_tokens_family ON oauth_tokens (family_id);

-- The family an authorization code's exchange started (set when the code is spent).
ALTER TABLE authorization_codes ADD COLUMN family_id TEXT;

-- Every access token of a family, JWT or opaque, by `jti`: JWT access tokens are not
-- stored (decision 006), so this is how a family's live access tokens are found and
-- revoked. `revoked_at` set: already revoked with its family.
CREATE TABLE token_family_access (
    jti          TEXT   PRIMARY KEY,
    family_id    TEXT   NOT NULL,
    tenant_id    TEXT   NOT NULL,
    consumer_key TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX token_family_access_family ON token_family_access (family_id);
