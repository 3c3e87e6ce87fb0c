#include "store.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct text_buf {
    char *s;
    size_t len, cap;
} text_buf;

struct ap_store {
    PGconn *pg;
    char *dsn;
    const ap_config *cfg; /* borrowed */
    text_buf batch;       /* the last batch's text: kept, so that each batch does not
                             free and grow a buffer this large again */
};

static ap_status store_connect(ap_store *s, char *err, size_t errsz) {
    if (s->pg && PQstatus(s->pg) == CONNECTION_OK)
        return AP_OK;
    PQfinish(s->pg);
    s->pg = PQconnectdb(s->dsn);
    if (PQstatus(s->pg) != CONNECTION_OK) {
        ap_fail(AP_ERR_PG, err, errsz, "cannot connect to postgres: %s", PQerrorMessage(s->pg));
        PQfinish(s->pg);
        s->pg = NULL;
        return AP_ERR_PG;
    }
    return AP_OK;
}

ap_store *ap_store_new(const ap_config *cfg, char *err, size_t errsz) {
    ap_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dsn = strdup(cfg->pg_dsn))) {
        free(s);
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    if (store_connect(s, err, errsz)) {
        ap_store_free(s);
        return NULL;
    }
    return s;
}

/* A json_dump_callback_t: appends to a text_buf. */
static int text_append(const char *part, size_t n, void *data) {
    text_buf *b = data;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, part, n);
    b->len += n;
    return 0;
}

/* Writing JSON text into a text_buf; `failed` is sticky (out of memory). */
typedef struct writer {
    text_buf *b;
    int failed;
} writer;

static void put(writer *w, const char *s, size_t n) {
    w->failed = w->failed || text_append(s, n, w->b);
}

static void put_cstr(writer *w, const char *s) {
    put(w, s, strlen(s));
}

/* ,"name": — every member but an object's first. */
static void key(writer *w, const char *name) {
    put_cstr(w, ",\"");
    put_cstr(w, name);
    put_cstr(w, "\":");
}

/* A JSON string of s (UTF-8, as jansson parsed it). */
static void put_str(writer *w, const char *s) {
    put_cstr(w, "\"");
    for (const char *run = s;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(s - run));
        if (!c)
            break;
        char esc[8];
        int len = c == '"' || c == '\\' ? snprintf(esc, sizeof esc, "\\%c", c)
                                        : snprintf(esc, sizeof esc, "\\u%04x", c);
        put(w, esc, (size_t)len);
        run = s + 1;
    }
    put_cstr(w, "\"");
}

static void put_int(writer *w, long long v) {
    char n[24];
    put(w, n, (size_t)snprintf(n, sizeof n, "%lld", v));
}

static void put_json(writer *w, const json_t *j) {
    w->failed =
        w->failed || json_dump_callback(j, text_append, w->b, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void member_str(writer *w, const char *name, const char *s) {
    if (s) {
        key(w, name);
        put_str(w, s);
    }
}

static void member_int(writer *w, const char *name, long long v) {
    key(w, name);
    put_int(w, v);
}

static void member_json(writer *w, const char *name, const json_t *j) {
    if (j) {
        key(w, name);
        put_json(w, j);
    }
}

/* What a valid action names in revert_of, when it is a string; else NULL. */
static const char *revert_of(const ap_action *a) {
    return json_string_value(json_object_get(a->json, "revert_of"));
}

/* One ap_record_batch item (schemas/sql/005). */
static void put_record(writer *w, const ap_config *cfg, const ap_record *r, int shared) {
    const ap_action *a = r->action;
    put_cstr(w, "{\"ord\":");
    put_int(w, r->ord);
    if (shared)
        put_cstr(w, ",\"shared\":true");
    member_str(w, "action_id", a->action_id);
    member_str(w, "tenant_id", a->tenant_id);
    member_str(w, "idempotency_key", a->idempotency_key);
    member_str(w, "status", r->status);
    member_str(w, "worker_id", cfg->worker_id);
    member_str(w, "subsystem", a->subsystem);
    member_str(w, "action_type", a->action_type);
    member_str(w, "entity_id", a->entity_id);
    member_str(w, "topic", r->topic);
    member_int(w, "partition", r->partition);
    member_int(w, "offset", r->offset);
    if (r->reason) {
        member_str(w, "reason", r->reason);
    } else {
        member_int(w, "tier", r->tier);
        key(w, "tier1_eligible");
        put_cstr(w, r->tier1_eligible ? "true" : "false");
        member_int(w, "quiet_hours", cfg->tier1_quiet_hours);
        member_str(w, "field", a->field);
        json_t *value = ap_action_value(a);
        member_json(w, "value", value);
        json_decref(value);
        member_str(w, "target", r->target);
        member_str(w, "created_at", a->created_at);
        member_str(w, "run_id", a->run_id);
        if (r->attempt)
            member_int(w, "attempt", r->attempt);
        if (r->replay)
            put_cstr(w, ",\"replay\":true");
        member_json(w, "current", json_object_get(a->json, "current"));
        member_str(w, "revert_of", revert_of(a));
        if (r->wait) {
            put_cstr(w, ",\"wait\":{\"reason\":");
            put_str(w, r->wait);
            member_int(w, "ms", r->wait_ms);
            put_cstr(w, "}");
        }
        if (r->guarded) {
            put_cstr(w, ",\"guard\":{\"max_increase_pct\":");
            put_int(w, cfg->budget_max_increase_pct);
            member_int(w, "floor", cfg->budget_floor);
            member_str(w, "on_excess", cfg->budget_excess);
            put_cstr(w, "}");
        }
        member_json(w, "prepared", r->prepared);
        member_json(w, "http", r->http);
    }
    key(w, "payload");
    put(w, a->text, a->text_len);
    put_cstr(w, "}");
}

/* FNV-1a of kind and parts, each with its NUL: ("ab", "c") and ("a", "bc")
 * differ. 0 when a part is NULL (not known). */
static uint64_t parts_hash(int kind, const char *const *parts, int n) {
    uint64_t h = 14695981039346656037u ^ (uint64_t)kind;
    for (int i = 0; i < n; i++) {
        if (!parts[i])
            return 0;
        const unsigned char *c = (const unsigned char *)parts[i];
        do
            h = (h ^ *c) * 1099511628211u;
        while (*c++);
    }
    return h ? h : 1;
}

/* A set of hashes, open addressing; 0 marks a free slot. */
typedef struct hash_set {
    uint64_t *slots;
    size_t mask;
} hash_set;

/* The slot of h (not 0): the one holding it, or the free one it would take. */
static uint64_t *slot_of(const hash_set *set, uint64_t h) {
    size_t i = (size_t)h & set->mask;
    while (set->slots[i] && set->slots[i] != h)
        i = (i + 1) & set->mask;
    return &set->slots[i];
}

/* Adds h (0: not known); 1 when it was there already or is not known. */
static int set_add(hash_set *set, uint64_t h) {
    if (!h)
        return 1;
    uint64_t *slot = slot_of(set, h);
    int seen = *slot != 0;
    *slot = h;
    return seen;
}

/* 1 when h is there or is not known. */
static int set_has(const hash_set *set, uint64_t h) {
    return !h || *slot_of(set, h);
}

enum { KEY_ENTITY = 1, KEY_IDEMPOTENCY, KEY_ACTION, KEY_REVERTED };

/* Sets shared[k] for the records of recs[0..n) that ap_judge_batch must
 * leave to the general path: those with the entity, idempotency key or
 * action id of an earlier record, those an earlier revert names, and those
 * whose `current` is null (the judge cannot tell it from none). A hash
 * collision or a member not known marks a record shared too: that costs only
 * the general path's time. -1 when out of memory. */
static int mark_shared(ap_record *const *recs, int n, unsigned char *shared) {
    size_t cap = 16;
    while (cap < (size_t)n * 8) /* four keys a record, at most half full */
        cap *= 2;
    hash_set set = {calloc(cap, sizeof *set.slots), cap - 1};
    if (!set.slots)
        return -1;
    for (int k = 0; k < n; k++) {
        const ap_action *a = recs[k]->action;
        const char *entity[] = {a->tenant_id, a->subsystem, a->entity_id};
        const char *action[] = {a->tenant_id, a->action_id};
        const char *key[] = {a->idempotency_key};
        int seen = set_add(&set, parts_hash(KEY_ENTITY, entity, 3));
        seen |= set_add(&set, parts_hash(KEY_IDEMPOTENCY, key, 1));
        seen |= set_add(&set, parts_hash(KEY_ACTION, action, 2));
        seen |= set_has(&set, parts_hash(KEY_REVERTED, action, 2));
        seen |= !recs[k]->reason && json_is_null(json_object_get(a->json, "current"));
        shared[k] = (unsigned char)seen;
        const char *reverted[] = {a->tenant_id, recs[k]->reason ? NULL : revert_of(a)};
        if (reverted[1])
            set_add(&set, parts_hash(KEY_REVERTED, reverted, 2));
    }
    free(set.slots);
    return 0;
}

/* Writes recs[0..n) into the batch buffer as one JSON array (NUL-terminated).
 * -1 when out of memory. */
static int batch_text(ap_store *s, ap_record *const *recs, int n) {
    unsigned char *shared = malloc((size_t)n + 1);
    if (!shared || mark_shared(recs, n, shared)) {
        free(shared);
        return -1;
    }
    writer w = {&s->batch, 0};
    s->batch.len = 0;
    put_cstr(&w, "[");
    for (int k = 0; k < n; k++) {
        if (k)
            put_cstr(&w, ",");
        put_record(&w, s->cfg, recs[k], shared[k]);
    }
    put(&w, "]", 2); /* with the NUL */
    free(shared);
    return w.failed ? -1 : 0;
}

/* The record with this ord in recs[0..n), sorted by ord; NULL if none. */
static ap_record *record_of(ap_record *const *recs, int n, int ord) {
    for (int lo = 0, hi = n - 1; lo <= hi;) {
        int mid = lo + (hi - lo) / 2;
        if (recs[mid]->ord == ord)
            return recs[mid];
        if (recs[mid]->ord < ord)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

ap_status ap_store_record(ap_store *s, ap_record *const *recs, int n, char *err, size_t errsz) {
    ap_status st = store_connect(s, err, errsz);
    if (st)
        return st;
    if (batch_text(s, recs, n))
        return ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
    const char *params[1] = {s->batch.s};
    PGresult *res = PQexecParams(s->pg, "SELECT ord, outcome FROM ap_record_batch($1::jsonb)", 1,
                                 NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = ap_fail(AP_ERR_PG, err, errsz, "recording the batch failed: %s",
                     PQresultErrorMessage(res));
        if (PQstatus(s->pg) != CONNECTION_OK) {
            PQfinish(s->pg);
            s->pg = NULL;
        }
        goto out;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        ap_record *r = record_of(recs, n, atoi(PQgetvalue(res, row, 0)));
        if (r)
            snprintf(r->outcome, sizeof r->outcome, "%s", PQgetvalue(res, row, 1));
    }
out:
    PQclear(res);
    return st;
}

/* Runs a query whose one row, one column is a JSON array; returns it parsed. */
static json_t *query_json(ap_store *s, const char *sql, int nparams, const char *const *params,
                          const char *what, char *err, size_t errsz) {
    if (store_connect(s, err, errsz))
        return NULL;
    PGresult *res = PQexecParams(s->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    json_t *rows = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        ap_fail(AP_ERR_PG, err, errsz, "%s failed: %s", what, PQresultErrorMessage(res));
    else if (!(rows = json_loads(PQgetvalue(res, 0, 0), 0, NULL)))
        ap_fail(AP_ERR_PG, err, errsz, "%s: unreadable answer", what);
    PQclear(res);
    return rows;
}

json_t *ap_store_prepare(ap_store *s, ap_record *const *recs, int n, char *err, size_t errsz) {
    if (batch_text(s, recs, n)) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    const char *params[1] = {s->batch.s};
    return query_json(s,
                      "SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.ord), '[]') "
                      "FROM ap_prepare_batch($1::jsonb) p",
                      1, params, "preparing live requests", err, errsz);
}

json_t *ap_store_take_due(ap_store *s, int n, int lease_s, char *err, size_t errsz) {
    char limit[16], lease[16];
    snprintf(limit, sizeof limit, "%d", n);
    snprintf(lease, sizeof lease, "%d", lease_s);
    const char *params[2] = {limit, lease};
    return query_json(s,
                      "SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]') "
                      "FROM ap_take_due($1::int, $2::int) d",
                      2, params, "taking due actions", err, errsz);
}

ap_status ap_store_alert(ap_store *s, const char *kind, const char *tenant, const char *subsystem,
                         const char *message, char *err, size_t errsz) {
    ap_status st = store_connect(s, err, errsz);
    if (st)
        return st;
    const char *params[] = {kind, tenant, subsystem, message};
    PGresult *res = PQexecParams(s->pg,
                                 "INSERT INTO alerts (kind, tenant_id, subsystem, message) "
                                 "VALUES ($1, $2, $3, $4)",
                                 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        st = ap_fail(AP_ERR_PG, err, errsz, "recording an alert failed: %s",
                     PQresultErrorMessage(res));
    PQclear(res);
    return st;
}

ap_status ap_store_ping(ap_store *s, char *err, size_t errsz) {
    ap_status st = store_connect(s, err, errsz);
    if (st)
        return st;
    PGresult *res = PQexec(s->pg, "SELECT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = ap_fail(AP_ERR_PG, err, errsz, "postgres: %s", PQerrorMessage(s->pg));
        PQfinish(s->pg);
        s->pg = NULL;
    }
    PQclear(res);
    return st;
}

void ap_store_free(ap_store *s) {
    if (!s)
        return;
    PQfinish(s->pg);
    free(s->dsn);
    free(s->batch.s);
    free(s);
}
