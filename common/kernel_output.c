#include "kernel_output.h"

#include <stdlib.h>
#include <string.h>

char *ap_read_all(FILE *in, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, in);
        if (n < cap - 1)
            break;
        char *grown = realloc(buf, cap *= 2);
        if (!grown)
            free(buf);
        buf = grown;
    }
    if (!buf || ferror(in)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i]))
            return 0;
    return 1;
}

static ap_status read_document(json_t *doc, ap_kernel_action_fn fn, void *ctx, char *err,
                               size_t errsz) {
    json_t *actions = json_object_get(doc, "optimization_actions");
    if (!json_is_array(actions))
        return ap_fail(AP_ERR_INVALID, err, errsz,
                       "kernel output: 'optimization_actions' must be an array");
    json_t *run_id = json_object_get(doc, "run_id");
    size_t i;
    json_t *action;
    char where[64];
    json_array_foreach(actions, i, action) {
        snprintf(where, sizeof where, "optimization_actions[%zu]", i);
        if (json_is_string(run_id) && json_is_object(action) && !json_object_get(action, "run_id"))
            json_object_set(action, "run_id", run_id);
        if (fn(ctx, where, action, NULL))
            break;
    }
    return AP_OK;
}

static ap_status read_lines(const char *text, size_t len, ap_kernel_action_fn fn, void *ctx) {
    char where[64], problem[256];
    int line = 0;
    for (const char *p = text, *end = text + len; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        snprintf(where, sizeof where, "line %d", line + 1);
        if (!is_blank(p, n)) {
            json_error_t jerr;
            json_t *action = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
            snprintf(problem, sizeof problem, "not JSON: %s at column %d", jerr.text, jerr.column);
            int stop = fn(ctx, where, action, action ? NULL : problem);
            json_decref(action);
            if (stop)
                break;
        }
        p += n + 1;
    }
    return AP_OK;
}

/* Whether the first non-blank line of text is a JSON value on its own; true
 * when there is no such line (empty input is empty JSON Lines). */
static int first_line_is_json(const char *text, size_t len) {
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!is_blank(p, n)) {
            json_error_t jerr;
            json_t *value = json_loadb(p, n, JSON_DECODE_ANY, &jerr);
            json_decref(value);
            return value != NULL;
        }
        p += n + 1;
    }
    return 1;
}

/* The form is decided once, for the whole input: a document when the text is
 * one JSON value spread over lines, JSON Lines when its first non-blank line
 * is a value on its own. Text that is neither is a broken document and fails
 * with the document's parse error: reading its lines one by one would publish
 * whichever entries happen to sit alone on a line. */
ap_status ap_kernel_output_read(FILE *in, ap_kernel_action_fn fn, void *ctx, char *err,
                                size_t errsz) {
    size_t len;
    json_error_t jerr;
    char *text = ap_read_all(in, &len);
    if (!text)
        return ap_fail(AP_ERR_IO, err, errsz, "cannot read kernel output");

    ap_status st;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (json_is_object(doc) && json_object_get(doc, "optimization_actions"))
        st = read_document(doc, fn, ctx, err, errsz);
    else if (json_is_array(doc))
        st = ap_fail(AP_ERR_INVALID, err, errsz,
                     "kernel output: expected {\"optimization_actions\": [...]} or JSON Lines, "
                     "got a bare array");
    else if (first_line_is_json(text, len))
        st = read_lines(text, len, fn, ctx);
    else if (doc)
        st = ap_fail(AP_ERR_INVALID, err, errsz,
                     "kernel output: expected {\"optimization_actions\": [...]} or JSON Lines, "
                     "got a document without 'optimization_actions'");
    else
        st = ap_fail(AP_ERR_INVALID, err, errsz, "kernel output: line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
    json_decref(doc);
    free(text);
    return st;
}
