#include "alerts.h"

#include "log.h"
#include "webhook.h"

void ap_alert_raise(ap_store *store, const char *webhook_url, const char *kind, const char *tenant,
                    const char *subsystem, const char *message) {
    char err[512];
    ap_log(AP_LOG_ERROR, message, "alert", kind, "tenant_id", tenant, "subsystem", subsystem, NULL);
    if (ap_store_alert(store, kind, tenant, subsystem, message, err, sizeof err))
        ap_log(AP_LOG_ERROR, "alert not recorded", "error", err, NULL);
    ap_webhook_post(webhook_url, kind, tenant, subsystem, message);
}
