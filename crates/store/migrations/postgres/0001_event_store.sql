-- The event store: postgres-es's `events` column set (so postgres-es can read the streams), plus a
-- global position; and one record per command, which is both its idempotency record and the
-- head of the workspace's hash chain after it.

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
    -- Assigned by the database in insert order; cached per session, so concurrent writers do not
    -- queue on one counter (positions are unique and increasing per session, not gap-free).
    position       bigint GENERATED ALWAYS AS IDENTITY (CACHE 100),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- One row per command that wrote events, written in the same statement as its events:
-- re-sending its id returns the same outcome, and its last sequence and hash are the stream's
-- recorded head from then on — so the newest events cannot vanish unnoticed.
CREATE TABLE commands (
    command_id     text COLLATE "C" NOT NULL,
    aggregate_type text NOT NULL,
    aggregate_id   text COLLATE "C" NOT NULL,
    command_hash   text NOT NULL,
    first_sequence bigint NOT NULL,
    last_sequence  bigint NOT NULL,
    head_hash      text NOT NULL,
    CONSTRAINT commands_pkey PRIMARY KEY (command_id),
    CONSTRAINT commands_stream_key UNIQUE (aggregate_type, aggregate_id, last_sequence)
);

-- The newest recorded head of every workspace.
CREATE VIEW heads AS
    SELECT DISTINCT ON (aggregate_type, aggregate_id)
        aggregate_type, aggregate_id, last_sequence AS sequence, head_hash AS hash
    FROM commands
    ORDER BY aggregate_type, aggregate_id, last_sequence DESC;

-- Append-only, enforced by the database itself: no UPDATE, DELETE or TRUNCATE of events or
-- command records, whoever asks.
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

-- Group commit: appends several commands in one statement and one transaction. Each append runs
-- in its own subtransaction, so one append's conflict (its first sequence taken, or its command
-- id already recorded) leaves the others untouched. Returns one status per append: 'ok',
-- 'conflict' or 'duplicate'.
CREATE FUNCTION billing_append_batch(
    p_type text,
    p_workspace text[],
    p_first bigint[],
    p_last bigint[],
    p_head text[],
    p_command text[],
    p_command_hash text[],
    p_event_append int[],
    p_event_sequence bigint[],
    p_event_type text[],
    p_event_version text[],
    p_event_payload text[],
    p_event_metadata text[]
) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    statuses text[] := '{}';
    failed text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_workspace, 1), 0) LOOP
        BEGIN
            INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
            SELECT p_type, p_workspace[i], e.s, e.t, e.v, e.p::json, e.m::json
            FROM unnest(p_event_append, p_event_sequence, p_event_type, p_event_version, p_event_payload, p_event_metadata)
                AS e(a, s, t, v, p, m)
            WHERE e.a = i
            ORDER BY e.s;
            INSERT INTO commands (command_id, aggregate_type, aggregate_id, command_hash, first_sequence, last_sequence, head_hash)
            VALUES (p_command[i], p_type, p_workspace[i], p_command_hash[i], p_first[i], p_last[i], p_head[i]);
            statuses := statuses || 'ok'::text;
        EXCEPTION WHEN unique_violation THEN
            GET STACKED DIAGNOSTICS failed = CONSTRAINT_NAME;
            statuses := statuses || (CASE WHEN failed = 'commands_pkey' THEN 'duplicate' ELSE 'conflict' END);
        END;
    END LOOP;
    RETURN statuses;
END
$$;
