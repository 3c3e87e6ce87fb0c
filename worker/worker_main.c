/* actionpool-worker — a consumer-group member that executes the actions of
 * its subsystems in batches (see pipeline.h). SIGTERM or SIGINT: finish the
 * batch, commit, leave the group, exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "claims.h"
#include "config.h"
#include "consumer.h"
#include "executor_map.h"
#include "log.h"
#include "pipeline.h"
#include "publisher.h"
#include "store.h"

#define VERSION "0.1.0"
#define PROGRESS_EVERY_S 10
#define BACKOFF_MAX_MS 5000

static volatile sig_atomic_t running = 1;

static void on_signal(int sig) {
    (void)sig;
    running = 0;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: actionpool-worker [settings]\n"
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
    char buf[7][24];
    long values[] = {s->batches, s->executed, s->dry_run, s->rejected, s->duplicate,
                     s->redelivered, s->dead_lettered};
    for (int i = 0; i < 7; i++)
        snprintf(buf[i], sizeof buf[i], "%ld", values[i]);
    ap_log(AP_LOG_INFO, msg, "batches", buf[0], "executed", buf[1], "dry_run", buf[2], "rejected",
           buf[3], "duplicate", buf[4], "redelivered", buf[5], "dead_lettered", buf[6], NULL);
}

/* Runs one batch until it is durable, or until shutdown is asked for while
 * the stores are down (the batch is then redelivered after a restart). While
 * it waits it pauses consumption, so the worker stays in its group. */
static int run_until_durable(ap_pipeline *p, ap_consumer *c, rd_kafka_message_t **msgs, int n) {
    char err[1024];
    int backoff_ms = 100, paused = 0;
    while (ap_pipeline_run(p, msgs, n, err, sizeof err)) {
        ap_log(AP_LOG_ERROR, "batch not durable, retrying", "error", err, NULL);
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
    ap_config_schema_path(&cfg, "executor_map.json", path, sizeof path);
    if (!(map = ap_executor_map_load(path, err, sizeof err)) ||
        !(claims = ap_claims_new(&cfg, err, sizeof err)) ||
        !(store = ap_store_new(&cfg, err, sizeof err)) ||
        !(dead_letters = ap_publisher_new(&cfg, NULL, NULL, err, sizeof err)) ||
        !(consumer = ap_consumer_new(&cfg, err, sizeof err)) ||
        !(msgs = calloc((size_t)cfg.batch_size, sizeof *msgs))) {
        ap_log(AP_LOG_ERROR, "cannot start", "error", msgs ? err : "out of memory", NULL);
        goto out;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    ap_pipeline pipeline = {.cfg = &cfg, .map = map, .claims = claims, .store = store,
                            .dead_letters = dead_letters};
    ap_log(AP_LOG_INFO, "worker started", "worker_id", cfg.worker_id, "group_id", cfg.group_id,
           "subsystems", cfg.subsystems, "executor_map", ap_executor_map_version(map), NULL);
    time_t last_progress = time(NULL);
    status = 0;
    while (running) {
        int n = ap_consumer_poll_batch(consumer, msgs, cfg.batch_size, cfg.batch_ms);
        if (n == 0) {
            if (ap_claims_flush(claims, err, sizeof err))
                ap_log(AP_LOG_WARN, "claim finishes not sent", "error", err, NULL);
        } else if (run_until_durable(&pipeline, consumer, msgs, n) == 0) {
            ap_consumer_store(consumer, msgs, n);
        }
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (time(NULL) - last_progress >= PROGRESS_EVERY_S) {
            log_stats("progress", &pipeline.stats);
            last_progress = time(NULL);
        }
    }
    if (ap_claims_flush(claims, err, sizeof err))
        ap_log(AP_LOG_WARN, "claim finishes not sent", "error", err, NULL);
    log_stats("worker stopping", &pipeline.stats);

out:
    ap_consumer_close(consumer);
    ap_publisher_free(dead_letters);
    ap_store_free(store);
    ap_claims_free(claims);
    ap_executor_map_free(map);
    free(msgs);
    ap_config_release(&cfg);
    return status;
}
