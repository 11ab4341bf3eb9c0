/*
 * test_rules.c: rule files and the registry as a rule author meets them
 * (engine/rule.h, engine/registry.h).
 * Owns: what a valid rule file compiles to (grades in ascending level, `for`
 * inheritance, clear/clear_for, kind, notify, rule versions, the metric
 * index), the exact file:line:col of every diagnostic of an invalid rule or
 * registry file, directory loading, `where` against a registry, and the
 * bundled rule library.
 * Must never: depend on files outside the temp dir and the source tree, or
 * check a position by asking the engine where it is: every line and column
 * below is counted by hand from the YAML text beside it (1-based).
 * DESIGN: each check is a row of a table run by tcase_add_loop_test.
 * Diagnostics are compared in `vigil check` order (vg_diags_print sorts by
 * file, line, column), one expected row per printed line.
 */
#include "vgtest.h"

#include "engine/rule.h"
#include "engine/registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- helpers -------------------------------------------------------------- */

/* All diagnostics as `vigil check` prints them (sorted; caller frees). */
static char *diags_text(struct vg_diags *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    vg_diags_print(d, f);
    fclose(f);
    return buf;
}

/* Line @p k (0-based) of @p text into @p out (empty past the end). */
static void nth_line(const char *text, int k, char *out, size_t cap)
{
    const char *p = text;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    p = p ? p : "";
    size_t n = strcspn(p, "\n");
    n = n < cap - 1 ? n : cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Replace "@0" in @p phrase by @p path0 (for messages naming a first location). */
static void expand(const char *phrase, const char *path0, char *out, size_t cap)
{
    const char *at = strstr(phrase, "@0");
    size_t pre = at ? (size_t)(at - phrase) : strlen(phrase);
    snprintf(out, cap, "%.*s%s%s", (int)pre, phrase, at ? path0 : "", at ? at + 2 : "");
}

/* A rule id list "a,b,c" of the rules at @p idx. */
static void join_ids(const struct vg_ruleset *rs, const uint32_t *idx, uint32_t n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", rs->rules[idx[i]].id);
}

static const struct vg_rule *rule_by_id(const struct vg_ruleset *rs, const char *id)
{
    for (uint32_t i = 0; i < rs->n_rules; i++)
        if (!strcmp(rs->rules[i].id, id))
            return &rs->rules[i];
    ck_abort_msg("no rule '%s'", id);
    return NULL;
}

static bool hex8(const char *s)
{
    bool ok = strlen(s) == 8;
    for (int i = 0; i < 8 && ok; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    return ok;
}

/* Load one rule text (written to @p name); diagnostics go to @p d. */
static int load_one(const char *name, const char *text, const struct vg_registry *reg,
                    struct vg_ruleset **rs, struct vg_diags *d)
{
    const char *path = vgt_write(name, text);
    return vg_ruleset_load(rs, &path, 1, reg, d);
}

static struct vg_registry *load_registry_ok(const char *text)
{
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_registry *reg = NULL;
    int rc = vg_registry_load(&reg, vgt_write("registry.yaml", text), &d);
    char *all = diags_text(&d);
    ck_assert_msg(rc == VG_OK && d.n == 0, "registry failed to load:\n%s", all);
    free(all);
    vg_diags_fini(&d);
    return reg;
}

static struct vg_ruleset *load_rules_ok(const char *text, const struct vg_registry *reg)
{
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs = NULL;
    int rc = load_one("rules.yaml", text, reg, &rs, &d);
    char *all = diags_text(&d);
    ck_assert_msg(rc == VG_OK && d.n == 0 && rs != NULL, "rules failed to load:\n%s", all);
    free(all);
    vg_diags_fini(&d);
    return rs;
}

/* ---- a valid rule file ---------------------------------------------------- */

static const char valid_rules[] =
    "version: 1\n"
    "rules:\n"
    "  - id: nh3_over_limit\n"
    "    title: 涉氨制冷车间氨气浓度超限\n"
    "    kind: warning\n"
    "    where: { industry: ammonia_refrigeration, region: [\"3205*\", \"330100\"] }\n"
    "    metric: nh3_ppm\n"
    "    for: 30s\n"
    "    stale: 2m\n"
    "    grades:\n"
    "      - { level: red,    when: value >= 150, for: 0s }\n"
    "      - { level: yellow, when: value > 25 }\n"
    "      - { level: orange, when: value > 40, for: 1m }\n"
    "    clear: value < 20\n"
    "    clear_for: 60s\n"
    "    notify:\n"
    "      - { to: [safety_officer], min_level: yellow, throttle: 1h,\n"
    "          template: \"【安全预警】{device}氨气浓度{value}ppm\" }\n"
    "      - { to: [safety_officer, principal], min_level: red, mode: digest,\n"
    "          on_resolve: true, unacked_for: 15m }\n"
    "  - id: o2_low\n"
    "    metric: o2_pct\n"
    "    grades: [ { level: orange, when: o2_pct < 19.5 } ]\n"
    "  - id: dust.temp-high_2\n"
    "    kind: alarm\n"
    "    metric: [dust_temp]\n"
    "    for: 1h30m\n"
    "    grades:\n"
    "      - { level: blue, when: value > 60 }\n"
    "      - { level: red, when: value > 90 }\n";

struct rule_fact {
    const char *id;
    const char *title;  /* NULL: none */
    int kind;
    vg_ts for_ms, clear_for_ms, stale_ms;
    bool has_clear;
    const char *clear_src;  /* NULL when none */
    uint32_t n_grades, n_notify;
    const char *metric;
    const char *where_industry, *where_region;  /* joined, "" when none */
    int line;  /* where the rule starts */
};

static const struct rule_fact rule_facts[] = {
    {"nh3_over_limit", "涉氨制冷车间氨气浓度超限", VG_KIND_WARNING, 30000, 60000, 120000, true,
     "value < 20", 3, 2, "nh3_ppm", "ammonia_refrigeration", "3205*,330100", 3},
    {"o2_low", NULL, VG_KIND_ALARM, 0, 0, 300000, false, NULL, 1, 0, "o2_pct", "", "", 21},
    {"dust.temp-high_2", NULL, VG_KIND_ALARM, 5400000, 0, 300000, false, NULL, 2, 0, "dust_temp", "", "", 24},
};

static void join_strv(char **v, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (char **p = v; p && *p; p++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", p == v ? "" : ",", *p);
}

START_TEST(rule_fields)
{
    const struct rule_fact *f = &rule_facts[_i];
    struct vg_ruleset *rs = load_rules_ok(valid_rules, NULL);
    const struct vg_rule *r = rule_by_id(rs, f->id);
    ck_assert_int_eq(rs->n_rules, 3);
    ck_assert_int_eq(r->index, (uint32_t)(r - rs->rules));
    ck_assert_pstr_eq(r->title, f->title);
    ck_assert_int_eq(r->kind, f->kind);
    ck_assert_int_eq(r->for_ms, f->for_ms);
    ck_assert_int_eq(r->clear_for_ms, f->clear_for_ms);
    ck_assert_int_eq(r->stale_ms, f->stale_ms);
    ck_assert_int_eq(r->has_clear, f->has_clear);
    ck_assert_pstr_eq(r->clear.src, f->clear_src);
    ck_assert_int_eq(r->n_grades, f->n_grades);
    ck_assert_int_eq(r->n_notify, f->n_notify);
    ck_assert_int_eq(r->n_metrics, 1);
    ck_assert_str_eq(rs->metric_names[r->metrics[0]], f->metric);
    char buf[200];
    join_strv(r->where.industry, buf, sizeof buf);
    ck_assert_str_eq(buf, f->where_industry);
    join_strv(r->where.region, buf, sizeof buf);
    ck_assert_str_eq(buf, f->where_region);
    ck_assert_ptr_null(r->where.plant);
    ck_assert_msg(hex8(r->version), "version '%s' is not 8 hex digits", r->version);
    char *path = vgt_path("rules.yaml");
    ck_assert_str_eq(r->file, path);
    ck_assert_int_eq(r->line, f->line);
    free(path);
    vg_ruleset_destroy(rs);
}
END_TEST

struct grade_fact {
    const char *id;
    uint32_t idx;      /* position after sorting: ascending level */
    int level;
    vg_ts for_ms;      /* own `for`, else the rule's */
    const char *when;
    double below, above;  /* `when` is false at below and true at above */
};

static const struct grade_fact grade_facts[] = {
    {"nh3_over_limit", 0, VG_LEVEL_YELLOW, 30000, "value > 25", 25, 25.001},
    {"nh3_over_limit", 1, VG_LEVEL_ORANGE, 60000, "value > 40", 40, 41},
    {"nh3_over_limit", 2, VG_LEVEL_RED, 0, "value >= 150", 149.99, 150},
    /* the metric's own name reads the sample's value too */
    {"o2_low", 0, VG_LEVEL_ORANGE, 0, "o2_pct < 19.5", 19.5, 19.4},
    {"dust.temp-high_2", 0, VG_LEVEL_BLUE, 5400000, "value > 60", 60, 61},
    {"dust.temp-high_2", 1, VG_LEVEL_RED, 5400000, "value > 90", 90, 91},
};

START_TEST(grade_fields)
{
    const struct grade_fact *f = &grade_facts[_i];
    struct vg_ruleset *rs = load_rules_ok(valid_rules, NULL);
    const struct vg_grade *g = &rule_by_id(rs, f->id)->grades[f->idx];
    ck_assert_int_eq(g->level, f->level);
    ck_assert_int_eq(g->for_ms, f->for_ms);
    ck_assert_str_eq(g->when.src, f->when);
    ck_assert(g->when.is_cond);
    struct vg_eval_env lo = {f->below, NULL}, hi = {f->above, NULL};
    ck_assert(!vg_truthy(vg_expr_eval(&g->when, &lo)));
    ck_assert(vg_truthy(vg_expr_eval(&g->when, &hi)));
    vg_ruleset_destroy(rs);
}
END_TEST

START_TEST(clear_compiles)
{
    struct vg_ruleset *rs = load_rules_ok(valid_rules, NULL);
    const struct vg_rule *r = rule_by_id(rs, "nh3_over_limit");
    struct vg_eval_env in = {19.9, NULL}, band = {20, NULL};
    ck_assert(vg_truthy(vg_expr_eval(&r->clear, &in)));
    ck_assert(!vg_truthy(vg_expr_eval(&r->clear, &band)));
    vg_ruleset_destroy(rs);
}
END_TEST

struct notify_fact {
    uint32_t idx;
    const char *to;
    int min_level;
    vg_ts throttle_ms, unacked_for_ms;
    const char *template_text;  /* NULL: none */
    bool digest, on_resolve;
};

static const struct notify_fact notify_facts[] = {
    {0, "safety_officer", VG_LEVEL_YELLOW, 3600000, 0, "【安全预警】{device}氨气浓度{value}ppm", false, false},
    {1, "safety_officer,principal", VG_LEVEL_RED, 0, 900000, NULL, true, true},
};

START_TEST(notify_fields)
{
    const struct notify_fact *f = &notify_facts[_i];
    struct vg_ruleset *rs = load_rules_ok(valid_rules, NULL);
    const struct vg_notify *nt = &rule_by_id(rs, "nh3_over_limit")->notify[f->idx];
    char buf[200];
    join_strv(nt->to, buf, sizeof buf);
    ck_assert_str_eq(buf, f->to);
    ck_assert_int_eq(nt->min_level, f->min_level);
    ck_assert_int_eq(nt->throttle_ms, f->throttle_ms);
    ck_assert_int_eq(nt->unacked_for_ms, f->unacked_for_ms);
    ck_assert_pstr_eq(nt->template_text, f->template_text);
    ck_assert_int_eq(nt->digest, f->digest);
    ck_assert_int_eq(nt->on_resolve, f->on_resolve);
    vg_ruleset_destroy(rs);
}
END_TEST

/* ---- rule versions -------------------------------------------------------- */

#define VRULE(title, level, thr, forv, clear)                                                      \
    "version: 1\nrules:\n  - id: v\n    title: " title "\n    metric: m\n    for: " forv            \
    "\n    grades: [ { level: " level ", when: value > " thr " } ]\n" clear

struct version_case {
    const char *a, *b;
    bool same;
};

static const struct version_case version_cases[] = {
    /* deterministic */
    {VRULE("A", "yellow", "25", "30s", ""), VRULE("A", "yellow", "25", "30s", ""), true},
    /* the title does not change what the rule decides */
    {VRULE("A", "yellow", "25", "30s", ""), VRULE("氨气超限", "yellow", "25", "30s", ""), true},
    {VRULE("A", "yellow", "25", "30s", ""), VRULE("A", "yellow", "26", "30s", ""), false},
    {VRULE("A", "yellow", "25", "30s", ""), VRULE("A", "yellow", "25.5", "30s", ""), false},
    {VRULE("A", "yellow", "25", "30s", ""), VRULE("A", "orange", "25", "30s", ""), false},
    {VRULE("A", "yellow", "25", "30s", ""), VRULE("A", "yellow", "25", "31s", ""), false},
    {VRULE("A", "yellow", "25", "30s", ""), VRULE("A", "yellow", "25", "30s", "    clear: value < 20\n"),
     false},
    {VRULE("A", "yellow", "25", "30s", "    clear: value < 20\n"),
     VRULE("A", "yellow", "25", "30s", "    clear: value < 19\n"), false},
    {VRULE("A", "yellow", "25", "30s", "    clear_for: 1m\n"),
     VRULE("A", "yellow", "25", "30s", "    clear_for: 2m\n"), false},
    /* the same duration spelled differently compiles to the same rule */
    {VRULE("A", "yellow", "25", "90s", ""), VRULE("A", "yellow", "25", "1m30s", ""), true},
};

START_TEST(rule_version)
{
    const struct version_case *c = &version_cases[_i];
    struct vg_ruleset *a = load_rules_ok(c->a, NULL);
    struct vg_ruleset *b = load_rules_ok(c->b, NULL);
    ck_assert_msg(hex8(a->rules[0].version), "'%s'", a->rules[0].version);
    ck_assert_msg(hex8(b->rules[0].version), "'%s'", b->rules[0].version);
    ck_assert_int_eq(strcmp(a->rules[0].version, b->rules[0].version) == 0, c->same);
    vg_ruleset_destroy(a);
    vg_ruleset_destroy(b);
}
END_TEST

/* ---- the metric index ----------------------------------------------------- */

static const char index_rules[] =
    "version: 1\n"
    "rules:\n"
    "  - { id: a, metric: nh3_ppm, grades: [ { level: yellow, when: value > 25 } ] }\n"
    "  - { id: b, metric: co_ppm, grades: [ { level: yellow, when: value > 24 } ] }\n"
    "  - { id: c, metric: nh3_ppm, grades: [ { level: red, when: value > 150 } ] }\n"
    "  - { id: d, metric: o2_pct, grades: [ { level: red, when: value < 19.5 } ] }\n"
    "  - { id: e, metric: nh3_ppm, grades: [ { level: blue, when: value > 10 } ] }\n";

struct index_case {
    const char *metric;
    const char *rules;  /* joined ids, in file order */
};

static const struct index_case index_cases[] = {
    {"nh3_ppm", "a,c,e"},
    {"co_ppm", "b"},
    {"o2_pct", "d"},
};

START_TEST(metric_index)
{
    const struct index_case *c = &index_cases[_i];
    struct vg_ruleset *rs = load_rules_ok(index_rules, NULL);
    ck_assert_int_eq(rs->n_metrics, 3);
    uint32_t id = vg_ruleset_metric(rs, c->metric, strlen(c->metric));
    ck_assert_int_ne(id, VG_METRIC_NONE);
    ck_assert_str_eq(rs->metric_names[id], c->metric);
    uint32_t n;
    const uint32_t *idx = vg_ruleset_rules_for(rs, id, &n);
    char buf[100];
    join_ids(rs, idx, n, buf, sizeof buf);
    ck_assert_str_eq(buf, c->rules);
    vg_ruleset_destroy(rs);
}
END_TEST

/* Names that are not metrics of the set (by length too: no prefix matches). */
static const char *const unknown_metrics[] = {"nh3", "nh3_ppmx", "NH3_PPM", "value", "", "o2_pct "};

START_TEST(metric_unknown)
{
    const char *m = unknown_metrics[_i];
    struct vg_ruleset *rs = load_rules_ok(index_rules, NULL);
    ck_assert_int_eq(vg_ruleset_metric(rs, m, strlen(m)), VG_METRIC_NONE);
    /* a name given by length inside a longer buffer */
    ck_assert_int_eq(vg_ruleset_metric(rs, "co_ppm_extra", 6), vg_ruleset_metric(rs, "co_ppm", 6));
    vg_ruleset_destroy(rs);
}
END_TEST

/* ---- invalid rule files: exact positions ---------------------------------- */

struct want {
    int file;          /* index into text[] */
    int line, col;
    const char *phrase;  /* "@0" stands for the first file's path */
};

struct bad_case {
    const char *text[2];  /* a.yaml and (optional) b.yaml */
    const char *registry; /* optional registry text */
    int n;                /* expected diagnostics; 0: loads */
    struct want want[8];
};

#define HEAD "version: 1\nrules:\n"
#define ID "  - id: r1\n"
#define METRIC "    metric: nh3_ppm\n"
#define GRADES "    grades: [ { level: yellow, when: value > 25 } ]\n"

static const char registry_text[] =
    "version: 1\n"
    "plants:\n"
    "  - { id: P1, region: \"320585101\", industries: [ammonia_refrigeration] }\n"
    "  - { id: P2, region: \"320500\", industries: [dust_explosion] }\n"
    "  - { id: P3, region: \"330100\", industries: [ammonia_refrigeration, dust_explosion] }\n";

static const struct bad_case bad_cases[] = {
    /* 0: unknown key in a rule */
    {{HEAD ID "    colour: red\n" METRIC GRADES}, NULL, 1, {{0, 4, 5, "unknown key 'colour' in rule"}}},
    /* 1: unknown key in a grade:  `      - { level: yellow, when: value > 25, hue: 3 }` */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: value > 25, hue: 3 }\n"}, NULL, 1,
     {{0, 6, 44, "unknown key 'hue' in grade"}}},
    /* 2: unknown key in where:  `    where: { industry: x, sector: y }` */
    {{HEAD ID "    where: { industry: x, sector: y }\n" METRIC GRADES}, NULL, 1,
     {{0, 4, 27, "unknown key 'sector' in where"}}},
    /* 3: unknown key in notify:  `    notify: [ { to: [safety_officer], channel: sms } ]` */
    {{HEAD ID METRIC GRADES "    notify: [ { to: [safety_officer], channel: sms } ]\n"}, NULL, 1,
     {{0, 6, 39, "unknown key 'channel' in notify entry"}}},
    /* 4: bad duration, rule level */
    {{HEAD ID METRIC "    for: 30x\n" GRADES}, NULL, 1, {{0, 5, 10, "bad duration '30x'"}}},
    /* 5: bad duration, grade level:  `      - { level: yellow, when: value > 25, for: 5q }` */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: value > 25, for: 5q }\n"}, NULL, 1,
     {{0, 6, 49, "bad duration '5q'"}}},
    /* 6: unknown level */
    {{HEAD ID METRIC "    grades:\n      - { level: purple, when: value > 25 }\n"}, NULL, 1,
     {{0, 6, 18, "unknown level 'purple'"}}},
    /* 7: expression ends early, plain scalar in a flow mapping: `value` at 32, +7 */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: value > }\n"}, NULL, 1,
     {{0, 6, 39, "expression ended"}}},
    /* 8: the same in block style (trailing blank is not part of a plain scalar): 15 + 7 */
    {{HEAD ID METRIC "    grades:\n      - level: yellow\n        when: value > \n"}, NULL, 1,
     {{0, 7, 22, "expression ended"}}},
    /* 9: '=' is not a comparison, plain: `value` at 32, '=' at +6 */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: value = 3 }\n"}, NULL, 1,
     {{0, 6, 38, "unexpected '='"}}},
    /* 10: double-quoted: '"' at 32, `value` at 33, '=' at 39 */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: \"value = 3\" }\n"}, NULL, 1,
     {{0, 6, 39, "unexpected '='"}}},
    /* 11: single-quoted, block: quote at 15, '=' at 22 */
    {{HEAD ID METRIC "    grades:\n      - level: yellow\n        when: 'value = 3'\n"}, NULL, 1,
     {{0, 7, 22, "unexpected '='"}}},
    /* 12: double-quoted, ends early: the missing operand is where the closing quote is (40) */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: \"value >\" }\n"}, NULL, 1,
     {{0, 6, 40, "expression ended"}}},
    /* 13: clear with a bad expression:  `    clear: value <`  value at 12, +7 */
    {{HEAD ID METRIC GRADES "    clear: value <\n"}, NULL, 1, {{0, 6, 19, "clear:"}}},
    /* 14: a misspelt name points at the name */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: valeu > 25 }\n"}, NULL, 1,
     {{0, 6, 32, "unknown name 'valeu'"}}},
    /* 15: a name after a valid prefix:  `when: value > 25 and nh4 > 1`, `nh4` at 32 + 15 */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: value > 25 and nh4 > 1 }\n"}, NULL, 1,
     {{0, 6, 47, "unknown name 'nh4'"}}},
    /* 16: duplicate level:  second `yellow` at 60 */
    {{HEAD ID METRIC
      "    grades: [ { level: yellow, when: value > 1 }, { level: yellow, when: value > 2 } ]\n"},
     NULL, 1, {{0, 5, 60, "level yellow appears twice"}}},
    /* 17-19: missing id / metric / grades: at the rule's mapping (its first key); with no
     * 'metric:' the expressions must name their metrics, so `value` is the error */
    {{HEAD "  - metric: nh3_ppm\n" GRADES}, NULL, 1, {{0, 3, 5, "needs an 'id'"}}},
    {{HEAD ID GRADES}, NULL, 1, {{0, 4, 38, "'value' needs the rule's 'metric:'"}}},
    {{HEAD ID METRIC}, NULL, 1, {{0, 3, 5, "needs 'grades'"}}},
    /* 20: empty grades:  `    grades: []`  '[' at 13 */
    {{HEAD ID METRIC "    grades: []\n"}, NULL, 1, {{0, 5, 13, "non-empty list"}}},
    /* 21-22: bad id characters, at the id's value */
    {{HEAD "  - id: NH3 over\n" METRIC GRADES}, NULL, 1, {{0, 3, 9, "must be 1-64 characters"}}},
    {{HEAD "  - id: \"nh3/over\"\n" METRIC GRADES}, NULL, 1, {{0, 3, 9, "rule id 'nh3/over'"}}},
    /* 23: version 2 */
    {{"version: 2\nrules:\n" ID METRIC GRADES}, NULL, 1, {{0, 1, 10, "needs 'version: 1'"}}},
    /* 24: no version at all: at the root mapping */
    {{"rules:\n" ID METRIC GRADES}, NULL, 1, {{0, 1, 1, "needs 'version: 1'"}}},
    /* 25: YAML syntax:  `  - id: r1: x`  the second ':' at 11 */
    {{HEAD "  - id: r1: x\n" METRIC GRADES}, NULL, 1, {{0, 3, 11, "YAML: mapping values are not allowed"}}},
    /* 26: bad kind */
    {{HEAD ID "    kind: urgent\n" METRIC GRADES}, NULL, 1, {{0, 4, 11, "kind must be alarm or warning"}}},
    /* 27: unknown top-level key */
    {{"version: 1\nauthor: me\nrules:\n" ID METRIC GRADES}, NULL, 1,
     {{0, 2, 1, "unknown key 'author' in rule file"}}},
    /* 28: 'rules' is not a list */
    {{"version: 1\nrules: 3\n"}, NULL, 1, {{0, 2, 8, "'rules' must be a list"}}},
    /* 29: a key given twice */
    {{HEAD ID METRIC "    metric: co_ppm\n" GRADES}, NULL, 1,
     {{0, 5, 5, "duplicate key 'metric' in rule (first at line 4)"}}},
    /* 30: an empty file */
    {{""}, NULL, 1, {{0, 1, 1, "empty file"}}},
    /* 31: a rule that is not a mapping */
    {{HEAD "  - just_a_name\n"}, NULL, 1, {{0, 3, 5, "a rule must be a mapping"}}},
    /* 32: duplicate rule id in one file: names the first definition */
    {{HEAD ID METRIC GRADES ID METRIC GRADES}, NULL, 1,
     {{0, 6, 9, "duplicate rule id 'r1' (first defined at @0:3)"}}},
    /* 33: duplicate rule id across two files: reported in the second, naming the first */
    {{HEAD "  - id: other\n" METRIC GRADES ID METRIC GRADES, HEAD ID METRIC GRADES}, NULL, 1,
     {{1, 3, 9, "duplicate rule id 'r1' (first defined at @0:6)"}}},
    /* 34: `where` selecting no plant of the registry:  `    where: { industry: mining }` '{' at 12 */
    {{HEAD ID "    where: { industry: mining }\n" METRIC GRADES}, registry_text, 1,
     {{0, 4, 12, "rule 'r1' selects no plant in the registry"}}},
    /* 35: ... is fine when no registry is given */
    {{HEAD ID "    where: { industry: mining }\n" METRIC GRADES}, NULL, 0, {{0}}},
    /* 36: a region prefix that selects P1 */
    {{HEAD ID "    where: { region: \"3205*\" }\n" METRIC GRADES}, registry_text, 0, {{0}}},
    /* 37: plants the registry does not have */
    {{HEAD ID "    where: { plant: [P9, P10] }\n" METRIC GRADES}, registry_text, 1,
     {{0, 4, 12, "selects no plant"}}},
    /* 38: each key matches some plant, but no plant matches both */
    {{HEAD ID "    where: { industry: dust_explosion, region: \"320585*\" }\n" METRIC GRADES},
     registry_text, 1, {{0, 4, 12, "selects no plant"}}},
    /* 39: every error of a file is reported, in position order */
    {{"version: 2\n"
      "rules:\n"
      "  - id: r1\n"
      "    metric: nh3_ppm\n"
      "    for: 30x\n"
      "    grades:\n"
      "      - { level: purple, when: value > 25 }\n"
      "  - id: r2\n"
      "    metric: nh3_ppm\n"
      "    grades: [ { level: red, when: value = 3 } ]\n"
      "    notify: [ { to: [safety_officer], min_level: pink } ]\n"
      "  - id: r3\n"
      "    colour: x\n"},
     NULL, 7,
     {{0, 1, 10, "needs 'version: 1'"},
      {0, 5, 10, "bad duration '30x'"},
      {0, 7, 18, "unknown level 'purple'"},
      {0, 10, 41, "unexpected '='"},
      {0, 11, 50, "unknown level 'pink'"},
      {0, 12, 5, "needs 'grades'"},
      {0, 13, 5, "unknown key 'colour' in rule"}}},
    /* 40: ... and of every file */
    {{HEAD ID METRIC "    grades:\n      - { level: purple, when: value > 25 }\n",
      HEAD ID METRIC "    for: 1y\n" GRADES},
     NULL, 2, {{0, 6, 18, "unknown level 'purple'"}, {1, 5, 10, "bad duration '1y'"}}},
    /* 41: columns count characters: 温 is at offset 15 (32 + 15), 温度 after it is 2 columns */
    {{HEAD ID METRIC "    grades:\n      - { level: yellow, when: value > 25 and 温度 > 1 }\n"}, NULL, 1,
     {{0, 6, 47, "when: unexpected"}}},
    /* 42: an expression folded over two lines: the offset does not map to one line, so the
     * error points at the expression's start (`value` at 7:15), never past the line's end */
    {{HEAD ID METRIC "    grades:\n      - level: yellow\n        when: value > 25 and\n          value = 3\n"},
     NULL, 1, {{0, 7, 15, "unexpected '='"}}},
    /* 43: an escape shifts source and value apart: at the opening quote (7:15) */
    {{HEAD ID METRIC "    grades:\n      - level: yellow\n        when: \"value \\x3e 25 = 3\"\n"}, NULL, 1,
     {{0, 7, 15, "unexpected '='"}}},
    /* 44: a title that is not text:  `    title: [a, b]`  '[' at 12 */
    {{HEAD ID "    title: [a, b]\n" METRIC GRADES}, NULL, 1, {{0, 4, 12, "title must be a string"}}},
};

/* Write a case's files (a.yaml, b.yaml) and registry; @returns how many rule files it has. */
static size_t write_case(const struct bad_case *c, struct vg_registry **reg)
{
    vgt_write("a.yaml", c->text[0]);
    vgt_write("b.yaml", c->text[1] ? c->text[1] : "");
    *reg = c->registry ? load_registry_ok(c->registry) : NULL;
    return c->text[1] ? 2 : 1;
}

START_TEST(bad_rules)
{
    const struct bad_case *c = &bad_cases[_i];
    char *paths[2] = {vgt_path("a.yaml"), vgt_path("b.yaml")};
    struct vg_registry *reg;
    size_t n_paths = write_case(c, &reg);
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs = (struct vg_ruleset *)1;
    int rc = vg_ruleset_load(&rs, (const char *const *)paths, n_paths, reg, &d);
    char *all = diags_text(&d);
    ck_assert_msg(count_lines(all) == c->n, "want %d diagnostics, got:\n%s", c->n, all);
    ck_assert_int_eq(rc == VG_OK, c->n == 0);
    ck_assert_int_eq(rc == VG_EINVAL, c->n > 0);
    ck_assert_int_eq(rs == NULL, c->n > 0);
    for (int k = 0; k < c->n; k++) {
        const struct want *w = &c->want[k];
        char line[1200], prefix[600], phrase[600];
        nth_line(all, k, line, sizeof line);
        snprintf(prefix, sizeof prefix, "%s:%d:%d: ", paths[w->file], w->line, w->col);
        expand(w->phrase, paths[0], phrase, sizeof phrase);
        ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0, "diagnostic %d: want %s…, got:\n%s", k,
                      prefix, all);
        ck_assert_msg(strstr(line + strlen(prefix), phrase) != NULL, "diagnostic %d: want '%s', got:\n%s",
                      k, phrase, all);
    }
    free(all);
    vg_diags_fini(&d);
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
    free(paths[0]);
    free(paths[1]);
}
END_TEST

/* ---- directories ---------------------------------------------------------- */

/* What a directory holds; only the plain rule files may be loaded. */
static const struct {
    const char *name, *text;
} dir_files[] = {
    {"lib/b_dust.yml", HEAD "  - id: b_dust\n" METRIC GRADES},
    {"lib/a_nh3.yaml", HEAD "  - id: a_nh3\n" METRIC GRADES},
    {"lib/c_o2.yaml", HEAD "  - id: c_o2\n" METRIC GRADES},
    /* each of these would be an error if it were read as rules */
    {"lib/a_nh3.test.yaml", "cases: [ {{{ not a rule file\n"},
    {"lib/b_dust.test.yml", "cases: [ {{{ not a rule file\n"},
    {"lib/registry.yaml", "version: 1\nplants: []\n"},
    {"lib/registry.example.yaml", "version: 1\nplants: []\n"},
    {"lib/.hidden.yaml", "version: 9\n"},
    {"lib/README.md", "# not yaml: [\n"},
};

struct dir_case {
    const char *paths[3];  /* relative to the temp dir */
    size_t n;
    const char *ids;       /* rules in load order; "" when the load fails */
    int n_diags;
    const char *diag;      /* the first diagnostic, or "" */
};

static const struct dir_case dir_cases[] = {
    /* a directory loads its rule files in name order and skips the others */
    {{"lib"}, 1, "a_nh3,b_dust,c_o2", 0, ""},
    /* files given one by one load in the order given */
    {{"lib/c_o2.yaml", "lib/a_nh3.yaml"}, 2, "c_o2,a_nh3", 0, ""},
    /* a file given by name is read as rules whatever its name (no 'rules', an unknown 'plants') */
    {{"lib/registry.yaml"}, 1, "", 2, "registry.yaml:1:1: a rule file needs a 'rules' list"},
    /* c_o2 twice: the second is a duplicate, naming the first */
    {{"lib/c_o2.yaml", "lib"}, 2, "", 1, "lib/c_o2.yaml:3:9: duplicate rule id 'c_o2' (first defined at "},
};

/* The ids of a loaded set ("" for none). */
static void loaded_ids(const struct vg_ruleset *rs, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (uint32_t i = 0; rs && i < rs->n_rules; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", rs->rules[i].id);
}

START_TEST(directory_load)
{
    const struct dir_case *c = &dir_cases[_i];
    char *lib = vgt_path("lib");
    mkdir(lib, 0700);
    free(lib);
    for (size_t i = 0; i < VG_ARRAY_LEN(dir_files); i++)
        vgt_write(dir_files[i].name, dir_files[i].text);
    char *paths[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < c->n; i++)
        paths[i] = vgt_path(c->paths[i]);
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs = NULL;
    int rc = vg_ruleset_load(&rs, (const char *const *)paths, c->n, NULL, &d);
    char *all = diags_text(&d);
    char ids[200];
    loaded_ids(rs, ids, sizeof ids);
    ck_assert_str_eq(ids, c->ids);
    ck_assert_int_eq(rc == VG_OK, c->n_diags == 0);
    ck_assert_int_eq(rc == VG_EINVAL, c->n_diags > 0);
    ck_assert_int_eq(rs == NULL, c->n_diags > 0);
    ck_assert_int_eq(count_lines(all), c->n_diags);
    ck_assert_msg(strstr(all, c->diag) != NULL, "want '%s' in:\n%s", c->diag, all);
    free(all);
    vg_diags_fini(&d);
    vg_ruleset_destroy(rs);
    for (size_t i = 0; i < c->n; i++)
        free(paths[i]);
}
END_TEST

/* A path that does not exist is a diagnostic, not a crash. */
START_TEST(missing_path)
{
    char *p = vgt_path("nowhere.yaml");
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs = NULL;
    ck_assert_int_eq(vg_ruleset_load(&rs, (const char *const *)&p, 1, NULL, &d), VG_EINVAL);
    ck_assert_ptr_null(rs);
    ck_assert_int_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].file, p);
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "no such file"));
    vg_diags_fini(&d);
    free(p);
}
END_TEST

/* The rule library shipped in rules/ must always compile cleanly. */
START_TEST(bundled_library)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/rules", vgt_src());
    const char *p = path;
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs = NULL;
    int rc = vg_ruleset_load(&rs, &p, 1, NULL, &d);
    char *all = diags_text(&d);
    ck_assert_msg(rc == VG_OK, "the bundled rules do not compile:\n%s", all);
    ck_assert_int_eq(d.n, 0);
    ck_assert_uint_gt(rs->n_rules, 0);
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        ck_assert_msg(hex8(rs->rules[i].version), "%s", rs->rules[i].id);
        ck_assert_uint_gt(rs->rules[i].n_grades, 0);
    }
    free(all);
    vg_diags_fini(&d);
    vg_ruleset_destroy(rs);
}
END_TEST

/* ---- the registry --------------------------------------------------------- */

static const char registry_full[] =
    "version: 1\n"
    "regions:\n"
    "  - { code: \"320585101\", name: 城厢镇,\n"
    "      contacts: { grid_officer: [\"+8613800000001\"], region_supervisor: [\"+8613800000002\"] } }\n"
    "  - { code: \"330100\", name: 杭州市 }\n"
    "plants:\n"
    "  - id: P320585001\n"
    "    name: 太仓某铝业有限公司\n"
    "    region: \"320585101\"\n"
    "    industries: [dust_explosion, metal_smelting]\n"
    "    contacts: { safety_officer: [\"+8613900000001\"],\n"
    "                principal: [\"+8613900000002\", \"+8613900000003\"] }\n"
    "    points:\n"
    "      - { id: D-01, kind: dust_point }\n"
    "      - { id: DC-01, limits: { high: 70, high_high: 90.5 } }\n"
    "  - { id: P330100002, name: 某冷库, region: \"330100\", industries: [ammonia_refrigeration] }\n"
    "  - { id: 91320585MA1XXXXX0Y, region: \"320500\", industries: ammonia_refrigeration }\n";

struct plant_fact {
    const char *id;
    uint32_t pos;          /* 1-based index in the file; 0: not there */
};

static const struct plant_fact plant_lookups[] = {
    {"P320585001", 1}, {"P330100002", 2}, {"91320585MA1XXXXX0Y", 3},
    {"P32058500", 0},  {"P3205850011", 0}, {"p320585001", 0}, {"", 0}, {"320585101", 0},
};

static uint32_t plant_pos(const struct vg_registry *reg, const struct vg_plant *p)
{
    return p ? (uint32_t)(p - reg->plants) + 1 : 0;
}

START_TEST(registry_lookup)
{
    const struct plant_fact *f = &plant_lookups[_i];
    struct vg_registry *reg = load_registry_ok(registry_full);
    ck_assert_int_eq(reg->n_plants, 3);
    ck_assert_int_eq(reg->n_regions, 2);
    ck_assert_int_eq(plant_pos(reg, vg_registry_plant(reg, f->id, strlen(f->id))), f->pos);
    vg_registry_destroy(reg);
}
END_TEST

struct plant_attr {
    uint32_t idx;
    const char *name, *region, *industries;
    int region_ref;       /* index of the declared region, or -1 */
    uint32_t n_points;
};

static const struct plant_attr plant_attrs[] = {
    {0, "太仓某铝业有限公司", "320585101", "dust_explosion,metal_smelting", 0, 2},
    {1, "某冷库", "330100", "ammonia_refrigeration", 1, 0},
    /* a region that is not declared: kept as given, no reference */
    {2, NULL, "320500", "ammonia_refrigeration", -1, 0},
};

static int region_pos(const struct vg_registry *reg, const struct vg_region *r)
{
    return r ? (int)(r - reg->regions) : -1;
}

START_TEST(registry_plants)
{
    const struct plant_attr *f = &plant_attrs[_i];
    struct vg_registry *reg = load_registry_ok(registry_full);
    const struct vg_plant *p = &reg->plants[f->idx];
    char buf[200];
    ck_assert_pstr_eq(p->name, f->name);
    ck_assert_str_eq(p->region, f->region);
    join_strv(p->industries, buf, sizeof buf);
    ck_assert_str_eq(buf, f->industries);
    ck_assert_int_eq(region_pos(reg, p->region_ref), f->region_ref);
    ck_assert_int_eq(p->n_points, f->n_points);
    ck_assert_ptr_eq(vg_registry_plant(reg, p->id, strlen(p->id)), p);
    vg_registry_destroy(reg);
}
END_TEST

struct point_fact {
    const char *device;
    const char *kind;      /* NULL: none */
    uint32_t n_limits;
    const char *limit;     /* the limit checked, "" for none */
    double value;
};

static const struct point_fact point_facts[] = {
    {"D-01", "dust_point", 0, "", 0},
    {"DC-01", NULL, 2, "high", 70},
    {"DC-01", NULL, 2, "high_high", 90.5},
};

static double limit_of(const struct vg_point *pt, const char *name)
{
    for (uint32_t i = 0; i < pt->n_limits; i++)
        if (!strcmp(pt->limits[i].name, name))
            return pt->limits[i].value;
    return 0;
}

START_TEST(registry_points)
{
    const struct point_fact *f = &point_facts[_i];
    struct vg_registry *reg = load_registry_ok(registry_full);
    const struct vg_plant *p = vg_registry_plant(reg, "P320585001", 10);
    const struct vg_point *pt = vg_plant_point(p, f->device, strlen(f->device));
    ck_assert_ptr_nonnull(pt);
    ck_assert_str_eq(pt->id, f->device);
    ck_assert_pstr_eq(pt->kind, f->kind);
    ck_assert_int_eq(pt->n_limits, f->n_limits);
    ck_assert_double_eq(limit_of(pt, f->limit), f->value);
    /* device ids are matched whole */
    ck_assert_ptr_null(vg_plant_point(p, "DC-0", 4));
    ck_assert_ptr_null(vg_plant_point(p, "DC-011", 6));
    ck_assert_ptr_null(vg_plant_point(&reg->plants[1], f->device, strlen(f->device)));
    vg_registry_destroy(reg);
}
END_TEST

struct contact_fact {
    const char *owner;    /* a plant id or a region code */
    const char *role;
    const char *phones;   /* joined */
};

static const struct contact_fact contact_facts[] = {
    {"P320585001", "safety_officer", "+8613900000001"},
    {"P320585001", "principal", "+8613900000002,+8613900000003"},
    {"320585101", "grid_officer", "+8613800000001"},
    {"320585101", "region_supervisor", "+8613800000002"},
};

static const struct vg_contacts *contacts_of(const struct vg_registry *reg, const char *owner)
{
    const struct vg_plant *p = vg_registry_plant(reg, owner, strlen(owner));
    if (p)
        return &p->contacts;
    for (uint32_t i = 0; i < reg->n_regions; i++)
        if (!strcmp(reg->regions[i].code, owner))
            return &reg->regions[i].contacts;
    ck_abort_msg("no plant or region '%s'", owner);
    return NULL;
}

static const char *phones_of(const struct vg_contacts *c, const char *role, char *buf, size_t cap)
{
    buf[0] = 0;
    for (uint32_t i = 0; i < c->n; i++)
        if (!strcmp(c->roles[i], role))
            join_strv(c->phones[i], buf, cap);
    return buf;
}

START_TEST(registry_contacts)
{
    const struct contact_fact *f = &contact_facts[_i];
    struct vg_registry *reg = load_registry_ok(registry_full);
    const struct vg_contacts *c = contacts_of(reg, f->owner);
    char buf[200];
    ck_assert_int_eq(c->n, 2);
    ck_assert_str_eq(phones_of(c, f->role, buf, sizeof buf), f->phones);
    vg_registry_destroy(reg);
}
END_TEST

struct bad_registry {
    const char *text;
    int n;
    struct want want[3];
};

#define RHEAD "version: 1\nplants:\n"

static const struct bad_registry bad_registries[] = {
    /* 0: duplicate plant id, at the second plant */
    {RHEAD "  - { id: P1, region: \"320585101\" }\n  - { id: P1, region: \"330100\" }\n", 1,
     {{0, 4, 5, "duplicate plant id 'P1'"}}},
    /* 1: ... in block style: at the second plant's mapping (its first key) */
    {RHEAD "  - id: P1\n    region: \"1\"\n  - region: \"2\"\n    id: P1\n", 1,
     {{0, 5, 5, "duplicate plant id 'P1'"}}},
    /* 2: a bad phone number, at the number itself:
     * `  - { id: P1, contacts: { safety_officer: ["+8613900000001", "13900000002"] } }` */
    {RHEAD "  - { id: P1, contacts: { safety_officer: [\"+8613900000001\", \"13900000002\"] } }\n", 1,
     {{0, 3, 62, "phone number '13900000002' must be E.164"}}},
    /* 3: a single number instead of a list, with a letter in it:  `  - { id: P1, contacts: { principal: "+86139x" } }` */
    {RHEAD "  - { id: P1, contacts: { principal: \"+86139000000x1\" } }\n", 1,
     {{0, 3, 38, "phone number '+86139000000x1'"}}},
    /* 4: unknown key in a plant */
    {RHEAD "  - { id: P1, sector: steel }\n", 1, {{0, 3, 15, "unknown key 'sector' in plant"}}},
    /* 5: unknown key in a region */
    {"version: 1\nregions:\n  - { code: \"1\", chief: x }\n", 1, {{0, 3, 18, "unknown key 'chief' in region"}}},
    /* 6: unknown key in a point:  `      - { id: D1, unit: ppm }` */
    {RHEAD "  - id: P1\n    points:\n      - { id: D1, unit: ppm }\n", 1,
     {{0, 5, 19, "unknown key 'unit' in point"}}},
    /* 7: a limit that is not a number:  `      - { id: D1, limits: { high: abc } }` */
    {RHEAD "  - id: P1\n    points:\n      - { id: D1, limits: { high: abc } }\n", 1,
     {{0, 5, 35, "a limit must be a number, not 'abc'"}}},
    /* 8: duplicate point id, at the second point */
    {RHEAD "  - id: P1\n    points:\n      - { id: D1 }\n      - { id: D1 }\n", 1,
     {{0, 6, 9, "duplicate point id 'D1' in plant P1"}}},
    /* 9: unknown top-level key */
    {"version: 1\nfactories: []\n", 1, {{0, 2, 1, "unknown key 'factories' in registry"}}},
    /* 10: no version */
    {"plants:\n  - { id: P1 }\n", 1, {{0, 1, 1, "registry needs 'version: 1'"}}},
    /* 11: a plant without an id */
    {RHEAD "  - { name: x }\n", 1, {{0, 3, 5, "a plant needs 'id'"}}},
    /* 12: duplicate region code */
    {"version: 1\nregions:\n  - { code: \"1\" }\n  - { code: \"1\" }\n", 1,
     {{0, 4, 5, "duplicate region code '1'"}}},
    /* 13: several at once */
    {RHEAD "  - { id: P1, sector: steel }\n  - { id: P1, contacts: { x: [\"+1\"] } }\n", 3,
     {{0, 3, 15, "unknown key 'sector'"}, {0, 4, 5, "duplicate plant id 'P1'"}, {0, 4, 31, "phone number '+1'"}}},
};

START_TEST(bad_registry)
{
    const struct bad_registry *c = &bad_registries[_i];
    const char *path = vgt_write("registry.yaml", c->text);
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_registry *reg = (struct vg_registry *)1;
    int rc = vg_registry_load(&reg, path, &d);
    char *all = diags_text(&d);
    ck_assert_msg(count_lines(all) == c->n, "want %d diagnostics, got:\n%s", c->n, all);
    ck_assert_int_eq(rc, VG_EINVAL);
    ck_assert_ptr_null(reg);
    for (int k = 0; k < c->n; k++) {
        const struct want *w = &c->want[k];
        char line[1200], prefix[600];
        nth_line(all, k, line, sizeof line);
        snprintf(prefix, sizeof prefix, "%s:%d:%d: ", path, w->line, w->col);
        ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0, "diagnostic %d: want %s…, got:\n%s", k,
                      prefix, all);
        ck_assert_msg(strstr(line + strlen(prefix), w->phrase) != NULL, "diagnostic %d: want '%s', got:\n%s",
                      k, w->phrase, all);
    }
    free(all);
    vg_diags_fini(&d);
}
END_TEST

/* ---- where ---------------------------------------------------------------- */

static const char where_registry[] =
    "version: 1\n"
    "plants:\n"
    "  - { id: P1, region: \"320585101\", industries: [ammonia_refrigeration] }\n"
    "  - { id: P2, region: \"320500\", industries: [dust_explosion] }\n"
    "  - { id: P3, region: \"330100\", industries: [ammonia_refrigeration, dust_explosion] }\n"
    "  - { id: P4 }\n";

#define WRULE(id, where)                                                                           \
    "  - { id: " id ", " where "metric: m, grades: [ { level: yellow, when: value > 1 } ] }\n"

static const char where_rules[] =
    "version: 1\n"
    "rules:\n"
    WRULE("any", "")
    WRULE("ind_nh3", "where: { industry: ammonia_refrigeration }, ")
    WRULE("ind_list", "where: { industry: [metal_smelting, dust_explosion] }, ")
    WRULE("reg_exact", "where: { region: \"320585101\" }, ")
    WRULE("reg_county", "where: { region: \"320500\" }, ")
    WRULE("reg_prefix", "where: { region: \"3205*\" }, ")
    WRULE("reg_list", "where: { region: [\"330100\", \"320585*\"] }, ")
    WRULE("plant_p2", "where: { plant: P2 }, ")
    WRULE("combo", "where: { industry: ammonia_refrigeration, region: \"3205*\" }, ")
    WRULE("combo3", "where: { industry: dust_explosion, region: \"33*\", plant: [P1, P3] }, ")
    WRULE("all_regions", "where: { region: \"*\" }, ");

struct where_case {
    const char *rule;
    const char *match;   /* the plants it applies to, of P1 P2 P3 P4 and an unknown plant "-" */
};

static const struct where_case where_cases[] = {
    {"any", "P1,P2,P3,P4,-"},
    {"ind_nh3", "P1,P3"},
    {"ind_list", "P2,P3"},
    {"reg_exact", "P1"},
    {"reg_county", "P2"},         /* exact: a township of the county is not the county */
    {"reg_prefix", "P1,P2"},
    {"reg_list", "P1,P3"},
    {"plant_p2", "P2"},
    {"combo", "P1"},              /* P3 has the industry, P2 the region: all keys must match */
    {"combo3", "P3"},
    {"all_regions", "P1,P2,P3"},  /* a plant without a region matches no region pattern */
};

/* The plants @p r applies to, then "-" if it applies to an unknown plant. */
static void applies_to(const struct vg_rule *r, const struct vg_registry *reg, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < reg->n_plants; i++)
        if (vg_rule_applies(r, &reg->plants[i]))
            o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "", reg->plants[i].id);
    if (vg_rule_applies(r, NULL))
        snprintf(out + o, cap - o, "%s-", o ? "," : "");
}

START_TEST(rule_applies)
{
    const struct where_case *c = &where_cases[_i];
    struct vg_registry *reg = load_registry_ok(where_registry);
    struct vg_ruleset *rs = load_rules_ok(where_rules, reg);
    const struct vg_rule *r = rule_by_id(rs, c->rule);
    char got[100];
    applies_to(r, reg, got, sizeof got);
    ck_assert_str_eq(got, c->match);
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("compile");
    tcase_add_loop_test(tc, rule_fields, 0, VG_ARRAY_LEN(rule_facts));
    tcase_add_loop_test(tc, grade_fields, 0, VG_ARRAY_LEN(grade_facts));
    tcase_add_test(tc, clear_compiles);
    tcase_add_loop_test(tc, notify_fields, 0, VG_ARRAY_LEN(notify_facts));
    tcase_add_loop_test(tc, rule_version, 0, VG_ARRAY_LEN(version_cases));
    tcase_add_loop_test(tc, metric_index, 0, VG_ARRAY_LEN(index_cases));
    tcase_add_loop_test(tc, metric_unknown, 0, VG_ARRAY_LEN(unknown_metrics));
    suite_add_tcase(s, tc);
    tc = tcase_create("diagnostics");
    tcase_add_loop_test(tc, bad_rules, 0, VG_ARRAY_LEN(bad_cases));
    tcase_add_loop_test(tc, directory_load, 0, VG_ARRAY_LEN(dir_cases));
    tcase_add_test(tc, missing_path);
    tcase_add_test(tc, bundled_library);
    suite_add_tcase(s, tc);
    tc = tcase_create("registry");
    tcase_add_loop_test(tc, registry_lookup, 0, VG_ARRAY_LEN(plant_lookups));
    tcase_add_loop_test(tc, registry_plants, 0, VG_ARRAY_LEN(plant_attrs));
    tcase_add_loop_test(tc, registry_points, 0, VG_ARRAY_LEN(point_facts));
    tcase_add_loop_test(tc, registry_contacts, 0, VG_ARRAY_LEN(contact_facts));
    tcase_add_loop_test(tc, bad_registry, 0, VG_ARRAY_LEN(bad_registries));
    tcase_add_loop_test(tc, rule_applies, 0, VG_ARRAY_LEN(where_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
