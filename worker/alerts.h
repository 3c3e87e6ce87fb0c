/* alerts.h — what a person must hear about (a circuit breaker opened): a row
 * in the alerts table, a log line at error level, and the webhook (webhook.h). */
#ifndef AP_ALERTS_H
#define AP_ALERTS_H

#include "store.h"

/* Raises one alert. tenant and subsystem may be NULL. A webhook that does not
 * answer within 2 s is logged and skipped: the row is the record. */
void ap_alert_raise(ap_store *store, const char *webhook_url, const char *kind, const char *tenant,
                    const char *subsystem, const char *message);

#endif
