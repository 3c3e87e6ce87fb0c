/* status.h — the one status type every actionpool function returns. */
#ifndef AP_STATUS_H
#define AP_STATUS_H

#include <stddef.h>

/* Functions return AP_OK on success. Where a person must read why something
 * failed, the function also fills a caller-provided `char *err, size_t errsz`
 * (lowercase, no full stop, the subject quoted: "cannot parse 'x': ..."). */
typedef enum ap_status {
    AP_OK = 0,
    AP_ERR_INVALID, /* bad input or configuration */
    AP_ERR_IO,      /* file or socket */
    AP_ERR_KAFKA,
    AP_ERR_REDIS,
    AP_ERR_PG,
    AP_ERR_NOMEM,
    AP_ERR_BUSY, /* held by another worker for now: try again shortly */
} ap_status;

/* Short lowercase name of a status, for logs. */
const char *ap_status_name(ap_status st);

/* snprintf into err (when err is not NULL) and return st: one-line error exits. */
ap_status ap_fail(ap_status st, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
