/* kernel_output.h — reads the planner's output: either one JSON document
 * {"version": ..., "run_id": ..., "optimization_actions": [ ... ]} or JSON
 * Lines with one action per line. */
#ifndef AP_KERNEL_OUTPUT_H
#define AP_KERNEL_OUTPUT_H

#include <jansson.h>
#include <stdio.h>

#include "status.h"

/* Called once per action in input order. `action` is borrowed (NULL when the
 * entry could not be parsed, with `problem` saying why and where); `where`
 * names the entry ("optimization_actions[3]" or "line 7"). A document's run_id
 * is copied into actions that have none. Return non-zero to stop. */
typedef int (*ap_kernel_action_fn)(void *ctx, const char *where, json_t *action,
                                   const char *problem);

/* Reads all of `in` and calls fn per action. The input is a document when it
 * parses as one JSON value, JSON Lines when its first non-blank line does;
 * when neither holds it is a broken document and fails with AP_ERR_INVALID
 * and err "kernel output: line L column C: <parse error>", no action handed
 * on. Also fails, with err set, on a bare array or a document without an
 * optimization_actions array. In JSON Lines an unparseable later line is
 * reported through fn instead, so the other lines are still read. */
ap_status ap_kernel_output_read(FILE *in, ap_kernel_action_fn fn, void *ctx, char *err,
                                size_t errsz);

/* Reads a whole stream into a NUL-terminated buffer the caller frees. */
char *ap_read_all(FILE *in, size_t *len);

#endif
