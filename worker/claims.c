#include "claims.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "ap:idem:"

typedef struct finish {
    char *key;
    char outcome[32];
} finish;

struct ap_claims {
    redisContext *redis; /* NULL while disconnected */
    char host[256];
    int port;
    char owner[256]; /* "claim:<worker>" */
    int lease_ms;
    int done_ttl_s;
    finish *finishes;
    int finish_count, finish_cap;
};

static ap_status claims_connect(ap_claims *c, char *err, size_t errsz) {
    if (c->redis)
        return AP_OK;
    struct timeval timeout = {5, 0};
    c->redis = redisConnectWithTimeout(c->host, c->port, timeout);
    if (!c->redis || c->redis->err) {
        ap_fail(AP_ERR_REDIS, err, errsz, "cannot connect to redis at %s:%d: %s", c->host, c->port,
                c->redis ? c->redis->errstr : "out of memory");
        redisFree(c->redis);
        c->redis = NULL;
        return AP_ERR_REDIS;
    }
    redisSetTimeout(c->redis, timeout);
    return AP_OK;
}

static ap_status claims_broken(ap_claims *c, char *err, size_t errsz, const char *what) {
    ap_fail(AP_ERR_REDIS, err, errsz, "redis %s: %s", what,
            c->redis && c->redis->err ? c->redis->errstr : "unexpected reply");
    redisFree(c->redis);
    c->redis = NULL;
    return AP_ERR_REDIS;
}

ap_claims *ap_claims_new(const ap_config *cfg, char *err, size_t errsz) {
    ap_claims *c = calloc(1, sizeof *c);
    if (!c) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    snprintf(c->host, sizeof c->host, "%s", cfg->redis_host);
    c->port = cfg->redis_port;
    snprintf(c->owner, sizeof c->owner, "claim:%s", cfg->worker_id);
    c->lease_ms = cfg->claim_lease_ms;
    c->done_ttl_s = cfg->done_ttl_s;
    if (claims_connect(c, err, errsz)) {
        free(c);
        return NULL;
    }
    return c;
}

/* Appends the queued finishes to the pipeline; returns how many. */
static int append_finishes(ap_claims *c) {
    char value[64];
    for (int i = 0; i < c->finish_count; i++) {
        if (!c->finishes[i].outcome[0]) { /* released */
            redisAppendCommand(c->redis, "DEL " KEY_PREFIX "%s", c->finishes[i].key);
            continue;
        }
        snprintf(value, sizeof value, "done:%s", c->finishes[i].outcome);
        redisAppendCommand(c->redis, "SET " KEY_PREFIX "%s %s EX %d", c->finishes[i].key, value,
                           c->done_ttl_s);
    }
    return c->finish_count;
}

/* Reads the replies of `count` finishes and forgets them once all arrived. */
static ap_status read_finishes(ap_claims *c, int count, char *err, size_t errsz) {
    for (int i = 0; i < count; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c->redis, (void **)&r) != REDIS_OK)
            return claims_broken(c, err, errsz, "finish");
        freeReplyObject(r);
    }
    for (int i = 0; i < c->finish_count; i++)
        free(c->finishes[i].key);
    c->finish_count = 0;
    return AP_OK;
}

ap_status ap_claims_take(ap_claims *c, const char *const *keys, int n, ap_claim *results,
                         char (*outcomes)[32], char *err, size_t errsz) {
    ap_status st = claims_connect(c, err, errsz);
    if (st)
        return st;
    int finishes = append_finishes(c);
    for (int i = 0; i < n; i++) /* SET NX GET: claims, or returns who holds the key */
        redisAppendCommand(c->redis, "SET " KEY_PREFIX "%s %s NX PX %d GET", keys[i], c->owner,
                           c->lease_ms);
    if ((st = read_finishes(c, finishes, err, errsz)))
        return st;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c->redis, (void **)&r) != REDIS_OK)
            return claims_broken(c, err, errsz, "claim");
        if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_STRING && !strcmp(r->str, c->owner))) {
            results[i] = AP_CLAIM_OWNED;
        } else if (r->type == REDIS_REPLY_STRING && !strncmp(r->str, "done:", 5)) {
            results[i] = AP_CLAIM_DONE;
            if (outcomes)
                snprintf(outcomes[i], 32, "%s", r->str + 5);
        } else if (r->type == REDIS_REPLY_STRING) {
            results[i] = AP_CLAIM_BUSY;
        } else {
            ap_fail(AP_ERR_REDIS, err, errsz, "redis claim: %s",
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
            redisFree(c->redis);
            c->redis = NULL;
            return AP_ERR_REDIS;
        }
        freeReplyObject(r);
    }
    return AP_OK;
}

ap_status ap_claims_finish(ap_claims *c, const char *key, const char *outcome) {
    if (c->finish_count == c->finish_cap) {
        int cap = c->finish_cap ? c->finish_cap * 2 : 512;
        finish *grown = realloc(c->finishes, (size_t)cap * sizeof *grown);
        if (!grown)
            return AP_ERR_NOMEM;
        c->finishes = grown;
        c->finish_cap = cap;
    }
    finish *f = &c->finishes[c->finish_count];
    if (!(f->key = strdup(key)))
        return AP_ERR_NOMEM;
    snprintf(f->outcome, sizeof f->outcome, "%s", outcome ? outcome : "");
    c->finish_count++;
    return AP_OK;
}

ap_status ap_claims_flush(ap_claims *c, char *err, size_t errsz) {
    ap_status st = claims_connect(c, err, errsz);
    if (st)
        return st;
    if (c->finish_count)
        return read_finishes(c, append_finishes(c), err, errsz);
    redisReply *r = redisCommand(c->redis, "PING");
    if (!r)
        return claims_broken(c, err, errsz, "ping");
    freeReplyObject(r);
    return AP_OK;
}

void ap_claims_free(ap_claims *c) {
    if (!c)
        return;
    for (int i = 0; i < c->finish_count; i++)
        free(c->finishes[i].key);
    free(c->finishes);
    redisFree(c->redis);
    free(c);
}
