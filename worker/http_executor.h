/* http_executor.h — carries out actions over HTTP: one request per action,
 * the requests of a batch concurrently (libcurl multi), connections kept alive
 * between batches.
 *
 * Every request carries the route's headers plus
 *   Authorization: Bearer <token>   when the connector has a bearer token
 *   <api key header>: <key>         when it has an API key
 *   Idempotency-Key: <the action's tenant-scoped idempotency key>
 *   Content-Type: application/json, Accept: application/json,
 *   User-Agent: actionpool/0.1
 * over HTTP/1.1 keep-alive. Redirects are not followed (a 3xx is rejected).
 *
 * Each response is classified (ap_http_outcome):
 *   2xx                                   executed
 *   401, 403                              permission_denied (rejected; alert ops)
 *   408, 429, 5xx, timeout, connection    transient (retry; Retry-After kept)
 *   every other status (400, 404, 409, 422, 3xx, ...), and an action whose
 *   request cannot be built                rejected (never retried)
 *
 * Thread safety: one executor is used by one thread at a time. Create
 * executors from the main thread before starting others (curl's global
 * initialisation happens in ap_http_executor_new). */
#ifndef AP_HTTP_EXECUTOR_H
#define AP_HTTP_EXECUTOR_H

#include <jansson.h>

#include "action.h"
#include "connector.h"
#include "status.h"

#define AP_HTTP_USER_AGENT "actionpool/0.1"

typedef struct ap_http_executor ap_http_executor;

typedef struct ap_http_options {
    int timeout_ms;            /* a request's timeout when neither its route nor its
                                  connector sets one (setting http_timeout_ms) */
    int max_in_flight;         /* most requests open at once; the rest of a batch waits */
    size_t max_response_bytes; /* response bodies are kept up to this size */
} ap_http_options;

/* Defaults: 10000 ms, 64 requests in flight, 65536 bytes. */
#define AP_HTTP_OPTIONS_DEFAULT                                                                    \
    { 10000, 64, 65536 }

typedef enum ap_http_outcome {
    AP_HTTP_EXECUTED,          /* 2xx: the platform took the change */
    AP_HTTP_REJECTED,          /* the platform refused it, or no request could be built */
    AP_HTTP_PERMISSION_DENIED, /* 401, 403: rejected, and ops must be alerted */
    AP_HTTP_TRANSIENT,         /* try again later (retry_after_s when the platform said) */
} ap_http_outcome;

/* "executed", "rejected", "permission_denied", "transient". */
const char *ap_http_outcome_name(ap_http_outcome outcome);

/* What happened to one action's request. Filled by ap_http_execute; the
 * caller releases it with ap_http_result_release. No member ever holds a
 * credential: `request` omits them and `response` has them starred out. */
typedef struct ap_http_result {
    ap_http_outcome outcome;
    int http_status;        /* 0 when no response arrived */
    long duration_ms;       /* from sending to the last byte (or the failure) */
    int retry_after_s;      /* Retry-After of a 429 or 503 (seconds or HTTP-date, in
                               seconds from now, >= 0); -1 when absent or unreadable */
    char error_class[24];   /* "" when executed; otherwise "http_<status>", "timeout",
                               "connect" (could not connect or resolve), "connection"
                               (broken while talking), "tls", "template" (request could
                               not be built), "no_route", "curl" (anything else) */
    char error[512];        /* one line for people, no secrets; "" when executed */
    json_t *request;        /* ap_connector_request_describe of what was sent, NULL when
                               no request could be built; owned */
    json_t *response;       /* the response body: parsed when it is JSON, else a JSON
                               string; NULL when empty; owned */
    int response_truncated; /* the body was longer than max_response_bytes (it is
                               then kept as a string) */
} ap_http_result;

/* One action to execute. */
typedef struct ap_http_request {
    const ap_action *action; /* borrowed; its route is ap_connector_route_for */
    const json_t *value;     /* the value to apply, borrowed; NULL: the action's own
                                (ap_action_value) — pass the clamped or reverted
                                value when it differs */
} ap_http_request;

/* A new executor sending with connector c, which it borrows: c must outlive
 * the executor. opts may be NULL for the defaults. Returns NULL with err set
 * when curl cannot be initialised. Free with ap_http_executor_free. */
ap_http_executor *ap_http_executor_new(const ap_connector *c, const ap_http_options *opts,
                                       char *err, size_t errsz);

/* Closes the kept-alive connections and frees ex; ex may be NULL. */
void ap_http_executor_free(ap_http_executor *ex);

/* Sends reqs[0..n) concurrently (at most max_in_flight at once) and waits for
 * every one to answer, fail or time out. results[i] is filled for reqs[i]
 * whatever happens to it (the caller provides the array, uninitialised, and
 * releases each element with ap_http_result_release). Returns AP_OK when
 * every request ran, or AP_ERR_NOMEM / AP_ERR_IO with err set when the batch
 * itself could not run; results are filled in every case (the ones that could
 * not run are transient with error class "curl"). */
ap_status ap_http_execute(ap_http_executor *ex, const ap_http_request *reqs, int n,
                          ap_http_result *results, char *err, size_t errsz);

/* Frees what r owns and zeroes it; r may be NULL or already released. */
void ap_http_result_release(ap_http_result *r);

/* Parses a Retry-After value: delta seconds, or an HTTP-date relative to now.
 * Returns seconds >= 0, or -1 when it is neither. */
int ap_http_retry_after_parse(const char *value, long now);

#endif
