/* log.h — JSON lines on stderr, one object per event:
 *   {"ts":"2026-11-21T12:00:00.123Z","level":"info","prog":"worker","msg":"...", ...}
 * Extra key/value pairs are passed as a NULL-terminated list of string pairs,
 * e.g. ap_log(AP_LOG_INFO, "batch committed", "actions", "512", NULL).
 * Never pass secrets. */
#ifndef AP_LOG_H
#define AP_LOG_H

typedef enum ap_log_level { AP_LOG_DEBUG, AP_LOG_INFO, AP_LOG_WARN, AP_LOG_ERROR } ap_log_level;

/* Sets the program name and the lowest level written ("debug".."error");
 * returns -1 for an unknown level name. */
int ap_log_init(const char *prog, const char *level);

/* Writes one line when level is enabled; keys and values are JSON-escaped. */
void ap_log(ap_log_level level, const char *msg, ...) __attribute__((sentinel));

/* ap_log with a printf-formatted message and no extra pairs. */
void ap_logf(ap_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
