#include "revert.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "action.h"
#include "executor_map.h"
#include "log.h"
#include "pg.h"
#include "publisher.h"
#include "topics.h"
#include "validate.h"

#define REVERT_ID_KEEP 48 /* bytes of the reverted id kept in the new action_id */

/* The action (one row per tenant that has it), its latest successful apply
 * execution, and what its field holds now. */
static const char lookup_sql[] =
    "SELECT a.tenant_id, a.subsystem, a.entity_id, a.status, coalesce(a.status_reason, ''),"
    "       e.id IS NOT NULL, e.rollback_data->>'field', e.rolled_back_by,"
    "       s.tenant_id IS NOT NULL, s.set_by_action = a.id, s.value::text, b.action_id"
    "  FROM actions a"
    "  LEFT JOIN LATERAL (SELECT x.id, x.rollback_data, x.rolled_back_by FROM executions x"
    "                      WHERE x.action_pk = a.id AND x.success AND x.mode = 'apply'"
    "                      ORDER BY x.id DESC LIMIT 1) e ON true"
    "  LEFT JOIN entity_state s ON s.tenant_id = a.tenant_id AND s.subsystem = a.subsystem"
    "        AND s.entity_id = a.entity_id AND s.field = e.rollback_data->>'field'"
    "  LEFT JOIN actions b ON b.id = s.set_by_action"
    " WHERE a.action_id = $1 AND ($2::text IS NULL OR a.tenant_id = $2)"
    " ORDER BY a.tenant_id";
enum {
    COL_TENANT,
    COL_SUBSYSTEM,
    COL_ENTITY,
    COL_STATUS,
    COL_STATUS_REASON,
    COL_EXECUTED,
    COL_FIELD,
    COL_ROLLED_BACK_BY,
    COL_HAS_STATE,
    COL_LATEST,
    COL_STATE_VALUE,
    COL_SET_BY
};

/* Whether JSON text `written` means the same jsonb as `stored`. */
static const char same_sql[] = "SELECT $1::jsonb = $2::jsonb";

/* 8 hex digits, different for every call of every process. */
static void unique_suffix(char *buf, size_t size) {
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^ (uint32_t)getpid();
    }
    if (fd >= 0)
        close(fd);
    snprintf(buf, size, "%08x", (unsigned)v);
}

static void now_rfc3339(char *buf, size_t size) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "action 'X' of tenant 'T'" */
static void action_name(char *buf, size_t size, const char *id, const char *tenant) {
    snprintf(buf, size, "action '%s' of tenant '%s'", id, tenant);
}

/* Sets why when the action of row r cannot be reverted; returns 1 then. */
static int refuse(const PGresult *res, int r, const char *id, char *why, size_t whysz) {
    char name[256];
    const char *status = PQgetvalue(res, r, COL_STATUS);
    action_name(name, sizeof name, id, PQgetvalue(res, r, COL_TENANT));
    if (!strcmp(status, "rolled_back")) {
        const char *by = PQgetvalue(res, r, COL_ROLLED_BACK_BY);
        snprintf(why, whysz, "%s is already rolled back%s%s%s", name, *by ? " (by '" : "", by,
                 *by ? "')" : "");
        return 1;
    }
    if (strcmp(PQgetvalue(res, r, COL_EXECUTED), "t")) {
        const char *reason = PQgetvalue(res, r, COL_STATUS_REASON);
        snprintf(why, whysz,
                 "%s was never executed (status %s%s%.300s): there is nothing to restore", name,
                 status, *reason ? ": " : "", reason);
        return 1;
    }
    if (PQgetisnull(res, r, COL_FIELD)) {
        snprintf(why, whysz, "%s has no rollback data", name);
        return 1;
    }
    const char *field = PQgetvalue(res, r, COL_FIELD);
    if (strcmp(PQgetvalue(res, r, COL_HAS_STATE), "t")) {
        snprintf(why, whysz,
                 "%s is no longer the latest change of %s '%s' %s: the field has been removed "
                 "since",
                 name, PQgetvalue(res, r, COL_SUBSYSTEM), PQgetvalue(res, r, COL_ENTITY), field);
        return 1;
    }
    if (strcmp(PQgetvalue(res, r, COL_LATEST), "t")) {
        const char *by =
            PQgetisnull(res, r, COL_SET_BY) ? "(unknown)" : PQgetvalue(res, r, COL_SET_BY);
        snprintf(why, whysz,
                 "%s is no longer the latest change of %s '%s' %s: action '%s' changed it since "
                 "(revert that one first)",
                 name, PQgetvalue(res, r, COL_SUBSYSTEM), PQgetvalue(res, r, COL_ENTITY), field,
                 by);
        return 1;
    }
    return 0;
}

/* The field's value now, for the revert's `current`, when JSON carries it
 * exactly; NULL otherwise (or when out of memory). */
static json_t *exact_current(PGconn *conn, const char *stored) {
    json_t *value = json_loads(stored, JSON_DECODE_ANY, NULL);
    char *written = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *params[] = {written, stored};
    char ignored[64];
    PGresult *res =
        written ? ap_pg_query(conn, same_sql, 2, params, "compare", ignored, sizeof ignored) : NULL;
    if (!res || PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t")) {
        ap_log(AP_LOG_DEBUG, "revert without current: the value does not survive JSON exactly",
               "value", stored, NULL);
        json_decref(value);
        value = NULL;
    }
    PQclear(res);
    free(written);
    return value;
}

ap_status ap_revert_build(const ap_config *cfg, const ap_revert_request *req, json_t **action,
                          char *why, size_t whysz, char *err, size_t errsz) {
    ap_status st = AP_OK;
    PGresult *res = NULL;
    PGconn *conn = NULL;
    const char *const params[] = {req->action_id, req->tenant};

    *action = NULL;
    why[0] = '\0';
    if (!(conn = ap_pg_connect(cfg, &st, err, errsz)))
        goto out;
    if (!(res =
              ap_pg_query(conn, lookup_sql, 2, params, "cannot look the action up", err, errsz))) {
        st = AP_ERR_PG;
        goto out;
    }
    int rows = PQntuples(res);
    if (!rows) {
        if (req->tenant)
            snprintf(why, whysz, "no action '%s' of tenant '%s' was recorded", req->action_id,
                     req->tenant);
        else
            snprintf(why, whysz, "no action '%s' was recorded", req->action_id);
        goto out;
    }
    if (rows > 1) {
        size_t n = (size_t)snprintf(why, whysz, "action '%s' exists for %d tenants (",
                                    req->action_id, rows);
        for (int r = 0; r < rows && n < whysz; r++)
            n += (size_t)snprintf(why + n, whysz - n, "%s%s", r ? ", " : "",
                                  PQgetvalue(res, r, COL_TENANT));
        if (n < whysz)
            snprintf(why + n, whysz - n, "): say which with --tenant");
        goto out;
    }
    if (refuse(res, 0, req->action_id, why, whysz))
        goto out;

    char new_id[AP_ID_MAX + 1], suffix[9], created[32], key[AP_KEY_MAX];
    unique_suffix(suffix, sizeof suffix);
    snprintf(new_id, sizeof new_id, "revert-%.*s-%s", REVERT_ID_KEEP, req->action_id, suffix);
    snprintf(key, sizeof key, "revert:%s", req->action_id);
    now_rfc3339(created, sizeof created);
    json_t *a = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:s, s:s}", "action_id", new_id, "tenant_id",
        PQgetvalue(res, 0, COL_TENANT), "owner_subsystem", PQgetvalue(res, 0, COL_SUBSYSTEM),
        "action_type", "revert", "entity_id", PQgetvalue(res, 0, COL_ENTITY), "revert_of",
        req->action_id, "proposed_change", "field", PQgetvalue(res, 0, COL_FIELD), "created_at",
        created, "reason", req->reason ? req->reason : "reverted with actionpool-ctl",
        "idempotency_key", key);
    if (!a) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    json_t *current = exact_current(conn, PQgetvalue(res, 0, COL_STATE_VALUE));
    if (current)
        json_object_set_new(a, "current", current);
    *action = a;
out:
    PQclear(res);
    PQfinish(conn);
    return st;
}

/* Delivery of the one message. */
typedef struct delivery {
    int reported;
    char error[256];
} delivery;

static void on_delivery(void *ctx, void *opaque, const char *error) {
    (void)opaque;
    delivery *d = ctx;
    d->reported = 1;
    if (error)
        snprintf(d->error, sizeof d->error, "%s", error);
}

ap_status ap_revert_publish(const ap_config *cfg, json_t *action, char *err, size_t errsz) {
    ap_status st = AP_OK;
    char path[1024], today[11], topic[AP_TOPIC_MAX], why[1024];
    ap_executor_map *map = NULL;
    ap_publisher *pub = NULL;
    ap_action a = {0};
    char *payload = NULL;
    delivery d = {0};
    ap_verdict verdict;

    ap_config_schema_path(cfg, "executor_map.json", path, sizeof path);
    if (!(map = ap_executor_map_load(path, err, errsz))) {
        st = AP_ERR_INVALID;
        goto out;
    }
    ap_today_utc(today);
    if (ap_validate(map, action, today, &verdict)) {
        ap_verdict_format(&verdict, why, sizeof why);
        st = ap_fail(AP_ERR_INVALID, err, errsz, "the executor map refuses the revert action: %s",
                     why);
        goto out;
    }
    if ((st = ap_action_from_json(&a, json_incref(action), err, errsz)))
        goto out;
    if (!(payload = json_dumps(action, JSON_COMPACT))) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    if (!(pub = ap_publisher_new(cfg, on_delivery, &d, err, errsz))) {
        st = AP_ERR_KAFKA;
        goto out;
    }
    ap_topic_main(topic, sizeof topic, cfg->topic_prefix, a.subsystem);
    if ((st = ap_publisher_send(pub, topic, a.partition_key, payload, strlen(payload), NULL, NULL,
                                err, errsz)))
        goto out;
    if (ap_publisher_flush(pub, 30000) || !d.reported) {
        st = ap_fail(AP_ERR_KAFKA, err, errsz,
                     "revert action '%s' not delivered to '%s' within 30 s", a.action_id, topic);
        goto out;
    }
    if (*d.error) {
        st = ap_fail(AP_ERR_KAFKA, err, errsz, "revert action '%s' not delivered to '%s': %s",
                     a.action_id, topic, d.error);
        goto out;
    }
    ap_log(AP_LOG_INFO, "revert published", "action_id", a.action_id, "tenant_id", a.tenant_id,
           "revert_of", json_string_value(json_object_get(action, "revert_of")), "topic", topic,
           NULL);
out:
    ap_publisher_free(pub);
    free(payload);
    ap_action_release(&a);
    ap_executor_map_free(map);
    return st;
}
