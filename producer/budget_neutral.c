#include "budget_neutral.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One budget change while its group is worked out. */
typedef struct budget_change {
    int index;          /* into the actions array */
    long long old, req; /* cents: the budget the planner saw, the one it asked for */
    long long delta;    /* |req - old| */
    long long share;    /* the part of delta kept, 0..delta */
    double remainder;   /* of the exact share, for the largest-remainder rounding */
    int scaled;         /* on the side that gives way */
} budget_change;

/* Whether action is a budget change that takes part (see the header). */
static int takes_part(const json_t *action) {
    const json_t *change = json_object_get(action, "proposed_change");
    const char *sub = json_string_value(json_object_get(action, "owner_subsystem"));
    const char *type = json_string_value(json_object_get(action, "action_type"));
    const char *field = json_string_value(json_object_get(change, "field"));
    return sub && type && field && !strcmp(sub, "campaigns") &&
           (!strcmp(type, "config_change") || !strcmp(type, "scale")) &&
           !strcmp(field, "budget_daily") && json_is_number(json_object_get(change, "value")) &&
           json_is_string(json_object_get(action, "tenant_id")) &&
           !json_is_true(json_object_get(action, "dry_run"));
}

/* Index of the group of (tenant, run) in plan, added when new; -1 when out of
 * memory. Linear: a kernel run holds few tenants. */
static int group_of(ap_budget_neutral_plan *plan, int *cap, const char *tenant, const char *run) {
    for (int g = 0; g < plan->ngroups; g++)
        if (!strcmp(plan->groups[g].tenant_id, tenant) && !strcmp(plan->groups[g].run_id, run))
            return g;
    if (plan->ngroups == *cap) {
        int grown_cap = *cap ? *cap * 2 : 8;
        ap_budget_neutral_group *grown = realloc(plan->groups, (size_t)grown_cap * sizeof *grown);
        if (!grown)
            return -1;
        plan->groups = grown;
        *cap = grown_cap;
    }
    ap_budget_neutral_group *g = &plan->groups[plan->ngroups];
    memset(g, 0, sizeof *g);
    snprintf(g->tenant_id, sizeof g->tenant_id, "%s", tenant);
    snprintf(g->run_id, sizeof g->run_id, "%s", run);
    g->scaled = "none";
    g->factor = 1;
    return plan->ngroups++;
}

/* Appends "'id'" to a list of names in buf, ", ..." once it is full. */
static void name_add(char *buf, size_t size, int *named, const char *id) {
    size_t n = strlen(buf);
    if (*named < 0)
        return;
    if (n + strlen(id) + 10 >= size) {
        if (n + 6 < size)
            strcat(buf, ", ...");
        *named = -1;
        return;
    }
    snprintf(buf + n, size - n, "%s'%s'", *named ? ", " : "", id);
    (*named)++;
}

static long long to_cents(double v) {
    return llround(v * 100.0);
}

static const char *action_id_of(const json_t *actions, int index) {
    const char *id =
        json_string_value(json_object_get(json_array_get(actions, index), "action_id"));
    return id ? id : "(no action_id)";
}

/* Sets g->refused and its reason when the group cannot be rescaled. */
static void group_check(ap_budget_neutral_group *g, const json_t *actions, const budget_change *c,
                        int n, const int *has_current) {
    char names[384] = "";
    int named = 0;
    for (int i = 0; i < n; i++)
        if (!has_current[i])
            name_add(names, sizeof names, &named, action_id_of(actions, c[i].index));
    if (*names) {
        snprintf(g->reason, sizeof g->reason,
                 "budget changes without a numeric 'current' (the budget the planner saw) "
                 "cannot be rescaled: %s",
                 names);
        g->refused = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        const json_t *a = json_array_get(actions, c[i].index);
        const char *entity = json_string_value(json_object_get(a, "entity_id"));
        for (int j = i + 1; entity && j < n; j++) {
            const char *other = json_string_value(
                json_object_get(json_array_get(actions, c[j].index), "entity_id"));
            if (other && !strcmp(entity, other)) {
                snprintf(g->reason, sizeof g->reason,
                         "campaign '%.128s' has two budget changes in one run ('%s' and '%s')",
                         entity, action_id_of(actions, c[i].index),
                         action_id_of(actions, c[j].index));
                g->refused = 1;
                return;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        const json_t *a = json_array_get(actions, c[i].index);
        double cur = json_number_value(json_object_get(a, "current"));
        double req =
            json_number_value(json_object_get(json_object_get(a, "proposed_change"), "value"));
        if (!(fabs(cur) <= AP_BUDGET_NEUTRAL_MAX && fabs(req) <= AP_BUDGET_NEUTRAL_MAX)) {
            snprintf(g->reason, sizeof g->reason, "'%s': a budget beyond %.0f cannot be rescaled",
                     action_id_of(actions, c[i].index), AP_BUDGET_NEUTRAL_MAX);
            g->refused = 1;
            return;
        }
    }
}

/* Orders the changes of the scaled side for the leftover cents: the largest
 * remainder first, then the larger change, then the earlier action. */
static int by_remainder(const void *pa, const void *pb) {
    const budget_change *a = *(const budget_change *const *)pa;
    const budget_change *b = *(const budget_change *const *)pb;
    if (a->remainder != b->remainder)
        return a->remainder > b->remainder ? -1 : 1;
    if (a->delta != b->delta)
        return a->delta > b->delta ? -1 : 1;
    return a->index - b->index;
}

/* Scales the changes marked `scaled` so that their deltas sum to target
 * (0 <= target < their sum), each share in 0..delta. order: scratch room for
 * n pointers. */
static void shares_fit(budget_change *c, int n, long long total, long long target,
                       budget_change **order) {
    long long given = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!c[i].scaled)
            continue;
        long double exact = (long double)c[i].delta * (long double)target / (long double)total;
        long long q = (long long)floorl(exact);
        q = q < 0 ? 0 : q > c[i].delta ? c[i].delta : q;
        c[i].share = q;
        c[i].remainder = (double)(exact - (long double)q);
        given += q;
        order[m++] = &c[i];
    }
    qsort(order, (size_t)m, sizeof *order, by_remainder);
    /* Exact shares round down to at most one cent each below: what is left is
     * fewer cents than changes. The loops also absorb any floating-point
     * slip; capacity is there, as target < total. */
    while (given < target)
        for (int k = 0; k < m && given < target; k++)
            if (order[k]->share < order[k]->delta)
                order[k]->share++, given++;
    while (given > target)
        for (int k = m - 1; k >= 0 && given > target; k--)
            if (order[k]->share > 0)
                order[k]->share--, given--;
}

/* The JSON number for an amount in cents: an integer when it is whole. */
static json_t *amount_json(long long cents) {
    if (cents % 100 == 0)
        return json_integer(cents / 100);
    return json_real((double)cents / 100.0);
}

/* Works out group g over its changes c[0..n) and rewrites the actions. */
static ap_status group_apply(ap_budget_neutral_plan *plan, ap_budget_neutral_group *g,
                             json_t *actions, budget_change *c, int n, budget_change **order) {
    for (int i = 0; i < n; i++) {
        if (c[i].req > c[i].old)
            g->increase += c[i].req - c[i].old;
        else
            g->decrease += c[i].old - c[i].req;
    }
    for (int i = 0; i < n; i++)
        plan->roles[c[i].index] = g->refused ? AP_BN_REFUSED : AP_BN_KEPT;
    if (g->refused) /* nothing of it is published */
        return AP_OK;
    g->new_increase = g->increase;
    g->new_decrease = g->decrease;
    if (g->increase == g->decrease)
        return AP_OK;

    int ups = g->increase > g->decrease;
    long long total = ups ? g->increase : g->decrease, target = ups ? g->decrease : g->increase;
    g->scaled = ups ? "increases" : "decreases";
    g->factor = (double)target / (double)total;
    for (int i = 0; i < n; i++) {
        c[i].delta = c[i].req > c[i].old ? c[i].req - c[i].old : c[i].old - c[i].req;
        c[i].scaled = c[i].delta > 0 && (c[i].req > c[i].old) == ups;
        c[i].share = c[i].delta;
    }
    shares_fit(c, n, total, target, order);
    if (ups)
        g->new_increase = target;
    else
        g->new_decrease = target;

    for (int i = 0; i < n; i++) {
        if (!c[i].scaled || c[i].share == c[i].delta)
            continue;
        if (c[i].share == 0) {
            plan->roles[c[i].index] = AP_BN_WITHHELD;
            g->withheld++;
            continue;
        }
        json_t *a = json_array_get(actions, c[i].index);
        json_t *change = json_object_get(a, "proposed_change");
        long long cents = ups ? c[i].old + c[i].share : c[i].old - c[i].share;
        json_t *requested = json_pack("{s:O}", "requested", json_object_get(change, "value"));
        json_t *value = amount_json(cents);
        if (!requested || !value || json_object_set_new(a, "budget_neutral", requested)) {
            json_decref(value);
            return AP_ERR_NOMEM;
        }
        if (json_object_set_new(change, "value", value))
            return AP_ERR_NOMEM;
        plan->roles[c[i].index] = AP_BN_RESCALED;
        g->rescaled++;
    }
    return AP_OK;
}

ap_status ap_budget_neutral_rescale(json_t *actions, ap_budget_neutral_plan *plan, char *err,
                                    size_t errsz) {
    ap_status st = AP_OK;
    int n = (int)json_array_size(actions), cap = 0;
    budget_change *c = NULL, **order = NULL;
    int *has_current = NULL;

    memset(plan, 0, sizeof *plan);
    plan->count = n;
    plan->roles = calloc((size_t)n + 1, sizeof *plan->roles);
    plan->group = calloc((size_t)n + 1, sizeof *plan->group);
    c = calloc((size_t)n + 1, sizeof *c);
    order = calloc((size_t)n + 1, sizeof *order);
    has_current = calloc((size_t)n + 1, sizeof *has_current);
    if (!plan->roles || !plan->group || !c || !order || !has_current) {
        st = AP_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const json_t *a = json_array_get(actions, (size_t)i);
        plan->group[i] = -1;
        if (!takes_part(a))
            continue;
        const char *run = json_string_value(json_object_get(a, "run_id"));
        int g = group_of(plan, &cap, json_string_value(json_object_get(a, "tenant_id")),
                         run ? run : "");
        if (g < 0) {
            st = AP_ERR_NOMEM;
            goto out;
        }
        plan->group[i] = g;
        plan->groups[g].changes++;
    }
    /* Each group in turn: its changes gathered in action order into c. */
    for (int g = 0; g < plan->ngroups; g++) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (plan->group[i] != g)
                continue;
            const json_t *a = json_array_get(actions, (size_t)i);
            const json_t *cur = json_object_get(a, "current");
            double req =
                json_number_value(json_object_get(json_object_get(a, "proposed_change"), "value"));
            has_current[m] = json_is_number(cur);
            c[m] = (budget_change){.index = i};
            if (has_current[m] && fabs(json_number_value(cur)) <= AP_BUDGET_NEUTRAL_MAX &&
                fabs(req) <= AP_BUDGET_NEUTRAL_MAX) {
                c[m].old = to_cents(json_number_value(cur));
                c[m].req = to_cents(req);
            }
            m++;
        }
        group_check(&plan->groups[g], actions, c, m, has_current);
        if ((st = group_apply(plan, &plan->groups[g], actions, c, m, order)))
            goto out;
    }
out:
    free(has_current);
    free(order);
    free(c);
    if (st) {
        ap_budget_neutral_release(plan);
        ap_fail(st, err, errsz, "out of memory");
    }
    return st;
}

void ap_budget_neutral_release(ap_budget_neutral_plan *plan) {
    free(plan->roles);
    free(plan->group);
    free(plan->groups);
    memset(plan, 0, sizeof *plan);
}

void ap_budget_neutral_amount(long long cents, char *buf, size_t size) {
    unsigned long long a = cents < 0 ? 0ULL - (unsigned long long)cents : (unsigned long long)cents;
    snprintf(buf, size, "%s%llu.%02llu", cents > 0 ? "+" : cents < 0 ? "-" : "", a / 100, a % 100);
}
