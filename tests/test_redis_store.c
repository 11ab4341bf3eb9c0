/*
 * test_redis_store.c: the Redis state store (adapters/redis_store.c) against
 * a real redis-server of the suite's own (tests/servers.h).
 * Owns: save/load round trips (1,000 records in several pipelined chunks,
 * binary values, the meta), replacement per plant, the key layout and the
 * prefix option, database selection, passwords, error replies, a callback
 * that stops a load, an outage and a hung server followed by a reconnect,
 * the message for a server that is not there, and bad URIs.
 * Must never: touch port 6379 or a server it did not start; assert on
 * timings (the machine is shared): an outage test only checks that calls
 * return, with VG_EIO.
 */
#include "vgtest.h"
#include "servers.h"

#include "engine/adapter.h"

#include <hiredis/hiredis.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string literal and its length (without the NUL). */
#define S(x) x, sizeof(x) - 1

static struct vgt_server srv;     /* the "store" case's server */
static struct vgt_server other;   /* the "outage" and "auth" cases' own */

/* ---- helpers ---------------------------------------------------------------- */

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

static struct vg_store_handle open_store(const char *u)
{
    struct vg_store_handle h = {0};
    struct vg_error err = {0};
    int rc = vg_store_open(u, &h, &err);
    ck_assert_msg(rc == VG_OK, "open %s: %d %s", u, rc, err.msg);
    return h;
}

/* A plain hiredis connection, for looking behind the store's back. */
static redisContext *raw(const struct vgt_server *s)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    ck_assert_msg(c && !c->err, "raw connection to %s:%d: %s", s->host, s->port, c ? c->errstr : "no memory");
    redisSetTimeout(c, tv);
    return c;
}

/* Run a command on @p c and expect no error; the reply is the caller's. */
static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL, "%s: %s", fmt, c->errstr);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    return r;
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

static long long integer(redisContext *c, const char *fmt, const char *arg)
{
    redisReply *r = cmd(c, fmt, arg);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* What a load handed back: copies, in arrival order. */
struct got {
    size_t n, cap;
    struct {
        char *plant;
        size_t plant_len;
        char *data;
        size_t len;
    } *v;
    size_t stop_at;   /* return stop_rc on this call (1-based); 0: never */
    int stop_rc;
};

static int collect(void *ctx, const char *plant, size_t plant_len, const void *data, size_t len)
{
    struct got *g = ctx;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->v = realloc(g->v, g->cap * sizeof *g->v);
    }
    g->v[g->n].plant = malloc(plant_len + 1);
    memcpy(g->v[g->n].plant, plant, plant_len);
    g->v[g->n].plant[plant_len] = 0;
    g->v[g->n].plant_len = plant_len;
    g->v[g->n].data = malloc(len + 1);
    memcpy(g->v[g->n].data, data, len);
    g->v[g->n].len = len;
    g->n++;
    return g->n == g->stop_at ? g->stop_rc : 0;
}

static void got_fini(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].plant);
        free(g->v[i].data);
    }
    free(g->v);
    memset(g, 0, sizeof *g);
}

/* The index of @p plant in what was loaded; fails the test if absent. */
static size_t find(const struct got *g, const char *plant, size_t plant_len)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->v[i].plant_len == plant_len && !memcmp(g->v[i].plant, plant, plant_len))
            return i;
    ck_abort_msg("plant %.*s not loaded", (int)plant_len, plant);
    return 0;
}

static void load_all(struct vg_store_handle *h, struct got *g, struct vg_state_meta *meta)
{
    struct vg_error err = {0};
    int rc = h->ops->load(h->store, collect, g, meta, &err);
    ck_assert_msg(rc == VG_OK, "load: %d %s", rc, err.msg);
}

static void save_ok(struct vg_store_handle *h, const struct vg_state_record *recs, size_t n,
                    const struct vg_state_meta *meta)
{
    struct vg_error err = {0};
    int rc = h->ops->save(h->store, recs, n, meta, &err);
    ck_assert_msg(rc == VG_OK, "save: %d %s", rc, err.msg);
}

static void meta_eq(const struct vg_state_meta *a, const struct vg_state_meta *b)
{
    ck_assert_int_eq(a->start, b->start);
    ck_assert_int_eq(a->max_ts, b->max_ts);
    ck_assert_int_eq(a->clock, b->clock);
    ck_assert_uint_eq(a->checkpoint, b->checkpoint);
}

/* N records: plants P3205850000.., values of varied length holding every byte value, NULs included. */
struct many {
    char plants[1000][16];
    unsigned char data[1000][300];
    struct vg_state_record recs[1000];
};

static struct many *many_make(size_t n, unsigned seed)
{
    struct many *m = calloc(1, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        size_t len = 1 + (i * 37 + seed) % 299;
        snprintf(m->plants[i], sizeof m->plants[i], "P320585%04zu", i);
        for (size_t j = 0; j < len; j++)
            m->data[i][j] = (unsigned char)((i * 31 + j * 7 + seed) & 0xff);
        m->recs[i] = (struct vg_state_record){m->plants[i], strlen(m->plants[i]), m->data[i], len};
    }
    return m;
}

static const struct vg_state_meta meta_a = {1763884800000, 1763884900000, 1763884899000, 42};

/* ---- the "store" case: one server, flushed before each test ------------------ */

static void store_setup(void)
{
    need(&srv);
    redisContext *c = raw(&srv);
    run(c, "FLUSHALL");
    redisFree(c);
}

static void store_teardown(void)
{
    vgt_redis_stop(&srv);
}

START_TEST(round_trips_1000_records_and_the_meta)
{
    struct many *m = many_make(1000, 5);
    struct vg_store_handle h = open_store(uri(&srv, ""));
    save_ok(&h, m->recs, 1000, &meta_a);
    vg_store_close(&h);

    struct vg_store_handle again = open_store(uri(&srv, ""));
    struct got g = {0};
    struct vg_state_meta meta;
    load_all(&again, &g, &meta);
    ck_assert_uint_eq(g.n, 1000);
    for (size_t i = 0; i < 1000; i++) {
        size_t k = find(&g, m->recs[i].plant, m->recs[i].plant_len);
        ck_assert_uint_eq(g.v[k].len, m->recs[i].len);
        ck_assert_mem_eq(g.v[k].data, m->recs[i].data, m->recs[i].len);
    }
    meta_eq(&meta, &meta_a);
    got_fini(&g);
    vg_store_close(&again);
    free(m);
}
END_TEST

START_TEST(records_replace_earlier_ones_of_the_same_plant)
{
    struct vg_store_handle h = open_store(uri(&srv, ""));
    struct vg_state_record first[] = {{S("P1"), S("old-1")}, {S("P2"), S("old-2")}};
    struct vg_state_record second[] = {{S("P1"), S("new-1, longer")}};
    struct vg_state_meta m1 = {1000, 2000, 1500, 1}, m2 = {1000, 3000, 2500, 2};
    save_ok(&h, first, 2, &m1);
    save_ok(&h, second, 1, &m2);

    struct got g = {0};
    struct vg_state_meta meta;
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 2);
    size_t p1 = find(&g, S("P1")), p2 = find(&g, S("P2"));
    ck_assert_uint_eq(g.v[p1].len, sizeof "new-1, longer" - 1);
    ck_assert_mem_eq(g.v[p1].data, "new-1, longer", g.v[p1].len);
    ck_assert_uint_eq(g.v[p2].len, 5);
    ck_assert_mem_eq(g.v[p2].data, "old-2", 5);
    meta_eq(&meta, &m2);
    got_fini(&g);
    vg_store_close(&h);
}
END_TEST

/* URI tails and the prefix their keys must carry */
static const struct {
    const char *tail, *prefix;
} layouts[] = {
    {"", "vg"},
    {"/", "vg"},
    {"/0?prefix=east", "east"},
    {"?prefix=prod.east:v1", "prod.east:v1"},
    {"?timeout=500ms&prefix=a-b_c", "a-b_c"},
    {"?prefix=vg:x", "vg:x"},
};

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(keys_are_prefix_hash_tag_state)
{
    const char *prefix = layouts[_i].prefix;
    struct vg_store_handle h = open_store(uri(&srv, layouts[_i].tail));
    struct vg_state_record recs[] = {{S("P320585001"), S("a")}, {S("P320585002"), S("b")},
                                     {S("91320585MA1XYZ0001"), S("c")}};
    save_ok(&h, recs, 3, &meta_a);
    vg_store_close(&h);

    char want[4][128];
    char *wantp[4];
    snprintf(want[0], sizeof want[0], "%s:{P320585001}:state", prefix);
    snprintf(want[1], sizeof want[1], "%s:{P320585002}:state", prefix);
    snprintf(want[2], sizeof want[2], "%s:{91320585MA1XYZ0001}:state", prefix);
    snprintf(want[3], sizeof want[3], "%s:meta", prefix);
    for (int i = 0; i < 4; i++)
        wantp[i] = want[i];
    qsort(wantp, 4, sizeof *wantp, str_cmp);

    redisContext *c = raw(&srv);
    redisReply *r = cmd(c, "KEYS *");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 4);
    char *keys[4];
    for (int i = 0; i < 4; i++)
        keys[i] = r->element[i]->str;
    qsort(keys, 4, sizeof *keys, str_cmp);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(keys[i], wantp[i]);
    freeReplyObject(r);

    r = cmd(c, "TYPE %s", want[0]);
    ck_assert_str_eq(r->str, "string");
    freeReplyObject(r);
    r = cmd(c, "HGETALL %s", want[3]);
    ck_assert_uint_eq(r->elements, 10);
    freeReplyObject(r);
    r = cmd(c, "HGET %s version", want[3]);
    ck_assert_str_eq(r->str, "1");
    freeReplyObject(r);
    r = cmd(c, "HGET %s max_ts", want[3]);
    ck_assert_str_eq(r->str, "1763884900000");
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

START_TEST(prefixes_keep_deployments_apart)
{
    struct vg_store_handle a = open_store(uri(&srv, "")), b = open_store(uri(&srv, "?prefix=vg:x"));
    struct vg_store_handle c = open_store(uri(&srv, "?prefix=other"));
    struct vg_state_record ra[] = {{S("PA"), S("a")}}, rb[] = {{S("PB"), S("b")}};
    struct vg_state_meta mb = {1, 2, 3, 9};
    save_ok(&a, ra, 1, &meta_a);
    save_ok(&b, rb, 1, &mb);

    struct got g = {0};
    struct vg_state_meta meta;
    load_all(&a, &g, &meta);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_str_eq(g.v[0].plant, "PA");
    meta_eq(&meta, &meta_a);
    got_fini(&g);

    load_all(&b, &g, &meta);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_str_eq(g.v[0].plant, "PB");
    meta_eq(&meta, &mb);
    got_fini(&g);

    load_all(&c, &g, &meta);
    ck_assert_uint_eq(g.n, 0);
    ck_assert_uint_eq(meta.checkpoint, 0);
    vg_store_close(&a);
    vg_store_close(&b);
    vg_store_close(&c);
}
END_TEST

/* values and plants that must come back byte for byte */
static const struct {
    const char *plant;
    size_t plant_len;
    const char *data;
    size_t len;
} binaries[] = {
    {S("P1"), S("a\0b")},
    {S("P2"), S("\0")},
    {S("P3"), S("\0\0\0\xff\xfe\r\n*3\r\n$3\r\nSET\r\n")},
    {S("P4"), S(" ")},
    {S("太仓P5"), S("\x01\x00\x02")},
    {S("P{6}"), S("braces in the plant")},
};

/* A record of length 0 deletes the stored one (a subject with nothing left). */
START_TEST(an_empty_record_deletes)
{
    struct vg_store_handle h = open_store(uri(&srv, ""));
    struct vg_state_record keep = {S("P1"), S("kept")}, gone = {S("P2"), S("soon gone")};
    struct vg_state_record both[2] = {keep, gone};
    save_ok(&h, both, 2, &meta_a);
    struct vg_state_record del = {S("P2"), "", 0};
    save_ok(&h, &del, 1, &meta_a);
    save_ok(&h, &del, 1, &meta_a); /* deleting what is not there is no error */
    struct got g = {0};
    struct vg_state_meta meta;
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_mem_eq(g.v[0].plant, "P1", 2);
    got_fini(&g);
    vg_store_close(&h);
}
END_TEST

START_TEST(binary_values_round_trip)
{
    struct vg_store_handle h = open_store(uri(&srv, ""));
    struct vg_state_record rec = {binaries[_i].plant, binaries[_i].plant_len, binaries[_i].data,
                                  binaries[_i].len};
    save_ok(&h, &rec, 1, &meta_a);
    struct got g = {0};
    struct vg_state_meta meta;
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_uint_eq(g.v[0].plant_len, binaries[_i].plant_len);
    ck_assert_mem_eq(g.v[0].plant, binaries[_i].plant, binaries[_i].plant_len);
    ck_assert_uint_eq(g.v[0].len, binaries[_i].len);
    ck_assert_mem_eq(g.v[0].data, binaries[_i].data, binaries[_i].len);
    got_fini(&g);
    vg_store_close(&h);
}
END_TEST

START_TEST(a_one_mebibyte_value_round_trips)
{
    size_t len = 1u << 20;
    unsigned char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = (unsigned char)(i * 131 + i / 256);
    struct vg_store_handle h = open_store(uri(&srv, ""));
    struct vg_state_record rec = {S("PBIG"), big, len};
    save_ok(&h, &rec, 1, &meta_a);
    struct got g = {0};
    struct vg_state_meta meta;
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_uint_eq(g.v[0].len, len);
    ck_assert_int_eq(memcmp(g.v[0].data, big, len), 0);
    got_fini(&g);
    vg_store_close(&h);
    free(big);
}
END_TEST

START_TEST(an_empty_store_loads_nothing_with_a_zero_meta)
{
    struct vg_store_handle h = open_store(uri(&srv, ""));
    struct got g = {0};
    struct vg_state_meta meta = {7, 7, 7, 7}, zero = {0, 0, 0, 0};
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 0);
    meta_eq(&meta, &zero);
    vg_store_close(&h);
}
END_TEST

static const struct vg_state_meta metas[] = {
    {INT64_MIN, INT64_MIN, INT64_MIN, 1},   /* VG_TS_NONE: no clock yet */
    {0, 0, 0, 1},
    {-1, -2, -3, 2},
    {INT64_MAX, INT64_MAX, INT64_MAX, UINT64_MAX},
};

START_TEST(meta_round_trips_at_its_limits)
{
    struct vg_store_handle h = open_store(uri(&srv, ""));
    save_ok(&h, NULL, 0, &metas[_i]);
    struct got g = {0};
    struct vg_state_meta meta;
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 0);
    meta_eq(&meta, &metas[_i]);
    vg_store_close(&h);
}
END_TEST

START_TEST(a_database_number_selects_the_database)
{
    struct vg_store_handle h = open_store(uri(&srv, "/3"));
    struct vg_state_record rec = {S("P1"), S("x")};
    save_ok(&h, &rec, 1, &meta_a);
    vg_store_close(&h);
    redisContext *c = raw(&srv);
    ck_assert_int_eq(integer(c, "EXISTS %s", "vg:{P1}:state"), 0);
    run(c, "SELECT 3");
    ck_assert_int_eq(integer(c, "EXISTS %s", "vg:{P1}:state"), 1);
    ck_assert_int_eq(integer(c, "EXISTS %s", "vg:meta"), 1);
    redisFree(c);

    struct vg_store_handle bad = {0};
    struct vg_error err = {0};
    ck_assert_int_eq(vg_store_open(uri(&srv, "/16"), &bad, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, "SELECT") && strstr(err.msg, "out of range"), "%s", err.msg);
}
END_TEST

START_TEST(an_error_reply_fails_the_save_and_keeps_the_connection)
{
    redisContext *c = raw(&srv);
    run(c, "SET vg:meta not-a-hash");
    struct vg_store_handle h = open_store(uri(&srv, ""));
    struct vg_state_record rec = {S("P1"), S("x")};
    struct vg_error err = {0};
    ck_assert_int_eq(h.ops->save(h.store, &rec, 1, &meta_a, &err), VG_EIO);
    ck_assert_int_eq(err.code, VG_EIO);
    ck_assert_msg(strstr(err.msg, "WRONGTYPE") && strstr(err.msg, "vg:meta") &&
                  strstr(err.msg, uri(&srv, "") + 8), "%s", err.msg);
    ck_assert_int_eq(integer(c, "EXISTS %s", "vg:{P1}:state"), 1);

    struct got g = {0};
    struct vg_state_meta meta;
    ck_assert_int_eq(h.ops->load(h.store, collect, &g, &meta, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, "vg:meta is not a hash"), "%s", err.msg);

    run(c, "DEL vg:meta");
    save_ok(&h, &rec, 1, &meta_a);
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 1);
    meta_eq(&meta, &meta_a);
    got_fini(&g);
    vg_store_close(&h);
    redisFree(c);
}
END_TEST

/* metas written behind the store's back, and what load says of them */
static const struct {
    const char *hset, *says;
} bad_metas[] = {
    {"HSET vg:meta version 2 start 0 max_ts 0 clock 0 checkpoint 1", "has version 2; this vigil reads version 1"},
    {"HSET vg:meta start 0 max_ts 0 clock 0 checkpoint 1", "has no version field"},
    {"HSET vg:meta version 1 start 0 max_ts 0 checkpoint 1", "lacks a field"},
    {"HSET vg:meta version 1 start 0 max_ts 0 clock soon checkpoint 1", "field clock is not a number ('soon')"},
    {"HSET vg:meta version 1 start 0 max_ts 0 clock 0 checkpoint -1", "field checkpoint is not a number"},
};

START_TEST(a_damaged_meta_is_refused)
{
    redisContext *c = raw(&srv);
    run(c, bad_metas[_i].hset);
    redisFree(c);
    struct vg_store_handle h = open_store(uri(&srv, ""));
    struct got g = {0};
    struct vg_state_meta meta;
    struct vg_error err = {0};
    ck_assert_int_eq(h.ops->load(h.store, collect, &g, &meta, &err), VG_EINVAL);
    ck_assert_msg(strstr(err.msg, bad_metas[_i].says), "%s", err.msg);
    ck_assert_uint_eq(g.n, 0);
    vg_store_close(&h);
}
END_TEST

/* a callback that stops the load: on which call, with what, and what load returns */
static const struct {
    size_t stop_at;
    int stop_rc, load_rc;
} stops[] = {
    {1, VG_EINVAL, VG_EINVAL},
    {600, VG_EINVAL, VG_EINVAL},   /* in the second chunk of GETs */
    {10, 1, VG_OK},                /* a positive return stops without an error */
};

START_TEST(a_callback_that_stops_the_load_is_not_called_again)
{
    struct many *m = many_make(700, 1);
    struct vg_store_handle h = open_store(uri(&srv, ""));
    save_ok(&h, m->recs, 700, &meta_a);
    struct got g = {.stop_at = stops[_i].stop_at, .stop_rc = stops[_i].stop_rc};
    struct vg_state_meta meta;
    struct vg_error err = {0};
    ck_assert_int_eq(h.ops->load(h.store, collect, &g, &meta, &err), stops[_i].load_rc);
    ck_assert_uint_eq(g.n, stops[_i].stop_at);
    got_fini(&g);
    load_all(&h, &g, &meta); /* the connection is still in step */
    ck_assert_uint_eq(g.n, 700);
    got_fini(&g);
    vg_store_close(&h);
    free(m);
}
END_TEST

/* ---- the "outage" case: a server of its own, stopped and started --------------- */

static void other_teardown(void)
{
    vgt_redis_stop(&other);
    memset(&other, 0, sizeof other);
}

START_TEST(an_outage_fails_saves_and_a_restart_reconnects)
{
    need(&other);
    struct many *m = many_make(50, 3);
    struct vg_store_handle h = open_store(uri(&other, ""));
    save_ok(&h, m->recs, 50, &meta_a);

    vgt_redis_stop(&other);
    struct vg_error err = {0};
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", other.port);
    ck_assert_int_eq(h.ops->save(h.store, m->recs, 50, &meta_a, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, where), "%s", err.msg);
    /* the dropped connection is not reused: the next call tries to reconnect */
    ck_assert_int_eq(h.ops->save(h.store, m->recs, 50, &meta_a, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, "cannot reach Redis at") && strstr(err.msg, where) &&
                  strstr(err.msg, "redis-server --port"), "%s", err.msg);
    struct got g = {0};
    struct vg_state_meta meta;
    ck_assert_int_eq(h.ops->load(h.store, collect, &g, &meta, &err), VG_EIO);

    ck_assert_msg(vgt_redis_restart(&other) == 0, "%s", other.error);
    struct vg_state_meta later = meta_a;
    later.checkpoint++;
    save_ok(&h, m->recs, 50, &later);  /* the caller retries with the records it kept */
    load_all(&h, &g, &meta);
    ck_assert_uint_eq(g.n, 50);
    meta_eq(&meta, &later);
    got_fini(&g);
    vg_store_close(&h);
    free(m);
}
END_TEST

static volatile sig_atomic_t sigpipes;

static void count_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

START_TEST(a_peer_gone_mid_write_raises_no_sigpipe)
{
    /* hiredis writes with write(2): without the store's guard a closed peer
     * would raise SIGPIPE and end the process. Count any that reach us. */
    struct sigaction count = {.sa_handler = count_sigpipe}, old;
    sigaction(SIGPIPE, &count, &old);
    sigpipes = 0;
    need(&other);
    size_t len = 8u << 20;
    unsigned char *big = calloc(1, len);
    struct vg_state_record recs[4] = {{S("P1"), big, len}, {S("P2"), big, len}, {S("P3"), big, len},
                                      {S("P4"), big, len}};
    struct vg_store_handle h = open_store(uri(&other, ""));
    save_ok(&h, recs, 1, &meta_a);
    vgt_redis_stop(&other);
    struct vg_error err = {0};
    ck_assert_int_eq(h.ops->save(h.store, recs, 4, &meta_a, &err), VG_EIO);
    vg_store_close(&h);
    free(big);
    sigaction(SIGPIPE, &old, NULL);
    ck_assert_int_eq(sigpipes, 0);
}
END_TEST

START_TEST(a_hung_server_times_out_and_a_later_save_reconnects)
{
    need(&other);
    struct vg_store_handle h = open_store(uri(&other, "?timeout=300ms"));
    struct vg_state_record rec = {S("P1"), S("x")};
    save_ok(&h, &rec, 1, &meta_a);

    kill(other.pid, SIGSTOP);
    struct vg_error err = {0};
    int rc = h.ops->save(h.store, &rec, 1, &meta_a, &err);
    kill(other.pid, SIGCONT);
    ck_assert_int_eq(rc, VG_EIO);
    ck_assert_msg(strstr(err.msg, "no answer in time"), "%s", err.msg);
    save_ok(&h, &rec, 1, &meta_a);
    vg_store_close(&h);
}
END_TEST

/* ---- the "auth" case: a server with a password ----------------------------------- */

START_TEST(a_password_is_sent_and_a_wrong_one_named_not_shown)
{
    need(&other);
    redisContext *c = raw(&other);
    run(c, "CONFIG SET requirepass %s", "s3cr%t@/x");
    run(c, "ACL SETUSER vigil on >hunter2 ~* +@all");
    redisFree(c);

    /* %25 is '%', %40 '@'; a raw '@' or '/' in the password works too */
    const char *ok[] = {":s3cr%25t%40%2Fx@", ":s3cr%25t@/x@", "vigil:hunter2@"};
    for (size_t i = 0; i < VG_ARRAY_LEN(ok); i++) {
        char u[256];
        snprintf(u, sizeof u, "redis://%s127.0.0.1:%d", ok[i], other.port);
        struct vg_store_handle h = open_store(u);
        struct vg_state_record rec = {S("P1"), S("x")};
        save_ok(&h, &rec, 1, &meta_a);
        vg_store_close(&h);
    }

    const struct {
        const char *userinfo, *says;
    } bad[] = {{"", "refused PING: NOAUTH"}, {":hunter3@", "refused the password (AUTH): WRONGPASS"},
               {"vigil:hunter3@", "refused the password (AUTH): WRONGPASS"}};
    for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
        char u[256];
        snprintf(u, sizeof u, "redis://%s127.0.0.1:%d", bad[i].userinfo, other.port);
        struct vg_store_handle h = {0};
        struct vg_error err = {0};
        ck_assert_int_eq(vg_store_open(u, &h, &err), VG_EIO);
        ck_assert_msg(strstr(err.msg, bad[i].says) && !strstr(err.msg, "hunter"), "%s", err.msg);
    }
}
END_TEST

/* ---- no server, bad URIs ----------------------------------------------------------- */

static const char *const absent_hosts[] = {"127.0.0.1", "localhost"};

START_TEST(no_server_names_the_address_and_how_to_start_it)
{
    int port = vgt_free_port();
    ck_assert_int_gt(port, 0);
    char u[128], want[512];
    snprintf(u, sizeof u, "redis://%s:%d", absent_hosts[_i], port);
    snprintf(want, sizeof want, "cannot reach Redis at %s:%d (Connection refused): start it with "
             "'redis-server --port %d', or run with --state memory", absent_hosts[_i], port, port);
    struct vg_store_handle h = {0};
    struct vg_error err = {0};
    ck_assert_int_eq(vg_store_open(u, &h, &err), VG_EIO);
    ck_assert_int_eq(err.code, VG_EIO);
    ck_assert_str_eq(err.msg, want);
    ck_assert_ptr_null(h.store);
}
END_TEST

static const struct {
    const char *uri, *says;
} bad_uris[] = {
    {"redis://", "no host"},
    {"redis://:hunter2@", "no host"},
    {"redis://:hunter2@:6390", "no host"},
    {"redis://127.0.0.1:0", "port must be 1-65535, not '0'"},
    {"redis://127.0.0.1:65536", "port must be 1-65535, not '65536'"},
    {"redis://127.0.0.1:63a9", "port must be 1-65535, not '63a9'"},
    {"redis://127.0.0.1:", "port must be 1-65535, not ''"},
    {"redis://:hunter2@127.0.0.1:99999999999/0", "port must be 1-65535"},
    {"redis://127.0.0.1:6390/x", "the database must be a number, not 'x'"},
    {"redis://127.0.0.1:6390/-1", "the database must be a number, not '-1'"},
    {"redis://127.0.0.1:6390?prefix=", "prefix '' must be"},
    {"redis://127.0.0.1:6390?prefix=a{b}", "prefix 'a{b}' must be"},
    {"redis://127.0.0.1:6390?prefix=a*", "prefix 'a*' must be"},
    {"redis://127.0.0.1:6390?prefix", "option 'prefix' must be KEY=VALUE"},
    {"redis://127.0.0.1:6390?colour=red", "unknown option 'colour' for redis:// (it has: prefix, timeout)"},
    {"redis://127.0.0.1:6390?timeout=0s", "timeout=0s must be a duration"},
    {"redis://127.0.0.1:6390?timeout=soon", "timeout=soon must be a duration"},
    {"redis://hunter2@127.0.0.1:6390", "write the password after a colon"},
    {"redis://:hunter2%4@127.0.0.1:6390", "escape in the password is not %XX"},
    {"redis://[::1:6390", "unclosed '['"},
    {"redis://[::1]x:6390", "junk after ']'"},
    {"rediss://127.0.0.1:6390", "unknown state store scheme 'rediss://'"},
    {"redis-cluster", "unknown state store 'redis-cluster'"},
};

START_TEST(bad_uris_are_usage_errors)
{
    struct vg_store_handle h = {0};
    struct vg_error err = {0};
    ck_assert_int_eq(vg_store_open(bad_uris[_i].uri, &h, &err), VG_EUSAGE);
    ck_assert_int_eq(err.code, VG_EUSAGE);
    ck_assert_msg(strstr(err.msg, bad_uris[_i].says) != NULL, "%s: %s", bad_uris[_i].uri, err.msg);
    ck_assert_msg(strstr(err.msg, "hunter2") == NULL, "password shown: %s", err.msg);
    ck_assert_ptr_null(h.store);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("redis_store");
    TCase *tc = tcase_create("store");
    tcase_add_unchecked_fixture(tc, NULL, store_teardown);
    tcase_add_checked_fixture(tc, store_setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, round_trips_1000_records_and_the_meta);
    tcase_add_test(tc, records_replace_earlier_ones_of_the_same_plant);
    tcase_add_loop_test(tc, keys_are_prefix_hash_tag_state, 0, VG_ARRAY_LEN(layouts));
    tcase_add_test(tc, prefixes_keep_deployments_apart);
    tcase_add_test(tc, an_empty_record_deletes);
    tcase_add_loop_test(tc, binary_values_round_trip, 0, VG_ARRAY_LEN(binaries));
    tcase_add_test(tc, a_one_mebibyte_value_round_trips);
    tcase_add_test(tc, an_empty_store_loads_nothing_with_a_zero_meta);
    tcase_add_loop_test(tc, meta_round_trips_at_its_limits, 0, VG_ARRAY_LEN(metas));
    tcase_add_test(tc, a_database_number_selects_the_database);
    tcase_add_test(tc, an_error_reply_fails_the_save_and_keeps_the_connection);
    tcase_add_loop_test(tc, a_damaged_meta_is_refused, 0, VG_ARRAY_LEN(bad_metas));
    tcase_add_loop_test(tc, a_callback_that_stops_the_load_is_not_called_again, 0, VG_ARRAY_LEN(stops));
    suite_add_tcase(s, tc);

    TCase *outage = tcase_create("outage");
    tcase_add_checked_fixture(outage, NULL, other_teardown);
    tcase_add_test(outage, an_outage_fails_saves_and_a_restart_reconnects);
    tcase_add_test(outage, a_peer_gone_mid_write_raises_no_sigpipe);
    tcase_add_test(outage, a_hung_server_times_out_and_a_later_save_reconnects);
    tcase_add_test(outage, a_password_is_sent_and_a_wrong_one_named_not_shown);
    suite_add_tcase(s, outage);

    TCase *uris = tcase_create("uris");
    tcase_add_loop_test(uris, no_server_names_the_address_and_how_to_start_it, 0, VG_ARRAY_LEN(absent_hosts));
    tcase_add_loop_test(uris, bad_uris_are_usage_errors, 0, VG_ARRAY_LEN(bad_uris));
    suite_add_tcase(s, uris);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
