-- 002: what executing means.
--
-- Before a change is applied, ap_check_change decides what it is:
--   * a `revert` restores the rollback data of the action it names (the same
--     validation, idempotency and audit as any change), or is refused;
--   * the value `current` the planner saw must be the one the store holds: a
--     mismatch is a conflict, recorded as a failed execution, not applied (a
--     field the store never set cannot contradict it: recorded as unverified);
--   * fields under the budget guardrail: an increase over +max_increase_pct %
--     of the previous value is clamped (or refused), a value under the floor is
--     refused. A revert restores the exact previous value, unguarded.
-- ap_record_batch applies it to entity_state (target postgres) or records the
-- outcome of a live HTTP request made in between (target http; entity_state
-- then mirrors what the platform was told, so reverts work there too).
-- ap_prepare_batch runs the same checks without writing, for HTTP requests.
--
-- Item members beyond 001's: current (only when the action carries it),
-- revert_of, guard ({"max_increase_pct", "floor", "on_excess": "clamp" |
-- "reject"}, only for guarded fields), and for target http: prepared (the
-- checked field and value that were sent), http ({"status", "error_class",
-- "error", "request", "response", "duration_ms"}).

CREATE TABLE alerts (
    id         bigserial   PRIMARY KEY,
    kind       text        NOT NULL,      -- permission_denied, breaker_open, kill_switch, ...
    tenant_id  text,
    subsystem  text,
    action_pk  bigint      REFERENCES actions (id),
    message    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- What applying `it` would do now: the field and value to set (NULL value:
-- remove the field), the value it replaces, and a failure (error class and
-- message) when it must not be applied. Reads only; locks the field's row.
CREATE FUNCTION ap_check_change(it jsonb,
    OUT field text, OUT value jsonb, OUT prev jsonb, OUT existed boolean,
    OUT failure text, OUT why text, OUT output jsonb,
    OUT reverted bigint, OUT reverted_execution bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t         record;
    requested numeric;
    ceiling   numeric;
    guard     jsonb := it->'guard';
BEGIN
    field := it->>'field';
    value := it->'value';
    output := '{}'::jsonb;

    IF it->>'action_type' = 'revert' THEN
        SELECT a.id, a.status, a.subsystem, a.entity_id, e.id AS execution_id, e.rollback_data
          INTO t
          FROM actions a
          LEFT JOIN LATERAL (SELECT x.id, x.rollback_data FROM executions x
                              WHERE x.action_pk = a.id AND x.success AND x.mode = 'apply'
                              ORDER BY x.id DESC LIMIT 1) e ON true
         WHERE a.tenant_id = it->>'tenant_id' AND a.action_id = it->>'revert_of';
        IF NOT FOUND OR t.execution_id IS NULL THEN
            failure := 'revert';
            why := format('revert_of: action %L was never executed', it->>'revert_of');
        ELSIF t.status = 'rolled_back' THEN
            failure := 'revert';
            why := format('revert_of: action %L is already rolled back', it->>'revert_of');
        ELSIF t.subsystem <> it->>'subsystem' OR t.entity_id <> it->>'entity_id' THEN
            failure := 'revert';
            why := format('revert_of: action %L changed %s/%s, not this entity',
                          it->>'revert_of', t.subsystem, t.entity_id);
        ELSE
            reverted := t.id;
            reverted_execution := t.execution_id;
            field := t.rollback_data->>'field';
            value := CASE WHEN (t.rollback_data->>'existed')::boolean
                          THEN t.rollback_data->'previous' END;
        END IF;
        IF failure IS NOT NULL THEN
            RETURN;
        END IF;
    END IF;

    -- The lock serializes concurrent first writes of a field, which FOR UPDATE
    -- cannot (there is no row yet).
    PERFORM pg_advisory_xact_lock(hashtextextended(concat_ws(E'\x1f', it->>'tenant_id',
            it->>'subsystem', it->>'entity_id', field), 0));
    SELECT s.value INTO prev FROM entity_state s
     WHERE s.tenant_id = it->>'tenant_id' AND s.subsystem = it->>'subsystem'
       AND s.entity_id = it->>'entity_id' AND s.field = ap_check_change.field
       FOR UPDATE;
    existed := FOUND;

    IF it ? 'current' AND existed AND prev IS DISTINCT FROM it->'current' THEN
        failure := 'conflict';
        why := format('conflict: %s is %s, the action expected %s', field, prev, it->'current');
        RETURN;
    ELSIF it ? 'current' AND NOT existed THEN
        output := jsonb_build_object('current', 'unverified');
    END IF;

    IF guard IS NULL OR jsonb_typeof(value) IS DISTINCT FROM 'number'
       OR it->>'action_type' = 'revert' THEN
        RETURN;
    END IF;
    requested := value::text::numeric;
    IF requested < (guard->>'floor')::numeric THEN
        failure := 'guardrail';
        why := format('guardrail: %s %s is under the floor %s', field, requested, guard->>'floor');
    ELSIF existed AND jsonb_typeof(prev) = 'number' AND prev::text::numeric > 0 THEN
        ceiling := round(prev::text::numeric * (1 + (guard->>'max_increase_pct')::numeric / 100), 2);
        IF requested > ceiling AND guard->>'on_excess' = 'reject' THEN
            failure := 'guardrail';
            why := format('guardrail: %s %s is more than +%s%% over %s (at most %s)', field,
                          requested, guard->>'max_increase_pct', prev, ceiling);
        ELSIF requested > ceiling THEN
            value := to_jsonb(ceiling);
            output := output || jsonb_build_object('guardrail', 'clamped', 'requested', requested,
                                                   'applied', ceiling);
        END IF;
    END IF;
END;
$$;

-- For HTTP-routed items, before any request: per item, whether it is already
-- known (an earlier delivery recorded it: 'redelivered'; its idempotency key
-- belongs to another action: 'duplicate') and otherwise what ap_check_change
-- says. Writes nothing; its locks end with the caller's transaction.
CREATE FUNCTION ap_prepare_batch(items jsonb)
RETURNS TABLE (ord integer, known text, field text, value jsonb, failure text, why text,
               output jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    c  record;
BEGIN
    FOR it IN SELECT e.value FROM jsonb_array_elements(items) e LOOP
        ord := (it->>'ord')::integer;
        known := NULL; field := NULL; value := NULL; failure := NULL; why := NULL; output := NULL;
        IF EXISTS (SELECT 1 FROM actions a
                    WHERE a.tenant_id = it->>'tenant_id' AND a.action_id = it->>'action_id'
                      AND (a.status <> 'dry_run' OR it->>'status' = 'dry_run')) THEN
            known := 'redelivered';
        ELSIF EXISTS (SELECT 1 FROM actions a WHERE a.idempotency_key = it->>'idempotency_key'
                         AND a.status NOT IN ('duplicate', 'rejected', 'dry_run')) THEN
            known := 'duplicate';
        ELSE
            c := ap_check_change(it);
            field := c.field; value := c.value; failure := c.failure; why := c.why;
            output := c.output;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION ap_record_batch(items jsonb)
RETURNS TABLE (ord integer, action_pk bigint, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    it        jsonb;
    pk        bigint;
    owner_pk  bigint;
    c         record;
    prior     text;
    http      jsonb;
    mode      text;
    ok        boolean;
BEGIN
    FOR it IN SELECT e.value FROM jsonb_array_elements(items) e LOOP
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
            SELECT a.id, a.status INTO pk, prior FROM actions a
             WHERE a.tenant_id = it->>'tenant_id' AND a.action_id = it->>'action_id';
            -- Preview, then apply: an action rehearsed as a dry run may come again
            -- to be applied, unless its key has been used by another since.
            IF FOUND AND prior = 'dry_run' AND it->>'status' <> 'dry_run'
               AND NOT EXISTS (SELECT 1 FROM actions a
                                WHERE a.idempotency_key = it->>'idempotency_key'
                                  AND a.status NOT IN ('duplicate', 'rejected', 'dry_run')) THEN
                UPDATE actions SET status = it->>'status', status_reason = it->>'reason',
                                   payload = it->'payload', attempts = attempts + 1,
                                   updated_at = now()
                 WHERE id = pk;
            ELSIF FOUND THEN
                action_pk := pk; outcome := 'redelivered';
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;

        IF pk IS NULL THEN
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
        IF outcome = 'rejected' AND NOT it ?| array['http', 'prepared'] THEN  -- invalid
            RETURN NEXT;
            CONTINUE;
        END IF;

        mode := CASE WHEN outcome = 'dry_run' THEN 'dry_run' ELSE 'apply' END;
        http := it->'http';
        IF it ? 'prepared' THEN   -- checked before its HTTP request was sent
            c := ap_check_change(it);  -- for prev, existed and the revert target
            c.field := it->'prepared'->>'field';
            c.value := it->'prepared'->'value';
            c.failure := it->'prepared'->>'failure';
            c.why := it->'prepared'->>'why';
            c.output := coalesce(it->'prepared'->'output', '{}'::jsonb);
        ELSE
            c := ap_check_change(it);
        END IF;

        IF c.failure IS NULL AND http IS NOT NULL AND http->>'error_class' IS NOT NULL THEN
            c.failure := http->>'error_class';
            c.why := http->>'error';
        END IF;
        ok := c.failure IS NULL;
        IF NOT ok AND outcome NOT IN ('failed', 'rejected') THEN
            outcome := 'rejected';
        END IF;

        INSERT INTO executions (action_pk, attempt, target, mode, input, output, success,
                                error_class, error_message, duration_us, worker_id, topic,
                                kafka_partition, kafka_offset, rollback_data)
        VALUES (pk, 1, it->>'target', mode,
                coalesce(http->'request', jsonb_build_object('field', c.field, 'value', c.value)),
                CASE WHEN mode = 'dry_run'
                     THEN c.output || jsonb_build_object('would_set', c.value, 'previous', c.prev)
                          || CASE WHEN http ? 'request'
                                  THEN jsonb_build_object('would_send', http->'request')
                                  ELSE '{}'::jsonb END
                     WHEN http IS NOT NULL
                     THEN c.output || jsonb_strip_nulls(jsonb_build_object(
                              'status', http->'status', 'response', http->'response',
                              'retry_after_s', http->'retry_after_s'))
                     ELSE c.output END,
                ok, c.failure, c.why, (http->>'duration_ms')::bigint * 1000, it->>'worker_id',
                it->>'topic', (it->>'partition')::integer, (it->>'offset')::bigint,
                CASE WHEN ok THEN jsonb_build_object('field', c.field, 'previous', c.prev,
                                                     'existed', c.existed) END);

        IF NOT ok THEN
            UPDATE actions SET status = outcome, status_reason = c.why WHERE id = pk;
            IF c.failure = 'permission_denied' THEN
                INSERT INTO alerts (kind, tenant_id, subsystem, action_pk, message)
                VALUES ('permission_denied', it->>'tenant_id', it->>'subsystem', pk, c.why);
            END IF;
        ELSIF mode = 'apply' THEN
            IF c.value IS NULL THEN   -- a revert of a field that did not exist before
                DELETE FROM entity_state s
                 WHERE s.tenant_id = it->>'tenant_id' AND s.subsystem = it->>'subsystem'
                   AND s.entity_id = it->>'entity_id' AND s.field = c.field;
            ELSE
                INSERT INTO entity_state (tenant_id, subsystem, entity_id, field, value,
                                          set_by_action)
                VALUES (it->>'tenant_id', it->>'subsystem', it->>'entity_id', c.field, c.value, pk)
                ON CONFLICT (tenant_id, subsystem, entity_id, field) DO UPDATE
                   SET value = EXCLUDED.value, set_by_action = EXCLUDED.set_by_action,
                       updated_at = now();
            END IF;
            IF c.reverted IS NOT NULL THEN
                UPDATE actions SET status = 'rolled_back', updated_at = now()
                 WHERE id = c.reverted;
                UPDATE executions SET rolled_back_at = now(), rolled_back_by = it->>'action_id'
                 WHERE id = c.reverted_execution;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
