/*
 * window.c: bucketed sliding windows and the window functions over them.
 * Owns: the bucket ring arithmetic (floor division of timestamps, slots, lazy
 * reuse) and the function table. Must never: allocate, lock, or loop over
 * elapsed time; see window.h for the contract and the error bound.
 * DESIGN: push touches one bucket: the slot of bucket k is k mod nb, and a
 * slot whose stored k differs is stale and is overwritten, so nothing is ever
 * cleared. Eval walks the slots of buckets floor((now - w) / res) ..
 * floor(now / res) (at most nb, since that span is at most ceil(w / res) + 1
 * buckets) and takes the ones whose k matches, leaving out the oldest one when
 * its first sample is at or before now - w. Buckets are visited oldest first,
 * so the first bucket taken gives the oldest sample and the last the newest.
 */
#include "engine/window.h"

#include <assert.h>
#include <math.h>
#include <string.h>

_Static_assert(sizeof(struct vg_window_bucket) == 64, "a bucket is one cache line");
_Static_assert(sizeof(struct vg_window) == 32, "the window header is 32 bytes");

static const struct {
    const char *name;
    size_t n;
} wfuncs[VG_WFUNC_N] = {
    [VG_W_AVG] = {"avg", 3},     [VG_W_MIN] = {"min", 3},   [VG_W_MAX] = {"max", 3},
    [VG_W_SUM] = {"sum", 3},     [VG_W_COUNT] = {"count", 5}, [VG_W_LAST] = {"last", 4},
    [VG_W_DELTA] = {"delta", 5}, [VG_W_RATE] = {"rate", 4},
};

int vg_wfunc_parse(const char *name, size_t n)
{
    for (int f = 0; f < VG_WFUNC_N; f++)
        if (wfuncs[f].n == n && memcmp(wfuncs[f].name, name, n) == 0)
            return f;
    return -1;
}

const char *vg_wfunc_name(int f)
{
    return f >= 0 && f < VG_WFUNC_N ? wfuncs[f].name : NULL;
}

/* floor(a / b) for b > 0, also for negative a. */
static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - (a % b < 0);
}

/* k mod nb in 0..nb-1, also for negative k. */
static inline uint32_t slot_of(int64_t k, uint32_t nb)
{
    int64_t r = k % (int64_t)nb;
    return (uint32_t)(r < 0 ? r + nb : r);
}

vg_ts vg_window_default_res(vg_ts width)
{
    assert(width >= 1);
    vg_ts res = width / 60 + (width % 60 != 0);
    if (res < 1)
        res = 1;
    if (res > (vg_ts)UINT32_MAX)
        res = (vg_ts)UINT32_MAX; /* widths beyond ~8 years: more than 61 buckets */
    return res;
}

static vg_ts resolve_res(vg_ts width, vg_ts res)
{
    return res == 0 ? vg_window_default_res(width) : res;
}

static uint32_t bucket_count(vg_ts width, vg_ts res)
{
    assert(width >= 1 && res >= 1 && res <= (vg_ts)UINT32_MAX);
    int64_t nb = width / res + (width % res != 0) + 1;
    assert(nb <= (int64_t)UINT32_MAX);
    return (uint32_t)nb;
}

size_t vg_window_bytes(vg_ts width, vg_ts res)
{
    res = resolve_res(width, res);
    return sizeof(struct vg_window) +
           (size_t)bucket_count(width, res) * sizeof(struct vg_window_bucket);
}

void vg_window_init(struct vg_window *win, vg_ts width, vg_ts res)
{
    res = resolve_res(width, res);
    uint32_t nb = bucket_count(width, res);
    memset(win, 0, sizeof *win + (size_t)nb * sizeof win->b[0]);
    win->width = width;
    win->res = res;
    win->newest = VG_TS_NONE;
    win->nb = nb;
    for (uint32_t i = 0; i < nb; i++)
        win->b[i].k = INT64_MIN;
}

int vg_window_push(struct vg_window *win, vg_ts ts, double v)
{
    assert(ts != VG_TS_NONE && !isnan(v));
    if (VG_LIKELY(win->newest == VG_TS_NONE || ts >= win->newest))
        win->newest = ts;
    else if (ts <= win->newest - win->width)
        return 1;

    int64_t k = floor_div(ts, win->res);
    uint32_t off = (uint32_t)(ts - k * win->res);
    struct vg_window_bucket *bk = &win->b[slot_of(k, win->nb)];
    if (bk->k != k) {
        /* Stale (an older bucket, or never used): reuse it. A newer bucket
         * cannot hold the slot: ts > newest - w keeps k within nb - 1 of the
         * newest bucket. */
        assert(bk->k < k);
        bk->k = k;
        bk->count = 1;
        bk->sum = bk->min = bk->max = bk->first_v = bk->last_v = v;
        bk->first_off = bk->last_off = off;
        return 0;
    }
    bk->count++;
    bk->sum += v;
    if (v < bk->min)
        bk->min = v;
    if (v > bk->max)
        bk->max = v;
    if (off < bk->first_off) { /* ties: the earlier arrival stays the oldest */
        bk->first_off = off;
        bk->first_v = v;
    }
    if (off >= bk->last_off) { /* ties: the later arrival becomes the newest */
        bk->last_off = off;
        bk->last_v = v;
    }
    return 0;
}

double vg_window_eval(const struct vg_window *win, int f, vg_ts now)
{
    uint64_t n = 0;
    double sum = 0.0, min = INFINITY, max = -INFINITY;
    double old_v = 0.0, new_v = 0.0;
    vg_ts old_ts = 0, new_ts = 0;

    if (win->newest != VG_TS_NONE && now - win->width < win->newest) {
        vg_ts res = win->res, lo = now - win->width;
        int64_t ks = floor_div(lo, res);
        int64_t ke = floor_div(now < win->newest ? now : win->newest, res);
        uint32_t s = slot_of(ks, win->nb);
        for (int64_t k = ks; k <= ke; k++, s = s + 1 == win->nb ? 0 : s + 1) {
            const struct vg_window_bucket *bk = &win->b[s];
            vg_ts base = k * res;
            if (bk->k != k || (k == ks && base + bk->first_off <= lo))
                continue;
            if (n == 0) {
                old_ts = base + bk->first_off;
                old_v = bk->first_v;
            }
            n += bk->count;
            sum += bk->sum;
            if (bk->min < min)
                min = bk->min;
            if (bk->max > max)
                max = bk->max;
            new_ts = base + bk->last_off;
            new_v = bk->last_v;
        }
    }

    switch (f) {
    case VG_W_AVG:
        return n ? sum / (double)n : NAN;
    case VG_W_MIN:
        return n ? min : NAN;
    case VG_W_MAX:
        return n ? max : NAN;
    case VG_W_SUM:
    case VG_W_COUNT:
        return sum;
    case VG_W_LAST:
        return n ? new_v : NAN;
    case VG_W_DELTA:
        return n >= 2 ? new_v - old_v : 0.0;
    case VG_W_RATE:
        return n >= 2 && new_ts > old_ts ? (new_v - old_v) / ((double)(new_ts - old_ts) / 1000.0)
                                         : 0.0;
    default:
        assert(!"not a window function");
        return NAN;
    }
}
