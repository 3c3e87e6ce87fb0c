#include "rfc3339.h"

#include <string.h>

/* Reads n ASCII digits at s into *value; 0 when any position is not a digit
 * (so no sign, space or end of string slips through as sscanf's %d would let it). */
static int digits(const char *s, int n, int *value) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return 1;
}

int ap_rfc3339_read(const char *s, ap_rfc3339 *t) {
    memset(t, 0, sizeof *t);
    if (strlen(s) < 10 || !digits(s, 4, &t->year) || s[4] != '-' || !digits(s + 5, 2, &t->month) ||
        s[7] != '-' || !digits(s + 8, 2, &t->day) || t->month < 1 || t->month > 12 || t->day < 1 ||
        t->day > 31)
        return 0;
    const char *p = s + 10;
    if (!*p)
        return 1;
    t->has_time = 1;
    t->separator = *p;
    if ((*p != 'T' && *p != 't' && *p != ' ') || !digits(p + 1, 2, &t->hour) || p[3] != ':' ||
        !digits(p + 4, 2, &t->minute) || p[6] != ':' || !digits(p + 7, 2, &t->second) ||
        t->hour > 23 || t->minute > 59 || t->second > 60)
        return 0;
    p += 9;
    if (*p == '.') {
        int scale = 100, any = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, any = 1) {
            t->frac_ms += (*p - '0') * scale;
            scale /= 10;
        }
        if (!any)
            return 0;
    }
    if ((*p == 'Z' || *p == 'z') && !p[1])
        return 1;
    int oh, om;
    if ((*p != '+' && *p != '-') || strlen(p) != 6 || !digits(p + 1, 2, &oh) || p[3] != ':' ||
        !digits(p + 4, 2, &om) || oh > 23 || om > 59)
        return 0;
    t->offset_s = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    return 1;
}

int ap_rfc3339_real_day(const ap_rfc3339 *t) {
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = t->year;
    return t->day <= days[t->month - 1] &&
           (t->month != 2 || t->day < 29 || (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
}
