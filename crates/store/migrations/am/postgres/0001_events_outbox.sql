-- The events outbox (ARCHITECTURE.md §3): every change a gateway must learn about is
-- appended here in the same transaction as the change. `seq` is assigned by the writer
-- under a lock, so it is strictly increasing in commit order (no SERIAL: the portable
-- subset has none, and a sequence can commit out of order).
CREATE TABLE events (
    seq         BIGINT PRIMARY KEY,
    tenant_id   TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    environment TEXT,
    payload     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE INDEX events_created_at ON events (created_at);
