/* claims.h — idempotency claims in Redis, shared by every worker.
 *
 * A claim is the key "ap:idem:<idempotency key>" set with NX and a lease:
 * "claim:<worker>" while an action executes (a crashed worker's claim expires
 * with its lease), then "done:<outcome>" for done_ttl_s. Redis is the fast
 * path; Postgres' unique constraints are the final guard. A whole batch of
 * claims, and the finishes of the batch before it, take one round trip. */
#ifndef AP_CLAIMS_H
#define AP_CLAIMS_H

#include "config.h"

typedef enum ap_claim {
    AP_CLAIM_OWNED, /* this worker holds the claim */
    AP_CLAIM_BUSY,  /* another worker holds a live claim */
    AP_CLAIM_DONE,  /* the key has finished; `outcome` says how */
} ap_claim;

typedef struct ap_claims ap_claims;

/* Connects to cfg->redis_host:redis_port. Returns NULL with err set. */
ap_claims *ap_claims_new(const ap_config *cfg, char *err, size_t errsz);

/* Claims each of keys[0..n), writing results[i] (and, for AP_CLAIM_DONE, the
 * recorded outcome into outcomes[i], at least 32 bytes each; may be NULL).
 * Finishes queued by ap_claims_finish are sent first in the same round trip.
 * On AP_ERR_REDIS the connection is dropped and re-made on the next call;
 * queued finishes are kept. */
ap_status ap_claims_take(ap_claims *c, const char *const *keys, int n, ap_claim *results,
                         char (*outcomes)[32], char *err, size_t errsz);

/* Queues "done:<outcome>" for key, sent with the next take or flush; with
 * outcome NULL the claim is released instead (the key may be executed later:
 * after a dry run, or a transient failure). */
ap_status ap_claims_finish(ap_claims *c, const char *key, const char *outcome);

/* Sends queued finishes now, or a PING when there are none: AP_OK when Redis
 * answers. For idle turns of the main loop. */
ap_status ap_claims_flush(ap_claims *c, char *err, size_t errsz);

void ap_claims_free(ap_claims *c);

#endif
