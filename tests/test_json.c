/*
 * test_json.c: the input contract (engine/json.h): every message shape of
 * DESIGN.md "Data contracts", the fields it normalises them to, and the exact
 * dead-letter reason of every way a line can be wrong (docs/semantics.md).
 * Also vg_json_escape, which writes rejected bytes into dead letters.
 * Owns: vg_json_parse and vg_json_escape, one line at a time.
 * Must never: go through the pipeline or files (test_e2e does), depend on the
 * wording of a detail beyond a stable key phrase, or leak the parser.
 * DESIGN: one parser per test, created and destroyed by a fixture; rows are
 * exact bytes (embedded NULs included) and expected values worked out by hand
 * (epoch ms checked with `date -u -d … +%s`).
 */
#include "vgtest.h"

#include "engine/json.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string literal and its length (without the NUL). */
#define L(x) x, sizeof(x) - 1

#define ID64 "0123456789012345678901234567890123456789012345678901234567890123"
#define ZH21 "中中中中中中中中中中中中中中中中中中中中中" /* 63 bytes */

static struct vg_json_parser *jp;

static void setup(void)
{
    jp = vg_json_parser_create();
    ck_assert_ptr_nonnull(jp);
}

static void teardown(void)
{
    vg_json_parser_destroy(jp);
    jp = NULL;
}

/* A slice equals a C string: same length, same bytes. */
#define ck_assert_slice(got, want, what)                                                          \
    ck_assert_msg((got).n == strlen(want) && ((got).n == 0 || memcmp((got).p, want, (got).n) == 0), \
                  "%s: '%.*s' (%u bytes), want '%s'", what, (int)(got).n,                         \
                  (got).p ? (got).p : "", (unsigned)(got).n, want)

/* ---- well-formed lines: every field of every output message -------------- */

struct want {
    uint8_t kind, quality;
    const char *plant, *device, *name;
    double value;
    vg_ts ts;
    const char *alert_id, *by;
    vg_ts from, until;
};

#define SAMPLE(pl, dev, met, v, t, q) {VG_MSG_SAMPLE, q, pl, dev, met, v, t, "", "", 0, 0}
#define EVENT(pl, dev, ev, t) {VG_MSG_EVENT, VG_Q_GOOD, pl, dev, ev, 0, t, "", "", 0, 0}

struct good_case {
    const char *line;
    size_t len;
    unsigned n;
    struct want w[3];
};

static const struct good_case good[] = {
    /* DESIGN.md's sample */
    {L("{\"plant\":\"P320585001\",\"device\":\"NH3-01\",\"metric\":\"nh3_ppm\",\"value\":31.2,"
       "\"ts\":1763884800000}"),
     1, {SAMPLE("P320585001", "NH3-01", "nh3_ppm", 31.2, 1763884800000, VG_Q_GOOD)}},
    /* DESIGN.md's plant batch */
    {L("{\"plant\":\"P320585001\",\"ts\":1763884800000,\"points\":[{\"device\":\"NH3-01\","
       "\"metric\":\"nh3_ppm\",\"value\":31.2}]}"),
     1, {SAMPLE("P320585001", "NH3-01", "nh3_ppm", 31.2, 1763884800000, VG_Q_GOOD)}},
    /* DESIGN.md's report event, ts in RFC 3339 */
    {L("{\"plant\":\"P320585001\",\"device\":\"D-01\",\"event\":\"dust_cleaning_report\","
       "\"ts\":\"2026-11-23T08:00:00+08:00\"}"),
     1, {EVENT("P320585001", "D-01", "dust_cleaning_report", 1795392000000)}},
    /* ack */
    {L("{\"type\":\"ack\",\"alert_id\":\"a1f3c9e07b2d4e15\",\"by\":\"13900000001\","
       "\"ts\":1763884860000}"),
     1, {{VG_MSG_ACK, VG_Q_GOOD, "", "", "", 0, 1763884860000, "a1f3c9e07b2d4e15", "13900000001", 0, 0}}},
    /* ack: "by" is optional (docs/semantics.md) */
    {L("{\"ts\":\"2026-11-23T00:00:00Z\",\"alert_id\":\"x\",\"type\":\"ack\"}"),
     1, {{VG_MSG_ACK, VG_Q_GOOD, "", "", "", 0, 1795392000000, "x", "", 0, 0}}},
    /* maintenance in RFC 3339: ts defaults to from */
    {L("{\"type\":\"maintenance\",\"plant\":\"P320585001\",\"device\":\"NH3-01\","
       "\"from\":\"2026-11-23T09:00:00+08:00\",\"until\":\"2026-11-23T11:00:00+08:00\"}"),
     1, {{VG_MSG_MAINTENANCE, VG_Q_GOOD, "P320585001", "NH3-01", "", 0, 1795395600000, "", "",
          1795395600000, 1795402800000}}},
    /* maintenance in epoch ms with its own ts; by and reason are informational (not kept) */
    {L("{\"type\":\"maintenance\",\"plant\":\"P320585001\",\"device\":\"CO-02\",\"from\":1763884800000,"
       "\"until\":1763892000000,\"by\":\"李四\",\"reason\":\"探头标定\",\"ts\":1763884700000}"),
     1, {{VG_MSG_MAINTENANCE, VG_Q_GOOD, "P320585001", "CO-02", "", 0, 1763884700000, "", "",
          1763884800000, 1763892000000}}},
    /* maintenance: "device" is optional (docs/semantics.md); from == until is allowed */
    {L("{\"type\":\"maintenance\",\"plant\":\"P1\",\"from\":5,\"until\":5}"),
     1, {{VG_MSG_MAINTENANCE, VG_Q_GOOD, "P1", "", "", 0, 5, "", "", 5, 5}}},
    /* batch quality is the default; a point's own ts and quality override the batch's */
    {L("{\"plant\":\"P320585002\",\"ts\":1763884805000,\"quality\":\"M\",\"seq\":7,\"points\":["
       "{\"device\":\"F-01\",\"metric\":\"cooling_water_flow_m3h\",\"value\":12.5,\"unit\":\"m3/h\"},"
       "{\"device\":\"F-01\",\"metric\":\"cooling_water_temp_c\",\"value\":31.0,"
       "\"ts\":1763884804000,\"quality\":\"N\"}]}"),
     2, {SAMPLE("P320585002", "F-01", "cooling_water_flow_m3h", 12.5, 1763884805000, VG_Q_MAINTENANCE),
         SAMPLE("P320585002", "F-01", "cooling_water_temp_c", 31, 1763884804000, VG_Q_GOOD)}},
    /* batch ts in RFC 3339, an RFC 3339 override, and a report event as a point */
    {L("{\"plant\":\"P1\",\"ts\":\"2026-11-23T08:00:00+08:00\",\"points\":["
       "{\"device\":\"A\",\"metric\":\"t\",\"value\":-0.5e1},"
       "{\"device\":\"B\",\"metric\":\"p\",\"value\":1e2,\"ts\":\"2026-11-22T19:00:00.250-05:00\","
       "\"quality\":\"uncertain\"},"
       "{\"device\":\"D-01\",\"event\":\"dust_cleaning_report\"}]}"),
     3, {SAMPLE("P1", "A", "t", -5, 1795392000000, VG_Q_GOOD),
         SAMPLE("P1", "B", "p", 100, 1795392000250, VG_Q_UNCERTAIN),
         EVENT("P1", "D-01", "dust_cleaning_report", 1795392000000)}},
    /* escapes: \u4e2d, a surrogate pair, \" \\ \/ */
    {L("{\"plant\":\"P\\u4e2d\",\"device\":\"\\ud83d\\ude00-1\",\"metric\":\"a\\\"b\\\\c\\/d\","
       "\"value\":0,\"ts\":0}"),
     1, {SAMPLE("P中", "\xf0\x9f\x98\x80-1", "a\"b\\c/d", 0, 0, VG_Q_GOOD)}},
    {L("{\"plant\":\"\\u0050\\u0031\",\"device\":\"\\u00e9\\u4E2D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     1, {SAMPLE("P1", "é中", "m", 1, 1, VG_Q_GOOD)}},
    /* raw UTF-8, RFC 3339 with a space, a fraction and a negative offset, T flag */
    {L("{\"plant\":\"P320585001\",\"device\":\"SD-0042\",\"metric\":\"smoke_alarm\",\"value\":1,"
       "\"ts\":\"2026-11-23 08:00:05.5-05:00\",\"quality\":\"T\"}"),
     1, {SAMPLE("P320585001", "SD-0042", "smoke_alarm", 1, 1795438805500, VG_Q_OVERRANGE)}},
    {L("{\"plant\":\"P320585003\",\"device\":\"门卫室烟感\",\"metric\":\"smoke_alarm\",\"value\":0,"
       "\"ts\":\"2026-11-23t00:00:00.250z\",\"recv_ts\":1763884801234}"),
     1, {SAMPLE("P320585003", "门卫室烟感", "smoke_alarm", 0, 1795392000250, VG_Q_GOOD)}},
    /* unknown fields of any valid JSON are ignored; unit and seq are informational */
    {L("{\"plant\":\"P\",\"x\":{\"y\":[1,-2.5e3,true,false,null,\"s\",{}],\"z\":[]},\"device\":\"D\","
       "\"metric\":\"m\",\"unit\":\"℃\",\"seq\":18231,\"value\":63,\"ts\":1763884800000,\"n\":null}"),
     1, {SAMPLE("P", "D", "m", 63, 1763884800000, VG_Q_GOOD)}},
    /* whitespace between tokens, and around the object */
    {L(" \t{ \"plant\" : \"P\" ,\n\"device\":\"D\" , \"metric\" :\"m\",\"value\" : 2 , \"ts\" : 3 } \r\n"),
     1, {SAMPLE("P", "D", "m", 2, 3, VG_Q_GOOD)}},
    /* a report event may carry a value (docs/semantics.md) */
    {L("{\"plant\":\"P\",\"device\":\"D\",\"event\":\"e\",\"value\":7,\"ts\":1}"),
     1, {{VG_MSG_EVENT, VG_Q_GOOD, "P", "D", "e", 7, 1, "", "", 0, 0}}},
    /* limits: 64-byte ids (21 Chinese characters are 63 bytes), the last ts of 9999 */
    {L("{\"plant\":\"" ID64 "\",\"device\":\"" ZH21 "\",\"metric\":\"" ID64 "\",\"value\":1,"
       "\"ts\":253402300799999}"),
     1, {SAMPLE(ID64, ZH21, ID64, 1, 253402300799999, VG_Q_GOOD)}},
};

static void check_want(const struct vg_sample *got, const struct want *w, unsigned k)
{
    char what[32];
    snprintf(what, sizeof what, "[%u] plant", k);
    ck_assert_slice(got->plant, w->plant, what);
    snprintf(what, sizeof what, "[%u] device", k);
    ck_assert_slice(got->device, w->device, what);
    snprintf(what, sizeof what, "[%u] name", k);
    ck_assert_slice(got->name, w->name, what);
    snprintf(what, sizeof what, "[%u] alert_id", k);
    ck_assert_slice(got->alert_id, w->alert_id, what);
    snprintf(what, sizeof what, "[%u] by", k);
    ck_assert_slice(got->by, w->by, what);
    ck_assert_int_eq(got->kind, w->kind);
    ck_assert_int_eq(got->quality, w->quality);
    ck_assert_msg(got->value == w->value, "[%u] value %.17g, want %.17g", k, got->value, w->value);
    ck_assert_int_eq(got->ts, w->ts);
    ck_assert_int_eq(got->from, w->from);
    ck_assert_int_eq(got->until, w->until);
}

START_TEST(parses_shapes)
{
    const struct good_case *c = &good[_i];
    const struct vg_sample *out = NULL;
    unsigned n = 99;
    struct vg_reject rej = {NULL, ""};
    int rc = vg_json_parse(jp, c->line, c->len, &out, &n, &rej);
    ck_assert_msg(rc == VG_OK, "%s: %s (%s)", c->line, rej.reason, rej.detail);
    ck_assert_uint_eq(n, c->n);
    for (unsigned k = 0; k < n; k++)
        check_want(&out[k], &c->w[k], k);
}
END_TEST

/* ---- quality: every flag maps to its enum value --------------------------- */

struct quality_case {
    const char *flag;
    enum vg_quality q;
    bool triggers; /* vg_quality_triggers: only good, N and S cross thresholds */
};

static const struct quality_case qualities[] = {
    {"good", VG_Q_GOOD, true},         {"bad", VG_Q_BAD, false},
    {"uncertain", VG_Q_UNCERTAIN, false}, {"N", VG_Q_GOOD, true},
    {"S", VG_Q_MANUAL, true},          {"M", VG_Q_MAINTENANCE, false},
    {"C", VG_Q_CALIBRATION, false},    {"D", VG_Q_FAULT, false},
    {"B", VG_Q_COMMS, false},          {"F", VG_Q_STOPPED, false},
    {"T", VG_Q_OVERRANGE, false},
};

START_TEST(maps_quality)
{
    const struct quality_case *c = &qualities[_i];
    char line[160], batch[200];
    int len = snprintf(line, sizeof line,
                       "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1,"
                       "\"quality\":\"%s\"}", c->flag);
    const struct vg_sample *out;
    unsigned n;
    struct vg_reject rej = {NULL, ""};
    ck_assert_int_eq(vg_json_parse(jp, line, (size_t)len, &out, &n, &rej), VG_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0].quality, c->q);
    ck_assert_int_eq(vg_quality_triggers(out[0].quality), c->triggers);
    /* in a batch, as the batch's default and as a point's own */
    len = snprintf(batch, sizeof batch,
                   "{\"plant\":\"P\",\"ts\":1,\"quality\":\"%s\",\"points\":[{\"device\":\"D\","
                   "\"metric\":\"m\",\"value\":1},{\"device\":\"E\",\"metric\":\"m\",\"value\":2,"
                   "\"quality\":\"bad\"}]}", c->flag);
    ck_assert_int_eq(vg_json_parse(jp, batch, (size_t)len, &out, &n, &rej), VG_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(out[0].quality, c->q);
    ck_assert_int_eq(out[1].quality, VG_Q_BAD);
}
END_TEST

START_TEST(absent_quality_is_good)
{
    static const char line[] = "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}";
    const struct vg_sample *out;
    unsigned n;
    struct vg_reject rej;
    ck_assert_int_eq(vg_json_parse(jp, L(line), &out, &n, &rej), VG_OK);
    ck_assert_int_eq(out[0].quality, VG_Q_GOOD);
}
END_TEST

/* ---- numbers: exact, correctly rounded doubles --------------------------- */

struct number_case {
    const char *text;
    double value;
};

static const struct number_case numbers[] = {
    {"31.2", 31.2},
    {"0", 0},
    {"-0", -0.0},
    {"0.1", 0.1},
    {"4.35", 4.35},
    {"-0.5e1", -5},
    {"1E2", 100},
    {"2.5e+1", 25},
    {"1e-3", 0.001},
    {"0.000001", 1e-6},
    {"123456789012345", 123456789012345.0},
    {"9007199254740993", 9007199254740992.0},       /* 2^53 + 1 rounds to even */
    {"123456789012345678901234567890", 1.2345678901234568e29},
    {"1.7976931348623157e308", DBL_MAX},
    {"5e-324", 4.9406564584124654e-324},            /* the smallest subnormal */
    {"1e-400", 0},                                   /* underflows: finite */
};

START_TEST(converts_numbers)
{
    const struct number_case *c = &numbers[_i];
    char line[200];
    int len = snprintf(line, sizeof line,
                       "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":%s,\"ts\":1}",
                       c->text);
    const struct vg_sample *out;
    unsigned n;
    struct vg_reject rej = {NULL, ""};
    int rc = vg_json_parse(jp, line, (size_t)len, &out, &n, &rej);
    ck_assert_msg(rc == VG_OK, "%s: %s", c->text, rej.reason);
    ck_assert_msg(out[0].value == c->value, "%s: %.17g, want %.17g", c->text, out[0].value,
                  c->value);
}
END_TEST

/* ---- rejected lines: the exact reason, nothing returned ------------------- */

struct bad_case {
    const char *line;
    size_t len;
    const char *reason;
    const char *phrase; /* a stable part of the detail ("" if none is promised) */
};

#define SMP(rest) "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\"," rest "}"

static const struct bad_case bad[] = {
    /* malformed: not JSON, or more than one JSON value */
    {L("{\"plant\":\"P320585001\",\"device\":\"NH3-01\",\"metric\":\"nh3_ppm\",\"value\":31.2,"
       "\"ts\":1763884800000"), "malformed", ""},
    {L("{\"plant\":\"P3205"), "malformed", ""},
    {L("{"), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1,")), "malformed", ""},                /* trailing comma */
    {L("{\"plant\":\"P\",,\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "malformed", ""},
    {L("{\"plant\" \"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "malformed", ""},
    {L(SMP("\"value\" 1,\"ts\":1")), "malformed", ""},                 /* missing colon */
    {L(SMP("\"value\"::1,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1") "{\"a\":1}"), "malformed", ""},     /* two objects */
    {L(SMP("\"value\":1,\"ts\":1") " {\"a\":1}"), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1") " x"), "malformed", ""},            /* trailing garbage */
    {L(SMP("\"value\":1,\"ts\":1") "]"), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1") ","), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1") " 1"), "malformed", ""},
    {L(SMP("\"value\":NaN,\"ts\":1")), "malformed", ""},               /* not JSON literals */
    {L(SMP("\"value\":nan,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":Infinity,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":-Infinity,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":01,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":1.,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":.5,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":+1,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":-,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":0x10,\"ts\":1")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1x")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":0123")), "malformed", ""},
    {L("{plant:\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "malformed", ""},
    {L("{'plant':'P','device':'D','metric':'m','value':1,'ts':1}"), "malformed", ""},
    {L("{\"plant\":\"P\",\"plant\":\"Q\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "malformed", "duplicate key \"plant\""},
    {L(SMP("\"value\":1,\"value\":2,\"ts\":1")), "malformed", "duplicate key \"value\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"device\":\"D\",\"device\":\"E\",\"metric\":\"m\","
       "\"value\":1}]}"), "malformed", "points[0].duplicate key"},
    {L(SMP("\"value\":1,\"ts\":1,\"extra\":falsehood")), "malformed", ""}, /* unknown fields too */
    {L(SMP("\"value\":1,\"ts\":1,\"extra\":tru")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1,\"extra\":[1,,2]")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1,\"extra\":[1 2]")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1,\"extra\":{\"a\":}")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1,\"until\":1x")), "malformed", ""},   /* known, unread here */
    {L("{\"type\":\"ack\",\"alert_id\":\"a\",\"ts\":1,\"value\":nope}"), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1,\"extra\":\"\\x\"")), "malformed", ""}, /* bad escapes */
    {L(SMP("\"value\":1,\"ts\":1,\"extra\":\"\\u12G4\"")), "malformed", ""},
    {L(SMP("\"value\":1,\"ts\":1") "\0"), "malformed", ""},           /* NUL bytes */
    {L("{\"plant\":\"P\0\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "malformed", ""},
    {L(""), "malformed", ""},
    {L("   "), "malformed", ""},
    {L("{\"plant\":\"P\",\"ts\":1,\"metric\":\"m\",\"points\":[{\"device\":\"D\",\"metric\":\"m\","
       "\"value\":1}]}"), "malformed", ""},                            /* batch with a metric */
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"plant\":\"Q\",\"device\":\"D\",\"metric\":\"m\","
       "\"value\":1}]}"), "malformed", "points[0]."},
    /* not_object: valid JSON, but not an object */
    {L("[]"), "not_object", ""},
    {L("[{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}]"), "not_object", ""},
    {L("\"str\""), "not_object", ""},
    {L("42"), "not_object", ""},
    {L(" 42 "), "not_object", ""},
    {L("-1.5e3"), "not_object", ""},
    {L("true"), "not_object", ""},
    {L("null"), "not_object", ""},
    /* missing_field: each required field of each shape */
    {L("{\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "missing_field", "\"plant\""},
    {L("{\"plant\":\"P\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "missing_field", "\"device\""},
    {L("{\"plant\":\"P\",\"device\":\"D\",\"value\":1,\"ts\":1}"), "missing_field", "\"metric\""},
    {L("{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"ts\":1}"), "missing_field", "\"value\""},
    {L("{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1}"), "missing_field", "\"ts\""},
    {L("{\"plant\":\"P\",\"event\":\"e\",\"ts\":1}"), "missing_field", "\"device\""},
    {L("{\"plant\":\"P\",\"device\":\"D\",\"event\":\"e\"}"), "missing_field", "\"ts\""},
    {L("{}"), "missing_field", "\"plant\""},
    {L("{\"plant\":\"P\",\"points\":[{\"device\":\"D\",\"metric\":\"m\",\"value\":1}]}"),
     "missing_field", "\"ts\""},
    {L("{\"ts\":1,\"points\":[{\"device\":\"D\",\"metric\":\"m\",\"value\":1}]}"), "missing_field",
     "\"plant\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"metric\":\"m\",\"value\":1}]}"), "missing_field",
     "points[0].\"device\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"device\":\"D\",\"metric\":\"m\",\"value\":1},"
       "{\"device\":\"D\",\"value\":1}]}"), "missing_field", "points[1].\"metric\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"device\":\"D\",\"metric\":\"m\"}]}"),
     "missing_field", "points[0].\"value\""},
    {L("{\"type\":\"ack\",\"by\":\"13900000001\",\"ts\":1}"), "missing_field", "\"alert_id\""},
    {L("{\"type\":\"ack\",\"alert_id\":\"a\"}"), "missing_field", "\"ts\""},
    {L("{\"type\":\"maintenance\",\"device\":\"D\",\"from\":1,\"until\":2}"), "missing_field",
     "\"plant\""},
    {L("{\"type\":\"maintenance\",\"plant\":\"P\",\"until\":2}"), "missing_field", "\"from\""},
    {L("{\"type\":\"maintenance\",\"plant\":\"P\",\"from\":1}"), "missing_field", "\"until\""},
    /* wrong_type: a known field with the wrong JSON type */
    {L(SMP("\"value\":\"31.2\",\"ts\":1")), "wrong_type", "\"value\""},
    {L(SMP("\"value\":true,\"ts\":1")), "wrong_type", "\"value\""},
    {L(SMP("\"value\":false,\"ts\":1")), "wrong_type", "\"value\""},
    {L(SMP("\"value\":null,\"ts\":1")), "wrong_type", "\"value\""},
    {L(SMP("\"value\":[1],\"ts\":1")), "wrong_type", "\"value\""},
    {L(SMP("\"value\":{},\"ts\":1")), "wrong_type", "\"value\""},
    {L("{\"plant\":5,\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "wrong_type",
     "\"plant\""},
    {L("{\"plant\":\"P\",\"device\":[\"D\"],\"metric\":\"m\",\"value\":1,\"ts\":1}"), "wrong_type",
     "\"device\""},
    {L("{\"plant\":\"P\",\"device\":\"D\",\"metric\":null,\"value\":1,\"ts\":1}"), "wrong_type",
     "\"metric\""},
    {L("{\"plant\":\"P\",\"device\":\"D\",\"event\":1,\"ts\":1}"), "wrong_type", "\"event\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":{\"device\":\"D\"}}"), "wrong_type", "\"points\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":\"D\"}"), "wrong_type", "\"points\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[1]}"), "wrong_type", "points[0]"},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"device\":\"D\",\"metric\":\"m\",\"value\":1},"
       "{\"device\":\"D\",\"metric\":\"m\",\"value\":\"2\"}]}"), "wrong_type", "points[1].\"value\""},
    {L(SMP("\"value\":1,\"ts\":1,\"unit\":5")), "wrong_type", "\"unit\""},
    {L(SMP("\"value\":1,\"ts\":1,\"seq\":\"7\"")), "wrong_type", "\"seq\""},
    {L(SMP("\"value\":1,\"ts\":1,\"seq\":1.5")), "wrong_type", "\"seq\""},
    {L("{\"type\":5,\"plant\":\"P\"}"), "wrong_type", "\"type\""},
    {L("{\"type\":\"ack\",\"alert_id\":7,\"ts\":1}"), "wrong_type", "\"alert_id\""},
    /* non_finite: a number a double cannot hold */
    {L(SMP("\"value\":1e999,\"ts\":1")), "non_finite", "\"value\""},
    {L(SMP("\"value\":-1e999,\"ts\":1")), "non_finite", "\"value\""},
    {L(SMP("\"value\":1.8e308,\"ts\":1")), "non_finite", "\"value\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"device\":\"D\",\"metric\":\"m\",\"value\":1e400}]}"),
     "non_finite", "points[0].\"value\""},
    /* bad_ts: neither epoch ms (digits, 1970..9999) nor RFC 3339 with an offset */
    {L(SMP("\"value\":1,\"ts\":\"2026-11-23T08:00:00\"")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":\"2023-02-29T00:00:00Z\"")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":\"2026-13-01T00:00:00Z\"")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":\"yesterday\"")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":\"1763884800000\"")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":-1")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":1763884800000.5")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":1763884800000.0")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":1.7638848e12")), "bad_ts", "\"ts\""},
    {L(SMP("\"value\":1,\"ts\":253402300800000")), "bad_ts", "\"ts\""}, /* 10000-01-01 */
    {L(SMP("\"value\":1,\"ts\":true")), "bad_ts", "\"ts\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[{\"device\":\"D\",\"metric\":\"m\",\"value\":1,"
       "\"ts\":\"2026-11-23\"}]}"), "bad_ts", "points[0].\"ts\""},
    {L("{\"type\":\"maintenance\",\"plant\":\"P\",\"from\":\"soon\",\"until\":2}"), "bad_ts",
     "\"from\""},
    /* bad_value: the right type, a value that cannot be used */
    {L("{\"plant\":\"\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "bad_value",
     "\"plant\""},
    {L("{\"plant\":\"P" ID64 "\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "bad_value", "\"plant\""},                                          /* 65 bytes */
    {L("{\"plant\":\"P\",\"device\":\"" ZH21 "中\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "bad_value", "\"device\""},                                         /* 66 bytes */
    {L("{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m" ID64 "\",\"value\":1,\"ts\":1}"),
     "bad_value", "\"metric\""},
    {L("{\"plant\":\"P\",\"device\":\"\xff\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "bad_value",
     "\"device\""},                                                      /* invalid UTF-8 */
    {L("{\"plant\":\"P\",\"device\":\"\xe4\xb8\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "bad_value",
     "\"device\""},                                                      /* cut sequence */
    {L("{\"plant\":\"P\",\"device\":\"\xc0\xaf\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "bad_value",
     "\"device\""},                                                      /* overlong */
    {L("{\"plant\":\"P\",\"device\":\"\xed\xa0\x80\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "bad_value", "\"device\""},                                         /* UTF-8 surrogate */
    {L("{\"plant\":\"P\",\"device\":\"\xf4\x90\x80\x80\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "bad_value", "\"device\""},                                         /* > U+10FFFF */
    {L("{\"plant\":\"P\",\"device\":\"\\ud800\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "bad_value",
     "\"device\""},                                                      /* lone surrogate */
    {L("{\"plant\":\"P\",\"device\":\"\\udc00\\ud800\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "bad_value", "\"device\""},
    {L("{\"plant\":\"P\",\"device\":\"N\\u0000\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "bad_value", "\"device\""},
    {L("{\"plant\":\"P\",\"device\":\"a\x01\",\"metric\":\"m\",\"value\":1,\"ts\":1}"), "bad_value",
     "\"device\""},                                                      /* raw control byte */
    {L(SMP("\"value\":1,\"ts\":1,\"quality\":\"X\"")), "bad_value", "\"quality\""},
    {L(SMP("\"value\":1,\"ts\":1,\"quality\":\"n\"")), "bad_value", "\"quality\""},
    {L(SMP("\"value\":1,\"ts\":1,\"quality\":\"Good\"")), "bad_value", "\"quality\""},
    {L(SMP("\"value\":1,\"ts\":1,\"quality\":\"good \"")), "bad_value", "\"quality\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"quality\":\"?\",\"points\":[{\"device\":\"D\",\"metric\":\"m\","
       "\"value\":1}]}"), "bad_value", "\"quality\""},
    {L("{\"type\":\"maintenance\",\"plant\":\"P\",\"from\":2,\"until\":1}"), "bad_value", "\"until\""},
    {L("{\"plant\":\"P\",\"ts\":1,\"points\":[]}"), "bad_value", "\"points\""},
    /* unknown_type */
    {L("{\"type\":\"sample\",\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}"),
     "unknown_type", "sample"},
    {L("{\"type\":\"heartbeat\",\"plant\":\"P\",\"ts\":1}"), "unknown_type", "heartbeat"},
    {L("{\"type\":\"ACK\",\"alert_id\":\"a\",\"ts\":1}"), "unknown_type", "ACK"},
};

START_TEST(rejects_lines)
{
    const struct bad_case *c = &bad[_i];
    const struct vg_sample *out = NULL;
    unsigned n = 99;
    struct vg_reject rej = {NULL, ""};
    int rc = vg_json_parse(jp, c->line, c->len, &out, &n, &rej);
    ck_assert_msg(rc == VG_EINVAL, "row %d accepted: %.*s", _i, (int)c->len, c->line);
    ck_assert_ptr_nonnull(rej.reason);
    ck_assert_msg(strcmp(rej.reason, c->reason) == 0, "row %d: reason %s (%s), want %s: %.*s", _i,
                  rej.reason, rej.detail, c->reason, (int)c->len, c->line);
    ck_assert_msg(strstr(rej.detail, c->phrase) != NULL, "row %d: detail '%s' lacks '%s'", _i,
                  rej.detail, c->phrase);
    ck_assert_uint_gt(strlen(rej.detail), 0);
    ck_assert_uint_eq(n, 0); /* a line is taken whole or rejected whole */
}
END_TEST

/* ---- size limits: points per batch, bytes per line ------------------------ */

/* A batch of @p points points D0..Dk with value k; caller frees. */
static char *batch_of(int points, size_t *len)
{
    size_t cap = 64 + (size_t)points * 64;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "{\"plant\":\"P\",\"ts\":1763884800000,\"points\":[");
    for (int k = 0; k < points; k++)
        o += (size_t)snprintf(s + o, cap - o, "%s{\"device\":\"D%d\",\"metric\":\"m\",\"value\":%d}",
                              k ? "," : "", k, k);
    o += (size_t)snprintf(s + o, cap - o, "]}");
    *len = o;
    return s;
}

START_TEST(takes_1024_points)
{
    size_t len;
    char *line = batch_of(VG_POINTS_MAX, &len);
    const struct vg_sample *out;
    unsigned n = 0;
    struct vg_reject rej = {NULL, ""};
    int rc = vg_json_parse(jp, line, len, &out, &n, &rej);
    ck_assert_msg(rc == VG_OK, "%s (%s)", rej.reason, rej.detail);
    ck_assert_uint_eq(n, 1024);
    for (unsigned k = 0; k < n; k++) {
        char dev[16];
        snprintf(dev, sizeof dev, "D%u", k);
        ck_assert_slice(out[k].device, dev, "device");
        ck_assert_slice(out[k].plant, "P", "plant");
        ck_assert_slice(out[k].name, "m", "metric");
        ck_assert_int_eq(out[k].kind, VG_MSG_SAMPLE);
        ck_assert_double_eq(out[k].value, k);
        ck_assert_int_eq(out[k].ts, 1763884800000);
    }
    free(line);
}
END_TEST

START_TEST(rejects_1025_points)
{
    size_t len;
    char *line = batch_of(VG_POINTS_MAX + 1, &len);
    const struct vg_sample *out;
    unsigned n = 99;
    struct vg_reject rej = {NULL, ""};
    ck_assert_int_eq(vg_json_parse(jp, line, len, &out, &n, &rej), VG_EINVAL);
    ck_assert_str_eq(rej.reason, "too_many_points");
    ck_assert_uint_eq(n, 0);
    free(line);
}
END_TEST

/* A valid sample padded by an unknown field to exactly @p len bytes; caller frees. */
static char *sample_of_length(size_t len)
{
    static const char head[] = "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,"
                               "\"ts\":1,\"pad\":\"";
    char *s = malloc(len + 1);
    memcpy(s, head, sizeof head - 1);
    memset(s + sizeof head - 1, 'x', len - (sizeof head - 1) - 2);
    memcpy(s + len - 2, "\"}", 3);
    return s;
}

START_TEST(takes_a_line_of_line_max)
{
    char *line = sample_of_length(VG_LINE_MAX);
    ck_assert_uint_eq(strlen(line), VG_LINE_MAX);
    const struct vg_sample *out;
    unsigned n = 0;
    struct vg_reject rej = {NULL, ""};
    ck_assert_int_eq(vg_json_parse(jp, line, VG_LINE_MAX, &out, &n, &rej), VG_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_slice(out[0].device, "D", "device");
    free(line);
}
END_TEST

START_TEST(rejects_oversized_line)
{
    char *line = sample_of_length(VG_LINE_MAX + 1);
    const struct vg_sample *out;
    unsigned n = 99;
    struct vg_reject rej = {NULL, ""};
    ck_assert_int_eq(vg_json_parse(jp, line, VG_LINE_MAX + 1, &out, &n, &rej), VG_EINVAL);
    ck_assert_str_eq(rej.reason, "oversized");
    ck_assert_uint_eq(n, 0);
    free(line);
}
END_TEST

/*
 * Strings without escapes borrow from the line; escaped ones live in the
 * parser and do not leak from one line into the next.
 */
START_TEST(borrows_or_decodes_strings)
{
    static const char a[] = "{\"plant\":\"P\\u4e2d\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":1}";
    static const char b[] = "{\"plant\":\"Q\",\"device\":\"E\\\"\",\"metric\":\"m\",\"value\":2,\"ts\":2}";
    const struct vg_sample *out;
    unsigned n;
    struct vg_reject rej;
    ck_assert_int_eq(vg_json_parse(jp, L(a), &out, &n, &rej), VG_OK);
    ck_assert_slice(out[0].plant, "P中", "plant");
    ck_assert_msg(out[0].plant.p < a || out[0].plant.p >= a + sizeof a, "decoded into the line?");
    ck_assert_msg(out[0].device.p >= a && out[0].device.p + out[0].device.n <= a + sizeof a - 1,
                  "a plain string is borrowed from the line");
    ck_assert_int_eq(vg_json_parse(jp, L(b), &out, &n, &rej), VG_OK);
    ck_assert_slice(out[0].plant, "Q", "plant");
    ck_assert_slice(out[0].device, "E\"", "device");
    ck_assert_double_eq(out[0].value, 2);
    ck_assert_int_eq(out[0].ts, 2);
}
END_TEST

/* ---- vg_json_escape ------------------------------------------------------- */

struct escape_case {
    const char *in;
    size_t n;
    const char *out;
};

static const struct escape_case escapes[] = {
    {L(""), ""},
    {L("plain text/1"), "plain text/1"},
    {L("a\"b"), "a\\\"b"},
    {L("a\\b"), "a\\\\b"},
    {L("\n\r\t"), "\\n\\r\\t"},
    {L("\x01\x1f"), "\\u0001\\u001f"},
    {L("\b\f"), "\\u0008\\u000c"},
    {L("\0"), "\\u0000"},
    {L("\x7f"), "\x7f"},                                 /* DEL is valid JSON */
    {L("中文"), "中文"},                                  /* valid UTF-8 is kept */
    {L("é😀"), "é😀"},
    {L("\xef\xbf\xbf"), "\xef\xbf\xbf"},                 /* U+FFFF */
    {L("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf"},         /* U+10FFFF */
    {L("\xff"), "\\u00ff"},                              /* each invalid byte as \u00XX */
    {L("a\xe4\xb8"), "a\\u00e4\\u00b8"},                 /* cut sequence */
    {L("\xe4\xb8" "a"), "\\u00e4\\u00b8a"},
    {L("\xc0\xaf"), "\\u00c0\\u00af"},                   /* overlong */
    {L("\xe0\x80\xaf"), "\\u00e0\\u0080\\u00af"},
    {L("\xed\xa0\x80"), "\\u00ed\\u00a0\\u0080"},        /* surrogate */
    {L("\xf4\x90\x80\x80"), "\\u00f4\\u0090\\u0080\\u0080"}, /* > U+10FFFF */
    {L("\xf5\x80\x80\x80"), "\\u00f5\\u0080\\u0080\\u0080"},
    {L("\x80"), "\\u0080"},                              /* stray continuation */
};

START_TEST(escapes_strings)
{
    const struct escape_case *c = &escapes[_i];
    char buf[256];
    memset(buf, '#', sizeof buf);
    int n = vg_json_escape(buf, sizeof buf, c->in, c->n);
    ck_assert_int_eq(n, (int)strlen(c->out));
    ck_assert_msg(memcmp(buf, c->out, (size_t)n) == 0, "row %d: '%.*s', want '%s'", _i, n, buf,
                  c->out);
}
END_TEST

START_TEST(escape_refuses_a_small_buffer)
{
    char buf[4];
    ck_assert_int_eq(vg_json_escape(buf, sizeof buf, L("abcdef")), -1);
}
END_TEST

/* What vg_json_escape writes, the parser reads back as the same bytes. */
static const char *const round_trip[] = {"a\"b\\c", "中文-😀", "x/y", "é", "D\x7f"};

START_TEST(escape_round_trips)
{
    const char *id = round_trip[_i];
    char esc[128], line[256];
    int n = vg_json_escape(esc, sizeof esc, id, strlen(id));
    ck_assert_int_ge(n, 0);
    int len = snprintf(line, sizeof line,
                       "{\"plant\":\"P\",\"device\":\"%.*s\",\"metric\":\"m\",\"value\":1,\"ts\":1}",
                       n, esc);
    const struct vg_sample *out;
    unsigned k;
    struct vg_reject rej = {NULL, ""};
    ck_assert_int_eq(vg_json_parse(jp, line, (size_t)len, &out, &k, &rej), VG_OK);
    ck_assert_slice(out[0].device, id, "device");
}
END_TEST

/* ---- the plant named by the transport (an MQTT topic level) --------------- */

static int parse_as(const char *plant, const char *line, const struct vg_sample **out, unsigned *n,
                    struct vg_reject *rej)
{
    vg_json_parser_plant(jp, plant, plant ? strlen(plant) : 0);
    int rc = vg_json_parse(jp, line, strlen(line), out, n, rej);
    vg_json_parser_plant(jp, NULL, 0);
    return rc;
}

START_TEST(takes_the_plant_from_the_topic)
{
    const struct vg_sample *out;
    unsigned n;
    struct vg_reject rej = {NULL, ""};
    /* no "plant" in the payload: the topic's */
    ck_assert_int_eq(parse_as("P9", "{\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":5}", &out, &n,
                              &rej), VG_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_slice(out[0].plant, "P9", "plant");
    /* a batch: every point */
    ck_assert_int_eq(parse_as("P9", "{\"ts\":5,\"points\":[{\"device\":\"A\",\"metric\":\"m\",\"value\":1},"
                              "{\"device\":\"B\",\"metric\":\"m\",\"value\":2}]}", &out, &n, &rej), VG_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_slice(out[1].plant, "P9", "plant of the second point");
    /* the same plant in both: fine */
    ck_assert_int_eq(parse_as("P9", "{\"plant\":\"P9\",\"device\":\"D\",\"event\":\"e\",\"ts\":5}", &out,
                              &n, &rej), VG_OK);
    ck_assert_slice(out[0].plant, "P9", "plant");
    /* maintenance takes it too */
    ck_assert_int_eq(parse_as("P9", "{\"type\":\"maintenance\",\"from\":1,\"until\":2}", &out, &n, &rej),
                     VG_OK);
    ck_assert_slice(out[0].plant, "P9", "maintenance plant");
    /* a different plant: rejected whole, with both named */
    ck_assert_int_eq(parse_as("P9", "{\"plant\":\"P1\",\"device\":\"D\",\"metric\":\"m\",\"value\":1,"
                              "\"ts\":5}", &out, &n, &rej), VG_EINVAL);
    ck_assert_str_eq(rej.reason, "plant_mismatch");
    ck_assert_msg(strstr(rej.detail, "P1") && strstr(rej.detail, "P9"), "detail: %s", rej.detail);
    /* and with no topic plant, "plant" is required again */
    ck_assert_int_eq(parse_as(NULL, "{\"device\":\"D\",\"metric\":\"m\",\"value\":1,\"ts\":5}", &out, &n,
                              &rej), VG_EINVAL);
    ck_assert_str_eq(rej.reason, "missing_field");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, parses_shapes, 0, VG_ARRAY_LEN(good));
    tcase_add_loop_test(tc, maps_quality, 0, VG_ARRAY_LEN(qualities));
    tcase_add_test(tc, absent_quality_is_good);
    tcase_add_loop_test(tc, converts_numbers, 0, VG_ARRAY_LEN(numbers));
    tcase_add_loop_test(tc, rejects_lines, 0, VG_ARRAY_LEN(bad));
    tcase_add_test(tc, takes_1024_points);
    tcase_add_test(tc, rejects_1025_points);
    tcase_add_test(tc, takes_a_line_of_line_max);
    tcase_add_test(tc, rejects_oversized_line);
    tcase_add_test(tc, borrows_or_decodes_strings);
    tcase_add_loop_test(tc, escapes_strings, 0, VG_ARRAY_LEN(escapes));
    tcase_add_test(tc, escape_refuses_a_small_buffer);
    tcase_add_loop_test(tc, escape_round_trips, 0, VG_ARRAY_LEN(round_trip));
    tcase_add_test(tc, takes_the_plant_from_the_topic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
