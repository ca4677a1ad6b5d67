-- A commercial workspace's standing (SPEC §10) in the billing view, the notices of the outbox,
-- and what the scheduler (`billing tick`, `Scheduler`) and `billing cloud unsubscribe` look up.
--
-- billing_view: the standing's name (NULL on the Experience Plan), the open reasons (a JSON
-- array of the domain's `Reason`), and the current or last countdown with its instants. The
-- countdown's instants are written in one fixed-width form (RFC 3339 in UTC, nine fraction
-- digits, `Z`), under the C collation, so comparing the text compares the instants.
ALTER TABLE billing_view
    ADD COLUMN standing             text,
    ADD COLUMN reasons              text NOT NULL DEFAULT '[]',
    ADD COLUMN countdown            bigint,
    ADD COLUMN countdown_started_at text COLLATE "C",
    ADD COLUMN countdown_deadline   text COLLATE "C",
    ADD COLUMN remind_at            text COLLATE "C",
    ADD COLUMN reminded_at          text COLLATE "C",
    ADD COLUMN locked_at            text COLLATE "C",
    ADD COLUMN dissolved_at         text COLLATE "C";

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
-- for a reminder, the event's instant otherwise.
ALTER TABLE email_outbox
    ADD COLUMN countdown bigint,
    ADD COLUMN due_at    text,
    -- A delivery run claims a message before handing it to the mailer (until this instant of
    -- the system clock, fixed-width RFC 3339), so two runs never deliver it both.
    ADD COLUMN claimed_until text COLLATE "C";

UPDATE email_outbox o SET due_at = coalesce(
    (SELECT e.metadata->>'occurred_at' FROM events e
     WHERE e.aggregate_type = 'workspace' AND e.aggregate_id = o.workspace_id
       AND e.sequence = o.sequence),
    o.created_at);

ALTER TABLE email_outbox ALTER COLUMN due_at SET NOT NULL;

ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_pkey;
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_pkey PRIMARY KEY (workspace_id, sequence, kind);
CREATE UNIQUE INDEX email_outbox_once_per_countdown ON email_outbox (workspace_id, countdown, kind)
    WHERE countdown IS NOT NULL;
-- The catch-up of the notices from the log finds triggering events quickly.
CREATE INDEX events_notices ON events (aggregate_id, sequence)
    WHERE event_type IN ('CountdownStarted', 'CountdownReminded', 'WorkspaceLocked',
                         'WorkspaceUnlocked', 'SettlementChanged');
