#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *log_prog = "actionpool";
static ap_log_level log_min = AP_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

int ap_log_init(const char *prog, const char *level) {
    log_prog = prog;
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, level_names[i]) == 0) {
            log_min = (ap_log_level)i;
            return 0;
        }
    return level ? -1 : 0;
}

static void log_write(ap_log_level level, const char *msg, va_list pairs) {
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level], "prog",
                             log_prog, "msg", msg);
    if (!line)
        return;
    for (const char *key; (key = va_arg(pairs, const char *));) {
        const char *value = va_arg(pairs, const char *);
        json_object_set_new(line, key, value ? json_string(value) : json_null());
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) {
        fprintf(stderr, "%s\n", text);
        free(text);
    }
    json_decref(line);
}

void ap_log(ap_log_level level, const char *msg, ...) {
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, msg);
    log_write(level, msg, ap);
    va_end(ap);
}

static void log_no_pairs(ap_log_level level, const char *msg, ...) {
    va_list ap;
    va_start(ap, msg);
    log_write(level, msg, ap);
    va_end(ap);
}

void ap_logf(ap_log_level level, const char *fmt, ...) {
    if (level < log_min)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_no_pairs(level, msg, (const char *)NULL);
}
