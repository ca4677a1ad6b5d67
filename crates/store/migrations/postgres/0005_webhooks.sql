-- Webhook delivery (SPEC §11, ADR 0011): the endpoints events are POSTed to, and each event's
-- delivery to each endpoint until the receiver answers 2xx (the row is then deleted) or the
-- retries give up (the row stays, dead, until `billing webhook retry`). The rows are filled by
-- the `webhooks` subscription in the same transaction as its checkpoint, so no event is queued
-- twice or skipped.
CREATE TABLE webhook_endpoints (
    id              text COLLATE "C" PRIMARY KEY,
    url             text NOT NULL,
    -- `whsec_` and the base64 of the signing key (Standard Webhooks).
    secret          text NOT NULL,
    -- The event types sent, as a JSON array of names; `[]` sends every type.
    event_types     text NOT NULL,
    created_at      text NOT NULL,
    -- Set when the receiver answered 410 Gone: nothing more is attempted until
    -- `billing webhook retry` (events are still queued for it meanwhile).
    disabled_at     text,
    disabled_reason text,
    delivered       bigint NOT NULL DEFAULT 0,
    last_delivered_at text
);

CREATE TABLE webhook_deliveries (
    endpoint_id     text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    workspace_id    text COLLATE "C" NOT NULL,
    sequence        bigint NOT NULL,
    -- The event's place in the commit order (`Position`).
    transaction_id  bigint NOT NULL,
    position        bigint NOT NULL,
    event_type      text NOT NULL,
    -- What is POSTed: the export line plus "position".
    body            text NOT NULL,
    -- 'pending' (to be attempted at next_attempt_ms) or 'dead' (retries gave up).
    status          text NOT NULL CHECK (status IN ('pending', 'dead')),
    attempts        bigint NOT NULL DEFAULT 0,
    first_failed_ms bigint,
    next_attempt_ms bigint NOT NULL,
    last_error      text,
    dead_at         text,
    PRIMARY KEY (endpoint_id, workspace_id, sequence)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
