/* metrics.h — the worker's Prometheus metrics: a fixed set of families in one
 * registry, updated from any thread, rendered for GET /metrics (health.h) in
 * the text exposition format 0.0.4.
 *
 *   actionpool_up                                      gauge, always 1
 *   actionpool_build_info{version}                     gauge, always 1
 *   actionpool_actions_total{subsystem,status}         counter
 *   actionpool_retries_total{subsystem,attempt}        counter
 *   actionpool_dead_letters_total{subsystem,error_class} counter
 *   actionpool_rate_limit_waits_total{subsystem}       counter
 *   actionpool_breaker_open{tenant_subsystem}          gauge, 1 open, 0 closed
 *   actionpool_consumer_lag{topic,partition}           gauge
 *   actionpool_batch_size                              histogram, messages per batch
 *   actionpool_execution_seconds                       histogram
 *   actionpool_metrics_series_dropped_total            counter, see below
 *
 * Labelled series are created on first use and live until ap_metrics_free
 * (a removed lag series is hidden, not freed). At most AP_METRICS_MAX_SERIES
 * exist at once; an update that would create one more, or that carries a label
 * value longer than AP_METRICS_MAX_LABEL bytes, is dropped and counted in
 * actionpool_metrics_series_dropped_total, so a flood of tenants can cost a
 * series, never the worker's memory. Label values are written escaped, with
 * bytes that are not UTF-8 replaced by '?'.
 *
 * Every function takes one mutex for a few microseconds; none fails the
 * caller: running out of memory drops the update like the cap does. Every
 * function accepts m == NULL and then does nothing, so a worker started
 * without metrics needs no checks at the call sites. */
#ifndef AP_METRICS_H
#define AP_METRICS_H

#define AP_METRICS_MAX_SERIES 10000
#define AP_METRICS_MAX_LABEL  256

typedef struct ap_metrics ap_metrics;

/* A registry with no series yet. `version` (copied; NULL means "unknown") is
 * the label of actionpool_build_info. Returns NULL when out of memory. The
 * caller frees it with ap_metrics_free. */
ap_metrics *ap_metrics_new(const char *version);

/* Frees m and every series; accepts NULL. No other thread may use m then. */
void ap_metrics_free(ap_metrics *m);

/* Adds n (>= 0; a negative n is ignored) to actionpool_actions_total for
 * subsystem and status, one of executed, dry_run, rejected, duplicate,
 * redelivered, dead_lettered, failed, retry_scheduled, pending_approval,
 * suggested, manual_only. n == 0 creates the series at 0, so that rate()
 * sees its first increase: call it at start for every subsystem and status. */
void ap_metrics_count_action(ap_metrics *m, const char *subsystem, const char *status, long n);

/* Adds n to actionpool_retries_total: actions of subsystem sent to retry
 * topic `attempt` (1..3). */
void ap_metrics_count_retry(ap_metrics *m, const char *subsystem, int attempt, long n);

/* Adds n to actionpool_dead_letters_total for subsystem and error_class
 * (the ap-error-class header of the dead letter). */
void ap_metrics_count_dead_letter(ap_metrics *m, const char *subsystem, const char *error_class,
                                  long n);

/* Adds n to actionpool_rate_limit_waits_total: actions of subsystem that had
 * to wait for a rate-limit token. */
void ap_metrics_count_rate_limit_wait(ap_metrics *m, const char *subsystem, long n);

/* Sets actionpool_breaker_open for the breaker named tenant_subsystem (e.g.
 * "acme:campaigns") to 1 when open is non-zero, else 0. */
void ap_metrics_set_breaker(ap_metrics *m, const char *tenant_subsystem, int open);

/* Sets actionpool_consumer_lag of topic/partition to lag, replacing the last
 * value. Call ap_metrics_remove_lag when the partition is revoked, so that a
 * partition now consumed by another worker is not reported twice. */
void ap_metrics_set_lag(ap_metrics *m, const char *topic, int partition, long long lag);

/* Stops reporting the lag of topic/partition until it is set again. */
void ap_metrics_remove_lag(ap_metrics *m, const char *topic, int partition);

/* Observes one batch of `size` messages in actionpool_batch_size
 * (buckets 1, 10, 50, 100, 250, 500, 1000, 5000). */
void ap_metrics_observe_batch(ap_metrics *m, int size);

/* Observes one execution that took `seconds` in actionpool_execution_seconds
 * (buckets .001 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10). A negative time
 * counts as 0; NaN and infinities are ignored. */
void ap_metrics_observe_execution(ap_metrics *m, double seconds);

/* Every family in the text exposition format 0.0.4: HELP and TYPE lines, then
 * the samples, series in the order they were created. Returns a NUL-terminated
 * string the caller frees, or NULL when m is NULL or out of memory. */
char *ap_metrics_render(ap_metrics *m);

#endif
