/* config.h — every setting of every program, in one table (config.c).
 *
 * A setting named `batch_size` is read from the environment variable
 * ACTIONPOOL_BATCH_SIZE and from the flag --batch-size (a flag wins). Each is
 * validated against its bounds when it is set; the error names the setting.
 * librdkafka properties pass through as --kafka.<property>=VALUE or
 * ACTIONPOOL_KAFKA_<PROPERTY> (underscores become dots). */
#ifndef AP_CONFIG_H
#define AP_CONFIG_H

#include <stdio.h>

#include "status.h"

/* Which programs read a setting (a bit mask), for validation and --help. */
enum { AP_PROG_PRODUCER = 1, AP_PROG_WORKER = 2, AP_PROG_CTL = 4, AP_PROG_ALL = 7 };

typedef struct ap_kafka_prop {
    char *name; /* librdkafka property, e.g. "security.protocol" */
    char *value;
} ap_kafka_prop;

typedef struct ap_config {
    char *brokers; /* Kafka bootstrap servers */
    char *redis_host;
    int redis_port;
    char *pg_dsn;       /* libpq connection string */
    char *schema_dir;   /* executor_map.json, sql/ */
    char *topic_prefix; /* topics are <prefix>.<subsystem>[.retry.N|.dlq] */
    char *group_id;     /* worker consumer group */
    char *subsystems;   /* comma-separated subsystems a worker consumes */
    char *worker_id;    /* recorded with each execution; default host:pid */
    int batch_size;     /* most messages per batch */
    int batch_ms;       /* longest wait to fill a batch */
    int partitions;     /* partitions per topic, for ctl migrate */
    int claim_lease_ms; /* idempotency claim lease */
    int done_ttl_s;     /* how long a finished idempotency key remembers its outcome */
    char *log_level;
    char *execution_mode;        /* "apply" or "dry_run" */
    int budget_max_increase_pct; /* budget guardrail: cap per action */
    int budget_floor;            /* budget guardrail: lowest budget */
    char *budget_excess;         /* "clamp" or "reject" an increase over the cap */
    char *connector_file;        /* HTTP connector config; "": none */
    int http_timeout_ms;
    int http_max_in_flight;
    char *health_addr; /* /healthz, /readyz, /metrics */
    int health_port;
    int health_stale_ms;
    int drain_timeout_s; /* SIGTERM: finish, commit, leave within this */
    char *tier_floors;   /* "subsystem[:action_type]=N,...": raised default tiers */
    double tier1_min_confidence;
    double tier1_min_impact;
    int tier1_quiet_hours;
    int rate_limit_hourly; /* tokens per tenant x subsystem: short window */
    int rate_limit_daily;  /* ... long window */
    int rate_limit_hour_s;
    int rate_limit_day_s;
    int breaker_window; /* circuit breaker per tenant x subsystem */
    int breaker_failure_pct;
    int breaker_consecutive;
    char *alert_webhook_url; /* "": none */
    int max_message_bytes;   /* larger messages are dead-lettered unread */
    char *retry_delays_s;    /* "d1,d2,d3": delays of retry topics 1..AP_RETRY_TOPICS */

    ap_kafka_prop *kafka; /* passthrough properties, in the order given */
    int kafka_count;
} ap_config;

/* Fills cfg with the defaults, then the ACTIONPOOL_* environment. The caller
 * owns cfg and releases it with ap_config_release. On failure (AP_ERR_INVALID
 * naming the variable, or AP_ERR_NOMEM "out of memory") cfg is already
 * released and left zeroed; releasing it again is harmless. */
ap_status ap_config_init(ap_config *cfg, char *err, size_t errsz);

/* Tries argv[*i] as a setting flag (--name=value, --name value, or
 * --kafka.prop=value). Returns 1 and advances *i past what it consumed when it
 * was one, 0 when argv[*i] is not a setting flag, -1 with err set when it is
 * one with a bad value or memory ran out; then cfg is as it was. */
int ap_config_flag(ap_config *cfg, int argc, char **argv, int *i, char *err, size_t errsz);

/* Prints the settings a program reads, with their env names and defaults. */
void ap_config_usage(FILE *out, unsigned program);

/* Writes the path of `name` inside the schema folder into buf: schema_dir
 * when set, else ../schemas beside the running binary. */
void ap_config_schema_path(const ap_config *cfg, const char *name, char *buf, size_t size);

/* Frees what cfg owns; cfg may be zeroed or partly filled. */
void ap_config_release(ap_config *cfg);

#endif
