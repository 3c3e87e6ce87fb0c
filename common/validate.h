/* validate.h — checks an action against action.schema.json's rules and the
 * executor map. The producer refuses what fails; the worker records it as
 * 'rejected' with the same words. */
#ifndef AP_VALIDATE_H
#define AP_VALIDATE_H

#include <jansson.h>

#include "executor_map.h"

/* One broken rule. */
typedef struct ap_violation {
    char field[64];    /* JSON path of the offending member, e.g. "proposed_change.value" */
    char rule[32];     /* the rule's name, e.g. "maximum", "required", "matrix" */
    char message[256]; /* what is wrong, with the value: "7000 is above ... 5000" */
} ap_violation;

#define AP_VERDICT_MAX 8

typedef struct ap_verdict {
    int count; /* violations found; only the first AP_VERDICT_MAX are kept */
    ap_violation items[AP_VERDICT_MAX];
} ap_verdict;

/* Validates `action`; `today` is the UTC date "YYYY-MM-DD" that date rules
 * compare with. Returns the number of violations (0: valid).
 *
 * Beyond the schema's types: tenant_id is 1..64 of [A-Za-z0-9_.-] (rule
 * "format"), so tenant-scoped keys stay apart; a field bounded by a guardrail
 * (minimum_from, maximum_from) is refused when the guardrail is absent (rule
 * "required", field the guardrail's path) or not a number (rule "type"). */
int ap_validate(const ap_executor_map *map, const json_t *action, const char *today,
                ap_verdict *verdict);

/* Writes "field: rule: message; ..." for every kept violation into buf, cut
 * to size - 1 bytes and NUL-terminated; writes nothing when size is 0. */
void ap_verdict_format(const ap_verdict *verdict, char *buf, size_t size);

/* Today's UTC date as "YYYY-MM-DD" into buf (at least 11 bytes). */
void ap_today_utc(char *buf);

#endif
