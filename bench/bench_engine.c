/*
 * bench_engine.c: throughput of the engine on telemetry lines — parse only,
 * parse + threshold rules on one worker, and the whole threaded pipeline —
 * and memory per series. Reports figures; never passes or fails.
 * Owns: its synthetic workload. Must never: be run as a timed test.
 *
 * usage: bench_engine [--series N] [--events N] [--rules DIR] [--repeat R] [--quality 0|1]
 *                     [--state redis://HOST:PORT] [--checkpoint-ms MS]
 * With --state, the pipeline runs also with that state store (checkpoints every
 * second) and reports its throughput against memory state and the Redis
 * commands per 1,000 events.
 * --quality 0 gives DESIGN.md's sample line shape (no optional fields).
 * Lines cycle round-robin over N series (plant x device x metric), the worst
 * case for caches: every event touches a different series.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "engine/json.h"
#include "engine/pipeline.h"
#include "engine/shard.h"
#include "engine/adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const metrics[] = {"nh3_ppm", "co_ppm", "o2_pct", "dust_mg_m3"};
static const double normal[] = {10, 2, 20.9, 2.5};
static const double breach[] = {45, 20, 18.0, 12};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct lines {
    char *buf;
    size_t *off;
    uint32_t *len;
    size_t n, bytes;
};

/* series = plants x 10 devices x 4 metrics */
static int with_quality = 1;

static void make_lines(struct lines *L, size_t n, size_t series)
{
    size_t plants = series / 40 ? series / 40 : 1;
    L->buf = malloc(n * 160);
    L->off = malloc(n * sizeof *L->off);
    L->len = malloc(n * sizeof *L->len);
    L->n = n;
    size_t o = 0;
    long long ts = 1763884800000LL;
    for (size_t i = 0; i < n; i++) {
        size_t s = i % (plants * 40);
        size_t plant = s / 40, dev = (s / 4) % 10, m = s % 4;
        double v = normal[m] + (double)(next() % 100) / 100.0;
        if (next() % 1000 == 0)
            v = breach[m];
        ts += 1;
        int w = snprintf(L->buf + o, 160,
                         "{\"plant\":\"P%09zu\",\"device\":\"DEV-%02zu\",\"metric\":\"%s\",\"value\":%.2f,"
                         "\"ts\":%lld%s}",
                         plant, dev, metrics[m], v, ts, with_quality ? ",\"quality\":\"good\"" : "");
        L->off[i] = o;
        L->len[i] = (uint32_t)w;
        o += (size_t)w;
    }
    L->bytes = o;
}

static size_t rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = (size_t)strtoull(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static void sink_alert(void *ctx, const struct vg_alert *a)
{
    (*(uint64_t *)ctx)++;
    (void)a;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

int main(int argc, char **argv)
{
    size_t series = 1000000, events = 4000000;
    const char *rules_dir = NULL, *state_uri = NULL;
    long long ckpt_ms = 1000;
    int repeat = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--series"))
            series = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--events"))
            events = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rules"))
            rules_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--state"))
            state_uri = argv[i + 1];
        else if (!strcmp(argv[i], "--checkpoint-ms"))
            ckpt_ms = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--quality"))
            with_quality = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat"))
            repeat = atoi(argv[i + 1]);
    }
    if (repeat < 1 || repeat > 15)
        repeat = 3;
    char tmpl[] = "/tmp/vigil-bench-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char rules_path[256], input_path[256];
    if (!rules_dir) {
        snprintf(rules_path, sizeof rules_path, "%s/rules.yaml", dir);
        FILE *f = fopen(rules_path, "w");
        fprintf(f, "version: 1\nrules:\n");
        for (int m = 0; m < 4; m++)
            fprintf(f, "  - id: r%d\n    metric: %s\n    for: 30s\n    grades:\n"
                       "      - { level: yellow, when: value %s %g }\n"
                       "      - { level: red, when: value %s %g, for: 0s }\n"
                       "    clear_for: 60s\n",
                    m, metrics[m], m == 2 ? "<" : ">", (normal[m] + breach[m]) / 2, m == 2 ? "<" : ">",
                    m == 2 ? breach[m] - 1 : breach[m] * 2);
        fclose(f);
        rules_dir = rules_path;
    }
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs;
    if (vg_ruleset_load(&rs, &rules_dir, 1, NULL, &d) < 0) {
        vg_diags_print(&d, stderr);
        return 1;
    }
    struct vg_registry *reg = vg_registry_empty();
    if (events < series)
        events = series;
    struct lines L;
    make_lines(&L, events, series);
    printf("workload: %zu lines (%.0f bytes/line), %zu series, %u rules\n", L.n,
           (double)L.bytes / (double)L.n, series, rs->n_rules);

    /* 1. parse only */
    struct vg_json_parser *jp = vg_json_parser_create();
    double t[15];
    uint64_t check = 0;
    for (int r = 0; r < repeat; r++) {
        double t0 = now();
        for (size_t i = 0; i < L.n; i++) {
            const struct vg_sample *s;
            unsigned k;
            struct vg_reject rej;
            if (vg_json_parse(jp, L.buf + L.off[i], L.len[i], &s, &k, &rej) == 0)
                check += (uint64_t)s[0].ts;
        }
        t[r] = now() - t0;
    }
    double parse_s = median(t, repeat);
    printf("parse only (1 core):                 %6.2f M lines/s   %5.0f ns/line\n",
           (double)L.n / parse_s / 1e6, parse_s / (double)L.n * 1e9);

    /* 1b. jsmn tokenising alone, for attribution: the floor under our parser */
    {
        static jsmntok_t tok[64];
        for (int r = 0; r < repeat; r++) {
            double t0 = now();
            for (size_t i = 0; i < L.n; i++) {
                jsmn_parser p;
                jsmn_init(&p);
                check += (uint64_t)jsmn_parse(&p, L.buf + L.off[i], L.len[i], tok, 64);
            }
            t[r] = now() - t0;
        }
        double s = median(t, repeat);
        printf("  of which jsmn tokenising alone:    %6.2f M lines/s   %5.0f ns/line\n",
               (double)L.n / s / 1e6, s / (double)L.n * 1e9);
    }

    /* 2. parse + route into batches + threshold rules, one thread, warm tables */
    struct vg_batch *b = calloc(1, sizeof *b);
    uint64_t alerts = 0;
    struct vg_shard *sh = vg_shard_create(rs, reg);
    size_t rss0 = rss_kib();
    for (int r = 0; r < repeat + 1; r++) {
        double t0 = now();
        for (size_t i = 0; i < L.n; i++) {
            const struct vg_sample *s;
            unsigned k;
            struct vg_reject rej;
            if (vg_json_parse(jp, L.buf + L.off[i], L.len[i], &s, &k, &rej) < 0)
                continue;
            for (unsigned j = 0; j < k; j++) {
                if (!vg_batch_fits(b, vg_batch_need(&s[j]))) {
                    vg_shard_process(sh, b, sink_alert, &alerts);
                    vg_batch_reset(b);
                }
                vg_batch_append(b, &s[j], vg_ruleset_metric(rs, s[j].name.p, s[j].name.n));
            }
        }
        vg_shard_process(sh, b, sink_alert, &alerts);
        vg_batch_reset(b);
        if (r > 0) /* the first pass admits the series; later passes are steady state */
            t[r - 1] = now() - t0;
    }
    double rules_s = median(t, repeat);
    struct vg_shard_stats st;
    vg_shard_stats(sh, &st);
    size_t rss1 = rss_kib();
    printf("parse + rules, one worker (1 core):  %6.2f M events/s  %5.0f ns/event  (%llu alerts)\n",
           (double)L.n / rules_s / 1e6, rules_s / (double)L.n * 1e9, (unsigned long long)alerts);
    printf("series: %llu (subjects %llu, rule states %llu); shard tables %.1f MiB = %.0f bytes/series;"
           " RSS growth %.0f bytes/series\n",
           (unsigned long long)st.states, (unsigned long long)st.subjects,
           (unsigned long long)st.states, (double)st.bytes / 1048576.0,
           (double)st.bytes / (double)(st.states ? st.states : 1),
           (double)(rss1 - rss0) * 1024.0 / (double)(st.states ? st.states : 1));
    vg_shard_destroy(sh);

    /* 3. the whole pipeline from a file (page cache), 1 and 2 workers */
    snprintf(input_path, sizeof input_path, "%s/input.ndjson", dir);
    FILE *f = fopen(input_path, "w");
    for (size_t i = 0; i < L.n; i++) {
        fwrite(L.buf + L.off[i], 1, L.len[i], f);
        fputc('\n', f);
    }
    fclose(f);
    double mem_rate[3] = {0};
    for (int threads = 1; threads <= 2; threads++) {
        for (int variant = 0; variant < (state_uri ? 2 : 1); variant++) {
            uint64_t cmds = 0, ckpts = 0, recs = 0, bytes = 0;
            for (int r = 0; r < repeat; r++) {
                struct vg_source_handle in;
                struct vg_sink_handle out, dead;
                struct vg_store_handle store = {0};
                struct vg_error err;
                vg_source_open(input_path, &in, &err);
                vg_sink_open("/dev/null", &out, &err);
                vg_sink_open("/dev/null", &dead, &err);
                if (variant) {
                    /* a fresh prefix per run: each run starts with an empty store */
                    char uri[512];
                    snprintf(uri, sizeof uri, "%s%sprefix=bench%d_%d_%d", state_uri,
                             strchr(state_uri, '?') ? "&" : "?", (int)getpid(), threads, r);
                    if (vg_store_open(uri, &store, &err) < 0) {
                        fprintf(stderr, "bench_engine: %s\n", err.msg);
                        return 1;
                    }
                }
                struct vg_pipeline_config cfg = {.rs = rs, .reg = reg, .input = &in, .alerts = &out,
                                                 .dead = &dead, .threads = threads, .start = VG_TS_NONE,
                                                 .until = VG_TS_NONE, .store = variant ? &store : NULL,
                                                 .checkpoint_ms = ckpt_ms};
                struct vg_pipeline_stats ps;
                if (vg_pipeline_run(&cfg, &ps, &err) < 0)
                    fprintf(stderr, "bench_engine: %s\n", err.msg);
                t[r] = ps.seconds;
                cmds = ps.records_saved + ps.checkpoints; /* one SET per record, one HSET per checkpoint */
                ckpts = ps.checkpoints;
                recs = ps.records_saved;
                bytes = ps.bytes_saved;
                vg_pipeline_stats_fini(&ps);
                vg_source_close(&in);
                vg_sink_close(&out);
                vg_sink_close(&dead);
                if (variant)
                    vg_store_close(&store);
            }
            double s = median(t, repeat), rate = (double)L.n / s / 1e6;
            if (!variant) {
                mem_rate[threads] = rate;
                printf("pipeline, reader + %d worker%s + output:   %6.2f M events/s\n", threads,
                       threads == 1 ? " " : "s", rate);
            } else {
                printf("  with Redis state (%llu checkpoints): %6.2f M events/s = %3.0f %% of memory "
                       "state; %.2f Redis commands per 1,000 events; %.0f bytes per plant record\n",
                       (unsigned long long)ckpts, rate, 100.0 * rate / mem_rate[threads],
                       1000.0 * (double)cmds / (double)L.n, recs ? (double)bytes / (double)recs : 0.0);
            }
        }
    }
    unlink(input_path);
    if (rules_dir == rules_path)
        unlink(rules_path);
    rmdir(dir);
    free(b);
    vg_json_parser_destroy(jp);
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
    free(L.buf);
    free(L.off);
    free(L.len);
    fprintf(stderr, "(checksum %llu)\n", (unsigned long long)check);
    return 0;
}
