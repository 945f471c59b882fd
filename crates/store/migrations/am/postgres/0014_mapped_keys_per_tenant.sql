-- A consumer key mapped from a third-party key manager is unique within its tenant, not
-- across tenants: two tenants may register the same identity provider under the same name
-- and map the same client (decision 019).
ALTER TABLE application_keys DROP CONSTRAINT application_keys_key_manager_consumer_key_key;
ALTER TABLE application_keys
    ADD CONSTRAINT application_keys_tenant_key_manager_consumer_key_key UNIQUE (tenant_id, key_manager, consumer_key);
