-- A commercial workspace's standing (SPEC §10) in the billing view, the notices of the outbox,
-- and what the scheduler (`billing tick`, `Scheduler`) and `billing cloud unsubscribe` look up.
--
-- billing_view: the standing's name (NULL on the Experience Plan), the open reasons (a JSON
-- array of the domain's `Reason`), and the current or last countdown with its instants. The
-- countdown's instants are written in one fixed-width form (RFC 3339 in UTC, nine fraction
-- digits, `Z`), so comparing the text compares the instants.
ALTER TABLE billing_view ADD COLUMN standing TEXT;
ALTER TABLE billing_view ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]';
ALTER TABLE billing_view ADD COLUMN countdown INTEGER;
ALTER TABLE billing_view ADD COLUMN countdown_started_at TEXT;
ALTER TABLE billing_view ADD COLUMN countdown_deadline TEXT;
ALTER TABLE billing_view ADD COLUMN remind_at TEXT;
ALTER TABLE billing_view ADD COLUMN reminded_at TEXT;
ALTER TABLE billing_view ADD COLUMN locked_at TEXT;
ALTER TABLE billing_view ADD COLUMN dissolved_at TEXT;

-- Every view written before this migration is of a log without standing events: a commercial
-- workspace stands good with no reason open.
UPDATE billing_view SET standing = 'good' WHERE plan = 'commercial';

-- The scheduler's two questions: which countdowns' reminders are due and unsent, and which
-- countdowns' deadlines passed (each paged by its instant, then the workspace).
CREATE INDEX billing_view_reminders_due ON billing_view (remind_at, workspace_id)
    WHERE standing = 'countdown' AND reminded_at IS NULL;
CREATE INDEX billing_view_deadlines_due ON billing_view (countdown_deadline, workspace_id)
    WHERE standing = 'countdown';
-- The workspaces that settle through a cloud account.
CREATE INDEX billing_view_by_cloud_account ON billing_view (cloud_account_id, workspace_id)
    WHERE cloud_account_id IS NOT NULL;

-- email_outbox: every notice (opening reminder, countdown started, countdown reminder, locked,
-- unlocked, settlement fallen back), one per triggering event: the key is the event
-- (workspace, sequence) and the kind. `countdown` names the countdown a notice is about (NULL
-- for the opening reminder and a fallback); a unique index allows one notice per workspace,
-- countdown and kind. `due_at` is when the notice fell due: the countdown's reminder instant
-- for a reminder, the event's instant otherwise. SQLite cannot change a primary key in place:
-- the table is rebuilt, its rows kept.
CREATE TABLE email_outbox_next (
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    countdown    INTEGER,
    user_name    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    sent_at      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    -- A delivery run claims a message before handing it to the mailer (until this instant of
    -- the system clock, fixed-width RFC 3339), so two runs never deliver it both.
    claimed_until TEXT,
    PRIMARY KEY (workspace_id, sequence, kind)
) STRICT;

INSERT INTO email_outbox_next (workspace_id, kind, sequence, countdown, user_name, subject, body,
                               created_at, due_at, sent_at, attempts, last_error)
    SELECT o.workspace_id, o.kind, o.sequence, NULL, o.user_name, o.subject, o.body, o.created_at,
           coalesce((SELECT e.metadata->>'occurred_at' FROM events e
                     WHERE e.aggregate_type = 'workspace' AND e.aggregate_id = o.workspace_id
                       AND e.sequence = o.sequence), o.created_at),
           o.sent_at, o.attempts, o.last_error
    FROM email_outbox o;

DROP TABLE email_outbox;
ALTER TABLE email_outbox_next RENAME TO email_outbox;

CREATE UNIQUE INDEX email_outbox_once_per_countdown ON email_outbox (workspace_id, countdown, kind)
    WHERE countdown IS NOT NULL;
-- The catch-up of the notices from the log finds triggering events quickly.
CREATE INDEX events_notices ON events (aggregate_id, sequence)
    WHERE event_type IN ('CountdownStarted', 'CountdownReminded', 'WorkspaceLocked',
                         'WorkspaceUnlocked', 'SettlementChanged');
