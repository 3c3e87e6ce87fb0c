/* action.h — one optimization action: its JSON and the fields every stage reads. */
#ifndef AP_ACTION_H
#define AP_ACTION_H

#include <jansson.h>

#include "status.h"

#define AP_ID_MAX  64  /* action_id and tenant_id, in bytes */
#define AP_KEY_MAX 400 /* idempotency and partition keys */

/* An action as far as it could be read. `json` is owned; every string is
 * borrowed from it and NULL when absent or not a string. The action may still
 * be invalid: ap_validate says. */
typedef struct ap_action {
    json_t *json;
    const char *action_id;
    const char *tenant_id;
    const char *subsystem;
    const char *action_type;
    const char *entity_id;
    const char *field; /* proposed_change.field */
    const char *run_id;
    const char *created_at;
    char idempotency_key[AP_KEY_MAX]; /* tenant-scoped: "<tenant>:<key>" */
    char partition_key[AP_KEY_MAX];   /* "<tenant>:<entity>" */
    const char *text; /* the JSON text it was parsed from (borrowed), exactly as received */
    size_t text_len;
} ap_action;

/* The keys are unambiguous for valid actions only: ap_validate requires
 * tenant_id to match ^[A-Za-z0-9_.-]{1,64}$, so the first ':' of a key ends
 * the tenant and two tenants never share a key. A tenant_id with ':' ("a:b"
 * with key "c" and "a" with key "b:c" both give "a:b:c") is read here all the
 * same, so that the rejected action can be recorded, and must not get past
 * validation to claim a key. */

/* Takes `obj` (a reference is stolen) as an action. Fails with err set when it
 * is not an object with a string action_id and tenant_id of 1..AP_ID_MAX bytes:
 * such a message cannot be recorded as an action row. Any such tenant_id is
 * taken, valid or not (see above). On failure obj is released and `a` is
 * left empty. */
ap_status ap_action_from_json(ap_action *a, json_t *obj, char *err, size_t errsz);

/* Parses message bytes, then ap_action_from_json; a->text borrows `bytes`. */
ap_status ap_action_parse(ap_action *a, const char *bytes, size_t len, char *err, size_t errsz);

/* The value to apply: proposed_change.value, or {"variants": [...]} for an
 * experiment. A new reference the caller releases; NULL when there is none. */
json_t *ap_action_value(const ap_action *a);

/* Releases a->json; `a` may be zeroed. */
void ap_action_release(ap_action *a);

#endif
