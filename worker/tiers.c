#include "tiers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tier_floor {
    char subsystem[64];
    int type; /* ap_action_type, or -1: every type */
    int tier;
} tier_floor;

struct ap_tiers {
    const ap_executor_map *map;
    double min_confidence, min_impact;
    tier_floor *floors;
    int count;
};

ap_tiers *ap_tiers_new(const ap_config *cfg, const ap_executor_map *map, char *err, size_t errsz) {
    ap_tiers *t = calloc(1, sizeof *t);
    char *list = strdup(cfg->tier_floors), *save = NULL;
    if (!t || !list)
        goto nomem;
    t->map = map;
    t->min_confidence = cfg->tier1_min_confidence;
    t->min_impact = cfg->tier1_min_impact;
    for (char *entry = strtok_r(list, ",", &save); entry; entry = strtok_r(NULL, ",", &save)) {
        tier_floor f = {.type = -1};
        char *eq = strchr(entry, '='), *colon = strchr(entry, ':');
        if (!eq || (colon && colon > eq))
            goto invalid;
        *eq = '\0';
        if (colon) {
            *colon = '\0';
            if ((f.type = ap_action_type_parse(colon + 1)) < 0)
                goto invalid;
        }
        if (!ap_executor_map_subsystem(map, entry) || strlen(entry) >= sizeof f.subsystem ||
            strlen(eq + 1) != 1 || eq[1] < '1' || eq[1] > '3')
            goto invalid;
        snprintf(f.subsystem, sizeof f.subsystem, "%s", entry);
        f.tier = eq[1] - '0';
        tier_floor *grown = realloc(t->floors, (size_t)(t->count + 1) * sizeof *grown);
        if (!grown)
            goto nomem;
        t->floors = grown;
        t->floors[t->count++] = f;
        continue;
    invalid:
        ap_fail(AP_ERR_INVALID, err, errsz,
                "tier_floors: cannot use '%s': expected subsystem[:action_type]=1|2|3 with a "
                "subsystem of the executor map",
                entry);
        goto fail;
    }
    free(list);
    return t;
nomem:
    ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
fail:
    free(list);
    ap_tiers_free(t);
    return NULL;
}

int ap_tiers_of(const ap_tiers *t, const ap_action *a) {
    int type = ap_action_type_parse(a->action_type);
    const ap_subsystem *sub = ap_executor_map_subsystem(t->map, a->subsystem);
    int tier = sub && type >= 0 ? sub->default_tier[type] : 3;
    json_int_t asked = json_integer_value(json_object_get(a->json, "tier"));
    if (asked > tier)
        tier = (int)asked;
    for (int i = 0; i < t->count; i++)
        if (!strcmp(t->floors[i].subsystem, a->subsystem) &&
            (t->floors[i].type < 0 || t->floors[i].type == type) && t->floors[i].tier > tier)
            tier = t->floors[i].tier;
    return tier < 1 ? 1 : tier > 3 ? 3 : tier;
}

int ap_tiers_eligible(const ap_tiers *t, const ap_action *a) {
    const json_t *confidence = json_object_get(a->json, "confidence");
    const json_t *impact = json_object_get(a->json, "estimated_impact");
    return json_is_number(confidence) && json_number_value(confidence) > t->min_confidence &&
           json_is_number(impact) && json_number_value(impact) > t->min_impact;
}

void ap_tiers_free(ap_tiers *t) {
    if (!t)
        return;
    free(t->floors);
    free(t);
}
