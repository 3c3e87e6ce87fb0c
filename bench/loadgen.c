/* loadgen — the benchmark's Kafka publisher: JSON Lines of actions onto
 * <prefix>.<owner_subsystem>, keyed "<tenant_id>:<entity_id>", with the
 * producer settings of actionpool-producer (idempotent, acks=all, linger 20 ms,
 * lz4), as fast as the broker takes them or at a fixed rate.
 *
 * It does not validate: invalid actions reach the workers as they would from
 * any other client, which is what the benchmark wants (the worker rejects them).
 *
 * usage: loadgen --brokers HOST:PORT --prefix P [--rate N] [--stamp]
 *                [--linger-ms MS] [--ready FILE] [--progress-s S] FILE
 *   --rate N       N actions/s on a fixed schedule (message i is due at
 *                  start + i/N); 0 (default) sends as fast as possible
 *   --stamp        set each action's created_at to the time it is sent
 *                  (RFC 3339, microseconds, UTC): created_at -> commit is then
 *                  the latency of the pipeline, not of the file
 *   --linger-ms MS the producer's linger.ms (default 20, as actionpool-producer)
 *   --ready FILE   once the input is read, create FILE and wait for SIGUSR1
 *                  before the first send (the caller starts its clocks then)
 *   --progress-s S a progress line on stderr every S seconds (default 5; 0: none)
 *
 * The whole file is read and routed before the first send, so the timed part
 * is publishing only. On stdout, at the end, one JSON object: sent, delivered,
 * failed (not delivered), first_send / last_send / last_delivery (Unix epoch
 * seconds), rate_target, rate_achieved, behind_max_ms (how far the schedule
 * slipped), cpu_s (this process, from the first send on). Exit 0 iff every
 * message was delivered; 1 if some were not; 2 on usage or input errors. */
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct line {
    char *text;    /* the action, as read (owned) */
    size_t len;    /* of text */
    size_t ts_at;  /* offset of created_at's value (after the quote); 0: none */
    size_t ts_len; /* its length, quotes excluded */
    char *topic;   /* "<prefix>.<subsystem>" (owned) */
    char *key;     /* "<tenant>:<entity>" (owned) */
} line;

typedef struct stats {
    long delivered, failed;
    double last_delivery;
    char first_error[256];
} stats;

static volatile sig_atomic_t running = 1;

static void on_signal(int sig) {
    (void)sig;
    running = 0;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (27 chars + NUL). */
static void rfc3339_now(char buf[32]) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* CPU seconds (user + system) this process has used so far. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    stats *s = opaque;
    if (m->err) {
        if (!s->failed++)
            snprintf(s->first_error, sizeof s->first_error, "%s", rd_kafka_err2str(m->err));
    } else {
        s->delivered++;
    }
    s->last_delivery = wall_now();
}

/* Finds the string value of "created_at" in the text: the offset after its
 * opening quote and its length. Returns 0 if there is none. */
static int find_created_at(const char *text, size_t *at, size_t *len) {
    const char *p = strstr(text, "\"created_at\"");
    if (!p)
        return 0;
    p += strlen("\"created_at\"");
    while (*p == ' ' || *p == ':')
        p++;
    if (*p != '"')
        return 0;
    const char *end = strchr(++p, '"');
    if (!end)
        return 0;
    *at = (size_t)(p - text);
    *len = (size_t)(end - p);
    return 1;
}

/* Reads FILE into lines, each with its topic and key. Returns the count, or
 * -1 after printing why. *out is owned by the caller (free with lines_free). */
static long lines_read(const char *path, const char *prefix, line **out) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long count = 0, alloc = 0, lineno = 0;
    line *lines = NULL;
    if (!f) {
        fprintf(stderr, "loadgen: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    while ((n = getline(&buf, &cap, f)) > 0) {
        lineno++;
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = '\0';
        if (!n)
            continue;
        json_error_t jerr;
        json_t *a = json_loadb(buf, (size_t)n, 0, &jerr);
        const char *sub = json_string_value(json_object_get(a, "owner_subsystem"));
        const char *tenant = json_string_value(json_object_get(a, "tenant_id"));
        const char *entity = json_string_value(json_object_get(a, "entity_id"));
        if (!sub || !tenant) {
            fprintf(stderr, "loadgen: %s:%ld: %s\n", path, lineno,
                    a ? "an action needs owner_subsystem and tenant_id" : jerr.text);
            json_decref(a);
            goto fail;
        }
        if (count == alloc) {
            alloc = alloc ? alloc * 2 : 4096;
            line *grown = realloc(lines, (size_t)alloc * sizeof *grown);
            if (!grown) {
                json_decref(a);
                fprintf(stderr, "loadgen: out of memory\n");
                goto fail;
            }
            lines = grown;
        }
        line *l = &lines[count];
        memset(l, 0, sizeof *l);
        size_t tlen = strlen(prefix) + strlen(sub) + 2;
        size_t klen = strlen(tenant) + (entity ? strlen(entity) : 0) + 2;
        l->text = strdup(buf);
        l->len = (size_t)n;
        l->topic = malloc(tlen);
        l->key = malloc(klen);
        if (l->topic)
            snprintf(l->topic, tlen, "%s.%s", prefix, sub);
        if (l->key)
            snprintf(l->key, klen, "%s:%s", tenant, entity ? entity : "");
        json_decref(a);
        count++;
        if (!l->text || !l->topic || !l->key) {
            fprintf(stderr, "loadgen: out of memory\n");
            goto fail;
        }
        if (!find_created_at(l->text, &l->ts_at, &l->ts_len))
            l->ts_at = 0;
    }
    free(buf);
    if (f != stdin)
        fclose(f);
    *out = lines;
    return count;
fail:
    for (long i = 0; i < count; i++) {
        free(lines[i].text);
        free(lines[i].topic);
        free(lines[i].key);
    }
    free(lines);
    free(buf);
    if (f != stdin)
        fclose(f);
    return -1;
}

static void lines_free(line *lines, long count) {
    for (long i = 0; i < count; i++) {
        free(lines[i].text);
        free(lines[i].topic);
        free(lines[i].key);
    }
    free(lines);
}

/* Queues one message, serving delivery reports while the queue is full.
 * With stamp, created_at is replaced by the time of this call. */
static int send_line(rd_kafka_t *rk, const line *l, int stamp, char *scratch, size_t scratch_cap) {
    const char *payload = l->text;
    size_t len = l->len;
    if (stamp && l->ts_at) {
        char ts[32];
        rfc3339_now(ts);
        size_t tl = strlen(ts), tail = l->len - l->ts_at - l->ts_len;
        if (l->ts_at + tl + tail + 1 > scratch_cap)
            return -1;
        memcpy(scratch, l->text, l->ts_at);
        memcpy(scratch + l->ts_at, ts, tl);
        memcpy(scratch + l->ts_at + tl, l->text + l->ts_at + l->ts_len, tail);
        payload = scratch;
        len = l->ts_at + tl + tail;
    }
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(l->topic), RD_KAFKA_V_KEY(l->key, strlen(l->key)),
            RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (!e)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "loadgen: cannot queue a message for '%s': %s\n", l->topic,
                    rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(rk, 10);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen --brokers HOST:PORT --prefix P [--rate N] [--stamp] "
                    "[--linger-ms MS] [--ready FILE] [--progress-s S] FILE\n");
}

int main(int argc, char **argv) {
    const char *brokers = NULL, *prefix = NULL, *path = NULL, *ready = NULL, *linger = "20";
    double rate = 0, progress_s = 5;
    int stamp = 0, status = 2;
    long count = 0, sent = 0;
    line *lines = NULL;
    rd_kafka_t *rk = NULL;
    stats st = {0};
    char errstr[512];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--brokers") && i + 1 < argc)
            brokers = argv[++i];
        else if (!strcmp(argv[i], "--prefix") && i + 1 < argc)
            prefix = argv[++i];
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--progress-s") && i + 1 < argc)
            progress_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--linger-ms") && i + 1 < argc)
            linger = argv[++i];
        else if (!strcmp(argv[i], "--ready") && i + 1 < argc)
            ready = argv[++i];
        else if (!strcmp(argv[i], "--stamp"))
            stamp = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            usage();
            return 2;
        } else
            path = argv[i];
    }
    if (!brokers || !prefix || !path || rate < 0) {
        usage();
        return 2;
    }
    if ((count = lines_read(path, prefix, &lines)) < 0)
        goto out;

    static const char *const conf_pairs[] = {
        "bootstrap.servers",
        NULL, /* filled below */
        "enable.idempotence",
        "true",
        "acks",
        "all",
        "linger.ms",
        NULL, /* --linger-ms */
        "compression.type",
        "lz4",
        "message.timeout.ms",
        "30000",
        "queue.buffering.max.messages",
        "200000",
        NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (int i = 0; conf_pairs[i]; i += 2) {
        const char *value = conf_pairs[i + 1];
        if (!value)
            value = strcmp(conf_pairs[i], "linger.ms") ? brokers : linger;
        if (rd_kafka_conf_set(conf, conf_pairs[i], value, errstr, sizeof errstr)) {
            fprintf(stderr, "loadgen: kafka.%s: %s\n", conf_pairs[i], errstr);
            rd_kafka_conf_destroy(conf);
            goto out;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        fprintf(stderr, "loadgen: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    conf = NULL; /* owned by rk */

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    size_t scratch_cap = 1 << 20;
    char *scratch = malloc(scratch_cap);
    if (!scratch) {
        fprintf(stderr, "loadgen: out of memory\n");
        goto out;
    }
    if (ready) {
        /* SIGUSR1 is blocked before FILE exists, so it cannot be missed. */
        sigset_t go;
        int sig;
        sigemptyset(&go);
        sigaddset(&go, SIGUSR1);
        sigprocmask(SIG_BLOCK, &go, NULL);
        FILE *f = fopen(ready, "w");
        if (!f) {
            fprintf(stderr, "loadgen: cannot create '%s': %s\n", ready, strerror(errno));
            free(scratch);
            goto out;
        }
        fclose(f);
        sigwait(&go, &sig);
    }
    fprintf(stderr, "loadgen: %ld actions read, publishing%s\n", count,
            rate > 0 ? " at a fixed rate" : " as fast as possible");
    double cpu0 = cpu_seconds(), first_send = wall_now(), last_send = first_send;
    double t0 = mono_now(), next_progress = t0 + progress_s, behind_max = 0;
    for (sent = 0; sent < count && running; sent++) {
        if (rate > 0) {
            double due = t0 + (double)sent / rate, now = mono_now();
            if (due > now) {
                double wait = due - now;
                struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            } else if (now - due > behind_max) {
                behind_max = now - due;
            }
        }
        if (send_line(rk, &lines[sent], stamp, scratch, scratch_cap))
            break;
        rd_kafka_poll(rk, 0);
        if (progress_s > 0 && mono_now() >= next_progress) {
            double el = mono_now() - t0;
            fprintf(stderr, "loadgen: %ld sent, %ld delivered, %.0f/s\n", sent + 1, st.delivered,
                    (sent + 1) / el);
            next_progress += progress_s;
        }
    }
    last_send = wall_now();
    double send_span = mono_now() - t0;
    free(scratch);
    /* Every delivery report, within the message timeout and then some. */
    for (int waited = 0; rd_kafka_outq_len(rk) > 0 && waited < 60000; waited += 100)
        rd_kafka_poll(rk, 100);
    rd_kafka_poll(rk, 0);

    double cpu = cpu_seconds() - cpu0;
    printf("{\"sent\": %ld, \"delivered\": %ld, \"failed\": %ld, \"first_send\": %.6f, "
           "\"last_send\": %.6f, \"last_delivery\": %.6f, \"rate_target\": %.1f, "
           "\"rate_achieved\": %.1f, \"behind_max_ms\": %.1f, \"cpu_s\": %.3f}\n",
           sent, st.delivered, count - st.delivered, first_send, last_send, st.last_delivery, rate,
           send_span > 0 ? sent / send_span : 0, behind_max * 1000, cpu);
    if (st.failed)
        fprintf(stderr, "loadgen: %ld messages not delivered (first error: %s)\n", st.failed,
                st.first_error);
    status = sent == count && st.delivered == count ? 0 : 1;
out:
    if (rk)
        rd_kafka_destroy(rk);
    lines_free(lines, count > 0 ? count : 0);
    return status;
}
