-- The commit order readers follow (ADR 0009): each event records the transaction that wrote it.
-- A reader takes only events of transactions older than every transaction still running
-- (`pg_snapshot_xmin`), in (transaction, position) order, so an event committed late by an
-- older transaction can never appear behind what a reader has already passed. Rows written
-- before this migration get the migration's own transaction, and keep their position order.
ALTER TABLE events ADD COLUMN transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE INDEX events_commit_order ON events (transaction_id, position);
