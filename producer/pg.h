/* pg.h — Postgres for actionpool-ctl's commands: one connection per command, statements with text
 * parameters, and libpq's messages turned into one line for err.
 *
 * Status convention, the one actionpool-ctl turns into its exit code:
 *   AP_ERR_IO    Postgres cannot be reached
 *   AP_ERR_PG    a statement failed (e.g. the database is not migrated)
 *   AP_ERR_NOMEM out of memory */
#ifndef AP_PG_H
#define AP_PG_H

#include <libpq-fe.h>

#include "config.h"

/* Connects with cfg->pg_dsn (10 s connect timeout unless the DSN says
 * otherwise; application_name actionpool-ctl). Returns the connection, which
 * the caller PQfinish-es, or NULL with err set (AP_ERR_IO or AP_ERR_NOMEM,
 * returned in *st when st is not NULL). */
PGconn *ap_pg_connect(const ap_config *cfg, ap_status *st, char *err, size_t errsz);

/* Runs sql with nparams text parameters (each may be NULL: SQL NULL). Returns
 * the result, which the caller PQclear-s, or NULL with err set to "what:
 * <the server's message>" (status AP_ERR_PG). */
PGresult *ap_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                      const char *what, char *err, size_t errsz);

/* Rewrites s in place as one line: runs of white space become one space. */
void ap_pg_one_line(char *s);

#endif
