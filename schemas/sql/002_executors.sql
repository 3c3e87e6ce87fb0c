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
-- ap_record_batch (005) applies it to entity_state (target postgres) or records
-- the outcome of a live HTTP request made in between (target http;
-- entity_state then mirrors what the platform was told, so reverts work there
-- too). ap_prepare_batch (005) runs the same checks without writing, for HTTP
-- requests.
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
