/* ctl_main.c — actionpool-ctl, the ops tool: argv, dispatch and usage. The
 * work of each command lives in its own file (migrate.c, lag.c, report.c,
 * summary.c, revert.c, controls.c, replay.c).
 *
 *   actionpool-ctl [settings flags] COMMAND [options]
 *
 * Exit status: 0 ok; 1 the command ran but found a problem (lag --wait timed
 * out, a revert was refused, Postgres or Kafka refused something); 2 usage,
 * configuration or connection error. Every failure writes one line "actionpool-ctl: ..." on
 * stderr. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "config.h"
#include "controls.h"
#include "lag.h"
#include "log.h"
#include "migrate.h"
#include "replay.h"
#include "report.h"
#include "revert.h"
#include "status.h"
#include "summary.h"

#define CTL_VERSION "0.1.0"

enum { CTL_OK = 0, CTL_PROBLEM = 1, CTL_USAGE = 2 };

/* What argv asked for, besides the settings (which land in ap_config). */
typedef struct ctl_opts {
    const struct command *command; /* NULL until the command word is seen */
    int help;
    int sql_only, topics_only; /* migrate */
    int replication_factor;    /* migrate; default 1 */
    int wait_s;                /* lag; -1: no --wait */
    int json;                  /* lag, report, summary */
    const char *tenant;        /* report, summary, revert; borrowed from argv; NULL: all */
    const char *target;        /* revert: the ACTION_ID argument; borrowed from argv */
    const char *reason;        /* revert; borrowed from argv */
    int dry_run;               /* revert */
    const char *since;         /* summary; borrowed from argv */
    const char *by;            /* policy commands: the operator recorded; default $USER */
    const char *note;          /* approve, reject */
    const char *subsystem;     /* pause, resume, protect, unprotect */
    const char *entity;        /* protect, unprotect, autopilot */
    const char *until;         /* replay; borrowed from argv */
    const char *error_class;   /* replay */
    const char *action_id;     /* replay */
} ctl_opts;

typedef struct command {
    const char *name;
    const char *summary;
    const char *operand; /* name of the one operand it takes ("ACTION_ID"), or NULL */
    void (*usage)(FILE *out);
    int (*run)(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz); /* exit code */
} command;

/* AP_ERR_PG and AP_ERR_KAFKA mean the server answered and refused: a problem
 * found (1). Everything else means the command could not run (2): see the
 * status conventions in migrate.h, lag.h and report.h. */
static int exit_code(ap_status st) {
    switch (st) {
    case AP_OK: return CTL_OK;
    case AP_ERR_PG:
    case AP_ERR_KAFKA: return CTL_PROBLEM;
    default: return CTL_USAGE;
    }
}

/* ---------------------------------------------------------------- migrate */

static void migrate_usage(FILE *out) {
    fprintf(out,
            "Usage: actionpool-ctl [settings flags] migrate [--sql-only | --topics-only]\n"
            "                      [--replication-factor N]\n"
            "\n"
            "Brings Postgres and Kafka to the shape this release expects. Running it again\n"
            "changes nothing; concurrent runs wait for each other.\n"
            "  postgres  applies the files sql/NNN_name.sql of the schema folder that table\n"
            "            schema_migrations does not list yet, in the order of NNN, each in\n"
            "            its own transaction\n"
            "  kafka     creates PREFIX.<s>, PREFIX.<s>.retry.1..%d and PREFIX.<s>.dlq for every\n"
            "            subsystem <s> of executor_map.json, each with --partitions partitions\n"
            "            (a topic that exists is left as it is)\n"
            "\n"
            "Options:\n"
            "  --sql-only                only the Postgres migrations\n"
            "  --topics-only             only the Kafka topics\n"
            "  --replication-factor N    replicas of each new topic (default 1, for a single\n"
            "                            broker such as the local stack; 3 on a real cluster)\n",
            AP_RETRY_TOPICS);
}

static int migrate_run(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz) {
    ap_status st = AP_OK;
    if (o->sql_only && o->topics_only) {
        ap_fail(AP_ERR_INVALID, err, errsz, "--sql-only and --topics-only exclude each other");
        return CTL_USAGE;
    }
    if (!o->topics_only && (st = ap_migrate_sql(cfg, stdout, err, errsz)))
        return exit_code(st);
    if (!o->sql_only)
        st = ap_migrate_topics(cfg, o->replication_factor, stdout, err, errsz);
    return exit_code(st);
}

/* ---------------------------------------------------------------- lag */

static void lag_usage(FILE *out) {
    fprintf(out, "Usage: actionpool-ctl [settings flags] lag [--wait SECONDS] [--json]\n"
                 "\n"
                 "Shows, per partition of the main and retry topics of every subsystem, the\n"
                 "offset the worker group (--group-id, ACTIONPOOL_GROUP_ID) has committed, the\n"
                 "end offset and the lag between them, and the total: the actions not settled\n"
                 "yet. Reads only; never joins the group or commits.\n"
                 "\n"
                 "Options:\n"
                 "  --wait SECONDS   measure once a second until the total lag is 0 twice in a\n"
                 "                   row (exit 0) or SECONDS have passed (exit 1), with progress\n"
                 "                   on stderr; then show the last measurement\n"
                 "  --json           one JSON object instead of the table\n");
}

static int lag_run(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz) {
    int rc = CTL_OK, drained = 1;
    ap_status st;
    ap_lag lag = {0};
    ap_lag_probe *p = ap_lag_probe_new(cfg, err, errsz);
    if (!p) {
        rc = CTL_USAGE;
        goto out;
    }
    if (o->wait_s >= 0)
        st = ap_lag_wait(p, o->wait_s, &lag, stderr, &drained, err, errsz);
    else
        st = ap_lag_measure(p, &lag, err, errsz);
    if (st) {
        rc = exit_code(st);
        goto out;
    }
    ap_lag_print(stdout, p, &lag, o->json);
    if (!drained) {
        ap_fail(AP_ERR_INVALID, err, errsz, "lag: %lld messages left after %d s",
                (long long)lag.total, o->wait_s);
        rc = CTL_PROBLEM;
    }
out:
    ap_lag_release(&lag);
    ap_lag_probe_free(p);
    return rc;
}

/* ---------------------------------------------------------------- report */

static void report_usage(FILE *out) {
    fprintf(out,
            "Usage: actionpool-ctl [settings flags] report [--tenant T] [--json]\n"
            "\n"
            "Shows what the workers recorded in Postgres, from one snapshot: the actions by\n"
            "subsystem and status, the entity state with the action that set each value\n"
            "(first %d rows), and the newest %d rejected and %d duplicate actions.\n"
            "\n"
            "Options:\n"
            "  --tenant T   only tenant T\n"
            "  --json       one JSON object instead of the tables\n",
            AP_REPORT_STATE_LIMIT, AP_REPORT_LIST_LIMIT, AP_REPORT_LIST_LIMIT);
}

static int report_run(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz) {
    return exit_code(ap_report_write(cfg, o->tenant, o->json, stdout, err, errsz));
}

/* ---------------------------------------------------------------- summary */

static void summary_usage(FILE *out) {
    fprintf(
        out,
        "Usage: actionpool-ctl [settings flags] summary --since DURATION|TIMESTAMP\n"
        "                      [--tenant T] [--json]\n"
        "\n"
        "What became of the actions received since a time, per tenant and subsystem,\n"
        "with a total per tenant and one of all tenants (the weekly summary). Counts:\n"
        "  received     every action recorded in the window\n"
        "  executed     carried out (status executed, or rolled_back since)\n"
        "  rejected     with its three most frequent reasons, grouped by their head\n"
        "               (\"field: rule\" of a validation, or \"conflict\", \"guardrail\", ...)\n"
        "  duplicate, dry run, rolled back, failed   the actions with that status\n"
        "  entities     distinct entities changed by the executed ones\n"
        "\n"
        "Options:\n"
        "  --since D    the window's start: a duration before now (90s, 30m, 24h, 7d,\n"
        "               2w) or an RFC 3339 timestamp (2026-01-15T06:00:00Z) or a date\n"
        "               (2026-01-15, midnight UTC); required\n"
        "  --tenant T   only tenant T\n"
        "  --json       one JSON object instead of the table\n");
}

static int summary_run(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz) {
    if (!o->since) {
        ap_fail(AP_ERR_INVALID, err, errsz, "summary needs --since (e.g. --since 7d)");
        return CTL_USAGE;
    }
    return exit_code(ap_summary_write(cfg, o->since, o->tenant, o->json, stdout, err, errsz));
}

/* ---------------------------------------------------------------- revert */

static void revert_usage(FILE *out) {
    fprintf(out, "Usage: actionpool-ctl [settings flags] revert ACTION_ID [--tenant T]\n"
                 "                      [--reason TEXT] [--dry-run]\n"
                 "\n"
                 "Undoes one executed action: publishes one revert action to its subsystem's\n"
                 "topic, keyed by tenant and entity, and prints the new action_id. A worker\n"
                 "restores the value the action replaced (its rollback data) and marks it\n"
                 "rolled_back, with the same validation, idempotency and audit as any action.\n"
                 "\n"
                 "Refused (exit 1, with the reason) when the action was never executed, is\n"
                 "rolled back already, is not the latest change of its field any more (revert\n"
                 "the later one first), or exists for several tenants and --tenant is missing.\n"
                 "The revert's idempotency key is \"revert:ACTION_ID\": running the command twice\n"
                 "executes one revert (the second is refused, or recorded as a duplicate).\n"
                 "\n"
                 "Options:\n"
                 "  --tenant T      the tenant of the action (needed when several have its id)\n"
                 "  --reason TEXT   recorded with the revert (default \"reverted with\n"
                 "                  actionpool-ctl\")\n"
                 "  --dry-run       print the revert action as JSON instead of publishing it\n");
}

static int revert_run(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz) {
    ap_revert_request req = {.action_id = o->target, .tenant = o->tenant, .reason = o->reason};
    json_t *action = NULL;
    char why[1024];
    int rc = CTL_OK;
    ap_status st;

    if (!o->target) {
        ap_fail(AP_ERR_INVALID, err, errsz, "revert needs the ACTION_ID of the action to undo");
        return CTL_USAGE;
    }
    if ((st = ap_revert_build(cfg, &req, &action, why, sizeof why, err, errsz))) {
        rc = exit_code(st);
        goto out;
    }
    if (!action) {
        ap_fail(AP_ERR_INVALID, err, errsz, "cannot revert: %s", why);
        rc = CTL_PROBLEM;
        goto out;
    }
    if (o->dry_run) {
        json_dumpf(action, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        goto out;
    }
    if ((st = ap_revert_publish(cfg, action, err, errsz))) {
        rc = st == AP_ERR_INVALID ? CTL_PROBLEM : exit_code(st);
        goto out;
    }
    printf("%s\n", json_string_value(json_object_get(action, "action_id")));
out:
    json_decref(action);
    return rc;
}

static int option_take(int argc, char **argv, int *i, const char *name, int want_value,
                       const char **value, char *err, size_t errsz);

/* ---------------------------------------------------------------- replay */

static void replay_usage(FILE *out) {
    fprintf(out,
            "Usage: actionpool-ctl [settings flags] replay [--subsystem S[,S...]] [--tenant T]\n"
            "                      [--error-class C] [--since TIME] [--until TIME]\n"
            "                      [--action-id ID] [--dry-run] [--json] [--by NAME]\n"
            "\n"
            "Lists the dead letters of PREFIX.<s>.dlq that match the filters (DLQ\n"
            "topic/partition/offset, action_id, tenant, error class, attempts, first failure,\n"
            "last error, and whether it was replayed before), then republishes each one not\n"
            "replayed yet to its original topic, key and value unchanged, with headers\n"
            "ap-replay-of: <dlq topic>/<partition>/<offset> and ap-attempt: 0. Each replay is\n"
            "recorded in table replays before it is published: a dead letter is never\n"
            "replayed twice, and one that was not delivered can be replayed again. The DLQ\n"
            "topics are only read (no consumer group, no commits).\n"
            "\n"
            "Options:\n"
            "  --subsystem S     only these subsystems' DLQs (default: all of the executor map)\n"
            "  --tenant T        only actions of tenant T\n"
            "  --error-class C   only dead letters of error class C (ap-error-class)\n"
            "  --since TIME      first failed at or after TIME: RFC 3339 (2026-01-15T06:00:00Z)\n"
            "                    or a duration before now (30m, 24h, 7d)\n"
            "  --until TIME      first failed before TIME (same forms)\n"
            "  --action-id ID    only the action ID\n"
            "  --dry-run         list what would be replayed; change nothing\n"
            "  --json            one JSON object instead of the table\n"
            "  --by NAME         recorded as who replayed (default $USER)\n"
            "\n"
            "Exit status: 0 ok; 1 some replays were not delivered (run again to retry them);\n"
            "2 usage or connection error.\n");
}

static int replay_run(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz) {
    const char *by = o->by ? o->by : getenv("USER") ? getenv("USER") : "ops";
    ap_replay_request req = {.subsystems = o->subsystem,
                             .tenant = o->tenant,
                             .error_class = o->error_class,
                             .since = o->since,
                             .until = o->until,
                             .action_id = o->action_id,
                             .dry_run = o->dry_run,
                             .json = o->json,
                             .by = by};
    ap_status st = ap_replay_run(cfg, &req, stdout, err, errsz);
    return st == AP_OK ? CTL_OK : st == AP_ERR_KAFKA ? CTL_PROBLEM : CTL_USAGE;
}

/* Options of replay; returns like option_take. */
static int replay_option(ctl_opts *o, int argc, char **argv, int *i, char *err, size_t errsz) {
    static const char *const names[] = {"--subsystem", "--tenant",    "--error-class", "--since",
                                        "--until",     "--action-id", "--by"};
    const char **slots[] = {&o->subsystem, &o->tenant,    &o->error_class, &o->since,
                            &o->until,     &o->action_id, &o->by};
    const char *v;
    int r;
    if ((r = option_take(argc, argv, i, "--dry-run", 0, &v, err, errsz)) == 1)
        o->dry_run = 1;
    else if (!r && (r = option_take(argc, argv, i, "--json", 0, &v, err, errsz)) == 1)
        o->json = 1;
    for (size_t k = 0; !r && k < sizeof names / sizeof *names; k++)
        if ((r = option_take(argc, argv, i, names[k], 1, &v, err, errsz)) == 1) {
            if (!*v) {
                ap_fail(AP_ERR_INVALID, err, errsz, "option '%s' needs a non-empty value",
                        names[k]);
                return -1;
            }
            *slots[k] = v;
        }
    return r;
}

/* ---------------------------------------------------------------- policy */

static void policy_usage(FILE *out) {
    fprintf(out,
            "Usage: actionpool-ctl approve|reject ACTION_ID --by NAME [--tenant T] [--note TEXT]\n"
            "       actionpool-ctl kill-switch on|off [--by NAME] [--reason TEXT]\n"
            "       actionpool-ctl pause|resume (--tenant T | --subsystem S) [--by NAME] [--reason "
            "TEXT]\n"
            "       actionpool-ctl protect|unprotect --tenant T --subsystem S --entity E\n"
            "                      [--by NAME] [--reason TEXT]\n"
            "       actionpool-ctl autopilot on|off --tenant T [--entity CAMPAIGN] [--by NAME]\n"
            "       actionpool-ctl controls\n"
            "       actionpool-ctl breaker status | breaker reset --tenant T --subsystem S\n"
            "\n"
            "The controls of policy, kept in Postgres and read by every worker in the\n"
            "transaction that executes:\n"
            "  approve      a tier-2 action pending approval executes within seconds, by itself\n"
            "  reject       it is rejected, with who and why\n"
            "  kill-switch  on: no action executes anywhere; off: waiting actions resume\n"
            "  pause        one tenant's or subsystem's actions wait; resume lets them run,\n"
            "               in their original order, with no replay\n"
            "  protect      actions on the entity are rejected (do-not-contact, suppression)\n"
            "  autopilot    off: the tenant's (or campaign's) actions are only suggested\n"
            "  controls     what is in force, and how many actions wait\n"
            "  breaker      the open circuit breakers (tenant x subsystem); reset closes one\n"
            "               and lets the actions waiting on it run\n"
            "--by defaults to $USER. Exit status 1 when the request does not apply (an\n"
            "action not pending approval, a tenant not paused).\n");
}

/* on|off operand of kill-switch and autopilot; -1 when it is neither. */
static int on_off(const char *word) {
    return !word ? -1 : !strcmp(word, "on") ? 1 : !strcmp(word, "off") ? 0 : -1;
}

static int policy_run(const ap_config *cfg, const ctl_opts *o, char *err, size_t errsz) {
    const char *name = o->command->name;
    const char *by = o->by ? o->by : getenv("USER") ? getenv("USER") : "ops";
    ap_status st;
    if (!strcmp(name, "approve") || !strcmp(name, "reject")) {
        if (!o->target || !o->by)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s needs ACTION_ID and --by NAME", name),
                   CTL_USAGE;
        st = ap_controls_decide(cfg, o->target, o->tenant, !strcmp(name, "approve"), o->by, o->note,
                                err, errsz);
    } else if (!strcmp(name, "kill-switch")) {
        if (on_off(o->target) < 0)
            return ap_fail(AP_ERR_INVALID, err, errsz, "kill-switch needs on or off"), CTL_USAGE;
        st = ap_controls_kill_switch(cfg, on_off(o->target), by, o->reason, err, errsz);
    } else if (!strcmp(name, "pause") || !strcmp(name, "resume")) {
        if (!o->tenant == !o->subsystem)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s needs --tenant or --subsystem", name),
                   CTL_USAGE;
        st = ap_controls_pause(cfg, o->tenant ? "tenant" : "subsystem",
                               o->tenant ? o->tenant : o->subsystem, !strcmp(name, "pause"), by,
                               o->reason, err, errsz);
    } else if (!strcmp(name, "protect") || !strcmp(name, "unprotect")) {
        if (!o->tenant || !o->subsystem || !o->entity)
            return ap_fail(AP_ERR_INVALID, err, errsz,
                           "%s needs --tenant, --subsystem and --entity", name),
                   CTL_USAGE;
        st = ap_controls_protect(cfg, o->tenant, o->subsystem, o->entity, !strcmp(name, "protect"),
                                 by, o->reason, err, errsz);
    } else if (!strcmp(name, "autopilot")) {
        if (on_off(o->target) < 0 || !o->tenant)
            return ap_fail(AP_ERR_INVALID, err, errsz, "autopilot needs on or off and --tenant"),
                   CTL_USAGE;
        st = ap_controls_autopilot(cfg, o->tenant, o->entity, on_off(o->target), by, err, errsz);
    } else if (!strcmp(name, "breaker")) {
        int reset = o->target && !strcmp(o->target, "reset");
        if (!o->target || (!reset && strcmp(o->target, "status")) ||
            (reset && (!o->tenant || !o->subsystem)))
            return ap_fail(AP_ERR_INVALID, err, errsz,
                           "breaker needs status, or reset with --tenant and --subsystem"),
                   CTL_USAGE;
        st = reset ? ap_breaker_reset(cfg, o->tenant, o->subsystem, by, err, errsz)
                   : ap_breaker_status(cfg, stdout, err, errsz);
    } else {
        st = ap_controls_show(cfg, stdout, err, errsz);
    }
    return st == AP_ERR_INVALID ? CTL_PROBLEM : st == AP_ERR_REDIS ? CTL_USAGE : exit_code(st);
}

/* Options of the policy commands; returns like option_take. */
static int policy_option(ctl_opts *o, int argc, char **argv, int *i, char *err, size_t errsz) {
    static const char *const names[] = {"--by",        "--note",   "--tenant",
                                        "--subsystem", "--entity", "--reason"};
    const char **slots[] = {&o->by, &o->note, &o->tenant, &o->subsystem, &o->entity, &o->reason};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const char *v;
        int r = option_take(argc, argv, i, names[k], 1, &v, err, errsz);
        if (r == 1 && !*v) {
            ap_fail(AP_ERR_INVALID, err, errsz, "option '%s' needs a non-empty value", names[k]);
            return -1;
        }
        if (r == 1)
            *slots[k] = v;
        if (r)
            return r;
    }
    return 0;
}

/* ---------------------------------------------------------------- argv */

static const command commands[] = {
    {"migrate", "apply the SQL migrations and create the Kafka topics (idempotent)", NULL,
     migrate_usage, migrate_run},
    {"lag", "show the worker group's lag; with --wait, wait until every action is settled", NULL,
     lag_usage, lag_run},
    {"report", "show the actions, entity state, rejections and duplicates in Postgres", NULL,
     report_usage, report_run},
    {"summary", "what became of the actions received since a time, per tenant and subsystem", NULL,
     summary_usage, summary_run},
    {"revert", "undo one executed action by publishing a revert action", "ACTION_ID", revert_usage,
     revert_run},
    {"replay", "list dead letters and republish them to their original topics, once", NULL,
     replay_usage, replay_run},
    {"approve", "approve an action pending approval: it executes within seconds", "ACTION_ID",
     policy_usage, policy_run},
    {"reject", "reject an action pending approval", "ACTION_ID", policy_usage, policy_run},
    {"kill-switch", "on: no action executes anywhere; off: waiting actions resume", "on|off",
     policy_usage, policy_run},
    {"pause", "hold a tenant's or a subsystem's actions", NULL, policy_usage, policy_run},
    {"resume", "let a paused tenant's or subsystem's actions run", NULL, policy_usage, policy_run},
    {"protect", "reject every action on an entity", NULL, policy_usage, policy_run},
    {"unprotect", "lift an entity's protection", NULL, policy_usage, policy_run},
    {"autopilot", "on|off for a tenant or campaign (off: actions are only suggested)", "on|off",
     policy_usage, policy_run},
    {"controls", "what policy controls are in force, and what waits", NULL, policy_usage,
     policy_run},
    {"breaker", "status of the circuit breakers, or reset one", "status|reset", policy_usage,
     policy_run},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static void program_usage(FILE *out) {
    fprintf(out, "Usage: actionpool-ctl [settings flags] COMMAND [options]\n"
                 "\n"
                 "The ops tool of actionpool.\n"
                 "\n"
                 "Commands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "Options:\n"
                 "  --help       this help; COMMAND --help shows the options of a command\n"
                 "  --version    print the version\n"
                 "\n"
                 "Exit status: 0 ok; 1 the command ran but found a problem (lag --wait timed\n"
                 "out, a revert was refused, Postgres or Kafka refused something); 2 usage,\n"
                 "configuration or connection error.\n"
                 "\n");
    ap_config_usage(out, AP_PROG_CTL);
}

/* When argv[*i] is option `name` ("--name value" or "--name=value"), sets
 * *value (NULL for a flag without one: want_value 0), advances *i and returns
 * 1; -1 with err set when its value is missing or given to a flag; 0 otherwise. */
static int option_take(int argc, char **argv, int *i, const char *name, int want_value,
                       const char **value, char *err, size_t errsz) {
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) || (arg[n] && arg[n] != '='))
        return 0;
    if (!want_value) {
        if (arg[n]) {
            ap_fail(AP_ERR_INVALID, err, errsz, "option '%s' takes no value", name);
            return -1;
        }
        *value = NULL;
        *i += 1;
        return 1;
    }
    if (arg[n] == '=') {
        *value = arg + n + 1;
        *i += 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        ap_fail(AP_ERR_INVALID, err, errsz, "option '%s' needs a value", name);
        return -1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}

/* Parses a whole decimal int in lo..hi for option name. */
static int int_parse(const char *name, const char *text, int lo, int hi, int *out, char *err,
                     size_t errsz) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end) {
        ap_fail(AP_ERR_INVALID, err, errsz, "%s: cannot parse '%s' as an integer", name, text);
        return -1;
    }
    if (v < lo || v > hi) {
        ap_fail(AP_ERR_INVALID, err, errsz, "%s: %ld is out of range %d..%d", name, v, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Tries argv[*i] as an option of command cmd; returns like option_take. */
static int command_option(const command *cmd, ctl_opts *o, int argc, char **argv, int *i, char *err,
                          size_t errsz) {
    const char *v;
    int r = 0;
    if (cmd->run == policy_run)
        return policy_option(o, argc, argv, i, err, errsz);
    if (cmd->run == replay_run)
        return replay_option(o, argc, argv, i, err, errsz);
    if (!strcmp(cmd->name, "migrate")) {
        if ((r = option_take(argc, argv, i, "--sql-only", 0, &v, err, errsz)) == 1)
            o->sql_only = 1;
        else if (!r && (r = option_take(argc, argv, i, "--topics-only", 0, &v, err, errsz)) == 1)
            o->topics_only = 1;
        else if (!r &&
                 (r = option_take(argc, argv, i, "--replication-factor", 1, &v, err, errsz)) == 1)
            r = int_parse("--replication-factor", v, 1, 32767, &o->replication_factor, err, errsz)
                    ? -1
                    : 1;
        return r;
    }
    int is_report = !strcmp(cmd->name, "report"), is_summary = !strcmp(cmd->name, "summary");
    int is_revert = !strcmp(cmd->name, "revert");
    if (!is_revert && (r = option_take(argc, argv, i, "--json", 0, &v, err, errsz)) == 1)
        o->json = 1;
    else if (!r && !strcmp(cmd->name, "lag") &&
             (r = option_take(argc, argv, i, "--wait", 1, &v, err, errsz)) == 1)
        r = int_parse("--wait", v, 1, 86400, &o->wait_s, err, errsz) ? -1 : 1;
    else if (!r && (is_report || is_summary || is_revert) &&
             (r = option_take(argc, argv, i, "--tenant", 1, &v, err, errsz)) == 1) {
        if (!*v) {
            ap_fail(AP_ERR_INVALID, err, errsz, "option '--tenant' needs a non-empty value");
            return -1;
        }
        o->tenant = v;
    } else if (!r && is_summary &&
               (r = option_take(argc, argv, i, "--since", 1, &v, err, errsz)) == 1) {
        o->since = v;
    } else if (!r && is_revert &&
               (r = option_take(argc, argv, i, "--reason", 1, &v, err, errsz)) == 1) {
        o->reason = v;
    } else if (!r && is_revert &&
               (r = option_take(argc, argv, i, "--dry-run", 0, &v, err, errsz)) == 1) {
        o->dry_run = 1;
    }
    return r;
}

/* The command whose option argv[i] is, for a hint when it comes too early. */
static const command *option_owner(int argc, char **argv, int i) {
    for (int c = 0; c < NCOMMANDS; c++) {
        ctl_opts scratch = {0};
        int j = i;
        char ignored[8];
        if (command_option(&commands[c], &scratch, argc, argv, &j, ignored, sizeof ignored))
            return &commands[c];
    }
    return NULL;
}

int main(int argc, char **argv) {
    ap_config cfg;
    ctl_opts o = {.replication_factor = 1, .wait_s = -1};
    char err[1024] = "";
    int rc = CTL_USAGE;

    if (ap_config_init(&cfg, err, sizeof err))
        goto out;
    for (int i = 1; i < argc;) {
        const char *arg = argv[i];
        int r;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            o.help = 1;
            i++;
        } else if (!strcmp(arg, "--version")) {
            printf("actionpool-ctl %s\n", CTL_VERSION);
            rc = CTL_OK;
            goto out;
        } else if (arg[0] != '-') {
            if (o.command && o.command->operand && !o.target) {
                o.target = arg;
                i++;
                continue;
            }
            if (o.command) {
                ap_fail(AP_ERR_INVALID, err, sizeof err, "unexpected argument '%s'", arg);
                goto out;
            }
            for (int c = 0; c < NCOMMANDS && !o.command; c++)
                if (!strcmp(commands[c].name, arg))
                    o.command = &commands[c];
            if (!o.command) {
                ap_fail(AP_ERR_INVALID, err, sizeof err,
                        "unknown command '%s' (see actionpool-ctl --help)", arg);
                goto out;
            }
            i++;
        } else if (o.command &&
                   (r = command_option(o.command, &o, argc, argv, &i, err, sizeof err))) {
            if (r < 0)
                goto out;
        } else if ((r = ap_config_flag(&cfg, argc, argv, &i, err, sizeof err))) {
            if (r < 0)
                goto out;
        } else {
            const command *owner = o.command ? NULL : option_owner(argc, argv, i);
            if (owner)
                ap_fail(AP_ERR_INVALID, err, sizeof err,
                        "option '%s' belongs after the command ('%s %s')", arg, owner->name, arg);
            else
                ap_fail(AP_ERR_INVALID, err, sizeof err,
                        "unknown option '%s' (see actionpool-ctl %s%s--help)", arg,
                        o.command ? o.command->name : "", o.command ? " " : "");
            goto out;
        }
    }
    if (o.help) {
        if (o.command)
            o.command->usage(stdout);
        else
            program_usage(stdout);
        rc = CTL_OK;
        goto out;
    }
    if (!o.command) {
        ap_fail(AP_ERR_INVALID, err, sizeof err, "no command given (see actionpool-ctl --help)");
        goto out;
    }
    if (ap_log_init("ctl", cfg.log_level)) {
        ap_fail(AP_ERR_INVALID, err, sizeof err, "unknown log level '%s'", cfg.log_level);
        goto out;
    }
    rc = o.command->run(&cfg, &o, err, sizeof err);
out:
    fflush(stdout);
    if (rc != CTL_OK)
        fprintf(stderr, "actionpool-ctl: %s\n", *err ? err : "failed");
    ap_config_release(&cfg);
    return rc;
}
