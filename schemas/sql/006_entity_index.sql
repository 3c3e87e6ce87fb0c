-- 006: actions_entity led by entity_id.
--
-- Led by tenant_id, it competed with the unique (tenant_id, action_id) index
-- for lookups by action id. A generic plan made while actions was nearly
-- empty (a worker's first batches) chose it, and then read every action of
-- the tenant for each lookup, more as the table grew: 0.12 ms per lookup
-- after 100,000 actions. Led by entity_id, it serves only the lookups by
-- entity it is for (policy: quiet period, waiting behind).
DROP INDEX actions_entity;
CREATE INDEX actions_entity ON actions (entity_id, tenant_id, subsystem);
