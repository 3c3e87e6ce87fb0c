#include "webhook.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>

#include "log.h"

static size_t discard(char *data, size_t size, size_t n, void *ctx) {
    (void)data, (void)ctx;
    return size * n;
}

void ap_webhook_post(const char *url, const char *kind, const char *tenant, const char *subsystem,
                     const char *message) {
    if (!url || !*url)
        return;
    json_t *alert = json_pack("{s:s, s:s?, s:s?, s:s}", "kind", kind, "tenant_id", tenant,
                              "subsystem", subsystem, "message", message);
    char *body = alert ? json_dumps(alert, JSON_COMPACT) : NULL;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!body || !curl || !headers)
        goto out;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status >= 300)
        ap_log(AP_LOG_WARN, "alert webhook failed", "kind", kind, "error",
               rc != CURLE_OK ? curl_easy_strerror(rc) : "non-2xx answer", NULL);
out:
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(body);
    json_decref(alert);
}
