/*
 * test_kafka.c: the Kafka source and sink (adapters/kafka.c) against
 * librdkafka's mock cluster, which speaks the real protocol over TCP on
 * 127.0.0.1 (three brokers, created in this process).
 * Owns: a source reading 50,000 keyed telemetry lines from 4 partitions once
 * each, byte for byte, with their offsets (and the rate printed);
 * mark/commit committing exactly the marked offsets, a refused commit that
 * keeps its mark, a put-off one carried by the next checkpoint, and a new
 * member resuming at the last commit; two sources splitting a group (eager
 * and cooperative-sticky) with every message once, revoking called before
 * partitions move, and owns() agreeing with where each plant's messages
 * arrived; the sink putting keyed records where a plain librdkafka producer
 * with the same partitioner would, flush returning only once the brokers
 * hold them all (also through transient errors and a broker outage), and a
 * refused record failing the next flush and every put after; bad URIs, a
 * missing group, an unknown topic and an unreachable bootstrap list.
 * Must never: leave the mock cluster or a client running (but a failed
 * assertion in this no-fork runner may leak one); assert on timings beyond
 * "did not hang" (the machine is shared).
 * The mock keeps at most 5 MiB per partition and joins a group in about 3 s
 * (MACHINE-FACTS); it also makes a member joining a non-empty (or emptied)
 * group wait session.timeout.ms - 1 s, so group tests set 3.5 s.
 */
#include "vgtest.h"
#include "servers.h"

#include "engine/adapter.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const struct vg_source_ops vg_kafka_source;
extern const struct vg_sink_ops vg_kafka_sink;

#define NPLANTS 64
#define MAXSEQ 60000
#define APIKEY_PRODUCE 0         /* Kafka protocol ApiKeys, for the mock's error injection */
#define APIKEY_OFFSET_COMMIT 8

static rd_kafka_t *helper;              /* owns the mock cluster */
static rd_kafka_mock_cluster_t *mock;
static char boot[512];                  /* "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3" */

/* ---- helpers ---------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A formatted string in one of a few static slots. */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char slots[8][1024];
    static int slot;
    char *out = slots[slot++ % 8];
    va_list ap;
    va_start(ap, f);
    vsnprintf(out, 1024, f, ap);
    va_end(ap);
    return out;
}

static void plant_of(int seq, char *out)
{
    snprintf(out, 16, "P320585%03d", seq % NPLANTS);
}

/* The telemetry line for @p seq; @returns its length. */
static int line(char *buf, size_t cap, int seq, int phase)
{
    char plant[16];
    plant_of(seq, plant);
    return snprintf(buf, cap, "{\"plant\":\"%s\",\"device\":\"NH3-%02d\",\"metric\":\"nh3_ppm\",\"value\":%d.%d,"
                    "\"ts\":%lld,\"seq\":%d,\"phase\":%d}", plant, seq % 7, seq % 97, seq % 10,
                    1763884800000LL + (long long)seq * 1000, seq, phase);
}

/* The seq a line carries, or -1. */
static int seq_of(const char *p, size_t n)
{
    const char *s = memmem(p, n, "\"seq\":", 6);
    return s ? atoi(s + 6) : -1;
}

static void mock_up(void)
{
    if (mock)
        return;
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    helper = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    ck_assert_msg(helper, "helper client: %s", why);
    mock = rd_kafka_mock_cluster_new(helper, 3);
    ck_assert_msg(mock, "mock cluster");
    snprintf(boot, sizeof boot, "%s", rd_kafka_mock_cluster_bootstraps(mock));
}

static void mock_down(void)
{
    if (mock)
        rd_kafka_mock_cluster_destroy(mock);
    if (helper)
        rd_kafka_destroy(helper);
    mock = NULL;
    helper = NULL;
}

static void topic(const char *name, int partitions)
{
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, name, partitions, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static rd_kafka_conf_t *plain_conf(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", boot, NULL, 0), RD_KAFKA_CONF_OK);
    return conf;
}

/* ---- a plain producer: where librdkafka itself puts each key ------------------ */

struct placed {
    int32_t part[MAXSEQ];
    int64_t off[MAXSEQ];
    int delivered, failed;
};
static struct placed placed;

static void placed_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    int seq = (int)(intptr_t)m->_private;
    if (m->err) {
        placed.failed++;
        return;
    }
    placed.delivered++;
    placed.part[seq] = m->partition;
    placed.off[seq] = m->offset;
}

/*
 * Produce lines [first, first+n) of @p phase, keyed by plant, with a plain
 * producer using @p partitioner; record each one's partition and offset.
 */
static void produce(const char *t, const char *partitioner, int first, int n, int phase)
{
    char why[512];
    rd_kafka_conf_t *conf = plain_conf();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "partitioner", partitioner, why, sizeof why), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, placed_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    ck_assert_msg(rk, "%s", why);
    placed.delivered = placed.failed = 0;
    for (int seq = first; seq < first + n; seq++) {
        char buf[256], plant[16];
        int len = line(buf, sizeof buf, seq, phase);
        plant_of(seq, plant);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(t), RD_KAFKA_V_KEY(plant, strlen(plant)),
                                      RD_KAFKA_V_VALUE(buf, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        ck_assert_msg(!e, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    ck_assert_int_eq(rd_kafka_flush(rk, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(placed.failed, 0);
    ck_assert_int_eq(placed.delivered, n);
    rd_kafka_destroy(rk);
}

/* The partition a plain producer with @p partitioner picks for each plant key (scratch topic). */
static void reference_partitions(const char *partitioner, int partitions, int32_t *out)
{
    const char *t = fmt("ref-%s", partitioner);
    topic(t, partitions);
    produce(t, partitioner, 0, NPLANTS, 0);
    for (int p = 0; p < NPLANTS; p++)
        out[p] = placed.part[p];
}

/* ---- the source under test ---------------------------------------------------- */

static struct vg_source_handle open_src(const char *u)
{
    struct vg_source_handle h = {0};
    struct vg_error err = {0};
    int rc = vg_source_open(u, &h, &err);
    ck_assert_msg(rc == VG_OK, "open %s: %d %s", u, rc, err.msg);
    ck_assert_ptr_eq(h.ops, &vg_kafka_source);
    return h;
}

/* Poll until @p want messages arrived or @p ms passed; @p fn sees each one. */
static int drain(struct vg_source_handle *h, int want, int ms, void (*fn)(void *, const struct vg_msg *),
                 void *ctx)
{
    struct vg_msg msgs[256];
    int got = 0;
    int64_t end = now_ms() + ms;
    while (got < want && now_ms() < end) {
        bool eof = false;
        struct vg_error err = {0};
        int n = h->ops->poll(h->src, msgs, 256, 100, &eof, &err);
        ck_assert_msg(n >= 0, "poll: %s", err.msg);
        ck_assert(!eof);
        for (int i = 0; i < n; i++)
            fn(ctx, &msgs[i]);
        got += n;
    }
    return got;
}

/* --- every message once, byte for byte --- */

struct seen {
    uint8_t n[MAXSEQ];
    int total, bad;
    int64_t first_ms, last_ms;
};

static void see(void *ctx, const struct vg_msg *m)
{
    struct seen *s = ctx;
    char want[256];
    int seq = seq_of(m->data, m->len);
    if (seq < 0 || seq >= MAXSEQ) {
        s->bad++;
        return;
    }
    int len = line(want, sizeof want, seq, 1);
    if ((size_t)len != m->len || m->orig_len != m->len || memcmp(want, m->data, m->len) || m->plant ||
        m->pos != (uint64_t)placed.off[seq])
        s->bad++;
    s->n[seq]++;
    if (!s->total++)
        s->first_ms = now_ms();
    s->last_ms = now_ms();
}

START_TEST(a_source_reads_every_message_once_and_intact)
{
    const int N = 50000;
    topic("telemetry", 4);
    produce("telemetry", "murmur2_random", 0, N, 1);
    struct vg_source_handle h = open_src(fmt("kafka://%s/telemetry?group=g-read&batch=4096", boot));
    ck_assert_str_eq(h.ops->name(h.src), fmt("kafka://%s/telemetry", boot));
    ck_assert(h.ops->live);
    static struct seen s;
    memset(&s, 0, sizeof s);
    int got = drain(&h, N, 30000, see, &s);
    ck_assert_int_eq(got, N);
    /* nothing more comes */
    got += drain(&h, 1, 500, see, &s);
    ck_assert_int_eq(got, N);
    ck_assert_int_eq(s.bad, 0);
    for (int i = 0; i < N; i++)
        ck_assert_msg(s.n[i] == 1, "seq %d arrived %d times", i, s.n[i]);
    double secs = (double)(s.last_ms - s.first_ms) / 1000.0;
    printf("kafka source: %d messages in %.3f s from the first to the last: %.0f msgs/s\n", N, secs,
           secs > 0 ? N / secs : 0.0);
    vg_source_close(&h);
}
END_TEST

/* --- mark/commit --- */

struct track {
    int64_t next[4];   /* per partition: offset after the last message received */
    uint8_t n[MAXSEQ];
    int total;
};

static void track(void *ctx, const struct vg_msg *m)
{
    struct track *t = ctx;
    int seq = seq_of(m->data, m->len);
    ck_assert(seq >= 0 && seq < MAXSEQ);
    ck_assert_int_eq((int64_t)m->pos, placed.off[seq]);
    int32_t p = placed.part[seq];
    if ((int64_t)m->pos + 1 > t->next[p])
        t->next[p] = (int64_t)m->pos + 1;
    t->n[seq]++;
    t->total++;
}

/* The offsets group @p group has committed on @p t's 4 partitions (-1001: none). */
static void committed(const char *group, const char *t, int64_t *out)
{
    char why[512];
    rd_kafka_conf_t *conf = plain_conf();
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    ck_assert_msg(rk, "%s", why);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int p = 0; p < 4; p++)
        rd_kafka_topic_partition_list_add(l, t, p);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
    ck_assert_msg(!e, "committed: %s", rd_kafka_err2str(e));
    for (int p = 0; p < 4; p++)
        out[p] = l->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* The group's committed offsets equal @p want (0: nothing marked there, so nothing committed). */
static void expect_committed(const char *group, const char *t, const int64_t *want, const char *when)
{
    int64_t got[4];
    committed(group, t, got);
    for (int p = 0; p < 4; p++)
        ck_assert_msg(got[p] == (want[p] ? want[p] : RD_KAFKA_OFFSET_INVALID),
                      "%s: partition %d: committed %lld, expected %lld", when, p, (long long)got[p],
                      (long long)want[p]);
}

/* Poll at least @p n more messages, then mark @p k; @returns through @p marked what was polled. */
static void poll_and_mark(struct vg_source_handle *h, struct track *t, int n, uint64_t k, int64_t *marked)
{
    int64_t before[4];
    memcpy(before, t->next, sizeof before);
    int want = t->total + n;
    drain(h, n, 20000, track, t);
    ck_assert_int_ge(t->total, want);
    bool moved = false;
    for (int p = 0; p < 4; p++)
        moved |= t->next[p] > before[p];
    ck_assert_msg(moved, "no partition moved on: the test would prove nothing");
    struct vg_error err = {0};
    ck_assert_int_eq(h->ops->mark(h->src, k, NULL, 0, &err), VG_OK);
    memcpy(marked, t->next, 4 * sizeof *marked);
}

START_TEST(commit_stores_exactly_the_marked_offsets_and_a_new_member_resumes_there)
{
    const int N = 2000;
    topic("marks", 4);
    produce("marks", "murmur2_random", 0, N, 1);
    /* the mock keeps an emptied group waiting session.timeout.ms - 1 s for a new member: keep it short */
    const char *u = fmt("kafka://%s/marks?group=g-marks&batch=100&rdkafka.session.timeout.ms=3500"
                        "&rdkafka.heartbeat.interval.ms=300", boot);
    struct vg_source_handle h = open_src(u);
    static struct track t;
    memset(&t, 0, sizeof t);
    struct vg_error err = {0};
    int64_t m1[4], m3[4], m4[4], m6[4], later[4];

    /* mark 1, read on, commit 1: the marked offsets, not the later ones */
    poll_and_mark(&h, &t, 500, 1, m1);
    drain(&h, 300, 20000, track, &t);
    memcpy(later, t.next, sizeof later);
    ck_assert_msg(memcmp(later, m1, sizeof m1), "nothing read after the mark: the test would prove nothing");
    ck_assert_int_eq(h.ops->commit(h.src, 1, &err), VG_OK);
    expect_committed("g-marks", "marks", m1, "after commit 1");
    /* a commit with no newer mark commits nothing more */
    ck_assert_int_eq(h.ops->commit(h.src, 2, &err), VG_OK);
    expect_committed("g-marks", "marks", m1, "after commit 2 (no mark 2)");

    /* a refused commit is an error that keeps the mark; the retry commits it */
    poll_and_mark(&h, &t, 100, 3, m3);
    rd_kafka_mock_push_request_errors(mock, APIKEY_OFFSET_COMMIT, 1, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
    ck_assert_int_eq(h.ops->commit(h.src, 3, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, "checkpoint 3") && strstr(err.msg, "'g-marks'") &&
                  strstr(err.msg, "authorization"), "%s", err.msg);
    expect_committed("g-marks", "marks", m1, "after a refused commit 3");
    ck_assert_int_eq(h.ops->commit(h.src, 3, &err), VG_OK);
    expect_committed("g-marks", "marks", m3, "after commit 3 again");

    /* a commit the group puts off (rebalancing) is no error: the next checkpoint carries the offsets */
    poll_and_mark(&h, &t, 100, 4, m4);
    rd_kafka_mock_push_request_errors(mock, APIKEY_OFFSET_COMMIT, 1, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
    ck_assert_int_eq(h.ops->commit(h.src, 4, &err), VG_OK);
    expect_committed("g-marks", "marks", m3, "after a put-off commit 4");
    ck_assert_int_eq(h.ops->mark(h.src, 5, NULL, 0, &err), VG_OK);
    ck_assert_int_eq(h.ops->commit(h.src, 5, &err), VG_OK);
    expect_committed("g-marks", "marks", m4, "after commit 5");

    /* read on past the last mark, then leave */
    poll_and_mark(&h, &t, 100, 6, m6);
    vg_source_close(&h);
    expect_committed("g-marks", "marks", m4, "after close (mark 6 never committed)");

    /* a new member of the group starts at the last commit: what came after it comes again */
    int expect = 0;
    for (int seq = 0; seq < N; seq++)
        expect += placed.off[seq] >= m4[placed.part[seq]];
    ck_assert_int_lt(expect, N);
    h = open_src(u);
    static struct track t2;
    memset(&t2, 0, sizeof t2);
    drain(&h, expect, 20000, track, &t2);
    drain(&h, 1, 500, track, &t2);
    ck_assert_int_eq(t2.total, expect);
    int again = 0;
    for (int seq = 0; seq < N; seq++) {
        ck_assert_int_eq(t2.n[seq], placed.off[seq] >= m4[placed.part[seq]] ? 1 : 0);
        again += t.n[seq] && t2.n[seq];
    }
    /* the first member's messages after the commit, up to mark 6, came again: at-least-once */
    int after = 0;
    for (int seq = 0; seq < N; seq++)
        after += placed.off[seq] >= m4[placed.part[seq]] && placed.off[seq] < m6[placed.part[seq]];
    ck_assert_int_gt(after, 0);
    ck_assert_int_eq(again, after);
    vg_source_close(&h);
}
END_TEST

/* --- two members split the group --- */

struct member {
    const char *name;
    struct vg_source_handle h;
    pthread_t thread;
    atomic_bool stop;
    atomic_int got, phase2, assigned, revoked;
    atomic_int owned_at_revoke;     /* plants it owned when revoking was called */
    atomic_int commit_errors;
    bool every_poll;                /* checkpoint after every poll, not only when revoking */
    uint64_t checkpoint;
    uint8_t *by;                    /* [MAXSEQ]: set for each message this member got */
};

static uint8_t got_a[MAXSEQ], got_b[MAXSEQ];

static int owned_plants(struct member *m)
{
    int n = 0;
    for (int p = 0; p < NPLANTS; p++) {
        char plant[16];
        plant_of(p, plant);
        n += m->h.ops->owns(m->h.src, plant, strlen(plant));
    }
    return n;
}

/* What the pipeline does at a checkpoint: mark, then commit once the state is saved. */
static void checkpoint(struct member *m)
{
    struct vg_error err = {0};
    m->checkpoint++;
    if (m->h.ops->mark(m->h.src, m->checkpoint, NULL, 0, &err) != VG_OK ||
        m->h.ops->commit(m->h.src, m->checkpoint, &err) != VG_OK)
        m->commit_errors++;
}

static void on_revoking(void *ctx)
{
    struct member *m = ctx;
    if (!m->revoked) /* the first one (B joining); a loaded machine may rebalance again later */
        m->owned_at_revoke = owned_plants(m);
    m->revoked++;
    checkpoint(m);
}

static void on_assigned(void *ctx)
{
    struct member *m = ctx;
    m->assigned++;
}

static void *member_main(void *arg)
{
    struct member *m = arg;
    struct vg_msg msgs[256];
    while (!m->stop) {
        bool eof = false;
        struct vg_error err = {0};
        int n = m->h.ops->poll(m->h.src, msgs, 256, 50, &eof, &err);
        if (n < 0) {
            fprintf(stderr, "%s: poll: %s\n", m->name, err.msg);
            break;
        }
        for (int i = 0; i < n; i++) {
            int seq = seq_of(msgs[i].data, msgs[i].len);
            if (seq >= 0 && seq < MAXSEQ) {
                m->by[seq]++;
                if (memmem(msgs[i].data, msgs[i].len, "\"phase\":2", 9))
                    m->phase2++;
            }
        }
        m->got += n;
        if (n > 0 && m->every_poll)
            checkpoint(m);
    }
    return NULL;
}

static void member_start(struct member *m, const char *name, const char *u, uint8_t *by, bool every_poll)
{
    memset(m, 0, sizeof *m);
    m->name = name;
    m->by = by;
    m->every_poll = every_poll;
    m->h = open_src(u);
    struct vg_source_events ev = {m, on_revoking, on_assigned};
    m->h.ops->listen(m->h.src, &ev);
    ck_assert_int_eq(pthread_create(&m->thread, NULL, member_main, m), 0);
}

static void member_stop(struct member *m)
{
    m->stop = true;
    pthread_join(m->thread, NULL);
    vg_source_close(&m->h);
}

/* Wait until @p cond holds, or @p ms passed. */
#define WAIT_FOR(cond, ms)                                      \
    do {                                                        \
        int64_t end_ = now_ms() + (ms);                         \
        while (!(cond) && now_ms() < end_)                      \
            sleep_ms(20);                                       \
    } while (0)

static bool split_settled(struct member *a, struct member *b)
{
    int both = 0, none = 0;
    for (int p = 0; p < NPLANTS; p++) {
        char plant[16];
        plant_of(p, plant);
        bool oa = a->h.ops->owns(a->h.src, plant, strlen(plant));
        bool ob = b->h.ops->owns(b->h.src, plant, strlen(plant));
        both += oa && ob;
        none += !oa && !ob;
    }
    return both == 0 && none == 0 && owned_plants(a) > 0 && owned_plants(b) > 0;
}

/*
 * librdkafka's default eager assignors, and the incremental one. Eager
 * members revoke while the group is joining, when the mock (unlike a real
 * broker) refuses commits, so they checkpoint after every poll as well;
 * cooperative members revoke once the group is up again and checkpoint only
 * when revoking: no message may come twice, so that commit, made inside the
 * rebalance callback, is what hands the partitions over.
 */
static const char *const assignors[] = {"range,roundrobin", "cooperative-sticky"};

START_TEST(two_sources_split_the_group_and_own_what_they_receive)
{
    const int N1 = 4000, N2 = 4000;
    const char *t = fmt("split-%d", _i);
    topic(t, 4);
    produce(t, "murmur2_random", 0, N1, 1);
    /* the mock makes a joining member wait session.timeout.ms - 1 s: keep it short */
    const char *u = fmt("kafka://%s/%s?group=g-split-%d&rdkafka.session.timeout.ms=3500"
                        "&rdkafka.heartbeat.interval.ms=300&rdkafka.partition.assignment.strategy=%s", boot, t,
                        _i, assignors[_i]);
    static struct member a, b;
    memset(got_a, 0, sizeof got_a);
    memset(got_b, 0, sizeof got_b);
    bool every_poll = _i == 0;
    member_start(&a, "A", u, got_a, every_poll);
    WAIT_FOR(a.got == N1, 20000);
    ck_assert_int_eq(a.got, N1);
    ck_assert_int_eq(owned_plants(&a), NPLANTS);
    ck_assert_int_eq(a.revoked, 0);

    member_start(&b, "B", u, got_b, every_poll);
    WAIT_FOR(a.revoked > 0 && split_settled(&a, &b), 20000);
    ck_assert_msg(a.revoked > 0, "the first member was never asked to give partitions up");
    ck_assert_msg(split_settled(&a, &b), "owns(): the two members do not split the plants");
    /* revoking came while A still held everything, before the partitions moved */
    ck_assert_int_eq(a.owned_at_revoke, NPLANTS);
    ck_assert_int_ge(a.assigned, 2);
    ck_assert_int_ge(b.assigned, 1);

    produce(t, "murmur2_random", N1, N2, 2);
    WAIT_FOR(a.got + b.got >= N1 + N2, 20000);
    sleep_ms(300);   /* anything extra would come now */
    ck_assert_int_eq(a.commit_errors, 0);
    ck_assert_int_eq(b.commit_errors, 0);

    /* every message exactly once, over both */
    for (int seq = 0; seq < N1 + N2; seq++)
        ck_assert_msg(got_a[seq] + got_b[seq] == 1, "seq %d: A got it %d times, B %d", seq, got_a[seq],
                      got_b[seq]);
    ck_assert_int_eq(a.got + b.got, N1 + N2);
    ck_assert_int_gt(a.phase2, 0);
    ck_assert_int_gt(b.phase2, 0);
    /* each plant: exactly one owner, and its phase-2 messages all went there */
    for (int p = 0; p < NPLANTS; p++) {
        char plant[16];
        plant_of(p, plant);
        bool oa = a.h.ops->owns(a.h.src, plant, strlen(plant));
        bool ob = b.h.ops->owns(b.h.src, plant, strlen(plant));
        ck_assert_msg(oa != ob, "plant %s: A owns %d, B owns %d", plant, oa, ob);
        for (int seq = N1; seq < N1 + N2; seq++)
            if (seq % NPLANTS == p)
                ck_assert_msg(oa ? got_a[seq] : got_b[seq], "plant %s (owned by %s): seq %d went to the other",
                              plant, oa ? "A" : "B", seq);
    }
    member_stop(&a);
    member_stop(&b);
}
END_TEST

/* ---- the sink under test -------------------------------------------------------- */

static struct vg_sink_handle open_sink(const char *u)
{
    struct vg_sink_handle h = {0};
    struct vg_error err = {0};
    int rc = vg_sink_open(u, &h, &err);
    ck_assert_msg(rc == VG_OK, "open %s: %d %s", u, rc, err.msg);
    ck_assert_ptr_eq(h.ops, &vg_kafka_sink);
    return h;
}

static int alert(char *buf, size_t cap, int i)
{
    char plant[16];
    plant_of(i, plant);
    return snprintf(buf, cap, "{\"alert_id\":\"a-%06d\",\"rule\":\"nh3_over_limit\",\"status\":\"firing\","
                    "\"plant\":\"%s\",\"value\":%d}", i, plant, i % 113);
}

static int put_all(struct vg_sink_handle *h, int first, int n, struct vg_error *err)
{
    for (int i = first; i < first + n; i++) {
        char buf[256], plant[16];
        int len = alert(buf, sizeof buf, i);
        plant_of(i, plant);
        int rc = h->ops->put(h->sink, plant, strlen(plant), buf, (size_t)len, err);
        if (rc < 0)
            return rc;
    }
    return VG_OK;
}

/* Sum of the high watermarks of @p t's partitions: what the brokers hold. */
static int64_t held_by_brokers(const char *t, int partitions)
{
    char why[512];
    rd_kafka_conf_t *conf = plain_conf();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    ck_assert_msg(rk, "%s", why);
    int64_t sum = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, t, p, &lo, &hi, 10000);
        ck_assert_msg(!e, "watermarks: %s", rd_kafka_err2str(e));
        sum += hi - lo;
    }
    rd_kafka_destroy(rk);
    return sum;
}

/* Read @p n records of @p t back with a plain consumer; check key, bytes and partition. */
static void read_back(const char *t, int partitions, int first, int n, const int32_t *ref)
{
    char why[512];
    rd_kafka_conf_t *conf = plain_conf();
    rd_kafka_conf_set(conf, "group.id", fmt("reader-%s", t), NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    ck_assert_msg(rk, "%s", why);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, t, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    static uint8_t count[MAXSEQ];
    memset(count, 0, sizeof count);
    int got = 0;
    int64_t end = now_ms() + 20000;
    while (got < n && now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        const char *id = memmem(m->payload, m->len, "\"a-", 3);
        ck_assert_ptr_nonnull(id);
        int i = atoi(id + 3);
        ck_assert(i >= first && i < first + n);
        char want[256], plant[16];
        int len = alert(want, sizeof want, i);
        plant_of(i, plant);
        ck_assert_int_eq((int)m->len, len);
        ck_assert(!memcmp(m->payload, want, m->len));
        ck_assert_int_eq((int)m->key_len, (int)strlen(plant));
        ck_assert(!memcmp(m->key, plant, m->key_len));
        if (ref)
            ck_assert_msg(m->partition == ref[i % NPLANTS], "%s went to partition %d, a plain producer puts "
                          "it on %d", plant, m->partition, ref[i % NPLANTS]);
        count[i]++;
        got++;
        rd_kafka_message_destroy(m);
    }
    ck_assert_int_eq(got, n);
    for (int i = first; i < first + n; i++)
        ck_assert_int_eq(count[i], 1);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static const char *const partitioners[] = {"murmur2_random", "consistent_random"};

START_TEST(a_sink_puts_keyed_records_where_a_plain_producer_would)
{
    const char *part = partitioners[_i];
    const int N = 5000;
    int32_t ref[NPLANTS];
    reference_partitions(part, 4, ref);
    int spread[4] = {0};
    for (int p = 0; p < NPLANTS; p++)
        spread[ref[p]]++;
    for (int p = 0; p < 4; p++)
        ck_assert_msg(spread[p] > 0, "the keys do not cover every partition: the test proves little");

    const char *t = fmt("alerts-%s", part);
    topic(t, 4);
    /* a long linger: a flush that did not wait would find records still buffered */
    struct vg_sink_handle h = open_sink(fmt("kafka://%s/%s?partitioner=%s&linger=300ms", boot, t, part));
    struct vg_error err = {0};
    ck_assert_int_eq(put_all(&h, 0, N, &err), VG_OK);
    ck_assert_msg(h.ops->flush(h.sink, &err) == VG_OK, "flush: %s", err.msg);
    ck_assert_int_eq(held_by_brokers(t, 4), N);
    read_back(t, 4, 0, N, ref);
    vg_sink_close(&h);
}
END_TEST

START_TEST(transient_produce_errors_are_retried_not_dropped)
{
    topic("retried", 4);
    struct vg_sink_handle h = open_sink(fmt("kafka://%s/retried", boot));
    rd_kafka_mock_push_request_errors(mock, APIKEY_PRODUCE, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    struct vg_error err = {0};
    ck_assert_int_eq(put_all(&h, 0, 300, &err), VG_OK);
    ck_assert_msg(h.ops->flush(h.sink, &err) == VG_OK, "flush: %s", err.msg);
    ck_assert_int_eq(held_by_brokers("retried", 4), 300);
    read_back("retried", 4, 0, 300, NULL);
    vg_sink_close(&h);
}
END_TEST

static void *brokers_back(void *arg)
{
    (void)arg;
    sleep_ms(800);
    for (int b = 1; b <= 3; b++)
        rd_kafka_mock_broker_set_up(mock, b);
    return NULL;
}

START_TEST(flush_waits_through_a_broker_outage)
{
    topic("outage", 2);
    /* reconnect soon after the brokers return, so the test stays short */
    struct vg_sink_handle h = open_sink(fmt("kafka://%s/outage?rdkafka.reconnect.backoff.max.ms=300", boot));
    struct vg_error err = {0};
    for (int b = 1; b <= 3; b++)
        rd_kafka_mock_broker_set_down(mock, b);
    ck_assert_int_eq(put_all(&h, 0, 200, &err), VG_OK);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, brokers_back, NULL), 0);
    int rc = h.ops->flush(h.sink, &err);
    pthread_join(t, NULL);
    ck_assert_msg(rc == VG_OK, "flush: %s", err.msg);
    ck_assert_int_eq(held_by_brokers("outage", 2), 200);
    read_back("outage", 2, 0, 200, NULL);
    vg_sink_close(&h);
}
END_TEST

START_TEST(a_refused_record_fails_the_next_flush_and_every_put_after)
{
    topic("refused", 1);
    struct vg_sink_handle h = open_sink(fmt("kafka://%s/refused", boot));
    /* ten refusals: whatever the producer retries or splits, the first batch is refused for good */
    rd_kafka_mock_push_request_errors(mock, APIKEY_PRODUCE, 10, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    struct vg_error err = {0};
    ck_assert_int_eq(put_all(&h, 0, 1, &err), VG_OK);
    ck_assert_int_eq(h.ops->flush(h.sink, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, "refused 1 record(s)") && strstr(err.msg, "authorization"), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, fmt("kafka://%s/refused", boot)), "%s", err.msg);
    struct vg_error err2 = {0};
    ck_assert_int_eq(put_all(&h, 1, 1, &err2), VG_EIO);
    ck_assert_str_eq(err2.msg, err.msg);
    rd_kafka_mock_clear_request_errors(mock, APIKEY_PRODUCE);
    vg_sink_close(&h);
}
END_TEST

/* ---- errors ------------------------------------------------------------------- */

struct bad {
    bool sink;
    const char *uri;      /* "%s" is the bootstrap list */
    const char *says[3];  /* the message holds each of these */
};

static const struct bad bads[] = {
    {false, "kafka://%s/t?group=g&bogus=1", {"unknown option 'bogus'", "group, offset_reset", "rdkafka.PROPERTY"}},
    {false, "kafka://%s/t", {"consumer group", "group=NAME", NULL}},
    {false, "kafka://%s/t?group=", {"consumer group", "group=NAME", NULL}},
    {false, "kafka://%s/?group=g", {"name the topic", NULL, NULL}},
    {false, "kafka://%s/a,b$c?group=g", {"'b$c' is not a Kafka topic name", NULL, NULL}},
    {false, "kafka://%s/a,b,a?group=g", {"topic 'a' is named twice", NULL, NULL}},
    {false, "kafka://%s/t?group=g&offset_reset=middle", {"offset_reset=middle", "earliest or latest", NULL}},
    {false, "kafka://%s/t?group=g&partitioner=fnv1a", {"partitioner=fnv1a", "murmur2_random", NULL}},
    {false, "kafka://%s/t?group=g&batch=0", {"batch=0", NULL, NULL}},
    {false, "kafka://%s/t?group=g&fetch_wait=soon", {"fetch_wait=soon", NULL, NULL}},
    {false, "kafka://%s/t?group=g&connect_timeout=0s", {"connect_timeout=0s", NULL, NULL}},
    {false, "kafka://%s/t?group=g&rdkafka.no.such.property=1", {"no.such.property", "refused", NULL}},
    {false, "kafka://%s/t?group=g&rdkafka.fetch.wait.max.ms=soon", {"fetch.wait.max.ms=soon", NULL, NULL}},
    {false, "kafka://%s/t?group=g&rdkafka.enable.auto.commit=true", {"rdkafka.enable.auto.commit cannot be set",
                                                                     NULL, NULL}},
    {false, "kafka://%s/t?group=g&rdkafka.group.id=other", {"rdkafka.group.id cannot be set", NULL, NULL}},
    {false, "kafka://%s/t?group=g&sasl_mechanism=GSSAPI", {"sasl_mechanism=GSSAPI", "SCRAM-SHA-512", NULL}},
    {false, "kafka://%s/t?group=g&sasl_mechanism=PLAIN", {"needs a user and a password", NULL, NULL}},
    {false, "kafka://%s/t?group=g&ca=/no/such/ca.pem", {"ca=/no/such/ca.pem", NULL, NULL}},
    {false, "kafka://%s/t?group=g&tls=maybe", {"tls=maybe", NULL, NULL}},
    {true, "kafka://%s/a,b", {"'a,b' is not a Kafka topic name", NULL, NULL}},
    {true, "kafka://%s/", {"is not a Kafka topic name", NULL, NULL}},
    {true, "kafka://%s/t?acks=2", {"acks=2", NULL, NULL}},
    {true, "kafka://%s/t?compression=brotli", {"compression=brotli", NULL, NULL}},
    {true, "kafka://%s/t?linger=forever", {"linger=forever", NULL, NULL}},
    {true, "kafka://%s/t?group=g", {"unknown option 'group'", "acks, linger", NULL}},
    {true, "kafka://%s/t?rdkafka.message.timeout.ms=1000", {"rdkafka.message.timeout.ms cannot be set", NULL,
                                                             NULL}},
    {true, "kafka://%s/t?partitioner=random", {"partitioner=random", NULL, NULL}},
};

START_TEST(bad_uris_are_usage_errors_that_say_what_is_wrong)
{
    const struct bad *b = &bads[_i];
    /* a port nothing listens on: none of these may get as far as connecting */
    const char *u = fmt(b->uri, fmt("127.0.0.1:%d", vgt_free_port()));
    struct vg_error err = {0};
    int64_t t0 = now_ms();
    int rc;
    if (b->sink) {
        struct vg_sink_handle h = {0};
        rc = vg_sink_open(u, &h, &err);
    } else {
        struct vg_source_handle h = {0};
        rc = vg_source_open(u, &h, &err);
    }
    ck_assert_msg(rc == VG_EUSAGE, "%s: rc %d: %s", u, rc, err.msg);
    for (int i = 0; i < 3 && b->says[i]; i++)
        ck_assert_msg(strstr(err.msg, b->says[i]), "%s: '%s' lacks '%s'", u, err.msg, b->says[i]);
    ck_assert_int_lt(now_ms() - t0, 3000);
}
END_TEST

static const char *const unreachable[] = {
    "source:kafka://127.0.0.1:%d,127.0.0.1:%d/t?group=g&connect_timeout=500ms",
    "source:kafka://alice:s3cret@127.0.0.1:%d,127.0.0.1:%d/t?group=g&connect_timeout=500ms&sasl_mechanism=PLAIN",
    "sink:kafka://127.0.0.1:%d,127.0.0.1:%d/t?connect_timeout=500ms",
    "sink:kafka://alice:s3cret@127.0.0.1:%d,127.0.0.1:%d/t?connect_timeout=500ms",
};

START_TEST(an_unreachable_bootstrap_list_is_named_within_the_timeout)
{
    const char *spec = unreachable[_i];
    bool sink = !strncmp(spec, "sink:", 5);
    int p1 = vgt_free_port(), p2 = vgt_free_port();
    const char *u = fmt(strchr(spec, ':') + 1, p1, p2);
    struct vg_error err = {0};
    int64_t t0 = now_ms();
    int rc;
    if (sink) {
        struct vg_sink_handle h = {0};
        rc = vg_sink_open(u, &h, &err);
    } else {
        struct vg_source_handle h = {0};
        rc = vg_source_open(u, &h, &err);
    }
    int64_t took = now_ms() - t0;
    ck_assert_msg(rc == VG_EIO, "%s: rc %d: %s", u, rc, err.msg);
    ck_assert_msg(strstr(err.msg, fmt("127.0.0.1:%d,127.0.0.1:%d", p1, p2)), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "no Kafka broker answered") && strstr(err.msg, "kcat -b"), "%s", err.msg);
    ck_assert_msg(!strstr(err.msg, "s3cret"), "the password shows: %s", err.msg);
    /* it gave up at about connect_timeout, not never (generous: the machine is shared) */
    ck_assert_msg(took < 8000, "took %lld ms", (long long)took);
}
END_TEST

START_TEST(a_topic_that_does_not_exist_is_named)
{
    /* the mock creates any topic asked for; make it answer as a broker without auto-creation does */
    rd_kafka_mock_topic_set_error(mock, "no-such-topic", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    struct vg_error err = {0};
    struct vg_source_handle h = {0};
    int rc = vg_source_open(fmt("kafka://%s/no-such-topic?group=g&connect_timeout=5s", boot), &h, &err);
    ck_assert_msg(rc == VG_ENOENT, "rc %d: %s", rc, err.msg);
    ck_assert_msg(strstr(err.msg, "'no-such-topic' does not exist"), "%s", err.msg);
}
END_TEST

static void cluster_setup(void)
{
    mock_up();
}

static void cluster_teardown(void)
{
    mock_down();
}

static Suite *suite(void)
{
    Suite *s = suite_create("kafka");

    TCase *src = tcase_create("source");
    tcase_add_unchecked_fixture(src, cluster_setup, cluster_teardown);
    tcase_set_timeout(src, 120);
    tcase_add_test(src, a_source_reads_every_message_once_and_intact);
    tcase_add_test(src, commit_stores_exactly_the_marked_offsets_and_a_new_member_resumes_there);
    tcase_add_loop_test(src, two_sources_split_the_group_and_own_what_they_receive, 0, VG_ARRAY_LEN(assignors));
    tcase_add_test(src, a_topic_that_does_not_exist_is_named);
    suite_add_tcase(s, src);

    TCase *sink = tcase_create("sink");
    tcase_add_unchecked_fixture(sink, cluster_setup, cluster_teardown);
    tcase_set_timeout(sink, 120);
    tcase_add_loop_test(sink, a_sink_puts_keyed_records_where_a_plain_producer_would, 0,
                        VG_ARRAY_LEN(partitioners));
    tcase_add_test(sink, transient_produce_errors_are_retried_not_dropped);
    tcase_add_test(sink, flush_waits_through_a_broker_outage);
    tcase_add_test(sink, a_refused_record_fails_the_next_flush_and_every_put_after);
    suite_add_tcase(s, sink);

    TCase *uris = tcase_create("uris");
    tcase_set_timeout(uris, 60);
    tcase_add_loop_test(uris, bad_uris_are_usage_errors_that_say_what_is_wrong, 0, VG_ARRAY_LEN(bads));
    tcase_add_loop_test(uris, an_unreachable_bootstrap_list_is_named_within_the_timeout, 0,
                        VG_ARRAY_LEN(unreachable));
    suite_add_tcase(s, uris);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
