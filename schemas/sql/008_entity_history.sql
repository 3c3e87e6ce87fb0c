-- 008: policy's lookups by entity as fast for an entity with a long history
-- as for a new one.
--
-- Policy asks of each action whether its entity changed in the quiet period
-- and whether an earlier action on it still waits. Through actions_entity
-- alone, both read every action the entity ever had: 1.5-2 ms an item for
-- entities of 1,000 actions, against ~0.05 for new ones (bench/README,
-- thirteenth session). The quiet period now reads only the entity's actions
-- updated within it (the transaction that records an execution also
-- inserts or updates its action: updated_at >= executed_at), and the
-- waiting actions have an index of their own.
DROP INDEX actions_entity;
CREATE INDEX actions_entity ON actions (entity_id, tenant_id, subsystem, updated_at);
CREATE INDEX actions_entity_waiting ON actions (entity_id, tenant_id, subsystem)
    WHERE status IN ('received', 'retry_scheduled');

-- The unique (tenant_id, action_id) led by action_id: led by tenant_id it was
-- a candidate for the lookups by entity in the generic plan a worker makes
-- while the table is empty, and then read every action of the tenant for
-- each item (as in 006). Led by action_id it also serves the lookups by
-- action id alone (actionpool-ctl revert).
ALTER TABLE actions DROP CONSTRAINT actions_tenant_id_action_id_key,
    ADD UNIQUE (action_id, tenant_id);
