/*
 * bench_ingest.c: ingest throughput of vigil from Kafka and from MQTT, next to
 * a bare librdkafka consumer and a bare Paho subscriber reading the same
 * messages on the same machine, as a ratio vigil / bare. Reports figures.
 * Owns: its workload (telemetry lines keyed by plant), an in-process
 * librdkafka mock cluster, a mosquitto child on a free 127.0.0.1 port (never
 * 1883), a publisher child process (this program run again with --publisher),
 * and the counting wrapper around an opened source.
 * Must never: be run as a timed test, or fail on a figure (it exits 1 only
 * when vigil turns a valid line into anything but one sample: MISMATCH);
 * change what a source hands the pipeline (the wrapper only counts, and ends
 * the input after N messages); wait without a bound (a run that stalls for
 * STALL_S is reported as incomplete); leave a child running (mosquitto and
 * the publisher die with this process: PR_SET_PDEATHSIG).
 *
 * usage: bench_ingest [-n N] [--repeat R] [--kafka-only | --mqtt-only] [--kafka-queue N]
 *   -n N        messages per measurement (default: Kafka 1,000,000; MQTT QoS 0
 *               200,000); MQTT QoS 1 uses N/4
 *   --repeat R  runs of each measurement; the median is reported (default 3)
 *   --kafka-queue N  queued.min.messages of both Kafka consumers (default:
 *               vigil's own, 1,000,000, for both; librdkafka's is 100,000)
 *
 * Kafka: one mock broker in this process, one topic with enough partitions
 * that none exceeds the mock's 5 MiB log cap (checked after producing: every
 * partition must still start at offset 0). N lines are produced once, keyed
 * by plant. Then, per run: (a) a bare consumer in its own group reads all N
 * with rd_kafka_consume_batch_queue (up to 1,000 a call) and only touches
 * each payload; it has the settings vigil's source sets (fetch.wait.max.ms 5,
 * queued.min.messages 1,000,000, no auto commit, no offset store); (b)
 * vg_pipeline_run with the kafka:// source (a fresh group,
 * offset_reset=earliest), bench_engine's threshold rules, alerts and dead
 * letters to /dev/null, 1 and 2 workers. Both are timed from the first
 * message to the last (vigil: to vg_pipeline_run's return, so the workers'
 * share is in); the group join before the first message is not.
 *
 * MQTT (mosquitto with max_queued_messages 0 and max_inflight_messages 0, so
 * nothing is dropped): a publisher (Paho async, MQTT 3.1.1, maxInflight 2,000
 * and at most 2,000 publishes outstanding) publishes N lines to
 * plants/PLANT/telemetry while (a) a bare Paho subscriber (MQTT 5, like
 * vigil's default) on plants/+/telemetry, or (b) vigil with
 * mqtt://…/plants/+/telemetry?qos=Q&plant_level=2 and 1 worker, receives
 * them; QoS 0 and QoS 1. The publisher is a process, not a thread: all Paho
 * clients of a process share one receive and one send thread, which would
 * make publisher and subscriber wait on each other. On 2 cores the publisher
 * is the bottleneck, so the live rates mostly measure it; the CPU per message
 * of this process (Paho's threads and vigil's) tells the two apart. A third
 * case, "QoS 1 backlog", takes the publisher out: a persistent session
 * subscribes and goes away, N messages are published into the broker's queue
 * for it, then the subscriber reconnects and drains them (timed from the
 * connect).
 *
 * Every line has the same event time (the wall clock at start + 1 h): Kafka
 * interleaves partitions, and with lateness 0 an older line after a newer one
 * would be dead-lettered as late.
 */
#include "engine/adapter.h"
#include "engine/pipeline.h"

#include <MQTTAsync.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PLANTS 5000             /* x 10 devices x 4 metrics = 200,000 series */
#define KAFKA_BATCH 1000        /* the bare consumer's rd_kafka_consume_batch_queue size */
#define MOCK_PART_BYTES (5 << 20)
#define PUB_WINDOW 2000         /* the publisher's maxInflight and its own bound on outstanding publishes */
#define STALL_S 15.0            /* no message for this long (after the first, or from the start): give up */
#define FIRST_S 30.0            /* the first message must come within this (group join ~3 s) */
#define MAX_REPEAT 15

static const char *const metrics[] = {"nh3_ppm", "co_ppm", "o2_pct", "dust_mg_m3"};
static const double normal[] = {10, 2, 20.9, 2.5};
static const double breach[] = {45, 20, 18.0, 12};

static long long g_ts;           /* every line's event time */
static volatile uint64_t g_touch; /* what the bare clients read of each payload */
static int g_repeat = 3;
static bool g_mismatch;           /* vigil turned a valid line into other than one sample: exit 1 */

/* ---- small things ----------------------------------------------------------- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds of this process (every thread). */
static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double median(const double *v, int n)
{
    double s[MAX_REPEAT];
    memcpy(s, v, (size_t)n * sizeof *s);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Line @p i: plant i % PLANTS, device and metric from i / PLANTS; 1 in 1,000 breaches. */
static int line(char *buf, size_t cap, uint64_t i, char *plant)
{
    uint64_t p = i % PLANTS, k = i / PLANTS, m = k % 4, dev = (k / 4) % 10;
    uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    double v = (h >> 20) % 1000 == 0 ? breach[m] : normal[m] + (double)(h % 100) / 100.0;
    snprintf(plant, 16, "P32%07llu", (unsigned long long)(500000 + p));
    return snprintf(buf, cap, "{\"plant\":\"%s\",\"device\":\"DEV-%02llu\",\"metric\":\"%s\",\"value\":%.2f,"
                    "\"ts\":%lld}", plant, (unsigned long long)dev, metrics[m], v, g_ts);
}

/* ---- results ------------------------------------------------------------------ */

struct result {
    char label[96];
    double rate[MAX_REPEAT];     /* msgs/s per run */
    double cpu_us[MAX_REPEAT];   /* CPU microseconds of this process per message */
    int runs, failed;
    const struct result *bare;   /* the row this one is a ratio to */
};

static void record(struct result *r, uint64_t n, double secs, double cpu_s)
{
    if (secs <= 0 || r->runs >= MAX_REPEAT) {
        r->failed++;
        return;
    }
    r->rate[r->runs] = (double)n / secs;
    r->cpu_us[r->runs] = cpu_s / (double)n * 1e6;
    r->runs++;
}

static double rate_of(const struct result *r)
{
    return r->runs ? median(r->rate, r->runs) : 0;
}

static void print_row(const struct result *r)
{
    char runs[128] = "", *p = runs;
    for (int i = 0; i < r->runs; i++)
        p += snprintf(p, (size_t)(runs + sizeof runs - p), "%s%.4f", i ? " " : "", r->rate[i] / 1e6);
    if (!r->runs) {
        printf("%-46s       n/a (%d runs incomplete)\n", r->label, r->failed);
        return;
    }
    printf("%-46s %7.4f M msgs/s  (%s)  %6.2f us CPU/msg", r->label, rate_of(r) / 1e6, runs,
           median(r->cpu_us, r->runs));
    if (r->bare && r->bare->runs)
        printf("  vigil/bare %.2f", rate_of(r) / rate_of(r->bare));
    if (r->failed)
        printf("  (%d runs incomplete)", r->failed);
    printf("\n");
    fflush(stdout);
}

/* ---- the rules and the pipeline around a source ------------------------------- */

static struct vg_ruleset *g_rs;
static struct vg_registry *g_reg;

static int load_rules(char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rules.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "version: 1\nrules:\n");
    for (int m = 0; m < 4; m++)
        fprintf(f, "  - id: r%d\n    metric: %s\n    for: 30s\n    grades:\n"
                   "      - { level: yellow, when: value %s %g }\n"
                   "      - { level: red, when: value %s %g, for: 0s }\n"
                   "    clear_for: 60s\n",
                m, metrics[m], m == 2 ? "<" : ">", (normal[m] + breach[m]) / 2, m == 2 ? "<" : ">",
                m == 2 ? breach[m] - 1 : breach[m] * 2);
    fclose(f);
    struct vg_diags d;
    vg_diags_init(&d);
    const char *p = path;
    int rc = vg_ruleset_load(&g_rs, &p, 1, NULL, &d);
    if (rc < 0)
        vg_diags_print(&d, stderr);
    vg_diags_fini(&d);
    unlink(path);
    g_reg = vg_registry_empty();
    return rc < 0 ? -1 : 0;
}

/*
 * The counting wrapper: the real source's ops with poll replaced by one that
 * hands out at most `want` messages in all, notes the time and CPU of the
 * first and the last, and then reports the end of input. It also ends a run
 * that stalls (no first message within FIRST_S, or none for STALL_S).
 */
static struct {
    const struct vg_source_ops *real;
    uint64_t want, got;
    double start, first, last, cpu_first, progress;
    bool stalled;
} g_count;
static struct vg_source_ops g_counting;

static int counting_poll(struct vg_source *src, struct vg_msg *msgs, int cap, int timeout_ms, bool *eof,
                         struct vg_error *err)
{
    *eof = false;
    if (g_count.got >= g_count.want) {
        *eof = true;
        return 0;
    }
    uint64_t left = g_count.want - g_count.got;
    int n = g_count.real->poll(src, msgs, left < (uint64_t)cap ? (int)left : cap, timeout_ms, eof, err);
    double t = now();
    if (n > 0) {
        if (!g_count.got) {
            g_count.first = t;
            g_count.cpu_first = cpu();
        }
        g_count.got += (uint64_t)n;
        g_count.progress = t;
        if (g_count.got >= g_count.want) {
            g_count.last = t;
            *eof = true;
        }
    } else if (n == 0 && t - (g_count.got ? g_count.progress : g_count.start) > (g_count.got ? STALL_S : FIRST_S)) {
        g_count.stalled = true;
        *eof = true;
    }
    return n;
}

/*
 * Run the pipeline on @p in until @p want messages were read. @p t0 (if > 0)
 * replaces the first message's time as the start, and @p cpu0 its CPU.
 * Records the rate into @p r; @returns 0 or -1 (incomplete or failed).
 */
static int run_vigil(struct vg_source_handle *in, uint64_t want, int threads, double t0, double cpu0,
                     struct result *r)
{
    struct vg_sink_handle out, dead;
    struct vg_error err = {0};
    if (vg_sink_open("/dev/null", &out, &err) < 0 || vg_sink_open("/dev/null", &dead, &err) < 0) {
        fprintf(stderr, "bench_ingest: /dev/null: %s\n", err.msg);
        exit(1);
    }
    memset(&g_count, 0, sizeof g_count);
    g_count.real = in->ops;
    g_count.want = want;
    g_count.start = t0 > 0 ? t0 : now();
    g_counting = *in->ops;
    g_counting.poll = counting_poll;
    struct vg_source_handle wrapped = {&g_counting, in->src};
    struct vg_pipeline_config cfg = {.rs = g_rs, .reg = g_reg, .input = &wrapped, .alerts = &out,
                                     .dead = &dead, .threads = threads, .start = VG_TS_NONE,
                                     .until = VG_TS_NONE, .checkpoint_ms = 1000};
    struct vg_pipeline_stats ps;
    int rc = vg_pipeline_run(&cfg, &ps, &err);
    double t1 = now(), cpu1 = cpu();
    vg_sink_close(&out);
    vg_sink_close(&dead);
    if (rc < 0)
        fprintf(stderr, "bench_ingest: %s: the pipeline failed: %s\n", r->label, err.msg);
    else if (g_count.stalled || ps.messages != want)
        fprintf(stderr, "bench_ingest: %s: only %llu of %llu messages arrived (stalled for %.0f s)\n", r->label,
                (unsigned long long)ps.messages, (unsigned long long)want, STALL_S);
    else if (ps.samples != want || ps.dead) {
        fprintf(stderr, "bench_ingest: %s: MISMATCH: %llu samples and %llu dead letters from %llu valid "
                "lines\n", r->label, (unsigned long long)ps.samples, (unsigned long long)ps.dead,
                (unsigned long long)want);
        g_mismatch = true;
    }
    else {
        record(r, want, t1 - (t0 > 0 ? t0 : g_count.first), cpu1 - (t0 > 0 ? cpu0 : g_count.cpu_first));
        vg_pipeline_stats_fini(&ps);
        return 0;
    }
    if (rc == 0)
        vg_pipeline_stats_fini(&ps);
    r->failed++;
    return -1;
}

/* ======================================================================== */
/* Kafka                                                                    */
/* ======================================================================== */

#define TOPIC "telemetry"

static char g_boot[256];
static char g_queue[24];   /* --kafka-queue N: queued.min.messages of both consumers ("": the defaults) */

static int kafka_produce(uint64_t n, int partitions, double *bytes_per_line)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", g_boot, NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "20", NULL, 0);
    rd_kafka_conf_set(conf, "batch.num.messages", "10000", NULL, 0);
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", NULL, 0);
    rd_kafka_conf_set(conf, "partitioner", "murmur2_random", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        fprintf(stderr, "bench_ingest: producer: %s\n", why);
        return -1;
    }
    double t0 = now();
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        char buf[256], plant[16];
        int len = line(buf, sizeof buf, i, plant);
        total += (uint64_t)len;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(plant, strlen(plant)),
                                      RD_KAFKA_V_VALUE(buf, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (e) {
            fprintf(stderr, "bench_ingest: produce: %s\n", rd_kafka_err2str(e));
            rd_kafka_destroy(rk);
            return -1;
        }
        if (i % 10000 == 0)
            rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 120000)) {
        fprintf(stderr, "bench_ingest: the mock cluster did not take every message\n");
        rd_kafka_destroy(rk);
        return -1;
    }
    double secs = now() - t0;
    /* the mock silently drops the oldest message sets past 5 MiB a partition: check none went */
    int64_t sum = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, TOPIC, p, &lo, &hi, 10000);
        if (e || lo != 0) {
            fprintf(stderr, "bench_ingest: partition %d starts at offset %lld (%s): the mock dropped "
                    "messages; use a smaller -n\n", p, (long long)lo, rd_kafka_err2str(e));
            rd_kafka_destroy(rk);
            return -1;
        }
        sum += hi;
    }
    rd_kafka_destroy(rk);
    if (sum != (int64_t)n) {
        fprintf(stderr, "bench_ingest: the topic holds %lld messages, not %llu\n", (long long)sum,
                (unsigned long long)n);
        return -1;
    }
    *bytes_per_line = (double)total / (double)n;
    printf("kafka: produced %llu lines in %.2f s (%.0f msgs/s, one producer, linger 20 ms)\n",
           (unsigned long long)n, secs, (double)n / secs);
    return 0;
}

/* (a) a bare consumer: subscribe in a fresh group, consume batches, touch each payload. */
static int kafka_bare(uint64_t n, const char *group, struct result *r)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", g_boot}, {"group.id", group},
                           {"enable.auto.commit", "false"}, {"enable.auto.offset.store", "false"},
                           {"auto.offset.reset", "earliest"}, {"fetch.wait.max.ms", "5"},
                           {"queued.min.messages", g_queue[0] ? g_queue : "1000000"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], why, sizeof why) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "bench_ingest: %s: %s\n", kv[i][0], why);
            exit(1);
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        fprintf(stderr, "bench_ingest: consumer: %s\n", why);
        exit(1);
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, TOPIC, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        fprintf(stderr, "bench_ingest: %s: subscribe: %s\n", r->label, rd_kafka_err2str(se));
        rd_kafka_destroy(rk);
        r->failed++;
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    static rd_kafka_message_t *msgs[KAFKA_BATCH];
    uint64_t got = 0, touch = 0;
    double start = now(), first = 0, last = 0, progress = start, cpu_first = 0;
    while (got < n) {
        uint64_t left = n - got;
        size_t want = left < KAFKA_BATCH ? (size_t)left : KAFKA_BATCH;
        ssize_t k = rd_kafka_consume_batch_queue(q, 100, msgs, want);
        double t = now();
        for (ssize_t i = 0; i < k; i++) {
            if (!msgs[i]->err) {
                if (!got++) {
                    first = t;
                    cpu_first = cpu();
                }
                touch += msgs[i]->len + (msgs[i]->len ? ((const unsigned char *)msgs[i]->payload)[0] : 0);
            }
            rd_kafka_message_destroy(msgs[i]);
        }
        if (k > 0)
            progress = t;
        else if (t - (got ? progress : start) > (got ? STALL_S : FIRST_S))
            break;
    }
    last = now();
    double cpu_last = cpu();
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (got < n) {
        fprintf(stderr, "bench_ingest: %s: only %llu of %llu messages arrived\n", r->label,
                (unsigned long long)got, (unsigned long long)n);
        r->failed++;
        return -1;
    }
    g_touch += touch;
    record(r, n, last - first, cpu_last - cpu_first);
    return 0;
}

static int kafka_vigil(uint64_t n, const char *group, int threads, struct result *r)
{
    char uri[512];
    snprintf(uri, sizeof uri, "kafka://%s/%s?group=%s&offset_reset=earliest%s%s", g_boot, TOPIC, group,
             g_queue[0] ? "&rdkafka.queued.min.messages=" : "", g_queue);
    struct vg_source_handle in;
    struct vg_error err = {0};
    if (vg_source_open(uri, &in, &err) < 0) {
        fprintf(stderr, "bench_ingest: %s: %s\n", uri, err.msg);
        r->failed++;
        return -1;
    }
    int rc = run_vigil(&in, n, threads, 0, 0, r);
    vg_source_close(&in);
    return rc;
}

static void bench_kafka(uint64_t n)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *helper = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    rd_kafka_mock_cluster_t *mock = helper ? rd_kafka_mock_cluster_new(helper, 1) : NULL;
    if (!mock) {
        printf("kafka: skipped: cannot start librdkafka's mock cluster (%s)\n", helper ? "mock" : why);
        if (helper)
            rd_kafka_destroy(helper);
        return;
    }
    snprintf(g_boot, sizeof g_boot, "%s", rd_kafka_mock_cluster_bootstraps(mock));
    /* about 125 bytes a record in the log: twice that under the mock's per-partition cap */
    uint64_t need = (n * 125 * 2 + MOCK_PART_BYTES - 1) / MOCK_PART_BYTES;
    int partitions = need < 8 ? 8 : need > 512 ? 512 : (int)need;
    double bpl = 0;
    if (rd_kafka_mock_topic_create(mock, TOPIC, partitions, 1) ||
        kafka_produce(n, partitions, &bpl) < 0) {
        printf("kafka: skipped: producing the workload failed (see above)\n");
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(helper);
        return;
    }
    printf("kafka: %llu messages (%.0f B/line, keyed by plant, %d plants), topic of %d partitions on 1 mock "
           "broker in this process; queued.min.messages %s; median of %d runs\n",
           (unsigned long long)n, bpl, PLANTS, partitions, g_queue[0] ? g_queue : "1000000 (vigil's default)",
           g_repeat);
    struct result bare = {.label = "kafka, bare librdkafka consumer:"};
    struct result v1 = {.label = "kafka, vigil reader + 1 worker + output:", .bare = &bare};
    struct result v2 = {.label = "kafka, vigil reader + 2 workers + output:", .bare = &bare};
    for (int run = 0; run < g_repeat; run++) {
        char g[64];
        snprintf(g, sizeof g, "bench-bare-%d-%d", (int)getpid(), run);
        kafka_bare(n, g, &bare);
        snprintf(g, sizeof g, "bench-vigil1-%d-%d", (int)getpid(), run);
        kafka_vigil(n, g, 1, &v1);
        snprintf(g, sizeof g, "bench-vigil2-%d-%d", (int)getpid(), run);
        kafka_vigil(n, g, 2, &v2);
    }
    print_row(&bare);
    print_row(&v1);
    print_row(&v2);
    printf("  (timed from the first message to the last; the bare consumer takes batches of %d, vigil's "
           "reader polls 256 at a time; CPU includes the mock broker, which runs in this process)\n",
           KAFKA_BATCH);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(helper);
}

/* ======================================================================== */
/* MQTT                                                                     */
/* ======================================================================== */

static pid_t g_mosq_pid;
static int g_mosq_port;
static char g_mosq_dir[64];

static int free_port(void)
{
    for (int tries = 0; tries < 20; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        int port = -1;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
            port = ntohs(a.sin_port);
        close(fd);
        if (port > 0 && port != 1883)
            return port;
    }
    return -1;
}

static bool tcp_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static bool find_mosquitto(char *out, size_t cap)
{
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(out, cap, "%.*s/mosquitto", (int)n, n ? path : ".");
        if (access(out, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin", "/sbin"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(out, cap, "%s/mosquitto", dirs[i]);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static void stop_child(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        sleep_s(0.01);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

static void mosquitto_stop(void)
{
    stop_child(&g_mosq_pid);
    if (g_mosq_dir[0]) {
        char p[128];
        snprintf(p, sizeof p, "%s/mosquitto.conf", g_mosq_dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/mosquitto.log", g_mosq_dir);
        unlink(p);
        rmdir(g_mosq_dir);
        g_mosq_dir[0] = 0;
    }
}

/* Start mosquitto on a free port with a config that never drops. @returns 0, or -1 with @p why. */
static int mosquitto_start(char *why, size_t cap)
{
    char bin[512];
    if (!find_mosquitto(bin, sizeof bin)) {
        snprintf(why, cap, "mosquitto is not installed (apt-get install mosquitto)");
        return -1;
    }
    snprintf(g_mosq_dir, sizeof g_mosq_dir, "/tmp/vigil-bench-mqtt-XXXXXX");
    if (!mkdtemp(g_mosq_dir)) {
        snprintf(why, cap, "mkdtemp: %s", strerror(errno));
        g_mosq_dir[0] = 0;
        return -1;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        char conf[128], logp[128];
        snprintf(conf, sizeof conf, "%s/mosquitto.conf", g_mosq_dir);
        snprintf(logp, sizeof logp, "%s/mosquitto.log", g_mosq_dir);
        if ((g_mosq_port = free_port()) < 0) {
            snprintf(why, cap, "no free port on 127.0.0.1");
            return -1;
        }
        FILE *f = fopen(conf, "w");
        if (!f) {
            snprintf(why, cap, "cannot write %s: %s", conf, strerror(errno));
            return -1;
        }
        fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                "max_inflight_messages 0\npersistence false\n%s", g_mosq_port, geteuid() == 0 ? "user root\n" : "");
        fclose(f);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
            snprintf(why, cap, "fork: %s", strerror(errno));
            return -1;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(127);
            int lg = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644), nul = open("/dev/null", O_RDONLY);
            if (lg < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(lg, 1) < 0 || dup2(lg, 2) < 0)
                _exit(127);
            execl(bin, "mosquitto", "-c", conf, (char *)NULL);
            _exit(127);
        }
        g_mosq_pid = pid;
        for (double waited = 0; waited < 5; waited += 0.02) {
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                g_mosq_pid = 0;
                break;
            }
            if (tcp_accepts(g_mosq_port))
                return 0;
            sleep_s(0.02);
        }
        stop_child(&g_mosq_pid);
    }
    snprintf(why, cap, "mosquitto did not start (its log: %s/mosquitto.log)", g_mosq_dir);
    return -1;
}

/* ---- the publisher: this program run again with --publisher PORT QOS N ------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long outstanding, done, failed;
    bool connected, conn_failed;
} g_pub = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, false, false};

static void pub_connected(void *ctx, MQTTAsync_successData *d)
{
    (void)ctx, (void)d;
    pthread_mutex_lock(&g_pub.lock);
    g_pub.connected = true;
    pthread_cond_broadcast(&g_pub.cond);
    pthread_mutex_unlock(&g_pub.lock);
}

static void pub_connect_failed(void *ctx, MQTTAsync_failureData *d)
{
    (void)ctx, (void)d;
    pthread_mutex_lock(&g_pub.lock);
    g_pub.conn_failed = true;
    pthread_cond_broadcast(&g_pub.cond);
    pthread_mutex_unlock(&g_pub.lock);
}

static void pub_finished(bool ok)
{
    pthread_mutex_lock(&g_pub.lock);
    g_pub.outstanding--;
    g_pub.done++;
    g_pub.failed += !ok;
    pthread_cond_broadcast(&g_pub.cond);
    pthread_mutex_unlock(&g_pub.lock);
}

static void pub_ok(void *ctx, MQTTAsync_successData *d)
{
    (void)ctx, (void)d;
    pub_finished(true);
}

static void pub_fail(void *ctx, MQTTAsync_failureData *d)
{
    (void)ctx, (void)d;
    pub_finished(false);
}

/* Wait on g_pub.cond until @p deadline (monotonic seconds). @returns false on timeout. */
static bool pub_wait(double deadline)
{
    double left = deadline - now();
    if (left <= 0)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)left;
    ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_pub.cond, &g_pub.lock, &ts);
    return true;
}

static int publisher_main(int port, int qos, long n, long long ts)
{
    g_ts = ts;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char uri[64], id[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
    snprintf(id, sizeof id, "bench-pub-%d", (int)getpid());
    MQTTAsync cli;
    if (MQTTAsync_create(&cli, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "publisher: cannot create a Paho client\n");
        return 1;
    }
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    o.keepAliveInterval = 60;
    o.cleansession = 1;
    o.maxInflight = PUB_WINDOW;
    o.onSuccess = pub_connected;
    o.onFailure = pub_connect_failed;
    pthread_mutex_lock(&g_pub.lock);
    double deadline = now() + 10;
    if (MQTTAsync_connect(cli, &o) == MQTTASYNC_SUCCESS)
        while (!g_pub.connected && !g_pub.conn_failed && pub_wait(deadline))
            ;
    bool up = g_pub.connected;
    pthread_mutex_unlock(&g_pub.lock);
    if (!up) {
        fprintf(stderr, "publisher: cannot connect to %s\n", uri);
        return 1;
    }
    double t0 = now();
    for (long i = 0; i < n; i++) {
        char buf[256], plant[16], topic[64];
        int len = line(buf, sizeof buf, (uint64_t)i, plant);
        snprintf(topic, sizeof topic, "plants/%s/telemetry", plant);
        pthread_mutex_lock(&g_pub.lock);
        deadline = now() + STALL_S;
        while (g_pub.outstanding >= PUB_WINDOW && pub_wait(deadline))
            ;
        bool stuck = g_pub.outstanding >= PUB_WINDOW;
        g_pub.outstanding++;
        pthread_mutex_unlock(&g_pub.lock);
        if (stuck) {
            fprintf(stderr, "publisher: no acknowledgement for %.0f s\n", STALL_S);
            return 1;
        }
        MQTTAsync_message m = MQTTAsync_message_initializer;
        m.payload = buf;
        m.payloadlen = len;
        m.qos = qos;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.onSuccess = pub_ok;
        ro.onFailure = pub_fail;
        int rc;
        while ((rc = MQTTAsync_sendMessage(cli, topic, &m, &ro)) == MQTTASYNC_MAX_BUFFERED_MESSAGES)
            sleep_s(0.001);
        if (rc != MQTTASYNC_SUCCESS) {
            fprintf(stderr, "publisher: publish failed: %s\n", MQTTAsync_strerror(rc));
            return 1;
        }
    }
    pthread_mutex_lock(&g_pub.lock);
    deadline = now() + 60;
    while (g_pub.done < n && pub_wait(deadline))
        ;
    long done = g_pub.done, failed = g_pub.failed;
    pthread_mutex_unlock(&g_pub.lock);
    double secs = now() - t0;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    MQTTAsync_disconnect(cli, &d);
    sleep_s(0.1);
    MQTTAsync_destroy(&cli);
    if (done < n || failed) {
        fprintf(stderr, "publisher: %ld of %ld publishes completed, %ld failed\n", done, n, failed);
        return 1;
    }
    printf("%ld %.6f\n", n, secs);
    return 0;
}

struct publisher {
    pid_t pid;
    int out;        /* its stdout */
};

static int publisher_spawn(struct publisher *p, int qos, uint64_t n)
{
    char exe[1024], port[16], q[8], cnt[32], ts[32];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return -1;
    exe[len] = 0;
    snprintf(port, sizeof port, "%d", g_mosq_port);
    snprintf(q, sizeof q, "%d", qos);
    snprintf(cnt, sizeof cnt, "%llu", (unsigned long long)n);
    snprintf(ts, sizeof ts, "%lld", g_ts);
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {exe, "--publisher", port, q, cnt, ts, NULL};
    int rc = posix_spawn(&p->pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        p->pid = 0;
        return -1;
    }
    p->out = fds[0];
    return 0;
}

/* Wait for the publisher (at most @p wait_s); @returns its rate in msgs/s, or 0 if it failed. */
static double publisher_reap(struct publisher *p, double wait_s)
{
    int st = -1;
    double deadline = now() + wait_s;
    while (p->pid > 0 && waitpid(p->pid, &st, WNOHANG) == 0) {
        if (now() > deadline) {
            stop_child(&p->pid);
            st = -1;
            break;
        }
        sleep_s(0.01);
    }
    p->pid = 0;
    char buf[128] = "";
    ssize_t k = read(p->out, buf, sizeof buf - 1);
    close(p->out);
    long n = 0;
    double secs = 0;
    if (k <= 0 || st != 0 || sscanf(buf, "%ld %lf", &n, &secs) != 2 || secs <= 0)
        return 0;
    return (double)n / secs;
}

/* ---- the bare subscriber ----------------------------------------------------------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic uint64_t got;
    uint64_t want;
    double first, last, cpu_first, cpu_last;
    bool connected, subscribed, failed, disconnected, done;
} g_sub = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void sub_flag(bool *flag)
{
    pthread_mutex_lock(&g_sub.lock);
    *flag = true;
    pthread_cond_broadcast(&g_sub.cond);
    pthread_mutex_unlock(&g_sub.lock);
}

static void sub_connected(void *ctx, MQTTAsync_successData5 *d)
{
    (void)ctx, (void)d;
    sub_flag(&g_sub.connected);
}

static void sub_subscribed(void *ctx, MQTTAsync_successData5 *d)
{
    (void)ctx;
    if (d && d->reasonCode >= 0x80)
        sub_flag(&g_sub.failed);
    else
        sub_flag(&g_sub.subscribed);
}

static void sub_failed(void *ctx, MQTTAsync_failureData5 *d)
{
    (void)ctx, (void)d;
    sub_flag(&g_sub.failed);
}

static void sub_disconnected(void *ctx, MQTTAsync_successData5 *d)
{
    (void)ctx, (void)d;
    sub_flag(&g_sub.disconnected);
}

static int sub_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    (void)ctx, (void)topic_len;
    uint64_t k = atomic_fetch_add(&g_sub.got, 1) + 1;
    g_touch += (uint64_t)m->payloadlen + (m->payloadlen ? ((const unsigned char *)m->payload)[0] : 0);
    if (k == 1) {
        g_sub.first = now();
        g_sub.cpu_first = cpu();
    }
    if (k == g_sub.want) {
        g_sub.last = now();
        g_sub.cpu_last = cpu();
        sub_flag(&g_sub.done); /* wakes the waiter */
    }
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* Wait on g_sub.cond (held) until @p deadline. @returns false on timeout. */
static bool sub_wait(double deadline)
{
    double left = deadline - now();
    if (left <= 0)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)left;
    ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_sub.cond, &g_sub.lock, &ts);
    return true;
}

/* Connect (clean or a persistent session under @p id) and, if @p subscribe, subscribe. */
static MQTTAsync sub_connect(const char *id, int qos, bool clean, bool subscribe)
{
    char uri[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", g_mosq_port);
    MQTTAsync cli;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_5;
    if (MQTTAsync_createWithOptions(&cli, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != MQTTASYNC_SUCCESS)
        return NULL;
    MQTTAsync_setCallbacks(cli, NULL, NULL, sub_arrived, NULL);
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
    MQTTProperties props = MQTTProperties_initializer;
    o.cleanstart = clean;
    if (!clean) {
        MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
        p.value.integer4 = 3600;
        MQTTProperties_add(&props, &p);
        o.connectProperties = &props;
    }
    o.keepAliveInterval = 60;
    o.onSuccess5 = sub_connected;
    o.onFailure5 = sub_failed;
    pthread_mutex_lock(&g_sub.lock);
    g_sub.connected = g_sub.subscribed = g_sub.failed = false;
    pthread_mutex_unlock(&g_sub.lock);
    int rc = MQTTAsync_connect(cli, &o);
    MQTTProperties_free(&props);
    bool ok = rc == MQTTASYNC_SUCCESS;
    double deadline = now() + 10;
    pthread_mutex_lock(&g_sub.lock);
    while (ok && !g_sub.connected && !g_sub.failed && sub_wait(deadline))
        ;
    ok = ok && g_sub.connected;
    pthread_mutex_unlock(&g_sub.lock);
    if (ok && subscribe) {
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.onSuccess5 = sub_subscribed;
        ro.onFailure5 = sub_failed;
        ok = MQTTAsync_subscribe(cli, "plants/+/telemetry", qos, &ro) == MQTTASYNC_SUCCESS;
        pthread_mutex_lock(&g_sub.lock);
        while (ok && !g_sub.subscribed && !g_sub.failed && sub_wait(deadline))
            ;
        ok = ok && g_sub.subscribed;
        pthread_mutex_unlock(&g_sub.lock);
    }
    if (!ok) {
        MQTTAsync_destroy(&cli);
        return NULL;
    }
    return cli;
}

static void sub_close(MQTTAsync *cli)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    d.timeout = 1000;
    d.onSuccess5 = sub_disconnected;
    pthread_mutex_lock(&g_sub.lock);
    g_sub.disconnected = false;
    pthread_mutex_unlock(&g_sub.lock);
    if (MQTTAsync_disconnect(*cli, &d) == MQTTASYNC_SUCCESS) {
        double deadline = now() + 3;
        pthread_mutex_lock(&g_sub.lock);
        while (!g_sub.disconnected && sub_wait(deadline))
            ;
        pthread_mutex_unlock(&g_sub.lock);
    }
    MQTTAsync_destroy(cli);
}

/* Wait until the bare subscriber has @p want messages or stalls. @returns true when it has them. */
static bool sub_wait_all(uint64_t want)
{
    double progress = now();
    uint64_t seen = 0;
    pthread_mutex_lock(&g_sub.lock);
    while (atomic_load(&g_sub.got) < want) {
        uint64_t g = atomic_load(&g_sub.got);
        if (g != seen) {
            seen = g;
            progress = now();
        } else if (now() - progress > (g ? STALL_S : FIRST_S)) {
            break;
        }
        sub_wait(now() + 0.1);
    }
    bool all = atomic_load(&g_sub.got) >= want;
    pthread_mutex_unlock(&g_sub.lock);
    return all;
}

static void sub_reset(uint64_t want)
{
    pthread_mutex_lock(&g_sub.lock);
    atomic_store(&g_sub.got, 0);
    g_sub.want = want;
    g_sub.first = g_sub.last = 0;
    g_sub.done = false;
    pthread_mutex_unlock(&g_sub.lock);
}

/* ---- the MQTT measurements --------------------------------------------------------- */

/* Live: the bare subscriber receives N while the publisher publishes them. */
static void mqtt_bare_live(int qos, uint64_t n, struct result *r, struct result *pub)
{
    char id[64];
    snprintf(id, sizeof id, "bench-bare-%d", (int)getpid());
    sub_reset(n);
    MQTTAsync cli = sub_connect(id, qos, true, true);
    if (!cli) {
        fprintf(stderr, "bench_ingest: %s: cannot connect and subscribe\n", r->label);
        r->failed++;
        return;
    }
    struct publisher p;
    if (publisher_spawn(&p, qos, n) < 0) {
        fprintf(stderr, "bench_ingest: cannot start the publisher\n");
        sub_close(&cli);
        r->failed++;
        return;
    }
    bool all = sub_wait_all(n);
    double prate = publisher_reap(&p, all ? 30 : 1);
    sub_close(&cli);
    if (prate > 0)
        record(pub, n, (double)n / prate, 0);
    if (!all) {
        fprintf(stderr, "bench_ingest: %s: only %llu of %llu messages arrived\n", r->label,
                (unsigned long long)atomic_load(&g_sub.got), (unsigned long long)n);
        r->failed++;
        return;
    }
    record(r, n, g_sub.last - g_sub.first, g_sub.cpu_last - g_sub.cpu_first);
}

/* Live: vigil receives N while the publisher publishes them. */
static void mqtt_vigil_live(int qos, uint64_t n, struct result *r, struct result *pub)
{
    char uri[256];
    snprintf(uri, sizeof uri, "mqtt://127.0.0.1:%d/plants/+/telemetry?qos=%d&plant_level=2", g_mosq_port, qos);
    struct vg_source_handle in;
    struct vg_error err = {0};
    if (vg_source_open(uri, &in, &err) < 0) {
        fprintf(stderr, "bench_ingest: %s: %s\n", uri, err.msg);
        r->failed++;
        return;
    }
    struct publisher p;
    if (publisher_spawn(&p, qos, n) < 0) {
        fprintf(stderr, "bench_ingest: cannot start the publisher\n");
        vg_source_close(&in);
        r->failed++;
        return;
    }
    int rc = run_vigil(&in, n, 1, 0, 0, r);
    double prate = publisher_reap(&p, rc == 0 ? 30 : 1);
    vg_source_close(&in);
    if (prate > 0)
        record(pub, n, (double)n / prate, 0);
}

/* Publish N at QoS 1 into the queue of an offline persistent session; @returns false if that failed. */
static bool fill_backlog(uint64_t n)
{
    struct publisher p;
    if (publisher_spawn(&p, 1, n) < 0)
        return false;
    return publisher_reap(&p, 120) > 0;
}

/* Backlog: a persistent session subscribes and leaves, N are published, then it drains them. */
static void mqtt_bare_backlog(uint64_t n, int run, struct result *r)
{
    char id[64];
    snprintf(id, sizeof id, "bench-bare-backlog-%d-%d", (int)getpid(), run);
    sub_reset(n);
    MQTTAsync cli = sub_connect(id, 1, false, true);
    if (!cli) {
        r->failed++;
        return;
    }
    sub_close(&cli);
    if (!fill_backlog(n)) {
        fprintf(stderr, "bench_ingest: the publisher failed\n");
        r->failed++;
        return;
    }
    sub_reset(n);
    double t0 = now(), cpu0 = cpu();
    cli = sub_connect(id, 1, false, false);
    if (!cli) {
        r->failed++;
        return;
    }
    bool all = sub_wait_all(n);
    sub_close(&cli);
    if (!all) {
        fprintf(stderr, "bench_ingest: %s: only %llu of %llu messages arrived\n", r->label,
                (unsigned long long)atomic_load(&g_sub.got), (unsigned long long)n);
        r->failed++;
        return;
    }
    record(r, n, g_sub.last - t0, g_sub.cpu_last - cpu0);
}

static void mqtt_vigil_backlog(uint64_t n, int run, struct result *r)
{
    char uri[256];
    snprintf(uri, sizeof uri, "mqtt://127.0.0.1:%d/plants/+/telemetry?qos=1&plant_level=2&clean=false&"
             "client_id=bench-vigil-backlog-%d-%d&session_expiry=1h", g_mosq_port, (int)getpid(), run);
    struct vg_source_handle in;
    struct vg_error err = {0};
    if (vg_source_open(uri, &in, &err) < 0) {
        fprintf(stderr, "bench_ingest: %s: %s\n", uri, err.msg);
        r->failed++;
        return;
    }
    vg_source_close(&in);
    if (!fill_backlog(n)) {
        fprintf(stderr, "bench_ingest: the publisher failed\n");
        r->failed++;
        return;
    }
    double t0 = now(), cpu0 = cpu();
    if (vg_source_open(uri, &in, &err) < 0) {
        fprintf(stderr, "bench_ingest: %s: %s\n", uri, err.msg);
        r->failed++;
        return;
    }
    run_vigil(&in, n, 1, t0, cpu0, r);
    vg_source_close(&in);
}

static void bench_mqtt(uint64_t n0, uint64_t n1)
{
    char why[512];
    if (mosquitto_start(why, sizeof why) < 0) {
        printf("mqtt: skipped: %s\n", why);
        mosquitto_stop();
        return;
    }
    printf("mqtt: mosquitto on 127.0.0.1:%d (max_queued_messages 0, max_inflight_messages 0); publisher: "
           "Paho async in a child process, maxInflight %d; subscribers on plants/+/telemetry, MQTT 5, "
           "in this process; median of %d runs\n", g_mosq_port, PUB_WINDOW, g_repeat);
    struct result rows[3][3];
    memset(rows, 0, sizeof rows);
    for (int qos = 0; qos <= 1; qos++) {
        uint64_t n = qos ? n1 : n0;
        struct result *pub = rows[qos], *bare = rows[qos] + 1, *vig = rows[qos] + 2;
        snprintf(pub->label, sizeof pub->label, "mqtt qos%d live, the publisher alone:", qos);
        snprintf(bare->label, sizeof bare->label, "mqtt qos%d live, bare Paho subscriber:", qos);
        snprintf(vig->label, sizeof vig->label, "mqtt qos%d live, vigil reader + 1 worker:", qos);
        vig->bare = bare;
        printf("mqtt qos%d live: %llu messages\n", qos, (unsigned long long)n);
        for (int run = 0; run < g_repeat; run++) {
            mqtt_bare_live(qos, n, bare, pub);
            mqtt_vigil_live(qos, n, vig, pub);
        }
        print_row(bare);
        print_row(vig);
        printf("  (the publisher ran at %.4f M msgs/s, median of its %d runs: it is the bottleneck on 2 shared "
               "cores, so the rates above are mostly its; CPU/msg is this process's only)\n",
               rate_of(pub) / 1e6, pub->runs);
    }
    struct result *bare = rows[2] + 1, *vig = rows[2] + 2;
    snprintf(bare->label, sizeof bare->label, "mqtt qos1 backlog, bare Paho subscriber:");
    snprintf(vig->label, sizeof vig->label, "mqtt qos1 backlog, vigil reader + 1 worker:");
    vig->bare = bare;
    printf("mqtt qos1 backlog: %llu messages queued by the broker for an offline persistent session, then "
           "drained (timed from the connect; no publisher running)\n", (unsigned long long)n1);
    for (int run = 0; run < g_repeat; run++) {
        mqtt_bare_backlog(n1, run, bare);
        mqtt_vigil_backlog(n1, run, vig);
    }
    print_row(bare);
    print_row(vig);
    mosquitto_stop();
}

/* ======================================================================== */

static void usage(void)
{
    fprintf(stderr, "usage: bench_ingest [-n N] [--repeat R] [--kafka-only | --mqtt-only] [--kafka-queue N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--publisher"))
        return publisher_main(atoi(argv[2]), atoi(argv[3]), atol(argv[4]), atoll(argv[5]));
    uint64_t n = 0;
    bool kafka = true, mqtt = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            g_repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kafka-queue") && i + 1 < argc)
            snprintf(g_queue, sizeof g_queue, "%llu", strtoull(argv[++i], NULL, 10));
        else if (!strcmp(argv[i], "--kafka-only"))
            mqtt = false;
        else if (!strcmp(argv[i], "--mqtt-only"))
            kafka = false;
        else
            usage();
    }
    if (!kafka && !mqtt)
        usage();
    if (g_repeat < 1 || g_repeat > MAX_REPEAT)
        g_repeat = 3;
    if (n && n < 100)
        n = 100;
    signal(SIGPIPE, SIG_IGN);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    g_ts = (long long)wall.tv_sec * 1000 + 3600 * 1000;
    char dir[] = "/tmp/vigil-bench-ingest-XXXXXX";
    if (!mkdtemp(dir) || load_rules(dir) < 0) {
        fprintf(stderr, "bench_ingest: cannot set up the rules\n");
        return 1;
    }
    rmdir(dir);
    printf("bench_ingest: vigil's ingest against a bare client reading the same messages (%u threshold rules, "
           "%d plants x 10 devices x 4 metrics; alerts and dead letters to /dev/null)\n", g_rs->n_rules, PLANTS);
    double t0 = now();
    if (kafka)
        bench_kafka(n ? n : 1000000);
    if (mqtt)
        bench_mqtt(n ? n : 200000, n ? n / 4 : 50000);
    printf("bench_ingest: %.0f s in all%s\n", now() - t0, g_mismatch ? "; MISMATCH: see above" : "");
    vg_ruleset_destroy(g_rs);
    vg_registry_destroy(g_reg);
    return g_mismatch ? 1 : 0;
}
