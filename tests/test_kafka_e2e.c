/*
 * test_kafka_e2e.c: two vigil processes in one Kafka consumer group, against
 * librdkafka's mock cluster (created in this process; the instances reach it
 * over TCP with the real protocol), give the alerts, SMS requests and dead
 * letters of one vigil reading the same telemetry from a file.
 * Owns: the end-to-end contract of `--input kafka://…?group=` with Kafka
 * outputs. "group": every message of the input topic read once, by one
 * instance (their message counts add up to what was produced, and each read
 * some); every alert and SMS request of the reference delivered exactly once
 * and byte for byte, keyed by its subject (the plant; the region of a group
 * alert); the dead letters with their reason, detail and original bytes, and
 * a source naming partition and offset (schemas/dead_letter.schema.json);
 * both instances exiting 0 on SIGTERM. "failover" (`--state redis://…`): an
 * instance killed with SIGKILL and started again, with the other taking its
 * partitions over meanwhile, loses no alert or SMS request and invents none
 * (repeats allowed, same bytes; docs/state.md).
 * Must never: leave the mock cluster, a vigil or a redis-server running (the
 * teardown kills what a failed assertion left; vigils also die with the
 * test process); wait without a bound; assert on timings (the machine is
 * shared).
 *
 * DESIGN
 * The reference is `vigil run` on the file, in event-time order, with no
 * --lateness: nothing is held or reordered. The Kafka runs need a lateness
 * (below), which by docs/semantics.md delays alerts but does not change them.
 * Event time across partitions: an instance reads two partitions whose
 * messages interleave in any order, and its clock is the largest event time
 * it saw less --lateness, so a message of one partition could be `late`
 * behind the other. The telemetry therefore goes out in rounds of ROUND_MS
 * of event time with --lateness longer than a round: each round ends with
 * one bad line per partition (a marker), and the next round is produced only
 * once the four markers came back as dead letters, i.e. the round has been
 * read. Nothing is then late; a round leaves the reorder buffer as the next
 * one comes, the last one with a heartbeat of every plant (a metric no rule
 * reads) past the lateness. The hour ends quiet, so every alert has resolved
 * before the end and the two runs' different final clocks (the reference's
 * is the heartbeat's time, the Kafka runs' that less the lateness) cannot
 * differ in escalation steps. Event times are in the year 2100, so the live
 * clock's wall-time advance when the input is idle never reaches them, and
 * --start gives every run the same clock start.
 * Who read what: the instances get the bootstrap list in opposite orders,
 * so a dead letter's `source` (kafka://HOSTS/telemetry…) names the instance
 * that read the bad line. Before any telemetry, probes (bad lines, one per
 * partition) go out until a round of them comes back read two and two: the
 * group is up and stable. Each region's plants share a partition, hence an
 * instance, as group (region) rules require (docs/state.md, Limits).
 * The mock: a group join takes about 3 s, a member joining a non-empty group
 * waits session.timeout.ms - 1 s (so the instances set 3.5 s, with a 300 ms
 * heartbeat), and it keeps 5 MiB per partition (the telemetry is about
 * 0.4 MiB a partition). VG_E2E_KEEP=DIR keeps the input, the reference, each
 * instance's stderr and what arrived on Kafka in DIR.
 */
#include "vgtest.h"
#include "servers.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPART 4                       /* telemetry partitions */
#define NPLANTS 16                    /* NPLANTS / NPART per partition */
#define NDEV 3                        /* devices per plant */
#define ROUNDS 4
#define STEPS 90                      /* samples per device per round */
#define NSTEPS (ROUNDS * STEPS)
#define STEP_MS 10000LL
#define ROUND_MS (STEPS * STEP_MS)    /* 15 min of event time */
#define LATENESS_MS (16 * 60000LL)    /* more than a round */
#define LATENESS "16m"
#define T0 4102416000000LL            /* 2100-01-01T00:00:00+08:00 */
#define HEARTBEAT_TS (T0 + NSTEPS * STEP_MS + LATENESS_MS + 60000)
#define QUIET_END 20                  /* steps at the end with every reading low */
#define WAIT_MS 60000                 /* the bound on any one wait for Kafka */

/* ---- small helpers ------------------------------------------------------------ */

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
    static char slots[8][2048];
    static int slot;
    char *out = slots[slot++ % 8];
    va_list ap;
    va_start(ap, f);
    vsnprintf(out, 2048, f, ap);
    va_end(ap);
    return out;
}

/* A growing buffer of bytes. */
struct buf {
    char *p;
    size_t n, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* Lines (without their '\n'): strings we own. */
struct lines {
    char **v;
    size_t n, cap;
};

static void lines_add(struct lines *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        ck_assert_ptr_nonnull(l->v);
    }
    char *c = malloc(n + 1);
    ck_assert_ptr_nonnull(c);
    memcpy(c, s, n);
    c[n] = 0;
    l->v[l->n++] = c;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static struct lines read_lines(const char *path)
{
    struct lines l = {0};
    size_t n;
    char *text = vgt_read(path, &n);
    ck_assert_msg(text, "cannot read %s", path);
    for (char *p = text; p < text + n;) {
        char *e = memchr(p, '\n', (size_t)(text + n - p));
        ck_assert_msg(e, "%s: the last line has no newline", path);
        lines_add(&l, p, (size_t)(e - p));
        p = e + 1;
    }
    free(text);
    return l;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * @p got equals @p want as multisets (both are sorted here); @p what names
 * them. Fails with the first line one has more often than the other.
 */
static void same_multiset(struct lines *want, struct lines *got, const char *what)
{
    qsort(want->v, want->n, sizeof *want->v, cmp_str);
    qsort(got->v, got->n, sizeof *got->v, cmp_str);
    size_t i = 0, j = 0;
    while (i < want->n || j < got->n) {
        int c = i == want->n ? 1 : j == got->n ? -1 : strcmp(want->v[i], got->v[j]);
        ck_assert_msg(c == 0, "%s: %zu expected, %zu arrived; %s: %s", what, want->n, got->n,
                      c < 0 ? "missing (or fewer times)" : "unexpected (or more times)",
                      c < 0 ? want->v[i] : got->v[j]);
        i++;
        j++;
    }
}

/* The string value of "key" in a flat JSON object (no escapes in it), into @p out. */
static bool json_str(const char *json, const char *key, char *out, size_t cap)
{
    const char *p = strstr(json, fmt("\"%s\":\"", key));
    if (!p)
        return false;
    p += strlen(key) + 4;
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return true;
}

/*
 * A dead letter without `source` and `at` (the file run names a path and
 * line, Kafka a topic and offset; `at` is wall time): reason, detail, len,
 * line and line_base64 stay. vg_deadletter_format writes source, then at,
 * then len.
 */
static char *dead_core(const char *json)
{
    const char *s = strstr(json, ",\"source\":\"");
    const char *l = s ? strstr(s, ",\"len\":") : NULL;
    ck_assert_msg(s && l, "not a dead letter: %s", json);
    size_t n = strlen(json);
    char *out = malloc(n + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, json, (size_t)(s - json));
    memcpy(out + (s - json), l, n - (size_t)(l - json) + 1);
    return out;
}

/* ---- the mock cluster ------------------------------------------------------------ */

static rd_kafka_t *helper;              /* owns the mock cluster */
static rd_kafka_mock_cluster_t *mock;
static char boot_a[512], boot_b[512];   /* the bootstrap list, and the same reversed */

static void mock_up(void)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    helper = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    ck_assert_msg(helper, "helper client: %s", why);
    mock = rd_kafka_mock_cluster_new(helper, 3);
    ck_assert_msg(mock, "mock cluster");
    snprintf(boot_a, sizeof boot_a, "%s", rd_kafka_mock_cluster_bootstraps(mock));
    /* B lists the same brokers backwards: its dead letters name another source */
    char tmp[512], *parts[8];
    int n = 0;
    snprintf(tmp, sizeof tmp, "%s", boot_a);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t && n < 8; t = strtok_r(NULL, ",", &save))
        parts[n++] = t;
    ck_assert_int_ge(n, 2);
    boot_b[0] = 0;
    for (int i = n - 1; i >= 0; i--)
        snprintf(boot_b + strlen(boot_b), sizeof boot_b - strlen(boot_b), "%s%s", parts[i], i ? "," : "");
    ck_assert_str_ne(boot_a, boot_b);
    static const struct {
        const char *name;
        int partitions;
    } topics[] = {{"telemetry", NPART}, {"alerts", 2}, {"sms", 2}, {"dead", 2}};
    for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
        ck_assert_int_eq(rd_kafka_mock_topic_create(mock, topics[i].name, topics[i].partitions, 1),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
}

static rd_kafka_conf_t *plain_conf(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", boot_a, NULL, 0), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    return conf;
}

/* ---- plants, rules, telemetry ---------------------------------------------------- */

struct plant {
    char id[16];
    int part;            /* its telemetry partition (murmur2 of the id, as producers key it) */
    char region[16];     /* one region per partition */
};
static struct plant plants[NPLANTS];

/* Plants P3205850NN, NPLANTS / NPART on each partition, by the Java client's partitioner. */
static void pick_plants(void)
{
    int per[NPART] = {0}, n = 0;
    for (int i = 1; n < NPLANTS && i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof id, "P320585%03d", i);
        int32_t p = rd_kafka_msg_partitioner_murmur2(NULL, id, strlen(id), NPART, NULL, NULL);
        ck_assert(p >= 0 && p < NPART);
        if (per[p] == NPLANTS / NPART)
            continue;
        per[p]++;
        struct plant *pl = &plants[n++];
        memset(pl, 0, sizeof *pl);
        snprintf(pl->id, sizeof pl->id, "%s", id);
        pl->part = p;
        snprintf(pl->region, sizeof pl->region, "32058510%d", p + 1);
    }
    ck_assert_int_eq(n, NPLANTS);
}

/* The first plant on partition @p p: the key of that partition's markers and probes. */
static const struct plant *plant_on(int p)
{
    for (int i = 0; i < NPLANTS; i++)
        if (plants[i].part == p)
            return &plants[i];
    ck_abort_msg("no plant on partition %d", p);
    return NULL;
}

static const char rules_yaml[] =
    "version: 1\n"
    "rules:\n"
    "  - id: nh3_over_limit\n"
    "    title: 涉氨制冷车间氨气浓度超限\n"
    "    kind: alarm\n"
    "    where: { industry: ammonia_refrigeration }\n"
    "    metric: nh3_ppm\n"
    "    for: 30s\n"
    "    grades:\n"
    "      - { level: yellow, when: value > 25 }\n"
    "      - { level: orange, when: value > 40 }\n"
    "      - { level: red,    when: value > 100, for: 0s }\n"
    "    clear: value < 20\n"
    "    clear_for: 60s\n"
    "    notify:\n"
    "      - { to: [safety_officer], min_level: yellow, throttle: 10m, on_resolve: true,\n"
    "          template: \"【安全预警】{plant_name}{device}氨气浓度{value}ppm，请立即处置。\" }\n"
    "      - { to: [township_officer], min_level: orange, unacked_for: 10m,\n"
    "          template: \"【安全预警】{plant_name}{device}氨气{level_cn}预警10分钟未处置。\" }\n"
    "  - id: nh3_region_cap\n"
    "    title: 辖区内多家企业氨气浓度超限\n"
    "    kind: warning\n"
    "    group: { by: region, rule: nh3_over_limit, min_level: orange, count: plants }\n"
    "    grades: [ { level: red, when: count > 1 } ]\n"
    "    notify:\n"
    "      - { to: [region_supervisor], template: \"【安全预警】{region_name}已有{value}家企业氨气浓度超限。\" }\n";

static void write_registry(const char *name)
{
    struct buf b = {0};
    const char *head = "version: 1\nregions:\n";
    buf_add(&b, head, strlen(head));
    for (int p = 0; p < NPART; p++) {
        const char *r = fmt("  - { code: \"32058510%d\", name: 第%d镇, contacts: { township_officer: "
                            "[\"+86138000001%02d\"], region_supervisor: [\"+86138000002%02d\"] } }\n",
                            p + 1, p + 1, p, p);
        buf_add(&b, r, strlen(r));
    }
    buf_add(&b, "plants:\n", 8);
    for (int i = 0; i < NPLANTS; i++) {
        const char *r = fmt("  - { id: %s, name: 某冷库%02d有限公司, region: \"%s\", industries: "
                            "[ammonia_refrigeration], contacts: { safety_officer: [\"+86139000000%02d\"] } }\n",
                            plants[i].id, i, plants[i].region, i);
        buf_add(&b, r, strlen(r));
    }
    vgt_write(name, b.p);
    free(b.p);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/*
 * One device's NH3 readings in tenths of ppm, NSTEPS of them: quiet stretches
 * (5-15 ppm) and episodes: yellow (28-34), or orange (45-76) and red
 * (105-151) reached after a yellow climb, short ones that never hold for 30 s
 * and long ones that outlast the 10 min escalation step, each followed by a
 * few readings in the hysteresis band (20.5-24.4) before it clears.
 */
static void series(int plant, int dev, int *tenths)
{
    uint32_t s = (uint32_t)(plant * 31 + dev * 7 + 1) * 2654435761u;
    int t = 0;
    while (t < NSTEPS) {
        int quiet = 8 + (int)(lcg(&s) % 40);
        for (int k = 0; k < quiet && t < NSTEPS; k++)
            tenths[t++] = 50 + (int)(lcg(&s) % 100);
        int len = 2 + (int)(lcg(&s) % 80), cls = (int)(lcg(&s) % 10);
        int peak = cls < 4 ? 280 : cls < 8 ? 450 + (int)(lcg(&s) % 250) : 1050 + (int)(lcg(&s) % 400);
        for (int k = 0; k < len && t < NSTEPS; k++)
            tenths[t++] = (cls >= 4 && k < len / 3 ? 280 : peak) + (int)(lcg(&s) % 60);
        int tail = (int)(lcg(&s) % 5);
        for (int k = 0; k < tail && t < NSTEPS; k++)
            tenths[t++] = 205 + (int)(lcg(&s) % 40);
    }
    /* the hour ends quiet: every alert resolves, so no escalation step is left pending */
    for (t = NSTEPS - QUIET_END; t < NSTEPS; t++)
        tenths[t] = 50 + (int)(lcg(&s) % 100);
}

/* One telemetry message: its bytes and the plant that keys it. */
struct tmsg {
    char *text;
    size_t len;
    int plant;
};

struct tlist {
    struct tmsg *v;
    size_t n, cap;
};

static void tlist_add(struct tlist *l, int plant, const char *text, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        ck_assert_ptr_nonnull(l->v);
    }
    char *c = malloc(len + 1);
    ck_assert_ptr_nonnull(c);
    memcpy(c, text, len);
    c[len] = 0;
    l->v[l->n++] = (struct tmsg){c, len, plant};
}

static void tlist_free(struct tlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].text);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* The input, as produced: the rounds (data, then NPART markers), then the heartbeats. */
static struct tlist round_msgs[ROUNDS], heartbeats;
static size_t n_input;   /* messages in all of them */

/* Index of the plant with id @p id (in a marker or probe), or -1. */
static int plant_index(const struct plant *pl)
{
    return (int)(pl - plants);
}

/*
 * The bad line ending round @p r on partition @p p: a different rejection
 * each time (one with bytes that are not UTF-8); "BAD-r-p" tells them apart.
 */
static int marker(char *out, size_t cap, int r, int p)
{
    const char *id = plant_on(p)->id;
    long long ts = T0 + (long long)(r + 1) * ROUND_MS - STEP_MS;
    switch ((r * NPART + p) % 6) {
    case 0: /* cut short */
        return snprintf(out, cap, "{\"plant\":\"%s\",\"device\":\"BAD-%d-%d\",\"metric\":\"nh3_ppm\",\"value\":3",
                        id, r, p);
    case 1:
        return snprintf(out, cap, "{\"plant\":\"%s\",\"device\":\"BAD-%d-%d\",\"metric\":\"nh3_ppm\","
                        "\"value\":\"high\",\"ts\":%lld}", id, r, p, ts);
    case 2:
        return snprintf(out, cap, "{\"plant\":\"%s\",\"device\":\"BAD-%d-%d\",\"metric\":\"nh3_ppm\","
                        "\"value\":1e999,\"ts\":%lld}", id, r, p, ts);
    case 3:
        return snprintf(out, cap, "{\"plant\":\"%s\",\"device\":\"BAD-%d-%d\",\"metric\":\"nh3_ppm\","
                        "\"value\":30,\"ts\":\"2100-01-01 00:00:00\"}", id, r, p);
    case 4:
        return snprintf(out, cap, "[\"%s\",\"BAD-%d-%d\",30]", id, r, p);
    default: /* a device id that is not UTF-8 */
        return snprintf(out, cap, "{\"plant\":\"%s\",\"device\":\"BAD-%d-%d\xff\xfe\",\"metric\":\"nh3_ppm\","
                        "\"value\":30,\"ts\":%lld}", id, r, p, ts);
    }
}

/* Write the rules, the registry and the whole input as one NDJSON file; fill round_msgs. */
static void make_input(void)
{
    pick_plants();
    vgt_write("rules.yaml", rules_yaml);
    write_registry("registry.yaml");
    static int vals[NPLANTS][NDEV][NSTEPS];
    for (int i = 0; i < NPLANTS; i++)
        for (int d = 0; d < NDEV; d++)
            series(i, d, vals[i][d]);
    struct buf file = {0};
    char line[512];
    n_input = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int t = r * STEPS; t < (r + 1) * STEPS; t++)
            for (int i = 0; i < NPLANTS; i++)
                for (int d = 0; d < NDEV; d++) {
                    int v = vals[i][d][t];
                    int n = snprintf(line, sizeof line, "{\"plant\":\"%s\",\"device\":\"NH3-%02d\",\"metric\":"
                                     "\"nh3_ppm\",\"value\":%d.%d,\"ts\":%lld}", plants[i].id, d + 1, v / 10,
                                     v % 10, T0 + t * STEP_MS);
                    tlist_add(&round_msgs[r], i, line, (size_t)n);
                }
        for (int p = 0; p < NPART; p++) {
            int n = marker(line, sizeof line, r, p);
            tlist_add(&round_msgs[r], plant_index(plant_on(p)), line, (size_t)n);
        }
        for (size_t k = 0; k < round_msgs[r].n; k++) {
            buf_add(&file, round_msgs[r].v[k].text, round_msgs[r].v[k].len);
            buf_add(&file, "\n", 1);
        }
        n_input += round_msgs[r].n;
    }
    for (int i = 0; i < NPLANTS; i++) {
        int n = snprintf(line, sizeof line, "{\"plant\":\"%s\",\"device\":\"GW\",\"metric\":\"gateway_uptime_s\","
                         "\"value\":%d,\"ts\":%lld}", plants[i].id, 86400 + i, HEARTBEAT_TS);
        tlist_add(&heartbeats, i, line, (size_t)n);
        buf_add(&file, line, (size_t)n);
        buf_add(&file, "\n", 1);
    }
    n_input += heartbeats.n;
    vgt_write("input.ndjson", file.p);
    free(file.p);
}

/* ---- a plain producer: keyed by plant, murmur2_random as the adapter assumes -------- */

static rd_kafka_t *producer;
static int delivered, misplaced, failed;

static void produce_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    int plant = (int)(intptr_t)m->_private;
    if (m->err)
        failed++;
    else if (m->partition != plants[plant].part)
        misplaced++;
    else
        delivered++;
}

static void producer_up(void)
{
    char why[512];
    rd_kafka_conf_t *conf = plain_conf();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "partitioner", "murmur2_random", why, sizeof why), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, produce_dr);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    ck_assert_msg(producer, "%s", why);
}

/* Produce @p n messages of @p v to telemetry, in order, and wait until the brokers have them. */
static void produce(const struct tmsg *v, size_t n)
{
    delivered = misplaced = failed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = plants[v[i].plant].id;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("telemetry"), RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(v[i].text, v[i].len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)v[i].plant), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 10);
        ck_assert_msg(!e, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(producer, 0);
    }
    ck_assert_int_eq(rd_kafka_flush(producer, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(failed, 0);
    ck_assert_msg(misplaced == 0, "%d messages went to another partition than murmur2 of their plant", misplaced);
    ck_assert_int_eq(delivered, (int)n);
}

/* ---- a plain consumer of alerts, sms and dead ------------------------------------ */

struct rec {
    char *val;          /* NUL-terminated copy */
    char key[80];
    bool has_key;
};

struct recs {
    struct rec *v;
    size_t n, cap;
};

static rd_kafka_t *reader;
static struct recs got_alerts, got_sms, got_dead;

static void reader_up(void)
{
    char why[512];
    rd_kafka_conf_t *conf = plain_conf();
    rd_kafka_conf_set(conf, "group.id", "e2e-reader", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", NULL, 0);
    reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    ck_assert_msg(reader, "%s", why);
    rd_kafka_poll_set_consumer(reader);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(6);
    static const char *const outs[] = {"alerts", "sms", "dead"};
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 2; p++)
            rd_kafka_topic_partition_list_add(l, outs[t], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(reader, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
}

static void recs_free(struct recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].val);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* Take what the reader has for at most @p ms. */
static void pump(int ms)
{
    int64_t end = now_ms() + ms;
    do {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 20);
        if (!m)
            continue;
        if (m->err) {
            ck_assert_msg(m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF, "reading outputs: %s",
                          rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        const char *t = rd_kafka_topic_name(m->rkt);
        struct recs *r = !strcmp(t, "alerts") ? &got_alerts : !strcmp(t, "sms") ? &got_sms : &got_dead;
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 256;
            r->v = realloc(r->v, r->cap * sizeof *r->v);
            ck_assert_ptr_nonnull(r->v);
        }
        struct rec *x = &r->v[r->n++];
        memset(x, 0, sizeof *x);
        x->val = malloc(m->len + 1);
        ck_assert_ptr_nonnull(x->val);
        memcpy(x->val, m->payload, m->len);
        x->val[m->len] = 0;
        ck_assert_msg(strlen(x->val) == m->len, "a record on %s holds a NUL byte", t);
        x->has_key = m->key != NULL;
        ck_assert(m->key_len < sizeof x->key);
        if (m->key_len)
            memcpy(x->key, m->key, m->key_len);
        rd_kafka_message_destroy(m);
    } while (now_ms() < end);
}

/* Read until @p cond(@p ctx) holds or WAIT_MS passed; @returns whether it holds. */
static bool pump_until(bool (*cond)(const void *), const void *ctx)
{
    int64_t end = now_ms() + WAIT_MS;
    while (!cond(ctx) && now_ms() < end)
        pump(50);
    return cond(ctx);
}

/* Records on @p topic: the sum of its partitions' high watermarks (every topic starts empty). */
static int64_t on_topic(const char *topic)
{
    int64_t sum = 0;
    for (int p = 0; p < 2; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(reader, topic, p, &lo, &hi, 10000);
        ck_assert_msg(!e, "watermarks of %s: %s", topic, rd_kafka_err2str(e));
        sum += hi - lo;
    }
    return sum;
}

/* ---- the vigil instances -------------------------------------------------------------- */

struct vigil {
    char name[2];       /* "A" or "B" */
    const char *boot;
    pid_t pid;
    char err[600];      /* its stderr */
    int status;
};
static struct vigil inst[2];
static int run_tag;             /* names this test's stderr files */
static struct vgt_server redis;
static char state_uri[256];     /* --state, or "" */

static void vigil_start(struct vigil *v)
{
    char *dir = vgt_path("");
    snprintf(v->err, sizeof v->err, "%svigil-%d-%s.err", dir, run_tag, v->name);
    free(dir);
    const char *in = fmt("kafka://%s/telemetry?group=vigil-e2e&rdkafka.session.timeout.ms=3500"
                         "&rdkafka.heartbeat.interval.ms=300", v->boot);
    char a[600], s[600], d[600], in_c[900], start[32];
    snprintf(in_c, sizeof in_c, "%s", in);
    snprintf(a, sizeof a, "kafka://%s/alerts", v->boot);
    snprintf(s, sizeof s, "kafka://%s/sms", v->boot);
    snprintf(d, sizeof d, "kafka://%s/dead", v->boot);
    snprintf(start, sizeof start, "%lld", T0);
    char *rules = vgt_path("rules.yaml"), *reg = vgt_path("registry.yaml");
    const char *argv[32] = {"vigil", "run", "--rules", rules, "--registry", reg, "--input", in_c,
                            "--alerts", a, "--sms", s, "--dead-letter", d, "--threads", "2",
                            "--lateness", LATENESS, "--start", start, "--summary"};
    int argc = 21;
    if (*state_uri) {
        argv[argc++] = "--state";
        argv[argc++] = state_uri;
        argv[argc++] = "--checkpoint-interval";
        argv[argc++] = "200ms";
    }
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        if (getppid() != parent)
            _exit(127);
        int err = open(v->err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (err < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        execv(vgt_bin(), (char *const *)argv);
        _exit(127);
    }
    free(rules);
    free(reg);
    v->pid = pid;
}

/* Wait at most @p ms for @p v to exit; @returns whether it did (v->status set). */
static bool vigil_wait(struct vigil *v, int ms)
{
    int64_t end = now_ms() + ms;
    while (v->pid > 0) {
        int st;
        pid_t r = waitpid(v->pid, &st, WNOHANG);
        if (r == v->pid) {
            v->status = st;
            v->pid = 0;
            return true;
        }
        if (now_ms() >= end)
            return false;
        sleep_ms(20);
    }
    return true;
}

static void vigil_kill(struct vigil *v)
{
    if (v->pid > 0) {
        kill(v->pid, SIGKILL);
        waitpid(v->pid, &v->status, 0);
        v->pid = 0;
    }
}

/* The tail of an instance's stderr, for a failure message. */
static const char *err_tail(const struct vigil *v)
{
    static char out[2][1200];
    char *o = out[v->name[0] == 'B'];
    size_t n;
    char *text = vgt_read(v->err, &n);
    snprintf(o, sizeof out[0], "%s", !text ? "(none)" : n > 1100 ? text + n - 1100 : text);
    free(text);
    return o;
}

/* Still running? A vigil that exited early fails the test with its stderr. */
static void vigil_alive(struct vigil *v)
{
    ck_assert_msg(!vigil_wait(v, 0), "vigil %s exited early (status %d); its stderr ends:\n%s", v->name,
                  v->status, err_tail(v));
}

/* SIGTERM: it must finish as if its input had ended (vigil_expect_exit0 waits for it). */
static void vigil_stop(struct vigil *v)
{
    if (v->pid <= 0)
        return;
    kill(v->pid, SIGTERM);
}

/* A bounded wait for the exit; it must be 0. */
static void vigil_expect_exit0(struct vigil *v, int ms)
{
    bool done = vigil_wait(v, ms);
    ck_assert_msg(done, "vigil %s did not exit within %d ms of SIGTERM; its stderr ends:\n%s", v->name, ms,
                  err_tail(v));
    ck_assert_msg(WIFEXITED(v->status) && WEXITSTATUS(v->status) == 0,
                  "vigil %s: status %d (exit %d, signal %d); its stderr ends:\n%s", v->name, v->status,
                  WIFEXITED(v->status) ? WEXITSTATUS(v->status) : -1,
                  WIFSIGNALED(v->status) ? WTERMSIG(v->status) : 0, err_tail(v));
}

/* The sum of the "vigil: N messages" lines of an instance's stderr (one per run), and how many. */
static uint64_t messages_read(const struct vigil *v, int *runs)
{
    char *text = vgt_read(v->err, NULL);
    ck_assert_ptr_nonnull(text);
    uint64_t sum = 0;
    *runs = 0;
    for (char *p = text; p && *p;) {
        unsigned long long n;
        int end = 0;
        if (sscanf(p, "vigil: %llu messages,%n", &n, &end) == 1 && end > 0) {
            sum += n;
            ++*runs;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    free(text);
    return sum;
}

/* ---- who read what: dead letters name the instance ----------------------------- */

/* Which instance wrote dead letter @p json: 0 (A), 1 (B), or -1. */
static int dead_by(const char *json)
{
    for (int i = 0; i < 2; i++) {
        const char *pre = fmt("\"source\":\"kafka://%s/telemetry", inst[i].boot);
        const char *s = strstr(json, pre);
        if (s) {
            char next = s[strlen(pre)];
            if (next == '"' || next == ':' || next == '[' || next == '@')
                return i;
        }
    }
    return -1;
}

/* Probe @p k on partition @p p: found in dead letter @p json (its line is escaped JSON)? */
static bool is_probe(const char *json, int *k, int *p)
{
    const char *s = strstr(json, "\"line\":\"{\\\"e2e_probe\\\":");
    if (!s)
        return false;
    return sscanf(s, "\"line\":\"{\\\"e2e_probe\\\":%d,\\\"partition\\\":%d", k, p) == 2;
}

/* Marker of round @p r on partition @p p in dead letter @p json? */
static bool is_marker(const char *json, int *r, int *p)
{
    const char *s = strstr(json, "BAD-");
    return s && sscanf(s, "BAD-%d-%d", r, p) == 2;
}

static int owner[NPART];   /* the instance that reads each partition, once the group is stable */

static int probe_next;      /* probes are numbered across the test */

/*
 * Probes, one per partition, until a round of them is read two and two by
 * the instances (@p only < 0), or all by instance @p only. Sets owner[].
 * @returns the number of probe dead letters seen so far (a probe read before
 * a rebalance may be read again after it: the mock refuses the revoking
 * member's commit while the group joins).
 */
static size_t probe_until(int only, int64_t *took)
{
    int64_t t0 = now_ms();
    char line[128];
    for (;;) {
        ck_assert_msg(now_ms() - t0 < WAIT_MS, "the partitions were not %s within %d ms",
                      only < 0 ? "split two and two" : "all read by one instance", WAIT_MS);
        for (int i = 0; i < 2; i++)
            if (inst[i].pid > 0)
                vigil_alive(&inst[i]);
        int k = probe_next++;
        struct tmsg probes[NPART];
        for (int p = 0; p < NPART; p++) {
            int n = snprintf(line, sizeof line, "{\"e2e_probe\":%d,\"partition\":%d}", k, p);
            probes[p] = (struct tmsg){strdup(line), (size_t)n, plant_index(plant_on(p))};
        }
        produce(probes, NPART);
        for (int p = 0; p < NPART; p++)
            free(probes[p].text);
        /* wait for this probe round: which instance read each partition's probe */
        int by[NPART];
        int64_t end = now_ms() + 10000;
        for (;;) {
            for (int p = 0; p < NPART; p++)
                by[p] = -1;
            int seen = 0;
            for (size_t i = 0; i < got_dead.n; i++) {
                int pk, pp;
                if (is_probe(got_dead.v[i].val, &pk, &pp) && pk == k && pp >= 0 && pp < NPART) {
                    by[pp] = dead_by(got_dead.v[i].val);
                    ck_assert_msg(by[pp] >= 0, "a probe's dead letter names neither instance: %s",
                                  got_dead.v[i].val);
                }
            }
            for (int p = 0; p < NPART; p++)
                seen += by[p] >= 0;
            if (seen == NPART || now_ms() >= end)
                break;
            pump(50);
        }
        int count[2] = {0, 0}, seen = 0;
        for (int p = 0; p < NPART; p++)
            if (by[p] >= 0) {
                count[by[p]]++;
                seen++;
            }
        bool done = seen == NPART && (only < 0 ? count[0] == NPART / 2 && count[1] == NPART / 2
                                                : count[only] == NPART);
        if (done) {
            memcpy(owner, by, sizeof owner);
            size_t probes_seen = 0;
            int pk, pp;
            for (size_t i = 0; i < got_dead.n; i++)
                probes_seen += is_probe(got_dead.v[i].val, &pk, &pp);
            if (took)
                *took = now_ms() - t0;
            return probes_seen;
        }
        sleep_ms(200);
    }
}

/* Markers of round @p r that came back; each must come from the partition's owner. */
static int markers_back(int r)
{
    int n = 0;
    for (size_t i = 0; i < got_dead.n; i++) {
        int mr, mp;
        if (!is_marker(got_dead.v[i].val, &mr, &mp) || mr != r)
            continue;
        ck_assert(mp >= 0 && mp < NPART);
        ck_assert_msg(dead_by(got_dead.v[i].val) == owner[mp], "round %d: partition %d's marker was read by "
                      "instance %d, not by its owner %d: a rebalance during the test?\n%s", r, mp,
                      dead_by(got_dead.v[i].val), owner[mp], got_dead.v[i].val);
        n++;
    }
    return n;
}

/* ---- fixture --------------------------------------------------------------------- */

/* The reference's lines and the received ones as lines: freed by the teardown, even after a failure. */
static struct lines exp_alerts, exp_sms, exp_dead, got_a, got_s, got_d;
static struct lines *const owned[] = {&exp_alerts, &exp_sms, &exp_dead, &got_a, &got_s, &got_d};

static void setup(void)
{
    memset(inst, 0, sizeof inst);
    memset(&redis, 0, sizeof redis);
    state_uri[0] = 0;
    probe_next = 0;
    run_tag++;
    mock_up();
    inst[0] = (struct vigil){"A", boot_a, 0, "", 0};
    inst[1] = (struct vigil){"B", boot_b, 0, "", 0};
    producer_up();
    reader_up();
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        vigil_kill(&inst[i]);
    vgt_redis_stop(&redis);
    if (reader) {
        rd_kafka_consumer_close(reader);
        rd_kafka_destroy(reader);
    }
    if (producer)
        rd_kafka_destroy(producer);
    if (mock)
        rd_kafka_mock_cluster_destroy(mock);
    if (helper)
        rd_kafka_destroy(helper);
    reader = producer = helper = NULL;
    mock = NULL;
    recs_free(&got_alerts);
    recs_free(&got_sms);
    recs_free(&got_dead);
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++)
        lines_free(owned[i]);
    for (int r = 0; r < ROUNDS; r++)
        tlist_free(&round_msgs[r]);
    tlist_free(&heartbeats);
}

/* ---- the checks ----------------------------------------------------------------- */

/* Every record of @p r as lines into @p l: dead letters without source and at, probes left out. */
static void values(struct lines *l, const struct recs *r, bool dead)
{
    lines_free(l);
    for (size_t i = 0; i < r->n; i++) {
        int k, p;
        if (dead && is_probe(r->v[i].val, &k, &p))
            continue;
        if (dead) {
            char *c = dead_core(r->v[i].val);
            lines_add(l, c, strlen(c));
            free(c);
        } else {
            lines_add(l, r->v[i].val, strlen(r->v[i].val));
        }
    }
}

/* An alert's subject key: its region for a group (region) rule, else its plant. */
static void alert_key(const char *json, char *out, size_t cap)
{
    bool group = strstr(json, "\"rule\":\"nh3_region_cap\"") != NULL;
    ck_assert_msg(json_str(json, group ? "region" : "plant", out, cap), "no %s in %s", group ? "region" : "plant",
                  json);
}

/* Each alert keyed by its subject; each SMS request keyed like the alert it is about. */
static void check_keys(void)
{
    for (size_t i = 0; i < got_alerts.n; i++) {
        char want[80];
        alert_key(got_alerts.v[i].val, want, sizeof want);
        ck_assert_msg(got_alerts.v[i].has_key && !strcmp(got_alerts.v[i].key, want),
                      "alert keyed '%s', its subject is '%s': %s", got_alerts.v[i].key, want, got_alerts.v[i].val);
    }
    for (size_t i = 0; i < got_sms.n; i++) {
        char id[32], want[80] = "";
        ck_assert(json_str(got_sms.v[i].val, "alert_id", id, sizeof id));
        const char *head = fmt("{\"alert_id\":\"%s\"", id);
        for (size_t j = 0; j < got_alerts.n && !*want; j++)
            if (!strncmp(got_alerts.v[j].val, head, strlen(head)))
                alert_key(got_alerts.v[j].val, want, sizeof want);
        ck_assert_msg(*want, "an SMS request for an alert that never arrived: %s", got_sms.v[i].val);
        ck_assert_msg(got_sms.v[i].has_key && !strcmp(got_sms.v[i].key, want),
                      "SMS request keyed '%s', its alert's subject is '%s': %s", got_sms.v[i].key, want,
                      got_sms.v[i].val);
    }
}

static size_t count_in(const struct lines *l, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += strstr(l->v[i], needle) != NULL;
    return n;
}

/*
 * The reference: one vigil reading the file in event-time order with no
 * lateness, so nothing is reordered or held (the Kafka runs need --lateness;
 * docs/semantics.md: lateness delays alerts, it does not change them). It
 * must have raised every kind of output, or the comparison proves little.
 */
static void reference(void)
{
    make_input();
    int rc = vgt_sh("cd '%s' && '%s' run --rules rules.yaml --registry registry.yaml --input input.ndjson "
                    "--alerts exp.alerts --sms exp.sms --dead-letter exp.dead --threads 2 --start %lld "
                    "2>exp.err", vgt_dir(), vgt_bin(), T0);
    ck_assert_msg(rc == 0, "the file run failed (%d): see %s/exp.err", rc, vgt_dir());
    char *pa = vgt_path("exp.alerts"), *ps = vgt_path("exp.sms"), *pd = vgt_path("exp.dead");
    exp_alerts = read_lines(pa);
    exp_sms = read_lines(ps);
    struct lines raw = read_lines(pd);
    free(pa);
    free(ps);
    free(pd);
    for (size_t i = 0; i < raw.n; i++) {
        char *c = dead_core(raw.v[i]);
        lines_add(&exp_dead, c, strlen(c));
        free(c);
    }
    lines_free(&raw);

    ck_assert_msg(count_in(&exp_alerts, "\"status\":\"firing\"") >= 20, "too few firings");
    ck_assert_msg(count_in(&exp_alerts, "\"status\":\"escalated\"") >= 10, "too few escalations");
    ck_assert_msg(count_in(&exp_alerts, "\"status\":\"resolved\"") >= 20, "too few resolutions");
    ck_assert_msg(count_in(&exp_alerts, "\"rule\":\"nh3_region_cap\"") >= 2, "no region (group) alert");
    ck_assert_msg(count_in(&exp_sms, "\"role\":\"safety_officer\"") >= 20, "too few SMS to plants");
    ck_assert_msg(count_in(&exp_sms, "\"role\":\"township_officer\"") >= 2, "no unacknowledged-alert escalation");
    ck_assert_msg(count_in(&exp_sms, "\"role\":\"region_supervisor\"") >= 1, "no SMS for a region alert");
    ck_assert_int_eq(exp_dead.n, ROUNDS * NPART);
    ck_assert_msg(count_in(&exp_dead, "\"line_base64\"") >= 1, "no dead letter with bytes that are not UTF-8");
    for (int p = 0; p < NPART; p++) {
        size_t n = 0;
        for (int i = 0; i < NPLANTS; i++)
            if (plants[i].part == p)
                n += count_in(&exp_alerts, fmt("\"plant\":\"%s\"", plants[i].id));
        ck_assert_msg(n > 0, "no alert for the plants of partition %d", p);
    }
}

/* ---- waiting for the outputs --------------------------------------------------- */

/* Every marker of round *ctx came back, each from its partition's owner. */
static bool round_back(const void *ctx)
{
    return markers_back(*(const int *)ctx) >= NPART;
}

/* Every marker of round *ctx came back, whoever read it (at least once each). */
static bool round_seen(const void *ctx)
{
    int r = *(const int *)ctx, seen[NPART] = {0}, n = 0;
    for (size_t i = 0; i < got_dead.n; i++) {
        int mr, mp;
        if (is_marker(got_dead.v[i].val, &mr, &mp) && mr == r && mp >= 0 && mp < NPART && !seen[mp]++)
            n++;
    }
    return n == NPART;
}

struct counts {
    size_t alerts, sms, dead;
};

static bool counts_reached(const void *ctx)
{
    const struct counts *c = ctx;
    return got_alerts.n >= c->alerts && got_sms.n >= c->sms && got_dead.n >= c->dead;
}

/* Everything on the output topics, to their high watermarks (after both instances exited). */
static void read_to_the_end(void)
{
    struct counts held = {(size_t)on_topic("alerts"), (size_t)on_topic("sms"), (size_t)on_topic("dead")};
    pump_until(counts_reached, &held);
    ck_assert_int_eq(got_alerts.n, held.alerts);
    ck_assert_int_eq(got_sms.n, held.sms);
    ck_assert_int_eq(got_dead.n, held.dead);
    values(&got_a, &got_alerts, false);
    values(&got_s, &got_sms, false);
    values(&got_d, &got_dead, true);
}

/* How many of @p want's lines @p got holds at least once (both get sorted). */
static size_t covered(struct lines *want, struct lines *got)
{
    qsort(want->v, want->n, sizeof *want->v, cmp_str);
    qsort(got->v, got->n, sizeof *got->v, cmp_str);
    size_t n = 0;
    for (size_t i = 0; i < want->n; i++)
        n += bsearch(&want->v[i], got->v, got->n, sizeof *got->v, cmp_str) != NULL;
    return n;
}

static bool all_covered(const void *ctx)
{
    (void)ctx;
    values(&got_a, &got_alerts, false);
    values(&got_s, &got_sms, false);
    return covered(&exp_alerts, &got_a) == exp_alerts.n && covered(&exp_sms, &got_s) == exp_sms.n;
}

/* As pump_until, but also gives up once nothing new arrived for @p quiet_ms. */
static void pump_until_quiet(bool (*cond)(const void *), const void *ctx, int quiet_ms)
{
    int64_t end = now_ms() + WAIT_MS, last = now_ms();
    size_t n = got_alerts.n + got_sms.n + got_dead.n;
    while (!cond(ctx) && now_ms() < end && now_ms() - last < quiet_ms) {
        pump(100);
        if (got_alerts.n + got_sms.n + got_dead.n != n) {
            n = got_alerts.n + got_sms.n + got_dead.n;
            last = now_ms();
        }
    }
}

/* At-least-once against the reference: what is missing, what is extra (as sets). */
struct tally {
    size_t lost, lost_marked, invented;
    const char *first_lost, *first_invented;
};

static struct tally tally(struct lines *want, struct lines *got)
{
    struct tally t = {0, 0, 0, "-", "-"};
    qsort(want->v, want->n, sizeof *want->v, cmp_str);
    qsort(got->v, got->n, sizeof *got->v, cmp_str);
    for (size_t i = 0; i < want->n; i++)
        if (!bsearch(&want->v[i], got->v, got->n, sizeof *got->v, cmp_str)) {
            if (!t.lost++)
                t.first_lost = want->v[i];
            t.lost_marked += strstr(want->v[i], "\"rule\":\"nh3_region_cap\"") ||
                             strstr(want->v[i], "\"role\":\"township_officer\"");
        }
    for (size_t j = 0; j < got->n; j++)
        if (!bsearch(&got->v[j], want->v, want->n, sizeof *want->v, cmp_str) && !t.invented++)
            t.first_invented = got->v[j];
    return t;
}

static size_t dead_with_reason(const char *reason)
{
    size_t n = 0;
    const char *head = fmt("{\"reason\":\"%s\"", reason);
    for (size_t i = 0; i < got_dead.n; i++)
        n += !strncmp(got_dead.v[i].val, head, strlen(head));
    return n;
}

/*
 * VG_E2E_KEEP=DIR: copy the input, rules, registry, the reference's outputs,
 * each instance's stderr and what arrived on Kafka (KEY<TAB>VALUE lines) to
 * DIR, to look into a failure.
 */
static void keep(void)
{
    const char *dir = getenv("VG_E2E_KEEP");
    if (!dir || !*dir)
        return;
    vgt_sh("cp '%s'/exp.* '%s'/vigil-*.err '%s'/input.ndjson '%s'/*.yaml '%s'/ 2>/dev/null", vgt_dir(), vgt_dir(),
           vgt_dir(), vgt_dir(), dir);
    const struct recs *what[3] = {&got_alerts, &got_sms, &got_dead};
    static const char *const names[3] = {"alerts", "sms", "dead"};
    for (int q = 0; q < 3; q++) {
        FILE *f = fopen(fmt("%s/kafka-%d.%s", dir, run_tag, names[q]), "w");
        if (!f)
            continue;
        for (size_t i = 0; i < what[q]->n; i++)
            fprintf(f, "%s\t%s\n", what[q]->v[i].key, what[q]->v[i].val);
        fclose(f);
    }
}

/* ---- the tests ------------------------------------------------------------------ */

/*
 * Two instances in one group, memory state: every alert, SMS request and
 * dead letter of the reference arrives exactly once, byte for byte (dead
 * letters but for source and at), keyed by its subject; each message was
 * read by exactly one instance, and each instance read some.
 */
START_TEST(two_instances_split_the_group_and_deliver_each_output_once)
{
    int64_t t0 = now_ms();
    reference();
    int64_t t_ref = now_ms();

    vigil_start(&inst[0]);
    vigil_start(&inst[1]);
    int64_t join_ms;
    size_t probes = probe_until(-1, &join_ms);

    /* the telemetry, round by round: the next once every partition's marker came back */
    int64_t t_rounds = now_ms();
    for (int r = 0; r < ROUNDS; r++) {
        produce(round_msgs[r].v, round_msgs[r].n);
        bool back = pump_until(round_back, &r);
        vigil_alive(&inst[0]);
        vigil_alive(&inst[1]);
        ck_assert_msg(back, "round %d: %d of %d markers came back", r, markers_back(r), NPART);
    }
    produce(heartbeats.v, heartbeats.n);
    struct counts want = {exp_alerts.n, exp_sms.n, 0};
    bool all = pump_until(counts_reached, &want);
    ck_assert_msg(all, "after %d s: %zu of %zu alerts, %zu of %zu SMS requests arrived", WAIT_MS / 1000,
                  got_alerts.n, exp_alerts.n, got_sms.n, exp_sms.n);
    int64_t t_live = now_ms();

    /* SIGTERM: both finish and exit 0 */
    vigil_stop(&inst[0]);
    vigil_stop(&inst[1]);
    vigil_expect_exit0(&inst[0], 30000);
    vigil_expect_exit0(&inst[1], 30000);
    int64_t t_stop = now_ms();

    read_to_the_end();
    keep();
    same_multiset(&exp_alerts, &got_a, "alerts");
    same_multiset(&exp_sms, &got_s, "SMS requests");
    same_multiset(&exp_dead, &got_d, "dead letters (without source and at)");
    check_keys();

    /* every message read once, by one of them, and each read some */
    int runs_a, runs_b;
    uint64_t ma = messages_read(&inst[0], &runs_a), mb = messages_read(&inst[1], &runs_b);
    ck_assert_int_eq(runs_a, 1);
    ck_assert_int_eq(runs_b, 1);
    ck_assert_msg(ma > 0 && mb > 0, "one instance did nothing: A read %" PRIu64 ", B %" PRIu64, ma, mb);
    /* a probe read again after the first rebalance counts twice, on both sides */
    size_t probe_letters = got_dead.n - got_d.n;
    ck_assert_int_ge(probe_letters, probes);
    ck_assert_msg(ma + mb == n_input + probe_letters, "A read %" PRIu64 " and B %" PRIu64 " messages: %" PRIu64
                  ", but %zu were produced (and %zu probes read)", ma, mb, ma + mb, n_input, probe_letters);

    /*
     * schemas/dead_letter.schema.json: a broker's dead letter names "the
     * endpoint and position, e.g. kafka://broker:9092/telemetry[3]@18231
     * (partition 3, offset 18231)": with four partitions an offset alone
     * does not say which message it was.
     */
    for (size_t i = 0; i < got_dead.n; i++) {
        int r, p;
        if (!is_marker(got_dead.v[i].val, &r, &p))
            continue;
        const char *want = fmt("\"source\":\"kafka://%s/telemetry[%d]@", inst[owner[p]].boot, p);
        const char *at = strstr(got_dead.v[i].val, want);
        ck_assert_msg(at && at[strlen(want)] >= '0' && at[strlen(want)] <= '9', "a dead letter read from partition "
                      "%d does not name it as %s<offset>: %s", p, want + 10, got_dead.v[i].val);
    }

    printf("kafka e2e: %zu input messages, %zu alerts, %zu SMS requests, %zu dead letters; A read %" PRIu64
           ", B %" PRIu64 "; reference run %.1f s, group split %.1f s, rounds and outputs %.1f s, SIGTERM to "
           "both exits %.1f s\n", n_input, exp_alerts.n, exp_sms.n, exp_dead.n, ma, mb,
           (double)(t_ref - t0) / 1000, (double)join_ms / 1000, (double)(t_live - t_rounds) / 1000,
           (double)(t_stop - t_live) / 1000);
}
END_TEST

/*
 * --state redis: one instance is killed (SIGKILL) while a round it has read
 * still waits in its reorder buffer, after several checkpoints
 * (--checkpoint-interval 200ms); the other takes its partitions over from
 * the stored state and the committed offsets; the killed one is started
 * again and takes two back. At-least-once (docs/state.md): every alert and
 * SMS request of the reference arrives (repeats allowed, same bytes), and
 * none that it does not have ("a replay repeats ids, never invents").
 */
START_TEST(a_killed_instance_comes_back_from_redis_and_no_alert_is_lost)
{
    const int kill_after = 1; /* the round after which B dies */
    int64_t t0 = now_ms();
    reference();
    ck_assert_msg(vgt_redis_start(&redis) == 0, "%s", redis.error);
    snprintf(state_uri, sizeof state_uri, "redis://127.0.0.1:%d?prefix=e2e&timeout=500ms", redis.port);

    vigil_start(&inst[0]);
    vigil_start(&inst[1]);
    probe_until(-1, NULL);
    for (int r = 0; r < ROUNDS; r++) {
        produce(round_msgs[r].v, round_msgs[r].n);
        bool back = pump_until(round_seen, &r);
        vigil_alive(&inst[0]);
        ck_assert_msg(back, "round %d: not every marker came back", r);
        if (r == kill_after) {
            /* not a synchronisation: lets checkpoints cover what B has read before it dies */
            sleep_ms(1000);
            vigil_kill(&inst[1]);
            /* A takes B's partitions over (after session.timeout.ms) */
            probe_until(0, NULL);
        } else if (r == kill_after + 1) {
            /* B comes back and takes two partitions back */
            vigil_start(&inst[1]);
            probe_until(-1, NULL);
        } else {
            vigil_alive(&inst[1]);
        }
    }
    produce(heartbeats.v, heartbeats.n);
    /* until everything came, or nothing more did for a while: the verdict comes after SIGTERM */
    pump_until_quiet(all_covered, NULL, 5000);

    vigil_stop(&inst[0]);
    vigil_stop(&inst[1]);
    vigil_expect_exit0(&inst[0], 30000);
    vigil_expect_exit0(&inst[1], 30000);
    read_to_the_end();
    keep();

    struct tally ta = tally(&exp_alerts, &got_a), ts = tally(&exp_sms, &got_s);
    ck_assert_msg(ta.lost == 0 && ts.lost == 0 && ta.invented == 0 && ts.invented == 0,
                  "after kill -9 and a restart: alerts %zu of %zu arrived, %zu lost (%zu of them region alerts), "
                  "%zu not in the reference; SMS requests %zu of %zu, %zu lost (%zu of them unacknowledged-alert "
                  "escalations), %zu not in the reference; %zu 'late' dead letters.\nfirst lost alert: %s\n"
                  "first alert not in the reference: %s\nfirst lost SMS request: %s\nfirst SMS request not in "
                  "the reference: %s", exp_alerts.n - ta.lost, exp_alerts.n, ta.lost, ta.lost_marked, ta.invented,
                  exp_sms.n - ts.lost, exp_sms.n, ts.lost, ts.lost_marked, ts.invented, dead_with_reason("late"),
                  ta.first_lost, ta.first_invented, ts.first_lost, ts.first_invented);
    check_keys();
    int runs;
    messages_read(&inst[1], &runs);
    ck_assert_int_eq(runs, 1); /* the killed run printed nothing; the second one did */
    printf("kafka e2e, kill -9: %zu alerts expected, %zu arrived (%zu repeats); %zu SMS requests expected, %zu "
           "arrived; %.1f s\n", exp_alerts.n, got_a.n, got_a.n - exp_alerts.n, exp_sms.n, got_s.n,
           (double)(now_ms() - t0) / 1000);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kafka_e2e");
    TCase *group = tcase_create("group");
    tcase_add_checked_fixture(group, setup, teardown);
    tcase_set_timeout(group, 120);
    tcase_add_test(group, two_instances_split_the_group_and_deliver_each_output_once);
    suite_add_tcase(s, group);

    TCase *failover = tcase_create("failover");
    tcase_add_checked_fixture(failover, setup, teardown);
    tcase_set_timeout(failover, 180);
    tcase_add_test(failover, a_killed_instance_comes_back_from_redis_and_no_alert_is_lost);
    suite_add_tcase(s, failover);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
