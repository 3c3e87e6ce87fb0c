#include "cli_time.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rfc3339.h"

int ap_rfc3339_ms(const char *s, int64_t *ms) {
    ap_rfc3339 r;
    if (!ap_rfc3339_read(s, &r))
        return -1;
    struct tm tm = {.tm_year = r.year - 1900,
                    .tm_mon = r.month - 1,
                    .tm_mday = r.day,
                    .tm_hour = r.hour,
                    .tm_min = r.minute,
                    .tm_sec = r.second};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = ((int64_t)t - r.offset_s) * 1000 + r.frac_ms;
    return 0;
}

ap_status ap_cli_time_parse(const char *option, const char *text, ap_cli_time *t, char *err,
                            size_t errsz) {
    static const struct {
        char suffix;
        const char *unit;
        int64_t seconds;
    } units[] = {{'s', "seconds", 1},
                 {'m', "minutes", 60},
                 {'h', "hours", 3600},
                 {'d', "days", 86400},
                 {'w', "weeks", 7 * 86400}};
    size_t len = strlen(text);
    int n = atoi(text); /* read up to the unit */
    memset(t, 0, sizeof *t);
    if (len >= 2 && len <= 7 && strspn(text, "0123456789") == len - 1)
        for (size_t u = 0; u < sizeof units / sizeof *units; u++)
            if (text[len - 1] == units[u].suffix) {
                t->is_duration = 1;
                t->count = n;
                t->unit = units[u].unit;
                t->seconds = n * units[u].seconds;
                return AP_OK;
            }
    if (!ap_rfc3339_ms(text, &t->ms))
        return AP_OK;
    return ap_fail(AP_ERR_INVALID, err, errsz,
                   "%s: cannot read '%s': give a duration such as 7d, 24h, 30m, 90s or 2w, or "
                   "an RFC 3339 timestamp such as 2026-01-15T06:00:00Z",
                   option, text);
}
