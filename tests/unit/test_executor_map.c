/* test_executor_map.c — loading schemas/executor_map.json, and the errors a
 * broken map gives: each names the file and the member at fault. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor_map.h"
#include "unit.h"

#define MAP_PATH "schemas/executor_map.json"

static void executor_map_loads_the_real_map(void) {
    static const struct {
        const char *name, *executor;
        int fields;
        int accepts[AP_ACTION_TYPE_COUNT]; /* DESIGN.md's matrix */
    } want[] = {
        {"campaigns", "CampaignExecutor", 6, {1, 1, 1, 1, 1}},
        {"crm", "CRMExecutor", 6, {1, 1, 1, 0, 1}},
        {"pricing", "PricingExecutor", 4, {1, 1, 0, 0, 1}},
        {"routing", "RoutingExecutor", 4, {1, 0, 0, 1, 1}},
        {"content", "ContentExecutor", 4, {1, 1, 0, 0, 1}},
    };
    char err[512] = "";
    ap_executor_map *map = ap_executor_map_load(MAP_PATH, err, sizeof err);
    if (!unit_check(__FILE__, __LINE__, map != NULL, "%s", err))
        return;
    CHECK_STR_EQ(ap_executor_map_version(map), "revenue_os_v1");
    CHECK_INT_EQ(ap_executor_map_subsystem_count(map), 5);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ap_subsystem *sub = ap_executor_map_subsystem(map, want[i].name);
        if (!unit_check(__FILE__, __LINE__, sub != NULL, "no subsystem %s", want[i].name))
            continue;
        CHECK_STR_EQ(sub->name, want[i].name);
        CHECK_STR_EQ(sub->executor, want[i].executor);
        CHECK_INT_EQ(sub->field_count, want[i].fields);
        for (int t = 0; t < AP_ACTION_TYPE_COUNT; t++) {
            int tier = sub->default_tier[t];
            unit_check(__FILE__, __LINE__, want[i].accepts[t] ? tier >= 1 && tier <= 3 : tier == 0,
                       "%s %s: default tier %d", want[i].name, ap_action_type_name(t), tier);
        }
    }
    CHECK(ap_executor_map_subsystem(map, "billing") == NULL);
    CHECK(ap_executor_map_subsystem(map, NULL) == NULL);
    CHECK(ap_executor_map_subsystem_at(map, -1) == NULL);
    CHECK(ap_executor_map_subsystem_at(map, 5) == NULL);
    CHECK(ap_executor_map_subsystem_at(map, 0) != NULL);

    /* The rules arrive as written. */
    const ap_subsystem *campaigns = ap_executor_map_subsystem(map, "campaigns");
    const ap_subsystem *crm = ap_executor_map_subsystem(map, "crm");
    const ap_subsystem *content = ap_executor_map_subsystem(map, "content");
    const ap_subsystem *pricing = ap_executor_map_subsystem(map, "pricing");
    const ap_field_rule *r;
    if (campaigns && CHECK((r = ap_subsystem_field(campaigns, "budget_daily")) != NULL)) {
        CHECK_INT_EQ(r->type, AP_FIELD_NUMBER);
        CHECK(r->has_exclusive_minimum && r->exclusive_minimum == 0);
        CHECK(!r->has_minimum && !r->has_maximum);
        CHECK_STR_EQ(r->maximum_from, "guardrails.max_daily_spend");
    }
    if (campaigns && CHECK((r = ap_subsystem_field(campaigns, "end_date")) != NULL)) {
        CHECK_INT_EQ(r->type, AP_FIELD_DATE);
        CHECK(r->not_before_today);
    }
    if (campaigns && CHECK((r = ap_subsystem_field(campaigns, "status")) != NULL))
        CHECK_INT_EQ(json_array_size(r->enum_values), 2);
    if (crm && CHECK((r = ap_subsystem_field(crm, "max_touches")) != NULL)) {
        CHECK_INT_EQ(r->type, AP_FIELD_INTEGER);
        CHECK(r->has_minimum && r->minimum == 1 && r->has_maximum && r->maximum == 20);
    }
    if (pricing && CHECK((r = ap_subsystem_field(pricing, "tier_threshold")) != NULL))
        CHECK_INT_EQ(r->format, AP_FORMAT_ASCENDING);
    if (content && CHECK((r = ap_subsystem_field(content, "subject_line")) != NULL))
        CHECK_INT_EQ(r->max_length, 100);
    if (crm) {
        CHECK(ap_subsystem_field(crm, "budget_daily") == NULL);
        CHECK(ap_subsystem_field(crm, NULL) == NULL);
    }
    ap_executor_map_free(map);
    ap_executor_map_free(NULL);
}

static void executor_map_action_types(void) {
    for (int t = 0; t < AP_ACTION_TYPE_COUNT; t++)
        CHECK_INT_EQ(ap_action_type_parse(ap_action_type_name(t)), t);
    CHECK_INT_EQ(ap_action_type_parse("config_change"), AP_ACTION_CONFIG_CHANGE);
    CHECK_INT_EQ(ap_action_type_parse("revert"), AP_ACTION_REVERT);
    CHECK_INT_EQ(ap_action_type_parse("Pause"), -1);
    CHECK_INT_EQ(ap_action_type_parse(""), -1);
    CHECK_INT_EQ(ap_action_type_parse(NULL), -1);
    CHECK_STR_EQ(ap_action_type_name(AP_ACTION_TYPE_COUNT), "unknown");
}

/* Writes compact JSON (' for ") to a temporary file and loads it. */
static ap_executor_map *load_compact(const char *file, int line, const char *compact, char *path,
                                     size_t pathsz, char *err, size_t errsz) {
    char *text = strdup(compact);
    ap_executor_map *map = NULL;
    if (!text)
        return NULL;
    for (char *c = text; *c; c++)
        if (*c == '\'')
            *c = '"';
    err[0] = '\0';
    if (unit_temp_file(file, line, text, path, pathsz) == 0) {
        map = ap_executor_map_load(path, err, errsz);
        unlink(path);
    }
    free(text);
    return map;
}

/* One subsystem "crm" around `fields` and `accepts` (compact JSON). */
#define MAP_WITH(accepts, fields)                                                                  \
    "{'version':'t1','subsystems':{'crm':{'executor':'CRMExecutor','accepts':" accepts             \
    ",'fields':" fields "}}}"
#define OK_ACCEPTS "{'config_change':1,'experiment':2,'revert':3}"
#define OK_FIELDS  "{'max_touches':{'type':'integer','minimum':1,'maximum':20}}"

static void executor_map_minimal_map(void) {
    char path[256], err[512];
    ap_executor_map *map = load_compact(__FILE__, __LINE__, MAP_WITH(OK_ACCEPTS, OK_FIELDS), path,
                                        sizeof path, err, sizeof err);
    if (!unit_check(__FILE__, __LINE__, map != NULL, "%s", err))
        return;
    const ap_subsystem *crm = ap_executor_map_subsystem(map, "crm");
    if (CHECK(crm)) {
        CHECK_INT_EQ(crm->default_tier[AP_ACTION_CONFIG_CHANGE], 1);
        CHECK_INT_EQ(crm->default_tier[AP_ACTION_EXPERIMENT], 2);
        CHECK_INT_EQ(crm->default_tier[AP_ACTION_PAUSE], 0);
        CHECK_INT_EQ(crm->default_tier[AP_ACTION_SCALE], 0);
        CHECK_INT_EQ(crm->default_tier[AP_ACTION_REVERT], 3);
        CHECK_INT_EQ(crm->field_count, 1);
    }
    CHECK_STR_EQ(ap_executor_map_version(map), "t1");
    ap_executor_map_free(map);
}

/* A broken map: loading fails, and the error names the file and says `want`. */
static void load_error_at(const char *file, int line, const char *compact, const char *want) {
    char path[256], err[512];
    ap_executor_map *map = load_compact(file, line, compact, path, sizeof path, err, sizeof err);
    if (!unit_check(file, line, map == NULL, "loaded a broken map: %s", compact)) {
        ap_executor_map_free(map);
        return;
    }
    unit_check(file, line, !strncmp(err, path, strlen(path)), "error does not start with '%s': %s",
               path, err);
    unit_check(file, line, strstr(err, want) != NULL, "error does not say \"%s\": %s", want, err);
}

#define LOAD_ERROR(compact, want) load_error_at(__FILE__, __LINE__, compact, want)

static void executor_map_load_errors(void) {
    /* Field rules. */
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'max_touches':{'type':'int'}}"),
               ": subsystems.crm.fields.max_touches: unknown type 'int'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'max_touches':{'minimum':1}}"),
               ": subsystems.crm.fields.max_touches: unknown type '(missing)'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'max_touches':'integer'}"),
               ": subsystems.crm.fields.max_touches: a field rule must be an object");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'queue':{'type':'string','format':'email'}}"),
               ": subsystems.crm.fields.queue: unknown format 'email'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'max_touches':{'type':'integer','maximum':'20'}}"),
               ": subsystems.crm.fields.max_touches: bounds must be numbers");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'max_touches':{'type':'integer','minimum':'today'}}"),
               ": subsystems.crm.fields.max_touches: bounds must be numbers");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'end':{'type':'date','minimum':'2024-01-01'}}"),
               ": subsystems.crm.fields.end: a date minimum can only be \"today\"");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'mode':{'type':'string','enum':[]}}"),
               ": subsystems.crm.fields.mode: enum must be a non-empty array");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'mode':{'type':'string','enum':['a',2]}}"),
               ": subsystems.crm.fields.mode: enum values must be strings");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'note':{'type':'string','max_length':0}}"),
               ": subsystems.crm.fields.note: max_length must be a positive integer");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'note':{'type':'string','max_length':'50'}}"),
               ": subsystems.crm.fields.note: max_length must be a positive integer");
    /* The accepted action types and their tiers. */
    LOAD_ERROR(MAP_WITH("{'config_change':1,'delete':1}", OK_FIELDS),
               ": subsystems.crm.accepts: unknown action type 'delete'");
    LOAD_ERROR(MAP_WITH("{'config_change':1,'pause':0}", OK_FIELDS),
               ": subsystems.crm.accepts.pause: the default tier must be 1, 2 or 3");
    LOAD_ERROR(MAP_WITH("{'config_change':4}", OK_FIELDS),
               ": subsystems.crm.accepts.config_change: the default tier must be 1, 2 or 3");
    LOAD_ERROR(MAP_WITH("{'config_change':'1'}", OK_FIELDS),
               ": subsystems.crm.accepts.config_change: the default tier must be 1, 2 or 3");
    LOAD_ERROR(MAP_WITH("{'config_change':1.5}", OK_FIELDS),
               ": subsystems.crm.accepts.config_change: the default tier must be 1, 2 or 3");
    LOAD_ERROR(MAP_WITH("{}", OK_FIELDS),
               ": subsystems.crm: \"accepts\" must map action types to tiers");
    LOAD_ERROR(MAP_WITH("['config_change']", OK_FIELDS),
               ": subsystems.crm: \"accepts\" must map action types to tiers");
    /* The subsystem. */
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{}"), ": subsystems.crm: \"fields\" must be an object");
    LOAD_ERROR("{'version':'t1','subsystems':{'crm':{'accepts':" OK_ACCEPTS ",'fields':" OK_FIELDS
               "}}}",
               ": subsystems.crm: missing \"executor\"");
    /* A later subsystem's error after an earlier good one (frees what was built). */
    LOAD_ERROR("{'version':'t1','subsystems':{'ok':{'executor':'E','accepts':" OK_ACCEPTS
               ",'fields':" OK_FIELDS "},'bad':{'executor':'E','accepts':" OK_ACCEPTS
               ",'fields':{'a':{'type':'integer'},'b':{'type':'float'}}}}}",
               ": subsystems.bad.fields.b: unknown type 'float'");
    /* The document. */
    LOAD_ERROR("{'subsystems':{}}", "needs \"version\"");
    LOAD_ERROR("{'version':'t1','subsystems':{}}", "non-empty \"subsystems\" object");
    LOAD_ERROR("{'version':'t1','subsystems':[]}", "non-empty \"subsystems\" object");
    LOAD_ERROR("{'version':'t1',\n'subsystems':{,}}", ":2: ");
    LOAD_ERROR("{'version':'t1','version':'t2','subsystems':{}}", "duplicate");
    LOAD_ERROR("", ":");
}

/* A format fits one type of value; any other would reach validation with a
 * value the format's check cannot read. */
static void executor_map_format_needs_its_type(void) {
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'overflow_queue':{'type':'number','format':'identifier'}}"),
               ": subsystems.crm.fields.overflow_queue: format 'identifier' needs type "
               "'string', not 'number'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'q':{'type':'date','format':'identifier'}}"),
               "format 'identifier' needs type 'string', not 'date'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'t':{'type':'object','format':'ascending'}}"),
               ": subsystems.crm.fields.t: format 'ascending' needs type 'array', not 'object'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'t':{'type':'string','format':'territory_rules'}}"),
               "format 'territory_rules' needs type 'array', not 'string'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'s':{'type':'array','format':'segment'}}"),
               "format 'segment' needs type 'object', not 'array'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'w':{'type':'integer','format':'weights_sum_100'}}"),
               "format 'weights_sum_100' needs type 'object', not 'integer'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'w':{'type':'boolean','format':'segment'}}"),
               "format 'segment' needs type 'object', not 'boolean'");
    /* Every fitting pair loads. */
    char path[256], err[512];
    ap_executor_map *map =
        load_compact(__FILE__, __LINE__,
                     MAP_WITH(OK_ACCEPTS, "{'q':{'type':'string','format':'identifier'},"
                                          "'a':{'type':'array','format':'ascending'},"
                                          "'t':{'type':'array','format':'territory_rules'},"
                                          "'s':{'type':'object','format':'segment'},"
                                          "'w':{'type':'object','format':'weights_sum_100'}}"),
                     path, sizeof path, err, sizeof err);
    if (unit_check(__FILE__, __LINE__, map != NULL, "%s", err))
        CHECK_INT_EQ(ap_executor_map_subsystem(map, "crm")->field_count, 5);
    ap_executor_map_free(map);
}

/* A field rule says only what the loader understands: a misspelt member
 * would silently drop its limit. */
/* Pause needs a status field; the budget and scale flags sit on numbers. */
static void executor_map_pause_and_flags(void) {
    LOAD_ERROR(MAP_WITH("{'config_change':1,'pause':1}", OK_FIELDS),
               ": subsystems.crm: accepts pause but has no \"status\" field to set");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'a':{'type':'string','scalable':true}}"),
               ": subsystems.crm.fields.a: scalable needs a number or integer field");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'a':{'type':'number','budget_guardrail':1}}"),
               ": subsystems.crm.fields.a: budget_guardrail must be true or false");
}

static void executor_map_rule_members(void) {
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'max_touches':{'type':'integer','minimum':1,'maxmum':20}}"),
               ": subsystems.crm.fields.max_touches: unknown member 'maxmum'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'b':{'type':'number','maximum_form':'guardrails.cap'}}"),
               ": subsystems.crm.fields.b: unknown member 'maximum_form'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'s':{'type':'string','maxLength':10}}"),
               "unknown member 'maxLength'");
    /* Every known member with a value of the wrong JSON type. */
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'n':{'type':5}}"),
               ": subsystems.crm.fields.n: \"type\" must be a string");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'s':{'type':'string','format':7}}"),
               ": subsystems.crm.fields.s: \"format\" must be a string");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'s':{'type':'string','format':null}}"),
               "\"format\" must be a string");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'b':{'type':'number','minimum_from':5}}"),
               ": subsystems.crm.fields.b: \"minimum_from\" must be a non-empty string");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'b':{'type':'number','maximum_from':['guardrails']}}"),
               "\"maximum_from\" must be a non-empty string");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'b':{'type':'number','maximum_from':''}}"),
               "\"maximum_from\" must be a non-empty string");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'b':{'type':'number','exclusive_minimum':'0'}}"),
               ": subsystems.crm.fields.b: bounds must be numbers");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'b':{'type':'number','minimum':true}}"),
               "bounds must be numbers");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'m':{'type':'string','enum':'a'}}"),
               "enum must be a non-empty array");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'m':{'type':'string','description':3}}"),
               ": subsystems.crm.fields.m: \"description\" must be a string");
    /* Bounds only where values are numbers (and "today" on dates). */
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'s':{'type':'string','minimum':1}}"),
               ": subsystems.crm.fields.s: \"minimum\" applies to number and integer fields, "
               "not 'string'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'s':{'type':'string','maximum':10}}"),
               "\"maximum\" applies to number and integer fields, not 'string'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'a':{'type':'array','exclusive_minimum':0}}"),
               "\"exclusive_minimum\" applies to number and integer fields, not 'array'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'f':{'type':'boolean','maximum_from':'guardrails.x'}}"),
               "\"maximum_from\" applies to number and integer fields, not 'boolean'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'s':{'type':'string','minimum_from':'guardrails.x'}}"),
               "\"minimum_from\" applies to number and integer fields, not 'string'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'d':{'type':'date','maximum':20991231}}"),
               "\"maximum\" applies to number and integer fields, not 'date'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'d':{'type':'date','minimum_from':'guardrails.start'}}"),
               "\"minimum_from\" applies to number and integer fields, not 'date'");
    /* enum and max_length only on strings. */
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'n':{'type':'integer','enum':['1','2']}}"),
               ": subsystems.crm.fields.n: \"enum\" applies to string fields, not 'integer'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'d':{'type':'date','max_length':10}}"),
               "\"max_length\" applies to string fields, not 'date'");
    LOAD_ERROR(MAP_WITH(OK_ACCEPTS, "{'o':{'type':'object','max_length':10}}"),
               "\"max_length\" applies to string fields, not 'object'");
    /* Every known member where it belongs loads. */
    char path[256], err[512];
    ap_executor_map *map = load_compact(
        __FILE__, __LINE__,
        MAP_WITH(OK_ACCEPTS,
                 "{'n':{'type':'number','minimum':0,'maximum':10,'exclusive_minimum':-1,"
                 "'minimum_from':'guardrails.lo','maximum_from':'guardrails.hi',"
                 "'description':'a number'},"
                 "'i':{'type':'integer','minimum':1,'description':''},"
                 "'s':{'type':'string','enum':['a','b'],'max_length':5,'description':'s'},"
                 "'d':{'type':'date','minimum':'today'}}"),
        path, sizeof path, err, sizeof err);
    const ap_subsystem *crm = map ? ap_executor_map_subsystem(map, "crm") : NULL;
    const ap_field_rule *r;
    if (unit_check(__FILE__, __LINE__, crm != NULL, "%s", err) &&
        CHECK((r = ap_subsystem_field(crm, "n")) != NULL)) {
        CHECK(r->has_minimum && r->has_maximum && r->has_exclusive_minimum);
        CHECK_STR_EQ(r->minimum_from, "guardrails.lo");
        CHECK_STR_EQ(r->maximum_from, "guardrails.hi");
    }
    ap_executor_map_free(map);
}

static void executor_map_missing_file(void) {
    char err[512] = "";
    ap_executor_map *map = ap_executor_map_load("schemas/no-such-map.json", err, sizeof err);
    CHECK(map == NULL);
    CHECK_STR_CONTAINS(err, "schemas/no-such-map.json");
    ap_executor_map_free(map);
}

const unit_test unit_executor_map_tests[] = {
    UNIT_TEST(executor_map_loads_the_real_map),
    UNIT_TEST(executor_map_action_types),
    UNIT_TEST(executor_map_minimal_map),
    UNIT_TEST(executor_map_load_errors),
    UNIT_TEST(executor_map_format_needs_its_type),
    UNIT_TEST(executor_map_rule_members),
    UNIT_TEST(executor_map_pause_and_flags),
    UNIT_TEST(executor_map_missing_file),
    {0},
};
