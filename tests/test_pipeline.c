/*
 * test_pipeline.c: the threaded pipeline gives the same alerts whatever the
 * number of workers, and the same bytes run after run.
 * Owns: whole-pipeline determinism on generated data (bench/gen.c).
 * Must never: depend on thread timing for its verdict.
 */
#include "vgtest.h"

#include "engine/alert.h"

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

/*
 * SMS through the whole pipeline: a firing alert notifies the plant's safety
 * officer at once; the chain entry (unacked_for: 10m) notifies the township
 * officer 10 minutes later only for the alert nobody acknowledged. The ack
 * goes through the reader to the notifier, the deadline is judged on event
 * time, and the requests are the same bytes with 1 and 3 workers.
 */
START_TEST(sms_chain_stops_at_an_ack)
{
    const char *rules = vgt_write("sms.yaml",
        "version: 1\nrules:\n  - id: hot\n    title: 温度超限\n    metric: t\n"
        "    grades: [ { level: red, when: value > 10 } ]\n"
        "    notify:\n      - { to: [safety_officer], template: \"{plant_name}{device}温度{value}\" }\n"
        "      - { to: [township_officer], unacked_for: 10m, template: \"{plant_name}无人处置\" }\n");
    const char *reg = vgt_write("sms-reg.yaml",
        "version: 1\nregions:\n  - { code: \"320585101\", name: 城厢镇, contacts: { township_officer: [\"+8613800000009\"] } }\n"
        "plants:\n  - { id: PA, name: 甲厂, region: \"320585101\", contacts: { safety_officer: [\"+8613900000001\"] } }\n"
        "  - { id: PB, name: 乙厂, region: \"320585101\", contacts: { safety_officer: [\"+8613900000002\"] } }\n");
    char ida[17];
    vg_alert_id("hot", "PA", 2, "D", 1, 1000000, ida);
    char input[2048];
    snprintf(input, sizeof input,
             "{\"plant\":\"PA\",\"device\":\"D\",\"metric\":\"t\",\"value\":50,\"ts\":1000000}\n"
             "{\"plant\":\"PB\",\"device\":\"D\",\"metric\":\"t\",\"value\":60,\"ts\":1000000}\n"
             "{\"type\":\"ack\",\"alert_id\":\"%s\",\"by\":\"zhang\",\"ts\":1300000}\n"
             "{\"plant\":\"PA\",\"device\":\"D\",\"metric\":\"t\",\"value\":50,\"ts\":1900000}\n"
             "{\"plant\":\"PB\",\"device\":\"D\",\"metric\":\"t\",\"value\":60,\"ts\":1900000}\n", ida);
    const char *in = vgt_write("sms-in.ndjson", input);
    char *got[2];
    for (int i = 0; i < 2; i++) {
        char *sms = vgt_path(i ? "sms3" : "sms1");
        ck_assert_int_eq(vgt_sh("'%s' run --rules '%s' --registry '%s' --input '%s' --alerts /dev/null "
                                "--sms '%s' --threads %d 2>/dev/null", vgt_bin(), rules, reg, in, sms,
                                i ? 3 : 1), 0);
        got[i] = vgt_read(sms, NULL);
        free(sms);
    }
    ck_assert_str_eq(got[0], got[1]);
    const char *s = got[0];
    ck_assert_int_eq(lines(s), 3);
    ck_assert_msg(strstr(s, "\"to\":\"+8613900000001\"") && strstr(s, "甲厂D温度50"), "PA's officer: %s", s);
    ck_assert_msg(strstr(s, "\"to\":\"+8613900000002\"") && strstr(s, "乙厂D温度60"), "PB's officer: %s", s);
    /* the chain: PB's alert, at its deadline (fired at 1000000 + 10 m) */
    const char *chain = strstr(s, "\"to\":\"+8613800000009\"");
    ck_assert_msg(chain != NULL, "no escalation to the township officer: %s", s);
    ck_assert_msg(strstr(chain, "乙厂无人处置") && strstr(chain, "\"at\":1600000"), "escalation: %s", chain);
    ck_assert_msg(!strstr(s, "甲厂无人处置"), "the acknowledged alert escalated: %s", s);
    free(got[0]);
    free(got[1]);
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
    tcase_add_test(tc, sms_chain_stops_at_an_ack);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
