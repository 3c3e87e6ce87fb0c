/* report.h — `actionpool-ctl report`: what the workers recorded in Postgres,
 * read in one consistent snapshot:
 *   actions     counts by subsystem x status, with totals
 *   entity_state the current value of every field, with the action that set it
 *               (the first AP_REPORT_STATE_LIMIT rows in key order)
 *   rejected    the newest rejected actions with their reason
 *   duplicates  the newest duplicates with the action whose key they reused
 * as aligned text tables for a terminal, or as one JSON object for scripts.
 *
 * Status convention (actionpool-ctl turns it into its exit code):
 *   AP_ERR_IO   Postgres cannot be reached
 *   AP_ERR_PG   a query failed (e.g. the database is not migrated)
 * err is set in every case. */
#ifndef AP_REPORT_H
#define AP_REPORT_H

#include <stdio.h>

#include "config.h"

#define AP_REPORT_STATE_LIMIT 200 /* entity_state rows shown */
#define AP_REPORT_LIST_LIMIT  50  /* rejected and duplicate actions shown */

/* Writes the report for one tenant (tenant: borrowed; NULL: all tenants) to
 * out, as text or (json != 0) as one JSON object:
 *   {"tenant": T|null,
 *    "actions": {"by_subsystem": {S: {status: n, ..., "total": n}}, "by_status": {...},
 *                "total": n},
 *    "entity_state": {"total": n, "limit": 200, "rows": [{"tenant_id", "subsystem",
 *                     "entity_id", "field", "value" (JSON), "set_by_action"}]},
 *    "rejected": {"total": n, "limit": 50, "rows": [{"tenant_id", "subsystem",
 *                 "action_id", "entity_id", "status_reason", "received_at"}]},
 *    "duplicates": {"total": n, "limit": 50, "rows": [{"tenant_id", "subsystem",
 *                   "action_id", "duplicate_of", "idempotency_key", "received_at"}]}}
 * Everything is read before anything is written: when a query fails, out
 * receives nothing. */
ap_status ap_report_write(const ap_config *cfg, const char *tenant, int json, FILE *out, char *err,
                          size_t errsz);

#endif
