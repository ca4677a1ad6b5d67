-- Webhook delivery (SPEC §11, ADR 0011): the endpoints events are POSTed to, and each event's
-- delivery to each endpoint until the receiver answers 2xx (the row is then deleted) or the
-- retries give up (the row stays, dead, until `billing webhook retry`). The rows are filled by
-- the `webhooks` subscription in the same transaction as its checkpoint, so no event is queued
-- twice or skipped. The columns are PostgreSQL's (0005 there); see its comments.
CREATE TABLE webhook_endpoints (
    id                TEXT NOT NULL PRIMARY KEY,
    url               TEXT NOT NULL,
    secret            TEXT NOT NULL,
    event_types       TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    disabled_at       TEXT,
    disabled_reason   TEXT,
    delivered         INTEGER NOT NULL DEFAULT 0,
    last_delivered_at TEXT
) STRICT;

CREATE TABLE webhook_deliveries (
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    transaction_id  INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    first_failed_ms INTEGER,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    dead_at         TEXT,
    PRIMARY KEY (endpoint_id, workspace_id, sequence)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
