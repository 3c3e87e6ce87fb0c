#include "pg.h"

#include <stdio.h>
#include <string.h>

void ap_pg_one_line(char *s) {
    char *w = s;
    int space = 0;
    for (const char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r') {
            space = w != s;
            continue;
        }
        if (space)
            *w++ = ' ';
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
}

/* libpq's connection error as one line: its lines joined by "; ", without the
 * tab-indented hints ("Is the server running on that host...?"). */
static void conn_message(PGconn *conn, char *buf, size_t size) {
    const char *m = PQerrorMessage(conn);
    size_t n = 0;
    buf[0] = '\0';
    while (*m && n + 1 < size) {
        size_t len = strcspn(m, "\n");
        if (len && m[0] != '\t' && m[0] != ' ')
            n += (size_t)snprintf(buf + n, size - n, "%s%.*s", n ? "; " : "", (int)len, m);
        m += len + (m[len] == '\n');
    }
    if (n >= size)
        buf[size - 1] = '\0';
    ap_pg_one_line(buf); /* "FATAL:  database ..." */
}

PGconn *ap_pg_connect(const ap_config *cfg, ap_status *st, char *err, size_t errsz) {
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const values[] = {"10", "actionpool-ctl", cfg->pg_dsn, NULL};
    ap_status ignored;
    st = st ? st : &ignored;
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        *st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char why[512];
        conn_message(conn, why, sizeof why);
        *st = ap_fail(AP_ERR_IO, err, errsz, "cannot connect to postgres: %s", why);
        PQfinish(conn);
        return NULL;
    }
    *st = AP_OK;
    return conn;
}

PGresult *ap_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                      const char *what, char *err, size_t errsz) {
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType rs = PQresultStatus(res);
    if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK)
        return res;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char why[512];
    snprintf(why, sizeof why, "%s", primary ? primary : PQerrorMessage(conn));
    ap_pg_one_line(why);
    ap_fail(AP_ERR_PG, err, errsz, "%s: %s", what, why);
    PQclear(res);
    return NULL;
}
