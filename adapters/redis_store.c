/*
 * redis_store.c: Redis as the store of record for rule state (issue 4),
 * `--state redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME&timeout=DUR]`.
 * Owns: the key layout, and its connection (adapters/redis_conn.c: connect,
 * handshake, SIGPIPE, the messages about the server) with the credentials
 * from a URI parsed by engine/uri.c. Must never: block longer than its timeout on any one socket
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
#include "adapters/redis_conn.h"
#include "engine/adapter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 512                /* commands per round trip */
#define SCAN_COUNT "1000"        /* keys SCAN looks at per call */
#define META_VERSION 1
#define PREFIX_MAX 64
#define USAGE "expected redis://[:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME&timeout=DUR]"

struct vg_store {
    struct vg_redis_conn conn;  /* the server, its credentials and the connection */
    char prefix[PREFIX_MAX + 1];
};

/* ---- the URI --------------------------------------------------------------- */

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

/* A usage error gets the URI's form appended, when it fits. */
static int with_usage(int rc, struct vg_error *err)
{
    if (rc == VG_EUSAGE && err) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (" USAGE ")");
    }
    return rc;
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME&timeout=DUR], through engine/uri.c */
static int parse_uri(struct vg_store *s, const char *uri, struct vg_error *err)
{
    struct vg_uri u;
    int rc = vg_uri_parse(uri, "--state", &u, err);
    if (rc < 0)
        return with_usage(rc, err);
    if (strcmp(u.scheme, "redis")) {
        rc = vg_error_set(err, VG_EUSAGE, "bad --state URI: not a redis:// URI");
        goto out;
    }
    if ((rc = vg__redis_conn_init(&s->conn, &u, err)) < 0)
        goto out;
    if (*u.path && !parse_long(u.path, strlen(u.path), 0, 1000000, &s->conn.db)) {
        rc = vg_error_set(err, VG_EUSAGE, "bad --state URI: the database must be a number, not '%.100s'",
                          u.path);
        goto out;
    }
    const char *prefix = vg_uri_opt(&u, "prefix");
    if (prefix && !prefix_ok(prefix, strlen(prefix))) {
        rc = vg_error_set(err, VG_EUSAGE, "bad --state URI: prefix '%.100s' must be 1-%d of A-Z a-z 0-9 _ - . :",
                          prefix, PREFIX_MAX);
        goto out;
    }
    if (prefix)
        snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
    rc = vg_uri_finish(&u, "prefix, timeout", err);
out:
    vg_uri_fini(&u);
    return with_usage(rc, err);
}

/* ---- the connection -------------------------------------------------------- */

static void drop(struct vg_store *s)
{
    vg__redis_drop(&s->conn);
}

static int io_fail(struct vg_store *s, const char *doing, struct vg_error *err)
{
    return vg__redis_io_fail(&s->conn, doing, err);
}

static int connect_now(struct vg_store *s, struct vg_error *err)
{
    return vg__redis_connect(&s->conn, "run with --state memory", err);
}

/* ---- the ops ---------------------------------------------------------------- */

static void redis_close(struct vg_store *s)
{
    if (!s)
        return;
    vg__redis_conn_fini(&s->conn);
    free(s);
}

static int redis_open(const char *uri, struct vg_store **out, struct vg_error *err)
{
    struct vg_store *s = calloc(1, sizeof *s);
    if (!s)
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    snprintf(s->prefix, sizeof s->prefix, "vg");
    int rc = parse_uri(s, uri, err);
    if (rc == VG_OK) {
        struct vg_redis_sigpipe g;
        vg__redis_sigpipe_block(&g);
        rc = connect_now(s, err);
        vg__redis_sigpipe_unblock(&g);
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
    if (!s->conn.c && connect_now(s, err) < 0)
        return VG_EIO;
    for (size_t from = 0; from < n; from += CHUNK) {
        size_t to = n - from > CHUNK ? from + CHUNK : n;
        for (size_t i = from; i < to; i++)
            if ((recs[i].len ? redisAppendCommand(s->conn.c, "SET %s:{%b}:state %b", s->prefix, recs[i].plant,
                                                  recs[i].plant_len, recs[i].data, recs[i].len)
                             : redisAppendCommand(s->conn.c, "DEL %s:{%b}:state", s->prefix, recs[i].plant,
                                                  recs[i].plant_len)) != REDIS_OK) {
                drop(s); /* half a pipeline may be queued: start afresh */
                return vg_error_set(err, VG_ENOMEM, "out of memory queueing state for Redis");
            }
        int rc = VG_OK;
        for (size_t i = from; i < to; i++) {
            redisReply *r;
            if (redisGetReply(s->conn.c, (void **)&r) != REDIS_OK)
                return io_fail(s, "saving state", err);
            if (r->type == REDIS_REPLY_ERROR && rc == VG_OK)
                rc = vg_error_set(err, VG_EIO, "Redis at %s refused state for plant %.*s: %.200s",
                                  s->conn.where, (int)(recs[i].plant_len > 64 ? 64 : recs[i].plant_len),
                                  recs[i].plant, r->str);
            freeReplyObject(r);
        }
        if (rc < 0)
            return rc;
    }
    redisReply *r = redisCommand(s->conn.c, "HSET %s:meta start %" PRId64 " max_ts %" PRId64 " clock %" PRId64
                                 " checkpoint %" PRIu64 " version %d", s->prefix, meta->start,
                                 meta->max_ts, meta->clock, meta->checkpoint, META_VERSION);
    if (!r)
        return io_fail(s, "saving the checkpoint meta", err);
    int rc = VG_OK;
    if (r->type == REDIS_REPLY_ERROR)
        rc = vg_error_set(err, VG_EIO, "Redis at %s refused the checkpoint meta %s:meta: %.200s", s->conn.where,
                          s->prefix, r->str);
    freeReplyObject(r);
    return rc;
}

static int redis_save(struct vg_store *s, const struct vg_state_record *recs, size_t n,
                      const struct vg_state_meta *meta, struct vg_error *err)
{
    struct vg_redis_sigpipe g;
    vg__redis_sigpipe_block(&g);
    int rc = save_locked(s, recs, n, meta, err);
    vg__redis_sigpipe_unblock(&g);
    return rc;
}

/* Fill @p meta from an HGETALL reply; an empty one means nothing stored. */
static int read_meta(struct vg_store *s, const redisReply *r, struct vg_state_meta *meta,
                     struct vg_error *err)
{
    memset(meta, 0, sizeof *meta);
    if (r->type != REDIS_REPLY_ARRAY)
        return vg_error_set(err, VG_EIO, "Redis at %s: %s:meta is not a hash (%.200s)", s->conn.where, s->prefix,
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
                                    "('%.40s'): the stored state is damaged", s->conn.where, s->prefix,
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
                            "is damaged or not vigil's", s->conn.where, s->prefix);
    if (version != META_VERSION)
        return vg_error_set(err, VG_EINVAL, "Redis at %s: %s:meta has version %lld; this vigil reads "
                            "version %d", s->conn.where, s->prefix, version, META_VERSION);
    if (seen != 0x1f)
        return vg_error_set(err, VG_EINVAL, "Redis at %s: %s:meta lacks a field (start, max_ts, clock, "
                            "checkpoint): the stored state is damaged", s->conn.where, s->prefix);
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
        redisReply *r = redisCommandArgv(s->conn.c, 6, argv, NULL);
        if (!r)
            return io_fail(s, "listing stored state (SCAN)", err);
        int rc = VG_OK;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= sizeof cursor || r->element[1]->type != REDIS_REPLY_ARRAY)
            rc = vg_error_set(err, VG_EIO, "Redis at %s answered SCAN oddly (%.200s)", s->conn.where,
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
    if (!s->conn.c && connect_now(s, err) < 0)
        return VG_EIO;
    redisReply *r = redisCommand(s->conn.c, "HGETALL %s:meta", s->prefix);
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
            if (redisAppendCommand(s->conn.c, "GET %b", k.v[i].p, k.v[i].n) != REDIS_OK) {
                drop(s);
                rc = vg_error_set(err, VG_ENOMEM, "out of memory reading stored state");
                goto out;
            }
        /* every reply of the chunk first, so stopping early leaves none unread */
        for (n_got = 0; n_got < to - from; n_got++)
            if (redisGetReply(s->conn.c, (void **)&got[n_got]) != REDIS_OK) {
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
                rc = vg_error_set(err, VG_EIO, "Redis at %s: cannot read %.100s: %.200s", s->conn.where, key,
                                  v->type == REDIS_REPLY_ERROR ? v->str : "not a string");
                break;
            }
            int cb = fn(ctx, key + pre, klen - pre - post, v->str, v->len);
            if (cb < 0)
                rc = vg_error_set(err, cb, "loading state from Redis at %s stopped at plant %.*s", s->conn.where,
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
    struct vg_redis_sigpipe g;
    vg__redis_sigpipe_block(&g);
    int rc = load_locked(s, fn, ctx, meta, err);
    vg__redis_sigpipe_unblock(&g);
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
