-- 002: what executing means for the built-in config store.
--
-- ap_record_batch now also
--   * checks the optimistic-concurrency value `current` the planner saw: a
--     mismatch with the value the store holds is a conflict, recorded as a
--     failed execution, not applied;
--   * applies the budget guardrail to fields marked for it: an increase above
--     +max_increase_pct % of the previous value is clamped (or rejected), and a
--     value under the floor is rejected;
--   * executes `revert` actions: the reverted action's rollback data is
--     restored through the same path (validation, idempotency, audit), and the
--     reverted action is marked rolled_back;
--   * runs items whose status is 'dry_run' through every check and records
--     what would change, changing nothing.
-- New item members: current (any JSON, only when the action carries it),
-- revert_of (action_id), guard ({"max_increase_pct", "floor", "on_excess":
-- "clamp"|"reject"}, only for guarded fields).

CREATE OR REPLACE FUNCTION ap_record_batch(items jsonb)
RETURNS TABLE (ord integer, action_pk bigint, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    it        jsonb;
    pk        bigint;
    owner_pk  bigint;
    v_field     text;
    v_value     jsonb;
    v_prev      jsonb;
    v_existed   boolean;
    v_apply     boolean;
    v_output    jsonb;
    v_failure   text;     -- error_class of a failed execution
    v_why       text;     -- its message, and the action's status_reason
    v_target    record;   -- the action a revert restores
    v_reverted  bigint;   -- the actions row a revert rolls back
    v_reverted_execution bigint;
    v_guard     jsonb;
    v_requested numeric;
    v_ceiling   numeric;
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

        v_apply := outcome = 'executed';
        v_field := it->>'field';
        v_value := it->'value';
        v_output := '{}'::jsonb;
        v_failure := NULL; v_why := NULL; v_reverted := NULL; v_reverted_execution := NULL;

        -- A revert restores the rollback data of the action it names.
        IF it->>'action_type' = 'revert' THEN
            SELECT a.id AS action_pk, a.status, a.subsystem, a.entity_id, e.id AS execution_id,
                   e.rollback_data
              INTO v_target
              FROM actions a
              LEFT JOIN LATERAL (SELECT x.id, x.rollback_data FROM executions x
                                  WHERE x.action_pk = a.id AND x.success AND x.mode = 'apply'
                                  ORDER BY x.id DESC LIMIT 1) e ON true
             WHERE a.tenant_id = it->>'tenant_id' AND a.action_id = it->>'revert_of';
            IF NOT FOUND OR v_target.execution_id IS NULL THEN
                v_why := format('revert_of: action %L was never executed', it->>'revert_of');
            ELSIF v_target.status = 'rolled_back' THEN
                v_why := format('revert_of: action %L is already rolled back', it->>'revert_of');
            ELSIF v_target.subsystem <> it->>'subsystem' OR v_target.entity_id <> it->>'entity_id' THEN
                v_why := format('revert_of: action %L changed %s/%s, not this entity',
                              it->>'revert_of', v_target.subsystem, v_target.entity_id);
            ELSE
                v_reverted := v_target.action_pk;
                v_reverted_execution := v_target.execution_id;
                v_field := v_target.rollback_data->>'field';
                v_value := CASE WHEN (v_target.rollback_data->>'existed')::boolean
                              THEN v_target.rollback_data->'previous' END;
            END IF;
            IF v_why IS NOT NULL THEN
                UPDATE actions SET status = 'rejected', status_reason = v_why, attempts = 0
                 WHERE id = pk;
                outcome := 'rejected';
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;

        -- Rollback data first: the v_value this change replaces. The lock serializes
        -- concurrent first writes of a v_field, which FOR UPDATE cannot (no row yet).
        PERFORM pg_advisory_xact_lock(hashtextextended(concat_ws(E'\x1f', it->>'tenant_id',
                it->>'subsystem', it->>'entity_id', v_field), 0));
        SELECT s.value INTO v_prev FROM entity_state s
         WHERE s.tenant_id = it->>'tenant_id' AND s.subsystem = it->>'subsystem'
           AND s.entity_id = it->>'entity_id' AND s.field = v_field
           FOR UPDATE;
        v_existed := FOUND;

        -- Optimistic concurrency: a value the store knows must be the one the
        -- planner saw. A field the store never set cannot contradict it; the
        -- execution records the check as unverified.
        IF it ? 'current' AND v_existed AND v_prev IS DISTINCT FROM it->'current' THEN
            v_failure := 'conflict';
            v_why := format('conflict: %s is %s, the action expected %s', v_field, v_prev,
                            it->'current');
        ELSIF it ? 'current' AND NOT v_existed THEN
            v_output := jsonb_build_object('current', 'unverified');
        END IF;

        v_guard := it->'guard';
        -- A revert restores the exact previous value: no guardrail applies.
        IF v_failure IS NULL AND v_guard IS NOT NULL AND jsonb_typeof(v_value) = 'number'
           AND it->>'action_type' <> 'revert' THEN
            v_requested := v_value::text::numeric;
            IF v_requested < (v_guard->>'floor')::numeric THEN
                v_failure := 'guardrail';
                v_why := format('guardrail: %s %s is under the floor %s', v_field, v_requested,
                              v_guard->>'floor');
            ELSIF v_existed AND jsonb_typeof(v_prev) = 'number' AND v_prev::text::numeric > 0 THEN
                v_ceiling := round(v_prev::text::numeric * (1 + (v_guard->>'max_increase_pct')::numeric / 100), 2);
                IF v_requested > v_ceiling THEN
                    IF v_guard->>'on_excess' = 'reject' THEN
                        v_failure := 'guardrail';
                        v_why := format('guardrail: %s %s is more than +%s%% over %s (at most %s)',
                                      v_field, v_requested, v_guard->>'max_increase_pct', v_prev, v_ceiling);
                    ELSE
                        v_value := to_jsonb(v_ceiling);
                        v_output := v_output || jsonb_build_object('guardrail', 'clamped',
                                                'requested', v_requested, 'applied', v_ceiling);
                    END IF;
                END IF;
            END IF;
        END IF;

        IF v_failure IS NOT NULL THEN
            INSERT INTO executions (action_pk, attempt, target, mode, input, success, error_class,
                                    error_message, worker_id, topic, kafka_partition, kafka_offset)
            VALUES (pk, 1, it->>'target', CASE WHEN v_apply THEN 'apply' ELSE 'dry_run' END,
                    jsonb_build_object('field', v_field, 'value', v_value), false, v_failure, v_why,
                    it->>'worker_id', it->>'topic', (it->>'partition')::integer,
                    (it->>'offset')::bigint);
            UPDATE actions SET status = 'rejected', status_reason = v_why WHERE id = pk;
            outcome := 'rejected';
            RETURN NEXT;
            CONTINUE;
        END IF;

        INSERT INTO executions (action_pk, attempt, target, mode, input, output, success,
                                worker_id, topic, kafka_partition, kafka_offset, rollback_data)
        VALUES (pk, 1, it->>'target', CASE WHEN v_apply THEN 'apply' ELSE 'dry_run' END,
                jsonb_build_object('field', v_field, 'value', v_value),
                v_output || CASE WHEN v_apply THEN '{}'::jsonb
                               ELSE jsonb_build_object('would_set', v_value, 'previous', v_prev) END,
                true, it->>'worker_id', it->>'topic', (it->>'partition')::integer,
                (it->>'offset')::bigint,
                jsonb_build_object('field', v_field, 'previous', v_prev, 'existed', v_existed));

        IF v_apply THEN
            IF v_value IS NULL THEN   -- a revert of a v_field that did not exist before
                DELETE FROM entity_state s
                 WHERE s.tenant_id = it->>'tenant_id' AND s.subsystem = it->>'subsystem'
                   AND s.entity_id = it->>'entity_id' AND s.field = v_field;
            ELSE
                INSERT INTO entity_state (tenant_id, subsystem, entity_id, field, value,
                                          set_by_action)
                VALUES (it->>'tenant_id', it->>'subsystem', it->>'entity_id', v_field, v_value, pk)
                ON CONFLICT (tenant_id, subsystem, entity_id, field) DO UPDATE
                   SET value = EXCLUDED.value, set_by_action = EXCLUDED.set_by_action,
                       updated_at = now();
            END IF;
            IF v_reverted IS NOT NULL THEN
                UPDATE actions SET status = 'rolled_back', updated_at = now()
                 WHERE id = v_reverted;
                UPDATE executions SET rolled_back_at = now(), rolled_back_by = it->>'action_id'
                 WHERE id = v_reverted_execution;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
