#include "store.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

typedef struct text_buf {
    char *s;
    size_t len, cap;
} text_buf;

struct ap_store {
    PGconn *pg;
    char *dsn;
    text_buf batch; /* the last batch's text: kept, so that each batch does not
                       free and grow a buffer this large again */
};

static ap_status store_connect(ap_store *s, char *err, size_t errsz) {
    if (s->pg && PQstatus(s->pg) == CONNECTION_OK)
        return AP_OK;
    PQfinish(s->pg);
    s->pg = PQconnectdb(s->dsn);
    if (PQstatus(s->pg) != CONNECTION_OK) {
        ap_fail(AP_ERR_PG, err, errsz, "cannot connect to postgres: %s", PQerrorMessage(s->pg));
        PQfinish(s->pg);
        s->pg = NULL;
        return AP_ERR_PG;
    }
    return AP_OK;
}

ap_store *ap_store_new(const ap_config *cfg, char *err, size_t errsz) {
    ap_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dsn = strdup(cfg->pg_dsn))) {
        free(s);
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    if (store_connect(s, err, errsz)) {
        ap_store_free(s);
        return NULL;
    }
    return s;
}

/* A json_dump_callback_t: appends to a text_buf. */
static int text_append(const char *part, size_t n, void *data) {
    text_buf *b = data;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, part, n);
    b->len += n;
    return 0;
}

/* Writes into b items as one JSON array, payloads[k] spliced into items[k] (an
 * object with members) as its "payload". -1 when out of memory. */
static int batch_text(text_buf *b, const json_t *items, const ap_store_text *payloads) {
    size_t k;
    json_t *item;
    b->len = 0;
    int failed = text_append("[", 1, b);
    json_array_foreach(items, k, item) {
        failed = failed || (k && text_append(",", 1, b)) ||
                 json_dump_callback(item, text_append, b, JSON_COMPACT);
        if (failed)
            break;
        b->len--; /* the closing brace: one more member */
        failed = text_append(",\"payload\":", 11, b) ||
                 text_append(payloads[k].json, payloads[k].len, b) || text_append("}", 1, b);
    }
    return failed || text_append("]", 2, b) ? -1 : 0; /* with the NUL */
}

ap_status ap_store_record(ap_store *s, const json_t *items, const ap_store_text *payloads,
                          char (*outcomes)[32], int n, char *err, size_t errsz) {
    ap_status st = store_connect(s, err, errsz);
    if (st)
        return st;
    if (batch_text(&s->batch, items, payloads))
        return ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
    const char *params[1] = {s->batch.s};
    PGresult *res = PQexecParams(s->pg, "SELECT ord, outcome FROM ap_record_batch($1::jsonb)", 1,
                                 NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = ap_fail(AP_ERR_PG, err, errsz, "recording the batch failed: %s",
                     PQresultErrorMessage(res));
        if (PQstatus(s->pg) != CONNECTION_OK) {
            PQfinish(s->pg);
            s->pg = NULL;
        }
        goto out;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        int ord = atoi(PQgetvalue(res, row, 0));
        if (ord >= 0 && ord < n)
            snprintf(outcomes[ord], 32, "%s", PQgetvalue(res, row, 1));
    }
out:
    PQclear(res);
    return st;
}

/* Runs a query whose one row, one column is a JSON array; returns it parsed. */
static json_t *query_json(ap_store *s, const char *sql, int nparams, const char *const *params,
                          const char *what, char *err, size_t errsz) {
    if (store_connect(s, err, errsz))
        return NULL;
    PGresult *res = PQexecParams(s->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    json_t *rows = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        ap_fail(AP_ERR_PG, err, errsz, "%s failed: %s", what, PQresultErrorMessage(res));
    else if (!(rows = json_loads(PQgetvalue(res, 0, 0), 0, NULL)))
        ap_fail(AP_ERR_PG, err, errsz, "%s: unreadable answer", what);
    PQclear(res);
    return rows;
}

json_t *ap_store_prepare(ap_store *s, const json_t *items, const ap_store_text *payloads, char *err,
                         size_t errsz) {
    if (batch_text(&s->batch, items, payloads)) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    const char *params[1] = {s->batch.s};
    return query_json(s,
                      "SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.ord), '[]') "
                      "FROM ap_prepare_batch($1::jsonb) p",
                      1, params, "preparing live requests", err, errsz);
}

json_t *ap_store_take_due(ap_store *s, int n, int lease_s, char *err, size_t errsz) {
    char limit[16], lease[16];
    snprintf(limit, sizeof limit, "%d", n);
    snprintf(lease, sizeof lease, "%d", lease_s);
    const char *params[2] = {limit, lease};
    return query_json(s,
                      "SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]') "
                      "FROM ap_take_due($1::int, $2::int) d",
                      2, params, "taking due actions", err, errsz);
}

ap_status ap_store_alert(ap_store *s, const char *kind, const char *tenant, const char *subsystem,
                         const char *message, char *err, size_t errsz) {
    ap_status st = store_connect(s, err, errsz);
    if (st)
        return st;
    const char *params[] = {kind, tenant, subsystem, message};
    PGresult *res = PQexecParams(s->pg,
                                 "INSERT INTO alerts (kind, tenant_id, subsystem, message) "
                                 "VALUES ($1, $2, $3, $4)",
                                 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        st = ap_fail(AP_ERR_PG, err, errsz, "recording an alert failed: %s",
                     PQresultErrorMessage(res));
    PQclear(res);
    return st;
}

ap_status ap_store_ping(ap_store *s, char *err, size_t errsz) {
    ap_status st = store_connect(s, err, errsz);
    if (st)
        return st;
    PGresult *res = PQexec(s->pg, "SELECT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = ap_fail(AP_ERR_PG, err, errsz, "postgres: %s", PQerrorMessage(s->pg));
        PQfinish(s->pg);
        s->pg = NULL;
    }
    PQclear(res);
    return st;
}

void ap_store_free(ap_store *s) {
    if (!s)
        return;
    PQfinish(s->pg);
    free(s->dsn);
    free(s->batch.s);
    free(s);
}
