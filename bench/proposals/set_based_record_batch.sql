-- PROPOSAL, measured by the benchmark of issue 6; not a migration (actionpool-ctl
-- migrate reads schemas/sql/ only). See bench/README.md, "Findings".
--
-- ap_record_batch of schemas/sql/001_actions.sql (the contract before 002 added
-- reverts, guardrails and the HTTP target), rewritten with set-based statements:
-- one INSERT for every action of the batch (ON CONFLICT DO NOTHING, in order),
-- a row-by-row path only for the few that conflict (redelivered, duplicate),
-- one statement each for the locks, the executions with their rollback data
-- and the entity_state upserts. Same outcomes, rows and rollback data as the
-- loop it replaces: checked on 30,000 actions with 5 % duplicates, 3 %
-- invalid, 3 % dry runs, published twice (every action also redelivered).
--
-- Measured here (2 vCPUs, Postgres 15, fsync and synchronous_commit on), with
-- ap_record_batch alone on batches of 500 built as the worker builds them:
-- Postgres CPU 97 -> 67 us per action. Per statement (pg_stat_statements):
--   loop:       INSERT actions 33.6 us, INSERT executions 16.8, INSERT
--               entity_state 12.0, SELECT previous 4.1, FK checks 3.1, the
--               rest (plpgsql, it->>'...' lookups, per-row executor start) ~25
--   set-based:  INSERT actions 21.0 us, executions 16.7, entity_state 10.5,
--               loading the batch 5.1, FK checks 3.0
-- Try it on commit 4d3c2a2 (001 only):
--   bench/run.sh --sql bench/proposals/set_based_record_batch.sql
-- For 002's ap_record_batch the same shape applies: ap_check_change per row
-- becomes one statement over the batch for the common case (no revert, no
-- guard, no current), with the row-by-row path kept for the rest.
CREATE OR REPLACE FUNCTION ap_record_batch(items jsonb)
RETURNS TABLE (ord integer, action_pk bigint, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    it        record;
    v_pk      bigint;
    v_owner   bigint;
BEGIN
    -- The batch as rows, once per session (a temporary table: the statements
    -- below read it several times, and plpgsql cannot pass a CTE between them).
    IF to_regclass('pg_temp.ap_batch') IS NULL THEN
        CREATE TEMP TABLE ap_batch (
            first_of_id boolean, ord integer, action_id text, tenant_id text,
            subsystem text, action_type text, entity_id text, idempotency_key text,
            payload jsonb, tier smallint, status text, reason text, field text, value jsonb,
            target text, worker_id text, topic text, kafka_partition integer,
            kafka_offset bigint, run_id text, created_at timestamptz, pk bigint, outcome text)
            ON COMMIT DELETE ROWS;
    END IF;
    DELETE FROM ap_batch;

    INSERT INTO ap_batch
    SELECT row_number() OVER (PARTITION BY x.tenant_id, x.action_id ORDER BY x.ord) = 1,
           x.ord, x.action_id, x.tenant_id, x.subsystem, x.action_type, x.entity_id,
           x.idempotency_key, x.payload, x.tier, x.status, x.reason, x.field, x.value,
           x.target, x.worker_id, x.topic, x."partition", x."offset", x.run_id, x.created_at,
           NULL, NULL
      FROM jsonb_to_recordset(items) AS x(ord integer, action_id text, tenant_id text,
           subsystem text, action_type text, entity_id text, idempotency_key text,
           payload jsonb, tier smallint, status text, reason text, field text, value jsonb,
           target text, worker_id text, topic text, "partition" integer, "offset" bigint,
           run_id text, created_at timestamptz);

    -- 1. Every action in one statement, in order; what conflicts is resolved below.
    WITH ins AS (
        INSERT INTO actions (action_id, tenant_id, subsystem, action_type, entity_id,
                             idempotency_key, payload, tier, status, status_reason,
                             attempts, run_id, created_at)
        SELECT b.action_id, b.tenant_id, b.subsystem, b.action_type, b.entity_id,
               b.idempotency_key, b.payload, b.tier, b.status, b.reason,
               CASE WHEN b.status = 'rejected' THEN 0 ELSE 1 END, b.run_id, b.created_at
          FROM ap_batch b ORDER BY b.ord
        ON CONFLICT DO NOTHING
        RETURNING id, actions.tenant_id, actions.action_id)
    UPDATE ap_batch b SET pk = ins.id, outcome = b.status
      FROM ins WHERE ins.tenant_id = b.tenant_id AND ins.action_id = b.action_id
       AND b.first_of_id;

    -- 2. The few that conflicted: redelivered, or a duplicate of a key's owner.
    FOR it IN SELECT * FROM ap_batch b WHERE b.pk IS NULL ORDER BY b.ord LOOP
        SELECT a.id INTO v_pk FROM actions a
         WHERE a.tenant_id = it.tenant_id AND a.action_id = it.action_id;
        IF FOUND THEN
            UPDATE ap_batch b SET pk = v_pk, outcome = 'redelivered' WHERE b.ord = it.ord;
            CONTINUE;
        END IF;
        SELECT a.id INTO v_owner FROM actions a
         WHERE a.idempotency_key = it.idempotency_key
           AND a.status NOT IN ('duplicate', 'rejected', 'dry_run');
        INSERT INTO actions (action_id, tenant_id, subsystem, action_type, entity_id,
                             idempotency_key, payload, tier, status, status_reason,
                             duplicate_of, run_id, created_at)
        VALUES (it.action_id, it.tenant_id, it.subsystem, it.action_type, it.entity_id,
                it.idempotency_key, it.payload, it.tier, 'duplicate',
                'idempotency key already used by action row ' || v_owner,
                v_owner, it.run_id, it.created_at)
        RETURNING id INTO v_pk;
        UPDATE ap_batch b SET pk = v_pk, outcome = 'duplicate' WHERE b.ord = it.ord;
    END LOOP;

    -- 3. Lock every field this batch changes or rehearses, in one order.
    PERFORM pg_advisory_xact_lock(h) FROM (
        SELECT DISTINCT hashtextextended(concat_ws(E'\x1f', b.tenant_id, b.subsystem,
               b.entity_id, b.field), 0) AS h
          FROM ap_batch b WHERE b.outcome IN ('executed', 'dry_run') ORDER BY 1) l;
    -- Row locks too, for writers that do not take the advisory lock. Lateral
    -- and scalar subqueries keep these lookups on the primary key: a join
    -- would let the planner scan the whole of entity_state for every batch.
    PERFORM 1 FROM (SELECT DISTINCT b.tenant_id, b.subsystem, b.entity_id, b.field
                      FROM ap_batch b WHERE b.outcome IN ('executed', 'dry_run')) k
      CROSS JOIN LATERAL (SELECT 1 FROM entity_state s
                           WHERE s.tenant_id = k.tenant_id AND s.subsystem = k.subsystem
                             AND s.entity_id = k.entity_id AND s.field = k.field
                             FOR UPDATE) l;

    -- 4. Executions with rollback data: the previous value is the last executed
    -- change of the same field earlier in the batch, else the stored one.
    WITH w AS (
        SELECT b.*, count(*) FILTER (WHERE b.outcome = 'executed') OVER (
                   PARTITION BY b.tenant_id, b.subsystem, b.entity_id, b.field ORDER BY b.ord
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before,
               CASE WHEN b.outcome = 'executed' THEN row_number() OVER (
                   PARTITION BY b.tenant_id, b.subsystem, b.entity_id, b.field,
                                b.outcome = 'executed' ORDER BY b.ord) END AS nth
          FROM ap_batch b WHERE b.outcome IN ('executed', 'dry_run'))
    INSERT INTO executions (action_pk, attempt, target, mode, input, success, worker_id,
                            topic, kafka_partition, kafka_offset, rollback_data)
    SELECT w.pk, 1, w.target, CASE WHEN w.outcome = 'dry_run' THEN 'dry_run' ELSE 'apply' END,
           jsonb_build_object('field', w.field, 'value', w.value), true, w.worker_id,
           w.topic, w.kafka_partition, w.kafka_offset,
           jsonb_build_object('field', w.field, 'previous', w.previous,
                              'existed', w.previous IS NOT NULL)
      FROM (SELECT w.*, CASE WHEN coalesce(w.before, 0) > 0 THEN p.value
                        ELSE (SELECT s.value FROM entity_state s
                               WHERE s.tenant_id = w.tenant_id AND s.subsystem = w.subsystem
                                 AND s.entity_id = w.entity_id AND s.field = w.field) END
                        AS previous
              FROM w
              LEFT JOIN w p ON p.tenant_id = w.tenant_id AND p.subsystem = w.subsystem
                     AND p.entity_id = w.entity_id AND p.field = w.field
                     AND p.nth = w.before) w
     ORDER BY w.ord;

    -- 5. The config store: the last executed change of each field wins.
    INSERT INTO entity_state (tenant_id, subsystem, entity_id, field, value, set_by_action)
    SELECT DISTINCT ON (b.tenant_id, b.subsystem, b.entity_id, b.field)
           b.tenant_id, b.subsystem, b.entity_id, b.field, b.value, b.pk
      FROM ap_batch b WHERE b.outcome = 'executed'
     ORDER BY b.tenant_id, b.subsystem, b.entity_id, b.field, b.ord DESC
    ON CONFLICT (tenant_id, subsystem, entity_id, field) DO UPDATE
       SET value = EXCLUDED.value, set_by_action = EXCLUDED.set_by_action, updated_at = now();

    RETURN QUERY SELECT b.ord, b.pk, b.outcome FROM ap_batch b ORDER BY b.ord;
END;
$$;
