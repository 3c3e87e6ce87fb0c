#include "dead_letter.h"

#include <stdio.h>
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

ap_status ap_dead_letter_send(ap_publisher *p, const ap_config *cfg, const rd_kafka_message_t *msg,
                              const char *error_class, const char *reason, char *err,
                              size_t errsz) {
    char subsystem[64], topic[AP_TOPIC_MAX], partition[16], offset[24], now[32], key[512];
    const char *from = rd_kafka_topic_name(msg->rkt);
    if (!ap_topic_subsystem(cfg->topic_prefix, from, subsystem, sizeof subsystem))
        return ap_fail(AP_ERR_INVALID, err, errsz, "topic '%s' is not an actionpool topic", from);
    ap_topic_dlq(topic, sizeof topic, cfg->topic_prefix, subsystem);

    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(partition, sizeof partition, "%d", (int)msg->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)msg->offset);

    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    rd_kafka_header_add(h, "ap-error-class", -1, error_class, -1);
    rd_kafka_header_add(h, "ap-error-message", -1, reason, -1);
    rd_kafka_header_add(h, "ap-original-topic", -1, from, -1);
    rd_kafka_header_add(h, "ap-original-partition", -1, partition, -1);
    rd_kafka_header_add(h, "ap-original-offset", -1, offset, -1);
    rd_kafka_header_add(h, "ap-attempt", -1, "1", -1);
    rd_kafka_header_add(h, "ap-first-failure-at", -1, now, -1);

    snprintf(key, sizeof key, "%.*s", (int)(msg->key_len < sizeof key ? msg->key_len : sizeof key - 1),
             msg->key ? (const char *)msg->key : "");
    ap_status st = ap_publisher_send(p, topic, msg->key ? key : NULL, msg->payload, msg->len, h,
                                     NULL, err, errsz);
    if (st)
        rd_kafka_headers_destroy(h);
    return st;
}
