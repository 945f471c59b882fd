-- Tenants can be deactivated (and reactivated): their users cannot sign in meanwhile.
-- Nothing of a tenant is deleted by deactivation.
ALTER TABLE tenants ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
