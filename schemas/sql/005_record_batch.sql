-- 005: preparing and recording a batch.
--
-- ap_record_batch records a batch of worker outcomes; ap_prepare_batch
-- decides, before their requests, what the items for a live target would do.
-- Each has a general path, one item at a time (ap_record_action,
-- ap_prepare_action), and a set-based one for the common case (a new action,
-- the first of the batch on its entity) that decides the same (ap_judge_batch).

-- ap_record_action(it): records one item of ap_record_batch (below) in the
-- caller's transaction, on the general path that handles every case. Returns
-- its ord, its actions row and the outcome.
CREATE FUNCTION ap_record_action(it jsonb,
    OUT ord integer, OUT action_pk bigint, OUT outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    pk        bigint;
    owner_pk  bigint;
    c         record;
    prior     text;
    stored    jsonb;
    resumed   boolean;
    p         record;
    http      jsonb;
    mode      text;
    ok        boolean;
BEGIN
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

    resumed := false;
    IF pk IS NULL THEN
        SELECT a.id, a.status, a.payload INTO pk, prior, stored FROM actions a
         WHERE a.tenant_id = it->>'tenant_id' AND a.action_id = it->>'action_id';
        -- Preview, then apply: an action rehearsed as a dry run may come again
        -- to be applied; if another action has used its key since, it is a
        -- duplicate of that one.
        IF FOUND AND prior = 'dry_run' AND it->>'status' <> 'dry_run' THEN
            SELECT a.id INTO owner_pk FROM actions a
             WHERE a.idempotency_key = it->>'idempotency_key'
               AND a.status NOT IN ('duplicate', 'rejected', 'dry_run');
            IF owner_pk IS NOT NULL THEN
                UPDATE actions SET status = 'duplicate', duplicate_of = owner_pk,
                                   status_reason = 'idempotency key already used by action row '
                                                   || owner_pk, updated_at = now()
                 WHERE id = pk;
                action_pk := pk; outcome := 'duplicate';
                RETURN;
            END IF;
            UPDATE actions SET status = it->>'status', status_reason = it->>'reason',
                               payload = it->'payload', attempts = attempts + 1,
                               updated_at = now()
             WHERE id = pk;
        -- A waiting action resumed (ap_take_due), retried (from a retry
        -- topic) or replayed (from the DLQ): only as it was stored.
        ELSIF FOUND AND stored = it->'payload' AND it->>'status' <> 'rejected'
              AND (prior = 'received' OR (prior = 'retry_scheduled' AND it ? 'attempt')
                   OR (prior = 'dead_lettered' AND it ? 'replay')) THEN
            resumed := true;
        ELSIF FOUND THEN
            action_pk := pk; outcome := 'redelivered';
            RETURN;
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
        RETURN;
    END IF;

    action_pk := pk; outcome := it->>'status';
    IF outcome = 'rejected' AND NOT it ?| array['http', 'prepared'] THEN  -- invalid
        RETURN;
    END IF;

    -- Policy, in the transaction that executes (dry runs only rehearse).
    IF outcome <> 'dry_run' AND NOT it ? 'http' THEN
        p := ap_policy(it, pk, resumed);
        IF p.status IS NOT NULL THEN
            UPDATE actions SET status = p.status, status_reason = p.reason,
                               wait_reason = p.wait_reason, updated_at = now(),
                               not_before = p.not_before
             WHERE id = pk;
            outcome := p.status;
            RETURN;
        END IF;
        -- Held when its request was prepared, free now: it was not sent.
        IF it->>'target' = 'http' AND NOT it ? 'prepared' THEN
            UPDATE actions SET status = 'received', wait_reason = 'unsent', not_before = now(),
                               status_reason = 'held when its request was prepared: sent when resumed',
                               updated_at = now()
             WHERE id = pk;
            outcome := 'received';
            RETURN;
        END IF;
    END IF;
    IF resumed THEN
        UPDATE actions SET status = it->>'status', wait_reason = NULL, not_before = NULL,
                           status_reason = NULL, attempts = attempts + 1, updated_at = now()
         WHERE id = pk;
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
    IF NOT ok AND outcome NOT IN ('failed', 'rejected', 'retry_scheduled', 'dead_lettered') THEN
        outcome := 'rejected';
    END IF;

    INSERT INTO executions (action_pk, attempt, target, mode, input, output, success,
                            error_class, error_message, duration_us, worker_id, topic,
                            kafka_partition, kafka_offset, rollback_data)
    VALUES (pk, coalesce((it->>'attempt')::integer, 0) + 1, it->>'target', mode,
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
END;
$$;

-- ap_prepare_action(it): ap_prepare_batch (below) for one item, on the general
-- path that handles every case.
CREATE FUNCTION ap_prepare_action(it jsonb,
    OUT ord integer, OUT known text, OUT field text, OUT value jsonb, OUT failure text,
    OUT why text, OUT output jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    c       record;
    prior   record;
    resumed boolean;
BEGIN
    ord := (it->>'ord')::integer;
    SELECT a.id, a.status, a.payload INTO prior FROM actions a
     WHERE a.tenant_id = it->>'tenant_id' AND a.action_id = it->>'action_id';
    resumed := FOUND AND prior.payload = it->'payload'
               AND (prior.status = 'received'
                    OR (prior.status = 'retry_scheduled' AND it ? 'attempt')
                    OR (prior.status = 'dead_lettered' AND it ? 'replay'));
    IF FOUND AND NOT resumed AND (prior.status <> 'dry_run' OR it->>'status' = 'dry_run') THEN
        known := 'redelivered';
    ELSIF NOT resumed AND EXISTS (SELECT 1 FROM actions a
                                   WHERE a.idempotency_key = it->>'idempotency_key'
                                     AND a.status NOT IN ('duplicate', 'rejected', 'dry_run')) THEN
        known := 'duplicate';
    ELSIF it->>'status' <> 'dry_run'
          AND (ap_policy(it, coalesce(prior.id, 9223372036854775807), resumed)).status
              IS NOT NULL THEN
        known := 'policy';
    ELSE
        c := ap_check_change(it);
        field := c.field; value := c.value; failure := c.failure; why := c.why;
        output := c.output;
    END IF;
END;
$$;

-- ap_judge_batch(items): what policy and ap_check_change decide, and what is
-- then recorded, for the items of a batch (ap_record_batch's) that the
-- set-based paths take, judged as new actions (no approval, nothing of their
-- own stored yet: the callers see to it). In a batch of 8 or more items, an
-- item is judged when it is not shared (see ap_record_batch) and it is
-- invalid, or a change that is not a revert and either names its value or
-- was sent live, prepared without failure and answered with success (or
-- rehearsed). A live item keeps what was prepared for it: neither policy nor
-- the checks apply again. Takes first, in one order, the locks of every field
-- the batch may change (ap_check_change's), so that what it reads of
-- entity_state holds until the transaction ends. Per item: its position in
-- the batch and members (not its payload), live (sent to a live target), held
-- (by policy), checked (executes or is rehearsed: checked against prev, the
-- stored value, if it existed), failure, applied (the value to set), output,
-- and the row to record: recorded (its status), recorded_reason,
-- wait_reason, not_before.
CREATE FUNCTION ap_judge_batch(items jsonb)
RETURNS TABLE (pos integer, ord integer, action_id text, tenant_id text, subsystem text,
               action_type text, entity_id text, idempotency_key text, tier smallint,
               status text, field text, target text, worker_id text, topic text,
               "partition" integer, "offset" bigint, run_id text, created_at timestamptz,
               attempt integer, http jsonb, live boolean,
               held boolean, checked boolean, prev jsonb, existed boolean, failure text,
               applied jsonb, output jsonb, recorded text, recorded_reason text,
               wait_reason text, not_before timestamptz)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan   -- as ap_record_batch's (below)
AS $$
#variable_conflict use_column
BEGIN
    -- A small batch costs the set-based statements more than it saves.
    IF jsonb_array_length(items) < 8 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(l.h)
       FROM (SELECT DISTINCT hashtextextended(concat_ws(E'\x1f', x.tenant_id, x.subsystem,
                                                        x.entity_id, x.field), 0) AS h
               FROM jsonb_to_recordset(items) AS x(tenant_id text, subsystem text,
                                                   entity_id text, field text, status text,
                                                   action_type text)
              WHERE x.status IN ('executed', 'dry_run') AND x.action_type <> 'revert'
              ORDER BY 1) l;

    RETURN QUERY
    -- The batch taken apart at once: item by item (`items->(pos - 1)`, then
    -- jsonb_to_record) costs ~2 µs an item more. A member that is JSON null
    -- reads as SQL NULL here: the worker leaves an item with a null `current`
    -- to the general path (it marks it shared).
    WITH b AS (
        SELECT x.ordinality::integer AS pos, x.*,
               x.http IS NOT NULL OR x.prepared IS NOT NULL AS live,
               now() - make_interval(hours => coalesce(x.quiet_hours, 24)) AS quiet_since
          FROM ROWS FROM (jsonb_to_recordset(items) AS (
               ord integer, action_id text, tenant_id text, subsystem text, action_type text,
               entity_id text, idempotency_key text, tier smallint, tier1_eligible boolean,
               quiet_hours integer, status text, reason text, field text, value jsonb,
               current jsonb, target text, worker_id text, topic text,
               "partition" integer, "offset" bigint, run_id text, created_at timestamptz,
               attempt integer, guard jsonb, wait jsonb, prepared jsonb, http jsonb,
               shared boolean)) WITH ORDINALITY AS x),
    -- The kill switch and pauses: a few rows, read once per batch.
    paused AS MATERIALIZED (SELECT k.scope, k.target FROM controls k),
    -- Policy (ap_policy for an action not yet stored: no approval, nothing of its own).
    policed AS MATERIALIZED (
        SELECT f.*, pe.reason AS protected_reason, k.scope, k.target AS paused,
               CASE WHEN f.status <> 'executed' OR f.live THEN NULL
                    WHEN pe.found THEN 'protected'
                    WHEN (SELECT true FROM autopilot a
                           WHERE a.tenant_id = f.tenant_id AND a.entity_id IN ('', f.entity_id)
                             AND NOT a.enabled LIMIT 1)
                    THEN 'autopilot'
                    WHEN f.tier >= 3 THEN 'tier3'
                    WHEN f.tier = 2 THEN 'tier2'
                    WHEN NOT f.tier1_eligible THEN 'tier1'
                    -- (a.updated_at: only the actions updated since, 008)
                    WHEN (SELECT true FROM executions x JOIN actions a ON a.id = x.action_pk
                           WHERE a.tenant_id = f.tenant_id AND a.subsystem = f.subsystem
                             AND a.entity_id = f.entity_id AND a.updated_at > f.quiet_since
                             AND x.success AND x.mode = 'apply'
                             AND x.executed_at > f.quiet_since LIMIT 1)
                    THEN 'quiet'
                    WHEN k.scope IS NOT NULL THEN 'control'
                    WHEN (SELECT true FROM actions a
                           WHERE a.tenant_id = f.tenant_id AND a.subsystem = f.subsystem
                             AND a.entity_id = f.entity_id
                             AND a.status IN ('received', 'retry_scheduled') LIMIT 1)
                    THEN 'behind'
                    WHEN f.wait IS NOT NULL THEN 'wait'
               END AS why_held
          FROM b f
          -- Lookups as LIMIT-ed lateral subqueries and scalar subqueries: a
          -- join, or an EXISTS the planner may hash, would let a cached plan
          -- read the whole table (or all of its waiting rows) for every batch.
          LEFT JOIN LATERAL (SELECT p.reason, true AS found FROM protected_entities p
                              WHERE p.tenant_id = f.tenant_id AND p.subsystem = f.subsystem
                                AND p.entity_id = f.entity_id LIMIT 1) pe ON true
          LEFT JOIN LATERAL (SELECT k.scope, k.target FROM paused k
                              WHERE k.scope = 'global'
                                 OR (k.scope = 'tenant' AND k.target = f.tenant_id)
                                 OR (k.scope = 'subsystem' AND k.target = f.subsystem)
                              ORDER BY k.scope = 'global' DESC LIMIT 1) k ON true
         WHERE f.shared IS NOT TRUE
           AND (NOT f.live AND f.status = 'rejected'
                OR f.status IN ('executed', 'dry_run') AND f.action_type <> 'revert'
                   AND CASE WHEN f.live
                            THEN f.prepared->>'failure' IS NULL
                                 AND f.prepared->'value' <> 'null' AND f.http ? 'request'
                                 AND NOT f.http ? 'error_class'
                            ELSE f.value IS NOT NULL END)),
    -- ap_check_change, for what may execute or is rehearsed.
    stored AS MATERIALIZED (
        SELECT h.*, k.checked,
               CASE WHEN k.checked
                    THEN (SELECT s.value FROM entity_state s
                           WHERE s.tenant_id = h.tenant_id AND s.subsystem = h.subsystem
                             AND s.entity_id = h.entity_id AND s.field = h.field) END AS prev
          FROM policed h
         CROSS JOIN LATERAL (SELECT h.status = 'dry_run'
                                    OR h.status = 'executed' AND h.why_held IS NULL AS checked) k),
    compared AS (
        SELECT s.*, s.prev IS NOT NULL AS existed,
               CASE WHEN jsonb_typeof(s.value) = 'number' THEN s.value::text::numeric END
                    AS requested,
               CASE WHEN jsonb_typeof(s.prev) = 'number' AND s.prev::text::numeric > 0
                    THEN round(s.prev::text::numeric
                               * (1 + (s.guard->>'max_increase_pct')::numeric / 100), 2) END
                    AS ceiling
          FROM stored s),
    checked AS (
        SELECT s.*,
               CASE WHEN NOT s.checked OR s.live THEN NULL
                    WHEN s.current IS NOT NULL AND s.existed AND s.prev IS DISTINCT FROM s.current
                    THEN 'conflict'
                    WHEN s.guard IS NULL OR s.requested IS NULL THEN NULL
                    WHEN s.requested < (s.guard->>'floor')::numeric THEN 'floor'
                    WHEN s.requested > s.ceiling AND s.guard->>'on_excess' = 'reject' THEN 'excess'
                    WHEN s.requested > s.ceiling THEN 'clamped'
               END AS verdict
          FROM compared s)
    SELECT c.pos, c.ord, c.action_id, c.tenant_id, c.subsystem, c.action_type, c.entity_id,
           c.idempotency_key, c.tier, c.status, c.field, c.target, c.worker_id,
           c.topic, c."partition", c."offset", c.run_id, c.created_at, c.attempt, c.http, c.live,
           c.why_held IS NOT NULL, c.checked, c.prev, c.existed,
           CASE c.verdict WHEN 'conflict' THEN 'conflict' WHEN 'floor' THEN 'guardrail'
                          WHEN 'excess' THEN 'guardrail' END,
           CASE WHEN c.live THEN c.prepared->'value'
                WHEN c.verdict = 'clamped' THEN to_jsonb(c.ceiling) ELSE c.value END,
           CASE WHEN c.live THEN coalesce(c.prepared->'output', '{}'::jsonb)
                WHEN c.current IS NOT NULL AND NOT c.existed
                THEN jsonb_build_object('current', 'unverified') ELSE '{}'::jsonb END
           || CASE WHEN c.verdict = 'clamped'
                   THEN jsonb_build_object('guardrail', 'clamped', 'requested', c.requested,
                                           'applied', c.ceiling)
                   ELSE '{}'::jsonb END,
           CASE WHEN c.verdict IN ('conflict', 'floor', 'excess') THEN 'rejected'
                WHEN c.why_held = 'protected' THEN 'rejected'
                WHEN c.why_held = 'autopilot' THEN 'suggested'
                WHEN c.why_held = 'tier3' THEN 'manual_only'
                WHEN c.why_held IN ('tier2', 'tier1', 'quiet') THEN 'pending_approval'
                WHEN c.why_held IS NOT NULL THEN 'received'
                ELSE c.status END,
           CASE c.verdict
                WHEN 'conflict' THEN format('conflict: %s is %s, the action expected %s',
                                            c.field, c.prev, c.current)
                WHEN 'floor' THEN format('guardrail: %s %s is under the floor %s', c.field,
                                         c.requested, c.guard->>'floor')
                WHEN 'excess' THEN format('guardrail: %s %s is more than +%s%% over %s (at most %s)',
                                          c.field, c.requested, c.guard->>'max_increase_pct',
                                          c.prev, c.ceiling)
                ELSE CASE c.why_held
                WHEN 'protected' THEN format('protected: %s/%s is protected%s', c.subsystem,
                                             c.entity_id, coalesce(': ' || c.protected_reason, ''))
                WHEN 'autopilot' THEN 'autopilot is off for ' || c.tenant_id
                WHEN 'tier3' THEN 'tier 3: recorded, never executed automatically'
                WHEN 'tier2' THEN 'tier 2: waits for approval'
                WHEN 'tier1' THEN 'tier 1 needs more confidence or impact: waits for approval'
                WHEN 'quiet' THEN 'the entity changed in the last '
                                  || coalesce(c.quiet_hours::text, '24') || ' h: waits for approval'
                WHEN 'control' THEN CASE WHEN c.scope = 'global' THEN 'kill switch is on'
                                         ELSE format('%s %s is paused', c.scope, c.paused) END
                WHEN 'behind' THEN 'waits behind an earlier action on the same entity'
                WHEN 'wait' THEN CASE c.wait->>'reason'
                     WHEN 'breaker_open' THEN format('the circuit breaker of %s/%s is open',
                                                     c.tenant_id, c.subsystem)
                     WHEN 'behind' THEN 'waits behind an earlier action on the same entity'
                     ELSE format('rate limit of %s/%s reached', c.tenant_id, c.subsystem) END
                ELSE c.reason END END,
           CASE c.why_held WHEN 'control' THEN CASE WHEN c.scope = 'global'
                                                    THEN 'kill_switch' ELSE 'paused' END
                           WHEN 'behind' THEN 'behind'
                           WHEN 'wait' THEN c.wait->>'reason' END,
           CASE c.why_held WHEN 'control' THEN now() WHEN 'behind' THEN now()
                WHEN 'wait' THEN CASE c.wait->>'reason'
                     WHEN 'breaker_open' THEN 'infinity'::timestamptz
                     WHEN 'behind' THEN now()
                     ELSE now() + make_interval(secs => (c.wait->>'ms')::numeric / 1000) END
           END
      FROM checked c;
END;
$$;

-- ap_prepare_batch(items): for the items of a batch (ap_record_batch's) about
-- to be sent to a live target, before any request: per item, whether it must
-- not be sent ('redelivered': an earlier delivery recorded it; 'duplicate':
-- its idempotency key belongs to another action; 'policy': it may not execute
-- now), and otherwise what ap_check_change says. New actions that
-- ap_judge_batch takes are prepared set-based, the others one by one
-- (ap_prepare_action). Writes nothing; its locks end with the caller's
-- transaction. In plpgsql, with a generic plan: a LANGUAGE sql function's body
-- is planned at every call (~3 ms for 500 items).
CREATE FUNCTION ap_prepare_batch(items jsonb)
RETURNS TABLE (ord integer, known text, field text, value jsonb, failure text, why text,
               output jsonb)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan   -- as ap_record_batch's (below)
AS $$
#variable_conflict use_column
BEGIN
    -- Lookups as scalar subqueries: a join would let the plan scan the whole table.
    RETURN QUERY
    WITH judged AS MATERIALIZED (
        SELECT j.* FROM ap_judge_batch(items) j
         WHERE (SELECT a.id FROM actions a
                 WHERE a.tenant_id = j.tenant_id AND a.action_id = j.action_id) IS NULL)
    SELECT j.ord, k.known, c.*
      FROM judged j
     CROSS JOIN LATERAL (
           SELECT CASE WHEN (SELECT a.id FROM actions a
                              WHERE a.idempotency_key = j.idempotency_key
                                AND a.status NOT IN ('duplicate', 'rejected', 'dry_run'))
                            IS NOT NULL THEN 'duplicate'
                       WHEN j.held THEN 'policy' END AS known) k
      LEFT JOIN LATERAL (
           SELECT j.field, j.applied, j.failure,
                  CASE WHEN j.failure IS NOT NULL THEN j.recorded_reason END, j.output
            WHERE k.known IS NULL) c ON true
    UNION ALL
    SELECT p.* FROM jsonb_array_elements(items) WITH ORDINALITY AS e(it, pos)
     CROSS JOIN LATERAL ap_prepare_action(e.it) p
     WHERE e.pos NOT IN (SELECT j.pos FROM judged j);
END;
$$;

-- ap_record_batch(items): records one batch of worker outcomes in order, in
-- the caller's transaction, applying policy and then ap_check_change to what
-- may execute. Each item is an object with: ord, action_id, tenant_id,
-- subsystem, action_type, entity_id, idempotency_key, payload, tier,
-- tier1_eligible, quiet_hours, status ('executed' | 'dry_run' | 'rejected' |
-- 'failed'), reason, field, value, target, worker_id, topic, partition,
-- offset, run_id, created_at, and those of 002 (current, revert_of, guard,
-- prepared, http) and of the guards (wait); shared: true when an earlier item
-- of the batch has its entity, idempotency key or action id, or an earlier
-- revert names it, and when its `current` is null (the worker finds them in
-- one pass over the batch; it may mark more: a shared item takes the general
-- path). Returns per item its ord, its actions row and the outcome: the
-- status recorded ('received' means it waits: see wait_reason), 'duplicate',
-- or 'redelivered' (an earlier delivery recorded it; nothing changed).
--
-- Most items of a batch are new actions, each on an entity of its own: those
-- ap_judge_batch takes are recorded by one set-based statement (the three
-- inserts), but for an HTTP change that was not sent and that policy now
-- lets through. Every other item goes, in batch order, through
-- ap_record_action, after them. An item that is set-based is the first of
-- the batch on its entity, key and action id, so per-entity order holds and
-- no item is recorded before one it depends on; ap_record_batch is the only
-- writer of entity_state, and both paths take ap_check_change's advisory lock
-- before reading it.
CREATE FUNCTION ap_record_batch(items jsonb)
RETURNS TABLE (ord integer, action_pk bigint, outcome text)
LANGUAGE plpgsql
-- The plans of its statements do not depend on the batch. Left to choose,
-- the plan cache could make a custom plan of the set-based statement for
-- every batch (it estimates the batch's length): 0.3-1 ms of planning a
-- batch (bench/README, twelfth session).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    ords     integer[];
    pks      bigint[];
    statuses text[];
    r        record;
BEGIN
    WITH
    -- A worker 'executed' recorded as 'rejected' does not take its idempotency
    -- key: ap_record_action makes it a duplicate if the key is taken already.
    fast AS (
        SELECT d.*, nextval('actions_id_seq') AS pk FROM ap_judge_batch(items) d
         WHERE NOT (d.target = 'http' AND NOT d.live AND d.checked)
           AND NOT (d.status = 'executed' AND d.recorded = 'rejected'
                    -- not EXISTS: that may be planned as a hash of the whole table
                    AND (SELECT a.id FROM actions a
                          WHERE a.idempotency_key = d.idempotency_key
                            AND a.status NOT IN ('duplicate', 'rejected', 'dry_run')) IS NOT NULL)
         ORDER BY d.pos),   -- ids in batch order, as the general path gives them
    -- The payload straight from the batch: as a column of the judge's rows it
    -- was copied out of the batch and parsed again (~3 µs per item).
    inserted AS (
        INSERT INTO actions (id, action_id, tenant_id, subsystem, action_type, entity_id,
                             idempotency_key, payload, tier, status, status_reason,
                             wait_reason, not_before, attempts, run_id, created_at)
        SELECT f.pk, f.action_id, f.tenant_id, f.subsystem, f.action_type, f.entity_id,
               f.idempotency_key, items->(f.pos - 1)->'payload', f.tier, f.recorded,
               f.recorded_reason, f.wait_reason, f.not_before,
               CASE WHEN f.status = 'rejected' THEN 0 ELSE 1 END,
               f.run_id, f.created_at
          FROM fast f
        ON CONFLICT DO NOTHING
        RETURNING id),
    -- The rows that went in: all but the few a conflict kept out. Both are
    -- hashed; a join would let the planner pick a nested loop, quadratic in
    -- the batch, with the few rows it expects of these CTEs.
    done AS (
        SELECT f.* FROM fast f
         WHERE f.pk NOT IN (SELECT l.pk FROM fast l EXCEPT SELECT i.id FROM inserted i)),
    executed AS (
        INSERT INTO executions (action_pk, attempt, target, mode, input, output, success,
                                error_class, error_message, duration_us, worker_id, topic,
                                kafka_partition, kafka_offset, rollback_data)
        SELECT d.pk, coalesce(d.attempt, 0) + 1, d.target,
               CASE WHEN d.status = 'dry_run' THEN 'dry_run' ELSE 'apply' END,
               coalesce(d.http->'request', jsonb_build_object('field', d.field, 'value', d.applied)),
               CASE WHEN d.status = 'dry_run'
                    THEN d.output || jsonb_build_object('would_set', d.applied, 'previous', d.prev)
                         || CASE WHEN d.http ? 'request'
                                 THEN jsonb_build_object('would_send', d.http->'request')
                                 ELSE '{}'::jsonb END
                    WHEN d.http IS NOT NULL
                    THEN d.output || jsonb_strip_nulls(jsonb_build_object(
                             'status', d.http->'status', 'response', d.http->'response',
                             'retry_after_s', d.http->'retry_after_s'))
                    ELSE d.output END,
               d.failure IS NULL, d.failure, d.recorded_reason,
               (d.http->>'duration_ms')::bigint * 1000, d.worker_id, d.topic,
               d."partition", d."offset",
               CASE WHEN d.failure IS NULL THEN jsonb_build_object(
                    'field', d.field, 'previous', d.prev, 'existed', d.existed) END
          FROM done d WHERE d.checked ORDER BY d.pos),
    -- A field the judge found no row of gets one without a conflict check:
    -- the advisory lock the judge took keeps another from appearing.
    created AS (
        INSERT INTO entity_state (tenant_id, subsystem, entity_id, field, value, set_by_action)
        SELECT d.tenant_id, d.subsystem, d.entity_id, d.field, d.applied, d.pk
          FROM done d
         WHERE d.checked AND d.status = 'executed' AND d.failure IS NULL AND NOT d.existed),
    applied AS (
        INSERT INTO entity_state (tenant_id, subsystem, entity_id, field, value, set_by_action)
        SELECT d.tenant_id, d.subsystem, d.entity_id, d.field, d.applied, d.pk
          FROM done d WHERE d.checked AND d.status = 'executed' AND d.failure IS NULL AND d.existed
        ON CONFLICT (tenant_id, subsystem, entity_id, field) DO UPDATE
           SET value = EXCLUDED.value, set_by_action = EXCLUDED.set_by_action,
               updated_at = now())
    SELECT array_agg(d.ord ORDER BY e.pos), array_agg(d.pk ORDER BY e.pos),
           array_agg(d.recorded ORDER BY e.pos)
      INTO ords, pks, statuses
      FROM generate_series(1, jsonb_array_length(items)) AS e(pos)
      LEFT JOIN done d ON d.pos = e.pos;

    FOR i IN 1 .. jsonb_array_length(items) LOOP
        IF pks[i] IS NULL THEN
            r := ap_record_action(items->(i - 1));
            ord := r.ord; action_pk := r.action_pk; outcome := r.outcome;
        ELSE
            ord := ords[i]; action_pk := pks[i]; outcome := statuses[i];
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
