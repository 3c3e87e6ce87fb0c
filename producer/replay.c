#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_time.h"
#include "executor_map.h"
#include "kafka_conf.h"
#include "log.h"
#include "pg.h"
#include "publisher.h"
#include "table.h"
#include "topics.h"

#define KAFKA_TIMEOUT_MS 10000 /* metadata and each watermark query */
#define READ_IDLE_MS     30000 /* longest wait for the next message of a DLQ */
#define FLUSH_MS         60000 /* > message.timeout.ms (30 s): every send gets its report */

/* What became of one matching dead letter. */
typedef enum dl_state {
    DL_PENDING, /* not replayed yet: would be (dry run), or not reached */
    DL_ALREADY, /* a row in replays says it was replayed before */
    DL_SENT,    /* this run inserted its row and queued it; delivered unless failed */
    DL_FAILED,  /* this run could not deliver it; its row is deleted again */
} dl_state;

/* One matching DLQ message. Strings are owned (NULL: absent). */
typedef struct dead_letter {
    int topic;         /* index into replay_run.topics / subsystems */
    int32_t partition; /* in the DLQ topic */
    int64_t offset;
    char *key; /* NULL: the message has no key */
    void *value;
    size_t len;
    char *action_id, *tenant_id; /* from the value, when it is an action object */
    char *error_class, *error_message, *original_topic, *attempts, *first_failure;
    dl_state state;
    char *replayed_at, *replayed_by; /* DL_ALREADY, DL_SENT */
    int reported;                    /* delivery report received */
    char error[256];                 /* DL_FAILED: why */
} dead_letter;

/* A partition being read, to its high watermark at the start. */
typedef struct dlq_partition {
    int topic;
    int32_t partition;
    int64_t end;
    int done;
} dlq_partition;

typedef struct replay_run {
    const ap_config *cfg;
    const ap_replay_request *req;
    int64_t since_ms, until_ms;   /* INT64_MIN / INT64_MAX: no bound */
    char **subsystems;            /* owned; one DLQ topic each */
    char (*topics)[AP_TOPIC_MAX]; /* owned; topics[i] is the DLQ of subsystems[i] */
    int ntopics;
    dead_letter *dl; /* owned; the matches, sorted by topic, partition, offset */
    int n, cap;
} replay_run;

/* ---------------------------------------------------------------- times */

/* --since/--until into milliseconds since the epoch. */
static ap_status time_parse(const char *name, const char *text, int64_t *ms, char *err,
                            size_t errsz) {
    ap_cli_time t;
    ap_status st = ap_cli_time_parse(name, text, &t, err, errsz);
    if (!st)
        *ms = t.is_duration ? ((int64_t)time(NULL) - t.seconds) * 1000 : t.ms;
    return st;
}

static void ms_format(int64_t ms, char *buf, size_t size) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---------------------------------------------------------------- run */

static void dead_letter_release(dead_letter *d) {
    free(d->key);
    free(d->value);
    free(d->action_id);
    free(d->tenant_id);
    free(d->error_class);
    free(d->error_message);
    free(d->original_topic);
    free(d->attempts);
    free(d->first_failure);
    free(d->replayed_at);
    free(d->replayed_by);
}

static void replay_run_release(replay_run *r) {
    for (int i = 0; i < r->n; i++)
        dead_letter_release(&r->dl[i]);
    free(r->dl);
    for (int i = 0; i < r->ntopics; i++)
        free(r->subsystems[i]);
    free(r->subsystems);
    free(r->topics);
}

/* Whether word is one of the comma-separated list (NULL: every word is). */
static int listed(const char *list, const char *word) {
    if (!list)
        return 1;
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, word, n))
            return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* The DLQ topics of the chosen subsystems, in the map's order. */
static ap_status topics_choose(replay_run *r, char *err, size_t errsz) {
    char path[1024];
    ap_status st = AP_OK;
    ap_config_schema_path(r->cfg, "executor_map.json", path, sizeof path);
    ap_executor_map *map = ap_executor_map_load(path, err, errsz);
    if (!map)
        return AP_ERR_INVALID;
    int nsub = ap_executor_map_subsystem_count(map);
    const char *list = r->req->subsystems;
    for (const char *p = list; p && *p;) { /* every name given must be in the map */
        size_t len = strcspn(p, ",");
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        if (!len || !ap_executor_map_subsystem(map, name)) {
            st = ap_fail(AP_ERR_INVALID, err, errsz,
                         "--subsystem: unknown subsystem '%s' (not in executor_map.json)", name);
            goto out;
        }
        p += len + (p[len] == ',');
    }
    if (!(r->subsystems = calloc((size_t)nsub + 1, sizeof *r->subsystems)) ||
        !(r->topics = calloc((size_t)nsub + 1, sizeof *r->topics)))
        goto nomem;
    for (int i = 0; i < nsub; i++) {
        const char *s = ap_executor_map_subsystem_at(map, i)->name;
        if (!listed(list, s))
            continue;
        if (!(r->subsystems[r->ntopics] = strdup(s)))
            goto nomem;
        ap_topic_dlq(r->topics[r->ntopics++], AP_TOPIC_MAX, r->cfg->topic_prefix, s);
    }
    goto out;
nomem:
    st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
out:
    ap_executor_map_free(map);
    return st;
}

/* A copy of header `name` as a string; NULL when absent (or out of memory). */
static char *header_dup(rd_kafka_headers_t *h, const char *name) {
    const void *v;
    size_t size;
    if (!h || rd_kafka_header_get_last(h, name, &v, &size))
        return NULL;
    return v ? strndup(v, size) : strdup("");
}

static char *json_str_dup(const json_t *obj, const char *name) {
    const char *s = json_string_value(json_object_get(obj, name));
    return s ? strdup(s) : NULL;
}

/* Keeps message m of DLQ topic r->topics[topic] when it matches the filters. */
static ap_status consider(replay_run *r, int topic, const rd_kafka_message_t *m, char *err,
                          size_t errsz) {
    const ap_replay_request *q = r->req;
    rd_kafka_headers_t *h = NULL;
    dead_letter d = {.topic = topic, .partition = m->partition, .offset = m->offset};
    if (rd_kafka_message_headers(m, &h))
        h = NULL;
    d.error_class = header_dup(h, "ap-error-class");
    d.error_message = header_dup(h, "ap-error-message");
    d.original_topic = header_dup(h, "ap-original-topic");
    d.attempts = header_dup(h, "ap-attempt");
    d.first_failure = header_dup(h, "ap-first-failure-at");
    json_t *value = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
    if (json_is_object(value)) {
        d.action_id = json_str_dup(value, "action_id");
        d.tenant_id = json_str_dup(value, "tenant_id");
    }
    json_decref(value);

    int64_t at = -1;
    rd_kafka_timestamp_type_t tstype;
    if (!d.first_failure || ap_rfc3339_ms(d.first_failure, &at)) {
        at = rd_kafka_message_timestamp(m, &tstype);
        if (at >= 0) {
            char stamp[32];
            ms_format(at, stamp, sizeof stamp);
            free(d.first_failure);
            d.first_failure = strdup(stamp);
        }
    }
    int match = (!q->tenant || (d.tenant_id && !strcmp(d.tenant_id, q->tenant))) &&
                (!q->action_id || (d.action_id && !strcmp(d.action_id, q->action_id))) &&
                (!q->error_class || (d.error_class && !strcmp(d.error_class, q->error_class))) &&
                (r->since_ms == INT64_MIN || (at >= 0 && at >= r->since_ms)) &&
                (r->until_ms == INT64_MAX || (at >= 0 && at < r->until_ms));
    if (!match) {
        dead_letter_release(&d);
        return AP_OK;
    }
    if (m->key && !(d.key = strndup(m->key, m->key_len)))
        goto nomem;
    d.len = m->len;
    if (!(d.value = malloc(m->len ? m->len : 1)))
        goto nomem;
    if (m->len)
        memcpy(d.value, m->payload, m->len);
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        dead_letter *grown = realloc(r->dl, (size_t)cap * sizeof *grown);
        if (!grown)
            goto nomem;
        r->dl = grown;
        r->cap = cap;
    }
    r->dl[r->n++] = d;
    return AP_OK;
nomem:
    dead_letter_release(&d);
    return ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
}

/* Reads every DLQ topic from its first offset to its high watermark. */
static ap_status dlq_read(replay_run *r, char *err, size_t errsz) {
    static const char *const defaults[] = {"enable.partition.eof", "true", NULL};
    ap_status st = AP_OK;
    char why[512];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    dlq_partition *parts = NULL;
    int nparts = 0, left = 0;
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = ap_kafka_conf_new(r->cfg, defaults, err, errsz);
    if (!conf)
        return AP_ERR_INVALID;
    ap_kafka_conf_quiet(conf);
    /* After the kafka.* passthrough: not tuning. librdkafka's assign needs a
     * group.id; the group is never joined and nothing is committed. */
    if (ap_kafka_conf_set(conf, "group.id", "actionpool-ctl-replay", err, errsz) ||
        ap_kafka_conf_set(conf, "enable.auto.commit", "false", err, errsz) ||
        ap_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errsz)) {
        rd_kafka_conf_destroy(conf);
        return AP_ERR_INVALID;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why))) {
        rd_kafka_conf_destroy(conf);
        return ap_fail(AP_ERR_INVALID, err, errsz, "cannot create a kafka client: %s", why);
    }
    conf = NULL; /* owned by rk */

    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, KAFKA_TIMEOUT_MS);
    if (e) {
        st = ap_fail(AP_ERR_IO, err, errsz, "cannot reach kafka at '%s': %s", r->cfg->brokers,
                     rd_kafka_err2str(e));
        goto out;
    }
    if (!(assign = rd_kafka_topic_partition_list_new(16)))
        goto nomem;
    for (int t = 0; t < r->ntopics; t++) {
        const struct rd_kafka_metadata_topic *mt = NULL;
        for (int i = 0; i < md->topic_cnt && !mt; i++)
            if (!strcmp(md->topics[i].topic, r->topics[t]))
                mt = &md->topics[i];
        if (!mt || mt->err) {
            st = ap_fail(AP_ERR_IO, err, errsz, "topic '%s' %s", r->topics[t],
                         !mt || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                             ? "does not exist (actionpool-ctl migrate creates it)"
                             : rd_kafka_err2str(mt->err));
            goto out;
        }
        dlq_partition *grown = realloc(parts, (size_t)(nparts + mt->partition_cnt) * sizeof *grown);
        if (!grown)
            goto nomem;
        parts = grown;
        for (int p = 0; p < mt->partition_cnt; p++) {
            int32_t id = mt->partitions[p].id;
            int64_t lo, hi;
            if ((e = rd_kafka_query_watermark_offsets(rk, r->topics[t], id, &lo, &hi,
                                                      KAFKA_TIMEOUT_MS))) {
                st = ap_fail(AP_ERR_IO, err, errsz, "cannot read the offsets of '%s' [%d]: %s",
                             r->topics[t], (int)id, rd_kafka_err2str(e));
                goto out;
            }
            if (hi <= lo)
                continue;
            parts[nparts++] = (dlq_partition){.topic = t, .partition = id, .end = hi};
            rd_kafka_topic_partition_list_add(assign, r->topics[t], id)->offset = lo;
            left++;
        }
    }
    if (!left)
        goto out;
    if ((e = rd_kafka_assign(rk, assign))) {
        st = ap_fail(AP_ERR_IO, err, errsz, "cannot assign the dead-letter partitions: %s",
                     rd_kafka_err2str(e));
        goto out;
    }
    struct timespec last, now;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (left > 0 && !st) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!m) {
            if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 >
                READ_IDLE_MS)
                st = ap_fail(AP_ERR_IO, err, errsz,
                             "cannot read the dead-letter topics to their end: nothing arrived "
                             "for %d s (%d partitions left)",
                             READ_IDLE_MS / 1000, left);
            continue;
        }
        last = now;
        const char *name = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        dlq_partition *part = NULL;
        for (int i = 0; i < nparts && !part; i++)
            if (parts[i].partition == m->partition && !strcmp(r->topics[parts[i].topic], name))
                part = &parts[i];
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ap_log(AP_LOG_DEBUG, "kafka while reading a dead-letter topic", "topic", name, "error",
                   rd_kafka_message_errstr(m), NULL);
            if (part || rd_kafka_fatal_error(rk, NULL, 0))
                st = ap_fail(AP_ERR_IO, err, errsz, "cannot read '%s' [%d]: %s", name,
                             (int)m->partition, rd_kafka_message_errstr(m));
        } else if (part && !part->done) {
            if (!m->err && m->offset < part->end)
                st = consider(r, part->topic, m, err, errsz);
            if (m->err || m->offset + 1 >= part->end) {
                part->done = 1;
                left--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    goto out;
nomem:
    st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    free(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return st;
}

static int dead_letter_cmp(const void *a, const void *b) {
    const dead_letter *x = a, *y = b;
    if (x->topic != y->topic)
        return x->topic < y->topic ? -1 : 1;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* ---------------------------------------------------------------- postgres */

#define STAMP_SQL "to_char(replayed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char already_sql[] =
    "SELECT dlq_partition, dlq_offset, replayed_by, " STAMP_SQL " FROM replays"
    " WHERE dlq_topic = $1";
static const char insert_sql[] =
    "INSERT INTO replays (dlq_topic, dlq_partition, dlq_offset, action_id, tenant_id,"
    "                     original_topic, replayed_by)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    " RETURNING replayed_by, " STAMP_SQL;
static const char one_sql[] = "SELECT replayed_by, " STAMP_SQL " FROM replays"
                              " WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3";
static const char delete_sql[] =
    "DELETE FROM replays WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3";

static void mark_already(dead_letter *d, const PGresult *res, int row, int col) {
    d->state = DL_ALREADY;
    free(d->replayed_by);
    free(d->replayed_at);
    d->replayed_by = strdup(PQgetvalue(res, row, col));
    d->replayed_at = strdup(PQgetvalue(res, row, col + 1));
}

/* Marks the matches that table replays lists (r->dl sorted). */
static ap_status already_mark(replay_run *r, PGconn *conn, char *err, size_t errsz) {
    for (int t = 0; t < r->ntopics; t++) {
        const char *params[] = {r->topics[t]};
        PGresult *res = ap_pg_query(conn, already_sql, 1, params,
                                    "cannot read table replays (is 004_replay.sql applied? "
                                    "actionpool-ctl migrate)",
                                    err, errsz);
        if (!res)
            return AP_ERR_PG;
        for (int i = 0; i < PQntuples(res); i++) {
            dead_letter key = {.topic = t,
                               .partition = (int32_t)atol(PQgetvalue(res, i, 0)),
                               .offset = strtoll(PQgetvalue(res, i, 1), NULL, 10)};
            dead_letter *d = bsearch(&key, r->dl, (size_t)r->n, sizeof *r->dl, dead_letter_cmp);
            if (d)
                mark_already(d, res, i, 2);
        }
        PQclear(res);
    }
    return AP_OK;
}

/* ---------------------------------------------------------------- replay */

static void on_delivery(void *ctx, void *opaque, const char *error) {
    (void)ctx;
    dead_letter *d = opaque;
    d->reported = 1;
    if (error) {
        d->state = DL_FAILED;
        snprintf(d->error, sizeof d->error, "not delivered: %s", error);
    }
}

/* The topic d goes back to: ap-original-topic, else its subsystem's main topic. */
static const char *target_topic(const replay_run *r, const dead_letter *d, char *buf, size_t size) {
    if (d->original_topic && *d->original_topic)
        return d->original_topic;
    ap_topic_main(buf, size, r->cfg->topic_prefix, r->subsystems[d->topic]);
    return buf;
}

/* Deletes the row of a dead letter this run failed to deliver. */
static ap_status row_delete(replay_run *r, PGconn *conn, const dead_letter *d, char *err,
                            size_t errsz) {
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", (int)d->partition);
    snprintf(off, sizeof off, "%" PRId64, d->offset);
    const char *params[] = {r->topics[d->topic], part, off};
    PGresult *res =
        ap_pg_query(conn, delete_sql, 3, params,
                    "cannot delete the replay row of an undelivered dead letter", err, errsz);
    PQclear(res);
    return res ? AP_OK : AP_ERR_PG;
}

/* Claims (inserts the row of) and queues one pending dead letter; leaves it
 * DL_ALREADY when another run claimed it first. */
static ap_status replay_one(replay_run *r, PGconn *conn, ap_publisher *pub, dead_letter *d,
                            char *err, size_t errsz) {
    char part[16], off[24], buf[AP_TOPIC_MAX], of[AP_TOPIC_MAX + 48];
    const char *topic = target_topic(r, d, buf, sizeof buf);
    snprintf(part, sizeof part, "%d", (int)d->partition);
    snprintf(off, sizeof off, "%" PRId64, d->offset);
    const char *params[] = {r->topics[d->topic], part,  off,       d->action_id,
                            d->tenant_id,        topic, r->req->by};
    PGresult *res = ap_pg_query(conn, insert_sql, 7, params, "cannot record a replay", err, errsz);
    if (!res)
        return AP_ERR_PG;
    if (PQntuples(res) != 1) { /* claimed since the listing: show by whom */
        PQclear(res);
        if (!(res = ap_pg_query(conn, one_sql, 3, params, "cannot read table replays", err, errsz)))
            return AP_ERR_PG;
        if (PQntuples(res) == 1)
            mark_already(d, res, 0, 0);
        else
            d->state = DL_ALREADY;
        PQclear(res);
        return AP_OK;
    }
    d->state = DL_SENT;
    d->replayed_by = strdup(PQgetvalue(res, 0, 0));
    d->replayed_at = strdup(PQgetvalue(res, 0, 1));
    PQclear(res);

    snprintf(of, sizeof of, "%s/%s/%s", r->topics[d->topic], part, off);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "ap-replay-of", -1, of, -1);
    rd_kafka_header_add(h, "ap-attempt", -1, "0", -1);
    if (ap_publisher_send(pub, topic, d->key, d->value, d->len, h, d, d->error, sizeof d->error)) {
        rd_kafka_headers_destroy(h);
        d->state = DL_FAILED; /* replay_all deletes its row */
        return AP_OK;
    }
    ap_log(AP_LOG_INFO, "dead letter replayed", "replay_of", of, "topic", topic, "action_id",
           d->action_id ? d->action_id : "-", "by", r->req->by, NULL);
    return AP_OK;
}

/* Replays every pending match; *failed counts the ones not delivered. */
static ap_status replay_all(replay_run *r, PGconn *conn, int *failed, char *err, size_t errsz) {
    ap_status st = AP_OK;
    int sent = 0;
    ap_publisher *pub = ap_publisher_new(r->cfg, on_delivery, NULL, err, errsz);
    if (!pub)
        return AP_ERR_IO;
    for (int i = 0; i < r->n && !st; i++)
        if (r->dl[i].state == DL_PENDING) {
            st = replay_one(r, conn, pub, &r->dl[i], err, errsz);
            sent += r->dl[i].state == DL_SENT;
        }
    if (sent)
        ap_publisher_flush(pub, FLUSH_MS);
    for (int i = 0; i < r->n; i++) {
        dead_letter *d = &r->dl[i];
        if (d->state == DL_SENT && !d->reported) {
            d->state = DL_FAILED;
            snprintf(d->error, sizeof d->error, "not delivered within %d s", FLUSH_MS / 1000);
        }
        if (d->state != DL_FAILED)
            continue;
        (*failed)++; /* its row goes again, so that a later run retries it */
        char why[512];
        ap_status ds = row_delete(r, conn, d, why, sizeof why);
        if (ds && !st)
            st = ap_fail(ds, err, errsz, "%s", why);
    }
    ap_publisher_free(pub);
    return st;
}

/* ---------------------------------------------------------------- output */

static const char *or_dash(const char *s) {
    return s && *s ? s : "-";
}

static const char *state_name(const replay_run *r, const dead_letter *d) {
    switch (d->state) {
    case DL_ALREADY: return "already_replayed";
    case DL_SENT: return "replayed";
    case DL_FAILED: return "failed";
    default: return r->req->dry_run ? "would_replay" : "not_replayed";
    }
}

static void counts(const replay_run *r, int *already, int *done, int *failed, int *pending) {
    *already = *done = *failed = *pending = 0;
    for (int i = 0; i < r->n; i++) {
        dl_state s = r->dl[i].state;
        *already += s == DL_ALREADY;
        *done += s == DL_SENT;
        *failed += s == DL_FAILED;
        *pending += s == DL_PENDING;
    }
}

static ap_status render_json(FILE *out, const replay_run *r) {
    int already, done, failed, pending;
    counts(r, &already, &done, &failed, &pending);
    json_t *list = json_array();
    json_t *doc =
        json_pack("{s:b, s:i, s:i, s:i, s:i, s:o}", "dry_run", r->req->dry_run, "matching", r->n,
                  "already_replayed", already, r->req->dry_run ? "would_replay" : "replayed",
                  r->req->dry_run ? pending : done, "failed", failed, "dead_letters", list);
    if (!doc)
        return AP_ERR_NOMEM;
    for (int i = 0; i < r->n; i++) {
        const dead_letter *d = &r->dl[i];
        char *end;
        long attempts = d->attempts ? strtol(d->attempts, &end, 10) : 0;
        int has_attempts = d->attempts && *d->attempts && !*end;
        json_t *o = json_pack(
            "{s:s, s:i, s:I, s:s, s:s?, s:s?, s:s?, s:s?, s:o, s:s?, s:s?, s:s, s:s?, s:s?, "
            "s:s?}",
            "dlq_topic", r->topics[d->topic], "dlq_partition", (int)d->partition, "dlq_offset",
            (json_int_t)d->offset, "subsystem", r->subsystems[d->topic], "action_id", d->action_id,
            "tenant_id", d->tenant_id, "error_class", d->error_class, "error_message",
            d->error_message, "attempts", has_attempts ? json_integer(attempts) : json_null(),
            "first_failure_at", d->first_failure, "original_topic", d->original_topic, "state",
            state_name(r, d), "replayed_at", d->replayed_at, "replayed_by", d->replayed_by, "error",
            d->state == DL_FAILED ? d->error : NULL);
        if (!o || json_array_append_new(list, o)) {
            json_decref(doc);
            return AP_ERR_NOMEM;
        }
    }
    json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    json_decref(doc);
    return AP_OK;
}

static ap_status render_text(FILE *out, const replay_run *r) {
    static const char *const heads[] = {"DLQ",      "ACTION_ID",     "TENANT", "ERROR_CLASS",
                                        "ATTEMPTS", "FIRST_FAILURE", "REPLAY", "LAST_ERROR"};
    ap_table t = {.ncols = 8, .heads = heads, .right = 1u << 4};
    ap_status st = AP_OK;
    int already, done, failed, pending;
    for (int i = 0; i < r->n && !st; i++) {
        const dead_letter *d = &r->dl[i];
        char where[AP_TOPIC_MAX + 48], state[320];
        snprintf(where, sizeof where, "%s/%d/%" PRId64, r->topics[d->topic], (int)d->partition,
                 d->offset);
        if (d->state == DL_ALREADY)
            snprintf(state, sizeof state, "already %s by %s", or_dash(d->replayed_at),
                     or_dash(d->replayed_by));
        else if (d->state == DL_FAILED)
            snprintf(state, sizeof state, "failed: %s", d->error);
        else
            snprintf(state, sizeof state, "%s",
                     d->state == DL_SENT ? "replayed now"
                     : r->req->dry_run   ? "would replay"
                                         : "not replayed");
        const char *row[] = {where,
                             or_dash(d->action_id),
                             or_dash(d->tenant_id),
                             or_dash(d->error_class),
                             or_dash(d->attempts),
                             or_dash(d->first_failure),
                             state,
                             or_dash(d->error_message)};
        st = ap_table_add(&t, row);
    }
    if (r->n)
        ap_table_print(out, &t);
    ap_table_release(&t);
    counts(r, &already, &done, &failed, &pending);
    if (r->req->dry_run) {
        fprintf(out,
                "would replay %d of %d matching dead letters (%d already replayed); dry run, "
                "nothing changed\n",
                pending, r->n, already);
        return st;
    }
    char extra[96] = "";
    if (failed)
        snprintf(extra, sizeof extra, ", %d not delivered", failed);
    if (pending)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", %d not attempted",
                 pending);
    fprintf(out, "replayed %d of %d matching dead letters (%d already replayed%s)\n", done, r->n,
            already, extra);
    return st;
}

/* ---------------------------------------------------------------- entry */

ap_status ap_replay_run(const ap_config *cfg, const ap_replay_request *req, FILE *out, char *err,
                        size_t errsz) {
    replay_run r = {.cfg = cfg, .req = req, .since_ms = INT64_MIN, .until_ms = INT64_MAX};
    ap_status st = AP_OK, rs;
    PGconn *conn = NULL;
    int failed = 0;

    if (!req->dry_run && (!req->by || !*req->by)) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "replay needs --by NAME (who replays)");
        goto out;
    }
    if ((req->since && (st = time_parse("--since", req->since, &r.since_ms, err, errsz))) ||
        (req->until && (st = time_parse("--until", req->until, &r.until_ms, err, errsz))) ||
        (st = topics_choose(&r, err, errsz)))
        goto out;
    if (!(conn = ap_pg_connect(cfg, &st, err, errsz))) /* before Kafka: fail fast */
        goto out;
    if ((st = dlq_read(&r, err, errsz)))
        goto out;
    if (r.n)
        qsort(r.dl, (size_t)r.n, sizeof *r.dl, dead_letter_cmp);
    if ((st = already_mark(&r, conn, err, errsz)))
        goto out;
    if (!req->dry_run)
        st = replay_all(&r, conn, &failed, err, errsz);
    rs = req->json ? render_json(out, &r) : render_text(out, &r);
    if (!st && rs)
        st = ap_fail(rs, err, errsz, "out of memory");
    if (!st && failed)
        st = ap_fail(AP_ERR_KAFKA, err, errsz,
                     "%d of %d replays were not delivered (see the "
                     "listing); run replay again to retry them",
                     failed, r.n);
out:
    PQfinish(conn);
    replay_run_release(&r);
    return st;
}
