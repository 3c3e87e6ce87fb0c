#include "summary.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli_time.h"
#include "pg.h"
#include "table.h"

#define TOP_REASONS 3 /* reasons shown per row */
#define TEXT_(x)    #x
#define TEXT(x)     TEXT_(x)

/* The window: $1 an interval ("7 days") or $2 a timestamp, one of them NULL;
 * now() is the start of the snapshot's transaction, the same in every query. */
#define SINCE "coalesce($2::timestamptz, now() - $1::interval)"

static const char window_sql[] =
    "SELECT to_char(" SINCE " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    "       to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

/* One row per tenant x subsystem (level 0), per tenant (level 1) and for all
 * (level 3), each tenant's rows before its total, the total of all last. */
static const char counts_sql[] =
    "WITH x AS (SELECT tenant_id AS t, coalesce(subsystem, '-') AS s, status, entity_id"
    "             FROM actions"
    "            WHERE received_at >= " SINCE " AND ($3::text IS NULL OR tenant_id = $3))"
    "SELECT t, s, grouping(t, s), count(*),"
    "       count(*) FILTER (WHERE status IN ('executed', 'rolled_back')),"
    "       count(*) FILTER (WHERE status = 'rejected'),"
    "       count(*) FILTER (WHERE status = 'duplicate'),"
    "       count(*) FILTER (WHERE status = 'dry_run'),"
    "       count(*) FILTER (WHERE status = 'rolled_back'),"
    "       count(*) FILTER (WHERE status = 'failed'),"
    "       count(DISTINCT (t, s, entity_id)) FILTER (WHERE status IN ('executed', 'rolled_back'))"
    "  FROM x GROUP BY GROUPING SETS ((t, s), (t), ())"
    " ORDER BY t NULLS LAST, grouping(t, s), s";
enum { NCOUNTS = 8 }; /* the count columns, from column 3 on */

/* The TOP_REASONS most frequent reason heads of each row of counts_sql. */
static const char reasons_sql[] =
    "WITH x AS (SELECT tenant_id AS t, coalesce(subsystem, '-') AS s, status_reason AS reason,"
    "                  CASE WHEN status_reason IS NULL OR status_reason = '' THEN '(no reason)'"
    "                       WHEN status_reason ~ '^[^:]*: [^:]*: '"
    "                         THEN substring(status_reason from '^([^:]*: [^:]*): ')"
    "                       WHEN position(': ' in status_reason) > 0"
    "                         THEN split_part(status_reason, ': ', 1)"
    "                       ELSE left(status_reason, 120) END AS head"
    "             FROM actions"
    "            WHERE status = 'rejected' AND received_at >= " SINCE
    "              AND ($3::text IS NULL OR tenant_id = $3)),"
    "     g AS (SELECT t, s, grouping(t, s) AS level, head, count(*) AS n, min(reason) AS example"
    "             FROM x GROUP BY GROUPING SETS ((t, s, head), (t, head), (head)))"
    "SELECT t, s, level, head, n, example"
    "  FROM (SELECT g.*, row_number() OVER (PARTITION BY t, s, level"
    "                                        ORDER BY n DESC, head) AS rank FROM g) r"
    " WHERE rank <= " TEXT(TOP_REASONS) " ORDER BY t, s, level, rank";

static const char *const count_keys[NCOUNTS] = {
    "received", "executed", "rejected", "duplicate", "dry_run", "rolled_back", "failed", "entities",
};
static const char *const heads[] = {
    "tenant",
    "subsystem",
    "received",
    "executed",
    "rejected",
    "duplicate",
    "dry run",
    "rolled back",
    "failed",
    "entities",
    "top rejection reasons",
};
#define NHEADS (int)(sizeof heads / sizeof heads[0])

/* ---------------------------------------------------------------- --since */

/* Reads --since into the query's two window parameters: an interval text
 * (into interval) or a timestamp (into stamp); the other is left empty. */
static ap_status since_parse(const char *since, char *interval, size_t isz, char *stamp, size_t ssz,
                             char *err, size_t errsz) {
    ap_cli_time t;
    ap_status st = ap_cli_time_parse("--since", since, &t, err, errsz);
    interval[0] = stamp[0] = '\0';
    if (st)
        return st;
    if (t.is_duration)
        snprintf(interval, isz, "%lld %s", t.count, t.unit);
    else
        snprintf(stamp, ssz, strlen(since) == 10 ? "%sT00:00:00Z" : "%s", since);
    return AP_OK;
}

/* ---------------------------------------------------------------- rendering */

/* The reasons of the row (t, s, level) of counts: rows [*first, *end) of
 * reasons, found by a scan. */
static void reasons_of(const PGresult *reasons, const PGresult *counts, int row, int *first,
                       int *end) {
    *first = *end = 0;
    for (int r = 0; r < PQntuples(reasons); r++) {
        int same = 1;
        for (int c = 0; c < 3 && same; c++)
            same = PQgetisnull(reasons, r, c) == PQgetisnull(counts, row, c) &&
                   !strcmp(PQgetvalue(reasons, r, c), PQgetvalue(counts, row, c));
        if (same && *end == *first)
            *first = r, *end = r + 1;
        else if (same)
            *end = r + 1;
    }
}

/* The counts of one row as a JSON object, after `key`: `value` when key is
 * not NULL. */
static json_t *counts_json(const PGresult *counts, int row, const PGresult *reasons,
                           const char *key, const char *value) {
    json_t *c = json_object();
    if (key)
        json_object_set_new(c, key, json_string(value));
    for (int k = 0; k < NCOUNTS; k++)
        json_object_set_new(c, count_keys[k], json_integer(atoll(PQgetvalue(counts, row, 3 + k))));
    json_t *top = json_array();
    int first, end;
    reasons_of(reasons, counts, row, &first, &end);
    for (int r = first; r < end; r++)
        json_array_append_new(top, json_pack("{s:s, s:I, s:s}", "reason", PQgetvalue(reasons, r, 3),
                                             "count", (json_int_t)atoll(PQgetvalue(reasons, r, 4)),
                                             "example", PQgetvalue(reasons, r, 5)));
    json_object_set_new(c, "top_rejection_reasons", top);
    return c;
}

static ap_status render_json(FILE *out, const char *tenant, const PGresult *window,
                             const PGresult *counts, const PGresult *reasons) {
    json_t *tenants = json_array(), *total = NULL, *current = NULL;
    for (int r = 0; r < PQntuples(counts); r++) {
        int level = atoi(PQgetvalue(counts, r, 2));
        if (level == 3) {
            total = counts_json(counts, r, reasons, NULL, NULL);
            continue;
        }
        const char *t = PQgetvalue(counts, r, 0);
        if (!current || strcmp(json_string_value(json_object_get(current, "tenant_id")), t)) {
            current = json_pack("{s:s, s:[]}", "tenant_id", t, "subsystems");
            json_array_append_new(tenants, current);
        }
        if (level == 1)
            json_object_set_new(current, "total", counts_json(counts, r, reasons, NULL, NULL));
        else
            json_array_append_new(
                json_object_get(current, "subsystems"),
                counts_json(counts, r, reasons, "subsystem", PQgetvalue(counts, r, 1)));
    }
    json_t *doc = json_pack("{s:s, s:s, s:s?, s:o, s:o}", "since", PQgetvalue(window, 0, 0),
                            "until", PQgetvalue(window, 0, 1), "tenant", tenant, "tenants", tenants,
                            "total", total ? total : json_object());
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        fprintf(out, "%s\n", text);
    free(text);
    json_decref(doc);
    return text ? AP_OK : AP_ERR_NOMEM;
}

/* "head (n), head (n)" of the row's reasons into buf. */
static void reasons_text(const PGresult *reasons, const PGresult *counts, int row, char *buf,
                         size_t size) {
    int first, end;
    size_t n = 0;
    buf[0] = '\0';
    reasons_of(reasons, counts, row, &first, &end);
    for (int r = first; r < end && n < size; r++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s (%s)", r > first ? ", " : "",
                              PQgetvalue(reasons, r, 3), PQgetvalue(reasons, r, 4));
}

static ap_status render_text(FILE *out, const char *tenant, const char *since,
                             const PGresult *window, const PGresult *counts,
                             const PGresult *reasons) {
    ap_status st = AP_OK;
    ap_table t = {.ncols = NHEADS, .heads = heads, .right = 0x3FCu}; /* columns 2..9 */
    char why[512];
    const char *row[NHEADS];
    long long all = 0;

    fprintf(out, "actionpool summary of the actions received since %s (%s) until %s, %s%s%s\n\n",
            PQgetvalue(window, 0, 0), since, PQgetvalue(window, 0, 1),
            tenant ? "tenant '" : "all tenants", tenant ? tenant : "", tenant ? "'" : "");
    for (int r = 0; r < PQntuples(counts); r++)
        if (atoi(PQgetvalue(counts, r, 2)) == 3)
            all = atoll(PQgetvalue(counts, r, 3));
    if (!all) {
        fprintf(out, "(no actions)\n");
        return AP_OK;
    }
    for (int r = 0; r < PQntuples(counts); r++) {
        int level = atoi(PQgetvalue(counts, r, 2));
        if (level == 3 && tenant) /* the tenant's own total says it */
            continue;
        row[0] = level == 3 ? "(all)" : PQgetvalue(counts, r, 0);
        row[1] = level ? "(all)" : PQgetvalue(counts, r, 1);
        for (int k = 0; k < NCOUNTS; k++)
            row[2 + k] = PQgetvalue(counts, r, 3 + k);
        reasons_text(reasons, counts, r, why, sizeof why);
        row[NHEADS - 1] = why;
        if ((st = ap_table_add(&t, row)))
            goto out;
    }
    ap_table_print(out, &t);
out:
    ap_table_release(&t);
    return st;
}

/* ---------------------------------------------------------------- summary */

ap_status ap_summary_write(const ap_config *cfg, const char *since, const char *tenant, int json,
                           FILE *out, char *err, size_t errsz) {
    ap_status st;
    char interval[32], stamp[64];
    PGconn *conn = NULL;
    PGresult *begin = NULL, *window = NULL, *counts = NULL, *reasons = NULL;

    if ((st = since_parse(since, interval, sizeof interval, stamp, sizeof stamp, err, errsz)))
        return st;
    const char *const params[] = {*interval ? interval : NULL, *stamp ? stamp : NULL, tenant};
    if (!(conn = ap_pg_connect(cfg, &st, err, errsz)))
        goto out;
    st = AP_ERR_PG;
    if (!(begin = ap_pg_query(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                              "cannot begin a transaction", err, errsz)) ||
        !(window = ap_pg_query(conn, window_sql, 2, params, "cannot read --since", err, errsz)) ||
        !(counts =
              ap_pg_query(conn, counts_sql, 3, params, "cannot count the actions", err, errsz)) ||
        !(reasons =
              ap_pg_query(conn, reasons_sql, 3, params, "cannot read the rejections", err, errsz)))
        goto out;
    st = json ? render_json(out, tenant, window, counts, reasons)
              : render_text(out, tenant, since, window, counts, reasons);
    if (st)
        ap_fail(st, err, errsz, "out of memory");
out:
    PQclear(reasons);
    PQclear(counts);
    PQclear(window);
    PQclear(begin);
    PQfinish(conn);
    return st;
}
