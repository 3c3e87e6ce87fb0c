/* cli_time.h — the times ops give to actionpool-ctl (--since, --until): a
 * duration before now ("90s", "30m", "24h", "7d", "2w"), or an RFC 3339
 * timestamp or a date (midnight UTC). */
#ifndef AP_CLI_TIME_H
#define AP_CLI_TIME_H

#include <stdint.h>

#include "status.h"

typedef struct ap_cli_time {
    int is_duration;
    long long count;  /* duration: how many units before now */
    const char *unit; /* duration: "seconds", "minutes", "hours", "days" or "weeks" */
    int64_t seconds;  /* duration: count in seconds */
    int64_t ms;       /* timestamp: milliseconds since the epoch */
} ap_cli_time;

/* Reads text, given as option; on failure err names the option and the forms. */
ap_status ap_cli_time_parse(const char *option, const char *text, ap_cli_time *t, char *err,
                            size_t errsz);

/* An RFC 3339 date-time (fractions and +HH:MM allowed) or a date into
 * milliseconds since the epoch; -1 when it is neither. */
int ap_rfc3339_ms(const char *s, int64_t *ms);

#endif
