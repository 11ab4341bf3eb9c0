/*
 * test_window.c: bucketed windows and window functions (engine/window.h).
 * Owns: function names, default resolutions and sizes, every window function
 * on hand-worked cases (aligned samples, the (now - w, now] boundary and the
 * documented bucket error, rate with 0/1/2+ samples, count as a sum of 1/0,
 * out-of-order and too-old samples, clock jumps), and long random runs checked
 * against brute-force references over the list of samples pushed.
 * Must never: allocate windows on the heap (they live in one static arena with
 * a guard behind them), use the wall clock or an unseeded random source, or
 * take an expected value from the engine: table values are worked out by hand
 * from the samples beside them.
 */
#include "vgtest.h"

#include "engine/window.h"

#include <math.h>
#include <string.h>

/* A string literal and its length (without the NUL). */
#define S(x) x, sizeof(x) - 1

/* Expected values in enum vg_wfunc order; count is the sum of 1/0 pushes. */
#define W(avg, min, max, sum, last, delta, rate) {avg, min, max, sum, sum, last, delta, rate}
#define EMPTY W(NAN, NAN, NAN, 0, NAN, 0, 0)
#define ONE(v) W(v, v, v, v, v, 0, 0)

/* Relative tolerance per function: only rate divides by a time. */
static const double tol_of[VG_WFUNC_N] = {[VG_W_RATE] = 1e-12};

/* Equal, or both NaN, within tol relative to the expected value. */
static int same(double got, double want, double tol)
{
    return (isnan(got) && isnan(want)) || fabs(got - want) <= tol * fabs(want) ||
           got == want;
}

/* ---- the arena: every window lives here, followed by a guard ------------- */

#define ARENA_BYTES (1u << 20)
#define GUARD_BYTES 256
static _Alignas(64) unsigned char arena[ARENA_BYTES + GUARD_BYTES];

static struct vg_window *win_make(vg_ts width, vg_ts res)
{
    size_t bytes = vg_window_bytes(width, res);
    ck_assert_uint_le(bytes, ARENA_BYTES);
    memset(arena, 0xA5, sizeof arena);
    struct vg_window *win = (struct vg_window *)arena;
    vg_window_init(win, width, res);
    return win;
}

/* Nothing was written behind the window's vg_window_bytes(). */
static void guard_check(const struct vg_window *win)
{
    static unsigned char pattern[GUARD_BYTES];
    memset(pattern, 0xA5, sizeof pattern);
    size_t bytes = vg_window_bytes(win->width, win->res);
    ck_assert_int_eq(memcmp(arena + bytes, pattern, GUARD_BYTES), 0);
}

/* ---- names ------------------------------------------------------------- */

struct name_case {
    const char *s;
    size_t n;
    int f;
};

static const struct name_case names[] = {
    {S("avg"), VG_W_AVG},     {S("min"), VG_W_MIN},   {S("max"), VG_W_MAX},
    {S("sum"), VG_W_SUM},     {S("count"), VG_W_COUNT}, {S("last"), VG_W_LAST},
    {S("delta"), VG_W_DELTA}, {S("rate"), VG_W_RATE},
    {S("Avg"), -1},           {S("av"), -1},          {S("average"), -1},
    {S(""), -1},              {S("counts"), -1},      {S("first"), -1},
    {"counts", 5, VG_W_COUNT}, /* only n bytes are read */
    {"rates", 4, VG_W_RATE},
};

START_TEST(parses_names)
{
    const struct name_case *c = &names[_i];
    ck_assert_int_eq(vg_wfunc_parse(c->s, c->n), c->f);
}
END_TEST

static const char *const func_names[VG_WFUNC_N] = {"avg", "min", "max", "sum",
                                                   "count", "last", "delta", "rate"};

START_TEST(names_functions)
{
    ck_assert_str_eq(vg_wfunc_name((int)_i), func_names[_i]);
    ck_assert_int_eq(vg_wfunc_parse(func_names[_i], strlen(func_names[_i])), (int)_i);
}
END_TEST

START_TEST(names_nothing_else)
{
    ck_assert_ptr_null(vg_wfunc_name(-1));
    ck_assert_ptr_null(vg_wfunc_name(VG_WFUNC_N));
}
END_TEST

/* ---- resolution and size ----------------------------------------------- */

struct res_case {
    vg_ts width;
    vg_ts res;     /* the default resolution */
    uint32_t nb;   /* ceil(width / res) + 1 */
    size_t bytes;  /* 32 + 64 * nb */
};

static const struct res_case res_cases[] = {
    {60000, 1000, 61, 3936},          /* 1m */
    {600000, 10000, 61, 3936},        /* 10m */
    {3600000, 60000, 61, 3936},       /* 1h */
    {86400000, 1440000, 61, 3936},    /* 24h */
    {30000, 500, 61, 3936},           /* 30s */
    {1, 1, 2, 160},                   /* 1ms: ceil(1/60) = 1 */
    {59, 1, 60, 3872},
    {60, 1, 61, 3936},
    {61, 2, 32, 2080},                /* ceil(61/60) = 2, ceil(61/2) + 1 = 32 */
    {90001, 1501, 61, 3936},          /* ceil(90001/60) = 1501; 60 * 1501 = 90060 */
    {604800000, 10080000, 61, 3936},  /* 7d */
};

START_TEST(default_resolution)
{
    const struct res_case *c = &res_cases[_i];
    ck_assert_int_eq(vg_window_default_res(c->width), c->res);
    ck_assert_uint_eq(vg_window_bytes(c->width, 0), c->bytes);
    ck_assert_uint_eq(vg_window_bytes(c->width, c->res), c->bytes);
    struct vg_window *win = win_make(c->width, 0);
    ck_assert_int_eq(win->width, c->width);
    ck_assert_int_eq(win->res, c->res);
    ck_assert_uint_eq(win->nb, c->nb);
    guard_check(win);
}
END_TEST

/* An explicit resolution: nb = ceil(w / res) + 1. */
struct res_explicit_case {
    vg_ts width, res;
    size_t bytes;
};

static const struct res_explicit_case res_explicit[] = {
    {60000, 15000, 32 + 5 * 64},
    {60000, 7000, 32 + 10 * 64},      /* ceil(60000/7000) = 9 */
    {6000, 1, 32 + 6001 * 64},
    {1000, 5000, 32 + 2 * 64},        /* res wider than the window */
};

START_TEST(explicit_resolution)
{
    const struct res_explicit_case *c = &res_explicit[_i];
    ck_assert_uint_eq(vg_window_bytes(c->width, c->res), c->bytes);
    struct vg_window *win = win_make(c->width, c->res);
    ck_assert_int_eq(win->res, c->res);
    guard_check(win);
}
END_TEST

/* Whatever the width, the default resolution keeps a window within 61 buckets. */
START_TEST(default_stays_within_61_buckets)
{
    for (vg_ts width = 1; width <= 200000; width++)
        ck_assert_uint_le(vg_window_bytes(width, 0), 32 + 61 * 64);
    for (vg_ts width = 200000; width <= 8 * 365 * 86400000LL; width = width * 3 + 7)
        ck_assert_uint_le(vg_window_bytes(width, 0), 32 + 61 * 64);
}
END_TEST

START_TEST(bucket_is_one_cache_line)
{
    ck_assert_uint_eq(sizeof(struct vg_window_bucket), 64);
    ck_assert_uint_eq(sizeof(struct vg_window), 32);
}
END_TEST

/* ---- hand-worked cases --------------------------------------------------- */

struct sample {
    vg_ts ts;
    double v;
};

/* n samples at t0 + i*dt with values v0 + i*dv, pushed before the list. */
struct run {
    int n;
    vg_ts t0, dt;
    double v0, dv;
};

struct wcase {
    const char *name;
    vg_ts width, res; /* res 0: the default */
    struct run run;
    int n;
    unsigned too_old; /* bit i: push i returns 1 (ignored as too old) */
    struct sample s[8];
    vg_ts now;
    double want[VG_WFUNC_N];
};

static void check_case(const struct wcase *c, int f)
{
    struct vg_window *win = win_make(c->width, c->res);
    for (int i = 0; i < c->run.n; i++)
        ck_assert_int_eq(vg_window_push(win, c->run.t0 + i * c->run.dt,
                                        c->run.v0 + i * c->run.dv), 0);
    for (int i = 0; i < c->n; i++)
        ck_assert_msg(vg_window_push(win, c->s[i].ts, c->s[i].v) == (int)(c->too_old >> i & 1),
                      "%s: push %d at %lld", c->name, i, (long long)c->s[i].ts);
    double got = vg_window_eval(win, f, c->now);
    ck_assert_msg(same(got, c->want[f], tol_of[f]), "%s: %s = %.17g, want %.17g", c->name,
                  vg_wfunc_name(f), got, c->want[f]);
    guard_check(win);
}

#define CASE_TEST(test, table)                                                   \
    START_TEST(test)                                                             \
    {                                                                            \
        check_case(&table[_i / VG_WFUNC_N], (int)(_i % VG_WFUNC_N));             \
    }                                                                            \
    END_TEST

#define FIVE {{1000, 4}, {2000, -2}, {3000, 10}, {30000, 7}, {60000, 1}}

/* Samples on bucket boundaries (multiples of res): results are exact. */
static const struct wcase aligned[] = {
    {"all five in (0, 60s]", 60000, 0, {0}, 5, 0, FIVE, 60000,
     W(4, -2, 10, 20, 1, -3, -3.0 / 59)},
    {"sample at exactly now - w is out", 60000, 0, {0}, 5, 0, FIVE, 61000,
     W(4, -2, 10, 16, 1, 3, 3.0 / 58)},
    {"two slid out", 60000, 0, {0}, 5, 0, FIVE, 62000, W(6, 1, 10, 18, 1, -9, -9.0 / 57)},
    {"30s sample at now - w is out", 60000, 0, {0}, 5, 0, FIVE, 90000, ONE(1)},
    {"unaligned now, aligned samples", 60000, 0, {0}, 5, 0, FIVE, 119999, ONE(1)},
    {"unaligned now keeps all five", 60000, 0, {0}, 5, 0, FIVE, 60500,
     W(4, -2, 10, 20, 1, -3, -3.0 / 59)},
    {"everything slid out", 60000, 0, {0}, 5, 0, FIVE, 120000, EMPTY},
    {"never pushed", 60000, 0, {0}, 0, 0, {{0}}, 0, EMPTY},
    {"never pushed, later now", 60000, 0, {0}, 0, 0, {{0}}, 123456, EMPTY},
    {"several samples per timestamp", 60000, 0, {0}, 5, 0,
     {{5000, 3}, {5000, 9}, {5000, -1}, {7000, 2}, {7000, 8}}, 7000,
     W(4.2, -1, 9, 21, 8, 5, 2.5)},
    {"count pushes 1 and 0", 60000, 0, {0}, 5, 0,
     {{1000, 1}, {2000, 0}, {3000, 1}, {4000, 1}, {5000, 0}}, 5000,
     W(0.6, 0, 1, 3, 0, -1, -0.25)},
    {"10m window, 61 samples, the oldest out", 600000, 0, {61, 0, 10000, 0, 1}, 0, 0, {{0}},
     600000, W(30.5, 1, 60, 1830, 60, 59, 0.1)},
    {"negative timestamps", 60000, 0, {0}, 3, 0, {{-3000, 5}, {-1000, -5}, {0, 2}}, 0,
     W(2.0 / 3, -5, 5, 2, 2, -3, -1)},
    {"explicit 15s buckets", 60000, 15000, {5, 15000, 15000, 1, 1}, 0, 0, {{0}}, 75000,
     W(3.5, 2, 5, 14, 5, 3, 3.0 / 45)},
    {"w not a multiple of res (1501)", 90001, 0, {61, 0, 1501, 0, 1}, 0, 0, {{0}}, 90060,
     W(30.5, 1, 60, 1830, 60, 59, 59 / 88.559)},
};
CASE_TEST(aligned_functions, aligned)

/*
 * The boundary: (now - w, now] with w = 60s, res = 1s. The bucket holding
 * now - w is left out whole when it holds a sample at or before now - w.
 */
static const struct wcase boundary[] = {
    {"at now - w: out", 60000, 0, {0}, 1, 0, {{0, 5}}, 60000, EMPTY},
    {"at now - w + 1ms: in", 60000, 0, {0}, 1, 0, {{1, 5}}, 60000, ONE(5)},
    {"at now: in", 60000, 0, {0}, 1, 0, {{60000, 5}}, 60000, ONE(5)},
    {"unaligned, just before now: in", 60000, 0, {0}, 1, 0, {{60400, 2}}, 60500, ONE(2)},
    {"documented miss: now - w + 1 shares a bucket with now - w", 60000, 0, {0}, 3, 0,
     {{0, 5}, {1, 3}, {60000, 1}}, 60000, ONE(1)},
    {"documented miss: bucket straddles now - w", 60000, 0, {0}, 3, 0,
     {{500, 5}, {999, 3}, {30000, 1}}, 60500, ONE(1)},
    {"bucket wholly after now - w: kept", 60000, 0, {0}, 3, 0,
     {{501, 5}, {999, 3}, {30000, 1}}, 60500, W(3, 1, 5, 9, 1, -4, -4 / 29.499)},
    {"one ms later it straddles: dropped", 60000, 0, {0}, 3, 0,
     {{501, 5}, {999, 3}, {30000, 1}}, 60501, ONE(1)},
    {"negative times: bucket [-2s, -1s) straddles now - w", 60000, 0, {0}, 3, 0,
     {{-1500, 5}, {-1200, 3}, {58700, 1}}, 58700, ONE(1)},
    {"negative times: bucket [-2s, -1s) wholly after now - w", 60000, 0, {0}, 3, 0,
     {{-1200, 3}, {-1100, 4}, {58700, 1}}, 58700, W(8.0 / 3, 1, 4, 8, 1, -2, -2 / 59.9)},
    {"next bucket after now - w: kept", 60000, 0, {0}, 3, 0,
     {{999, 5}, {1000, 3}, {30000, 1}}, 60999, W(2, 1, 3, 4, 1, -2, -2.0 / 29)},
};
CASE_TEST(window_boundary, boundary)

static const struct wcase rates[] = {
    {"no samples", 60000, 0, {0}, 0, 0, {{0}}, 5000, EMPTY},
    {"one sample", 60000, 0, {0}, 1, 0, {{1000, 10}}, 5000, ONE(10)},
    {"two samples", 60000, 0, {0}, 2, 0, {{1000, 10}, {3000, 16}}, 3000,
     W(13, 10, 16, 26, 16, 6, 3)},
    {"three samples: newest - oldest", 60000, 0, {0}, 3, 0,
     {{1000, 10}, {2000, 100}, {5000, 2}}, 5000, W(112.0 / 3, 2, 100, 112, 2, -8, -2)},
    {"two samples, one timestamp", 60000, 0, {0}, 2, 0, {{1000, 5}, {1000, 9}}, 1000,
     W(7, 5, 9, 14, 9, 4, 0)},
    {"within one bucket", 60000, 0, {0}, 2, 0, {{1500, 0}, {2250, 3}}, 2250,
     W(1.5, 0, 3, 3, 3, 3, 4)},
    {"older sample out of the window", 60000, 0, {0}, 2, 0, {{0, 100}, {60000, 5}}, 60000,
     ONE(5)},
    {"1s window, 17ms buckets, negative now - w", 1000, 0, {0}, 2, 0, {{0, 0.5}, {250, 1.25}},
     250, W(0.875, 0.5, 1.25, 1.75, 1.25, 0.75, 3)},
};
CASE_TEST(rate_by_sample_count, rates)

static const struct wcase order[] = {
    {"late, inside the window", 60000, 0, {0}, 3, 0, {{10000, 1}, {20000, 2}, {15000, 3}},
     20000, W(2, 1, 3, 6, 2, 1, 0.1)},
    {"late, older than the oldest", 60000, 0, {0}, 3, 0,
     {{10000, 1}, {20000, 2}, {5000, 7}}, 20000, W(10.0 / 3, 1, 7, 10, 2, -5, -5.0 / 15)},
    {"late, inside the newest bucket", 60000, 0, {0}, 3, 0,
     {{20000, 1}, {20900, 4}, {20100, 9}}, 20900, W(14.0 / 3, 1, 9, 14, 4, 3, 3 / 0.9)},
    {"late, becomes its bucket's first", 60000, 0, {0}, 3, 0,
     {{20500, 1}, {30000, 2}, {20100, 5}}, 30000, W(8.0 / 3, 1, 5, 8, 2, -3, -3 / 9.9)},
    {"late, becomes an older bucket's last", 60000, 0, {0}, 3, 0,
     {{20100, 1}, {30000, 2}, {20900, 5}}, 30000, W(8.0 / 3, 1, 5, 8, 2, 1, 1 / 9.9)},
    {"equal timestamps: the first arrival is the oldest", 60000, 0, {0}, 3, 0,
     {{10000, 1}, {20000, 2}, {10000, 6}}, 20000, W(3, 1, 6, 9, 2, 1, 0.1)},
    {"equal timestamps: the last arrival is the newest", 60000, 0, {0}, 3, 0,
     {{10000, 1}, {20000, 2}, {20000, 6}}, 20000, W(3, 1, 6, 9, 6, 5, 0.5)},
    {"too old: at newest - w, ignored", 60000, 0, {0}, 3, 0x2,
     {{70000, 1}, {10000, 1000}, {10001, 6}}, 70000, W(3.5, 1, 6, 7, 1, -5, -5 / 59.999)},
    {"far too old: ignored", 60000, 0, {0}, 2, 0x2, {{70000, 1}, {-5000000, 1000}}, 70000,
     ONE(1)},
    {"late, evaluated at its own time", 60000, 0, {0}, 3, 0,
     {{10000, 1}, {20000, 2}, {15000, 3}}, 15000, W(2, 1, 3, 4, 3, 2, 0.4)},
    {"documented: at its own time, its bucket's later samples count", 60000, 0, {0}, 3, 0,
     {{15000, 1}, {15900, 2}, {15500, 4}}, 15500, W(7.0 / 3, 1, 4, 7, 2, 1, 1 / 0.9)},
    {"documented: at its own time, reused buckets are missed", 60000, 0, {0}, 3, 0,
     {{1000, 5}, {62000, 1}, {30000, 3}}, 30000, ONE(3)},
};
CASE_TEST(out_of_order, order)

/* Sixty samples of 1 at 0s..59s, then a jump (w = 60s, res = 1s, 61 buckets). */
#define SIXTY {60, 0, 1000, 1, 0}

static const struct wcase jumps[] = {
    {"forward by less than w keeps the window", 60000, 0, SIXTY, 1, 0, {{89000, 7}}, 89000,
     W(37.0 / 31, 1, 7, 37, 7, 6, 6.0 / 59)},
    {"forward by just over w clears", 60000, 0, SIXTY, 1, 0, {{119001, 7}}, 119001, ONE(7)},
    {"onto a slot holding an old bucket", 60000, 0, SIXTY, 1, 0, {{120000, 7}}, 120000, ONE(7)},
    {"by a multiple of the ring", 60000, 0, SIXTY, 1, 0, {{61059000, 7}}, 61059000, ONE(7)},
    {"by 10^15 ms", 60000, 0, SIXTY, 1, 0, {{1000000000000000, 7}}, 1000000000000000, ONE(7)},
    {"pre-jump samples are then too old", 60000, 0, SIXTY, 2, 0x2,
     {{120000, 7}, {59000, 9}}, 120000, ONE(7)},
    {"a late sample reuses a stale slot", 60000, 0, SIXTY, 2, 0, {{120000, 7}, {61000, 2}},
     120000, W(4.5, 2, 7, 9, 7, 5, 5.0 / 59)},
    {"evaluated far ahead without a sample", 60000, 0, SIXTY, 0, 0, {{0}}, 1000000000000,
     EMPTY},
    {"evaluated ahead: half slid out", 60000, 0, SIXTY, 0, 0, {{0}}, 89000,
     W(1, 1, 1, 30, 1, 0, 0)},
};
CASE_TEST(clock_jumps, jumps)

/* count(value > 50, 30s) over a series 10s apart: push the predicate as 1/0. */
START_TEST(count_predicate)
{
    static const double value[] = {10, 60, 70, 20, 80, 5, 5, 5};
    static const double want[] = {0, 1, 2, 2, 2, 1, 1, 0};
    struct vg_window *win = win_make(30000, 0);
    for (size_t i = 0; i < VG_ARRAY_LEN(value); i++) {
        vg_ts ts = 10000 * (vg_ts)(i + 1);
        ck_assert_int_eq(vg_window_push(win, ts, value[i] > 50), 0);
        ck_assert_double_eq(vg_window_eval(win, VG_W_COUNT, ts), want[i]);
    }
    guard_check(win);
}
END_TEST

/* ---- random runs against brute-force references -------------------------- */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* Samples selected by a reference, reduced to the eight functions. */
struct ref {
    int n;
    double sum, min, max;
    vg_ts old_ts, new_ts;
    double old_v, new_v;
};

static void ref_add(struct ref *r, vg_ts ts, double v)
{
    int older = r->n == 0 || ts < r->old_ts;   /* ties: the earlier arrival stays */
    int newer = r->n == 0 || ts >= r->new_ts;  /* ties: the later arrival wins */
    r->old_ts = older ? ts : r->old_ts;
    r->old_v = older ? v : r->old_v;
    r->new_ts = newer ? ts : r->new_ts;
    r->new_v = newer ? v : r->new_v;
    r->min = fmin(r->min, v);
    r->max = fmax(r->max, v);
    r->sum += v;
    r->n++;
}

static double ref_value(const struct ref *r, int f)
{
    double delta = r->n >= 2 ? r->new_v - r->old_v : 0.0;
    double secs = (double)(r->new_ts - r->old_ts) / 1000.0;
    double v[VG_WFUNC_N] = {
        [VG_W_AVG] = r->n ? r->sum / r->n : NAN,
        [VG_W_MIN] = r->min,
        [VG_W_MAX] = r->max,
        [VG_W_SUM] = r->sum,
        [VG_W_COUNT] = r->sum,
        [VG_W_LAST] = r->n ? r->new_v : NAN,
        [VG_W_DELTA] = delta,
        [VG_W_RATE] = r->n >= 2 && secs > 0 ? delta / secs : 0.0,
    };
    return v[f];
}

static void check_against(const struct vg_window *win, const struct ref *r, vg_ts now,
                          int step)
{
    for (int f = 0; f < VG_WFUNC_N; f++) {
        double got = vg_window_eval(win, f, now), want = ref_value(r, f);
        ck_assert_msg(same(got, want, tol_of[f]), "step %d now %lld: %s = %.17g, want %.17g",
                      step, (long long)now, vg_wfunc_name(f), got, want);
    }
}

#define MAX_SAMPLES 20000
/* A pushed sample and what vg_window_push returned for it (1: too old). */
struct pushed {
    vg_ts ts;
    double v;
    int rc;
};
static struct pushed samples[MAX_SAMPLES], selected[MAX_SAMPLES];

struct rand_case {
    uint64_t seed;
    vg_ts width, res; /* res 0: the default */
    int n;
    vg_ts start;      /* the first sample's time, about */
};

static const struct rand_case aligned_runs[] = {
    {1, 60000, 0, 20000, 1000000000},
    {2, 600000, 0, 20000, 1000000000},
    {3, 90001, 0, 10000, 1000000000},
    {4, 60000, 15000, 10000, 1000000000},
    {5, 5000, 1, 3000, 1000000000},    /* 5001 buckets of 1 ms */
    {6, 3600000, 0, 20000, 1000000000},
    {7, 60000, 0, 20000, -20000000},   /* crosses 0 */
};

/*
 * Timestamps on multiples of res, in order, half of them sharing the previous
 * timestamp (so many samples per bucket), one in 256 after a jump of more than
 * 1..4 windows; integer
 * values. The reference is the definition itself: every sample in
 * (now - w, now], evaluated at each sample's time.
 */
START_TEST(random_aligned_is_exact)
{
    const struct rand_case *c = &aligned_runs[_i];
    struct vg_window *win = win_make(c->width, c->res);
    size_t bytes = vg_window_bytes(win->width, win->res);
    vg_ts res = win->res;
    uint64_t rng = c->seed;
    vg_ts ts = c->start / res * res;
    for (int i = 0; i < c->n; i++) {
        uint64_t r = rng_next(&rng);
        static const vg_ts gaps[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 4, 5};
        vg_ts jump = ((r >> 16) % 256 == 0) * (vg_ts)(1 + (r >> 24) % 4) * (c->width / res + 1);
        ts += (gaps[r % 16] + jump) * res;
        double v = (double)((int64_t)((r >> 32) % 201) - 100);
        samples[i] = (struct pushed){ts, v, 0};
        ck_assert_int_eq(vg_window_push(win, ts, v), 0);

        struct ref ref = {0, 0.0, NAN, NAN, 0, 0, 0.0, 0.0};
        int first = i;
        for (; first > 0 && samples[first - 1].ts > ts - c->width; first--)
            ;
        for (int j = first; j <= i; j++)
            ref_add(&ref, samples[j].ts, samples[j].v);
        check_against(win, &ref, ts, i);
    }
    ck_assert_uint_eq(vg_window_bytes(win->width, win->res), bytes);
    guard_check(win);
}
END_TEST

static const struct rand_case unaligned_runs[] = {
    {11, 60000, 0, 4000, 5000000},
    {12, 600000, 0, 4000, 5000000},
    {13, 90001, 0, 4000, 5000000},
    {14, 60000, 7000, 4000, 5000000},
    {15, 1000, 0, 4000, 5000000},
    {16, 60000, 0, 4000, -3000000},    /* crosses 0 */
};

/*
 * Timestamps anywhere (not on bucket boundaries), one in eight late by up to
 * 1.5 windows, evaluated at the newest sample's time. The reference applies
 * the documented rule to the list of samples: a sample is counted iff it was
 * taken, lies in (now - w, now], and its bucket holds no taken sample at or
 * before now - w. It also checks the stated bound: every sample the rule
 * misses lies in (now - w, B + res), B the start of now - w's bucket.
 */
START_TEST(random_unaligned_follows_the_documented_rule)
{
    const struct rand_case *c = &unaligned_runs[_i];
    struct vg_window *win = win_make(c->width, c->res);
    vg_ts res = win->res, w = c->width;
    uint64_t rng = c->seed;
    vg_ts newest = c->start;
    for (int i = 0; i < c->n; i++) {
        uint64_t r = rng_next(&rng);
        int late = (r % 8) == 0;
        vg_ts jitter = (vg_ts)((r >> 8) % (uint64_t)(w + w / 2));
        vg_ts fwd = (vg_ts)((r >> 8) % (uint64_t)(w / 20 + 2));
        vg_ts ts = late ? newest - jitter : newest + fwd;
        double v = (double)((int64_t)((r >> 40) % 201) - 100);
        int rc = ts <= newest - w; /* too old for every window from here on */
        newest = ts > newest ? ts : newest;
        samples[i] = (struct pushed){ts, v, rc};
        ck_assert_int_eq(vg_window_push(win, ts, v), rc);

        vg_ts lo = newest - w;
        int64_t ks = floor_div(lo, res);
        int straddles = 0;
        for (int j = 0; j <= i; j++)
            straddles |= !samples[j].rc && floor_div(samples[j].ts, res) == ks &&
                         samples[j].ts <= lo;
        int m = 0, missed_beyond_bound = 0;
        for (int j = 0; j <= i; j++) {
            const struct pushed *s = &samples[j];
            int in_window = !s->rc && s->ts > lo && s->ts <= newest;
            int counted = in_window && !(straddles && floor_div(s->ts, res) == ks);
            missed_beyond_bound += in_window && !counted && s->ts >= (ks + 1) * res;
            selected[m] = *s;
            m += counted;
        }
        struct ref ref = {0, 0.0, NAN, NAN, 0, 0, 0.0, 0.0};
        for (int j = 0; j < m; j++)
            ref_add(&ref, selected[j].ts, selected[j].v);
        ck_assert_int_eq(missed_beyond_bound, 0);
        check_against(win, &ref, newest, i);
    }
    guard_check(win);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("window");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, parses_names, 0, VG_ARRAY_LEN(names));
    tcase_add_loop_test(tc, names_functions, 0, VG_WFUNC_N);
    tcase_add_test(tc, names_nothing_else);
    tcase_add_loop_test(tc, default_resolution, 0, VG_ARRAY_LEN(res_cases));
    tcase_add_loop_test(tc, explicit_resolution, 0, VG_ARRAY_LEN(res_explicit));
    tcase_add_test(tc, default_stays_within_61_buckets);
    tcase_add_test(tc, bucket_is_one_cache_line);
    tcase_add_loop_test(tc, aligned_functions, 0, VG_ARRAY_LEN(aligned) * VG_WFUNC_N);
    tcase_add_loop_test(tc, window_boundary, 0, VG_ARRAY_LEN(boundary) * VG_WFUNC_N);
    tcase_add_loop_test(tc, rate_by_sample_count, 0, VG_ARRAY_LEN(rates) * VG_WFUNC_N);
    tcase_add_loop_test(tc, out_of_order, 0, VG_ARRAY_LEN(order) * VG_WFUNC_N);
    tcase_add_loop_test(tc, clock_jumps, 0, VG_ARRAY_LEN(jumps) * VG_WFUNC_N);
    tcase_add_test(tc, count_predicate);
    tcase_add_loop_test(tc, random_aligned_is_exact, 0, VG_ARRAY_LEN(aligned_runs));
    tcase_add_loop_test(tc, random_unaligned_follows_the_documented_rule, 0,
                        VG_ARRAY_LEN(unaligned_runs));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
