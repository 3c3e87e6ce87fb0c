#include "http_stage.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A record's http member: what was sent and what came back. */
static json_t *http_member(const ap_http_result *r) {
    json_t *h = json_pack("{s:O?, s:O?, s:I}", "request", r->request, "response", r->response,
                          "duration_ms", (json_int_t)r->duration_ms);
    if (r->http_status)
        json_object_set_new(h, "status", json_integer(r->http_status));
    if (r->outcome != AP_HTTP_EXECUTED) {
        json_object_set_new(h, "error_class",
                            json_string(r->outcome == AP_HTTP_PERMISSION_DENIED
                                            ? "permission_denied"
                                            : r->error_class));
        json_object_set_new(h, "error", json_string(r->error));
    }
    if (r->retry_after_s >= 0)
        json_object_set_new(h, "retry_after_s", json_integer(r->retry_after_s));
    return h;
}

/* A dry run: the request that would be sent, described, and nothing sent. */
static json_t *dry_run_member(const ap_connector *c, const ap_action *a, const json_t *value) {
    ap_connector_request rq;
    char err[512];
    const ap_connector_route *route = ap_connector_route_for(c, a);
    if (ap_connector_render(c, route, a, value, &rq, err, sizeof err))
        return json_pack("{s:s, s:s}", "error_class", "template", "error", err);
    json_t *h = json_pack("{s:o}", "request", ap_connector_request_describe(&rq));
    ap_connector_request_release(&rq);
    return h;
}

ap_status ap_http_stage_run(ap_store *store, const ap_connector *connector,
                            ap_http_executor *executor, ap_record *const *recs, int n, char *err,
                            size_t errsz) {
    ap_status st = AP_OK;
    json_t *prepared = NULL;
    ap_http_request *reqs = calloc((size_t)n, sizeof *reqs);
    ap_http_result *results = calloc((size_t)n, sizeof *results);
    int *sent = calloc((size_t)n, sizeof *sent), nsent = 0;
    if (!reqs || !results || !sent) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        recs[i]->target = "http";
    if (!(prepared = ap_store_prepare(store, recs, n, err, errsz))) {
        st = AP_ERR_PG;
        goto out;
    }

    for (int i = 0; i < n; i++) {
        json_t *p = json_array_get(prepared, (size_t)i);
        ap_record *r = recs[i];
        if (json_is_string(json_object_get(p, "known")))
            continue; /* not to be sent: recorded before, a duplicate, or held by policy */
        r->prepared =
            json_pack("{s:O, s:O, s:O, s:O, s:O}", "field", json_object_get(p, "field"), "value",
                      json_object_get(p, "value"), "failure", json_object_get(p, "failure"), "why",
                      json_object_get(p, "why"), "output", json_object_get(p, "output"));
        if (json_is_string(json_object_get(p, "failure"))) {
            r->status = "rejected";
            continue;
        }
        const json_t *value = json_object_get(p, "value");
        if (!strcmp(r->status, "dry_run")) {
            r->http = dry_run_member(connector, r->action, value);
            continue;
        }
        reqs[nsent].action = r->action;
        reqs[nsent].value = value;
        sent[nsent++] = i;
    }

    if (nsent && (st = ap_http_execute(executor, reqs, nsent, results, err, errsz)))
        goto out;
    for (int k = 0; k < nsent; k++) {
        const ap_http_result *res = &results[k];
        ap_record *r = recs[sent[k]];
        const ap_action *a = r->action;
        r->http = http_member(res);
        if (res->outcome == AP_HTTP_TRANSIENT)
            r->status = "retry_scheduled";
        else if (res->outcome != AP_HTTP_EXECUTED)
            r->status = "rejected";
        if (res->outcome == AP_HTTP_PERMISSION_DENIED)
            ap_log(AP_LOG_ERROR, "permission denied by the live target", "action_id", a->action_id,
                   "tenant_id", a->tenant_id, "error", res->error, NULL);
        else if (res->outcome != AP_HTTP_EXECUTED)
            ap_log(AP_LOG_WARN, "live request failed", "action_id", a->action_id, "tenant_id",
                   a->tenant_id, "error_class", res->error_class, "error", res->error, NULL);
    }

out:
    for (int k = 0; results && k < nsent; k++)
        ap_http_result_release(&results[k]);
    free(sent);
    free(results);
    free(reqs);
    json_decref(prepared);
    return st;
}
