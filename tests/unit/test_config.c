/* test_config.c — settings: defaults, ACTIONPOOL_* environment, flags (a
 * flag wins), bounds (the error names the setting), and the kafka.*
 * passthrough. Each test starts and ends with no ACTIONPOOL_* variable set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

extern char **environ;

/* How many strdup calls from now the failing one is; 0: none fails. */
static int strdup_fail_in;

/* strdup that can be made to fail. Defined in the test binary, it stands in
 * for the C library's everywhere in it, config.c included, so the tests can
 * run config.c out of memory at each of its copies. */
char *strdup(const char *s) {
    if (strdup_fail_in && --strdup_fail_in == 0)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    return copy ? memcpy(copy, s, n) : NULL;
}

/* Under AddressSanitizer: fails when memory has leaked so far (with LSan's
 * report on stderr). Elsewhere it cannot tell and holds. */
static int no_leaks(const char *file, int line) {
#if defined(__SANITIZE_ADDRESS__)
    return unit_check(file, line, __lsan_do_recoverable_leak_check() == 0,
                      "memory leaked (see LeakSanitizer's report)");
#else
    (void)file, (void)line;
    return 1;
#endif
}

#define NO_LEAKS() no_leaks(__FILE__, __LINE__)

/* Unsets every ACTIONPOOL_* variable (names first: unsetenv changes environ). */
static void clean_env(void) {
    char names[64][128];
    int n;
    do {
        n = 0;
        for (char **e = environ; *e && n < 64; e++) {
            if (strncmp(*e, "ACTIONPOOL_", 11))
                continue;
            size_t len = strcspn(*e, "=");
            if (len >= sizeof names[0])
                len = sizeof names[0] - 1;
            memcpy(names[n], *e, len);
            names[n++][len] = '\0';
        }
        for (int i = 0; i < n; i++)
            unsetenv(names[i]);
    } while (n == 64);
}

/* ap_config_init that must succeed; returns 0 when it did. */
static int init_ok(const char *file, int line, ap_config *cfg) {
    char err[256] = "";
    ap_status st = ap_config_init(cfg, err, sizeof err);
    if (!unit_check(file, line, st == AP_OK, "ap_config_init: %s", err)) {
        ap_config_release(cfg);
        return -1;
    }
    return 0;
}

#define INIT_OK(cfg) init_ok(__FILE__, __LINE__, cfg)

static const char *kafka_prop(const ap_config *cfg, const char *name) {
    for (int i = 0; i < cfg->kafka_count; i++)
        if (!strcmp(cfg->kafka[i].name, name))
            return cfg->kafka[i].value;
    return NULL;
}

static void config_defaults(void) {
    ap_config cfg;
    char want[64];
    clean_env();
    if (INIT_OK(&cfg))
        return;
    CHECK_STR_EQ(cfg.brokers, "127.0.0.1:9092");
    CHECK_STR_EQ(cfg.redis_host, "127.0.0.1");
    CHECK_INT_EQ(cfg.redis_port, 6379);
    CHECK_STR_EQ(cfg.pg_dsn, "host=127.0.0.1 port=5432 dbname=actionpool user=actionpool");
    CHECK_STR_EQ(cfg.schema_dir, "");
    CHECK_STR_EQ(cfg.topic_prefix, "actions");
    CHECK_STR_EQ(cfg.group_id, "actionpool-workers");
    CHECK_STR_EQ(cfg.subsystems, "campaigns,crm,pricing,routing,content");
    CHECK_INT_EQ(cfg.batch_size, 500);
    CHECK_INT_EQ(cfg.batch_ms, 50);
    CHECK_INT_EQ(cfg.partitions, 6);
    CHECK_INT_EQ(cfg.claim_lease_ms, 60000);
    CHECK_INT_EQ(cfg.done_ttl_s, 604800);
    CHECK_STR_EQ(cfg.log_level, "info");
    CHECK_INT_EQ(cfg.kafka_count, 0);
    /* worker_id defaults to host:pid. */
    snprintf(want, sizeof want, ":%d", (int)getpid());
    if (CHECK(cfg.worker_id != NULL) && CHECK(strlen(cfg.worker_id) > strlen(want)))
        CHECK_STR_EQ(cfg.worker_id + strlen(cfg.worker_id) - strlen(want), want);
    ap_config_release(&cfg);
    CHECK(cfg.brokers == NULL && cfg.kafka == NULL); /* released and zeroed */
    ap_config_release(&cfg);
    ap_config_release(NULL);
}

static void config_env_override(void) {
    ap_config cfg;
    clean_env();
    setenv("ACTIONPOOL_BATCH_SIZE", "42", 1);
    setenv("ACTIONPOOL_BROKERS", "kafka-1:9092,kafka-2:9092", 1);
    setenv("ACTIONPOOL_REDIS_PORT", "16379", 1);
    setenv("ACTIONPOOL_WORKER_ID", "worker-7", 1);
    setenv("ACTIONPOOL_SCHEMA_DIR", "/srv/actionpool/schemas", 1);
    setenv("ACTIONPOOL_LOG_LEVEL", "debug", 1);
    if (!INIT_OK(&cfg)) {
        CHECK_INT_EQ(cfg.batch_size, 42);
        CHECK_STR_EQ(cfg.brokers, "kafka-1:9092,kafka-2:9092");
        CHECK_INT_EQ(cfg.redis_port, 16379);
        CHECK_STR_EQ(cfg.worker_id, "worker-7");
        CHECK_STR_EQ(cfg.schema_dir, "/srv/actionpool/schemas");
        CHECK_STR_EQ(cfg.log_level, "debug");
        CHECK_INT_EQ(cfg.batch_ms, 50); /* the others keep their defaults */
        ap_config_release(&cfg);
    }
    clean_env();
}

static void config_env_kafka_passthrough(void) {
    ap_config cfg;
    clean_env();
    setenv("ACTIONPOOL_KAFKA_SECURITY_PROTOCOL", "ssl", 1);
    setenv("ACTIONPOOL_KAFKA_LINGER_MS", "5", 1);
    if (!INIT_OK(&cfg)) {
        CHECK_INT_EQ(cfg.kafka_count, 2);
        CHECK_STR_EQ(kafka_prop(&cfg, "security.protocol"), "ssl");
        CHECK_STR_EQ(kafka_prop(&cfg, "linger.ms"), "5");
        ap_config_release(&cfg);
    }
    clean_env();
}

/* Runs ap_config_flag over argv the way a main does: returns the number of
 * settings taken, -1 at the first error (err set); *rest gets the index of the
 * first argument that is not a setting. */
static int apply_flags(ap_config *cfg, int argc, char **argv, int *rest, char *err, size_t errsz) {
    int i = 0, taken = 0;
    while (i < argc) {
        int r = ap_config_flag(cfg, argc, argv, &i, err, errsz);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        taken++;
    }
    *rest = i;
    return taken;
}

static void config_flag_override(void) {
    ap_config cfg;
    char err[256] = "";
    char *argv[] = {"--batch-size=7",    "--redis-port",     "6380",
                    "--topic-prefix=t1", "--log_level=warn", "input.json",
                    "--brokers=ignored"};
    int rest = -1;
    clean_env();
    setenv("ACTIONPOOL_BATCH_SIZE", "42", 1);
    setenv("ACTIONPOOL_REDIS_PORT", "16379", 1);
    if (INIT_OK(&cfg))
        goto out;
    CHECK_INT_EQ(cfg.batch_size, 42);
    CHECK_INT_EQ(apply_flags(&cfg, 7, argv, &rest, err, sizeof err), 4);
    CHECK_INT_EQ(rest, 5);           /* stopped at input.json, past "6380" */
    CHECK_INT_EQ(cfg.batch_size, 7); /* the flag wins over the environment */
    CHECK_INT_EQ(cfg.redis_port, 6380);
    CHECK_STR_EQ(cfg.topic_prefix, "t1");
    CHECK_STR_EQ(cfg.log_level, "warn");
    CHECK_STR_EQ(cfg.brokers, "127.0.0.1:9092");
    /* The last of a repeated flag wins. */
    char *again[] = {"--batch-size=8", "--batch-size", "9"};
    CHECK_INT_EQ(apply_flags(&cfg, 3, again, &rest, err, sizeof err), 2);
    CHECK_INT_EQ(cfg.batch_size, 9);
    ap_config_release(&cfg);
out:
    clean_env();
}

static void config_flag_kafka_passthrough(void) {
    ap_config cfg;
    char err[256] = "";
    char *argv[] = {"--kafka.linger.ms=5", "--kafka.acks", "all", "--kafka.sasl.password=a=b",
                    "--batch-size=3"};
    int rest = -1;
    clean_env();
    setenv("ACTIONPOOL_KAFKA_CLIENT_ID", "from-env", 1);
    if (INIT_OK(&cfg))
        goto out;
    CHECK_INT_EQ(apply_flags(&cfg, 5, argv, &rest, err, sizeof err), 4);
    CHECK_INT_EQ(rest, 5);
    if (CHECK_INT_EQ(cfg.kafka_count, 4)) {
        /* Environment first, then flags in the order given. */
        CHECK_STR_EQ(cfg.kafka[0].name, "client.id");
        CHECK_STR_EQ(cfg.kafka[1].name, "linger.ms");
        CHECK_STR_EQ(cfg.kafka[1].value, "5");
        CHECK_STR_EQ(cfg.kafka[2].name, "acks");
        CHECK_STR_EQ(cfg.kafka[2].value, "all");
        CHECK_STR_EQ(cfg.kafka[3].name, "sasl.password");
        CHECK_STR_EQ(cfg.kafka[3].value, "a=b"); /* split at the first '=' */
    }
    CHECK_INT_EQ(cfg.batch_size, 3);
    ap_config_release(&cfg);
out:
    clean_env();
}

static void config_not_a_setting(void) {
    ap_config cfg;
    char err[256] = "";
    char *argv[] = {"--help", "-v", "input.json", "--unknown=1", "--", "--batch-size-x=1"};
    clean_env();
    if (INIT_OK(&cfg))
        return;
    for (int k = 0; k < 6; k++) {
        int i = k;
        unit_check(__FILE__, __LINE__, ap_config_flag(&cfg, 6, argv, &i, err, sizeof err) == 0,
                   "'%s' taken as a setting", argv[k]);
        unit_check(__FILE__, __LINE__, i == k, "'%s' moved the index", argv[k]);
    }
    CHECK_INT_EQ(cfg.batch_size, 500);
    ap_config_release(&cfg);
}

/* ap_config_init with one variable set fails naming it and saying `want`. */
static void env_error_at(const char *file, int line, const char *name, const char *value,
                         const char *want) {
    ap_config cfg;
    char err[256] = "";
    clean_env();
    setenv(name, value, 1);
    ap_status st = ap_config_init(&cfg, err, sizeof err);
    unit_check(file, line, st == AP_ERR_INVALID, "%s=%s: status %d", name, value, st);
    unit_check(file, line, strstr(err, name) != NULL, "%s=%s: error does not name it: %s", name,
               value, err);
    unit_check(file, line, strstr(err, want) != NULL, "%s=%s: error does not say '%s': %s", name,
               value, want, err);
    ap_config_release(&cfg);
    clean_env();
}

#define ENV_ERROR(name, value, want) env_error_at(__FILE__, __LINE__, name, value, want)

static void config_env_out_of_range(void) {
    ENV_ERROR("ACTIONPOOL_BATCH_SIZE", "0", "0 is out of range 1..100000");
    ENV_ERROR("ACTIONPOOL_BATCH_SIZE", "100001", "out of range");
    ENV_ERROR("ACTIONPOOL_REDIS_PORT", "65536", "out of range 1..65535");
    ENV_ERROR("ACTIONPOOL_REDIS_PORT", "-1", "out of range");
    ENV_ERROR("ACTIONPOOL_BATCH_MS", "60001", "out of range 1..60000");
    ENV_ERROR("ACTIONPOOL_PARTITIONS", "1001", "out of range 1..1000");
    ENV_ERROR("ACTIONPOOL_CLAIM_LEASE_MS", "99", "out of range 100..86400000");
    ENV_ERROR("ACTIONPOOL_DONE_TTL_S", "2147483648", "out of range");
    ENV_ERROR("ACTIONPOOL_DONE_TTL_S", "0", "out of range");
    /* Not integers. */
    ENV_ERROR("ACTIONPOOL_BATCH_MS", "abc", "cannot parse 'abc'");
    ENV_ERROR("ACTIONPOOL_BATCH_MS", "12x", "cannot parse '12x'");
    ENV_ERROR("ACTIONPOOL_BATCH_MS", "", "cannot parse");
    ENV_ERROR("ACTIONPOOL_BATCH_MS", "1.5", "cannot parse");
    ENV_ERROR("ACTIONPOOL_BATCH_MS", "99999999999999999999999", "cannot parse");
}

static void config_bounds_are_inclusive(void) {
    ap_config cfg;
    char err[256] = "";
    char *argv[] = {"--batch-size=1", "--batch-ms=60000",          "--redis-port=65535",
                    "--partitions=1", "--claim-lease-ms=86400000", "--done-ttl-s=2147483647",
                    "--batch-ms=1"};
    int rest = -1;
    clean_env();
    setenv("ACTIONPOOL_BATCH_SIZE", "100000", 1);
    if (INIT_OK(&cfg))
        goto out;
    CHECK_INT_EQ(cfg.batch_size, 100000);
    CHECK_INT_EQ(apply_flags(&cfg, 7, argv, &rest, err, sizeof err), 7);
    CHECK_INT_EQ(cfg.batch_size, 1);
    CHECK_INT_EQ(cfg.redis_port, 65535);
    CHECK_INT_EQ(cfg.partitions, 1);
    CHECK_INT_EQ(cfg.claim_lease_ms, 86400000);
    CHECK_INT_EQ(cfg.done_ttl_s, 2147483647);
    CHECK_INT_EQ(cfg.batch_ms, 1);
    ap_config_release(&cfg);
out:
    clean_env();
}

/* One flag that must be refused with an error saying each of want1, want2. */
static void flag_error_at(const char *file, int line, ap_config *cfg, int argc, char **argv,
                          const char *want1, const char *want2) {
    char err[256] = "";
    int i = 0;
    int r = ap_config_flag(cfg, argc, argv, &i, err, sizeof err);
    unit_check(file, line, r == -1, "%s: returned %d", argv[0], r);
    unit_check(file, line, i == 0, "%s: moved the index", argv[0]);
    unit_check(file, line, strstr(err, want1) && strstr(err, want2),
               "%s: error does not say '%s' and '%s': %s", argv[0], want1, want2, err);
}

#define FLAG_ERROR(cfg, want1, want2, ...)                                                         \
    do {                                                                                           \
        char *argv_[] = {__VA_ARGS__};                                                             \
        flag_error_at(__FILE__, __LINE__, cfg, (int)(sizeof argv_ / sizeof argv_[0]), argv_,       \
                      want1, want2);                                                               \
    } while (0)

static void config_flag_out_of_range(void) {
    ap_config cfg;
    clean_env();
    if (INIT_OK(&cfg))
        return;
    FLAG_ERROR(&cfg, "--batch-size", "0 is out of range 1..100000", "--batch-size=0");
    FLAG_ERROR(&cfg, "--redis-port", "70000 is out of range 1..65535", "--redis-port=70000");
    FLAG_ERROR(&cfg, "--redis-port", "out of range", "--redis-port", "70000");
    FLAG_ERROR(&cfg, "--partitions", "cannot parse 'six'", "--partitions=six");
    FLAG_ERROR(&cfg, "--batch-ms", "cannot parse ''", "--batch-ms=");
    FLAG_ERROR(&cfg, "--batch-size", "needs a value", "--batch-size");
    FLAG_ERROR(&cfg, "--kafka.acks", "needs a value", "--kafka.acks");
    /* A refused value changes nothing. */
    CHECK_INT_EQ(cfg.batch_size, 500);
    CHECK_INT_EQ(cfg.redis_port, 6379);
    CHECK_INT_EQ(cfg.partitions, 6);
    CHECK_INT_EQ(cfg.kafka_count, 0);
    ap_config_release(&cfg);
}

static void config_schema_path(void) {
    ap_config cfg;
    char path[1200];
    char *argv[] = {"--schema-dir=/srv/schemas"};
    char err[256];
    int i = 0;
    clean_env();
    if (INIT_OK(&cfg))
        return;
    /* Unset: ../schemas beside the running binary. */
    ap_config_schema_path(&cfg, "executor_map.json", path, sizeof path);
    CHECK(path[0] == '/');
    CHECK_STR_CONTAINS(path, "/../schemas/executor_map.json");
    CHECK_INT_EQ(ap_config_flag(&cfg, 1, argv, &i, err, sizeof err), 1);
    ap_config_schema_path(&cfg, "executor_map.json", path, sizeof path);
    CHECK_STR_EQ(path, "/srv/schemas/executor_map.json");
    ap_config_release(&cfg);
}

/* ap_config_usage(program) into buf. */
static void usage_of(unsigned program, char *buf, size_t size) {
    FILE *out = tmpfile();
    size_t n = 0;
    if (CHECK(out != NULL)) {
        ap_config_usage(out, program);
        rewind(out);
        n = fread(buf, 1, size - 1, out);
        fclose(out);
    }
    buf[n] = '\0';
}

/* Out of memory at every copy ap_config_init makes: it fails saying so,
 * leaves cfg empty and keeps nothing. */
static void config_init_out_of_memory(void) {
    ap_config cfg;
    char err[256];
    int copies = 0;
    clean_env();
    setenv("ACTIONPOOL_BROKERS", "kafka-1:9092", 1);
    setenv("ACTIONPOOL_KAFKA_CLIENT_ID", "c-1", 1);
    setenv("ACTIONPOOL_KAFKA_LINGER_MS", "5", 1);
    for (int n = 1; n < 100; n++) {
        err[0] = '\0';
        strdup_fail_in = n;
        ap_status st = ap_config_init(&cfg, err, sizeof err);
        int failed = strdup_fail_in == 0; /* the n-th copy was reached */
        strdup_fail_in = 0;
        if (!failed) {
            CHECK_INT_EQ(st, AP_OK);
            ap_config_release(&cfg);
            copies = n - 1;
            break;
        }
        unit_check(__FILE__, __LINE__, st == AP_ERR_NOMEM, "copy %d: status %d", n, st);
        CHECK_STR_EQ(err, "out of memory");
        unit_check(__FILE__, __LINE__,
                   !cfg.brokers && !cfg.worker_id && !cfg.kafka && !cfg.kafka_count,
                   "copy %d: cfg is not left empty", n);
        ap_config_release(&cfg); /* as the programs do: harmless on an empty cfg */
    }
    /* Every string setting but worker_id from its default, brokers again from
     * the environment, then worker_id, then two properties of two strings. */
    CHECK(copies > 10);
    NO_LEAKS();
    clean_env();
}

/* Out of memory in a flag: refused with "out of memory", the old value and
 * the properties kept, nothing leaked. */
static void config_flag_out_of_memory(void) {
    ap_config cfg;
    char err[256];
    clean_env();
    if (INIT_OK(&cfg))
        return;
    for (int n = 1; n <= 2; n++) { /* the name, then the value of a property */
        char *argv[] = {"--kafka.linger.ms=5"};
        int i = 0;
        err[0] = '\0';
        strdup_fail_in = n;
        int r = ap_config_flag(&cfg, 1, argv, &i, err, sizeof err);
        strdup_fail_in = 0;
        CHECK_INT_EQ(r, -1);
        CHECK_INT_EQ(i, 0);
        CHECK_STR_EQ(err, "out of memory");
        CHECK_INT_EQ(cfg.kafka_count, 0);
    }
    char *argv[] = {"--brokers=kafka-9:9092"};
    int i = 0;
    strdup_fail_in = 1;
    CHECK_INT_EQ(ap_config_flag(&cfg, 1, argv, &i, err, sizeof err), -1);
    strdup_fail_in = 0;
    CHECK_STR_EQ(err, "out of memory");
    CHECK_STR_EQ(cfg.brokers, "127.0.0.1:9092");
    /* The next property still goes in at the first place. */
    char *ok[] = {"--kafka.acks=all"};
    i = 0;
    CHECK_INT_EQ(ap_config_flag(&cfg, 1, ok, &i, err, sizeof err), 1);
    if (CHECK_INT_EQ(cfg.kafka_count, 1))
        CHECK_STR_EQ(cfg.kafka[0].name, "acks");
    ap_config_release(&cfg);
    NO_LEAKS();
}

/* The line of `flag` in buf ("" when absent) into line. */
static void usage_line(const char *buf, const char *flag, char *line, size_t size) {
    char want[64];
    snprintf(want, sizeof want, "  %s ", flag);
    const char *at = strstr(buf, want);
    size_t n = at ? strcspn(at, "\n") : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(line, at, n);
    line[n] = '\0';
}

static int occurrences(const char *s, const char *needle) {
    int n = 0;
    for (; (s = strstr(s, needle)); s++)
        n++;
    return n;
}

static void config_usage_defaults(void) {
    char buf[8192], line[512];
    usage_of(AP_PROG_ALL, buf, sizeof buf);
    /* One default per line, the computed ones said in words. */
    for (const char *l = buf; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != '\0')) {
        size_t n = strcspn(l, "\n");
        n = n < sizeof line ? n : sizeof line - 1;
        memcpy(line, l, n);
        line[n] = '\0';
        unit_check(__FILE__, __LINE__, occurrences(line, "(default") <= 1,
                   "more than one default: %s", line);
    }
    usage_line(buf, "--schema-dir", line, sizeof line);
    CHECK_STR_CONTAINS(line, "(default: ../schemas beside the binary)");
    CHECK_INT_EQ(occurrences(line, "(default"), 1);
    usage_line(buf, "--worker-id", line, sizeof line);
    CHECK_STR_CONTAINS(line, "(default: host:pid)");
    CHECK_INT_EQ(occurrences(line, "(default"), 1);
    usage_line(buf, "--batch-size", line, sizeof line);
    CHECK_STR_CONTAINS(line, "(default: 500)");
}

static void config_usage(void) {
    char buf[8192];
    usage_of(AP_PROG_WORKER, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "--batch-size");
    CHECK_STR_CONTAINS(buf, "ACTIONPOOL_BATCH_SIZE");
    CHECK_STR_CONTAINS(buf, "(default: 500)");
    CHECK_STR_CONTAINS(buf, "--claim-lease-ms");
    CHECK_STR_CONTAINS(buf, "--kafka.<property>");
    CHECK(strstr(buf, "--partitions") == NULL);
    usage_of(AP_PROG_PRODUCER, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "--brokers");
    CHECK(strstr(buf, "--batch-size") == NULL);
    CHECK(strstr(buf, "--redis-host") == NULL);
    usage_of(AP_PROG_CTL, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "--partitions");
    CHECK_STR_CONTAINS(buf, "ACTIONPOOL_PG_DSN");
    /* ctl reads the workers' group (lag), Redis and Postgres too. */
    CHECK_STR_CONTAINS(buf, "--group-id");
    CHECK_STR_CONTAINS(buf, "--redis-host");
    CHECK_STR_CONTAINS(buf, "--redis-port");
    CHECK_STR_CONTAINS(buf, "--pg-dsn");
    CHECK(strstr(buf, "--batch-size") == NULL);
    usage_of(AP_PROG_PRODUCER, buf, sizeof buf);
    CHECK(strstr(buf, "--group-id") == NULL);
}

const unit_test unit_config_tests[] = {
    UNIT_TEST(config_defaults),
    UNIT_TEST(config_env_override),
    UNIT_TEST(config_env_kafka_passthrough),
    UNIT_TEST(config_flag_override),
    UNIT_TEST(config_flag_kafka_passthrough),
    UNIT_TEST(config_not_a_setting),
    UNIT_TEST(config_env_out_of_range),
    UNIT_TEST(config_bounds_are_inclusive),
    UNIT_TEST(config_flag_out_of_range),
    UNIT_TEST(config_schema_path),
    UNIT_TEST(config_usage),
    UNIT_TEST(config_usage_defaults),
    UNIT_TEST(config_init_out_of_memory),
    UNIT_TEST(config_flag_out_of_memory),
    {0},
};
