/* revert.h — `actionpool-ctl revert ACTION_ID`: undoes one executed action by
 * publishing ONE `revert` action, which the workers carry out like any other
 * (validation, idempotency, audit): ap_record_batch restores the reverted
 * action's rollback data and marks it rolled_back.
 *
 * Before publishing, Postgres is asked whether the action can be reverted.
 * It cannot when it
 *   - does not exist, or exists for several tenants and no tenant was given;
 *   - was never executed (rejected, duplicate, dry run, waiting, ...): there
 *     is no successful apply execution, so there is nothing to restore;
 *   - is rolled back already;
 *   - is no longer the latest change of its field: another action set the
 *     field since, and restoring the old value would silently undo that one
 *     too (revert the later one first).
 * The revert action carries the value the reverted action set as `current`,
 * so a worker also refuses it (a conflict) when the field changed between
 * this check and its execution; the one exception is a number that JSON
 * would not carry exactly (a clamped budget like 130.85 that jansson writes
 * as 130.84999999999999): then only this check applies.
 *
 * The revert action:
 *   {"action_id": "revert-<id>-<8 hex>", "tenant_id", "owner_subsystem",
 *    "action_type": "revert", "entity_id", "revert_of": <id>,
 *    "proposed_change": {"field": <the field of the rollback data>},
 *    "current"?: <value>, "created_at": <now, RFC 3339 UTC>, "reason",
 *    "idempotency_key": "revert:<id>"}
 * on <prefix>.<subsystem>, keyed "<tenant>:<entity>". The fixed idempotency
 * key makes a second revert of the same action, published before the first
 * one ran, a duplicate: running the command twice is safe. (<id> is cut to
 * 48 bytes in the action_id, which may hold 64; revert_of keeps all of it.) */
#ifndef AP_REVERT_H
#define AP_REVERT_H

#include <jansson.h>

#include "config.h"

/* What to revert. Strings are borrowed. */
typedef struct ap_revert_request {
    const char *action_id;
    const char *tenant; /* NULL: the one tenant that has the action */
    const char *reason; /* NULL: "reverted with actionpool-ctl" */
} ap_revert_request;

/* Looks the action up and builds its revert action. Returns:
 *   AP_OK with *action set (a new reference the caller releases);
 *   AP_OK with *action NULL and `why` set when the action cannot be reverted
 *     (see above; the message names the action and the tenant);
 *   AP_ERR_IO (Postgres unreachable), AP_ERR_PG (a query failed),
 *     AP_ERR_NOMEM, each with err set. */
ap_status ap_revert_build(const ap_config *cfg, const ap_revert_request *req, json_t **action,
                          char *why, size_t whysz, char *err, size_t errsz);

/* Checks action against the executor map of the schema folder and publishes
 * it to its subsystem's topic, waiting up to 30 s for the delivery report.
 * AP_ERR_INVALID (the map refuses it or cannot be loaded), AP_ERR_KAFKA (not
 * delivered) or AP_ERR_NOMEM with err set. */
ap_status ap_revert_publish(const ap_config *cfg, json_t *action, char *err, size_t errsz);

#endif
