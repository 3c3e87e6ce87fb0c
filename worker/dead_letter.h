/* dead_letter.h — the headers a failed message carries, and dead letters:
 * a message that cannot become an action row goes to <prefix>.<subsystem>.dlq
 * at once. Headers:
 *   ap-error-class, ap-error-message, ap-original-topic, ap-original-partition,
 *   ap-original-offset, ap-attempt, ap-first-failure-at (RFC 3339), and on a
 *   retry topic ap-due-at (ms since the epoch). */
#ifndef AP_DEAD_LETTER_H
#define AP_DEAD_LETTER_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "publisher.h"

/* Where a message first failed, carried along its retries. */
typedef struct ap_failure_origin {
    char topic[256];
    int partition;
    long long offset;
    char first_failure_at[32]; /* RFC 3339; "" before the first failure */
} ap_failure_origin;

/* The origin msg carries in its headers, or msg itself when it has none. */
void ap_failure_origin_of(const rd_kafka_message_t *msg, ap_failure_origin *origin);

/* New headers for a failed message (the caller hands them to the publisher). */
rd_kafka_headers_t *ap_failure_headers(const ap_failure_origin *origin, int attempt,
                                       const char *error_class, const char *message,
                                       long long due_ms);

/* Queues a copy of msg (key and value as consumed) on topic with headers,
 * which it takes (and destroys on failure). Delivery is confirmed by
 * ap_publisher_flush. */
ap_status ap_failure_send(ap_publisher *p, const char *topic, const rd_kafka_message_t *msg,
                          rd_kafka_headers_t *headers, char *err, size_t errsz);

/* Queues a copy of msg (key and value as consumed) on its subsystem's DLQ.
 * Delivery is confirmed by ap_publisher_flush. */
ap_status ap_dead_letter_send(ap_publisher *p, const ap_config *cfg, const rd_kafka_message_t *msg,
                              int attempt, const char *error_class, const char *reason, char *err,
                              size_t errsz);

/* The subsystem a topic belongs to ("actions.crm.retry.2" -> "crm") into buf;
 * returns buf, or NULL when the topic is not one of ours. */
char *ap_topic_subsystem(const char *prefix, const char *topic, char *buf, size_t size);

/* The value of header name on msg as a string into buf ("" when absent). */
const char *ap_header_get(const rd_kafka_message_t *msg, const char *name, char *buf, size_t size);

#endif
