#include "status.h"

#include <stdarg.h>
#include <stdio.h>

const char *ap_status_name(ap_status st) {
    switch (st) {
    case AP_OK: return "ok";
    case AP_ERR_INVALID: return "invalid";
    case AP_ERR_IO: return "io";
    case AP_ERR_KAFKA: return "kafka";
    case AP_ERR_REDIS: return "redis";
    case AP_ERR_PG: return "postgres";
    case AP_ERR_NOMEM: return "nomem";
    case AP_ERR_BUSY: return "busy";
    }
    return "unknown";
}

ap_status ap_fail(ap_status st, char *err, size_t errsz, const char *fmt, ...) {
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return st;
}
