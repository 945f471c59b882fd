-- Tenants, users and roles (the shared database). One default tenant, the reference
-- system's `carbon.super`, with its four built-in roles.
CREATE TABLE tenants (
    id         TEXT   PRIMARY KEY,
    domain     TEXT   NOT NULL UNIQUE,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE roles (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- password_hash is an argon2id PHC string; usernames are unique per tenant regardless
-- of case, as in the reference's default user store.
CREATE TABLE users (
    id            TEXT   PRIMARY KEY,
    tenant_id     TEXT   NOT NULL REFERENCES tenants (id),
    username      TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    email         TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE UNIQUE INDEX users_tenant_username ON users (tenant_id, lower(username));

CREATE TABLE user_roles (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    role_name TEXT NOT NULL,
    PRIMARY KEY (user_id, role_name),
    FOREIGN KEY (tenant_id, role_name) REFERENCES roles (tenant_id, name)
);

INSERT INTO tenants (id, domain, name, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'carbon.super', 'Default', 0);

INSERT INTO roles (tenant_id, name, description) VALUES
    ('00000000-0000-7000-8000-000000000001', 'admin', 'Manages the platform; implies every other role.'),
    ('00000000-0000-7000-8000-000000000001', 'creator', 'Creates and edits APIs.'),
    ('00000000-0000-7000-8000-000000000001', 'publisher', 'Publishes APIs and deploys their revisions.'),
    ('00000000-0000-7000-8000-000000000001', 'subscriber', 'Subscribes applications to APIs in the Developer Portal.');
