-- Views (projections of the log, rebuilt from it at any time), the outbox of the opening reminder
-- e-mail, and the embedded stand-ins for the Expense Center and the cloud marketplaces.

CREATE TABLE billing_view (
    workspace_id       text COLLATE "C" PRIMARY KEY,
    plan               text NOT NULL,
    upgrade_step       text NOT NULL,
    site               text,
    user_name          text,
    settlement_method  text,
    cloud_account_id   text,
    cloud_instance_id  text,
    agreement_version  text,
    upgraded_at        text,
    data_visible_from  text,
    settlement_changes bigint NOT NULL,
    last_sequence      bigint NOT NULL,
    head_hash          text NOT NULL
);

CREATE TABLE audit_trail (
    workspace_id text COLLATE "C" NOT NULL,
    sequence     bigint NOT NULL,
    event_type   text NOT NULL,
    actor_id     text NOT NULL,
    actor_role   text NOT NULL,
    occurred_at  text NOT NULL,
    description  text NOT NULL,
    PRIMARY KEY (workspace_id, sequence)
);

-- One opening reminder per upgrade: the primary key makes a second one impossible.
CREATE TABLE email_outbox (
    workspace_id text COLLATE "C" NOT NULL,
    kind         text NOT NULL,
    sequence     bigint NOT NULL,
    user_name    text NOT NULL,
    subject      text NOT NULL,
    body         text NOT NULL,
    created_at   text NOT NULL,
    sent_at      text,
    attempts     bigint NOT NULL DEFAULT 0,
    last_error   text,
    PRIMARY KEY (workspace_id, kind)
);

CREATE TABLE expense_center_accounts (
    user_name  text COLLATE "C" PRIMARY KEY,
    account_id text NOT NULL UNIQUE,
    email      text NOT NULL,
    request_id text,
    created_at text NOT NULL
);

CREATE TABLE cloud_subscriptions (
    method      text NOT NULL,
    account_id  text NOT NULL,
    instance_id text NOT NULL DEFAULT '',
    active      boolean NOT NULL,
    changed_at  text NOT NULL,
    PRIMARY KEY (method, account_id, instance_id)
);

-- Finds upgrades quickly when the outbox catches up with the log.
CREATE INDEX events_plan_upgraded ON events (aggregate_id) WHERE event_type = 'PlanUpgraded';
