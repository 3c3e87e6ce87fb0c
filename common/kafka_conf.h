/* kafka_conf.h — librdkafka configuration from the settings. */
#ifndef AP_KAFKA_CONF_H
#define AP_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>

#include "config.h"

/* A new conf with bootstrap.servers, JSON logging, then `defaults` (a
 * NULL-terminated list of name, value pairs; may be NULL), then every kafka.*
 * property of cfg, so an operator can override a default. Returns NULL with
 * err set naming the property librdkafka refused. The caller owns the conf
 * until it hands it to rd_kafka_new. */
rd_kafka_conf_t *ap_kafka_conf_new(const ap_config *cfg, const char *const *defaults, char *err,
                                   size_t errsz);

/* For commands that report a failure once themselves: librdkafka's
 * connection failures are logged at debug level only. */
void ap_kafka_conf_quiet(rd_kafka_conf_t *conf);

/* Sets one property; returns -1 with err set naming it. */
int ap_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t errsz);

#endif
