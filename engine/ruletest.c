/*
 * ruletest.c: `vigil test` — load test files, generate their input, run the
 * engine on it, and compare the alerts (the format is in ruletest.h).
 * Owns: parsed test files, one temporary directory per run, and the diff.
 * Must never: decide an alert itself (the pipeline does, exactly as in
 * `vigil run`), run a test from a file with any error in it, or leave its
 * temporary files behind.
 * DESIGN: a file is parsed whole first, with every problem reported as
 * file:line:col; only a valid file (with valid rules and registry) runs. An
 * inline registry is copied to a temporary file that keeps its lines and
 * columns (everything before it blanked), so vg_registry_load's positions
 * point into the test file once the file name is put back.
 */
#include "engine/ruletest.h"
#include "engine/alert.h"
#include "engine/clock.h"
#include "engine/json.h"
#include "engine/pipeline.h"
#include "engine/registry.h"
#include "engine/rule.h"
#include "engine/yamldoc.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_START "2025-11-23T00:00:00Z"
#define ABS_MIN_MS INT64_C(946684800000) /* 2000-01-01: a smaller bare number is a mistake */
#define LCS_MAX_CELLS (4u << 20)

/* ---- series notation --------------------------------------------------- */

/* [+-]?(digits[.digits]|.digits)([eE][+-]?digits)?: no hex, inf or nan. */
static size_t scan_number(const char *s, size_t i, size_t len)
{
    size_t j = i, digits = 0;
    if (j < len && (s[j] == '+' || s[j] == '-'))
        j++;
    while (j < len && s[j] >= '0' && s[j] <= '9')
        j++, digits++;
    if (j < len && s[j] == '.') {
        j++;
        while (j < len && s[j] >= '0' && s[j] <= '9')
            j++, digits++;
    }
    if (!digits)
        return 0;
    if (j < len && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < len && (s[k] == '+' || s[k] == '-'))
            k++;
        size_t e0 = k;
        while (k < len && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k > e0)
            j = k;
    }
    return j - i;
}

static int number_at(const char *s, size_t i, size_t n, double *out)
{
    char buf[64];
    if (n >= sizeof buf)
        return VG_EINVAL;
    memcpy(buf, s + i, n);
    buf[n] = 0;
    errno = 0;
    *out = strtod(buf, NULL);
    return errno == ERANGE || !isfinite(*out) ? VG_EINVAL : 0;
}

int vg_ruletest_expand_values(const char *s, size_t len, struct vg_series_value **out, size_t *n,
                              size_t *bad, const char **why)
{
    struct vg_series_value *v = NULL;
    size_t cnt = 0, cap = 0, i = 0;
    *out = NULL;
    *n = 0;
    *bad = 0;
    *why = "";
    for (;;) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i == len)
            break;
        size_t tok = i, end = i;
        while (end < len && !(s[end] == ' ' || s[end] == '\t' || s[end] == '\n' || s[end] == '\r'))
            end++;
        bool missing = false;
        double a = 0, b = 0;
        size_t j = i;
        if (s[j] == '_') {
            missing = true;
            j++;
        } else {
            size_t k = scan_number(s, j, end);
            if (!k || number_at(s, j, k, &a) < 0) {
                *why = k ? "the number is out of range" : "expected a number, '_', 'AxN' or 'A+BxN'";
                goto bad_token;
            }
            j += k;
            if (j < end && (s[j] == '+' || s[j] == '-')) {
                bool minus = s[j] == '-';
                j++;
                size_t k2 = scan_number(s, j, end);
                if (!k2 || s[j] == '+' || s[j] == '-' || number_at(s, j, k2, &b) < 0) {
                    *why = "expected a step after '+' or '-' (as in 10+5x3)";
                    goto bad_token;
                }
                j += k2;
                b = minus ? -b : b;
                if (j == end) {
                    *why = "a step needs a count (10+5x3 is 10 15 20 25)";
                    goto bad_token;
                }
            }
        }
        uint64_t times = 1;
        if (j < end && s[j] == 'x') {
            j++;
            if (j == end) {
                *why = "expected a count after 'x'";
                goto bad_token;
            }
            uint64_t c = 0;
            for (; j < end && s[j] >= '0' && s[j] <= '9'; j++)
                if ((c = c * 10 + (uint64_t)(s[j] - '0')) > VG_SERIES_MAX)
                    break;
            if (c > VG_SERIES_MAX) {
                *why = "the series is too long";
                goto bad_token;
            }
            times = missing ? c : c + 1; /* "_x3" is three steps; "30x3" is the value and 3 more */
        }
        if (j != end) {
            *why = "expected a number, '_', 'AxN' or 'A+BxN'";
            goto bad_token;
        }
        if (cnt + times > VG_SERIES_MAX) {
            *why = "the series is too long";
            goto bad_token;
        }
        if (cnt + times > cap) {
            size_t nc = cap ? cap : 16;
            while (nc < cnt + times)
                nc *= 2;
            struct vg_series_value *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(v);
                return VG_ENOMEM;
            }
            v = nv;
            cap = nc;
        }
        for (uint64_t t = 0; t < times; t++) {
            v[cnt].missing = missing;
            v[cnt].value = missing ? 0 : a + (double)t * b;
            if (!missing && !isfinite(v[cnt].value)) {
                *why = "the series leaves the range of numbers";
                goto bad_token;
            }
            cnt++;
        }
        i = end;
        continue;
    bad_token:
        free(v);
        *bad = tok;
        return VG_EINVAL;
    }
    if (!cnt) {
        free(v);
        *why = "no values";
        return VG_EINVAL;
    }
    *out = v;
    *n = cnt;
    return VG_OK;
}

/* ---- growable text ----------------------------------------------------- */

struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_grow(struct sbuf *b, size_t more)
{
    if (b->oom || b->n + more + 1 <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 128;
    while (nc < b->n + more + 1)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
        b->oom = true;
        return;
    }
    b->p = np;
    b->cap = nc;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A JSON string with quotes. */
static void sb_json(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    sb_grow(b, n * 6 + 2);
    if (b->oom)
        return;
    b->p[b->n++] = '"';
    int w = vg_json_escape(b->p + b->n, b->cap - b->n, s, n);
    b->n += (size_t)(w > 0 ? w : 0);
    b->p[b->n++] = '"';
    b->p[b->n] = 0;
}

/* The shortest decimal that reads back as @p v. */
static void fmt_number(char *buf, size_t cap, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void sb_number(struct sbuf *b, double v)
{
    char buf[40];
    fmt_number(buf, sizeof buf, v);
    sb_str(b, buf);
}

/* ---- parsed test files ------------------------------------------------- */

/** An alert, expected (from the test file) or actual (read back from the sink). */
struct alert_rec {
    char *rule, *plant, *device, *region;   /* NULL: not given / absent */
    uint8_t status, level;
    vg_ts at, started_at;                    /* started_at: VG_TS_NONE if not given */
    bool has_value;
    double value;
    int line, col;                           /* expected: the entry's position */
    int rule_line, rule_col;
};

/** One generated input line. */
struct gen_msg {
    vg_ts ts;
    size_t order;        /* input order, so equal times keep it */
    char *text;          /* one JSON line, no newline */
    int line, col;       /* the input entry it came from */
};

struct test_case {
    char *name;
    int line, col;
    vg_ts start, until, lateness;
    struct gen_msg *msgs;
    size_t n_msgs, cap_msgs;
    struct alert_rec *exp;
    size_t n_exp;
    long expect_dead;    /* -1: not checked */
};

struct test_file {
    const char *path;    /* as given; borrowed */
    char *text;          /* the file's bytes, for an inline registry */
    size_t text_len;
    char **rule_paths;
    size_t n_rule_paths;
    char *registry_path; /* resolved path, or NULL */
    yaml_node_t *registry_inline;
    struct test_case *tests;
    size_t n_tests;
};

static void rec_fini(struct alert_rec *r)
{
    free(r->rule);
    free(r->plant);
    free(r->device);
    free(r->region);
}

static void test_file_fini(struct test_file *tf)
{
    free(tf->text);
    for (size_t i = 0; i < tf->n_rule_paths; i++)
        free(tf->rule_paths[i]);
    free(tf->rule_paths);
    free(tf->registry_path);
    for (size_t i = 0; i < tf->n_tests; i++) {
        struct test_case *tc = &tf->tests[i];
        free(tc->name);
        for (size_t j = 0; j < tc->n_msgs; j++)
            free(tc->msgs[j].text);
        free(tc->msgs);
        for (size_t j = 0; j < tc->n_exp; j++)
            rec_fini(&tc->exp[j]);
        free(tc->exp);
    }
    free(tf->tests);
}

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *seq_at(struct vg_yaml *y, const yaml_node_t *n, size_t i)
{
    return vg_yaml_node(y, n->data.sequence.items.start[i]);
}

static int node_line(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }
static int node_col(const yaml_node_t *n) { return (int)n->start_mark.column + 1; }

/* "dir/name" for a path relative to the test file; absolute paths stay. */
static char *relative_to(const char *file, const char *name)
{
    const char *slash = strrchr(file, '/');
    if (name[0] == '/' || !slash)
        return strdup(name);
    size_t d = (size_t)(slash - file) + 1, n = strlen(name);
    char *p = malloc(d + n + 1);
    if (p) {
        memcpy(p, file, d);
        memcpy(p + d, name, n + 1);
    }
    return p;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int read_all(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return VG_EIO;
    struct sbuf b = {0};
    char chunk[65536];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_add(&b, chunk, r);
    bool failed = ferror(f) || b.oom;
    fclose(f);
    if (failed) {
        free(b.p);
        return VG_EIO;
    }
    if (!b.p)
        b.p = calloc(1, 1);
    *out = b.p;
    *len = b.n;
    return b.p ? VG_OK : VG_ENOMEM;
}

/*
 * A time in a test: a duration after @p start ("40s", "0", "-5s"), or absolute
 * epoch ms (from 2000 on) or RFC 3339.
 */
static int test_time(struct vg_yaml *y, yaml_node_t *n, const char *what, vg_ts start, vg_ts *out)
{
    if (!vg_yaml_is_scalar(n))
        return vg_yaml_error(y, n, "%s must be a duration after start (40s) or a timestamp", what);
    const char *s = vg_yaml_str(n);
    size_t len = vg_yaml_len(n);
    size_t neg = len > 1 && s[0] == '-';
    vg_ts v;
    if (vg_duration_parse(s + neg, len - neg, &v, NULL) == 0) {
        *out = start + (neg ? -v : v);
        return 0;
    }
    if (!neg && vg_ts_parse(s, &v) == 0) {
        if (v >= ABS_MIN_MS || strchr(s, 'T') || strchr(s, 't')) {
            *out = v;
            return 0;
        }
        return vg_yaml_error(y, n, "bad time '%s' for %s: give a unit (%ss) for a time after start, "
                                   "or a full epoch-ms timestamp", s, what, s);
    }
    return vg_yaml_error(y, n, "bad time '%s' for %s: expected a duration after start (40s, 1h30m) "
                               "or a timestamp (epoch ms or RFC 3339)", s, what);
}

static int need_string(struct vg_yaml *y, yaml_node_t *map, const char *key, const char *what,
                       const char **out)
{
    yaml_node_t *v = vg_yaml_get(y, map, key);
    if (!v)
        return vg_yaml_error(y, map, "%s needs '%s'", what, key);
    if (vg_yaml_string(y, v, key, out) < 0)
        return VG_EINVAL;
    if (!**out)
        return vg_yaml_error(y, v, "%s must not be empty", key);
    return 0;
}

static int opt_string(struct vg_yaml *y, yaml_node_t *map, const char *key, const char **out)
{
    yaml_node_t *v = vg_yaml_get(y, map, key);
    *out = NULL;
    if (!v)
        return 0;
    return vg_yaml_string(y, v, key, out);
}

static int add_msg(struct test_case *tc, vg_ts ts, struct sbuf *b, const yaml_node_t *at)
{
    if (b->oom)
        return VG_ENOMEM;
    if (tc->n_msgs == tc->cap_msgs) {
        size_t nc = tc->cap_msgs ? tc->cap_msgs * 2 : 16;
        struct gen_msg *nm = realloc(tc->msgs, nc * sizeof *nm);
        if (!nm)
            return VG_ENOMEM;
        tc->msgs = nm;
        tc->cap_msgs = nc;
    }
    struct gen_msg *m = &tc->msgs[tc->n_msgs];
    m->ts = ts;
    m->order = tc->n_msgs;
    m->text = b->p;
    m->line = node_line(at);
    m->col = node_col(at);
    tc->n_msgs++;
    *b = (struct sbuf){0};
    return 0;
}

/* The common head of a sample or report: {"plant":…,"device":…,"metric"|"event":… */
static void msg_head(struct sbuf *b, const char *plant, const char *device, const char *key,
                     const char *name)
{
    sb_str(b, "{\"plant\":");
    sb_json(b, plant);
    sb_str(b, ",\"device\":");
    sb_json(b, device);
    sb_str(b, ",\"");
    sb_str(b, key);
    sb_str(b, "\":");
    sb_json(b, name);
}

static void msg_tail(struct sbuf *b, vg_ts ts, const char *quality)
{
    char buf[40];
    snprintf(buf, sizeof buf, ",\"ts\":%lld", (long long)ts);
    sb_str(b, buf);
    if (quality) {
        sb_str(b, ",\"quality\":");
        sb_json(b, quality);
    }
    sb_str(b, "}");
}

static int parse_series(struct vg_yaml *y, yaml_node_t *e, struct test_case *tc)
{
    static const char *const keys[] = {"plant", "device", "metric", "every", "from", "values",
                                       "quality", NULL};
    int rc = vg_yaml_check_keys(y, e, "input series", keys);
    const char *plant, *device, *metric, *quality = NULL;
    yaml_node_t *v;
    vg_ts every = 0, from = tc->start;
    if (need_string(y, e, "plant", "an input series", &plant) < 0 ||
        need_string(y, e, "device", "an input series", &device) < 0 ||
        need_string(y, e, "metric", "an input series", &metric) < 0 ||
        opt_string(y, e, "quality", &quality) < 0)
        return VG_EINVAL;
    if (!(v = vg_yaml_get(y, e, "every")))
        rc = vg_yaml_error(y, e, "an input series needs 'every' (the time between its samples)");
    else if (vg_yaml_duration(y, v, "every", &every) < 0)
        rc = VG_EINVAL;
    else if (every <= 0)
        rc = vg_yaml_error(y, v, "every must be longer than 0s");
    if ((v = vg_yaml_get(y, e, "from")) && test_time(y, v, "from", tc->start, &from) < 0)
        rc = VG_EINVAL;
    if (!(v = vg_yaml_get(y, e, "values")))
        return vg_yaml_error(y, e, "an input series needs 'values'");
    if (!vg_yaml_is_scalar(v))
        return vg_yaml_error(y, v, "values must be a string such as \"10 30x3 _ 40+5x2\"");
    if (rc < 0)
        return rc;
    struct vg_series_value *vals;
    size_t n, bad;
    const char *why;
    int erc = vg_ruletest_expand_values(vg_yaml_str(v), vg_yaml_len(v), &vals, &n, &bad, &why);
    if (erc == VG_ENOMEM)
        return erc;
    if (erc < 0)
        return vg_yaml_error_at(y, v, (int)bad, "values: %s", why);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (vals[i].missing)
            continue;
        struct sbuf b = {0};
        msg_head(&b, plant, device, "metric", metric);
        sb_str(&b, ",\"value\":");
        sb_number(&b, vals[i].value);
        msg_tail(&b, from + (vg_ts)i * every, quality);
        if ((rc = add_msg(tc, from + (vg_ts)i * every, &b, e)) < 0)
            free(b.p);
    }
    free(vals);
    return rc;
}

static int parse_single(struct vg_yaml *y, yaml_node_t *e, struct test_case *tc)
{
    static const char *const keys[] = {"at", "plant", "device", "metric", "value", "event",
                                       "quality", NULL};
    int rc = vg_yaml_check_keys(y, e, "input message", keys);
    const char *plant, *device, *metric, *event, *quality;
    yaml_node_t *v, *at = vg_yaml_get(y, e, "at");
    vg_ts ts = 0;
    double value = 0;
    bool has_value = false;
    if (!at)
        rc = vg_yaml_error(y, e, "an input message needs 'at' (a series needs 'every' and 'values')");
    else if (test_time(y, at, "at", tc->start, &ts) < 0)
        rc = VG_EINVAL;
    if (need_string(y, e, "plant", "an input message", &plant) < 0 ||
        need_string(y, e, "device", "an input message", &device) < 0 ||
        opt_string(y, e, "metric", &metric) < 0 || opt_string(y, e, "event", &event) < 0 ||
        opt_string(y, e, "quality", &quality) < 0)
        return VG_EINVAL;
    if ((v = vg_yaml_get(y, e, "value"))) {
        if (vg_yaml_number(y, v, "value", &value) < 0)
            rc = VG_EINVAL;
        has_value = true;
    }
    if (metric && event)
        return vg_yaml_error(y, e, "an input message has either 'metric' (a sample) or 'event' (a report)");
    if (!metric && !event)
        return vg_yaml_error(y, e, "an input message needs 'metric' and 'value' (a sample) or 'event' "
                                   "(a report)");
    if (metric && !has_value)
        return vg_yaml_error(y, e, "a sample needs 'value'");
    if (rc < 0)
        return rc;
    struct sbuf b = {0};
    msg_head(&b, plant, device, metric ? "metric" : "event", metric ? metric : event);
    if (has_value) {
        sb_str(&b, ",\"value\":");
        sb_number(&b, value);
    }
    msg_tail(&b, ts, quality);
    if ((rc = add_msg(tc, ts, &b, e)) < 0)
        free(b.p);
    return rc;
}

static int parse_raw(struct vg_yaml *y, yaml_node_t *e, struct test_case *tc)
{
    static const char *const keys[] = {"raw", "at", NULL};
    int rc = vg_yaml_check_keys(y, e, "raw input", keys);
    yaml_node_t *v = vg_yaml_get(y, e, "raw"), *at = vg_yaml_get(y, e, "at");
    vg_ts ts = tc->start;
    const char *s;
    if (at && test_time(y, at, "at", tc->start, &ts) < 0)
        rc = VG_EINVAL;
    if (vg_yaml_string(y, v, "raw", &s) < 0)
        return VG_EINVAL;
    if (memchr(s, '\n', vg_yaml_len(v)) || strlen(s) != vg_yaml_len(v))
        return vg_yaml_error(y, v, "raw must be one line");
    if (rc < 0)
        return rc;
    struct sbuf b = {0};
    sb_add(&b, s, vg_yaml_len(v));
    if (!b.p)
        sb_str(&b, "");
    if ((rc = add_msg(tc, ts, &b, e)) < 0)
        free(b.p);
    return rc;
}

static int status_parse(const char *s)
{
    if (!strcmp(s, "firing"))
        return VG_ALERT_FIRING;
    if (!strcmp(s, "escalated"))
        return VG_ALERT_ESCALATED;
    if (!strcmp(s, "resolved"))
        return VG_ALERT_RESOLVED;
    return 0;
}

static const char *status_name(int st)
{
    return st == VG_ALERT_FIRING ? "firing" : st == VG_ALERT_ESCALATED ? "escalated"
                                          : st == VG_ALERT_RESOLVED  ? "resolved"
                                                                     : "?";
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int parse_expect(struct vg_yaml *y, yaml_node_t *e, struct test_case *tc, struct alert_rec *r)
{
    static const char *const keys[] = {"at", "rule", "plant", "device", "region", "status", "level",
                                       "started_at", "value", NULL};
    memset(r, 0, sizeof *r);
    r->started_at = VG_TS_NONE;
    r->line = node_line(e);
    r->col = node_col(e);
    if (!vg_yaml_is_map(e))
        return vg_yaml_error(y, e, "an expected alert is a mapping with at, rule, plant, device, "
                                   "status and level");
    int rc = vg_yaml_check_keys(y, e, "expected alert", keys);
    const char *rule = NULL, *plant, *device, *region, *status = NULL, *level = NULL;
    yaml_node_t *v;
    if (need_string(y, e, "rule", "an expected alert", &rule) < 0)
        rc = VG_EINVAL;
    else {
        v = vg_yaml_get(y, e, "rule");
        r->rule_line = node_line(v);
        r->rule_col = node_col(v);
    }
    if (opt_string(y, e, "plant", &plant) < 0 || opt_string(y, e, "device", &device) < 0 ||
        opt_string(y, e, "region", &region) < 0)
        rc = VG_EINVAL;
    if (need_string(y, e, "status", "an expected alert", &status) == 0 &&
        !(r->status = (uint8_t)status_parse(status)))
        rc = vg_yaml_error(y, vg_yaml_get(y, e, "status"),
                           "unknown status '%s' (expected firing, escalated or resolved)", status);
    if (need_string(y, e, "level", "an expected alert", &level) == 0 &&
        !(r->level = (uint8_t)vg_level_parse(level, strlen(level))))
        rc = vg_yaml_error(y, vg_yaml_get(y, e, "level"),
                           "unknown level '%s' (expected blue, yellow, orange or red)", level);
    if (!status || !level)
        rc = VG_EINVAL;
    if (!(v = vg_yaml_get(y, e, "at")))
        rc = vg_yaml_error(y, e, "an expected alert needs 'at'");
    else if (test_time(y, v, "at", tc->start, &r->at) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, e, "started_at")) && test_time(y, v, "started_at", tc->start, &r->started_at) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, e, "value"))) {
        if (vg_yaml_number(y, v, "value", &r->value) < 0)
            rc = VG_EINVAL;
        r->has_value = true;
    }
    if (rc < 0)
        return VG_EINVAL;
    r->rule = strdup(rule);
    r->plant = dup_or_null(plant);
    r->device = dup_or_null(device);
    r->region = dup_or_null(region);
    return 0;
}

static int parse_test(struct vg_yaml *y, yaml_node_t *t, size_t index, vg_ts default_start,
                      struct test_case *tc)
{
    static const char *const keys[] = {"name", "start", "lateness", "until", "input", "expect",
                                       "expect_dead_letters", NULL};
    tc->line = node_line(t);
    tc->col = node_col(t);
    tc->start = default_start;
    tc->until = VG_TS_NONE;
    tc->expect_dead = -1;
    if (!vg_yaml_is_map(t))
        return vg_yaml_error(y, t, "a test is a mapping with name, input and expect");
    int rc = vg_yaml_check_keys(y, t, "test", keys);
    const char *name = NULL;
    char buf[32];
    yaml_node_t *v;
    if (opt_string(y, t, "name", &name) < 0)
        rc = VG_EINVAL;
    if (!name) {
        snprintf(buf, sizeof buf, "test %zu", index + 1);
        name = buf;
    }
    tc->name = strdup(name);
    if ((v = vg_yaml_get(y, t, "start"))) {
        if (!vg_yaml_is_scalar(v) || vg_ts_parse(vg_yaml_str(v), &tc->start) < 0)
            rc = vg_yaml_error(y, v, "start must be epoch milliseconds or RFC 3339 "
                                     "(e.g. 2025-11-23T08:00:00+08:00)");
    }
    if ((v = vg_yaml_get(y, t, "lateness")) && vg_yaml_duration(y, v, "lateness", &tc->lateness) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, t, "until")) && test_time(y, v, "until", tc->start, &tc->until) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, t, "expect_dead_letters"))) {
        double d;
        if (vg_yaml_number(y, v, "expect_dead_letters", &d) < 0)
            rc = VG_EINVAL;
        else if (d < 0 || d != floor(d) || d > 1e9)
            rc = vg_yaml_error(y, v, "expect_dead_letters must be a count (0, 1, 2, …)");
        else
            tc->expect_dead = (long)d;
    }
    if (!(v = vg_yaml_get(y, t, "input")) || !vg_yaml_is_seq(v)) {
        rc = vg_yaml_error(y, v ? v : t, "a test needs 'input', a list of messages");
    } else {
        for (size_t i = 0; i < seq_len(v); i++) {
            yaml_node_t *e = seq_at(y, v, i);
            int erc;
            if (!vg_yaml_is_map(e))
                erc = vg_yaml_error(y, e, "an input entry is a mapping: a series, a message or raw");
            else if (vg_yaml_get(y, e, "raw"))
                erc = parse_raw(y, e, tc);
            else if (vg_yaml_get(y, e, "values") || vg_yaml_get(y, e, "every"))
                erc = parse_series(y, e, tc);
            else
                erc = parse_single(y, e, tc);
            if (erc == VG_ENOMEM)
                return erc;
            if (erc < 0)
                rc = VG_EINVAL;
        }
    }
    /* `expect: []` (or no `expect`) means: no alert at all */
    if ((v = vg_yaml_get(y, t, "expect")) && !vg_yaml_is_seq(v) &&
        !(vg_yaml_is_scalar(v) && vg_yaml_len(v) == 0)) {
        rc = vg_yaml_error(y, v, "expect must be a list of alerts");
    } else if (v && vg_yaml_is_seq(v) && seq_len(v)) {
        tc->exp = calloc(seq_len(v), sizeof *tc->exp);
        if (!tc->exp)
            return VG_ENOMEM;
        for (size_t i = 0; i < seq_len(v); i++) {
            if (parse_expect(y, seq_at(y, v, i), tc, &tc->exp[tc->n_exp]) < 0)
                rc = VG_EINVAL;
            else
                tc->n_exp++;
        }
    }
    return rc;
}

/* "x.test.yaml" -> "x.yaml", "x.test.yml" -> "x.yml"; NULL otherwise. */
static char *default_rule_file(const char *path)
{
    static const char *const ext[] = {".test.yaml", ".test.yml"};
    size_t n = strlen(path);
    for (size_t i = 0; i < VG_ARRAY_LEN(ext); i++) {
        size_t e = strlen(ext[i]);
        if (n > e && !strcmp(path + n - e, ext[i])) {
            char *p = malloc(n);
            if (p)
                snprintf(p, n, "%.*s%s", (int)(n - e), path, ext[i] + 5);
            return p;
        }
    }
    return NULL;
}

static int add_rule_path(struct test_file *tf, char *p)
{
    char **np = realloc(tf->rule_paths, (tf->n_rule_paths + 1) * sizeof *np);
    if (!np || !p) {
        free(p);
        if (np)
            tf->rule_paths = np;
        return VG_ENOMEM;
    }
    tf->rule_paths = np;
    tf->rule_paths[tf->n_rule_paths++] = p;
    return 0;
}

static int parse_file(struct vg_yaml *y, struct test_file *tf)
{
    static const char *const keys[] = {"rule_files", "registry", "tests", NULL};
    yaml_node_t *root = vg_yaml_root(y), *v;
    if (!vg_yaml_is_map(root))
        return vg_yaml_error(y, root, "a test file is a mapping with rule_files, registry and tests");
    int rc = vg_yaml_check_keys(y, root, "test file", keys);
    if ((v = vg_yaml_get(y, root, "rule_files"))) {
        size_t n = vg_yaml_is_seq(v) ? seq_len(v) : 1;
        if (!vg_yaml_is_seq(v) && !vg_yaml_is_scalar(v))
            rc = vg_yaml_error(y, v, "rule_files must be a file name or a list of them");
        else if (n == 0)
            rc = vg_yaml_error(y, v, "rule_files must not be empty");
        for (size_t i = 0; (vg_yaml_is_seq(v) || vg_yaml_is_scalar(v)) && i < n; i++) {
            yaml_node_t *f = vg_yaml_is_seq(v) ? seq_at(y, v, i) : v;
            const char *s;
            if (vg_yaml_string(y, f, "a rule file", &s) < 0) {
                rc = VG_EINVAL;
                continue;
            }
            char *p = relative_to(tf->path, s);
            if (p && !is_file(p))
                rc = vg_yaml_error(y, f, "rule file '%s' does not exist", p);
            if (add_rule_path(tf, p) < 0)
                return VG_ENOMEM;
        }
    } else {
        char *p = default_rule_file(tf->path);
        if (!p)
            rc = vg_yaml_error(y, root, "give rule_files: the file is not named *.test.yaml, so there "
                                        "is no default rule file");
        else if (!is_file(p))
            rc = vg_yaml_error(y, root, "rule file '%s' (the default for this test file) does not "
                                        "exist; give rule_files", p);
        if (p && add_rule_path(tf, p) < 0)
            return VG_ENOMEM;
    }
    if ((v = vg_yaml_get(y, root, "registry"))) {
        if (vg_yaml_is_map(v)) {
            tf->registry_inline = v;
        } else if (vg_yaml_is_scalar(v) && vg_yaml_len(v)) {
            if (!(tf->registry_path = relative_to(tf->path, vg_yaml_str(v))))
                return VG_ENOMEM;
            if (!is_file(tf->registry_path))
                rc = vg_yaml_error(y, v, "registry '%s' does not exist", tf->registry_path);
        } else {
            rc = vg_yaml_error(y, v, "registry must be a file name or a mapping in registry format");
        }
    }
    vg_ts default_start;
    vg_ts_parse(DEFAULT_START, &default_start);
    if (!(v = vg_yaml_get(y, root, "tests")) || !vg_yaml_is_seq(v) || seq_len(v) == 0)
        return vg_yaml_error(y, v ? v : root, "a test file needs 'tests', a non-empty list");
    tf->tests = calloc(seq_len(v), sizeof *tf->tests);
    if (!tf->tests)
        return VG_ENOMEM;
    for (size_t i = 0; i < seq_len(v); i++) {
        int trc = parse_test(y, seq_at(y, v, i), i, default_start, &tf->tests[tf->n_tests++]);
        if (trc == VG_ENOMEM)
            return trc;
        if (trc < 0)
            rc = VG_EINVAL;
    }
    return rc;
}

/* ---- an inline registry ------------------------------------------------ */

/* Byte offset of a libyaml mark (0-based line, column in characters). */
static size_t mark_offset(const char *text, size_t len, size_t line, size_t col)
{
    size_t i = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0; /* a BOM has no column */
    for (size_t l = 0; l < line && i < len; i++)
        l += text[i] == '\n';
    for (size_t c = 0; c < col && i < len && text[i] != '\n'; c++) {
        i++;
        while (i < len && ((unsigned char)text[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

/*
 * Copy the inline registry's source text to @p tmp so that each character
 * keeps its line and column: earlier lines become empty, and the part of its
 * first line before it becomes spaces.
 */
static int write_inline_registry(const struct test_file *tf, const char *tmp, struct vg_error *err)
{
    const yaml_node_t *n = tf->registry_inline;
    size_t a = mark_offset(tf->text, tf->text_len, n->start_mark.line, n->start_mark.column);
    size_t b = mark_offset(tf->text, tf->text_len, n->end_mark.line, n->end_mark.column);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return vg_error_set(err, VG_EIO, "cannot write %s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < n->start_mark.line; i++)
        fputc('\n', f);
    for (size_t i = 0; i < n->start_mark.column; i++)
        fputc(' ', f);
    if (b > a)
        fwrite(tf->text + a, 1, b - a, f);
    fputc('\n', f);
    if (fclose(f) != 0)
        return vg_error_set(err, VG_EIO, "cannot write %s: %s", tmp, strerror(errno));
    return 0;
}

/* ---- reading alerts and dead letters back ------------------------------ */

struct jfield {
    const char *key;
    char **str;      /* a string field, or NULL */
    double *num;     /* a number field, or NULL */
    bool *seen;
};

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

static void put_utf8(struct sbuf *b, uint32_t c)
{
    char u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    sb_add(b, u, n);
}

static int hex4(const char *s, size_t i, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    if (i + 4 > n)
        return -1;
    for (size_t k = i; k < i + 4; k++) {
        char c = s[k];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* A JSON string at s[i] == '"'; decoded into @p b (if not NULL). @returns the index after it. */
static size_t json_string(const char *s, size_t i, size_t n, struct sbuf *b, bool *ok)
{
    i++;
    while (i < n && s[i] != '"') {
        if (s[i] != '\\') {
            if (b)
                sb_add(b, s + i, 1);
            i++;
            continue;
        }
        if (++i >= n)
            break;
        char c = s[i++];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *p = c ? strchr(from, c) : NULL;
        if (p) {
            if (b)
                sb_add(b, &to[p - from], 1);
            continue;
        }
        uint32_t u, lo;
        if (c != 'u' || hex4(s, i, n, &u) < 0) {
            *ok = false;
            return n;
        }
        i += 4;
        if (u >= 0xD800 && u < 0xDC00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u' &&
            hex4(s, i + 2, n, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        if (b)
            put_utf8(b, u);
    }
    if (i >= n) {
        *ok = false;
        return n;
    }
    if (b && !b->p)
        sb_str(b, "");
    return i + 1;
}

/* Skip any JSON value at s[i] (our own output: nesting is shallow). */
static size_t json_skip(const char *s, size_t i, size_t n, bool *ok)
{
    i = skip_ws(s, i, n);
    if (i >= n) {
        *ok = false;
        return n;
    }
    if (s[i] == '"')
        return json_string(s, i, n, NULL, ok);
    if (s[i] == '{' || s[i] == '[') {
        char close = s[i] == '{' ? '}' : ']';
        i = skip_ws(s, i + 1, n);
        while (*ok && i < n && s[i] != close) {
            i = skip_ws(s, json_skip(s, i, n, ok), n);
            if (i < n && (s[i] == ',' || s[i] == ':'))
                i = skip_ws(s, i + 1, n);
        }
        if (i >= n)
            *ok = false;
        return i >= n ? n : i + 1;
    }
    size_t start = i;
    while (i < n && s[i] && !strchr(",:}] \t\r\n", s[i]))
        i++;
    if (i == start)
        *ok = false;
    return i;
}

/* Pick the named top-level fields of one flat JSON object line. */
static bool json_fields(const char *s, size_t n, const struct jfield *fields)
{
    bool ok = true;
    size_t i = skip_ws(s, 0, n);
    if (i >= n || s[i] != '{')
        return false;
    i = skip_ws(s, i + 1, n);
    while (ok && i < n && s[i] != '}') {
        struct sbuf key = {0};
        if (s[i] != '"')
            return false;
        i = skip_ws(s, json_string(s, i, n, &key, &ok), n);
        if (!ok || i >= n || s[i] != ':') {
            free(key.p);
            return false;
        }
        i = skip_ws(s, i + 1, n);
        const struct jfield *f = fields;
        while (f->key && strcmp(f->key, key.p ? key.p : ""))
            f++;
        free(key.p);
        if (f->key && f->str && i < n && s[i] == '"') {
            struct sbuf v = {0};
            i = json_string(s, i, n, &v, &ok);
            free(*f->str);
            *f->str = v.p;
            *f->seen = true;
        } else if (f->key && f->num && i < n && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))) {
            char *end;
            *f->num = strtod(s + i, &end);
            i = (size_t)(end - s);
            *f->seen = true;
        } else {
            i = json_skip(s, i, n, &ok);
        }
        i = skip_ws(s, i, n);
        if (i < n && s[i] == ',')
            i = skip_ws(s, i + 1, n);
    }
    return ok && i < n;
}

static bool parse_alert(const char *s, size_t n, struct alert_rec *r)
{
    char *status = NULL, *level = NULL;
    double at = 0, started = 0;
    bool seen[9] = {0};
    const struct jfield fields[] = {
        {"rule", &r->rule, NULL, &seen[0]},        {"plant", &r->plant, NULL, &seen[1]},
        {"device", &r->device, NULL, &seen[2]},    {"region", &r->region, NULL, &seen[3]},
        {"status", &status, NULL, &seen[4]},       {"level", &level, NULL, &seen[5]},
        {"at", NULL, &at, &seen[6]},               {"started_at", NULL, &started, &seen[7]},
        {"value", NULL, &r->value, &seen[8]},      {NULL, NULL, NULL, NULL}};
    memset(r, 0, sizeof *r);
    bool ok = json_fields(s, n, fields) && seen[0] && seen[4] && seen[5] && seen[6];
    r->status = (uint8_t)(status ? status_parse(status) : 0);
    r->level = (uint8_t)(level ? vg_level_parse(level, strlen(level)) : 0);
    r->at = (vg_ts)at;
    r->started_at = seen[7] ? (vg_ts)started : VG_TS_NONE;
    r->has_value = seen[8];
    free(status);
    free(level);
    return ok && r->status;
}

/* ---- one test ---------------------------------------------------------- */

struct runner {
    char dir[256];
    char input[300], alerts[300], dead[300], registry[300];
    FILE *out, *diag;
    struct vg_ruletest_counts *counts;
};

static int msg_cmp(const void *a, const void *b)
{
    const struct gen_msg *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int write_input(const struct runner *ru, const struct test_case *tc, struct vg_error *err)
{
    FILE *f = fopen(ru->input, "wb");
    if (!f)
        return vg_error_set(err, VG_EIO, "cannot write %s: %s", ru->input, strerror(errno));
    for (size_t i = 0; i < tc->n_msgs; i++) {
        fputs(tc->msgs[i].text, f);
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        return vg_error_set(err, VG_EIO, "cannot write %s: %s", ru->input, strerror(errno));
    return 0;
}

/* Read NDJSON lines from @p path; calls @p fn for each. */
static int each_line(const char *path, int (*fn)(void *ctx, const char *line, size_t n), void *ctx,
                     struct vg_error *err)
{
    char *text;
    size_t len;
    if (read_all(path, &text, &len) < 0)
        return vg_error_set(err, VG_EIO, "cannot read %s: %s", path, strerror(errno));
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        if (e > i)
            rc = fn(ctx, text + i, e - i);
        i = e + 1;
    }
    free(text);
    if (rc < 0)
        vg_error_set(err, VG_EIO, "cannot read an alert in %s", path);
    return rc;
}

struct actual_list {
    struct alert_rec *v;
    size_t n, cap;
};

static int add_actual(void *ctx, const char *line, size_t n)
{
    struct actual_list *al = ctx;
    if (al->n == al->cap) {
        size_t nc = al->cap ? al->cap * 2 : 16;
        struct alert_rec *nv = realloc(al->v, nc * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        al->v = nv;
        al->cap = nc;
    }
    struct alert_rec *r = &al->v[al->n];
    bool ok = parse_alert(line, n, r);
    al->n++;
    return ok ? 0 : VG_EIO;
}

static bool str_eq(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static bool same_subject(const struct alert_rec *a, const struct alert_rec *b)
{
    /* a subject is rule + plant + device; one without a plant (a group) is its region */
    return str_eq(a->rule, b->rule) && str_eq(a->plant, b->plant) && str_eq(a->device, b->device) &&
           (a->plant || b->plant || !a->region || !b->region || str_eq(a->region, b->region));
}

static bool matches(const struct alert_rec *e, const struct alert_rec *a)
{
    return same_subject(e, a) && e->status == a->status && e->level == a->level && e->at == a->at &&
           (e->started_at == VG_TS_NONE || e->started_at == a->started_at) &&
           (!e->has_value || (a->has_value && fabs(e->value - a->value) <= 1e-9 * fmax(1, fabs(e->value)))) &&
           (!e->region || str_eq(e->region, a->region));
}

static void fmt_rel(char *buf, size_t cap, vg_ts t, vg_ts start)
{
    vg_ts d = t - start;
    char tmp[48];
    vg_duration_format(d < 0 ? -d : d, tmp, sizeof tmp);
    snprintf(buf, cap, "%s%s", d < 0 ? "-" : "", tmp);
}

static void print_rec(FILE *out, const char *label, const struct alert_rec *r, vg_ts start,
                      bool show_started, bool show_value)
{
    char at[80], subject[300], buf[64];
    char rel[64];
    fmt_rel(rel, sizeof rel, r->at, start);
    snprintf(at, sizeof at, "at=%s", rel);
    if (r->plant)
        snprintf(subject, sizeof subject, "%s%s%s", r->plant, r->device ? "/" : "",
                 r->device ? r->device : "");
    else
        snprintf(subject, sizeof subject, "%s", r->region ? r->region : r->device ? r->device : "-");
    fprintf(out, "  %s %-7s %s %s %s %s", label, at, r->rule ? r->rule : "?", subject,
            status_name(r->status), vg_level_name(r->level));
    if (show_started && r->started_at != VG_TS_NONE) {
        fmt_rel(buf, sizeof buf, r->started_at, start);
        fprintf(out, " started_at=%s", buf);
    }
    if (show_value && r->has_value) {
        fmt_number(buf, sizeof buf, r->value);
        fprintf(out, " value=%s", buf);
    }
    fputc('\n', out);
}

struct dead_ctx {
    const struct test_case *tc;
    FILE *out;
    const char *path;
};

static int print_dead(void *ctx, const char *line, size_t n)
{
    struct dead_ctx *dc = ctx;
    char *reason = NULL, *detail = NULL, *source = NULL;
    bool seen[3] = {0};
    const struct jfield fields[] = {{"reason", &reason, NULL, &seen[0]},
                                    {"detail", &detail, NULL, &seen[1]},
                                    {"source", &source, NULL, &seen[2]},
                                    {NULL, NULL, NULL, NULL}};
    json_fields(line, n, fields);
    const char *colon = source ? strrchr(source, ':') : NULL;
    long no = colon ? strtol(colon + 1, NULL, 10) : 0;
    fprintf(dc->out, "    dead letter: %s: %s", reason ? reason : "?", detail ? detail : "");
    if (no >= 1 && (size_t)no <= dc->tc->n_msgs)
        fprintf(dc->out, " (input at %s:%d:%d)", dc->path, dc->tc->msgs[no - 1].line,
                dc->tc->msgs[no - 1].col);
    fputc('\n', dc->out);
    free(reason);
    free(detail);
    free(source);
    return 0;
}

/* Diff expected and actual per subject (in order of first appearance) and print. */
static bool compare(const struct test_file *tf, const struct test_case *tc, const struct alert_rec *act,
                    size_t n_act, FILE *out, bool *header)
{
    size_t n_all = tc->n_exp + n_act;
    const struct alert_rec **subj = calloc(n_all + 1, sizeof *subj);
    size_t *ei = calloc(tc->n_exp + 1, sizeof *ei), *ai = calloc(n_act + 1, sizeof *ai);
    bool pass = true;
    size_t n_subj = 0;
    for (size_t k = 0; k < n_all; k++) {
        const struct alert_rec *r = k < tc->n_exp ? &tc->exp[k] : &act[k - tc->n_exp];
        size_t s = 0;
        while (s < n_subj && !same_subject(subj[s], r))
            s++;
        if (s == n_subj)
            subj[n_subj++] = r;
    }
    for (size_t s = 0; s < n_subj; s++) {
        size_t m = 0, n = 0;
        bool show_started = false, show_value = false;
        for (size_t i = 0; i < tc->n_exp; i++)
            if (same_subject(subj[s], &tc->exp[i])) {
                ei[m++] = i;
                show_started |= tc->exp[i].started_at != VG_TS_NONE;
                show_value |= tc->exp[i].has_value;
            }
        for (size_t j = 0; j < n_act; j++)
            if (same_subject(subj[s], &act[j]))
                ai[n++] = j;
        /* LCS table over the suffixes; fall back to position by position if huge */
        uint32_t *L = (m + 1) * (n + 1) <= LCS_MAX_CELLS ? calloc((m + 1) * (n + 1), sizeof *L) : NULL;
        if (L)
            for (size_t i = m; i-- > 0;)
                for (size_t j = n; j-- > 0;)
                    L[i * (n + 1) + j] = matches(&tc->exp[ei[i]], &act[ai[j]])
                                             ? L[(i + 1) * (n + 1) + j + 1] + 1
                                             : L[(i + 1) * (n + 1) + j] > L[i * (n + 1) + j + 1]
                                                   ? L[(i + 1) * (n + 1) + j]
                                                   : L[i * (n + 1) + j + 1];
        size_t i = 0, j = 0;
        while (i < m || j < n) {
            int op; /* 0 match, 1 missing, 2 unexpected */
            if (i < m && j < n && matches(&tc->exp[ei[i]], &act[ai[j]]) &&
                (!L || L[i * (n + 1) + j] == L[(i + 1) * (n + 1) + j + 1] + 1))
                op = 0;
            else if (i < m && (j == n || (L ? L[(i + 1) * (n + 1) + j] >= L[i * (n + 1) + j + 1] : true)))
                op = 1;
            else
                op = 2;
            if (op && !*header) {
                fprintf(out, "%s:%d:%d: FAIL %s\n", tf->path, tc->line, tc->col, tc->name);
                *header = true;
            }
            if (op == 1)
                print_rec(out, "- missing:   ", &tc->exp[ei[i]], tc->start, show_started, show_value);
            else if (op == 2)
                print_rec(out, "+ unexpected:", &act[ai[j]], tc->start, show_started, show_value);
            pass &= op == 0;
            i += op != 2;
            j += op != 1;
        }
        free(L);
    }
    free(subj);
    free(ei);
    free(ai);
    return pass;
}

static int run_test(struct runner *ru, const struct test_file *tf, struct test_case *tc,
                    const struct vg_ruleset *rs, const struct vg_registry *reg, bool *pass,
                    struct vg_error *err)
{
    struct vg_source_handle in = {0};
    struct vg_sink_handle alerts = {0}, dead = {0};
    struct actual_list al = {0};
    struct vg_pipeline_stats st;
    bool have_stats = false;
    int rc;
    if (tc->n_msgs)
        qsort(tc->msgs, tc->n_msgs, sizeof *tc->msgs, msg_cmp);
    if ((rc = write_input(ru, tc, err)) < 0)
        goto fail;
    if ((rc = vg_source_open(ru->input, &in, err)) < 0 || (rc = vg_sink_open(ru->alerts, &alerts, err)) < 0 ||
        (rc = vg_sink_open(ru->dead, &dead, err)) < 0)
        goto fail;
    struct vg_pipeline_config cfg = {
        .rs = rs,
        .reg = reg,
        .input = &in,
        .alerts = &alerts,
        .dead = &dead,
        .threads = 1,
        .summary = false,
        .lateness = tc->lateness,
        .start = tc->start,
        .until = tc->until,
    };
    rc = vg_pipeline_run(&cfg, &st, err);
    have_stats = true;
    vg_sink_close(&alerts);
    vg_sink_close(&dead);
    vg_source_close(&in);
    if (rc < 0)
        goto fail;
    if ((rc = each_line(ru->alerts, add_actual, &al, err)) < 0)
        goto fail;
    bool header = false;
    *pass = compare(tf, tc, al.v, al.n, ru->out, &header);
    if (tc->expect_dead >= 0 && (uint64_t)tc->expect_dead != st.dead) {
        if (!header)
            fprintf(ru->out, "%s:%d:%d: FAIL %s\n", tf->path, tc->line, tc->col, tc->name);
        header = true;
        fprintf(ru->out, "  ! dead letters: expected %ld, got %llu\n", tc->expect_dead,
                (unsigned long long)st.dead);
        *pass = false;
    }
    if (!*pass && st.dead) {
        struct dead_ctx dc = {tc, ru->out, tf->path};
        each_line(ru->dead, print_dead, &dc, err);
    }
fail:
    if (have_stats)
        vg_pipeline_stats_fini(&st);
    vg_sink_close(&alerts);
    vg_sink_close(&dead);
    vg_source_close(&in);
    for (size_t i = 0; i < al.n; i++)
        rec_fini(&al.v[i]);
    free(al.v);
    return rc;
}

/* ---- one file ---------------------------------------------------------- */

static void report_invalid(struct runner *ru, const char *path, struct vg_diags *d, size_t n_tests)
{
    fflush(ru->out);
    vg_diags_print(d, ru->diag);
    fprintf(ru->diag, "vigil test: %s: %zu error%s; its tests were not run\n", path, d->n,
            d->n == 1 ? "" : "s");
    fflush(ru->diag);
    ru->counts->invalid++;
    ru->counts->failed += (unsigned)(n_tests ? n_tests : 1);
}

static int run_file(struct runner *ru, const char *path, struct vg_error *err)
{
    struct test_file tf = {.path = path};
    struct vg_yaml y;
    struct vg_diags d;
    struct vg_registry *reg = NULL;
    struct vg_ruleset *rs = NULL;
    int rc = 0;
    vg_diags_init(&d);
    ru->counts->files++;
    if (vg_yaml_load(&y, path, &d) < 0)
        goto invalid;
    if (read_all(path, &tf.text, &tf.text_len) < 0) {
        vg_diags_add(&d, path, 0, 0, "cannot read: %s", strerror(errno));
        goto invalid;
    }
    if ((rc = parse_file(&y, &tf)) == VG_ENOMEM) {
        vg_error_set(err, rc, "out of memory");
        goto out;
    }
    rc = 0;
    /* a file with errors still has its registry and rules checked: every problem at once */
    if (tf.registry_inline) {
        if ((rc = write_inline_registry(&tf, ru->registry, err)) < 0)
            goto out;
        size_t first = d.n;
        vg_registry_load(&reg, ru->registry, &d);
        for (size_t i = first; i < d.n; i++)
            if (!strcmp(d.v[i].file, ru->registry)) {
                free(d.v[i].file);
                d.v[i].file = strdup(path);
            }
    } else if (tf.registry_path && is_file(tf.registry_path)) {
        vg_registry_load(&reg, tf.registry_path, &d);
    } else if (!tf.registry_path) {
        reg = vg_registry_empty();
    }
    bool rules_exist = tf.n_rule_paths > 0;
    for (size_t i = 0; i < tf.n_rule_paths; i++)
        rules_exist &= is_file(tf.rule_paths[i]);
    if (rules_exist) {
        /* on its own list: the loader fails on any diagnostic already in the list */
        struct vg_diags rd;
        vg_diags_init(&rd);
        vg_ruleset_load(&rs, (const char *const *)tf.rule_paths, tf.n_rule_paths, NULL, &rd);
        for (size_t i = 0; i < rd.n; i++)
            vg_diags_add(&d, rd.v[i].file, rd.v[i].line, rd.v[i].col, "%s", rd.v[i].msg);
        vg_diags_fini(&rd);
    }
    if (rs) /* every expected rule must exist: a typo would otherwise only show as a diff */
        for (size_t i = 0; i < tf.n_tests; i++)
            for (size_t j = 0; j < tf.tests[i].n_exp; j++) {
                const struct alert_rec *e = &tf.tests[i].exp[j];
                uint32_t k = 0;
                while (k < rs->n_rules && strcmp(rs->rules[k].id, e->rule))
                    k++;
                if (k == rs->n_rules)
                    vg_diags_add(&d, path, e->rule_line, e->rule_col,
                                 "rule '%s' is not in the rule files of this test", e->rule);
            }
    if (d.n || !reg || !rs)
        goto invalid;
    for (size_t i = 0; i < tf.n_tests; i++) {
        bool pass = false;
        if ((rc = run_test(ru, &tf, &tf.tests[i], rs, reg, &pass, err)) < 0)
            goto out;
        if (pass)
            ru->counts->passed++;
        else
            ru->counts->failed++;
    }
    goto out;
invalid:
    report_invalid(ru, path, &d, tf.n_tests);
out:
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
    vg_yaml_fini(&y);
    test_file_fini(&tf);
    vg_diags_fini(&d);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_test_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 10 && !strcmp(name + n - 10, ".test.yaml")) ||
                              (n > 9 && !strcmp(name + n - 9, ".test.yml")));
}

static int run_dir(struct runner *ru, const char *dir, struct vg_error *err)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return vg_error_set(err, VG_EIO, "cannot read directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (!is_test_name(de->d_name))
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn) {
            rc = vg_error_set(err, VG_ENOMEM, "out of memory");
            break;
        }
        names = nn;
        size_t dl = strlen(dir);
        bool slash = dl && dir[dl - 1] == '/';
        size_t cap = dl + strlen(de->d_name) + 2;
        if (!(names[n] = malloc(cap))) {
            rc = vg_error_set(err, VG_ENOMEM, "out of memory");
            break;
        }
        snprintf(names[n++], cap, "%s%s%s", dir, slash ? "" : "/", de->d_name);
    }
    closedir(dp);
    if (names)
        qsort(names, n, sizeof *names, name_cmp);
    if (rc == 0 && n == 0)
        fprintf(ru->diag, "vigil test: no *.test.yaml files in '%s'\n", dir);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = run_file(ru, names[i], err);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int vg_ruletest_run(const char *const *paths, size_t n_paths, FILE *out, FILE *diag,
                    struct vg_ruletest_counts *counts, struct vg_error *err)
{
    struct runner ru = {.out = out, .diag = diag, .counts = counts};
    memset(counts, 0, sizeof *counts);
    const char *t = getenv("TMPDIR");
    snprintf(ru.dir, sizeof ru.dir, "%s/vigil-ruletest-XXXXXX", t && *t && strlen(t) < 200 ? t : "/tmp");
    if (!mkdtemp(ru.dir))
        return vg_error_set(err, VG_EIO, "cannot create a temporary directory %s: %s", ru.dir,
                            strerror(errno));
    snprintf(ru.input, sizeof ru.input, "%s/input.ndjson", ru.dir);
    snprintf(ru.alerts, sizeof ru.alerts, "%s/alerts.ndjson", ru.dir);
    snprintf(ru.dead, sizeof ru.dead, "%s/dead.ndjson", ru.dir);
    snprintf(ru.registry, sizeof ru.registry, "%s/registry.yaml", ru.dir);
    int rc = 0;
    for (size_t i = 0; i < n_paths && rc == 0; i++) {
        struct stat st;
        if (stat(paths[i], &st) < 0) {
            struct vg_diags d;
            vg_diags_init(&d);
            vg_diags_add(&d, paths[i], 0, 0, "cannot open: %s", strerror(errno));
            report_invalid(&ru, paths[i], &d, 0);
            vg_diags_fini(&d);
        } else if (S_ISDIR(st.st_mode)) {
            rc = run_dir(&ru, paths[i], err);
        } else {
            rc = run_file(&ru, paths[i], err);
        }
    }
    unlink(ru.input);
    unlink(ru.alerts);
    unlink(ru.dead);
    unlink(ru.registry);
    rmdir(ru.dir);
    return rc;
}
