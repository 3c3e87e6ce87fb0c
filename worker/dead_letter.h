/* dead_letter.h — where a failed message goes: to a retry topic (retry.h),
 * or to <prefix>.<subsystem>.dlq, at once when it cannot become an action row.
 * The headers it carries there:
 *   ap-error-class, ap-error-message, ap-original-topic, ap-original-partition,
 *   ap-original-offset, ap-attempt, ap-first-failure-at (RFC 3339), and on a
 *   retry topic ap-due-at (ms since the epoch). */
#ifndef AP_DEAD_LETTER_H
#define AP_DEAD_LETTER_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "publisher.h"

/* Queues a copy of msg (key and value as consumed) with the headers of its
 * failure: on retry topic `attempt` of its subsystem, due at due_ms (ms since
 * the epoch), or, due_ms 0, on its subsystem's DLQ. The origin and first
 * failure time carry over from msg's headers when it is a retry. Delivery is
 * confirmed by ap_publisher_flush. */
ap_status ap_failure_send(ap_publisher *p, const ap_config *cfg, const rd_kafka_message_t *msg,
                          int attempt, const char *error_class, const char *message,
                          long long due_ms, char *err, size_t errsz);

/* The subsystem a topic belongs to ("actions.crm.retry.2" -> "crm") into buf;
 * returns buf, or NULL when the topic is not one of ours. */
char *ap_topic_subsystem(const char *prefix, const char *topic, char *buf, size_t size);

/* The value of header name on msg as a string into buf ("" when absent). */
const char *ap_header_get(const rd_kafka_message_t *msg, const char *name, char *buf, size_t size);

#endif
