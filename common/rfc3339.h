/* rfc3339.h — one reader of RFC 3339 dates and times, for the checks on
 * actions (created_at, date fields) and the times ops give actionpool-ctl. */
#ifndef AP_RFC3339_H
#define AP_RFC3339_H

typedef struct ap_rfc3339 {
    int year, month, day;
    int has_time;             /* a time followed the date */
    char separator;           /* before the time: 'T', 't' or ' ' */
    int hour, minute, second; /* second 60 is a leap second */
    int frac_ms;              /* the fraction's first three digits, in milliseconds */
    int offset_s;             /* the offset east of UTC, in seconds */
} ap_rfc3339;

/* Reads "YYYY-MM-DD", optionally followed by 'T', 't' or ' ' and
 * "HH:MM:SS[.fraction]" with "Z", "z", "+HH:MM" or "-HH:MM", and nothing
 * more: every position a digit where one belongs, month 01-12, day 01-31,
 * hour 00-23, minute 00-59, second 00-60, offset hour 00-23 and minute 00-59.
 * Returns 1 when s is that, 0 otherwise. */
int ap_rfc3339_read(const char *s, ap_rfc3339 *t);

/* 1 when t's date is a day of the calendar (no 31 April; 29 February only in
 * leap years). */
int ap_rfc3339_real_day(const ap_rfc3339 *t);

#endif
