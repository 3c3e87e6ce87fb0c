-- 007: fewer writes per recorded action (bench/README.md, sixth session).
--
-- * executions.action_pk and entity_state.set_by_action lose their foreign
--   keys. Only ap_record_batch and ap_record_action (005) write them, in the
--   transaction that inserted the actions row they name, and actions rows are
--   never deleted. Each check was an index probe plus a row lock, that is a
--   WAL record and a dirtied page on the actions row.
-- * actions_status leaves out the statuses most rows end in, executed and
--   rolled_back: the statuses looked up by status (waiting, rejected,
--   duplicate ...) are still indexed.
ALTER TABLE executions DROP CONSTRAINT executions_action_pk_fkey;
ALTER TABLE entity_state DROP CONSTRAINT entity_state_set_by_action_fkey;

DROP INDEX actions_status;
CREATE INDEX actions_status ON actions (status) WHERE status NOT IN ('executed', 'rolled_back');
