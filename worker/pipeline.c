#include "pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "action.h"
#include "alerts.h"
#include "dead_letter.h"
#include "http_stage.h"
#include "log.h"
#include "retry.h"
#include "validate.h"
#include "webhook.h"

typedef enum { ITEM_DEAD_LETTER, ITEM_REJECT, ITEM_EXECUTE } item_kind;

typedef struct item {
    item_kind kind;
    ap_action action;
    char reason[1024];
    const char *dead_class; /* ITEM_DEAD_LETTER: "oversized" or "unparseable" */
    char scope[AP_KEY_MAX]; /* "<tenant>:<subsystem>": its rate limit and breaker */
    ap_record record;       /* what Postgres records (not for a dead letter) */
} item;

/* Reads one message into an item: a dead letter, a rejection or an execution. */
static void item_read(ap_pipeline *p, const rd_kafka_message_t *m, const char *today, item *it) {
    char subsystem[64], replay_of[128];
    ap_verdict verdict;

    ap_record *r = &it->record;
    r->attempt = ap_retry_attempt(m);
    r->replay = *ap_header_get(m, "ap-replay-of", replay_of, sizeof replay_of) != '\0';
    if (m->len > (size_t)p->cfg->max_message_bytes) {
        it->kind = ITEM_DEAD_LETTER;
        it->dead_class = "oversized";
        snprintf(it->reason, sizeof it->reason,
                 "oversized: %zu bytes, more than max_message_bytes %d", m->len,
                 p->cfg->max_message_bytes);
        return;
    }
    if (ap_action_parse(&it->action, m->payload, m->len, it->reason, sizeof it->reason)) {
        it->kind = ITEM_DEAD_LETTER;
        it->dead_class = "unparseable";
        return;
    }
    it->kind = ITEM_REJECT;
    r->action = &it->action;
    r->reason = it->reason;
    r->status = "rejected";
    r->topic = rd_kafka_topic_name(m->rkt);
    r->partition = (int)m->partition;
    r->offset = (long long)m->offset;
    if (ap_validate(p->map, it->action.json, today, &verdict)) {
        ap_verdict_format(&verdict, it->reason, sizeof it->reason);
        return;
    }
    /* Any client can produce to our topics: the action must be on its own. */
    if (!ap_topic_subsystem(p->cfg->topic_prefix, r->topic, subsystem, sizeof subsystem) ||
        strcmp(subsystem, it->action.subsystem)) {
        snprintf(it->reason, sizeof it->reason,
                 "owner_subsystem: topic: action for '%s' arrived on topic '%s'",
                 it->action.subsystem, r->topic);
        return;
    }
    const ap_action *a = &it->action;
    const ap_field_rule *rule =
        ap_subsystem_field(ap_executor_map_subsystem(p->map, a->subsystem), a->field);
    it->kind = ITEM_EXECUTE;
    r->reason = NULL;
    r->status = json_is_true(json_object_get(a->json, "dry_run")) ||
                        !strcmp(p->cfg->execution_mode, "dry_run")
                    ? "dry_run"
                    : "executed";
    r->tier = ap_tiers_of(p->tiers, a);
    r->tier1_eligible = ap_tiers_eligible(p->tiers, a);
    r->guarded = rule && rule->budget_guardrail;
    r->target = "postgres";
}

/* The actions of the batch that go to a live HTTP target: those a route
 * matches, whose key this worker claimed and no earlier action of the batch
 * uses, and the first of each entity (the others wait behind it). A key another worker is executing
 * right now makes the batch wait (AP_ERR_BUSY); a finished one needs no request (Postgres records
 * it as redelivered or duplicate). */
static ap_status run_live(ap_pipeline *p, item *items, int n, const ap_guard_item *guards,
                          int nkeys, char *err, size_t errsz) {
    ap_record **live = calloc((size_t)nkeys + 1, sizeof *live);
    int nlive = 0;
    ap_status st = AP_OK;
    if (!live)
        return ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
    for (int i = 0, k = 0; i < n && !st; i++) {
        if (items[i].kind != ITEM_EXECUTE)
            continue;
        int key = k++; /* guards[] holds the ITEM_EXECUTE items in order */
        if (!ap_connector_route_for(p->connector, &items[i].action) ||
            guards[key].claim == AP_CLAIM_DONE)
            continue;
        if (guards[key].claim == AP_CLAIM_BUSY) {
            st = ap_fail(AP_ERR_BUSY, err, errsz,
                         "action '%s': idempotency key held by another worker",
                         items[i].action.action_id);
            break;
        }
        int seen = 0;
        for (int j = 0; j < key && !seen; j++)
            seen = !strcmp(guards[j].key, guards[key].key);
        if (seen)
            continue; /* Postgres records it as a duplicate */
        /* Per-entity order: requests of one batch run at once, so a second
         * action on an entity waits behind the first and is resumed after. */
        const ap_action *a = &items[i].action;
        int behind = 0;
        for (int j = 0; j < nlive && !behind; j++)
            behind = !strcmp(live[j]->action->partition_key, a->partition_key) &&
                     !strcmp(live[j]->action->subsystem, a->subsystem);
        if (behind) {
            items[i].record.wait = "behind";
            items[i].record.wait_ms = 0;
        } else {
            live[nlive++] = &items[i].record;
        }
    }
    if (!st && nlive)
        st = ap_http_stage_run(p->store, p->connector, p->http, live, nlive, err, errsz);
    free(live);
    return st;
}

/* Sends each action whose live request failed transiently on to its next
 * retry topic, or to the DLQ after the last (its status becomes
 * dead_lettered), and waits until they are delivered: before the outcome is
 * recorded, so that no retry_scheduled row lacks its retry message. */
static ap_status send_retries(ap_pipeline *p, rd_kafka_message_t **msgs, item *items, int n,
                              char *err, size_t errsz) {
    int sent = 0;
    for (int i = 0; i < n; i++) {
        ap_record *r = &items[i].record;
        if (items[i].kind != ITEM_EXECUTE || strcmp(r->status, "retry_scheduled"))
            continue;
        const char *error_class = json_string_value(json_object_get(r->http, "error_class"));
        json_int_t retry_after = json_integer_value(json_object_get(r->http, "retry_after_s"));
        int dead;
        ap_status st = ap_retry_send(p->dead_letters, p->cfg, p->retry_delays, msgs[i], error_class,
                                     json_string_value(json_object_get(r->http, "error")),
                                     (int)retry_after, &dead, err, errsz);
        if (st)
            return st;
        ap_metrics_count_retry(p->metrics, items[i].action.subsystem, r->attempt + 1, 1);
        if (dead) {
            r->status = "dead_lettered";
            ap_metrics_count_dead_letter(p->metrics, items[i].action.subsystem, error_class, 1);
        }
        p->stats.retried++;
        sent++;
    }
    if (sent && ap_publisher_flush(p->dead_letters, 30000))
        return ap_fail(AP_ERR_KAFKA, err, errsz, "retries not delivered within 30 s");
    return AP_OK;
}

/* Alerts for the circuit breakers the last report to Redis opened. */
static void note_opened_breakers(ap_pipeline *p) {
    for (int i = 0; i < ap_claims_opened_count(p->claims); i++) {
        const char *scope = ap_claims_opened(p->claims, i);
        char tenant[AP_KEY_MAX], message[AP_KEY_MAX + 128];
        snprintf(tenant, sizeof tenant, "%s", scope);
        char *colon = strrchr(tenant, ':');
        if (colon)
            *colon = '\0';
        snprintf(message, sizeof message,
                 "circuit breaker of %s opened: its executions wait until "
                 "actionpool-ctl breaker reset",
                 scope);
        ap_metrics_set_breaker(p->metrics, scope, 1);
        ap_alert_raise(p->store, p->cfg->alert_webhook_url, "breaker_open", tenant,
                       colon ? colon + 1 : NULL, message);
    }
}

ap_status ap_pipeline_idle(ap_pipeline *p, char *err, size_t errsz) {
    ap_status st = ap_claims_flush(p->claims, err, errsz);
    if (!st)
        note_opened_breakers(p);
    return st;
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void count(ap_pipeline_stats *s, const char *outcome) {
    if (!strcmp(outcome, "executed"))
        s->executed++;
    else if (!strcmp(outcome, "dry_run"))
        s->dry_run++;
    else if (!strcmp(outcome, "rejected"))
        s->rejected++;
    else if (!strcmp(outcome, "duplicate"))
        s->duplicate++;
    else if (!strcmp(outcome, "redelivered"))
        s->redelivered++;
    else
        s->waiting++; /* received, pending_approval, suggested, manual_only */
}

ap_status ap_pipeline_run(ap_pipeline *p, rd_kafka_message_t **msgs, int n, char *err,
                          size_t errsz) {
    ap_status st = AP_OK;
    char today[11];
    item *items = calloc((size_t)n, sizeof *items);
    ap_guard_item *guards = calloc((size_t)n, sizeof *guards);
    int *key_item = calloc((size_t)n, sizeof *key_item);
    ap_record **recs = calloc((size_t)n, sizeof *recs);
    int nkeys = 0, nrecs = 0, dead = 0;
    if (!items || !guards || !key_item || !recs) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        goto out;
    }

    ap_today_utc(today);
    for (int i = 0; i < n; i++) {
        item *it = &items[i];
        item_read(p, msgs[i], today, it);
        if (it->kind == ITEM_DEAD_LETTER)
            continue;
        it->record.ord = i;
        recs[nrecs++] = &it->record;
        if (it->kind != ITEM_EXECUTE)
            continue;
        snprintf(it->scope, sizeof it->scope, "%s:%s", it->action.tenant_id, it->action.subsystem);
        key_item[nkeys] = i;
        guards[nkeys++] =
            (ap_guard_item){.key = it->action.idempotency_key,
                            .scope = strcmp(it->record.status, "dry_run") ? it->scope : NULL};
    }

    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    /* For the built-in store the Postgres transaction below is the guard; the
     * claim makes a key's owner known to every replica (and to targets whose
     * effect a database constraint cannot undo). */
    if (nkeys && (st = ap_claims_take(p->claims, guards, nkeys, err, errsz)))
        goto out;
    note_opened_breakers(p);
    for (int k = 0; k < nkeys; k++) {
        ap_record *r = &items[key_item[k]].record;
        if (guards[k].claim != AP_CLAIM_OWNED || !guards[k].wait_ms)
            continue;
        r->wait = guards[k].wait_ms < 0 ? "breaker_open" : "rate_limit";
        r->wait_ms = guards[k].wait_ms;
    }

    if (p->connector && (st = run_live(p, items, n, guards, nkeys, err, errsz)))
        goto out;
    if ((st = send_retries(p, msgs, items, n, err, errsz)))
        goto out;
    if (nrecs && (st = ap_store_record(p->store, recs, nrecs, err, errsz)))
        goto out;

    for (int i = 0; i < n; i++) {
        if (items[i].kind != ITEM_DEAD_LETTER)
            continue;
        if ((st = ap_failure_send(p->dead_letters, p->cfg, msgs[i], 1, items[i].dead_class,
                                  items[i].reason, 0, err, errsz)))
            goto out;
        dead++;
    }
    if (dead && ap_publisher_flush(p->dead_letters, 30000)) {
        st = ap_fail(AP_ERR_KAFKA, err, errsz, "dead letters not delivered within 30 s");
        goto out;
    }

    /* Durable: count, log, and let every replica know the keys are done. */
    double took = seconds_since(&started);
    for (int k = 0; k < nkeys; k++) {
        const char *outcome = items[key_item[k]].record.outcome;
        int failed = !strcmp(outcome, "retry_scheduled") || !strcmp(outcome, "dead_lettered");
        int final = strcmp(outcome, "dry_run") && strcmp(outcome, "retry_scheduled") &&
                    strcmp(outcome, "received") && strcmp(outcome, "pending_approval");
        ap_run run = guards[k].wait_ms              ? AP_RUN_NONE /* took no token */
                     : !strcmp(outcome, "executed") ? AP_RUN_OK
                     : failed                       ? AP_RUN_FAILED
                                                    : AP_RUN_HELD;
        if (guards[k].claim == AP_CLAIM_OWNED)
            ap_claims_finish(p->claims, &guards[k], final ? outcome : NULL, run);
    }
    ap_metrics_observe_batch(p->metrics, n);
    for (int k = 0; k < nkeys; k++) {
        const item *it = &items[key_item[k]];
        if (guards[k].claim != AP_CLAIM_OWNED || !guards[k].scope)
            continue;
        ap_metrics_set_breaker(p->metrics, it->scope, guards[k].wait_ms < 0);
        if (guards[k].wait_ms > 0)
            ap_metrics_count_rate_limit_wait(p->metrics, it->action.subsystem, 1);
    }
    for (int k = 0; k < nrecs; k++) { /* the alerts table has the row (002) */
        const json_t *http = recs[k]->http;
        const char *class = json_string_value(json_object_get(http, "error_class"));
        if (!class || strcmp(class, "permission_denied"))
            continue;
        ap_webhook_post(p->cfg->alert_webhook_url, "permission_denied", recs[k]->action->tenant_id,
                        recs[k]->action->subsystem,
                        json_string_value(json_object_get(http, "error")));
    }
    for (int i = 0; i < n; i++) {
        item *it = &items[i];
        if (it->kind == ITEM_DEAD_LETTER) {
            char subsystem[64];
            if (!ap_topic_subsystem(p->cfg->topic_prefix, rd_kafka_topic_name(msgs[i]->rkt),
                                    subsystem, sizeof subsystem))
                snprintf(subsystem, sizeof subsystem, "unknown");
            p->stats.dead_lettered++;
            ap_metrics_count_action(p->metrics, subsystem, "dead_lettered", 1);
            ap_metrics_count_dead_letter(p->metrics, subsystem, it->dead_class, 1);
            ap_log(AP_LOG_WARN, "dead-lettered", "reason", it->reason, "topic",
                   rd_kafka_topic_name(msgs[i]->rkt), NULL);
            continue;
        }
        const char *outcome = it->record.outcome;
        count(&p->stats, outcome);
        ap_metrics_count_action(p->metrics, it->action.subsystem ? it->action.subsystem : "unknown",
                                outcome, 1);
        if (!strcmp(outcome, "executed"))
            ap_metrics_observe_execution(p->metrics, took);
        if (it->kind == ITEM_REJECT && !strcmp(outcome, "rejected"))
            ap_log(AP_LOG_WARN, "rejected", "action_id", it->action.action_id, "tenant_id",
                   it->action.tenant_id, "reason", it->reason, NULL);
        else
            ap_log(AP_LOG_DEBUG, outcome, "action_id", it->action.action_id, "tenant_id",
                   it->action.tenant_id, NULL);
    }
    p->stats.batches++;

out:
    for (int i = 0; items && i < n; i++) {
        json_decref(items[i].record.prepared);
        json_decref(items[i].record.http);
        ap_action_release(&items[i].action);
    }
    free(recs);
    free(key_item);
    free(guards);
    free(items);
    return st;
}
