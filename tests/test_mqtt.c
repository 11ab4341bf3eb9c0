/*
 * test_mqtt.c: the MQTT source and sink (adapters/mqtt.c) against a real
 * mosquitto the suite starts itself (tests/servers.c).
 * Owns: the adapter's contract: every message or record exactly once and
 * byte-identical, the plant from a topic level, shared subscriptions,
 * back-pressure (a full queue or in-flight window waits, never drops),
 * flush meaning acknowledged, outages survived, TLS, refusals, and URI
 * errors a user can act on. Must never: touch port 1883 or a broker it did
 * not start; sleep to synchronise where a condition can be awaited (every
 * wait is bounded).
 * DESIGN: the other side is mosquitto_pub and mosquitto_sub (package
 * mosquitto-clients) in their own processes, not Paho in this one: every
 * Paho client of a process shares one network thread, which a full source
 * holds on purpose (mqtt.c DESIGN), and each extra Paho client takes about
 * 2 s to connect (Paho's network thread polls with a 1 s timeout and picks
 * up new sockets between polls). mosquitto_sub runs under stdbuf -oL so
 * its lines reach the file as they come.
 */
#include "vgtest.h"
#include "servers.h"

#include "engine/adapter.h"
#include "engine/json.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (bounded, re-checking every 10 ms) until @p cond holds. */
#define WAIT_FOR(cond, ms)                                                    \
    do {                                                                      \
        int64_t until_ = now_ms() + (ms);                                     \
        while (!(cond) && now_ms() < until_)                                  \
            nap_ms(10);                                                       \
    } while (0)

/* ---- telemetry the tests publish ---------------------------------------- */

#define PLANTS 40

static void plant_of(long i, char *out, size_t cap)
{
    snprintf(out, cap, "P%09ld", 320585000 + i % PLANTS);
}

/* Message @p i: JSON of varying length with its number in "seq". */
static size_t payload_of(long i, char *out, size_t cap)
{
    char plant[16];
    plant_of(i, plant, sizeof plant);
    int pad = (int)(i * 7919 % 200);
    return (size_t)snprintf(out, cap, "{\"plant\":\"%s\",\"device\":\"NH3-%02ld\",\"metric\":\"nh3_ppm\","
                            "\"value\":%ld.%ld,\"ts\":%lld,\"seq\":%ld,\"note\":\"%.*s\"}", plant, i % 7,
                            i % 97, i % 10, 1763884800000LL + i * 1000, i, pad,
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static long seq_in(const char *p, size_t len)
{
    const char *k = memmem(p, len, "\"seq\":", 6);
    return k ? strtol(k + 6, NULL, 10) : -1;
}

/*
 * Publish messages [from, from+n) at QoS 1 on plants/<plant>/telemetry (every
 * tenth on …/reports), and with @p other one message per plant on
 * plants/<plant>/other: one mosquitto_pub per topic, all at once. Returns
 * once every one of them exited 0, i.e. the broker acknowledged everything.
 */
static void publish_elsewhere(int port, long from, long n, bool other)
{
    static int batch;
    int b = batch++;
    char *script = NULL;
    size_t script_len = 0;
    FILE *sh = open_memstream(&script, &script_len);
    fprintf(sh, "cd '%s' && pids=; ", vgt_dir());
    for (int p = 0; p < PLANTS; p++)
        for (int kind = 0; kind < 2 + other; kind++) {
            char name[64], plant[16], buf[512];
            plant_of(p, plant, sizeof plant);
            snprintf(name, sizeof name, "pub-%d-%d-%d.ndjson", b, p, kind);
            char *path = vgt_path(name);
            FILE *f = fopen(path, "w");
            ck_assert(f != NULL);
            long lines = 0;
            for (long i = from; i < from + n; i++)
                if (i % PLANTS == p && ((kind == 0 && i % 10 != 9) || (kind == 1 && i % 10 == 9))) {
                    payload_of(i, buf, sizeof buf);
                    fprintf(f, "%s\n", buf);
                    lines++;
                }
            if (kind == 2) {
                fprintf(f, "{\"other\":%d}\n", p);
                lines++;
            }
            fclose(f);
            free(path);
            if (lines)
                fprintf(sh, "mosquitto_pub -h 127.0.0.1 -p %d -q 1 -i pub-%d-%d-%d -t plants/%s/%s -l < %s & "
                        "pids=\"$pids $!\"; ", port, b, p, kind, plant,
                        kind == 0 ? "telemetry" : kind == 1 ? "reports" : "other", name);
        }
    fprintf(sh, "rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc\n");
    fclose(sh);
    char name[64];
    snprintf(name, sizeof name, "pub-%d.sh", b);
    const char *path = vgt_write(name, script);
    ck_assert_msg(vgt_sh("sh '%s'", path) == 0, "mosquitto_pub failed (is mosquitto-clients installed? "
                  "apt-get install mosquitto-clients)");
    free(script);
}

struct pub_job {
    int port;
    long from, n;
    bool other;
};

static void *publisher(void *arg)
{
    struct pub_job *j = arg;
    publish_elsewhere(j->port, j->from, j->n, j->other);
    return NULL;
}

/* What a source delivered: one bit per message number, and checks on each. */
struct seen {
    unsigned char *bit;
    long n, count, dup, bad;
    char why[256];
};

static void seen_init(struct seen *v, long n)
{
    memset(v, 0, sizeof *v);
    v->bit = calloc((size_t)n, 1);
    v->n = n;
}

/* Check one delivered message against what was published (bytes, plant). */
static void seen_msg(struct seen *v, const struct vg_msg *m, bool want_plant)
{
    long i = seq_in(m->data, m->len);
    char want[512];
    if (i < 0 || i >= v->n) {
        v->bad++;
        snprintf(v->why, sizeof v->why, "unexpected message '%.*s'", (int)(m->len > 80 ? 80 : m->len), m->data);
        return;
    }
    size_t wl = payload_of(i, want, sizeof want);
    if (m->len != wl || m->orig_len != wl || memcmp(m->data, want, wl) != 0) {
        v->bad++;
        snprintf(v->why, sizeof v->why, "message %ld differs from what was published", i);
    }
    char plant[16];
    plant_of(i, plant, sizeof plant);
    if (want_plant && (!m->plant || m->plant_len != strlen(plant) || memcmp(m->plant, plant, m->plant_len))) {
        v->bad++;
        snprintf(v->why, sizeof v->why, "message %ld: plant '%.*s', not %s", i, m->plant ? (int)m->plant_len : 6,
                 m->plant ? m->plant : "(none)", plant);
    }
    if (!want_plant && m->plant) {
        v->bad++;
        snprintf(v->why, sizeof v->why, "message %ld has a plant without plant_level", i);
    }
    if (v->bit[i])
        v->dup++;
    v->bit[i] = 1;
    v->count++;
}

/* Poll @p h until @p v has every message or @p ms pass. */
static void drain_source(struct vg_source_handle *h, struct seen *v, bool want_plant, int ms)
{
    struct vg_msg msgs[256];
    struct vg_error err = {0};
    int64_t until = now_ms() + ms;
    while (v->count < v->n && now_ms() < until) {
        bool eof = true;
        int n = h->ops->poll(h->src, msgs, 256, 100, &eof, &err);
        ck_assert_msg(n >= 0, "poll: %s", err.msg);
        ck_assert(!eof);
        for (int i = 0; i < n; i++)
            seen_msg(v, &msgs[i], want_plant);
    }
}

static void seen_ok(struct seen *v, long n)
{
    ck_assert_msg(v->bad == 0, "%ld bad messages, e.g. %s", v->bad, v->why);
    ck_assert_int_eq(v->dup, 0);
    ck_assert_int_eq(v->count, n);
}

/* ---- a subscriber in its own process: mosquitto_sub -v -d ----------------- */

struct sub {
    pid_t pid;
    char out[600];
    char prefix[64];                /* message lines start with it */
};

static void sub_start(struct sub *s, int port, const char *filter, const char *id, bool persistent)
{
    static int n;
    char name[64];
    snprintf(name, sizeof name, "sub-%d.out", n++);
    char *path = vgt_path(name);
    snprintf(s->out, sizeof s->out, "%s", path);
    free(path);
    size_t pl = strcspn(filter, "#+");
    snprintf(s->prefix, sizeof s->prefix, "%.*s", (int)pl, filter);
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    pid_t parent = getpid();
    s->pid = fork();
    ck_assert(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int fd = open(s->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        /* stdbuf: mosquitto_sub's stdout is a file, so only lines make it out in time */
        if (persistent)
            execlp("stdbuf", "stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", portbuf, "-t", filter, "-q",
                   "1", "-v", "-d", "-i", id, "-c", (char *)NULL);
        else
            execlp("stdbuf", "stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", portbuf, "-t", filter, "-q",
                   "1", "-v", "-d", "-i", id, (char *)NULL);
        _exit(127);
    }
    char *text = NULL;
    for (int64_t until = now_ms() + 5000; now_ms() < until; nap_ms(10)) {
        free(text);
        text = vgt_read(s->out, NULL);
        if (text && strstr(text, "Subscribed (mid:"))
            break;
    }
    ck_assert_msg(text && strstr(text, "Subscribed (mid:"), "mosquitto_sub did not subscribe (is mosquitto-clients "
                  "installed? apt-get install mosquitto-clients): %s", text ? text : "");
    free(text);
}

static void sub_stop(struct sub *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

struct rx {
    char *topic, *data;
    size_t len;
};

/* The messages so far: lines "TOPIC PAYLOAD" whose topic has the filter's prefix. @returns the count. */
static size_t sub_read(const struct sub *s, struct rx **out)
{
    char *text = vgt_read(s->out, NULL);
    size_t n = 0, cap = 0;
    struct rx *v = NULL;
    size_t pl = strlen(s->prefix);
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;   /* a line still being written */
        *nl = 0;
        char *sp = strchr(line, ' ');
        if (!strncmp(line, s->prefix, pl) && sp) {
            if (out) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 1024;
                    v = realloc(v, cap * sizeof *v);
                }
                v[n].topic = strndup(line, (size_t)(sp - line));
                v[n].data = strdup(sp + 1);
                v[n].len = strlen(sp + 1);
            }
            n++;
        }
        line = nl + 1;
    }
    free(text);
    if (out)
        *out = v;
    return n;
}

static void rx_free(struct rx *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].topic);
        free(v[i].data);
    }
    free(v);
}

/* ---- fixtures ----------------------------------------------------------- */

static struct vgt_server broker;

static void broker_up(void)
{
    memset(&broker, 0, sizeof broker);
    ck_assert_msg(vgt_mosquitto_start(&broker) == 0, "%s", broker.error);
}

static void broker_down(void)
{
    vgt_mosquitto_stop(&broker);
}

static void open_source(struct vg_source_handle *h, const char *fmt, int port)
{
    char uri[512];
    struct vg_error err = {0};
    snprintf(uri, sizeof uri, fmt, port);
    ck_assert_msg(vg_source_open(uri, h, &err) == 0, "%s: %s", uri, err.msg);
}

static void open_sink(struct vg_sink_handle *h, const char *fmt, int port)
{
    char uri[512];
    struct vg_error err = {0};
    snprintf(uri, sizeof uri, fmt, port);
    ck_assert_msg(vg_sink_open(uri, h, &err) == 0, "%s: %s", uri, err.msg);
}

/* Point stderr at @p path; @returns the saved descriptor for stderr_back. */
static int stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    return saved;
}

static void stderr_back(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

/* ---- source ------------------------------------------------------------- */

START_TEST(source_delivers_every_message_once_with_its_plant)
{
    enum { N = 20000 };
    struct vg_source_handle h;
    open_source(&h, "mqtt://127.0.0.1:%d/plants/+/telemetry,plants/+/reports?plant_level=2&client_id=src-all",
                broker.port);
    char want_name[128];
    snprintf(want_name, sizeof want_name, "mqtt://127.0.0.1:%d/plants/+/telemetry,plants/+/reports", broker.port);
    ck_assert_str_eq(h.ops->name(h.src), want_name);
    ck_assert(h.ops->live);
    ck_assert(h.ops->mark == NULL && h.ops->commit == NULL);

    struct seen v;
    seen_init(&v, N);
    struct pub_job job = {.port = broker.port, .from = 0, .n = N, .other = true};
    pthread_t th;
    int64_t t0 = now_ms();
    pthread_create(&th, NULL, publisher, &job);
    drain_source(&h, &v, true, 60000);
    int64_t t1 = now_ms();
    pthread_join(th, NULL);
    /* nothing more comes: not the messages on plants/+/other, no duplicates */
    struct vg_msg msgs[16];
    bool eof = false;
    struct vg_error err = {0};
    ck_assert_int_eq(h.ops->poll(h.src, msgs, 16, 300, &eof, &err), 0);
    seen_ok(&v, N);
    fprintf(stderr, "test_mqtt: source: %d messages published at QoS 1 (%d mosquitto_pub at once) and read in "
            "%lld ms: %.0f msgs/s\n", N, 2 * PLANTS, (long long)(t1 - t0),
            N * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1));
    free(v.bit);
    vg_source_close(&h);
}
END_TEST

START_TEST(source_mqtt_3_1_1_and_qos_0_also_deliver)
{
    enum { N = 2000 };
    struct vg_source_handle h;
    open_source(&h, "mqtt://127.0.0.1:%d/plants/#?version=3.1.1&qos=0&keepalive=10s&client_id=src-v3", broker.port);
    struct seen v;
    seen_init(&v, N);
    publish_elsewhere(broker.port, 0, N, false);
    drain_source(&h, &v, false, 30000);
    seen_ok(&v, N);
    free(v.bit);
    vg_source_close(&h);
}
END_TEST

START_TEST(a_full_queue_holds_the_broker_back_and_loses_nothing)
{
    enum { N = 5000, Q = 200 };
    struct vg_source_handle h;
    open_source(&h, "mqtt://127.0.0.1:%d/plants/+/telemetry,plants/+/reports?plant_level=2&queue=200&client_id=src-q",
                broker.port);
    /* the broker has all of them; the source took Q and waits */
    publish_elsewhere(broker.port, 0, N, false);
    static struct vg_msg msgs[N];
    bool eof = false;
    struct vg_error err = {0};
    int n = h.ops->poll(h.src, msgs, N, 2000, &eof, &err);
    ck_assert_msg(n == Q, "the first poll returned %d messages: the queue should hold exactly queue=%d", n, Q);
    struct seen v;
    seen_init(&v, N);
    for (int i = 0; i < n; i++)
        seen_msg(&v, &msgs[i], true);
    drain_source(&h, &v, true, 30000);
    seen_ok(&v, N);
    free(v.bit);
    vg_source_close(&h);
}
END_TEST

START_TEST(a_shared_subscription_splits_messages_between_instances)
{
    enum { N = 4000 };
    struct vg_source_handle a, b;
    open_source(&a, "mqtt://127.0.0.1:%d/$share/vigil/plants/+/telemetry,$share/vigil/plants/+/reports?plant_level=2"
                "&client_id=src-a", broker.port);
    open_source(&b, "mqtt://127.0.0.1:%d/$share/vigil/plants/+/telemetry,$share/vigil/plants/+/reports?plant_level=2"
                "&client_id=src-b", broker.port);
    struct pub_job job = {.port = broker.port, .from = 0, .n = N};
    pthread_t th;
    pthread_create(&th, NULL, publisher, &job);
    struct seen v;
    seen_init(&v, N);
    long got_a = 0, got_b = 0;
    struct vg_msg msgs[256];
    struct vg_error err = {0};
    int64_t until = now_ms() + 30000;
    while (v.count < N && now_ms() < until) {
        bool eof = false;
        int n = a.ops->poll(a.src, msgs, 256, 20, &eof, &err);
        ck_assert_msg(n >= 0, "%s", err.msg);
        for (int i = 0; i < n; i++)
            seen_msg(&v, &msgs[i], true);
        got_a += n;
        n = b.ops->poll(b.src, msgs, 256, 20, &eof, &err);
        ck_assert_msg(n >= 0, "%s", err.msg);
        for (int i = 0; i < n; i++)
            seen_msg(&v, &msgs[i], true);
        got_b += n;
    }
    pthread_join(th, NULL);
    bool eof = false;
    ck_assert_int_eq(a.ops->poll(a.src, msgs, 16, 200, &eof, &err), 0);
    ck_assert_int_eq(b.ops->poll(b.src, msgs, 16, 200, &eof, &err), 0);
    seen_ok(&v, N);
    ck_assert_msg(got_a > 0 && got_b > 0, "one instance got everything (%ld / %ld)", got_a, got_b);
    fprintf(stderr, "test_mqtt: shared subscription: %ld + %ld messages\n", got_a, got_b);
    free(v.bit);
    vg_source_close(&a);
    vg_source_close(&b);
}
END_TEST

START_TEST(an_oversized_message_arrives_truncated_with_its_real_length)
{
    struct vg_source_handle h;
    open_source(&h, "mqtt://127.0.0.1:%d/big/+?plant_level=2&client_id=src-big", broker.port);
    static char big[VG_LINE_MAX + 100];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    char *bin = vgt_path("big.bin");
    FILE *f = fopen(bin, "w");
    ck_assert(f != NULL);
    fwrite(big, 1, sizeof big, f);
    fclose(f);
    free(bin);
    ck_assert_int_eq(vgt_sh("cd '%s' && mosquitto_pub -p %d -q 1 -t big/P1 -f big.bin && head -c %d big.bin > big2.bin "
                            "&& mosquitto_pub -p %d -q 1 -t big/P2 -f big2.bin && mosquitto_pub -p %d -q 1 -t big/P3 "
                            "-m '{}'", vgt_dir(), broker.port, VG_LINE_MAX, broker.port, broker.port), 0);
    struct vg_msg msgs[4];
    int n = 0;
    struct vg_error err = {0};
    for (int64_t until = now_ms() + 5000; n < 3 && now_ms() < until;) {
        bool eof = false;
        int r = h.ops->poll(h.src, msgs + n, 4 - n, 100, &eof, &err);
        ck_assert(r >= 0);
        /* earlier slices stay valid only until the next poll: check as they come */
        for (int i = n; i < n + r; i++) {
            ck_assert_uint_eq(msgs[i].plant_len, 2);
            ck_assert_int_eq(msgs[i].pos, i + 1);
            if (!memcmp(msgs[i].plant, "P1", 2)) {
                ck_assert_uint_eq(msgs[i].len, VG_LINE_MAX);
                ck_assert_uint_eq(msgs[i].orig_len, VG_LINE_MAX + 100);
                ck_assert(!memcmp(msgs[i].data, big, VG_LINE_MAX));
            } else if (!memcmp(msgs[i].plant, "P2", 2)) {
                ck_assert_uint_eq(msgs[i].len, VG_LINE_MAX);
                ck_assert_uint_eq(msgs[i].orig_len, VG_LINE_MAX);
                ck_assert(!memcmp(msgs[i].data, big, VG_LINE_MAX));
            } else {
                ck_assert(!memcmp(msgs[i].plant, "P3", 2));
                ck_assert_uint_eq(msgs[i].len, 2);
                ck_assert_uint_eq(msgs[i].orig_len, 2);
                ck_assert(!memcmp(msgs[i].data, "{}", 2));
            }
        }
        n += r;
    }
    ck_assert_int_eq(n, 3);
    vg_source_close(&h);
}
END_TEST

START_TEST(the_source_subscribes_again_after_the_broker_restarts)
{
    char *log = vgt_path("src-restart.err");
    int saved = stderr_to(log);
    struct vg_source_handle h;
    open_source(&h, "mqtt://127.0.0.1:%d/plants/+/telemetry,plants/+/reports?plant_level=2&client_id=src-re"
                "&retry_min=1s&retry_max=1s", broker.port);
    struct seen v;
    seen_init(&v, 200);
    publish_elsewhere(broker.port, 0, 100, false);
    v.n = 100;
    drain_source(&h, &v, true, 10000);
    ck_assert_int_eq(v.count, 100);

    ck_assert_msg(vgt_mosquitto_restart(&broker) == 0, "%s", broker.error);
    /* a clean session forgets the subscription: only a new SUBSCRIBE brings messages again */
    struct vg_msg msgs[16];
    bool eof = false, back = false;
    struct vg_error err = {0};
    for (int64_t until = now_ms() + 15000; !back && now_ms() < until;) {
        ck_assert_int_eq(vgt_sh("mosquitto_pub -p %d -q 1 -t plants/PROBE/telemetry -m '{\"probe\":1}'", broker.port),
                         0);
        int n = h.ops->poll(h.src, msgs, 16, 200, &eof, &err);
        ck_assert(n >= 0);
        back = n > 0;
    }
    ck_assert_msg(back, "the source did not receive anything after the broker restarted");
    while (h.ops->poll(h.src, msgs, 16, 300, &eof, &err) > 0)
        ;   /* later probes */
    publish_elsewhere(broker.port, 100, 100, false);
    v.n = 200;
    drain_source(&h, &v, true, 10000);
    stderr_back(saved);
    seen_ok(&v, 200);
    vg_source_close(&h);
    char *text = vgt_read(log, NULL);
    ck_assert_msg(strstr(text, "lost the connection to the broker") != NULL, "no loss logged:\n%s", text);
    ck_assert_msg(strstr(text, "reconnected to the broker; subscribing again") != NULL, "no reconnect logged:\n%s",
                  text);
    free(text);
    free(log);
    free(v.bit);
}
END_TEST

START_TEST(clean_false_keeps_what_the_broker_held_while_the_source_was_away)
{
    struct vg_source_handle h;
    const char *uri = "mqtt://127.0.0.1:%d/plants/+/telemetry,plants/+/reports?plant_level=2&client_id=src-keep"
                      "&clean=false";
    open_source(&h, uri, broker.port);
    vg_source_close(&h);   /* the session and its subscription stay on the broker */
    publish_elsewhere(broker.port, 0, 1000, false);
    open_source(&h, uri, broker.port);
    struct seen v;
    seen_init(&v, 1000);
    drain_source(&h, &v, true, 10000);
    seen_ok(&v, 1000);
    free(v.bit);
    vg_source_close(&h);
}
END_TEST

/* ---- URIs and a missing broker ------------------------------------------ */

struct bad {
    bool sink;
    const char *uri;
    const char *want[2];
};

static const struct bad bad_uris[] = {
    {false, "mqtt://127.0.0.1:1/plants/+/t?qos=1&bogus=2", {"unknown option 'bogus'", "qos, client_id, clean"}},
    {false, "mqtt://127.0.0.1:1/plants/+/t?qos=2", {"qos=2", "from 0 to 1"}},
    {false, "mqtt://127.0.0.1:1/", {"no topic filter", "plants/+/telemetry"}},
    {false, "mqtt://127.0.0.1:1/a/#/b", {"'a/#/b'", "# may only be the last"}},
    {false, "mqtt://127.0.0.1:1/a/b+", {"'a/b+'", "whole topic level"}},
    {false, "mqtt://127.0.0.1:1/plants/+/t?plant_level=4", {"plant_level=4", "has only 3 levels"}},
    {false, "mqtt://127.0.0.1:1/$share//x", {"$share/GROUP/FILTER", NULL}},
    {false, "mqtt://127.0.0.1:1/a?clean=false", {"clean=false", "client_id=NAME"}},
    {false, "mqtt://127.0.0.1:1/a?version=4.0", {"version=4.0", "5 or 3.1.1"}},
    {false, "mqtt://127.0.0.1:1/a?keepalive=soon", {"keepalive=soon", "duration"}},
    {false, "mqtt://127.0.0.1:1/a?ca=/etc/hostname", {"TLS options", "mqtts://"}},
    {false, "mqtts://127.0.0.1:1/a?ca=/nonexistent/ca.pem", {"ca=/nonexistent/ca.pem", "cannot read it"}},
    {false, "mqtts://127.0.0.1:1/a?cert=/etc/hostname", {"needs both cert=FILE and key=FILE", NULL}},
    {true, "mqtt://127.0.0.1:1/alerts/+", {"wildcard", NULL}},
    {true, "mqtt://127.0.0.1:1/", {"no topic", "{key}"}},
    {true, "mqtt://127.0.0.1:1/alerts?max_inflight=0", {"max_inflight=0", "1 to 65000"}},
    {true, "mqtt://127.0.0.1:1/alerts?clean=false", {"unknown option 'clean'", "max_inflight"}},
};

START_TEST(bad_uris_name_what_is_wrong)
{
    const struct bad *b = &bad_uris[_i];
    struct vg_error err = {0};
    int rc;
    if (b->sink) {
        struct vg_sink_handle h = {0};
        rc = vg_sink_open(b->uri, &h, &err);
    } else {
        struct vg_source_handle h = {0};
        rc = vg_source_open(b->uri, &h, &err);
    }
    ck_assert_msg(rc == VG_EUSAGE, "%s: rc %d (%s)", b->uri, rc, err.msg);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(!b->want[i] || strstr(err.msg, b->want[i]), "%s: '%s' lacks '%s'", b->uri, err.msg, b->want[i]);
}
END_TEST

static const char *const absent[] = {
    "mqtt://127.0.0.1:%d/plants/+/telemetry", "mqtts://127.0.0.1:%d/plants/+/telemetry?connect_timeout=2s",
    "mqtt://127.0.0.1:%d/plants/+/telemetry?version=3.1.1", "sink:mqtt://127.0.0.1:%d/alerts/{key}",
    "sink:mqtt://u:secret@127.0.0.1:%d/alerts/{key}?version=3.1.1",
};

START_TEST(no_broker_names_the_address_and_how_to_start_one)
{
    int port = vgt_free_port();
    char uri[256], want[128];
    const char *fmt = absent[_i];
    bool sink = !strncmp(fmt, "sink:", 5);
    snprintf(uri, sizeof uri, sink ? fmt + 5 : fmt, port);
    struct vg_error err = {0};
    int64_t t0 = now_ms();
    int rc;
    if (sink) {
        struct vg_sink_handle h = {0};
        rc = vg_sink_open(uri, &h, &err);
    } else {
        struct vg_source_handle h = {0};
        rc = vg_source_open(uri, &h, &err);
    }
    ck_assert_msg(rc == VG_EIO, "%s: rc %d (%s)", uri, rc, err.msg);
    snprintf(want, sizeof want, "cannot reach MQTT broker 127.0.0.1:%d: connection refused", port);
    ck_assert_msg(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
    snprintf(want, sizeof want, "start one with: mosquitto -p %d", port);
    ck_assert_msg(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
    ck_assert_msg(!strstr(err.msg, "secret"), "the password shows: %s", err.msg);
    ck_assert_msg(now_ms() - t0 < 4000, "a refused connection took %lld ms to report", (long long)(now_ms() - t0));
}
END_TEST

START_TEST(credentials_are_sent_and_a_wrong_password_is_named_not_shown)
{
    struct vgt_server b = {0};
    char *pw = vgt_path("passwd");
    ck_assert_int_eq(vgt_sh("mosquitto_passwd -b -c '%s' vigil 's3cret:@/x' 2>/dev/null || "
                            "/usr/bin/mosquitto_passwd -b -c '%s' vigil 's3cret:@/x'", pw, pw), 0);
    char extra[700];
    snprintf(extra, sizeof extra, "allow_anonymous false\npassword_file %s\n", pw);
    ck_assert_msg(vgt_mosquitto_start_with(&b, extra) == 0, "%s", b.error);
    struct vg_source_handle h;
    struct vg_error err = {0};
    char uri[300];
    /* the password has ':', '@' and '/': percent-encoded in the URI */
    snprintf(uri, sizeof uri, "mqtt://vigil:s3cret%%3A%%40%%2Fx@127.0.0.1:%d/plants/#", b.port);
    ck_assert_msg(vg_source_open(uri, &h, &err) == 0, "%s: %s", uri, err.msg);
    ck_assert_msg(!strstr(h.ops->name(h.src), "s3cret"), "%s", h.ops->name(h.src));
    vg_source_close(&h);
    for (int v = 0; v < 2; v++) {
        snprintf(uri, sizeof uri, "mqtt://vigil:wrongpass@127.0.0.1:%d/plants/#%s", b.port,
                 v ? "?version=3.1.1" : "");
        ck_assert_int_eq(vg_source_open(uri, &h, &err), VG_EIO);
        ck_assert_msg(strstr(err.msg, "refused the connection") && !strstr(err.msg, "wrongpass"), "%s", err.msg);
    }
    vgt_mosquitto_stop(&b);
    free(pw);
}
END_TEST

/* ---- sink --------------------------------------------------------------- */

static void record_of(long i, char *out, size_t cap, char *key, size_t kcap)
{
    snprintf(key, kcap, "P%03ld", i % 50);
    snprintf(out, cap, "{\"alert_id\":\"%016lx\",\"rule\":\"nh3_over_limit\",\"status\":\"firing\",\"plant\":\"%s\","
             "\"seq\":%ld,\"title\":\"涉氨制冷车间氨气浓度超限\"}", (unsigned long)i * 2654435761u, key, i);
}

/* Distinct records among @p v. */
static long distinct(const struct rx *v, size_t n, long max)
{
    unsigned char *bit = calloc((size_t)max, 1);
    long d = 0;
    for (size_t j = 0; j < n; j++) {
        long i = seq_in(v[j].data, v[j].len);
        if (i >= 0 && i < max && !bit[i]) {
            bit[i] = 1;
            d++;
        }
    }
    free(bit);
    return d;
}

/* Wait (bounded) until @p s has seen @p n distinct records. */
static void sub_wait_records(const struct sub *s, long n, int ms)
{
    long d = 0;
    for (int64_t until = now_ms() + ms; now_ms() < until; nap_ms(50)) {
        struct rx *v;
        size_t k = sub_read(s, &v);
        d = (long)k >= n ? distinct(v, k, n) : 0;
        rx_free(v, k);
        if (d >= n)
            return;
    }
}

/* Every record 0..n-1 arrived on alerts/<key>, byte-identical; @returns the duplicates. */
static long check_records(const struct sub *s, long n)
{
    struct rx *v;
    size_t k = sub_read(s, &v);
    unsigned char *bit = calloc((size_t)n, 1);
    long count = 0, dup = 0;
    for (size_t j = 0; j < k; j++) {
        const struct rx *r = &v[j];
        long i = seq_in(r->data, r->len);
        ck_assert_msg(i >= 0 && i < n, "unexpected record '%s' on %s", r->data, r->topic);
        char want[512], key[16], topic[64];
        record_of(i, want, sizeof want, key, sizeof key);
        snprintf(topic, sizeof topic, "alerts/%s", key);
        ck_assert_str_eq(r->topic, topic);
        ck_assert_str_eq(r->data, want);
        dup += bit[i];
        count += !bit[i];
        bit[i] = 1;
    }
    ck_assert_int_eq(count, n);
    free(bit);
    rx_free(v, k);
    return dup;
}

static void put_records(struct vg_sink_handle *h, long from, long to)
{
    struct vg_error err = {0};
    for (long i = from; i < to; i++) {
        char rec[512], key[16];
        record_of(i, rec, sizeof rec, key, sizeof key);
        ck_assert_msg(h->ops->put(h->sink, key, strlen(key), rec, strlen(rec), &err) == 0, "put: %s", err.msg);
    }
}

START_TEST(the_sink_publishes_each_record_once_on_its_key_topic)
{
    enum { N = 10000 };
    struct sub s;
    sub_start(&s, broker.port, "alerts/#", "sub-alerts", false);
    struct vg_sink_handle h;
    open_sink(&h, "mqtt://127.0.0.1:%d/alerts/{key}", broker.port);
    struct vg_error err = {0};
    int64_t t0 = now_ms();
    put_records(&h, 0, N);
    ck_assert_msg(h.ops->flush(h.sink, &err) == 0, "flush: %s", err.msg);
    int64_t t1 = now_ms();
    sub_wait_records(&s, N, 10000);
    nap_ms(200);   /* time for anything extra to show */
    ck_assert_int_eq(check_records(&s, N), 0);
    fprintf(stderr, "test_mqtt: sink: %d records put and acknowledged at QoS 1 in %lld ms: %.0f records/s\n", N,
            (long long)(t1 - t0), N * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1));
    vg_sink_close(&h);
    sub_stop(&s);
}
END_TEST

START_TEST(a_key_cannot_change_the_topic_shape)
{
    struct sub s;
    sub_start(&s, broker.port, "out/#", "sub-shape", false);
    struct vg_sink_handle h;
    open_sink(&h, "mqtt://127.0.0.1:%d/out/{key}/alerts?qos=0&retain=false&max_inflight=10&version=3.1.1", broker.port);
    struct vg_error err = {0};
    ck_assert_int_eq(h.ops->put(h.sink, "R/1+2#", 6, "{\"a\":1}", 7, &err), 0);
    ck_assert_int_eq(h.ops->put(h.sink, "", 0, "{\"a\":2}", 7, &err), 0);
    ck_assert_int_eq(h.ops->flush(h.sink, &err), 0);
    struct rx *v = NULL;
    size_t n = 0;
    for (int64_t until = now_ms() + 5000; now_ms() < until && (n = sub_read(&s, NULL)) < 2;)
        nap_ms(10);
    n = sub_read(&s, &v);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0].topic, "out/R_1_2_/alerts");
    ck_assert_str_eq(v[0].data, "{\"a\":1}");
    ck_assert_str_eq(v[1].topic, "out//alerts");
    ck_assert_str_eq(v[1].data, "{\"a\":2}");
    rx_free(v, n);
    vg_sink_close(&h);
    sub_stop(&s);
}
END_TEST

struct flush_job {
    struct vg_sink_handle *h;
    atomic_int done;
    int rc;
};

static void *flusher(void *arg)
{
    struct flush_job *j = arg;
    struct vg_error err = {0};
    j->rc = j->h->ops->flush(j->h->sink, &err);
    atomic_store(&j->done, 1);
    return NULL;
}

START_TEST(flush_returns_only_once_the_broker_acknowledged)
{
    struct sub s;
    sub_start(&s, broker.port, "alerts/#", "sub-flush", false);
    struct vg_sink_handle h;
    open_sink(&h, "mqtt://127.0.0.1:%d/alerts/{key}", broker.port);
    struct vg_error err = {0};
    put_records(&h, 0, 1);
    ck_assert_int_eq(h.ops->flush(h.sink, &err), 0);
    /* a broker that hangs takes the bytes into its socket but acknowledges nothing */
    ck_assert_int_eq(kill(broker.pid, SIGSTOP), 0);
    put_records(&h, 1, 11);
    struct flush_job j = {.h = &h};
    pthread_t th;
    pthread_create(&th, NULL, flusher, &j);
    nap_ms(700);   /* a window in which nothing may happen */
    int early = atomic_load(&j.done);
    ck_assert_int_eq(kill(broker.pid, SIGCONT), 0);
    WAIT_FOR(atomic_load(&j.done), 10000);
    ck_assert_msg(!early, "flush returned while the broker could not have acknowledged");
    ck_assert_msg(atomic_load(&j.done), "flush did not return after the broker came back");
    pthread_join(th, NULL);
    ck_assert_int_eq(j.rc, 0);
    sub_wait_records(&s, 11, 5000);
    ck_assert_int_eq(check_records(&s, 11), 0);
    vg_sink_close(&h);
    sub_stop(&s);
}
END_TEST

struct put_job {
    struct vg_sink_handle *h;
    long n;
    atomic_long done;
    int flush_rc;
    atomic_int finished;
};

static void *putter(void *arg)
{
    struct put_job *j = arg;
    struct vg_error err = {0};
    for (long i = 0; i < j->n; i++) {
        char rec[512], key[16];
        record_of(i, rec, sizeof rec, key, sizeof key);
        if (j->h->ops->put(j->h->sink, key, strlen(key), rec, strlen(rec), &err) < 0)
            break;
        atomic_store(&j->done, i + 1);
    }
    j->flush_rc = j->h->ops->flush(j->h->sink, &err);
    atomic_store(&j->finished, 1);
    return NULL;
}

START_TEST(an_outage_makes_put_wait_and_every_record_arrives_after_it)
{
    enum { N = 6000, W = 300 };
    /* this broker keeps the subscriber's session (and its queue) across its restart */
    struct vgt_server b = {0};
    char *pdir = vgt_path("persist");
    ck_assert_int_eq(vgt_sh("mkdir -p '%s'", pdir), 0);
    char extra[700];
    snprintf(extra, sizeof extra, "persistence true\npersistence_location %s/\n", pdir);
    ck_assert_msg(vgt_mosquitto_start_with(&b, extra) == 0, "%s", b.error);
    struct sub s;
    sub_start(&s, b.port, "alerts/#", "sub-outage", true);
    char *log = vgt_path("sink-outage.err");
    int saved = stderr_to(log);
    struct vg_sink_handle h;
    open_sink(&h, "mqtt://127.0.0.1:%d/alerts/{key}?max_inflight=300&retry_min=1s&retry_max=1s", b.port);
    struct put_job j = {.h = &h, .n = N};
    pthread_t th;
    pthread_create(&th, NULL, putter, &j);
    WAIT_FOR(atomic_load(&j.done) >= 1000, 10000);
    vgt_mosquitto_stop(&b);
    long at_stop = atomic_load(&j.done);
    /* put buffers up to max_inflight, then waits: progress stops short of N */
    long stalled = -1;
    for (int64_t until = now_ms() + 10000; now_ms() < until;) {
        long d = atomic_load(&j.done);
        nap_ms(400);
        if (atomic_load(&j.done) == d) {
            stalled = d;
            break;
        }
    }
    ck_assert_msg(stalled >= 0, "put kept going with the broker down");
    ck_assert_msg(stalled < N && stalled <= at_stop + W, "put accepted %ld records (%ld when the broker stopped) "
                  "with max_inflight=%d", stalled, at_stop, W);
    ck_assert_int_eq(atomic_load(&j.finished), 0);
    ck_assert_msg(vgt_mosquitto_start_with(&b, NULL) == 0, "%s", b.error);
    WAIT_FOR(atomic_load(&j.finished), 30000);
    ck_assert_msg(atomic_load(&j.finished), "put/flush did not finish after the broker came back (%ld done)",
                  atomic_load(&j.done));
    pthread_join(th, NULL);
    ck_assert_int_eq(j.flush_rc, 0);
    ck_assert_int_eq(atomic_load(&j.done), N);
    sub_wait_records(&s, N, 20000);
    stderr_back(saved);
    long dup = check_records(&s, N);
    ck_assert_msg(dup <= W, "%ld duplicates: more than were in flight", dup);
    fprintf(stderr, "test_mqtt: outage: put stalled at %ld (%ld when the broker stopped); all %d records arrived, "
            "%ld twice\n", stalled, at_stop, N, dup);
    vg_sink_close(&h);
    sub_stop(&s);
    vgt_mosquitto_stop(&b);
    char *text = vgt_read(log, NULL);
    ck_assert_msg(strstr(text, "lost the connection to the broker") != NULL, "no loss logged:\n%s", text);
    ck_assert_msg(strstr(text, "reconnected to the broker") != NULL, "no reconnect logged:\n%s", text);
    free(text);
    free(log);
    free(pdir);
}
END_TEST

START_TEST(a_refused_record_stops_the_run_with_the_reason)
{
    /* the broker lets anonymous clients write under ok/ only */
    struct vgt_server b = {0};
    const char *acl = vgt_write("acl", "topic readwrite ok/#\n");
    char extra[700];
    snprintf(extra, sizeof extra, "acl_file %s\n", acl);
    ck_assert_msg(vgt_mosquitto_start_with(&b, extra) == 0, "%s", b.error);
    struct vg_sink_handle h;
    open_sink(&h, "mqtt://127.0.0.1:%d/denied/{key}", b.port);
    struct vg_error err = {0};
    ck_assert_int_eq(h.ops->put(h.sink, "P1", 2, "{}", 2, &err), 0);
    int rc = h.ops->flush(h.sink, &err);
    ck_assert_msg(rc == VG_EIO, "flush: %d %s", rc, err.msg);
    ck_assert_msg(strstr(err.msg, "refused a record on topic 'denied/P1'") && strstr(err.msg, "not authorized"),
                  "%s", err.msg);
    /* and the next put says so too: the run stops */
    ck_assert_int_eq(h.ops->put(h.sink, "P1", 2, "{}", 2, &err), VG_EIO);
    vg_sink_close(&h);
    vgt_mosquitto_stop(&b);
}
END_TEST

/* A source whose queue is full holds Paho's one network thread; an MQTT sink in the same process must still work. */
START_TEST(a_full_source_does_not_stall_a_sink_in_the_same_process)
{
    enum { N = 2000, R = 500 };
    struct sub s;
    sub_start(&s, broker.port, "alerts/#", "sub-both", false);
    struct vg_sink_handle k;
    open_sink(&k, "mqtt://127.0.0.1:%d/alerts/{key}", broker.port);
    struct vg_source_handle src;
    open_source(&src, "mqtt://127.0.0.1:%d/plants/+/telemetry,plants/+/reports?plant_level=2&queue=10"
                "&keepalive=60s&client_id=src-full", broker.port);
    publish_elsewhere(broker.port, 0, N, false);   /* the source is full and waits */
    struct put_job j = {.h = &k, .n = R};
    pthread_t th;
    int64_t t0 = now_ms();
    pthread_create(&th, NULL, putter, &j);
    WAIT_FOR(atomic_load(&j.finished), 20000);
    int64_t took = now_ms() - t0;
    ck_assert_msg(atomic_load(&j.finished), "the sink is stuck behind the full source");
    pthread_join(th, NULL);
    ck_assert_int_eq(j.flush_rc, 0);
    ck_assert_msg(took < 10000, "%d records took %lld ms: the sink waited for the source's keepalive escape", R,
                  (long long)took);
    sub_wait_records(&s, R, 10000);
    ck_assert_int_eq(check_records(&s, R), 0);
    /* and the source lost nothing meanwhile */
    struct seen v;
    seen_init(&v, N);
    drain_source(&src, &v, true, 20000);
    seen_ok(&v, N);
    free(v.bit);
    vg_source_close(&src);
    vg_sink_close(&k);
    sub_stop(&s);
}
END_TEST

/* ---- TLS ------------------------------------------------------------------ */

START_TEST(tls_with_a_ca_file_verifies_the_broker)
{
    /* a CA, and a certificate for 127.0.0.1 it signed */
    ck_assert_int_eq(vgt_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                            "-keyout ca.key -out ca.pem -days 1 -subj /CN=vigil-test-ca 2>/dev/null && "
                            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
                            "-out srv.csr -subj /CN=127.0.0.1 2>/dev/null && printf 'subjectAltName=IP:127.0.0.1\\n' "
                            "> srv.ext && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                            "-out srv.pem -days 1 -extfile srv.ext 2>/dev/null && chmod 644 srv.key",
                            vgt_dir()), 0);
    int tls_port = vgt_free_port();
    char extra[1200];
    snprintf(extra, sizeof extra, "listener %d 127.0.0.1\ncafile %s/ca.pem\ncertfile %s/srv.pem\nkeyfile %s/srv.key\n",
             tls_port, vgt_dir(), vgt_dir(), vgt_dir());
    struct vgt_server b = {0};
    ck_assert_msg(vgt_mosquitto_start_with(&b, extra) == 0, "%s", b.error);
    char uri[700];
    struct vg_error err = {0};

    /* the source over TLS gets what is published on the plain listener */
    struct vg_source_handle h;
    snprintf(uri, sizeof uri, "mqtts://127.0.0.1:%d/plants/+/telemetry,plants/+/reports?plant_level=2&ca=%s/ca.pem"
             "&client_id=src-tls", tls_port, vgt_dir());
    ck_assert_msg(vg_source_open(uri, &h, &err) == 0, "%s: %s", uri, err.msg);
    publish_elsewhere(b.port, 0, 200, false);
    struct seen v;
    seen_init(&v, 200);
    drain_source(&h, &v, true, 10000);
    seen_ok(&v, 200);
    free(v.bit);
    vg_source_close(&h);

    /* without the CA the broker's certificate is refused, and the message says so */
    snprintf(uri, sizeof uri, "mqtt://127.0.0.1:%d/plants/#?tls=true&connect_timeout=3s", tls_port);
    ck_assert_int_eq(vg_source_open(uri, &h, &err), VG_EIO);
    ck_assert_msg(strstr(err.msg, "TLS handshake failed") && strstr(err.msg, "insecure=true"), "%s", err.msg);

    /* insecure=true skips the verification: a sink publishes over TLS */
    struct sub s;
    sub_start(&s, b.port, "alerts/#", "sub-tls", false);
    struct vg_sink_handle k;
    snprintf(uri, sizeof uri, "mqtts://127.0.0.1:%d/alerts/{key}?insecure=true", tls_port);
    ck_assert_msg(vg_sink_open(uri, &k, &err) == 0, "%s: %s", uri, err.msg);
    put_records(&k, 0, 100);
    ck_assert_int_eq(k.ops->flush(k.sink, &err), 0);
    sub_wait_records(&s, 100, 5000);
    ck_assert_int_eq(check_records(&s, 100), 0);
    vg_sink_close(&k);
    sub_stop(&s);
    vgt_mosquitto_stop(&b);
}
END_TEST

/* ---- the vigil binary with MQTT alerts ------------------------------------ */

START_TEST(vigil_run_publishes_the_alerts_a_file_run_writes)
{
    char bin[512], gen[600];
    snprintf(bin, sizeof bin, "%s", vgt_bin());
    char *slash = strrchr(bin, '/');
    snprintf(gen, sizeof gen, "%.*sgen", slash ? (int)(slash - bin + 1) : 0, bin);
    ck_assert_int_eq(vgt_sh("'%s' --plants 40 --days 1 --interval 300 --breach-rate 1 --registry '%s/reg.yaml' "
                            "--telemetry '%s/t.ndjson' 2>/dev/null", gen, vgt_dir(), vgt_dir()), 0);
    ck_assert_int_eq(vgt_sh("cd '%s' && '%s' run --rules '%s/rules' --registry reg.yaml --input t.ndjson "
                            "--alerts file.out --dead-letter /dev/null 2>/dev/null", vgt_dir(), vgt_bin(), vgt_src()),
                     0);
    char *want = vgt_path("file.out");
    char *text = vgt_read(want, NULL);
    long lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_msg(lines > 50, "the sample should raise alerts (%ld)", lines);
    struct sub s;
    sub_start(&s, broker.port, "vigil/alerts/#", "sub-vigil", false);
    ck_assert_int_eq(vgt_sh("cd '%s' && '%s' run --rules '%s/rules' --registry reg.yaml --input t.ndjson "
                            "--alerts 'mqtt://127.0.0.1:%d/vigil/alerts/{key}' --dead-letter /dev/null 2>mqtt.err",
                            vgt_dir(), vgt_bin(), vgt_src(), broker.port), 0);
    /* vigil exited: its sink flushed, so the broker has every alert; wait for the subscriber's copy */
    WAIT_FOR((long)sub_read(&s, NULL) >= lines, 10000);
    struct rx *v;
    size_t n = sub_read(&s, &v);
    char *out = vgt_path("mqtt.out");
    FILE *f = fopen(out, "w");
    free(out);
    ck_assert(f != NULL);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\n", v[i].data);
        /* each topic's key is the record's plant or region */
        char needle[96];
        snprintf(needle, sizeof needle, "\"%s\"", v[i].topic + strlen("vigil/alerts/"));
        ck_assert_msg(strstr(v[i].data, needle), "topic %s: its key is not in %s", v[i].topic, v[i].data);
    }
    fclose(f);
    rx_free(v, n);
    ck_assert_int_eq(vgt_sh("cd '%s' && LC_ALL=C sort file.out > a.sorted && LC_ALL=C sort mqtt.out > b.sorted && "
                            "cmp -s a.sorted b.sorted", vgt_dir()), 0);
    free(text);
    free(want);
    sub_stop(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mqtt");
    TCase *src = tcase_create("source");
    tcase_add_checked_fixture(src, broker_up, broker_down);
    tcase_set_timeout(src, 120);
    tcase_add_test(src, source_delivers_every_message_once_with_its_plant);
    tcase_add_test(src, source_mqtt_3_1_1_and_qos_0_also_deliver);
    tcase_add_test(src, a_full_queue_holds_the_broker_back_and_loses_nothing);
    tcase_add_test(src, a_shared_subscription_splits_messages_between_instances);
    tcase_add_test(src, an_oversized_message_arrives_truncated_with_its_real_length);
    tcase_add_test(src, the_source_subscribes_again_after_the_broker_restarts);
    tcase_add_test(src, clean_false_keeps_what_the_broker_held_while_the_source_was_away);
    suite_add_tcase(s, src);

    TCase *uris = tcase_create("uris");
    tcase_add_loop_test(uris, bad_uris_name_what_is_wrong, 0, VG_ARRAY_LEN(bad_uris));
    tcase_add_loop_test(uris, no_broker_names_the_address_and_how_to_start_one, 0, VG_ARRAY_LEN(absent));
    tcase_add_test(uris, credentials_are_sent_and_a_wrong_password_is_named_not_shown);
    suite_add_tcase(s, uris);

    TCase *sink = tcase_create("sink");
    tcase_add_checked_fixture(sink, broker_up, broker_down);
    tcase_set_timeout(sink, 120);
    tcase_add_test(sink, the_sink_publishes_each_record_once_on_its_key_topic);
    tcase_add_test(sink, a_key_cannot_change_the_topic_shape);
    tcase_add_test(sink, flush_returns_only_once_the_broker_acknowledged);
    tcase_add_test(sink, an_outage_makes_put_wait_and_every_record_arrives_after_it);
    tcase_add_test(sink, a_refused_record_stops_the_run_with_the_reason);
    tcase_add_test(sink, a_full_source_does_not_stall_a_sink_in_the_same_process);
    tcase_add_test(sink, tls_with_a_ca_file_verifies_the_broker);
    tcase_add_test(sink, vigil_run_publishes_the_alerts_a_file_run_writes);
    suite_add_tcase(s, sink);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
