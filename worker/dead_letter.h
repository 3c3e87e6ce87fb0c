/* dead_letter.h — sends a message that cannot become an action row to
 * <prefix>.<subsystem>.dlq, with the reason in its headers:
 *   ap-error-class, ap-error-message, ap-original-topic, ap-original-partition,
 *   ap-original-offset, ap-attempt, ap-first-failure-at (RFC 3339). */
#ifndef AP_DEAD_LETTER_H
#define AP_DEAD_LETTER_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "publisher.h"

/* Queues a copy of msg (key and value as consumed) on its subsystem's DLQ.
 * Delivery is confirmed by ap_publisher_flush. */
ap_status ap_dead_letter_send(ap_publisher *p, const ap_config *cfg, const rd_kafka_message_t *msg,
                              const char *error_class, const char *reason, char *err,
                              size_t errsz);

/* The subsystem a topic belongs to ("actions.crm.retry.2" -> "crm") into buf;
 * returns buf, or NULL when the topic is not one of ours. */
char *ap_topic_subsystem(const char *prefix, const char *topic, char *buf, size_t size);

#endif
