#include "retry.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dead_letter.h"

int ap_retry_delays_parse(const char *text, int delays[AP_RETRY_TOPICS], char *err, size_t errsz) {
    const char *p = text;
    for (int i = 0; i < AP_RETRY_TOPICS; i++) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || d < 0 || d > 86400 || (i < AP_RETRY_TOPICS - 1 ? *end != ',' : *end)) {
            ap_fail(AP_ERR_INVALID, err, errsz,
                    "retry_delays_s: cannot use '%s': expected %d delays in seconds, e.g. "
                    "300,600,1200",
                    text, AP_RETRY_TOPICS);
            return -1;
        }
        delays[i] = (int)d;
        p = end + 1;
    }
    return 0;
}

int ap_retry_attempt(const rd_kafka_message_t *msg) {
    const char *topic = rd_kafka_topic_name(msg->rkt), *r = strstr(topic, ".retry.");
    return r ? atoi(r + 7) : 0;
}

long long ap_retry_clock_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

long long ap_retry_due(const rd_kafka_message_t *msg) {
    char due[24];
    return ap_retry_attempt(msg) ? atoll(ap_header_get(msg, "ap-due-at", due, sizeof due)) : 0;
}

ap_status ap_retry_send(ap_publisher *p, const ap_config *cfg, const int delays[AP_RETRY_TOPICS],
                        const rd_kafka_message_t *msg, const char *error_class, const char *error,
                        int retry_after_s, int *dead, char *err, size_t errsz) {
    int attempt = ap_retry_attempt(msg) + 1;
    *dead = attempt > AP_RETRY_TOPICS;
    if (*dead)
        return ap_failure_send(p, cfg, msg, attempt - 1, error_class, error, 0, err, errsz);
    int delay_s = delays[attempt - 1] > retry_after_s ? delays[attempt - 1] : retry_after_s;
    return ap_failure_send(p, cfg, msg, attempt, error_class, error,
                           ap_retry_clock_ms() + delay_s * 1000LL, err, errsz);
}
