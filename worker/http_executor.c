/* http_executor.c — one HTTP request per action, a batch at a time, with curl
 * multi: every request of a batch is in flight at once (up to max_in_flight),
 * and the multi handle's connection cache keeps connections alive between
 * batches. libcurl's errors are translated here, once, into outcomes and
 * error classes (http_executor.h). */
#include "http_executor.h"

#include <ctype.h>
#include <curl/curl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ap_http_executor {
    const ap_connector *conn; /* borrowed */
    CURLM *multi;             /* owns the kept-alive connections */
    ap_http_options opt;
};

/* One request of a batch, from rendering to its result. */
typedef struct transfer {
    CURL *easy;                 /* NULL when the request never ran */
    ap_connector_request rq;    /* what is sent; the body must outlive the transfer */
    struct curl_slist *headers; /* credential lines are wiped before freeing */
    char *body;                 /* response body, up to max_response_bytes */
    size_t len, cap;
    int truncated;
    int finished; /* its result is final */
    size_t max;
    int timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
    ap_http_result *res;
} transfer;

static int curl_users; /* executors alive: curl's global state lives while > 0 */

const char *ap_http_outcome_name(ap_http_outcome outcome) {
    switch (outcome) {
    case AP_HTTP_EXECUTED: return "executed";
    case AP_HTTP_REJECTED: return "rejected";
    case AP_HTTP_PERMISSION_DENIED: return "permission_denied";
    case AP_HTTP_TRANSIENT: return "transient";
    }
    return "unknown";
}

ap_http_executor *ap_http_executor_new(const ap_connector *c, const ap_http_options *opts,
                                       char *err, size_t errsz) {
    static const ap_http_options defaults = AP_HTTP_OPTIONS_DEFAULT;
    ap_http_executor *ex = calloc(1, sizeof *ex);
    if (!ex) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    ex->conn = c;
    ex->opt = opts ? *opts : defaults;
    if (ex->opt.timeout_ms <= 0)
        ex->opt.timeout_ms = defaults.timeout_ms;
    if (ex->opt.max_in_flight <= 0)
        ex->opt.max_in_flight = defaults.max_in_flight;
    if (!ex->opt.max_response_bytes)
        ex->opt.max_response_bytes = defaults.max_response_bytes;

    if (curl_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ap_fail(AP_ERR_IO, err, errsz, "cannot initialise libcurl");
        free(ex);
        return NULL;
    }
    curl_users++;
    if (!(ex->multi = curl_multi_init())) {
        ap_fail(AP_ERR_IO, err, errsz, "cannot create a curl multi handle");
        ap_http_executor_free(ex);
        return NULL;
    }
    /* the connection cache: enough to keep every in-flight connection alive */
    curl_multi_setopt(ex->multi, CURLMOPT_MAXCONNECTS, (long)ex->opt.max_in_flight);
    return ex;
}

void ap_http_executor_free(ap_http_executor *ex) {
    if (!ex)
        return;
    if (ex->multi)
        curl_multi_cleanup(ex->multi);
    if (--curl_users == 0)
        curl_global_cleanup();
    free(ex);
}

void ap_http_result_release(ap_http_result *r) {
    if (!r)
        return;
    json_decref(r->request);
    json_decref(r->response);
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
}

/* ---- Retry-After ------------------------------------------------------------ */

int ap_http_retry_after_parse(const char *value, long now) {
    char buf[128];
    size_t n;
    if (!value)
        return -1;
    while (isspace((unsigned char)*value))
        value++;
    n = strlen(value);
    while (n && isspace((unsigned char)value[n - 1]))
        n--;
    if (!n || n >= sizeof buf)
        return -1;
    memcpy(buf, value, n);
    buf[n] = '\0';

    size_t digits = strspn(buf, "0123456789");
    if (digits == n) {
        if (n > 9) /* more than 31 years: take it as "a very long time" */
            return INT_MAX;
        return (int)strtol(buf, NULL, 10);
    }
    time_t when = curl_getdate(buf, NULL); /* RFC 1123 and its older forms */
    if (when == (time_t)-1)
        return -1;
    long delta = (long)when - now;
    return delta <= 0 ? 0 : delta > INT_MAX ? INT_MAX : (int)delta;
}

/* ---- one transfer ----------------------------------------------------------- */

/* Keeps up to t->max bytes of the body; the rest is read and dropped so that
 * the connection stays usable. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
    transfer *t = userdata;
    size_t n = size * nmemb, keep = n;
    if (t->len + keep > t->max) {
        keep = t->max - t->len;
        t->truncated = 1;
    }
    if (keep && t->len + keep + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + keep + 1)
            cap *= 2;
        char *p = realloc(t->body, cap);
        if (!p)
            return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        t->body = p;
        t->cap = cap;
    }
    if (keep) {
        memcpy(t->body + t->len, data, keep);
        t->len += keep;
        t->body[t->len] = '\0';
    }
    return n;
}

static void fail_result(ap_http_result *r, ap_http_outcome outcome, const char *cls,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail_result(ap_http_result *r, ap_http_outcome outcome, const char *cls,
                        const char *fmt, ...) {
    va_list ap;
    r->outcome = outcome;
    snprintf(r->error_class, sizeof r->error_class, "%s", cls);
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
}

static int has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return 1;
    return 0;
}

/* Adds a header line to the list; -1 when out of memory. */
static int add_header(struct curl_slist **list, const char *line) {
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

/* Renders the request for reqs[i] and makes its easy handle. On failure the
 * result says why and the transfer has no easy handle. */
static void transfer_prepare(ap_http_executor *ex, transfer *t, const ap_http_request *req) {
    char why[512], line[AP_KEY_MAX + 32];
    ap_http_result *r = t->res;
    const ap_action *a = req->action;
    const ap_connector_route *route = ap_connector_route_for(ex->conn, a);

    if (!route) {
        fail_result(r, AP_HTTP_REJECTED, "no_route", "no connector route for %s.%s (%s)",
                    a->subsystem ? a->subsystem : "?", a->field ? a->field : "?",
                    a->action_type ? a->action_type : "?");
        return;
    }
    if (ap_connector_render(ex->conn, route, a, req->value, &t->rq, why, sizeof why)) {
        fail_result(r, AP_HTTP_REJECTED, "template", "cannot build the request: %s", why);
        return;
    }
    if (has_control(a->idempotency_key)) {
        fail_result(r, AP_HTTP_REJECTED, "template",
                    "cannot build the request: the idempotency key has control characters");
        return;
    }
    r->request = ap_connector_request_describe(&t->rq);
    t->timeout_ms = t->rq.timeout_ms ? t->rq.timeout_ms : ex->opt.timeout_ms;
    t->max = ex->opt.max_response_bytes;
    if (r->request)
        json_object_set_new(r->request, "timeout_ms", json_integer(t->timeout_ms));

    for (int i = 0; i < t->rq.header_count; i++)
        if (add_header(&t->headers, t->rq.headers[i]))
            goto nomem;
    snprintf(line, sizeof line, "Idempotency-Key: %s", a->idempotency_key);
    if (add_header(&t->headers, line) ||
        add_header(&t->headers, "Content-Type: application/json") ||
        add_header(&t->headers, "Accept: application/json") ||
        add_header(&t->headers, "Expect:")) /* no 100-continue round trip */
        goto nomem;

    CURL *e = t->easy = curl_easy_init();
    if (!e)
        goto nomem;
    curl_easy_setopt(e, CURLOPT_URL, t->rq.url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, AP_HTTP_USER_AGENT);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);

    const char *m = t->rq.method;
    const char *body = t->rq.body_text ? t->rq.body_text : "";
    if (!strcmp(m, "GET")) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(m, "DELETE") && !t->rq.body_text) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else {
        /* POST semantics (a body with Content-Length), under the route's verb */
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        if (strcmp(m, "POST"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    return;
nomem:
    fail_result(r, AP_HTTP_TRANSIENT, "curl", "out of memory preparing %s %s", t->rq.method,
                t->rq.url);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    t->easy = NULL;
}

/* The body as a JSON value: parsed when it is JSON, else a string (bytes
 * that are not UTF-8 become '?'). NULL when empty. */
static json_t *body_value(transfer *t) {
    if (!t->len)
        return NULL;
    if (!t->truncated) {
        json_t *v = json_loadb(t->body, t->len, JSON_DECODE_ANY, NULL);
        if (v)
            return v;
    }
    json_t *s = json_stringn(t->body, t->len);
    if (!s) {
        for (size_t i = 0; i < t->len; i++)
            if ((unsigned char)t->body[i] >= 0x80 || !t->body[i])
                t->body[i] = '?';
        s = json_stringn(t->body, t->len);
    }
    return s;
}

/* Classifies a finished transfer into its result. */
static void transfer_finish(ap_http_executor *ex, transfer *t, CURLcode rc) {
    ap_http_result *r = t->res;
    long status = 0;
    curl_off_t us = 0;
    char snippet[160] = "";

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &us);
    r->duration_ms = (long)(us / 1000);
    r->http_status = (int)status;

    if (t->len)
        ap_connector_redact(ex->conn, t->body, t->len, t->truncated);
    r->response = body_value(t);
    r->response_truncated = t->truncated;
    if (t->len) { /* one line of the body for the error message */
        size_t n = t->len < sizeof snippet - 4 ? t->len : sizeof snippet - 4;
        for (size_t i = 0; i < n; i++)
            snippet[i] = (unsigned char)t->body[i] < ' ' ? ' ' : t->body[i];
        snprintf(snippet + n, sizeof snippet - n, "%s", t->len > n ? "..." : "");
    }

    const char *m = t->rq.method, *u = t->rq.url;
    const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    if (rc != CURLE_OK) {
        r->http_status = 0;
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
            fail_result(r, AP_HTTP_TRANSIENT, "timeout", "%s %s: no answer within %d ms", m, u,
                        t->timeout_ms);
            break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            fail_result(r, AP_HTTP_TRANSIENT, "connect", "%s %s: %s", m, u, detail);
            break;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            fail_result(r, AP_HTTP_TRANSIENT, "connection", "%s %s: %s", m, u, detail);
            break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
            fail_result(r, AP_HTTP_TRANSIENT, "tls", "%s %s: %s", m, u, detail);
            break;
        default: fail_result(r, AP_HTTP_TRANSIENT, "curl", "%s %s: %s", m, u, detail); break;
        }
        return;
    }

    char cls[24];
    snprintf(cls, sizeof cls, "http_%ld", status);
    if (status >= 200 && status < 300) {
        r->outcome = AP_HTTP_EXECUTED;
    } else if (status == 401 || status == 403) {
        fail_result(r, AP_HTTP_PERMISSION_DENIED, cls, "%s %s: http %ld (permission denied) %s", m,
                    u, status, snippet);
    } else if (status == 408 || status == 429 || (status >= 500 && status < 600)) {
        fail_result(r, AP_HTTP_TRANSIENT, cls, "%s %s: http %ld %s", m, u, status, snippet);
        struct curl_header *h;
        if ((status == 429 || status == 503) &&
            curl_easy_header(t->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
            r->retry_after_s = ap_http_retry_after_parse(h->value, (long)time(NULL));
    } else {
        fail_result(r, AP_HTTP_REJECTED, cls, "%s %s: http %ld %s", m, u, status, snippet);
    }
}

/* Frees what a transfer owns, credential header lines wiped first. */
static void transfer_release(transfer *t) {
    for (struct curl_slist *l = t->headers; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(t->headers);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    ap_connector_request_release(&t->rq);
    free(t->body);
}

ap_status ap_http_execute(ap_http_executor *ex, const ap_http_request *reqs, int n,
                          ap_http_result *results, char *err, size_t errsz) {
    ap_status st = AP_OK;
    int next = 0, in_flight = 0;
    transfer *t = calloc(n > 0 ? (size_t)n : 1, sizeof *t);

    for (int i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].retry_after_s = -1;
    }
    if (!t) {
        for (int i = 0; i < n; i++)
            fail_result(&results[i], AP_HTTP_TRANSIENT, "curl", "out of memory");
        return ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory for a batch of %d requests", n);
    }
    for (int i = 0; i < n; i++) {
        t[i].res = &results[i];
        transfer_prepare(ex, &t[i], &reqs[i]);
    }

    while (next < n || in_flight) {
        for (; next < n && in_flight < ex->opt.max_in_flight; next++) {
            if (!t[next].easy)
                continue;
            if (curl_multi_add_handle(ex->multi, t[next].easy) != CURLM_OK) {
                fail_result(&results[next], AP_HTTP_TRANSIENT, "curl",
                            "%s %s: cannot start the request", t[next].rq.method, t[next].rq.url);
                curl_easy_cleanup(t[next].easy);
                t[next].easy = NULL;
                continue;
            }
            in_flight++;
        }
        int running;
        CURLMcode mc = curl_multi_perform(ex->multi, &running);
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(ex->multi, &queued))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            transfer *done = NULL;
            CURL *easy = msg->easy_handle;
            CURLcode rc = msg->data.result; /* read before the handle leaves */
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&done);
            transfer_finish(ex, done, rc);
            done->finished = 1;
            curl_multi_remove_handle(ex->multi, easy);
            in_flight--;
        }
        if (mc == CURLM_OK && in_flight)
            mc = curl_multi_poll(ex->multi, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) {
            /* the batch cannot go on: what is still open ends as transient */
            st = ap_fail(AP_ERR_IO, err, errsz, "curl multi: %s", curl_multi_strerror(mc));
            for (int i = 0; i < n; i++)
                if (t[i].easy && !t[i].finished) {
                    if (i < next)
                        curl_multi_remove_handle(ex->multi, t[i].easy);
                    fail_result(&results[i], AP_HTTP_TRANSIENT, "curl", "%s %s: %s", t[i].rq.method,
                                t[i].rq.url, curl_multi_strerror(mc));
                }
            break;
        }
    }

    for (int i = 0; i < n; i++)
        transfer_release(&t[i]);
    free(t);
    return st;
}
