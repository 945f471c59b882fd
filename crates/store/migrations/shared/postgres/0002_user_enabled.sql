-- Administrators can disable a user: a disabled user cannot sign in.
ALTER TABLE users ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
