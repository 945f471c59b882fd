-- Names are unique regardless of case, enforced by the database as well as by the
-- handlers' checks (which can race on PostgreSQL).
CREATE UNIQUE INDEX apis_tenant_lower_name_version ON apis (tenant_id, lower(name), version);
CREATE UNIQUE INDEX throttle_policies_tenant_level_lower_name ON throttle_policies (tenant_id, level, lower(name));
