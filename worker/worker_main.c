/* actionpool-worker — a consumer-group member that executes the actions of
 * its subsystems in batches (see pipeline.h). SIGTERM or SIGINT: finish the
 * batch, commit, leave the group, exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "claims.h"
#include "config.h"
#include "connector.h"
#include "consumer.h"
#include "executor_map.h"
#include "health.h"
#include "http_executor.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "publisher.h"
#include "retry.h"
#include "store.h"
#include "tiers.h"
#include "topics.h"

#define VERSION          "0.1.0"
#define PROGRESS_EVERY_S 10
#define BACKOFF_MAX_MS   5000
#define RESUME_LEASE_S   30 /* a resumed action not seen again by then is resumed again */
#define RESUME_MAX       500

static volatile sig_atomic_t running = 1;
static unsigned drain_timeout_s = 25;

/* SIGTERM, SIGINT: finish the batch, commit, leave. If that takes longer than
 * drain_timeout_s, SIGALRM ends the process: nothing is lost, the uncommitted
 * batch is delivered again and Postgres turns it into redeliveries. */
static void on_signal(int sig) {
    (void)sig;
    if (running)
        alarm(drain_timeout_s);
    running = 0;
}

static const char *const statuses[] = {"executed",    "dry_run",       "rejected", "duplicate",
                                       "redelivered", "dead_lettered", "failed"};

/* Every subsystem x status series exists from the start, at 0. */
static void metrics_init(ap_metrics *m, const ap_executor_map *map) {
    for (int i = 0; i < ap_executor_map_subsystem_count(map); i++)
        for (size_t k = 0; k < sizeof statuses / sizeof *statuses; k++)
            ap_metrics_count_action(m, ap_executor_map_subsystem_at(map, i)->name, statuses[k], 0);
}

/* Publishes again the waiting actions whose time has come (approved, a
 * control lifted, the action ahead of them settled), so they run through the
 * pipeline like any message. Each is leased first: one a publish loses is
 * taken again by any worker after RESUME_LEASE_S. */
static void resume_due(ap_store *store, ap_publisher *publisher, const ap_config *cfg) {
    char err[512], topic[AP_TOPIC_MAX];
    json_t *due = ap_store_take_due(store, RESUME_MAX, RESUME_LEASE_S, err, sizeof err), *row;
    size_t i;
    if (!due) {
        ap_log(AP_LOG_WARN, "cannot take due actions", "error", err, NULL);
        return;
    }
    json_array_foreach(due, i, row) {
        char *payload = json_dumps(json_object_get(row, "payload"), JSON_COMPACT);
        ap_topic_main(topic, sizeof topic, cfg->topic_prefix,
                      json_string_value(json_object_get(row, "subsystem")));
        if (!payload || ap_publisher_send(publisher, topic,
                                          json_string_value(json_object_get(row, "partition_key")),
                                          payload, strlen(payload), NULL, NULL, err, sizeof err))
            ap_log(AP_LOG_WARN, "cannot resume a waiting action", "error",
                   payload ? err : "out of memory", NULL);
        free(payload);
    }
    if (json_array_size(due)) {
        char n[16];
        snprintf(n, sizeof n, "%zu", json_array_size(due));
        ap_publisher_flush(publisher, 10000);
        ap_log(AP_LOG_INFO, "resumed waiting actions", "count", n, NULL);
    }
    json_decref(due);
}

/* Takes out of msgs[0..n) the retry messages that are not due yet, deferring
 * their partitions until they are (and whatever follows them there); returns
 * how many remain, in order. */
static int defer_not_due(ap_consumer *c, rd_kafka_message_t **msgs, int n) {
    long long now = ap_retry_clock_ms();
    int kept = 0;
    for (int i = 0; i < n; i++) {
        long long due = ap_retry_due(msgs[i]);
        if (due > now)
            ap_consumer_defer(c, msgs[i], due);
        if (due > now || ap_consumer_deferred(c, msgs[i]))
            rd_kafka_message_destroy(msgs[i]);
        else
            msgs[kept++] = msgs[i];
    }
    return kept;
}

/* Once a second: send the Redis guards what is queued (or ping), ping
 * Postgres, and tell /readyz what answered. */
static void check_stores(ap_health *h, ap_pipeline *p, ap_store *store, ap_consumer *c) {
    char err[512];
    int redis_ok = ap_pipeline_idle(p, err, sizeof err) == AP_OK;
    if (!redis_ok)
        ap_log(AP_LOG_WARN, "redis not answering", "error", err, NULL);
    int pg_ok = ap_store_ping(store, err, sizeof err) == AP_OK;
    if (!pg_ok)
        ap_log(AP_LOG_WARN, "postgres not answering", "error", err, NULL);
    ap_health_set(h, AP_HEALTH_REDIS, redis_ok);
    ap_health_set(h, AP_HEALTH_PG, pg_ok);
    ap_health_set(h, AP_HEALTH_KAFKA, ap_consumer_kafka_up(c));
    ap_health_set(h, AP_HEALTH_ASSIGNED, ap_consumer_assigned(c) > 0);
}

static void usage(FILE *out) {
    fprintf(out, "usage: actionpool-worker [settings]\n"
                 "\n"
                 "Joins the worker consumer group, consumes the actions of its subsystems in\n"
                 "batches, and for each action: validates it against the executor map, claims\n"
                 "its idempotency key in Redis, applies it to the config store and records the\n"
                 "action, its execution and its rollback data in Postgres in one transaction.\n"
                 "Offsets are stored only after that commit. SIGTERM finishes the batch,\n"
                 "commits and leaves the group.\n"
                 "\n"
                 "  --help      this text          --version  the version\n"
                 "\n"
                 "Exit status: 0 after a clean shutdown, 2 configuration or start-up error.\n\n");
    ap_config_usage(out, AP_PROG_WORKER);
}

static void log_stats(const char *msg, const ap_pipeline_stats *s) {
    char buf[9][24];
    long values[] = {s->batches,     s->executed,      s->dry_run, s->rejected, s->duplicate,
                     s->redelivered, s->dead_lettered, s->waiting, s->retried};
    for (int i = 0; i < 9; i++)
        snprintf(buf[i], sizeof buf[i], "%ld", values[i]);
    ap_log(AP_LOG_INFO, msg, "batches", buf[0], "executed", buf[1], "dry_run", buf[2], "rejected",
           buf[3], "duplicate", buf[4], "redelivered", buf[5], "dead_lettered", buf[6], "waiting",
           buf[7], "retried", buf[8], NULL);
}

/* Runs one batch until it is durable, or until shutdown is asked for while
 * the stores are down (the batch is then redelivered after a restart). While
 * it waits it pauses consumption, so the worker stays in its group, and
 * /readyz says which store is down. */
static int run_until_durable(ap_pipeline *p, ap_consumer *c, ap_health *h,
                             rd_kafka_message_t **msgs, int n) {
    char err[1024];
    int backoff_ms = 100, paused = 0;
    ap_status st;
    while ((st = ap_pipeline_run(p, msgs, n, err, sizeof err))) {
        ap_log(AP_LOG_ERROR, "batch not durable, retrying", "error", err, NULL);
        ap_health_beat(h);
        if (st == AP_ERR_REDIS || st == AP_ERR_PG || st == AP_ERR_KAFKA)
            ap_health_set(h,
                          st == AP_ERR_REDIS ? AP_HEALTH_REDIS
                          : st == AP_ERR_PG  ? AP_HEALTH_PG
                                             : AP_HEALTH_KAFKA,
                          0);
        if (!paused)
            ap_consumer_pause(c, paused = 1);
        rd_kafka_message_t *none[1];
        if (ap_consumer_poll_batch(c, none, 1, backoff_ms)) /* paused: serves the group only */
            rd_kafka_message_destroy(none[0]);
        backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
        if (!running)
            return -1;
    }
    if (paused)
        ap_consumer_pause(c, 0);
    ap_health_set(h, AP_HEALTH_REDIS, 1);
    ap_health_set(h, AP_HEALTH_PG, 1);
    return 0;
}

int main(int argc, char **argv) {
    ap_config cfg;
    char err[1024], path[1024];
    int status = 2;
    ap_executor_map *map = NULL;
    ap_claims *claims = NULL;
    ap_store *store = NULL;
    ap_publisher *dead_letters = NULL;
    ap_consumer *consumer = NULL;
    ap_metrics *metrics = NULL;
    ap_health *health = NULL;
    ap_connector *connector = NULL;
    ap_http_executor *http = NULL;
    ap_tiers *tiers = NULL;
    rd_kafka_message_t **msgs = NULL;

    if (ap_config_init(&cfg, err, sizeof err)) {
        fprintf(stderr, "actionpool-worker: %s\n", err);
        goto out;
    }
    for (int i = 1; i < argc;) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            status = 0;
            goto out;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("actionpool-worker %s\n", VERSION);
            status = 0;
            goto out;
        }
        int used = ap_config_flag(&cfg, argc, argv, &i, err, sizeof err);
        if (used < 0)
            fprintf(stderr, "actionpool-worker: %s\n", err);
        if (!used)
            fprintf(stderr, "actionpool-worker: unknown argument '%s' (see --help)\n", argv[i]);
        if (used <= 0)
            goto out;
    }
    if (ap_log_init("worker", cfg.log_level)) {
        fprintf(stderr, "actionpool-worker: log_level: unknown level '%s'\n", cfg.log_level);
        goto out;
    }
    drain_timeout_s = (unsigned)cfg.drain_timeout_s;
    int retry_delays[AP_RETRY_TOPICS];
    if (ap_retry_delays_parse(cfg.retry_delays_s, retry_delays, err, sizeof err)) {
        fprintf(stderr, "actionpool-worker: %s\n", err);
        goto out;
    }
    ap_config_schema_path(&cfg, "executor_map.json", path, sizeof path);
    if (!(map = ap_executor_map_load(path, err, sizeof err)) ||
        !(tiers = ap_tiers_new(&cfg, map, err, sizeof err)) ||
        !(metrics = ap_metrics_new(VERSION)) ||
        !(health = ap_health_start(cfg.health_addr, cfg.health_port, metrics, cfg.health_stale_ms,
                                   err, sizeof err)) ||
        !(claims = ap_claims_new(&cfg, err, sizeof err)) ||
        !(store = ap_store_new(&cfg, err, sizeof err)) ||
        !(dead_letters = ap_publisher_new(&cfg, NULL, NULL, err, sizeof err)) ||
        !(consumer = ap_consumer_new(&cfg, metrics, err, sizeof err)) ||
        !(msgs = calloc((size_t)cfg.batch_size, sizeof *msgs))) {
        ap_log(AP_LOG_ERROR, "cannot start", "error", metrics && msgs ? err : "out of memory",
               NULL);
        goto out;
    }
    metrics_init(metrics, map);
    if (*cfg.connector_file) {
        ap_http_options options = AP_HTTP_OPTIONS_DEFAULT;
        options.timeout_ms = cfg.http_timeout_ms;
        options.max_in_flight = cfg.http_max_in_flight;
        if (ap_connector_load(cfg.connector_file, &connector, err, sizeof err) ||
            ap_connector_check_map(connector, map, err, sizeof err) ||
            !(http = ap_http_executor_new(connector, &options, err, sizeof err))) {
            ap_log(AP_LOG_ERROR, "cannot start", "error", err, NULL);
            goto out;
        }
        char routes[16];
        snprintf(routes, sizeof routes, "%d", ap_connector_route_count(connector));
        ap_log(AP_LOG_INFO, "live HTTP connector loaded", "file", cfg.connector_file, "routes",
               routes, NULL);
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    ap_pipeline pipeline = {.cfg = &cfg,
                            .map = map,
                            .tiers = tiers,
                            .claims = claims,
                            .store = store,
                            .dead_letters = dead_letters,
                            .metrics = metrics,
                            .connector = connector,
                            .http = http};
    memcpy(pipeline.retry_delays, retry_delays, sizeof retry_delays);
    char port[16];
    snprintf(port, sizeof port, "%d", ap_health_port(health));
    ap_log(AP_LOG_INFO, "worker started", "worker_id", cfg.worker_id, "group_id", cfg.group_id,
           "subsystems", cfg.subsystems, "executor_map", ap_executor_map_version(map),
           "execution_mode", cfg.execution_mode, "health_port", port, NULL);
    time_t last_progress = time(NULL), last_check = 0;
    status = 0;
    while (running) {
        ap_health_beat(health);
        ap_consumer_resume_due(consumer);
        int n = ap_consumer_poll_batch(consumer, msgs, cfg.batch_size, cfg.batch_ms);
        n = defer_not_due(consumer, msgs, n);
        if (n && run_until_durable(&pipeline, consumer, health, msgs, n) == 0)
            ap_consumer_store(consumer, msgs, n);
        if (time(NULL) != last_check) { /* once a second */
            check_stores(health, &pipeline, store, consumer);
            resume_due(store, dead_letters, &cfg);
            last_check = time(NULL);
        }
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (time(NULL) - last_progress >= PROGRESS_EVERY_S) {
            log_stats("progress", &pipeline.stats);
            last_progress = time(NULL);
        }
    }
    ap_health_set(health, AP_HEALTH_ASSIGNED, 0);
    if (ap_pipeline_idle(&pipeline, err, sizeof err))
        ap_log(AP_LOG_WARN, "claim finishes not sent", "error", err, NULL);
    log_stats("worker stopping", &pipeline.stats);

out:
    ap_consumer_close(consumer);
    ap_health_stop(health);
    ap_http_executor_free(http);
    ap_connector_free(connector);
    ap_publisher_free(dead_letters);
    ap_store_free(store);
    ap_claims_free(claims);
    ap_tiers_free(tiers);
    ap_executor_map_free(map);
    ap_metrics_free(metrics);
    free(msgs);
    ap_config_release(&cfg);
    return status;
}
