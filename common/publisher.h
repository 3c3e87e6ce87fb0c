/* publisher.h — an idempotent Kafka producer (acks=all) that reports every
 * delivery. Used by actionpool-producer and actionpool-ctl. */
#ifndef AP_PUBLISHER_H
#define AP_PUBLISHER_H

#include <librdkafka/rdkafka.h>

#include "config.h"

typedef struct ap_publisher ap_publisher;

/* Called from ap_publisher_send/flush for each delivery report, with the
 * `opaque` given to ap_publisher_send; `error` is NULL when delivered. */
typedef void (*ap_delivery_fn)(void *ctx, void *opaque, const char *error);

/* Creates the producer. on_delivery may be NULL. Returns NULL with err set. */
ap_publisher *ap_publisher_new(const ap_config *cfg, ap_delivery_fn on_delivery, void *ctx,
                               char *err, size_t errsz);

/* Queues one message (payload and key are copied). `headers` is taken on
 * success and may be NULL. Waits while the local queue is full. */
ap_status ap_publisher_send(ap_publisher *p, const char *topic, const char *key,
                            const void *payload, size_t len, rd_kafka_headers_t *headers,
                            void *opaque, char *err, size_t errsz);

/* Waits up to timeout_ms for every outstanding delivery report. Returns the
 * number of messages still undelivered (0: all reported). */
int ap_publisher_flush(ap_publisher *p, int timeout_ms);

/* Flushes (up to 30 s) and destroys; accepts NULL. */
void ap_publisher_free(ap_publisher *p);

#endif
