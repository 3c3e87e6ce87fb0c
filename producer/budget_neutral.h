/* budget_neutral.h — `actionpool-producer publish --budget-neutral`: the
 * daily budget changes of one run and one tenant are rescaled so that the
 * tenant's total daily budget does not change. A pure function over JSON: no
 * servers, no settings.
 *
 * Which actions take part: owner_subsystem "campaigns", action_type
 * "config_change" or "scale", proposed_change.field "budget_daily", not a dry
 * run. They are grouped by (tenant_id, run_id); actions without run_id form
 * one run of their own per tenant. Every other action is left alone.
 *
 * The old value of each change is its `current`: the budget the planner saw
 * (the worker checks it again before applying: a stale one is a conflict and
 * changes nothing). A group is refused as a whole, none of its budget changes
 * published, when
 *   - one of them has no numeric `current` (its change is unknown, so no
 *     rescale can keep the total), or
 *   - one campaign has two budget changes in it (the second one's `current`
 *     is the first one's value, which a rescale moves), or
 *   - a value is beyond AP_BUDGET_NEUTRAL_MAX (no daily budget is that large).
 * Refusing rather than leaving them out keeps the promise of the option: with
 * it, nothing published changes a tenant's total daily budget.
 *
 * The rule, in whole cents: I is the sum of the increases of a group, D the
 * sum of its decreases. The larger side gives way: when I > D every increase
 * is scaled by D / I, when D > I every decrease by I / D; the other side is
 * published as requested. So every rescaled value lies between the budget the
 * planner saw and the one it asked for: no change turns round, and every
 * bound the requested value kept (maximum, +30 % cap, floor) still holds.
 * Shares are rounded to cents by the largest-remainder method (each change
 * gets its exact share rounded down, the cents left over go one each to the
 * largest remainders, ties to the larger change, then the earlier one), so
 * the sum of the new budgets equals the sum of the old ones to the cent.
 *
 * A run of increases only (D = 0) therefore rescales every change to nothing:
 * there is no decrease to pay for them; so does a run of decreases only
 * (nothing takes up the budget they free). Such an action, and any other
 * whose rescaled change is zero, is withheld: not published, since it would
 * change nothing and yet count as a touch of its campaign (rate limits, the
 * 24 h rule of tier 1). A rescaled action keeps the requested value as
 * "budget_neutral": {"requested": X} and carries the new one in
 * proposed_change.value. */
#ifndef AP_BUDGET_NEUTRAL_H
#define AP_BUDGET_NEUTRAL_H

#include <jansson.h>

#include "action.h"
#include "status.h"

#define AP_BUDGET_NEUTRAL_MAX 1e11 /* largest budget (currency units a day) rescaled */

/* What became of one action. */
typedef enum ap_budget_neutral_role {
    AP_BN_OUTSIDE = 0, /* not a budget change: untouched */
    AP_BN_KEPT,        /* a budget change published as requested */
    AP_BN_RESCALED,    /* proposed_change.value rescaled, "budget_neutral" added */
    AP_BN_WITHHELD,    /* rescaled to no change: not to be published */
    AP_BN_REFUSED,     /* its group cannot be rescaled: the group's reason says why */
} ap_budget_neutral_role;

/* One run of one tenant. Amounts are in cents. */
typedef struct ap_budget_neutral_group {
    char tenant_id[AP_ID_MAX + 1];
    char run_id[129];       /* "" for actions without run_id */
    int changes;            /* budget changes in the group */
    long long increase;     /* requested: sum of the increases (>= 0) */
    long long decrease;     /* requested: sum of the decreases (>= 0) */
    long long new_increase; /* published: equals new_decrease; both 0 when refused */
    long long new_decrease;
    const char *scaled;     /* "increases", "decreases" or "none" (static text) */
    double factor;          /* what the scaled side was multiplied by; 1 for "none" */
    int rescaled, withheld; /* actions of each role */
    int refused;
    char reason[512]; /* when refused: why, naming the actions */
} ap_budget_neutral_group;

/* The outcome for every action of the array given to ap_budget_neutral_rescale. */
typedef struct ap_budget_neutral_plan {
    int count;                     /* actions */
    ap_budget_neutral_role *roles; /* count entries */
    int *group;                    /* count entries: index into groups, -1 when outside */
    ap_budget_neutral_group *groups;
    int ngroups; /* in the order of their first action */
} ap_budget_neutral_plan;

/* Rescales the budget changes among `actions` (a JSON array of action
 * objects, changed in place: proposed_change.value and "budget_neutral" of
 * the rescaled ones) and fills plan, which the caller releases with
 * ap_budget_neutral_release. The actions should be valid (ap_validate): an
 * element that is not an action with a number for its value is outside.
 * Fails only with AP_ERR_NOMEM (err set); then plan is empty and some actions
 * may have been rescaled already: publish none of them. */
ap_status ap_budget_neutral_rescale(json_t *actions, ap_budget_neutral_plan *plan, char *err,
                                    size_t errsz);

/* Frees what plan holds and zeroes it; accepts a zeroed plan. */
void ap_budget_neutral_release(ap_budget_neutral_plan *plan);

/* Writes cents as an amount with a sign ("+12.50", "-0.07", "0.00") into buf
 * (at least 32 bytes). */
void ap_budget_neutral_amount(long long cents, char *buf, size_t size);

#endif
