/* executor_map.h — the executor registry, loaded from schemas/executor_map.json.
 *
 * The map says, per subsystem, which action types it accepts (with the
 * default tier of each) and which fields it may change, with the rule each
 * value must satisfy. The producer and the worker both validate with it. */
#ifndef AP_EXECUTOR_MAP_H
#define AP_EXECUTOR_MAP_H

#include <jansson.h>

#include "status.h"

/* Action types are fixed by the design: their semantics live in code. */
typedef enum ap_action_type {
    AP_ACTION_CONFIG_CHANGE,
    AP_ACTION_EXPERIMENT,
    AP_ACTION_PAUSE,
    AP_ACTION_SCALE,
    AP_ACTION_REVERT,
    AP_ACTION_TYPE_COUNT
} ap_action_type;

typedef enum ap_field_type {
    AP_FIELD_NUMBER,
    AP_FIELD_INTEGER,
    AP_FIELD_BOOLEAN,
    AP_FIELD_STRING,
    AP_FIELD_DATE, /* "YYYY-MM-DD" */
    AP_FIELD_OBJECT,
    AP_FIELD_ARRAY,
} ap_field_type;

/* Structural checks beyond the type, named by the map's "format". */
typedef enum ap_field_format {
    AP_FORMAT_NONE,
    AP_FORMAT_SEGMENT,         /* {"include":[non-empty strings..], "exclude":[...]?} */
    AP_FORMAT_ASCENDING,       /* non-empty array of strictly ascending numbers */
    AP_FORMAT_TERRITORY_RULES, /* [{"match":{...}, "assign_to":"id"}, ...] */
    AP_FORMAT_IDENTIFIER,      /* 1..64 of [A-Za-z0-9_.:-] */
    AP_FORMAT_WEIGHTS_SUM_100, /* {"variant": weight >= 0, ...} summing to 100 */
} ap_field_format;

/* One changeable field and its rule. Strings are borrowed from the map. */
typedef struct ap_field_rule {
    const char *name;
    ap_field_type type;
    ap_field_format format;
    int has_minimum, has_maximum, has_exclusive_minimum;
    double minimum, maximum, exclusive_minimum;
    const char *minimum_from; /* dotted path into the action, e.g. "guardrails.current_spend" */
    const char *maximum_from;
    int not_before_today;      /* dates: "minimum": "today" */
    const json_t *enum_values; /* array of strings, or NULL */
    int max_length;            /* strings, in characters; 0: unbounded */
    int budget_guardrail;      /* increases capped, a floor kept (settings budget_*) */
    int scalable;              /* a `scale` action may change it */
} ap_field_rule;

typedef struct ap_subsystem {
    const char *name;
    const char *executor;
    int default_tier[AP_ACTION_TYPE_COUNT]; /* 1..3; 0: the type is not accepted */
    ap_field_rule *fields;
    int field_count;
} ap_subsystem;

typedef struct ap_executor_map ap_executor_map;

/* Loads and checks the map at path. Returns NULL with err set ("path: where:
 * what") when it cannot be read or breaks the map's own rules. A field rule
 * may only have the members type, format, minimum, maximum, exclusive_minimum,
 * minimum_from, maximum_from, enum, max_length and description, each of its
 * JSON type; bounds only on number and integer fields (and minimum "today" on
 * dates), enum and max_length only on strings; and a format only on the type
 * it reads (identifier: string; ascending, territory_rules: array; segment,
 * weights_sum_100: object). The caller owns the map and frees it with
 * ap_executor_map_free. */
ap_executor_map *ap_executor_map_load(const char *path, char *err, size_t errsz);

void ap_executor_map_free(ap_executor_map *map);

/* Lookups; NULL or -1 when unknown. Results are owned by the map. */
const ap_subsystem *ap_executor_map_subsystem(const ap_executor_map *map, const char *name);
const ap_subsystem *ap_executor_map_subsystem_at(const ap_executor_map *map, int i);
int ap_executor_map_subsystem_count(const ap_executor_map *map);
const ap_field_rule *ap_subsystem_field(const ap_subsystem *sub, const char *field);
const char *ap_executor_map_version(const ap_executor_map *map);

int ap_action_type_parse(const char *name); /* ap_action_type, or -1 */
const char *ap_action_type_name(ap_action_type type);

#endif
