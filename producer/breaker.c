#include "breaker.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define OPEN_PREFIX "ap:breaker:open:"

static redisContext *redis_connect(const ap_config *cfg, char *err, size_t errsz) {
    struct timeval timeout = {5, 0};
    redisContext *r = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, timeout);
    if (!r || r->err) {
        ap_fail(AP_ERR_REDIS, err, errsz, "cannot connect to redis at %s:%d: %s", cfg->redis_host,
                cfg->redis_port, r ? r->errstr : "out of memory");
        redisFree(r);
        return NULL;
    }
    return r;
}

ap_status ap_breaker_status(const ap_config *cfg, FILE *out, char *err, size_t errsz) {
    redisContext *r = redis_connect(cfg, err, errsz);
    if (!r)
        return AP_ERR_REDIS;
    ap_status st = AP_OK;
    PGconn *pg = ap_pg_connect(cfg, &st, err, errsz);
    int open = 0;
    char cursor[32] = "0";
    do {
        redisReply *scan = redisCommand(r, "SCAN %s MATCH " OPEN_PREFIX "* COUNT 1000", cursor);
        if (!scan || scan->type != REDIS_REPLY_ARRAY || scan->elements != 2) {
            st = ap_fail(AP_ERR_REDIS, err, errsz, "redis scan: %s",
                         scan ? "unexpected reply" : r->errstr);
            freeReplyObject(scan);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", scan->element[0]->str);
        for (size_t i = 0; i < scan->element[1]->elements; i++) {
            const char *key = scan->element[1]->element[i]->str;
            const char *scope = key + strlen(OPEN_PREFIX);
            redisReply *why = redisCommand(r, "GET %s", key);
            long waiting = 0;
            if (pg) {
                const char *params[] = {scope};
                PGresult *res = ap_pg_query(
                    pg,
                    "SELECT count(*) FROM actions WHERE status = 'received' "
                    "AND wait_reason = 'breaker_open' AND tenant_id || ':' || subsystem = $1",
                    1, params, "counting waiting actions", err, errsz);
                waiting = res ? atol(PQgetvalue(res, 0, 0)) : 0;
                PQclear(res);
            }
            fprintf(out, "%s open: %s; %ld actions wait\n", scope,
                    why && why->type == REDIS_REPLY_STRING ? why->str : "?", waiting);
            freeReplyObject(why);
            open++;
        }
        freeReplyObject(scan);
    } while (strcmp(cursor, "0"));
    if (!st && !open)
        fprintf(out, "no circuit breaker is open\n");
    PQfinish(pg);
    redisFree(r);
    return st == AP_ERR_IO ? AP_OK : st; /* Postgres only adds the counts */
}

ap_status ap_breaker_reset(const ap_config *cfg, const char *tenant, const char *subsystem,
                           const char *by, char *err, size_t errsz) {
    ap_status st = AP_OK;
    char scope[256];
    snprintf(scope, sizeof scope, "%s:%s", tenant, subsystem);
    redisContext *r = redis_connect(cfg, err, errsz);
    if (!r)
        return AP_ERR_REDIS;
    redisReply *del = redisCommand(r, "DEL " OPEN_PREFIX "%s ap:breaker:state:%s", scope, scope);
    if (!del || del->type != REDIS_REPLY_INTEGER) {
        st = ap_fail(AP_ERR_REDIS, err, errsz, "redis: %s", del ? "unexpected reply" : r->errstr);
        goto out;
    }
    PGconn *pg = ap_pg_connect(cfg, &st, err, errsz);
    if (!pg)
        goto out;
    const char *params[] = {tenant, subsystem, by};
    static const char *const sqls[] = {
        "UPDATE actions SET not_before = now() WHERE status = 'received' "
        "AND wait_reason = 'breaker_open' AND tenant_id = $1 AND subsystem = $2",
        "INSERT INTO alerts (kind, tenant_id, subsystem, message) VALUES ('breaker_reset', $1, "
        "$2, 'circuit breaker of ' || $1 || ':' || $2 || ' reset by ' || $3)",
    };
    long resumed = 0;
    for (int i = 0; i < 2 && !st; i++) {
        PGresult *res = ap_pg_query(pg, sqls[i], i ? 3 : 2, params, "breaker reset", err, errsz);
        if (!res)
            st = AP_ERR_PG;
        else if (!i)
            resumed = atol(PQcmdTuples(res));
        PQclear(res);
    }
    PQfinish(pg);
    if (!st)
        printf("circuit breaker of %s reset by %s%s; %ld waiting actions resume\n", scope, by,
               del->integer ? "" : " (it was not open)", resumed);
out:
    freeReplyObject(del);
    redisFree(r);
    return st;
}
