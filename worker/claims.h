/* claims.h — the guards every replica shares in Redis, one round trip a batch:
 *
 *   idempotency claims  "ap:idem:<key>" set with a lease: "claim:<worker>" while
 *                       an action executes (a crashed worker's claim expires
 *                       with its lease), then "done:<outcome>" for done_ttl_s
 *   rate limits         per tenant x subsystem, sliding windows of the tokens
 *                       taken (rate_limit_hourly per rate_limit_hour_s, and
 *                       daily likewise); one token per action, so a batch run
 *                       again takes none twice; an action that did not run
 *                       gives its token back
 *   circuit breakers    per tenant x subsystem: open when more than
 *                       breaker_failure_pct % of a full window of
 *                       breaker_window executions failed, or after
 *                       breaker_consecutive failures in a row; open until
 *                       reset by ops (actionpool-ctl breaker reset)
 *
 * take() claims, checks the breaker and takes tokens for a batch in one
 * script; what a batch's outcomes mean for the breakers, and its finished
 * keys, travel with the next take (or flush). Redis is the fast path;
 * Postgres' unique constraints remain the final guard. */
#ifndef AP_CLAIMS_H
#define AP_CLAIMS_H

#include "config.h"

typedef enum ap_claim {
    AP_CLAIM_OWNED, /* this worker holds the claim */
    AP_CLAIM_BUSY,  /* another worker holds a live claim */
    AP_CLAIM_DONE,  /* the key has finished; `outcome` says how */
} ap_claim;

/* One action as the guards see it. */
typedef struct ap_guard_item {
    const char *key;   /* idempotency key; borrowed */
    const char *scope; /* "<tenant>:<subsystem>", borrowed; NULL: no token, no breaker (dry runs) */
    ap_claim claim;    /* out */
    char outcome[32];  /* out, with AP_CLAIM_DONE */
    long wait_ms;      /* out, with AP_CLAIM_OWNED: 0 it may run (a token is taken); > 0 no
                        * token for this long; -1 its breaker is open */
} ap_guard_item;

/* How an admitted action went, for its token and its breaker. */
typedef enum ap_run {
    AP_RUN_NONE,   /* took no token */
    AP_RUN_OK,     /* executed */
    AP_RUN_FAILED, /* failed (transient): counts against the breaker */
    AP_RUN_HELD,   /* did not run (policy held it, a duplicate...): the token goes back */
} ap_run;

typedef struct ap_claims ap_claims;

/* Connects to cfg->redis_host:redis_port. Returns NULL with err set. */
ap_claims *ap_claims_new(const ap_config *cfg, char *err, size_t errsz);

/* Claims items[0..n) and admits those it owns (breaker, tokens), after
 * sending what ap_claims_finish queued. On AP_ERR_REDIS the connection is
 * dropped and re-made on the next call; queued finishes are kept. */
ap_status ap_claims_take(ap_claims *c, ap_guard_item *items, int n, char *err, size_t errsz);

/* Queues, for one owned item once its batch is durable, "done:<outcome>" (or
 * with outcome NULL, a release: after a dry run or a transient failure the key
 * may run later) and what `run` means for its token and breaker. */
ap_status ap_claims_finish(ap_claims *c, const ap_guard_item *item, const char *outcome,
                           ap_run run);

/* Sends what is queued now, or a PING when nothing is: AP_OK when Redis
 * answers. For idle turns of the main loop. */
ap_status ap_claims_flush(ap_claims *c, char *err, size_t errsz);

/* The scopes ("<tenant>:<subsystem>") whose breaker the last take or flush
 * opened; valid until the next call. */
int ap_claims_opened_count(const ap_claims *c);
const char *ap_claims_opened(const ap_claims *c, int i);

void ap_claims_free(ap_claims *c);

#endif
