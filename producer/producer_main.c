/* actionpool-producer — validates kernel output and publishes its actions to
 * <prefix>.<subsystem>, keyed by "<tenant>:<entity>". */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "config.h"
#include "executor_map.h"
#include "kernel_output.h"
#include "log.h"
#include "publisher.h"
#include "topics.h"
#include "validate.h"

#define VERSION "0.1.0"

enum { EXIT_PROBLEM = 1, EXIT_USAGE = 2 };

/* One action of the input, from reading to its delivery report. */
typedef struct entry {
    char where[64];
    char action_id[AP_ID_MAX + 1];
    char subsystem[32];
    int valid;
    int delivered; /* 1 delivered, -1 failed, 0 not (yet) reported */
} entry;

typedef struct run {
    const ap_executor_map *map;
    const ap_config *cfg;
    ap_publisher *publisher; /* NULL for validate */
    int json;                /* --json report */
    char today[11];
    entry *entries;
    int count, cap;
    int refused, send_failed;
    json_t *report; /* --json: array of per-action results */
} run;

static void usage(FILE *out) {
    fprintf(out,
            "usage: actionpool-producer [settings] publish [--json] FILE|-\n"
            "       actionpool-producer [settings] validate [--json] FILE|-\n"
            "\n"
            "Reads kernel output (a JSON document with \"optimization_actions\", or JSON\n"
            "Lines of actions), validates every action against the action schema and the\n"
            "executor map, and (publish) sends the valid ones to Kafka.\n"
            "\n"
            "  publish     validate, publish the valid actions, wait for every delivery\n"
            "  validate    validate only; needs no servers (for planners' CI pipelines)\n"
            "  --json      print the report as JSON on stdout\n"
            "  --help      this text          --version  the version\n"
            "\n"
            "Exit status: 0 all actions valid (and delivered), 1 some refused or not\n"
            "delivered, 2 usage, input or configuration error.\n\n");
    ap_config_usage(out, AP_PROG_PRODUCER);
}

static entry *entry_add(run *r) {
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
    return e;
}

static void report_add(run *r, const entry *e, const ap_verdict *v, const char *problem) {
    if (!r->json)
        return;
    json_t *item = json_pack("{s:s, s:s?, s:b}", "where", e->where, "action_id",
                             e->action_id[0] ? e->action_id : NULL, "valid", e->valid);
    json_t *violations = json_array();
    if (problem)
        json_array_append_new(violations, json_pack("{s:s, s:s, s:s}", "field", "(line)", "rule",
                                                    "json", "message", problem));
    for (int i = 0; v && i < v->count && i < AP_VERDICT_MAX; i++)
        json_array_append_new(violations,
                              json_pack("{s:s, s:s, s:s}", "field", v->items[i].field, "rule",
                                        v->items[i].rule, "message", v->items[i].message));
    json_object_set_new(item, "violations", violations);
    json_array_append_new(r->report, item);
}

/* Validates one action and, when publishing, queues it. */
static int on_action(void *ctx, const char *where, json_t *json, const char *problem) {
    run *r = ctx;
    entry *e = entry_add(r);
    if (!e) {
        fprintf(stderr, "actionpool-producer: out of memory\n");
        return 1;
    }
    snprintf(e->where, sizeof e->where, "%s", where);
    const char *id = json_string_value(json_object_get(json, "action_id"));
    snprintf(e->action_id, sizeof e->action_id, "%s", id ? id : "");
    const char *sub = json_string_value(json_object_get(json, "owner_subsystem"));
    snprintf(e->subsystem, sizeof e->subsystem, "%s", sub ? sub : "");

    ap_verdict verdict;
    if (problem || ap_validate(r->map, json, r->today, &verdict)) {
        char why[2048];
        if (problem)
            snprintf(why, sizeof why, "%s", problem);
        else
            ap_verdict_format(&verdict, why, sizeof why);
        fprintf(stderr, "actionpool-producer: refused action '%s' (%s): %s\n",
                id ? id : "(no action_id)", where, why);
        r->refused++;
        report_add(r, e, problem ? NULL : &verdict, problem);
        return 0;
    }
    e->valid = 1;
    report_add(r, e, NULL, NULL);
    if (!r->publisher)
        return 0;

    ap_action a;
    char err[512], topic[AP_TOPIC_MAX];
    if (ap_action_from_json(&a, json_incref(json), err, sizeof err)) {
        fprintf(stderr, "actionpool-producer: action '%s' (%s): %s\n", e->action_id, where, err);
        r->send_failed++;
        return 0;
    }
    char *payload = json_dumps(json, JSON_COMPACT);
    ap_topic_main(topic, sizeof topic, r->cfg->topic_prefix, a.subsystem);
    if (!payload || ap_publisher_send(r->publisher, topic, a.partition_key, payload,
                                      strlen(payload), NULL, (void *)(intptr_t)(r->count - 1),
                                      err, sizeof err)) {
        fprintf(stderr, "actionpool-producer: action '%s' not sent: %s\n", e->action_id,
                payload ? err : "out of memory");
        e->delivered = -1;
        r->send_failed++;
    }
    free(payload);
    ap_action_release(&a);
    return 0;
}

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
        valid += r->entries[i].valid;
        delivered += r->entries[i].delivered == 1;
        undelivered += r->entries[i].valid && r->entries[i].delivered != 1;
    }
    int status = r->refused || (publishing && undelivered) ? EXIT_PROBLEM : 0;
    if (r->json) {
        json_t *out = json_pack("{s:b, s:i, s:i, s:i, s:O}", "ok", status == 0, "total", r->count,
                                "valid", valid, "refused", r->refused, "actions", r->report);
        if (publishing) {
            json_object_set_new(out, "delivered", json_integer(delivered));
            json_object_set_new(out, "undelivered", json_integer(undelivered));
        }
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else if (publishing) {
        printf("published %d of %d actions: %d delivered, %d refused, %d not delivered\n",
               delivered, r->count, delivered, r->refused, undelivered);
    } else {
        printf("validated %d actions: %d valid, %d refused\n", r->count, valid, r->refused);
    }
    return status;
}

int main(int argc, char **argv) {
    ap_config cfg;
    char err[1024], path[1024];
    const char *command = NULL, *input = NULL;
    int json = 0, status = EXIT_USAGE;
    run r = {0};
    ap_executor_map *map = NULL;
    FILE *in = NULL;

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
    if (!command || (strcmp(command, "publish") && strcmp(command, "validate")) || !input) {
        fprintf(stderr, "actionpool-producer: %s\n",
                !command ? "missing command (publish or validate)"
                : input ? "unknown command (publish or validate)"
                        : "missing input: a FILE or - for stdin");
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
    in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    if (!in) {
        fprintf(stderr, "actionpool-producer: cannot open '%s': %s\n", input, strerror(errno));
        goto out;
    }

    int publishing = !strcmp(command, "publish");
    r.map = map;
    r.cfg = &cfg;
    r.json = json;
    r.report = json_array();
    ap_today_utc(r.today);
    if (publishing && !(r.publisher = ap_publisher_new(&cfg, on_delivery, &r, err, sizeof err))) {
        fprintf(stderr, "actionpool-producer: %s\n", err);
        goto out;
    }
    if (ap_kernel_output_read(in, on_action, &r, err, sizeof err)) {
        fprintf(stderr, "actionpool-producer: %s: %s\n", input, err);
        goto out;
    }
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
    json_decref(r.report);
    free(r.entries);
    ap_executor_map_free(map);
    ap_config_release(&cfg);
    return status;
}
