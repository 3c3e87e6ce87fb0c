/* health.h — the worker's HTTP endpoints for Kubernetes probes and Prometheus,
 * served by a background thread on one port:
 *
 *   GET /healthz  200 "ok" while the main loop has called ap_health_beat within
 *                 the staleness window (it counts from ap_health_start until the
 *                 first beat); else 503 saying how long ago the last beat was.
 *   GET /readyz   200 "ok" when Kafka, Redis and Postgres are connected and at
 *                 least one partition is assigned (ap_health_set); else 503
 *                 listing what is not ready, e.g. "not ready: redis, assigned".
 *   GET /metrics  ap_metrics_render, text format 0.0.4.
 *
 * Anything else: 404, 405 for a method other than GET, 400 for a request that
 * is not HTTP/1.x, 431 for one over 8 KiB. Every response closes its
 * connection. Connections are served one at a time, each given at most 2 s to
 * send its request and 5 s to read the answer, so a stuck client delays
 * probes by seconds, never for good. The thread blocks every signal: they go
 * to the main thread, as the worker's SIGTERM handling expects.
 *
 * ap_health_beat and ap_health_set are lock-free atomic stores, cheap enough
 * for every turn of the main loop. */
#ifndef AP_HEALTH_H
#define AP_HEALTH_H

#include <stddef.h>

#include "metrics.h"

/* What /readyz requires; each starts not ready. */
typedef enum ap_health_check {
    AP_HEALTH_KAFKA,    /* a broker answers */
    AP_HEALTH_REDIS,    /* the claims connection works */
    AP_HEALTH_PG,       /* the store connection works */
    AP_HEALTH_ASSIGNED, /* the group gave this worker at least one partition */
} ap_health_check;

#define AP_HEALTH_NCHECKS 4

typedef struct ap_health ap_health;

/* Binds bind_addr:port (an address or host name; NULL means "127.0.0.1"; port
 * 0 lets the system choose one, see ap_health_port) and starts serving. m is
 * borrowed and must outlive the server; with m NULL, /metrics answers 404.
 * stale_after_ms (> 0) is the /healthz window. Returns NULL with err set when
 * the arguments are bad or the port cannot be bound. The caller stops and
 * frees the server with ap_health_stop. */
ap_health *ap_health_start(const char *bind_addr, int port, ap_metrics *m, int stale_after_ms,
                           char *err, size_t errsz);

/* The port the server listens on: the one asked for, or the one chosen. */
int ap_health_port(const ap_health *h);

/* The main loop is turning: call it at least once per staleness window,
 * including while it waits for the stores to come back. Accepts NULL. */
void ap_health_beat(ap_health *h);

/* Marks one readiness check as ok (non-zero) or not (0). Accepts NULL. */
void ap_health_set(ap_health *h, ap_health_check check, int ok);

/* Stops serving, joins the thread, closes the socket and frees h; accepts
 * NULL. */
void ap_health_stop(ap_health *h);

#endif
