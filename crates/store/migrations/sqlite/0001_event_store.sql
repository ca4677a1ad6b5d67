-- The event store: sqlite-es's `events` column set with 64-bit sequences, a global position
-- (the rowid), the per-workspace head of the hash chain, and the idempotency records.

CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence >= 1),
    event_type     TEXT NOT NULL,
    event_version  TEXT NOT NULL,
    payload        TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    CONSTRAINT events_stream_key UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TABLE heads (
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence >= 1),
    hash           TEXT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
) STRICT;

CREATE TABLE commands (
    command_id     TEXT NOT NULL PRIMARY KEY,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    command_hash   TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    last_sequence  INTEGER NOT NULL
) STRICT;

-- Append-only, enforced by the database itself (SQLite has no TRUNCATE: `DELETE FROM events`
-- fires the DELETE trigger).
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'append-only: UPDATE on table events is refused'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'append-only: DELETE on table events is refused'); END;
CREATE TRIGGER commands_no_update BEFORE UPDATE ON commands
BEGIN SELECT RAISE(ABORT, 'append-only: UPDATE on table commands is refused'); END;
CREATE TRIGGER commands_no_delete BEFORE DELETE ON commands
BEGIN SELECT RAISE(ABORT, 'append-only: DELETE on table commands is refused'); END;
CREATE TRIGGER heads_forward_only BEFORE UPDATE ON heads
WHEN NEW.sequence <= OLD.sequence OR NEW.aggregate_id <> OLD.aggregate_id
  OR NEW.aggregate_type <> OLD.aggregate_type
BEGIN SELECT RAISE(ABORT, 'append-only: heads only move forward'); END;
CREATE TRIGGER heads_no_delete BEFORE DELETE ON heads
BEGIN SELECT RAISE(ABORT, 'append-only: DELETE on table heads is refused'); END;
