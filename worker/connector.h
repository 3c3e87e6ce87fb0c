/* connector.h — the live HTTP connector's configuration (the file named by the
 * setting `connector_file`; format: schemas/connector.schema.json, worked
 * example: schemas/examples/connector.json).
 *
 * A connector config names one or more connectors (a platform: base URL, auth,
 * extra headers, timeout) and a list of routes. A route matches actions by
 * subsystem, field and optionally action type, and says how to turn one action
 * into one HTTP request: method, URL template, JSON body template, headers,
 * timeout. Routes are tried in file order; the first match wins; an action no
 * route matches is not an HTTP action (the worker applies it to the built-in
 * Postgres store).
 *
 * Templates. "{name}" is replaced by:
 *   base_url                 the connector's base URL (URL templates only)
 *   entity_id, tenant_id, action_id, field, subsystem, action_type
 *   value                    the value to apply (proposed_change.value, or
 *                            what the caller passes, e.g. a clamped budget)
 *   value.<path>             a member of the value: object keys and array
 *                            indexes separated by dots, e.g. value.include.0
 * "{{" and "}}" stand for literal braces. In the URL every substitution but
 * base_url is percent-encoded (all but A-Z a-z 0-9 - . _ ~). In the body, a
 * string leaf that is exactly one placeholder ("{value}") is replaced by the
 * JSON value itself (a number stays a number, an object an object); inside a
 * longer string the value is written as text (strings as they are, other values
 * as compact JSON). Header values take placeholders as text. A placeholder
 * whose value is missing, or an object or array inside a URL or header, makes
 * the request impossible to build: the action is rejected with error class
 * "template".
 *
 * Secrets. Bearer tokens and API keys are read once, by ap_connector_load, from
 * a file (path relative to the config file's folder; surrounding whitespace
 * trimmed) or an environment variable. They are kept in memory only, wiped
 * when the connector is freed, and never appear in an error message, a log
 * line, a rendered request description or a result (responses that echo them
 * are redacted: ap_connector_redact).
 *
 * Thread safety: a loaded connector is read-only; any number of threads may
 * render with it at once. */
#ifndef AP_CONNECTOR_H
#define AP_CONNECTOR_H

#include <jansson.h>

#include "action.h"
#include "executor_map.h"
#include "status.h"

typedef struct ap_connector ap_connector;             /* a loaded config */
typedef struct ap_connector_route ap_connector_route; /* one route, owned by its config */

/* Loads, checks and resolves the config at path: every member is validated
 * (unknown members are errors), placeholders are checked, secrets are read,
 * `base_url_env` overrides are applied. On success *out is a new connector the
 * caller frees with ap_connector_free. On failure *out is NULL and err says
 * "path: where: what", e.g.
 *   "connector.json: routes[2].method: must be one of GET, POST, PUT, PATCH, DELETE"
 * and never quotes a secret. */
ap_status ap_connector_load(const char *path, ap_connector **out, char *err, size_t errsz);

/* Wipes the secrets and frees everything; c may be NULL. Routes and rendered
 * requests borrowed from c must not be used afterwards. */
void ap_connector_free(ap_connector *c);

/* Checks every route against the executor map: its subsystem exists, its
 * field is one the subsystem may change, and the subsystem accepts each action
 * type it lists. err as for ap_connector_load. */
ap_status ap_connector_check_map(const ap_connector *c, const ap_executor_map *map, char *err,
                                 size_t errsz);

/* The first route that matches a's subsystem, field and action type, or NULL
 * when the action is not sent over HTTP. The route is owned by c. */
const ap_connector_route *ap_connector_route_for(const ap_connector *c, const ap_action *a);

/* The route's name for logs and results: its "name" member, else "routes[i]".
 * Owned by the connector. */
const char *ap_connector_route_name(const ap_connector_route *r);

/* The connector a route sends to ("adobe"). Owned by the connector. */
const char *ap_connector_route_connector(const ap_connector_route *r);

/* Number of routes, for a start-up log line. */
int ap_connector_route_count(const ap_connector *c);

/* One request, rendered for one action. Every string is owned by the request
 * (release it with ap_connector_request_release) except method, connector and
 * route, which the connector owns. headers[0 .. header_count) are complete
 * "Name: value" lines; the first `secret_headers` of them carry credentials
 * (Authorization, the API key header) and are wiped on release. The
 * executor adds Idempotency-Key, Content-Type, Accept and User-Agent itself. */
typedef struct ap_connector_request {
    const char *method;    /* "PATCH" */
    const char *connector; /* connector name */
    const char *route;     /* route name */
    char *url;             /* absolute, percent-encoded */
    json_t *body;          /* rendered body, or NULL when the route has none */
    char *body_text;       /* body as sent (compact JSON), NULL when none */
    char **headers;
    int header_count;
    int secret_headers;
    int timeout_ms; /* from the route, else the connector; 0: the caller's default */
} ap_connector_request;

/* Renders route r for action a. `value` is the value to apply (borrowed); NULL
 * means the action's own (ap_action_value). On failure (a placeholder that
 * cannot be filled) returns AP_ERR_INVALID with err naming the route, the
 * template and the placeholder, and *rq is left empty. */
ap_status ap_connector_render(const ap_connector *c, const ap_connector_route *r,
                              const ap_action *a, const json_t *value, ap_connector_request *rq,
                              char *err, size_t errsz);

/* What a rendered request sends, without credentials, for the audit trail and
 * dry runs: {"connector", "route", "method", "url", "headers": {non-secret
 * route and connector headers}, "body"}. A new reference; NULL when out of
 * memory. */
json_t *ap_connector_request_describe(const ap_connector_request *rq);

/* Wipes the secret header lines and frees what rq owns; rq is left zeroed and
 * may be released again. */
void ap_connector_request_release(ap_connector_request *rq);

/* Overwrites with '*' every occurrence of any of c's secrets in text[0..len).
 * When `cut` is set (the text was truncated), a tail of 4 bytes or more that
 * begins a secret is overwritten too. Returns how many places were redacted. */
int ap_connector_redact(const ap_connector *c, char *text, size_t len, int cut);

#endif
