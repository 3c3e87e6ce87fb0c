#include "fetch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The body as it arrives. */
typedef struct sink {
    char *data;
    size_t len, cap;
    int too_big; /* over AP_FETCH_MAX_BYTES: the transfer was stopped */
    int nomem;
} sink;

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    sink *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n > (size_t)AP_FETCH_MAX_BYTES) {
        s->too_big = 1;
        return 0; /* stops the transfer with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *grown = realloc(s->data, cap);
        if (!grown) {
            s->nomem = 1;
            return 0;
        }
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

ap_status ap_fetch_global_init(char *err, size_t errsz) {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc)
        return ap_fail(AP_ERR_IO, err, errsz, "cannot start libcurl: %s", curl_easy_strerror(rc));
    return AP_OK;
}

void ap_fetch_global_cleanup(void) {
    curl_global_cleanup();
}

void ap_fetch_redact(const char *url, char *buf, size_t size) {
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : NULL, *at = NULL;
    /* The last '@' of the authority ends the user part ("u@x:p@host"). */
    for (const char *p = host; p && *p && !strchr("/?#", *p); p++)
        if (*p == '@')
            at = p;
    if (!at)
        snprintf(buf, size, "%s", url);
    else
        snprintf(buf, size, "%.*s***%s", (int)(host - url), url, at);
}

/* The scheme of url, lowercased, when it is http or https; NULL otherwise. */
static const char *url_scheme(const char *url) {
    if (!strncasecmp(url, "https://", 8))
        return "https";
    if (!strncasecmp(url, "http://", 7))
        return "http";
    return NULL;
}

ap_status ap_fetch_url(const char *url, const char *authorization, long timeout_s,
                       const char *user_agent, char **body, size_t *len, char *err, size_t errsz) {
    ap_status st = AP_OK;
    char shown[1024], curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *added;
    char *auth_header = NULL;
    sink s = {0};
    CURL *curl = NULL;

    *body = NULL;
    *len = 0;
    ap_fetch_redact(url, shown, sizeof shown);
    const char *scheme = url_scheme(url);
    if (!scheme) {
        st = ap_fail(AP_ERR_INVALID, err, errsz,
                     "cannot fetch '%s': only http:// and https:// URLs are read", shown);
        goto out;
    }
    if (authorization && strpbrk(authorization, "\r\n")) {
        st = ap_fail(AP_ERR_INVALID, err, errsz,
                     "the authorization value must be one line (it holds CR or LF)");
        goto out;
    }
    if (!(curl = curl_easy_init())) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    if (authorization) {
        size_t n = strlen(authorization) + sizeof "Authorization: ";
        if (!(auth_header = malloc(n))) {
            st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
            goto out;
        }
        snprintf(auth_header, n, "Authorization: %s", authorization);
        if (!(added = curl_slist_append(headers, auth_header))) {
            st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
            goto out;
        }
        headers = added;
    }
    if (!(added = curl_slist_append(headers, "Accept: application/json, application/x-ndjson, "
                                             "application/jsonl, text/plain;q=0.5"))) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    headers = added;

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout_s < 10 ? timeout_s : 10L);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl can decode */
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    /* Redirects: followed only to the URL's own scheme; the Authorization
     * header is not sent on to another host (CURLOPT_UNRESTRICTED_AUTH off). */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, (long)AP_FETCH_MAX_REDIRECTS);
    curl_easy_setopt(curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, scheme);
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, scheme);
#else
    long proto = strcmp(scheme, "https") ? CURLPROTO_HTTP : CURLPROTO_HTTPS;
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, proto);
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, proto);
#endif

    CURLcode rc = curl_easy_perform(curl);
    if (s.nomem) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    if (s.too_big) {
        st = ap_fail(AP_ERR_IO, err, errsz, "cannot fetch '%s': the body is over %ld bytes", shown,
                     AP_FETCH_MAX_BYTES);
        goto out;
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        st = ap_fail(AP_ERR_IO, err, errsz,
                     "cannot fetch '%s': redirected away from %s (only %s redirects are followed)",
                     shown, scheme, scheme);
        goto out;
    }
    if (rc == CURLE_TOO_MANY_REDIRECTS) {
        st = ap_fail(AP_ERR_IO, err, errsz, "cannot fetch '%s': more than %d redirects", shown,
                     AP_FETCH_MAX_REDIRECTS);
        goto out;
    }
    if (rc) {
        /* libcurl's own message names the host, never a header. */
        st = ap_fail(AP_ERR_IO, err, errsz, "cannot fetch '%s': %s", shown,
                     *curl_err ? curl_err : curl_easy_strerror(rc));
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299) {
        st = ap_fail(AP_ERR_IO, err, errsz, "cannot fetch '%s': HTTP %ld", shown, code);
        goto out;
    }
    if (!s.data && !(s.data = calloc(1, 1))) { /* an empty body */
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    *body = s.data;
    *len = s.len;
    s.data = NULL;
out:
    free(s.data);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    if (auth_header) { /* the secret does not outlive the request in this heap block */
        volatile char *p = auth_header;
        while (*p)
            *p++ = '\0';
        free(auth_header);
    }
    return st;
}
