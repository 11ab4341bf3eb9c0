/*
 * test_pipeline.c: the threaded pipeline gives the same alerts whatever the
 * number of workers, and the same bytes run after run.
 * Owns: whole-pipeline determinism on generated data (bench/gen.c).
 * Must never: depend on thread timing for its verdict.
 */
#include "vgtest.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char gen_path[600];

static void generate(void)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s", vgt_bin());
    snprintf(gen_path, sizeof gen_path, "%s/gen", dirname(bin));
    int rc = vgt_sh("'%s' --plants 300 --days 1 --interval 120 --breach-rate 0.3 --bad-lines 20 "
                    "--registry '%s/reg.yaml' --telemetry '%s/t.ndjson' 2>/dev/null",
                    gen_path, vgt_dir(), vgt_dir());
    ck_assert_int_eq(rc, 0);
}

static char *run(int threads, const char *tag)
{
    char *a = vgt_path(tag);
    int rc = vgt_sh("'%s' run --rules '%s/rules' --registry '%s/reg.yaml' --input '%s/t.ndjson' "
                    "--alerts '%s' --dead-letter '%s.dead' --threads %d 2>/dev/null",
                    vgt_bin(), vgt_src(), vgt_dir(), vgt_dir(), a, a, threads);
    ck_assert_int_eq(rc, 0);
    /* sort to compare as sets; per-subject order is checked by test_e2e */
    char sorted[700];
    snprintf(sorted, sizeof sorted, "%s.sorted", a);
    ck_assert_int_eq(vgt_sh("LC_ALL=C sort '%s' > '%s'", a, sorted), 0);
    free(a);
    return vgt_read(sorted, NULL);
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(threads_give_the_same_alerts)
{
    generate();
    char *one = run(1, "t1"), *two = run(2, "t2"), *four = run(4, "t4");
    ck_assert_msg(lines(one) > 100, "the generated day should raise alerts, got %d", lines(one));
    ck_assert_msg(strstr(one, "\"status\":\"escalated\"") != NULL, "no escalation in the sample");
    ck_assert_msg(strstr(one, "\"status\":\"resolved\"") != NULL, "no resolution in the sample");
    ck_assert_str_eq(one, two);
    ck_assert_str_eq(one, four);
    char *d1 = vgt_path("t1.dead"), *d4 = vgt_path("t4.dead");
    char *dead1 = vgt_read(d1, NULL), *dead4 = vgt_read(d4, NULL);
    ck_assert_int_eq(lines(dead1), 20);
    ck_assert_int_eq(lines(dead4), 20);
    free(d1);
    free(d4);
    free(dead1);
    free(dead4);
    free(one);
    free(two);
    free(four);
}
END_TEST

START_TEST(runs_are_byte_identical)
{
    generate();
    char *a = vgt_path("r1"), *b = vgt_path("r2");
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(vgt_sh("'%s' run --rules '%s/rules' --registry '%s/reg.yaml' --input '%s/t.ndjson' "
                                "--alerts '%s' --dead-letter /dev/null --threads 1 2>/dev/null",
                                vgt_bin(), vgt_src(), vgt_dir(), vgt_dir(), i ? b : a), 0);
    char *x = vgt_read(a, NULL), *y = vgt_read(b, NULL);
    ck_assert_str_eq(x, y);
    free(x);
    free(y);
    free(a);
    free(b);
}
END_TEST

/*
 * SIGTERM on a run whose input never ends (a pipe held open): it finishes as
 * if the input had ended — alerts written, counts printed, exit 0.
 */
START_TEST(sigterm_finishes_cleanly)
{
    char *alerts = vgt_path("term.alerts"), *fifo = vgt_path("in.fifo");
    const char *rules = vgt_write("r.yaml", "version: 1\nrules:\n  - id: hot\n    metric: t\n    grades: [ { level: red, when: value > 10 } ]\n");
    ck_assert_int_eq(vgt_sh("mkfifo '%s'", fifo), 0);
    /* the writer keeps the fifo open for 30 s; vigil must stop long before on SIGTERM */
    int rc = vgt_sh("( printf '%%s\\n' '{\"plant\":\"P\",\"device\":\"D\",\"metric\":\"t\",\"value\":50,\"ts\":1000}'; "
                    "sleep 30 ) > '%s' & w=$!; "
                    "'%s' run --rules '%s' --input '%s' --alerts '%s' --dead-letter /dev/null --threads 2 "
                    "2>'%s.err' & v=$!; sleep 1; kill -TERM $v; wait $v; rc=$?; kill $w 2>/dev/null; exit $rc",
                    fifo, vgt_bin(), rules, fifo, alerts, alerts);
    ck_assert_int_eq(rc, 0);
    char *got = vgt_read(alerts, NULL);
    ck_assert_msg(strstr(got, "\"rule\":\"hot\"") && strstr(got, "\"status\":\"firing\""),
                  "the alert before SIGTERM was not written: '%s'", got);
    free(got);
    free(alerts);
    free(fifo);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("determinism");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, threads_give_the_same_alerts);
    tcase_add_test(tc, runs_are_byte_identical);
    tcase_add_test(tc, sigterm_finishes_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
