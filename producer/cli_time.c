#include "cli_time.h"

#include <string.h>
#include <time.h>

/* Reads n ASCII digits at s into *value; 0 when any position is not a digit. */
static int digits_at(const char *s, int n, int *value) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return 1;
}

int ap_rfc3339_ms(const char *s, int64_t *ms) {
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0, off = 0;
    size_t len = strlen(s);
    if (len < 10 || !digits_at(s, 4, &y) || s[4] != '-' || !digits_at(s + 5, 2, &mo) ||
        s[7] != '-' || !digits_at(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    const char *p = s + 10;
    if (*p) {
        if ((*p != 'T' && *p != 't' && *p != ' ') || !digits_at(p + 1, 2, &h) || p[3] != ':' ||
            !digits_at(p + 4, 2, &mi) || p[6] != ':' || !digits_at(p + 7, 2, &sec) || h > 23 ||
            mi > 59 || sec > 60)
            return -1;
        p += 9;
        if (*p == '.') {
            int scale = 100, any = 0;
            for (p++; *p >= '0' && *p <= '9'; p++, any = 1) {
                frac_ms += (*p - '0') * scale;
                scale /= 10;
            }
            if (!any)
                return -1;
        }
        if ((*p == 'Z' || *p == 'z') && !p[1]) {
            off = 0;
        } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
            int oh, om;
            if (!digits_at(p + 1, 2, &oh) || !digits_at(p + 4, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        } else {
            return -1;
        }
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = ((int64_t)t - off) * 1000 + frac_ms;
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
    int n;
    memset(t, 0, sizeof *t);
    if (len >= 2 && len <= 7 && digits_at(text, (int)len - 1, &n))
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
