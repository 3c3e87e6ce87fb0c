/* test_validate.c — ap_validate against schemas/executor_map.json: the
 * members every action has, the action-type × subsystem matrix, and every
 * field of every subsystem with values on both sides of each limit.
 *
 * Actions are written as compact JSON where ' stands for ", merged over a
 * valid base action (a campaigns config_change). Every rejection asserts that
 * exactly one violation came back, its field, its rule, and that its message
 * names what is wrong. Date rules compare with the fixed day TODAY. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "action.h"
#include "executor_map.h"
#include "kernel_output.h"
#include "unit.h"
#include "validate.h"

#define MAP_PATH  "schemas/executor_map.json"
#define TODAY     "2024-06-15"
#define YESTERDAY "2024-06-14"

/* Members replace the base's; a null member removes one. */
static const char base_action[] =
    "{'action_id':'a-1','tenant_id':'acme','owner_subsystem':'campaigns',"
    "'action_type':'config_change','entity_id':'cmp-1001',"
    "'proposed_change':{'field':'status','value':'running'},"
    "'created_at':'2024-06-15T08:00:00Z'}";

static ap_executor_map *loaded_map;

static void map_free(void) {
    ap_executor_map_free(loaded_map);
    loaded_map = NULL;
}

/* The executor map, loaded once per run (freed at exit); NULL with a failure
 * recorded when it cannot be loaded. */
static const ap_executor_map *test_map(const char *file, int line) {
    char err[512] = "";
    if (!loaded_map) {
        loaded_map = ap_executor_map_load(MAP_PATH, err, sizeof err);
        if (loaded_map)
            atexit(map_free);
    }
    unit_check(file, line, loaded_map != NULL,
               "cannot load " MAP_PATH " (run from the repository root): %s", err);
    return loaded_map;
}

/* Parses compact JSON (' for "); NULL with a failure recorded. */
static json_t *compact_json(const char *file, int line, const char *text) {
    json_error_t jerr;
    char *buf = strdup(text);
    if (!buf)
        return NULL;
    for (char *c = buf; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_t *j = json_loads(buf, JSON_REJECT_DUPLICATES, &jerr);
    unit_check(file, line, j != NULL, "broken test JSON: %s: %s", jerr.text, buf);
    free(buf);
    return j;
}

/* The base action with `overrides` merged in; a new reference, or NULL. */
static json_t *build_action(const char *file, int line, const char *overrides) {
    json_t *action = compact_json(file, line, base_action);
    json_t *over = compact_json(file, line, overrides);
    const char *key;
    json_t *value;
    if (!action || !unit_check(file, line, json_is_object(over), "overrides must be an object")) {
        json_decref(action);
        json_decref(over);
        return NULL;
    }
    json_object_foreach(over, key, value) {
        if (json_is_null(value))
            json_object_del(action, key);
        else
            json_object_set(action, key, value);
    }
    json_decref(over);
    return action;
}

/* Validates the action built from `overrides` into *v. Returns the number of
 * violations, -1 (failure recorded) when it could not be built. */
static int verdict_of(const char *file, int line, const char *overrides, ap_verdict *v) {
    const ap_executor_map *map = test_map(file, line);
    json_t *action = build_action(file, line, overrides);
    memset(v, 0, sizeof *v);
    if (!map || !action) {
        json_decref(action);
        return -1;
    }
    int n = ap_validate(map, action, TODAY, v);
    json_decref(action);
    return n;
}

static int verdict_fmt(const char *file, int line, ap_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int verdict_fmt(const char *file, int line, ap_verdict *v, const char *fmt, ...) {
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return verdict_of(file, line, text, v);
}

/* Checks that violation i of v is at `field`, broke `rule`, and that its
 * message contains `mention`. `what` says which action, for the report. */
static int violation_is(const char *file, int line, const ap_verdict *v, int i, const char *field,
                        const char *rule, const char *mention, const char *what) {
    const ap_violation *x = &v->items[i];
    int ok = !strcmp(x->field, field) && !strcmp(x->rule, rule) && strstr(x->message, mention);
    return unit_check(file, line, ok,
                      "%s: violation %d: expected %s: %s (mentioning '%s'), got %s: %s: %s", what,
                      i, field, rule, mention, x->field, x->rule, x->message);
}

/* Expects `text` to be valid (field NULL), or to break exactly one rule. */
static void expect_text(const char *file, int line, const char *field, const char *rule,
                        const char *mention, const char *text) {
    ap_verdict v;
    char got[2048];
    int n = verdict_of(file, line, text, &v);
    if (n < 0)
        return;
    ap_verdict_format(&v, got, sizeof got);
    if (!field) {
        unit_check(file, line, n == 0, "%s: expected valid, got %d violation(s): %s", text, n, got);
        return;
    }
    if (unit_check(file, line, n == 1, "%s: expected exactly %s: %s, got %d violation(s): %s", text,
                   field, rule, n, got))
        violation_is(file, line, &v, 0, field, rule, mention, text);
}

static void expect_fmt(const char *file, int line, const char *field, const char *rule,
                       const char *mention, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void expect_fmt(const char *file, int line, const char *field, const char *rule,
                       const char *mention, const char *fmt, ...) {
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    expect_text(file, line, field, rule, mention, text);
}

/* A config_change of `sub` setting `field` to `value` (compact JSON), with
 * `extra` members (",'guardrails':{...}" or ""). rule NULL: must pass. */
static void field_at(const char *file, int line, const char *sub, const char *field,
                     const char *value, const char *extra, const char *rule) {
    expect_fmt(file, line, rule ? "proposed_change.value" : NULL, rule, field,
               "{'owner_subsystem':'%s','proposed_change':{'field':'%s','value':%s}%s}", sub, field,
               value, extra);
}

#define VALID(...) expect_fmt(__FILE__, __LINE__, NULL, NULL, NULL, __VA_ARGS__)
#define INVALID(field, rule, mention, ...)                                                         \
    expect_fmt(__FILE__, __LINE__, field, rule, mention, __VA_ARGS__)
#define VERDICT(v, ...) verdict_fmt(__FILE__, __LINE__, v, __VA_ARGS__)
#define VIOLATION_IS(v, i, field, rule, mention)                                                   \
    violation_is(__FILE__, __LINE__, v, i, field, rule, mention, #v)
#define FIELD_OK(sub, field, value)        field_at(__FILE__, __LINE__, sub, field, value, "", NULL)
#define FIELD_BAD(sub, field, value, rule) field_at(__FILE__, __LINE__, sub, field, value, "", rule)
#define FIELD_OK_WITH(sub, field, value, extra)                                                    \
    field_at(__FILE__, __LINE__, sub, field, value, extra, NULL)
#define FIELD_BAD_WITH(sub, field, value, extra, rule)                                             \
    field_at(__FILE__, __LINE__, sub, field, value, extra, rule)

/* `unit` repeated n times; quoted: as a JSON string. The result lives in one
 * of a few rotating buffers, so a call can use several. */
static const char *repeat_impl(const char *unit, int n, int quoted) {
    static char bufs[4][1024];
    static int next;
    char *buf = bufs[next++ % 4];
    size_t len = 0, ulen = strlen(unit);
    if (quoted)
        buf[len++] = '\'';
    for (int i = 0; i < n && len + ulen + 2 < sizeof bufs[0]; i++, len += ulen)
        memcpy(buf + len, unit, ulen);
    if (quoted)
        buf[len++] = '\'';
    buf[len] = '\0';
    return buf;
}

static const char *repeat(const char *unit, int n) {
    return repeat_impl(unit, n, 0);
}

static const char *json_repeat(const char *unit, int n) {
    return repeat_impl(unit, n, 1);
}

/* ---- the members every action has ---- */

static void validate_base_action(void) {
    VALID("{}");
    /* Every optional member, well formed. */
    VALID("{'idempotency_key':'k-1','confidence':0.9,'estimated_impact':12.5,'tier':2,"
          "'current':'paused','guardrails':{'max_daily_spend':100},'dry_run':true,"
          "'reason':'why','run_id':'run-1'}");
    /* Members the schema does not name are left to the consumer. */
    VALID("{'planner_note':'x'}");
}

static void validate_not_an_object(void) {
    ap_verdict v;
    const ap_executor_map *map = test_map(__FILE__, __LINE__);
    if (!map)
        return;
    json_t *array = json_array();
    CHECK_INT_EQ(ap_validate(map, array, TODAY, &v), 1);
    VIOLATION_IS(&v, 0, "(action)", "type", "object");
    json_decref(array);
}

static void validate_required(void) {
    static const char *const members[] = {
        "action_id", "tenant_id",       "owner_subsystem", "action_type",
        "entity_id", "proposed_change", "created_at",
    };
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        INVALID(members[i], "required", members[i], "{'%s':null}", members[i]);

    INVALID("proposed_change.field", "required", "proposed_change.field",
            "{'proposed_change':{'value':'running'}}");
    INVALID("proposed_change.field", "required", "proposed_change.field",
            "{'proposed_change':{'field':'','value':'running'}}");
    INVALID("proposed_change.field", "required", "proposed_change.field",
            "{'proposed_change':{'field':7,'value':'running'}}");
    /* config_change, pause and scale need a value; the message names the field. */
    INVALID("proposed_change.value", "required", "status",
            "{'proposed_change':{'field':'status'}}");
    INVALID("proposed_change.value", "required", "max_touches",
            "{'owner_subsystem':'crm','proposed_change':{'field':'max_touches'}}");
    INVALID("proposed_change.value", "required", "capacity_per_rep",
            "{'owner_subsystem':'routing','action_type':'scale',"
            "'proposed_change':{'field':'capacity_per_rep'}}");
    INVALID("proposed_change", "type", "proposed_change", "{'proposed_change':'status=paused'}");
    INVALID("proposed_change", "type", "proposed_change", "{'proposed_change':[]}");
}

static void validate_identity_members(void) {
    /* action_id and tenant_id: strings of 1 to 64 bytes. */
    VALID("{'action_id':'%s'}", repeat("a", 64));
    INVALID("action_id", "type", "action_id", "{'action_id':'%s'}", repeat("a", 65));
    INVALID("action_id", "type", "action_id", "{'action_id':''}");
    INVALID("action_id", "type", "action_id", "{'action_id':17}");
    VALID("{'tenant_id':'%s'}", repeat("t", 64));
    INVALID("tenant_id", "type", "tenant_id", "{'tenant_id':'%s'}", repeat("t", 65));
    INVALID("tenant_id", "type", "tenant_id", "{'tenant_id':''}");
    INVALID("tenant_id", "type", "tenant_id", "{'tenant_id':['acme']}");
    /* ...and only of [A-Za-z0-9_.-]: a ':' would make "<tenant>:<key>" ambiguous. */
    VALID("{'tenant_id':'Acme_Corp.eu-1'}");
    INVALID("tenant_id", "format", "tenant_id", "{'tenant_id':'acme:eu'}");
    INVALID("tenant_id", "format", "acme eu", "{'tenant_id':'acme eu'}");
    INVALID("tenant_id", "format", "tenant_id", "{'tenant_id':'acme/eu'}");
    INVALID("tenant_id", "format", "tenant_id", "{'tenant_id':'acm\xc3\xa9'}");
    INVALID("tenant_id", "format", "tenant_id", "{'tenant_id':'%s:'}", repeat("t", 63));
    /* entity_id: 1 to 128. */
    VALID("{'entity_id':'%s'}", repeat("e", 128));
    INVALID("entity_id", "type", "entity_id", "{'entity_id':'%s'}", repeat("e", 129));
    INVALID("entity_id", "type", "entity_id", "{'entity_id':''}");
    INVALID("entity_id", "type", "entity_id", "{'entity_id':1001}");
    /* idempotency_key: optional, 1 to 200. */
    VALID("{'idempotency_key':'%s'}", repeat("k", 200));
    INVALID("idempotency_key", "type", "idempotency_key", "{'idempotency_key':'%s'}",
            repeat("k", 201));
    INVALID("idempotency_key", "type", "idempotency_key", "{'idempotency_key':''}");
    INVALID("idempotency_key", "type", "idempotency_key", "{'idempotency_key':42}");
    /* run_id: optional, 1 to 128. */
    VALID("{'run_id':'%s'}", repeat("r", 128));
    INVALID("run_id", "type", "run_id", "{'run_id':'%s'}", repeat("r", 129));
    INVALID("run_id", "type", "run_id", "{'run_id':7}");
    /* owner_subsystem and action_type must be strings. */
    INVALID("owner_subsystem", "type", "owner_subsystem", "{'owner_subsystem':1}");
    INVALID("owner_subsystem", "type", "owner_subsystem", "{'owner_subsystem':''}");
    INVALID("action_type", "type", "action_type", "{'action_type':true}");
}

/* Two tenants whose keys would be the same string: "a:b" with key "c" and
 * "a" with key "b:c". The reader takes both (the row is recorded), the
 * validator refuses the one whose tenant_id holds ':'. */
static void validate_tenant_keys_stay_apart(void) {
    static const char *const texts[2] = {
        "{'tenant_id':'a:b','idempotency_key':'c'}",
        "{'tenant_id':'a','idempotency_key':'b:c'}",
    };
    char keys[2][AP_KEY_MAX], err[256];
    int counts[2];
    for (int i = 0; i < 2; i++) {
        ap_action a;
        ap_verdict v;
        json_t *json = build_action(__FILE__, __LINE__, texts[i]);
        const ap_executor_map *map = test_map(__FILE__, __LINE__);
        keys[i][0] = '\0';
        counts[i] = -1;
        if (!json || !map) {
            json_decref(json);
            return;
        }
        counts[i] = ap_validate(map, json, TODAY, &v);
        if (i == 0 && CHECK_INT_EQ(counts[i], 1))
            VIOLATION_IS(&v, 0, "tenant_id", "format", "'a:b'");
        if (CHECK_INT_EQ(ap_action_from_json(&a, json, err, sizeof err), AP_OK)) {
            snprintf(keys[i], sizeof keys[i], "%s", a.idempotency_key);
            ap_action_release(&a);
        }
    }
    CHECK_STR_EQ(keys[0], "a:b:c");
    CHECK_STR_EQ(keys[1], "a:b:c");
    CHECK_INT_EQ(counts[1], 0);
}

static void validate_optional_members(void) {
    /* confidence: a number from 0 to 1. */
    VALID("{'confidence':0}");
    VALID("{'confidence':1}");
    VALID("{'confidence':0.71}");
    INVALID("confidence", "range", "confidence", "{'confidence':-0.01}");
    INVALID("confidence", "range", "confidence", "{'confidence':1.01}");
    INVALID("confidence", "range", "confidence", "{'confidence':'0.9'}");
    /* estimated_impact: any number. */
    VALID("{'estimated_impact':-250.5}");
    VALID("{'estimated_impact':0}");
    VALID("{'estimated_impact':1e9}");
    INVALID("estimated_impact", "range", "estimated_impact", "{'estimated_impact':'12 EUR'}");
    /* tier: 1, 2 or 3. */
    VALID("{'tier':1}");
    VALID("{'tier':3}");
    INVALID("tier", "enum", "tier", "{'tier':0}");
    INVALID("tier", "enum", "tier", "{'tier':4}");
    INVALID("tier", "enum", "tier", "{'tier':'1'}");
    INVALID("tier", "enum", "tier", "{'tier':1.5}");
    /* guardrails, dry_run, reason. */
    VALID("{'guardrails':{}}");
    INVALID("guardrails", "type", "guardrails", "{'guardrails':[5000]}");
    VALID("{'dry_run':false}");
    INVALID("dry_run", "type", "dry_run", "{'dry_run':'yes'}");
    INVALID("dry_run", "type", "dry_run", "{'dry_run':1}");
    VALID("{'reason':''}");
    INVALID("reason", "type", "reason", "{'reason':42}");
    /* current is anything the planner saw. */
    VALID("{'current':null}");
    VALID("{'current':{'a':[1,2]}}");
}

static void validate_created_at(void) {
    static const char *const good[] = {
        "2024-06-15T08:00:00Z",      "2024-06-15T08:00:00.123456Z", "2024-06-15t08:00:00z",
        "2024-06-15T08:00:00+02:00", "2024-06-15T08:00:00-05:30",   "2024-06-15T08:00:00.5+00:00",
        "2024-02-29T23:59:59Z",      "2024-06-30T23:59:60Z", /* a leap second */
        "2000-01-01T00:00:00Z",      "2024-06-15T08:00:00+23:59",   "2024-06-15T08:00:00-00:00",
    };
    static const char *const bad[] = {
        "2024-06-15",                /* a date */
        "2024-06-15T08:00:00",       /* no offset */
        "2024-06-15 08:00:00Z",      /* JSON Schema's date-time wants the T */
        "2024-06-15T08:00Z",         /* no seconds */
        "2024-06-15T8:00:00Z",       /* one-digit hour */
        "2024-13-01T00:00:00Z",      /* month 13 */
        "2024-02-30T00:00:00Z",      /* no such day */
        "2023-02-29T00:00:00Z",      /* not a leap year */
        "2024-06-15T24:00:00Z",      /* hour 24 */
        "2024-06-15T08:60:00Z",      /* minute 60 */
        "2024-06-15T08:00:61Z",      /* second 61 */
        "2024-06-15T08:00:00.Z",     /* empty fraction */
        "2024-06-15T08:00:00+0200",  /* offset without colon */
        "2024-06-15T08:00:00+02",    /* short offset */
        "2024-06-15T08:00:00Z junk", /* trailing text */
        "yesterday at noon",
        /* Every position is a digit: no signs, no spaces. */
        "2024-06-15T-1:00:00Z",
        "2024-06-15T 8: 0: 0Z",
        "+024-06-15T08:00:00Z",
        "2024-06-15T08:+1:00Z",
        "2024-06-15T08:00:-1Z",
        "2024-+6-15T08:00:00Z",
        "2024-06- 5T08:00:00Z",
        "2024-06-15T08:00:00+ 2:00",
        "2024-06-15T08:00:00+-2:00",
        /* Offsets are real: hours 00-23, minutes 00-59. */
        "2024-06-15T08:00:00+99:99",
        "2024-06-15T08:00:00+24:00",
        "2024-06-15T08:00:00-05:60",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        VALID("{'created_at':'%s'}", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        INVALID("created_at", "format", "created_at", "{'created_at':'%s'}", bad[i]);
    INVALID("created_at", "type", "created_at", "{'created_at':1718438400}");
    INVALID("created_at", "type", "created_at", "{'created_at':''}");
}

/* ---- routing: subsystem, type, field ---- */

static void validate_unknown_subsystem(void) {
    ap_verdict v;
    INVALID("owner_subsystem", "executor_map", "billing", "{'owner_subsystem':'billing'}");
    if (CHECK_INT_EQ(VERDICT(&v, "{'owner_subsystem':'billing'}"), 1))
        CHECK_STR_EQ(v.items[0].message, "owner_subsystem 'billing' has no registered executor");
    INVALID("owner_subsystem", "executor_map", "Campaigns", "{'owner_subsystem':'Campaigns'}");
    INVALID("owner_subsystem", "executor_map", "subsystem", "{'owner_subsystem':'ads'}");
}

static void validate_unknown_action_type(void) {
    INVALID("action_type", "enum", "delete", "{'action_type':'delete'}");
    INVALID("action_type", "enum", "action_type", "{'action_type':'Pause'}");
}

static void validate_unknown_field(void) {
    /* A field of another subsystem is unknown here. */
    INVALID("proposed_change.field", "field", "budget_daily",
            "{'owner_subsystem':'crm','proposed_change':{'field':'budget_daily','value':10}}");
    INVALID("proposed_change.field", "field", "color",
            "{'proposed_change':{'field':'color','value':'red'}}");
    INVALID("proposed_change.field", "field", "Status",
            "{'proposed_change':{'field':'Status','value':'paused'}}");
    /* Unknown for experiments and reverts too. */
    INVALID("proposed_change.field", "field", "trial_days",
            "{'owner_subsystem':'content','action_type':'revert','revert_of':'a-0',"
            "'proposed_change':{'field':'trial_days'}}");
}

/* A valid change per subsystem, for the matrix: one value, two for an
 * experiment's variants, and a field a scale action may change. */
static const struct {
    const char *subsystem, *field, *value, *value2, *scalable;
} samples[] = {
    {"campaigns", "status", "'paused'", "'running'", "budget_daily"},
    {"crm", "max_touches", "5", "8", "max_touches"},
    {"pricing", "discount_max_pct", "10", "20", "discount_max_pct"},
    {"routing", "capacity_per_rep", "50", "80", "capacity_per_rep"},
    {"content", "subject_line", "'Hello'", "'Hi there'", "subject_line"},
};

static const char *const action_types[] = {"config_change", "experiment", "pause", "scale",
                                           "revert"};

/* The matrix of DESIGN.md, rows in action_types order, columns in samples
 * order. Written out here, not read from the map: it is what the map must say. */
static const int accepted[5][5] = {
    /*                campaigns crm pricing routing content */
    /* config_change */ {1, 1, 1, 1, 1},
    /* experiment    */ {1, 1, 1, 0, 1},
    /* pause         */ {1, 1, 0, 0, 0},
    /* scale         */ {1, 0, 0, 1, 0},
    /* revert        */ {1, 1, 1, 1, 1},
};

static void validate_matrix(void) {
    char text[1024], what[128];
    int rejected = 0;
    for (int t = 0; t < 5; t++) {
        for (int s = 0; s < 5; s++) {
            const char *type = action_types[t];
            int scales = !strcmp(type, "scale") && accepted[t][s];
            if (!strcmp(type, "experiment"))
                snprintf(text, sizeof text,
                         "{'owner_subsystem':'%s','action_type':'%s','proposed_change':"
                         "{'field':'%s','variants':[{'name':'a','value':%s,'weight':50},"
                         "{'name':'b','value':%s,'weight':50}]}}",
                         samples[s].subsystem, type, samples[s].field, samples[s].value,
                         samples[s].value2);
            else if (!strcmp(type, "pause") && accepted[t][s]) /* sets status to paused */
                snprintf(text, sizeof text,
                         "{'owner_subsystem':'%s','action_type':'pause','proposed_change':"
                         "{'field':'status','value':'paused'}}",
                         samples[s].subsystem);
            else
                snprintf(text, sizeof text,
                         "{'owner_subsystem':'%s','action_type':'%s','proposed_change':"
                         "{'field':'%s','value':%s}%s%s}",
                         samples[s].subsystem, type,
                         scales ? samples[s].scalable : samples[s].field,
                         scales ? "100" : samples[s].value,
                         strcmp(type, "revert") ? "" : ",'revert_of':'a-0'",
                         scales ? ",'guardrails':{'max_daily_spend':1000}" : "");
            if (accepted[t][s]) {
                expect_text(__FILE__, __LINE__, NULL, NULL, NULL, text);
                continue;
            }
            rejected++;
            /* The message names the member, its value and the subsystem. */
            ap_verdict v;
            snprintf(what, sizeof what, "%s on %s", type, samples[s].subsystem);
            int n = verdict_of(__FILE__, __LINE__, text, &v);
            char want[128];
            snprintf(want, sizeof want, "action_type '%s' is not accepted by subsystem '%s'", type,
                     samples[s].subsystem);
            if (unit_check(__FILE__, __LINE__, n == 1, "%s: %s: expected 1 violation, got %d", what,
                           text, n) &&
                violation_is(__FILE__, __LINE__, &v, 0, "action_type", "matrix", type, what))
                CHECK_STR_EQ(v.items[0].message, want);
        }
    }
    /* experiment on routing; pause on pricing, routing, content; scale on crm,
     * pricing, content. */
    CHECK_INT_EQ(rejected, 7);
}

static void validate_matrix_still_checks_the_value(void) {
    /* An orphaned action with a bad value reports both. */
    ap_verdict v;
    if (CHECK_INT_EQ(VERDICT(&v, "{'owner_subsystem':'pricing','action_type':'pause',"
                                 "'proposed_change':{'field':'discount_max_pct','value':60}}"),
                     2)) {
        VIOLATION_IS(&v, 0, "action_type", "matrix", "pause");
        VIOLATION_IS(&v, 1, "proposed_change.value", "maximum", "discount_max_pct");
    }
}

static void validate_revert(void) {
    VALID("{'action_type':'revert','revert_of':'a-0'}");
    /* The value of a revert is optional: the worker restores the rollback data. */
    VALID("{'action_type':'revert','revert_of':'a-0','proposed_change':{'field':'status'}}");
    VALID("{'action_type':'revert','revert_of':'%s'}", repeat("r", 64));
    INVALID("revert_of", "required", "revert_of", "{'action_type':'revert'}");
    INVALID("revert_of", "type", "revert_of", "{'action_type':'revert','revert_of':''}");
    INVALID("revert_of", "type", "revert_of", "{'action_type':'revert','revert_of':'%s'}",
            repeat("r", 65));
    INVALID("revert_of", "type", "revert_of", "{'action_type':'revert','revert_of':12}");
    /* A value, when given, is checked by the field's rule. */
    INVALID("proposed_change.value", "maximum", "max_touches",
            "{'owner_subsystem':'crm','action_type':'revert','revert_of':'a-0',"
            "'proposed_change':{'field':'max_touches','value':21}}");
    VALID("{'owner_subsystem':'crm','action_type':'revert','revert_of':'a-0',"
          "'proposed_change':{'field':'max_touches','value':20}}");
}

/* ---- campaigns ---- */

#define CAP ",'guardrails':{'max_daily_spend':5000}"

static void validate_budget_daily(void) {
    FIELD_BAD_WITH("campaigns", "budget_daily", "0", CAP, "exclusive_minimum");
    FIELD_BAD_WITH("campaigns", "budget_daily", "-10", CAP, "exclusive_minimum");
    FIELD_OK_WITH("campaigns", "budget_daily", "0.01", CAP);
    FIELD_OK_WITH("campaigns", "budget_daily", "1250", CAP);
    FIELD_OK_WITH("campaigns", "budget_daily", "5000", CAP);
    FIELD_OK_WITH("campaigns", "budget_daily", "5000.0", CAP);
    FIELD_BAD_WITH("campaigns", "budget_daily", "5000.01", CAP, "maximum_from");
    FIELD_BAD_WITH("campaigns", "budget_daily", "7000", CAP, "maximum_from");
    /* The message says which guardrail and its value. */
    INVALID("proposed_change.value", "maximum_from", "guardrails.max_daily_spend",
            "{'proposed_change':{'field':'budget_daily','value':7000}" CAP "}");
    INVALID("proposed_change.value", "maximum_from", "5000",
            "{'proposed_change':{'field':'budget_daily','value':7000}" CAP "}");
    FIELD_BAD_WITH("campaigns", "budget_daily", "'1250'", CAP, "type");
    FIELD_BAD_WITH("campaigns", "budget_daily", "true", CAP, "type");
    FIELD_BAD_WITH("campaigns", "budget_daily", "null", CAP, "type");
    /* Money limits fail closed: without the max_daily_spend guardrail the
     * budget cannot be checked, so the action is refused. */
    INVALID("guardrails.max_daily_spend", "required",
            "budget_daily needs guardrails.max_daily_spend to be checked against",
            "{'proposed_change':{'field':'budget_daily','value':1000}}");
    INVALID("guardrails.max_daily_spend", "required", "budget_daily",
            "{'proposed_change':{'field':'budget_daily','value':1000},'guardrails':{}}");
    INVALID("guardrails.max_daily_spend", "required", "budget_daily",
            "{'proposed_change':{'field':'budget_daily','value':1000},"
            "'guardrails':{'max_daily_spend':null}}");
    /* Present but not a number: as bad. */
    INVALID("guardrails.max_daily_spend", "type", "guardrails.max_daily_spend",
            "{'proposed_change':{'field':'budget_daily','value':1000},"
            "'guardrails':{'max_daily_spend':'5000'}}");
    INVALID("guardrails.max_daily_spend", "type", "a string",
            "{'proposed_change':{'field':'budget_daily','value':1000},"
            "'guardrails':{'max_daily_spend':'5000'}}");
    /* The value's own rule is still checked. */
    ap_verdict v;
    if (CHECK_INT_EQ(VERDICT(&v, "{'proposed_change':{'field':'budget_daily','value':0}}"), 2)) {
        VIOLATION_IS(&v, 0, "proposed_change.value", "exclusive_minimum", "budget_daily");
        VIOLATION_IS(&v, 1, "guardrails.max_daily_spend", "required", "budget_daily");
    }
    /* An experiment is refused once, not once per variant. */
    INVALID("guardrails.max_daily_spend", "required", "budget_daily",
            "{'action_type':'experiment','proposed_change':{'field':'budget_daily','variants':["
            "{'name':'a','value':100,'weight':50},{'name':'b','value':200,'weight':50}]}}");
    /* A revert without a value restores the rollback data: nothing to compare. */
    VALID("{'action_type':'revert','revert_of':'a-0','proposed_change':{'field':'budget_daily'}}");
    INVALID("guardrails.max_daily_spend", "required", "budget_daily",
            "{'action_type':'revert','revert_of':'a-0',"
            "'proposed_change':{'field':'budget_daily','value':100}}");
    VALID("{'action_type':'revert','revert_of':'a-0',"
          "'proposed_change':{'field':'budget_daily','value':100}" CAP "}");
}

#define SPENT ",'guardrails':{'current_spend':1200}"

static void validate_budget_total(void) {
    /* minimum 0 holds even where the guardrail says less. */
    FIELD_BAD_WITH("campaigns", "budget_total", "-0.01", ",'guardrails':{'current_spend':-5}",
                   "minimum");
    FIELD_OK_WITH("campaigns", "budget_total", "0", ",'guardrails':{'current_spend':0}");
    FIELD_OK_WITH("campaigns", "budget_total", "90000", SPENT);
    FIELD_BAD_WITH("campaigns", "budget_total", "1199.99", SPENT, "minimum_from");
    FIELD_BAD_WITH("campaigns", "budget_total", "0", SPENT, "minimum_from");
    FIELD_OK_WITH("campaigns", "budget_total", "1200", SPENT);
    FIELD_OK_WITH("campaigns", "budget_total", "1200.01", SPENT);
    INVALID("proposed_change.value", "minimum_from", "guardrails.current_spend",
            "{'proposed_change':{'field':'budget_total','value':1000}" SPENT "}");
    FIELD_BAD_WITH("campaigns", "budget_total", "'90000'", SPENT, "type");
    /* Without the current_spend guardrail: refused. */
    INVALID("guardrails.current_spend", "required",
            "budget_total needs guardrails.current_spend to be checked against",
            "{'proposed_change':{'field':'budget_total','value':90000}}");
    INVALID("guardrails.current_spend", "required", "budget_total",
            "{'proposed_change':{'field':'budget_total','value':90000}" CAP "}");
    INVALID("guardrails.current_spend", "type", "guardrails.current_spend",
            "{'proposed_change':{'field':'budget_total','value':90000},"
            "'guardrails':{'current_spend':[1200]}}");
}

static void validate_status(void) {
    FIELD_OK("crm", "status", "'paused'");
    FIELD_BAD("crm", "status", "'halted'", "enum");
    FIELD_OK("campaigns", "status", "'running'");
    FIELD_OK("campaigns", "status", "'paused'");
    FIELD_BAD("campaigns", "status", "'stopped'", "enum");
    FIELD_BAD("campaigns", "status", "'Paused'", "enum");
    FIELD_BAD("campaigns", "status", "''", "enum");
    FIELD_BAD("campaigns", "status", "0", "type");
    FIELD_BAD("campaigns", "status", "false", "type");
    /* The message lists what is allowed. */
    INVALID("proposed_change.value", "enum", "running, paused",
            "{'proposed_change':{'field':'status','value':'stopped'}}");
}

static void validate_target_segment(void) {
    FIELD_OK("campaigns", "target_segment", "{'include':['seg-smb']}");
    FIELD_OK("campaigns", "target_segment", "{'include':['seg-smb','seg-agency'],'exclude':[]}");
    FIELD_OK("campaigns", "target_segment",
             "{'include':['seg-smb'],'exclude':['seg-existing-customers']}");
    FIELD_BAD("campaigns", "target_segment", "{}", "format");
    FIELD_BAD("campaigns", "target_segment", "{'include':[]}", "format");
    FIELD_BAD("campaigns", "target_segment", "{'include':['']}", "format");
    FIELD_BAD("campaigns", "target_segment", "{'include':[7]}", "format");
    FIELD_BAD("campaigns", "target_segment", "{'include':'seg-smb'}", "format");
    FIELD_BAD("campaigns", "target_segment", "{'exclude':['seg-smb']}", "format");
    FIELD_BAD("campaigns", "target_segment", "{'include':['seg-smb'],'exclude':'seg-x'}", "format");
    FIELD_BAD("campaigns", "target_segment", "{'include':['seg-smb'],'exclude':['']}", "format");
    FIELD_BAD("campaigns", "target_segment", "['seg-smb']", "type");
    FIELD_BAD("campaigns", "target_segment", "'seg-smb'", "type");
}

static void validate_bidding_strategy(void) {
    static const char *const known[] = {"'manual_cpc'", "'target_cpa'", "'target_roas'",
                                        "'maximize_clicks'", "'maximize_conversions'"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        FIELD_OK("campaigns", "bidding_strategy", known[i]);
    FIELD_BAD("campaigns", "bidding_strategy", "'max_cpc'", "enum");
    FIELD_BAD("campaigns", "bidding_strategy", "'TARGET_CPA'", "enum");
    FIELD_BAD("campaigns", "bidding_strategy", "''", "enum");
    FIELD_BAD("campaigns", "bidding_strategy", "['target_cpa']", "type");
    INVALID("proposed_change.value", "enum", "'max_cpc'",
            "{'proposed_change':{'field':'bidding_strategy','value':'max_cpc'}}");
}

static void validate_end_date(void) {
    FIELD_OK("campaigns", "end_date", "'" TODAY "'");
    FIELD_OK("campaigns", "end_date", "'2024-06-16'");
    FIELD_OK("campaigns", "end_date", "'2099-12-31'");
    FIELD_OK("campaigns", "end_date", "'2028-02-29'");
    FIELD_BAD("campaigns", "end_date", "'" YESTERDAY "'", "minimum");
    FIELD_BAD("campaigns", "end_date", "'2023-12-31'", "minimum");
    INVALID("proposed_change.value", "minimum", TODAY,
            "{'proposed_change':{'field':'end_date','value':'" YESTERDAY "'}}");
    /* Only a real calendar day in YYYY-MM-DD is a date. */
    FIELD_BAD("campaigns", "end_date", "'2099-02-30'", "type");
    FIELD_BAD("campaigns", "end_date", "'2100-02-29'", "type");
    FIELD_BAD("campaigns", "end_date", "'2099-13-01'", "type");
    FIELD_BAD("campaigns", "end_date", "'2099-00-10'", "type");
    FIELD_BAD("campaigns", "end_date", "'2099-1-31'", "type");
    FIELD_BAD("campaigns", "end_date", "'2099/12/31'", "type");
    FIELD_BAD("campaigns", "end_date", "'2099-12-31T00:00:00Z'", "type");
    FIELD_BAD("campaigns", "end_date", "''", "type");
    FIELD_BAD("campaigns", "end_date", "20991231", "type");
    /* Every position is a digit: no signs, no spaces. */
    FIELD_BAD("campaigns", "end_date", "'2099-+1-01'", "type");
    FIELD_BAD("campaigns", "end_date", "'2099- 1- 1'", "type");
    FIELD_BAD("campaigns", "end_date", "'+099-01-01'", "type");
    FIELD_BAD("campaigns", "end_date", "'2099-01-+1'", "type");
    FIELD_BAD("campaigns", "end_date", "' 2099-1-01'", "type");
}

/* ---- crm ---- */

static void validate_sequence_delay_days(void) {
    FIELD_BAD("crm", "sequence_delay_days", "-1", "minimum");
    FIELD_OK("crm", "sequence_delay_days", "0");
    FIELD_OK("crm", "sequence_delay_days", "30");
    FIELD_OK("crm", "sequence_delay_days", "3.0"); /* an integral number is an integer */
    FIELD_BAD("crm", "sequence_delay_days", "31", "maximum");
    FIELD_BAD("crm", "sequence_delay_days", "2.5", "type");
    FIELD_BAD("crm", "sequence_delay_days", "'3'", "type");
}

static void validate_max_touches(void) {
    FIELD_BAD("crm", "max_touches", "0", "minimum");
    FIELD_BAD("crm", "max_touches", "-3", "minimum");
    FIELD_OK("crm", "max_touches", "1");
    FIELD_OK("crm", "max_touches", "20");
    FIELD_BAD("crm", "max_touches", "21", "maximum");
    FIELD_BAD("crm", "max_touches", "25", "maximum");
    FIELD_BAD("crm", "max_touches", "7.5", "type");
    FIELD_BAD("crm", "max_touches", "'8'", "type");
    FIELD_BAD("crm", "max_touches", "null", "type");
    INVALID("proposed_change.value", "maximum", "20",
            "{'owner_subsystem':'crm','proposed_change':{'field':'max_touches','value':25}}");
}

static void validate_follow_up_sla_hours(void) {
    FIELD_BAD("crm", "follow_up_sla_hours", "0", "minimum");
    FIELD_OK("crm", "follow_up_sla_hours", "1");
    FIELD_OK("crm", "follow_up_sla_hours", "168");
    FIELD_BAD("crm", "follow_up_sla_hours", "169", "maximum");
    FIELD_BAD("crm", "follow_up_sla_hours", "24.5", "type");
    FIELD_BAD("crm", "follow_up_sla_hours", "'24'", "type");
}

static void validate_auto_assign(void) {
    FIELD_OK("crm", "auto_assign", "true");
    FIELD_OK("crm", "auto_assign", "false");
    FIELD_BAD("crm", "auto_assign", "'true'", "type");
    FIELD_BAD("crm", "auto_assign", "1", "type");
    FIELD_BAD("crm", "auto_assign", "null", "type");
}

static void validate_priority_score_threshold(void) {
    FIELD_BAD("crm", "priority_score_threshold", "-0.01", "minimum");
    FIELD_OK("crm", "priority_score_threshold", "0");
    FIELD_OK("crm", "priority_score_threshold", "62.5");
    FIELD_OK("crm", "priority_score_threshold", "100");
    FIELD_BAD("crm", "priority_score_threshold", "100.01", "maximum");
    FIELD_BAD("crm", "priority_score_threshold", "'70'", "type");
}

/* ---- pricing ---- */

static void validate_discount_max_pct(void) {
    FIELD_BAD("pricing", "discount_max_pct", "-0.01", "minimum");
    FIELD_OK("pricing", "discount_max_pct", "0");
    FIELD_OK("pricing", "discount_max_pct", "12.5");
    FIELD_OK("pricing", "discount_max_pct", "50");
    FIELD_BAD("pricing", "discount_max_pct", "50.01", "maximum");
    FIELD_BAD("pricing", "discount_max_pct", "75", "maximum");
    FIELD_BAD("pricing", "discount_max_pct", "'15%'", "type");
}

static void validate_tier_threshold(void) {
    FIELD_OK("pricing", "tier_threshold", "[100,500,1000]");
    FIELD_OK("pricing", "tier_threshold", "[100]");
    FIELD_OK("pricing", "tier_threshold", "[-5,0,2.5,2.51]");
    FIELD_BAD("pricing", "tier_threshold", "[100,100]", "ascending");
    FIELD_BAD("pricing", "tier_threshold", "[100,500,500,1000]", "ascending");
    FIELD_BAD("pricing", "tier_threshold", "[100,500,400]", "ascending");
    FIELD_BAD("pricing", "tier_threshold", "[1000,500,100]", "ascending");
    FIELD_BAD("pricing", "tier_threshold", "[]", "format");
    FIELD_BAD("pricing", "tier_threshold", "[100,'500']", "format");
    FIELD_BAD("pricing", "tier_threshold", "[100,null]", "format");
    FIELD_BAD("pricing", "tier_threshold", "{'a':100}", "type");
    FIELD_BAD("pricing", "tier_threshold", "100", "type");
}

static void validate_promo_code_enabled(void) {
    FIELD_OK("pricing", "promo_code_enabled", "true");
    FIELD_OK("pricing", "promo_code_enabled", "false");
    FIELD_BAD("pricing", "promo_code_enabled", "'false'", "type");
    FIELD_BAD("pricing", "promo_code_enabled", "0", "type");
}

static void validate_trial_days(void) {
    FIELD_BAD("pricing", "trial_days", "-1", "minimum");
    FIELD_OK("pricing", "trial_days", "0");
    FIELD_OK("pricing", "trial_days", "14");
    FIELD_OK("pricing", "trial_days", "90");
    FIELD_BAD("pricing", "trial_days", "91", "maximum");
    FIELD_BAD("pricing", "trial_days", "14.5", "type");
    FIELD_BAD("pricing", "trial_days", "'14'", "type");
}

/* ---- routing ---- */

static void validate_round_robin_enabled(void) {
    FIELD_OK("routing", "round_robin_enabled", "true");
    FIELD_OK("routing", "round_robin_enabled", "false");
    FIELD_BAD("routing", "round_robin_enabled", "'on'", "type");
    FIELD_BAD("routing", "round_robin_enabled", "1", "type");
}

static void validate_capacity_per_rep(void) {
    FIELD_BAD("routing", "capacity_per_rep", "0", "minimum");
    FIELD_OK("routing", "capacity_per_rep", "1");
    FIELD_OK("routing", "capacity_per_rep", "1000");
    FIELD_BAD("routing", "capacity_per_rep", "1001", "maximum");
    FIELD_BAD("routing", "capacity_per_rep", "10.5", "type");
    FIELD_BAD("routing", "capacity_per_rep", "'50'", "type");
}

static void validate_territory_rules(void) {
    FIELD_OK("routing", "territory_rules", "[{'match':{'country':'DE'},'assign_to':'team-dach'}]");
    FIELD_OK("routing", "territory_rules",
             "[{'match':{'country':['DE','AT']},'assign_to':'team-dach'},"
             "{'match':{'region':'EMEA'},'assign_to':'team-emea'}]");
    FIELD_BAD("routing", "territory_rules", "[]", "format");
    FIELD_BAD("routing", "territory_rules", "[{'match':{},'assign_to':'team-emea'}]", "format");
    FIELD_BAD("routing", "territory_rules", "[{'match':'DE','assign_to':'team-emea'}]", "format");
    FIELD_BAD("routing", "territory_rules", "[{'assign_to':'team-emea'}]", "format");
    FIELD_BAD("routing", "territory_rules", "[{'match':{'country':'DE'}}]", "format");
    FIELD_BAD("routing", "territory_rules", "[{'match':{'country':'DE'},'assign_to':''}]",
              "format");
    FIELD_BAD("routing", "territory_rules", "[{'match':{'country':'DE'},'assign_to':'team dach'}]",
              "format");
    FIELD_BAD("routing", "territory_rules", "[{'match':{'country':'DE'},'assign_to':7}]", "format");
    /* One bad rule spoils the list. */
    FIELD_BAD("routing", "territory_rules",
              "[{'match':{'country':'DE'},'assign_to':'team-dach'},'team-emea']", "format");
    FIELD_BAD("routing", "territory_rules", "{'match':{'country':'DE'},'assign_to':'team-dach'}",
              "type");
}

static void validate_overflow_queue(void) {
    FIELD_OK("routing", "overflow_queue", "'queue-emea-overflow'");
    FIELD_OK("routing", "overflow_queue", "'q_1.emea:overflow-2'");
    FIELD_OK("routing", "overflow_queue", json_repeat("q", 64));
    FIELD_BAD("routing", "overflow_queue", json_repeat("q", 65), "format");
    FIELD_BAD("routing", "overflow_queue", "''", "format");
    FIELD_BAD("routing", "overflow_queue", "'emea overflow'", "format");
    FIELD_BAD("routing", "overflow_queue", "'queue/emea'", "format");
    FIELD_BAD("routing", "overflow_queue", "'queue-ü'", "format");
    FIELD_BAD("routing", "overflow_queue", "42", "type");
}

/* ---- content ---- */

static void validate_template_id(void) {
    FIELD_OK("content", "template_id", "'tmpl-welcome'");
    FIELD_OK("content", "template_id", "'tmpl_welcome.v2'");
    FIELD_OK("content", "template_id", json_repeat("t", 64));
    FIELD_BAD("content", "template_id", json_repeat("t", 65), "format");
    FIELD_BAD("content", "template_id", "''", "format");
    FIELD_BAD("content", "template_id", "'tmpl welcome'", "format");
    FIELD_BAD("content", "template_id", "'../tmpl'", "format");
    FIELD_BAD("content", "template_id", "1001", "type");
}

static void validate_variant_weights(void) {
    FIELD_OK("content", "variant_weights", "{'a':50,'b':50}");
    FIELD_OK("content", "variant_weights", "{'short':70,'long':30}");
    FIELD_OK("content", "variant_weights", "{'only':100}");
    FIELD_OK("content", "variant_weights", "{'a':100,'b':0}");
    FIELD_OK("content", "variant_weights", "{'a':33.3,'b':33.3,'c':33.4}");
    FIELD_BAD("content", "variant_weights", "{'a':50,'b':49}", "sum");
    FIELD_BAD("content", "variant_weights", "{'a':50,'b':51}", "sum");
    FIELD_BAD("content", "variant_weights", "{'a':99.99}", "sum");
    FIELD_BAD("content", "variant_weights", "{}", "format");
    FIELD_BAD("content", "variant_weights", "{'a':150,'b':-50}", "format");
    FIELD_BAD("content", "variant_weights", "{'a':'50','b':50}", "format");
    FIELD_BAD("content", "variant_weights", "[50,50]", "type");
    INVALID("proposed_change.value", "sum", "99",
            "{'owner_subsystem':'content','proposed_change':"
            "{'field':'variant_weights','value':{'a':50,'b':49}}}");
}

/* A string rule of at most `max` characters, tested with 1-, 2- and 4-byte
 * UTF-8 characters: the limit counts characters, not bytes. */
static void max_length_at(const char *file, int line, const char *field, int max) {
    static const char *const units[] = {"x", "\xc3\xa9" /* é */, "\xf0\x9f\x9a\x80" /* 🚀 */};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        field_at(file, line, "content", field, json_repeat(units[i], max), "", NULL);
        field_at(file, line, "content", field, json_repeat(units[i], max + 1), "", "max_length");
    }
    field_at(file, line, "content", field, "''", "", NULL);
    field_at(file, line, "content", field, "7", "", "type");
}

static void validate_subject_line(void) {
    max_length_at(__FILE__, __LINE__, "subject_line", 100);
    FIELD_OK("content", "subject_line", "'Welcome to Acme — your first campaign in 5 minutes'");
    INVALID("proposed_change.value", "max_length", "100",
            "{'owner_subsystem':'content','proposed_change':{'field':'subject_line','value':%s}}",
            json_repeat("s", 101));
}

static void validate_cta_text(void) {
    max_length_at(__FILE__, __LINE__, "cta_text", 50);
    FIELD_OK("content", "cta_text", "'Start your free trial'");
}

/* ---- experiments ---- */

static void validate_experiment_variants(void) {
    ap_verdict v;
    VALID("{'action_type':'experiment','proposed_change':{'field':'status','variants':["
          "{'name':'a','value':'running','weight':50},"
          "{'name':'b','value':'paused','weight':50}]}}");
    VALID("{'owner_subsystem':'crm','action_type':'experiment','proposed_change':{'field':"
          "'max_touches','variants':[{'name':'a','value':4,'weight':20},"
          "{'name':'b','value':8,'weight':30},{'name':'c','value':12,'weight':50}]}}");
    VALID("{'owner_subsystem':'crm','action_type':'experiment','proposed_change':{'field':"
          "'auto_assign','variants':[{'name':'on','value':true,'weight':33.3},"
          "{'name':'off','value':false,'weight':66.7}]}}");
    /* Weights: each 0..100, together exactly 100. */
    INVALID("proposed_change.variants", "sum", "variant weights",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':["
            "{'name':'a','value':'running','weight':50},"
            "{'name':'b','value':'paused','weight':49}]}}");
    INVALID("proposed_change.variants", "sum", "101",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':["
            "{'name':'a','value':'running','weight':50},"
            "{'name':'b','value':'paused','weight':51}]}}");
    if (CHECK_INT_EQ(VERDICT(&v, "{'action_type':'experiment','proposed_change':{'field':"
                                 "'status','variants':[{'name':'a','value':'running',"
                                 "'weight':'50'},{'name':'b','value':'paused','weight':50}]}}"),
                     2)) {
        VIOLATION_IS(&v, 0, "proposed_change.variants[0]", "weight", "weight");
        VIOLATION_IS(&v, 1, "proposed_change.variants", "sum", "variant weights");
    }
    if (CHECK_INT_EQ(VERDICT(&v, "{'action_type':'experiment','proposed_change':{'field':"
                                 "'status','variants':[{'name':'a','value':'running',"
                                 "'weight':101},{'name':'b','value':'paused','weight':-1}]}}"),
                     3)) {
        VIOLATION_IS(&v, 0, "proposed_change.variants[0]", "weight", "weight");
        VIOLATION_IS(&v, 1, "proposed_change.variants[1]", "weight", "weight");
        VIOLATION_IS(&v, 2, "proposed_change.variants", "sum", "variant weights");
    }
    /* At least two variants, each with a name. */
    INVALID("proposed_change.variants", "required", "variants",
            "{'action_type':'experiment','proposed_change':{'field':'status'}}");
    INVALID("proposed_change.variants", "required", "variants",
            "{'action_type':'experiment','proposed_change':{'field':'status','value':'paused'}}");
    INVALID("proposed_change.variants", "required", "variants",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':"
            "[{'name':'a','value':'paused','weight':100}]}}");
    INVALID("proposed_change.variants", "required", "variants",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':"
            "{'a':{'value':'paused','weight':50},'b':{'value':'running','weight':50}}}}");
    INVALID("proposed_change.variants[1]", "required", "name",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':["
            "{'name':'a','value':'running','weight':50},{'value':'paused','weight':50}]}}");
    INVALID("proposed_change.variants[0]", "required", "name",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':["
            "{'name':'%s','value':'running','weight':50},"
            "{'name':'b','value':'paused','weight':50}]}}",
            repeat("n", 65));
    /* Each variant's value is checked by the field's rule. */
    INVALID("proposed_change.variants[1].value", "maximum", "max_touches",
            "{'owner_subsystem':'crm','action_type':'experiment','proposed_change':{'field':"
            "'max_touches','variants':[{'name':'a','value':20,'weight':50},"
            "{'name':'b','value':21,'weight':50}]}}");
    INVALID("proposed_change.variants[0].value", "enum", "status",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':["
            "{'name':'a','value':'stopped','weight':50},"
            "{'name':'b','value':'paused','weight':50}]}}");
    INVALID("proposed_change.variants[0].value", "required", "status",
            "{'action_type':'experiment','proposed_change':{'field':'status','variants':["
            "{'name':'a','weight':50},{'name':'b','value':'paused','weight':50}]}}");
    INVALID("proposed_change.variants[1].value", "maximum_from", "budget_daily",
            "{'action_type':'experiment','proposed_change':{'field':'budget_daily','variants':["
            "{'name':'a','value':5000,'weight':50},{'name':'b','value':5000.5,'weight':50}]}" CAP
            "}");
    INVALID("proposed_change.variants[1].value", "maximum", "discount_max_pct",
            "{'owner_subsystem':'pricing','action_type':'experiment','proposed_change':{'field':"
            "'discount_max_pct','variants':[{'name':'a','value':10,'weight':50},"
            "{'name':'b','value':50.5,'weight':50}]}}");
    INVALID("proposed_change.variants[0].value", "max_length", "subject_line",
            "{'owner_subsystem':'content','action_type':'experiment','proposed_change':{'field':"
            "'subject_line','variants':[{'name':'a','value':%s,'weight':50},"
            "{'name':'b','value':'Hi','weight':50}]}}",
            json_repeat("\xc3\xa9", 101));
    /* The field must still exist. */
    INVALID("proposed_change.field", "field", "cta_txt",
            "{'owner_subsystem':'content','action_type':'experiment','proposed_change':{'field':"
            "'cta_txt','variants':[{'name':'a','value':'Go','weight':50},"
            "{'name':'b','value':'Buy','weight':50}]}}");
}

/* ---- a rule whose format does not fit its type ---- */

/* The loader refuses such a rule, but validation must not trust it: each
 * format's check meets a value of another type, and says so, not crashes.
 * The rule is loaded with a fitting type, then given `forced`, the value's
 * own type, as a loader without the check would have let through. */
static void validate_format_on_the_wrong_type(void) {
    static const struct {
        const char *format, *type, *value;
        ap_field_type forced;
    } cases[] = {
        {"identifier", "string", "42", AP_FIELD_NUMBER},
        {"identifier", "string", "{'a':1}", AP_FIELD_OBJECT},
        {"identifier", "string", "['a']", AP_FIELD_ARRAY},
        {"ascending", "array", "{'a':1}", AP_FIELD_OBJECT},
        {"ascending", "array", "'1,2'", AP_FIELD_STRING},
        {"territory_rules", "array", "'x'", AP_FIELD_STRING},
        {"territory_rules", "array", "{'match':{'a':1},'assign_to':'t'}", AP_FIELD_OBJECT},
        {"segment", "object", "['seg-smb']", AP_FIELD_ARRAY},
        {"segment", "object", "'seg-smb'", AP_FIELD_STRING},
        {"weights_sum_100", "object", "[50,50]", AP_FIELD_ARRAY},
        {"weights_sum_100", "object", "100", AP_FIELD_NUMBER},
    };
    char text[512], path[256], err[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text,
                 "{\"version\":\"t\",\"subsystems\":{\"routing\":{\"executor\":\"E\","
                 "\"accepts\":{\"config_change\":1},\"fields\":{\"f\":{\"type\":\"%s\","
                 "\"format\":\"%s\"}}}}}",
                 cases[i].type, cases[i].format);
        if (unit_temp_file(__FILE__, __LINE__, text, path, sizeof path))
            return;
        ap_executor_map *map = ap_executor_map_load(path, err, sizeof err);
        unlink(path);
        const ap_subsystem *sub = map ? ap_executor_map_subsystem(map, "routing") : NULL;
        if (unit_check(__FILE__, __LINE__, sub && sub->field_count == 1, "%s", err)) {
            ((ap_field_rule *)&sub->fields[0])->type = cases[i].forced;
            snprintf(text, sizeof text,
                     "{'owner_subsystem':'routing','proposed_change':{'field':'f','value':%s}}",
                     cases[i].value);
            json_t *action = build_action(__FILE__, __LINE__, text);
            ap_verdict v;
            int n = action ? ap_validate(map, action, TODAY, &v) : -1;
            if (unit_check(__FILE__, __LINE__, n == 1, "%s on %s: %d violations", cases[i].format,
                           cases[i].value, n))
                violation_is(__FILE__, __LINE__, &v, 0, "proposed_change.value", "format", "f",
                             cases[i].format);
            json_decref(action);
        }
        ap_executor_map_free(map);
    }
}

/* ---- the verdict ---- */

static void validate_many_violations(void) {
    ap_verdict v;
    char buf[4096], small[24];
    int n = VERDICT(&v, "{'action_id':1,'tenant_id':2,'entity_id':3,'created_at':4,"
                        "'confidence':5,'tier':6,'guardrails':7,'dry_run':8,'reason':9,"
                        "'run_id':10}");
    CHECK_INT_EQ(n, 10);
    CHECK_INT_EQ(v.count, 10);
    VIOLATION_IS(&v, 0, "action_id", "type", "action_id");
    VIOLATION_IS(&v, 6, "tier", "enum", "tier");
    VIOLATION_IS(&v, AP_VERDICT_MAX - 1, "guardrails", "type", "guardrails");
    ap_verdict_format(&v, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "action_id: type: 'action_id' must be a string");
    CHECK_STR_CONTAINS(buf, "; tenant_id: type: ");
    CHECK_STR_CONTAINS(buf, "; and 2 more");
    CHECK(strstr(buf, "dry_run") == NULL); /* the 9th is only counted */
    /* A short buffer is cut, never overrun. */
    ap_verdict_format(&v, small, sizeof small);
    CHECK_INT_EQ(strlen(small), sizeof small - 1);
    CHECK(!strncmp(small, buf, sizeof small - 1));
}

static void validate_verdict_format(void) {
    ap_verdict v;
    char buf[1024];
    VERDICT(&v, "{}");
    ap_verdict_format(&v, buf, sizeof buf);
    CHECK_STR_EQ(buf, "");
    VERDICT(&v, "{'owner_subsystem':'crm','proposed_change':{'field':'max_touches','value':21}}");
    ap_verdict_format(&v, buf, sizeof buf);
    CHECK_STR_EQ(buf, "proposed_change.value: maximum: max_touches must be <= 20, got 21");
    /* A size of 0 writes nothing, not even the terminator. */
    char none[2] = {'x', 'y'};
    ap_verdict_format(&v, none, 0);
    CHECK(none[0] == 'x' && none[1] == 'y');
    ap_verdict_format(&v, NULL, 0);
    /* A size of 1 holds only the terminator. */
    ap_verdict_format(&v, none, 1);
    CHECK(none[0] == '\0' && none[1] == 'y');
}

static void validate_today_utc(void) {
    char today[11];
    ap_today_utc(today);
    CHECK_INT_EQ(strlen(today), 10);
    CHECK(today[4] == '-' && today[7] == '-');
    CHECK(strcmp(today, "2024-01-01") > 0 && strcmp(today, "2200-01-01") < 0);
}

/* A pause sets status to paused; nothing else is a pause. */
static void validate_pause(void) {
    VALID("{'owner_subsystem':'crm','action_type':'pause','entity_id':'seq-1',"
          "'proposed_change':{'field':'status','value':'paused'}}");
    INVALID("proposed_change", "pause", "status",
            "{'owner_subsystem':'campaigns','action_type':'pause',"
            "'proposed_change':{'field':'status','value':'running'}}");
    INVALID("proposed_change", "pause", "budget_daily",
            "{'owner_subsystem':'campaigns','action_type':'pause',"
            "'proposed_change':{'field':'budget_daily','value':10},"
            "'guardrails':{'max_daily_spend':1000}}");
}

/* A scale changes only a field the map marks scalable. */
static void validate_scale(void) {
    VALID("{'owner_subsystem':'routing','action_type':'scale',"
          "'proposed_change':{'field':'capacity_per_rep','value':120}}");
    VALID("{'action_type':'scale','proposed_change':{'field':'budget_total','value':900},"
          "'guardrails':{'current_spend':100}}");
    INVALID("proposed_change.field", "scalable", "end_date",
            "{'action_type':'scale','proposed_change':{'field':'end_date','value':'2099-01-01'}}");
    INVALID("proposed_change.field", "scalable", "overflow_queue",
            "{'owner_subsystem':'routing','action_type':'scale',"
            "'proposed_change':{'field':'overflow_queue','value':'q-1'}}");
}

/* Every field of the map has a test named validate_<field> above, so a field
 * added to the map without tests fails here. */
static void validate_every_field_is_tested(void) {
    const ap_executor_map *map = test_map(__FILE__, __LINE__);
    char name[128];
    int fields = 0;
    if (!map)
        return;
    for (int s = 0; s < ap_executor_map_subsystem_count(map); s++) {
        const ap_subsystem *sub = ap_executor_map_subsystem_at(map, s);
        for (int f = 0; f < sub->field_count; f++, fields++) {
            const unit_test *t = unit_validate_tests;
            snprintf(name, sizeof name, "validate_%s", sub->fields[f].name);
            while (t->name && strcmp(t->name, name))
                t++;
            unit_check(__FILE__, __LINE__, t->name != NULL, "%s.%s has no test %s", sub->name,
                       sub->fields[f].name, name);
        }
    }
    CHECK_INT_EQ(fields, 24);
}

/* ---- schemas/examples ---- */

#define EXAMPLES_MAX 64

typedef struct example {
    char where[64];
    char action_id[AP_ID_MAX + 1];
    char idempotency_key[AP_KEY_MAX];
    char subsystem[32];
    char tenant[AP_ID_MAX + 1];
    char run_id[64];
    int explicit_key; /* the action names its idempotency_key */
    ap_verdict verdict;
} example;

typedef struct examples {
    const ap_executor_map *map;
    char today[11];
    int count, unreadable;
    example items[EXAMPLES_MAX];
} examples;

static int collect_example(void *ctx, const char *where, json_t *json, const char *problem) {
    examples *ex = ctx;
    ap_action a;
    char err[256];
    if (problem || ex->count == EXAMPLES_MAX ||
        ap_action_from_json(&a, json_incref(json), err, sizeof err)) {
        unit_check(__FILE__, __LINE__, 0, "%s: cannot read the action: %s", where,
                   problem ? problem : err);
        ex->unreadable++;
        return 0;
    }
    example *e = &ex->items[ex->count++];
    snprintf(e->where, sizeof e->where, "%s", where);
    snprintf(e->action_id, sizeof e->action_id, "%s", a.action_id);
    snprintf(e->idempotency_key, sizeof e->idempotency_key, "%s", a.idempotency_key);
    snprintf(e->subsystem, sizeof e->subsystem, "%s", a.subsystem ? a.subsystem : "");
    snprintf(e->tenant, sizeof e->tenant, "%s", a.tenant_id);
    snprintf(e->run_id, sizeof e->run_id, "%s", a.run_id ? a.run_id : "");
    e->explicit_key = json_object_get(json, "idempotency_key") != NULL;
    ap_validate(ex->map, json, ex->today, &e->verdict);
    ap_action_release(&a);
    return 0;
}

/* Reads an example file; NULL (failure recorded) when it cannot be read. The
 * dates are checked against the real today, as the demo runs them. */
static examples *read_examples(const char *path) {
    char err[256];
    examples *ex = calloc(1, sizeof *ex);
    FILE *in = fopen(path, "r");
    if (!CHECK(ex) || !unit_check(__FILE__, __LINE__, in != NULL, "cannot open %s", path) ||
        !(ex->map = test_map(__FILE__, __LINE__)))
        goto fail;
    ap_today_utc(ex->today);
    if (!unit_check(__FILE__, __LINE__,
                    ap_kernel_output_read(in, collect_example, ex, err, sizeof err) == AP_OK,
                    "%s: %s", path, err))
        goto fail;
    fclose(in);
    return ex;
fail:
    if (in)
        fclose(in);
    free(ex);
    return NULL;
}

static const example *example_find(const examples *ex, const char *action_id) {
    for (int i = 0; i < ex->count; i++)
        if (!strcmp(ex->items[i].action_id, action_id))
            return &ex->items[i];
    return NULL;
}

static void validate_examples_kernel_output(void) {
    /* The actions the producer must refuse, and why. */
    static const struct {
        const char *action_id, *field, *rule, *mention;
    } invalid[] = {
        {"acme-cmp-1003-budget-over-cap", "proposed_change.value", "maximum_from",
         "guardrails.max_daily_spend"},
        {"globex-seq-winback-touches", "proposed_change.value", "maximum", "max_touches"},
        {"acme-plan-pro-scale", "action_type", "matrix", "scale"},
    };
    static const char *const subsystems[] = {"campaigns", "crm", "pricing", "routing", "content"};
    examples *ex = read_examples("schemas/examples/kernel_output.json");
    if (!ex)
        return;
    CHECK_INT_EQ(ex->count, 17);
    CHECK_INT_EQ(ex->unreadable, 0);

    int invalid_count = 0, per_subsystem[5] = {0}, tenants = 0;
    for (int i = 0; i < ex->count; i++) {
        const example *e = &ex->items[i];
        char got[1024];
        ap_verdict_format(&e->verdict, got, sizeof got);
        size_t k;
        for (k = 0; k < sizeof invalid / sizeof invalid[0]; k++)
            if (!strcmp(e->action_id, invalid[k].action_id))
                break;
        /* Each document entry carries the document's run_id. */
        unit_check(__FILE__, __LINE__, !strcmp(e->run_id, "demo-run-1"), "%s: run_id '%s'",
                   e->action_id, e->run_id);
        if (!strcmp(e->tenant, "acme"))
            tenants |= 1;
        else if (!strcmp(e->tenant, "globex"))
            tenants |= 2;
        if (k == sizeof invalid / sizeof invalid[0]) {
            unit_check(__FILE__, __LINE__, e->verdict.count == 0, "%s (%s) must be valid: %s",
                       e->action_id, e->where, got);
            for (int s = 0; s < 5; s++)
                per_subsystem[s] += !strcmp(e->subsystem, subsystems[s]);
            continue;
        }
        invalid_count++;
        if (unit_check(__FILE__, __LINE__, e->verdict.count == 1,
                       "%s must break exactly %s, got: %s", e->action_id, invalid[k].rule, got))
            violation_is(__FILE__, __LINE__, &e->verdict, 0, invalid[k].field, invalid[k].rule,
                         invalid[k].mention, e->action_id);
    }
    CHECK_INT_EQ(invalid_count, 3);
    CHECK_INT_EQ(tenants, 3);
    for (int s = 0; s < 5; s++)
        unit_check(__FILE__, __LINE__, per_subsystem[s] >= 2, "%s has %d valid actions, want 2",
                   subsystems[s], per_subsystem[s]);

    /* Exactly one duplicate: two valid actions, both with an explicit key,
     * the same key, different action_ids. */
    int pairs = 0;
    for (int i = 0; i < ex->count; i++)
        for (int j = i + 1; j < ex->count; j++)
            if (!strcmp(ex->items[i].idempotency_key, ex->items[j].idempotency_key)) {
                pairs++;
                CHECK_STR_EQ(ex->items[i].action_id, "globex-seq-onboarding-touches");
                CHECK_STR_EQ(ex->items[j].action_id, "globex-seq-onboarding-touches-rerun");
                CHECK(ex->items[i].explicit_key && ex->items[j].explicit_key);
                CHECK(!ex->items[i].verdict.count && !ex->items[j].verdict.count);
            }
    CHECK_INT_EQ(pairs, 1);

    /* The shapes the demo shows. */
    const example *e = example_find(ex, "acme-cmp-1002-bidding-experiment");
    CHECK(e && !e->verdict.count);
    e = example_find(ex, "acme-cmp-1004-pause");
    CHECK(e && !e->verdict.count);
    free(ex);
}

static void validate_examples_kernel_output_lines(void) {
    examples *ex = read_examples("schemas/examples/kernel_output.jsonl");
    if (!ex)
        return;
    CHECK_INT_EQ(ex->count, 5);
    for (int i = 0; i < ex->count; i++) {
        char got[1024];
        ap_verdict_format(&ex->items[i].verdict, got, sizeof got);
        unit_check(__FILE__, __LINE__, ex->items[i].verdict.count == 0, "%s (%s): %s",
                   ex->items[i].action_id, ex->items[i].where, got);
    }
    /* The blank third line is skipped but counted. */
    if (ex->count == 5) {
        CHECK_STR_EQ(ex->items[2].where, "line 4");
        CHECK_STR_EQ(ex->items[4].where, "line 6");
    }
    free(ex);
}

const unit_test unit_validate_tests[] = {
    UNIT_TEST(validate_base_action),
    UNIT_TEST(validate_not_an_object),
    UNIT_TEST(validate_required),
    UNIT_TEST(validate_identity_members),
    UNIT_TEST(validate_tenant_keys_stay_apart),
    UNIT_TEST(validate_optional_members),
    UNIT_TEST(validate_created_at),
    UNIT_TEST(validate_unknown_subsystem),
    UNIT_TEST(validate_unknown_action_type),
    UNIT_TEST(validate_unknown_field),
    UNIT_TEST(validate_matrix),
    UNIT_TEST(validate_matrix_still_checks_the_value),
    UNIT_TEST(validate_revert),
    UNIT_TEST(validate_budget_daily),
    UNIT_TEST(validate_budget_total),
    UNIT_TEST(validate_status),
    UNIT_TEST(validate_target_segment),
    UNIT_TEST(validate_bidding_strategy),
    UNIT_TEST(validate_end_date),
    UNIT_TEST(validate_sequence_delay_days),
    UNIT_TEST(validate_max_touches),
    UNIT_TEST(validate_follow_up_sla_hours),
    UNIT_TEST(validate_auto_assign),
    UNIT_TEST(validate_priority_score_threshold),
    UNIT_TEST(validate_discount_max_pct),
    UNIT_TEST(validate_tier_threshold),
    UNIT_TEST(validate_promo_code_enabled),
    UNIT_TEST(validate_trial_days),
    UNIT_TEST(validate_round_robin_enabled),
    UNIT_TEST(validate_capacity_per_rep),
    UNIT_TEST(validate_territory_rules),
    UNIT_TEST(validate_overflow_queue),
    UNIT_TEST(validate_template_id),
    UNIT_TEST(validate_variant_weights),
    UNIT_TEST(validate_subject_line),
    UNIT_TEST(validate_cta_text),
    UNIT_TEST(validate_experiment_variants),
    UNIT_TEST(validate_format_on_the_wrong_type),
    UNIT_TEST(validate_many_violations),
    UNIT_TEST(validate_verdict_format),
    UNIT_TEST(validate_today_utc),
    UNIT_TEST(validate_pause),
    UNIT_TEST(validate_scale),
    UNIT_TEST(validate_every_field_is_tested),
    UNIT_TEST(validate_examples_kernel_output),
    UNIT_TEST(validate_examples_kernel_output_lines),
    {0},
};
