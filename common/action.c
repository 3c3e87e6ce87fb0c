#include "action.h"

#include <string.h>

static const char *str(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

ap_status ap_action_from_json(ap_action *a, json_t *obj, char *err, size_t errsz) {
    memset(a, 0, sizeof *a);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return ap_fail(AP_ERR_INVALID, err, errsz, "not a JSON object");
    }
    const char *id = str(obj, "action_id"), *tenant = str(obj, "tenant_id");
    if (!id || !*id || strlen(id) > AP_ID_MAX || !tenant || !*tenant ||
        strlen(tenant) > AP_ID_MAX) {
        json_decref(obj);
        return ap_fail(AP_ERR_INVALID, err, errsz,
                       "'action_id' and 'tenant_id' must be strings of 1 to %d bytes", AP_ID_MAX);
    }
    a->json = obj;
    a->action_id = id;
    a->tenant_id = tenant;
    a->subsystem = str(obj, "owner_subsystem");
    a->action_type = str(obj, "action_type");
    a->entity_id = str(obj, "entity_id");
    a->field = str(json_object_get(obj, "proposed_change"), "field");
    a->run_id = str(obj, "run_id");
    a->created_at = str(obj, "created_at");

    const char *key = str(obj, "idempotency_key");
    if (key)
        snprintf(a->idempotency_key, sizeof a->idempotency_key, "%s:%s", tenant, key);
    else
        snprintf(a->idempotency_key, sizeof a->idempotency_key, "%s:%s:%s", tenant,
                 a->subsystem ? a->subsystem : "", id);
    snprintf(a->partition_key, sizeof a->partition_key, "%s:%s", tenant,
             a->entity_id ? a->entity_id : "");
    return AP_OK;
}

ap_status ap_action_parse(ap_action *a, const char *bytes, size_t len, char *err, size_t errsz) {
    json_error_t jerr;
    memset(a, 0, sizeof *a);
    json_t *obj = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return ap_fail(AP_ERR_INVALID, err, errsz, "not JSON: %s at byte %d", jerr.text,
                       jerr.position);
    ap_status st = ap_action_from_json(a, obj, err, errsz);
    if (!st) {
        a->text = bytes;
        a->text_len = len;
    }
    return st;
}

json_t *ap_action_value(const ap_action *a) {
    const json_t *change = json_object_get(a->json, "proposed_change");
    json_t *variants = json_object_get(change, "variants");
    if (a->action_type && !strcmp(a->action_type, "experiment") && variants)
        return json_pack("{s:O}", "variants", variants);
    return json_incref(json_object_get(change, "value"));
}

void ap_action_release(ap_action *a) {
    if (!a)
        return;
    json_decref(a->json);
    memset(a, 0, sizeof *a);
}
