/* unit_main.c — runs the unit tests.
 *
 *   unit-tests               every test
 *   unit-tests NAME...       only these (exact names, see --list)
 *   unit-tests --list        the names, one a line
 *
 * Prints one line per failed check, then exactly "P passed, F failed" where P
 * and F count test functions. Exits 0 when none failed, 1 when one did, 2 on
 * a bad command line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

static const unit_test *const suites[] = {
    unit_action_tests,       unit_budget_neutral_tests, unit_config_tests,
    unit_executor_map_tests, unit_kernel_output_tests,  unit_validate_tests,
};

#define NSUITES (sizeof suites / sizeof suites[0])

static const char *current;  /* name of the running test */
static int current_failures; /* failed checks in it so far */

/* Prints s with control characters escaped, so that a failure stays one line. */
static void print_escaped(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void fail_v(const char *file, int line, const char *fmt, va_list ap) {
    char what[2048];
    vsnprintf(what, sizeof what, fmt, ap);
    printf("%s:%d: %s: ", file, line, current ? current : "(no test)");
    print_escaped(what);
    putchar('\n');
    fflush(stdout);
    current_failures++;
}

int unit_check(const char *file, int line, int ok, const char *fmt, ...) {
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        fail_v(file, line, fmt, ap);
        va_end(ap);
    }
    return ok;
}

int unit_check_int_eq(const char *file, int line, const char *a_expr, const char *b_expr,
                      long long a, long long b) {
    return unit_check(file, line, a == b, "CHECK_INT_EQ(%s, %s): %lld != %lld", a_expr, b_expr, a,
                      b);
}

int unit_check_str_eq(const char *file, int line, const char *a_expr, const char *b_expr,
                      const char *a, const char *b) {
    int ok = a && b ? !strcmp(a, b) : a == b;
    return unit_check(file, line, ok, "CHECK_STR_EQ(%s, %s): %s%s%s != %s%s%s", a_expr, b_expr,
                      a ? "'" : "", a ? a : "NULL", a ? "'" : "", b ? "'" : "", b ? b : "NULL",
                      b ? "'" : "");
}

int unit_check_str_contains(const char *file, int line, const char *expr, const char *haystack,
                            const char *needle) {
    int ok = haystack && needle && strstr(haystack, needle);
    return unit_check(file, line, ok, "CHECK_STR_CONTAINS(%s, '%s'): %s%s%s", expr,
                      needle ? needle : "NULL", haystack ? "'" : "", haystack ? haystack : "NULL",
                      haystack ? "'" : "");
}

int unit_temp_file(const char *file, int line, const char *content, char *path, size_t size) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/actionpool-unit-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (!unit_check(file, line, fd >= 0, "cannot create a temporary file '%s'", path))
        return -1;
    size_t len = strlen(content);
    ssize_t n = write(fd, content, len);
    close(fd);
    if (!unit_check(file, line, n == (ssize_t)len, "cannot write '%s'", path)) {
        unlink(path);
        return -1;
    }
    return 0;
}

static const unit_test *find(const char *name) {
    for (size_t s = 0; s < NSUITES; s++)
        for (const unit_test *t = suites[s]; t->name; t++)
            if (!strcmp(t->name, name))
                return t;
    return NULL;
}

/* Runs one test; returns 1 when all its checks held. */
static int run(const unit_test *t) {
    current = t->name;
    current_failures = 0;
    t->fn();
    current = NULL;
    return current_failures == 0;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;

    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t s = 0; s < NSUITES; s++)
            for (const unit_test *t = suites[s]; t->name; t++)
                puts(t->name);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (!find(argv[i])) {
            fprintf(stderr, "unit-tests: unknown test '%s' (see --list)\n", argv[i]);
            return 2;
        }
    }
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            if (run(find(argv[i])))
                passed++;
            else
                failed++;
        }
    } else {
        for (size_t s = 0; s < NSUITES; s++)
            for (const unit_test *t = suites[s]; t->name; t++) {
                if (run(t))
                    passed++;
                else
                    failed++;
            }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
