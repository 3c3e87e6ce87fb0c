#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor_map.h"
#include "kafka_conf.h"
#include "log.h"
#include "pg.h"
#include "topics.h"

/* Key of the session advisory lock that serializes migrate runs ("actp"). */
#define MIGRATE_LOCK_KEY "1633907824"
#define ADMIN_TIMEOUT_MS 30000 /* CreateTopics: request and broker-side operation */
#define REACH_TIMEOUT_MS 10000 /* first metadata request: is any broker there */

/* One migration file, sql/NNN_name.sql. */
typedef struct migration {
    int version; /* NNN */
    char *file;  /* "001_actions.sql" */
    char *name;  /* "actions" */
} migration;

typedef struct migration_list {
    migration *items;
    int count;
} migration_list;

/* ---------------------------------------------------------------- postgres */

/* Notices ("relation already exists, skipping") are for debugging, not for
 * the terminal libpq would print them on. */
static void pg_notice(void *arg, const char *message) {
    (void)arg;
    char line[512];
    snprintf(line, sizeof line, "%s", message);
    ap_pg_one_line(line);
    ap_log(AP_LOG_DEBUG, "postgres notice", "notice", line, NULL);
}

/* The one-line message of a failed result (or of the connection). */
static const char *pg_error(PGconn *conn, const PGresult *res, char *buf, size_t size) {
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    snprintf(buf, size, "%s", primary ? primary : PQerrorMessage(conn));
    ap_pg_one_line(buf);
    return buf;
}

/* Runs one statement without parameters; AP_ERR_PG with err set ("what:
 * message") when it does not succeed. */
static ap_status pg_run(PGconn *conn, const char *sql, const char *what, char *err, size_t errsz) {
    PGresult *res = PQexec(conn, sql);
    ExecStatusType rs = PQresultStatus(res);
    ap_status st = AP_OK;
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
        char why[512];
        st = ap_fail(AP_ERR_PG, err, errsz, "%s: %s", what, pg_error(conn, res, why, sizeof why));
    }
    PQclear(res);
    return st;
}

/* ---------------------------------------------------------------- files */

static void migration_list_release(migration_list *list) {
    for (int i = 0; i < list->count; i++) {
        free(list->items[i].file);
        free(list->items[i].name);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static int migration_cmp(const void *a, const void *b) {
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Parses "NNN_name.sql" into version and name; 0 when the file is not one. */
static int migration_parse(const char *file, int *version, char **name) {
    size_t len = strlen(file);
    const char *p = file;
    long v = 0;
    if (len < 4 || strcmp(file + len - 4, ".sql"))
        return 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > INT_MAX)
            return 0;
    }
    if (p == file || *p != '_' || p + 1 >= file + len - 4)
        return 0;
    p++;
    *version = (int)v;
    *name = strndup(p, (size_t)(file + len - 4 - p));
    return *name != NULL;
}

/* Lists sql_dir's migrations sorted by version into list (the caller releases
 * it). A .sql file not named NNN_name.sql, or two files with one version, is an
 * error: either would be skipped or applied in an order nobody chose. */
static ap_status migrations_scan(const char *sql_dir, migration_list *list, char *err,
                                 size_t errsz) {
    ap_status st = AP_OK;
    DIR *dir = opendir(sql_dir);
    struct dirent *de;
    if (!dir)
        return ap_fail(AP_ERR_IO, err, errsz, "cannot open migrations folder '%s': %s", sql_dir,
                       strerror(errno));
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        migration m = {0};
        if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 4, ".sql"))
            continue;
        if (!migration_parse(de->d_name, &m.version, &m.name)) {
            st = ap_fail(AP_ERR_INVALID, err, errsz, "migration '%s/%s' is not named NNN_name.sql",
                         sql_dir, de->d_name);
            goto out;
        }
        migration *grown = realloc(list->items, (size_t)(list->count + 1) * sizeof *grown);
        if (!grown || !(m.file = strdup(de->d_name))) {
            if (grown)
                list->items = grown;
            free(m.name);
            st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
            goto out;
        }
        list->items = grown;
        list->items[list->count++] = m;
    }
    qsort(list->items, (size_t)list->count, sizeof *list->items, migration_cmp);
    for (int i = 1; i < list->count; i++)
        if (list->items[i].version == list->items[i - 1].version) {
            st = ap_fail(AP_ERR_INVALID, err, errsz, "migrations '%s' and '%s' share version %d",
                         list->items[i - 1].file, list->items[i].file, list->items[i].version);
            goto out;
        }
out:
    closedir(dir);
    return st;
}

/* Reads the whole file at path into *text (NUL-terminated; the caller frees). */
static ap_status file_read(const char *path, char **text, char *err, size_t errsz) {
    ap_status st = AP_OK;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ap_fail(AP_ERR_IO, err, errsz, "cannot read '%s': %s", path, strerror(errno));
    for (;;) {
        if (cap - len < 4096) {
            char *grown = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!grown) {
                st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
                goto out;
            }
            buf = grown;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        st = ap_fail(AP_ERR_IO, err, errsz, "cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    buf[len] = '\0';
    *text = buf;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return st;
}

/* The line of text holding character `position` (1-based, in characters as
 * Postgres counts them in an error's statement position; text is UTF-8). */
static int line_of(const char *text, long position) {
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        if (++chars >= position)
            break;
        if (*p == '\n')
            line++;
    }
    return line;
}

/* Applies one migration in its own transaction with its schema_migrations
 * row: either both are there afterwards or neither. */
static ap_status migration_apply(PGconn *conn, const char *sql_dir, const migration *m, char *err,
                                 size_t errsz) {
    ap_status st;
    char path[1024], version[16], why[512], where[32] = "";
    char *text = NULL;
    PGresult *res = NULL;
    int began = 0;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", sql_dir, m->file) >= sizeof path) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "path of migration '%s' is too long", m->file);
        goto out;
    }
    if ((st = file_read(path, &text, err, errsz)))
        goto out;
    if ((st = pg_run(conn, "BEGIN", "cannot begin a transaction", err, errsz)))
        goto out;
    began = 1;
    res = PQexec(conn, text);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
        PQresultStatus(res) != PGRES_EMPTY_QUERY) {
        const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
        if (pos)
            snprintf(where, sizeof where, ":%d", line_of(text, atol(pos)));
        st = ap_fail(AP_ERR_PG, err, errsz, "migration '%s%s' failed: %s", m->file, where,
                     pg_error(conn, res, why, sizeof why));
        goto out;
    }
    PQclear(res);
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[] = {version, m->name};
    res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        st = ap_fail(AP_ERR_PG, err, errsz, "cannot record migration '%s': %s", m->file,
                     pg_error(conn, res, why, sizeof why));
        goto out;
    }
    if ((st = pg_run(conn, "COMMIT", "cannot commit", err, errsz)))
        goto out;
    began = 0;
out:
    if (began) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
    PQclear(res);
    free(text);
    return st;
}

/* Version v's row in res (version, name), or -1. */
static int applied_row(const PGresult *res, int v) {
    for (int r = 0; r < PQntuples(res); r++)
        if (atoi(PQgetvalue(res, r, 0)) == v)
            return r;
    return -1;
}

ap_status ap_migrate_sql(const ap_config *cfg, FILE *out, char *err, size_t errsz) {
    ap_status st;
    char sql_dir[1024], why[512];
    migration_list list = {0};
    PGconn *conn = NULL;
    PGresult *applied = NULL;
    int done = 0, current = 0;

    ap_config_schema_path(cfg, "sql", sql_dir, sizeof sql_dir);
    if ((st = migrations_scan(sql_dir, &list, err, errsz)))
        goto out;
    if (!list.count) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "no migrations in '%s'", sql_dir);
        goto out;
    }
    if (!(conn = ap_pg_connect(cfg, &st, err, errsz)))
        goto out;
    PQsetNoticeProcessor(conn, pg_notice, NULL);
    /* Held for the session: released by PQfinish even when we fail. */
    if ((st = pg_run(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                     "cannot take the migration lock", err, errsz)))
        goto out;
    if ((st = pg_run(conn,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version integer PRIMARY KEY,"
                     " name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     "cannot create table 'schema_migrations'", err, errsz)))
        goto out;
    applied = PQexec(conn, "SELECT version, name FROM schema_migrations ORDER BY version");
    if (PQresultStatus(applied) != PGRES_TUPLES_OK) {
        st = ap_fail(AP_ERR_PG, err, errsz, "cannot read table 'schema_migrations': %s",
                     pg_error(conn, applied, why, sizeof why));
        goto out;
    }
    for (int i = 0; i < list.count; i++) {
        const migration *m = &list.items[i];
        int row = applied_row(applied, m->version);
        if (row >= 0) {
            if (strcmp(PQgetvalue(applied, row, 1), m->name))
                ap_log(AP_LOG_WARN, "migration applied under another name", "file", m->file,
                       "recorded_name", PQgetvalue(applied, row, 1), NULL);
            current++;
            continue;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if ((st = migration_apply(conn, sql_dir, m, err, errsz)))
            goto out;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(out, "applied %s (%ld ms)\n", m->file,
                (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
        done++;
    }
    fprintf(out, "migrations: %d applied, %d already current\n", done, current);
    for (int r = 0; r < PQntuples(applied); r++) {
        int v = atoi(PQgetvalue(applied, r, 0)), known = 0;
        for (int i = 0; i < list.count && !known; i++)
            known = list.items[i].version == v;
        if (!known)
            ap_log(AP_LOG_WARN, "database has a migration this release does not know", "version",
                   PQgetvalue(applied, r, 0), "name", PQgetvalue(applied, r, 1), NULL);
    }
out:
    PQclear(applied);
    PQfinish(conn);
    migration_list_release(&list);
    return st;
}

/* ---------------------------------------------------------------- kafka */

/* One metadata round trip (brokers only): fails fast with a clear message
 * when no broker answers, rather than after the admin request's timeout. */
static ap_status kafka_reach(rd_kafka_t *rk, const ap_config *cfg, char *err, size_t errsz) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, REACH_TIMEOUT_MS);
    if (e)
        return ap_fail(AP_ERR_IO, err, errsz, "cannot reach kafka at '%s': %s", cfg->brokers,
                       rd_kafka_err2str(e));
    rd_kafka_metadata_destroy(md);
    return AP_OK;
}

/* Appends a NewTopic named name to topics[*n]. */
static ap_status topic_add(rd_kafka_NewTopic_t **topics, int *n, const char *name, int partitions,
                           int replication_factor, char *err, size_t errsz) {
    char why[256];
    rd_kafka_NewTopic_t *t =
        rd_kafka_NewTopic_new(name, partitions, replication_factor, why, sizeof why);
    if (!t)
        return ap_fail(AP_ERR_INVALID, err, errsz, "topic '%s': %s", name, why);
    topics[(*n)++] = t;
    return AP_OK;
}

ap_status ap_migrate_topics(const ap_config *cfg, int replication_factor, FILE *out, char *err,
                            size_t errsz) {
    ap_status st = AP_OK;
    char path[1024], name[AP_TOPIC_MAX], why[512];
    ap_executor_map *map = NULL;
    rd_kafka_NewTopic_t **topics = NULL;
    int ntopics = 0, created = 0, present = 0, refused = 0;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;

    if (replication_factor < 1) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "replication factor %d is below 1",
                     replication_factor);
        goto out;
    }
    ap_config_schema_path(cfg, "executor_map.json", path, sizeof path);
    if (!(map = ap_executor_map_load(path, err, errsz))) {
        st = AP_ERR_INVALID;
        goto out;
    }
    int nsub = ap_executor_map_subsystem_count(map);
    if (!(topics = calloc((size_t)nsub * (2 + AP_RETRY_TOPICS), sizeof *topics))) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    for (int i = 0; i < nsub; i++) {
        const char *s = ap_executor_map_subsystem_at(map, i)->name;
        ap_topic_main(name, sizeof name, cfg->topic_prefix, s);
        if ((st = topic_add(topics, &ntopics, name, cfg->partitions, replication_factor, err,
                            errsz)))
            goto out;
        for (int n = 1; n <= AP_RETRY_TOPICS; n++) {
            ap_topic_retry(name, sizeof name, cfg->topic_prefix, s, n);
            if ((st = topic_add(topics, &ntopics, name, cfg->partitions, replication_factor, err,
                                errsz)))
                goto out;
        }
        ap_topic_dlq(name, sizeof name, cfg->topic_prefix, s);
        if ((st = topic_add(topics, &ntopics, name, cfg->partitions, replication_factor, err,
                            errsz)))
            goto out;
    }

    if (!(conf = ap_kafka_conf_new(cfg, NULL, err, errsz))) {
        st = AP_ERR_INVALID;
        goto out;
    }
    ap_kafka_conf_quiet(conf);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why))) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "cannot create a kafka client: %s", why);
        goto out;
    }
    conf = NULL; /* owned by rk now */
    if ((st = kafka_reach(rk, cfg, err, errsz)))
        goto out;

    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (rd_kafka_AdminOptions_set_request_timeout(opts, ADMIN_TIMEOUT_MS, why, sizeof why) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, ADMIN_TIMEOUT_MS, why, sizeof why)) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "cannot set the admin timeouts: %s", why);
        goto out;
    }
    queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, topics, (size_t)ntopics, opts, queue);
    if (!(ev = rd_kafka_queue_poll(queue, ADMIN_TIMEOUT_MS + 5000))) {
        st = ap_fail(AP_ERR_IO, err, errsz, "kafka at '%s' did not answer within %d s",
                     cfg->brokers, ADMIN_TIMEOUT_MS / 1000 + 5);
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    if (e) {
        int unreachable = e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT;
        st = ap_fail(unreachable ? AP_ERR_IO : AP_ERR_KAFKA, err, errsz, "cannot create topics: %s",
                     rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result(ev);
    size_t nres = 0;
    const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(result, &nres);
    for (size_t i = 0; i < nres; i++) {
        const char *topic = rd_kafka_topic_result_name(res[i]);
        rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[i]);
        if (te == RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(out, "created %s (%d partitions, replication factor %d)\n", topic,
                    cfg->partitions, replication_factor);
            created++;
        } else if (te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            present++;
        } else {
            const char *msg = rd_kafka_topic_result_error_string(res[i]);
            fprintf(out, "refused %s: %s\n", topic, msg && *msg ? msg : rd_kafka_err2str(te));
            refused++;
        }
    }
    fprintf(out, "topics: %d created, %d already present", created, present);
    if (refused)
        fprintf(out, ", %d refused", refused);
    fprintf(out, "\n");
    if (refused)
        st = ap_fail(AP_ERR_KAFKA, err, errsz, "kafka refused %d of %zu topics", refused, nres);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (queue)
        rd_kafka_queue_destroy(queue);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (topics)
        rd_kafka_NewTopic_destroy_array(topics, (size_t)ntopics);
    free(topics);
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    ap_executor_map_free(map);
    return st;
}
