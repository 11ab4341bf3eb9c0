/*
 * test_redis_stream.c: the Redis Stream sink (adapters/redis_stream.c)
 * against real redis-servers of the suite's own (tests/servers.h).
 * Owns: 20,000 keyed records read back with XRANGE (each once, in order,
 * byte-identical, `plant` = key); batching (what waits before a flush, and
 * that flush returns only once all is acknowledged); approximate trimming;
 * the db option; a permanent error reply (WRONGTYPE); a hung server, a
 * stopped and restarted one, a BUSY one, and a full buffer waiting for a
 * server to come back — after each, no record is missing and first
 * occurrences keep their order; passwords; a missing server's message; bad
 * URIs.
 * Must never: touch port 6379 or a server it did not start; assert on
 * timings (the machine is shared). The rate it prints is information.
 */
#include "vgtest.h"
#include "servers.h"

#include "engine/adapter.h"

#include <hiredis/hiredis.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct vgt_server srv;     /* the "stream" case's server, flushed before each test */
static struct vgt_server other;   /* the "outage" case's own, stopped and started */

/* ---- helpers ------------------------------------------------------------------------ */

static void need(struct vgt_server *s)
{
    ck_assert_msg(vgt_redis_start(s) == 0, "%s", s->error);
}

/* "redis://127.0.0.1:PORT" + tail, in one of a few static slots. */
static const char *uri(const struct vgt_server *s, const char *tail)
{
    static char slots[8][512];
    static int slot;
    char *out = slots[slot++ % 8];
    snprintf(out, 512, "redis://%s:%d%s", s->host, s->port, tail);
    return out;
}

static struct vg_sink_handle open_sink(const char *u)
{
    struct vg_sink_handle h = {0};
    struct vg_error err = {0};
    int rc = vg_sink_open(u, &h, &err);
    ck_assert_msg(rc == VG_OK, "open %s: %d %s", u, rc, err.msg);
    return h;
}

/* A plain hiredis connection, for looking behind the sink's back. */
static redisContext *raw(const struct vgt_server *s)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    ck_assert_msg(c && !c->err, "raw connection to %s:%d: %s", s->host, s->port, c ? c->errstr : "no memory");
    redisSetTimeout(c, tv);
    return c;
}

static void run(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL, "%s: %s", fmt, c->errstr);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    freeReplyObject(r);
}

static long long xlen(redisContext *c, const char *stream)
{
    redisReply *r = redisCommand(c, "XLEN %s", stream);
    ck_assert_msg(r && r->type == REDIS_REPLY_INTEGER, "XLEN %s", stream);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/*
 * Record i: key "P320585%06d" (empty for every 997th: a record may have no
 * key), and a JSON-like body of varied length with the index in it; every
 * 1000th holds a NUL, CR LF and bytes >= 0x80 (binary-safe).
 */
static size_t make_key(size_t i, char *out)
{
    if (i % 997 == 5)
        return 0;
    return (size_t)sprintf(out, "P320585%06zu", i);
}

static size_t make_rec(size_t i, char *out)
{
    size_t n = (size_t)sprintf(out, "{\"alert_id\":\"a%08zu\",\"i\":%zu,\"title\":\"涉氨制冷车间氨气浓度超限\",\"pad\":\"",
                               i, i);
    size_t pad = (i * 37) % 200;
    for (size_t j = 0; j < pad; j++)
        out[n++] = (char)('a' + (i + j) % 26);
    if (i % 1000 == 1) {
        memcpy(out + n, "\0\r\n\xff\x80", 5);
        n += 5;
    }
    n += (size_t)sprintf(out + n, "\"}");
    return n;
}

static void put_range(struct vg_sink_handle *h, size_t from, size_t to)
{
    char key[32], rec[512];
    for (size_t i = from; i < to; i++) {
        struct vg_error err = {0};
        size_t kn = make_key(i, key), rn = make_rec(i, rec);
        int rc = h->ops->put(h->sink, key, kn, rec, rn, &err);
        ck_assert_msg(rc == VG_OK, "put %zu: %d %s", i, rc, err.msg);
    }
}

static void flush_ok(struct vg_sink_handle *h)
{
    struct vg_error err = {0};
    int rc = h->ops->flush(h->sink, &err);
    ck_assert_msg(rc == VG_OK, "flush: %d %s", rc, err.msg);
}

/* One stream entry as read back. */
struct entry {
    char *plant, *data;
    size_t plant_len, len;
    size_t nfields;
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

static void entries_fini(struct entries *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].plant);
        free(e->v[i].data);
    }
    free(e->v);
    memset(e, 0, sizeof *e);
}

static char *copy(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* Every entry of @p stream, oldest first (XRANGE in pages of 1000). */
static void read_stream(redisContext *c, const char *stream, struct entries *e)
{
    char start[64] = "-";
    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT 1000", stream, start);
        ck_assert_msg(r && r->type == REDIS_REPLY_ARRAY, "XRANGE %s", r && r->type == REDIS_REPLY_ERROR ? r->str : "");
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *ent = r->element[i];
            const redisReply *id = ent->element[0], *f = ent->element[1];
            if (e->n == e->cap) {
                e->cap = e->cap ? e->cap * 2 : 1024;
                e->v = realloc(e->v, e->cap * sizeof *e->v);
            }
            struct entry *x = &e->v[e->n++];
            memset(x, 0, sizeof *x);
            x->nfields = f->elements;
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                const redisReply *k = f->element[j], *v = f->element[j + 1];
                if (k->len == 5 && !memcmp(k->str, "plant", 5)) {
                    x->plant = copy(v->str, v->len);
                    x->plant_len = v->len;
                } else if (k->len == 4 && !memcmp(k->str, "data", 4)) {
                    x->data = copy(v->str, v->len);
                    x->len = v->len;
                }
            }
            snprintf(start, sizeof start, "(%s", id->str);
        }
        size_t got = r->elements;
        freeReplyObject(r);
        if (got < 1000)
            return;
    }
}

/* The record index an entry carries ("i":N), or -1. */
static long index_of(const struct entry *x)
{
    const char *p = x->data ? strstr(x->data, "\"i\":") : NULL;
    return p ? strtol(p + 4, NULL, 10) : -1;
}

/* Entry @p x is record @p i exactly: key and bytes. */
static void entry_is(const struct entry *x, size_t i)
{
    char key[32], rec[512];
    size_t kn = make_key(i, key), rn = make_rec(i, rec);
    ck_assert_msg(x->nfields == 4, "entry %zu has %zu fields", i, x->nfields);
    ck_assert_msg(x->plant && x->plant_len == kn && !memcmp(x->plant, key, kn), "entry %zu: plant '%s'", i,
                  x->plant ? x->plant : "(none)");
    ck_assert_msg(x->data && x->len == rn && !memcmp(x->data, rec, rn), "entry %zu: data differs", i);
}

/*
 * After an outage: the first occurrences are records 0..total-1 in order
 * (none missing, none out of order), every entry is one of ours and
 * byte-identical, and at most @p max_dups entries repeat an earlier one.
 * @returns the number of duplicates.
 */
static size_t check_delivered(const struct entries *e, size_t total, size_t max_dups)
{
    char *seen = calloc(total, 1);
    size_t next = 0, dups = 0;
    for (size_t j = 0; j < e->n; j++) {
        long i = index_of(&e->v[j]);
        ck_assert_msg(i >= 0 && (size_t)i < total, "entry %zu is not one of ours", j);
        entry_is(&e->v[j], (size_t)i);
        if (seen[i]) {
            dups++;
            continue;
        }
        ck_assert_msg((size_t)i == next, "entry %zu: record %ld first appears where record %zu should", j, i,
                      next);
        seen[i] = 1;
        next++;
    }
    free(seen);
    ck_assert_msg(next == total, "records %zu.. are missing (of %zu)", next, total);
    ck_assert_msg(dups <= max_dups, "%zu duplicates, more than the window in flight (%zu)", dups, max_dups);
    return dups;
}

/* stderr into a file for a while, to read the sink's lines. */
static int saved_stderr = -1;

static void capture_stderr(void)
{
    char *p = vgt_path("stderr.txt");
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    free(p);
}

/* Restore stderr; @returns what was written (caller frees), and echoes it. */
static char *captured(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    char *p = vgt_path("stderr.txt");
    char *text = vgt_read(p, NULL);
    free(p);
    fputs(text, stderr);
    return text;
}

static double secs(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the "stream" case: one server, flushed before each test ------------------------- */

static void stream_setup(void)
{
    need(&srv);
    redisContext *c = raw(&srv);
    run(c, "FLUSHALL");
    redisFree(c);
}

static void stream_teardown(void)
{
    vgt_redis_stop(&srv);
}

#define MANY 20000

START_TEST(twenty_thousand_records_arrive_once_in_order_byte_identical)
{
    struct vg_sink_handle h = open_sink(uri(&srv, "/vigil:alerts"));
    double t0 = secs();
    put_range(&h, 0, MANY);
    flush_ok(&h);
    double t = secs() - t0;
    printf("redis_stream: %d records put and acknowledged in %.0f ms: %.0f records/s\n", MANY, t * 1000,
           MANY / t);
    redisContext *c = raw(&srv);
    ck_assert_int_eq(xlen(c, "vigil:alerts"), MANY); /* acknowledged before flush returned */
    vg_sink_close(&h);

    struct entries e = {0};
    read_stream(c, "vigil:alerts", &e);
    ck_assert_uint_eq(e.n, MANY);
    for (size_t i = 0; i < MANY; i++)
        entry_is(&e.v[i], i);
    entries_fini(&e);
    redisFree(c);
}
END_TEST

/* batch sizes: records wait until a batch is full; flush sends the rest */
static const size_t batches[] = {1, 7, 512, 5000};

START_TEST(a_batch_waits_until_full_and_flush_returns_once_acknowledged)
{
    size_t batch = batches[_i], n = 3000;
    char tail[64];
    snprintf(tail, sizeof tail, "/s?batch=%zu", batch);
    struct vg_sink_handle h = open_sink(uri(&srv, tail));
    redisContext *c = raw(&srv);
    put_range(&h, 0, n);
    ck_assert_int_eq(xlen(c, "s"), (long long)(n / batch * batch));
    flush_ok(&h);
    ck_assert_int_eq(xlen(c, "s"), (long long)n);
    flush_ok(&h); /* nothing waiting: returns at once */
    put_range(&h, n, n + 1);
    vg_sink_close(&h); /* close delivers what waits */
    ck_assert_int_eq(xlen(c, "s"), (long long)n + 1);
    struct entries e = {0};
    read_stream(c, "s", &e);
    for (size_t i = 0; i <= n; i++)
        entry_is(&e.v[i], i);
    entries_fini(&e);
    redisFree(c);
}
END_TEST

/* maxlen: approximate trimming keeps at least maxlen (whole stream nodes of 100 go) */
static const struct {
    const char *tail;
    long long min, max;
} trims[] = {
    {"/t?maxlen=1000", 1000, 1100},
    {"/t?maxlen=5000&batch=100", 5000, 5100},
    {"/t?maxlen=0", 20000, 20000},
    {"/t", 20000, 20000}, /* default 1,000,000 */
};

START_TEST(maxlen_trims_approximately)
{
    struct vg_sink_handle h = open_sink(uri(&srv, trims[_i].tail));
    put_range(&h, 0, 20000);
    flush_ok(&h);
    vg_sink_close(&h);
    redisContext *c = raw(&srv);
    long long n = xlen(c, "t");
    ck_assert_msg(n >= trims[_i].min && n <= trims[_i].max, "%s: XLEN %lld", trims[_i].tail, n);
    /* what is left is the newest, in order, ending with the last record */
    struct entries e = {0};
    read_stream(c, "t", &e);
    ck_assert_uint_eq(e.n, (size_t)n);
    for (size_t j = 0; j < e.n; j++)
        entry_is(&e.v[j], 20000 - e.n + j);
    entries_fini(&e);
    redisFree(c);
}
END_TEST

START_TEST(the_db_option_selects_the_database)
{
    struct vg_sink_handle h = open_sink(uri(&srv, "/s?db=3"));
    put_range(&h, 0, 10);
    flush_ok(&h);
    vg_sink_close(&h);
    redisContext *c = raw(&srv);
    ck_assert_int_eq(xlen(c, "s"), 0);
    run(c, "SELECT 3");
    ck_assert_int_eq(xlen(c, "s"), 10);
    redisFree(c);

    struct vg_sink_handle bad = {0};
    struct vg_error err = {0};
    ck_assert_int_eq(vg_sink_open(uri(&srv, "/s?db=16"), &bad, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, "SELECT") && strstr(err.msg, "out of range"), "%s", err.msg);
}
END_TEST

/* where a WRONGTYPE surfaces: at the put that fills a batch, or at flush */
static const struct {
    const char *tail;
    size_t puts;
    bool at_flush;
} wrongs[] = {
    {"/held?batch=4", 4, false},
    {"/held", 3, true},
};

START_TEST(a_key_of_another_type_is_a_permanent_error_naming_wrongtype)
{
    redisContext *c = raw(&srv);
    run(c, "SET held not-a-stream");
    struct vg_sink_handle h = open_sink(uri(&srv, wrongs[_i].tail));
    char key[32], rec[512];
    struct vg_error err = {0};
    int rc = VG_OK;
    for (size_t i = 0; i < wrongs[_i].puts && rc == VG_OK; i++)
        rc = h.ops->put(h.sink, key, make_key(i, key), rec, make_rec(i, rec), &err);
    if (wrongs[_i].at_flush) {
        ck_assert_int_eq(rc, VG_OK);
        rc = h.ops->flush(h.sink, &err);
    }
    ck_assert_int_eq(rc, VG_EIO);
    ck_assert_int_eq(err.code, VG_EIO);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", srv.port);
    ck_assert_msg(strstr(err.msg, "WRONGTYPE") && strstr(err.msg, "'held'") && strstr(err.msg, where), "%s",
                  err.msg);
    /* and it stays: every later call says the same */
    struct vg_error again = {0};
    ck_assert_int_eq(h.ops->put(h.sink, key, 1, rec, 1, &again), VG_EIO);
    ck_assert_str_eq(again.msg, err.msg);
    ck_assert_int_eq(h.ops->flush(h.sink, &again), VG_EIO);
    ck_assert_str_eq(again.msg, err.msg);
    vg_sink_close(&h);
    redisFree(c);
}
END_TEST

/* ---- the "outage" case: a server of its own --------------------------------------------- */

static void other_teardown(void)
{
    if (other.pid > 0)
        kill(other.pid, SIGCONT);
    vgt_redis_stop(&other);
    memset(&other, 0, sizeof other);
}

static volatile sig_atomic_t sigpipes;

static void count_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

START_TEST(a_hung_server_is_waited_out_and_nothing_is_lost)
{
    need(&other);
    struct vg_sink_handle h = open_sink(uri(&other, "/alerts?timeout=200ms&batch=100"));
    put_range(&h, 0, 3000);
    capture_stderr();
    kill(other.pid, SIGSTOP);
    put_range(&h, 3000, 6000); /* tries time out; the records wait */
    kill(other.pid, SIGCONT);
    put_range(&h, 6000, 9000);
    flush_ok(&h);
    char *said = captured();
    vg_sink_close(&h);

    char down[160], up[160];
    snprintf(down, sizeof down, "vigil: alerts not delivered to redis 127.0.0.1:%d/alerts: no answer in time; "
             "retrying (", other.port);
    snprintf(up, sizeof up, "vigil: alerts delivered again to redis 127.0.0.1:%d/alerts", other.port);
    ck_assert_msg(strstr(said, down) && strstr(said, up), "stderr:\n%s", said);
    free(said);

    redisContext *c = raw(&other);
    struct entries e = {0};
    read_stream(c, "alerts", &e);
    size_t dups = check_delivered(&e, 9000, 100);
    printf("redis_stream: a hung server: %zu entries for 9000 records (%zu duplicates)\n", e.n, dups);
    entries_fini(&e);
    redisFree(c);
}
END_TEST

START_TEST(a_server_restarted_on_its_port_gets_every_record)
{
    struct sigaction count = {.sa_handler = count_sigpipe}, old;
    sigaction(SIGPIPE, &count, &old);
    sigpipes = 0;
    need(&other);
    struct vg_sink_handle h = open_sink(uri(&other, "/alerts?batch=64"));
    put_range(&h, 0, 2000);
    flush_ok(&h);
    redisContext *c = raw(&other);
    run(c, "SAVE"); /* what was acknowledged outlives the restart (the server keeps no other copy) */
    redisFree(c);

    capture_stderr();
    vgt_redis_stop(&other);
    put_range(&h, 2000, 4000); /* refused: the records wait */
    int rc = vgt_redis_start(&other);
    put_range(&h, 4000, 6000);
    flush_ok(&h);
    char *said = captured();
    ck_assert_msg(rc == 0, "%s", other.error);
    vg_sink_close(&h);
    sigaction(SIGPIPE, &old, NULL);
    ck_assert_int_eq(sigpipes, 0);

    char down[160];
    snprintf(down, sizeof down, "vigil: alerts not delivered to redis 127.0.0.1:%d/alerts: ", other.port);
    ck_assert_msg(strstr(said, down) && strstr(said, "delivered again"), "stderr:\n%s", said);
    free(said);

    c = raw(&other);
    struct entries e = {0};
    read_stream(c, "alerts", &e);
    size_t dups = check_delivered(&e, 6000, 64);
    printf("redis_stream: a restarted server: %zu entries for 6000 records (%zu duplicates)\n", e.n, dups);
    entries_fini(&e);
    redisFree(c);
}
END_TEST

struct putter {
    struct vg_sink_handle *h;
    size_t n;
    int rc;
    struct vg_error err;
    atomic_int done;
};

/* put records 0..n-1 on a thread of its own (no ck_assert off the main thread) */
static void *put_all(void *arg)
{
    struct putter *p = arg;
    char key[32], rec[512];
    p->rc = VG_OK;
    for (size_t i = 0; i < p->n && p->rc == VG_OK; i++)
        p->rc = p->h->ops->put(p->h->sink, key, make_key(i, key), rec, make_rec(i, rec), &p->err);
    atomic_store(&p->done, 1);
    return NULL;
}

START_TEST(a_full_buffer_makes_put_wait_for_the_server)
{
    need(&other);
    struct vg_sink_handle h = open_sink(uri(&other, "/alerts?batch=50&buffer=200&timeout=200ms"));
    vgt_redis_stop(&other);
    capture_stderr();
    struct putter p = {.h = &h, .n = 1000};
    atomic_init(&p.done, 0);
    pthread_t th;
    pthread_create(&th, NULL, put_all, &p);
    sleep_ms(1000);
    /* 200 may wait and there is no server: put cannot have taken all 1000 */
    int done_before_restart = atomic_load(&p.done);
    int rc = vgt_redis_start(&other); /* from this thread: the server dies with the thread that forks it */
    pthread_join(th, NULL);
    if (rc == 0)
        flush_ok(&h);
    char *said = captured();
    free(said);
    ck_assert_msg(rc == 0, "%s", other.error);
    ck_assert_msg(!done_before_restart, "put took 1000 records with room for 200 and no server");
    ck_assert_msg(p.rc == VG_OK, "put: %d %s", p.rc, p.err.msg);
    vg_sink_close(&h);

    redisContext *c = raw(&other);
    struct entries e = {0};
    read_stream(c, "alerts", &e);
    check_delivered(&e, 1000, 0); /* the server never saw the waiting ones before: no duplicates */
    entries_fini(&e);
    redisFree(c);
}
END_TEST

struct killer {
    struct vgt_server *s;
    int after_ms;
};

static void *kill_script_later(void *arg)
{
    struct killer *k = arg;
    sleep_ms(k->after_ms);
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(k->s->host, k->s->port, tv);
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "SCRIPT KILL");
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return NULL;
}

START_TEST(a_busy_server_is_waited_out_not_fatal)
{
    need(&other);
    /* small rounds: each fits one read of the server, so BUSY never ends mid-round */
    struct vg_sink_handle h = open_sink(uri(&other, "/alerts?batch=10"));
    put_range(&h, 0, 100);
    redisContext *c = raw(&other);
    run(c, "CONFIG SET busy-reply-threshold 50");
    redisContext *busy = raw(&other);
    redisAppendCommand(busy, "EVAL %s 0", "while true do end");
    int done = 0;
    while (!done)
        ck_assert_int_eq(redisBufferWrite(busy, &done), REDIS_OK);
    sleep_ms(300); /* the script is past the threshold: commands get BUSY */

    capture_stderr();
    static struct killer k;
    k = (struct killer){&other, 800};
    pthread_t th;
    pthread_create(&th, NULL, kill_script_later, &k);
    put_range(&h, 100, 300);
    flush_ok(&h);
    pthread_join(th, NULL);
    char *said = captured();
    ck_assert_msg(strstr(said, "BUSY") && strstr(said, "delivered again"), "stderr:\n%s", said);
    free(said);
    vg_sink_close(&h);
    redisFree(busy);

    struct entries e = {0};
    read_stream(c, "alerts", &e);
    check_delivered(&e, 300, 0);
    entries_fini(&e);
    redisFree(c);
}
END_TEST

START_TEST(a_password_is_sent_and_a_wrong_one_named_not_shown)
{
    need(&other);
    redisContext *c = raw(&other);
    run(c, "CONFIG SET requirepass %s", "s3cr%t@/x");
    run(c, "ACL SETUSER vigil on >hunter2 ~* +@all");
    redisFree(c);

    const char *ok[] = {":s3cr%25t%40%2Fx@", ":s3cr%25t@/x@", "vigil:hunter2@"};
    for (size_t i = 0; i < VG_ARRAY_LEN(ok); i++) {
        char u[256];
        snprintf(u, sizeof u, "redis://%s127.0.0.1:%d/s", ok[i], other.port);
        struct vg_sink_handle h = open_sink(u);
        put_range(&h, 0, 5);
        flush_ok(&h);
        vg_sink_close(&h);
    }

    const struct {
        const char *userinfo, *says;
    } bad[] = {{"", "refused PING: NOAUTH"}, {":hunter3@", "refused the password (AUTH): WRONGPASS"},
               {"vigil:hunter3@", "refused the password (AUTH): WRONGPASS"}};
    for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
        char u[256];
        snprintf(u, sizeof u, "redis://%s127.0.0.1:%d/s", bad[i].userinfo, other.port);
        struct vg_sink_handle h = {0};
        struct vg_error err = {0};
        ck_assert_int_eq(vg_sink_open(u, &h, &err), VG_EIO);
        ck_assert_msg(strstr(err.msg, bad[i].says) && !strstr(err.msg, "hunter"), "%s", err.msg);
        ck_assert_ptr_null(h.sink);
    }
}
END_TEST

/* ---- no server, bad URIs ------------------------------------------------------------------ */

START_TEST(no_server_names_the_address_and_how_to_start_it)
{
    int port = vgt_free_port();
    ck_assert_int_gt(port, 0);
    char u[128], want[512];
    snprintf(u, sizeof u, "redis://127.0.0.1:%d/alerts", port);
    snprintf(want, sizeof want, "cannot reach Redis at 127.0.0.1:%d (Connection refused): start it with "
             "'redis-server --port %d', or give a file path instead of the redis:// URI", port, port);
    struct vg_sink_handle h = {0};
    struct vg_error err = {0};
    ck_assert_int_eq(vg_sink_open(u, &h, &err), VG_EIO);
    ck_assert_int_eq(err.code, VG_EIO);
    ck_assert_str_eq(err.msg, want);
    ck_assert_ptr_null(h.sink);
}
END_TEST

static const struct {
    const char *uri, *says;
} bad_uris[] = {
    {"redis://127.0.0.1:6390", "name the stream after the server, redis://HOST:PORT/STREAM"},
    {"redis://127.0.0.1:6390/", "name the stream"},
    {"redis://", "no host"},
    {"redis://:hunter2@/s", "no host"},
    {"redis://hunter2@127.0.0.1:6390/s", "write the password after a colon"},
    {"redis://a:6390,b:6391/s", "one Redis server only"},
    {"redis://127.0.0.1:0/s", "port must be 1-65535, not '0'"},
    {"redis://127.0.0.1:6390/s?colour=red",
     "bad output URI: unknown option 'colour' for redis:// (it has: db, maxlen, batch, buffer, timeout)"},
    {"redis://127.0.0.1:6390/s?db=x", "option db=x must be a whole number from 0 to 1000000"},
    {"redis://127.0.0.1:6390/s?maxlen=-1", "option maxlen=-1 must be a whole number"},
    {"redis://127.0.0.1:6390/s?batch=0", "option batch=0 must be a whole number from 1"},
    {"redis://127.0.0.1:6390/s?buffer=0", "option buffer=0 must be a whole number from 1"},
    {"redis://127.0.0.1:6390/s?batch=10&buffer=5", "batch=10 is more than buffer=5"},
    {"redis://127.0.0.1:6390/s?timeout=0s", "option timeout=0s must be a duration from 1ms to 10m"},
    {"redis://:hunter2@127.0.0.1:6390/s?prefix=x", "unknown option 'prefix'"},
};

START_TEST(bad_uris_are_usage_errors)
{
    struct vg_sink_handle h = {0};
    struct vg_error err = {0};
    ck_assert_int_eq(vg_sink_open(bad_uris[_i].uri, &h, &err), VG_EUSAGE);
    ck_assert_int_eq(err.code, VG_EUSAGE);
    ck_assert_msg(strstr(err.msg, bad_uris[_i].says) != NULL, "%s: %s", bad_uris[_i].uri, err.msg);
    ck_assert_msg(strstr(err.msg, "hunter2") == NULL, "password shown: %s", err.msg);
    ck_assert_ptr_null(h.sink);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("redis_stream");
    TCase *tc = tcase_create("stream");
    tcase_add_unchecked_fixture(tc, NULL, stream_teardown);
    tcase_add_checked_fixture(tc, stream_setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, twenty_thousand_records_arrive_once_in_order_byte_identical);
    tcase_add_loop_test(tc, a_batch_waits_until_full_and_flush_returns_once_acknowledged, 0,
                        VG_ARRAY_LEN(batches));
    tcase_add_loop_test(tc, maxlen_trims_approximately, 0, VG_ARRAY_LEN(trims));
    tcase_add_test(tc, the_db_option_selects_the_database);
    tcase_add_loop_test(tc, a_key_of_another_type_is_a_permanent_error_naming_wrongtype, 0,
                        VG_ARRAY_LEN(wrongs));
    suite_add_tcase(s, tc);

    TCase *outage = tcase_create("outage");
    tcase_add_checked_fixture(outage, NULL, other_teardown);
    tcase_set_timeout(outage, 120);
    tcase_add_test(outage, a_hung_server_is_waited_out_and_nothing_is_lost);
    tcase_add_test(outage, a_server_restarted_on_its_port_gets_every_record);
    tcase_add_test(outage, a_full_buffer_makes_put_wait_for_the_server);
    tcase_add_test(outage, a_busy_server_is_waited_out_not_fatal);
    tcase_add_test(outage, a_password_is_sent_and_a_wrong_one_named_not_shown);
    suite_add_tcase(s, outage);

    TCase *uris = tcase_create("uris");
    tcase_add_test(uris, no_server_names_the_address_and_how_to_start_it);
    tcase_add_loop_test(uris, bad_uris_are_usage_errors, 0, VG_ARRAY_LEN(bad_uris));
    suite_add_tcase(s, uris);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
