/*
 * window.h: bucketed sliding-window state of one series, and the window
 * functions evaluated over it (avg min max sum count last delta rate).
 * Owns: the bucket ring of one window and the meaning of every window function,
 * including their empty-window values and the documented error of bucketing.
 * Must never: allocate, lock, read the wall clock, or loop over elapsed time
 * (a clock jump costs the same as the next sample); the caller owns the memory
 * (vg_window_bytes) and the thread (the shard worker that owns the series).
 *
 * DESIGN
 * Window functions of width w are evaluated at a time `now` (the current
 * sample's time) over (now - w, now]:
 *   avg, min, max, last   NaN over an empty window;
 *   sum                   0 over an empty window;
 *   count                 the caller pushes 1.0 when the predicate held and 0.0
 *                         when it did not, so count is the sum: 0 when empty;
 *   delta                 newest minus oldest sample in the window; 0 with fewer
 *                         than two samples;
 *   rate                  delta divided by the seconds between the newest and
 *                         the oldest sample; 0 with fewer than two samples, and
 *                         0 when those two share a timestamp.
 * "Oldest" and "newest" go by timestamp; samples with equal timestamps are
 * ordered by arrival (the first pushed is the older).
 *
 * Buckets. Memory per series is bounded whatever the event rate: a window keeps
 * nb = ceil(w / res) + 1 buckets of resolution res, bucket k covering
 * [k*res, (k+1)*res) and living in slot k mod nb. A bucket keeps the count,
 * sum, min and max of its samples and its first and last sample (timestamp and
 * value, by timestamp), 64 bytes. Each slot remembers which k it holds, so a
 * slot left over from an older k reads as empty: a clock jump clears nothing
 * and costs nothing. Pushing is O(1); evaluating reads at most nb buckets.
 *
 * Default resolution: ceil(w / 60) ms, at least 1 ms, so a window never has
 * more than 61 buckets (for widths up to 60 * UINT32_MAX ms, about 8 years): 1m -> 1s, 10m -> 10s, 1h -> 1m, 24h -> 24m, each with
 * 61 buckets. One 10-minute (or 1-hour, or 24-hour) window costs
 * 32 + 61 * 64 = 3936 bytes.
 *
 * Exactness and error bound. Evaluated at now >= the newest sample pushed, a
 * sample is counted if and only if
 *   (a) it lies in (now - w, now], and
 *   (b) its bucket holds no sample at or before now - w.
 * Only the bucket containing now - w can fail (b); it is then left out whole.
 * So a result never includes a sample from outside the window, and the only
 * samples it can miss are those in (now - w, B + res), B = floor(now - w, res)
 * the start of that bucket: the oldest res - 1 ms of the window at most, and
 * only when that bucket also holds an older sample. When every sample falls on
 * a bucket boundary (a multiple of res), (b) always holds and the result is
 * exact. Sums are added per bucket and then across buckets, so they may differ
 * from a sequential sum by floating-point rounding (not with integer values).
 *
 * Samples out of order. A sample older than the newest one but later than
 * newest - w goes into its own bucket (first and last follow timestamps); a
 * sample at or before newest - w is ignored and vg_window_push says so.
 * Evaluating at a now older than the newest sample (a late sample at its own
 * time) reads the buckets from the one containing now - w to the one containing
 * now, as above, with two more errors: samples later than now that share now's
 * bucket are counted, and samples at or before newest - w may be missed (their
 * bucket's slot may already hold a newer bucket).
 *
 * Limits: 1 <= res <= UINT32_MAX ms (offsets within a bucket are 32-bit);
 * timestamps other than VG_TS_NONE within +-2^62 ms; values are never NaN
 * (the caller drops missing values); at most 2^32 - 1 samples per bucket.
 */
#ifndef VG_WINDOW_H
#define VG_WINDOW_H

#include "engine/vigil.h"

/** Window functions, in a fixed order (compiled rules may store them). */
enum vg_wfunc {
    VG_W_AVG,
    VG_W_MIN,
    VG_W_MAX,
    VG_W_SUM,
    VG_W_COUNT,
    VG_W_LAST,
    VG_W_DELTA,
    VG_W_RATE,
};
#define VG_WFUNC_N 8 /* number of window functions */

/** One bucket: the samples of [k*res, (k+1)*res). 64 bytes, one cache line. */
struct vg_window_bucket {
    int64_t k;           /* bucket index held, INT64_MIN when never used */
    double sum;          /* sum of values */
    double min;          /* smallest value */
    double max;          /* largest value */
    double first_v;      /* value of the oldest sample (by timestamp, then arrival) */
    double last_v;       /* value of the newest sample (by timestamp, then arrival) */
    uint32_t count;      /* number of samples */
    uint32_t first_off;  /* oldest sample's ts - k*res */
    uint32_t last_off;   /* newest sample's ts - k*res */
    uint32_t pad_;
};

/** A window; allocated by the caller with vg_window_bytes() bytes. */
struct vg_window {
    vg_ts width;         /* w, ms, >= 1 */
    vg_ts res;           /* bucket resolution, ms */
    vg_ts newest;        /* newest sample's ts, VG_TS_NONE before the first */
    uint32_t nb;         /* number of buckets: ceil(w / res) + 1 */
    uint32_t pad_;
    struct vg_window_bucket b[]; /* slot k mod nb holds bucket k */
};

/**
 * @brief Look up a window function by name ("avg", "min", "max", "sum",
 * "count", "last", "delta", "rate"); only @p n bytes of @p name are read.
 * @returns its enum vg_wfunc, or -1 if unknown.
 * @thread any
 */
int vg_wfunc_parse(const char *name, size_t n);

/** @returns the name of window function @p f, or NULL if @p f is not one. @thread any */
const char *vg_wfunc_name(int f);

/**
 * @brief The default bucket resolution for a window of @p width ms:
 * ceil(width / 60), at least 1 ms; a window then has at most 61 buckets.
 * @thread any
 */
vg_ts vg_window_default_res(vg_ts width);

/**
 * @brief Bytes for one struct vg_window of @p width ms with buckets of @p res
 * ms (0 means vg_window_default_res(width)), buckets included. Depends only on
 * the two arguments: the window never grows.
 * @thread any
 */
size_t vg_window_bytes(vg_ts width, vg_ts res);

/**
 * @brief Make @p win an empty window. @p win points to at least
 * vg_window_bytes(width, res) bytes, aligned for int64_t, that the caller owns;
 * the window borrows nothing and needs no fini.
 * @p width >= 1; @p res is 0 (the default) or 1..UINT32_MAX.
 * @thread the owner of the series
 */
void vg_window_init(struct vg_window *win, vg_ts width, vg_ts res);

/**
 * @brief Add a sample at @p ts with value @p v (not NaN). O(1), no allocation.
 * @returns 0 if taken, 1 if ignored because @p ts is at or before the newest
 * sample's ts - width (too old for any window still to be evaluated).
 * @thread the owner of the series
 */
int vg_window_push(struct vg_window *win, vg_ts ts, double v);

/**
 * @brief Evaluate window function @p f over (now - width, now], subject to the
 * error bound in the DESIGN note. Reads at most nb buckets, no allocation.
 * @returns the value; see the DESIGN note for empty windows. NaN if @p f is
 * not a window function.
 * @thread the owner of the series
 */
double vg_window_eval(const struct vg_window *win, int f, vg_ts now);

#endif
