/* connector.c — loads the HTTP connector config and renders one request per
 * action from its templates. The format is described in connector.h and
 * schemas/connector.schema.json. */
#include "connector.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET_MAX  16384  /* bytes in a token or key file */
#define TIMEOUT_MAX 600000 /* ms; a request never waits longer than 10 minutes */

/* One entry of "connectors": where requests go and how they authenticate. */
typedef struct conn {
    const char *name;           /* borrowed from the root document */
    char *base_url;             /* owned; no trailing slash */
    char *bearer;               /* owned secret, or NULL */
    char *api_key;              /* owned secret, or NULL */
    const char *api_key_header; /* header carrying api_key ("x-api-key") */
    const json_t *headers;      /* object of header templates, or NULL */
    int timeout_ms;             /* 0: not set */
} conn;

struct ap_connector_route {
    char label[32];        /* "routes[2]", for errors */
    const char *name;      /* "name" member, else label */
    const conn *conn;      /* where it sends */
    const char *subsystem; /* matched exactly */
    const char *field;     /* matched exactly */
    unsigned types;        /* bit per ap_action_type that matches */
    const char *method;    /* one of methods[] */
    const char *url;       /* URL template */
    const json_t *body;    /* body template, or NULL for no body */
    const json_t *headers; /* object of header templates, or NULL */
    int timeout_ms;        /* 0: the connector's */
};

struct ap_connector {
    json_t *root; /* owns every borrowed string above */
    char *path;   /* as given, for error messages */
    conn *conns;
    int conn_count;
    ap_connector_route *routes;
    int route_count;
};

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
#define ALL_TYPES ((1u << AP_ACTION_TYPE_COUNT) - 1)
#define COUNT(a)  (int)(sizeof(a) / sizeof((a)[0]))

/* Headers the executor or curl sets; a config may not set them. */
static const char *const reserved_headers[] = {
    "authorization", "idempotency-key", "content-type", "content-length", "host",
    "user-agent",    "accept",          "connection",   "expect",         "transfer-encoding",
};

/* ---- errors ------------------------------------------------------------ */

/* "path: where: message" into err; returns AP_ERR_INVALID. */
static ap_status bad(char *err, size_t errsz, const ap_connector *c, const char *where,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static ap_status bad(char *err, size_t errsz, const ap_connector *c, const char *where,
                     const char *fmt, ...) {
    if (err && errsz) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(err, errsz, "%s: %s: %s", c->path, where, msg);
    }
    return AP_ERR_INVALID;
}

/* ---- a growable string --------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int oom; /* set once an append failed; the content is then incomplete */
} strbuf;

static void sb_add(strbuf *sb, const char *s, size_t n) {
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < sb->len + n + 1)
            cap *= 2;
        char *p = realloc(sb->p, cap);
        if (!p) {
            sb->oom = 1;
            return;
        }
        sb->p = p;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void sb_str(strbuf *sb, const char *s) {
    sb_add(sb, s, strlen(s));
}

/* Appends s with every byte but the RFC 3986 unreserved ones as %XX. */
static void sb_add_encoded(strbuf *sb, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sb_add(sb, (const char *)&ch, 1);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sb_add(sb, esc, 3);
        }
    }
}

/* Hands the buffer over (an empty string when nothing was added); NULL when
 * an append failed. */
static char *sb_take(strbuf *sb) {
    char *p = sb->oom ? NULL : sb->p ? sb->p : strdup("");
    if (sb->oom)
        free(sb->p);
    memset(sb, 0, sizeof *sb);
    return p;
}

/* ---- numbers ------------------------------------------------------------- */

/* The fewest significant digits (15..17) that read back as exactly d, so that
 * 17.05 is sent as 17.05 and not 17.050000000000001. */
static int real_digits(double d) {
    char buf[40];
    for (int p = 15; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, d);
        if (strtod(buf, NULL) == d)
            return p;
    }
    return 17;
}

/* Largest real_digits over every real in v. */
static int json_digits(const json_t *v) {
    int most = 15;
    size_t i;
    const char *k;
    json_t *item;
    if (json_is_real(v))
        return real_digits(json_real_value(v));
    if (json_is_array(v))
        json_array_foreach((json_t *)v, i, item) {
            int d = json_digits(item);
            most = d > most ? d : most;
        }
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, item) {
            int d = json_digits(item);
            most = d > most ? d : most;
        }
    return most;
}

/* Compact JSON text of v, reals in their shortest exact form. Caller frees. */
static char *json_text(const json_t *v) {
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER |
                             JSON_REAL_PRECISION(json_digits(v)));
}

/* ---- templates ----------------------------------------------------------- */

enum piece { PIECE_END, PIECE_TEXT, PIECE_NAME, PIECE_UNCLOSED };

/* Reads the next piece of template s from *pos: literal text or a placeholder
 * name, as a pointer into s and a length. "{{" and "}}" are one literal brace. */
static enum piece next_piece(const char *s, size_t *pos, const char **p, size_t *n) {
    const char *at = s + *pos;
    if (!*at)
        return PIECE_END;
    if ((at[0] == '{' && at[1] == '{') || (at[0] == '}' && at[1] == '}')) {
        *p = at, *n = 1, *pos += 2;
        return PIECE_TEXT;
    }
    if (at[0] == '{') {
        const char *end = strchr(at + 1, '}');
        if (!end)
            return PIECE_UNCLOSED;
        *p = at + 1, *n = (size_t)(end - at - 1), *pos += (size_t)(end - at) + 1;
        return PIECE_NAME;
    }
    size_t len = 1;
    while (at[len] && at[len] != '{' && !(at[len] == '}' && at[len + 1] == '}'))
        len++;
    *p = at, *n = len, *pos += len;
    return PIECE_TEXT;
}

static const char *const action_names[] = {"entity_id", "tenant_id", "action_id",
                                           "field",     "subsystem", "action_type"};

static int name_is(const char *name, size_t n, const char *want) {
    return strlen(want) == n && !memcmp(name, want, n);
}

/* Whether name is a placeholder this module knows: base_url, the action's
 * strings, value, or value.<path> with non-empty dot-separated segments. */
static int name_known(const char *name, size_t n) {
    if (name_is(name, n, "base_url") || name_is(name, n, "value"))
        return 1;
    for (int i = 0; i < COUNT(action_names); i++)
        if (name_is(name, n, action_names[i]))
            return 1;
    if (n > 6 && !memcmp(name, "value.", 6)) {
        for (size_t i = 6; i < n; i++)
            if (name[i] == '.' && (i == 6 || name[i - 1] == '.' || i == n - 1))
                return 0;
            else if (name[i] == '{' || name[i] == '"')
                return 0;
        return name[n - 1] != '.';
    }
    return 0;
}

/* Checks the placeholders of template s; fills why on failure. */
static int template_ok(const char *s, char *why, size_t whysz) {
    size_t pos = 0, n;
    const char *p;
    enum piece k;
    while ((k = next_piece(s, &pos, &p, &n)) != PIECE_END) {
        if (k == PIECE_UNCLOSED) {
            snprintf(why, whysz, "unclosed '{' (write \"{{\" for a literal brace)");
            return 0;
        }
        if (k == PIECE_NAME && !name_known(p, n)) {
            snprintf(why, whysz,
                     "unknown placeholder '{%.*s}' (known: base_url, value, value.<path>, "
                     "entity_id, tenant_id, action_id, field, subsystem, action_type)",
                     (int)(n > 64 ? 64 : n), p);
            return 0;
        }
    }
    return 1;
}

/* What a placeholder stands for while rendering one action. */
typedef struct render_ctx {
    const conn *conn;
    const ap_action *action;
    const json_t *value; /* NULL when the action has none */
} render_ctx;

/* Resolves placeholder `name` to either *text or *json. Returns 0, or -1 with
 * why set when the action has no such value. */
static int resolve(const render_ctx *ctx, const char *name, size_t n, const char **text,
                   const json_t **json, char *why, size_t whysz) {
    *text = NULL, *json = NULL;
    if (name_is(name, n, "base_url")) {
        *text = ctx->conn->base_url;
        return 0;
    }
    const ap_action *a = ctx->action;
    const char *const values[] = {a->entity_id, a->tenant_id, a->action_id,
                                  a->field,     a->subsystem, a->action_type};
    for (int i = 0; i < COUNT(action_names); i++)
        if (name_is(name, n, action_names[i])) {
            if (!values[i]) {
                snprintf(why, whysz, "the action has no %s", action_names[i]);
                return -1;
            }
            *text = values[i];
            return 0;
        }
    /* value or value.<path> */
    const json_t *v = ctx->value;
    size_t at = 5; /* after "value" */
    while (v && at < n) {
        size_t start = at + 1, end = start;
        while (end < n && name[end] != '.')
            end++;
        if (json_is_object(v)) {
            v = json_object_getn(v, name + start, end - start);
        } else if (json_is_array(v)) {
            char *stop;
            char idx[24];
            snprintf(idx, sizeof idx, "%.*s", (int)(end - start < 20 ? end - start : 20),
                     name + start);
            long i = strtol(idx, &stop, 10);
            v = (*stop || !isdigit((unsigned char)idx[0])) ? NULL : json_array_get(v, (size_t)i);
        } else {
            v = NULL;
        }
        at = end;
    }
    if (!v || json_is_null(v)) {
        snprintf(why, whysz, "the action's %.*s is missing", (int)(n > 64 ? 64 : n), name);
        return -1;
    }
    *json = v;
    return 0;
}

enum text_mode { TEXT_URL, TEXT_HEADER, TEXT_BODY };

/* Appends a JSON value as text: strings as they are, other scalars in JSON;
 * objects and arrays only in a body (as compact JSON). */
static int add_value_text(strbuf *sb, const json_t *v, enum text_mode mode, const char *name,
                          size_t n, char *why, size_t whysz) {
    if (json_is_string(v)) {
        if (mode == TEXT_URL)
            sb_add_encoded(sb, json_string_value(v), json_string_length(v));
        else
            sb_add(sb, json_string_value(v), json_string_length(v));
        return 0;
    }
    if ((json_is_object(v) || json_is_array(v)) && mode != TEXT_BODY) {
        snprintf(why, whysz, "'{%.*s}' is %s; only a body can carry it", (int)(n > 64 ? 64 : n),
                 name, json_is_object(v) ? "an object" : "an array");
        return -1;
    }
    char *text = json_text(v);
    if (!text) {
        sb->oom = 1;
        return 0;
    }
    sb_str(sb, text);
    free(text);
    return 0;
}

/* Renders string template s into sb. */
static int render_text(const char *s, enum text_mode mode, const render_ctx *ctx, strbuf *sb,
                       char *why, size_t whysz) {
    size_t pos = 0, n;
    const char *p, *text;
    const json_t *json;
    enum piece k;
    while ((k = next_piece(s, &pos, &p, &n)) != PIECE_END) {
        if (k == PIECE_TEXT) {
            sb_add(sb, p, n);
            continue;
        }
        /* PIECE_UNCLOSED cannot happen: templates were checked at load */
        if (k != PIECE_NAME || resolve(ctx, p, n, &text, &json, why, whysz))
            return -1;
        if (json) {
            if (add_value_text(sb, json, mode, p, n, why, whysz))
                return -1;
        } else if (mode == TEXT_URL && !name_is(p, n, "base_url")) {
            sb_add_encoded(sb, text, strlen(text));
        } else {
            sb_str(sb, text);
        }
    }
    return 0;
}

/* If s is exactly one placeholder, sets *name and *n to it and returns 1. */
static int whole_placeholder(const char *s, const char **name, size_t *n) {
    size_t pos = 0;
    if (next_piece(s, &pos, name, n) != PIECE_NAME)
        return 0;
    const char *p;
    size_t m;
    return next_piece(s, &pos, &p, &m) == PIECE_END;
}

/* Renders a body template: a new value, or NULL with why set. */
static json_t *render_json(const json_t *t, const render_ctx *ctx, char *why, size_t whysz) {
    const char *k, *name;
    size_t i, n;
    json_t *item, *out;

    if (json_is_string(t)) {
        const char *s = json_string_value(t), *text;
        const json_t *json;
        if (whole_placeholder(s, &name, &n)) {
            if (resolve(ctx, name, n, &text, &json, why, whysz))
                return NULL;
            return json ? json_deep_copy(json) : json_string(text);
        }
        strbuf sb = {0};
        if (render_text(s, TEXT_BODY, ctx, &sb, why, whysz)) {
            free(sb.p);
            return NULL;
        }
        char *str = sb_take(&sb);
        out = str ? json_string(str) : NULL;
        free(str);
        if (!out)
            snprintf(why, whysz, "out of memory");
        return out;
    }
    if (json_is_array(t)) {
        out = json_array();
        json_array_foreach((json_t *)t, i, item) {
            json_t *r = out ? render_json(item, ctx, why, whysz) : NULL;
            if (!r || json_array_append_new(out, r)) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (json_is_object(t)) {
        out = json_object();
        json_object_foreach((json_t *)t, k, item) {
            json_t *r = out ? render_json(item, ctx, why, whysz) : NULL;
            if (!r || json_object_set_new(out, k, r)) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    return json_deep_copy(t);
}

/* Checks every string of a body template; where is extended with the path. */
static int body_ok(const json_t *t, char *where, size_t wsz, char *why, size_t whysz) {
    size_t len = strlen(where), i;
    const char *k;
    json_t *item;
    if (json_is_string(t))
        return template_ok(json_string_value(t), why, whysz);
    if (json_is_array(t))
        json_array_foreach((json_t *)t, i, item) {
            snprintf(where + len, wsz - len, "[%zu]", i);
            if (!body_ok(item, where, wsz, why, whysz))
                return 0;
        }
    if (json_is_object(t))
        json_object_foreach((json_t *)t, k, item) {
            snprintf(where + len, wsz - len, ".%s", k);
            if (!body_ok(item, where, wsz, why, whysz))
                return 0;
        }
    where[len] = '\0';
    return 1;
}

/* ---- loading ------------------------------------------------------------- */

/* Fails on any member of obj not in the NULL-terminated list `known`. */
static ap_status members_ok(const ap_connector *c, const json_t *obj, const char *where,
                            const char *const *known, char *err, size_t errsz) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        int i;
        for (i = 0; known[i] && strcmp(known[i], k); i++)
            ;
        if (!known[i])
            return bad(err, errsz, c, where, "unknown member '%s'", k);
    }
    return AP_OK;
}

/* An optional string member; -1 when present but not a non-empty string. */
static int opt_string(const json_t *obj, const char *key, const char **out) {
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v) || !json_string_length(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static ap_status timeout_parse(const ap_connector *c, const json_t *obj, const char *where,
                               int *out, char *err, size_t errsz) {
    const json_t *v = json_object_get(obj, "timeout_ms");
    char at[256];
    *out = 0;
    if (!v)
        return AP_OK;
    snprintf(at, sizeof at, "%s.timeout_ms", where);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > TIMEOUT_MAX)
        return bad(err, errsz, c, at, "must be an integer from 1 to %d", TIMEOUT_MAX);
    *out = (int)json_integer_value(v);
    return AP_OK;
}

/* Whether u starts with http:// or https:// and a host. */
static int url_scheme_ok(const char *u) {
    const char *rest = !strncmp(u, "http://", 7)    ? u + 7
                       : !strncmp(u, "https://", 8) ? u + 8
                                                    : NULL;
    return rest && *rest && *rest != '/' && *rest != '{';
}

/* Whether the authority of an http(s) URL carries user:password@ (credentials
 * there would end up in results and logs; they belong in "auth"). */
static int url_has_userinfo(const char *u) {
    const char *host = strstr(u, "://");
    if (!host)
        return 0;
    host += 3;
    size_t n = strcspn(host, "/?#");
    return memchr(host, '@', n) != NULL;
}

/* A base URL: http(s), a host, no credentials, no spaces, braces or controls. */
static int url_ok(const char *u) {
    if (!url_scheme_ok(u) || url_has_userinfo(u))
        return 0;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '{' || *p == '}')
            return 0;
    return 1;
}

static int header_name_ok(const char *s) {
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

static int has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return 1;
    return 0;
}

/* Checks a "headers" object: names are tokens and not reserved (nor the API
 * key header), values are templates. */
static ap_status headers_parse(const ap_connector *c, const json_t *obj, const char *where,
                               const char *api_key_header, const json_t **out, char *err,
                               size_t errsz) {
    char at[512], why[256];
    const char *k;
    json_t *v;
    *out = json_object_get(obj, "headers");
    if (!*out)
        return AP_OK;
    snprintf(at, sizeof at, "%s.headers", where);
    if (!json_is_object(*out))
        return bad(err, errsz, c, at, "must be an object of header names to strings");
    json_object_foreach((json_t *)*out, k, v) {
        snprintf(at, sizeof at, "%s.headers.%s", where, k);
        if (!header_name_ok(k))
            return bad(err, errsz, c, at, "not a valid header name");
        for (int i = 0; i < COUNT(reserved_headers); i++)
            if (!strcasecmp(k, reserved_headers[i]))
                return bad(err, errsz, c, at, "set by actionpool itself, not by the config");
        if (api_key_header && !strcasecmp(k, api_key_header))
            return bad(err, errsz, c, at, "carries the API key; set it with auth.api_key_*");
        if (!json_is_string(v) || has_control(json_string_value(v)))
            return bad(err, errsz, c, at, "must be a string without control characters");
        if (!template_ok(json_string_value(v), why, sizeof why))
            return bad(err, errsz, c, at, "%s", why);
        if (strstr(json_string_value(v), "{base_url}"))
            return bad(err, errsz, c, at, "'{base_url}' only belongs in a URL");
    }
    return AP_OK;
}

/* The folder of path with a trailing slash, into buf ("" for a bare name). */
static void dir_of(const char *path, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), path);
}

/* Reads a secret from a file or the environment into *out (owned, to be wiped
 * with its length). Error messages name the file or the variable, never what
 * they hold. */
static ap_status secret_read(const ap_connector *c, const char *where, const char *file,
                             const char *env, char **out, char *err, size_t errsz) {
    char buf[SECRET_MAX + 1], path[4096];
    size_t n = 0;
    ap_status st = AP_OK;
    *out = NULL;

    if (env) {
        const char *v = getenv(env);
        if (!v || !*v)
            return bad(err, errsz, c, where, "environment variable %s is not set", env);
        n = strlen(v);
        if (n > SECRET_MAX)
            return bad(err, errsz, c, where, "the value of %s is longer than %d bytes", env,
                       SECRET_MAX);
        memcpy(buf, v, n);
    } else {
        if (file[0] == '/')
            snprintf(path, sizeof path, "%s", file);
        else {
            dir_of(c->path, path, sizeof path);
            snprintf(path + strlen(path), sizeof path - strlen(path), "%s", file);
        }
        FILE *f = fopen(path, "rb");
        if (!f)
            return bad(err, errsz, c, where, "cannot read '%s': %s", path, strerror(errno));
        n = fread(buf, 1, sizeof buf, f);
        int failed = ferror(f);
        fclose(f);
        if (failed)
            st = bad(err, errsz, c, where, "cannot read '%s'", path);
        else if (n > SECRET_MAX)
            st = bad(err, errsz, c, where, "'%s' is longer than %d bytes", path, SECRET_MAX);
        if (st)
            goto out;
    }
    buf[n] = '\0';
    size_t start = 0;
    while (start < n && isspace((unsigned char)buf[start]))
        start++;
    while (n > start && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    if (n == start)
        st = bad(err, errsz, c, where, "the secret is empty");
    else if (has_control(buf + start))
        st = bad(err, errsz, c, where, "the secret has control characters");
    else if (!(*out = strdup(buf + start)))
        st = bad(err, errsz, c, where, "out of memory");
out:
    explicit_bzero(buf, sizeof buf);
    return st;
}

static ap_status auth_parse(const ap_connector *c, conn *cn, const json_t *def, const char *where,
                            char *err, size_t errsz) {
    static const char *const known[] = {"bearer_token_file", "bearer_token_env", "api_key_file",
                                        "api_key_env",       "api_key_header",   NULL};
    char at[192], sub[256];
    const char *tfile, *tenv, *kfile, *kenv;
    const json_t *auth = json_object_get(def, "auth");
    ap_status st;

    cn->api_key_header = NULL;
    if (!auth)
        return AP_OK;
    snprintf(at, sizeof at, "%s.auth", where);
    if (!json_is_object(auth))
        return bad(err, errsz, c, at, "must be an object");
    if ((st = members_ok(c, auth, at, known, err, errsz)))
        return st;
    for (int i = 0; known[i]; i++) {
        const char *ignored;
        snprintf(sub, sizeof sub, "%s.%s", at, known[i]);
        if (opt_string(auth, known[i], &ignored))
            return bad(err, errsz, c, sub, "must be a non-empty string");
    }
    opt_string(auth, "bearer_token_file", &tfile);
    opt_string(auth, "bearer_token_env", &tenv);
    opt_string(auth, "api_key_file", &kfile);
    opt_string(auth, "api_key_env", &kenv);
    opt_string(auth, "api_key_header", &cn->api_key_header);
    if (tfile && tenv)
        return bad(err, errsz, c, at, "give bearer_token_file or bearer_token_env, not both");
    if (kfile && kenv)
        return bad(err, errsz, c, at, "give api_key_file or api_key_env, not both");
    if (cn->api_key_header && !kfile && !kenv)
        return bad(err, errsz, c, at, "api_key_header without api_key_file or api_key_env");
    if (cn->api_key_header) {
        snprintf(sub, sizeof sub, "%s.api_key_header", at);
        if (!header_name_ok(cn->api_key_header))
            return bad(err, errsz, c, sub, "not a valid header name");
        for (int i = 0; i < COUNT(reserved_headers); i++)
            if (!strcasecmp(cn->api_key_header, reserved_headers[i]))
                return bad(err, errsz, c, sub, "'%s' is set by actionpool itself",
                           cn->api_key_header);
    }
    if (tfile || tenv) {
        snprintf(sub, sizeof sub, "%s.%s", at, tfile ? "bearer_token_file" : "bearer_token_env");
        if ((st = secret_read(c, sub, tfile, tenv, &cn->bearer, err, errsz)))
            return st;
    }
    if (kfile || kenv) {
        snprintf(sub, sizeof sub, "%s.%s", at, kfile ? "api_key_file" : "api_key_env");
        if ((st = secret_read(c, sub, kfile, kenv, &cn->api_key, err, errsz)))
            return st;
        if (!cn->api_key_header)
            cn->api_key_header = "x-api-key";
    }
    return AP_OK;
}

static ap_status conn_parse(const ap_connector *c, conn *cn, const char *name, const json_t *def,
                            char *err, size_t errsz) {
    static const char *const known[] = {
        "description", "base_url", "base_url_env", "auth", "headers", "timeout_ms", NULL};
    char where[128], at[256];
    const char *base, *base_env;
    ap_status st;

    cn->name = name;
    snprintf(where, sizeof where, "connectors.%s", name);
    if (!json_is_object(def))
        return bad(err, errsz, c, where, "must be an object");
    if ((st = members_ok(c, def, where, known, err, errsz)))
        return st;
    snprintf(at, sizeof at, "%s.base_url", where);
    if (opt_string(def, "base_url", &base))
        return bad(err, errsz, c, at, "must be a non-empty string");
    snprintf(at, sizeof at, "%s.base_url_env", where);
    if (opt_string(def, "base_url_env", &base_env))
        return bad(err, errsz, c, at, "must be a non-empty string");
    if (base_env && getenv(base_env) && *getenv(base_env)) {
        /* the environment overrides the file: staging, tests */
        if (!url_ok(getenv(base_env)))
            return bad(err, errsz, c, at,
                       "%s must hold an http:// or https:// URL without credentials", base_env);
        base = getenv(base_env);
    } else if (!base) {
        snprintf(at, sizeof at, "%s.base_url", where);
        return bad(err, errsz, c, at,
                   base_env ? "missing, and the environment variable %s is not set" : "missing%s",
                   base_env ? base_env : "");
    } else {
        snprintf(at, sizeof at, "%s.base_url", where);
        if (!url_ok(base))
            return bad(err, errsz, c, at,
                       "must be an http:// or https:// URL without credentials (those go in "
                       "\"auth\")");
    }
    if (!(cn->base_url = strdup(base)))
        return bad(err, errsz, c, where, "out of memory");
    size_t n = strlen(cn->base_url);
    while (n > 8 && cn->base_url[n - 1] == '/')
        cn->base_url[--n] = '\0';

    if ((st = auth_parse(c, cn, def, where, err, errsz)) ||
        (st = headers_parse(c, def, where, cn->api_key_header, &cn->headers, err, errsz)))
        return st;
    return timeout_parse(c, def, where, &cn->timeout_ms, err, errsz);
}

static ap_status route_parse(ap_connector *c, ap_connector_route *r, int index, const json_t *def,
                             char *err, size_t errsz) {
    static const char *const known[] = {"name",  "description", "connector",  "subsystem",
                                        "field", "action_type", "method",     "url",
                                        "body",  "headers",     "timeout_ms", NULL};
    char at[256], why[256];
    const char *connector, *method;
    ap_status st;

    snprintf(r->label, sizeof r->label, "routes[%d]", index);
    const char *where = r->label;
    if (!json_is_object(def))
        return bad(err, errsz, c, where, "must be an object");
    if ((st = members_ok(c, def, where, known, err, errsz)))
        return st;

    static const char *const strings[] = {"name",  "connector", "subsystem",
                                          "field", "method",    "url"};
    for (int i = 0; i < COUNT(strings); i++) {
        const char *ignored;
        snprintf(at, sizeof at, "%s.%s", where, strings[i]);
        if (opt_string(def, strings[i], &ignored))
            return bad(err, errsz, c, at, "must be a non-empty string");
    }
    opt_string(def, "name", &r->name);
    opt_string(def, "connector", &connector);
    opt_string(def, "subsystem", &r->subsystem);
    opt_string(def, "field", &r->field);
    opt_string(def, "method", &method);
    opt_string(def, "url", &r->url);
    if (!r->name)
        r->name = r->label;

    snprintf(at, sizeof at, "%s.connector", where);
    if (!connector && c->conn_count > 1)
        return bad(err, errsz, c, at, "missing (the file has more than one connector)");
    for (int i = 0; i < c->conn_count && !r->conn; i++)
        if (!connector || !strcmp(connector, c->conns[i].name))
            r->conn = &c->conns[i];
    if (!r->conn)
        return bad(err, errsz, c, at, "unknown connector '%s'", connector);

    static const char *const required[] = {"subsystem", "field", "method", "url"};
    for (int i = 0; i < COUNT(required); i++)
        if (!json_object_get(def, required[i])) {
            snprintf(at, sizeof at, "%s.%s", where, required[i]);
            return bad(err, errsz, c, at, "missing");
        }

    snprintf(at, sizeof at, "%s.method", where);
    for (int i = 0; i < COUNT(methods) && !r->method; i++)
        if (!strcmp(method, methods[i]))
            r->method = methods[i];
    if (!r->method)
        return bad(err, errsz, c, at, "must be one of GET, POST, PUT, PATCH, DELETE");

    const json_t *types = json_object_get(def, "action_type");
    r->types = ALL_TYPES;
    if (types) {
        size_t i;
        json_t *t;
        snprintf(at, sizeof at, "%s.action_type", where);
        if (!json_is_array(types) || !json_array_size(types))
            return bad(err, errsz, c, at, "must be a non-empty array of action types");
        r->types = 0;
        json_array_foreach((json_t *)types, i, t) {
            int type = ap_action_type_parse(json_string_value(t));
            snprintf(at, sizeof at, "%s.action_type[%zu]", where, i);
            if (type < 0)
                return bad(err, errsz, c, at,
                           "must be one of config_change, experiment, pause, scale, revert");
            r->types |= 1u << type;
        }
    }

    snprintf(at, sizeof at, "%s.url", where);
    if (!template_ok(r->url, why, sizeof why))
        return bad(err, errsz, c, at, "%s", why);
    if (strncmp(r->url, "{base_url}", 10) && !url_scheme_ok(r->url))
        return bad(err, errsz, c, at, "must start with {base_url}, http:// or https://");
    if (url_has_userinfo(r->url))
        return bad(err, errsz, c, at, "must not carry credentials (those go in \"auth\")");
    if (strstr(r->url + 1, "{base_url}"))
        return bad(err, errsz, c, at, "{base_url} may only begin the URL");
    if (has_control(r->url) || strchr(r->url, ' '))
        return bad(err, errsz, c, at, "must not contain spaces or control characters");

    r->body = json_object_get(def, "body");
    snprintf(at, sizeof at, "%s.body", where);
    if (r->body && r->method == methods[0])
        return bad(err, errsz, c, at, "a GET request has no body");
    if (r->body && !body_ok(r->body, at, sizeof at, why, sizeof why))
        return bad(err, errsz, c, at, "%s", why);

    if ((st = headers_parse(c, def, where, r->conn->api_key_header, &r->headers, err, errsz)))
        return st;
    return timeout_parse(c, def, where, &r->timeout_ms, err, errsz);
}

/* A later route for the same subsystem and field whose action types earlier
 * routes all take would never be used: that is a mistake in the file. */
static ap_status routes_reachable(ap_connector *c, char *err, size_t errsz) {
    for (int j = 0; j < c->route_count; j++) {
        const ap_connector_route *r = &c->routes[j];
        unsigned covered = 0;
        for (int i = 0; i < j; i++)
            if (!strcmp(c->routes[i].subsystem, r->subsystem) &&
                !strcmp(c->routes[i].field, r->field))
                covered |= c->routes[i].types;
        if (!(r->types & ~covered))
            return bad(err, errsz, c, r->label,
                       "never used: earlier routes already take every action type it lists for "
                       "%s.%s",
                       r->subsystem, r->field);
    }
    return AP_OK;
}

ap_status ap_connector_load(const char *path, ap_connector **out, char *err, size_t errsz) {
    static const char *const known[] = {"$schema", "description", "connectors", "routes", NULL};
    json_error_t jerr;
    const char *name;
    json_t *def;
    ap_status st = AP_OK;
    ap_connector *c = calloc(1, sizeof *c);

    *out = NULL;
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return ap_fail(AP_ERR_NOMEM, err, errsz, "%s: out of memory", path);
    }
    c->root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!c->root) {
        st = ap_fail(jerr.line < 1 ? AP_ERR_IO : AP_ERR_INVALID, err, errsz, "%s:%d:%d: %s", path,
                     jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(c->root)) {
        st = ap_fail(AP_ERR_INVALID, err, errsz, "%s: must hold a JSON object", path);
        goto out;
    }
    if ((st = members_ok(c, c->root, "(top level)", known, err, errsz)))
        goto out;

    const json_t *conns = json_object_get(c->root, "connectors");
    if (!json_is_object(conns) || !json_object_size(conns)) {
        st = bad(err, errsz, c, "connectors", "must be an object naming at least one connector");
        goto out;
    }
    c->conns = calloc(json_object_size(conns), sizeof *c->conns);
    if (!c->conns) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "%s: out of memory", path);
        goto out;
    }
    json_object_foreach((json_t *)conns, name, def) {
        /* counted first, so that ap_connector_free wipes a partly read one */
        conn *cn = &c->conns[c->conn_count++];
        if ((st = conn_parse(c, cn, name, def, err, errsz)))
            goto out;
    }

    const json_t *routes = json_object_get(c->root, "routes");
    if (!json_is_array(routes) || !json_array_size(routes)) {
        st = bad(err, errsz, c, "routes", "must be a non-empty array");
        goto out;
    }
    c->routes = calloc(json_array_size(routes), sizeof *c->routes);
    if (!c->routes) {
        st = ap_fail(AP_ERR_NOMEM, err, errsz, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(routes); i++, c->route_count++)
        if ((st = route_parse(c, &c->routes[i], (int)i, json_array_get(routes, i), err, errsz)))
            goto out;
    st = routes_reachable(c, err, errsz);
out:
    if (st)
        ap_connector_free(c);
    else
        *out = c;
    return st;
}

static void wipe_free(char *s) {
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void ap_connector_free(ap_connector *c) {
    if (!c)
        return;
    for (int i = 0; i < c->conn_count; i++) {
        wipe_free(c->conns[i].bearer);
        wipe_free(c->conns[i].api_key);
        free(c->conns[i].base_url);
    }
    free(c->conns);
    free(c->routes);
    json_decref(c->root);
    free(c->path);
    free(c);
}

ap_status ap_connector_check_map(const ap_connector *c, const ap_executor_map *map, char *err,
                                 size_t errsz) {
    char at[64];
    for (int i = 0; i < c->route_count; i++) {
        const ap_connector_route *r = &c->routes[i];
        const ap_subsystem *sub = ap_executor_map_subsystem(map, r->subsystem);
        if (!sub) {
            snprintf(at, sizeof at, "%s.subsystem", r->label);
            return bad(err, errsz, c, at, "'%s' is not a subsystem of the executor map",
                       r->subsystem);
        }
        if (!ap_subsystem_field(sub, r->field)) {
            snprintf(at, sizeof at, "%s.field", r->label);
            return bad(err, errsz, c, at, "'%s' is not a field of %s", r->field, r->subsystem);
        }
        if (r->types == ALL_TYPES)
            continue;
        for (int t = 0; t < AP_ACTION_TYPE_COUNT; t++)
            if ((r->types & (1u << t)) && !sub->default_tier[t]) {
                snprintf(at, sizeof at, "%s.action_type", r->label);
                return bad(err, errsz, c, at, "%s does not accept '%s'", r->subsystem,
                           ap_action_type_name((ap_action_type)t));
            }
    }
    return AP_OK;
}

/* ---- lookups --------------------------------------------------------------- */

const ap_connector_route *ap_connector_route_for(const ap_connector *c, const ap_action *a) {
    if (!c || !a->subsystem || !a->field)
        return NULL;
    int type = ap_action_type_parse(a->action_type);
    for (int i = 0; i < c->route_count; i++) {
        const ap_connector_route *r = &c->routes[i];
        if (strcmp(r->subsystem, a->subsystem) || strcmp(r->field, a->field))
            continue;
        if (r->types == ALL_TYPES || (type >= 0 && (r->types & (1u << type))))
            return r;
    }
    return NULL;
}

const char *ap_connector_route_name(const ap_connector_route *r) {
    return r->name;
}

const char *ap_connector_route_connector(const ap_connector_route *r) {
    return r->conn->name;
}

int ap_connector_route_count(const ap_connector *c) {
    return c->route_count;
}

/* ---- rendering ----------------------------------------------------------- */

/* Appends "Name: value" to rq->headers, value rendered from template t. */
static int header_add(ap_connector_request *rq, const char *name, const char *t,
                      const render_ctx *ctx, char *why, size_t whysz) {
    strbuf sb = {0};
    sb_str(&sb, name);
    sb_add(&sb, ": ", 2);
    if (render_text(t, TEXT_HEADER, ctx, &sb, why, whysz)) {
        free(sb.p);
        return -1;
    }
    char *line = sb_take(&sb);
    if (!line) {
        snprintf(why, whysz, "out of memory");
        return -1;
    }
    if (has_control(line)) {
        snprintf(why, whysz, "header %s would contain control characters", name);
        free(line);
        return -1;
    }
    rq->headers[rq->header_count++] = line;
    return 0;
}

/* Appends a credential line; secret_headers counts it. */
static int secret_add(ap_connector_request *rq, const char *name, const char *prefix,
                      const char *secret) {
    size_t n = strlen(name) + strlen(prefix) + strlen(secret) + 3;
    char *line = malloc(n);
    if (!line)
        return -1;
    snprintf(line, n, "%s: %s%s", name, prefix, secret);
    rq->headers[rq->header_count++] = line;
    rq->secret_headers++;
    return 0;
}

ap_status ap_connector_render(const ap_connector *c, const ap_connector_route *r,
                              const ap_action *a, const json_t *value, ap_connector_request *rq,
                              char *err, size_t errsz) {
    char why[256] = "out of memory";
    const conn *cn = r->conn;
    json_t *own_value = value ? NULL : ap_action_value(a);
    render_ctx ctx = {cn, a, value ? value : own_value};
    strbuf sb = {0};
    const char *k, *where = "url";
    json_t *v;
    ap_status st = AP_OK;

    (void)c;
    memset(rq, 0, sizeof *rq);
    rq->method = r->method;
    rq->connector = cn->name;
    rq->route = r->name;
    rq->timeout_ms = r->timeout_ms ? r->timeout_ms : cn->timeout_ms;

    if (render_text(r->url, TEXT_URL, &ctx, &sb, why, sizeof why)) {
        free(sb.p);
        goto fail;
    }
    if (!(rq->url = sb_take(&sb)))
        goto fail;

    where = "body";
    if (r->body) {
        if (!(rq->body = render_json(r->body, &ctx, why, sizeof why)))
            goto fail;
        if (!(rq->body_text = json_text(rq->body))) {
            snprintf(why, sizeof why, "out of memory");
            goto fail;
        }
    }

    where = "headers";
    size_t most = 2 + json_object_size(cn->headers) + json_object_size(r->headers);
    if (!(rq->headers = calloc(most, sizeof *rq->headers)))
        goto fail;
    if ((cn->bearer && secret_add(rq, "Authorization", "Bearer ", cn->bearer)) ||
        (cn->api_key && secret_add(rq, cn->api_key_header, "", cn->api_key)))
        goto fail;
    json_object_foreach((json_t *)cn->headers, k, v) {
        /* a route's header of the same name replaces the connector's */
        const char *rk;
        json_t *rv;
        int replaced = 0;
        json_object_foreach((json_t *)r->headers, rk, rv) replaced |= !strcasecmp(rk, k);
        if (!replaced && header_add(rq, k, json_string_value(v), &ctx, why, sizeof why))
            goto fail;
    }
    json_object_foreach((json_t *)r->headers, k, v) {
        if (header_add(rq, k, json_string_value(v), &ctx, why, sizeof why))
            goto fail;
    }
    goto out;
fail:
    st = ap_fail(AP_ERR_INVALID, err, errsz, "%s: %s: %s", r->name, where, why);
    ap_connector_request_release(rq);
    rq->method = NULL;
out:
    json_decref(own_value);
    return st;
}

json_t *ap_connector_request_describe(const ap_connector_request *rq) {
    json_t *headers = json_object();
    for (int i = rq->secret_headers; headers && i < rq->header_count; i++) {
        const char *colon = strchr(rq->headers[i], ':');
        if (!colon)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(colon - rq->headers[i]), rq->headers[i]);
        json_object_set_new(headers, name, json_string(colon + 2));
    }
    return json_pack("{s:s?, s:s?, s:s?, s:s?, s:o*, s:O?}", "connector", rq->connector, "route",
                     rq->route, "method", rq->method, "url", rq->url, "headers", headers, "body",
                     rq->body);
}

void ap_connector_request_release(ap_connector_request *rq) {
    if (!rq)
        return;
    for (int i = 0; i < rq->header_count; i++) {
        if (i < rq->secret_headers)
            explicit_bzero(rq->headers[i], strlen(rq->headers[i]));
        free(rq->headers[i]);
    }
    free(rq->headers);
    free(rq->url);
    free(rq->body_text);
    json_decref(rq->body);
    memset(rq, 0, sizeof *rq);
}

/* Stars every occurrence of secret s in text, and with cut a tail of 4+ bytes
 * that begins s. */
static int redact_one(const char *s, char *text, size_t len, int cut) {
    size_t n = strlen(s);
    int hits = 0;
    if (!n)
        return 0;
    for (size_t i = 0; i + n <= len; i++)
        if (text[i] == s[0] && !memcmp(text + i, s, n)) {
            memset(text + i, '*', n);
            hits++;
            i += n - 1;
        }
    for (size_t k = n - 1 < len ? n - 1 : len; cut && k >= 4; k--)
        if (!memcmp(text + len - k, s, k)) {
            memset(text + len - k, '*', k);
            hits++;
            break;
        }
    return hits;
}

int ap_connector_redact(const ap_connector *c, char *text, size_t len, int cut) {
    int hits = 0;
    for (int i = 0; c && text && i < c->conn_count; i++) {
        if (c->conns[i].bearer)
            hits += redact_one(c->conns[i].bearer, text, len, cut);
        if (c->conns[i].api_key)
            hits += redact_one(c->conns[i].api_key, text, len, cut);
    }
    return hits;
}
