#include "executor_map.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct ap_executor_map {
    json_t *root; /* owns every string the structs below borrow */
    const char *version;
    ap_subsystem *subsystems;
    int subsystem_count;
};

static const char *const action_type_names[AP_ACTION_TYPE_COUNT] = {
    "config_change", "experiment", "pause", "scale", "revert",
};

static const struct {
    const char *name;
    ap_field_type type;
} field_types[] = {
    {"number", AP_FIELD_NUMBER}, {"integer", AP_FIELD_INTEGER}, {"boolean", AP_FIELD_BOOLEAN},
    {"string", AP_FIELD_STRING}, {"date", AP_FIELD_DATE},       {"object", AP_FIELD_OBJECT},
    {"array", AP_FIELD_ARRAY},
};

/* Each format reads values of one type only: the loader refuses any other
 * pairing, so a format's check never meets a value it cannot read. */
static const struct {
    const char *name;
    ap_field_format format;
    ap_field_type type;
} field_formats[] = {
    {"segment", AP_FORMAT_SEGMENT, AP_FIELD_OBJECT},
    {"ascending", AP_FORMAT_ASCENDING, AP_FIELD_ARRAY},
    {"territory_rules", AP_FORMAT_TERRITORY_RULES, AP_FIELD_ARRAY},
    {"identifier", AP_FORMAT_IDENTIFIER, AP_FIELD_STRING},
    {"weights_sum_100", AP_FORMAT_WEIGHTS_SUM_100, AP_FIELD_OBJECT},
};

/* The members a field rule may have; any other is a load error, so that a
 * misspelt limit cannot silently drop out. */
static const char *const rule_members[] = {
    "type",         "format", "minimum",    "maximum",     "exclusive_minimum", "minimum_from",
    "maximum_from", "enum",   "max_length", "description", "budget_guardrail",  "scalable",
};

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

int ap_action_type_parse(const char *name) {
    for (int i = 0; name && i < AP_ACTION_TYPE_COUNT; i++)
        if (!strcmp(name, action_type_names[i]))
            return i;
    return -1;
}

const char *ap_action_type_name(ap_action_type type) {
    return type < AP_ACTION_TYPE_COUNT ? action_type_names[type] : "unknown";
}

static const char *field_type_name(ap_field_type type) {
    for (size_t i = 0; i < sizeof field_types / sizeof field_types[0]; i++)
        if (field_types[i].type == type)
            return field_types[i].name;
    return "unknown";
}

/* Reads an optional number bound; returns -1 when present but not a number. */
static int bound(const json_t *rule, const char *key, int *has, double *value) {
    const json_t *v = json_object_get(rule, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return -1;
    *has = 1;
    *value = json_number_value(v);
    return 0;
}

/* Reads an optional dotted path; returns -1 when present but not a non-empty string. */
static int path_member(const json_t *rule, const char *key, const char **path) {
    const json_t *v = json_object_get(rule, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || !json_string_length(v))
        return -1;
    *path = json_string_value(v);
    return 0;
}

/* Parses one field rule into f. Checks, in order: every member is known; the
 * type; the format and that it fits the type; that bounds sit on numbers
 * (minimum "today" on dates) and enum and max_length on strings; then each
 * member's value. Errors are "<where>: what". */
static ap_status field_parse(ap_field_rule *f, const char *where, const char *name,
                             const json_t *rule, char *err, size_t errsz) {
    const char *key;
    const json_t *member;
    int i;

    memset(f, 0, sizeof *f);
    f->name = name;
    if (!json_is_object(rule))
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: a field rule must be an object", where);
    json_object_foreach((json_t *)rule, key, member) {
        for (i = 0; i < COUNT(rule_members) && strcmp(key, rule_members[i]); i++)
            ;
        if (i == COUNT(rule_members))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: unknown member '%s'", where, key);
    }
    const json_t *description = json_object_get(rule, "description");
    if (description && !json_is_string(description))
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: \"description\" must be a string", where);

    const json_t *type_member = json_object_get(rule, "type");
    if (type_member && !json_is_string(type_member))
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: \"type\" must be a string", where);
    const char *type = json_string_value(type_member);
    for (i = 0; i < COUNT(field_types) && !(type && !strcmp(type, field_types[i].name)); i++)
        ;
    if (i == COUNT(field_types))
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: unknown type '%s'", where,
                       type ? type : "(missing)");
    f->type = field_types[i].type;
    int numeric = f->type == AP_FIELD_NUMBER || f->type == AP_FIELD_INTEGER;

    const json_t *format_member = json_object_get(rule, "format");
    if (format_member) {
        const char *format = json_string_value(format_member);
        if (!format)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: \"format\" must be a string", where);
        for (i = 0; i < COUNT(field_formats) && strcmp(format, field_formats[i].name); i++)
            ;
        if (i == COUNT(field_formats))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: unknown format '%s'", where, format);
        if (field_formats[i].type != f->type)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: format '%s' needs type '%s', not '%s'",
                           where, format, field_type_name(field_formats[i].type), type);
        f->format = field_formats[i].format;
    }

    static const char *const numeric_only[] = {"minimum", "maximum", "exclusive_minimum",
                                               "minimum_from", "maximum_from"};
    for (i = 0; i < COUNT(numeric_only); i++) {
        if (!json_object_get(rule, numeric_only[i]) || numeric ||
            (f->type == AP_FIELD_DATE && !strcmp(numeric_only[i], "minimum")))
            continue;
        return ap_fail(AP_ERR_INVALID, err, errsz,
                       "%s: \"%s\" applies to number and integer fields, not '%s'", where,
                       numeric_only[i], type);
    }
    static const char *const string_only[] = {"enum", "max_length"};
    for (i = 0; i < COUNT(string_only); i++) {
        if (json_object_get(rule, string_only[i]) && f->type != AP_FIELD_STRING)
            return ap_fail(AP_ERR_INVALID, err, errsz,
                           "%s: \"%s\" applies to string fields, not '%s'", where, string_only[i],
                           type);
    }

    const json_t *min = json_object_get(rule, "minimum");
    if (f->type == AP_FIELD_DATE && min) {
        if (!json_is_string(min) || strcmp(json_string_value(min), "today"))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: a date minimum can only be \"today\"",
                           where);
        f->not_before_today = 1;
    } else if (bound(rule, "minimum", &f->has_minimum, &f->minimum) ||
               bound(rule, "maximum", &f->has_maximum, &f->maximum) ||
               bound(rule, "exclusive_minimum", &f->has_exclusive_minimum, &f->exclusive_minimum)) {
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: bounds must be numbers", where);
    }
    if (path_member(rule, "minimum_from", &f->minimum_from))
        return ap_fail(AP_ERR_INVALID, err, errsz,
                       "%s: \"minimum_from\" must be a non-empty string (a dotted path)", where);
    if (path_member(rule, "maximum_from", &f->maximum_from))
        return ap_fail(AP_ERR_INVALID, err, errsz,
                       "%s: \"maximum_from\" must be a non-empty string (a dotted path)", where);

    const json_t *values = json_object_get(rule, "enum");
    if (values) {
        size_t k;
        const json_t *v;
        if (!json_is_array(values) || !json_array_size(values))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: enum must be a non-empty array", where);
        json_array_foreach(values, k, v) {
            if (!json_is_string(v))
                return ap_fail(AP_ERR_INVALID, err, errsz, "%s: enum values must be strings",
                               where);
        }
        f->enum_values = values;
    }
    const json_t *maxlen = json_object_get(rule, "max_length");
    if (maxlen) {
        if (!json_is_integer(maxlen) || json_integer_value(maxlen) < 1 ||
            json_integer_value(maxlen) > INT_MAX)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: max_length must be a positive integer",
                           where);
        f->max_length = (int)json_integer_value(maxlen);
    }
    static const char *const numeric_flags[] = {"budget_guardrail", "scalable"};
    int *flags[] = {&f->budget_guardrail, &f->scalable};
    for (i = 0; i < COUNT(numeric_flags); i++) {
        const json_t *flag = json_object_get(rule, numeric_flags[i]);
        if (!flag)
            continue;
        if (!json_is_boolean(flag))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: %s must be true or false", where,
                           numeric_flags[i]);
        if (f->type != AP_FIELD_NUMBER && f->type != AP_FIELD_INTEGER)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: %s needs a number or integer field",
                           where, numeric_flags[i]);
        *flags[i] = json_is_true(flag);
    }
    return AP_OK;
}

static ap_status subsystem_parse(ap_subsystem *sub, const char *name, const json_t *def, char *err,
                                 size_t errsz) {
    char where[256];
    const char *type_name, *field_name;
    const json_t *tier, *rule;

    sub->name = name;
    sub->executor = json_string_value(json_object_get(def, "executor"));
    if (!sub->executor)
        return ap_fail(AP_ERR_INVALID, err, errsz, "subsystems.%s: missing \"executor\"", name);

    const json_t *accepts = json_object_get(def, "accepts");
    if (!json_is_object(accepts) || !json_object_size(accepts))
        return ap_fail(AP_ERR_INVALID, err, errsz,
                       "subsystems.%s: \"accepts\" must map action types to tiers", name);
    json_object_foreach((json_t *)accepts, type_name, tier) {
        int type = ap_action_type_parse(type_name);
        if (type < 0)
            return ap_fail(AP_ERR_INVALID, err, errsz,
                           "subsystems.%s.accepts: unknown action type '%s'", name, type_name);
        json_int_t t = json_integer_value(tier);
        if (!json_is_integer(tier) || t < 1 || t > 3)
            return ap_fail(AP_ERR_INVALID, err, errsz,
                           "subsystems.%s.accepts.%s: the default tier must be 1, 2 or 3", name,
                           type_name);
        sub->default_tier[type] = (int)t;
    }

    const json_t *fields = json_object_get(def, "fields");
    if (!json_is_object(fields) || !json_object_size(fields))
        return ap_fail(AP_ERR_INVALID, err, errsz, "subsystems.%s: \"fields\" must be an object",
                       name);
    sub->fields = calloc(json_object_size(fields), sizeof *sub->fields);
    if (!sub->fields)
        return AP_ERR_NOMEM;
    json_object_foreach((json_t *)fields, field_name, rule) {
        snprintf(where, sizeof where, "subsystems.%s.fields.%s", name, field_name);
        ap_status st =
            field_parse(&sub->fields[sub->field_count], where, field_name, rule, err, errsz);
        if (st)
            return st;
        sub->field_count++;
    }
    if (sub->default_tier[AP_ACTION_PAUSE] && !ap_subsystem_field(sub, "status"))
        return ap_fail(AP_ERR_INVALID, err, errsz,
                       "subsystems.%s: accepts pause but has no \"status\" field to set", name);
    return AP_OK;
}

ap_executor_map *ap_executor_map_load(const char *path, char *err, size_t errsz) {
    json_error_t jerr;
    char why[512] = "";
    const char *name;
    const json_t *def;
    ap_executor_map *map = calloc(1, sizeof *map);
    if (!map) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    map->root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!map->root) {
        ap_fail(AP_ERR_INVALID, err, errsz, "%s:%d: %s", path, jerr.line, jerr.text);
        goto fail;
    }
    map->version = json_string_value(json_object_get(map->root, "version"));
    const json_t *subs = json_object_get(map->root, "subsystems");
    if (!map->version || !json_is_object(subs) || !json_object_size(subs)) {
        snprintf(why, sizeof why, "needs \"version\" and a non-empty \"subsystems\" object");
        goto invalid;
    }
    map->subsystems = calloc(json_object_size(subs), sizeof *map->subsystems);
    if (!map->subsystems) {
        snprintf(why, sizeof why, "out of memory");
        goto invalid;
    }
    json_object_foreach((json_t *)subs, name, def) {
        if (subsystem_parse(&map->subsystems[map->subsystem_count++], name, def, why, sizeof why))
            goto invalid;
    }
    return map;

invalid:
    ap_fail(AP_ERR_INVALID, err, errsz, "%s: %s", path, why);
fail:
    ap_executor_map_free(map);
    return NULL;
}

void ap_executor_map_free(ap_executor_map *map) {
    if (!map)
        return;
    for (int i = 0; i < map->subsystem_count; i++)
        free(map->subsystems[i].fields);
    free(map->subsystems);
    json_decref(map->root);
    free(map);
}

const ap_subsystem *ap_executor_map_subsystem(const ap_executor_map *map, const char *name) {
    for (int i = 0; name && i < map->subsystem_count; i++)
        if (!strcmp(map->subsystems[i].name, name))
            return &map->subsystems[i];
    return NULL;
}

const ap_subsystem *ap_executor_map_subsystem_at(const ap_executor_map *map, int i) {
    return i >= 0 && i < map->subsystem_count ? &map->subsystems[i] : NULL;
}

int ap_executor_map_subsystem_count(const ap_executor_map *map) {
    return map->subsystem_count;
}

const ap_field_rule *ap_subsystem_field(const ap_subsystem *sub, const char *field) {
    for (int i = 0; field && i < sub->field_count; i++)
        if (!strcmp(sub->fields[i].name, field))
            return &sub->fields[i];
    return NULL;
}

const char *ap_executor_map_version(const ap_executor_map *map) {
    return map->version;
}
