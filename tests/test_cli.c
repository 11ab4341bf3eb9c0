/*
 * test_cli.c: the command line as a user meets it — help, exit statuses,
 * one-line errors for unknown flags and missing files, `vigil check` output.
 * Owns: expectations on stdout/stderr/exit status. Must never: depend on the
 * machine's own files outside the temp dir and the source tree.
 */
#include "vgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run vigil with @p args; capture stderr+stdout into files; return status. */
static int vigil(const char *args, char **out, char **err)
{
    char *o = vgt_path("out.txt"), *e = vgt_path("err.txt");
    int rc = vgt_sh("cd '%s' && '%s' %s >'%s' 2>'%s' </dev/null", vgt_dir(), vgt_bin(), args, o, e);
    *out = vgt_read(o, NULL);
    *err = vgt_read(e, NULL);
    free(o);
    free(e);
    return rc;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

struct usage_case {
    const char *args;
    int status;
    const char *stream;   /* "out" or "err" */
    const char *needle;
    int max_lines;        /* on the checked stream; 0 = any */
};

static const struct usage_case usage_cases[] = {
    {"", 2, "err", "usage: vigil COMMAND", 0},
    {"--help", 0, "out", "commands:", 0},
    {"--version", 0, "out", "vigil ", 1},
    {"frobnicate", 2, "err", "unknown command 'frobnicate'", 1},
    {"run --help", 0, "out", "--dead-letter FILE", 0},
    {"run --help", 0, "out", "--threads N", 0},
    {"check --help", 0, "out", "--registry FILE", 0},
    {"test --help", 0, "out", "usage: vigil test", 0},
    {"run --bogus", 2, "err", "unknown option '--bogus'", 1},
    {"run -x", 2, "err", "unknown option '-x'", 1},
    {"check --nope x.yaml", 2, "err", "unknown option '--nope'", 1},
    {"run --rules nowhere", 2, "err", "rule path 'nowhere' does not exist", 1},
    {"run --rules . --input missing.ndjson", 2, "err", "input 'missing.ndjson' does not exist", 1},
    {"run --rules . --registry missing.yaml", 2, "err", "registry 'missing.yaml' does not exist", 1},
    {"check missing.yaml", 2, "err", "rule path 'missing.yaml' does not exist", 1},
    {"check", 2, "err", "give at least one rule file", 1},
    {"run --threads 0", 2, "err", "--threads must be", 1},
    {"run --threads", 2, "err", "needs a value", 1},
    {"run --lateness 5x", 2, "err", "--lateness '5x'", 1},
    {"run --until yesterday", 2, "err", "--until 'yesterday'", 1},
    {"run --summary=yes", 2, "err", "takes no value", 1},
    {"run --checkpoint-interval 0", 2, "err", "must be longer than 0s", 1},
    {"run --checkpoint-interval soon", 2, "err", "--checkpoint-interval 'soon'", 1},
    {"run --help", 0, "out", "--config FILE", 0},
    {"run --help", 0, "out", "--sms FILE|URI", 0},
    {"check --help", 0, "out", "--config FILE", 0},
    {"run --config missing.yaml", 2, "err", "vigil run: config file 'missing.yaml' does not exist", 1},
    {"check --config missing.yaml", 2, "err", "vigil check: config file 'missing.yaml' does not exist", 1},
    {"run --config", 2, "err", "option --config needs a value", 1},
};

START_TEST(usage)
{
    const struct usage_case *c = &usage_cases[_i];
    char *out, *err;
    int rc = vigil(c->args, &out, &err);
    const char *s = !strcmp(c->stream, "out") ? out : err;
    ck_assert_msg(rc == c->status, "vigil %s: status %d, want %d (stderr: %s)", c->args, rc, c->status, err);
    ck_assert_msg(strstr(s, c->needle) != NULL, "vigil %s: '%s' not in:\n%s", c->args, c->needle, s);
    ck_assert_msg(c->max_lines == 0 || count_lines(s) <= c->max_lines, "vigil %s: more than %d lines:\n%s",
                  c->args, c->max_lines, s);
    free(out);
    free(err);
}
END_TEST

START_TEST(check_reports_positions)
{
    vgt_write("bad.yaml", "version: 1\n"
                          "rules:\n"
                          "  - id: a\n"
                          "    metric: nh3_ppm\n"
                          "    fro: 30s\n"
                          "    grades:\n"
                          "      - { level: purple, when: value > 1 }\n"
                          "      - { level: red, when: value >> 2 }\n");
    char *out, *err;
    int rc = vigil("check bad.yaml", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "bad.yaml:5:5: unknown key 'fro' in rule") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "bad.yaml:7:18: unknown level 'purple'") != NULL, "%s", err);
    /* "value >> 2" starts at column 29; the second ">" is 7 characters in */
    ck_assert_msg(strstr(err, "bad.yaml:8:36: when: unexpected") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "3 errors") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(check_notes_missing_set_points)
{
    /* a point that reads the rule's metric but lacks its limit: a note, not an error */
    char args[1200];
    snprintf(args, sizeof args, "check --registry '%s/tests/scenarios/0005-limits-windows-compound/registry.yaml' "
             "'%s/tests/scenarios/0005-limits-windows-compound/rules.yaml'", vgt_src(), vgt_src());
    char *out, *err;
    int rc = vigil(args, &out, &err);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "note: rule 'hopper_temp_high' reads limit.high, which 1 point does "
                              "not declare (P1/DC-02): the rule skips it") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "P1/DC-01") == NULL, "DC-01 declares both limits:\n%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(bundled_rules_check_against_the_example_registry)
{
    /* every bundled rule selects some plant of the example registry, with no set-point gaps */
    char args[1200];
    snprintf(args, sizeof args, "check --registry '%s/rules/registry.example.yaml' '%s/rules'",
             vgt_src(), vgt_src());
    char *out, *err;
    int rc = vigil(args, &out, &err);
    ck_assert_msg(rc == 0, "status %d: %s%s", rc, out, err);
    ck_assert_msg(strstr(out, "rules OK against 6 plants in 5 regions") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "note:") == NULL, "the example registry declares every set point:\n%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(run_with_bad_rules_is_status_1)
{
    vgt_write("r.yaml", "version: 1\nrules:\n  - id: x\n    metric: m\n    grades: []\n");
    char *out, *err;
    int rc = vigil("run --rules r.yaml --input /dev/null", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "r.yaml:5:13: grades must be a non-empty list") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(unavailable_state_store_is_named)
{
    /* nothing listens on port 1: the message names the address and how to start Redis */
    vgt_write("ok.yaml", "version: 1\nrules:\n  - id: x\n    metric: m\n    grades: [ { level: red, when: value > 1 } ]\n");
    char *out, *err;
    int rc = vigil("run --rules ok.yaml --input /dev/null --state redis://127.0.0.1:1", &out, &err);
    ck_assert_int_eq(rc, 3);
    ck_assert_msg(strstr(err, "cannot reach Redis at 127.0.0.1:1") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "redis-server --port 1") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(default_run_reads_stdin_and_rules_dir)
{
    /* the embedded default: ./rules, stdin, alerts on stdout, dead letters on stderr */
    vgt_sh("mkdir -p '%s/rules'", vgt_dir());
    vgt_write("rules/a.yaml", "version: 1\nrules:\n  - id: hot\n    metric: t\n    grades: [ { level: red, when: value > 50 } ]\n");
    vgt_write("in.ndjson", "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"t\",\"value\":60,\"ts\":1000}\n"
                           "{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"t\",\"value\":\"hot\",\"ts\":2000}\n");
    char *o = vgt_path("o.txt"), *e = vgt_path("e.txt");
    int rc = vgt_sh("cd '%s' && '%s' run < in.ndjson > '%s' 2> '%s'", vgt_dir(), vgt_bin(), o, e);
    char *out = vgt_read(o, NULL), *err = vgt_read(e, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_msg(strstr(out, "\"rule\":\"hot\",") && strstr(out, "\"status\":\"firing\""), "%s", out);
    ck_assert_msg(strstr(err, "{\"reason\":\"wrong_type\"") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "\"source\":\"stdin:2\"") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "1 dead letters (wrong_type 1)") != NULL, "%s", err);
    free(out);
    free(err);
    free(o);
    free(e);
}
END_TEST

START_TEST(alerts_leave_while_input_is_still_open)
{
    /* a live pipe: the first alert must come out while the writer still holds the pipe */
    vgt_sh("mkdir -p '%s/live/rules'", vgt_dir());
    vgt_write("live/rules/a.yaml", "version: 1\nrules:\n  - id: hot\n    metric: t\n"
                                   "    grades: [ { level: red, when: value > 50 } ]\n");
    char *o = vgt_path("live/out.ndjson");
    int rc = vgt_sh("cd '%s/live' && ( (echo '{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"t\","
                    "\"value\":60,\"ts\":1000}'; sleep 6) 2>/dev/null | '%s' run > '%s' 2>/dev/null & ) ; "
                    "for i in $(seq 1 40); do [ -s '%s' ] && exit 0; sleep 0.1; done; exit 1",
                    vgt_dir(), vgt_bin(), o, o);
    ck_assert_msg(rc == 0, "no alert within 4 s while the input pipe stayed open");
    char *out = vgt_read(o, NULL);
    ck_assert_msg(strstr(out, "\"status\":\"firing\"") != NULL, "%s", out);
    free(out);
    free(o);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_loop_test(tc, usage, 0, (int)(sizeof usage_cases / sizeof usage_cases[0]));
    tcase_add_test(tc, check_reports_positions);
    tcase_add_test(tc, run_with_bad_rules_is_status_1);
    tcase_add_test(tc, check_notes_missing_set_points);
    tcase_add_test(tc, bundled_rules_check_against_the_example_registry);
    tcase_add_test(tc, unavailable_state_store_is_named);
    tcase_add_test(tc, default_run_reads_stdin_and_rules_dir);
    tcase_add_test(tc, alerts_leave_while_input_is_still_open);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
