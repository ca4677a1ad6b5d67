-- The event store: sqlite-es's `events` column set with 64-bit sequences and a global position
-- (the rowid); and one record per command, which is both its idempotency record and the head of
-- the workspace's hash chain after it.

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

CREATE TABLE commands (
    command_id     TEXT NOT NULL PRIMARY KEY,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    command_hash   TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    last_sequence  INTEGER NOT NULL,
    head_hash      TEXT NOT NULL,
    CONSTRAINT commands_stream_key UNIQUE (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- The newest recorded head of every workspace.
CREATE VIEW heads AS
    SELECT aggregate_type, aggregate_id, last_sequence AS sequence, head_hash AS hash
    FROM commands AS c
    WHERE last_sequence = (SELECT max(last_sequence) FROM commands AS n
                           WHERE n.aggregate_type = c.aggregate_type AND n.aggregate_id = c.aggregate_id);

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
