/* controls.h — the operator's controls of policy, kept in Postgres
 * (schemas/sql/003_policy.sql), where every worker reads them in the
 * transaction that executes: the kill switch, pauses, protected entities,
 * autopilot, and approval decisions.
 *
 * Each function prints one line saying what it did and returns AP_OK;
 * AP_ERR_INVALID with err set when the request does not apply (an action that
 * is not pending approval, an ambiguous action_id); AP_ERR_IO or AP_ERR_PG as
 * in pg.h. `by` names the operator and is recorded. */
#ifndef AP_CONTROLS_H
#define AP_CONTROLS_H

#include <stdio.h>

#include "config.h"

/* Stops (on) or lets again (off) every execution; an alert records each flip. */
ap_status ap_controls_kill_switch(const ap_config *cfg, int on, const char *by, const char *reason,
                                  char *err, size_t errsz);

/* Pauses or resumes one tenant (scope "tenant") or subsystem ("subsystem").
 * Paused work waits and runs after the resume, with no replay. */
ap_status ap_controls_pause(const ap_config *cfg, const char *scope, const char *target, int paused,
                            const char *by, const char *reason, char *err, size_t errsz);

/* Protects an entity (actions on it are rejected) or lifts the protection. */
ap_status ap_controls_protect(const ap_config *cfg, const char *tenant, const char *subsystem,
                              const char *entity, int protect, const char *by, const char *reason,
                              char *err, size_t errsz);

/* Autopilot on or off for a tenant, or one of its campaigns (entity non-NULL).
 * Off: actions are stored as suggested and not executed. */
ap_status ap_controls_autopilot(const ap_config *cfg, const char *tenant, const char *entity,
                                int on, const char *by, char *err, size_t errsz);

/* Approves (the action then executes within seconds, by itself) or rejects an
 * action pending approval. tenant may be NULL unless the action_id is used by
 * several tenants. */
ap_status ap_controls_decide(const ap_config *cfg, const char *action_id, const char *tenant,
                             int approve, const char *by, const char *note, char *err,
                             size_t errsz);

/* Prints what is in force: controls, autopilot, protected entities, and the
 * count of actions waiting, by reason. */
ap_status ap_controls_show(const ap_config *cfg, FILE *out, char *err, size_t errsz);

#endif
