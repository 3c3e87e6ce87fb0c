#include "kafka_conf.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    ap_log(level <= 3   ? AP_LOG_ERROR
           : level <= 5 ? AP_LOG_WARN
                        : AP_LOG_DEBUG,
           buf, "facility", fac, "source", "librdkafka", NULL);
}

/* librdkafka's connection failures ("FAIL", "ERROR": refused, all brokers
 * down) repeat, line after line, what the one-line error of a command says
 * once: they are kept for --log-level debug. Other warnings stay. */
static void kafka_log_quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    int noise = !strcmp(fac, "FAIL") || !strcmp(fac, "ERROR");
    ap_log(!noise && level <= 4 ? AP_LOG_WARN : AP_LOG_DEBUG, buf, "facility", fac, "source",
           "librdkafka", NULL);
}

void ap_kafka_conf_quiet(rd_kafka_conf_t *conf) {
    rd_kafka_conf_set_log_cb(conf, kafka_log_quiet);
}

int ap_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t errsz) {
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errsz, "kafka.%s: %s", name, why);
    return -1;
}

rd_kafka_conf_t *ap_kafka_conf_new(const ap_config *cfg, const char *const *defaults, char *err,
                                   size_t errsz) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    if (ap_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, err, errsz))
        goto fail;
    for (; defaults && defaults[0]; defaults += 2)
        if (ap_kafka_conf_set(conf, defaults[0], defaults[1], err, errsz))
            goto fail;
    for (int i = 0; i < cfg->kafka_count; i++)
        if (ap_kafka_conf_set(conf, cfg->kafka[i].name, cfg->kafka[i].value, err, errsz))
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
