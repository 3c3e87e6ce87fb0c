#include "publisher.h"

#include <stdlib.h>
#include <string.h>

#include "kafka_conf.h"
#include "log.h"

struct ap_publisher {
    rd_kafka_t *rk;
    ap_delivery_fn on_delivery;
    void *ctx;
};

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    ap_publisher *p = opaque;
    if (p->on_delivery)
        p->on_delivery(p->ctx, m->_private, m->err ? rd_kafka_err2str(m->err) : NULL);
}

ap_publisher *ap_publisher_new(const ap_config *cfg, ap_delivery_fn on_delivery, void *ctx,
                               char *err, size_t errsz) {
    static const char *const defaults[] = {
        "enable.idempotence",
        "true", /* implies acks=all and ordered, gap-less retries */
        "acks",
        "all",
        "linger.ms",
        "20", /* fuller produce requests for the broker; a kernel output is one burst */
        "compression.type",
        "lz4",
        "message.timeout.ms",
        "30000",
        NULL,
    };
    ap_publisher *p = calloc(1, sizeof *p);
    if (!p) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    p->on_delivery = on_delivery;
    p->ctx = ctx;
    rd_kafka_conf_t *conf = ap_kafka_conf_new(cfg, defaults, err, errsz);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errsz);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    return p;
fail:
    free(p);
    return NULL;
}

ap_status ap_publisher_send(ap_publisher *p, const char *topic, const char *key,
                            const void *payload, size_t len, rd_kafka_headers_t *headers,
                            void *opaque, char *err, size_t errsz) {
    rd_kafka_vu_t args[6] = {
        {.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = topic},
        {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {(void *)payload, len}},
        {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
        {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = opaque},
        {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {(void *)key, key ? strlen(key) : 0}},
        {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = headers},
    };
    size_t nargs = headers ? 6 : 5;
    for (;;) {
        rd_kafka_error_t *error = rd_kafka_produceva(p->rk, args, nargs);
        if (!error)
            return AP_OK;
        rd_kafka_resp_err_t e = rd_kafka_error_code(error);
        rd_kafka_error_destroy(error);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return ap_fail(AP_ERR_KAFKA, err, errsz, "cannot queue message for '%s': %s", topic,
                           rd_kafka_err2str(e));
        rd_kafka_poll(p->rk, 100); /* serve delivery reports to make room */
    }
}

int ap_publisher_flush(ap_publisher *p, int timeout_ms) {
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

void ap_publisher_free(ap_publisher *p) {
    if (!p)
        return;
    int left = ap_publisher_flush(p, 30000);
    if (left)
        ap_logf(AP_LOG_ERROR, "%d messages were not delivered", left);
    rd_kafka_destroy(p->rk);
    free(p);
}
