/* actionpool-producer — validates kernel output and publishes its actions to
 * <prefix>.<subsystem>, keyed by "<tenant>:<entity>".
 *
 * The input is a file, standard input, or (--from-url) the body of an HTTP(S)
 * GET. Actions are checked and sent one by one as they are read; with
 * --budget-neutral all of them are read and checked first, then the budget
 * changes are rescaled (budget_neutral.h), then they are sent. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "action.h"
#include "budget_neutral.h"
#include "config.h"
#include "executor_map.h"
#include "fetch.h"
#include "kernel_output.h"
#include "log.h"
#include "publisher.h"
#include "topics.h"
#include "validate.h"

#define VERSION "0.1.0"

/* The Authorization header value for --from-url (a secret: never shown). */
#define AUTH_ENV                "ACTIONPOOL_FROM_URL_AUTHORIZATION"
#define FETCH_TIMEOUT_DEFAULT_S 60

enum { EXIT_PROBLEM = 1, EXIT_USAGE = 2 };

/* One action of the input, from reading to its delivery report. */
typedef struct entry {
    char where[64];
    char action_id[AP_ID_MAX + 1];
    char subsystem[32];
    int valid;
    int withheld;  /* --budget-neutral left it nothing to change: not sent */
    int delivered; /* 1 delivered, -1 failed, 0 not (yet) reported */
    json_t *json;  /* --budget-neutral: the action, held until sent; else NULL */
    char *problem; /* --budget-neutral: why it could not be read; else NULL */
} entry;

typedef struct run {
    const ap_executor_map *map;
    const ap_config *cfg;
    ap_publisher *publisher; /* NULL for validate */
    int json;                /* --json report */
    int budget_neutral;      /* --budget-neutral */
    char today[11];
    entry *entries;
    int count, cap;
    int refused, withheld, send_failed;
    json_t *report;  /* --json: per-action results, one per entry, in order */
    json_t *budgets; /* --json --budget-neutral: one object per run and tenant */
} run;

static void usage(FILE *out) {
    fprintf(out,
            "usage: actionpool-producer [settings] publish [--json] [--budget-neutral] FILE|-\n"
            "       actionpool-producer [settings] publish [--json] [--budget-neutral]\n"
            "                           --from-url URL [--from-url-timeout SECONDS]\n"
            "       actionpool-producer [settings] validate [--json] [--budget-neutral]\n"
            "                           FILE|- | --from-url URL\n"
            "\n"
            "Reads kernel output (a JSON document with \"optimization_actions\", or JSON\n"
            "Lines of actions), validates every action against the action schema and the\n"
            "executor map, and (publish) sends the valid ones to Kafka.\n"
            "\n"
            "  publish     validate, publish the valid actions, wait for every delivery\n"
            "  validate    validate only; needs no servers (for planners' CI pipelines)\n"
            "  --json      print the report as JSON on stdout\n"
            "  --from-url URL\n"
            "              read the kernel output from an http:// or https:// URL (GET;\n"
            "              redirects followed only to the same scheme; any answer but 2xx\n"
            "              is an error, exit 2). When the environment variable\n"
            "              " AUTH_ENV " is set (e.g. \"Bearer <token>\")\n"
            "              it is sent as the Authorization header; it is never printed\n"
            "  --from-url-timeout SECONDS\n"
            "              longest time for the whole fetch (default %d)\n"
            "  --budget-neutral\n"
            "              rescale the daily budget changes (campaigns, budget_daily,\n"
            "              config_change or scale, not dry runs) of each run and tenant so\n"
            "              that the tenant's total daily budget does not change. The old\n"
            "              budget of each change is its 'current'. The larger side gives\n"
            "              way: when the increases outweigh the decreases, every increase is\n"
            "              scaled by decreases/increases (and the other way round), in whole\n"
            "              cents, the leftover cents to the largest remainders; the other\n"
            "              side is sent as requested, so no change turns round or goes past\n"
            "              what was asked. A rescaled action carries \"budget_neutral\":\n"
            "              {\"requested\": X}. An action rescaled to no change (every one of\n"
            "              a run of only increases, or only decreases) is withheld: not\n"
            "              sent, not an error. When a run's budget changes cannot be\n"
            "              rescaled (one without a numeric 'current', or one campaign\n"
            "              changed twice), all of them are refused. One line per run and\n"
            "              tenant says what was done\n"
            "  --help      this text          --version  the version\n"
            "\n"
            "Exit status: 0 all actions valid (and delivered; withheld ones included), 1 some\n"
            "refused or not delivered, 2 usage, input, fetch or configuration error.\n\n",
            FETCH_TIMEOUT_DEFAULT_S);
    ap_config_usage(out, AP_PROG_PRODUCER);
}

/* A new entry for the action read at `where`; NULL when out of memory. */
static entry *entry_add(run *r, const char *where, const json_t *json) {
    if (r->count == r->cap) {
        int cap = r->cap ? r->cap * 2 : 256;
        entry *grown = realloc(r->entries, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        r->entries = grown;
        r->cap = cap;
    }
    entry *e = &r->entries[r->count++];
    memset(e, 0, sizeof *e);
    snprintf(e->where, sizeof e->where, "%s", where);
    const char *id = json_string_value(json_object_get(json, "action_id"));
    snprintf(e->action_id, sizeof e->action_id, "%s", id ? id : "");
    const char *sub = json_string_value(json_object_get(json, "owner_subsystem"));
    snprintf(e->subsystem, sizeof e->subsystem, "%s", sub ? sub : "");
    return e;
}

static const char *entry_name(const entry *e) {
    return e->action_id[0] ? e->action_id : "(no action_id)";
}

/* --json: the report item of entry e (one per entry, appended in order). */
static json_t *report_item(run *r, const entry *e) {
    return json_array_get(r->report, (size_t)(e - r->entries));
}

static void report_violation(json_t *item, const char *field, const char *rule, const char *msg) {
    json_array_append_new(
        json_object_get(item, "violations"),
        json_pack("{s:s, s:s, s:s}", "field", field, "rule", rule, "message", msg));
}

static void report_add(run *r, const entry *e, const ap_verdict *v, const char *problem) {
    if (!r->json)
        return;
    json_t *item =
        json_pack("{s:s, s:s?, s:b, s:[]}", "where", e->where, "action_id",
                  e->action_id[0] ? e->action_id : NULL, "valid", e->valid, "violations");
    json_array_append_new(r->report, item);
    if (problem)
        report_violation(item, "(line)", "json", problem);
    for (int i = 0; v && i < v->count && i < AP_VERDICT_MAX; i++)
        report_violation(item, v->items[i].field, v->items[i].rule, v->items[i].message);
}

/* Validates one action (json NULL: unreadable, problem says why); sets
 * e->valid, reports a refusal on stderr, adds the --json report item. */
static void action_check(run *r, entry *e, const json_t *json, const char *problem) {
    ap_verdict verdict;
    if (problem || ap_validate(r->map, json, r->today, &verdict)) {
        char why[2048];
        if (problem)
            snprintf(why, sizeof why, "%s", problem);
        else
            ap_verdict_format(&verdict, why, sizeof why);
        fprintf(stderr, "actionpool-producer: refused action '%s' (%s): %s\n", entry_name(e),
                e->where, why);
        r->refused++;
        report_add(r, e, problem ? NULL : &verdict, problem);
        return;
    }
    e->valid = 1;
    report_add(r, e, NULL, NULL);
}

/* Queues the valid action of entry e; its delivery report comes later. */
static void action_send(run *r, entry *e, json_t *json) {
    ap_action a;
    char err[512], topic[AP_TOPIC_MAX];
    if (ap_action_from_json(&a, json_incref(json), err, sizeof err)) {
        fprintf(stderr, "actionpool-producer: action '%s' (%s): %s\n", e->action_id, e->where, err);
        r->send_failed++;
        return;
    }
    char *payload = json_dumps(json, JSON_COMPACT);
    ap_topic_main(topic, sizeof topic, r->cfg->topic_prefix, a.subsystem);
    if (!payload ||
        ap_publisher_send(r->publisher, topic, a.partition_key, payload, strlen(payload), NULL,
                          (void *)(intptr_t)(e - r->entries), err, sizeof err)) {
        fprintf(stderr, "actionpool-producer: action '%s' not sent: %s\n", e->action_id,
                payload ? err : "out of memory");
        e->delivered = -1;
        r->send_failed++;
    }
    free(payload);
    ap_action_release(&a);
}

/* ap_kernel_action_fn: validates one action and, when publishing, queues it. */
static int on_action(void *ctx, const char *where, json_t *json, const char *problem) {
    run *r = ctx;
    entry *e = entry_add(r, where, json);
    if (!e) {
        fprintf(stderr, "actionpool-producer: out of memory\n");
        return 1;
    }
    action_check(r, e, json, problem);
    if (e->valid && r->publisher)
        action_send(r, e, json);
    return 0;
}

/* ap_kernel_action_fn for --budget-neutral: only keeps the action. */
static int on_collect(void *ctx, const char *where, json_t *json, const char *problem) {
    run *r = ctx;
    entry *e = entry_add(r, where, json);
    if (!e || (problem && !(e->problem = strdup(problem)))) {
        fprintf(stderr, "actionpool-producer: out of memory\n");
        return 1;
    }
    e->json = json_incref(json);
    return 0;
}

/* ---------------------------------------------------------------- budget neutral */

static json_t *amount_json(long long cents) {
    return json_real((double)cents / 100.0);
}

/* Says what was done to one run of one tenant: a line on stdout, or an object
 * in the --json report. */
static void budget_group_report(run *r, const ap_budget_neutral_group *g) {
    char inc[32], dec[32], to[32], run_name[160];
    if (r->json) {
        json_array_append_new(
            r->budgets,
            json_pack("{s:s, s:s?, s:i, s:{s:o, s:o}, s:{s:o, s:o}, s:s, s:f, s:i, s:i, s:b, s:s?}",
                      "tenant_id", g->tenant_id, "run_id", *g->run_id ? g->run_id : NULL, "changes",
                      g->changes, "requested", "increase", amount_json(g->increase), "decrease",
                      amount_json(g->decrease), "published", "increase",
                      amount_json(g->new_increase), "decrease", amount_json(g->new_decrease),
                      "scaled", g->refused ? "none" : g->scaled, "factor", g->factor, "rescaled",
                      g->rescaled, "withheld", g->withheld, "refused", g->refused, "reason",
                      g->refused ? g->reason : NULL));
        return;
    }
    if (*g->run_id)
        snprintf(run_name, sizeof run_name, "run '%s'", g->run_id);
    else
        snprintf(run_name, sizeof run_name, "no run_id");
    printf("budget-neutral: tenant '%s', %s: ", g->tenant_id, run_name);
    if (g->refused) {
        printf("%d budget change%s refused: %s\n", g->changes, g->changes == 1 ? "" : "s",
               g->reason);
        return;
    }
    ap_budget_neutral_amount(g->increase, inc, sizeof inc);
    ap_budget_neutral_amount(-g->decrease, dec, sizeof dec);
    printf("%d budget change%s, %s up and %s down requested; ", g->changes,
           g->changes == 1 ? "" : "s", inc, dec);
    if (!strcmp(g->scaled, "none")) {
        printf("neutral as requested\n");
        return;
    }
    int ups = !strcmp(g->scaled, "increases");
    if (g->factor == 0) {
        printf("nothing pays for the %s: %d withheld; total daily budget unchanged\n", g->scaled,
               g->withheld);
        return;
    }
    ap_budget_neutral_amount(ups ? g->new_increase : -g->new_decrease, to, sizeof to);
    printf("%s scaled by %.4f to %s (%d rescaled, %d withheld); total daily budget unchanged\n",
           g->scaled, g->factor, to, g->rescaled, g->withheld);
}

/* The --budget-neutral path: checks every collected action, rescales the
 * valid ones, re-checks what was rescaled, and sends what is left. Returns
 * non-zero when memory ran out. */
static int budget_neutral_stage(run *r) {
    int status = 0;
    ap_budget_neutral_plan plan = {0};
    json_t *valid = json_array();
    int *index = calloc((size_t)r->count + 1, sizeof *index), n = 0;
    char err[256];

    if (!valid || !index) {
        status = 1;
        goto out;
    }
    for (int i = 0; i < r->count; i++) {
        entry *e = &r->entries[i];
        action_check(r, e, e->json, e->problem);
        if (e->valid) {
            json_array_append(valid, e->json);
            index[n++] = i;
        }
    }
    if (ap_budget_neutral_rescale(valid, &plan, err, sizeof err)) {
        status = 1;
        goto out;
    }
    for (int g = 0; g < plan.ngroups; g++)
        budget_group_report(r, &plan.groups[g]);

    for (int k = 0; k < n; k++) {
        entry *e = &r->entries[index[k]];
        const ap_budget_neutral_group *g = plan.group[k] >= 0 ? &plan.groups[plan.group[k]] : NULL;
        json_t *item = r->json ? report_item(r, e) : NULL;
        json_t *change = json_object_get(e->json, "proposed_change");
        switch (plan.roles[k]) {
        case AP_BN_REFUSED:
            fprintf(stderr,
                    "actionpool-producer: refused action '%s' (%s): budget_neutral: tenant '%s', "
                    "%s%s%s: %s\n",
                    entry_name(e), e->where, g->tenant_id, *g->run_id ? "run '" : "no run_id",
                    g->run_id, *g->run_id ? "'" : "", g->reason);
            e->valid = 0;
            r->refused++;
            if (item) {
                json_object_set_new(item, "valid", json_false());
                report_violation(item, "proposed_change.value", "budget_neutral", g->reason);
            }
            continue;
        case AP_BN_WITHHELD:
            fprintf(stderr,
                    "actionpool-producer: withheld action '%s' (%s): budget_neutral: rescaled to "
                    "no change (nothing in its run pays for it)\n",
                    entry_name(e), e->where);
            e->withheld = 1;
            r->withheld++;
            if (item) {
                json_object_set_new(item, "withheld", json_true());
                json_object_set_new(item, "budget_neutral",
                                    json_pack("{s:O, s:O}", "requested",
                                              json_object_get(change, "value"), "value",
                                              json_object_get(e->json, "current")));
            }
            continue;
        case AP_BN_RESCALED: {
            ap_verdict verdict; /* a rescaled value lies between two valid ones; checked anyway */
            char why[2048];
            if (ap_validate(r->map, e->json, r->today, &verdict)) {
                ap_verdict_format(&verdict, why, sizeof why);
                fprintf(stderr, "actionpool-producer: refused action '%s' (%s): rescaled: %s\n",
                        entry_name(e), e->where, why);
                e->valid = 0;
                r->refused++;
                if (item) {
                    json_object_set_new(item, "valid", json_false());
                    report_violation(item, "proposed_change.value", "budget_neutral", why);
                }
                continue;
            }
            if (item)
                json_object_set_new(
                    item, "budget_neutral",
                    json_pack(
                        "{s:O, s:O}", "requested",
                        json_object_get(json_object_get(e->json, "budget_neutral"), "requested"),
                        "value", json_object_get(change, "value")));
            break;
        }
        default: break;
        }
        if (r->publisher)
            action_send(r, e, e->json);
    }
out:
    if (status)
        fprintf(stderr, "actionpool-producer: out of memory\n");
    ap_budget_neutral_release(&plan);
    free(index);
    json_decref(valid);
    return status;
}

/* ---------------------------------------------------------------- main */

static void on_delivery(void *ctx, void *opaque, const char *error) {
    run *r = ctx;
    entry *e = &r->entries[(intptr_t)opaque];
    e->delivered = error ? -1 : 1;
    if (error)
        fprintf(stderr, "actionpool-producer: action '%s' not delivered: %s\n", e->action_id,
                error);
}

/* Prints the summary; returns the exit status. */
static int summarize(run *r, int publishing) {
    int valid = 0, delivered = 0, undelivered = 0;
    for (int i = 0; i < r->count; i++) {
        const entry *e = &r->entries[i];
        valid += e->valid;
        delivered += e->delivered == 1;
        undelivered += e->valid && !e->withheld && e->delivered != 1;
    }
    int status = r->refused || (publishing && undelivered) ? EXIT_PROBLEM : 0;
    char withheld[64] = "";
    if (r->budget_neutral)
        snprintf(withheld, sizeof withheld, ", %d withheld (budget-neutral)", r->withheld);
    if (r->json) {
        json_t *out = json_pack("{s:b, s:i, s:i, s:i, s:O}", "ok", status == 0, "total", r->count,
                                "valid", valid, "refused", r->refused, "actions", r->report);
        if (publishing) {
            json_object_set_new(out, "delivered", json_integer(delivered));
            json_object_set_new(out, "undelivered", json_integer(undelivered));
        }
        if (r->budget_neutral) {
            json_object_set_new(out, "withheld", json_integer(r->withheld));
            json_object_set(out, "budget_neutral", r->budgets);
        }
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else if (publishing) {
        printf("published %d of %d actions: %d delivered, %d refused, %d not delivered%s\n",
               delivered, r->count, delivered, r->refused, undelivered, withheld);
    } else {
        printf("validated %d actions: %d valid, %d refused%s\n", r->count, valid, r->refused,
               withheld);
    }
    return status;
}

/* When argv[*i] is option `name` ("--name value" or "--name=value"), sets
 * *value, advances *i and returns 1; -1 (message printed) when the value is
 * missing; 0 when argv[*i] is another word. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) || (arg[n] && arg[n] != '='))
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        *i += 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "actionpool-producer: option '%s' needs a value\n", name);
        return -1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}

/* Fetches url into *body (the caller frees it); prints why not. */
static int fetch_input(const char *url, long timeout_s, char **body, size_t *len) {
    char err[1400];
    const char *auth = getenv(AUTH_ENV);
    if (auth && !*auth)
        auth = NULL;
    if (auth && !strncasecmp(url, "http://", 7))
        ap_log(AP_LOG_WARN, "the authorization header goes over plain http", "variable", AUTH_ENV,
               NULL);
    if (ap_fetch_url(url, auth, timeout_s, "actionpool-producer/" VERSION, body, len, err,
                     sizeof err)) {
        fprintf(stderr, "actionpool-producer: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    ap_config cfg;
    char err[1024], path[1024], shown[1024];
    const char *command = NULL, *input = NULL, *url = NULL, *v;
    int json = 0, budget_neutral = 0, status = EXIT_USAGE, curl_ready = 0, taken;
    long timeout_s = FETCH_TIMEOUT_DEFAULT_S;
    run r = {0};
    ap_executor_map *map = NULL;
    FILE *in = NULL;
    char *body = NULL;
    size_t body_len = 0;

    if (ap_config_init(&cfg, err, sizeof err)) {
        fprintf(stderr, "actionpool-producer: %s\n", err);
        goto out;
    }
    for (int i = 1; i < argc;) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            status = 0;
            goto out;
        } else if (!strcmp(arg, "--version")) {
            printf("actionpool-producer %s\n", VERSION);
            status = 0;
            goto out;
        } else if (!strcmp(arg, "--json")) {
            json = 1, i++;
        } else if (!strcmp(arg, "--budget-neutral")) {
            budget_neutral = 1, i++;
        } else if ((taken = option_value(argc, argv, &i, "--from-url", &url))) {
            if (taken < 0)
                goto out;
            if (!*url) {
                fprintf(stderr, "actionpool-producer: option '--from-url' needs a URL\n");
                goto out;
            }
        } else if ((taken = option_value(argc, argv, &i, "--from-url-timeout", &v))) {
            char *end;
            errno = 0;
            if (taken < 0)
                goto out;
            timeout_s = strtol(v, &end, 10);
            if (errno || end == v || *end || timeout_s < 1 || timeout_s > 3600) {
                fprintf(stderr,
                        "actionpool-producer: --from-url-timeout: '%s' is not a number of "
                        "seconds in 1..3600\n",
                        v);
                goto out;
            }
        } else if (arg[0] == '-' && arg[1] == '-') {
            int used = ap_config_flag(&cfg, argc, argv, &i, err, sizeof err);
            if (used < 0)
                fprintf(stderr, "actionpool-producer: %s\n", err);
            if (!used)
                fprintf(stderr, "actionpool-producer: unknown option '%s' (see --help)\n", arg);
            if (used <= 0)
                goto out;
        } else if (!command) {
            command = arg, i++;
        } else if (!input) {
            input = arg, i++;
        } else {
            fprintf(stderr, "actionpool-producer: unexpected argument '%s'\n", arg);
            goto out;
        }
    }
    if (!command || (strcmp(command, "publish") && strcmp(command, "validate")) ||
        !(input || url) || (input && url)) {
        fprintf(stderr, "actionpool-producer: %s\n",
                !command ? "missing command (publish or validate)"
                : strcmp(command, "publish") && strcmp(command, "validate")
                    ? "unknown command (publish or validate)"
                : input && url ? "give a FILE or --from-url URL, not both"
                               : "missing input: a FILE, - for stdin, or --from-url URL");
        usage(stderr);
        goto out;
    }
    if (ap_log_init("producer", cfg.log_level)) {
        fprintf(stderr, "actionpool-producer: log_level: unknown level '%s'\n", cfg.log_level);
        goto out;
    }
    ap_config_schema_path(&cfg, "executor_map.json", path, sizeof path);
    if (!(map = ap_executor_map_load(path, err, sizeof err))) {
        fprintf(stderr, "actionpool-producer: %s\n", err);
        goto out;
    }
    if (url) {
        if (ap_fetch_global_init(err, sizeof err)) {
            fprintf(stderr, "actionpool-producer: %s\n", err);
            goto out;
        }
        curl_ready = 1;
        if (fetch_input(url, timeout_s, &body, &body_len))
            goto out;
        ap_fetch_redact(url, shown, sizeof shown);
        input = shown;
        in = fmemopen(body, body_len, "r");
        if (!in) {
            fprintf(stderr, "actionpool-producer: cannot read the body of '%s': %s\n", shown,
                    strerror(errno));
            goto out;
        }
    } else {
        in = strcmp(input, "-") ? fopen(input, "r") : stdin;
        if (!in) {
            fprintf(stderr, "actionpool-producer: cannot open '%s': %s\n", input, strerror(errno));
            goto out;
        }
    }

    int publishing = !strcmp(command, "publish");
    r.map = map;
    r.cfg = &cfg;
    r.json = json;
    r.budget_neutral = budget_neutral;
    r.report = json_array();
    r.budgets = json_array();
    ap_today_utc(r.today);
    if (publishing && !(r.publisher = ap_publisher_new(&cfg, on_delivery, &r, err, sizeof err))) {
        fprintf(stderr, "actionpool-producer: %s\n", err);
        goto out;
    }
    if (ap_kernel_output_read(in, budget_neutral ? on_collect : on_action, &r, err, sizeof err)) {
        fprintf(stderr, "actionpool-producer: %s: %s\n", input, err);
        goto out;
    }
    if (budget_neutral && budget_neutral_stage(&r))
        goto out;
    if (r.publisher) {
        int left = ap_publisher_flush(r.publisher, 60000);
        if (left)
            fprintf(stderr, "actionpool-producer: %d actions not delivered within 60 s\n", left);
    }
    status = summarize(&r, publishing);

out:
    ap_publisher_free(r.publisher);
    if (in && in != stdin)
        fclose(in);
    free(body);
    for (int i = 0; i < r.count; i++) {
        json_decref(r.entries[i].json);
        free(r.entries[i].problem);
    }
    json_decref(r.budgets);
    json_decref(r.report);
    free(r.entries);
    ap_executor_map_free(map);
    ap_config_release(&cfg);
    if (curl_ready)
        ap_fetch_global_cleanup();
    return status;
}
