#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The labelled families; their order is the order of the exposition. */
enum { F_ACTIONS, F_RETRIES, F_DEAD_LETTERS, F_RATE_LIMIT_WAITS, F_BREAKER, F_LAG, NFAMILIES };

typedef struct family {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    const char *labels[2];
    int nlabels;
} family;

static const family families[NFAMILIES] = {
    [F_ACTIONS] = {"actionpool_actions_total",
                   "counter",
                   "Actions finished by this worker, by subsystem and outcome.",
                   {"subsystem", "status"},
                   2},
    [F_RETRIES] = {"actionpool_retries_total",
                   "counter",
                   "Actions sent to a delayed retry topic, by subsystem and attempt.",
                   {"subsystem", "attempt"},
                   2},
    [F_DEAD_LETTERS] = {"actionpool_dead_letters_total",
                        "counter",
                        "Messages sent to a dead-letter topic, by subsystem and error class.",
                        {"subsystem", "error_class"},
                        2},
    [F_RATE_LIMIT_WAITS] = {"actionpool_rate_limit_waits_total",
                            "counter",
                            "Actions that waited for a rate-limit token, by subsystem.",
                            {"subsystem", NULL},
                            1},
    [F_BREAKER] = {"actionpool_breaker_open",
                   "gauge",
                   "1 while the circuit breaker of a tenant and subsystem is open, else 0.",
                   {"tenant_subsystem", NULL},
                   1},
    [F_LAG] = {"actionpool_consumer_lag",
               "gauge",
               "Messages not yet consumed in a partition assigned to this worker.",
               {"topic", "partition"},
               2},
};

/* A histogram without labels; bounds ascending, +Inf implied. */
#define MAX_BUCKETS 12

typedef struct histogram {
    const char *name;
    const char *help;
    const char *le[MAX_BUCKETS]; /* bounds as written in the exposition */
    double bounds[MAX_BUCKETS];
    int nbounds;
    unsigned long long counts[MAX_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    unsigned long long count;
    double sum;
} histogram;

typedef struct series {
    int family;
    int present;     /* 0 after ap_metrics_remove_lag */
    int next;        /* next series of the same family, -1 at the end */
    char *labels[2]; /* owned; labels[1] NULL for one-label families */
    long long value;
} series;

/* Open addressing over series indices, twice as many slots as series can exist. */
#define HASH_SLOTS 32768 /* power of two > 2 * AP_METRICS_MAX_SERIES */

struct ap_metrics {
    pthread_mutex_t lock; /* guards everything below */
    char *version;
    series *series; /* in creation order */
    int nseries, cap;
    int *slots; /* HASH_SLOTS indices into series, -1 empty */
    int head[NFAMILIES], tail[NFAMILIES];
    long long dropped; /* updates lost to the series cap, long labels or memory */
    histogram batch, execution;
};

static const histogram batch_histogram = {
    "actionpool_batch_size",
    "Messages per batch.",
    {"1", "10", "50", "100", "250", "500", "1000", "5000"},
    {1, 10, 50, 100, 250, 500, 1000, 5000},
    8,
    {0},
    0,
    0,
};

static const histogram execution_histogram = {
    "actionpool_execution_seconds",
    "Time to execute one action.",
    {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"},
    {.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
    12,
    {0},
    0,
    0,
};

ap_metrics *ap_metrics_new(const char *version) {
    ap_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->slots = malloc(HASH_SLOTS * sizeof *m->slots);
    m->version = strdup(version ? version : "unknown");
    if (!m->slots || !m->version || pthread_mutex_init(&m->lock, NULL)) {
        free(m->slots);
        free(m->version);
        free(m);
        return NULL;
    }
    for (int i = 0; i < HASH_SLOTS; i++)
        m->slots[i] = -1;
    for (int f = 0; f < NFAMILIES; f++)
        m->head[f] = m->tail[f] = -1;
    m->batch = batch_histogram;
    m->execution = execution_histogram;
    return m;
}

void ap_metrics_free(ap_metrics *m) {
    if (!m)
        return;
    for (int i = 0; i < m->nseries; i++) {
        free(m->series[i].labels[0]);
        free(m->series[i].labels[1]);
    }
    free(m->series);
    free(m->slots);
    free(m->version);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* FNV-1a over the family and the label values, NUL-separated. */
static uint32_t series_hash(int fam, const char *l0, const char *l1) {
    uint32_t h = 2166136261u;
    h = (h ^ (uint32_t)fam) * 16777619u;
    for (const char *s = l0; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (const char *s = l1 ? l1 : ""; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int series_matches(const series *s, int fam, const char *l0, const char *l1) {
    return s->family == fam && !strcmp(s->labels[0], l0) &&
           (l1 ? s->labels[1] && !strcmp(s->labels[1], l1) : !s->labels[1]);
}

/* The series of family fam with these label values, created (value 0) when
 * missing. Returns NULL, with the update counted as dropped, when a label is
 * too long, the cap is reached or memory is out. Called with the lock held. */
static series *series_get(ap_metrics *m, int fam, const char *l0, const char *l1) {
    if (!l0)
        l0 = "";
    if (families[fam].nlabels == 2 && !l1)
        l1 = "";
    if (strlen(l0) > AP_METRICS_MAX_LABEL || (l1 && strlen(l1) > AP_METRICS_MAX_LABEL))
        goto drop;
    uint32_t slot = series_hash(fam, l0, l1) & (HASH_SLOTS - 1);
    for (; m->slots[slot] >= 0; slot = (slot + 1) & (HASH_SLOTS - 1))
        if (series_matches(&m->series[m->slots[slot]], fam, l0, l1))
            return &m->series[m->slots[slot]];
    if (m->nseries >= AP_METRICS_MAX_SERIES)
        goto drop;
    if (m->nseries == m->cap) {
        int cap = m->cap ? m->cap * 2 : 64;
        if (cap > AP_METRICS_MAX_SERIES)
            cap = AP_METRICS_MAX_SERIES;
        series *grown = realloc(m->series, (size_t)cap * sizeof *grown);
        if (!grown)
            goto drop;
        m->series = grown;
        m->cap = cap;
    }
    series *s = &m->series[m->nseries];
    *s = (series){.family = fam, .present = 1, .next = -1};
    s->labels[0] = strdup(l0);
    s->labels[1] = l1 ? strdup(l1) : NULL;
    if (!s->labels[0] || (l1 && !s->labels[1])) {
        free(s->labels[0]);
        free(s->labels[1]);
        goto drop;
    }
    m->slots[slot] = m->nseries;
    if (m->tail[fam] >= 0)
        m->series[m->tail[fam]].next = m->nseries;
    else
        m->head[fam] = m->nseries;
    m->tail[fam] = m->nseries;
    return &m->series[m->nseries++];
drop:
    m->dropped++;
    return NULL;
}

/* Adds n to (add = 1) or sets (add = 0) the value of one series. */
static void series_update(ap_metrics *m, int fam, const char *l0, const char *l1, long long n,
                          int add) {
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    series *s = series_get(m, fam, l0, l1);
    if (s) {
        s->value = add ? s->value + n : n;
        s->present = 1;
    }
    pthread_mutex_unlock(&m->lock);
}

void ap_metrics_count_action(ap_metrics *m, const char *subsystem, const char *status, long n) {
    if (n >= 0)
        series_update(m, F_ACTIONS, subsystem, status, n, 1);
}

void ap_metrics_count_retry(ap_metrics *m, const char *subsystem, int attempt, long n) {
    char num[16];
    snprintf(num, sizeof num, "%d", attempt);
    if (n >= 0)
        series_update(m, F_RETRIES, subsystem, num, n, 1);
}

void ap_metrics_count_dead_letter(ap_metrics *m, const char *subsystem, const char *error_class,
                                  long n) {
    if (n >= 0)
        series_update(m, F_DEAD_LETTERS, subsystem, error_class, n, 1);
}

void ap_metrics_count_rate_limit_wait(ap_metrics *m, const char *subsystem, long n) {
    if (n >= 0)
        series_update(m, F_RATE_LIMIT_WAITS, subsystem, NULL, n, 1);
}

void ap_metrics_set_breaker(ap_metrics *m, const char *tenant_subsystem, int open) {
    series_update(m, F_BREAKER, tenant_subsystem, NULL, open ? 1 : 0, 0);
}

void ap_metrics_set_lag(ap_metrics *m, const char *topic, int partition, long long lag) {
    char num[16];
    snprintf(num, sizeof num, "%d", partition);
    series_update(m, F_LAG, topic, num, lag, 0);
}

void ap_metrics_remove_lag(ap_metrics *m, const char *topic, int partition) {
    char num[16];
    if (!m)
        return;
    snprintf(num, sizeof num, "%d", partition);
    pthread_mutex_lock(&m->lock);
    uint32_t slot = series_hash(F_LAG, topic ? topic : "", num) & (HASH_SLOTS - 1);
    for (; m->slots[slot] >= 0; slot = (slot + 1) & (HASH_SLOTS - 1)) {
        series *s = &m->series[m->slots[slot]];
        if (series_matches(s, F_LAG, topic ? topic : "", num)) {
            s->present = 0;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

static void histogram_observe(ap_metrics *m, histogram *h, double v) {
    int b = 0;
    while (b < h->nbounds && v > h->bounds[b])
        b++;
    pthread_mutex_lock(&m->lock);
    h->counts[b]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(&m->lock);
}

void ap_metrics_observe_batch(ap_metrics *m, int size) {
    if (m)
        histogram_observe(m, &m->batch, size < 0 ? 0 : size);
}

void ap_metrics_observe_execution(ap_metrics *m, double seconds) {
    if (m && isfinite(seconds))
        histogram_observe(m, &m->execution, seconds < 0 ? 0 : seconds);
}

/* ---------------------------------------------------------------- rendering */

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void buf_grow(buf *b, size_t more) {
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void buf_put(buf *b, const char *s, size_t n) {
    buf_grow(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(buf *b, const char *s) {
    buf_put(b, s, strlen(s));
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...) {
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        buf_put(b, small, (size_t)n);
        return;
    }
    buf_grow(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static int utf8_len(const unsigned char *s) {
    int n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (int i = 1; i < n; i++) /* stops at the NUL: it is no continuation byte */
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* A label value between quotes: \ " and newline escaped, invalid UTF-8 as '?'. */
static void buf_label_value(buf *b, const char *value) {
    const unsigned char *s = (const unsigned char *)value;
    buf_puts(b, "\"");
    while (*s) {
        int n = utf8_len(s);
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '"')
            buf_puts(b, "\\\"");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else if (n == 0)
            buf_puts(b, "?");
        else
            buf_put(b, (const char *)s, (size_t)n);
        s += n ? n : 1;
    }
    buf_puts(b, "\"");
}

static void buf_header(buf *b, const char *name, const char *type, const char *help) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_family(buf *b, const ap_metrics *m, int fam) {
    const family *f = &families[fam];
    buf_header(b, f->name, f->type, f->help);
    for (int i = m->head[fam]; i >= 0; i = m->series[i].next) {
        const series *s = &m->series[i];
        if (!s->present)
            continue;
        buf_puts(b, f->name);
        for (int l = 0; l < f->nlabels; l++) {
            buf_printf(b, "%c%s=", l ? ',' : '{', f->labels[l]);
            buf_label_value(b, s->labels[l]);
        }
        buf_printf(b, "} %lld\n", s->value);
    }
}

static void render_histogram(buf *b, const histogram *h) {
    unsigned long long cumulative = 0;
    buf_header(b, h->name, "histogram", h->help);
    for (int i = 0; i < h->nbounds; i++) {
        cumulative += h->counts[i];
        buf_printf(b, "%s_bucket{le=\"%s\"} %llu\n", h->name, h->le[i], cumulative);
    }
    buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", h->name, h->count);
    buf_printf(b, "%s_sum %.17g\n%s_count %llu\n", h->name, h->sum, h->name, h->count);
}

char *ap_metrics_render(ap_metrics *m) {
    buf b = {0};
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->lock);
    buf_header(&b, "actionpool_up", "gauge", "1 while the worker serves its metrics.");
    buf_puts(&b, "actionpool_up 1\n");
    buf_header(&b, "actionpool_build_info", "gauge", "The worker's version, as a label.");
    buf_puts(&b, "actionpool_build_info{version=");
    buf_label_value(&b, m->version);
    buf_puts(&b, "} 1\n");
    for (int f = 0; f < NFAMILIES; f++)
        render_family(&b, m, f);
    render_histogram(&b, &m->batch);
    render_histogram(&b, &m->execution);
    buf_header(&b, "actionpool_metrics_series_dropped_total", "counter",
               "Metric updates dropped: series cap reached, label too long or out of memory.");
    buf_printf(&b, "actionpool_metrics_series_dropped_total %lld\n", m->dropped);
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
