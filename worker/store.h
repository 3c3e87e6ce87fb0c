/* store.h — the worker's Postgres side: one statement per batch records every
 * outcome and applies the executed changes to entity_state atomically
 * (ap_record_batch in schemas/sql), so the effect is exactly once. */
#ifndef AP_STORE_H
#define AP_STORE_H

#include <jansson.h>

#include "config.h"

typedef struct ap_store ap_store;

/* Connects with cfg->pg_dsn. Returns NULL with err set. */
ap_store *ap_store_new(const ap_config *cfg, char *err, size_t errsz);

/* The JSON text of an item's action, sent as the item's "payload" member as
 * it is, unparsed: the action is stored exactly as received. */
typedef struct ap_store_text {
    const char *json;
    size_t len;
} ap_store_text;

/* Records `items` (the ap_record_batch item array without "payload"s;
 * borrowed), with payloads[k] the payload of items[k], in one transaction. outcomes[i] (at least 32
 * bytes each) receives the outcome of the item whose "ord" is i: the status recorded, "duplicate"
 * or "redelivered". On AP_ERR_PG nothing was recorded and the connection is reset on the next call.
 */
ap_status ap_store_record(ap_store *s, const json_t *items, const ap_store_text *payloads,
                          char (*outcomes)[32], int n, char *err, size_t errsz);

/* For items about to be sent to a live target (with their payloads, as for
 * ap_store_record): what applying each would do (ap_prepare_batch in schemas/sql). Returns a new
 * JSON array, one object per item with members ord, known, field, value, failure, why, output (JSON
 * null when SQL NULL), that the caller releases; NULL with err set on failure. */
json_t *ap_store_prepare(ap_store *s, const json_t *items, const ap_store_text *payloads, char *err,
                         size_t errsz);

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
