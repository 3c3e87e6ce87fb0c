#include "executor_map.h"

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

static const struct {
    const char *name;
    ap_field_format format;
} field_formats[] = {
    {"segment", AP_FORMAT_SEGMENT},
    {"ascending", AP_FORMAT_ASCENDING},
    {"territory_rules", AP_FORMAT_TERRITORY_RULES},
    {"identifier", AP_FORMAT_IDENTIFIER},
    {"weights_sum_100", AP_FORMAT_WEIGHTS_SUM_100},
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

static ap_status field_parse(ap_field_rule *f, const char *where, const char *name,
                             const json_t *rule, char *err, size_t errsz) {
    memset(f, 0, sizeof *f);
    f->name = name;
    if (!json_is_object(rule))
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: a field rule must be an object", where);

    const char *type = json_string_value(json_object_get(rule, "type"));
    int i;
    for (i = 0; i < COUNT(field_types) && !(type && !strcmp(type, field_types[i].name)); i++)
        ;
    if (i == COUNT(field_types))
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: unknown type '%s'", where,
                       type ? type : "(missing)");
    f->type = field_types[i].type;

    const char *format = json_string_value(json_object_get(rule, "format"));
    if (format) {
        for (i = 0; i < COUNT(field_formats) && strcmp(format, field_formats[i].name); i++)
            ;
        if (i == COUNT(field_formats))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: unknown format '%s'", where, format);
        f->format = field_formats[i].format;
    }

    const json_t *min = json_object_get(rule, "minimum");
    if (f->type == AP_FIELD_DATE && min) {
        if (!json_is_string(min) || strcmp(json_string_value(min), "today"))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: a date minimum can only be \"today\"",
                           where);
        f->not_before_today = 1;
    } else if (bound(rule, "minimum", &f->has_minimum, &f->minimum) ||
               bound(rule, "maximum", &f->has_maximum, &f->maximum) ||
               bound(rule, "exclusive_minimum", &f->has_exclusive_minimum,
                     &f->exclusive_minimum)) {
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: bounds must be numbers", where);
    }
    f->minimum_from = json_string_value(json_object_get(rule, "minimum_from"));
    f->maximum_from = json_string_value(json_object_get(rule, "maximum_from"));

    const json_t *values = json_object_get(rule, "enum");
    if (values) {
        size_t k;
        const json_t *v;
        if (!json_is_array(values) || !json_array_size(values))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: enum must be a non-empty array", where);
        json_array_foreach(values, k, v) if (!json_is_string(v)) return ap_fail(
            AP_ERR_INVALID, err, errsz, "%s: enum values must be strings", where);
        f->enum_values = values;
    }
    const json_t *maxlen = json_object_get(rule, "max_length");
    if (maxlen) {
        if (!json_is_integer(maxlen) || json_integer_value(maxlen) < 1)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: max_length must be a positive integer",
                           where);
        f->max_length = (int)json_integer_value(maxlen);
    }
    return AP_OK;
}

static ap_status subsystem_parse(ap_subsystem *sub, const char *name, const json_t *def,
                                 char *err, size_t errsz) {
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
        ap_status st = field_parse(&sub->fields[sub->field_count], where, field_name, rule, err,
                                   errsz);
        if (st)
            return st;
        sub->field_count++;
    }
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
