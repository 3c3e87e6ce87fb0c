#include "validate.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rfc3339.h"

static void violate(ap_verdict *v, const char *field, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void violate(ap_verdict *v, const char *field, const char *rule, const char *fmt, ...) {
    if (v->count < AP_VERDICT_MAX) {
        ap_violation *x = &v->items[v->count];
        snprintf(x->field, sizeof x->field, "%s", field);
        snprintf(x->rule, sizeof x->rule, "%s", rule);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->message, sizeof x->message, fmt, ap);
        va_end(ap);
    }
    v->count++;
}

/* Number of UTF-8 characters (code points) in s. */
static size_t utf8_length(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* "YYYY-MM-DD" with a real calendar day. */
static int is_date(const char *s) {
    ap_rfc3339 t;
    return ap_rfc3339_read(s, &t) && !t.has_time && ap_rfc3339_real_day(&t);
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) on a real
 * calendar day (ap_rfc3339_read says the rest). */
static int is_date_time(const char *s) {
    ap_rfc3339 t;
    return ap_rfc3339_read(s, &t) && t.has_time && t.separator != ' ' && ap_rfc3339_real_day(&t);
}

/* 1..64 characters, each one of [A-Za-z0-9] or of `extra`; NULL is none. */
static int is_word(const char *s, const char *extra) {
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return 0;
    return 1;
}

static int is_identifier(const char *s) {
    return is_word(s, "_.:-");
}

/* Follows a dotted path ("guardrails.max_daily_spend") from the action. */
static const json_t *path_get(const json_t *root, const char *path) {
    char part[64];
    while (root && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof part)
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        root = json_object_get(root, part);
        path += n + (path[n] == '.');
    }
    return root;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static void check_format(const ap_field_rule *r, const json_t *value, const char *at,
                         ap_verdict *v) {
    size_t i;
    const json_t *item;
    switch (r->format) {
    case AP_FORMAT_NONE: return;
    case AP_FORMAT_IDENTIFIER:
        if (!json_is_string(value) || !is_identifier(json_string_value(value)))
            violate(v, at, "format", "%s must be an identifier of 1 to 64 [A-Za-z0-9_.:-]",
                    r->name);
        return;
    case AP_FORMAT_ASCENDING: {
        double prev = -INFINITY;
        if (!json_is_array(value) || !json_array_size(value)) {
            violate(v, at, "format", "%s must be a non-empty array of numbers", r->name);
            return;
        }
        json_array_foreach(value, i, item) {
            if (!json_is_number(item)) {
                violate(v, at, "format", "%s[%zu] must be a number", r->name, i);
                return;
            }
            if (json_number_value(item) <= prev) {
                violate(v, at, "ascending", "%s must be in ascending order: %g follows %g", r->name,
                        json_number_value(item), prev);
                return;
            }
            prev = json_number_value(item);
        }
        return;
    }
    case AP_FORMAT_WEIGHTS_SUM_100: {
        const char *k;
        double sum = 0;
        if (!json_is_object(value) || !json_object_size(value)) {
            violate(v, at, "format", "%s must map variant names to weights", r->name);
            return;
        }
        json_object_foreach((json_t *)value, k, item) {
            if (!json_is_number(item) || json_number_value(item) < 0) {
                violate(v, at, "format", "%s.%s must be a number >= 0", r->name, k);
                return;
            }
            sum += json_number_value(item);
        }
        if (fabs(sum - 100) > 1e-9)
            violate(v, at, "sum", "%s must sum to 100, got %g", r->name, sum);
        return;
    }
    case AP_FORMAT_SEGMENT: {
        const json_t *include = json_object_get(value, "include");
        const json_t *exclude = json_object_get(value, "exclude");
        int ok = json_is_object(value) && json_is_array(include) && json_array_size(include) > 0 &&
                 (!exclude || json_is_array(exclude));
        json_array_foreach(include, i, item) ok = ok && json_string_length(item) > 0;
        json_array_foreach(exclude, i, item) ok = ok && json_string_length(item) > 0;
        if (!ok)
            violate(v, at, "format",
                    "%s must be {\"include\": [segment ids, at least one], \"exclude\": [segment "
                    "ids]}",
                    r->name);
        return;
    }
    case AP_FORMAT_TERRITORY_RULES: {
        int ok = json_is_array(value) && json_array_size(value) > 0;
        json_array_foreach(value, i, item) {
            ok = ok && json_is_object(json_object_get(item, "match")) &&
                 json_object_size(json_object_get(item, "match")) > 0 &&
                 json_is_string(json_object_get(item, "assign_to")) &&
                 is_identifier(json_string_value(json_object_get(item, "assign_to")));
        }
        if (!ok)
            violate(v, at, "format",
                    "%s must be a non-empty array of {\"match\": {...}, \"assign_to\": \"id\"}",
                    r->name);
        return;
    }
    }
}

/* The guardrail that bounds a field (r->minimum_from or r->maximum_from at
 * `path`): money limits fail closed, so an absent one is "required" and one
 * that is not a number is "type". Checked once per action, whatever the
 * number of values; check_value compares only with a number. */
static void check_reference(const ap_field_rule *r, const char *path, const json_t *action,
                            ap_verdict *v) {
    const json_t *ref = path_get(action, path);
    if (!ref || json_is_null(ref))
        violate(v, path, "required", "%s needs %s to be checked against", r->name, path);
    else if (!json_is_number(ref))
        violate(v, path, "type", "%s must be a number to check %s against, got %s", path, r->name,
                type_name(ref));
}

/* Checks one value against its field rule; `at` names where the value sits. */
static void check_value(const ap_field_rule *r, const json_t *action, const json_t *value,
                        const char *at, const char *today, ap_verdict *v) {
    int ok;
    const char *want;
    switch (r->type) {
    case AP_FIELD_NUMBER: ok = json_is_number(value), want = "a number"; break;
    case AP_FIELD_INTEGER:
        ok = json_is_integer(value) ||
             (json_is_real(value) && json_real_value(value) == floor(json_real_value(value)));
        want = "an integer";
        break;
    case AP_FIELD_BOOLEAN: ok = json_is_boolean(value), want = "true or false"; break;
    case AP_FIELD_STRING: ok = json_is_string(value), want = "a string"; break;
    case AP_FIELD_DATE:
        ok = json_is_string(value) && is_date(json_string_value(value));
        want = "a date YYYY-MM-DD";
        break;
    case AP_FIELD_OBJECT: ok = json_is_object(value), want = "an object"; break;
    case AP_FIELD_ARRAY: ok = json_is_array(value), want = "an array"; break;
    default: ok = 0, want = "?";
    }
    if (!value) {
        violate(v, at, "required", "%s needs a value", r->name);
        return;
    }
    if (!ok) {
        violate(v, at, "type", "%s must be %s, got %s", r->name, want, type_name(value));
        return;
    }

    if (json_is_number(value)) {
        double x = json_number_value(value);
        if (r->has_exclusive_minimum && !(x > r->exclusive_minimum))
            violate(v, at, "exclusive_minimum", "%s must be > %g, got %g", r->name,
                    r->exclusive_minimum, x);
        if (r->has_minimum && x < r->minimum)
            violate(v, at, "minimum", "%s must be >= %g, got %g", r->name, r->minimum, x);
        if (r->has_maximum && x > r->maximum)
            violate(v, at, "maximum", "%s must be <= %g, got %g", r->name, r->maximum, x);
        const json_t *lo = r->minimum_from ? path_get(action, r->minimum_from) : NULL;
        const json_t *hi = r->maximum_from ? path_get(action, r->maximum_from) : NULL;
        if (json_is_number(lo) && x < json_number_value(lo))
            violate(v, at, "minimum_from", "%s must be >= %s (%g), got %g", r->name,
                    r->minimum_from, json_number_value(lo), x);
        if (json_is_number(hi) && x > json_number_value(hi))
            violate(v, at, "maximum_from", "%s must be <= %s (%g), got %g", r->name,
                    r->maximum_from, json_number_value(hi), x);
    }
    if (json_is_string(value)) {
        const char *s = json_string_value(value);
        if (r->enum_values) {
            size_t i;
            const json_t *e;
            int found = 0;
            json_array_foreach(r->enum_values, i, e) found |= !strcmp(s, json_string_value(e));
            if (!found) {
                char list[160] = "";
                json_array_foreach(r->enum_values, i, e) {
                    size_t n = strlen(list);
                    snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
                             json_string_value(e));
                }
                violate(v, at, "enum", "%s must be one of %s, got '%.64s'", r->name, list, s);
            }
        }
        if (r->max_length && utf8_length(s) > (size_t)r->max_length)
            violate(v, at, "max_length", "%s must be at most %d characters, got %zu", r->name,
                    r->max_length, utf8_length(s));
        if (r->not_before_today && strcmp(s, today) < 0)
            violate(v, at, "minimum", "%s must be today (%s) or later, got %s", r->name, today, s);
    }
    check_format(r, value, at, v);
}

static void check_experiment(const ap_field_rule *r, const json_t *action, const json_t *change,
                             const char *today, ap_verdict *v) {
    const json_t *variants = json_object_get(change, "variants");
    size_t i;
    const json_t *variant;
    double sum = 0;
    char at[64];
    if (!json_is_array(variants) || json_array_size(variants) < 2) {
        violate(v, "proposed_change.variants", "required",
                "an experiment needs an array of at least 2 variants");
        return;
    }
    json_array_foreach(variants, i, variant) {
        const json_t *name = json_object_get(variant, "name");
        const json_t *weight = json_object_get(variant, "weight");
        snprintf(at, sizeof at, "proposed_change.variants[%zu]", i);
        if (!json_is_string(name) || !json_string_length(name) || json_string_length(name) > 64)
            violate(v, at, "required", "each variant needs a 'name' of 1 to 64 bytes");
        if (!json_is_number(weight) || json_number_value(weight) < 0 ||
            json_number_value(weight) > 100) {
            violate(v, at, "weight", "each variant needs a 'weight' from 0 to 100");
            continue;
        }
        sum += json_number_value(weight);
        snprintf(at, sizeof at, "proposed_change.variants[%zu].value", i);
        check_value(r, action, json_object_get(variant, "value"), at, today, v);
    }
    if (fabs(sum - 100) > 1e-9)
        violate(v, "proposed_change.variants", "sum", "variant weights must sum to 100, got %g",
                sum);
}

/* A required (or optional) string member of 1..max bytes. */
static const char *check_string(const json_t *action, const char *key, size_t max, int required,
                                ap_verdict *v) {
    const json_t *m = json_object_get(action, key);
    if (!m) {
        if (required)
            violate(v, key, "required", "'%s' is required", key);
        return NULL;
    }
    if (!json_is_string(m) || json_string_length(m) < 1 || json_string_length(m) > max) {
        violate(v, key, "type", "'%s' must be a string of 1 to %zu bytes", key, max);
        return NULL;
    }
    return json_string_value(m);
}

static void check_number(const json_t *action, const char *key, double lo, double hi,
                         ap_verdict *v) {
    const json_t *m = json_object_get(action, key);
    if (m && (!json_is_number(m) || json_number_value(m) < lo || json_number_value(m) > hi))
        violate(v, key, "range", "'%s' must be a number from %g to %g", key, lo, hi);
}

int ap_validate(const ap_executor_map *map, const json_t *action, const char *today,
                ap_verdict *v) {
    memset(v, 0, sizeof *v);
    if (!json_is_object(action)) {
        violate(v, "(action)", "type", "an action must be a JSON object");
        return v->count;
    }
    check_string(action, "action_id", 64, 1, v);
    /* The tenant prefixes every key ("<tenant>:<key>"): without ':' in it, keys
     * of different tenants cannot meet. */
    const char *tenant = check_string(action, "tenant_id", 64, 1, v);
    if (tenant && !is_word(tenant, "_.-"))
        violate(v, "tenant_id", "format",
                "'tenant_id' must be 1 to 64 of [A-Za-z0-9_.-], got '%.64s'", tenant);
    check_string(action, "entity_id", 128, 1, v);
    const char *created = check_string(action, "created_at", 64, 1, v);
    if (created && !is_date_time(created))
        violate(v, "created_at", "format", "'created_at' must be an RFC 3339 date-time, got '%s'",
                created);
    check_string(action, "idempotency_key", 200, 0, v);
    check_string(action, "run_id", 128, 0, v);
    check_number(action, "confidence", 0, 1, v);
    check_number(action, "estimated_impact", -INFINITY, INFINITY, v);
    const json_t *tier = json_object_get(action, "tier");
    if (tier &&
        (!json_is_integer(tier) || json_integer_value(tier) < 1 || json_integer_value(tier) > 3))
        violate(v, "tier", "enum", "'tier' must be 1, 2 or 3");
    const json_t *m;
    if ((m = json_object_get(action, "guardrails")) && !json_is_object(m))
        violate(v, "guardrails", "type", "'guardrails' must be an object");
    if ((m = json_object_get(action, "dry_run")) && !json_is_boolean(m))
        violate(v, "dry_run", "type", "'dry_run' must be true or false");
    if ((m = json_object_get(action, "reason")) && !json_is_string(m))
        violate(v, "reason", "type", "'reason' must be a string");

    /* Routing: the subsystem must have an executor that accepts the type. */
    const char *subsystem = check_string(action, "owner_subsystem", 32, 1, v);
    const ap_subsystem *sub = NULL;
    if (subsystem && !(sub = ap_executor_map_subsystem(map, subsystem)))
        violate(v, "owner_subsystem", "executor_map",
                "owner_subsystem '%.32s' has no registered executor", subsystem);
    const char *type_name_s = check_string(action, "action_type", 32, 1, v);
    int type = type_name_s ? ap_action_type_parse(type_name_s) : -1;
    if (type_name_s && type < 0)
        violate(v, "action_type", "enum",
                "'action_type' must be one of config_change, experiment, pause, scale, revert, "
                "got '%.32s'",
                type_name_s);
    if (sub && type >= 0 && !sub->default_tier[type])
        violate(v, "action_type", "matrix", "action_type '%s' is not accepted by subsystem '%s'",
                type_name_s, sub->name);
    if (type == AP_ACTION_REVERT)
        check_string(action, "revert_of", 64, 1, v);

    /* The change itself. */
    const json_t *change = json_object_get(action, "proposed_change");
    if (!json_is_object(change)) {
        violate(v, "proposed_change", change ? "type" : "required",
                "'proposed_change' must be an object with 'field' and 'value'");
        return v->count;
    }
    const char *field = json_string_value(json_object_get(change, "field"));
    if (!field || !*field) {
        violate(v, "proposed_change.field", "required", "'proposed_change.field' is required");
        return v->count;
    }
    if (!sub)
        return v->count;
    const ap_field_rule *rule = ap_subsystem_field(sub, field);
    if (!rule) {
        violate(v, "proposed_change.field", "field", "subsystem '%s' has no field '%.64s'",
                sub->name, field);
        return v->count;
    }
    const json_t *value = json_object_get(change, "value");
    int accepted = type >= 0 && sub->default_tier[type];
    if (accepted && type == AP_ACTION_PAUSE &&
        (strcmp(field, "status") || !json_is_string(value) ||
         strcmp(json_string_value(value), "paused")))
        violate(v, "proposed_change", "pause",
                "a pause action sets field 'status' to 'paused', got field '%.64s'", field);
    if (accepted && type == AP_ACTION_SCALE && !rule->scalable)
        violate(v, "proposed_change.field", "scalable",
                "a scale action cannot change '%.64s' of subsystem '%s'", field, sub->name);
    if (type == AP_ACTION_EXPERIMENT)
        check_experiment(rule, action, change, today, v);
    else if (type == AP_ACTION_REVERT) { /* restores rollback data: a value is optional */
        if (value && !json_is_null(value))
            check_value(rule, action, value, "proposed_change.value", today, v);
    } else if (type >= 0)
        check_value(rule, action, value, "proposed_change.value", today, v);
    /* Whatever is to be set must be checked against its guardrails: a revert
     * without a value sets only the rollback data. */
    int sets = type == AP_ACTION_EXPERIMENT ? json_is_array(json_object_get(change, "variants"))
                                            : type >= 0 && value && !json_is_null(value);
    if (sets && rule->minimum_from)
        check_reference(rule, rule->minimum_from, action, v);
    if (sets && rule->maximum_from)
        check_reference(rule, rule->maximum_from, action, v);
    return v->count;
}

void ap_verdict_format(const ap_verdict *verdict, char *buf, size_t size) {
    size_t n = 0;
    if (!size)
        return;
    buf[0] = '\0';
    int kept = verdict->count < AP_VERDICT_MAX ? verdict->count : AP_VERDICT_MAX;
    for (int i = 0; i < kept && n < size; i++) {
        const ap_violation *x = &verdict->items[i];
        n += (size_t)snprintf(buf + n, size - n, "%s%s: %s: %s", i ? "; " : "", x->field, x->rule,
                              x->message);
    }
    if (verdict->count > kept && n < size)
        snprintf(buf + n, size - n, "; and %d more", verdict->count - kept);
}

void ap_today_utc(char *buf) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, 11, "%Y-%m-%d", &tm);
}
