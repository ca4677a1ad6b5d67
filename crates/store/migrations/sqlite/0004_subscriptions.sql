-- Named subscriptions (SPEC §11): each one's checkpoint in the commit order (ADR 0009), kept in
-- the same database as the events, so a handler that writes here can commit its effect and its
-- checkpoint together. On SQLite `transaction_id` is always 0 (positions alone are in commit
-- order).
CREATE TABLE subscriptions (
    name           TEXT NOT NULL PRIMARY KEY,
    transaction_id INTEGER NOT NULL CHECK (transaction_id >= 0),
    position       INTEGER NOT NULL CHECK (position >= 0),
    updated_at     TEXT NOT NULL,
    -- The instance running the subscription, and until when (Unix milliseconds) its lease
    -- holds; NULL when none does. Another instance may take over once the lease has run out.
    holder         TEXT,
    lease_until_ms INTEGER
) STRICT, WITHOUT ROWID;
