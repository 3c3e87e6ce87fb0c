-- 001: actions, their executions, and the built-in config store.
--
-- Postgres, not Redis, is the final guard of "exactly once in effect":
--   * (tenant_id, action_id) is unique: a redelivered message finds its row and changes nothing;
--   * idempotency_key is unique among the actions that own it (every status but
--     'duplicate', 'rejected' and 'dry_run': a rehearsal or a refusal does not use
--     the key up): a second action with the same key becomes a 'duplicate' row
--     pointing at the first.

CREATE TABLE actions (
    id              bigserial   PRIMARY KEY,
    action_id       text        NOT NULL,
    tenant_id       text        NOT NULL,
    subsystem       text,
    action_type     text,
    entity_id       text,
    idempotency_key text        NOT NULL,
    payload         jsonb       NOT NULL,          -- the action exactly as received
    tier            smallint,
    status          text        NOT NULL CHECK (status IN (
                        'received', 'rejected', 'suggested', 'pending_approval', 'manual_only',
                        'executed', 'dry_run', 'retry_scheduled', 'dead_lettered', 'failed',
                        'rolled_back', 'duplicate')),
    status_reason   text,                          -- why rejected / failed, for people
    duplicate_of    bigint      REFERENCES actions (id),
    attempts        integer     NOT NULL DEFAULT 0,
    run_id          text,
    created_at      timestamptz,                   -- when the planner decided
    received_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, action_id)
);

CREATE UNIQUE INDEX actions_idempotency_key_owner ON actions (idempotency_key)
    WHERE status NOT IN ('duplicate', 'rejected', 'dry_run');
CREATE INDEX actions_status ON actions (status);
CREATE INDEX actions_entity ON actions (tenant_id, subsystem, entity_id);

-- One row per attempt to execute an action.
CREATE TABLE executions (
    id              bigserial   PRIMARY KEY,
    action_pk       bigint      NOT NULL REFERENCES actions (id),
    attempt         integer     NOT NULL,
    target          text        NOT NULL,          -- postgres | http
    mode            text        NOT NULL CHECK (mode IN ('apply', 'dry_run')),
    input           jsonb,                         -- what was asked: {"field":..,"value":..}
    output          jsonb,                         -- what the target answered
    success         boolean     NOT NULL,
    error_class     text,
    error_message   text,
    duration_us     bigint,
    worker_id       text        NOT NULL,
    topic           text,
    kafka_partition integer,
    kafka_offset    bigint,
    rollback_data   jsonb,                         -- {"field":..,"previous":..,"existed":bool}
    rolled_back_at  timestamptz,
    rolled_back_by  text,
    executed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX executions_action ON executions (action_pk);

-- The built-in config store: the current value of every field of every entity.
CREATE TABLE entity_state (
    tenant_id     text        NOT NULL,
    subsystem     text        NOT NULL,
    entity_id     text        NOT NULL,
    field         text        NOT NULL,
    value         jsonb       NOT NULL,
    set_by_action bigint      REFERENCES actions (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subsystem, entity_id, field)
);

-- ap_record_batch(items): records one batch of worker outcomes in order, in the
-- caller's transaction, and applies the changes of the items marked 'executed'
-- to entity_state. Each item is an object with: ord, action_id, tenant_id,
-- subsystem, action_type, entity_id, idempotency_key, payload, tier, status
-- ('executed' | 'dry_run' | 'rejected'), reason, field, value, target, worker_id,
-- topic, partition, offset, run_id, created_at.
-- Returns one row per item: its ord, the actions row id, and the outcome:
-- the status recorded, 'duplicate', or 'redelivered' (the action was already
-- recorded by an earlier delivery; nothing changed).
CREATE FUNCTION ap_record_batch(items jsonb)
RETURNS TABLE (ord integer, action_pk bigint, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    it        jsonb;
    pk        bigint;
    owner_pk  bigint;
    prev      jsonb;
    existed   boolean;
BEGIN
    FOR it IN SELECT value FROM jsonb_array_elements(items) LOOP
        ord := (it->>'ord')::integer;

        INSERT INTO actions (action_id, tenant_id, subsystem, action_type, entity_id,
                             idempotency_key, payload, tier, status, status_reason,
                             attempts, run_id, created_at)
        VALUES (it->>'action_id', it->>'tenant_id', it->>'subsystem', it->>'action_type',
                it->>'entity_id', it->>'idempotency_key', it->'payload',
                (it->>'tier')::smallint, it->>'status', it->>'reason',
                CASE WHEN it->>'status' = 'rejected' THEN 0 ELSE 1 END,
                it->>'run_id', (it->>'created_at')::timestamptz)
        ON CONFLICT DO NOTHING
        RETURNING id INTO pk;

        IF pk IS NULL THEN
            SELECT a.id INTO pk FROM actions a
             WHERE a.tenant_id = it->>'tenant_id' AND a.action_id = it->>'action_id';
            IF FOUND THEN
                action_pk := pk; outcome := 'redelivered';
                RETURN NEXT;
                CONTINUE;
            END IF;
            SELECT a.id INTO owner_pk FROM actions a
             WHERE a.idempotency_key = it->>'idempotency_key'
               AND a.status NOT IN ('duplicate', 'rejected', 'dry_run');
            INSERT INTO actions (action_id, tenant_id, subsystem, action_type, entity_id,
                                 idempotency_key, payload, tier, status, status_reason,
                                 duplicate_of, run_id, created_at)
            VALUES (it->>'action_id', it->>'tenant_id', it->>'subsystem', it->>'action_type',
                    it->>'entity_id', it->>'idempotency_key', it->'payload',
                    (it->>'tier')::smallint, 'duplicate',
                    'idempotency key already used by action row ' || owner_pk,
                    owner_pk, it->>'run_id', (it->>'created_at')::timestamptz)
            RETURNING id INTO pk;
            action_pk := pk; outcome := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;

        action_pk := pk; outcome := it->>'status';
        IF outcome = 'rejected' THEN
            RETURN NEXT;
            CONTINUE;
        END IF;

        -- Rollback data first: the value this change replaces. The lock serializes
        -- concurrent first writes of a field, which FOR UPDATE cannot (no row yet).
        PERFORM pg_advisory_xact_lock(hashtextextended(concat_ws(E'\x1f', it->>'tenant_id',
                it->>'subsystem', it->>'entity_id', it->>'field'), 0));
        SELECT s.value INTO prev FROM entity_state s
         WHERE s.tenant_id = it->>'tenant_id' AND s.subsystem = it->>'subsystem'
           AND s.entity_id = it->>'entity_id' AND s.field = it->>'field'
           FOR UPDATE;
        existed := FOUND;

        INSERT INTO executions (action_pk, attempt, target, mode, input, success,
                                worker_id, topic, kafka_partition, kafka_offset, rollback_data)
        VALUES (pk, 1, it->>'target',
                CASE WHEN outcome = 'dry_run' THEN 'dry_run' ELSE 'apply' END,
                jsonb_build_object('field', it->>'field', 'value', it->'value'),
                true, it->>'worker_id', it->>'topic', (it->>'partition')::integer,
                (it->>'offset')::bigint,
                jsonb_build_object('field', it->>'field', 'previous', prev, 'existed', existed));

        IF outcome = 'executed' THEN
            INSERT INTO entity_state (tenant_id, subsystem, entity_id, field, value, set_by_action)
            VALUES (it->>'tenant_id', it->>'subsystem', it->>'entity_id', it->>'field',
                    it->'value', pk)
            ON CONFLICT (tenant_id, subsystem, entity_id, field) DO UPDATE
               SET value = EXCLUDED.value, set_by_action = EXCLUDED.set_by_action,
                   updated_at = now();
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
