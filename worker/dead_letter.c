#include "dead_letter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topics.h"

char *ap_topic_subsystem(const char *prefix, const char *topic, char *buf, size_t size) {
    size_t n = strlen(prefix);
    if (strncmp(topic, prefix, n) || topic[n] != '.')
        return NULL;
    topic += n + 1;
    size_t len = strcspn(topic, ".");
    if (!len || len >= size)
        return NULL;
    memcpy(buf, topic, len);
    buf[len] = '\0';
    return buf;
}

const char *ap_header_get(const rd_kafka_message_t *msg, const char *name, char *buf, size_t size) {
    rd_kafka_headers_t *h = NULL;
    const void *value;
    size_t len;
    buf[0] = '\0';
    if (!rd_kafka_message_headers(msg, &h) && !rd_kafka_header_get_last(h, name, &value, &len))
        snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), (const char *)value);
    return buf;
}

/* Where a message first failed, carried along its retries. */
typedef struct failure_origin {
    char topic[256];
    int partition;
    long long offset;
    char first_failure_at[32]; /* RFC 3339; "" before the first failure */
} failure_origin;

/* The origin msg carries in its headers, or msg itself when it has none. */
static void failure_origin_of(const rd_kafka_message_t *msg, failure_origin *o) {
    char buf[32];
    memset(o, 0, sizeof *o);
    if (*ap_header_get(msg, "ap-original-topic", o->topic, sizeof o->topic)) {
        o->partition = atoi(ap_header_get(msg, "ap-original-partition", buf, sizeof buf));
        o->offset = atoll(ap_header_get(msg, "ap-original-offset", buf, sizeof buf));
        ap_header_get(msg, "ap-first-failure-at", o->first_failure_at, sizeof o->first_failure_at);
        return;
    }
    snprintf(o->topic, sizeof o->topic, "%s", rd_kafka_topic_name(msg->rkt));
    o->partition = msg->partition;
    o->offset = msg->offset;
}

static rd_kafka_headers_t *failure_headers(const failure_origin *origin, int attempt,
                                           const char *error_class, const char *message,
                                           long long due_ms) {
    char partition[16], offset[24], attempts[16], now[32], due[24];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(partition, sizeof partition, "%d", origin->partition);
    snprintf(offset, sizeof offset, "%lld", origin->offset);
    snprintf(attempts, sizeof attempts, "%d", attempt);
    rd_kafka_headers_t *h = rd_kafka_headers_new(9);
    rd_kafka_header_add(h, "ap-error-class", -1, error_class, -1);
    rd_kafka_header_add(h, "ap-error-message", -1, message, -1);
    rd_kafka_header_add(h, "ap-original-topic", -1, origin->topic, -1);
    rd_kafka_header_add(h, "ap-original-partition", -1, partition, -1);
    rd_kafka_header_add(h, "ap-original-offset", -1, offset, -1);
    rd_kafka_header_add(h, "ap-attempt", -1, attempts, -1);
    rd_kafka_header_add(h, "ap-first-failure-at", -1,
                        *origin->first_failure_at ? origin->first_failure_at : now, -1);
    if (due_ms) {
        snprintf(due, sizeof due, "%lld", due_ms);
        rd_kafka_header_add(h, "ap-due-at", -1, due, -1);
    }
    return h;
}

ap_status ap_failure_send(ap_publisher *p, const ap_config *cfg, const rd_kafka_message_t *msg,
                          int attempt, const char *error_class, const char *message,
                          long long due_ms, char *err, size_t errsz) {
    char subsystem[64], topic[AP_TOPIC_MAX], key[512];
    failure_origin origin;
    const char *from = rd_kafka_topic_name(msg->rkt);
    if (!ap_topic_subsystem(cfg->topic_prefix, from, subsystem, sizeof subsystem))
        return ap_fail(AP_ERR_INVALID, err, errsz, "topic '%s' is not an actionpool topic", from);
    if (due_ms)
        ap_topic_retry(topic, sizeof topic, cfg->topic_prefix, subsystem, attempt);
    else
        ap_topic_dlq(topic, sizeof topic, cfg->topic_prefix, subsystem);
    failure_origin_of(msg, &origin);
    rd_kafka_headers_t *headers = failure_headers(&origin, attempt, error_class, message, due_ms);
    snprintf(key, sizeof key, "%.*s",
             (int)(msg->key_len < sizeof key ? msg->key_len : sizeof key - 1),
             msg->key ? (const char *)msg->key : "");
    ap_status st = ap_publisher_send(p, topic, msg->key ? key : NULL, msg->payload, msg->len,
                                     headers, NULL, err, errsz);
    if (st)
        rd_kafka_headers_destroy(headers);
    return st;
}
