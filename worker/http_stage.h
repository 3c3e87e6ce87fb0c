/* http_stage.h — the live HTTP target inside a batch. For the actions a
 * connector route matches, it asks Postgres what applying each would do
 * (ap_prepare_batch: the value after guardrails, a revert's previous value,
 * conflicts, actions already recorded), sends the requests that may go, all
 * at once, and writes the outcome into each action's record (store.h), so
 * that recording it is the same single transaction as for the built-in store. */
#ifndef AP_HTTP_STAGE_H
#define AP_HTTP_STAGE_H

#include <jansson.h>

#include "action.h"
#include "connector.h"
#include "http_executor.h"
#include "store.h"

/* Runs the live requests of recs[0..n) (borrowed, sorted by ord). A record
 * with status "dry_run" is rendered and recorded with the request it would
 * send, and nothing is sent. On return with AP_OK each record has target
 * "http", and prepared and http when it was checked; its status becomes
 * "rejected" (refused, 4xx, permission denied) or "retry_scheduled"
 * (transient: the pipeline sends it on to a retry topic) where that is the
 * outcome. Otherwise Postgres failed before any request was sent. */
ap_status ap_http_stage_run(ap_store *store, const ap_connector *connector,
                            ap_http_executor *executor, ap_record *const *recs, int n, char *err,
                            size_t errsz);

#endif
