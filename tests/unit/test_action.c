/* test_action.c — reading an action: identity, the idempotency key
 * ("<tenant>:<explicit key>" or "<tenant>:<subsystem>:<action_id>"), the
 * partition key ("<tenant>:<entity>"), the value, and what cannot be read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "unit.h"

static const char full_action[] =
    "{\"action_id\":\"a-1\",\"tenant_id\":\"acme\",\"owner_subsystem\":\"campaigns\","
    "\"action_type\":\"config_change\",\"entity_id\":\"cmp-1001\","
    "\"proposed_change\":{\"field\":\"budget_daily\",\"value\":1250},"
    "\"run_id\":\"run-7\",\"created_at\":\"2024-06-15T08:00:00Z\"}";

/* Parses a NUL-terminated text; returns the status, with err filled. */
static ap_status parse(ap_action *a, const char *text, char *err, size_t errsz) {
    err[0] = '\0';
    return ap_action_parse(a, text, strlen(text), err, errsz);
}

static void action_identity(void) {
    ap_action a;
    char err[256];
    if (!CHECK_INT_EQ(parse(&a, full_action, err, sizeof err), AP_OK))
        return;
    CHECK_STR_EQ(a.action_id, "a-1");
    CHECK_STR_EQ(a.tenant_id, "acme");
    CHECK_STR_EQ(a.subsystem, "campaigns");
    CHECK_STR_EQ(a.action_type, "config_change");
    CHECK_STR_EQ(a.entity_id, "cmp-1001");
    CHECK_STR_EQ(a.field, "budget_daily");
    CHECK_STR_EQ(a.run_id, "run-7");
    CHECK_STR_EQ(a.created_at, "2024-06-15T08:00:00Z");
    /* No explicit key: derived from tenant, subsystem and action_id. */
    CHECK_STR_EQ(a.idempotency_key, "acme:campaigns:a-1");
    CHECK_STR_EQ(a.partition_key, "acme:cmp-1001");
    /* Its text is the message's own bytes, stored as received. */
    CHECK(a.text == full_action && a.text_len == sizeof full_action - 1);
    ap_action_release(&a);
    CHECK(a.json == NULL && a.action_id == NULL);
    ap_action_release(&a); /* twice is harmless */
    ap_action_release(NULL);
}

static void action_explicit_idempotency_key(void) {
    ap_action a, b;
    char err[256];
    if (!CHECK_INT_EQ(parse(&a,
                            "{\"action_id\":\"a-1\",\"tenant_id\":\"acme\",\"idempotency_key\":"
                            "\"budget/cmp-1001/2024-06-15\",\"owner_subsystem\":\"campaigns\","
                            "\"entity_id\":\"cmp-1001\"}",
                            err, sizeof err),
                      AP_OK))
        return;
    CHECK_STR_EQ(a.idempotency_key, "acme:budget/cmp-1001/2024-06-15");
    CHECK_STR_EQ(a.partition_key, "acme:cmp-1001");
    /* The same explicit key of another tenant is another key. */
    if (CHECK_INT_EQ(parse(&b,
                           "{\"action_id\":\"a-9\",\"tenant_id\":\"globex\",\"idempotency_key\":"
                           "\"budget/cmp-1001/2024-06-15\",\"owner_subsystem\":\"campaigns\"}",
                           err, sizeof err),
                     AP_OK)) {
        CHECK_STR_EQ(b.idempotency_key, "globex:budget/cmp-1001/2024-06-15");
        CHECK(strcmp(a.idempotency_key, b.idempotency_key) != 0);
        ap_action_release(&b);
    }
    /* The same explicit key with another action_id is the same key: a duplicate. */
    if (CHECK_INT_EQ(parse(&b,
                           "{\"action_id\":\"a-2\",\"tenant_id\":\"acme\",\"idempotency_key\":"
                           "\"budget/cmp-1001/2024-06-15\",\"owner_subsystem\":\"crm\"}",
                           err, sizeof err),
                     AP_OK)) {
        CHECK_STR_EQ(b.idempotency_key, a.idempotency_key);
        ap_action_release(&b);
    }
    ap_action_release(&a);
}

static void action_derived_keys_without_members(void) {
    ap_action a;
    char err[256];
    /* Only the identity: the rest is for ap_validate to refuse. */
    if (!CHECK_INT_EQ(parse(&a, "{\"action_id\":\"a-1\",\"tenant_id\":\"acme\"}", err, sizeof err),
                      AP_OK))
        return;
    CHECK(a.subsystem == NULL && a.action_type == NULL && a.entity_id == NULL);
    CHECK(a.field == NULL && a.run_id == NULL && a.created_at == NULL);
    CHECK_STR_EQ(a.idempotency_key, "acme::a-1");
    CHECK_STR_EQ(a.partition_key, "acme:");
    ap_action_release(&a);
    /* Members of the wrong type read as absent. */
    if (!CHECK_INT_EQ(parse(&a,
                            "{\"action_id\":\"a-1\",\"tenant_id\":\"acme\",\"owner_subsystem\":5,"
                            "\"entity_id\":[],\"proposed_change\":\"x\",\"idempotency_key\":7}",
                            err, sizeof err),
                      AP_OK))
        return;
    CHECK(a.subsystem == NULL && a.entity_id == NULL && a.field == NULL);
    CHECK_STR_EQ(a.idempotency_key, "acme::a-1");
    ap_action_release(&a);
}

/* Parsing fails with AP_ERR_INVALID, an error containing `want`, and `a` empty. */
static void parse_error_at(const char *file, int line, const char *text, size_t len,
                           const char *want) {
    ap_action a;
    char err[256] = "";
    ap_status st = ap_action_parse(&a, text, len, err, sizeof err);
    unit_check(file, line, st == AP_ERR_INVALID, "%.*s: status %d", (int)len, text, st);
    unit_check(file, line, strstr(err, want) != NULL, "%.*s: error does not say '%s': %s", (int)len,
               text, want, err);
    unit_check(file, line, a.json == NULL && a.action_id == NULL && !a.idempotency_key[0],
               "%.*s: the action is not left empty", (int)len, text);
    ap_action_release(&a);
}

#define PARSE_ERROR(text, want) parse_error_at(__FILE__, __LINE__, text, strlen(text), want)

static void action_parse_errors(void) {
    char id64[65], id65[66], text[256];
    memset(id64, 'i', 64), id64[64] = '\0';
    memset(id65, 'i', 65), id65[65] = '\0';

    PARSE_ERROR("", "not JSON");
    PARSE_ERROR("{\"action_id\":", "not JSON");
    PARSE_ERROR("{\"action_id\":\"a-1\",\"tenant_id\":\"acme\"} trailing", "not JSON");
    PARSE_ERROR("{\"action_id\":\"a\",\"action_id\":\"b\",\"tenant_id\":\"acme\"}", "duplicate");
    PARSE_ERROR("\xff\xfe{}", "not JSON");
    PARSE_ERROR("[{\"action_id\":\"a-1\",\"tenant_id\":\"acme\"}]", "not a JSON object");
    PARSE_ERROR("{\"tenant_id\":\"acme\"}", "'action_id' and 'tenant_id'");
    PARSE_ERROR("{\"action_id\":\"a-1\"}", "'action_id' and 'tenant_id'");
    PARSE_ERROR("{\"action_id\":\"\",\"tenant_id\":\"acme\"}", "'action_id' and 'tenant_id'");
    PARSE_ERROR("{\"action_id\":17,\"tenant_id\":\"acme\"}", "'action_id' and 'tenant_id'");
    PARSE_ERROR("{\"action_id\":\"a-1\",\"tenant_id\":null}", "'action_id' and 'tenant_id'");
    snprintf(text, sizeof text, "{\"action_id\":\"%s\",\"tenant_id\":\"acme\"}", id65);
    PARSE_ERROR(text, "1 to 64 bytes");
    snprintf(text, sizeof text, "{\"action_id\":\"a-1\",\"tenant_id\":\"%s\"}", id65);
    PARSE_ERROR(text, "1 to 64 bytes");

    /* Any tenant_id of 1..64 bytes is read, even one ap_validate refuses
     * ("acme:eu"): the rejected action must still be recordable. */
    ap_action bad;
    char bad_err[256];
    if (CHECK_INT_EQ(parse(&bad,
                           "{\"action_id\":\"a-1\",\"tenant_id\":\"acme:eu\","
                           "\"owner_subsystem\":\"crm\",\"entity_id\":\"seq-1\"}",
                           bad_err, sizeof bad_err),
                     AP_OK)) {
        CHECK_STR_EQ(bad.tenant_id, "acme:eu");
        CHECK_STR_EQ(bad.idempotency_key, "acme:eu:crm:a-1");
        ap_action_release(&bad);
    }

    /* 64 bytes is still an id. */
    ap_action a;
    char err[256];
    snprintf(text, sizeof text, "{\"action_id\":\"%s\",\"tenant_id\":\"%s\"}", id64, id64);
    if (CHECK_INT_EQ(parse(&a, text, err, sizeof err), AP_OK)) {
        CHECK_INT_EQ(strlen(a.action_id), 64);
        CHECK_INT_EQ(strlen(a.idempotency_key), 64 + 2 + 64);
        ap_action_release(&a);
    }
}

static void action_parse_reads_len_bytes(void) {
    /* The message need not be NUL-terminated: only len bytes count. */
    char buf[sizeof full_action + 8];
    ap_action a;
    char err[256] = "";
    memcpy(buf, full_action, sizeof full_action - 1);
    memcpy(buf + sizeof full_action - 1, "GARBAGE!", 8);
    if (CHECK_INT_EQ(ap_action_parse(&a, buf, sizeof full_action - 1, err, sizeof err), AP_OK)) {
        CHECK_STR_EQ(a.action_id, "a-1");
        ap_action_release(&a);
    }
    /* Fewer bytes than the object: not JSON. */
    parse_error_at(__FILE__, __LINE__, full_action, 20, "not JSON");
}

static void action_from_json_ownership(void) {
    ap_action a;
    char err[256];
    json_t *obj =
        json_pack("{s:s, s:s, s:s}", "action_id", "a-1", "tenant_id", "acme", "entity_id", "cmp-1");
    json_incref(obj); /* one reference for the action, one kept here */
    if (CHECK_INT_EQ(ap_action_from_json(&a, obj, err, sizeof err), AP_OK)) {
        CHECK(a.json == obj);
        CHECK_INT_EQ(obj->refcount, 2);
        ap_action_release(&a);
        CHECK_INT_EQ(obj->refcount, 1);
    }
    /* On failure the stolen reference is released too. */
    json_t *bad = json_pack("{s:i}", "action_id", 1);
    json_incref(bad);
    CHECK_INT_EQ(ap_action_from_json(&a, bad, err, sizeof err), AP_ERR_INVALID);
    CHECK_INT_EQ(bad->refcount, 1);
    CHECK(a.json == NULL);
    json_decref(bad);
    json_t *array = json_array();
    CHECK_INT_EQ(ap_action_from_json(&a, array, err, sizeof err), AP_ERR_INVALID);
    CHECK_STR_CONTAINS(err, "not a JSON object");
    CHECK_INT_EQ(ap_action_from_json(&a, NULL, err, sizeof err), AP_ERR_INVALID);
    json_decref(obj);
}

/* ap_action_value of `text` dumped compactly, or "NULL". */
static void value_at(const char *file, int line, const char *text, const char *want) {
    ap_action a;
    char err[256];
    if (!unit_check(file, line, parse(&a, text, err, sizeof err) == AP_OK, "%s: %s", text, err))
        return;
    json_t *value = ap_action_value(&a);
    char *got = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    unit_check_str_eq(file, line, "ap_action_value()", "expected", got ? got : "NULL", want);
    free(got);
    json_decref(value);
    ap_action_release(&a);
}

#define VALUE_IS(text, want) value_at(__FILE__, __LINE__, text, want)

static void action_value(void) {
    VALUE_IS(full_action, "1250");
    VALUE_IS("{\"action_id\":\"a\",\"tenant_id\":\"t\",\"action_type\":\"pause\","
             "\"proposed_change\":{\"field\":\"status\",\"value\":\"paused\"}}",
             "\"paused\"");
    VALUE_IS("{\"action_id\":\"a\",\"tenant_id\":\"t\",\"action_type\":\"config_change\","
             "\"proposed_change\":{\"field\":\"target_segment\",\"value\":{\"include\":[\"s\"]}}}",
             "{\"include\":[\"s\"]}");
    /* An experiment's value is its variants. */
    VALUE_IS("{\"action_id\":\"a\",\"tenant_id\":\"t\",\"action_type\":\"experiment\","
             "\"proposed_change\":{\"field\":\"status\",\"variants\":[{\"name\":\"a\","
             "\"value\":\"paused\",\"weight\":100}]}}",
             "{\"variants\":[{\"name\":\"a\",\"value\":\"paused\",\"weight\":100}]}");
    /* Variants count only for experiments. */
    VALUE_IS("{\"action_id\":\"a\",\"tenant_id\":\"t\",\"action_type\":\"config_change\","
             "\"proposed_change\":{\"field\":\"status\",\"value\":\"paused\",\"variants\":[]}}",
             "\"paused\"");
    /* No value: a revert that restores the rollback data. */
    VALUE_IS("{\"action_id\":\"a\",\"tenant_id\":\"t\",\"action_type\":\"revert\","
             "\"proposed_change\":{\"field\":\"status\"}}",
             "NULL");
    VALUE_IS("{\"action_id\":\"a\",\"tenant_id\":\"t\"}", "NULL");
    VALUE_IS("{\"action_id\":\"a\",\"tenant_id\":\"t\",\"proposed_change\":{\"field\":\"f\","
             "\"value\":null}}",
             "null");
}

const unit_test unit_action_tests[] = {
    UNIT_TEST(action_identity),
    UNIT_TEST(action_explicit_idempotency_key),
    UNIT_TEST(action_derived_keys_without_members),
    UNIT_TEST(action_parse_errors),
    UNIT_TEST(action_parse_reads_len_bytes),
    UNIT_TEST(action_from_json_ownership),
    UNIT_TEST(action_value),
    {0},
};
