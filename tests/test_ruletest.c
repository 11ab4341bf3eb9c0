/*
 * test_ruletest.c: `vigil test` — the series notation, passing and failing
 * test files with their exact diff, invalid test files with file:line:col,
 * directories, and the bundled rules' own tests.
 * Owns: expectations on vg_ruletest_expand_values and on the binary's stdout,
 * stderr and exit status. Must never: depend on files outside the temp dir
 * and the source tree (fixtures live in tests/ruletest/).
 */
#include "vgtest.h"
#include "engine/ruletest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run vigil with @p args in @p cwd; capture stdout and stderr; return status. */
static int vigil_in(const char *cwd, const char *args, char **out, char **err)
{
    char *o = vgt_path("out.txt"), *e = vgt_path("err.txt");
    int rc = vgt_sh("cd '%s' && '%s' %s >'%s' 2>'%s' </dev/null", cwd, vgt_bin(), args, o, e);
    *out = vgt_read(o, NULL);
    *err = vgt_read(e, NULL);
    free(o);
    free(e);
    return rc;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

/* ---- series notation ---------------------------------------------------- */

struct expand_case {
    const char *in;
    const char *want;   /* the steps, "%g" or "_", space-separated */
};

static const struct expand_case expand_cases[] = {
    {"10 30 32", "10 30 32"},
    {"30x3", "30 30 30 30"},
    {"10+5x3", "10 15 20 25"},
    {"10-5x2", "10 5 0"},
    {"_", "_"},
    {"_x3", "_ _ _"},
    {"1 _ 2", "1 _ 2"},
    {"10 30 32 35 45x2", "10 30 32 35 45 45 45"},
    {"0x3", "0 0 0 0"},              /* not hexadecimal */
    {"-1.5e1x1", "-15 -15"},
    {"1+0.5x2", "1 1.5 2"},
    {"-2-1x2", "-2 -3 -4"},
    {"  7\t8 \n", "7 8"},
    {"5x0", "5"},
    {".5 1.", "0.5 1"},
};

START_TEST(expand_ok)
{
    const struct expand_case *c = &expand_cases[_i];
    struct vg_series_value *v = NULL;
    size_t n = 0, bad = 99;
    const char *why = "";
    int rc = vg_ruletest_expand_values(c->in, strlen(c->in), &v, &n, &bad, &why);
    char got[256] = "";
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof got; i++) {
        char one[32];
        snprintf(one, sizeof one, v[i].missing ? "_" : "%g", v[i].value);
        o += (size_t)snprintf(got + o, sizeof got - o, "%s%s", i ? " " : "", one);
    }
    ck_assert_msg(rc == 0, "'%s': rc %d (%s at %zu)", c->in, rc, why, bad);
    ck_assert_msg(!strcmp(got, c->want), "'%s' expands to '%s', want '%s'", c->in, got, c->want);
    free(v);
}
END_TEST

struct expand_bad_case {
    const char *in;
    size_t bad;         /* offset of the offending token */
    const char *why;    /* part of the reason */
};

static const struct expand_bad_case expand_bad_cases[] = {
    {"", 0, "no values"},
    {"   ", 0, "no values"},
    {"10 abc", 3, "expected a number"},
    {"10 20+5", 3, "needs a count"},
    {"1x", 0, "count after 'x'"},
    {"1 2x3y", 2, "expected a number"},
    {"inf", 0, "expected a number"},
    {"nan", 0, "expected a number"},
    {"0x1F", 0, "expected a number"},
    {"1e999", 0, "out of range"},
    {"1 1x2000000", 2, "too long"},
    {"_+1x2", 0, "expected a number"},
    {"1+x3", 0, "step after"},
    {"1++2x3", 0, "step after"},
    {"-2+-1x2", 0, "step after"},  /* the step is unsigned: write -2-1x2 */
    {"1,2", 0, "expected a number"},
};

START_TEST(expand_bad)
{
    const struct expand_bad_case *c = &expand_bad_cases[_i];
    struct vg_series_value *v = NULL;
    size_t n = 7, bad = 99;
    const char *why = "";
    int rc = vg_ruletest_expand_values(c->in, strlen(c->in), &v, &n, &bad, &why);
    ck_assert_msg(rc == VG_EINVAL, "'%s': rc %d, want VG_EINVAL", c->in, rc);
    ck_assert_msg(v == NULL && n == 0, "'%s': output on failure", c->in);
    ck_assert_msg(bad == c->bad, "'%s': bad offset %zu, want %zu", c->in, bad, c->bad);
    ck_assert_msg(strstr(why, c->why) != NULL, "'%s': reason '%s' lacks '%s'", c->in, why, c->why);
}
END_TEST

/* ---- test files in the source tree -------------------------------------- */

static const char fail_diff[] =
    "tests/ruletest/fail.test.yaml:5:5: FAIL wrong times\n"
    "  - missing:    at=20s  furnace_hot F1/T-01 firing yellow\n"
    "  + unexpected: at=25s  furnace_hot F1/T-01 firing yellow\n"
    "  - missing:    at=40s  furnace_hot F1/T-01 resolved red\n"
    "  + unexpected: at=35s  furnace_hot F1/T-01 resolved red\n"
    "tests/ruletest/fail.test.yaml:19:5: FAIL wrong device, wrong start, and a dead letter nobody expected\n"
    "  - missing:    at=20s  furnace_hot F1/T-02 firing yellow started_at=10s\n"
    "  + unexpected: at=20s  furnace_hot F1/T-02 firing yellow started_at=0s\n"
    "  - missing:    at=20s  furnace_hot F1/T-03 firing yellow\n"
    "  ! dead letters: expected 0, got 1\n"
    "    dead letter: malformed: ";

struct file_case {
    const char *args;      /* run in the source tree */
    int status;
    const char *out_start; /* stdout starts with this ("" = anything) */
    const char *out_has;   /* and contains this */
    const char *out_end;   /* and ends with this */
    const char *err_has;   /* stderr contains this ("" = anything) */
};

static const struct file_case file_cases[] = {
    {"test tests/ruletest/pass.test.yaml", 0, "vigil test: 4 passed, 0 failed\n", "", "", ""},
    {"test tests/ruletest/fail.test.yaml", 1, fail_diff, "",
     "(input at tests/ruletest/fail.test.yaml:22:9)\nvigil test: 1 passed, 2 failed\n", ""},
    /* a directory: its *.test.yaml in name order (a before b); notes.yaml is not a test */
    {"test tests/ruletest/dir", 0, "vigil test: 3 passed, 0 failed\n", "", "", ""},
    {"test tests/ruletest/dir/", 0, "vigil test: 3 passed, 0 failed\n", "", "", ""},
    {"test tests/ruletest/dir tests/ruletest/fail.test.yaml", 1,
     "tests/ruletest/fail.test.yaml:5:5: FAIL wrong times\n", "", "vigil test: 4 passed, 2 failed\n", ""},
    /* the bundled rules carry their own tests, and they pass */
    {"test rules/", 0, "vigil test: ", "", " passed, 0 failed\n", ""},
    {"test rules/ammonia_refrigeration.test.yaml", 0, "vigil test: ", "", " passed, 0 failed\n", ""},
    {"test --help", 0, "usage: vigil test PATH...", "", "", ""},
    {"test", 2, "", "", "", "give at least one test file or directory"},
    {"test tests/ruletest/nope.test.yaml", 2, "", "", "",
     "test path 'tests/ruletest/nope.test.yaml' does not exist"},
    {"test --bogus", 2, "", "", "", "unknown option '--bogus'"},
};

START_TEST(files)
{
    const struct file_case *c = &file_cases[_i];
    char *out, *err;
    int rc = vigil_in(vgt_src(), c->args, &out, &err);
    ck_assert_msg(rc == c->status, "vigil %s: status %d, want %d\nstdout:\n%s\nstderr:\n%s", c->args, rc,
                  c->status, out, err);
    ck_assert_msg(!strncmp(out, c->out_start, strlen(c->out_start)),
                  "vigil %s: stdout does not start with:\n%s\nit is:\n%s", c->args, c->out_start, out);
    ck_assert_msg(strstr(out, c->out_has) != NULL, "vigil %s: '%s' not in:\n%s", c->args, c->out_has, out);
    ck_assert_msg(ends_with(out, c->out_end), "vigil %s: stdout does not end with:\n%s\nit is:\n%s",
                  c->args, c->out_end, out);
    ck_assert_msg(strstr(err, c->err_has) != NULL, "vigil %s: '%s' not in stderr:\n%s", c->args,
                  c->err_has, err);
    free(out);
    free(err);
}
END_TEST

/* ---- invalid test files -------------------------------------------------- */

#define RULES "rule_files: r.yaml\n"

struct invalid_case {
    const char *text;   /* written as bad.test.yaml next to r.yaml */
    const char *diag;   /* a line on stderr */
};

static const struct invalid_case invalid_cases[] = {
    {RULES "tests:\n  - name: x\n    inptu: []\n",
     "bad.test.yaml:4:5: unknown key 'inptu' in test (expected one of: name, start, lateness, until, "
     "input, expect, expect_dead_letters)\n"},
    {RULES "tests:\n  - name: x\n    inptu: []\n", "bad.test.yaml:3:5: a test needs 'input', a list of messages\n"},
    {RULES "tsets: []\n", "bad.test.yaml:2:1: unknown key 'tsets' in test file"},
    {RULES "tests: []\n", "bad.test.yaml:2:8: a test file needs 'tests', a non-empty list\n"},
    /* the column points at the bad token inside the quoted string */
    {RULES "tests:\n  - input:\n      - { plant: P, device: D, metric: t, every: 10s, values: \"1 2x 3\" }\n",
     "bad.test.yaml:4:66: values: expected a count after 'x'\n"},
    {RULES "tests:\n  - input:\n      - { plant: P, device: D, metric: t, values: \"1\" }\n",
     "bad.test.yaml:4:9: an input series needs 'every'"},
    {RULES "tests:\n  - input:\n      - { at: 40, plant: P, device: D, metric: t, value: 1 }\n",
     "bad.test.yaml:4:15: bad time '40' for at: give a unit (40s)"},
    {RULES "tests:\n  - input:\n      - { at: 1x, plant: P, device: D, metric: t, value: 1 }\n",
     "bad.test.yaml:4:15: bad time '1x' for at"},
    {RULES "tests:\n  - input:\n      - { at: 1s, plant: P, device: D, metric: t }\n",
     "bad.test.yaml:4:9: a sample needs 'value'\n"},
    {RULES "tests:\n  - input:\n      - { at: 1s, plant: P, device: D, metric: t, value: 1, qualty: M }\n",
     "bad.test.yaml:4:61: unknown key 'qualty' in input message"},
    {RULES "tests:\n  - input:\n      - { at: 1s, plant: P, device: D, metric: t, event: e }\n",
     "bad.test.yaml:4:9: an input message has either 'metric'"},
    {RULES "tests:\n  - input: []\n    expect:\n      - { at: 1s, rule: hot, plant: P, device: D, "
           "status: firing, level: purple }\n",
     "bad.test.yaml:5:74: unknown level 'purple'"},
    {RULES "tests:\n  - input: []\n    expect:\n      - { at: 1s, rule: hot, status: fired, level: red }\n",
     "bad.test.yaml:5:38: unknown status 'fired'"},
    {RULES "tests:\n  - input: []\n    expect:\n      - { at: 1s, rule: hto, status: firing, level: red }\n",
     "bad.test.yaml:5:25: rule 'hto' is not in the rule files of this test\n"},
    {RULES "tests:\n  - input: []\n    expect:\n      - { rule: hot, status: firing, level: red }\n",
     "bad.test.yaml:5:9: an expected alert needs 'at'\n"},
    {RULES "tests:\n  - input: []\n    expect_dead_letters: -1\n",
     "bad.test.yaml:4:26: expect_dead_letters must be a count"},
    {RULES "tests:\n  - input: []\n    start: yesterday\n", "bad.test.yaml:4:12: start must be epoch"},
    {RULES "tests:\n  - input:\n      - { raw: [1] }\n", "bad.test.yaml:4:16: raw must be a string"},
    /* an inline registry: positions are the test file's own */
    {RULES "registry:\n  version: 1\n  plants:\n    - { id: P1, industry: [x] }\ntests:\n  - input: []\n",
     "bad.test.yaml:5:17: unknown key 'industry' in plant"},
    {RULES "registry: nowhere.yaml\ntests:\n  - input: []\n",
     "bad.test.yaml:2:11: registry 'nowhere.yaml' does not exist\n"},
    {"rule_files: [r.yaml, gone.yaml]\ntests:\n  - input: []\n",
     "bad.test.yaml:1:22: rule file 'gone.yaml' does not exist\n"},
    /* no rule_files: the default is bad.yaml, which is not there */
    {"tests:\n  - input: []\n", "bad.test.yaml:1:1: rule file 'bad.yaml' (the default for this test file) "
                                "does not exist; give rule_files\n"},
    /* a broken rule file is reported at its own positions */
    {"rule_files: broken.yaml\ntests:\n  - input: []\n", "broken.yaml:5:13: grades must be a non-empty list"},
    {RULES "tests: [\n", "bad.test.yaml:3:1: YAML: "},
};

START_TEST(invalid)
{
    const struct invalid_case *c = &invalid_cases[_i];
    vgt_write("r.yaml", "version: 1\nrules:\n  - id: hot\n    metric: t\n"
                        "    grades: [ { level: red, when: value > 50 } ]\n");
    vgt_write("broken.yaml", "version: 1\nrules:\n  - id: x\n    metric: m\n    grades: []\n");
    vgt_write("bad.test.yaml", c->text);
    char *out, *err;
    int rc = vigil_in(vgt_dir(), "test bad.test.yaml", &out, &err);
    ck_assert_msg(rc == 1, "status %d, want 1 for:\n%s\nstderr:\n%s", rc, c->text, err);
    ck_assert_msg(strstr(err, c->diag) != NULL, "'%s' not in stderr:\n%s\nfor:\n%s", c->diag, err, c->text);
    ck_assert_msg(strstr(err, "bad.test.yaml: ") != NULL && strstr(err, "its tests were not run") != NULL,
                  "%s", err);
    ck_assert_msg(ends_with(out, " passed, 1 failed\n"), "stdout:\n%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(invalid_file_does_not_stop_the_others)
{
    vgt_write("r.yaml", "version: 1\nrules:\n  - id: hot\n    metric: t\n"
                        "    grades: [ { level: red, when: value > 50 } ]\n");
    vgt_write("bad.test.yaml", RULES "tests:\n  - input: []\n    bogus: 1\n");
    vgt_write("good.test.yaml", RULES "tests:\n  - input:\n"
                                      "      - { plant: P, device: D, metric: t, every: 1s, values: \"60\" }\n"
                                      "    expect:\n"
                                      "      - { at: 0s, rule: hot, plant: P, device: D, status: firing, "
                                      "level: red }\n");
    char *out, *err;
    int rc = vigil_in(vgt_dir(), "test bad.test.yaml good.test.yaml", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(!strcmp(out, "vigil test: 1 passed, 1 failed\n"), "%s", out);
    ck_assert_msg(strstr(err, "bad.test.yaml:4:5: unknown key 'bogus' in test") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ruletest");
    TCase *tc = tcase_create("ruletest");
    tcase_add_loop_test(tc, expand_ok, 0, (int)VG_ARRAY_LEN(expand_cases));
    tcase_add_loop_test(tc, expand_bad, 0, (int)VG_ARRAY_LEN(expand_bad_cases));
    tcase_add_loop_test(tc, files, 0, (int)VG_ARRAY_LEN(file_cases));
    tcase_add_loop_test(tc, invalid, 0, (int)VG_ARRAY_LEN(invalid_cases));
    tcase_add_test(tc, invalid_file_does_not_stop_the_others);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
