#include "consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kafka_conf.h"
#include "log.h"
#include "retry.h"
#include "topics.h"

/* A retry-topic partition paused until its head is due. */
typedef struct deferral {
    char topic[AP_TOPIC_MAX];
    int32_t partition;
    int64_t offset; /* the message it was rewound to */
    long long due_ms;
} deferral;

#define MAX_DEFERRALS 1024

struct ap_consumer {
    rd_kafka_t *rk;
    ap_metrics *metrics; /* borrowed */
    int kafka_up;
    deferral deferrals[MAX_DEFERRALS];
    int deferral_count;
};

/* librdkafka statistics (JSON, see its STATISTICS.md), served on the polling
 * thread: the state of the brokers, and the lag of each assigned partition. */
static int on_stats(rd_kafka_t *rk, char *text, size_t len, void *opaque) {
    (void)rk;
    ap_consumer *c = opaque;
    json_t *stats = json_loadb(text, len, 0, NULL), *broker, *topic, *part;
    const char *name, *tname, *pname;
    int up = 0;
    json_object_foreach(json_object_get(stats, "brokers"), name, broker) {
        const char *state = json_string_value(json_object_get(broker, "state"));
        up |= state && !strcmp(state, "UP") &&
              json_integer_value(json_object_get(broker, "nodeid")) >= 0;
    }
    c->kafka_up = up;
    json_object_foreach(json_object_get(stats, "topics"), tname, topic) {
        json_object_foreach(json_object_get(topic, "partitions"), pname, part) {
            int partition = atoi(pname);
            json_int_t lag = json_integer_value(json_object_get(part, "consumer_lag"));
            if (partition < 0) /* the internal "-1" partition */
                continue;
            if (lag >= 0)
                ap_metrics_set_lag(c->metrics, tname, partition, lag);
            else
                ap_metrics_remove_lag(c->metrics, tname, partition);
        }
    }
    json_decref(stats);
    return 0; /* librdkafka frees text */
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ap_consumer *ap_consumer_new(const ap_config *cfg, ap_metrics *metrics, char *err, size_t errsz) {
    /* A fetch waits for 64 KB or batch_ms, as a batch does, instead of
     * returning with the first message: fewer, fuller fetches at a steady rate
     * (bench/README.md, third session). */
    char fetch_wait_ms[16];
    snprintf(fetch_wait_ms, sizeof fetch_wait_ms, "%d", cfg->batch_ms);
    const char *const defaults[] = {
        "fetch.min.bytes",
        "65536",
        "fetch.wait.max.ms",
        fetch_wait_ms,
        "enable.auto.commit",
        "true", /* commits what ap_consumer_store stored */
        "auto.commit.interval.ms",
        "1000",
        "auto.offset.reset",
        "earliest",
        "enable.partition.eof",
        "false",
        "statistics.interval.ms",
        "5000", /* lag metrics and broker state */
        /* A backlog stays in Kafka, not in our memory: bench/README.md measured
         * peak RSS over a 400k backlog at 177 MB with librdkafka's defaults.
         * 4 MB is ~8 batches: with 1 MB a worker waited on an empty queue for
         * a fifth of a bulk run (sixth session). */
        "queued.max.messages.kbytes",
        "4096",
        "fetch.max.bytes",
        "1048576",
        /* Eager, not cooperative-sticky: librdkafka 2.0.2 closes a cooperative
         * member without LeaveGroup, so the group waits a session timeout. */
        "partition.assignment.strategy",
        "roundrobin",
        NULL,
    };
    rd_kafka_topic_partition_list_t *topics = NULL;
    ap_consumer *c = calloc(1, sizeof *c);
    rd_kafka_conf_t *conf = c ? ap_kafka_conf_new(cfg, defaults, err, errsz) : NULL;
    if (!conf)
        goto fail;
    /* Correctness, not tuning: never store an offset before its batch is durable. */
    if (ap_kafka_conf_set(conf, "group.id", cfg->group_id, err, errsz) ||
        ap_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errsz) ||
        ap_kafka_conf_set(conf, "client.id", cfg->worker_id, err, errsz))
        goto fail;
    c->metrics = metrics;
    c->kafka_up = 1;
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_opaque(conf, c);
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errsz)))
        goto fail;
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);

    topics = rd_kafka_topic_partition_list_new(8);
    char *list = strdup(cfg->subsystems), *save = NULL, topic[AP_TOPIC_MAX];
    for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        ap_topic_main(topic, sizeof topic, cfg->topic_prefix, s);
        rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
        for (int n = 1; n <= AP_RETRY_TOPICS; n++) {
            ap_topic_retry(topic, sizeof topic, cfg->topic_prefix, s, n);
            rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
        }
    }
    free(list);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        ap_fail(AP_ERR_KAFKA, err, errsz, "cannot subscribe: %s", rd_kafka_err2str(e));
        goto fail;
    }
    return c;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (c && c->rk)
        rd_kafka_destroy(c->rk);
    free(c);
    return NULL;
}

int ap_consumer_poll_batch(ap_consumer *c, rd_kafka_message_t **msgs, int max, int wait_ms) {
    int n = 0;
    long long deadline = now_ms() + wait_ms;
    while (n < max) {
        long long left = deadline - now_ms();
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, n ? 0 : (int)(left > 0 ? left : 0));
        if (!m) {
            if (n || now_ms() >= deadline)
                break;
            continue;
        }
        if (m->err) {
            ap_log(m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? AP_LOG_DEBUG : AP_LOG_WARN,
                   "consumer error", "error", rd_kafka_message_errstr(m), NULL);
            rd_kafka_message_destroy(m);
            continue;
        }
        msgs[n++] = m;
    }
    return n;
}

void ap_consumer_store(ap_consumer *c, rd_kafka_message_t **msgs, int count) {
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(count);
    for (int i = 0; i < count; i++) {
        const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(offsets, topic, msgs[i]->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(offsets, topic, msgs[i]->partition);
        if (msgs[i]->offset + 1 > p->offset)
            p->offset = msgs[i]->offset + 1;
    }
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, offsets);
    if (e) /* partitions revoked meanwhile: their new owner re-reads and finds the rows */
        ap_log(AP_LOG_INFO, "offsets not stored", "error", rd_kafka_err2str(e), NULL);
    rd_kafka_topic_partition_list_destroy(offsets);
}

void ap_consumer_pause(ap_consumer *c, int paused) {
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(c->rk, &assigned))
        return;
    if (paused)
        rd_kafka_pause_partitions(c->rk, assigned);
    else
        rd_kafka_resume_partitions(c->rk, assigned);
    rd_kafka_topic_partition_list_destroy(assigned);
}

/* Pauses or resumes one partition, and (pausing) rewinds it to offset. */
static void partition_hold(ap_consumer *c, const char *topic, int32_t partition, int64_t offset,
                           int hold) {
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, topic, partition)->offset = offset;
    if (hold) {
        rd_kafka_pause_partitions(c->rk, one);
        rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, one, 5000);
        if (e) {
            ap_log(AP_LOG_WARN, "cannot rewind a retry partition", "topic", topic, "error",
                   rd_kafka_error_string(e), NULL);
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_resume_partitions(c->rk, one);
    }
    rd_kafka_topic_partition_list_destroy(one);
}

void ap_consumer_defer(ap_consumer *c, const rd_kafka_message_t *msg, long long due_ms) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (ap_consumer_deferred(c, msg))
        return;
    if (c->deferral_count == MAX_DEFERRALS) { /* cannot happen with sane partition counts */
        ap_log(AP_LOG_ERROR, "too many deferred retry partitions", "topic", topic, NULL);
        return;
    }
    deferral *d = &c->deferrals[c->deferral_count++];
    snprintf(d->topic, sizeof d->topic, "%s", topic);
    d->partition = msg->partition;
    d->offset = msg->offset;
    d->due_ms = due_ms;
    partition_hold(c, d->topic, d->partition, d->offset, 1);
}

int ap_consumer_deferred(const ap_consumer *c, const rd_kafka_message_t *msg) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    for (int i = 0; i < c->deferral_count; i++)
        if (c->deferrals[i].partition == msg->partition && msg->offset >= c->deferrals[i].offset &&
            !strcmp(c->deferrals[i].topic, topic))
            return 1;
    return 0;
}

void ap_consumer_resume_due(ap_consumer *c) {
    long long now = ap_retry_clock_ms();
    for (int i = 0; i < c->deferral_count;) {
        deferral *d = &c->deferrals[i];
        if (d->due_ms > now) {
            i++;
            continue;
        }
        partition_hold(c, d->topic, d->partition, d->offset, 0);
        *d = c->deferrals[--c->deferral_count];
    }
}

int ap_consumer_kafka_up(const ap_consumer *c) {
    return c->kafka_up;
}

int ap_consumer_assigned(ap_consumer *c) {
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(c->rk, &assigned))
        return 0;
    int n = assigned->cnt;
    rd_kafka_topic_partition_list_destroy(assigned);
    return n;
}

void ap_consumer_close(ap_consumer *c) {
    if (!c)
        return;
    rd_kafka_commit(c->rk, NULL, 0); /* synchronously: what was stored */
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c);
}
