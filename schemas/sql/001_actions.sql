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
