#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { SETTING_STR, SETTING_INT, SETTING_NUM } setting_type;

typedef struct setting {
    const char *name;
    setting_type type;
    size_t offset;   /* into ap_config */
    const char *def; /* NULL: computed (worker_id) */
    long min, max;   /* SETTING_INT and SETTING_NUM bounds */
    unsigned programs;
    const char *help;
    const char *shown_def; /* what --help says for a NULL or "" def */
    const char *choices;   /* SETTING_STR: "a|b" the value must be one of, or NULL */
} setting;

#define STR(f, d, p, h)                                                                            \
    { #f, SETTING_STR, offsetof(ap_config, f), d, 0, 0, p, h, NULL, NULL }
#define INT(f, d, lo, hi, p, h)                                                                    \
    { #f, SETTING_INT, offsetof(ap_config, f), d, lo, hi, p, h, NULL, NULL }
#define NUM(f, d, lo, hi, p, h)                                                                    \
    { #f, SETTING_NUM, offsetof(ap_config, f), d, lo, hi, p, h, NULL, NULL }
/* A string setting that must be one of `choices` ("a|b|c"). */
#define CHOICE(f, d, choices, p, h)                                                                \
    { #f, SETTING_STR, offsetof(ap_config, f), d, 0, 0, p, h, NULL, choices }
/* A string setting whose default is worked out at run time, said in words. */
#define STR_COMPUTED(f, d, shown, p, h)                                                            \
    { #f, SETTING_STR, offsetof(ap_config, f), d, 0, 0, p, h, shown, NULL }

static const setting settings[] = {
    STR(brokers, "127.0.0.1:9092", AP_PROG_ALL, "Kafka bootstrap servers"),
    STR(redis_host, "127.0.0.1", AP_PROG_WORKER | AP_PROG_CTL, "Redis host"),
    INT(redis_port, "6379", 1, 65535, AP_PROG_WORKER | AP_PROG_CTL, "Redis port"),
    STR(pg_dsn, "host=127.0.0.1 port=5432 dbname=actionpool user=actionpool",
        AP_PROG_WORKER | AP_PROG_CTL, "PostgreSQL connection string"),
    STR_COMPUTED(schema_dir, "", "../schemas beside the binary", AP_PROG_ALL,
                 "folder with executor_map.json and sql/"),
    STR(topic_prefix, "actions", AP_PROG_ALL, "topics are PREFIX.<subsystem>[.retry.N|.dlq]"),
    STR(group_id, "actionpool-workers", AP_PROG_WORKER | AP_PROG_CTL,
        "consumer group of the workers (ctl reads its lag)"),
    STR(subsystems, "campaigns,crm,pricing,routing,content", AP_PROG_WORKER,
        "subsystems this worker consumes, comma-separated"),
    STR_COMPUTED(worker_id, NULL, "host:pid", AP_PROG_WORKER, "name recorded with each execution"),
    INT(batch_size, "500", 1, 100000, AP_PROG_WORKER, "most messages in one batch"),
    INT(batch_ms, "50", 1, 60000, AP_PROG_WORKER, "longest wait in ms to fill a batch"),
    INT(partitions, "6", 1, 1000, AP_PROG_CTL, "partitions of each topic created by migrate"),
    INT(claim_lease_ms, "60000", 100, 86400000, AP_PROG_WORKER,
        "idempotency claim lease in ms (a crashed worker's claim expires after it)"),
    INT(done_ttl_s, "604800", 1, INT_MAX, AP_PROG_WORKER,
        "seconds a finished idempotency key remembers its outcome in Redis"),
    STR(log_level, "info", AP_PROG_ALL, "debug, info, warn or error"),
    CHOICE(execution_mode, "apply", "apply|dry_run", AP_PROG_WORKER,
           "apply changes, or dry_run: check and record what would change"),
    INT(budget_max_increase_pct, "30", 0, 1000, AP_PROG_WORKER,
        "most a budget may rise in one action, in % of its current value"),
    INT(budget_floor, "1", 0, INT_MAX, AP_PROG_WORKER, "no budget is set below this amount"),
    CHOICE(budget_excess, "clamp", "clamp|reject", AP_PROG_WORKER,
           "a budget increase over the cap is clamped to it, or rejected"),
    STR_COMPUTED(connector_file, "", "none: every action goes to the built-in store",
                 AP_PROG_WORKER, "HTTP connector config (schemas/connector.schema.json)"),
    INT(http_timeout_ms, "10000", 1, 600000, AP_PROG_WORKER,
        "timeout of a connector request when its route and connector set none"),
    INT(http_max_in_flight, "64", 1, 10000, AP_PROG_WORKER,
        "most connector requests of one batch in flight at once"),
    STR(health_addr, "127.0.0.1", AP_PROG_WORKER,
        "address of the /healthz, /readyz and /metrics server (0.0.0.0: all interfaces)"),
    INT(health_port, "8080", 0, 65535, AP_PROG_WORKER,
        "port of that server (0: any free port, logged at start)"),
    INT(health_stale_ms, "30000", 1000, 3600000, AP_PROG_WORKER,
        "/healthz fails when the main loop has not turned for this long"),
    INT(drain_timeout_s, "25", 1, 3600, AP_PROG_WORKER,
        "SIGTERM: longest time to finish the batch, commit and leave the group"),
    STR(tier_floors, "", AP_PROG_WORKER,
        "raise default tiers: subsystem[:action_type]=N,... e.g. pricing=2,campaigns:scale=3"),
    NUM(tier1_min_confidence, "0.7", 0, 1, AP_PROG_WORKER,
        "tier 1 needs confidence above this, else it waits for approval"),
    NUM(tier1_min_impact, "0.10", 0, 1000000000, AP_PROG_WORKER,
        "tier 1 needs estimated_impact (per month) above this"),
    INT(tier1_quiet_hours, "24", 0, 8760, AP_PROG_WORKER,
        "tier 1 needs the entity unchanged by another action for this long"),
    INT(rate_limit_hourly, "10", 0, 1000000, AP_PROG_WORKER,
        "executions per tenant and subsystem in the short window (0: no limit)"),
    INT(rate_limit_daily, "50", 0, 10000000, AP_PROG_WORKER,
        "executions per tenant and subsystem in the long window (0: no limit)"),
    INT(rate_limit_hour_s, "3600", 1, 86400, AP_PROG_WORKER, "the short window, in seconds"),
    INT(rate_limit_day_s, "86400", 1, 2678400, AP_PROG_WORKER, "the long window, in seconds"),
    INT(breaker_window, "20", 1, 10000, AP_PROG_WORKER,
        "executions per tenant and subsystem the circuit breaker looks back on"),
    INT(breaker_failure_pct, "20", 0, 100, AP_PROG_WORKER,
        "the breaker opens when more than this % of a full window failed"),
    INT(breaker_consecutive, "3", 1, 1000, AP_PROG_WORKER,
        "the breaker opens after this many failures in a row"),
    INT(max_message_bytes, "1048576", 1024, 104857600, AP_PROG_WORKER,
        "a larger message goes to the DLQ at once, unread"),
    STR(retry_delays_s, "300,600,1200", AP_PROG_WORKER,
        "delays of the retry topics 1, 2, 3 in seconds; after the last, the DLQ"),
    STR_COMPUTED(alert_webhook_url, "", "none", AP_PROG_WORKER | AP_PROG_CTL,
                 "alerts are also POSTed here as JSON"),
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

static char **str_slot(ap_config *cfg, const setting *s) {
    return (char **)((char *)cfg + s->offset);
}

static int *int_slot(ap_config *cfg, const setting *s) {
    return (int *)((char *)cfg + s->offset);
}

/* Whether text is one of the '|'-separated choices. */
static int is_choice(const char *choices, const char *text) {
    size_t n = strlen(text);
    for (const char *c = choices; c; c = strchr(c, '|') ? strchr(c, '|') + 1 : NULL)
        if (!strncmp(c, text, n) && (c[n] == '|' || c[n] == '\0'))
            return 1;
    return 0;
}

/* Sets one setting from text; `source` names where it came from for errors.
 * On failure the setting keeps its value. */
static ap_status setting_set(ap_config *cfg, const setting *s, const char *text, const char *source,
                             char *err, size_t errsz) {
    if (s->type == SETTING_STR) {
        if (s->choices && !is_choice(s->choices, text))
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: '%s' is not one of %s", source, text,
                           s->choices);
        char *copy = strdup(text);
        if (!copy)
            return ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        free(*str_slot(cfg, s));
        *str_slot(cfg, s) = copy;
        return AP_OK;
    }
    char *end;
    errno = 0;
    if (s->type == SETTING_NUM) {
        double x = strtod(text, &end);
        if (errno || end == text || *end || x != x)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: cannot parse '%s' as a number", source,
                           text);
        if (x < (double)s->min || x > (double)s->max)
            return ap_fail(AP_ERR_INVALID, err, errsz, "%s: %g is out of range %ld..%ld", source, x,
                           s->min, s->max);
        *(double *)((char *)cfg + s->offset) = x;
        return AP_OK;
    }
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end)
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: cannot parse '%s' as an integer", source,
                       text);
    if (v < s->min || v > s->max)
        return ap_fail(AP_ERR_INVALID, err, errsz, "%s: %ld is out of range %ld..%ld", source, v,
                       s->min, s->max);
    *int_slot(cfg, s) = (int)v;
    return AP_OK;
}

/* Appends a copy of name=value to cfg->kafka. On failure cfg is as it was
 * and nothing is kept: the copies are made first, and stored only once the
 * array has room. */
static ap_status kafka_prop_add(ap_config *cfg, const char *name, const char *value, char *err,
                                size_t errsz) {
    ap_status st = AP_OK;
    char *name_copy = strdup(name);
    char *value_copy = strdup(value);
    if (!name_copy || !value_copy) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    ap_kafka_prop *grown = realloc(cfg->kafka, ((size_t)cfg->kafka_count + 1) * sizeof *grown);
    if (!grown) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    cfg->kafka = grown;
    grown[cfg->kafka_count].name = name_copy;
    grown[cfg->kafka_count].value = value_copy;
    cfg->kafka_count++;
    name_copy = value_copy = NULL;
out:
    free(value_copy);
    free(name_copy);
    return st;
}

ap_status ap_config_init(ap_config *cfg, char *err, size_t errsz) {
    extern char **environ;
    char envname[128], source[160];
    ap_status st = AP_OK;

    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->def && (st = setting_set(cfg, s, s->def, s->name, err, errsz)))
            goto out;
        size_t n = (size_t)snprintf(envname, sizeof envname, "ACTIONPOOL_");
        for (const char *c = s->name; *c && n < sizeof envname - 1; c++)
            envname[n++] = (char)toupper((unsigned char)*c);
        envname[n] = '\0';
        const char *v = getenv(envname);
        snprintf(source, sizeof source, "%s", envname);
        if (v && (st = setting_set(cfg, s, v, source, err, errsz)))
            goto out;
    }
    if (!cfg->worker_id) {
        char host[128] = "localhost", id[200];
        gethostname(host, sizeof host - 1);
        snprintf(id, sizeof id, "%s:%d", host, (int)getpid());
        if (!(cfg->worker_id = strdup(id))) {
            st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
            goto out;
        }
    }
    for (char **e = environ; *e; e++) {
        static const char pfx[] = "ACTIONPOOL_KAFKA_";
        if (strncmp(*e, pfx, sizeof pfx - 1))
            continue;
        const char *eq = strchr(*e, '=');
        char prop[128];
        size_t n = 0;
        for (const char *c = *e + sizeof pfx - 1; c < eq && n < sizeof prop - 1; c++)
            prop[n++] = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
        prop[n] = '\0';
        if ((st = kafka_prop_add(cfg, prop, eq + 1, err, errsz)))
            goto out;
    }
out:
    if (st)
        ap_config_release(cfg);
    return st;
}

int ap_config_flag(ap_config *cfg, int argc, char **argv, int *i, char *err, size_t errsz) {
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2))
        return 0;
    arg += 2;
    const char *eq = strchr(arg, '=');
    size_t namelen = eq ? (size_t)(eq - arg) : strlen(arg);
    char name[128];
    if (namelen >= sizeof name)
        return 0;
    for (size_t k = 0; k < namelen; k++)
        name[k] = arg[k] == '-' ? '_' : arg[k];
    name[namelen] = '\0';

    const setting *s = NULL;
    for (size_t k = 0; k < NSETTINGS; k++)
        if (!strcmp(settings[k].name, name))
            s = &settings[k];
    int is_kafka = !strncmp(name, "kafka.", 6);
    if (!s && !is_kafka)
        return 0;

    const char *value = eq ? eq + 1 : NULL;
    int used = 1;
    if (!value) {
        if (*i + 1 >= argc) {
            ap_fail(AP_ERR_INVALID, err, errsz, "option '--%.*s' needs a value", (int)namelen, arg);
            return -1;
        }
        value = argv[*i + 1];
        used = 2;
    }
    char source[160];
    snprintf(source, sizeof source, "--%.*s", (int)namelen, arg);
    ap_status st;
    if (is_kafka) {
        char prop[128];
        snprintf(prop, sizeof prop, "%.*s", (int)namelen - 6, arg + 6);
        st = kafka_prop_add(cfg, prop, value, err, errsz);
    } else {
        st = setting_set(cfg, s, value, source, err, errsz);
    }
    if (st)
        return -1;
    *i += used;
    return 1;
}

void ap_config_usage(FILE *out, unsigned program) {
    fprintf(out, "Settings (a flag wins over its environment variable):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &settings[i];
        if (!(s->programs & program))
            continue;
        char flag[64], env[80];
        size_t f = 0, e = (size_t)snprintf(env, sizeof env, "ACTIONPOOL_");
        for (const char *c = s->name; *c; c++) {
            flag[f++] = *c == '_' ? '-' : *c;
            env[e++] = (char)toupper((unsigned char)*c);
        }
        flag[f] = env[e] = '\0';
        fprintf(out, "  --%-16s %-27s %s (default: %s)\n", flag, env, s->help,
                s->def && *s->def ? s->def
                : s->shown_def    ? s->shown_def
                                  : "none");
    }
    fprintf(out, "  --kafka.<property>  ACTIONPOOL_KAFKA_<PROPERTY>  any librdkafka property\n");
}

void ap_config_schema_path(const ap_config *cfg, const char *name, char *buf, size_t size) {
    if (cfg->schema_dir && *cfg->schema_dir) {
        snprintf(buf, size, "%s/%s", cfg->schema_dir, name);
        return;
    }
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(buf, size, "%s/../schemas/%s", slash ? exe : ".", name);
}

void ap_config_release(ap_config *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].type == SETTING_STR)
            free(*str_slot(cfg, &settings[i]));
    for (int i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    memset(cfg, 0, sizeof *cfg);
}
