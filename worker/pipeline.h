/* pipeline.h — what a worker does with one batch of messages:
 *   parse -> validate (against the executor map, again) -> claim idempotency
 *   keys in Redis (one round trip) -> send the actions a connector route
 *   matches to their live HTTP target (all at once, see http_stage.h) ->
 *   send transient failures on to their retry topic (or the DLQ after the
 *   last) -> record outcomes and apply the built-in store's changes in
 *   Postgres (one transaction) -> dead-letter what cannot be a row.
 * Only when ap_pipeline_run returns AP_OK may the batch's offsets be stored. */
#ifndef AP_PIPELINE_H
#define AP_PIPELINE_H

#include <librdkafka/rdkafka.h>

#include "claims.h"
#include "config.h"
#include "connector.h"
#include "executor_map.h"
#include "http_executor.h"
#include "metrics.h"
#include "publisher.h"
#include "store.h"
#include "tiers.h"
#include "topics.h"

/* Outcomes counted since start, for progress lines and the exit summary. */
typedef struct ap_pipeline_stats {
    long executed, dry_run, rejected, duplicate, redelivered, dead_lettered, batches;
    long waiting; /* held by policy: waiting, pending approval, suggested, manual only */
    long retried; /* sent to a retry topic or, after the last, the DLQ */
} ap_pipeline_stats;

typedef struct ap_pipeline {
    const ap_config *cfg;              /* borrowed */
    const ap_executor_map *map;        /* borrowed */
    const ap_tiers *tiers;             /* borrowed */
    ap_claims *claims;                 /* borrowed */
    ap_store *store;                   /* borrowed */
    ap_publisher *dead_letters;        /* borrowed */
    ap_metrics *metrics;               /* borrowed; may be NULL */
    const ap_connector *connector;     /* borrowed; NULL: every action goes to the store */
    ap_http_executor *http;            /* borrowed; set with connector */
    int retry_delays[AP_RETRY_TOPICS]; /* seconds, from retry_delays_s */
    ap_pipeline_stats stats;
} ap_pipeline;

/* Processes msgs[0..n) (borrowed). AP_OK: every message is durable, as an
 * actions row or a dead letter. Otherwise Redis, Postgres or Kafka failed, err
 * says which, and running the same messages again is safe: Postgres turns what
 * was already recorded into "redelivered" and changes nothing twice. */
ap_status ap_pipeline_run(ap_pipeline *p, rd_kafka_message_t **msgs, int n, char *err,
                          size_t errsz);

/* An idle turn: sends the Redis guards what the last batches left queued
 * (finished keys, breaker outcomes, token refunds) and raises an alert for
 * each breaker that opened. AP_OK when Redis answered. */
ap_status ap_pipeline_idle(ap_pipeline *p, char *err, size_t errsz);

#endif
