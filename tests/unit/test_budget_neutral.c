/* test_budget_neutral.c — the --budget-neutral rescale (producer/budget_neutral.c):
 * totals kept to the cent, the larger side giving way, every rescaled value
 * between the budget seen and the one asked for, increases with nothing to
 * pay for them withheld, groups that cannot be rescaled refused as a whole,
 * other actions left alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../producer/budget_neutral.h"
#include "unit.h"

/* A budget_daily change of tenant/run; current < 0 leaves `current` out. */
static json_t *budget(const char *id, const char *tenant, const char *run, const char *entity,
                      double current, double value) {
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:f}, s:s, s:{s:f}}", "action_id", id,
                          "tenant_id", tenant, "owner_subsystem", "campaigns", "action_type",
                          "config_change", "entity_id", entity, "proposed_change", "field",
                          "budget_daily", "value", value, "created_at", "2026-01-15T06:00:00Z",
                          "guardrails", "max_daily_spend", 100000.0);
    if (run)
        json_object_set_new(a, "run_id", json_string(run));
    if (current >= 0)
        json_object_set_new(a, "current", json_real(current));
    return a;
}

static double value_of(const json_t *actions, int i) {
    return json_number_value(json_object_get(
        json_object_get(json_array_get(actions, (size_t)i), "proposed_change"), "value"));
}

static double current_of(const json_t *actions, int i) {
    return json_number_value(json_object_get(json_array_get(actions, (size_t)i), "current"));
}

/* The sum of the changes that will be published (kept and rescaled). */
static double published_delta(const json_t *actions, const ap_budget_neutral_plan *p) {
    double sum = 0;
    for (int i = 0; i < p->count; i++)
        if (p->roles[i] == AP_BN_KEPT || p->roles[i] == AP_BN_RESCALED)
            sum += value_of(actions, i) - current_of(actions, i);
    return sum;
}

static void net_increase_scales_the_increases(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("up-1", "acme", "r1", "c1", 100, 150)); /* +50 */
    json_array_append_new(a, budget("up-2", "acme", "r1", "c2", 200, 230)); /* +30 */
    json_array_append_new(a, budget("down", "acme", "r1", "c3", 300, 260)); /* -40 */
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK_INT_EQ(p.ngroups, 1);
    CHECK_STR_EQ(p.groups[0].scaled, "increases");
    CHECK_INT_EQ(p.groups[0].increase, 8000);
    CHECK_INT_EQ(p.groups[0].decrease, 4000);
    CHECK_INT_EQ(p.groups[0].new_increase, 4000);
    CHECK(fabs(p.groups[0].factor - 0.5) < 1e-12);
    CHECK_INT_EQ(p.roles[0], AP_BN_RESCALED);
    CHECK_INT_EQ(p.roles[1], AP_BN_RESCALED);
    CHECK_INT_EQ(p.roles[2], AP_BN_KEPT);
    CHECK(fabs(value_of(a, 0) - 125) < 1e-9);
    CHECK(fabs(value_of(a, 1) - 215) < 1e-9);
    CHECK(fabs(value_of(a, 2) - 260) < 1e-9);
    CHECK(fabs(published_delta(a, &p)) < 0.005);
    json_t *bn = json_object_get(json_array_get(a, 0), "budget_neutral");
    CHECK(fabs(json_number_value(json_object_get(bn, "requested")) - 150) < 1e-9);
    CHECK(!json_object_get(json_array_get(a, 2), "budget_neutral"));
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void net_decrease_scales_the_decreases(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("down-1", "acme", "r1", "c1", 100, 40)); /* -60 */
    json_array_append_new(a, budget("up", "acme", "r1", "c2", 100, 115));    /* +15 */
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK_STR_EQ(p.groups[0].scaled, "decreases");
    CHECK(fabs(value_of(a, 0) - 85) < 1e-9);
    CHECK(fabs(value_of(a, 1) - 115) < 1e-9);
    CHECK(fabs(published_delta(a, &p)) < 0.005);
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void increases_alone_are_withheld(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("up-1", "acme", "r1", "c1", 100, 120));
    json_array_append_new(a, budget("up-2", "acme", "r1", "c2", 50, 60));
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK_INT_EQ(p.roles[0], AP_BN_WITHHELD);
    CHECK_INT_EQ(p.roles[1], AP_BN_WITHHELD);
    CHECK_INT_EQ(p.groups[0].withheld, 2);
    CHECK_INT_EQ(p.groups[0].new_increase, 0);
    CHECK(fabs(value_of(a, 0) - 120) < 1e-9); /* a withheld action is not rewritten */
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void a_neutral_run_is_kept_as_it_is(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("up", "acme", "r1", "c1", 100, 120.5));
    json_array_append_new(a, budget("down", "acme", "r1", "c2", 100, 79.5));
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK_STR_EQ(p.groups[0].scaled, "none");
    CHECK_INT_EQ(p.roles[0], AP_BN_KEPT);
    CHECK_INT_EQ(p.roles[1], AP_BN_KEPT);
    CHECK(fabs(value_of(a, 0) - 120.5) < 1e-9);
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void leftover_cents_go_to_the_largest_remainders(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("up-1", "acme", "r1", "c1", 10, 11)); /* +1.00 each */
    json_array_append_new(a, budget("up-2", "acme", "r1", "c2", 10, 11));
    json_array_append_new(a, budget("up-3", "acme", "r1", "c3", 10, 11));
    json_array_append_new(a, budget("down", "acme", "r1", "c4", 10, 9)); /* -1.00 */
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    /* 33.33 cents each: 33, 33, 33 and the cent left to the earliest. */
    CHECK(fabs(value_of(a, 0) - 10.34) < 1e-9);
    CHECK(fabs(value_of(a, 1) - 10.33) < 1e-9);
    CHECK(fabs(value_of(a, 2) - 10.33) < 1e-9);
    CHECK(fabs(published_delta(a, &p)) < 0.005);
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void groups_are_per_tenant_and_run(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("a-up", "acme", "r1", "c1", 100, 130));
    json_array_append_new(a, budget("g-up", "globex", "r1", "c1", 100, 130));
    json_array_append_new(a, budget("a2-down", "acme", "r2", "c2", 100, 90));
    json_array_append_new(a, budget("g-down", "globex", "r1", "c2", 100, 90));
    json_array_append_new(a, budget("n-up", "acme", NULL, "c3", 100, 101));
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK_INT_EQ(p.ngroups, 4);
    CHECK_STR_EQ(p.groups[0].tenant_id, "acme");
    CHECK_STR_EQ(p.groups[1].tenant_id, "globex");
    CHECK_STR_EQ(p.groups[2].run_id, "r2");
    CHECK_STR_EQ(p.groups[3].run_id, "");
    CHECK_INT_EQ(p.roles[0], AP_BN_WITHHELD); /* acme r1: nothing pays for it */
    CHECK(fabs(value_of(a, 1) - 110) < 1e-9); /* globex r1: +30 scaled to +10 */
    CHECK_INT_EQ(p.roles[2], AP_BN_WITHHELD); /* acme r2: a cut alone keeps no total */
    CHECK_INT_EQ(p.roles[4], AP_BN_WITHHELD);
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void without_current_the_group_is_refused(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("up", "acme", "r1", "c1", 100, 120));
    json_array_append_new(a, budget("blind-1", "acme", "r1", "c2", -1, 80));
    json_array_append_new(a, budget("blind-2", "acme", "r1", "c3", -1, 90));
    json_array_append_new(a, budget("g-up", "globex", "r1", "c1", 100, 120));
    json_array_append_new(a, budget("g-down", "globex", "r1", "c2", 100, 90));
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK(p.groups[0].refused);
    CHECK_STR_CONTAINS(p.groups[0].reason, "without a numeric 'current'");
    CHECK_STR_CONTAINS(p.groups[0].reason, "'blind-1', 'blind-2'");
    for (int i = 0; i < 3; i++)
        CHECK_INT_EQ(p.roles[i], AP_BN_REFUSED);
    CHECK(fabs(value_of(a, 0) - 120) < 1e-9);
    CHECK(!p.groups[1].refused);
    CHECK(fabs(value_of(a, 3) - 110) < 1e-9);
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void one_campaign_twice_is_refused(void) {
    json_t *a = json_array();
    json_array_append_new(a, budget("first", "acme", "r1", "c1", 100, 120));
    json_array_append_new(a, budget("second", "acme", "r1", "c1", 120, 80));
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK(p.groups[0].refused);
    CHECK_STR_CONTAINS(p.groups[0].reason, "campaign 'c1' has two budget changes");
    ap_budget_neutral_release(&p);
    json_decref(a);
}

static void other_actions_are_left_alone(void) {
    json_t *a = json_array();
    json_t *dry = budget("dry", "acme", "r1", "c1", 100, 130);
    json_object_set_new(dry, "dry_run", json_true());
    json_array_append_new(a, dry);
    json_t *total = budget("total", "acme", "r1", "c2", 100, 130);
    json_object_set_new(json_object_get(total, "proposed_change"), "field",
                        json_string("budget_total"));
    json_array_append_new(a, total);
    json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i}}", "action_id",
                                       "touches", "tenant_id", "acme", "owner_subsystem", "crm",
                                       "action_type", "config_change", "entity_id", "s1",
                                       "proposed_change", "field", "max_touches", "value", 5));
    json_t *scale = budget("scale", "acme", "r1", "c3", 100, 90);
    json_object_set_new(scale, "action_type", json_string("scale"));
    json_array_append_new(a, scale);
    ap_budget_neutral_plan p;
    char err[128];
    if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
        return;
    CHECK_INT_EQ(p.roles[0], AP_BN_OUTSIDE);
    CHECK_INT_EQ(p.roles[1], AP_BN_OUTSIDE);
    CHECK_INT_EQ(p.roles[2], AP_BN_OUTSIDE);
    CHECK_INT_EQ(p.roles[3], AP_BN_WITHHELD); /* a scale takes part: a cut alone */
    CHECK_INT_EQ(p.group[0], -1);
    CHECK(fabs(value_of(a, 0) - 130) < 1e-9);
    CHECK(fabs(value_of(a, 1) - 130) < 1e-9);
    ap_budget_neutral_release(&p);
    json_decref(a);
}

/* Many random runs: the totals hold to the cent and every value stays
 * between the budget seen and the one asked for. */
static void random_runs_keep_their_totals(void) {
    srand(7);
    for (int run = 0; run < 300; run++) {
        json_t *a = json_array();
        int n = 1 + rand() % 12;
        double lo[16], hi[16];
        for (int i = 0; i < n; i++) {
            char id[32], entity[32];
            snprintf(id, sizeof id, "a-%d", i);
            snprintf(entity, sizeof entity, "c-%d", i);
            double cur = (1 + rand() % 500000) / 100.0;
            double req = cur * (0.5 + (rand() % 1000) / 1000.0);
            req = round(req * 100) / 100;
            lo[i] = cur < req ? cur : req;
            hi[i] = cur < req ? req : cur;
            json_array_append_new(a, budget(id, "acme", "r", entity, cur, req < 0.01 ? 0.01 : req));
        }
        ap_budget_neutral_plan p;
        char err[128];
        if (!CHECK(ap_budget_neutral_rescale(a, &p, err, sizeof err) == AP_OK))
            return;
        double delta = published_delta(a, &p);
        if (!CHECK(fabs(delta) < 0.005)) {
            printf("  run %d: the published changes sum to %.4f\n", run, delta);
            ap_budget_neutral_release(&p);
            json_decref(a);
            return;
        }
        for (int i = 0; i < n; i++)
            CHECK(value_of(a, i) >= lo[i] - 1e-9 && value_of(a, i) <= hi[i] + 1e-9);
        ap_budget_neutral_release(&p);
        json_decref(a);
    }
}

static void amounts_are_written_with_a_sign(void) {
    char buf[32];
    ap_budget_neutral_amount(1250, buf, sizeof buf);
    CHECK_STR_EQ(buf, "+12.50");
    ap_budget_neutral_amount(-7, buf, sizeof buf);
    CHECK_STR_EQ(buf, "-0.07");
    ap_budget_neutral_amount(0, buf, sizeof buf);
    CHECK_STR_EQ(buf, "0.00");
}

const unit_test unit_budget_neutral_tests[] = {
    UNIT_TEST(net_increase_scales_the_increases),
    UNIT_TEST(net_decrease_scales_the_decreases),
    UNIT_TEST(increases_alone_are_withheld),
    UNIT_TEST(a_neutral_run_is_kept_as_it_is),
    UNIT_TEST(leftover_cents_go_to_the_largest_remainders),
    UNIT_TEST(groups_are_per_tenant_and_run),
    UNIT_TEST(without_current_the_group_is_refused),
    UNIT_TEST(one_campaign_twice_is_refused),
    UNIT_TEST(other_actions_are_left_alone),
    UNIT_TEST(random_runs_keep_their_totals),
    UNIT_TEST(amounts_are_written_with_a_sign),
    {0},
};
