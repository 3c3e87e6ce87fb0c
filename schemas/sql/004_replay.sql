-- 004: replays of dead letters — which DLQ message was republished, by whom.
--
-- actionpool-ctl replay inserts a row BEFORE it republishes a dead letter
-- (INSERT ... ON CONFLICT DO NOTHING RETURNING) and publishes only when its
-- insert happened: the primary key makes every DLQ message replayable once,
-- even by concurrent runs. A row whose message was not delivered is deleted
-- again, so that a later run retries it.

CREATE TABLE replays (
    dlq_topic      text        NOT NULL,
    dlq_partition  integer     NOT NULL,
    dlq_offset     bigint      NOT NULL,
    action_id      text,                  -- from the message's value; NULL when it is not an action
    tenant_id      text,
    original_topic text        NOT NULL,  -- where it was republished
    replayed_by    text        NOT NULL,
    replayed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);

CREATE INDEX replays_action ON replays (tenant_id, action_id);
