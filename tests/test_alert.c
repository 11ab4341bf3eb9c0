/*
 * test_alert.c: the alert lifecycle of one rule and subject, alert ids and
 * the alert JSON line (engine/alert.h).
 * Owns: the transitions DESIGN.md's "Exact semantics" define — pending and
 * `for` (sample-based, boundary inclusive), reset on a failing sample,
 * escalation, a level that never falls, started_at, clear/clear_for with
 * hysteresis, default clear, a new alert after resolve — plus deterministic
 * ids and a strict check of the JSON an alert becomes.
 * Must never: build rules by hand: each rule is YAML a rule author could
 * have written, loaded with vg_ruleset_load. Expected transitions are worked
 * out by hand from DESIGN.md, never copied from the engine's output.
 * DESIGN: a scenario is a table of samples (ts, value) and, for each, the
 * transition it must cause (or none) and the live level after it. The JSON
 * check is a small strict RFC 8259 reader written for this test.
 */
#include "vgtest.h"

#include "engine/alert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rules, as a rule author writes them ---------------------------------- */

static const char rules_yaml[] =
    "version: 1\n"
    "rules:\n"
    "  - id: for30\n"
    "    title: 氨气浓度超限\n"
    "    metric: nh3_ppm\n"
    "    for: 30s\n"
    "    grades:\n"
    "      - { level: yellow, when: value > 25 }\n"
    "  - id: for0\n"
    "    metric: nh3_ppm\n"
    "    for: 0s\n"
    "    grades:\n"
    "      - { level: yellow, when: value > 25 }\n"
    "  - id: graded\n"
    "    title: 涉氨制冷车间氨气浓度超限\n"
    "    kind: warning\n"
    "    metric: nh3_ppm\n"
    "    for: 30s\n"
    "    grades:\n"
    "      - { level: red,    when: value >= 150, for: 0s }\n"
    "      - { level: yellow, when: value > 25 }\n"
    "      - { level: orange, when: value > 40 }\n"
    "    clear: value < 20\n"
    "    clear_for: 60s\n"
    "  - id: default_clear\n"
    "    metric: nh3_ppm\n"
    "    for: 10s\n"
    "    grades:\n"
    "      - { level: yellow, when: value > 25 }\n"
    "      - { level: orange, when: value > 40 }\n"
    "  - id: slow_clear\n"
    "    metric: co_ppm\n"
    "    clear_for: 20s\n"
    "    grades: [ { level: blue, when: co_ppm > 25 } ]\n";

static struct vg_ruleset *load_rules(void)
{
    const char *path = vgt_write("rules.yaml", rules_yaml);
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs = NULL;
    int rc = vg_ruleset_load(&rs, &path, 1, NULL, &d);
    ck_assert_msg(rc == VG_OK && d.n == 0, "rules do not load: %s", d.n ? d.v[0].msg : "");
    vg_diags_fini(&d);
    return rs;
}

static const struct vg_rule *rule_by_id(const struct vg_ruleset *rs, const char *id)
{
    for (uint32_t i = 0; i < rs->n_rules; i++)
        if (!strcmp(rs->rules[i].id, id))
            return &rs->rules[i];
    ck_abort_msg("no rule '%s'", id);
    return NULL;
}

/* ---- lifecycle scenarios -------------------------------------------------- */

#define T0 INT64_C(1763884800000)
#define T(sec) (T0 + (vg_ts)(sec) * 1000)

enum { N = 0, B = VG_LEVEL_BLUE, Y = VG_LEVEL_YELLOW, O = VG_LEVEL_ORANGE, R = VG_LEVEL_RED };

struct step {
    vg_ts ts;
    double value;
    uint8_t status;     /* expected transition; 0: none */
    uint8_t level;
    uint8_t grade;      /* deciding grade (ascending index); 0 for resolve */
    vg_ts started_at;
    vg_ts since;        /* when the deciding condition began to hold */
    uint8_t live;       /* the live alert's level after this sample; 0: none */
};

/* no transition; the live level stays `live` */
#define NONE(ts, v, live) {(ts), (v), 0, 0, 0, 0, 0, (live)}
#define FIRE(ts, v, lvl, g, start, since) {(ts), (v), VG_ALERT_FIRING, (lvl), (g), (start), (since), (lvl)}
#define ESC(ts, v, lvl, g, start, since) {(ts), (v), VG_ALERT_ESCALATED, (lvl), (g), (start), (since), (lvl)}
#define RES(ts, v, lvl, start, since) {(ts), (v), VG_ALERT_RESOLVED, (lvl), 0, (start), (since), 0}

#define STEPS(...)                                                                                 \
    .steps = {__VA_ARGS__}, .n = sizeof((struct step[]){__VA_ARGS__}) / sizeof(struct step)

struct scenario {
    const char *name;
    const char *rule;
    struct step steps[24];
    size_t n;
};

static const struct scenario scenarios[] = {
    {"for 30s: fires exactly at start + for, not a millisecond earlier; default clear", "for30",
     STEPS(NONE(T(0), 30, N),
           NONE(T(10), 30, N),
           NONE(T(30) - 1, 30, N),
           FIRE(T(30), 30, Y, 0, T(0), T(0)),
           NONE(T(40), 31, Y),
           /* 25 is not > 25: the lowest grade no longer holds; clear_for defaults to 0 */
           RES(T(50), 25, Y, T(0), T(50)),
           NONE(T(60), 10, N))},
    {"for 30s: sample-based, fires at the first sample at or after the deadline", "for30",
     STEPS(NONE(T(0), 30, N),
           FIRE(T(45), 30, Y, 0, T(0), T(0)))},
    {"for 30s: a failing sample resets pending", "for30",
     STEPS(NONE(T(0), 30, N),
           NONE(T(20), 25, N),
           NONE(T(25), 30, N),
           NONE(T(50), 30, N),
           NONE(T(55) - 1, 30, N),
           FIRE(T(55), 30, Y, 0, T(25), T(25)))},
    {"for 30s: a missing value (NaN) fails the condition and resets pending", "for30",
     STEPS(NONE(T(0), 30, N),
           NONE(T(10), NAN, N),
           NONE(T(30), 30, N),
           NONE(T(59), 30, N),
           FIRE(T(60), 30, Y, 0, T(30), T(30)))},
    {"for 0s: fires on the first holding sample; a new breach after resolve is a new alert", "for0",
     STEPS(NONE(T(0), 25, N),
           FIRE(T(1), 25.5, Y, 0, T(1), T(1)),
           NONE(T(2), 100, Y),
           RES(T(3), 0, Y, T(1), T(3)),
           FIRE(T(4), 26, Y, 0, T(4), T(4)))},
    {"for 0s: NaN never fires", "for0",
     STEPS(NONE(T(0), NAN, N),
           NONE(T(1), NAN, N),
           NONE(T(2), -NAN, N))},
    {"grades: NaN never fires any grade", "graded",
     STEPS(NONE(T(0), NAN, N),
           NONE(T(30), NAN, N),
           NONE(T(60), NAN, N))},
    {"grades: escalation, a level that never falls, clear with hysteresis, a new alert", "graded",
     STEPS(NONE(T(0), 30, N),                    /* yellow pending */
           FIRE(T(30), 45, Y, 0, T(0), T(0)),    /* yellow held 30 s; orange pending from 30 */
           NONE(T(50), 45, Y),
           ESC(T(60), 45, O, 1, T(0), T(30)),    /* orange held 30 s */
           NONE(T(70), 30, O),                   /* only yellow holds: the level stays */
           ESC(T(80), 200, R, 2, T(0), T(80)),   /* red has for: 0s */
           NONE(T(90), 30, R),
           NONE(T(100), 10, R),                  /* clear holds: timer from 100 */
           NONE(T(130), 22, R),                  /* hysteresis band: timer reset */
           NONE(T(140), 10, R),                  /* timer from 140 */
           NONE(T(170), 30, R),                  /* the alert's condition again: reset */
           NONE(T(180), 10, R),                  /* timer from 180 */
           NONE(T(240) - 1, 10, R),
           RES(T(240), 10, R, T(0), T(180)),     /* exactly 180 + 60 */
           NONE(T(250), 30, N),                  /* a new breach starts pending */
           FIRE(T(280), 30, Y, 0, T(250), T(250)))},
    {"grades: a grade with its own for: 0s goes straight to red", "graded",
     STEPS(NONE(T(0), 10, N),
           FIRE(T(1), 200, R, 2, T(1), T(1)))},
    {"grades: red at its boundary; started_at is when the lowest grade began to hold", "graded",
     STEPS(NONE(T(0), 149.9, N),
           FIRE(T(1), 150, R, 2, T(0), T(1)))},
    {"grades: later grades firing below the live level change nothing", "graded",
     STEPS(NONE(T(0), 30, N),
           NONE(T(5), 45, N),
           FIRE(T(10), 160, R, 2, T(0), T(10)),
           NONE(T(40), 160, R),                  /* yellow and orange fire now: still red */
           NONE(T(50), 30, R))},
    {"grades: both grades due on one sample fire the higher one", "graded",
     STEPS(NONE(T(0), 45, N),
           NONE(T(29), 45, N),
           FIRE(T(30), 45, O, 1, T(0), T(0)),
           ESC(T(31), 150, R, 2, T(0), T(31)))},
    {"default clear: the level never falls; resolves when the lowest grade stops holding",
     "default_clear",
     STEPS(NONE(T(0), 50, N),
           FIRE(T(10), 50, O, 1, T(0), T(0)),
           NONE(T(12), 30, O),
           NONE(T(14), 26, O),
           RES(T(16), 25, O, T(0), T(16)),
           NONE(T(18), 50, N),
           NONE(T(28) - 1, 50, N),
           FIRE(T(28), 50, O, 1, T(18), T(18)))},
    {"default clear with clear_for: a holding sample resets the clear timer", "slow_clear",
     STEPS(FIRE(T(0), 30, B, 0, T(0), T(0)),
           NONE(T(5), 20, B),                    /* clear from 5 */
           NONE(T(10), 26, B),                   /* holds again: reset */
           NONE(T(15), 20, B),                   /* clear from 15 */
           NONE(T(35) - 1, 20, B),
           RES(T(35), 19, B, T(0), T(15)),
           NONE(T(36), 20, N))},
};

START_TEST(lifecycle)
{
    const struct scenario *sc = &scenarios[_i];
    struct vg_ruleset *rs = load_rules();
    const struct vg_rule *r = rule_by_id(rs, sc->rule);
    struct vg_rstate st;
    vg_rstate_init(&st, (uint16_t)r->index);
    for (size_t k = 0; k < sc->n; k++) {
        const struct step *s = &sc->steps[k];
        struct vg_eval_env env = {s->value, NULL};
        struct vg_transition tr;
        memset(&tr, 0, sizeof tr);
        bool changed = vg_rstate_step(&st, r, s->ts, &env, &tr);
        ck_assert_msg(changed == (s->status != 0), "%s: step %zu changed=%d", sc->name, k, changed);
        ck_assert_msg(tr.status == s->status, "%s: step %zu status %d, want %d", sc->name, k, tr.status,
                      s->status);
        ck_assert_msg(tr.level == s->level, "%s: step %zu level %d, want %d", sc->name, k, tr.level, s->level);
        ck_assert_msg(tr.grade == s->grade, "%s: step %zu grade %d, want %d", sc->name, k, tr.grade, s->grade);
        ck_assert_msg(tr.started_at == s->started_at, "%s: step %zu started_at %lld, want %lld", sc->name, k,
                      (long long)tr.started_at, (long long)s->started_at);
        ck_assert_msg(tr.since == s->since, "%s: step %zu since %lld, want %lld", sc->name, k,
                      (long long)tr.since, (long long)s->since);
        ck_assert_msg(st.level == s->live, "%s: step %zu live level %d, want %d", sc->name, k, st.level,
                      s->live);
        ck_assert_int_eq(st.rule, r->index);
    }
    vg_ruleset_destroy(rs);
}
END_TEST

/* Resolving keeps the state's place in its subject's chain. */
START_TEST(resolve_keeps_chain)
{
    struct vg_ruleset *rs = load_rules();
    const struct vg_rule *r = rule_by_id(rs, "for0");
    struct vg_rstate st;
    vg_rstate_init(&st, (uint16_t)r->index);
    st.next = 7;
    struct vg_transition tr;
    struct vg_eval_env hot = {30, NULL}, cold = {10, NULL};
    ck_assert(vg_rstate_step(&st, r, T(0), &hot, &tr));
    ck_assert(vg_rstate_step(&st, r, T(1), &cold, &tr));
    ck_assert_int_eq(tr.status, VG_ALERT_RESOLVED);
    ck_assert_int_eq(st.next, 7);
    ck_assert_int_eq(st.started_at, VG_TS_NONE);
    ck_assert_int_eq(st.clear_since, VG_TS_NONE);
    vg_ruleset_destroy(rs);
}
END_TEST

/* ---- alert ids ------------------------------------------------------------ */

struct id_input {
    const char *rule, *plant;
    size_t plant_len;
    const char *device;
    size_t dev_len;
    vg_ts started_at;
};

#define BASE_ID {"nh3_over_limit", "P320585001", 10, "NH3-01", 6, T(10)}

struct id_case {
    struct id_input a, b;
    bool same;
};

static const struct id_case id_cases[] = {
    /* the same rule, subject and start give the same id (replays dedupe) */
    {BASE_ID, BASE_ID, true},
    /* lengths are honoured: the bytes after them are not part of the id */
    {BASE_ID, {"nh3_over_limit", "P320585001-extra", 10, "NH3-01xyz", 6, T(10)}, true},
    /* each input matters */
    {BASE_ID, {"nh3_over_limit2", "P320585001", 10, "NH3-01", 6, T(10)}, false},
    {BASE_ID, {"nh3_over_limit", "P320585002", 10, "NH3-01", 6, T(10)}, false},
    {BASE_ID, {"nh3_over_limit", "P320585001", 10, "NH3-02", 6, T(10)}, false},
    {BASE_ID, {"nh3_over_limit", "P320585001", 10, "NH3-01", 6, T(10) + 1}, false},
    {BASE_ID, {"nh3_over_limit", "P320585001", 10, "NH3-01", 6, T(250)}, false},
    /* fields are delimited: moving a byte from one field to the next changes the id */
    {{"a", "bc", 2, "d", 1, 0}, {"ab", "c", 1, "d", 1, 0}, false},
    {{"r", "P1", 2, "D1", 2, 0}, {"r", "P", 1, "1D1", 3, 0}, false},
    {{"r", "P1", 2, "D1", 2, 12}, {"r", "P1", 2, "D11", 3, 2}, false},
    /* plant and device are not interchangeable */
    {{"r", "X", 1, "Y", 1, 5}, {"r", "Y", 1, "X", 1, 5}, false},
};

static bool hex16(const char *s)
{
    bool ok = strlen(s) == 16;
    for (int i = 0; i < 16 && ok; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    return ok;
}

static void id_of(const struct id_input *in, char out[17])
{
    memset(out, 'Z', 17);
    vg_alert_id(in->rule, in->plant, in->plant_len, in->device, in->dev_len, in->started_at, out);
}

START_TEST(alert_id)
{
    const struct id_case *c = &id_cases[_i];
    char a[17], b[17], a2[17];
    id_of(&c->a, a);
    id_of(&c->b, b);
    id_of(&c->a, a2);
    ck_assert_msg(hex16(a), "'%s'", a);
    ck_assert_msg(hex16(b), "'%s'", b);
    ck_assert_str_eq(a, a2);
    ck_assert_int_eq(strcmp(a, b) == 0, c->same);
}
END_TEST

/* Ids are a contract with downstream consumers that dedupe on them: an
 * upgrade must not change them. This pins one (recorded from this release). */
START_TEST(alert_id_stable)
{
    char id[17];
    vg_alert_id("nh3_over_limit", "P320585001", 10, "NH3-01", 6, INT64_C(1763884810000), id);
    ck_assert_str_eq(id, "9520cd65e2acee49");
}
END_TEST

/* ---- a strict reader for one JSON line ------------------------------------ */

struct jfield {
    char key[64];
    char val[1024];   /* decoded string, or the raw text of any other value */
    bool is_str;
};

struct jobj {
    struct jfield f[32];
    int n;
};

struct jr {
    const char *p, *end;
};

static void jws(struct jr *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool jhex4(struct jr *j, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++, j->p++) {
        if (j->p >= j->end || hexval(*j->p) < 0)
            return false;
        *out = *out * 16 + (unsigned)hexval(*j->p);
    }
    return true;
}

/* Append code point @p cp as UTF-8. */
static size_t utf8(unsigned cp, char *out)
{
    if (cp < 0x80)
        return out[0] = (char)cp, 1;
    if (cp < 0x800)
        return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000)
        return out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | (cp >> 6 & 63)),
               out[2] = (char)(0x80 | (cp & 63)), 3;
    return out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | (cp >> 12 & 63)),
           out[2] = (char)(0x80 | (cp >> 6 & 63)), out[3] = (char)(0x80 | (cp & 63)), 4;
}

/* A string; decoded into @p out (NUL-terminated, @p cap >= 5). */
static bool jstring(struct jr *j, char *out, size_t cap)
{
    size_t o = 0;
    if (j->p >= j->end || *j->p != '"')
        return false;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        char tmp[4];
        size_t n = 1;
        tmp[0] = (char)c;
        if (c < 0x20)
            return false;  /* raw control characters are not allowed */
        j->p++;
        if (c == '\\') {
            if (j->p >= j->end)
                return false;
            char e = *j->p++;
            const char *simple = strchr("\"\\/bfnrt", e);
            unsigned cp;
            if (e && simple) {
                tmp[0] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            } else if (e == 'u' && jhex4(j, &cp)) {
                if (cp >= 0xD800 && cp < 0xDC00) {
                    unsigned lo;
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
                        return false;
                    j->p += 2;
                    if (!jhex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return false;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp < 0xE000) {
                    return false;
                }
                n = utf8(cp, tmp);
            } else {
                return false;
            }
        }
        if (o + n >= cap)
            return false;
        memcpy(out + o, tmp, n);
        o += n;
    }
    if (j->p >= j->end)
        return false;
    j->p++;
    out[o] = 0;
    return true;
}

static bool jdigits(struct jr *j)
{
    const char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool jnumber(struct jr *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!(j->p < j->end && *j->p >= '1' && *j->p <= '9' && jdigits(j)))
        return false;
    if (j->p < j->end && *j->p == '.' && (j->p++, !jdigits(j)))
        return false;
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!jdigits(j))
            return false;
    }
    return true;
}

static bool jlit(struct jr *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
        return false;
    j->p += n;
    return true;
}

static bool jvalue(struct jr *j, int depth)
{
    char tmp[1024];
    if (depth > 16 || j->p >= j->end)
        return false;
    char c = *j->p;
    if (c == '"')
        return jstring(j, tmp, sizeof tmp);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        jws(j);
        if (j->p < j->end && *j->p == close)
            return j->p++, true;
        for (;;) {
            if (c == '{') {
                if (!jstring(j, tmp, sizeof tmp))
                    return false;
                jws(j);
                if (j->p >= j->end || *j->p++ != ':')
                    return false;
                jws(j);
            }
            if (!jvalue(j, depth + 1))
                return false;
            jws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                jws(j);
                continue;
            }
            return j->p < j->end && *j->p++ == close;
        }
    }
    if (c == 't')
        return jlit(j, "true");
    if (c == 'f')
        return jlit(j, "false");
    if (c == 'n')
        return jlit(j, "null");
    return jnumber(j);
}

/*
 * Read @p n bytes as exactly one JSON object followed by one '\n' and nothing
 * else, with no other line break; collect its top-level fields (no duplicates).
 */
static bool json_line(const char *s, size_t n, struct jobj *o)
{
    struct jr j = {s, s + n};
    o->n = 0;
    if (n < 3 || s[n - 1] != '\n' || memchr(s, '\n', n - 1) || memchr(s, 0, n))
        return false;
    j.end = s + n - 1;
    if (*j.p++ != '{')
        return false;
    jws(&j);
    while (j.p < j.end && *j.p != '}') {
        struct jfield *f = &o->f[o->n];
        if (o->n == 32 || !jstring(&j, f->key, sizeof f->key))
            return false;
        for (int i = 0; i < o->n; i++)
            if (!strcmp(o->f[i].key, f->key))
                return false;
        jws(&j);
        if (j.p >= j.end || *j.p++ != ':')
            return false;
        jws(&j);
        const char *start = j.p;
        f->is_str = j.p < j.end && *j.p == '"';
        if (f->is_str ? !jstring(&j, f->val, sizeof f->val) : !jvalue(&j, 1))
            return false;
        if (!f->is_str)
            snprintf(f->val, sizeof f->val, "%.*s", (int)(j.p - start), start);
        o->n++;
        jws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            jws(&j);
            if (j.p < j.end && *j.p == '}')
                return false;  /* trailing comma */
        }
    }
    if (j.p >= j.end || *j.p++ != '}')
        return false;
    return j.p == j.end;
}

static const struct jfield *jget(const struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->f[i].key, key))
            return &o->f[i];
    return NULL;
}

/* The reader itself: what it must accept and reject. */
struct reader_case {
    const char *text;
    bool ok;
};

static const struct reader_case reader_cases[] = {
    {"{\"a\":1}\n", true},
    {"{\"a\":\"x\\u00e9\\ud83d\\ude00\",\"b\":[1,-0.5e+3,true,null,{\"c\":{}}]}\n", true},
    {"{}\n", true},
    {"{\"a\":1}", false},          /* no newline */
    {"{\"a\":1}\n\n", false},      /* two lines */
    {"{\"a\":1,}\n", false},
    {"{\"a\":01}\n", false},
    {"{\"a\":1.}\n", false},
    {"{\"a\":nan}\n", false},
    {"{\"a\":inf}\n", false},
    {"{\"a\":\"x\ty\"}\n", false}, /* raw control character */
    {"{\"a\":\"\\x\"}\n", false},
    {"{\"a\":\"\\ud83d\"}\n", false},
    {"{\"a\":1,\"a\":2}\n", false},
    {"{\"a\":1} \n", false},
    {"{\"a\" 1}\n", false},
    {"[1]\n", false},
    {"{\"a\":{\"b\":1}\n", false},
};

START_TEST(json_reader)
{
    const struct reader_case *c = &reader_cases[_i];
    struct jobj o;
    ck_assert_msg(json_line(c->text, strlen(c->text), &o) == c->ok, "%s", c->text);
}
END_TEST

/* ---- alert JSON ----------------------------------------------------------- */

struct expect_field {
    const char *key;
    const char *val;   /* decoded string or raw number */
};

struct format_case {
    const char *rule;
    uint8_t status, level, grade;
    double value;
    vg_ts started_at, at, since;
    const char *region;
    const char *plant;
    const char *device;     /* may hold any bytes but NUL */
    struct expect_field fields[16];
    const char *absent[2];  /* fields that must not be there */
    const char *because[5]; /* substrings of the raw `because` object */
};

static const struct format_case format_cases[] = {
    {"graded", VG_ALERT_FIRING, Y, 0, 41.2, T(0), T(30), T(0), "320585101", "P320585001", "NH3-01",
     {{"rule", "graded"},
      {"title", "涉氨制冷车间氨气浓度超限"},
      {"status", "firing"},
      {"level", "yellow"},
      {"kind", "warning"},
      {"plant", "P320585001"},
      {"device", "NH3-01"},
      {"region", "320585101"},
      {"metric", "nh3_ppm"},
      {"value", "41.2"},
      {"started_at", "1763884800000"},
      {"at", "1763884830000"}},
     {NULL}, {"{\"nh3_ppm\":41.2,", "\"when\":\"value > 25\"", "\"held_since\":1763884800000", "\"for_ms\":30000}"}},
    {"graded", VG_ALERT_ESCALATED, R, 2, 200, T(0), T(80), T(80), "320585101", "P320585001", "NH3-01",
     {{"status", "escalated"},
      {"level", "red"},
      {"value", "200"},
      {"started_at", "1763884800000"},
      {"at", "1763884880000"}},
     {NULL}, {"\"nh3_ppm\":200", "\"when\":\"value >= 150\"", "\"held_since\":1763884880000", "\"for_ms\":0"}},
    {"graded", VG_ALERT_RESOLVED, R, 0, 10, T(0), T(240), T(180), "320585101", "P320585001", "NH3-01",
     {{"status", "resolved"},
      {"level", "red"},
      {"value", "10"},
      {"at", "1763885040000"}},
     {NULL}, {"\"nh3_ppm\":10", "\"clear\":\"value < 20\"", "\"clear_since\":1763884980000", "\"clear_for_ms\":60000"}},
    /* default clear; a rule without a title is named by its id; no region known */
    {"default_clear", VG_ALERT_RESOLVED, O, 0, 25, T(0), T(16), T(16), NULL, "P1", "D1",
     {{"rule", "default_clear"},
      {"title", "default_clear"},
      {"kind", "alarm"},
      {"level", "orange"},
      {"value", "25"}},
     {"region"},
     {"\"clear\":\"not (value > 25)\"", "\"clear_since\":1763884816000", "\"clear_for_ms\":0"}},
    /* device ids with quotes, backslashes and control characters stay one valid line */
    {"for0", VG_ALERT_FIRING, Y, 0, 30, T(1), T(1), T(1), "320585", "P\"1\\", "NH3\"01\n\r\t\x01\x1f",
     {{"plant", "P\"1\\"},
      {"device", "NH3\"01\n\r\t\x01\x1f"},
      {"title", "for0"}},
     {NULL}, {"\"when\":\"value > 25\"", "\"for_ms\":0"}},
    {"for30", VG_ALERT_FIRING, Y, 0, 25.5, T(0), T(30), T(0), "320585101", "P1", "氨-01 <&>'",
     {{"device", "氨-01 <&>'"},
      {"title", "氨气浓度超限"},
      {"value", "25.5"}},
     {NULL}, {"\"nh3_ppm\":25.5"}},
    /* values print as the shortest decimal that reads back exactly */
    {"for0", VG_ALERT_FIRING, Y, 0, 0.1 + 0.2, T(1), T(1), T(1), NULL, "P1", "D1",
     {{"value", "0.30000000000000004"}}, {"region"}, {"\"nh3_ppm\":0.30000000000000004"}},
    {"for0", VG_ALERT_FIRING, Y, 0, 1e-7, T(1), T(1), T(1), NULL, "P1", "D1", {{"value", "1e-07"}}, {"region"}, {NULL}},
    {"for0", VG_ALERT_FIRING, Y, 0, -3.25, T(1), T(1), T(1), NULL, "P1", "D1", {{"value", "-3.25"}}, {"region"}, {NULL}},
    {"for0", VG_ALERT_FIRING, Y, 0, 123456789012.5, T(1), T(1), T(1), NULL, "P1", "D1",
     {{"value", "123456789012.5"}}, {"region"}, {NULL}},
};

static uint32_t rule_index(const struct vg_ruleset *rs, const char *id)
{
    return rule_by_id(rs, id)->index;
}

static void make_alert(const struct format_case *c, const struct vg_ruleset *rs, struct vg_alert *a)
{
    memset(a, 0, sizeof *a);
    a->metric = VG_METRIC_NONE; /* the rule's own metric */
    a->rule_value = NAN;
    a->rule = rule_index(rs, c->rule);
    a->status = c->status;
    a->level = c->level;
    a->grade = c->grade;
    a->value = c->value;
    a->started_at = c->started_at;
    a->at = c->at;
    a->since = c->since;
    a->region = c->region;
    a->plant_len = (uint8_t)strlen(c->plant);
    a->dev_len = (uint8_t)strlen(c->device);
    memcpy(a->plant, c->plant, a->plant_len);
    memcpy(a->device, c->device, a->dev_len);
}

static const char *val_of(const struct jobj *o, const char *key)
{
    const struct jfield *f = jget(o, key);
    return f ? f->val : NULL;
}

START_TEST(alert_format)
{
    const struct format_case *c = &format_cases[_i];
    struct vg_ruleset *rs = load_rules();
    const struct vg_rule *r = rule_by_id(rs, c->rule);
    struct vg_alert a;
    make_alert(c, rs, &a);
    char buf[4096];
    memset(buf, 0, sizeof buf);
    int n = vg_alert_format(&a, rs, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    struct jobj o;
    ck_assert_msg(json_line(buf, (size_t)n, &o), "not one strict JSON line: %.*s", n, buf);
    /* the fields every alert carries */
    static const char *const always[] = {"alert_id", "rule", "title", "status", "level", "kind", "plant",
                                         "device", "metric", "value", "started_at", "at", "rule_version",
                                         "because"};
    for (size_t i = 0; i < VG_ARRAY_LEN(always); i++)
        ck_assert_msg(jget(&o, always[i]) != NULL, "no '%s' in %s", always[i], buf);
    ck_assert_int_eq(o.n, 14 + (c->region != NULL));
    char id[17];
    vg_alert_id(r->id, c->plant, strlen(c->plant), c->device, strlen(c->device), c->started_at, id);
    ck_assert_pstr_eq(val_of(&o, "alert_id"), id);
    ck_assert_pstr_eq(val_of(&o, "rule_version"), r->version);
    ck_assert(jget(&o, "because")->val[0] == '{');
    ck_assert(!jget(&o, "value")->is_str);
    ck_assert(!jget(&o, "started_at")->is_str);
    ck_assert(!jget(&o, "at")->is_str);
    ck_assert(strtod(val_of(&o, "value"), NULL) == c->value);
    for (const struct expect_field *f = c->fields; f->key; f++)
        ck_assert_msg(val_of(&o, f->key) && !strcmp(val_of(&o, f->key), f->val), "field '%s': want '%s' in %s",
                      f->key, f->val, buf);
    for (const char *const *k = c->absent; *k; k++)
        ck_assert_msg(jget(&o, *k) == NULL, "field '%s' should be absent: %s", *k, buf);
    for (const char *const *b = c->because; *b; b++)
        ck_assert_msg(strstr(val_of(&o, "because"), *b) != NULL, "because lacks %s: %s", *b, buf);
    vg_ruleset_destroy(rs);
}
END_TEST

/* Every capacity short of the line fails with -1 and writes nothing outside
 * the buffer (each buffer is exactly its capacity, for the sanitizers). */
START_TEST(alert_format_short)
{
    const struct format_case *c = &format_cases[_i];
    struct vg_ruleset *rs = load_rules();
    struct vg_alert a;
    make_alert(c, rs, &a);
    char full[4096];
    int n = vg_alert_format(&a, rs, full, sizeof full);
    ck_assert_int_gt(n, 0);
    for (int cap = 0; cap < n; cap++) {
        char *b = malloc((size_t)cap + 1);
        b[cap] = 0x5a;
        ck_assert_msg(vg_alert_format(&a, rs, b, (size_t)cap) == -1, "cap %d of %d", cap, n);
        ck_assert_int_eq(b[cap], 0x5a);
        free(b);
    }
    char *exact = malloc((size_t)n);
    ck_assert_int_eq(vg_alert_format(&a, rs, exact, (size_t)n), n);
    ck_assert_int_eq(memcmp(exact, full, (size_t)n), 0);
    free(exact);
    vg_ruleset_destroy(rs);
}
END_TEST

struct status_name {
    int status;
    const char *name;
};

static const struct status_name status_names[] = {
    {VG_ALERT_FIRING, "firing"}, {VG_ALERT_ESCALATED, "escalated"}, {VG_ALERT_RESOLVED, "resolved"},
    {0, "unknown"}, {99, "unknown"},
};

START_TEST(status_name)
{
    ck_assert_str_eq(vg_alert_status_name(status_names[_i].status), status_names[_i].name);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *suite(void)
{
    Suite *s = suite_create("alert");
    TCase *tc = tcase_create("lifecycle");
    tcase_add_loop_test(tc, lifecycle, 0, VG_ARRAY_LEN(scenarios));
    tcase_add_test(tc, resolve_keeps_chain);
    suite_add_tcase(s, tc);
    tc = tcase_create("id");
    tcase_add_loop_test(tc, alert_id, 0, VG_ARRAY_LEN(id_cases));
    tcase_add_test(tc, alert_id_stable);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_loop_test(tc, json_reader, 0, VG_ARRAY_LEN(reader_cases));
    tcase_add_loop_test(tc, alert_format, 0, VG_ARRAY_LEN(format_cases));
    tcase_add_loop_test(tc, alert_format_short, 0, VG_ARRAY_LEN(format_cases));
    tcase_add_loop_test(tc, status_name, 0, VG_ARRAY_LEN(status_names));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
