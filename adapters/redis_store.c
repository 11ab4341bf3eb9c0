/*
 * redis_store.c: Redis as the store of record for rule state (issue 4),
 * `--state redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME&timeout=DUR]`.
 * Owns: one hiredis connection, the parsed URI (password included) and the
 * key layout. Must never: block longer than its timeout on any one socket
 * operation, let a dead server kill the process (SIGPIPE), keep a
 * desynchronised connection (after an I/O error it is dropped and the next
 * call reconnects), or decide anything about the records it carries: they
 * are opaque, versioned shard snapshots (engine/shard.h).
 * @thread one caller at a time (the pipeline's store thread).
 *
 * Key layout (PREFIX defaults to "vg"):
 *   PREFIX:{PLANT}:state  string: the plant's snapshot bytes, as given
 *   PREFIX:meta           hash: start, max_ts, clock, checkpoint (decimal) and version 1
 * The braces are a Redis Cluster hash tag: every key of one plant lands in
 * the same slot, so a cluster can hold the state and a plant's keys can be
 * updated together later. The snapshot bytes carry their own version and
 * machine tag, so the value adds no header of its own.
 *
 * DESIGN: save appends SET commands (binary-safe) in chunks of CHUNK and
 * reads each chunk's replies in one round trip; the meta goes in its own
 * command only after every record was acknowledged, so a reader that sees a
 * meta sees the records it covers. An error reply stops the save after its
 * chunk's replies are read (the connection stays in step); an I/O error or a
 * timeout drops the connection. Nothing is retried here: the caller keeps
 * the records and calls again at its next checkpoint, which is the backoff.
 * load walks SCAN (MGET cannot span cluster slots, so values come from
 * pipelined GETs), sorts and de-duplicates the keys (SCAN may repeat one),
 * and reads each chunk's replies whole before calling back, so a callback
 * that stops the load leaves no reply unread.
 * Not yet: SCAN over every node of a Redis Cluster (hiredis 0.14 has no
 * cluster client), TLS (no SSL in this hiredis), a timeout on the DNS lookup.
 */
#include "engine/adapter.h"
#include "engine/clock.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK 512                /* commands per round trip */
#define SCAN_COUNT "1000"        /* keys SCAN looks at per call */
#define META_VERSION 1
#define PREFIX_MAX 64
#define DEFAULT_TIMEOUT_MS 2000
#define USAGE "expected redis://[:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME&timeout=DUR]"

struct vg_store {
    redisContext *c;            /* NULL while disconnected */
    char host[256];
    int port;
    long db;
    char *user, *password;      /* NULL when not given; password wiped on close */
    char prefix[PREFIX_MAX + 1];
    vg_ts timeout_ms;
    char where[300];            /* "host:port" for messages */
};

/* ---- SIGPIPE --------------------------------------------------------------
 * hiredis writes with write(2): a peer that went away raises SIGPIPE, which
 * would end the process. Block it on this thread around our I/O and swallow
 * one we caused, whatever the process's own disposition is. */

struct pipe_guard {
    sigset_t old;
    bool was_pending;
};

static void pipe_block(struct pipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_unblock(struct pipe_guard *g)
{
    if (!g->was_pending) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- the URI --------------------------------------------------------------- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode [p, p+n) into a new string; NULL on a bad escape (*bad set) or no memory. */
static char *decode(const char *p, size_t n, bool *bad)
{
    char *out = malloc(n + 1);
    size_t k = 0;
    *bad = false;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            out[k++] = p[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)p[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)p[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            *bad = true;
            free(out);
            return NULL;
        }
        out[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[k] = 0;
    return out;
}

/* Parse a decimal integer in [lo, hi] from exactly [p, p+n). */
static bool parse_long(const char *p, size_t n, long lo, long hi, long *out)
{
    long v = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool prefix_ok(const char *p, size_t n)
{
    if (n == 0 || n > PREFIX_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '_' || ch == '-' || ch == '.' || ch == ':';
        if (!ok)
            return false;
    }
    return true;
}

static int bad_uri(struct vg_error *err, const char *what, const char *p, size_t n)
{
    return vg_error_set(err, VG_EUSAGE, "bad --state URI: %s '%.*s' (" USAGE ")", what,
                        (int)(n > 100 ? 100 : n), p);
}

/* ?prefix=NAME&timeout=DUR */
static int parse_query(struct vg_store *s, const char *q, struct vg_error *err)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kn = eq ? (size_t)(eq - q) : n;
        const char *v = eq ? eq + 1 : q + n;
        size_t vn = eq ? n - kn - 1 : 0;
        if (kn == 6 && !memcmp(q, "prefix", 6)) {
            if (!prefix_ok(v, vn))
                return vg_error_set(err, VG_EUSAGE, "bad --state URI: prefix '%.*s' must be 1-%d of "
                                    "A-Z a-z 0-9 _ - . : (" USAGE ")", (int)(vn > 100 ? 100 : vn), v,
                                    PREFIX_MAX);
            memcpy(s->prefix, v, vn);
            s->prefix[vn] = 0;
        } else if (kn == 7 && !memcmp(q, "timeout", 7)) {
            vg_ts ms;
            const char *why = NULL;
            if (vg_duration_parse(v, vn, &ms, &why) < 0 || ms <= 0 || ms > 600000)
                return vg_error_set(err, VG_EUSAGE, "bad --state URI: timeout '%.*s' must be a duration "
                                    "from 1ms to 10m, e.g. 2s (" USAGE ")", (int)(vn > 100 ? 100 : vn), v);
            s->timeout_ms = ms;
        } else {
            return vg_error_set(err, VG_EUSAGE, "bad --state URI: unknown option '%.*s' (known: prefix, "
                                "timeout)", (int)(kn > 100 ? 100 : kn), q);
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return VG_OK;
}

static int parse_uri(struct vg_store *s, const char *uri, struct vg_error *err)
{
    if (strncmp(uri, "redis://", 8))
        return bad_uri(err, "not a redis:// URI", uri, strlen(uri));
    const char *p = uri + 8;
    const char *q = strchr(p, '?');
    const char *end = q ? q : p + strlen(p);

    /* userinfo: up to the last '@' (a password may hold '@' or '/') */
    const char *at = NULL;
    for (const char *t = p; t < end; t++)
        if (*t == '@')
            at = t;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        bool bad;
        if (!colon)
            return vg_error_set(err, VG_EUSAGE, "bad --state URI: write the password after a colon, "
                                "redis://:PASSWORD@HOST:PORT (" USAGE ")");
        if (colon > p && !(s->user = decode(p, (size_t)(colon - p), &bad)))
            return bad ? vg_error_set(err, VG_EUSAGE, "bad --state URI: a %% escape in the user name is "
                                      "not %%XX (" USAGE ")")
                       : vg_error_set(err, VG_ENOMEM, "out of memory");
        if (!(s->password = decode(colon + 1, (size_t)(at - colon - 1), &bad)))
            return bad ? vg_error_set(err, VG_EUSAGE, "bad --state URI: a %% escape in the password is "
                                      "not %%XX (" USAGE ")")
                       : vg_error_set(err, VG_ENOMEM, "out of memory");
        p = at + 1;
    }

    /* host, [v6], :port */
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hend = slash ? slash : end;
    const char *h = p, *he, *port = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb)
            return bad_uri(err, "unclosed '[' in host", p, (size_t)(hend - p));
        h = p + 1;
        he = rb;
        if (rb + 1 < hend && rb[1] != ':')
            return bad_uri(err, "junk after ']' in host", rb + 1, (size_t)(hend - rb - 1));
        port = rb + 1 < hend ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(p, ':', (size_t)(hend - p));
        he = colon ? colon : hend;
        port = colon ? colon + 1 : NULL;
    }
    if (he == h)
        return vg_error_set(err, VG_EUSAGE, "bad --state URI: no host (" USAGE ")");
    if ((size_t)(he - h) >= sizeof s->host)
        return bad_uri(err, "host too long", h, (size_t)(he - h));
    memcpy(s->host, h, (size_t)(he - h));
    s->host[he - h] = 0;
    long v = 6379;
    if (port && !parse_long(port, (size_t)(hend - port), 1, 65535, &v))
        return bad_uri(err, "port must be 1-65535, not", port, (size_t)(hend - port));
    s->port = (int)v;
    snprintf(s->where, sizeof s->where, *p == '[' ? "[%s]:%d" : "%s:%d", s->host, s->port);

    /* /DB */
    s->db = 0;
    if (slash && slash + 1 < end && !parse_long(slash + 1, (size_t)(end - slash - 1), 0, 1000000, &s->db))
        return bad_uri(err, "the database must be a number, not", slash + 1, (size_t)(end - slash - 1));
    return q ? parse_query(s, q + 1, err) : VG_OK;
}

/* ---- the connection -------------------------------------------------------- */

static void drop(struct vg_store *s)
{
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
}

/* The context's I/O error as a phrase. */
static const char *io_reason(const redisContext *c)
{
    if (!c)
        return "out of memory";
    if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
        return "no answer in time";
    return c->errstr[0] ? c->errstr : "connection lost";
}

/* An I/O error on the connection: drop it (the next call reconnects). */
static int io_fail(struct vg_store *s, const char *doing, struct vg_error *err)
{
    vg_error_set(err, VG_EIO, "lost Redis at %s while %s (%s)", s->where, doing, io_reason(s->c));
    drop(s);
    return VG_EIO;
}

/* Run one command during the handshake; an error reply fills @p err. */
static int handshake(struct vg_store *s, int argc, const char **argv, const char *doing,
                     struct vg_error *err)
{
    redisReply *r = redisCommandArgv(s->c, argc, argv, NULL);
    if (!r)
        return io_fail(s, doing, err);
    int rc = VG_OK;
    if (r->type == REDIS_REPLY_ERROR)
        rc = vg_error_set(err, VG_EIO, "Redis at %s refused %s: %.200s", s->where, doing, r->str);
    freeReplyObject(r);
    if (rc < 0)
        drop(s);
    return rc;
}

static int connect_now(struct vg_store *s, struct vg_error *err)
{
    struct timeval tv = {(time_t)(s->timeout_ms / 1000), (suseconds_t)(s->timeout_ms % 1000) * 1000};
    s->c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!s->c || s->c->err) {
        vg_error_set(err, VG_EIO, "cannot reach Redis at %s (%s): start it with 'redis-server --port %d', "
                     "or run with --state memory", s->where, io_reason(s->c), s->port);
        drop(s);
        return VG_EIO;
    }
    if (redisSetTimeout(s->c, tv) != REDIS_OK)
        return io_fail(s, "setting its timeout", err);
    redisEnableKeepAlive(s->c);
    int rc = VG_OK;
    if (s->password) {
        const char *argv[3] = {"AUTH", s->user ? s->user : s->password, s->password};
        rc = handshake(s, s->user ? 3 : 2, argv, "the password (AUTH)", err);
    }
    char db[24];
    snprintf(db, sizeof db, "%ld", s->db);
    const char *select[2] = {"SELECT", db};
    if (rc == VG_OK && s->db)
        rc = handshake(s, 2, select, "the database number (SELECT)", err);
    const char *ping[1] = {"PING"};
    if (rc == VG_OK)
        rc = handshake(s, 1, ping, "PING", err);
    return rc;
}

/* ---- the ops ---------------------------------------------------------------- */

static void redis_close(struct vg_store *s)
{
    if (!s)
        return;
    drop(s);
    if (s->password)
        explicit_bzero(s->password, strlen(s->password));
    free(s->password);
    free(s->user);
    free(s);
}

static int redis_open(const char *uri, struct vg_store **out, struct vg_error *err)
{
    struct vg_store *s = calloc(1, sizeof *s);
    if (!s)
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    snprintf(s->prefix, sizeof s->prefix, "vg");
    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    int rc = parse_uri(s, uri, err);
    if (rc == VG_OK) {
        struct pipe_guard g;
        pipe_block(&g);
        rc = connect_now(s, err);
        pipe_unblock(&g);
    }
    if (rc < 0)
        goto fail;
    *out = s;
    return VG_OK;
fail:
    redis_close(s);
    *out = NULL;
    return rc;
}

static int save_locked(struct vg_store *s, const struct vg_state_record *recs, size_t n,
                       const struct vg_state_meta *meta, struct vg_error *err)
{
    if (!s->c && connect_now(s, err) < 0)
        return VG_EIO;
    for (size_t from = 0; from < n; from += CHUNK) {
        size_t to = n - from > CHUNK ? from + CHUNK : n;
        for (size_t i = from; i < to; i++)
            if (redisAppendCommand(s->c, "SET %s:{%b}:state %b", s->prefix, recs[i].plant,
                                   recs[i].plant_len, recs[i].data, recs[i].len) != REDIS_OK) {
                drop(s); /* half a pipeline may be queued: start afresh */
                return vg_error_set(err, VG_ENOMEM, "out of memory queueing state for Redis");
            }
        int rc = VG_OK;
        for (size_t i = from; i < to; i++) {
            redisReply *r;
            if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
                return io_fail(s, "saving state", err);
            if (r->type == REDIS_REPLY_ERROR && rc == VG_OK)
                rc = vg_error_set(err, VG_EIO, "Redis at %s refused state for plant %.*s: %.200s",
                                  s->where, (int)(recs[i].plant_len > 64 ? 64 : recs[i].plant_len),
                                  recs[i].plant, r->str);
            freeReplyObject(r);
        }
        if (rc < 0)
            return rc;
    }
    redisReply *r = redisCommand(s->c, "HSET %s:meta start %" PRId64 " max_ts %" PRId64 " clock %" PRId64
                                 " checkpoint %" PRIu64 " version %d", s->prefix, meta->start,
                                 meta->max_ts, meta->clock, meta->checkpoint, META_VERSION);
    if (!r)
        return io_fail(s, "saving the checkpoint meta", err);
    int rc = VG_OK;
    if (r->type == REDIS_REPLY_ERROR)
        rc = vg_error_set(err, VG_EIO, "Redis at %s refused the checkpoint meta %s:meta: %.200s", s->where,
                          s->prefix, r->str);
    freeReplyObject(r);
    return rc;
}

static int redis_save(struct vg_store *s, const struct vg_state_record *recs, size_t n,
                      const struct vg_state_meta *meta, struct vg_error *err)
{
    struct pipe_guard g;
    pipe_block(&g);
    int rc = save_locked(s, recs, n, meta, err);
    pipe_unblock(&g);
    return rc;
}

/* Fill @p meta from an HGETALL reply; an empty one means nothing stored. */
static int read_meta(struct vg_store *s, const redisReply *r, struct vg_state_meta *meta,
                     struct vg_error *err)
{
    memset(meta, 0, sizeof *meta);
    if (r->type != REDIS_REPLY_ARRAY)
        return vg_error_set(err, VG_EIO, "Redis at %s: %s:meta is not a hash (%.200s)", s->where, s->prefix,
                            r->type == REDIS_REPLY_ERROR ? r->str : "wrong type");
    if (r->elements == 0)
        return VG_OK;
    unsigned seen = 0;
    long long version = -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        static const char *const names[] = {"start", "max_ts", "clock", "checkpoint", "version"};
        for (unsigned f = 0; f < 5; f++) {
            if (strcmp(k->str, names[f]))
                continue;
            char *e;
            errno = 0;
            long long x = f == 3 ? (long long)strtoull(v->str, &e, 10) : strtoll(v->str, &e, 10);
            if (errno || e == v->str || *e || (f == 3 && v->str[0] == '-'))
                return vg_error_set(err, VG_EINVAL, "Redis at %s: %s:meta field %s is not a number "
                                    "('%.40s'): the stored state is damaged", s->where, s->prefix,
                                    names[f], v->str);
            seen |= 1u << f;
            switch (f) {
            case 0: meta->start = x; break;
            case 1: meta->max_ts = x; break;
            case 2: meta->clock = x; break;
            case 3: meta->checkpoint = (uint64_t)strtoull(v->str, NULL, 10); break;
            default: version = x; break;
            }
        }
    }
    if (!(seen & 0x10))
        return vg_error_set(err, VG_EINVAL, "Redis at %s: %s:meta has no version field: the stored state "
                            "is damaged or not vigil's", s->where, s->prefix);
    if (version != META_VERSION)
        return vg_error_set(err, VG_EINVAL, "Redis at %s: %s:meta has version %lld; this vigil reads "
                            "version %d", s->where, s->prefix, version, META_VERSION);
    if (seen != 0x1f)
        return vg_error_set(err, VG_EINVAL, "Redis at %s: %s:meta lacks a field (start, max_ts, clock, "
                            "checkpoint): the stored state is damaged", s->where, s->prefix);
    return VG_OK;
}

struct key {
    char *p;
    size_t n;
};

struct keys {
    struct key *v;
    size_t n, cap;
};

static void keys_fini(struct keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i].p);
    free(k->v);
}

static int keys_add(struct keys *k, const char *p, size_t n)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 1024;
        struct key *v = realloc(k->v, cap * sizeof *v);
        if (!v)
            return VG_ENOMEM;
        k->v = v;
        k->cap = cap;
    }
    if (!(k->v[k->n].p = malloc(n + 1)))
        return VG_ENOMEM;
    memcpy(k->v[k->n].p, p, n);
    k->v[k->n].p[n] = 0;
    k->v[k->n++].n = n;
    return VG_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const struct key *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Every PREFIX:{…}:state key, sorted, each once (SCAN may return a key twice). */
static int scan_keys(struct vg_store *s, struct keys *k, struct vg_error *err)
{
    char cursor[32] = "0";
    char match[PREFIX_MAX + 16];
    snprintf(match, sizeof match, "%s:{*}:state", s->prefix);
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT};
        redisReply *r = redisCommandArgv(s->c, 6, argv, NULL);
        if (!r)
            return io_fail(s, "listing stored state (SCAN)", err);
        int rc = VG_OK;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= sizeof cursor || r->element[1]->type != REDIS_REPLY_ARRAY)
            rc = vg_error_set(err, VG_EIO, "Redis at %s answered SCAN oddly (%.200s)", s->where,
                              r->type == REDIS_REPLY_ERROR ? r->str : "not a cursor and keys");
        for (size_t i = 0; rc == VG_OK && i < r->element[1]->elements; i++) {
            const redisReply *e = r->element[1]->element[i];
            if (e->type == REDIS_REPLY_STRING && keys_add(k, e->str, e->len) < 0)
                rc = vg_error_set(err, VG_ENOMEM, "out of memory listing stored state");
        }
        if (rc == VG_OK)
            memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        freeReplyObject(r);
        if (rc < 0)
            return rc;
    } while (strcmp(cursor, "0"));
    if (k->n > 1) {
        qsort(k->v, k->n, sizeof *k->v, key_cmp);
        size_t m = 1;
        for (size_t i = 1; i < k->n; i++) {
            if (!key_cmp(&k->v[i], &k->v[m - 1]))
                free(k->v[i].p);
            else
                k->v[m++] = k->v[i];
        }
        k->n = m;
    }
    return VG_OK;
}

static int load_locked(struct vg_store *s, vg_state_load_fn fn, void *ctx, struct vg_state_meta *meta,
                       struct vg_error *err)
{
    memset(meta, 0, sizeof *meta);
    if (!s->c && connect_now(s, err) < 0)
        return VG_EIO;
    redisReply *r = redisCommand(s->c, "HGETALL %s:meta", s->prefix);
    if (!r)
        return io_fail(s, "reading the checkpoint meta", err);
    int rc = read_meta(s, r, meta, err);
    freeReplyObject(r);
    if (rc < 0)
        return rc;

    struct keys k = {0};
    redisReply *got[CHUNK];
    size_t n_got = 0;
    if ((rc = scan_keys(s, &k, err)) < 0)
        goto out;
    size_t pre = strlen(s->prefix) + 2, post = sizeof "}:state" - 1;
    for (size_t from = 0; from < k.n; from += CHUNK) {
        size_t to = k.n - from > CHUNK ? from + CHUNK : k.n;
        for (size_t i = from; i < to; i++)
            if (redisAppendCommand(s->c, "GET %b", k.v[i].p, k.v[i].n) != REDIS_OK) {
                drop(s);
                rc = vg_error_set(err, VG_ENOMEM, "out of memory reading stored state");
                goto out;
            }
        /* every reply of the chunk first, so stopping early leaves none unread */
        for (n_got = 0; n_got < to - from; n_got++)
            if (redisGetReply(s->c, (void **)&got[n_got]) != REDIS_OK) {
                rc = io_fail(s, "reading stored state", err);
                goto out;
            }
        for (size_t i = 0; i < n_got && rc == VG_OK; i++) {
            const redisReply *v = got[i];
            const char *key = k.v[from + i].p;
            size_t klen = k.v[from + i].n;
            if (v->type == REDIS_REPLY_NIL || klen < pre + post)
                continue; /* deleted since the SCAN, or not ours */
            if (v->type != REDIS_REPLY_STRING) {
                rc = vg_error_set(err, VG_EIO, "Redis at %s: cannot read %.100s: %.200s", s->where, key,
                                  v->type == REDIS_REPLY_ERROR ? v->str : "not a string");
                break;
            }
            int cb = fn(ctx, key + pre, klen - pre - post, v->str, v->len);
            if (cb < 0)
                rc = vg_error_set(err, cb, "loading state from Redis at %s stopped at plant %.*s", s->where,
                                  (int)(klen - pre - post > 64 ? 64 : klen - pre - post), key + pre);
            else if (cb)
                rc = 1; /* stop, no error */
        }
        for (size_t i = 0; i < n_got; i++)
            freeReplyObject(got[i]);
        n_got = 0;
        if (rc)
            break;
    }
out:
    for (size_t i = 0; i < n_got; i++)
        freeReplyObject(got[i]);
    keys_fini(&k);
    return rc > 0 ? VG_OK : rc;
}

static int redis_load(struct vg_store *s, vg_state_load_fn fn, void *ctx, struct vg_state_meta *meta,
                      struct vg_error *err)
{
    struct pipe_guard g;
    pipe_block(&g);
    int rc = load_locked(s, fn, ctx, meta, err);
    pipe_unblock(&g);
    return rc;
}

const struct vg_store_ops vg_redis_store = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "redis",
    .open = redis_open,
    .save = redis_save,
    .load = redis_load,
    .close = redis_close,
};
