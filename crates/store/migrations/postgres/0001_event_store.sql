-- The event store: postgres-es's `events` column set (so postgres-es can read the streams), plus a
-- global position; the per-workspace head of the hash chain; and the idempotency records.

CREATE TABLE events (
    aggregate_type text NOT NULL,
    -- Byte order, so exports sort the same on every server and on SQLite.
    aggregate_id   text COLLATE "C" NOT NULL,
    sequence       bigint NOT NULL CHECK (sequence >= 1),
    event_type     text NOT NULL,
    event_version  text NOT NULL,
    -- json (not jsonb) keeps the text exactly as written: exports are byte-identical.
    payload        json NOT NULL,
    metadata       json NOT NULL,
    position       bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence),
    CONSTRAINT events_position_key UNIQUE (position)
);

-- The newest sequence and hash per workspace, written in the same statement as the events.
-- An auditor compares it with the stream: the newest events cannot vanish unnoticed.
CREATE TABLE heads (
    aggregate_type text NOT NULL,
    aggregate_id   text COLLATE "C" NOT NULL,
    sequence       bigint NOT NULL CHECK (sequence >= 1),
    hash           text NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- One row per command that wrote events: re-sending its id returns the same outcome.
CREATE TABLE commands (
    command_id     text COLLATE "C" NOT NULL,
    aggregate_type text NOT NULL,
    aggregate_id   text COLLATE "C" NOT NULL,
    command_hash   text NOT NULL,
    first_sequence bigint NOT NULL,
    last_sequence  bigint NOT NULL,
    CONSTRAINT commands_pkey PRIMARY KEY (command_id)
);

-- Append-only, enforced by the database itself: no UPDATE, DELETE or TRUNCATE of events or
-- idempotency records, whoever asks.
CREATE FUNCTION billing_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'append-only: % on table % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER commands_append_only BEFORE UPDATE OR DELETE ON commands
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();
CREATE TRIGGER commands_no_truncate BEFORE TRUNCATE ON commands
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change();

-- A head only moves forward and is never removed.
CREATE FUNCTION billing_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.sequence <= OLD.sequence
       OR NEW.aggregate_id <> OLD.aggregate_id OR NEW.aggregate_type <> OLD.aggregate_type THEN
        RAISE EXCEPTION 'append-only: heads only move forward (% on heads refused)', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER heads_forward_only BEFORE UPDATE OR DELETE ON heads
    FOR EACH ROW EXECUTE FUNCTION billing_head_forward();
CREATE TRIGGER heads_no_truncate BEFORE TRUNCATE ON heads
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change();
