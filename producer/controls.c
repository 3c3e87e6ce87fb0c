#include "controls.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "webhook.h"

/* One statement and how many of the shared parameters ($1..$n) it uses. */
typedef struct stmt {
    const char *sql;
    int nparams;
} stmt;

/* Connects, runs the statements in one transaction, and closes. *rows (may be
 * NULL) receives the number of rows the last statement touched or returned. */
static ap_status apply(const ap_config *cfg, const stmt *stmts, int n, const char *const *params,
                       const char *what, int *rows, char *err, size_t errsz) {
    ap_status st = AP_OK;
    PGconn *pg = ap_pg_connect(cfg, &st, err, errsz);
    PGresult *res = NULL;
    if (!pg)
        return st;
    if (!(res = ap_pg_query(pg, "BEGIN", 0, NULL, what, err, errsz)))
        goto fail;
    for (int i = 0; i < n; i++) {
        PQclear(res);
        if (!(res = ap_pg_query(pg, stmts[i].sql, stmts[i].nparams, params, what, err, errsz)))
            goto fail;
        if (rows)
            *rows = *PQcmdTuples(res) ? atoi(PQcmdTuples(res)) : PQntuples(res);
    }
    PQclear(res);
    if (!(res = ap_pg_query(pg, "COMMIT", 0, NULL, what, err, errsz)))
        goto fail;
    PQclear(res);
    PQfinish(pg);
    return AP_OK;
fail:
    PQfinish(pg);
    return AP_ERR_PG;
}

ap_status ap_controls_kill_switch(const ap_config *cfg, int on, const char *by, const char *reason,
                                  char *err, size_t errsz) {
    const char *params[] = {by, reason, on ? "kill switch turned on" : "kill switch turned off"};
    const stmt stmts[] = {
        on ? (stmt){"INSERT INTO controls (scope, target, set_by, reason) "
                    "VALUES ('global', '', $1, $2) ON CONFLICT (scope, target) "
                    "DO UPDATE SET set_by = $1, reason = $2, set_at = now()",
                    2}
           : (stmt){"DELETE FROM controls WHERE scope = 'global'", 0},
        {"INSERT INTO alerts (kind, message) "
         "VALUES ('kill_switch', $3 || ' by ' || $1 || coalesce(': ' || $2, ''))",
         3},
    };
    ap_status st = apply(cfg, stmts, 2, params, "kill switch", NULL, err, errsz);
    if (!st) {
        char message[512];
        snprintf(message, sizeof message, "%s by %s%s%s", params[2], by, reason ? ": " : "",
                 reason ? reason : "");
        ap_log(AP_LOG_ERROR, message, "alert", "kill_switch", NULL);
        ap_webhook_post(cfg->alert_webhook_url, "kill_switch", NULL, NULL, message);
    }
    if (!st)
        printf("kill switch %s by %s: %s\n", on ? "on" : "off", by,
               on ? "no action executes until it is turned off"
                  : "waiting actions resume within seconds");
    return st;
}

ap_status ap_controls_pause(const ap_config *cfg, const char *scope, const char *target, int paused,
                            const char *by, const char *reason, char *err, size_t errsz) {
    const char *params[] = {scope, target, by, reason};
    const stmt pause = {"INSERT INTO controls (scope, target, set_by, reason) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT (scope, target) "
                        "DO UPDATE SET set_by = $3, reason = $4, set_at = now()",
                        4};
    const stmt resume = {"DELETE FROM controls WHERE scope = $1 AND target = $2", 2};
    int rows = 0;
    ap_status st = apply(cfg, paused ? &pause : &resume, 1, params, paused ? "pause" : "resume",
                         &rows, err, errsz);
    if (st)
        return st;
    if (!paused && !rows)
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s '%s' is not paused", scope, target);
    printf("%s %s %s by %s\n", scope, target, paused ? "paused" : "resumed", by);
    return AP_OK;
}

ap_status ap_controls_protect(const ap_config *cfg, const char *tenant, const char *subsystem,
                              const char *entity, int protect, const char *by, const char *reason,
                              char *err, size_t errsz) {
    const char *params[] = {tenant, subsystem, entity, by, reason};
    const stmt add = {"INSERT INTO protected_entities (tenant_id, subsystem, entity_id, set_by, "
                      "reason) VALUES ($1, $2, $3, $4, $5) "
                      "ON CONFLICT (tenant_id, subsystem, entity_id) "
                      "DO UPDATE SET set_by = $4, reason = $5, set_at = now()",
                      5};
    const stmt drop = {"DELETE FROM protected_entities WHERE tenant_id = $1 AND subsystem = $2 "
                       "AND entity_id = $3",
                       3};
    int rows = 0;
    ap_status st = apply(cfg, protect ? &add : &drop, 1, params, protect ? "protect" : "unprotect",
                         &rows, err, errsz);
    if (st)
        return st;
    if (!protect && !rows)
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s/%s of tenant '%s' is not protected",
                       subsystem, entity, tenant);
    printf("%s/%s of tenant %s %s by %s\n", subsystem, entity, tenant,
           protect ? "protected" : "no longer protected", by);
    return AP_OK;
}

ap_status ap_controls_autopilot(const ap_config *cfg, const char *tenant, const char *entity,
                                int on, const char *by, char *err, size_t errsz) {
    const char *params[] = {tenant, entity ? entity : "", on ? "true" : "false", by};
    const stmt set = {"INSERT INTO autopilot (tenant_id, entity_id, enabled, set_by) "
                      "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, entity_id) "
                      "DO UPDATE SET enabled = $3, set_by = $4, set_at = now()",
                      4};
    ap_status st = apply(cfg, &set, 1, params, "autopilot", NULL, err, errsz);
    if (!st)
        printf("autopilot %s for tenant %s%s%s by %s\n", on ? "on" : "off", tenant,
               entity ? ", campaign " : "", entity ? entity : "", by);
    return st;
}

ap_status ap_controls_decide(const ap_config *cfg, const char *action_id, const char *tenant,
                             int approve, const char *by, const char *note, char *err,
                             size_t errsz) {
    ap_status st = AP_OK;
    PGconn *pg = ap_pg_connect(cfg, &st, err, errsz);
    PGresult *res = NULL;
    if (!pg)
        return st;
    const char *find[] = {action_id, tenant};
    if (!(res = ap_pg_query(pg, "BEGIN", 0, NULL, "decision", err, errsz)))
        goto pg_fail;
    PQclear(res);
    if (!(res = ap_pg_query(pg,
                            "SELECT id, status, tenant_id FROM actions WHERE action_id = $1 "
                            "AND ($2::text IS NULL OR tenant_id = $2) FOR UPDATE",
                            2, find, "looking the action up", err, errsz)))
        goto pg_fail;
    if (PQntuples(res) != 1) {
        st = ap_fail(AP_ERR_INVALID, err, errsz,
                     PQntuples(res) ? "action '%s' exists for several tenants: give --tenant"
                                    : "no action '%s'%s",
                     action_id, tenant ? " for that tenant" : "");
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "pending_approval")) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "action '%s' is not pending approval (it is %s)",
                     action_id, PQgetvalue(res, 0, 1));
        goto out;
    }
    char pk[32];
    snprintf(pk, sizeof pk, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *params[] = {pk, by, note, approve ? "approved" : "rejected"};
    const stmt stmts[] = {
        {"INSERT INTO approvals (action_pk, decided_by, note, decision) VALUES ($1, $2, $3, $4)",
         4},
        approve ? (stmt){"UPDATE actions SET status = 'received', wait_reason = 'approved', "
                         "status_reason = 'approved by ' || $2, not_before = now(), "
                         "updated_at = now() WHERE id = $1::bigint",
                         2}
                : (stmt){"UPDATE actions SET status = 'rejected', status_reason = 'rejected by ' "
                         "|| $2 || coalesce(': ' || $3, ''), updated_at = now() "
                         "WHERE id = $1::bigint",
                         3},
        {"COMMIT", 0},
    };
    for (int i = 0; i < 3; i++) {
        if (!(res =
                  ap_pg_query(pg, stmts[i].sql, stmts[i].nparams, params, "decision", err, errsz)))
            goto pg_fail;
        PQclear(res);
    }
    res = NULL;
    printf("action %s %s by %s%s\n", action_id, approve ? "approved" : "rejected", by,
           approve ? ": it executes within seconds" : "");
    goto out;
pg_fail:
    st = AP_ERR_PG;
out:
    PQclear(res);
    PQfinish(pg);
    return st;
}

ap_status ap_controls_show(const ap_config *cfg, FILE *out, char *err, size_t errsz) {
    ap_status st = AP_OK;
    PGconn *pg = ap_pg_connect(cfg, &st, err, errsz);
    if (!pg)
        return st;
    static const struct {
        const char *title, *sql;
    } sections[] = {
        {"controls in force",
         "SELECT CASE scope WHEN 'global' THEN 'kill switch' ELSE scope || ' ' || target || "
         "' paused' END || ' (by ' || set_by || coalesce(': ' || reason, '') || ')' "
         "FROM controls ORDER BY scope, target"},
        {"autopilot off",
         "SELECT tenant_id || CASE entity_id WHEN '' THEN '' ELSE ', campaign ' || entity_id END "
         "|| ' (by ' || set_by || ')' FROM autopilot WHERE NOT enabled ORDER BY 1"},
        {"protected entities",
         "SELECT tenant_id || ' ' || subsystem || '/' || entity_id || coalesce(': ' || reason, '') "
         "FROM protected_entities ORDER BY 1"},
        {"actions waiting",
         "SELECT status || coalesce(' (' || wait_reason || ')', '') || ': ' || count(*) "
         "FROM actions WHERE status IN ('received', 'pending_approval') GROUP BY status, "
         "wait_reason ORDER BY 1"},
    };
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
        PGresult *res = ap_pg_query(pg, sections[i].sql, 0, NULL, sections[i].title, err, errsz);
        if (!res) {
            st = AP_ERR_PG;
            break;
        }
        fprintf(out, "%s:%s\n", sections[i].title, PQntuples(res) ? "" : " none");
        for (int r = 0; r < PQntuples(res); r++)
            fprintf(out, "  %s\n", PQgetvalue(res, r, 0));
        PQclear(res);
    }
    PQfinish(pg);
    return st;
}
