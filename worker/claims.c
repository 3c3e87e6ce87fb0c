#include "claims.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ARGV: owner, lease_ms, now_ms, hourly, hour_ms, daily, day_ms, hour_cut,
 * day_cut (now_ms - hour_ms, now_ms - day_ms), then per item key, scope (""
 * exempt). Returns two elements per item, in one flat array: 0, wait_ms
 * owned; 1, "" busy; 2, outcome done. A scope's tokens are one sorted set
 * (member: the key, score: when it was taken) over the day; a scope is read
 * once per call. The set's size bounds both counts: they are counted, and
 * the set trimmed to the day, only when that bound reaches a limit or 1,024
 * (which bounds what a scope far under its limits keeps of earlier days).
 * Two commands per item in the common case: SET NX GET (Redis >= 7.0)
 * claims or reads the holder, ZADD NX takes a token unless an earlier
 * delivery took it. Redis gets ARGV strings, not Lua numbers, which it would
 * format with printf per call. */
static const char admit_lua[] =
    "local owner, lease, now_s = ARGV[1], ARGV[2], ARGV[3]\n"
    "local now = tonumber(now_s)\n"
    "local hourly, hour_ms = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local daily, day_ms = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local hour_cut, day_cut = ARGV[8], ARGV[9]\n"
    "local out, scopes = {}, {}\n"
    "local function count(s)\n"
    "  if s.exact then return end\n"
    "  redis.call('ZREMRANGEBYSCORE', s.z, '-inf', day_cut)\n"
    "  s.day = redis.call('ZCARD', s.z)\n"
    "  s.hour = redis.call('ZCOUNT', s.z, '(' .. hour_cut, '+inf')\n"
    "  s.exact = true\n"
    "end\n"
    "local function room(s)\n"
    "  return (hourly <= 0 or s.hour < hourly) and (daily <= 0 or s.day < daily)\n"
    "end\n"
    "local function scope_state(scope)\n"
    "  local s = scopes[scope]\n"
    "  if s then return s end\n"
    "  s = {z = 'ap:rate:' .. scope}\n"
    "  s.open = redis.call('EXISTS', 'ap:breaker:open:' .. scope) == 1\n"
    "  if not s.open and (hourly > 0 or daily > 0) then\n"
    "    s.day = redis.call('ZCARD', s.z)\n"
    "    s.hour = s.day\n"
    "    if s.day >= 1024 then count(s) end\n"
    "  end\n"
    "  scopes[scope] = s\n"
    "  return s\n"
    "end\n"
    "for i = 10, #ARGV, 2 do\n"
    "  local key, scope = ARGV[i], ARGV[i + 1]\n"
    "  local ik, n = 'ap:idem:' .. key, i - 9\n"
    "  local held = redis.call('SET', ik, owner, 'NX', 'GET', 'PX', lease)\n"
    "  if held and held ~= owner then\n"
    "    if string.sub(held, 1, 5) == 'done:' then out[n], out[n + 1] = 2, string.sub(held, 6)\n"
    "    else out[n], out[n + 1] = 1, '' end\n"
    "  else\n"
    "    if held then redis.call('SET', ik, owner, 'PX', lease) end\n"
    "    local wait, s = 0, scope ~= '' and scope_state(scope)\n"
    "    if s and s.open then\n"
    "      wait = -1\n"
    "    elseif s and s.day then\n"
    "      if not room(s) then count(s) end\n"
    "      local free = room(s)\n"
    "      if free and redis.call('ZADD', s.z, 'NX', now_s, key) == 1 then\n"
    "        s.hour, s.day, s.taken = s.hour + 1, s.day + 1, true\n"
    "      elseif not free and not redis.call('ZSCORE', s.z, key) then\n"
    "        if hourly > 0 and s.hour >= hourly then\n"
    "          wait = tonumber(redis.call('ZRANGEBYSCORE', s.z, '(' .. hour_cut, '+inf',\n"
    "                                     'WITHSCORES', 'LIMIT', 0, 1)[2]) + hour_ms - now\n"
    "        else\n"
    "          wait = tonumber(redis.call('ZRANGE', s.z, 0, 0, 'WITHSCORES')[2]) + day_ms - now\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    out[n], out[n + 1] = 0, wait\n"
    "  end\n"
    "end\n"
    "for _, s in pairs(scopes) do\n"
    "  if s.taken then redis.call('PEXPIRE', s.z, ARGV[7]) end\n"
    "end\n"
    "return out\n";

/* ARGV: window, failure_pct, consecutive, done_ttl_s, then per item key,
 * outcome ("" release), scope, run (0 none, 1 ok, 2 failed, 3 held). Returns
 * the scopes whose breaker this opened. A scope's breaker is one hash, read
 * and written once per call: its window of outcomes, newest first, as a
 * string ('1' failed, '0' not), and its current streak of failures. */
static const char report_lua[] =
    "local window, pct, streak_max, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), "
    "tonumber(ARGV[3]), ARGV[4]\n"
    "local opened, breakers = {}, {}\n"
    "for i = 5, #ARGV, 4 do\n"
    "  local key, outcome, scope, run = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]\n"
    "  if outcome == '' then redis.call('DEL', 'ap:idem:' .. key)\n"
    "  else redis.call('SET', 'ap:idem:' .. key, 'done:' .. outcome, 'EX', ttl) end\n"
    "  if run == '3' then\n"
    "    redis.call('ZREM', 'ap:rate:' .. scope, key)\n"
    "  elseif run == '1' or run == '2' then\n"
    "    local b = breakers[scope]\n"
    "    if not b then\n"
    "      local h = redis.call('HMGET', 'ap:breaker:state:' .. scope, 'window', 'streak')\n"
    "      b = {window = h[1] or '', streak = tonumber(h[2]) or 0}\n"
    "      breakers[scope] = b\n"
    "    end\n"
    "    b.window = string.sub((run == '2' and '1' or '0') .. b.window, 1, window)\n"
    "    b.streak = run == '2' and b.streak + 1 or 0\n"
    "    local n, fails = #b.window, select(2, string.gsub(b.window, '1', ''))\n"
    "    if (b.streak >= streak_max or (n >= window and fails * 100 > pct * n))\n"
    "       and redis.call('SET', 'ap:breaker:open:' .. scope, fails .. ' of the last ' .. n\n"
    "                      .. ' failed, ' .. b.streak .. ' in a row', 'NX') then\n"
    "      opened[#opened + 1] = scope\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for scope, b in pairs(breakers) do\n"
    "  redis.call('HSET', 'ap:breaker:state:' .. scope, 'window', b.window, 'streak', b.streak)\n"
    "end\n"
    "return opened\n";

typedef struct finish {
    char *key, *scope; /* owned */
    char outcome[32];  /* "": release */
    ap_run run;
} finish;

struct ap_claims {
    redisContext *redis; /* NULL while disconnected */
    char host[256];
    int port;
    char owner[256];      /* "claim:<worker>" */
    const ap_config *cfg; /* borrowed: limits, windows, breaker */
    finish *finishes;
    int finish_count, finish_cap;
    char **opened; /* scopes the last report opened */
    int opened_count;
};

static ap_status claims_connect(ap_claims *c, char *err, size_t errsz) {
    if (c->redis)
        return AP_OK;
    struct timeval timeout = {5, 0};
    c->redis = redisConnectWithTimeout(c->host, c->port, timeout);
    if (!c->redis || c->redis->err) {
        ap_fail(AP_ERR_REDIS, err, errsz, "cannot connect to redis at %s:%d: %s", c->host, c->port,
                c->redis ? c->redis->errstr : "out of memory");
        redisFree(c->redis);
        c->redis = NULL;
        return AP_ERR_REDIS;
    }
    redisSetTimeout(c->redis, timeout);
    return AP_OK;
}

/* Drops the connection after a failure; err names what failed. */
static ap_status claims_broken(ap_claims *c, const redisReply *r, char *err, size_t errsz,
                               const char *what) {
    ap_fail(AP_ERR_REDIS, err, errsz, "redis %s: %s", what,
            r && r->type == REDIS_REPLY_ERROR ? r->str
            : c->redis && c->redis->err       ? c->redis->errstr
                                              : "unexpected reply");
    redisFree(c->redis);
    c->redis = NULL;
    return AP_ERR_REDIS;
}

ap_claims *ap_claims_new(const ap_config *cfg, char *err, size_t errsz) {
    ap_claims *c = calloc(1, sizeof *c);
    if (!c) {
        ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
        return NULL;
    }
    snprintf(c->host, sizeof c->host, "%s", cfg->redis_host);
    c->port = cfg->redis_port;
    snprintf(c->owner, sizeof c->owner, "claim:%s", cfg->worker_id);
    c->cfg = cfg;
    if (claims_connect(c, err, errsz)) {
        free(c);
        return NULL;
    }
    return c;
}

static long long now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Appends one EVAL of `script` with argv[0..argc) to the pipeline. */
static void append_eval(ap_claims *c, const char *script, int argc, const char **argv) {
    const char **args = malloc((size_t)(argc + 3) * sizeof *args);
    size_t *lens = malloc((size_t)(argc + 3) * sizeof *lens);
    if (!args || !lens) { /* the reply read will fail: the batch is retried */
        free(args);
        free(lens);
        return;
    }
    args[0] = "EVAL", args[1] = script, args[2] = "0";
    for (int i = 0; i < argc; i++)
        args[i + 3] = argv[i];
    for (int i = 0; i < argc + 3; i++)
        lens[i] = strlen(args[i]);
    redisAppendCommandArgv(c->redis, argc + 3, args, lens);
    free(lens);
    free(args);
}

static void clear_opened(ap_claims *c) {
    for (int i = 0; i < c->opened_count; i++)
        free(c->opened[i]);
    c->opened_count = 0;
}

/* Appends the report of the queued finishes; returns 1 when there was one. */
static int append_report(ap_claims *c) {
    if (!c->finish_count)
        return 0;
    const ap_config *cfg = c->cfg;
    char nums[4][16], runs[4][2] = {"0", "1", "2", "3"};
    snprintf(nums[0], 16, "%d", cfg->breaker_window);
    snprintf(nums[1], 16, "%d", cfg->breaker_failure_pct);
    snprintf(nums[2], 16, "%d", cfg->breaker_consecutive);
    snprintf(nums[3], 16, "%d", cfg->done_ttl_s);
    int argc = 4 + 4 * c->finish_count;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    if (!argv)
        return 0;
    for (int i = 0; i < 4; i++)
        argv[i] = nums[i];
    for (int i = 0; i < c->finish_count; i++) {
        const finish *f = &c->finishes[i];
        argv[4 + 4 * i] = f->key;
        argv[5 + 4 * i] = f->outcome;
        argv[6 + 4 * i] = f->scope ? f->scope : "";
        argv[7 + 4 * i] = runs[f->run];
    }
    append_eval(c, report_lua, argc, (const char **)argv);
    free(argv);
    return 1;
}

/* Reads the report's reply: notes the breakers it opened, forgets the finishes. */
static ap_status read_report(ap_claims *c, char *err, size_t errsz) {
    redisReply *r = NULL;
    if (redisGetReply(c->redis, (void **)&r) != REDIS_OK || r->type != REDIS_REPLY_ARRAY) {
        ap_status st = claims_broken(c, r, err, errsz, "report");
        freeReplyObject(r);
        return st;
    }
    char **grown = realloc(c->opened, (r->elements + 1) * sizeof *grown);
    if (grown)
        c->opened = grown;
    for (size_t i = 0; grown && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            (c->opened[c->opened_count] = strdup(r->element[i]->str)))
            c->opened_count++;
    freeReplyObject(r);
    for (int i = 0; i < c->finish_count; i++) {
        free(c->finishes[i].key);
        free(c->finishes[i].scope);
    }
    c->finish_count = 0;
    return AP_OK;
}

ap_status ap_claims_take(ap_claims *c, ap_guard_item *items, int n, char *err, size_t errsz) {
    clear_opened(c);
    ap_status st = claims_connect(c, err, errsz);
    if (st)
        return st;
    const ap_config *cfg = c->cfg;
    long long now = now_ms(), hour_ms = (long long)cfg->rate_limit_hour_s * 1000,
              day_ms = (long long)cfg->rate_limit_day_s * 1000;
    char nums[8][24];
    snprintf(nums[0], 24, "%d", cfg->claim_lease_ms);
    snprintf(nums[1], 24, "%lld", now);
    snprintf(nums[2], 24, "%d", cfg->rate_limit_hourly);
    snprintf(nums[3], 24, "%lld", hour_ms);
    snprintf(nums[4], 24, "%d", cfg->rate_limit_daily);
    snprintf(nums[5], 24, "%lld", day_ms);
    snprintf(nums[6], 24, "%lld", now - hour_ms);
    snprintf(nums[7], 24, "%lld", now - day_ms);
    const char **argv = malloc((size_t)(9 + 2 * n) * sizeof *argv);
    if (!argv)
        return ap_fail(AP_ERR_NOMEM, err, errsz, "out of memory");
    argv[0] = c->owner;
    for (int i = 0; i < 8; i++)
        argv[1 + i] = nums[i];
    for (int i = 0; i < n; i++) {
        argv[9 + 2 * i] = items[i].key;
        argv[10 + 2 * i] = items[i].scope ? items[i].scope : "";
    }
    int reported = append_report(c);
    append_eval(c, admit_lua, 9 + 2 * n, argv);
    free(argv);
    if (reported && (st = read_report(c, err, errsz)))
        return st;

    redisReply *r = NULL;
    if (redisGetReply(c->redis, (void **)&r) != REDIS_OK || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 2 * (size_t)n) {
        st = claims_broken(c, r, err, errsz, "claim");
        freeReplyObject(r);
        return st;
    }
    for (int i = 0; i < n; i++) {
        redisReply **e = &r->element[2 * i];
        long kind = e[0]->integer;
        items[i].claim = kind == 0 ? AP_CLAIM_OWNED : kind == 1 ? AP_CLAIM_BUSY : AP_CLAIM_DONE;
        items[i].wait_ms = kind == 0 ? (long)e[1]->integer : 0;
        items[i].outcome[0] = '\0';
        if (kind == 2)
            snprintf(items[i].outcome, sizeof items[i].outcome, "%s", e[1]->str);
    }
    freeReplyObject(r);
    return AP_OK;
}

ap_status ap_claims_finish(ap_claims *c, const ap_guard_item *item, const char *outcome,
                           ap_run run) {
    if (c->finish_count == c->finish_cap) {
        int cap = c->finish_cap ? c->finish_cap * 2 : 512;
        finish *grown = realloc(c->finishes, (size_t)cap * sizeof *grown);
        if (!grown)
            return AP_ERR_NOMEM;
        c->finishes = grown;
        c->finish_cap = cap;
    }
    finish *f = &c->finishes[c->finish_count];
    f->key = strdup(item->key);
    f->scope = item->scope ? strdup(item->scope) : NULL;
    if (!f->key || (item->scope && !f->scope)) {
        free(f->key);
        free(f->scope);
        return AP_ERR_NOMEM;
    }
    snprintf(f->outcome, sizeof f->outcome, "%s", outcome ? outcome : "");
    f->run = item->scope ? run : AP_RUN_NONE;
    c->finish_count++;
    return AP_OK;
}

ap_status ap_claims_flush(ap_claims *c, char *err, size_t errsz) {
    clear_opened(c);
    ap_status st = claims_connect(c, err, errsz);
    if (st)
        return st;
    if (append_report(c))
        return read_report(c, err, errsz);
    redisReply *r = redisCommand(c->redis, "PING");
    if (!r)
        return claims_broken(c, NULL, err, errsz, "ping");
    freeReplyObject(r);
    return AP_OK;
}

int ap_claims_opened_count(const ap_claims *c) {
    return c->opened_count;
}

const char *ap_claims_opened(const ap_claims *c, int i) {
    return i >= 0 && i < c->opened_count ? c->opened[i] : NULL;
}

void ap_claims_free(ap_claims *c) {
    if (!c)
        return;
    for (int i = 0; i < c->finish_count; i++) {
        free(c->finishes[i].key);
        free(c->finishes[i].scope);
    }
    free(c->finishes);
    clear_opened(c);
    free(c->opened);
    redisFree(c->redis);
    free(c);
}
