/* webhook.h — alerts POSTed as JSON to the optional alert_webhook_url. */
#ifndef AP_WEBHOOK_H
#define AP_WEBHOOK_H

/* POSTs {"kind", "tenant_id", "subsystem", "message"} (tenant and subsystem
 * may be NULL) to url, waiting at most 2 s; a failure is logged, not
 * returned: the alerts row is the record. Does nothing when url is NULL or "". */
void ap_webhook_post(const char *url, const char *kind, const char *tenant, const char *subsystem,
                     const char *message);

#endif
