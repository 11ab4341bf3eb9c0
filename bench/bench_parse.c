/*
 * bench/bench_parse.c -- parse-rate benchmark for the packaged JSON parsers.
 *
 * Owns: the in-memory telemetry corpus generator (deterministic seed), one
 * extraction routine per candidate parser (plant, device, metric, value, ts
 * out of one telemetry line; see DESIGN.md "Data contracts"), the timing
 * harness (CLOCK_MONOTONIC, median of R runs), the per-line verification
 * against the generator's ground truth, and the allocation counter.
 *
 * Must never: touch the network or the filesystem, be linked into the engine,
 * read anything but its command line, or report a number for a candidate
 * whose extracted values disagree with the ground truth without saying so
 * loudly (stdout + stderr + exit status 1).
 *
 * Candidates are compiled in by BENCH_HAVE_<NAME>=1 definitions set by
 * bench/parse_candidates.cmake (CJSON, JANSSON, YAJL, JSONC, JSMN, SIMDJSON);
 * the simdjson candidate lives in bench/parse_simdjson.cpp.  BENCH_HAVE_VIGIL
 * is set by bench/CMakeLists.txt when the engine library vg_engine exists: it
 * measures the engine's own input parser, vg_json_parse() (engine/json.h).
 *
 * RFC 3339 "ts" strings: the packaged parsers hand them back as text and are
 * checked against the text; vg_json_parse converts them to epoch ms itself, so
 * the vigil candidate is checked against the instant, which the generator
 * knows independently of any date code (its own epoch ms, cut to the second
 * when the string carries no fraction).  Every field of every line is still
 * compared, and every malformed line must still be rejected.
 *
 * Usage: bench_parse [-n lines] [-r runs] [-s seed] [-p name,name...]
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if BENCH_HAVE_CJSON
#include <cjson/cJSON.h>
#endif
#if BENCH_HAVE_JANSSON
#include <jansson.h>
#endif
#if BENCH_HAVE_YAJL
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>
#include <yajl/yajl_version.h>
#endif
#if BENCH_HAVE_JSONC
/* json-c and jansson both claim the names json_object, json_type,
 * json_object_iter, json_object_get and json_object_iter_next, so their
 * headers cannot meet in one translation unit.  Spell json-c's jc_* here; the
 * json-c functions this file calls all have names of their own, so no
 * reference to the clashing symbols is emitted from the json-c code. */
#define json_object jc_object
#define json_type jc_type
#define json_object_iter jc_object_iter
#define json_object_get jc_object_get
#define json_object_iter_next jc_object_iter_next
#include <json-c/json.h>
#undef json_object
#undef json_type
#undef json_object_iter
#undef json_object_get
#undef json_object_iter_next
#endif
#if BENCH_HAVE_JSMN
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>
#endif
#if BENCH_HAVE_VIGIL
#include "engine/event.h"
#include "engine/json.h"
#endif

/* ------------------------------------------------------------------------ */
/* Allocation counter: glibc lets an executable interpose malloc & co.  We
 * forward to the real allocator and count calls, so "allocates per line" is
 * measured, not asserted.  Off under sanitizers (they own malloc) and when
 * BENCH_NO_ALLOC_COUNT is defined.  Not counted: posix_memalign,
 * aligned_alloc, memalign (none of the candidates use them per line). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || \
    __has_feature(thread_sanitizer)
#define BENCH_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_SANITIZED 1
#endif

#if defined(__GLIBC__) && !defined(BENCH_SANITIZED) && !defined(BENCH_NO_ALLOC_COUNT)
#define BENCH_COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static unsigned long long g_allocs;
void *malloc(size_t n) { g_allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { g_allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { g_allocs++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
#else
#define BENCH_COUNT_ALLOCS 0
static unsigned long long g_allocs;
#endif

/* ------------------------------------------------------------------------ */
/* What every candidate extracts.  Keep in sync with parse_simdjson.cpp (the
 * layout is checked at start-up). */
#define BENCH_NAME_CAP 64
#define BENCH_TS_CAP 48

typedef struct bench_sample {
    double value;
    int64_t ts_ms;
    uint32_t plant_len, device_len, metric_len, ts_str_len;
    int32_t ts_is_str;
    char plant[BENCH_NAME_CAP];
    char device[BENCH_NAME_CAP];
    char metric[BENCH_NAME_CAP];
    char ts_str[BENCH_TS_CAP];
} bench_sample;

enum { F_PLANT, F_DEVICE, F_METRIC, F_VALUE, F_TS };
#define F_ALL 0x1fu

#if BENCH_HAVE_SIMDJSON
struct bench_sj;
struct bench_sj *bench_sj_new(size_t max_line);
void bench_sj_free(struct bench_sj *sj);
int bench_sj_parse(struct bench_sj *sj, const char *line, size_t len, size_t cap,
                   bench_sample *out);
int bench_sj_parse_copy(struct bench_sj *sj, const char *line, size_t len,
                        bench_sample *out);
size_t bench_sj_padding(void);
void bench_sj_layout(size_t *size, size_t *off_ts_str, size_t *off_ts_is_str);
const char *bench_sj_info(void);
#endif

#define BENCH_MAX_LINE 4096 /* longest line a candidate is prepared for */

/* ------------------------------------------------------------------------ */
/* Helpers shared by the candidates (some go unused when candidates are left
 * out of the build). */
#if defined(__GNUC__)
#define BENCH_MAYBE_UNUSED __attribute__((unused))
#else
#define BENCH_MAYBE_UNUSED
#endif

BENCH_MAYBE_UNUSED static inline int key_id(const char *k, size_t n)
{
    switch (n) {
    case 2:
        return (k[0] == 't' && k[1] == 's') ? F_TS : -1;
    case 5:
        if (memcmp(k, "plant", 5) == 0) return F_PLANT;
        if (memcmp(k, "value", 5) == 0) return F_VALUE;
        return -1;
    case 6:
        if (memcmp(k, "device", 6) == 0) return F_DEVICE;
        if (memcmp(k, "metric", 6) == 0) return F_METRIC;
        return -1;
    default:
        return -1;
    }
}

/* Copy an already-decoded string into a fixed buffer; oversize is an error. */
BENCH_MAYBE_UNUSED static inline int put_str(char *dst, uint32_t *dlen, size_t cap, const char *src, size_t n)
{
    if (n >= cap) return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    *dlen = (uint32_t)n;
    return 0;
}

BENCH_MAYBE_UNUSED static inline int name_field(bench_sample *s, int id, const char *src, size_t n)
{
    switch (id) {
    case F_PLANT: return put_str(s->plant, &s->plant_len, BENCH_NAME_CAP, src, n);
    case F_DEVICE: return put_str(s->device, &s->device_len, BENCH_NAME_CAP, src, n);
    case F_METRIC: return put_str(s->metric, &s->metric_len, BENCH_NAME_CAP, src, n);
    case F_TS:
        s->ts_is_str = 1;
        return put_str(s->ts_str, &s->ts_str_len, BENCH_TS_CAP, src, n);
    default: return -1;
    }
}

/* Common acceptance rule applied after every candidate's extraction. */
BENCH_MAYBE_UNUSED static inline int sample_finish(const bench_sample *s)
{
    return isfinite(s->value) ? 0 : -1;
}

/* Only whitespace may follow the object. */
BENCH_MAYBE_UNUSED static inline int tail_is_ws(const char *p, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') return 0;
    return 1;
}

#if BENCH_HAVE_CJSON
/* cJSON has no integer type: ts arrives as a double (exact below 2^53). */
static int ts_from_double(double d, int64_t *out)
{
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0)) return -1;
    int64_t i = (int64_t)d;
    if ((double)i != d) return -1;
    *out = i;
    return 0;
}
#endif

#if BENCH_HAVE_JSMN
static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0) return -1;
        v = (v << 4) | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Decode the body of a JSON string (between the quotes) into dst.  jsmn
 * neither unescapes nor rejects raw control characters, so we do both here;
 * UTF-8 is not validated. */
static int json_unescape(char *dst, size_t cap, uint32_t *dlen, const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    size_t o = 0;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) return -1;
        if (c != '\\') {
            if (o + 1 >= cap) return -1;
            dst[o++] = (char)c;
            p++;
            continue;
        }
        if (++p >= end) return -1;
        unsigned cp;
        switch (*p++) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (hex4(p, end, &cp)) return -1;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            break;
        default:
            return -1;
        }
        char u[4];
        size_t k;
        if (cp < 0x80) {
            u[0] = (char)cp; k = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
        } else {
            u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
        }
        if (o + k >= cap) return -1;
        memcpy(dst + o, u, k);
        o += k;
    }
    dst[o] = '\0';
    *dlen = (uint32_t)o;
    return 0;
}

/* Strict JSON number grammar over exactly [p, p+n).  Returns 1 for an
 * integer, 2 for a number with fraction or exponent, 0 if not a number. */
static int json_number_kind(const char *p, size_t n)
{
    const char *e = p + n;
    int kind = 1;
    if (p < e && *p == '-') p++;
    if (p >= e) return 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') p++;
    } else {
        return 0;
    }
    if (p < e && *p == '.') {
        kind = 2;
        p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        kind = 2;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return p == e ? kind : 0;
}

/* Integer text already checked by json_number_kind()==1. */
static int parse_i64(const char *p, size_t n, int64_t *out)
{
    const char *e = p + n;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    uint64_t v = 0;
    for (; p < e; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return -1;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)v;
    }
    return 0;
}
#endif /* BENCH_HAVE_JSMN */

/* ------------------------------------------------------------------------ */
/* Candidates.  Each: int parse(ctx, line, len, cap, out) -> 0 ok / -1 reject.
 * `cap` is how many readable bytes start at `line` (>= len + padding). */

typedef int (*parse_fn)(void *ctx, const char *line, size_t len, size_t cap,
                        bench_sample *out);

#if BENCH_HAVE_CJSON
static int cjson_field_str(const cJSON *root, const char *key, int id, bench_sample *s)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsString(v) || !v->valuestring) return -1;
    return name_field(s, id, v->valuestring, strlen(v->valuestring));
}

static int parse_cjson(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    (void)ctx; (void)cap;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root) return -1;
    int rc = -1;
    if (!cJSON_IsObject(root) || !end || !tail_is_ws(line, (size_t)(end - line), len))
        goto out;
    if (cjson_field_str(root, "plant", F_PLANT, s) || cjson_field_str(root, "device", F_DEVICE, s) ||
        cjson_field_str(root, "metric", F_METRIC, s))
        goto out;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "value");
    if (!cJSON_IsNumber(v)) goto out;
    s->value = v->valuedouble;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
    if (cJSON_IsNumber(ts)) {
        s->ts_is_str = 0;
        if (ts_from_double(ts->valuedouble, &s->ts_ms)) goto out;
    } else if (cJSON_IsString(ts) && ts->valuestring) {
        if (name_field(s, F_TS, ts->valuestring, strlen(ts->valuestring))) goto out;
    } else {
        goto out;
    }
    rc = sample_finish(s);
out:
    cJSON_Delete(root);
    return rc;
}
#endif

#if BENCH_HAVE_JANSSON
/* libjansson and libjson-c both export json_object_get; the static linker
 * would bind the executable's reference to whichever library comes first on
 * the link line.  jansson >= 2.14 has json_object_getn (the same lookup with
 * the key length given), which has no twin in json-c. */
#if JANSSON_VERSION_HEX >= 0x020e00
#define JANSSON_GET(obj, lit) json_object_getn((obj), (lit), sizeof(lit) - 1)
#else
#define JANSSON_GET(obj, lit) json_object_get((obj), (lit))
#endif

static int jansson_str(json_t *v, int id, bench_sample *s)
{
    if (!json_is_string(v)) return -1;
    return name_field(s, id, json_string_value(v), json_string_length(v));
}

static int parse_jansson(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    (void)ctx; (void)cap;
    json_error_t err;
    json_t *root = json_loadb(line, len, 0, &err);
    if (!root) return -1;
    int rc = -1;
    if (!json_is_object(root)) goto out;
    if (jansson_str(JANSSON_GET(root, "plant"), F_PLANT, s) ||
        jansson_str(JANSSON_GET(root, "device"), F_DEVICE, s) ||
        jansson_str(JANSSON_GET(root, "metric"), F_METRIC, s))
        goto out;
    json_t *v = JANSSON_GET(root, "value");
    if (!json_is_number(v)) goto out;
    s->value = json_number_value(v);
    json_t *ts = JANSSON_GET(root, "ts");
    if (json_is_integer(ts)) {
        s->ts_is_str = 0;
        s->ts_ms = (int64_t)json_integer_value(ts);
    } else if (json_is_string(ts)) {
        if (name_field(s, F_TS, json_string_value(ts), json_string_length(ts))) goto out;
    } else {
        goto out;
    }
    rc = sample_finish(s);
out:
    json_decref(root);
    return rc;
}
#endif

#if BENCH_HAVE_YAJL
/* yajl_tree_parse needs NUL-terminated input: the corpus provides it. */
static const char *YP_PLANT[] = {"plant", NULL};
static const char *YP_DEVICE[] = {"device", NULL};
static const char *YP_METRIC[] = {"metric", NULL};
static const char *YP_VALUE[] = {"value", NULL};
static const char *YP_TS[] = {"ts", NULL};

static int yajl_tree_field_str(yajl_val root, const char **path, int id, bench_sample *s)
{
    yajl_val v = yajl_tree_get(root, path, yajl_t_string);
    const char *str = YAJL_GET_STRING(v);
    if (!str) return -1;
    return name_field(s, id, str, strlen(str));
}

static int parse_yajl_tree(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    (void)ctx; (void)cap; (void)len;
    yajl_val root = yajl_tree_parse(line, NULL, 0);
    if (!root) return -1;
    int rc = -1;
    if (!YAJL_IS_OBJECT(root)) goto out;
    if (yajl_tree_field_str(root, YP_PLANT, F_PLANT, s) ||
        yajl_tree_field_str(root, YP_DEVICE, F_DEVICE, s) ||
        yajl_tree_field_str(root, YP_METRIC, F_METRIC, s))
        goto out;
    yajl_val v = yajl_tree_get(root, YP_VALUE, yajl_t_number);
    if (!YAJL_IS_DOUBLE(v)) goto out;
    s->value = YAJL_GET_DOUBLE(v);
    yajl_val ts = yajl_tree_get(root, YP_TS, yajl_t_any);
    if (YAJL_IS_NUMBER(ts)) {
        /* INT_VALID alone does not prove the text was an integer. */
        if (!YAJL_IS_INTEGER(ts) || strpbrk(YAJL_GET_NUMBER(ts), ".eE")) goto out;
        s->ts_is_str = 0;
        s->ts_ms = (int64_t)YAJL_GET_INTEGER(ts);
    } else if (YAJL_IS_STRING(ts)) {
        if (name_field(s, F_TS, ts->u.string, strlen(ts->u.string))) goto out;
    } else {
        goto out;
    }
    rc = sample_finish(s);
out:
    yajl_tree_free(root);
    return rc;
}

/* Event API: one handle reused across lines (yajl_allow_multiple_values),
 * rebuilt only after an error.  The callbacks enforce "exactly one object". */
typedef struct {
    yajl_handle h;
    bench_sample *s;
    int depth, roots, cur;
    unsigned mask;
} yev_ctx;

static int yev_scalar_ok(yev_ctx *c)
{
    /* A scalar is fine at depth >= 2 or under a key we ignore. */
    if (c->depth == 0) return 0;
    return !(c->depth == 1 && c->cur >= 0);
}

static int yev_null(void *ctx)
{
    return yev_scalar_ok(ctx);
}

static int yev_bool(void *ctx, int b)
{
    (void)b;
    return yev_scalar_ok(ctx);
}

static int yev_int(void *ctx, long long i)
{
    yev_ctx *c = ctx;
    if (c->depth != 1 || c->cur < 0) return c->depth != 0;
    if (c->cur == F_VALUE) {
        c->s->value = (double)i;
    } else if (c->cur == F_TS) {
        c->s->ts_is_str = 0;
        c->s->ts_ms = (int64_t)i;
    } else {
        return 0;
    }
    c->mask |= 1u << c->cur;
    c->cur = -1;
    return 1;
}

static int yev_double(void *ctx, double d)
{
    yev_ctx *c = ctx;
    if (c->depth != 1 || c->cur < 0) return c->depth != 0;
    if (c->cur != F_VALUE) return 0;
    c->s->value = d;
    c->mask |= 1u << F_VALUE;
    c->cur = -1;
    return 1;
}

static int yev_string(void *ctx, const unsigned char *str, size_t n)
{
    yev_ctx *c = ctx;
    if (c->depth != 1 || c->cur < 0) return c->depth != 0;
    if (c->cur == F_VALUE || name_field(c->s, c->cur, (const char *)str, n)) return 0;
    c->mask |= 1u << c->cur;
    c->cur = -1;
    return 1;
}

static int yev_start_map(void *ctx)
{
    yev_ctx *c = ctx;
    if (c->depth == 0 && c->roots++ > 0) return 0;
    if (c->depth == 1 && c->cur >= 0) return 0;
    c->depth++;
    return 1;
}

static int yev_end_map(void *ctx)
{
    yev_ctx *c = ctx;
    c->depth--;
    return 1;
}

static int yev_map_key(void *ctx, const unsigned char *k, size_t n)
{
    yev_ctx *c = ctx;
    if (c->depth != 1) return 1;
    int id = key_id((const char *)k, n);
    if (id >= 0 && (c->mask & (1u << id))) return 0; /* duplicate key */
    c->cur = id;
    return 1;
}

static int yev_start_array(void *ctx)
{
    yev_ctx *c = ctx;
    if (c->depth == 0 || (c->depth == 1 && c->cur >= 0)) return 0;
    c->depth++;
    return 1;
}

static int yev_end_array(void *ctx)
{
    yev_ctx *c = ctx;
    c->depth--;
    return 1;
}

static const yajl_callbacks yev_callbacks = {
    yev_null, yev_bool, yev_int, yev_double, NULL, yev_string,
    yev_start_map, yev_map_key, yev_end_map, yev_start_array, yev_end_array,
};

static int yev_new_handle(yev_ctx *c)
{
    c->h = yajl_alloc(&yev_callbacks, NULL, c);
    if (!c->h) return -1;
    yajl_config(c->h, yajl_allow_multiple_values, 1);
    return 0;
}

static void *open_yajl_events(void)
{
    yev_ctx *c = calloc(1, sizeof *c);
    if (c && yev_new_handle(c)) {
        free(c);
        return NULL;
    }
    return c;
}

static void close_yajl_events(void *ctx)
{
    yev_ctx *c = ctx;
    if (c->h) yajl_free(c->h);
    free(c);
}

static int parse_yajl_events(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    (void)cap;
    yev_ctx *c = ctx;
    c->s = s;
    c->depth = 0;
    c->roots = 0;
    c->cur = -1;
    c->mask = 0;
    if (yajl_parse(c->h, (const unsigned char *)line, len) != yajl_status_ok ||
        yajl_complete_parse(c->h) != yajl_status_ok) {
        yajl_free(c->h);
        c->h = NULL;
        if (yev_new_handle(c)) abort();
        return -1;
    }
    if (c->depth != 0 || c->roots != 1 || c->mask != F_ALL) return -1;
    return sample_finish(s);
}
#endif /* BENCH_HAVE_YAJL */

#if BENCH_HAVE_JSONC
static void *open_jsonc(void)
{
    json_tokener *tok = json_tokener_new();
    if (!tok) return NULL;
    int flags = JSON_TOKENER_STRICT;
#ifdef JSON_TOKENER_VALIDATE_UTF8
    flags |= JSON_TOKENER_VALIDATE_UTF8;
#endif
    json_tokener_set_flags(tok, flags);
    return tok;
}

static void close_jsonc(void *ctx)
{
    json_tokener_free(ctx);
}

static int jsonc_field_str(jc_object *root, const char *key, int id, bench_sample *s)
{
    jc_object *v;
    if (!json_object_object_get_ex(root, key, &v) || !json_object_is_type(v, json_type_string))
        return -1;
    return name_field(s, id, json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

static int parse_jsonc(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    (void)cap;
    json_tokener *tok = ctx;
    json_tokener_reset(tok);
    jc_object *root = json_tokener_parse_ex(tok, line, (int)len);
    if (!root) return -1;
    int rc = -1;
    jc_object *v, *ts;
    if (!json_object_is_type(root, json_type_object) ||
        !tail_is_ws(line, json_tokener_get_parse_end(tok), len))
        goto out;
    if (jsonc_field_str(root, "plant", F_PLANT, s) || jsonc_field_str(root, "device", F_DEVICE, s) ||
        jsonc_field_str(root, "metric", F_METRIC, s))
        goto out;
    if (!json_object_object_get_ex(root, "value", &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        goto out;
    s->value = json_object_get_double(v);
    if (!json_object_object_get_ex(root, "ts", &ts)) goto out;
    if (json_object_is_type(ts, json_type_int)) {
        s->ts_is_str = 0;
        s->ts_ms = json_object_get_int64(ts);
    } else if (json_object_is_type(ts, json_type_string)) {
        if (name_field(s, F_TS, json_object_get_string(ts), (size_t)json_object_get_string_len(ts)))
            goto out;
    } else {
        goto out;
    }
    rc = sample_finish(s);
out:
    json_object_put(root);
    return rc;
}
#endif /* BENCH_HAVE_JSONC */

#if BENCH_HAVE_JSMN
#define JSMN_TOKENS 32

static int jsmn_take(int id, const char *js, const jsmntok_t *v, bench_sample *s)
{
    const char *p = js + v->start;
    size_t n = (size_t)(v->end - v->start);
    if (id == F_VALUE) {
        if (v->type != JSMN_PRIMITIVE || !json_number_kind(p, n)) return -1;
        char *e;
        s->value = strtod(p, &e); /* stops at the ',' or '}' jsmn saw */
        return e == p + n ? 0 : -1;
    }
    if (id == F_TS && v->type == JSMN_PRIMITIVE) {
        if (json_number_kind(p, n) != 1) return -1;
        s->ts_is_str = 0;
        return parse_i64(p, n, &s->ts_ms);
    }
    if (v->type != JSMN_STRING) return -1;
    switch (id) {
    case F_PLANT: return json_unescape(s->plant, BENCH_NAME_CAP, &s->plant_len, p, n);
    case F_DEVICE: return json_unescape(s->device, BENCH_NAME_CAP, &s->device_len, p, n);
    case F_METRIC: return json_unescape(s->metric, BENCH_NAME_CAP, &s->metric_len, p, n);
    default:
        s->ts_is_str = 1;
        return json_unescape(s->ts_str, BENCH_TS_CAP, &s->ts_str_len, p, n);
    }
}

static int parse_jsmn(void *ctx, const char *js, size_t len, size_t cap, bench_sample *s)
{
    (void)ctx; (void)cap;
    jsmn_parser p;
    jsmntok_t t[JSMN_TOKENS];
    jsmn_init(&p);
    int r = jsmn_parse(&p, js, len, t, JSMN_TOKENS);
    if (r < 1 || t[0].type != JSMN_OBJECT || !tail_is_ws(js, (size_t)t[0].end, len)) return -1;
    unsigned mask = 0;
    int i = 1;
    for (int k = 0; k < t[0].size; k++) {
        if (i + 1 >= r || t[i].type != JSMN_STRING || t[i].size != 1) return -1;
        const char *kp = js + t[i].start;
        size_t kn = (size_t)(t[i].end - t[i].start);
        int id;
        if (memchr(kp, '\\', kn)) {
            char kb[16];
            uint32_t kl;
            id = json_unescape(kb, sizeof kb, &kl, kp, kn) ? -1 : key_id(kb, kl);
        } else {
            id = key_id(kp, kn);
        }
        i++; /* value token */
        if (id >= 0) {
            if ((mask & (1u << id)) || jsmn_take(id, js, &t[i], s)) return -1;
            mask |= 1u << id;
        }
        /* skip the value's subtree: each token owns `size` children */
        int pending = 1;
        while (pending > 0) {
            if (i >= r) return -1;
            pending += t[i].size - 1;
            i++;
        }
    }
    if (i != r || mask != F_ALL) return -1;
    return sample_finish(s);
}
#endif /* BENCH_HAVE_JSMN */

#if BENCH_HAVE_VIGIL
/* The engine's parser: one parser for the whole run (its token array and
 * scratch are allocated once, at create).  It validates more than the others
 * (quality names, seq/unit types, UTF-8, ids <= 64 bytes) and converts ts to
 * epoch ms, RFC 3339 included; a line must give exactly one sample. */
static void *open_vigil(void)
{
    return vg_json_parser_create();
}

static void close_vigil(void *ctx)
{
    vg_json_parser_destroy(ctx);
}

static int parse_vigil(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    (void)cap;
    const struct vg_sample *m;
    unsigned n;
    struct vg_reject rej;
    if (vg_json_parse(ctx, line, len, &m, &n, &rej) != 0 || n != 1 || m->kind != VG_MSG_SAMPLE)
        return -1;
    if (put_str(s->plant, &s->plant_len, BENCH_NAME_CAP, m->plant.p, m->plant.n) ||
        put_str(s->device, &s->device_len, BENCH_NAME_CAP, m->device.p, m->device.n) ||
        put_str(s->metric, &s->metric_len, BENCH_NAME_CAP, m->name.p, m->name.n))
        return -1;
    s->value = m->value;
    s->ts_is_str = 0;
    s->ts_ms = m->ts;
    return sample_finish(s);
}
#endif /* BENCH_HAVE_VIGIL */

#if BENCH_HAVE_SIMDJSON
static void *open_sj(void)
{
    return bench_sj_new(BENCH_MAX_LINE);
}

static void close_sj(void *ctx)
{
    bench_sj_free(ctx);
}

static int parse_sj(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    return bench_sj_parse(ctx, line, len, cap, s) ? -1 : sample_finish(s);
}

static int parse_sj_copy(void *ctx, const char *line, size_t len, size_t cap, bench_sample *s)
{
    (void)cap;
    return bench_sj_parse_copy(ctx, line, len, s) ? -1 : sample_finish(s);
}
#endif

typedef struct {
    const char *name;
    void *(*open)(void);   /* NULL: stateless */
    void (*close)(void *);
    parse_fn parse;
    int expect_alloc;      /* shown when allocations cannot be counted */
    int ts_to_ms;          /* returns RFC 3339 ts as epoch ms: checked against the instant */
    const char *note;
} candidate;

static const candidate CANDIDATES[] = {
#if BENCH_HAVE_CJSON
    {"cjson", NULL, NULL, parse_cjson, 1, 0, "cJSON_ParseWithLengthOpts + GetObjectItemCaseSensitive"},
#endif
#if BENCH_HAVE_JANSSON
    {"jansson", NULL, NULL, parse_jansson, 1, 0, "json_loadb + json_object_getn"},
#endif
#if BENCH_HAVE_YAJL
    {"yajl-tree", NULL, NULL, parse_yajl_tree, 1, 0, "yajl_tree_parse + yajl_tree_get (NUL-terminated input)"},
    {"yajl-events", open_yajl_events, close_yajl_events, parse_yajl_events, 0, 0,
     "callbacks, one reused handle (allow_multiple_values)"},
#endif
#if BENCH_HAVE_JSONC
    {"json-c", open_jsonc, close_jsonc, parse_jsonc, 1, 0, "json_tokener_parse_ex, reused tokener, STRICT|VALIDATE_UTF8"},
#endif
#if BENCH_HAVE_JSMN
    {"jsmn", NULL, NULL, parse_jsmn, 0, 0, "JSMN_STATIC+JSMN_STRICT, 32 tokens, own unescape/number check"},
#endif
#if BENCH_HAVE_SIMDJSON
    {"simdjson-od", open_sj, close_sj, parse_sj, 0, 0, "ondemand, reused parser, in place (padding from corpus)"},
    {"simdjson-od+copy", open_sj, close_sj, parse_sj_copy, 0, 0, "ondemand, reused parser, line copied to padded buffer"},
#endif
#if BENCH_HAVE_VIGIL
    {"vigil", open_vigil, close_vigil, parse_vigil, 0, 1,
     "vg_json_parse (engine/json.c: jsmn + full validation), RFC 3339 ts -> epoch ms, checked as ms"},
#endif
    {NULL, NULL, NULL, NULL, 0, 0, NULL}, /* sentinel: keeps the array non-empty */
};
#define N_CANDIDATES (sizeof CANDIDATES / sizeof CANDIDATES[0] - 1)
/* Loop bound as an object, so a build with no candidate compiles warning-free. */
static const size_t n_candidates = N_CANDIDATES;

/* ------------------------------------------------------------------------ */
/* Checksums. */

#define HASH_BAD 0xBAD0BAD0BAD0BAD0ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    return fnv(h, &v, sizeof v);
}

/* Full per-line hash over everything extracted (verification pass). */
static uint64_t sample_hash(const bench_sample *s)
{
    uint64_t h = 0xcbf29ce484222325ull, vb;
    h = fnv_u64(h, s->plant_len);
    h = fnv(h, s->plant, s->plant_len);
    h = fnv_u64(h, s->device_len);
    h = fnv(h, s->device, s->device_len);
    h = fnv_u64(h, s->metric_len);
    h = fnv(h, s->metric, s->metric_len);
    memcpy(&vb, &s->value, sizeof vb);
    h = fnv_u64(h, vb);
    if (s->ts_is_str) {
        h = fnv_u64(h, 1);
        h = fnv_u64(h, s->ts_str_len);
        h = fnv(h, s->ts_str, s->ts_str_len);
    } else {
        h = fnv_u64(h, 2);
        h = fnv_u64(h, (uint64_t)s->ts_ms);
    }
    return h;
}

/* Cheap fold used inside timed runs: keeps the work observable without
 * adding a hash of every byte to every candidate's time. */
static inline uint64_t light_fold(uint64_t acc, const bench_sample *s)
{
    if (!s) return acc * 0x100000001b3ull + 0xbad;
    uint64_t vb;
    memcpy(&vb, &s->value, sizeof vb);
    uint64_t t = s->ts_is_str
        ? ((uint64_t)s->ts_str_len << 32) | (unsigned char)s->ts_str[s->ts_str_len ? s->ts_str_len - 1 : 0]
        : (uint64_t)s->ts_ms;
    unsigned char last = (unsigned char)s->device[s->device_len ? s->device_len - 1 : 0];
    return acc * 0x100000001b3ull +
           (vb ^ t ^ ((uint64_t)s->plant_len << 40) ^ ((uint64_t)s->device_len << 48) ^
            ((uint64_t)s->metric_len << 56) ^ last ^ ((uint64_t)(unsigned char)s->metric[0] << 8));
}

/* ------------------------------------------------------------------------ */
/* Corpus generator. */

typedef struct {
    char *arena;        /* lines, each followed by '\0'; tail padding */
    size_t arena_size;  /* bytes in use, including the tail padding */
    size_t *off;
    uint32_t *len;
    uint64_t *expect;   /* full hash per line, HASH_BAD for malformed */
    uint64_t *expect_ms; /* the same with ts as the instant in epoch ms (ts_to_ms candidates) */
    size_t n;
    uint64_t expect_light, expect_light_ms;
    size_t n_bad, n_strts, n_escaped, bytes, minlen, maxlen;
} corpus;

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned rnd(unsigned n)
{
    return (unsigned)(rng() % n);
}

typedef struct {
    const char *name, *unit, *dev;
    int lo, hi;     /* in units of 10^-dec */
    int dec;        /* decimals usually printed */
} metric_def;

static const metric_def METRICS[] = {
    {"nh3_ppm", "ppm", "NH3", 0, 600, 1},
    {"co_ppm", "ppm", "CO", 0, 2000, 1},
    {"h2s_ppm", "ppm", "H2S", 0, 300, 1},
    {"o2_pct", "%", "O2", 1700, 2390, 2},
    {"dust_mg_m3", "mg/m3", "DC", 0, 1500, 2},
    {"cooling_water_flow", "m3/h", "MF", 0, 1200, 1},
    {"cooling_water_temp", "degC", "MF", 150, 650, 1},
    {"diff_pressure_pa", "Pa", "DC", -2000, 15000, 1},
    {"furnace_temp_c", "degC", "MF", 8000, 16500, 1},
    {"lel_pct", "%LEL", "GAS", 0, 1000, 1},
    {"gas_holder_pressure_kpa", "kPa", "GH", -50, 450, 2},
    {"smoke_alarm", "", "SA", 0, 1, 0},
};
#define N_METRICS (sizeof METRICS / sizeof METRICS[0])

static const char *REGIONS[] = {"320585", "320506", "330110", "440306",
                                "370211", "130203", "510116", "420115"};

/* Device names with non-ASCII text: raw UTF-8 and the \u-escaped form. */
static const char *CN_RAW[] = {"1\xe5\x8f\xb7\xe6\xb0\xa8\xe7\xbd\x90",
                               "\xe9\x99\xa4\xe5\xb0\x98\xe5\x99\xa8" "A",
                               "\xe4\xb8\xad\xe9\xa2\x91\xe7\x82\x89" "2",
                               "\xe7\x85\xa4\xe6\xb0\x94\xe6\x9f\x9c"};
static const char *CN_ESC[] = {"1\\u53f7\\u6c28\\u7f50", "\\u9664\\u5c18\\u5668A",
                               "\\u4e2d\\u9891\\u70892", "\\u7164\\u6c14\\u67dc"};

static const char *QUALITY[] = {"good", "good", "good", "good", "good", "good", "good",
                                "good", "good", "good", "good", "good", "good", "good",
                                "good", "good", "N", "N", "uncertain", "bad"};

/* Write a value for metric m; fills text and returns its length. */
static int gen_number(char *out, size_t cap, const metric_def *m)
{
    long long v = m->lo + (long long)(rng() % (uint64_t)(m->hi - m->lo + 1));
    int dec = m->dec;
    int neg = v < 0;
    unsigned long long a = (unsigned long long)(neg ? -v : v);
    unsigned r = rnd(100);
    if (dec == 0 || r < 20) { /* integer reading */
        unsigned long long p = 1;
        for (int i = 0; i < dec; i++) p *= 10;
        a /= p;
        if (a == 0) neg = 0;
        return snprintf(out, cap, "%s%llu", neg ? "-" : "", a);
    }
    if (a == 0) neg = 0;
    if (r < 23 && a > 0) { /* exponent form of the same reading: d.ddde[+-]X */
        char digits[24];
        int nd = snprintf(digits, sizeof digits, "%llu", a);
        int exp = nd - 1 - dec;
        const char *e = rnd(4) == 0 ? "E" : "e";
        const char *plus = (exp >= 0 && rnd(2)) ? "+" : "";
        if (nd == 1)
            return snprintf(out, cap, "%s%c%s%s%d", neg ? "-" : "", digits[0], e, plus, exp);
        return snprintf(out, cap, "%s%c.%s%s%s%d", neg ? "-" : "", digits[0], digits + 1, e, plus, exp);
    }
    if (r < 40) dec++; /* an extra digit of precision now and then */
    unsigned long long p = 1;
    for (int i = 0; i < dec; i++) p *= 10;
    if (dec > m->dec) a = a * 10 + rnd(10);
    return snprintf(out, cap, "%s%llu.%0*llu", neg ? "-" : "", a / p, dec, a % p);
}

/* *instant: the epoch ms the text denotes (ms cut to the second when no
 * fraction is printed), worked out without any date arithmetic. */
static int gen_rfc3339(char *out, size_t cap, int64_t ms, int64_t *instant)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    int utc = rnd(5) == 0;
    struct tm tm;
    time_t shown = utc ? secs : secs + 8 * 3600;
    gmtime_r(&shown, &tm);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    *instant = ms - frac;
    if (rnd(2)) {
        n += snprintf(out + n, cap - (size_t)n, ".%03d", frac);
        *instant = ms;
    }
    n += snprintf(out + n, cap - (size_t)n, "%s", utc ? "Z" : "+08:00");
    return n;
}

typedef struct {
    char text[160];
    int len;
} gfield;

/* *instant: the line's ts as epoch ms (equal to truth->ts_ms unless ts is a string). */
static void gen_line(corpus *c, size_t idx, char *line, size_t *out_len, uint64_t *hash,
                     bench_sample *truth, int64_t *instant, int *bad)
{
    gfield f[10];
    int nf = 0;
    const metric_def *m = &METRICS[rnd(N_METRICS)];
    unsigned plant_idx = rnd(2000);
    int spaced = rnd(10) == 0; /* some gateways pretty-print a little */
    const char *colon = spaced ? ": " : ":";
    *bad = 0;
    memset(truth, 0, sizeof *truth);

    /* plant */
    char plant[16];
    snprintf(plant, sizeof plant, "P%s%03u", REGIONS[plant_idx % 8], plant_idx / 8 + 1);
    put_str(truth->plant, &truth->plant_len, BENCH_NAME_CAP, plant, strlen(plant));
    f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"plant\"%s\"%s\"", colon, plant);
    nf++;

    /* device: mostly ASCII, 1% raw UTF-8, 0.5% \u escapes, 0.5% "\/" */
    unsigned dk = rnd(1000);
    char dev_json[64], dev_raw[64];
    if (dk < 10) {
        unsigned k = rnd(4);
        snprintf(dev_json, sizeof dev_json, "%s-%02u", CN_RAW[k], 1 + rnd(8));
        strcpy(dev_raw, dev_json);
    } else if (dk < 15) {
        unsigned k = rnd(4), num = 1 + rnd(8);
        snprintf(dev_json, sizeof dev_json, "%s-%02u", CN_ESC[k], num);
        snprintf(dev_raw, sizeof dev_raw, "%s-%02u", CN_RAW[k], num);
        c->n_escaped++;
    } else if (dk < 20) {
        unsigned line_no = 1 + rnd(6), num = 1 + rnd(24);
        snprintf(dev_json, sizeof dev_json, "LINE-%u\\/%s-%02u", line_no, m->dev, num);
        snprintf(dev_raw, sizeof dev_raw, "LINE-%u/%s-%02u", line_no, m->dev, num);
        c->n_escaped++;
    } else {
        snprintf(dev_json, sizeof dev_json, "%s-%02u", m->dev, 1 + rnd(24));
        strcpy(dev_raw, dev_json);
    }
    put_str(truth->device, &truth->device_len, BENCH_NAME_CAP, dev_raw, strlen(dev_raw));
    f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"device\"%s\"%s\"", colon, dev_json);
    nf++;

    put_str(truth->metric, &truth->metric_len, BENCH_NAME_CAP, m->name, strlen(m->name));
    f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"metric\"%s\"%s\"", colon, m->name);
    nf++;

    /* value; 0.3% of lines are malformed in ways every candidate must reject */
    char num[48];
    unsigned badk = rnd(1000);
    gen_number(num, sizeof num, m);
    truth->value = strtod(num, NULL);
    if (badk == 0)
        f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"value\"%s\"%s\"", colon, num);
    else if (badk == 1)
        f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"value\"%s1e999", colon);
    else
        f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"value\"%s%s", colon, num);
    nf++;

    /* ts: epoch ms, or ~10% RFC 3339 strings */
    int64_t ms = 1763884800000LL + (int64_t)idx * 60 + (int64_t)rnd(60000);
    if (rnd(10) == 0) {
        char ts[48];
        int n = gen_rfc3339(ts, sizeof ts, ms, instant);
        truth->ts_is_str = 1;
        put_str(truth->ts_str, &truth->ts_str_len, BENCH_TS_CAP, ts, (size_t)n);
        f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"ts\"%s\"%s\"", colon, ts);
        c->n_strts++;
    } else {
        truth->ts_ms = ms;
        *instant = ms;
        f[nf].len = snprintf(f[nf].text, sizeof f[nf].text, "\"ts\"%s%" PRId64, colon, ms);
    }
    nf++;

    /* Optional fields the parsers must step over, added in random order while
     * the line stays within a target length of 120-160 bytes. */
    gfield opt[5];
    int nopt = 0;
#define ADD_OPT(...) \
    do { \
        opt[nopt].len = snprintf(opt[nopt].text, sizeof opt[nopt].text, __VA_ARGS__); \
        nopt++; \
    } while (0)
    if (rnd(100) < 90)
        ADD_OPT("\"quality\"%s\"%s\"", colon, QUALITY[rnd(sizeof QUALITY / sizeof QUALITY[0])]);
    if (m->unit[0])
        ADD_OPT("\"unit\"%s\"%s\"", colon, m->unit);
    ADD_OPT("\"seq\"%s%u", colon, rnd(1000000));
    ADD_OPT("\"gw\"%s\"GW-%s-%02u\"", colon, REGIONS[plant_idx % 8], rnd(40));
    if (rnd(100) < 3) /* a nested object now and then (ignored by extraction) */
        ADD_OPT("\"meta\"%s{\"fw\"%s\"2.%u.%u\",\"rssi\"%s-%u}", colon, colon, rnd(10), rnd(20), colon,
                40 + rnd(60));
#undef ADD_OPT
    int sep = spaced ? 2 : 1, total = 2 - sep, target = 126 + (int)rnd(35);
    for (int i = 0; i < nf; i++) total += f[i].len + sep;
    for (int i = nopt - 1; i > 0; i--) {
        int j = (int)rnd((unsigned)i + 1);
        gfield t = opt[i];
        opt[i] = opt[j];
        opt[j] = t;
    }
    for (int i = 0; i < nopt; i++) {
        if (total + sep + opt[i].len > target) continue;
        f[nf++] = opt[i];
        total += sep + opt[i].len;
    }

    /* ~15% of gateways use their own key order */
    if (rnd(100) < 15) {
        for (int i = nf - 1; i > 0; i--) {
            int j = (int)rnd((unsigned)i + 1);
            gfield t = f[i];
            f[i] = f[j];
            f[j] = t;
        }
    }

    size_t o = 0;
    line[o++] = '{';
    for (int i = 0; i < nf; i++) {
        if (i) {
            line[o++] = ',';
            if (spaced) line[o++] = ' ';
        }
        memcpy(line + o, f[i].text, (size_t)f[i].len);
        o += (size_t)f[i].len;
    }
    line[o++] = '}';

    if (badk == 2) /* truncated line: cut anywhere before the closing brace */
        o = 1 + rnd((unsigned)o - 1);
    if (badk < 3) *bad = 1;
    *out_len = o;
    *hash = *bad ? HASH_BAD : sample_hash(truth);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_parse: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static void corpus_build(corpus *c, size_t n, uint64_t seed, size_t pad)
{
    memset(c, 0, sizeof *c);
    rng_state = seed;
    c->n = n;
    c->off = xmalloc(n * sizeof *c->off);
    c->len = xmalloc(n * sizeof *c->len);
    c->expect = xmalloc(n * sizeof *c->expect);
    c->expect_ms = xmalloc(n * sizeof *c->expect_ms);
    size_t cap = n * 200 + pad + 1024;
    c->arena = xmalloc(cap);
    c->minlen = SIZE_MAX;
    size_t used = 0;
    char line[1024];
    bench_sample truth, truth_ms;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        int bad;
        uint64_t h;
        int64_t instant;
        gen_line(c, i, line, &len, &h, &truth, &instant, &bad);
        truth_ms = truth;
        truth_ms.ts_is_str = 0;
        truth_ms.ts_str_len = 0;
        memset(truth_ms.ts_str, 0, sizeof truth_ms.ts_str);
        truth_ms.ts_ms = instant;
        if (used + len + 1 + pad > cap) {
            cap *= 2;
            char *a = realloc(c->arena, cap);
            if (!a) {
                fprintf(stderr, "bench_parse: out of memory\n");
                exit(2);
            }
            c->arena = a;
        }
        memcpy(c->arena + used, line, len);
        c->arena[used + len] = '\0';
        c->off[i] = used;
        c->len[i] = (uint32_t)len;
        c->expect[i] = h;
        c->expect_ms[i] = bad ? HASH_BAD : sample_hash(&truth_ms);
        c->expect_light = light_fold(c->expect_light, bad ? NULL : &truth);
        c->expect_light_ms = light_fold(c->expect_light_ms, bad ? NULL : &truth_ms);
        used += len + 1;
        c->bytes += len;
        c->n_bad += (size_t)bad;
        if (!bad) {
            if (len < c->minlen) c->minlen = len;
            if (len > c->maxlen) c->maxlen = len;
        }
    }
    memset(c->arena + used, ' ', pad); /* content is irrelevant, it must be readable */
    c->arena_size = used + pad;
}

static void corpus_free(corpus *c)
{
    free(c->arena);
    free(c->off);
    free(c->len);
    free(c->expect);
    free(c->expect_ms);
}

/* ------------------------------------------------------------------------ */
/* Harness. */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t timed_pass(const candidate *cd, void *ctx, const corpus *c, size_t *rejected)
{
    bench_sample s;
    uint64_t acc = 0;
    size_t rej = 0;
    const char *arena = c->arena;
    for (size_t i = 0; i < c->n; i++) {
        size_t off = c->off[i];
        int rc = cd->parse(ctx, arena + off, c->len[i], c->arena_size - off, &s);
        rej += rc != 0;
        acc = light_fold(acc, rc == 0 ? &s : NULL);
    }
    *rejected = rej;
    return acc;
}

static void print_sample(const char *tag, const bench_sample *s)
{
    printf("      %s: plant=%.*s device=%.*s metric=%.*s value=%.17g ts=", tag, (int)s->plant_len,
           s->plant, (int)s->device_len, s->device, (int)s->metric_len, s->metric, s->value);
    if (s->ts_is_str)
        printf("\"%.*s\"\n", (int)s->ts_str_len, s->ts_str);
    else
        printf("%" PRId64 "\n", s->ts_ms);
}

/* Untimed: per-line comparison with the ground truth; also counts allocs. */
static size_t verify_pass(const candidate *cd, void *ctx, const corpus *c, unsigned long long *allocs_good,
                          size_t *lines_allocating)
{
    bench_sample s;
    size_t bad = 0, allocating = 0;
    unsigned long long good_allocs = 0;
    const uint64_t *expect = cd->ts_to_ms ? c->expect_ms : c->expect;
    for (size_t i = 0; i < c->n; i++) {
        size_t off = c->off[i];
        memset(&s, 0, sizeof s);
        unsigned long long a0 = g_allocs;
        int rc = cd->parse(ctx, c->arena + off, c->len[i], c->arena_size - off, &s);
        unsigned long long da = g_allocs - a0;
        uint64_t h = rc == 0 ? sample_hash(&s) : HASH_BAD;
        if (expect[i] != HASH_BAD) {
            good_allocs += da;
            allocating += da != 0;
        }
        if (h != expect[i]) {
            if (bad < 3) {
                printf("  !!! %s line %zu: %s\n      line: %.*s\n", cd->name, i,
                       rc ? "rejected a valid line" : (expect[i] == HASH_BAD ? "accepted a malformed line" : "extracted different values"),
                       (int)c->len[i], c->arena + off);
                if (rc == 0) print_sample("got", &s);
            }
            bad++;
        }
    }
    *allocs_good = good_allocs;
    *lines_allocating = allocating;
    return bad;
}

typedef struct {
    double median_s, min_s, max_s;
    double allocs_per_line, frac_allocating;
    size_t mismatched_lines;
    int checksum_bad;
    int skipped;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int selected(const char *list, const char *name)
{
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && strncmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_parse [-n lines] [-r runs] [-s seed] [-p name,name...]\n"
               "  -n  telemetry lines to generate (default 1000000)\n"
               "  -r  timed runs per candidate; the median is reported (default 3)\n"
               "  -s  generator seed (default 20251123)\n"
               "  -p  only these candidates:");
    for (size_t i = 0; i < n_candidates; i++) fprintf(f, " %s", CANDIDATES[i].name);
    fprintf(f, "\n");
}

static int parse_count(const char *s, unsigned long long *out)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || e == s || *e || v == 0) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long long n = 1000000, runs = 3, seed = 20251123;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc || a[0] != '-' || a[1] == '\0' || a[2] != '\0') {
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        switch (a[1]) {
        case 'n': bad = parse_count(v, &n); break;
        case 'r': bad = parse_count(v, &runs) || runs > 101; break;
        case 's': bad = parse_count(v, &seed); break;
        case 'p': only = v; break;
        default: bad = 1;
        }
        if (bad) {
            fprintf(stderr, "bench_parse: bad value for %s: %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (only) {
        for (const char *p = only; *p;) {
            const char *e = strchr(p, ',');
            size_t k = e ? (size_t)(e - p) : strlen(p);
            int found = 0;
            for (size_t j = 0; j < n_candidates; j++)
                found |= strlen(CANDIDATES[j].name) == k && strncmp(CANDIDATES[j].name, p, k) == 0;
            if (!found) {
                fprintf(stderr, "bench_parse: unknown or not built candidate '%.*s'\n", (int)k, p);
                usage(stderr);
                return 2;
            }
            if (!e) break;
            p = e + 1;
        }
    }

    size_t pad = 64;
#if BENCH_HAVE_SIMDJSON
    {
        size_t sz, off_ts, off_flag;
        bench_sj_layout(&sz, &off_ts, &off_flag);
        if (sz != sizeof(bench_sample) || off_ts != offsetof(bench_sample, ts_str) ||
            off_flag != offsetof(bench_sample, ts_is_str)) {
            fprintf(stderr, "bench_parse: bench_sample layout differs between C and C++\n");
            return 2;
        }
        if (bench_sj_padding() > pad) pad = bench_sj_padding();
    }
#endif

    corpus c;
    double t0 = now_s();
    corpus_build(&c, (size_t)n, seed, pad);
    double tgen = now_s() - t0;

    printf("vigil bench_parse: %zu lines (%.1f MB), seed %llu, generated in %.2f s\n", c.n,
           (double)c.bytes / 1e6, seed, tgen);
    printf("  valid line length min/avg/max: %zu/%.1f/%zu bytes; RFC 3339 ts %.1f%%; "
           "escaped device names %.2f%%; malformed (must be rejected) %.2f%%\n",
           c.minlen, (double)c.bytes / (double)c.n, c.maxlen, 100.0 * (double)c.n_strts / (double)c.n,
           100.0 * (double)c.n_escaped / (double)c.n, 100.0 * (double)c.n_bad / (double)c.n);
    printf("  libraries:");
    const char *sep = " ";
#if BENCH_HAVE_CJSON
    printf("%scJSON %s", sep, cJSON_Version());
    sep = ", ";
#endif
#if BENCH_HAVE_JANSSON
    printf("%sjansson %s", sep, JANSSON_VERSION);
    sep = ", ";
#endif
#if BENCH_HAVE_YAJL
    printf("%syajl %d", sep, yajl_version());
    sep = ", ";
#endif
#if BENCH_HAVE_JSONC
    printf("%sjson-c %s", sep, json_c_version());
    sep = ", ";
#endif
#if BENCH_HAVE_JSMN
    printf("%sjsmn (header only)", sep);
    sep = ", ";
#endif
#if BENCH_HAVE_SIMDJSON
    printf("%s%s", sep, bench_sj_info());
    sep = ", ";
#endif
#if BENCH_HAVE_VIGIL
    printf("%svigil %s (vg_json_parse)", sep, VG_VERSION);
    sep = ", ";
#endif
    if (sep[0] == ' ') printf(" none");
    printf("\n  allocation counting: %s\n\n",
           BENCH_COUNT_ALLOCS ? "on (malloc/calloc/realloc calls on valid lines)" : "off (sanitizer or non-glibc build)");

    if (n_candidates == 0) {
        printf("no candidates were built\n");
        corpus_free(&c);
        return 1;
    }

    result res[N_CANDIDATES + 1];
    void *ctx[N_CANDIDATES + 1];
    double *times = xmalloc(n_candidates * runs * sizeof *times);
    size_t n_good = c.n - c.n_bad;
    int failed = 0;

    /* Verification pass (also warms caches and allocator pools). */
    for (size_t k = 0; k < n_candidates; k++) {
        const candidate *cd = &CANDIDATES[k];
        memset(&res[k], 0, sizeof res[k]);
        ctx[k] = NULL;
        if (!selected(only, cd->name)) {
            res[k].skipped = 1;
            continue;
        }
        if (cd->open && !(ctx[k] = cd->open())) {
            fprintf(stderr, "bench_parse: cannot initialise %s\n", cd->name);
            return 2;
        }
        unsigned long long ag;
        size_t la;
        res[k].mismatched_lines = verify_pass(cd, ctx[k], &c, &ag, &la);
        res[k].allocs_per_line = n_good ? (double)ag / (double)n_good : 0;
        res[k].frac_allocating = n_good ? (double)la / (double)n_good : 0;
        if (res[k].mismatched_lines) {
            printf("  !!! MISMATCH: %s disagrees with the generator on %zu lines\n", cd->name,
                   res[k].mismatched_lines);
            fprintf(stderr, "!!! MISMATCH: %s disagrees with the generator on %zu lines\n", cd->name,
                    res[k].mismatched_lines);
            failed = 1;
        }
    }

    /* Timed runs, interleaved across candidates so drift hits all alike. */
    for (size_t r = 0; r < runs; r++) {
        for (size_t k = 0; k < n_candidates; k++) {
            if (res[k].skipped) continue;
            size_t rejected;
            double a = now_s();
            uint64_t sum = timed_pass(&CANDIDATES[k], ctx[k], &c, &rejected);
            times[k * runs + r] = now_s() - a;
            uint64_t want = CANDIDATES[k].ts_to_ms ? c.expect_light_ms : c.expect_light;
            if (sum != want || rejected != c.n_bad) {
                if (!res[k].checksum_bad) {
                    printf("  !!! CHECKSUM MISMATCH: %s run %zu: sum %016" PRIx64 " expected %016" PRIx64
                           ", rejected %zu expected %zu\n",
                           CANDIDATES[k].name, r + 1, sum, want, rejected, c.n_bad);
                    fprintf(stderr, "!!! CHECKSUM MISMATCH: %s\n", CANDIDATES[k].name);
                }
                res[k].checksum_bad = 1;
                failed = 1;
            }
        }
    }

    printf("%-17s %10s %9s %7s %12s %19s  %s\n", "parser", "M lines/s", "ns/line", "spread",
           "allocs/line", "allocates-per-line", "check");
    for (size_t k = 0; k < n_candidates; k++) {
        const candidate *cd = &CANDIDATES[k];
        if (res[k].skipped) continue;
        double *t = &times[k * runs];
        qsort(t, runs, sizeof *t, cmp_double);
        double med = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
        double spread = 100.0 * (t[runs - 1] - t[0]) / med;
        char allocs[32];
        const char *yes;
        if (BENCH_COUNT_ALLOCS) {
            snprintf(allocs, sizeof allocs, "%.2f", res[k].allocs_per_line);
            yes = res[k].frac_allocating >= 0.5 ? "yes" : "no";
        } else {
            snprintf(allocs, sizeof allocs, "n/a");
            yes = cd->expect_alloc ? "yes (expected)" : "no (expected)";
        }
        const char *check = (res[k].mismatched_lines || res[k].checksum_bad) ? "MISMATCH" : "ok";
        printf("%-17s %10.2f %9.1f %6.1f%% %12s %19s  %s\n", cd->name, (double)c.n / med / 1e6,
               med * 1e9 / (double)c.n, spread, allocs, yes, check);
    }
    printf("\nmedian of %llu runs over %zu lines; spread = (max-min)/median; time includes freeing trees.\n"
           "allocs/line: allocator calls per valid line; allocates-per-line: yes when most valid lines allocate.\n",
           runs, c.n);
    for (size_t k = 0; k < n_candidates; k++)
        if (!res[k].skipped) printf("  %-17s %s\n", CANDIDATES[k].name, CANDIDATES[k].note);

    for (size_t k = 0; k < n_candidates; k++)
        if (ctx[k] && CANDIDATES[k].close) CANDIDATES[k].close(ctx[k]);
    free(times);
    corpus_free(&c);
    if (failed) {
        printf("\n!!! at least one candidate did not extract the expected values -- see above\n");
        return 1;
    }
    return 0;
}
