-- The tenants as the AM side needs them: the event hub builds gateway snapshots from the
-- AM database alone, and gateways route `/t/{domain}/...` and refuse a deactivated
-- tenant's APIs. The shared database's `tenants` table is the source; this copy is written
-- when a tenant is created, activated or deactivated, and repaired at start-up.
CREATE TABLE tenant_states (
    tenant_id  TEXT    PRIMARY KEY,
    domain     TEXT    NOT NULL UNIQUE,
    active     BOOLEAN NOT NULL,
    updated_at BIGINT  NOT NULL
);

INSERT INTO tenant_states (tenant_id, domain, active, updated_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'carbon.super', TRUE, 0);
