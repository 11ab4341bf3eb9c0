/*
 * vigil.h: scalar types, status codes and levels shared by every module.
 * Owns: nothing at run time. Must never: grow into a catch-all header; a type
 * belongs here only when three or more modules need it.
 */
#ifndef VG_VIGIL_H
#define VG_VIGIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define VG_VERSION "0.1.0"

/** Event time and durations: milliseconds (epoch ms for instants). */
typedef int64_t vg_ts;
#define VG_TS_NONE INT64_MIN
#define VG_TS_MAX INT64_MAX

/** Status codes: 0 ok, negative on failure. */
enum {
    VG_OK = 0,
    VG_EINVAL = -1,  /* bad input: rules, registry, flags */
    VG_ENOMEM = -2,
    VG_EIO = -3,     /* a file or server failed */
    VG_ENOENT = -4,  /* a file or name does not exist */
    VG_EUSAGE = -5,  /* command-line misuse */
    VG_EFULL = -6,   /* a bounded buffer is full */
};

/** Alert levels, lowest first; 0 is "no level". */
enum vg_level {
    VG_LEVEL_NONE = 0,
    VG_LEVEL_BLUE = 1,
    VG_LEVEL_YELLOW = 2,
    VG_LEVEL_ORANGE = 3,
    VG_LEVEL_RED = 4,
};
#define VG_LEVEL_COUNT 5

/**
 * Receives one state record for the store (shards, the group stage, the
 * notifier): @p name is the plant, or a name beginning with '~' for the
 * output stages' records; @p len 0 means "nothing left: delete it". @p data
 * is valid during the call. @returns 0 or an error code that stops the export.
 */
typedef int (*vg_snapshot_fn)(void *ctx, const char *name, size_t name_len, const void *data, size_t len);

/** Does this instance own @p plant (its Kafka partition is assigned here)? */
typedef bool (*vg_owns_fn)(void *ctx, const char *plant, size_t len);

/** @returns "blue".."red", or "none". */
const char *vg_level_name(int level);
/** @returns the level for a name ("red", …) or VG_LEVEL_NONE if unknown. */
int vg_level_parse(const char *s, size_t n);

/** A borrowed byte slice; never owns its bytes. */
struct vg_str {
    const char *p;
    uint32_t n;
};

static inline bool vg_str_eq(struct vg_str a, const char *b, size_t n)
{
    extern int memcmp(const void *, const void *, size_t);
    return a.n == n && memcmp(a.p, b, n) == 0;
}

#define VG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define VG_LIKELY(x) __builtin_expect(!!(x), 1)
#define VG_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
