/*
 * test_notify.c: SMS requests from alert state changes (engine/notify.h).
 * Owns: the contract of docs/semantics.md "SMS requests": recipients through
 * the registry (plant, region, parent regions; group alerts from their
 * region), min_level, firing and escalation, throttle and its rise rule,
 * on_resolve only to those told, unacked_for chains (exact deadline, ack,
 * resolve, ack before the alert), the daily cap folding into the digest, the
 * digest at its local minute across day boundaries in UTC+8, templates (every
 * placeholder, the built-in ones, template_id → template + params), segment
 * counts, template errors at file:line:col, the checkpoint record (round trip
 * mid-chain, damaged records refused).
 * Must never: build rules or registries by hand: both are YAML a user could
 * write, loaded by the engine's loaders. Expected requests are worked out by
 * hand from the contract, never copied from the engine's output; only
 * request_id (an opaque hash) is checked for shape, determinism and
 * uniqueness instead of its value.
 * DESIGN: each test makes a notifier, feeds hand-made alerts (struct
 * vg_alert, as workers and the group stage hand them over) and acks, and
 * captures what the notifier emits; fields are read back with a small reader
 * for the flat objects the notifier writes.
 */
#include "vgtest.h"

#include "engine/notify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-11-23 00:00:00 in Asia/Shanghai (2026-11-22 16:00:00 UTC) */
#define D0 1795363200000LL
#define S 1000LL
#define M (60 * S)
#define H (60 * M)
#define DAY (24 * H)

/* ---- registry and rules, as users write them ------------------------------ */

static const char registry_yaml[] =
    "version: 1\n"
    "regions:\n"
    "  - { code: \"320585\", name: 太仓市,\n"
    "      contacts: { county_bureau: [\"+8613700000001\"], grid_officer: [\"+8613700000002\"],\n"
    "                  township_officer: [\"+8613700000009\"] } }\n"
    "  - { code: \"320585101\", name: 城厢镇,\n"
    "      contacts: { township_officer: [\"+8613800000001\", \"+8613800000011\"],\n"
    "                  grid_officer: [\"+8613800000002\"] } }\n"
    "  - { code: \"320585102\", name: 沙溪镇 }\n"
    "plants:\n"
    "  - { id: P1, name: 太仓某冷链物流有限公司, region: \"320585101\", industries: [ammonia_refrigeration],\n"
    "      contacts: { safety_officer: [\"+8613900000001\"], principal: [\"+8613900000002\"] } }\n"
    "  - { id: P2, name: 太仓某铝业有限公司, region: \"320585102\", industries: [dust_explosion],\n"
    "      contacts: { safety_officer: [\"+8613900000003\"], township_officer: [\"+8613900000004\"] } }\n"
    "  - { id: P3, name: 太仓某木业有限公司, region: \"320585102\", industries: [dust_explosion] }\n"
    "  - { id: P4, name: 某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某有限公司, region: \"320585101\",\n"
    "      industries: [dust_explosion] }\n"
    "  - { id: P5, name: 外地某化工有限公司, region: \"320999001\", industries: [confined_space],\n"
    "      contacts: { safety_officer: [\"+8613900000005\"] } }\n";

#define GRADES4                                                                                   \
    "    grades:\n"                                                                               \
    "      - { level: blue, when: value > 1 }\n"                                                  \
    "      - { level: yellow, when: value > 2 }\n"                                                \
    "      - { level: orange, when: value > 3 }\n"                                                \
    "      - { level: red, when: value > 4 }\n"

static const char rules_head[] =
    "version: 1\n"
    "rules:\n"
    "  - id: roles\n"
    "    title: 角色测试\n"
    "    metric: m_roles\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer, township_officer, county_bureau, nobody], template: \"{plant}\" }\n"
    "  - id: levels\n"
    "    metric: m_levels\n" GRADES4
    "    notify:\n"
    "      - { to: [principal], min_level: orange, template: \"P{level}\" }\n"
    "      - { to: [safety_officer], template: \"S{level}\" }\n"
    "  - id: throttled\n"
    "    metric: m_thr\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer], throttle: 1h, template: \"{device}{level}\" }\n"
    "  - id: resolving\n"
    "    title: 氨气浓度超限\n"
    "    metric: m_res\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer], on_resolve: true, throttle: 1h, template: \"{level}\", template_id: WARN_X }\n"
    "      - { to: [principal], min_level: red, on_resolve: true, template: \"{level}\" }\n"
    "      - { to: [grid_officer], template: \"{level}\" }\n"
    "  - id: chain\n"
    "    title: 氨气浓度超限\n"
    "    metric: m_chain\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer], template: \"S{level}\" }\n"
    "      - { to: [township_officer], unacked_for: 30m, template: \"T{level}\" }\n"
    "      - { to: [county_bureau], unacked_for: 2h, min_level: orange, template: \"C{level}\" }\n"
    "  - id: capped\n"
    "    metric: m_cap\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer], template: \"{device}\" }\n"
    "  - id: digested\n"
    "    title: 粉尘清扫日报未按时上报\n"
    "    metric: m_dig\n" GRADES4
    "    notify:\n"
    "      - { to: [grid_officer], mode: digest }\n"
    "  - id: render\n"
    "    title: 涉氨制冷车间氨气浓度超限\n"
    "    metric: nh3_ppm\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer], template_id: WARN_ALL,\n"
    "          template: \"{plant_name}|{plant}|{device}|{metric}|{value}|{level}|{level_cn}|{title}|"
    "{region_name}|{time}\" }\n"
    "  - id: default_tpl\n"
    "    title: 默认模板\n"
    "    metric: m_def\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer] }\n"
    "  - id: absent_rule\n"
    "    title: 粉尘清扫日报未按时上报\n"
    "    event: dust_cleaning_report\n"
    "    absent: { grades: [ { level: yellow, after: 3d } ] }\n"
    "    notify:\n"
    "      - { to: [safety_officer], template: \"{plant_name}{device}[{value}]{metric}\" }\n"
    "  - id: dedupe\n"
    "    metric: m_dd\n" GRADES4
    "    notify:\n"
    "      - { to: [safety_officer], template: \"low {level}\" }\n"
    "      - { to: [safety_officer, principal], min_level: red, template: \"high {level}\" }\n"
    "      - { to: [principal], template: \"p {level}\" }\n"
    "  - id: region_cap\n"
    "    title: 辖区内超限企业过多\n"
    "    group: { by: region, rule: capped, min_level: yellow, count: plants }\n"
    "    grades: [ { level: orange, when: count > 2 } ]\n"
    "    notify:\n"
    "      - { to: [township_officer, county_bureau, safety_officer],\n"
    "          template: \"{plant_name}|{region_name}|{value}|{plant}|{device}|{title}\" }\n";

/* seg<N>: a template of exactly N characters (CJK, no placeholders) */
static const int seg_lengths[] = {70, 71, 134, 135};

static struct vg_ruleset *rs;
static struct vg_registry *reg;
static struct vg_notifier *nf;

/* ---- captured requests ----------------------------------------------------- */

#define CAP_MAX 512
static char *lines[CAP_MAX], *keys[CAP_MAX];
static int n_lines;

static void on_sms(void *ctx, const char *key, size_t key_len, const char *json, size_t len)
{
    (void)ctx;
    ck_assert_int_lt(n_lines, CAP_MAX);
    ck_assert_ptr_null(memchr(json, '\n', len));
    lines[n_lines] = strndup(json, len);
    keys[n_lines] = strndup(key, key_len);
    n_lines++;
}

static void clear_lines(void)
{
    for (int i = 0; i < n_lines; i++) {
        free(lines[i]);
        free(keys[i]);
    }
    n_lines = 0;
}

/* The value of top-level @p key in line @p i: a string's contents, or the raw token
 * (numbers, arrays). "<absent>" when missing. The notifier writes flat objects. */
static const char *field(int i, const char *key)
{
    static char out[4][8192];
    static int slot;
    char *o = out[slot++ % 4];
    ck_assert_int_lt(i, n_lines);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(lines[i], pat);
    if (!p)
        return strcpy(o, "<absent>");
    p += strlen(pat);
    const char *e;
    if (*p == '"') {
        p++;
        for (e = p; *e && !(*e == '"' && e[-1] != '\\'); e++)
            ;
    } else if (*p == '[') {
        for (e = p; *e && *e != ']'; e++)
            ;
        e++;
    } else {
        for (e = p; *e && *e != ',' && *e != '}'; e++)
            ;
    }
    snprintf(o, 8192, "%.*s", (int)(e - p), p);
    return o;
}

/* UTF-8 characters (code points) in @p s */
static int chars(const char *s)
{
    int c = 0;
    for (; *s; s++)
        c += ((unsigned char)*s & 0xC0) != 0x80;
    return c;
}

static long long field_ll(int i, const char *key)
{
    return strtoll(field(i, key), NULL, 10);
}

/* The field order of every request is fixed. */
static void check_shape(int i)
{
    static const char *const order[] = {"request_id", "alert_id", "to", "role", "level", "template",
                                        "params", "text", "segments", "mode", "at", "count",
                                        "alert_ids"};
    const char *prev = lines[i];
    for (size_t k = 0; k < VG_ARRAY_LEN(order); k++) {
        char pat[64];
        snprintf(pat, sizeof pat, "\"%s\":", order[k]);
        const char *p = strstr(lines[i], pat);
        ck_assert_msg(!p || p >= prev, "field %s out of order in %s", order[k], lines[i]);
        prev = p ? p : prev;
    }
    const char *rid = field(i, "request_id");
    ck_assert_uint_eq(strlen(rid), 16);
    ck_assert_uint_eq(strspn(rid, "0123456789abcdef"), 16);
    ck_assert(lines[i][0] == '{' && lines[i][strlen(lines[i]) - 1] == '}');
}

/* Line @p i is a request to @p to under @p role at @p level, with @p text, at @p at. */
static void expect(int i, const char *alert_id, const char *to, const char *role, const char *level,
                   const char *text, const char *mode, long long at)
{
    ck_assert_msg(i < n_lines, "request %d expected, only %d emitted", i, n_lines);
    check_shape(i);
    ck_assert_str_eq(field(i, "alert_id"), alert_id);
    ck_assert_str_eq(field(i, "to"), to);
    ck_assert_str_eq(field(i, "role"), role);
    ck_assert_str_eq(field(i, "level"), level);
    ck_assert_str_eq(field(i, "text"), text);
    ck_assert_str_eq(field(i, "mode"), mode);
    ck_assert_int_eq(field_ll(i, "at"), at);
}

/* ---- fixture --------------------------------------------------------------- */

static void setup(void)
{
    char *yaml = malloc(65536);
    size_t o = (size_t)snprintf(yaml, 65536, "%s", rules_head);
    for (size_t k = 0; k < VG_ARRAY_LEN(seg_lengths); k++) {
        o += (size_t)snprintf(yaml + o, 65536 - o,
                              "  - id: seg%d\n    metric: m_seg%d\n" GRADES4
                              "    notify:\n      - { to: [safety_officer], template: \"",
                              seg_lengths[k], seg_lengths[k]);
        for (int c = 0; c < seg_lengths[k]; c++)
            o += (size_t)snprintf(yaml + o, 65536 - o, "安");
        o += (size_t)snprintf(yaml + o, 65536 - o, "\" }\n");
    }
    const char *rpath = vgt_write("notify_rules.yaml", yaml);
    free(yaml);
    const char *gpath = vgt_write("notify_registry.yaml", registry_yaml);
    struct vg_diags d;
    vg_diags_init(&d);
    ck_assert_msg(vg_registry_load(&reg, gpath, &d) == VG_OK, "registry: %s", d.n ? d.v[0].msg : "");
    ck_assert_msg(vg_ruleset_load(&rs, &rpath, 1, NULL, &d) == VG_OK && d.n == 0, "rules: %d:%d %s",
                  d.n ? d.v[0].line : 0, d.n ? d.v[0].col : 0, d.n ? d.v[0].msg : "");
    vg_diags_fini(&d);
    nf = NULL;
    n_lines = 0;
}

static void teardown(void)
{
    vg_notifier_destroy(nf);
    nf = NULL;
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
    clear_lines();
}

static struct vg_notifier *make(int cap, int minute)
{
    struct vg_notify_options o = {cap, minute};
    struct vg_notifier *n = vg_notifier_create(rs, reg, &o);
    ck_assert_ptr_nonnull(n);
    return n;
}

static const struct vg_rule *rule(const char *id)
{
    const struct vg_rule *r = vg_ruleset_find(rs, id);
    ck_assert_msg(r != NULL, "no rule %s", id);
    return r;
}

/* An alert state change as a worker hands it over. */
static struct vg_alert alert(const char *rule_id, const char *plant, const char *device, int status,
                             int level, double value, vg_ts started, vg_ts at)
{
    const struct vg_rule *r = rule(rule_id);
    const struct vg_plant *p = vg_registry_plant(reg, plant, strlen(plant));
    struct vg_alert a;
    memset(&a, 0, sizeof a);
    a.rule = r->index;
    a.status = (uint8_t)status;
    a.level = (uint8_t)level;
    a.metric = r->n_metrics ? r->metrics[0] : VG_METRIC_NONE;
    a.value = value;
    a.rule_value = NAN;
    a.started_at = started;
    a.at = at;
    a.since = started;
    a.region = p ? p->region : NULL;
    a.plant_len = (uint8_t)snprintf(a.plant, sizeof a.plant, "%s", plant);
    a.dev_len = (uint8_t)snprintf(a.device, sizeof a.device, "%s", device);
    return a;
}

/* A group alert: the subject is a region. */
static struct vg_alert group_alert(const char *rule_id, const char *region, int status, int level,
                                   double count, vg_ts started, vg_ts at)
{
    struct vg_alert a = alert(rule_id, "", "", status, level, count, started, at);
    a.flags = VG_ALERT_F_GROUP | VG_ALERT_F_NOVALUE;
    a.metric = VG_METRIC_NONE;
    a.region = region;
    a.group_plants = "[]";
    return a;
}

static void feed(struct vg_alert a)
{
    vg_notifier_alert(nf, &a, on_sms, NULL);
}

static void advance(vg_ts t)
{
    vg_notifier_advance(nf, t, on_sms, NULL);
}

static const char *aid(const char *rule_id, const char *plant, const char *device, vg_ts started)
{
    static char ids[8][17];
    static int slot;
    char *o = ids[slot++ % 8];
    vg_alert_id(rule_id, plant, strlen(plant), device, strlen(device), started, o);
    return o;
}

static struct vg_notify_stats stats(void)
{
    struct vg_notify_stats s;
    vg_notifier_stats(nf, &s);
    return s;
}

enum { F = VG_ALERT_FIRING, E = VG_ALERT_ESCALATED, R = VG_ALERT_RESOLVED };
enum { BLUE = VG_LEVEL_BLUE, YELLOW = VG_LEVEL_YELLOW, ORANGE = VG_LEVEL_ORANGE, RED = VG_LEVEL_RED };

/* ---- recipients ------------------------------------------------------------ */

/* Where each role of `roles` resolves, per plant: the plant's own contacts
 * first, then its region's, then each declared parent region. */
static const struct {
    const char *plant;
    int n;
    const char *to[5], *role[5];
    int no_recipient;
} role_cases[] = {
    /* P1: safety_officer on the plant; township_officer (2 numbers) on its township; county on 320585 */
    {"P1", 4,
     {"+8613900000001", "+8613800000001", "+8613800000011", "+8613700000001"},
     {"safety_officer", "township_officer", "township_officer", "county_bureau"}, 1},
    /* P2: the plant's own township_officer wins over the regions' */
    {"P2", 3,
     {"+8613900000003", "+8613900000004", "+8613700000001"},
     {"safety_officer", "township_officer", "county_bureau"}, 1},
    /* P3: no contacts; its township 320585102 has none; the county 320585 has a township_officer */
    {"P3", 2, {"+8613700000009", "+8613700000001"}, {"township_officer", "county_bureau"}, 2},
    /* P5: a region nobody declared, and no prefix of it either */
    {"P5", 1, {"+8613900000005"}, {"safety_officer"}, 3},
};

START_TEST(roles_resolve)
{
    nf = make(0, 480);
    const char *plant = role_cases[_i].plant;
    feed(alert("roles", plant, "D1", F, YELLOW, 3, D0, D0));
    ck_assert_int_eq(n_lines, role_cases[_i].n);
    for (int k = 0; k < role_cases[_i].n; k++) {
        expect(k, aid("roles", plant, "D1", D0), role_cases[_i].to[k], role_cases[_i].role[k], "yellow",
               plant, "immediate", D0);
        ck_assert_str_eq(keys[k], plant);
    }
    ck_assert_int_eq(stats().no_recipient, role_cases[_i].no_recipient);
    ck_assert_int_eq(stats().requests, role_cases[_i].n);
}
END_TEST

/* A group alert resolves roles from its region, then the parents; it has no plant. */
START_TEST(group_alert_recipients_and_values)
{
    nf = make(0, 480);
    feed(group_alert("region_cap", "320585101", F, ORANGE, 3, D0, D0 + 5 * M));
    ck_assert_int_eq(n_lines, 3);
    char id[17];
    vg_alert_id("region_cap", "320585101", 9, "", 0, D0, id);
    const char *text = "城厢镇|城厢镇|3|||辖区内超限企业过多";
    expect(0, id, "+8613800000001", "township_officer", "orange", text, "immediate", D0 + 5 * M);
    expect(1, id, "+8613800000011", "township_officer", "orange", text, "immediate", D0 + 5 * M);
    expect(2, id, "+8613700000001", "county_bureau", "orange", text, "immediate", D0 + 5 * M);
    ck_assert_str_eq(keys[0], "320585101");
    ck_assert_int_eq(stats().no_recipient, 1); /* safety_officer: regions have none */
}
END_TEST

/* ---- when ------------------------------------------------------------------ */

START_TEST(min_level_firing_and_escalation)
{
    nf = make(0, 480);
    const char *id = aid("levels", "P1", "D1", D0);
    feed(alert("levels", "P1", "D1", F, YELLOW, 3, D0, D0));
    ck_assert_int_eq(n_lines, 1);
    expect(0, id, "+8613900000001", "safety_officer", "yellow", "Syellow", "immediate", D0);
    feed(alert("levels", "P1", "D1", E, ORANGE, 4, D0, D0 + M));
    ck_assert_int_eq(n_lines, 3);
    /* entries go highest min_level first: principal (orange) before safety_officer */
    expect(1, id, "+8613900000002", "principal", "orange", "Porange", "immediate", D0 + M);
    expect(2, id, "+8613900000001", "safety_officer", "orange", "Sorange", "immediate", D0 + M);
    feed(alert("levels", "P1", "D1", E, RED, 5, D0, D0 + 2 * M));
    ck_assert_int_eq(n_lines, 5);
    expect(3, id, "+8613900000002", "principal", "red", "Pred", "immediate", D0 + 2 * M);
    expect(4, id, "+8613900000001", "safety_officer", "red", "Sred", "immediate", D0 + 2 * M);
    feed(alert("levels", "P1", "D1", R, RED, 1, D0, D0 + 3 * M));
    ck_assert_int_eq(n_lines, 5); /* no on_resolve */
}
END_TEST

/* ---- throttle -------------------------------------------------------------- */

START_TEST(throttle_suppresses_and_rise_passes)
{
    nf = make(0, 480);
    /* one subject, several alerts (each resolve ends one; a new breach is a new alert) */
    feed(alert("throttled", "P1", "D1", F, YELLOW, 3, D0, D0));
    feed(alert("throttled", "P1", "D1", R, YELLOW, 1, D0, D0 + 5 * M));
    feed(alert("throttled", "P1", "D1", F, YELLOW, 3, D0 + 10 * M, D0 + 10 * M)); /* throttled */
    feed(alert("throttled", "P1", "D1", E, ORANGE, 4, D0 + 10 * M, D0 + 20 * M)); /* a rise: sent */
    feed(alert("throttled", "P1", "D1", R, ORANGE, 1, D0 + 10 * M, D0 + 25 * M));
    feed(alert("throttled", "P1", "D3", F, YELLOW, 3, D0 + 26 * M, D0 + 26 * M));
    feed(alert("throttled", "P1", "D4", F, YELLOW, 3, D0 + 26 * M, D0 + 26 * M));
    feed(alert("throttled", "P1", "D3", R, YELLOW, 1, D0 + 26 * M, D0 + 27 * M));
    feed(alert("throttled", "P1", "D4", R, YELLOW, 1, D0 + 26 * M, D0 + 27 * M));
    feed(alert("throttled", "P1", "D1", F, ORANGE, 4, D0 + 30 * M, D0 + 30 * M)); /* not higher: throttled */
    feed(alert("throttled", "P1", "D2", F, YELLOW, 3, D0 + 31 * M, D0 + 31 * M)); /* other subject: sent */
    feed(alert("throttled", "P1", "D1", E, RED, 5, D0 + 30 * M, D0 + 79 * M));    /* rise: sent */
    feed(alert("throttled", "P1", "D1", R, RED, 1, D0 + 30 * M, D0 + 80 * M));
    /* the window is [last, last + 1h): 1 ms before its end suppressed, at its end not */
    feed(alert("throttled", "P1", "D4", F, YELLOW, 3, D0 + 86 * M - 1, D0 + 86 * M - 1));
    feed(alert("throttled", "P1", "D3", F, YELLOW, 3, D0 + 86 * M, D0 + 86 * M));
    /* exactly one throttle window after the last request (79m): no longer suppressed */
    feed(alert("throttled", "P1", "D1", F, YELLOW, 3, D0 + 139 * M, D0 + 139 * M));
    ck_assert_int_eq(n_lines, 8);
    expect(0, aid("throttled", "P1", "D1", D0), "+8613900000001", "safety_officer", "yellow", "D1yellow",
           "immediate", D0);
    expect(1, aid("throttled", "P1", "D1", D0 + 10 * M), "+8613900000001", "safety_officer", "orange",
           "D1orange", "immediate", D0 + 20 * M);
    ck_assert_str_eq(field(2, "text"), "D3yellow");
    ck_assert_str_eq(field(3, "text"), "D4yellow");
    expect(4, aid("throttled", "P1", "D2", D0 + 31 * M), "+8613900000001", "safety_officer", "yellow",
           "D2yellow", "immediate", D0 + 31 * M);
    expect(5, aid("throttled", "P1", "D1", D0 + 30 * M), "+8613900000001", "safety_officer", "red",
           "D1red", "immediate", D0 + 79 * M);
    expect(6, aid("throttled", "P1", "D3", D0 + 86 * M), "+8613900000001", "safety_officer", "yellow",
           "D3yellow", "immediate", D0 + 86 * M);
    expect(7, aid("throttled", "P1", "D1", D0 + 139 * M), "+8613900000001", "safety_officer", "yellow",
           "D1yellow", "immediate", D0 + 139 * M);
    ck_assert_int_eq(stats().throttled, 3);
}
END_TEST

/* ---- resolve ----------------------------------------------------------------- */

START_TEST(on_resolve_only_to_those_told)
{
    nf = make(0, 480);
    /* a first alert makes the throttle hold safety_officer back for the second */
    feed(alert("resolving", "P1", "D9", F, ORANGE, 4, D0 - 10 * M, D0 - 10 * M));
    feed(alert("resolving", "P1", "D9", R, ORANGE, 1, D0 - 10 * M, D0 - 5 * M));
    clear_lines();
    const char *id = aid("resolving", "P1", "D1", D0);
    feed(alert("resolving", "P1", "D1", F, ORANGE, 4, D0, D0));
    feed(alert("resolving", "P1", "D1", R, ORANGE, 1, D0, D0 + 10 * M));
    /* firing: safety_officer (WARN_X) and grid_officer; principal's min_level is red;
     * resolve: only safety_officer (told, on_resolve); grid_officer has no on_resolve */
    ck_assert_int_eq(n_lines, 3);
    expect(0, id, "+8613900000001", "safety_officer", "orange", "orange", "immediate", D0);
    ck_assert_str_eq(field(0, "template"), "WARN_X");
    ck_assert_str_eq(field(0, "params"), "[\"orange\"]");
    expect(1, id, "+8613800000002", "grid_officer", "orange", "orange", "immediate", D0);
    ck_assert_str_eq(field(1, "template"), "<absent>");
    expect(2, id, "+8613900000001", "safety_officer", "orange",
           "【安全预警】太仓某冷链物流有限公司D1氨气浓度超限已解除，时间2026-11-23 00:10:00。", "immediate",
           D0 + 10 * M);
    ck_assert_str_eq(field(2, "template"), "<absent>"); /* the built-in resolve text has no template id */
    ck_assert_str_eq(field(2, "params"), "<absent>");
    ck_assert_str_ne(field(0, "request_id"), field(2, "request_id"));

    /* D9 again within the hour: throttled for safety_officer, so its resolve goes to nobody there */
    clear_lines();
    feed(alert("resolving", "P1", "D9", F, ORANGE, 4, D0 + 20 * M, D0 + 20 * M));
    feed(alert("resolving", "P1", "D9", E, RED, 5, D0 + 20 * M, D0 + 21 * M));
    feed(alert("resolving", "P1", "D9", R, RED, 1, D0 + 20 * M, D0 + 30 * M));
    /* firing: grid only (safety throttled); red: principal, safety (a rise), grid (no throttle
     * of its own); resolve: principal and safety, the ones told with on_resolve */
    ck_assert_int_eq(n_lines, 6);
    ck_assert_str_eq(field(0, "role"), "grid_officer");
    ck_assert_str_eq(field(1, "role"), "principal");
    ck_assert_str_eq(field(2, "role"), "safety_officer");
    ck_assert_str_eq(field(3, "role"), "grid_officer");
    expect(4, aid("resolving", "P1", "D9", D0 + 20 * M), "+8613900000002", "principal", "red",
           "【安全预警】太仓某冷链物流有限公司D9氨气浓度超限已解除，时间2026-11-23 00:30:00。", "immediate",
           D0 + 30 * M);
    ck_assert_str_eq(field(5, "role"), "safety_officer");
    ck_assert_str_eq(field(5, "text"), field(4, "text"));
}
END_TEST

/* ---- unacked_for chains ------------------------------------------------------ */

START_TEST(chain_due_at_exact_deadline)
{
    nf = make(0, 480);
    const char *id = aid("chain", "P1", "NH3-01", D0);
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0, D0));
    ck_assert_int_eq(n_lines, 1); /* only safety_officer at firing */
    expect(0, id, "+8613900000001", "safety_officer", "yellow", "Syellow", "immediate", D0);
    advance(D0 + 30 * M - 1);
    ck_assert_int_eq(n_lines, 1);
    advance(D0 + 30 * M);
    ck_assert_int_eq(n_lines, 3);
    expect(1, id, "+8613800000001", "township_officer", "yellow", "Tyellow", "immediate", D0 + 30 * M);
    expect(2, id, "+8613800000011", "township_officer", "yellow", "Tyellow", "immediate", D0 + 30 * M);
    feed(alert("chain", "P1", "NH3-01", E, ORANGE, 4, D0, D0 + 60 * M));
    ck_assert_int_eq(n_lines, 4); /* the rise reaches safety_officer; township already told */
    expect(3, id, "+8613900000001", "safety_officer", "orange", "Sorange", "immediate", D0 + 60 * M);
    /* the clock jumps well past 2h: the county request carries its deadline, not the clock */
    advance(D0 + 5 * H);
    ck_assert_int_eq(n_lines, 5);
    expect(4, id, "+8613700000001", "county_bureau", "orange", "Corange", "immediate", D0 + 2 * H);
    ck_assert_int_eq(stats().escalations, 3);
}
END_TEST

/* County's min_level is orange: at its deadline the alert is yellow, so it
 * waits; the rise to orange later sends it at the rise. */
START_TEST(chain_waits_for_level)
{
    nf = make(0, 480);
    const char *id = aid("chain", "P1", "NH3-01", D0);
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0, D0));
    advance(D0 + 2 * H);
    ck_assert_int_eq(n_lines, 3); /* safety + 2 township */
    feed(alert("chain", "P1", "NH3-01", E, ORANGE, 4, D0, D0 + 3 * H));
    ck_assert_int_eq(n_lines, 5);
    expect(3, id, "+8613700000001", "county_bureau", "orange", "Corange", "immediate", D0 + 3 * H);
    expect(4, id, "+8613900000001", "safety_officer", "orange", "Sorange", "immediate", D0 + 3 * H);
    feed(alert("chain", "P1", "NH3-01", E, RED, 5, D0, D0 + 4 * H));
    ck_assert_int_eq(n_lines, 6); /* county only once */
    ck_assert_str_eq(field(5, "role"), "safety_officer");
}
END_TEST

/* Acks: before a deadline cancels it; exactly at it comes too late; after it
 * cancels the later ones only. Unknown ids are remembered. */
static const struct {
    vg_ts ack_at;      /* ack ts, relative to the firing */
    int township, county;
} ack_cases[] = {
    {10 * M, 0, 0},
    {30 * M - 1, 0, 0},
    {30 * M, 2, 0},     /* at the deadline: the alert was unacknowledged for the whole 30m */
    {31 * M, 2, 0},
    {2 * H, 2, 1},
};

START_TEST(chain_cancelled_by_ack)
{
    nf = make(0, 480);
    const char *id = aid("chain", "P1", "NH3-01", D0);
    feed(alert("chain", "P1", "NH3-01", F, ORANGE, 4, D0, D0));
    /* the reader delivers the ack before the clock passes its ts */
    advance(D0 + ack_cases[_i].ack_at - 1);
    ck_assert_int_eq(vg_notifier_ack(nf, id, 16, "张三", 6, D0 + ack_cases[_i].ack_at), 1);
    advance(D0 + 6 * H);
    int township = 0, county = 0;
    for (int k = 0; k < n_lines; k++) {
        township += !strcmp(field(k, "role"), "township_officer");
        county += !strcmp(field(k, "role"), "county_bureau");
    }
    ck_assert_int_eq(township, ack_cases[_i].township);
    ck_assert_int_eq(county, ack_cases[_i].county);
    ck_assert_int_eq(stats().acks, 1);
}
END_TEST

START_TEST(chain_cancelled_by_resolve)
{
    nf = make(0, 480);
    feed(alert("chain", "P1", "NH3-01", F, ORANGE, 4, D0, D0));
    feed(alert("chain", "P1", "NH3-01", R, ORANGE, 1, D0, D0 + 20 * M));
    advance(D0 + 6 * H);
    ck_assert_int_eq(n_lines, 1);
    /* a resolve exactly at a deadline comes after it: the deadline is served first */
    feed(alert("chain", "P1", "NH3-01", F, ORANGE, 4, D0 + 7 * H, D0 + 7 * H));
    feed(alert("chain", "P1", "NH3-01", R, ORANGE, 1, D0 + 7 * H, D0 + 7 * H + 30 * M));
    advance(D0 + 12 * H);
    ck_assert_int_eq(n_lines, 4);
    ck_assert_str_eq(field(2, "role"), "township_officer");
    ck_assert_int_eq(field_ll(2, "at"), D0 + 7 * H + 30 * M);
}
END_TEST

START_TEST(ack_before_alert)
{
    nf = make(0, 480);
    const char *id = aid("chain", "P2", "NH3-02", D0 + H);
    advance(D0);
    ck_assert_int_eq(vg_notifier_ack(nf, id, 16, "李四", 6, D0 + 30 * M), 0); /* overtook its alert */
    ck_assert_int_eq(vg_notifier_ack(nf, "not-an-id", 9, "", 0, D0), 0);
    ck_assert_int_eq(stats().acks_unknown, 2);
    feed(alert("chain", "P2", "NH3-02", F, ORANGE, 4, D0 + H, D0 + H));
    advance(D0 + 6 * H);
    ck_assert_int_eq(n_lines, 1); /* safety_officer only: the chain was cancelled */
    ck_assert_str_eq(field(0, "role"), "safety_officer");
    ck_assert_int_eq(stats().acks, 1); /* applied when its alert appeared */

    /* remembered for 24 h after its ts, that instant included */
    const char *on_time = aid("chain", "P2", "NH3-03", D0 + 30 * H);
    const char *late = aid("chain", "P2", "NH3-04", D0 + 30 * H + 1);
    ck_assert_int_eq(vg_notifier_ack(nf, on_time, 16, "李四", 6, D0 + 6 * H), 0);
    ck_assert_int_eq(vg_notifier_ack(nf, late, 16, "李四", 6, D0 + 6 * H), 0);
    advance(D0 + 30 * H - 1);
    feed(alert("chain", "P2", "NH3-03", F, ORANGE, 4, D0 + 30 * H, D0 + 30 * H));
    feed(alert("chain", "P2", "NH3-04", F, ORANGE, 4, D0 + 30 * H + 1, D0 + 30 * H + 1));
    advance(D0 + 34 * H);
    ck_assert_int_eq(n_lines, 1 + 2 + 2); /* safety twice; NH3-04's township (P2's own) and county */
    expect(3, late, "+8613900000004", "township_officer", "orange", "Torange", "immediate", D0 + 30 * H + 30 * M + 1);
    expect(4, late, "+8613700000001", "county_bureau", "orange", "Corange", "immediate", D0 + 32 * H + 1);
    ck_assert_int_eq(stats().acks, 2);
    ck_assert_int_eq(stats().acks_unknown, 4);
}
END_TEST

/* ---- daily cap and digests ------------------------------------------------- */

START_TEST(daily_cap_folds_into_digest)
{
    nf = make(2, 480);
    /* local day 2026-11-23: 10:00, 11:00 sent; 12:00 and 23:59:59.999 over the cap */
    feed(alert("capped", "P1", "C1", F, YELLOW, 3, D0 + 10 * H, D0 + 10 * H));
    feed(alert("capped", "P1", "C2", F, YELLOW, 3, D0 + 11 * H, D0 + 11 * H));
    feed(alert("capped", "P1", "C3", F, ORANGE, 4, D0 + 12 * H, D0 + 12 * H));
    feed(alert("capped", "P1", "C4", F, YELLOW, 3, D0 + DAY - 1, D0 + DAY - 1));
    ck_assert_int_eq(n_lines, 2);
    ck_assert_int_eq(stats().capped_to_digest, 2);
    /* local midnight (16:00 UTC): a new day, a new count */
    feed(alert("capped", "P1", "C5", F, YELLOW, 3, D0 + DAY, D0 + DAY));
    ck_assert_int_eq(n_lines, 3);
    ck_assert_str_eq(field(2, "text"), "C5");
    advance(D0 + DAY + 8 * H - 1);
    ck_assert_int_eq(n_lines, 3);
    advance(D0 + DAY + 8 * H);
    ck_assert_int_eq(n_lines, 4);
    char ids[64];
    snprintf(ids, sizeof ids, "[\"%s\",\"%s\"]", aid("capped", "P1", "C3", D0 + 12 * H),
             aid("capped", "P1", "C4", D0 + DAY - 1));
    expect(3, aid("capped", "P1", "C3", D0 + 12 * H), "+8613900000001", "safety_officer", "orange",
           "【安全预警】日报：2条预警（红0 橙1 黄1 蓝0），太仓某冷链物流有限公司capped等，请登录平台查看。",
           "digest", D0 + DAY + 8 * H);
    ck_assert_str_eq(field(3, "alert_ids"), ids);
    ck_assert_int_eq(field_ll(3, "count"), 2);
    ck_assert_int_eq(field_ll(3, "segments"), 1);
    ck_assert_str_eq(keys[3], "P1");
    /* the digest is an SMS of that day too: C5 + digest = 2, so 09:00 is over the cap */
    feed(alert("capped", "P1", "C6", F, YELLOW, 3, D0 + DAY + 9 * H, D0 + DAY + 9 * H));
    ck_assert_int_eq(n_lines, 4);
    ck_assert_int_eq(stats().capped_to_digest, 3);
    ck_assert_int_eq(stats().digests, 1);
}
END_TEST

START_TEST(digest_mode_at_local_minute)
{
    nf = make(0, 480);
    const char *a1 = aid("digested", "P1", "D-01", D0 + 9 * H);
    const char *a2 = aid("digested", "P1", "D-02", D0 + 20 * H);
    const char *a3 = aid("digested", "P1", "D-03", D0 + DAY + 7 * H + 59 * M);
    feed(alert("digested", "P1", "D-01", F, RED, 5, D0 + 9 * H, D0 + 9 * H));
    feed(alert("digested", "P1", "D-02", F, YELLOW, 3, D0 + 20 * H, D0 + 20 * H));
    feed(alert("digested", "P1", "D-02", E, ORANGE, 4, D0 + 20 * H, D0 + 21 * H)); /* same item, now orange */
    feed(alert("digested", "P1", "D-03", F, BLUE, 2, D0 + DAY + 7 * H + 59 * M, D0 + DAY + 7 * H + 59 * M));
    ck_assert_int_eq(n_lines, 0);
    /* exactly at 08:00: the digest goes out before an alert of that instant, which waits a day */
    feed(alert("digested", "P1", "D-04", F, YELLOW, 3, D0 + DAY + 8 * H, D0 + DAY + 8 * H));
    ck_assert_int_eq(n_lines, 1);
    expect(0, a1, "+8613800000002", "grid_officer", "red",
           "【安全预警】日报：3条预警（红1 橙1 黄0 蓝1），太仓某冷链物流有限公司粉尘清扫日报未按时上报等，请登录平台查看。",
           "digest", D0 + DAY + 8 * H);
    char ids[80];
    snprintf(ids, sizeof ids, "[\"%s\",\"%s\",\"%s\"]", a1, a2, a3);
    ck_assert_str_eq(field(0, "alert_ids"), ids);
    ck_assert_int_eq(field_ll(0, "count"), 3);
    advance(D0 + 2 * DAY + 8 * H - 1);
    ck_assert_int_eq(n_lines, 1);
    advance(D0 + 5 * DAY);
    ck_assert_int_eq(n_lines, 2);
    ck_assert_int_eq(field_ll(1, "at"), D0 + 2 * DAY + 8 * H);
    ck_assert_int_eq(field_ll(1, "count"), 1);
    ck_assert_str_eq(field(1, "text"),
                     "【安全预警】日报：1条预警（红0 橙0 黄1 蓝0），太仓某冷链物流有限公司粉尘清扫日报未按时上报，请登录平台查看。");
    ck_assert_int_eq(stats().digests, 2);
    ck_assert_int_eq(stats().requests, 0);
}
END_TEST

/* A chain step due at the digest minute and over the cap joins that digest. */
START_TEST(capped_chain_step_joins_digest_of_same_minute)
{
    nf = make(1, 480);
    feed(alert("roles", "P1", "D1", F, YELLOW, 3, D0 + 7 * H, D0 + 7 * H)); /* township numbers: 1 today */
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0 + 7 * H + 30 * M, D0 + 7 * H + 30 * M));
    int before = n_lines; /* 4: the roles alert; the chain's safety_officer went over the cap */
    ck_assert_int_eq(before, 4);
    advance(D0 + 8 * H);
    ck_assert_int_eq(n_lines, before + 3); /* the digests, by number */
    for (int k = before; k < n_lines; k++) {
        ck_assert_str_eq(field(k, "mode"), "digest");
        ck_assert_int_eq(field_ll(k, "at"), D0 + 8 * H);
        ck_assert_str_eq(field(k, "alert_id"), aid("chain", "P1", "NH3-01", D0 + 7 * H + 30 * M));
        ck_assert_int_eq(field_ll(k, "count"), 1);
    }
    ck_assert_str_eq(field(before, "to"), "+8613800000001");
    ck_assert_str_eq(field(before, "role"), "township_officer");
    ck_assert_str_eq(field(before + 1, "to"), "+8613800000011");
    ck_assert_str_eq(field(before + 2, "to"), "+8613900000001");
    ck_assert_str_eq(field(before + 2, "role"), "safety_officer");
}
END_TEST

/* Digest minute 00:30 local = 16:30 UTC of the day before: the local day decides. */
START_TEST(digest_minute_across_utc_day)
{
    nf = make(0, 30);
    feed(alert("digested", "P4", "D-01", F, YELLOW, 3, D0 + 23 * H + 50 * M, D0 + 23 * H + 50 * M));
    advance(D0 + DAY + 29 * M);
    ck_assert_int_eq(n_lines, 0);
    advance(D0 + DAY + 30 * M);
    ck_assert_int_eq(n_lines, 1);
    ck_assert_int_eq(field_ll(0, "at"), D0 + DAY + 30 * M); /* 2026-11-23T16:30:00Z */
    /* a long plant name is cut so the digest stays one 70-character message */
    const char *text = field(0, "text");
    ck_assert_str_eq(text, "【安全预警】日报：1条预警（红0 橙0 黄1 蓝0），某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某有限公…"
                           "，请登录平台查看。");
    ck_assert_int_eq(chars(text), 70);
    ck_assert_int_eq(field_ll(0, "segments"), 1);
}
END_TEST

/* ---- templates ------------------------------------------------------------- */

START_TEST(template_every_placeholder)
{
    nf = make(0, 480);
    /* 2026-11-22T16:00:30Z is 2026-11-23 00:00:30 in Asia/Shanghai */
    feed(alert("render", "P1", "NH3-01", F, ORANGE, 41.2, D0 + 30 * S, D0 + 30 * S));
    ck_assert_int_eq(n_lines, 1);
    expect(0, aid("render", "P1", "NH3-01", D0 + 30 * S), "+8613900000001", "safety_officer", "orange",
           "太仓某冷链物流有限公司|P1|NH3-01|nh3_ppm|41.2|orange|橙色|涉氨制冷车间氨气浓度超限|城厢镇|2026-11-23 00:00:30",
           "immediate", D0 + 30 * S);
    ck_assert_str_eq(field(0, "template"), "WARN_ALL");
    ck_assert_str_eq(field(0, "params"),
                     "[\"太仓某冷链物流有限公司\",\"P1\",\"NH3-01\",\"nh3_ppm\",\"41.2\",\"orange\",\"橙色\","
                     "\"涉氨制冷车间氨气浓度超限\",\"城厢镇\",\"2026-11-23 00:00:30\"]");
    ck_assert_int_eq(chars(field(0, "text")), 81);
    ck_assert_int_eq(field_ll(0, "segments"), 2);
}
END_TEST

START_TEST(template_fallbacks)
{
    nf = make(0, 480);
    /* built-in template; a whole value prints without a fraction */
    feed(alert("default_tpl", "P1", "X", F, ORANGE, 5, D0 + 8 * H, D0 + 8 * H));
    ck_assert_str_eq(field(0, "text"), "【安全预警】太仓某冷链物流有限公司X默认模板，等级橙色，数值5，时间2026-11-23 08:00:00。");
    ck_assert_int_eq(field_ll(0, "segments"), 1);
    /* region nobody declared: {region_name} is the code */
    feed(alert("render", "P5", "GAS-01", F, YELLOW, 3, D0, D0));
    ck_assert_str_eq(field(1, "text"),
                     "外地某化工有限公司|P5|GAS-01|nh3_ppm|3|yellow|黄色|涉氨制冷车间氨气浓度超限|320999001|2026-11-23 00:00:00");
    /* absence alerts have no value; {metric} is the event they watch */
    struct vg_alert a = alert("absent_rule", "P2", "D-01", F, YELLOW, NAN, D0, D0);
    a.flags = VG_ALERT_F_NOVALUE;
    feed(a);
    ck_assert_str_eq(field(2, "text"), "太仓某铝业有限公司D-01[]dust_cleaning_report");
    ck_assert_int_eq(n_lines, 3);
}
END_TEST

/* Characters, not bytes: ≤70 is one message, then 67 a segment. */
START_TEST(segments_count_characters)
{
    nf = make(0, 480);
    static const int want[] = {1, 2, 2, 3};
    char id[16];
    snprintf(id, sizeof id, "seg%d", seg_lengths[_i]);
    feed(alert(id, "P1", "D1", F, YELLOW, 3, D0, D0));
    ck_assert_int_eq(n_lines, 1);
    ck_assert_int_eq(field_ll(0, "segments"), want[_i]);
    ck_assert_uint_eq(strlen(field(0, "text")), 3 * (size_t)seg_lengths[_i]);
}
END_TEST

/* One event, one message per number: the entry with the highest min_level wins. */
START_TEST(one_message_per_number_per_event)
{
    nf = make(0, 480);
    feed(alert("dedupe", "P1", "D1", F, YELLOW, 3, D0, D0));
    ck_assert_int_eq(n_lines, 2);
    ck_assert_str_eq(field(0, "text"), "low yellow");
    ck_assert_str_eq(field(1, "text"), "p yellow");
    feed(alert("dedupe", "P1", "D1", E, RED, 5, D0, D0 + M));
    ck_assert_int_eq(n_lines, 4);
    expect(2, aid("dedupe", "P1", "D1", D0), "+8613900000001", "safety_officer", "red", "high red", "immediate",
           D0 + M);
    expect(3, aid("dedupe", "P1", "D1", D0), "+8613900000002", "principal", "red", "high red", "immediate",
           D0 + M);
}
END_TEST

/* ---- template errors at file:line:col ---------------------------------------- */

static const struct {
    const char *entry;   /* line 7 of the file */
    int col;
    const char *msg;     /* the message starts with it */
} bad_templates[] = {
    /* the quote is at column 43; the placeholder 18 characters into the value */
    {"      - { to: [safety_officer], template: \"【安全预警】{plant_name}{plant_nme}超限\" }\n", 62,
     "template: unknown placeholder {plant_nme}"},
    {"      - { to: [safety_officer], template: \"ab{plant\" }\n", 46, "template: '{' is not closed"},
    {"      - { to: [safety_officer], template: \"\" }\n", 43, "template: is empty"},
    {"      - { to: [safety_officer], template: \"x\", template_id: \"WARN NH3\" }\n", 61,
     "template_id 'WARN NH3' must be"},
    {"      - { to: [safety_officer], template: \"{time}{time}{time}{time}{time}{time}{time}{time}{time}{time}"
     "{time}{time}{time}{time}{time}{time}{time}{time}{time}{time}{level}\" }\n",
     44 + 120, "template: more than 20 placeholders"},
};

START_TEST(template_rejected_at_position)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "version: 1\n"
             "rules:\n"
             "  - id: bad_tpl\n"
             "    metric: x\n"
             "    grades: [ { level: yellow, when: value > 1 } ]\n"
             "    notify:\n"
             "%s",
             bad_templates[_i].entry);
    const char *path = vgt_write("bad_template.yaml", yaml);
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *bad = NULL;
    ck_assert_int_eq(vg_ruleset_load(&bad, &path, 1, NULL, &d), VG_EINVAL);
    ck_assert_ptr_null(bad);
    ck_assert_int_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].file, path);
    ck_assert_int_eq(d.v[0].line, 7);
    ck_assert_int_eq(d.v[0].col, bad_templates[_i].col);
    ck_assert_msg(!strncmp(d.v[0].msg, bad_templates[_i].msg, strlen(bad_templates[_i].msg)), "message: %s",
                  d.v[0].msg);
    vg_diags_fini(&d);
}
END_TEST

START_TEST(template_check_offsets)
{
    size_t off = 99;
    char why[200];
    ck_assert_int_eq(vg_notify_template_check("【安全预警】{plant_name}{device}", &off, why, sizeof why), VG_OK);
    ck_assert_int_eq(vg_notify_template_check("a}b", &off, why, sizeof why), VG_OK); /* a lone } is text */
    ck_assert_int_eq(vg_notify_template_check("abc{valu}", &off, why, sizeof why), VG_EINVAL);
    ck_assert_uint_eq(off, 3);
    ck_assert_int_eq(vg_notify_template_check("氨{value", &off, why, sizeof why), VG_EINVAL);
    ck_assert_uint_eq(off, 3); /* bytes: 氨 is 3 */
    ck_assert_int_eq(vg_notify_template_check("{{value}}", &off, why, sizeof why), VG_EINVAL);
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(vg_notify_template_check(vg_notify_default_template, &off, why, sizeof why), VG_OK);
    ck_assert_int_eq(vg_notify_template_check(vg_notify_resolve_template, &off, why, sizeof why), VG_OK);
}
END_TEST

/* ---- checkpoint record ------------------------------------------------------- */

/* Records as the store would hold them: name and bytes, the latest per name. */
struct recs {
    char name[96][32];
    char *data[96];
    size_t len[96];
    int n;
};

static int rec_put(void *ctx, const char *name, size_t name_len, const void *data, size_t len)
{
    struct recs *rs = ctx;
    int i = 0;
    while (i < rs->n && (strlen(rs->name[i]) != name_len || memcmp(rs->name[i], name, name_len)))
        i++;
    ck_assert_int_lt(i, 96);
    ck_assert_uint_lt(name_len, 32);
    if (i == rs->n) {
        memcpy(rs->name[i], name, name_len);
        rs->name[i][name_len] = 0;
        rs->data[i] = NULL;
        rs->n++;
    }
    free(rs->data[i]);
    rs->data[i] = NULL; /* len 0: deleted */
    if (len) {
        rs->data[i] = malloc(len);
        memcpy(rs->data[i], data, len);
    }
    rs->len[i] = len;
    return VG_OK;
}

static void recs_free(struct recs *rs)
{
    for (int i = 0; i < rs->n; i++)
        free(rs->data[i]);
    rs->n = 0;
}

static int live_records(const struct recs *rs)
{
    int k = 0;
    for (int i = 0; i < rs->n; i++)
        k += rs->len[i] > 0;
    return k;
}

static struct vg_notifier *cut(struct vg_notifier *n)
{
    struct recs a = {0}, b = {0};
    ck_assert_int_eq(vg_notifier_export_changed(n, NULL, 0, rec_put, &a), VG_OK);
    vg_notifier_destroy(n);
    struct vg_notifier *m = make(1, 480);
    struct vg_error err;
    for (int i = 0; i < a.n; i++)
        if (a.len[i])
            ck_assert_msg(vg_notifier_import_record(m, a.name[i], strlen(a.name[i]), a.data[i], a.len[i], NULL,
                                                    NULL, &err) == VG_OK, "import %s: %s", a.name[i], err.msg);
    /* the restored notifier writes the same records, byte for byte */
    ck_assert_int_eq(vg_notifier_export_changed(m, NULL, 0, rec_put, &b), VG_OK);
    ck_assert_int_eq(live_records(&b), live_records(&a));
    ck_assert_int_ge(live_records(&a), 4); /* plants, numbers and the remembered ack */
    for (int i = 0; i < a.n; i++) {
        if (!a.len[i])
            continue;
        int j = 0;
        while (j < b.n && strcmp(a.name[i], b.name[j]))
            j++;
        ck_assert_msg(j < b.n, "%s was not written again", a.name[i]);
        ck_assert_uint_eq(b.len[j], a.len[i]);
        ck_assert_msg(!memcmp(a.data[i], b.data[j], a.len[i]), "%s differs", a.name[i]);
    }
    recs_free(&a);
    recs_free(&b);
    return m;
}

/* The same input, once straight through and once with a restart at 9:40,
 * with a cap of 1 a day so that digests fill up. */
static int run_story(bool restart, int *mark)
{
    nf = make(1, 480);
    const char *p2 = aid("chain", "P2", "NH3-02", D0 + 9 * H + 30 * M);
    const char *p3 = aid("chain", "P3", "NH3-03", D0 + 9 * H + 55 * M);
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0 + 9 * H, D0 + 9 * H));
    feed(alert("throttled", "P2", "T1", F, YELLOW, 3, D0 + 9 * H, D0 + 9 * H));
    feed(alert("capped", "P1", "C1", F, YELLOW, 3, D0 + 9 * H + 5 * M, D0 + 9 * H + 5 * M)); /* over the cap */
    feed(alert("digested", "P1", "D-01", F, RED, 5, D0 + 9 * H + 6 * M, D0 + 9 * H + 6 * M));
    feed(alert("throttled", "P2", "T1", R, YELLOW, 1, D0 + 9 * H, D0 + 9 * H + 10 * M));
    vg_notifier_ack(nf, p2, 16, "王五", 6, D0 + 9 * H + 10 * M);   /* before its alert */
    feed(alert("chain", "P2", "NH3-02", F, ORANGE, 4, D0 + 9 * H + 30 * M, D0 + 9 * H + 30 * M));
    vg_notifier_ack(nf, p3, 16, "赵六", 6, D0 + 9 * H + 35 * M);   /* its alert comes after the restart */
    advance(D0 + 9 * H + 40 * M);  /* P1's township deadline (9:30) has gone out */
    *mark = n_lines;
    nf = restart ? cut(nf) : nf;
    feed(alert("throttled", "P2", "T1", F, YELLOW, 3, D0 + 9 * H + 50 * M, D0 + 9 * H + 50 * M));
    feed(alert("chain", "P3", "NH3-03", F, ORANGE, 4, D0 + 9 * H + 55 * M, D0 + 9 * H + 55 * M));
    feed(alert("chain", "P1", "NH3-01", E, ORANGE, 4, D0 + 9 * H, D0 + 10 * H));
    feed(alert("throttled", "P2", "T1", E, ORANGE, 4, D0 + 9 * H + 50 * M, D0 + 10 * H + 5 * M));
    feed(alert("capped", "P1", "C2", F, YELLOW, 3, D0 + 10 * H + 10 * M, D0 + 10 * H + 10 * M));
    advance(D0 + DAY + 9 * H);
    feed(alert("chain", "P1", "NH3-01", R, ORANGE, 1, D0 + 9 * H, D0 + DAY + 10 * H));
    return n_lines;
}

START_TEST(export_import_mid_chain)
{
    int mark_a, mark_b;
    int n_a = run_story(false, &mark_a);
    char *a[CAP_MAX];
    for (int i = 0; i < n_a; i++)
        a[i] = strdup(lines[i]);
    vg_notifier_destroy(nf);
    clear_lines();
    int n_b = run_story(true, &mark_b);
    ck_assert_int_eq(mark_a, mark_b);
    ck_assert_int_eq(n_a, n_b);
    for (int i = 0; i < n_a; i++) {
        ck_assert_str_eq(lines[i], a[i]);
        free(a[i]);
    }
    /* worked out by hand. Before the cut: P1 and P2 safety officers at 9:00, P1's two
     * township officers at 9:30 (the rest went over the cap or is acked). */
    ck_assert_int_eq(mark_b, 4);
    ck_assert_str_eq(field(2, "role"), "township_officer");
    ck_assert_int_eq(field_ll(2, "at"), D0 + 9 * H + 30 * M);
    /* After: 9:50 T1 throttled; P3 (acked before the cut) has no safety officer and its
     * chain is cancelled; P1 orange and T1's rise are over the cap; C2 too. At 11:00 P1's
     * county step; at 08:00 the digests, by number. The resolve sends nothing. */
    int k = mark_b;
    ck_assert_int_eq(n_b, k + 4);
    expect(k, aid("chain", "P1", "NH3-01", D0 + 9 * H), "+8613700000001", "county_bureau", "orange", "Corange",
           "immediate", D0 + 11 * H);
    ck_assert_str_eq(field(k + 1, "to"), "+8613800000002");  /* grid: D-01 */
    ck_assert_int_eq(field_ll(k + 1, "count"), 1);
    ck_assert_str_eq(field(k + 2, "to"), "+8613900000001");  /* P1 safety: C1, NH3-01, C2 */
    ck_assert_int_eq(field_ll(k + 2, "count"), 3);
    ck_assert_str_eq(field(k + 2, "text"),
                     "【安全预警】日报：3条预警（红0 橙1 黄2 蓝0），太仓某冷链物流有限公司capped等，请登录平台查看。");
    ck_assert_str_eq(field(k + 3, "to"), "+8613900000003");  /* P2 safety: NH3-02, T1 */
    ck_assert_int_eq(field_ll(k + 3, "count"), 2);
    ck_assert_str_eq(field(k + 3, "level"), "orange");
    for (int i = k + 1; i < k + 4; i++) {
        ck_assert_str_eq(field(i, "mode"), "digest");
        ck_assert_int_eq(field_ll(i, "at"), D0 + DAY + 8 * H);
    }
}
END_TEST

START_TEST(damaged_records_refused)
{
    nf = make(0, 480);
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0, D0));
    feed(alert("digested", "P1", "D-01", F, RED, 5, D0, D0));
    struct recs rs = {0};
    ck_assert_int_eq(vg_notifier_export_changed(nf, NULL, 0, rec_put, &rs), VG_OK);
    int p1 = 0;
    while (p1 < rs.n && strcmp(rs.name[p1], "~np:P1"))
        p1++;
    ck_assert_msg(p1 < rs.n, "no record of plant P1");
    const char *rec = rs.data[p1], *name = rs.name[p1];
    size_t len = rs.len[p1], nl = strlen(name);
    struct vg_notifier *m = make(0, 480);
    struct vg_error err;
    char *bad = malloc(len + 1);
    /* one byte short, one byte over, wrong magic, a later version, a count beyond the record, a bad name */
    memcpy(bad, rec, len);
    ck_assert_int_eq(vg_notifier_import_record(m, name, nl, bad, len - 1, NULL, NULL, &err), VG_EINVAL);
    bad[len] = 0;
    ck_assert_int_eq(vg_notifier_import_record(m, name, nl, bad, len + 1, NULL, NULL, &err), VG_EINVAL);
    bad[0] = 'X';
    ck_assert_int_eq(vg_notifier_import_record(m, name, nl, bad, len, NULL, NULL, &err), VG_EINVAL);
    memcpy(bad, rec, len);
    bad[4] = 9;
    ck_assert_int_eq(vg_notifier_import_record(m, name, nl, bad, len, NULL, NULL, &err), VG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "version"));
    memcpy(bad, rec, len);
    size_t anchor_len = 0; /* header: magic, version, now, next digest (8 each), anchor (8 + bytes) */
    memcpy(&anchor_len, bad + 4 + 24, 1);
    memset(bad + 4 + 32 + anchor_len, 0xff, 8); /* the live-alert count */
    ck_assert_int_eq(vg_notifier_import_record(m, name, nl, bad, len, NULL, NULL, &err), VG_EINVAL);
    ck_assert_int_eq(vg_notifier_import_record(m, name, nl, "", 0, NULL, NULL, &err), VG_EINVAL);
    ck_assert_int_eq(vg_notifier_import_record(m, "~group", 6, rec, len, NULL, NULL, &err), VG_EINVAL);
    /* every truncation is refused, never read past */
    for (size_t cutlen = 0; cutlen < len; cutlen += 7)
        ck_assert_int_eq(vg_notifier_import_record(m, name, nl, rec, cutlen, NULL, NULL, &err), VG_EINVAL);
    /* refused records left m as it was: empty, and it works */
    vg_notifier_destroy(nf);
    nf = m;
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0, D0));
    advance(D0 + 30 * M);
    ck_assert_int_eq(n_lines, 1 + 3);
    ck_assert_int_eq(vg_notifier_import_record(m, name, nl, rec, len, NULL, NULL, &err), VG_OK);
    free(bad);
    recs_free(&rs);
}
END_TEST

/* The owner predicate of an instance that owns the plants listed in ctx ("P1,P3"). */
static bool owns_listed(void *ctx, const char *plant, size_t len)
{
    for (const char *p = ctx; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && !memcmp(p, plant, len))
            return true;
        p += n + (e != NULL);
    }
    return false;
}

/* A notifier that owns @p plants, loaded from the store @p st as after a rebalance. */
static struct vg_notifier *instance(const char *plants, const struct recs *st)
{
    struct vg_notifier *m = make(0, 480);
    vg_notifier_set_owner(m, owns_listed, (void *)plants);
    vg_notifier_claim(m);
    struct vg_error err;
    for (int i = 0; i < st->n; i++)
        if (st->len[i])
            ck_assert_msg(vg_notifier_import_record(m, st->name[i], strlen(st->name[i]), st->data[i], st->len[i],
                                                    NULL, NULL, &err) == VG_OK, "%s: %s", st->name[i], err.msg);
    return m;
}

/*
 * Two plants' chains, checkpointed, then split over two instances (as Kafka
 * partitions are): each instance sends exactly its own plant's escalation
 * steps, and together they send what one notifier sends; the instance that
 * kept both before the split forgets the plant that left.
 */
START_TEST(state_moves_with_its_plant)
{
    nf = make(0, 480);
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0, D0));
    feed(alert("chain", "P2", "NH3-02", F, YELLOW, 3, D0 + M, D0 + M));
    advance(D0 + 10 * M);
    struct recs st = {0};
    ck_assert_int_eq(vg_notifier_export_changed(nf, NULL, 0, rec_put, &st), VG_OK);
    /* the reference: one notifier goes on to 40 min (both township steps) */
    int before = n_lines;
    advance(D0 + 40 * M);
    int ref_n = n_lines - before;
    char *ref[16];
    ck_assert_int_eq(ref_n, 3); /* P1: two township officers (region); P2: its own */
    for (int i = 0; i < ref_n; i++)
        ref[i] = strdup(lines[before + i]);
    vg_notifier_destroy(nf);

    /* instance A keeps only P1 now (a rebalance), B gained P2 from the store */
    clear_lines();
    struct vg_notifier *a = instance("P1,P3", &st), *b = instance("P2,P4", &st);
    nf = a;
    advance(D0 + 40 * M);
    ck_assert_int_eq(n_lines, 2);
    nf = b;
    advance(D0 + 40 * M);
    ck_assert_int_eq(n_lines, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(lines[i], ref[i]);
        free(ref[i]);
    }
    ck_assert_str_eq(field(2, "to"), "+8613900000004");
    /* B writes P2's record, not P1's; A, told it lost P1, forgets it and writes nothing of it */
    struct recs sb = {0};
    ck_assert_int_eq(vg_notifier_export_changed(b, NULL, 0, rec_put, &sb), VG_OK);
    bool p2 = false;
    for (int i = 0; i < sb.n; i++) {
        ck_assert_msg(strcmp(sb.name[i], "~np:P1"), "B wrote P1's record");
        p2 |= !strcmp(sb.name[i], "~np:P2") && sb.len[i] > 0;
    }
    ck_assert(p2);
    /* A loses P1 too: it forgets P1's alert and leaves its record (now B's to write) alone */
    nf = a;
    feed(alert("chain", "P1", "NH3-01", E, ORANGE, 4, D0, D0 + 50 * M)); /* its county step is due at 2 h */
    struct recs sa = {0};
    ck_assert_int_eq(vg_notifier_export_changed(a, NULL, 0, rec_put, &sa), VG_OK);
    vg_notifier_set_owner(a, owns_listed, (void *)"P3");
    vg_notifier_claim(a);
    recs_free(&sa);
    ck_assert_int_eq(vg_notifier_export_changed(a, NULL, 0, rec_put, &sa), VG_OK);
    for (int i = 0; i < sa.n; i++)
        ck_assert_msg(strncmp(sa.name[i], "~np:P1", 6), "A still writes %s (%zu bytes)", sa.name[i], sa.len[i]);
    clear_lines();
    nf = a;
    advance(D0 + 3 * H); /* P1's county step (2 h) would be due here, had A kept it */
    ck_assert_int_eq(n_lines, 0);
    recs_free(&sa);
    vg_notifier_destroy(a);

    /* a notifier that never wrote a record keeps what it still owns after a claim */
    clear_lines();
    nf = make(0, 480);
    vg_notifier_set_owner(nf, owns_listed, (void *)"P1,P2");
    feed(alert("chain", "P1", "NH3-01", F, YELLOW, 3, D0, D0));
    feed(alert("chain", "P2", "NH3-02", F, YELLOW, 3, D0 + M, D0 + M));
    vg_notifier_set_owner(nf, owns_listed, (void *)"P1");
    vg_notifier_claim(nf);
    int fired = n_lines;
    advance(D0 + 40 * M);
    ck_assert_int_eq(n_lines - fired, 2); /* P1's two township officers; P2's step is not ours */
    ck_assert_str_eq(field(fired, "role"), "township_officer");
    vg_notifier_destroy(nf);
    vg_notifier_destroy(b);
    nf = NULL;
    recs_free(&st);
    recs_free(&sb);
}
END_TEST

/* request ids are stable across runs and distinct across requests */
START_TEST(request_ids_deterministic)
{
    int mark;
    int n1 = run_story(false, &mark);
    char *first[CAP_MAX];
    for (int i = 0; i < n1; i++)
        first[i] = strdup(field(i, "request_id"));
    vg_notifier_destroy(nf);
    clear_lines();
    int n2 = run_story(false, &mark);
    ck_assert_int_eq(n1, n2);
    for (int i = 0; i < n1; i++) {
        ck_assert_str_eq(field(i, "request_id"), first[i]);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(first[j], first[i]);
    }
    for (int i = 0; i < n1; i++)
        free(first[i]);
}
END_TEST

START_TEST(options_checked)
{
    struct vg_notify_options bad_minute = {0, 24 * 60}, bad_cap = {-1, 480};
    ck_assert_ptr_null(vg_notifier_create(rs, reg, &bad_minute));
    ck_assert_ptr_null(vg_notifier_create(rs, reg, &bad_cap));
    nf = vg_notifier_create(rs, reg, NULL); /* defaults: no cap, 08:00 */
    ck_assert_ptr_nonnull(nf);
    feed(alert("digested", "P1", "D-01", F, RED, 5, D0, D0));
    advance(D0 + 8 * H);
    ck_assert_int_eq(n_lines, 1);
    ck_assert_int_eq(field_ll(0, "at"), D0 + 8 * H);
}
END_TEST

/* ---- suite ----------------------------------------------------------------- */

static Suite *suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("recipients");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, roles_resolve, 0, VG_ARRAY_LEN(role_cases));
    tcase_add_test(tc, group_alert_recipients_and_values);
    tcase_add_test(tc, one_message_per_number_per_event);
    suite_add_tcase(s, tc);
    tc = tcase_create("when");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, min_level_firing_and_escalation);
    tcase_add_test(tc, throttle_suppresses_and_rise_passes);
    tcase_add_test(tc, on_resolve_only_to_those_told);
    suite_add_tcase(s, tc);
    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, chain_due_at_exact_deadline);
    tcase_add_test(tc, chain_waits_for_level);
    tcase_add_loop_test(tc, chain_cancelled_by_ack, 0, VG_ARRAY_LEN(ack_cases));
    tcase_add_test(tc, chain_cancelled_by_resolve);
    tcase_add_test(tc, ack_before_alert);
    suite_add_tcase(s, tc);
    tc = tcase_create("digest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, daily_cap_folds_into_digest);
    tcase_add_test(tc, digest_mode_at_local_minute);
    tcase_add_test(tc, digest_minute_across_utc_day);
    tcase_add_test(tc, capped_chain_step_joins_digest_of_same_minute);
    tcase_add_test(tc, options_checked);
    suite_add_tcase(s, tc);
    tc = tcase_create("template");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, template_every_placeholder);
    tcase_add_test(tc, template_fallbacks);
    tcase_add_loop_test(tc, segments_count_characters, 0, VG_ARRAY_LEN(seg_lengths));
    tcase_add_loop_test(tc, template_rejected_at_position, 0, VG_ARRAY_LEN(bad_templates));
    tcase_add_test(tc, template_check_offsets);
    suite_add_tcase(s, tc);
    tc = tcase_create("record");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, export_import_mid_chain);
    tcase_add_test(tc, damaged_records_refused);
    tcase_add_test(tc, state_moves_with_its_plant);
    tcase_add_test(tc, request_ids_deterministic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
