/*
 * redis_stream.c: a Redis Stream as a sink for alerts, SMS requests or dead
 * letters, `redis://[[USER]:PASSWORD@]HOST[:PORT]/STREAM?db=N&maxlen=N&batch=N&buffer=N&timeout=DUR`.
 * Owns: one hiredis connection (adapters/redis_conn.c), the parsed URI
 * (password included) and its own copies of every record not yet
 * acknowledged by Redis. Must never: drop a record, reorder records, block
 * longer than its timeout on any one socket operation, let a dead server
 * kill the process (SIGPIPE), or look inside the records it carries.
 * @thread one caller at a time (the pipeline's output or reader thread).
 *
 * Each record becomes one stream entry:
 *   XADD STREAM MAXLEN ~ N * plant KEY data RECORD
 * with two fields: `plant`, the record's key (the plant id, a region code
 * for group alerts, or empty) and `data`, the JSON record's bytes as given.
 * maxlen=0 leaves out MAXLEN: the stream is never trimmed.
 *
 * DESIGN: put copies the record into a FIFO (an item ring plus one byte
 * buffer, reused from its start whenever the FIFO empties) and, once `batch`
 * records wait, sends them: `batch` XADDs appended (redisAppendCommandArgv,
 * binary-safe) and written at once, then their replies read — one round
 * trip. A record leaves the FIFO only when its reply is read, so the FIFO
 * holds exactly what Redis has not acknowledged, oldest first.
 *
 * Failures come in two kinds:
 * - Passing ones: the server is unreachable, an I/O error or a timeout (the
 *   connection is dropped, out of step), or an error reply saying "not now"
 *   (LOADING, BUSY, MASTERDOWN, TRYAGAIN). The records stay, and are sent
 *   again in order on a new try after a backoff from 50 ms doubling to 5 s;
 *   one stderr line says delivery stopped, one says it came back. put keeps
 *   taking records meanwhile until `buffer` records (or BYTES_MAX bytes)
 *   wait; then it waits itself, retrying — back-pressure, never a drop.
 *   flush retries until everything is acknowledged, however long it takes.
 * - A permanent one: any other error reply (WRONGTYPE: the key holds
 *   something else; NOAUTH; OOM ...). put or flush returns VG_EIO naming the
 *   stream and Redis's words, and so does every later call.
 *
 * Delivery is at least once: commands whose replies were not read when the
 * connection failed may have been applied, and are sent again, so that
 * window (at most `batch` records) can appear twice. Alerts carry alert_id
 * to dedupe on. Duplicates never change the order of first occurrences.
 * One exception, documented and rare: if a "not now" reply (say BUSY) stops
 * in the middle of a round, the round's later records are already in and
 * will appear again after the refused one's resend.
 * Not yet: Redis Cluster (hiredis 0.14 has no cluster client), TLS.
 */
#include "adapters/redis_conn.h"
#include "engine/adapter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAXLEN 1000000L
#define DEFAULT_BATCH 512L
#define DEFAULT_BUFFER 100000L
#define BYTES_MAX ((size_t)256 << 20)  /* the FIFO's second bound: bytes waiting */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000
#define CLOSE_WAIT_MS 10000            /* how long close keeps trying to deliver */
#define KNOWN "db, maxlen, batch, buffer, timeout"
#define INSTEAD "give a file path instead of the redis:// URI"

/* A record waiting: key then record bytes, at logical offset off of the byte buffer. */
struct item {
    uint64_t off;
    uint32_t key_len, len;
};

struct vg_sink {
    struct vg_redis_conn conn;
    char *stream;             /* the stream's key, decoded */
    size_t stream_len;
    char maxlen[24];          /* decimal, or "" for no trimming */
    size_t batch, cap;        /* XADDs per round trip; records the FIFO holds at most */
    char name[420];           /* "HOST:PORT/STREAM", for messages */

    /* the FIFO of records not yet acknowledged, oldest first */
    struct item *items;       /* a ring of items_cap entries */
    size_t head, n, items_cap;
    char *bytes;              /* bytes[0] is logical offset base */
    size_t bytes_cap;
    uint64_t base, end;       /* the next record goes at logical offset end */

    /* retrying */
    bool failing;             /* delivery has stopped (said once on stderr) */
    vg_ts next_try;           /* monotonic ms of the next try */
    vg_ts backoff;            /* ms to wait after the next failure */
    struct vg_error fatal;    /* fatal.code < 0: broken for good, every call returns it */
};

enum { PASSING = 1 };  /* attempt(): a passing failure, records kept, retry later */

static vg_ts now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (vg_ts)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_until(vg_ts when)
{
    vg_ts left = when - now_ms();
    if (left <= 0)
        return;
    struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- the FIFO ------------------------------------------------------------------- */

static struct item *item_at(struct vg_sink *k, size_t i)
{
    return &k->items[(k->head + i) % k->items_cap];
}

static size_t live_bytes(struct vg_sink *k)
{
    return k->n ? (size_t)(k->end - item_at(k, 0)->off) : 0;
}

/* Would a record of @p sz more bytes overflow the bounds? (A lone record always fits.) */
static bool full(struct vg_sink *k, size_t sz)
{
    return k->n >= k->cap || (k->n > 0 && live_bytes(k) + sz > BYTES_MAX);
}

/* Append a copy of key and record. @returns 0 or VG_ENOMEM. */
static int push(struct vg_sink *k, const char *key, size_t key_len, const char *rec, size_t len)
{
    size_t sz = key_len + len;
    if (k->n == 0)
        k->base = k->end; /* everything before is acknowledged: start over at bytes[0] */
    if (k->end - k->base + sz > k->bytes_cap) {
        /* drop the acknowledged prefix, then grow if that is not enough */
        uint64_t from = k->n ? item_at(k, 0)->off : k->end;
        size_t live = (size_t)(k->end - from);
        if (live)
            memmove(k->bytes, k->bytes + (from - k->base), live);
        k->base = from;
        if (live + sz > k->bytes_cap) {
            size_t cap = k->bytes_cap ? k->bytes_cap : 64u << 10;
            while (cap < live + sz)
                cap *= 2;
            char *b = realloc(k->bytes, cap);
            if (!b)
                return VG_ENOMEM;
            k->bytes = b;
            k->bytes_cap = cap;
        }
    }
    if (k->n == k->items_cap) {
        size_t cap = k->items_cap ? k->items_cap * 2 : 1024;
        struct item *v = malloc(cap * sizeof *v);
        if (!v)
            return VG_ENOMEM;
        for (size_t i = 0; i < k->n; i++)
            v[i] = *item_at(k, i);
        free(k->items);
        k->items = v;
        k->items_cap = cap;
        k->head = 0;
    }
    char *at = k->bytes + (k->end - k->base);
    if (key_len)
        memcpy(at, key, key_len);
    if (len)
        memcpy(at + key_len, rec, len);
    *item_at(k, k->n) = (struct item){k->end, (uint32_t)key_len, (uint32_t)len};
    k->n++;
    k->end += sz;
    return VG_OK;
}

static void pop(struct vg_sink *k)
{
    k->head = (k->head + 1) % k->items_cap;
    k->n--;
}

/* ---- delivering ------------------------------------------------------------------ */

/* A permanent failure: remember it; every later call returns it. */
static int broken(struct vg_sink *k, int code, struct vg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int broken(struct vg_sink *k, int code, struct vg_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->fatal.msg, sizeof k->fatal.msg, fmt, ap);
    va_end(ap);
    k->fatal.code = code;
    if (err)
        *err = k->fatal;
    return code;
}

/* A passing failure: say so once, schedule the next try. */
static int passing(struct vg_sink *k)
{
    if (!k->failing)
        fprintf(stderr, "vigil: alerts not delivered to redis %s: %s; retrying (%zu waiting)\n", k->name,
                k->conn.why[0] ? k->conn.why : "connection lost", k->n);
    k->failing = true;
    k->next_try = now_ms() + k->backoff;
    k->backoff = k->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : k->backoff * 2;
    return PASSING;
}

static void delivered(struct vg_sink *k)
{
    if (k->failing)
        fprintf(stderr, "vigil: alerts delivered again to redis %s (%zu waiting)\n", k->name, k->n);
    k->failing = false;
    k->backoff = BACKOFF_MIN_MS;
    k->next_try = 0;
}

/*
 * One round trip: XADD the oldest min(n, batch) records, read every reply,
 * and drop from the FIFO each record acknowledged before the first refusal.
 * @returns 0, PASSING (connection dropped, or a "not now" reply), or a
 * permanent error.
 */
static int round_trip(struct vg_sink *k, struct vg_error *err)
{
    size_t m = k->n < k->batch ? k->n : k->batch;
    for (size_t i = 0; i < m; i++) {
        const struct item *it = item_at(k, i);
        const char *key = k->bytes + (it->off - k->base);
        const char *argv[10] = {"XADD", k->stream, "MAXLEN", "~", k->maxlen, "*", "plant", key, "data",
                                key + it->key_len};
        size_t argvlen[10] = {4, k->stream_len, 6, 1, strlen(k->maxlen), 1, 5, it->key_len, 4, it->len};
        int skip = k->maxlen[0] ? 0 : 3; /* no trimming: XADD STREAM * ... */
        if (skip) {
            argv[2] = argv[5];
            argvlen[2] = argvlen[5];
            memmove(&argv[3], &argv[6], 4 * sizeof *argv);
            memmove(&argvlen[3], &argvlen[6], 4 * sizeof *argvlen);
        }
        if (redisAppendCommandArgv(k->conn.c, 10 - skip, argv, argvlen) != REDIS_OK) {
            vg__redis_drop(&k->conn); /* part of a round may be queued: start afresh */
            return broken(k, VG_ENOMEM, err, "out of memory queueing records for redis %s", k->name);
        }
    }
    bool acking = true;
    int rc = VG_OK;
    for (size_t i = 0; i < m; i++) {
        redisReply *r;
        if (redisGetReply(k->conn.c, (void **)&r) != REDIS_OK) {
            struct vg_error ignored;
            vg__redis_io_fail(&k->conn, "adding to the stream", &ignored);
            return rc < 0 ? rc : PASSING;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (vg__redis_not_ready(r->str)) {
                if (rc == VG_OK) { /* the first says why; the round's later ones change nothing */
                    snprintf(k->conn.why, sizeof k->conn.why, "%s", r->str);
                    rc = PASSING;
                }
            } else if (rc >= 0) {
                rc = broken(k, VG_EIO, err, "Redis at %s refused a record for stream '%.100s': %.200s",
                            k->conn.where, k->stream, r->str);
            }
            acking = false;
        } else if (acking) {
            pop(k);
        }
        freeReplyObject(r);
    }
    return rc;
}

/*
 * One try: connect if need be, then round trips while `batch` records wait,
 * or until none waits when @p all. A connection that fails its first round
 * is made once more at once (Redis may have closed an idle one) before the
 * failure counts.
 * @returns 0, PASSING (the next try is scheduled), or a permanent error.
 */
static int attempt(struct vg_sink *k, bool all, struct vg_error *err)
{
    struct vg_redis_sigpipe g;
    vg__redis_sigpipe_block(&g);
    bool fresh = false, again = true;
    int rc = VG_OK;
    while (rc == VG_OK && k->n && (all || k->n >= k->batch)) {
        if (!k->conn.c) {
            struct vg_error why;
            if (vg__redis_connect(&k->conn, INSTEAD, &why) < 0) {
                rc = k->conn.refused && !k->conn.not_ready ? broken(k, VG_EIO, err, "%s", why.msg) : passing(k);
                break;
            }
            fresh = true;
        }
        rc = round_trip(k, err);
        if (rc == PASSING && !fresh && again && !k->conn.c) {
            again = false; /* a stale connection: one more at once */
            rc = VG_OK;
            continue;
        }
        if (rc == PASSING)
            passing(k);
        else if (rc == VG_OK)
            delivered(k);
    }
    vg__redis_sigpipe_unblock(&g);
    return rc;
}

/* ---- the ops --------------------------------------------------------------------- */

static void stream_free(struct vg_sink *k)
{
    vg__redis_conn_fini(&k->conn);
    free(k->stream);
    free(k->items);
    free(k->bytes);
    free(k);
}

static int parse_uri(struct vg_sink *k, const char *uri, struct vg_error *err)
{
    struct vg_uri u;
    int rc = vg_uri_parse(uri, "output", &u, err);
    if (rc < 0)
        return rc;
    long db = 0, maxlen = DEFAULT_MAXLEN, batch = DEFAULT_BATCH, cap = DEFAULT_BUFFER;
    if (strcmp(u.scheme, "redis")) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: not a redis:// URI");
        goto out;
    }
    if ((rc = vg__redis_conn_init(&k->conn, &u, err)) < 0)
        goto out;
    if (!*u.path) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: name the stream after the server, "
                          "redis://HOST:PORT/STREAM (e.g. redis://127.0.0.1:6379/vigil:alerts)");
        goto out;
    }
    if ((rc = vg_uri_long(&u, "db", 0, 1000000, &db, err)) < 0 ||
        (rc = vg_uri_long(&u, "maxlen", 0, 1000000000000L, &maxlen, err)) < 0 ||
        (rc = vg_uri_long(&u, "batch", 1, 100000, &batch, err)) < 0 ||
        (rc = vg_uri_long(&u, "buffer", 1, 100000000, &cap, err)) < 0 ||
        (rc = vg_uri_finish(&u, KNOWN, err)) < 0)
        goto out;
    if (batch > cap) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: batch=%ld is more than buffer=%ld; a round trip "
                          "cannot send more records than may wait", batch, cap);
        goto out;
    }
    if (!(k->stream = strdup(u.path))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    k->stream_len = strlen(k->stream);
    k->conn.db = db;
    if (maxlen)
        snprintf(k->maxlen, sizeof k->maxlen, "%ld", maxlen);
    k->batch = (size_t)batch;
    k->cap = (size_t)cap;
    snprintf(k->name, sizeof k->name, "%s/%.100s", k->conn.where, k->stream);
out:
    vg_uri_fini(&u);
    return rc;
}

static int stream_open(const char *uri, struct vg_sink **out, struct vg_error *err)
{
    *out = NULL;
    struct vg_sink *k = calloc(1, sizeof *k);
    if (!k)
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    k->backoff = BACKOFF_MIN_MS;
    int rc = parse_uri(k, uri, err);
    if (rc < 0)
        goto fail;
    struct vg_redis_sigpipe g;
    vg__redis_sigpipe_block(&g);
    rc = vg__redis_connect(&k->conn, INSTEAD, err);
    vg__redis_sigpipe_unblock(&g);
    if (rc < 0 && k->conn.not_ready) {
        passing(k); /* up but loading or busy: deliver once it is ready */
        rc = VG_OK;
    }
    if (rc < 0)
        goto fail;
    *out = k;
    return VG_OK;
fail:
    stream_free(k);
    return rc;
}

static int stream_put(struct vg_sink *k, const char *key, size_t key_len, const char *rec, size_t len,
                      struct vg_error *err)
{
    if (k->fatal.code < 0)
        return vg_error_set(err, k->fatal.code, "%s", k->fatal.msg);
    if (key_len > UINT32_MAX || len > UINT32_MAX - key_len)
        return vg_error_set(err, VG_EINVAL, "a record of %zu bytes is too large for redis %s", len, k->name);
    while (full(k, key_len + len)) { /* back-pressure: wait for Redis to take some */
        sleep_until(k->next_try);
        int rc = attempt(k, true, err);
        if (rc < 0)
            return rc;
    }
    if (push(k, key, key_len, rec, len) < 0)
        return vg_error_set(err, VG_ENOMEM, "out of memory keeping a record for redis %s", k->name);
    if (k->n >= k->batch && now_ms() >= k->next_try) {
        int rc = attempt(k, false, err);
        if (rc < 0)
            return rc;
    }
    return VG_OK;
}

static int stream_flush(struct vg_sink *k, struct vg_error *err)
{
    if (k->fatal.code < 0)
        return vg_error_set(err, k->fatal.code, "%s", k->fatal.msg);
    while (k->n) {
        sleep_until(k->next_try);
        int rc = attempt(k, true, err);
        if (rc < 0)
            return rc;
    }
    return VG_OK;
}

static void stream_close(struct vg_sink *k)
{
    if (!k)
        return;
    vg_ts deadline = now_ms() + CLOSE_WAIT_MS;
    struct vg_error err;
    while (k->n && k->fatal.code == 0 && k->next_try <= deadline) {
        sleep_until(k->next_try);
        attempt(k, true, &err);
        if (now_ms() >= deadline)
            break;
    }
    if (k->n)
        fprintf(stderr, "vigil: %zu alerts not delivered to redis %s: %s; given up at close\n", k->n, k->name,
                k->fatal.code < 0 ? k->fatal.msg : k->conn.why[0] ? k->conn.why : "no answer");
    stream_free(k);
}

const struct vg_sink_ops vg_redis_stream_sink = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "redis",
    .open = stream_open,
    .put = stream_put,
    .flush = stream_flush,
    .close = stream_close,
};
