#include "report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "table.h"

/* Every action status, in the order of their life: the columns of the counts. */
static const char *const statuses[] = {
    "received",        "suggested",     "pending_approval", "manual_only", "executed", "dry_run",
    "retry_scheduled", "dead_lettered", "failed",           "rolled_back", "rejected", "duplicate",
};
#define NSTATUSES (int)(sizeof statuses / sizeof statuses[0])

/* A listing read by one query: $1 is the tenant (NULL: all), $2 the limit,
 * and the last column count(*) OVER (), the number of rows before the limit. */
typedef struct section {
    const char *key;   /* JSON member */
    const char *title; /* text heading */
    const char *empty; /* text when there is no row */
    const char *sql;
    int limit;
    int ncols;                /* columns shown, before the count */
    const char *const *heads; /* text headings */
    const char *const *keys;  /* JSON members */
    int json_col;             /* column of JSON text, kept as JSON in --json; -1 none */
} section;

static const char *const state_heads[] = {"tenant", "subsystem", "entity",
                                          "field",  "value",     "set by action"};
static const char *const state_keys[] = {"tenant_id", "subsystem", "entity_id",
                                         "field",     "value",     "set_by_action"};
static const char *const rejected_heads[] = {"tenant", "subsystem", "action",
                                             "entity", "reason",    "received"};
static const char *const rejected_keys[] = {"tenant_id", "subsystem",     "action_id",
                                            "entity_id", "status_reason", "received_at"};
static const char *const dup_heads[] = {"tenant",       "subsystem",       "action",
                                        "duplicate of", "idempotency key", "received"};
static const char *const dup_keys[] = {"tenant_id",    "subsystem",       "action_id",
                                       "duplicate_of", "idempotency_key", "received_at"};

static const section sections[] = {
    {"entity_state", "Entity state (the built-in config store)", "(no entity state)",
     "SELECT s.tenant_id, s.subsystem, s.entity_id, s.field, s.value::text, a.action_id,"
     "       count(*) OVER ()"
     "  FROM entity_state s LEFT JOIN actions a ON a.id = s.set_by_action"
     " WHERE $1::text IS NULL OR s.tenant_id = $1"
     " ORDER BY s.tenant_id, s.subsystem, s.entity_id, s.field LIMIT $2",
     AP_REPORT_STATE_LIMIT, 6, state_heads, state_keys, 4},
    {"rejected", "Rejected actions (newest first)", "(no rejected actions)",
     "SELECT tenant_id, subsystem, action_id, entity_id, status_reason,"
     "       to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
     "       count(*) OVER ()"
     "  FROM actions"
     " WHERE status = 'rejected' AND ($1::text IS NULL OR tenant_id = $1)"
     " ORDER BY id DESC LIMIT $2",
     AP_REPORT_LIST_LIMIT, 6, rejected_heads, rejected_keys, -1},
    {"duplicates", "Duplicate actions (newest first)", "(no duplicate actions)",
     "SELECT d.tenant_id, d.subsystem, d.action_id, o.action_id, d.idempotency_key,"
     "       to_char(d.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
     "       count(*) OVER ()"
     "  FROM actions d LEFT JOIN actions o ON o.id = d.duplicate_of"
     " WHERE d.status = 'duplicate' AND ($1::text IS NULL OR d.tenant_id = $1)"
     " ORDER BY d.id DESC LIMIT $2",
     AP_REPORT_LIST_LIMIT, 6, dup_heads, dup_keys, -1},
};
#define NSECTIONS (int)(sizeof sections / sizeof sections[0])

static const char counts_sql[] = "SELECT coalesce(subsystem, '-'), status, count(*) FROM actions"
                                 " WHERE $1::text IS NULL OR tenant_id = $1"
                                 " GROUP BY 1, 2 ORDER BY 1, 2";

/* ---------------------------------------------------------------- postgres */

/* Runs sql with its first nparams of: the tenant ($1, may be NULL) and a
 * limit ($2). Returns the result (the caller PQclear-s it) or NULL with err
 * set ("what: message"). */
static PGresult *pg_query(PGconn *conn, const char *sql, int nparams, const char *tenant, int limit,
                          const char *what, char *err, size_t errsz) {
    char limit_text[16];
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    const char *const params[] = {tenant, limit_text};
    return ap_pg_query(conn, sql, nparams, params, what, err, errsz);
}

/* ---------------------------------------------------------------- counts */

/* Column index of status s among the statuses present, or -1. */
static int status_col(const char *s) {
    for (int i = 0; i < NSTATUSES; i++)
        if (!strcmp(statuses[i], s))
            return i;
    return -1;
}

/* res rows: subsystem, status, count, sorted by subsystem. Writes the
 * subsystem x status table with a total column and a total row; only the
 * statuses that occur get a column. */
static ap_status counts_text(FILE *out, const PGresult *res) {
    ap_status st = AP_OK;
    const char *heads[NSTATUSES + 2];
    long long by_status[NSTATUSES] = {0}, total = 0;
    int used[NSTATUSES] = {0}, ncols = 1;
    ap_table t = {0};

    fprintf(out, "Actions by subsystem and status\n");
    if (!PQntuples(res)) {
        fprintf(out, "(no actions)\n");
        return AP_OK;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int s = status_col(PQgetvalue(res, r, 1));
        if (s >= 0) {
            used[s] = 1;
            by_status[s] += atoll(PQgetvalue(res, r, 2));
        }
        total += atoll(PQgetvalue(res, r, 2));
    }
    heads[0] = "subsystem";
    for (int s = 0; s < NSTATUSES; s++)
        if (used[s])
            heads[ncols++] = statuses[s];
    heads[ncols++] = "total";
    t.ncols = ncols;
    t.heads = heads;
    t.right = ~1u;

    char num[NSTATUSES + 2][24];
    const char *row[NSTATUSES + 2];
    for (int r = 0; r < PQntuples(res);) {
        const char *sub = PQgetvalue(res, r, 0);
        long long cells[NSTATUSES] = {0}, sum = 0;
        for (; r < PQntuples(res) && !strcmp(PQgetvalue(res, r, 0), sub); r++) {
            int s = status_col(PQgetvalue(res, r, 1));
            if (s >= 0)
                cells[s] += atoll(PQgetvalue(res, r, 2));
            sum += atoll(PQgetvalue(res, r, 2));
        }
        int c = 0;
        row[c++] = sub;
        for (int s = 0; s < NSTATUSES; s++)
            if (used[s]) {
                snprintf(num[c], sizeof num[c], "%lld", cells[s]);
                row[c] = num[c];
                c++;
            }
        snprintf(num[c], sizeof num[c], "%lld", sum);
        row[c] = num[c];
        if ((st = ap_table_add(&t, row)))
            goto out;
    }
    int c = 0;
    row[c++] = "total";
    for (int s = 0; s < NSTATUSES; s++)
        if (used[s]) {
            snprintf(num[c], sizeof num[c], "%lld", by_status[s]);
            row[c] = num[c];
            c++;
        }
    snprintf(num[c], sizeof num[c], "%lld", total);
    row[c] = num[c];
    if ((st = ap_table_add(&t, row)))
        goto out;
    ap_table_print(out, &t);
out:
    ap_table_release(&t);
    return st;
}

/* The same counts as {"by_subsystem": {...}, "by_status": {...}, "total": n}. */
static json_t *counts_json(const PGresult *res) {
    json_t *by_sub = json_object(), *by_status = json_object();
    json_int_t total = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *sub = PQgetvalue(res, r, 0), *status = PQgetvalue(res, r, 1);
        json_int_t n = atoll(PQgetvalue(res, r, 2));
        json_t *o = json_object_get(by_sub, sub);
        if (!o)
            json_object_set_new(by_sub, sub, o = json_object());
        json_object_set_new(o, status, json_integer(n));
        json_object_set_new(
            by_status, status,
            json_integer(json_integer_value(json_object_get(by_status, status)) + n));
        total += n;
    }
    const char *sub;
    json_t *o;
    json_object_foreach(by_sub, sub, o) {
        json_int_t sum = 0;
        const char *status;
        json_t *n;
        json_object_foreach(o, status, n) sum += json_integer_value(n);
        json_object_set_new(o, "total", json_integer(sum));
    }
    return json_pack("{s:o, s:o, s:I}", "by_subsystem", by_sub, "by_status", by_status, "total",
                     (json_int_t)total);
}

/* ---------------------------------------------------------------- listings */

static long long section_total(const section *sec, const PGresult *res) {
    return PQntuples(res) ? atoll(PQgetvalue(res, 0, sec->ncols)) : 0;
}

static ap_status section_text(FILE *out, const section *sec, const PGresult *res) {
    ap_status st = AP_OK;
    ap_table t = {.ncols = sec->ncols, .heads = sec->heads};
    const char *row[16];
    long long total = section_total(sec, res);

    fprintf(out, "%s\n", sec->title);
    if (!PQntuples(res)) {
        fprintf(out, "%s\n", sec->empty);
        return AP_OK;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        for (int c = 0; c < sec->ncols; c++)
            row[c] = PQgetisnull(res, r, c) ? "-" : PQgetvalue(res, r, c);
        if ((st = ap_table_add(&t, row)))
            goto out;
    }
    ap_table_print(out, &t);
    if (total > PQntuples(res))
        fprintf(out, "(%d of %lld rows shown)\n", PQntuples(res), total);
out:
    ap_table_release(&t);
    return st;
}

static json_t *section_json(const section *sec, const PGresult *res) {
    json_t *rows = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *row = json_object();
        for (int c = 0; c < sec->ncols; c++) {
            json_t *v;
            if (PQgetisnull(res, r, c))
                v = json_null();
            else if (c == sec->json_col)
                v = json_loads(PQgetvalue(res, r, c), JSON_DECODE_ANY, NULL);
            else
                v = json_string(PQgetvalue(res, r, c));
            json_object_set_new(row, sec->keys[c], v ? v : json_null());
        }
        json_array_append_new(rows, row);
    }
    return json_pack("{s:I, s:i, s:o}", "total", (json_int_t)section_total(sec, res), "limit",
                     sec->limit, "rows", rows);
}

/* ---------------------------------------------------------------- report */

/* Renders what was read; AP_ERR_NOMEM is the only failure. */
static ap_status report_render(FILE *out, const char *tenant, int json, const PGresult *counts,
                               PGresult *const *lists) {
    ap_status st = AP_OK;
    if (json) {
        json_t *doc = json_pack("{s:o, s:o}", "tenant", tenant ? json_string(tenant) : json_null(),
                                "actions", counts_json(counts));
        for (int i = 0; doc && i < NSECTIONS; i++)
            json_object_set_new(doc, sections[i].key, section_json(&sections[i], lists[i]));
        char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            fprintf(out, "%s\n", text);
        else
            st = AP_ERR_NOMEM;
        free(text);
        json_decref(doc);
        return st;
    }
    if (tenant)
        fprintf(out, "actionpool report for tenant '%s'\n\n", tenant);
    else
        fprintf(out, "actionpool report, all tenants\n\n");
    if ((st = counts_text(out, counts)))
        return st;
    for (int i = 0; i < NSECTIONS; i++) {
        fputc('\n', out);
        if ((st = section_text(out, &sections[i], lists[i])))
            return st;
    }
    return AP_OK;
}

ap_status ap_report_write(const ap_config *cfg, const char *tenant, int json, FILE *out, char *err,
                          size_t errsz) {
    ap_status st = AP_OK;
    PGconn *conn = NULL;
    PGresult *counts = NULL, *lists[NSECTIONS] = {0}, *res = NULL;

    if (!(conn = ap_pg_connect(cfg, &st, err, errsz)))
        goto out;
    /* One snapshot: the counts and the listings agree with each other. */
    if (!(res = pg_query(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, 0,
                         "cannot begin a transaction", err, errsz))) {
        st = AP_ERR_PG;
        goto out;
    }
    if (!(counts =
              pg_query(conn, counts_sql, 1, tenant, 0, "cannot count the actions", err, errsz))) {
        st = AP_ERR_PG;
        goto out;
    }
    for (int i = 0; i < NSECTIONS; i++) {
        char what[128];
        snprintf(what, sizeof what, "cannot read the %s", sections[i].key);
        if (!(lists[i] = pg_query(conn, sections[i].sql, 2, tenant, sections[i].limit, what, err,
                                  errsz))) {
            st = AP_ERR_PG;
            goto out;
        }
    }
    if ((st = report_render(out, tenant, json, counts, lists)))
        ap_fail(st, err, errsz, "out of memory");
out:
    for (int i = NSECTIONS - 1; i >= 0; i--)
        PQclear(lists[i]);
    PQclear(counts);
    PQclear(res);
    PQfinish(conn);
    return st;
}
