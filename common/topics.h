/* topics.h — topic names, in one place:
 *   <prefix>.<subsystem>            new actions, keyed by "<tenant>:<entity>"
 *   <prefix>.<subsystem>.retry.<n>  delayed retries, n = 1..AP_RETRY_TOPICS
 *   <prefix>.<subsystem>.dlq        dead letters */
#ifndef AP_TOPICS_H
#define AP_TOPICS_H

#include <stddef.h>

#define AP_RETRY_TOPICS 3
#define AP_TOPIC_MAX    256

void ap_topic_main(char *buf, size_t size, const char *prefix, const char *subsystem);
void ap_topic_retry(char *buf, size_t size, const char *prefix, const char *subsystem, int n);
void ap_topic_dlq(char *buf, size_t size, const char *prefix, const char *subsystem);

#endif
