#include "topics.h"

#include <stdio.h>

void ap_topic_main(char *buf, size_t size, const char *prefix, const char *subsystem) {
    snprintf(buf, size, "%s.%s", prefix, subsystem);
}

void ap_topic_retry(char *buf, size_t size, const char *prefix, const char *subsystem, int n) {
    snprintf(buf, size, "%s.%s.retry.%d", prefix, subsystem, n);
}

void ap_topic_dlq(char *buf, size_t size, const char *prefix, const char *subsystem) {
    snprintf(buf, size, "%s.%s.dlq", prefix, subsystem);
}
