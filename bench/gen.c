/*
 * bench/gen.c - vigil's deterministic synthetic data generator.
 *
 * Owns: demo, replay and benchmark inputs for vigil, derived from the command
 * line and --seed alone: a plant registry (YAML, shape of DESIGN.md
 * "registry") and NDJSON telemetry (single samples, plant-gateway batches,
 * dust-cleaning report events and deliberately malformed lines), plus the
 * fixed-rate bench stream (--count/--rate).
 *
 * Must never: read the clock, the environment or any input file; use rand()
 * or other hidden global state; depend on anything beyond libc and libm;
 * allocate per output line; or produce different bytes for the same
 * arguments. It is a tool that feeds the engine and is never linked into it.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL
#define CST_MS (8 * HOUR_MS) /* +08:00 */
#define MAX_SLOTS 3
#define OUT_CAP (8u << 20)
#define LONG_LINE 70000 /* > 64 KiB */

/* ------------------------------------------------------------------ PRNG */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rnext(rng_t *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

static double runif(rng_t *r) { return (double)(rnext(r) >> 11) * 0x1.0p-53; }
static double rrange(rng_t *r, double lo, double hi) { return lo + (hi - lo) * runif(r); }
static uint64_t rbelow(rng_t *r, uint64_t n) { return n ? rnext(r) % n : 0; }

/* log-uniform in [lo, hi], lo > 0 */
static double rlog(rng_t *r, double lo, double hi) { return lo * exp(runif(r) * log(hi / lo)); }

/* approximately standard normal: scaled sum of four 16-bit uniforms */
static double rnorm(rng_t *r)
{
    uint64_t x = rnext(r);
    double s = (double)(x & 0xffff) + (double)((x >> 16) & 0xffff) +
               (double)((x >> 32) & 0xffff) + (double)(x >> 48);
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}

/* independent stream per (seed, purpose, index) */
static rng_t rstream(uint64_t seed, uint64_t purpose, uint64_t index)
{
    rng_t r = {mix64(seed ^ mix64(purpose * 0x100000001b3ULL + mix64(index + 0x51)))};
    return r;
}

/* ------------------------------------------------------- domain catalogue */

enum { M_NH3, M_CO_PPM, M_H2S_PPM, M_O2, M_DUST, M_DC_TEMP, M_DC_DP, M_CW_FLOW, M_CW_TEMP,
       M_GH_CO, M_SMOKE, M_COUNT };

typedef struct {
    const char *name, *unit;
    double base_lo, base_hi; /* per-device normal level */
    double drift_sd;         /* slow Ornstein-Uhlenbeck wander */
    double noise_sd;         /* white noise per sample */
    double floor;            /* values never go below */
    int diurnal;             /* follows the day's ambient temperature */
    int boolean;             /* 0/1 state */
} metric_def;

static const metric_def METRICS[M_COUNT] = {
    [M_NH3] = {"nh3_ppm", "ppm", 5, 15, 2.0, 0.8, 0, 0, 0},
    [M_CO_PPM] = {"co_ppm", "ppm", 0.5, 3, 0.5, 0.3, 0, 0, 0},
    [M_H2S_PPM] = {"h2s_ppm", "ppm", 0, 0.5, 0.1, 0.05, 0, 0, 0},
    [M_O2] = {"o2_pct", "%VOL", 20.85, 20.95, 0.04, 0.02, 0, 0, 0},
    [M_DUST] = {"dust_mg_m3", "mg/m3", 1, 4, 0.5, 0.3, 0, 0, 0},
    [M_DC_TEMP] = {"dc_hopper_temp_c", "\xe2\x84\x83", 30, 45, 1.5, 0.4, 0, 1, 0},
    [M_DC_DP] = {"dc_diff_pressure_pa", "Pa", 800, 1200, 60, 20, 0, 0, 0},
    [M_CW_FLOW] = {"cooling_water_flow", "m3/h", 36, 44, 1.0, 0.6, 0, 0, 0},
    [M_CW_TEMP] = {"cw_outlet_temp_c", "\xe2\x84\x83", 30, 36, 0.8, 0.3, 0, 1, 0},
    [M_GH_CO] = {"co_mgm3", "mg/m3", 2, 10, 2.0, 1.0, 0, 0, 0},
    [M_SMOKE] = {"smoke_alarm", NULL, 0, 0, 0, 0, 0, 0, 1},
};

enum { DT_NH3, DT_GAS, DT_DUST, DT_DC, DT_FUR, DT_GH, DT_SMK, DT_COUNT };

typedef struct {
    const char *prefix;
    int nslots;
    int metric[MAX_SLOTS];
} devtype_def;

static const devtype_def DEVTYPES[DT_COUNT] = {
    [DT_NH3] = {"NH3", 1, {M_NH3}},
    [DT_GAS] = {"GAS", 3, {M_CO_PPM, M_H2S_PPM, M_O2}},
    [DT_DUST] = {"DUST", 1, {M_DUST}},
    [DT_DC] = {"DC", 2, {M_DC_TEMP, M_DC_DP}},
    [DT_FUR] = {"FUR", 2, {M_CW_FLOW, M_CW_TEMP}},
    [DT_GH] = {"GH", 1, {M_GH_CO}},
    [DT_SMK] = {"SMK", 1, {M_SMOKE}},
};

enum { IND_DUST, IND_METAL, IND_NH3, IND_CONFINED, IND_GASHOLDER, IND_LABOUR, IND_COUNT };

static const char *const IND_NAME[IND_COUNT] = {
    "dust_explosion", "metal_smelting", "ammonia_refrigeration",
    "confined_space", "gas_holder",     "labour_intensive",
};
static const int IND_WEIGHT[IND_COUNT] = {35, 15, 15, 15, 5, 15};
static const int IND_NTYPES[IND_COUNT] = {2, 1, 1, 1, 1, 1};
static const int IND_TYPES[IND_COUNT][2] = {
    {DT_DUST, DT_DC}, {DT_FUR}, {DT_NH3}, {DT_GAS}, {DT_GH}, {DT_SMK},
};
static const char *const IND_WORDS[IND_COUNT][4] = {
    {"木业", "铝制品", "家具", "粮油"},       {"铝业", "铸造", "特钢", "有色金属"},
    {"冷链食品", "水产", "冷冻食品", "乳业"}, {"污水处理", "酿造", "造纸", "化工"},
    {"钢铁", "焦化", "冶金", "燃气"},         {"服装", "电子", "鞋业", "玩具"},
};
static const char *const BRANDS[] = {
    "华宇", "恒丰", "金泰", "永兴", "鑫达", "盛源", "宏远", "嘉禾", "天成", "瑞丰",
    "隆鑫", "正泰", "新港", "东方", "银河", "锦程", "汇通", "明珠", "中兴", "立信",
    "长江", "海通", "富康", "万顺", "德润", "安泰", "兴业", "荣昌", "博远", "昌盛",
    "联合", "裕隆", "凯达", "同创", "润泽", "华新", "国泰", "益丰", "顺发", "宝丰",
};
#define NBRANDS (sizeof BRANDS / sizeof BRANDS[0])

typedef struct {
    int code;
    const char *shortname;
    const char *towns[10];
} county_def;

/* real GB/T 2260 county codes (Suzhou); township suffixes 101.. are synthetic */
static const county_def COUNTIES[] = {
    {320585, "太仓", {"城厢镇", "沙溪镇", "浏河镇", "浮桥镇", "璜泾镇", "双凤镇"}},
    {320583, "昆山", {"玉山镇", "巴城镇", "周市镇", "陆家镇", "花桥镇", "淀山湖镇", "张浦镇",
                      "周庄镇", "千灯镇", "锦溪镇"}},
    {320582, "张家港", {"杨舍镇", "塘桥镇", "金港镇", "锦丰镇", "乐余镇", "凤凰镇", "南丰镇",
                        "大新镇"}},
    {320581, "常熟", {"虞山街道", "梅李镇", "海虞镇", "古里镇", "沙家浜镇", "支塘镇", "董浜镇",
                      "辛庄镇", "尚湖镇"}},
    {320509, "吴江", {"松陵街道", "同里镇", "平望镇", "盛泽镇", "七都镇", "震泽镇", "桃源镇",
                      "黎里镇"}},
    {320506, "吴中", {"甪直镇", "木渎镇", "胥口镇", "东山镇", "光福镇", "金庭镇", "临湖镇"}},
    {320507, "相城", {"望亭镇", "黄桥街道", "北桥街道", "阳澄湖镇", "渭塘镇", "黄埭镇"}},
    {320505, "虎丘", {"浒墅关镇", "通安镇", "东渚街道"}},
};
#define NCOUNTY_TABLE ((int)(sizeof COUNTIES / sizeof COUNTIES[0]))
#define PLANTS_PER_COUNTY 150
#define PLANTS_PER_TOWN 25

/* ------------------------------------------------------------------ model */

enum { LIM_HIGH, LIM_HIGH_HIGH, LIM_DP_LOW, LIM_DP_HIGH, LIM_LOW, LIM_N };

typedef struct {
    uint32_t plant;
    uint8_t type, nslots;
    uint8_t ep_mask; /* slots affected by the live episode */
    char name[16];
    double lim[LIM_N];
    int64_t phase_ms;
    rng_t vrng; /* values and episodes */
    rng_t orng; /* jitter and outages */
    double base[MAX_SLOTS], drift[MAX_SLOTS], peak[MAX_SLOTS];
    int64_t ep_t0, ep_up, ep_down, ep_end; /* ep_end == 0: no episode */
    int64_t out_until;
} device_t;

enum { REP_DAILY, REP_LAX, REP_GAP, REP_NEVER };

typedef struct {
    char id[16];
    char name[96];
    uint32_t region;
    uint32_t dev0, ndev;
    uint8_t ind[2], nind;
    uint8_t batch, unit, report;
    uint16_t gap_day;
    int64_t phase_ms;
    rng_t orng;
} plant_t;

typedef struct {
    int code; /* 9 digits */
    int county;
    char name[64];
} region_t;

typedef struct {
    int64_t ts;
    uint32_t plant;
    int32_t dev; /* >= 0 device sample, -1 gateway batch, -2 report event */
} msg_t;

typedef struct {
    FILE *f;
    const char *path;
    char *buf;
    size_t len, cap;
    int err;
} out_t;

typedef struct {
    /* options */
    long plants, devs;
    double days, interval_s, breach_rate, rate, outage_rate;
    int64_t start;
    uint64_t seed;
    const char *registry, *telemetry;
    int format; /* 0 single, 1 batch, 2 mixed */
    long long bad_lines, count;
    int outage_set;
    /* model */
    plant_t *plant;
    device_t *dev;
    region_t *region;
    int *county_code;
    const char **county_short;
    int ncounty, nregion;
    long ndevices, nseries;
    /* per-run dynamics */
    double ou_a, ou_b, p_episode, p_outage, dt_s;
    rng_t frng; /* format choices and bad lines */
    long long lines;
} gen_t;

enum { FMT_SINGLE, FMT_BATCH, FMT_MIXED };

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "gen: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(1);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) die("out of memory", NULL);
    return p;
}

/* ------------------------------------------------------------- model build */

static int pick_industry(rng_t *r, int exclude)
{
    int total = 0;
    for (int i = 0; i < IND_COUNT; i++)
        if (i != exclude) total += IND_WEIGHT[i];
    int x = (int)rbelow(r, (uint64_t)total);
    for (int i = 0; i < IND_COUNT; i++) {
        if (i == exclude) continue;
        if (x < IND_WEIGHT[i]) return i;
        x -= IND_WEIGHT[i];
    }
    return 0;
}

static void build_counties(gen_t *g)
{
    long need = (g->plants + PLANTS_PER_COUNTY - 1) / PLANTS_PER_COUNTY;
    long max_synth = 13 * 99;
    if (need < 1) need = 1;
    if (need > NCOUNTY_TABLE + max_synth) need = (g->plants + 998) / 999;
    if (need > NCOUNTY_TABLE + max_synth) die("too many plants for the county code space", NULL);
    g->ncounty = (int)need;
    g->county_code = xcalloc((size_t)need, sizeof(int));
    g->county_short = xcalloc((size_t)need, sizeof(char *));
    int n = 0;
    for (int i = 0; i < NCOUNTY_TABLE && n < need; i++, n++) {
        g->county_code[n] = COUNTIES[i].code;
        g->county_short[n] = COUNTIES[i].shortname;
    }
    /* synthetic Jiangsu county codes 32CCDD, skipping the real ones above */
    for (int city = 1; city <= 13 && n < need; city++)
        for (int c = 1; c <= 99 && n < need; c++) {
            int code = 320000 + city * 100 + c, dup = 0;
            for (int i = 0; i < NCOUNTY_TABLE; i++) dup |= COUNTIES[i].code == code;
            if (dup) continue;
            g->county_code[n] = code;
            g->county_short[n] = "江苏";
            n++;
        }
}

static void build_model(gen_t *g)
{
    build_counties(g);
    long P = g->plants;
    int nc = g->ncounty;
    /* townships per county */
    int *town0 = xcalloc((size_t)nc + 1, sizeof(int));
    int *ntown = xcalloc((size_t)nc, sizeof(int));
    for (int c = 0; c < nc; c++) {
        long inc = (P - c + nc - 1) / nc;
        int t = (int)((inc + PLANTS_PER_TOWN - 1) / PLANTS_PER_TOWN);
        ntown[c] = t < 1 ? 1 : t;
        town0[c + 1] = town0[c] + ntown[c];
    }
    g->nregion = town0[nc];
    g->region = xcalloc((size_t)g->nregion, sizeof(region_t));
    for (int c = 0; c < nc; c++)
        for (int t = 0; t < ntown[c]; t++) {
            region_t *rg = &g->region[town0[c] + t];
            rg->code = g->county_code[c] * 1000 + 101 + t;
            rg->county = c;
            const char *tn = c < NCOUNTY_TABLE && t < 10 ? COUNTIES[c].towns[t] : NULL;
            if (tn)
                snprintf(rg->name, sizeof rg->name, "%s", tn);
            else
                snprintf(rg->name, sizeof rg->name, "%s第%d片区", g->county_short[c], t + 1);
        }

    g->plant = xcalloc((size_t)P, sizeof(plant_t));
    g->ndevices = P * g->devs;
    g->dev = xcalloc((size_t)g->ndevices, sizeof(device_t));
    int64_t iv = (int64_t)llround(g->interval_s * 1000.0);
    g->nseries = 0;
    for (long i = 0; i < P; i++) {
        plant_t *p = &g->plant[i];
        rng_t r = rstream(g->seed, 1, (uint64_t)i);
        int c = (int)(i % nc);
        long serial = i / nc + 1;
        snprintf(p->id, sizeof p->id, "P%06d%03d", g->county_code[c] % 1000000, (int)(serial % 1000));
        p->region = (uint32_t)(town0[c] + (int)rbelow(&r, (uint64_t)ntown[c]));
        p->ind[0] = (uint8_t)pick_industry(&r, -1);
        p->nind = 1;
        if (runif(&r) < 0.25) {
            int second = p->ind[0] == IND_METAL && runif(&r) < 0.5 ? IND_GASHOLDER
                                                                    : pick_industry(&r, p->ind[0]);
            p->ind[p->nind++] = (uint8_t)second;
        }
        snprintf(p->name, sizeof p->name, "%s%s%s有限公司", g->county_short[c],
                 BRANDS[rbelow(&r, NBRANDS)], IND_WORDS[p->ind[0]][rbelow(&r, 4)]);
        p->batch = runif(&r) < 0.3;
        p->unit = runif(&r) < 0.2;
        double u = runif(&r);
        p->report = u < 0.78 ? REP_DAILY : u < 0.90 ? REP_LAX : u < 0.95 ? REP_GAP : REP_NEVER;
        p->gap_day = (uint16_t)rbelow(&r, (uint64_t)(g->days > 1 ? g->days : 1));
        p->phase_ms = (int64_t)rbelow(&r, (uint64_t)(iv * 8 / 10 > 0 ? iv * 8 / 10 : 1));
        p->orng = rstream(g->seed, 2, (uint64_t)i);

        /* devices: round robin over the device types of the plant's industries */
        int types[4], nt = 0;
        for (int k = 0; k < p->nind; k++)
            for (int j = 0; j < IND_NTYPES[p->ind[k]]; j++) types[nt++] = IND_TYPES[p->ind[k]][j];
        int seen[DT_COUNT] = {0};
        p->dev0 = (uint32_t)(i * g->devs);
        p->ndev = (uint32_t)g->devs;
        for (long k = 0; k < g->devs; k++) {
            device_t *d = &g->dev[p->dev0 + k];
            int t = types[k % nt];
            const devtype_def *dt = &DEVTYPES[t];
            d->plant = (uint32_t)i;
            d->type = (uint8_t)t;
            d->nslots = (uint8_t)dt->nslots;
            snprintf(d->name, sizeof d->name, "%s-%02d", dt->prefix, ++seen[t]);
            d->vrng = rstream(g->seed, 3, (uint64_t)(p->dev0 + k));
            d->orng = rstream(g->seed, 4, (uint64_t)(p->dev0 + k));
            d->phase_ms = (int64_t)rbelow(&r, (uint64_t)(iv * 8 / 10 > 0 ? iv * 8 / 10 : 1));
            for (int s = 0; s < dt->nslots; s++) {
                const metric_def *m = &METRICS[dt->metric[s]];
                d->base[s] = rrange(&r, m->base_lo, m->base_hi);
                d->drift[s] = m->drift_sd * rnorm(&r);
            }
            if (t == DT_DC) {
                static const double hi[3] = {60, 65, 70};
                d->lim[LIM_HIGH] = hi[rbelow(&r, 3)];
                d->lim[LIM_HIGH_HIGH] = d->lim[LIM_HIGH] + 20;
                d->lim[LIM_DP_LOW] = 500;
                d->lim[LIM_DP_HIGH] = runif(&r) < 0.7 ? 1500 : 1800;
            } else if (t == DT_FUR) {
                d->lim[LIM_LOW] = runif(&r) < 0.6 ? 20 : 25;
                d->lim[LIM_HIGH] = runif(&r) < 0.6 ? 45 : 50;
            }
            g->nseries += dt->nslots;
        }
    }

    /* a hot spot: the township with most dust plants gets three that never report,
       so the regional cap rule (more than two plants at 3 days missing) can fire */
    int *ndust = xcalloc((size_t)g->nregion, sizeof(int));
    int best = -1;
    for (long i = 0; i < P; i++) {
        plant_t *p = &g->plant[i];
        if (p->ind[0] == IND_DUST || (p->nind > 1 && p->ind[1] == IND_DUST)) {
            int n = ++ndust[p->region];
            if (best < 0 || n > ndust[best]) best = (int)p->region;
        }
    }
    if (best >= 0 && ndust[best] >= 3) {
        int k = 0;
        for (long i = 0; i < P && k < 3; i++) {
            plant_t *p = &g->plant[i];
            if ((int)p->region == best &&
                (p->ind[0] == IND_DUST || (p->nind > 1 && p->ind[1] == IND_DUST))) {
                p->report = REP_NEVER;
                k++;
            }
        }
    }
    free(ndust);
    free(town0);
    free(ntown);
}

static int plant_has(const plant_t *p, int ind)
{
    for (int k = 0; k < p->nind; k++)
        if (p->ind[k] == ind) return 1;
    return 0;
}

/* --------------------------------------------------------------- registry */

static void write_limit(FILE *f, int *first, const char *name, double v)
{
    fprintf(f, "%s%s: %g", *first ? "" : ", ", name, v);
    *first = 0;
}

static void write_registry(gen_t *g)
{
    FILE *f = fopen(g->registry, "w");
    if (!f) die(strerror(errno), g->registry);
    fprintf(f, "# generated by bench/gen: --plants %ld --devices-per-plant %ld --seed %llu\n",
            g->plants, g->devs, (unsigned long long)g->seed);
    fprintf(f, "version: 1\nregions:\n");
    for (int i = 0; i < g->nregion; i++) {
        region_t *rg = &g->region[i];
        fprintf(f,
                "  - { code: \"%d\", name: %s,\n"
                "      contacts: { grid_officer: [\"+86138%08d\"], "
                "region_supervisor: [\"+86138%08d\"] } }\n",
                rg->code, rg->name, 2 * i + 1, 2 * i + 2);
    }
    fprintf(f, "plants:\n");
    for (long i = 0; i < g->plants; i++) {
        plant_t *p = &g->plant[i];
        fprintf(f, "  - id: %s\n    name: %s\n    region: \"%d\"\n    industries: [", p->id,
                p->name, g->region[p->region].code);
        for (int k = 0; k < p->nind; k++) fprintf(f, "%s%s", k ? ", " : "", IND_NAME[p->ind[k]]);
        fprintf(f,
                "]\n    contacts: { safety_officer: [\"+86139%08ld\"], "
                "principal: [\"+86139%08ld\"] }\n    points:\n",
                2 * i + 1, 2 * i + 2);
        if (plant_has(p, IND_DUST)) fprintf(f, "      - { id: D-01, kind: dust_point }\n");
        for (uint32_t k = 0; k < p->ndev; k++) {
            device_t *d = &g->dev[p->dev0 + k];
            int first = 1;
            fprintf(f, "      - { id: %s", d->name);
            if (d->type == DT_SMK)
                fprintf(f, ", kind: smoke_detector");
            if (d->type == DT_DC) {
                fprintf(f, ", limits: { ");
                write_limit(f, &first, "high", d->lim[LIM_HIGH]);
                write_limit(f, &first, "high_high", d->lim[LIM_HIGH_HIGH]);
                write_limit(f, &first, "dp_low", d->lim[LIM_DP_LOW]);
                write_limit(f, &first, "dp_high", d->lim[LIM_DP_HIGH]);
                fprintf(f, " }");
            } else if (d->type == DT_FUR) {
                fprintf(f, ", limits: { ");
                write_limit(f, &first, "low", d->lim[LIM_LOW]);
                write_limit(f, &first, "high", d->lim[LIM_HIGH]);
                fprintf(f, " }");
            }
            fprintf(f, " }\n");
        }
    }
    if (ferror(f) | fclose(f)) die("write failed", g->registry);
}

/* ---------------------------------------------------------- value dynamics */

static void start_episode(gen_t *g, device_t *d, int64_t ts)
{
    rng_t *r = &d->vrng;
    double dmin = fmax(180.0, 3 * g->dt_s), dmax = fmax(3600.0, 6 * g->dt_s);
    if (d->type == DT_SMK) dmin = fmax(60.0, 2 * g->dt_s), dmax = fmax(1200.0, 4 * g->dt_s);
    int64_t dur = (int64_t)(rlog(r, dmin, dmax) * 1000.0);
    d->ep_t0 = ts;
    d->ep_up = ts + (int64_t)(dur * rrange(r, 0.15, 0.35));
    d->ep_down = ts + dur - (int64_t)(dur * rrange(r, 0.2, 0.4));
    d->ep_end = ts + dur;
    d->ep_mask = 0;
    double u = runif(r);
    switch (d->type) {
    case DT_NH3: d->ep_mask = 1, d->peak[0] = rlog(r, 60, 200); break;
    case DT_DUST: d->ep_mask = 1, d->peak[0] = rrange(r, 9, 25); break;
    case DT_GH: d->ep_mask = 1, d->peak[0] = rlog(r, 35, 300); break;
    case DT_SMK: d->ep_mask = 1, d->peak[0] = 1; break;
    case DT_GAS:
        if (u < 0.35) d->ep_mask = 1, d->peak[0] = rlog(r, 30, 150);
        else if (u < 0.65) d->ep_mask = 2, d->peak[1] = rrange(r, 12, 40);
        else if (u < 0.95) d->ep_mask = 4, d->peak[2] = rrange(r, 16.0, 19.3);
        else d->ep_mask = 4, d->peak[2] = rrange(r, 23.6, 24.5);
        break;
    case DT_DC:
        if (u < 0.5)
            d->ep_mask = 1, d->peak[0] = rrange(r, d->lim[LIM_HIGH] + 3, d->lim[LIM_HIGH_HIGH] + 15);
        else if (u < 0.8)
            d->ep_mask = 2, d->peak[1] = d->lim[LIM_DP_HIGH] + rrange(r, 100, 1000);
        else
            d->ep_mask = 2, d->peak[1] = rrange(r, 150, d->lim[LIM_DP_LOW] - 50);
        break;
    case DT_FUR:
        d->peak[1] = d->lim[LIM_HIGH] + rrange(r, 3, 25);
        if (u < 0.7) d->ep_mask = 3, d->peak[0] = rrange(r, 4, d->lim[LIM_LOW] - 3);
        else d->ep_mask = 2;
        break;
    }
}

/* once per device sample, before its metrics */
static void device_tick(gen_t *g, device_t *d, int64_t ts)
{
    if (d->ep_end && ts >= d->ep_end) d->ep_end = 0;
    if (!d->ep_end && runif(&d->vrng) < g->p_episode) start_episode(g, d, ts);
}

static double sample_value(gen_t *g, device_t *d, int slot, int64_t ts)
{
    const metric_def *m = &METRICS[DEVTYPES[d->type].metric[slot]];
    if (m->boolean)
        return d->ep_end && (d->ep_mask & (1u << slot)) && ts >= d->ep_t0 && ts < d->ep_end;
    d->drift[slot] = g->ou_a * d->drift[slot] + g->ou_b * m->drift_sd * rnorm(&d->vrng);
    double v = d->base[slot] + d->drift[slot] + m->noise_sd * rnorm(&d->vrng);
    if (m->diurnal) {
        double day = (double)(((ts + CST_MS) % DAY_MS + DAY_MS) % DAY_MS) / (double)DAY_MS;
        v += 2.5 * sin(2 * 3.14159265358979323846 * (day - 0.375)); /* warmest at 15:00 local */
    }
    if (d->ep_end && (d->ep_mask & (1u << slot)) && ts >= d->ep_t0 && ts < d->ep_end) {
        double s;
        if (ts < d->ep_up) s = (double)(ts - d->ep_t0) / (double)(d->ep_up - d->ep_t0);
        else if (ts < d->ep_down) s = 1;
        else s = (double)(d->ep_end - ts) / (double)(d->ep_end - d->ep_down);
        double span = d->peak[slot] - v;
        v += span * s + s * 0.04 * fabs(span) * rnorm(&d->vrng);
    }
    return v < m->floor ? m->floor : v;
}

/* ------------------------------------------------------------------ output */

static void out_open(out_t *o, const char *path)
{
    o->path = path;
    if (!strcmp(path, "-")) o->f = stdout;
    else if (!(o->f = fopen(path, "w"))) die(strerror(errno), path);
    o->cap = OUT_CAP;
    o->buf = xcalloc(o->cap, 1);
}

static void out_flush(out_t *o)
{
    if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len) o->err = 1;
    o->len = 0;
}

static char *out_reserve(out_t *o, size_t n)
{
    if (o->cap - o->len < n) out_flush(o);
    if (n > o->cap) die("line too long", NULL);
    return o->buf + o->len;
}

static void out_commit(out_t *o, char *p) { o->len = (size_t)(p - o->buf); }

static void out_close(out_t *o)
{
    out_flush(o);
    if (fflush(o->f) || ferror(o->f)) o->err = 1;
    if (o->f != stdout && fclose(o->f)) o->err = 1;
    if (o->err) die("write failed", o->path);
    free(o->buf);
}

static char *put_s(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10), v /= 10;
    while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

/* up to two decimals, trailing zeros trimmed */
static char *put_value(char *p, double v)
{
    long long c = llround(v * 100.0);
    if (c < 0) *p++ = '-', c = -c;
    p = put_u64(p, (uint64_t)(c / 100));
    int f = (int)(c % 100);
    if (f) {
        *p++ = '.';
        *p++ = (char)('0' + f / 10);
        if (f % 10) *p++ = (char)('0' + f % 10);
    }
    return p;
}

/* RFC 3339 with +08:00 offset, milliseconds only when non-zero */
static char *put_rfc3339(char *p, int64_t ms)
{
    int64_t local = ms + CST_MS;
    int64_t sec = local >= 0 ? local / 1000 : -((-local + 999) / 1000);
    int frac = (int)(local - sec * 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    p += sprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac) p += sprintf(p, ".%03d", frac);
    return put_s(p, "+08:00");
}

static char *put_ts(char *p, int64_t ts, int rfc)
{
    p = put_s(p, ",\"ts\":");
    if (!rfc) return put_i64(p, ts);
    *p++ = '"';
    p = put_rfc3339(p, ts);
    *p++ = '"';
    return p;
}

static char *put_head(char *p, const plant_t *pl, const device_t *d, int slot)
{
    p = put_s(p, "{\"plant\":\"");
    p = put_s(p, pl->id);
    p = put_s(p, "\",\"device\":\"");
    p = put_s(p, d->name);
    p = put_s(p, "\",\"metric\":\"");
    p = put_s(p, METRICS[DEVTYPES[d->type].metric[slot]].name);
    return put_s(p, "\",\"value\":");
}

/* one device sample as single lines, one per metric */
static void emit_single(gen_t *g, out_t *o, const plant_t *pl, device_t *d, int64_t ts, int rfc)
{
    device_tick(g, d, ts);
    for (int s = 0; s < d->nslots; s++) {
        const metric_def *m = &METRICS[DEVTYPES[d->type].metric[s]];
        char *p = out_reserve(o, 256);
        p = put_head(p, pl, d, s);
        p = put_value(p, sample_value(g, d, s, ts));
        if (pl->unit && m->unit && g->format == FMT_MIXED) {
            p = put_s(p, ",\"unit\":\"");
            p = put_s(p, m->unit);
            *p++ = '"';
        }
        p = put_ts(p, ts, rfc);
        p = put_s(p, "}\n");
        out_commit(o, p);
        g->lines++;
    }
}

static int device_out(gen_t *g, device_t *d, int64_t tick0)
{
    if (g->p_outage <= 0) return 0;
    if (d->out_until > tick0) return 1;
    if (runif(&d->orng) < g->p_outage) {
        d->out_until = tick0 + (int64_t)(rlog(&d->orng, 900, 6 * 3600.0) * 1000);
        return 1;
    }
    return 0;
}

static void emit_batch(gen_t *g, out_t *o, const plant_t *pl, int64_t ts, int rfc,
                       const uint8_t *live)
{
    char *p = out_reserve(o, 256);
    p = put_s(p, "{\"plant\":\"");
    p = put_s(p, pl->id);
    *p++ = '"';
    p = put_ts(p, ts, rfc);
    p = put_s(p, ",\"points\":[");
    out_commit(o, p);
    int first = 1;
    for (uint32_t k = 0; k < pl->ndev; k++) {
        if (!live[k]) continue;
        device_t *d = &g->dev[pl->dev0 + k];
        device_tick(g, d, ts);
        for (int s = 0; s < d->nslots; s++) {
            p = out_reserve(o, 200);
            if (!first) *p++ = ',';
            first = 0;
            p = put_s(p, "{\"device\":\"");
            p = put_s(p, d->name);
            p = put_s(p, "\",\"metric\":\"");
            p = put_s(p, METRICS[DEVTYPES[d->type].metric[s]].name);
            p = put_s(p, "\",\"value\":");
            p = put_value(p, sample_value(g, d, s, ts));
            *p++ = '}';
            out_commit(o, p);
        }
    }
    p = out_reserve(o, 4);
    p = put_s(p, "]}\n");
    out_commit(o, p);
    g->lines++;
}

static void emit_event(gen_t *g, out_t *o, const plant_t *pl, int64_t ts)
{
    char *p = out_reserve(o, 256);
    p = put_s(p, "{\"plant\":\"");
    p = put_s(p, pl->id);
    p = put_s(p, "\",\"device\":\"D-01\",\"event\":\"dust_cleaning_report\"");
    p = put_ts(p, ts, runif(&g->frng) < 0.85);
    p = put_s(p, "}\n");
    out_commit(o, p);
    g->lines++;
}

/* ------------------------------------------------------------- bad lines */

#define NBAD_KINDS 15

static void emit_bad(gen_t *g, out_t *o, long long j, int64_t ts)
{
    const plant_t *pl = &g->plant[rbelow(&g->frng, (uint64_t)g->plants)];
    const device_t *d = &g->dev[pl->dev0];
    const char *metric = METRICS[DEVTYPES[d->type].metric[0]].name;
    char *p = out_reserve(o, LONG_LINE + 512);
    char ok[256];
    snprintf(ok, sizeof ok, "{\"plant\":\"%s\",\"device\":\"%s\",\"metric\":\"%s\"",
                     pl->id, d->name, metric);
    switch (j % NBAD_KINDS) {
    case 0: /* truncated mid-object */
        p += sprintf(p, "%s,\"val", ok);
        break;
    case 1: /* value as a string */
        p += sprintf(p, "%s,\"value\":\"31.2\",\"ts\":%lld}", ok, (long long)ts);
        break;
    case 2: /* NaN literal (not JSON) */
        p += sprintf(p, "%s,\"value\":NaN,\"ts\":%lld}", ok, (long long)ts);
        break;
    case 3: /* missing plant */
        p += sprintf(p, "{\"device\":\"%s\",\"metric\":\"%s\",\"value\":12.5,\"ts\":%lld}",
                     d->name, metric, (long long)ts);
        break;
    case 4: /* oversized: valid JSON, over 64 KiB */
        p += sprintf(p, "%s,\"value\":12.5,\"ts\":%lld,\"note\":\"", ok, (long long)ts);
        memset(p, 'x', LONG_LINE);
        p += LONG_LINE;
        p = put_s(p, "\"}");
        break;
    case 5: /* number that overflows to infinity */
        p += sprintf(p, "%s,\"value\":1e999,\"ts\":%lld}", ok, (long long)ts);
        break;
    case 6: /* unparseable timestamp */
        p += sprintf(p, "%s,\"value\":12.5,\"ts\":\"yesterday\"}", ok);
        break;
    case 7: /* not JSON at all */
        p += sprintf(p, "PING gateway-%s alive", pl->id);
        break;
    case 8: /* top level is an array */
        p += sprintf(p, "[%s,\"value\":12.5,\"ts\":%lld}]", ok, (long long)ts);
        break;
    case 9: /* batch whose points are not an array */
        p += sprintf(p, "{\"plant\":\"%s\",\"ts\":%lld,\"points\":\"none\"}", pl->id,
                     (long long)ts);
        break;
    case 10: /* invalid UTF-8 in a string */
        p += sprintf(p, "{\"plant\":\"%s\",\"device\":\"\xff\xfe%s\",\"metric\":\"%s\","
                        "\"value\":12.5,\"ts\":%lld}",
                     pl->id, d->name, metric, (long long)ts);
        break;
    case 11: /* missing ts */
        p += sprintf(p, "%s,\"value\":12.5}", ok);
        break;
    case 12: /* trailing garbage */
        p += sprintf(p, "%s,\"value\":12.5,\"ts\":%lld}}garbage", ok, (long long)ts);
        break;
    case 13: /* null value */
        p += sprintf(p, "%s,\"value\":null,\"ts\":%lld}", ok, (long long)ts);
        break;
    default: /* unterminated string */
        p += sprintf(p, "{\"plant\":\"%s,\"device\":\"%s\"", pl->id, d->name);
        break;
    }
    *p++ = '\n';
    out_commit(o, p);
    g->lines++;
}

/* ----------------------------------------------------------- stream mode */

static int cmp_ts(const void *a, const void *b)
{
    const msg_t *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    if (x->plant != y->plant) return x->plant < y->plant ? -1 : 1;
    return x->dev < y->dev ? -1 : x->dev > y->dev;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* daily dust-cleaning reports, sorted by time */
static msg_t *build_events(gen_t *g, int64_t start, int64_t end, long *nev)
{
    int64_t d0 = (start + CST_MS) / DAY_MS, d1 = (end - 1 + CST_MS) / DAY_MS;
    long cap = 0;
    for (long i = 0; i < g->plants; i++)
        if (plant_has(&g->plant[i], IND_DUST)) cap += (long)(d1 - d0 + 1);
    msg_t *ev = xcalloc((size_t)cap, sizeof(msg_t));
    long n = 0;
    for (long i = 0; i < g->plants; i++) {
        plant_t *p = &g->plant[i];
        if (!plant_has(p, IND_DUST) || p->report == REP_NEVER) continue;
        rng_t r = rstream(g->seed, 5, (uint64_t)i);
        for (int64_t day = d0; day <= d1; day++) {
            int64_t ts = day * DAY_MS - CST_MS + 8 * HOUR_MS +
                         (int64_t)rbelow(&r, (uint64_t)(12 * HOUR_MS));
            double u = runif(&r);
            int rel = (int)(day - d0);
            if (p->report == REP_DAILY && u < 0.03) continue;
            if (p->report == REP_LAX && u < 0.35) continue;
            if (p->report == REP_GAP && rel >= p->gap_day && rel < p->gap_day + 4) continue;
            if (ts < start || ts >= end) continue;
            ev[n].ts = ts;
            ev[n].plant = (uint32_t)i;
            ev[n].dev = -2;
            n++;
        }
    }
    qsort(ev, (size_t)n, sizeof *ev, cmp_ts);
    *nev = n;
    return ev;
}

static void run_stream(gen_t *g, out_t *o)
{
    int64_t iv = (int64_t)llround(g->interval_s * 1000.0);
    int64_t start = g->start, end = start + (int64_t)llround(g->days * (double)DAY_MS);
    int64_t nticks = (end - start + iv - 1) / iv;
    int64_t jmax = iv / 10 < 1000 ? (iv / 10 > 0 ? iv / 10 : 1) : 1000;
    long nev = 0;
    msg_t *ev = g->format == FMT_MIXED ? build_events(g, start, end, &nev) : NULL;
    long ei = 0;
    msg_t *msg = xcalloc((size_t)(g->ndevices + nev + 1), sizeof(msg_t));
    uint8_t *live = xcalloc((size_t)g->ndevices + 1, 1);
    long long K = g->bad_lines, bj = 0;
    long long *pos = xcalloc((size_t)K + 1, sizeof(long long));

    for (int64_t k = 0; k < nticks; k++) {
        int64_t tick0 = start + k * iv;
        long n = 0;
        for (long i = 0; i < g->plants; i++) {
            plant_t *p = &g->plant[i];
            int batch = g->format == FMT_BATCH || (g->format == FMT_MIXED && p->batch);
            int any = 0;
            for (uint32_t j = 0; j < p->ndev; j++) {
                device_t *d = &g->dev[p->dev0 + j];
                live[p->dev0 + j] = (uint8_t)!device_out(g, d, tick0);
                if (!live[p->dev0 + j]) continue;
                any = 1;
                if (batch) continue;
                int64_t ts = tick0 + d->phase_ms + (int64_t)rbelow(&d->orng, (uint64_t)jmax);
                if (ts >= end) continue;
                msg[n++] = (msg_t){ts, (uint32_t)i, (int32_t)(p->dev0 + j)};
            }
            if (batch && any) {
                int64_t ts = tick0 + p->phase_ms + (int64_t)rbelow(&p->orng, (uint64_t)jmax);
                if (ts < end) msg[n++] = (msg_t){ts, (uint32_t)i, -1};
            }
        }
        while (ei < nev && ev[ei].ts < tick0 + iv) msg[n++] = ev[ei++];
        qsort(msg, (size_t)n, sizeof *msg, cmp_ts);

        /* bad lines scheduled for this tick, at random positions among its messages */
        long long nb = 0;
        while (bj < K && (int64_t)(((double)bj + 0.5) * (double)nticks / (double)K) == k)
            pos[nb++] = (long long)rbelow(&g->frng, (uint64_t)n + 1), bj++;
        qsort(pos, (size_t)nb, sizeof *pos, cmp_ll);
        long long pb = 0, bad_base = bj - nb;

        for (long m = 0; m <= n; m++) {
            while (pb < nb && pos[pb] == m) {
                emit_bad(g, o, bad_base + pb, m < n ? msg[m].ts : tick0);
                pb++;
            }
            if (m == n) break;
            msg_t *x = &msg[m];
            plant_t *p = &g->plant[x->plant];
            int rfc = g->format == FMT_MIXED && runif(&g->frng) < 0.10;
            if (x->dev >= 0) emit_single(g, o, p, &g->dev[x->dev], x->ts, rfc);
            else if (x->dev == -1) emit_batch(g, o, p, x->ts, rfc, live + p->dev0);
            else emit_event(g, o, p, x->ts);
        }
    }
    free(pos);
    free(live);
    free(msg);
    free(ev);
}

/* ------------------------------------------------------------ bench mode */

static void run_bench(gen_t *g, out_t *o)
{
    long long N = g->count, K = g->bad_lines;
    long long next_bad = K > 0 ? (long long)(0.5 * (double)N / (double)K) : -1, bj = 0;
    long S = g->nseries;
    /* flat series table: device index and slot */
    uint32_t *sdev = xcalloc((size_t)S, sizeof(uint32_t));
    uint8_t *sslot = xcalloc((size_t)S, 1);
    long s = 0;
    for (long i = 0; i < g->ndevices; i++)
        for (int k = 0; k < g->dev[i].nslots; k++) sdev[s] = (uint32_t)i, sslot[s] = (uint8_t)k, s++;
    double ms_per_event = 1000.0 / g->rate;
    s = 0;
    for (long long i = 0; i < N; i++) {
        int64_t ts = g->start + (int64_t)((double)i * ms_per_event);
        device_t *d = &g->dev[sdev[s]];
        int slot = sslot[s];
        if (i == next_bad) {
            emit_bad(g, o, bj, ts);
            bj++;
            next_bad = bj < K ? (long long)(((double)bj + 0.5) * (double)N / (double)K) : -1;
            if (next_bad == i) next_bad++; /* K > N: never stall */
        } else {
            if (slot == 0) device_tick(g, d, ts);
            char *p = out_reserve(o, 256);
            p = put_head(p, &g->plant[d->plant], d, slot);
            p = put_value(p, sample_value(g, d, slot, ts));
            p = put_s(p, ",\"ts\":");
            p = put_i64(p, ts);
            *p++ = '}';
            *p++ = '\n';
            out_commit(o, p);
            g->lines++;
        }
        if (++s == S) s = 0;
    }
    free(sdev);
    free(sslot);
}

/* ------------------------------------------------------------------- main */

static const char USAGE[] =
    "usage: gen [--plants N] [--devices-per-plant D] [--days DAYS] [--interval SEC]\n"
    "           [--start TS_MS] [--seed S] [--breach-rate R] [--outage-rate R]\n"
    "           [--rate EVENTS_PER_SEC] [--registry FILE] [--telemetry FILE|-]\n"
    "           [--format single|batch|mixed] [--bad-lines K] [--count N]\n"
    "\n"
    "Deterministic synthetic data for vigil: the same arguments give the same bytes.\n"
    "  --plants N             plants (default 10)\n"
    "  --devices-per-plant D  devices per plant, typed by the plant's industries (default 4)\n"
    "  --days DAYS            event-time span of the telemetry, may be fractional (default 1)\n"
    "  --interval SEC         reporting interval per device (default 60)\n"
    "  --start TS_MS          first event time, epoch ms (default 1763884800000,\n"
    "                         2025-11-23T08:00:00Z)\n"
    "  --seed S               seed (default 1)\n"
    "  --breach-rate R        probability per device per day that a breach episode starts\n"
    "                         (default 0.05)\n"
    "  --outage-rate R        probability per device per day of going silent for 15 min-6 h\n"
    "                         (default 0.02 with --format mixed, else 0)\n"
    "  --registry FILE        write the registry YAML\n"
    "  --telemetry FILE|-     write NDJSON telemetry in event-time order (default: stdout\n"
    "                         when --registry is not given)\n"
    "  --format F             single: one sample per line; batch: one gateway batch per plant\n"
    "                         and interval; mixed (default): ~30%% of plants send batches,\n"
    "                         ~10%% of ts are RFC 3339 +08:00 strings, ~20%% of plants add\n"
    "                         \"unit\", dust plants file daily dust_cleaning_report events\n"
    "                         (some plants skip days, some never file), devices go offline\n"
    "  --bad-lines K          inject K malformed lines spread through the output\n"
    "  --count N              bench mode: exactly N single-sample lines (bad lines included)\n"
    "                         cycling over all series, ts advancing at --rate\n"
    "  --rate R               bench mode event-time rate, events/s (default 100000)\n"
    "Prints \"gen: wrote N lines, P plants, S series\" to stderr.\n";

static void usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "gen: %s%s%s\n%s", msg, arg ? ": " : "", arg ? arg : "", USAGE);
    exit(2);
}

static long long parse_ll(const char *opt, const char *s, long long lo, long long hi)
{
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || e == s || *e || v < lo || v > hi) usage_error("bad value for", opt);
    return v;
}

static double parse_d(const char *opt, const char *s, double lo, double hi)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || e == s || *e || !(v >= lo && v <= hi)) usage_error("bad value for", opt);
    return v;
}

int main(int argc, char **argv)
{
    gen_t g = {.plants = 10, .devs = 4, .days = 1, .interval_s = 60, .breach_rate = 0.05,
               .rate = 100000, .start = 1763884800000LL, .seed = 1, .format = FMT_MIXED,
               .count = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strncmp(a, "--", 2)) usage_error("unexpected argument", a);
        const char *eq = strchr(a, '=');
        char name[64];
        const char *v;
        if (eq) {
            size_t n = (size_t)(eq - a);
            if (n >= sizeof name) usage_error("unknown option", a);
            memcpy(name, a, n);
            name[n] = 0;
            v = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
            if (i + 1 >= argc) usage_error("missing value for", a);
            v = argv[++i];
        }
        if (!strcmp(name, "--plants")) g.plants = (long)parse_ll(name, v, 1, 10000000);
        else if (!strcmp(name, "--devices-per-plant")) g.devs = (long)parse_ll(name, v, 1, 999);
        else if (!strcmp(name, "--days")) g.days = parse_d(name, v, 0.0001, 3660);
        else if (!strcmp(name, "--interval")) g.interval_s = parse_d(name, v, 0.01, 86400);
        else if (!strcmp(name, "--start"))
            g.start = parse_ll(name, v, 0, 253402300799999LL); /* through year 9999 */
        else if (!strcmp(name, "--seed")) {
            char *e;
            errno = 0;
            g.seed = strtoull(v, &e, 0);
            if (errno || e == v || *e || *v == '-') usage_error("bad value for", name);
        } else if (!strcmp(name, "--breach-rate")) g.breach_rate = parse_d(name, v, 0, 1e6);
        else if (!strcmp(name, "--outage-rate"))
            g.outage_rate = parse_d(name, v, 0, 1e6), g.outage_set = 1;
        else if (!strcmp(name, "--rate")) g.rate = parse_d(name, v, 1e-6, 1e12);
        else if (!strcmp(name, "--registry")) g.registry = v;
        else if (!strcmp(name, "--telemetry")) g.telemetry = v;
        else if (!strcmp(name, "--format")) {
            if (!strcmp(v, "single")) g.format = FMT_SINGLE;
            else if (!strcmp(v, "batch")) g.format = FMT_BATCH;
            else if (!strcmp(v, "mixed")) g.format = FMT_MIXED;
            else usage_error("--format must be single, batch or mixed, not", v);
        } else if (!strcmp(name, "--bad-lines"))
            g.bad_lines = parse_ll(name, v, 0, 100000000);
        else if (!strcmp(name, "--count")) g.count = parse_ll(name, v, 0, 1000000000000LL);
        else usage_error("unknown option", a);
    }
    if (!g.registry && !g.telemetry) g.telemetry = "-";
    if (g.plants * g.devs > 200000000L) usage_error("too many devices", NULL);
    if (g.count >= 0 && g.format != FMT_MIXED && g.format != FMT_SINGLE)
        usage_error("--count writes single samples; --format batch does not apply", NULL);
    if (!g.outage_set) g.outage_rate = g.format == FMT_MIXED && g.count < 0 ? 0.02 : 0;

    build_model(&g);
    if (g.registry) write_registry(&g);
    if (g.telemetry) {
        out_t o = {0};
        g.frng = rstream(g.seed, 6, 0);
        g.dt_s = g.count >= 0 ? (double)g.nseries / g.rate : g.interval_s;
        g.ou_a = exp(-g.dt_s / 1800.0);
        g.ou_b = sqrt(1 - g.ou_a * g.ou_a);
        g.p_episode = fmin(1.0, g.breach_rate * g.dt_s / 86400.0);
        g.p_outage = g.count >= 0 ? 0 : fmin(1.0, g.outage_rate * g.dt_s / 86400.0);
        out_open(&o, g.telemetry);
        if (g.count >= 0) run_bench(&g, &o);
        else run_stream(&g, &o);
        out_close(&o);
    }
    fprintf(stderr, "gen: wrote %lld lines, %ld plants, %ld series\n", g.lines, g.plants,
            g.nseries);
    free(g.plant);
    free(g.dev);
    free(g.region);
    free(g.county_code);
    free(g.county_short);
    return 0;
}
