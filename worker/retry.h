/* retry.h — transient failures go through the delayed retry topics: attempt n
 * (1..AP_RETRY_TOPICS) to <prefix>.<s>.retry.<n>, due retry_delays_s[n-1]
 * seconds after it failed (or at its Retry-After, if later); after the last,
 * to the DLQ. A retry message carries the dead_letter.h headers, with ap-due-at;
 * the worker defers a retry partition whose head is not due (consumer.h). */
#ifndef AP_RETRY_H
#define AP_RETRY_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "publisher.h"
#include "topics.h"

/* Parses "d1,d2,d3" (seconds, >= 0) into delays; -1 with err naming the setting. */
int ap_retry_delays_parse(const char *text, int delays[AP_RETRY_TOPICS], char *err, size_t errsz);

/* The attempt a consumed message is: 0 from a main topic, n from retry topic n. */
int ap_retry_attempt(const rd_kafka_message_t *msg);

/* The clock ap-due-at is on: the wall clock, ms since the epoch. */
long long ap_retry_clock_ms(void);

/* When a consumed retry message is due (ap_retry_clock_ms); 0 for others. */
long long ap_retry_due(const rd_kafka_message_t *msg);

/* Sends msg on after its attempt failed: to the next retry topic, or to the
 * DLQ after the last (*dead set). Delivery is confirmed by ap_publisher_flush. */
ap_status ap_retry_send(ap_publisher *p, const ap_config *cfg, const int delays[AP_RETRY_TOPICS],
                        const rd_kafka_message_t *msg, const char *error_class, const char *error,
                        int retry_after_s, int *dead, char *err, size_t errsz);

#endif
