/* driver.c — runs the HTTP connector for real: loads a connector config,
 * executes a file of actions as one concurrent batch (or several), and prints
 * one JSON line per result plus one per batch. tests/http_target/smoke.sh
 * builds it and checks what it prints against what http_target.py received.
 *
 *   driver [--timeout-ms N] [--max-in-flight N] [--max-response N] [--repeat N]
 *          [--map EXECUTOR_MAP] [--check] CONNECTOR_FILE [ACTIONS_JSONL]
 *
 * --check loads (and with --map checks) the config, prints "ok: N routes" and
 * exits. An action line may carry "_apply_value": it is passed as the value to
 * apply instead of proposed_change.value (as the worker does with a clamped
 * budget). Exit status: 0 when every batch ran, 1 when a batch could not run,
 * 2 on usage or configuration errors (the message on stderr). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "action.h"
#include "connector.h"
#include "executor_map.h"
#include "http_executor.h"
#include "log.h"

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int usage(void) {
    fprintf(stderr, "usage: driver [--timeout-ms N] [--max-in-flight N] [--max-response N] "
                    "[--repeat N] [--map EXECUTOR_MAP] [--check] CONNECTOR_FILE "
                    "[ACTIONS_JSONL]\n");
    return 2;
}

/* Reads one action per non-blank line into a (grown) array; returns the count
 * or -1 with a message on stderr. */
static int read_actions(const char *path, ap_action **out) {
    char err[512], *line = NULL;
    size_t cap = 0;
    int n = 0, lineno = 0;
    ap_action *acts = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "driver: cannot open '%s'\n", path);
        return -1;
    }
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        ap_action *grown = realloc(acts, (size_t)(n + 1) * sizeof *acts);
        if (!grown)
            break;
        acts = grown;
        if (ap_action_parse(&acts[n], line, strlen(line), err, sizeof err)) {
            fprintf(stderr, "driver: %s line %d: %s\n", path, lineno, err);
            n = -1;
            break;
        }
        n++;
    }
    free(line);
    fclose(f);
    *out = acts;
    return n;
}

int main(int argc, char **argv) {
    ap_http_options opt = AP_HTTP_OPTIONS_DEFAULT;
    const char *map_path = NULL, *config = NULL, *actions_path = NULL;
    int repeat = 1, check = 0, rc = 0, n = 0;
    char err[1024];
    ap_connector *conn = NULL;
    ap_http_executor *ex = NULL;
    ap_action *acts = NULL;
    ap_http_request *reqs = NULL;
    ap_http_result *results = NULL;

    ap_log_init("driver", "info");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check"))
            check = 1;
        else if (i + 1 < argc && !strcmp(a, "--timeout-ms"))
            opt.timeout_ms = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--max-in-flight"))
            opt.max_in_flight = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--max-response"))
            opt.max_response_bytes = (size_t)atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--repeat"))
            repeat = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--map"))
            map_path = argv[++i];
        else if (a[0] == '-')
            return usage();
        else if (!config)
            config = a;
        else if (!actions_path)
            actions_path = a;
        else
            return usage();
    }
    if (!config || (!check && !actions_path))
        return usage();

    if (ap_connector_load(config, &conn, err, sizeof err)) {
        fprintf(stderr, "driver: %s\n", err);
        return 2;
    }
    if (map_path) {
        ap_executor_map *map = ap_executor_map_load(map_path, err, sizeof err);
        ap_status st = map ? ap_connector_check_map(conn, map, err, sizeof err) : AP_ERR_INVALID;
        ap_executor_map_free(map);
        if (st) {
            fprintf(stderr, "driver: %s\n", err);
            rc = 2;
            goto out;
        }
    }
    if (check) {
        printf("ok: %d routes\n", ap_connector_route_count(conn));
        goto out;
    }
    if ((n = read_actions(actions_path, &acts)) < 0) {
        rc = 2;
        goto out;
    }
    reqs = calloc((size_t)n + 1, sizeof *reqs);
    results = calloc((size_t)n + 1, sizeof *results);
    if (!reqs || !results || !(ex = ap_http_executor_new(conn, &opt, err, sizeof err))) {
        fprintf(stderr, "driver: %s\n", reqs && results ? err : "out of memory");
        rc = 2;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        reqs[i].action = &acts[i];
        reqs[i].value = json_object_get(acts[i].json, "_apply_value");
    }

    for (int b = 1; b <= repeat; b++) {
        long start = now_ms();
        ap_status st = ap_http_execute(ex, reqs, n, results, err, sizeof err);
        long took = now_ms() - start;
        if (st) {
            fprintf(stderr, "driver: batch %d: %s\n", b, err);
            rc = 1;
        }
        for (int i = 0; i < n; i++) {
            const ap_http_result *r = &results[i];
            const ap_connector_route *route = ap_connector_route_for(conn, &acts[i]);
            json_t *line = json_pack(
                "{s:i, s:s, s:s?, s:s, s:i, s:s, s:s, s:i, s:I, s:O?, s:O?, s:b}", "batch", b,
                "action_id", acts[i].action_id, "route",
                route ? ap_connector_route_name(route) : NULL, "outcome",
                ap_http_outcome_name(r->outcome), "http_status", r->http_status, "error_class",
                r->error_class, "error", r->error, "retry_after_s", r->retry_after_s, "duration_ms",
                (json_int_t)r->duration_ms, "request", r->request, "response", r->response,
                "response_truncated", r->response_truncated);
            char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            if (text)
                printf("%s\n", text);
            free(text);
            json_decref(line);
            ap_http_result_release(&results[i]);
        }
        printf("{\"batch\":%d,\"batch_ms\":%ld,\"actions\":%d}\n", b, took, n);
        fflush(stdout);
    }
out:
    ap_http_executor_free(ex);
    for (int i = 0; i < n; i++)
        ap_action_release(&acts[i]);
    free(acts);
    free(reqs);
    free(results);
    ap_connector_free(conn);
    return rc;
}
