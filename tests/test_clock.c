/*
 * test_clock.c: the textual forms of time (engine/clock.h): durations, RFC 3339
 * timestamps, command-line TS values, and their formatting.
 * Owns: the duration grammar and its limits, RFC 3339 parsing (offsets, Z,
 * fractions, t and space separators, calendar checks), vg_ts_parse,
 * format → parse round trips, and vg_duration_format.
 * Must never: read the wall clock or depend on the process time zone; every
 * expected instant is a constant worked out independently of the engine
 * (checked with `date -u -d … +%s`), never one copied from its output.
 */
#include "vgtest.h"

#include "engine/clock.h"

#include <string.h>

/* A string literal and its length (without the NUL). */
#define S(x) x, sizeof(x) - 1

/* ---- durations ---------------------------------------------------------- */

struct dur_case {
    const char *s;
    size_t n;
    vg_ts ms;
};

static const struct dur_case dur_ok[] = {
    {S("30s"), 30000},
    {S("1h30m"), 5400000},
    {S("250ms"), 250},
    {S("0"), 0},
    {S("3d"), 259200000},
    {S("0s"), 0},
    {S("0ms"), 0},
    {S("1m"), 60000},
    {S("24h"), 86400000},
    {S("7d"), 604800000},
    {S("90m"), 5400000},
    {S("007s"), 7000},
    {S("1m1ms"), 60001},                 /* "m" then "ms": minutes, then milliseconds */
    {S("1d2h3m4s5ms"), 93784005},        /* 86400000 + 7200000 + 180000 + 4000 + 5 */
    {S("36600d"), 3162240000000},        /* the limit: 100 years of 366 days */
    {S("3162240000000ms"), 3162240000000},
    {"30sx", 3, 30000},                  /* only n bytes are read */
    {"1h30m", 2, 3600000},
};

START_TEST(parses_durations)
{
    const struct dur_case *c = &dur_ok[_i];
    vg_ts ms = -1;
    const char *why = NULL;
    ck_assert_int_eq(vg_duration_parse(c->s, c->n, &ms, &why), VG_OK);
    ck_assert_msg(ms == c->ms, "'%.*s': %lld, want %lld", (int)c->n, c->s, (long long)ms,
                  (long long)c->ms);
    ck_assert_ptr_null(why);
}
END_TEST

struct dur_error_case {
    const char *s;
    size_t n;
    const char *phrase;
};

static const struct dur_error_case dur_bad[] = {
    {S(""), "empty duration"},
    {S("30"), "missing duration unit"},
    {S("1h30"), "missing duration unit"},
    {S("00"), "missing duration unit"},
    {S("30x"), "unknown duration unit"},
    {S("30S"), "unknown duration unit"},
    {S("1.5h"), "unknown duration unit"},
    {S("-5s"), "a duration is a number followed by"},
    {S("s"), "a duration is a number followed by"},
    {S(" 30s"), "a duration is a number followed by"},
    {S("30s "), "a duration is a number followed by"},
    {S("1h 30m"), "a duration is a number followed by"},
    {S("36601d"), "too large"},
    {S("36600d1ms"), "too large"},
    {S("3162240000001ms"), "too large"},
    {S("9999999999999d"), "too large"},          /* v * 86400000 would overflow int64 */
    {S("9999999999999h9999999999999h"), "too large"},
    {S("99999999999999999999s"), "too large"},   /* more digits than int64 holds */
};

START_TEST(rejects_durations)
{
    const struct dur_error_case *c = &dur_bad[_i];
    vg_ts ms = 0;
    const char *why = NULL;
    ck_assert_int_eq(vg_duration_parse(c->s, c->n, &ms, &why), VG_EINVAL);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, c->phrase) != NULL, "'%s': '%s' lacks '%s'", c->s, why, c->phrase);
    /* the reason is optional */
    ck_assert_int_eq(vg_duration_parse(c->s, c->n, &ms, NULL), VG_EINVAL);
}
END_TEST

/* ---- RFC 3339 ------------------------------------------------------------ */

struct ts_case {
    const char *s;
    size_t n;
    vg_ts ms;
};

static const struct ts_case rfc_ok[] = {
    {S("2026-11-23T08:00:00+08:00"), 1795392000000},
    {S("2026-11-23T00:00:00Z"), 1795392000000},
    {S("2026-11-23T00:00:00z"), 1795392000000},
    {S("2026-11-23t08:00:00+08:00"), 1795392000000},
    {S("2026-11-23 08:00:00+08:00"), 1795392000000},
    {S("2026-11-22T19:00:00-05:00"), 1795392000000},
    {S("2026-11-23T00:00:00-00:00"), 1795392000000},
    {S("2026-11-23T08:00:00+05:45"), 1795400100000},  /* 02:15Z */
    {S("2026-11-23T00:00:00.250Z"), 1795392000250},
    {S("2026-11-23T00:00:00.5Z"), 1795392000500},
    {S("2026-11-23T00:00:00.05Z"), 1795392000050},
    {S("2026-11-23T00:00:00.123456Z"), 1795392000123}, /* kept to the millisecond */
    {S("2026-11-23T08:00:00.999+08:00"), 1795392000999},
    {S("2026-11-23 08:00:05.5-05:00"), 1795438805500},
    {S("2024-02-29T12:00:00Z"), 1709208000000},         /* leap day */
    {S("2000-02-29T00:00:00Z"), 951782400000},          /* divisible by 400: leap */
    {S("2028-02-29T23:59:59-05:00"), 1835499599000},
    {S("2026-03-01T00:00:00+08:00"), 1772294400000},    /* the day before is Feb 28 in UTC */
    {S("1970-01-01T00:00:00Z"), 0},
    {S("1970-01-01T08:00:00+08:00"), 0},
    {S("1969-12-31T19:00:00-05:00"), 0},
    {S("1999-12-31T23:59:59Z"), 946684799000},
    {S("2000-01-01T00:00:00Z"), 946684800000},
    {S("2038-01-19T03:14:08Z"), 2147483648000},         /* past 32-bit seconds */
    {S("2100-03-01T00:00:00Z"), 4107542400000},
    {S("9999-12-31T23:59:59.999Z"), 253402300799999},
    {S("2025-12-31T23:59:60Z"), 1767225599000},         /* leap second: held at :59 */
    {"2026-11-23T00:00:00Zjunk", 20, 1795392000000},    /* only n bytes are read */
};

START_TEST(parses_rfc3339)
{
    const struct ts_case *c = &rfc_ok[_i];
    vg_ts ms = -1;
    ck_assert_int_eq(vg_rfc3339_parse(c->s, c->n, &ms), VG_OK);
    ck_assert_msg(ms == c->ms, "'%.*s': %lld, want %lld", (int)c->n, c->s, (long long)ms,
                  (long long)c->ms);
}
END_TEST

static const char *const rfc_bad[] = {
    "",
    "2026-11-23",
    "2026-11-23T08:00:00",          /* no offset: local time is ambiguous */
    "2026-11-23T08:00:00.250",
    "2026-11-23T08:00",
    "2023-02-29T00:00:00Z",         /* not a leap year */
    "1900-02-29T00:00:00Z",         /* divisible by 100, not by 400 */
    "2026-04-31T00:00:00Z",
    "2026-06-31T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-00T00:00:00Z",
    "2026-11-32T00:00:00Z",
    "2026-00-01T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-23T24:00:00Z",
    "2026-11-23T08:60:00Z",
    "2026-11-23T08:00:61Z",
    "2026-11-23T08:00:00+0800",     /* the colon is required */
    "2026-11-23T08:00:00+08",
    "2026-11-23T08:00:00+24:00",
    "2026-11-23T08:00:00+08:60",
    "2026-11-23T08:00:00.Z",        /* a dot needs digits */
    "2026-11-23T08:00:00Z ",
    "2026-11-23T08:00:00+08:00x",
    " 2026-11-23T08:00:00Z",
    "2026-11-23X08:00:00Z",
    "2026/11/23T08:00:00Z",
    "2026-11-23T8:00:00Z",
    "26-11-23T08:00:00Z",
    "2026-1-23T08:00:00Z",
    "2026-11-23T08:00:00UTC",
    "1795392000000",
};

START_TEST(rejects_rfc3339)
{
    const char *s = rfc_bad[_i];
    vg_ts ms = 12345;
    ck_assert_msg(vg_rfc3339_parse(s, strlen(s), &ms) == VG_EINVAL, "'%s' parsed", s);
}
END_TEST

/* ---- command-line TS: epoch ms digits or RFC 3339 ------------------------- */

static const struct ts_case ts_ok[] = {
    {S("1763884800000"), 1763884800000},
    {S("0"), 0},
    {S("1"), 1},
    {S("253402300799999"), 253402300799999},
    {S("2026-11-23T08:00:00+08:00"), 1795392000000},
    {S("2026-11-23T00:00:00.250Z"), 1795392000250},
};

START_TEST(parses_ts)
{
    const struct ts_case *c = &ts_ok[_i];
    vg_ts ms = -1;
    ck_assert_int_eq(vg_ts_parse(c->s, &ms), VG_OK);
    ck_assert_msg(ms == c->ms, "'%s': %lld", c->s, (long long)ms);
}
END_TEST

static const char *const ts_bad[] = {
    "",
    "-5",
    "+5",
    "12ab",
    "1763884800000 ",
    " 1763884800000",
    "1.5",
    "1e3",
    "99999999999999999999",        /* beyond int64: never wraps */
    "2026-11-23T08:00:00",
    "2023-02-29T00:00:00Z",
};

START_TEST(rejects_ts)
{
    vg_ts ms = 0;
    ck_assert_msg(vg_ts_parse(ts_bad[_i], &ms) == VG_EINVAL, "'%s' parsed", ts_bad[_i]);
}
END_TEST

/* ---- formatting ---------------------------------------------------------- */

struct fmt_case {
    vg_ts ms;
    int offset_min;
    const char *text;
};

static const struct fmt_case fmt_cases[] = {
    {1795392000000, 480, "2026-11-23T08:00:00+08:00"},
    {1795392000000, 0, "2026-11-23T00:00:00Z"},
    {1795392000000, -300, "2026-11-22T19:00:00-05:00"},
    {1795392000000, 345, "2026-11-23T05:45:00+05:45"},
    {1795392000250, 0, "2026-11-23T00:00:00.250Z"},
    {1795392000005, 480, "2026-11-23T08:00:00.005+08:00"},
    {0, 0, "1970-01-01T00:00:00Z"},
    {0, -300, "1969-12-31T19:00:00-05:00"},
    {1, 0, "1970-01-01T00:00:00.001Z"},
    {-1, 0, "1969-12-31T23:59:59.999Z"},
    {1709208000000, 480, "2024-02-29T20:00:00+08:00"},
    {1772294399999, 480, "2026-02-28T23:59:59.999+08:00"},
    {1835499599000, -300, "2028-02-29T23:59:59-05:00"},
    {253402300799999, 0, "9999-12-31T23:59:59.999Z"},
};

START_TEST(formats_rfc3339)
{
    const struct fmt_case *c = &fmt_cases[_i];
    char buf[64];
    int n = vg_rfc3339_format(c->ms, c->offset_min, buf, sizeof buf);
    ck_assert_str_eq(buf, c->text);
    ck_assert_int_eq(n, (int)strlen(c->text));
}
END_TEST

static const vg_ts trip_instants[] = {
    0, 1, 999, 1000, -1, 946684799999, 951782400000, 1709208000000, 1767225599999,
    1795392000000, 1795392000250, 1835499599000, 253402214400000, /* 9999-12-31T00:00Z */
};
static const int trip_offsets[] = {0, 480, -300};
static const char *const trip_suffix[] = {"Z", "+08:00", "-05:00"};

/* Every instant × offset: format, then parse back to the same instant. */
START_TEST(round_trips)
{
    vg_ts ms = trip_instants[_i / 3];
    int k = _i % 3;
    char buf[64];
    int n = vg_rfc3339_format(ms, trip_offsets[k], buf, sizeof buf);
    ck_assert_int_eq(n, (int)strlen(buf));
    size_t sl = strlen(trip_suffix[k]);
    ck_assert_str_eq(buf + n - sl, trip_suffix[k]);
    vg_ts back = 42;
    ck_assert_int_eq(vg_rfc3339_parse(buf, (size_t)n, &back), VG_OK);
    ck_assert_msg(back == ms, "%s: %lld, want %lld", buf, (long long)back, (long long)ms);
    ck_assert_int_eq(vg_ts_parse(buf, &back), VG_OK);
    ck_assert_msg(back == ms, "vg_ts_parse %s", buf);
}
END_TEST

struct dfmt_case {
    vg_ts ms;
    const char *text;
};

static const struct dfmt_case dfmt_cases[] = {
    {0, "0s"},
    {1, "1ms"},
    {250, "250ms"},
    {1000, "1s"},
    {30000, "30s"},
    {60000, "1m"},
    {90000, "1m30s"},
    {5400000, "1h30m"},
    {86400000, "1d"},
    {259200000, "3d"},
    {86400001, "1d1ms"},
    {93784005, "1d2h3m4s5ms"},
    {3162240000000, "36600d"},
};

/* Shortest exact form, and it parses back to the same duration. */
START_TEST(formats_durations)
{
    const struct dfmt_case *c = &dfmt_cases[_i];
    char buf[64];
    int n = vg_duration_format(c->ms, buf, sizeof buf);
    ck_assert_str_eq(buf, c->text);
    ck_assert_int_eq(n, (int)strlen(c->text));
    vg_ts back = -1;
    ck_assert_int_eq(vg_duration_parse(buf, (size_t)n, &back, NULL), VG_OK);
    ck_assert_int_eq(back, c->ms);
}
END_TEST

START_TEST(formats_negative_duration_as_zero)
{
    char buf[16];
    ck_assert_int_eq(vg_duration_format(-5, buf, sizeof buf), 2);
    ck_assert_str_eq(buf, "0s");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");
    tcase_add_loop_test(tc, parses_durations, 0, VG_ARRAY_LEN(dur_ok));
    tcase_add_loop_test(tc, rejects_durations, 0, VG_ARRAY_LEN(dur_bad));
    tcase_add_loop_test(tc, parses_rfc3339, 0, VG_ARRAY_LEN(rfc_ok));
    tcase_add_loop_test(tc, rejects_rfc3339, 0, VG_ARRAY_LEN(rfc_bad));
    tcase_add_loop_test(tc, parses_ts, 0, VG_ARRAY_LEN(ts_ok));
    tcase_add_loop_test(tc, rejects_ts, 0, VG_ARRAY_LEN(ts_bad));
    tcase_add_loop_test(tc, formats_rfc3339, 0, VG_ARRAY_LEN(fmt_cases));
    tcase_add_loop_test(tc, round_trips, 0, VG_ARRAY_LEN(trip_instants) * VG_ARRAY_LEN(trip_offsets));
    tcase_add_loop_test(tc, formats_durations, 0, VG_ARRAY_LEN(dfmt_cases));
    tcase_add_test(tc, formats_negative_duration_as_zero);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
