/* replay.h — `actionpool-ctl replay`: lists the dead letters of the DLQ
 * topics (<prefix>.<subsystem>.dlq, written by worker/dead_letter.c) that
 * match some filters, and republishes the ones not replayed yet to their
 * original topic.
 *
 * Reading: every DLQ topic of the chosen subsystems is read from its first
 * offset to the high watermark measured at the start, by a consumer that is
 * assigned its partitions (group.id set only because librdkafka's assign needs
 * one: it never joins the group, never commits).
 *
 * Replaying, for each match that table `replays` (schemas/sql/004_replay.sql)
 * does not list, in DLQ order:
 *   1. INSERT its row ... ON CONFLICT DO NOTHING: only the run whose insert
 *      happened publishes, so two runs, even concurrent, never replay the
 *      same dead letter twice;
 *   2. publish key and value as they are to the header ap-original-topic (the
 *      subsystem's main topic when the header is missing), with headers
 *      ap-replay-of: "<dlq topic>/<partition>/<offset>" and ap-attempt: 0;
 *   3. wait for every delivery report; the row of a message not delivered is
 *      deleted again, so that a later run retries it.
 * A crash between 1 and 3 leaves a row for a message that may not have been
 * published: delete that row by hand (the DLQ message is unchanged) to
 * replay it again. A key holding a NUL byte is republished cut at the NUL.
 *
 * Status convention (actionpool-ctl turns it into its exit code):
 *   AP_ERR_KAFKA    the run completed, but some replays were not delivered
 *                   (exit 1); the listing was written
 *   AP_ERR_INVALID  a filter cannot be read, an unknown subsystem, or the
 *                   executor map cannot be loaded
 *   AP_ERR_IO       Kafka or Postgres cannot be reached, or a DLQ topic does
 *                   not exist or cannot be read to its end
 *   AP_ERR_PG       a statement failed (e.g. 004_replay.sql not applied)
 *   AP_ERR_NOMEM    out of memory
 * err is set in every case but AP_OK. */
#ifndef AP_REPLAY_H
#define AP_REPLAY_H

#include <stdio.h>

#include "config.h"

/* What to replay. Strings are borrowed; NULL: no filter on it. */
typedef struct ap_replay_request {
    const char *subsystems;  /* "crm" or "crm,pricing"; NULL: every subsystem of the map */
    const char *tenant;      /* tenant_id of the action in the value */
    const char *error_class; /* header ap-error-class */
    const char *since;       /* first failure at or after: RFC 3339 or 90s/30m/24h/7d/2w ago */
    const char *until;       /* first failure before: same forms */
    const char *action_id;   /* action_id of the action in the value */
    int dry_run;             /* list what would be replayed; change nothing */
    int json;                /* one JSON object instead of the table */
    const char *by;          /* recorded as replayed_by; required unless dry_run */
} ap_replay_request;

/* Lists the matching dead letters on out and, unless req->dry_run, replays
 * the ones not replayed yet (see above). Text output is an aligned table
 * (DLQ, ACTION_ID, TENANT, ERROR_CLASS, ATTEMPTS, FIRST_FAILURE, REPLAY,
 * LAST_ERROR) and a summary line "replayed R of M matching dead letters (A
 * already replayed[, F not delivered])"; JSON output is one object
 *   {"dry_run", "matching", "already_replayed", "replayed" | "would_replay",
 *    "failed", "dead_letters": [{"dlq_topic", "dlq_partition", "dlq_offset",
 *    "subsystem", "action_id", "tenant_id", "error_class", "error_message",
 *    "attempts", "first_failure_at", "original_topic", "state",
 *    "replayed_at", "replayed_by", "error"}]}
 * where state is already_replayed, would_replay, replayed or failed and
 * absent values are null. Nothing is written when the run fails before the
 * listing (every status but AP_OK and AP_ERR_KAFKA). */
ap_status ap_replay_run(const ap_config *cfg, const ap_replay_request *req, FILE *out, char *err,
                        size_t errsz);

#endif
