/* fetch.h — kernel output over HTTP(S) for `actionpool-producer --from-url`
 * (libcurl): one GET, the body kept in memory, everything but a 2xx answer an
 * error.
 *
 * Safety rules, all here so the callers need not know them:
 *   - only http:// and https:// URLs; a redirect is followed (at most
 *     AP_FETCH_MAX_REDIRECTS) only to the scheme of the URL itself, so an
 *     https URL never continues over plain http;
 *   - the Authorization value is sent as given and never copied into err or
 *     a log line, and libcurl drops it when a redirect leads to another host;
 *   - a URL is quoted in err without its user:password part (see
 *     ap_fetch_redact);
 *   - the body is limited to AP_FETCH_MAX_BYTES. */
#ifndef AP_FETCH_H
#define AP_FETCH_H

#include <stddef.h>

#include "status.h"

#define AP_FETCH_MAX_REDIRECTS 5
#define AP_FETCH_MAX_BYTES     (512L * 1024 * 1024)

/* Call once before any other thread starts (libcurl's global init); returns
 * AP_ERR_IO with err set when libcurl cannot start. */
ap_status ap_fetch_global_init(char *err, size_t errsz);
void ap_fetch_global_cleanup(void);

/* GETs url and hands the body over: *body (NUL-terminated, *len bytes without
 * the NUL) belongs to the caller, who frees it. authorization (may be NULL) is
 * the value of the Authorization header; it must not hold CR or LF.
 * timeout_s bounds the whole transfer, connecting included.
 * Errors, with err set and *body NULL:
 *   AP_ERR_INVALID  the URL or the authorization value is unusable
 *   AP_ERR_IO       the transfer failed ("cannot fetch 'URL': <why>") or the
 *                   answer was not 2xx ("cannot fetch 'URL': HTTP 503")
 *   AP_ERR_NOMEM    out of memory */
ap_status ap_fetch_url(const char *url, const char *authorization, long timeout_s,
                       const char *user_agent, char **body, size_t *len, char *err, size_t errsz);

/* Writes url into buf as it may be shown: its user:password part, when it
 * has one, becomes "***" (https://u:p@host/x is shown as https://[***]@host/x
 * without the brackets); anything else is copied as it is. */
void ap_fetch_redact(const char *url, char *buf, size_t size);

#endif
