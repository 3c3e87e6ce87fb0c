/* unit.h — the unit-test harness: no framework, no servers.
 *
 * A test is a `static void name(void)` in a file named for its subject
 * (test_validate.c tests validate.c). Each file ends with its table,
 * `const unit_test unit_<subject>_tests[] = {UNIT_TEST(name), ..., {0}}`,
 * declared below and run by unit_main.c. A test that is written but not listed
 * is an unused static function, which -Werror refuses: none is forgotten.
 *
 * The CHECK macros record a failure as "file:line: test: what" and let the
 * test go on; each evaluates to 1 when it held, so a test can stop where going
 * on makes no sense: `if (!CHECK(map)) return;`.
 *
 * Tests run from the repository root (make unit does): data files are named
 * relative to it, e.g. "schemas/executor_map.json". */
#ifndef AP_UNIT_H
#define AP_UNIT_H

#include <stddef.h>

typedef struct unit_test {
    const char *name; /* what `unit-tests NAME` runs */
    void (*fn)(void);
} unit_test;

#define UNIT_TEST(fn)                                                                              \
    { #fn, fn }

/* The tables, one per test file, each ending with {0}. */
extern const unit_test unit_action_tests[];
extern const unit_test unit_budget_neutral_tests[];
extern const unit_test unit_config_tests[];
extern const unit_test unit_executor_map_tests[];
extern const unit_test unit_kernel_output_tests[];
extern const unit_test unit_validate_tests[];

#define CHECK(cond) unit_check(__FILE__, __LINE__, (cond) != 0, "CHECK(%s)", #cond)
#define CHECK_INT_EQ(a, b)                                                                         \
    unit_check_int_eq(__FILE__, __LINE__, #a, #b, (long long)(a), (long long)(b))
#define CHECK_STR_EQ(a, b) unit_check_str_eq(__FILE__, __LINE__, #a, #b, (a), (b))
/* Holds when `needle` occurs in `haystack` (neither NULL). */
#define CHECK_STR_CONTAINS(haystack, needle)                                                       \
    unit_check_str_contains(__FILE__, __LINE__, #haystack, (haystack), (needle))

/* Records a failure at file:line unless ok; returns ok. The message is a
 * printf format. Helpers that check on behalf of a caller pass the caller's
 * file and line, so the failure points at the test, not at the helper. */
int unit_check(const char *file, int line, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int unit_check_int_eq(const char *file, int line, const char *a_expr, const char *b_expr,
                      long long a, long long b);
int unit_check_str_eq(const char *file, int line, const char *a_expr, const char *b_expr,
                      const char *a, const char *b);
int unit_check_str_contains(const char *file, int line, const char *expr, const char *haystack,
                            const char *needle);

/* Writes `content` to a new file in $TMPDIR (or /tmp) and its path into
 * path. Returns 0, or -1 with a failure recorded at file:line. The caller
 * removes the file. */
int unit_temp_file(const char *file, int line, const char *content, char *path, size_t size);

#endif
