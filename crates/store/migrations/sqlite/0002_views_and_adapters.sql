-- Views (projections of the log, rebuilt from it at any time), the outbox of the opening reminder
-- e-mail, and the embedded stand-ins for the Expense Center and the cloud marketplaces.

CREATE TABLE billing_view (
    workspace_id       TEXT PRIMARY KEY,
    plan               TEXT NOT NULL,
    upgrade_step       TEXT NOT NULL,
    site               TEXT,
    user_name          TEXT,
    settlement_method  TEXT,
    cloud_account_id   TEXT,
    cloud_instance_id  TEXT,
    agreement_version  TEXT,
    upgraded_at        TEXT,
    data_visible_from  TEXT,
    settlement_changes INTEGER NOT NULL,
    last_sequence      INTEGER NOT NULL,
    head_hash          TEXT NOT NULL
) STRICT;

CREATE TABLE audit_trail (
    workspace_id TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_role   TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    description  TEXT NOT NULL,
    PRIMARY KEY (workspace_id, sequence)
) STRICT;

CREATE TABLE email_outbox (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    user_name    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    sent_at      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    PRIMARY KEY (workspace_id, kind)
) STRICT;

CREATE TABLE expense_center_accounts (
    user_name  TEXT PRIMARY KEY,
    account_id TEXT NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    request_id TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE cloud_subscriptions (
    method      TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    instance_id TEXT NOT NULL DEFAULT '',
    active      INTEGER NOT NULL,
    changed_at  TEXT NOT NULL,
    PRIMARY KEY (method, account_id, instance_id)
) STRICT;

CREATE INDEX events_plan_upgraded ON events (aggregate_id) WHERE event_type = 'PlanUpgraded';
