-- Revoking what a user holds (a user disabled, deleted or losing a role): their refresh
-- tokens and opaque access tokens are found by tenant and user name. JWT access tokens
-- and API keys are not stored; a `revocations` row of kind `user` (every token whose
-- subject is that user, issued before `revoked_at`) covers them.
CREATE INDEX oauth_tokens_tenant_username ON oauth_tokens (tenant_id, username);
