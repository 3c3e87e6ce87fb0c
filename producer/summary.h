/* summary.h — `actionpool-ctl summary --since DURATION|TIMESTAMP`: what
 * became of the actions received in a time window, per tenant and subsystem,
 * with a total per tenant and a total of all (the source documents' weekly
 * summary loop).
 *
 * Every count is about the actions received (recorded by a worker) since the
 * start of the window, by what became of them, read in one snapshot:
 *   received     all of them (every status)
 *   executed     carried out: status executed, or rolled_back (executed, then
 *                undone); a revert action is an action too
 *   rejected     status rejected, with the three most frequent reasons. A
 *                reason is grouped by its head: "field: rule" for the
 *                validator's "field: rule: message", the word before ': '
 *                otherwise ("conflict", "guardrail", "revert_of"), the whole
 *                text when it has no ': '; one full reason is kept as example
 *   duplicate    status duplicate (an idempotency key used before)
 *   dry_run      status dry_run
 *   rolled_back  status rolled_back (executed, then reverted)
 *   failed       status failed
 *   entities     distinct entities (tenant, subsystem, entity) of the
 *                executed ones
 * Actions waiting (pending_approval, suggested, retry_scheduled, ...) count
 * as received only.
 *
 * Status convention (actionpool-ctl turns it into its exit code):
 *   AP_ERR_INVALID  --since cannot be read
 *   AP_ERR_IO       Postgres cannot be reached
 *   AP_ERR_PG       a query failed (e.g. the database is not migrated)
 * err is set in every case. */
#ifndef AP_SUMMARY_H
#define AP_SUMMARY_H

#include <stdio.h>

#include "config.h"

/* Writes the summary of the actions received since `since` to out:
 *   since   "<N>s|m|h|d|w" (seconds .. weeks before now), or an RFC 3339
 *           timestamp ("2026-01-15T06:00:00Z", "...+02:00", fractions
 *           allowed), or a date "2026-01-15" (midnight UTC)
 *   tenant  only this tenant (borrowed); NULL: all tenants
 *   json    0: an aligned text table, one row per tenant x subsystem, then
 *           the tenant's total ("(all)"), then the total of all tenants;
 *           1: one JSON object
 *     {"since": T, "until": T, "tenant": T|null,
 *      "tenants": [{"tenant_id", "total": C, "subsystems": [{"subsystem", ...C}]}],
 *      "total": C}
 *   where C is {"received", "executed", "rejected", "duplicate", "dry_run",
 *   "rolled_back", "failed", "entities", "top_rejection_reasons": [{"reason",
 *   "count", "example"}]}.
 * Everything is read before anything is written: when a query fails, out
 * receives nothing. */
ap_status ap_summary_write(const ap_config *cfg, const char *since, const char *tenant, int json,
                           FILE *out, char *err, size_t errsz);

#endif
