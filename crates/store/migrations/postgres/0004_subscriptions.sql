-- Named subscriptions (SPEC §11): each one's checkpoint in the commit order (ADR 0009), kept in
-- the same database as the events, so a handler that writes here can commit its effect and its
-- checkpoint together.
CREATE TABLE subscriptions (
    name           text COLLATE "C" PRIMARY KEY,
    -- The last event handled: `Position { transaction, position }`.
    transaction_id bigint NOT NULL CHECK (transaction_id >= 0),
    position       bigint NOT NULL CHECK (position >= 0),
    -- When the checkpoint last moved (RFC 3339, UTC).
    updated_at     text NOT NULL,
    -- The instance running the subscription, and until when (Unix milliseconds) its lease
    -- holds; NULL when none does. Another instance may take over once the lease has run out.
    holder         text,
    lease_until_ms bigint
);
