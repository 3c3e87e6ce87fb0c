/* test_kernel_output.c — reading the planner's output: the document form,
 * JSON Lines (blank lines skipped, a broken line reported with its number
 * while the others are still read), the run_id copy, and what is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_output.h"
#include "unit.h"

#define SEEN_MAX 4096

/* One call of the callback. */
typedef struct seen_item {
    char where[64];
    char id[64];       /* action_id, "(none)" without one, "(not an object)" */
    char run_id[64];   /* "" when absent */
    char problem[256]; /* "" when the entry was read */
    int has_action;
} seen_item;

/* What the callback saw, in order. */
typedef struct seen {
    int count;
    int stop_after; /* return 1 after this many calls; 0: never */
    seen_item items[SEEN_MAX];
} seen;

static int collect(void *ctx, const char *where, json_t *action, const char *problem) {
    seen *s = ctx;
    if (s->count < SEEN_MAX) {
        seen_item *it = &s->items[s->count];
        const char *id = json_string_value(json_object_get(action, "action_id"));
        const char *run = json_string_value(json_object_get(action, "run_id"));
        snprintf(it->where, sizeof it->where, "%s", where);
        snprintf(it->id, sizeof it->id, "%s",
                 id                       ? id
                 : json_is_object(action) ? "(none)"
                                          : "(not an object)");
        snprintf(it->run_id, sizeof it->run_id, "%s", run ? run : "");
        snprintf(it->problem, sizeof it->problem, "%s", problem ? problem : "");
        it->has_action = action != NULL;
    }
    s->count++;
    return s->stop_after && s->count >= s->stop_after;
}

/* Reads `text` as kernel output into s (zeroed first but for stop_after).
 * Returns the status; err gets the error. */
static ap_status read_text(const char *text, seen *s, char *err, size_t errsz) {
    int stop_after = s->stop_after;
    memset(s, 0, sizeof *s);
    s->stop_after = stop_after;
    err[0] = '\0';
    FILE *in = tmpfile();
    if (!CHECK(in != NULL))
        return AP_ERR_IO;
    fputs(text, in);
    rewind(in);
    ap_status st = ap_kernel_output_read(in, collect, s, err, errsz);
    fclose(in);
    return st;
}

static seen *seen_new(void) {
    seen *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    return s;
}

#define A(id)          "{\"action_id\":\"" id "\",\"tenant_id\":\"acme\"}"
#define A_RUN(id, run) "{\"action_id\":\"" id "\",\"tenant_id\":\"acme\",\"run_id\":\"" run "\"}"

static void kernel_output_document(void) {
    seen *s = seen_new();
    char err[256];
    if (!s)
        return;
    CHECK_INT_EQ(read_text("{\"version\":\"revenue_os_v1\",\"run_id\":\"run-9\",\n"
                           "\"optimization_actions\":[\n  " A("a-1") ",\n  " A_RUN(
                               "a-2", "own") ",\n  " A("a-3") "\n]}\n",
                           s, err, sizeof err),
                 AP_OK);
    if (CHECK_INT_EQ(s->count, 3)) {
        CHECK_STR_EQ(s->items[0].where, "optimization_actions[0]");
        CHECK_STR_EQ(s->items[2].where, "optimization_actions[2]");
        CHECK_STR_EQ(s->items[0].id, "a-1");
        CHECK_STR_EQ(s->items[1].id, "a-2");
        CHECK_STR_EQ(s->items[2].id, "a-3");
        /* The document's run_id goes into actions without one. */
        CHECK_STR_EQ(s->items[0].run_id, "run-9");
        CHECK_STR_EQ(s->items[1].run_id, "own");
        CHECK_STR_EQ(s->items[2].run_id, "run-9");
        CHECK_STR_EQ(s->items[0].problem, "");
    }
    free(s);
}

static void kernel_output_document_run_id(void) {
    seen *s = seen_new();
    char err[256];
    if (!s)
        return;
    /* No run_id: none is made up. */
    CHECK_INT_EQ(read_text("{\"optimization_actions\":[" A("a-1") "]}", s, err, sizeof err), AP_OK);
    if (CHECK_INT_EQ(s->count, 1))
        CHECK_STR_EQ(s->items[0].run_id, "");
    /* A run_id that is not a string is not copied. */
    CHECK_INT_EQ(
        read_text("{\"run_id\":7,\"optimization_actions\":[" A("a-1") "]}", s, err, sizeof err),
        AP_OK);
    if (CHECK_INT_EQ(s->count, 1))
        CHECK_STR_EQ(s->items[0].run_id, "");
    /* Entries that are not objects are handed on as they are, for the caller to refuse. */
    CHECK_INT_EQ(read_text("{\"run_id\":\"r\",\"optimization_actions\":[42," A("a-1") "]}", s, err,
                           sizeof err),
                 AP_OK);
    if (CHECK_INT_EQ(s->count, 2)) {
        CHECK_STR_EQ(s->items[0].id, "(not an object)");
        CHECK(s->items[0].has_action);
        CHECK_STR_EQ(s->items[0].problem, "");
        CHECK_STR_EQ(s->items[1].run_id, "r");
    }
    /* An empty list is no error. */
    CHECK_INT_EQ(read_text("{\"optimization_actions\":[]}", s, err, sizeof err), AP_OK);
    CHECK_INT_EQ(s->count, 0);
    free(s);
}

static void kernel_output_lines(void) {
    seen *s = seen_new();
    char err[256];
    if (!s)
        return;
    /* Lines: 1 blank, 2 a-1, 3 blank, 4 spaces and a tab, 5 a-2, 6 broken, 7 a-3. */
    CHECK_INT_EQ(
        read_text("\n" A("a-1") "\n\n  \t \n" A("a-2") "\n{\"action_id\": \"a-x\",\n" A("a-3") "\n",
                  s, err, sizeof err),
        AP_OK);
    if (CHECK_INT_EQ(s->count, 4)) {
        CHECK_STR_EQ(s->items[0].where, "line 2");
        CHECK_STR_EQ(s->items[0].id, "a-1");
        CHECK_STR_EQ(s->items[1].where, "line 5");
        CHECK_STR_EQ(s->items[1].id, "a-2");
        /* The broken line: no action, a problem, its number. */
        CHECK_STR_EQ(s->items[2].where, "line 6");
        CHECK(!s->items[2].has_action);
        CHECK_STR_CONTAINS(s->items[2].problem, "not JSON");
        CHECK_STR_CONTAINS(s->items[2].problem, "column");
        /* ...and the next line is still read. */
        CHECK_STR_EQ(s->items[3].where, "line 7");
        CHECK_STR_EQ(s->items[3].id, "a-3");
        /* JSON Lines have no document run_id. */
        CHECK_STR_EQ(s->items[0].run_id, "");
        CHECK_STR_EQ(s->items[1].problem, "");
    }
    free(s);
}

static void kernel_output_lines_endings(void) {
    seen *s = seen_new();
    char err[256];
    if (!s)
        return;
    /* CRLF, and a last line without a newline. */
    CHECK_INT_EQ(
        read_text(A("a-1") "\r\n" A_RUN("a-2", "r-2") "\r\n\r\n" A("a-3"), s, err, sizeof err),
        AP_OK);
    if (CHECK_INT_EQ(s->count, 3)) {
        CHECK_STR_EQ(s->items[0].id, "a-1");
        CHECK_STR_EQ(s->items[1].run_id, "r-2");
        CHECK_STR_EQ(s->items[2].where, "line 4");
        CHECK_STR_EQ(s->items[2].id, "a-3");
        CHECK_STR_EQ(s->items[2].problem, "");
    }
    /* One action alone is JSON Lines of one line. */
    CHECK_INT_EQ(read_text(A("a-1"), s, err, sizeof err), AP_OK);
    if (CHECK_INT_EQ(s->count, 1))
        CHECK_STR_EQ(s->items[0].where, "line 1");
    /* Every line after the first broken: each is reported, and reading
     * still succeeds. */
    CHECK_INT_EQ(read_text(A("a-1") "\nnope\n{\n", s, err, sizeof err), AP_OK);
    if (CHECK_INT_EQ(s->count, 3)) {
        CHECK_STR_EQ(s->items[0].id, "a-1");
        CHECK_STR_EQ(s->items[1].where, "line 2");
        CHECK_STR_EQ(s->items[2].where, "line 3");
        CHECK(!s->items[1].has_action && !s->items[2].has_action);
    }
    /* Empty input, or only blank lines: nothing to do. */
    CHECK_INT_EQ(read_text("", s, err, sizeof err), AP_OK);
    CHECK_INT_EQ(s->count, 0);
    CHECK_INT_EQ(read_text("\n \n\t\n", s, err, sizeof err), AP_OK);
    CHECK_INT_EQ(s->count, 0);
    free(s);
}

static void kernel_output_refused(void) {
    seen *s = seen_new();
    char err[256];
    if (!s)
        return;
    /* A bare array is neither form. */
    CHECK_INT_EQ(read_text("[" A("a-1") "," A("a-2") "]", s, err, sizeof err), AP_ERR_INVALID);
    CHECK_STR_CONTAINS(err, "bare array");
    CHECK_INT_EQ(s->count, 0);
    CHECK_INT_EQ(read_text("[]", s, err, sizeof err), AP_ERR_INVALID);
    CHECK_STR_CONTAINS(err, "bare array");
    /* optimization_actions must be an array. */
    CHECK_INT_EQ(read_text("{\"run_id\":\"r\",\"optimization_actions\":{\"a\":" A("a-1") "}}", s,
                           err, sizeof err),
                 AP_ERR_INVALID);
    CHECK_STR_CONTAINS(err, "'optimization_actions' must be an array");
    CHECK_INT_EQ(s->count, 0);
    free(s);
}

/* Input that is not one JSON value and whose first non-blank line is not one
 * either is a broken document: it fails as a whole with the document's parse
 * error, and no line of it is handed on, even one that is a complete action. */
static void kernel_output_broken_document(void) {
    seen *s = seen_new();
    char err[256];
    if (!s)
        return;
    /* A trailing comma: lines 4 and 5 look like actions, neither is published. */
    CHECK_INT_EQ(read_text("{\n \"run_id\":\"demo-run-1\",\n \"optimization_actions\":[\n " A(
                               "a1") ",\n " A("a2") "\n ],\n}",
                           s, err, sizeof err),
                 AP_ERR_INVALID);
    CHECK_INT_EQ(s->count, 0);
    CHECK_STR_EQ(err, "kernel output: line 7 column 1: string or '}' expected near '}'");
    /* Cut short, after blank lines: the error is where the text ends. */
    CHECK_INT_EQ(
        read_text("\n\n{\n \"optimization_actions\": [\n  " A("a1") ",\n", s, err, sizeof err),
        AP_ERR_INVALID);
    CHECK_INT_EQ(s->count, 0);
    CHECK_STR_CONTAINS(err, "kernel output: line 6 column ");
    CHECK_STR_CONTAINS(err, "end of file");
    /* A broken first line decides it too: it is not JSON Lines with one bad line. */
    CHECK_INT_EQ(
        read_text("{\"action_id\": \"a-x\",\n" A("a-1") "\n" A("a-2") "\n", s, err, sizeof err),
        AP_ERR_INVALID);
    CHECK_INT_EQ(s->count, 0);
    CHECK_STR_CONTAINS(err, "kernel output: line 2 column ");
    CHECK_INT_EQ(read_text("nope\n{\n", s, err, sizeof err), AP_ERR_INVALID);
    CHECK_STR_CONTAINS(err, "kernel output: line 1 column ");
    CHECK_INT_EQ(s->count, 0);
    /* Well-formed over several lines but without optimization_actions (here
     * misspelt): a document all the same, so the last entry, a complete
     * action on its own line, is not read as a JSON line either. */
    CHECK_INT_EQ(read_text("{\n \"run_id\":\"r\",\n \"optimisation_actions\":[\n " A("a1") ",\n " A(
                               "a2") "\n ]\n}\n",
                           s, err, sizeof err),
                 AP_ERR_INVALID);
    CHECK_INT_EQ(s->count, 0);
    CHECK_STR_CONTAINS(err, "without 'optimization_actions'");
    CHECK_INT_EQ(read_text("{\n  \"action_id\": \"a-1\",\n  \"tenant_id\": \"acme\"\n}\n", s, err,
                           sizeof err),
                 AP_ERR_INVALID);
    CHECK_INT_EQ(s->count, 0);
    /* One object on one line is JSON Lines of one line, trailing blank lines or not. */
    CHECK_INT_EQ(read_text(A("a-1") "\n\n  \n", s, err, sizeof err), AP_OK);
    if (CHECK_INT_EQ(s->count, 1))
        CHECK_STR_EQ(s->items[0].id, "a-1");
    free(s);
}

static void kernel_output_stop(void) {
    seen *s = seen_new();
    char err[256];
    if (!s)
        return;
    s->stop_after = 2;
    CHECK_INT_EQ(read_text("{\"optimization_actions\":[" A("a-1") "," A("a-2") "," A("a-3") "]}", s,
                           err, sizeof err),
                 AP_OK);
    CHECK_INT_EQ(s->count, 2);
    CHECK_INT_EQ(read_text(A("a-1") "\n" A("a-2") "\n" A("a-3") "\n", s, err, sizeof err), AP_OK);
    CHECK_INT_EQ(s->count, 2);
    free(s);
}

static void kernel_output_large(void) {
    /* More than ap_read_all's first 64 KiB buffer. */
    enum { LINES = 3000 };
    size_t cap = LINES * 64, len = 0;
    char *text = malloc(cap);
    seen *s = seen_new();
    char err[256];
    if (!CHECK(text != NULL) || !s)
        goto out;
    for (int i = 0; i < LINES; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "{\"action_id\":\"a-%d\",\"tenant_id\":\"acme\"}\n", i);
    CHECK(len > 1 << 16);
    CHECK_INT_EQ(read_text(text, s, err, sizeof err), AP_OK);
    if (CHECK_INT_EQ(s->count, LINES)) {
        CHECK_STR_EQ(s->items[LINES - 1].where, "line 3000");
        CHECK_STR_EQ(s->items[LINES - 1].id, "a-2999");
    }
out:
    free(s);
    free(text);
}

static void kernel_output_read_all(void) {
    /* Exactly 2 x 64 KiB - 1: the growth boundary of ap_read_all. */
    size_t sizes[] = {0, 1, (1 << 16) - 2, (1 << 16) - 1, 1 << 16, (1 << 17) - 1, 200000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k], len = 12345;
        FILE *in = tmpfile();
        if (!CHECK(in != NULL))
            return;
        for (size_t i = 0; i < n; i++)
            fputc('a' + (int)(i % 26), in);
        rewind(in);
        char *buf = ap_read_all(in, &len);
        fclose(in);
        if (!unit_check(__FILE__, __LINE__, buf != NULL, "ap_read_all of %zu bytes", n))
            continue;
        CHECK_INT_EQ(len, n);
        CHECK_INT_EQ(strlen(buf), n);
        int same = 1;
        for (size_t i = 0; i < n && same; i++)
            same = buf[i] == 'a' + (int)(i % 26);
        unit_check(__FILE__, __LINE__, same, "ap_read_all of %zu bytes: content differs", n);
        free(buf);
    }
}

const unit_test unit_kernel_output_tests[] = {
    UNIT_TEST(kernel_output_document), UNIT_TEST(kernel_output_document_run_id),
    UNIT_TEST(kernel_output_lines),    UNIT_TEST(kernel_output_lines_endings),
    UNIT_TEST(kernel_output_refused),  UNIT_TEST(kernel_output_broken_document),
    UNIT_TEST(kernel_output_stop),     UNIT_TEST(kernel_output_large),
    UNIT_TEST(kernel_output_read_all), {0},
};
