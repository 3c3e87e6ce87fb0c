/* consumer.h — the worker's consumer-group membership: fetch a batch, store
 * offsets once the batch is durable, pause while the stores are down. */
#ifndef AP_CONSUMER_H
#define AP_CONSUMER_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "metrics.h"

typedef struct ap_consumer ap_consumer;

/* Joins cfg->group_id and subscribes to the main and retry topics of every
 * subsystem in cfg->subsystems. Offsets are stored only by ap_consumer_store (auto-commit
 * then commits what was stored). Every few seconds librdkafka's statistics
 * update the consumer lag of each assigned partition in `metrics` (borrowed,
 * may be NULL). Returns NULL with err set. */
ap_consumer *ap_consumer_new(const ap_config *cfg, ap_metrics *metrics, char *err, size_t errsz);

/* Whether a broker answered in the last statistics (1 until the first). */
int ap_consumer_kafka_up(const ap_consumer *c);

/* How many partitions the group assigned to this worker. */
int ap_consumer_assigned(ap_consumer *c);

/* Fills msgs with up to max messages, waiting at most wait_ms for the batch
 * to fill; returns how many. Errors that are not messages (partition EOF,
 * transient broker errors) are logged, not returned. The caller owns each
 * message and destroys it with rd_kafka_message_destroy. */
int ap_consumer_poll_batch(ap_consumer *c, rd_kafka_message_t **msgs, int max, int wait_ms);

/* Stores, per partition, the offset after the last of msgs: call it only
 * once everything in msgs is durable. */
void ap_consumer_store(ap_consumer *c, rd_kafka_message_t **msgs, int count);

/* Pauses (paused = 1) or resumes every assigned partition. While paused,
 * ap_consumer_poll_batch returns nothing but keeps the membership alive. */
void ap_consumer_pause(ap_consumer *c, int paused);

/* Defers msg, from a retry topic, until due_ms (wall clock, ms): pauses its
 * partition and rewinds it to msg, so msg is fetched again once
 * ap_consumer_resume_due resumes it. The group membership and the other
 * partitions are not affected. */
void ap_consumer_defer(ap_consumer *c, const rd_kafka_message_t *msg, long long due_ms);

/* Whether msg's partition is deferred at or before msg (it is fetched again). */
int ap_consumer_deferred(const ap_consumer *c, const rd_kafka_message_t *msg);

/* Resumes the deferred partitions that are due. */
void ap_consumer_resume_due(ap_consumer *c);

/* Commits stored offsets, leaves the group and frees; accepts NULL. */
void ap_consumer_close(ap_consumer *c);

#endif
