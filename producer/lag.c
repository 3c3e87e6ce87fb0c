#include "lag.h"

#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor_map.h"
#include "kafka_conf.h"
#include "log.h"

#define KAFKA_TIMEOUT_MS 10000 /* each metadata, offset fetch and watermark query */

struct ap_lag_probe {
    rd_kafka_t *rk; /* consumer with the workers' group.id, never subscribed */
    char *group;    /* cfg->group_id */
    char *brokers;  /* cfg->brokers, for error messages */
    char (*topics)[AP_TOPIC_MAX];
    int topic_count;
};

ap_lag_probe *ap_lag_probe_new(const ap_config *cfg, char *err, size_t errsz) {
    char path[1024], why[512];
    ap_executor_map *map = NULL;
    rd_kafka_conf_t *conf = NULL;
    ap_lag_probe *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    if (!(p->group = strdup(cfg->group_id)) || !(p->brokers = strdup(cfg->brokers)))
        goto nomem;

    ap_config_schema_path(cfg, "executor_map.json", path, sizeof path);
    if (!(map = ap_executor_map_load(path, err, errsz)))
        goto fail;
    int nsub = ap_executor_map_subsystem_count(map);
    if (!(p->topics = calloc((size_t)nsub * (1 + AP_RETRY_TOPICS), sizeof *p->topics)))
        goto nomem;
    for (int i = 0; i < nsub; i++) {
        const char *s = ap_executor_map_subsystem_at(map, i)->name;
        ap_topic_main(p->topics[p->topic_count++], AP_TOPIC_MAX, cfg->topic_prefix, s);
        for (int n = 1; n <= AP_RETRY_TOPICS; n++)
            ap_topic_retry(p->topics[p->topic_count++], AP_TOPIC_MAX, cfg->topic_prefix, s, n);
    }

    if (!(conf = ap_kafka_conf_new(cfg, NULL, err, errsz)))
        goto fail;
    ap_kafka_conf_quiet(conf);
    /* After the kafka.* passthrough, as the worker does: these are not tuning.
     * Read-only by construction: no subscription, no auto-commit, no stores. */
    if (ap_kafka_conf_set(conf, "group.id", cfg->group_id, err, errsz) ||
        ap_kafka_conf_set(conf, "enable.auto.commit", "false", err, errsz) ||
        ap_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errsz))
        goto fail;
    if (!(p->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why))) {
        ap_fail(AP_ERR_INVALID, err, errsz, "cannot create a kafka client: %s", why);
        goto fail;
    }
    conf = NULL; /* owned by p->rk now */
    ap_executor_map_free(map);
    return p;
nomem:
    ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    ap_executor_map_free(map);
    ap_lag_probe_free(p);
    return NULL;
}

void ap_lag_probe_free(ap_lag_probe *p) {
    if (!p)
        return;
    if (p->rk) {
        rd_kafka_consumer_close(p->rk);
        rd_kafka_destroy(p->rk);
    }
    free(p->topics);
    free(p->brokers);
    free(p->group);
    free(p);
}

void ap_lag_release(ap_lag *lag) {
    if (!lag)
        return;
    free(lag->parts);
    memset(lag, 0, sizeof *lag);
}

static int partition_cmp(const void *a, const void *b) {
    const ap_lag_partition *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Transport failures and timeouts mean nobody answered: a connection error. */
static ap_status kafka_status(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                   e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
               ? AP_ERR_IO
               : AP_ERR_KAFKA;
}

/* Fills lag->parts with one row per partition of the probe's topics, in topic
 * order and partition order, from one metadata request. */
static ap_status partitions_list(ap_lag_probe *p, ap_lag *lag, char *err, size_t errsz) {
    ap_status st = AP_OK;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 1, NULL, &md, KAFKA_TIMEOUT_MS);
    if (e)
        return ap_fail(kafka_status(e), err, errsz, "cannot reach kafka at '%s': %s", p->brokers,
                       rd_kafka_err2str(e));
    for (int t = 0; t < p->topic_count; t++) {
        const struct rd_kafka_metadata_topic *mt = NULL;
        for (int i = 0; i < md->topic_cnt && !mt; i++)
            if (!strcmp(md->topics[i].topic, p->topics[t]))
                mt = &md->topics[i];
        if (!mt || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            st = ap_fail(AP_ERR_KAFKA, err, errsz,
                         "topic '%s' does not exist (actionpool-ctl migrate creates it)",
                         p->topics[t]);
            goto out;
        }
        if (mt->err) {
            st = ap_fail(kafka_status(mt->err), err, errsz, "topic '%s': %s", p->topics[t],
                         rd_kafka_err2str(mt->err));
            goto out;
        }
        ap_lag_partition *grown =
            realloc(lag->parts, (size_t)(lag->count + mt->partition_cnt) * sizeof *grown);
        if (!grown) {
            st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
            goto out;
        }
        lag->parts = grown;
        for (int i = 0; i < mt->partition_cnt; i++) {
            ap_lag_partition *row = &lag->parts[lag->count + i];
            memset(row, 0, sizeof *row);
            snprintf(row->topic, sizeof row->topic, "%s", mt->topic);
            row->partition = mt->partitions[i].id;
        }
        qsort(lag->parts + lag->count, (size_t)mt->partition_cnt, sizeof *lag->parts,
              partition_cmp);
        lag->count += mt->partition_cnt;
    }
out:
    rd_kafka_metadata_destroy(md);
    return st;
}

/* Reads the group's committed offset of every row in one OffsetFetch. */
static ap_status committed_fetch(ap_lag_probe *p, ap_lag *lag, char *err, size_t errsz) {
    ap_status st = AP_OK;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(lag->count);
    for (int i = 0; i < lag->count; i++)
        rd_kafka_topic_partition_list_add(list, lag->parts[i].topic, lag->parts[i].partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(p->rk, list, KAFKA_TIMEOUT_MS);
    if (e) {
        st = ap_fail(kafka_status(e), err, errsz,
                     "cannot read the committed offsets of group '%s': %s", p->group,
                     rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < lag->count; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->err) {
            st = ap_fail(kafka_status(tp->err), err, errsz,
                         "cannot read the committed offset of '%s' partition %d: %s", tp->topic,
                         (int)tp->partition, rd_kafka_err2str(tp->err));
            goto out;
        }
        lag->parts[i].committed = tp->offset >= 0 ? tp->offset : -1;
    }
out:
    rd_kafka_topic_partition_list_destroy(list);
    return st;
}

ap_status ap_lag_measure(ap_lag_probe *p, ap_lag *lag, char *err, size_t errsz) {
    ap_status st;
    ap_lag_release(lag);
    if ((st = partitions_list(p, lag, err, errsz)) || (st = committed_fetch(p, lag, err, errsz)))
        goto out;
    for (int i = 0; i < lag->count; i++) {
        ap_lag_partition *row = &lag->parts[i];
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            p->rk, row->topic, row->partition, &row->low, &row->high, KAFKA_TIMEOUT_MS);
        if (e) {
            st = ap_fail(kafka_status(e), err, errsz,
                         "cannot read the end offset of '%s' partition %d: %s", row->topic,
                         (int)row->partition, rd_kafka_err2str(e));
            goto out;
        }
        /* Below low, the group's offset points at deleted messages: it resumes at low. */
        int64_t from = row->committed > row->low ? row->committed : row->low;
        row->lag = row->high > from ? row->high - from : 0;
        lag->total += row->lag;
    }
out:
    if (st)
        ap_lag_release(lag);
    return st;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until the monotonic clock reads `until`, resuming after signals. */
static void sleep_until(double until) {
    double left = until - now_s();
    if (left <= 0)
        return;
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

ap_status ap_lag_wait(ap_lag_probe *p, int seconds, ap_lag *lag, FILE *progress, int *drained,
                      char *err, size_t errsz) {
    ap_status st = AP_OK;
    double start = now_s(), deadline = start + seconds, last_note = -1;
    int zeros = 0;
    *drained = 0;
    for (;;) {
        double poll_at = now_s();
        /* A broker can be briefly unable to answer (the group's coordinator
         * moving, a leader election): while time is left, ask again. */
        if ((st = ap_lag_measure(p, lag, err, errsz)) && poll_at + 1.0 >= deadline)
            break;
        if (st) {
            if (progress)
                fprintf(progress, "lag: %s; asking again\n", err);
            sleep_until(poll_at + 1.0);
            continue;
        }
        if (lag->total == 0 && ++zeros >= 2) {
            *drained = 1;
            break;
        }
        if (lag->total) {
            zeros = 0;
            if (progress && poll_at - last_note >= 1.0) {
                fprintf(progress, "lag: %lld messages left\n", (long long)lag->total);
                fflush(progress);
                last_note = poll_at;
            }
        }
        if (poll_at >= deadline)
            break;
        sleep_until(poll_at + 1.0 < deadline ? poll_at + 1.0 : deadline);
    }
    return st;
}

/* Digits of v, for column widths. */
static int digits(int64_t v) {
    char buf[32];
    return snprintf(buf, sizeof buf, "%lld", (long long)v);
}

static void print_json(FILE *out, const ap_lag_probe *p, const ap_lag *lag) {
    json_t *parts = json_array();
    for (int i = 0; i < lag->count; i++) {
        const ap_lag_partition *r = &lag->parts[i];
        json_array_append_new(
            parts,
            json_pack("{s:s, s:i, s:o, s:I, s:I, s:I}", "topic", r->topic, "partition",
                      (int)r->partition, "committed",
                      r->committed >= 0 ? json_integer(r->committed) : json_null(), "low",
                      (json_int_t)r->low, "end", (json_int_t)r->high, "lag", (json_int_t)r->lag));
    }
    json_t *doc = json_pack("{s:s, s:o, s:I}", "group", p->group, "partitions", parts, "total",
                            (json_int_t)lag->total);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        fprintf(out, "%s\n", text);
    free(text);
    json_decref(doc);
}

void ap_lag_print(FILE *out, const ap_lag_probe *p, const ap_lag *lag, int json) {
    if (json) {
        print_json(out, p, lag);
        return;
    }
    int wt = (int)strlen("topic"), wp = (int)strlen("partition"), wc = (int)strlen("committed"),
        we = (int)strlen("end"), wl = (int)strlen("lag");
    for (int i = 0; i < lag->count; i++) {
        const ap_lag_partition *r = &lag->parts[i];
        int n = (int)strlen(r->topic);
        wt = n > wt ? n : wt;
        wp = digits(r->partition) > wp ? digits(r->partition) : wp;
        wc = digits(r->committed) > wc ? digits(r->committed) : wc;
        we = digits(r->high) > we ? digits(r->high) : we;
        wl = digits(r->lag) > wl ? digits(r->lag) : wl;
    }
    fprintf(out, "%-*s  %*s  %*s  %*s  %*s\n", wt, "topic", wp, "partition", wc, "committed", we,
            "end", wl, "lag");
    int empty = 0;
    for (int i = 0; i < lag->count; i++) {
        const ap_lag_partition *r = &lag->parts[i];
        char committed[32] = "-";
        if (r->high == 0) { /* never written to: nothing to show */
            empty++;
            continue;
        }
        if (r->committed >= 0)
            snprintf(committed, sizeof committed, "%lld", (long long)r->committed);
        fprintf(out, "%-*s  %*d  %*s  %*lld  %*lld\n", wt, r->topic, wp, (int)r->partition, wc,
                committed, we, (long long)r->high, wl, (long long)r->lag);
    }
    if (empty)
        fprintf(out, "(%d partitions never written to are not shown)\n", empty);
    fprintf(out, "total lag: %lld messages in %d partitions (group '%s')\n", (long long)lag->total,
            lag->count, p->group);
}
