-- 003: policy — who may act, and when.
--
-- The controls live here, not only in Redis: ap_record_batch checks them in
-- the very transaction that executes, so a kill switch or a pause holds from
-- the next execution on, on every replica, and cannot be lost with a cache.
--
-- An action that may not execute yet is not lost: it stays 'received' with a
-- wait_reason, and the oldest due one of each entity is resumed by a worker
-- (ap_take_due: it is published again to its topic) once not_before passes:
--   kill_switch, paused  — until the control is lifted (checked again each time)
--   behind               — an earlier action on the same entity is still waiting
--                          (or waits in a retry topic): per-entity order holds
--   approved             — a tier-2 action approved with actionpool-ctl approve
--   rate_limit           — until a token of its tenant x subsystem frees
--   breaker_open         — until ops reset the circuit breaker of its scope
--   unsent               — a live change held when its request was prepared
--                          and let through by the time it was recorded
-- A resumed message executes only if its payload is the one stored: producing a
-- message can neither approve an action nor change an approved one.

CREATE TABLE controls (
    scope  text        NOT NULL CHECK (scope IN ('global', 'tenant', 'subsystem')),
    target text        NOT NULL DEFAULT '',  -- '' (global), a tenant id or a subsystem
    set_by text        NOT NULL,
    reason text,
    set_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, target)
);

-- Autopilot off for a tenant (entity_id '') or one campaign: actions are only
-- suggested. No row: on.
CREATE TABLE autopilot (
    tenant_id text        NOT NULL,
    entity_id text        NOT NULL DEFAULT '',
    enabled   boolean     NOT NULL,
    set_by    text        NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entity_id)
);

-- Do-not-contact and suppression lists: actions on these entities are rejected.
CREATE TABLE protected_entities (
    tenant_id text        NOT NULL,
    subsystem text        NOT NULL,
    entity_id text        NOT NULL,
    reason    text,
    set_by    text        NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subsystem, entity_id)
);

CREATE TABLE approvals (
    action_pk  bigint      PRIMARY KEY REFERENCES actions (id),
    decision   text        NOT NULL CHECK (decision IN ('approved', 'rejected')),
    decided_by text        NOT NULL,
    note       text,
    decided_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE actions ADD COLUMN wait_reason text, ADD COLUMN not_before timestamptz;
CREATE INDEX actions_waiting ON actions (not_before) WHERE status = 'received';

-- Why `it` (an item of ap_record_batch) may not execute now, as
-- (status, reason, wait_reason); all NULL: it may. `resumed` is true for an
-- action that already waited (its approval, if any, counts).
CREATE FUNCTION ap_policy(it jsonb, pk bigint, resumed boolean,
    OUT status text, OUT reason text, OUT wait_reason text, OUT not_before timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    t  text := it->>'tenant_id';
    s  text := it->>'subsystem';
    e  text := it->>'entity_id';
    quiet_since timestamptz :=
        now() - make_interval(hours => coalesce((it->>'quiet_hours')::int, 24));
    c  record;
BEGIN
    SELECT p.reason INTO c FROM protected_entities p
     WHERE p.tenant_id = t AND p.subsystem = s AND p.entity_id = e;
    IF FOUND THEN
        status := 'rejected';
        reason := format('protected: %s/%s is protected%s', s, e,
                         coalesce(': ' || c.reason, ''));
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM autopilot a WHERE a.tenant_id = t AND NOT a.enabled
                  AND (a.entity_id = '' OR a.entity_id = e)) THEN
        status := 'suggested';
        reason := 'autopilot is off for ' || t;
        RETURN;
    END IF;

    IF NOT resumed OR NOT EXISTS (SELECT 1 FROM approvals ap WHERE ap.action_pk = pk
                                     AND ap.decision = 'approved') THEN
        IF (it->>'tier')::int >= 3 THEN
            status := 'manual_only';
            reason := 'tier 3: recorded, never executed automatically';
            RETURN;
        END IF;
        -- A revert restores a known state, usually of an entity that has just
        -- changed: confidence, impact and quiet period do not apply to it.
        IF (it->>'tier')::int = 2
           OR (it->>'action_type' <> 'revert' AND NOT (it->>'tier1_eligible')::boolean)
           -- (a.updated_at: only the actions updated since, 008)
           OR it->>'action_type' <> 'revert' AND EXISTS (SELECT 1 FROM executions x JOIN actions a ON a.id = x.action_pk
                       WHERE a.tenant_id = t AND a.subsystem = s AND a.entity_id = e
                         AND a.updated_at > quiet_since
                         AND x.success AND x.mode = 'apply' AND a.id <> pk
                         AND x.executed_at > quiet_since) THEN
            status := 'pending_approval';
            reason := CASE WHEN (it->>'tier')::int = 2 THEN 'tier 2: waits for approval'
                           WHEN NOT (it->>'tier1_eligible')::boolean
                           THEN 'tier 1 needs more confidence or impact: waits for approval'
                           ELSE 'the entity changed in the last '
                                || coalesce(it->>'quiet_hours', '24') || ' h: waits for approval'
                      END;
            RETURN;
        END IF;
    END IF;

    SELECT k.scope, k.target INTO c FROM controls k
     WHERE k.scope = 'global' OR (k.scope = 'tenant' AND k.target = t)
        OR (k.scope = 'subsystem' AND k.target = s)
     ORDER BY k.scope = 'global' DESC LIMIT 1;
    IF FOUND THEN
        status := 'received';
        not_before := now();
        wait_reason := CASE WHEN c.scope = 'global' THEN 'kill_switch' ELSE 'paused' END;
        reason := CASE WHEN c.scope = 'global' THEN 'kill switch is on'
                       ELSE format('%s %s is paused', c.scope, c.target) END;
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM actions a WHERE a.tenant_id = t AND a.subsystem = s
                  AND a.entity_id = e AND a.status IN ('received', 'retry_scheduled')
                  AND a.id < pk) THEN
        status := 'received';
        wait_reason := 'behind';
        reason := 'waits behind an earlier action on the same entity';
        not_before := now();
        RETURN;
    END IF;

    -- What the worker said (item member "wait"): no rate-limit token for `ms`
    -- milliseconds, the scope's circuit breaker is open (until actionpool-ctl
    -- breaker reset), or an earlier live request of the batch on the entity.
    IF it ? 'wait' THEN
        status := 'received';
        wait_reason := it->'wait'->>'reason';
        IF wait_reason = 'breaker_open' THEN
            reason := format('the circuit breaker of %s/%s is open', t, s);
            not_before := 'infinity';
        ELSIF wait_reason = 'behind' THEN   -- a live request on the entity goes first
            reason := 'waits behind an earlier action on the same entity';
            not_before := now();
        ELSE
            reason := format('rate limit of %s/%s reached', t, s);
            not_before := now() + make_interval(secs => (it->'wait'->>'ms')::numeric / 1000);
        END IF;
    END IF;
END;
$$;

-- Up to n due waiting actions, the oldest of each entity and none a control
-- still holds, leased for lease_s seconds to the caller, which publishes each
-- again to its topic.
CREATE FUNCTION ap_take_due(n integer, lease_s integer)
RETURNS TABLE (action_pk bigint, subsystem text, partition_key text, payload jsonb)
LANGUAGE sql AS $$
    UPDATE actions a SET not_before = now() + make_interval(secs => lease_s)
      FROM (SELECT w.id FROM actions w
             WHERE w.status = 'received' AND w.not_before <= now()
               AND NOT EXISTS (SELECT 1 FROM controls k   -- held until the control is lifted
                                WHERE k.scope = 'global'
                                   OR (k.scope = 'tenant' AND k.target = w.tenant_id)
                                   OR (k.scope = 'subsystem' AND k.target = w.subsystem))
               AND NOT EXISTS (SELECT 1 FROM actions o
                                WHERE o.tenant_id = w.tenant_id AND o.subsystem = w.subsystem
                                  AND o.entity_id = w.entity_id
                                  AND o.status IN ('received', 'retry_scheduled')
                                  AND o.id < w.id)
             ORDER BY w.not_before, w.id
             LIMIT n
             FOR UPDATE SKIP LOCKED) due
     WHERE a.id = due.id
    RETURNING a.id, a.subsystem, a.tenant_id || ':' || a.entity_id, a.payload;
$$;
