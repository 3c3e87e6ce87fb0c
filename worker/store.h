/* store.h — the worker's Postgres side: one statement per batch records every
 * outcome and applies the executed changes to entity_state atomically
 * (ap_record_batch in schemas/sql), so the effect is exactly once. */
#ifndef AP_STORE_H
#define AP_STORE_H

#include <jansson.h>

#include "action.h"
#include "config.h"

typedef struct ap_store ap_store;

/* Connects with cfg->pg_dsn. cfg is borrowed and must outlive the store: the
 * worker's id, quiet period and guardrail settings go into every item.
 * Returns NULL with err set. */
ap_store *ap_store_new(const ap_config *cfg, char *err, size_t errsz);

/* One item of ap_record_batch (schemas/sql/005): an action and what the worker
 * made of it so far. The store writes it as the JSON object that function
 * reads, the action's text as its "payload", exactly as received. */
typedef struct ap_record {
    int ord;                 /* the message's index in its batch */
    const ap_action *action; /* borrowed; of an invalid one, only the members sure to be sound */
    const char *reason;      /* invalid: why (status "rejected"); NULL: the action is valid */
    const char *status; /* "executed", "dry_run", "rejected", "retry_scheduled", "dead_lettered" */
    const char *topic;  /* where the message came from */
    int partition;
    long long offset;
    /* Valid actions only: */
    int attempt; /* 0 from a main topic, n from retry topic n */
    int replay;  /* republished from the DLQ */
    int tier, tier1_eligible;
    int guarded;        /* the field is under the budget guardrail */
    const char *target; /* "postgres", or "http" for a live target */
    const char *wait; /* NULL, or why it may not run now: "rate_limit", "breaker_open", "behind" */
    long wait_ms;     /* rate_limit: until a token frees */
    json_t *prepared; /* live targets (http_stage.h): owned, NULL when not set */
    json_t *http;
    /* Set by ap_store_record: the status recorded, "duplicate" or "redelivered". */
    char outcome[32];
} ap_record;

/* Records recs[0..n) (sorted by ord) in one transaction and sets each one's
 * outcome. On AP_ERR_PG nothing was recorded and the connection is reset on
 * the next call. */
ap_status ap_store_record(ap_store *s, ap_record *const *recs, int n, char *err, size_t errsz);

/* For records (sorted by ord) about to be sent to a live target: what
 * applying each would do (ap_prepare_batch in schemas/sql). Returns a new
 * JSON array, one object per record in the order of their ords, with members
 * ord, known, field, value, failure, why, output (JSON null when SQL NULL),
 * that the caller releases; NULL with err set on failure. */
json_t *ap_store_prepare(ap_store *s, ap_record *const *recs, int n, char *err, size_t errsz);

/* Leases up to n due waiting actions (ap_take_due: the oldest of each
 * entity) for lease_s seconds. Returns a new JSON array of {action_pk,
 * subsystem, partition_key, payload} the caller releases and publishes again;
 * NULL with err set on failure. */
json_t *ap_store_take_due(ap_store *s, int n, int lease_s, char *err, size_t errsz);

/* Records an alert row (kind, tenant, subsystem may be NULL). */
ap_status ap_store_alert(ap_store *s, const char *kind, const char *tenant, const char *subsystem,
                         const char *message, char *err, size_t errsz);

/* A round trip (reconnecting when needed): AP_OK when Postgres answers. */
ap_status ap_store_ping(ap_store *s, char *err, size_t errsz);

void ap_store_free(ap_store *s);

#endif
