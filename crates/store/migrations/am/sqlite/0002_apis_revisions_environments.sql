-- Gateway environments. `Default` exists from the start and cannot be removed.
CREATE TABLE environments (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    is_read_only BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

INSERT INTO environments (id, tenant_id, name, body, is_read_only, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-0000000000e1', '00000000-0000-7000-8000-000000000001', 'Default',
        '{"name":"Default","displayName":"Default","description":"The gateways that come with the installation.","type":"hybrid","vhosts":[{"host":"localhost","httpPort":8280,"httpsPort":8243}]}',
        TRUE, 0, 0);

-- APIs: the Publisher's working copies. `body` is the API resource as JSON; the columns
-- beside it are what lookups, uniqueness and search need. `resolved_context` is the
-- context with the version in it (what gateways route on); `base_context` is shared by
-- every version of one API. `tags` is ",a,b," so that one LIKE finds a whole tag.
CREATE TABLE apis (
    id                 TEXT    PRIMARY KEY,
    tenant_id          TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    context            TEXT    NOT NULL,
    resolved_context   TEXT    NOT NULL,
    base_context       TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    lifecycle_status   TEXT    NOT NULL,
    is_default_version BOOLEAN NOT NULL,
    tags               TEXT    NOT NULL,
    body               TEXT    NOT NULL,
    definition         TEXT,
    revision_counter   BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    UNIQUE (tenant_id, name, version),
    UNIQUE (tenant_id, resolved_context)
);

CREATE INDEX apis_tenant_base_context ON apis (tenant_id, base_context);

CREATE TABLE api_lifecycle_history (
    id             TEXT   PRIMARY KEY,
    api_id         TEXT   NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    previous_state TEXT,
    post_state     TEXT   NOT NULL,
    username       TEXT   NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE INDEX api_lifecycle_history_api ON api_lifecycle_history (api_id, updated_at);

-- Revisions: immutable snapshots of an API (body and definition as they were).
CREATE TABLE api_revisions (
    id          TEXT   PRIMARY KEY,
    api_id      TEXT   NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    number      BIGINT NOT NULL,
    description TEXT,
    body        TEXT   NOT NULL,
    definition  TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (api_id, number)
);

-- Which revision of an API each environment serves: at most one per environment.
CREATE TABLE api_deployments (
    api_id               TEXT    NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    environment          TEXT    NOT NULL,
    revision_id          TEXT    NOT NULL REFERENCES api_revisions (id),
    vhost                TEXT,
    display_on_devportal BOOLEAN NOT NULL,
    deployed_at          BIGINT  NOT NULL,
    PRIMARY KEY (api_id, environment)
);

CREATE INDEX api_deployments_revision ON api_deployments (revision_id);
