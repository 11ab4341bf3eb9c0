/*
 * test_uri.c: the endpoint URI grammar every adapter shares (engine/uri.c).
 * Owns: tables of URIs and what they parse to — userinfo (an '@', '/' or
 * '?' in a password, percent escapes), IPv6 hosts, host lists, paths with
 * MQTT's '+' and '#', options (repeated, typed, unknown) — and of bad URIs
 * with what their messages must say and must never show (a password).
 * Must never: open a connection; depend on any adapter.
 */
#include "vgtest.h"

#include "engine/uri.h"

#include <stdlib.h>
#include <string.h>

/* ---- URIs that parse -------------------------------------------------------------- */

static const struct {
    const char *uri;
    const char *scheme, *user, *password, *hosts, *host;
    int port;
    const char *path;
    const char *opt_key, *opt_value; /* one option to look up, or NULL */
} good[] = {
    {"mqtt://h:1883/plants/+/telemetry/#", "mqtt", NULL, NULL, "h:1883", "h", 1883, "plants/+/telemetry/#",
     NULL, NULL},
    {"redis://127.0.0.1:6379/alerts", "redis", NULL, NULL, "127.0.0.1:6379", "127.0.0.1", 6379, "alerts",
     NULL, NULL},
    {"mqtt://h", "mqtt", NULL, NULL, "h", "h", 0, "", NULL, NULL},
    {"mqtt://h/", "mqtt", NULL, NULL, "h", "h", 0, "", NULL, NULL},
    /* userinfo */
    {"redis://:s3cret@h:6379/a", "redis", NULL, "s3cret", "h:6379", "h", 6379, "a", NULL, NULL},
    {"redis://vigil:s3cret@h:6379", "redis", "vigil", "s3cret", "h:6379", "h", 6379, "", NULL, NULL},
    {"redis://user@h", "redis", "user", NULL, "h", "h", 0, "", NULL, NULL},
    {"redis://:@h", "redis", NULL, "", "h", "h", 0, "", NULL, NULL},
    {"redis://u:p@ss@h:1/s", "redis", "u", "p@ss", "h:1", "h", 1, "s", NULL, NULL},
    {"redis://:p%40ss%25%3A@h", "redis", NULL, "p@ss%:", "h", "h", 0, "", NULL, NULL},
    {"redis://us%65r:p%2Fw@h", "redis", "user", "p/w", "h", "h", 0, "", NULL, NULL},
    {"redis://u:a:b@h", "redis", "u", "a:b", "h", "h", 0, "", NULL, NULL},
    /* a raw '/', '@' or '?' in the password when the other reading has no valid host */
    {"redis://:pa/ss@h:6379", "redis", NULL, "pa/ss", "h:6379", "h", 6379, "", NULL, NULL},
    {"redis://:p@/x@h:6379/s", "redis", NULL, "p@/x", "h:6379", "h", 6379, "s", NULL, NULL},
    {"redis://:pa?ss@h:1/s?db=2", "redis", NULL, "pa?ss", "h:1", "h", 1, "s", "db", "2"},
    {"redis://u:pa/ss@h", "redis", "u", "pa/ss", "h", "h", 0, "", NULL, NULL},
    /* an '@' in the path or an option value is not userinfo */
    {"mqtt://h/site@x/+", "mqtt", NULL, NULL, "h", "h", 0, "site@x/+", NULL, NULL},
    {"mqtt://u:pw@h/t?client_id=me@x", "mqtt", "u", "pw", "h", "h", 0, "t", "client_id", "me@x"},
    {"redis://:p@ss/w@h", "redis", NULL, "p", "ss", "ss", 0, "w@h", NULL, NULL}, /* documented */
    /* IPv6 */
    {"redis://[::1]:6379/s", "redis", NULL, NULL, "[::1]:6379", "::1", 6379, "s", NULL, NULL},
    {"redis://[::1]/s", "redis", NULL, NULL, "[::1]", "::1", 0, "s", NULL, NULL},
    {"redis://:pw@[fe80::1%25eth0]:7000", "redis", NULL, "pw", "[fe80::1%25eth0]:7000", "fe80::1%25eth0", 7000,
     "", NULL, NULL},
    /* host lists: the first host is host/port, the list stays as written */
    {"kafka://a:1,b:2/topic?group=g", "kafka", NULL, NULL, "a:1,b:2", "a", 1, "topic", "group", "g"},
    {"kafka://[::1]:9092,b:9093/t", "kafka", NULL, NULL, "[::1]:9092,b:9093", "::1", 9092, "t", NULL, NULL},
    /* paths: percent-decoded, '+' and '#' as written */
    {"redis://h/a%2Fb%20c", "redis", NULL, NULL, "h", "h", 0, "a/b c", NULL, NULL},
    {"mqtt://h/a+b/#", "mqtt", NULL, NULL, "h", "h", 0, "a+b/#", NULL, NULL},
    {"mqtt://h/%23literal", "mqtt", NULL, NULL, "h", "h", 0, "#literal", NULL, NULL},
    /* options: the last of a repeated one wins; values decoded; empty segments skipped */
    {"redis://h/s?x=1&x=2", "redis", NULL, NULL, "h", "h", 0, "s", "x", "2"},
    {"redis://h/s?&&y=%41%26b&", "redis", NULL, NULL, "h", "h", 0, "s", "y", "A&b"},
    {"redis://h/s?e=", "redis", NULL, NULL, "h", "h", 0, "s", "e", ""},
    {"redis://h/s?a%20b=c", "redis", NULL, NULL, "h", "h", 0, "s", "a b", "c"},
};

static void str_or_null_eq(const char *got, const char *want, const char *what, const char *uri)
{
    if (!want)
        ck_assert_msg(got == NULL, "%s: %s is '%s', expected none", uri, what, got);
    else
        ck_assert_msg(got && !strcmp(got, want), "%s: %s is '%s', expected '%s'", uri, what,
                      got ? got : "(none)", want);
}

START_TEST(good_uris_parse_into_their_parts)
{
    struct vg_uri u;
    struct vg_error err = {0};
    const char *s = good[_i].uri;
    ck_assert_msg(vg_uri_parse(s, "--test", &u, &err) == VG_OK, "%s: %s", s, err.msg);
    ck_assert_str_eq(u.scheme, good[_i].scheme);
    str_or_null_eq(u.user, good[_i].user, "user", s);
    str_or_null_eq(u.password, good[_i].password, "password", s);
    str_or_null_eq(u.hosts, good[_i].hosts, "hosts", s);
    str_or_null_eq(u.host, good[_i].host, "host", s);
    ck_assert_msg(u.port == good[_i].port, "%s: port %d", s, u.port);
    str_or_null_eq(u.path, good[_i].path, "path", s);
    if (good[_i].opt_key)
        str_or_null_eq(vg_uri_opt(&u, good[_i].opt_key), good[_i].opt_value, good[_i].opt_key, s);
    ck_assert_str_eq(u.what, "--test");
    vg_uri_fini(&u);
    ck_assert_ptr_null(u.password);
    ck_assert_ptr_null(u.opts);
}
END_TEST

/* ---- URIs that do not ------------------------------------------------------------- */

static const struct {
    const char *uri, *says;
} bad[] = {
    {"127.0.0.1:6379", "'127.0.0.1:6379' has no scheme:// in front"},
    {"hunter2@127.0.0.1:6379", "'***@127.0.0.1:6379' has no scheme://"},
    {"://h", "has no scheme://"},
    {"averyveryverylongscheme://h", "has no scheme://"},
    {"redis://", "no host in 'redis://'"},
    {"redis:///s", "no host"},
    {"redis://:hunter2@", "no host in 'redis://***@'"},
    {"redis://:hunter2@:6379/s", "no host in 'redis://***@:6379/s'"},
    {"redis://h:0", "the port must be 1-65535, not '0'"},
    {"redis://h:65536/s", "the port must be 1-65535, not '65536'"},
    {"redis://h:63a9", "the port must be 1-65535, not '63a9'"},
    {"redis://h:", "the port must be 1-65535, not ''"},
    {"redis://h:-1", "the port must be 1-65535, not '-1'"},
    {"redis://h:99999999999", "the port must be 1-65535, not '99999999999'"},
    {"kafka://a:x,b:2/t", "the port must be 1-65535, not 'x'"},
    {"redis://[::1:6379", "unclosed '[' in host '[::1:6379'"},
    {"redis://[::1]x:6379", "junk after ']' in host '[::1]x:6379'"},
    {"redis://[]:6379", "no host"},
    {"redis://h/%zz", "a % escape in the path '%zz' is not %XX"},
    {"redis://h/ab%4", "a % escape in the path"},
    {"redis://:hunter2%4@h", "a % escape in the password is not %XX"},
    {"redis://us%zzer:hunter2@h", "a % escape in the user name 'us%zzer' is not %XX"},
    {"redis://h/s?a", "option 'a' must be KEY=VALUE"},
    {"redis://h/s?x=1&=2", "option '=2' must be KEY=VALUE"},
    {"redis://h/s?password=hunter2%zz", "a % escape in option 'password' is not %XX"},
};

START_TEST(bad_uris_say_what_is_wrong_and_never_show_a_password)
{
    struct vg_uri u;
    struct vg_error err = {0};
    ck_assert_int_eq(vg_uri_parse(bad[_i].uri, "--alerts", &u, &err), VG_EUSAGE);
    ck_assert_int_eq(err.code, VG_EUSAGE);
    ck_assert_msg(!strncmp(err.msg, "bad --alerts URI: ", 18), "%s: %s", bad[_i].uri, err.msg);
    ck_assert_msg(strstr(err.msg, bad[_i].says), "%s: %s", bad[_i].uri, err.msg);
    ck_assert_msg(!strstr(err.msg, "hunter2"), "password shown: %s", err.msg);
    /* finalised already: fini again is harmless */
    ck_assert_ptr_null(u.host);
    ck_assert_ptr_null(u.opts);
    vg_uri_fini(&u);
}
END_TEST

START_TEST(what_defaults_to_endpoint)
{
    struct vg_uri u;
    struct vg_error err = {0};
    ck_assert_int_eq(vg_uri_parse("redis://", NULL, &u, &err), VG_EUSAGE);
    ck_assert_str_eq(err.msg, "bad endpoint URI: no host in 'redis://'");
}
END_TEST

/* ---- options ----------------------------------------------------------------------- */

static struct vg_uri parsed(const char *s)
{
    struct vg_uri u;
    struct vg_error err = {0};
    ck_assert_msg(vg_uri_parse(s, "--alerts", &u, &err) == VG_OK, "%s: %s", s, err.msg);
    return u;
}

START_TEST(repeated_options_keep_every_value_in_order)
{
    struct vg_uri u = parsed("kafka://h/t?header=a&x=1&header=b%3Dc&header=");
    const char *v[4];
    ck_assert_uint_eq(vg_uri_opts(&u, "header", v, 4), 3);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "b=c");
    ck_assert_str_eq(v[2], "");
    ck_assert_uint_eq(vg_uri_opts(&u, "header", v, 1), 1); /* no more than cap */
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(vg_uri_opt(&u, "header"), "");
    ck_assert_ptr_null(vg_uri_opt(&u, "nothing"));
    struct vg_error err = {0};
    ck_assert_int_eq(vg_uri_finish(&u, "header", &err), VG_EUSAGE);
    ck_assert_str_eq(err.msg, "bad --alerts URI: unknown option 'x' for kafka:// (it has: header)");
    ck_assert_str_eq(vg_uri_opt(&u, "x"), "1");
    ck_assert_int_eq(vg_uri_finish(&u, "header, x", &err), VG_OK);
    vg_uri_fini(&u);
}
END_TEST

static const struct {
    const char *uri, *known, *says;
} unknown[] = {
    {"redis://h/s?colour=red", "db, maxlen, batch", "unknown option 'colour' for redis:// (it has: db, maxlen, batch)"},
    {"file://h/p?x=1", "", "unknown option 'x' for file:// (it has: none)"},
    {"file://h/p?x=1", NULL, "unknown option 'x' for file:// (it has: none)"},
    {"redis://h/s?db=1&Db=2", "db", "unknown option 'Db' for redis://"},
};

START_TEST(an_unknown_option_is_named_with_the_known_list)
{
    struct vg_uri u = parsed(unknown[_i].uri);
    (void)vg_uri_opt(&u, "db");
    struct vg_error err = {0};
    ck_assert_int_eq(vg_uri_finish(&u, unknown[_i].known, &err), VG_EUSAGE);
    ck_assert_msg(strstr(err.msg, unknown[_i].says), "%s", err.msg);
    vg_uri_fini(&u);
}
END_TEST

/* typed options: the query, the call, and the value or message expected */
enum kind { LONG, DURATION, BOOL };

static const struct {
    const char *query;
    enum kind kind;
    int rc;
    long long value;   /* the default 7 stays when absent */
    const char *says;
} typed[] = {
    {"n=42", LONG, VG_OK, 42, NULL},
    {"", LONG, VG_OK, 7, NULL},
    {"n=0", LONG, VG_OK, 0, NULL},
    {"n=100", LONG, VG_OK, 100, NULL},
    {"n=101", LONG, VG_EUSAGE, 7, "option n=101 must be a whole number from 0 to 100"},
    {"n=-1", LONG, VG_EUSAGE, 7, "option n=-1 must be a whole number from 0 to 100"},
    {"n=4x", LONG, VG_EUSAGE, 7, "option n=4x must be"},
    {"n=", LONG, VG_EUSAGE, 7, "option n= must be"},
    {"n=2s", DURATION, VG_OK, 2000, NULL},
    {"n=1m30s", DURATION, VG_OK, 90000, NULL},
    {"n=1ms", DURATION, VG_OK, 1, NULL},
    {"", DURATION, VG_OK, 7, NULL},
    {"n=0s", DURATION, VG_EUSAGE, 7, "option n=0s must be a duration from 1ms to 10m, e.g. 500ms or 2s"},
    {"n=11m", DURATION, VG_EUSAGE, 7, "from 1ms to 10m"},
    {"n=soon", DURATION, VG_EUSAGE, 7, "option n=soon must be a duration"},
    {"n=yes", BOOL, VG_OK, 1, NULL},
    {"n=off", BOOL, VG_OK, 0, NULL},
    {"n=1", BOOL, VG_OK, 1, NULL},
    {"n=false", BOOL, VG_OK, 0, NULL},
    {"n=maybe", BOOL, VG_EUSAGE, 7, "option n=maybe must be true or false"},
};

START_TEST(typed_options_check_their_range)
{
    char s[128];
    snprintf(s, sizeof s, "mqtt://h/t?%s", typed[_i].query);
    struct vg_uri u = parsed(s);
    struct vg_error err = {0};
    long long got = 7;
    int rc;
    if (typed[_i].kind == LONG) {
        long v = 7;
        rc = vg_uri_long(&u, "n", 0, 100, &v, &err);
        got = v;
    } else if (typed[_i].kind == DURATION) {
        vg_ts v = 7;
        rc = vg_uri_duration(&u, "n", 1, 600000, &v, &err);
        got = v;
    } else {
        bool v = true;
        rc = vg_uri_bool(&u, "n", &v, &err);
        got = rc == VG_OK && *typed[_i].query ? v : 7;
    }
    ck_assert_int_eq(rc, typed[_i].rc);
    ck_assert_int_eq(got, typed[_i].value);
    if (typed[_i].says)
        ck_assert_msg(strstr(err.msg, typed[_i].says), "%s: %s", s, err.msg);
    ck_assert_int_eq(vg_uri_finish(&u, "n", &err), VG_OK); /* asked for: used, even when bad */
    vg_uri_fini(&u);
}
END_TEST

/* ---- vg_uri_decode ------------------------------------------------------------------- */

START_TEST(decode_handles_escapes_and_refuses_bad_ones)
{
    bool b;
    char *s = vg_uri_decode("a%41%7e%7E%00z", 14, &b);
    ck_assert_ptr_nonnull(s);
    ck_assert(!b);
    ck_assert_mem_eq(s, "aA~~\0z", 6);
    free(s);
    s = vg_uri_decode("abc%", 4, &b);
    ck_assert_ptr_null(s);
    ck_assert(b);
    s = vg_uri_decode("%4g", 3, &b);
    ck_assert_ptr_null(s);
    ck_assert(b);
    s = vg_uri_decode("%41", 2, &b); /* only the first n bytes count */
    ck_assert_ptr_null(s);
    ck_assert(b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("uri");
    TCase *tc = tcase_create("grammar");
    tcase_add_loop_test(tc, good_uris_parse_into_their_parts, 0, VG_ARRAY_LEN(good));
    tcase_add_loop_test(tc, bad_uris_say_what_is_wrong_and_never_show_a_password, 0, VG_ARRAY_LEN(bad));
    tcase_add_test(tc, what_defaults_to_endpoint);
    suite_add_tcase(s, tc);

    TCase *opts = tcase_create("options");
    tcase_add_test(opts, repeated_options_keep_every_value_in_order);
    tcase_add_loop_test(opts, an_unknown_option_is_named_with_the_known_list, 0, VG_ARRAY_LEN(unknown));
    tcase_add_loop_test(opts, typed_options_check_their_range, 0, VG_ARRAY_LEN(typed));
    tcase_add_test(opts, decode_handles_escapes_and_refuses_bad_ones);
    suite_add_tcase(s, opts);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
