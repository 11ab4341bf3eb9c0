/*
 * test_redis_state.c: rule state kept in a real redis-server across restarts,
 * a kill -9, and an outage — the alerts are those of one uninterrupted run.
 * Owns: the end-to-end contract of `--state redis://…` (docs/state.md).
 * Must never: touch port 6379 or a server it did not start.
 *
 * The group stage's counts are in the checkpoints too: a district cap whose
 * members fired before a restart still counts them after it.
 */
#include "vgtest.h"
#include "servers.h"

#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static char gen_bin[600];
static size_t n_lines;

/* t.ndjson and its thirds p1, p2, p3; the memory-state run's alerts in whole.out */
static void prepare(void)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s", vgt_bin());
    snprintf(gen_bin, sizeof gen_bin, "%s/gen", dirname(bin));
    ck_assert_int_eq(vgt_sh("'%s' --plants 120 --days 1 --interval 300 --breach-rate 1 "
                            "--registry '%s/reg.yaml' --telemetry '%s/t.ndjson' 2>/dev/null",
                            gen_bin, vgt_dir(), vgt_dir()), 0);
    char *t = vgt_path("t.ndjson");
    char *all = vgt_read(t, NULL);
    n_lines = 0;
    for (char *p = all; *p; p++)
        n_lines += *p == '\n';
    free(all);
    size_t third = n_lines / 3;
    ck_assert_int_eq(vgt_sh("cd '%s' && head -n %zu t.ndjson > p1 && tail -n +%zu t.ndjson | head -n %zu > p2 "
                            "&& tail -n +%zu t.ndjson > p3", vgt_dir(), third, third + 1, third,
                            2 * third + 1), 0);
    ck_assert_int_eq(vgt_sh("cd '%s' && '%s' run --rules '%s/rules' --registry reg.yaml --input t.ndjson "
                            "--alerts whole.out --dead-letter /dev/null --threads 2 2>/dev/null",
                            vgt_dir(), vgt_bin(), vgt_src()), 0);
    free(t);
}

/* vigil run on @p input with Redis state; extra shell before and after allowed via @p pipe */
static int run_state(const struct vgt_server *s, const char *prefix, const char *input, const char *out)
{
    return vgt_sh("cd '%s' && '%s' run --rules '%s/rules' --registry reg.yaml --input %s "
                  "--alerts %s --dead-letter /dev/null --threads 2 "
                  "--state 'redis://127.0.0.1:%d?prefix=%s&timeout=500ms' 2>>%s.err",
                  vgt_dir(), vgt_bin(), vgt_src(), input, out, s->port, prefix, out);
}

/* The alert lines of @p files (space separated), group rule left out, sorted, unique if asked. */
static char *lines_of(const char *files, bool unique)
{
    char *o = vgt_path("cmp.tmp");
    ck_assert_int_eq(vgt_sh("cd '%s' && cat %s | LC_ALL=C sort %s > '%s'",
                            vgt_dir(), files, unique ? "-u" : "", o), 0);
    char *text = vgt_read(o, NULL);
    free(o);
    return text;
}

static int count(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

START_TEST(two_runs_equal_one)
{
    prepare();
    struct vgt_server s = {0};
    ck_assert_msg(vgt_redis_start(&s) == 0, "%s", s.error);
    ck_assert_int_eq(vgt_sh("cd '%s' && cat p1 p2 > first", vgt_dir()), 0);
    ck_assert_int_eq(run_state(&s, "two", "first", "a1.out"), 0);
    ck_assert_int_eq(run_state(&s, "two", "p3", "a2.out"), 0);
    char *whole = lines_of("whole.out", false), *split = lines_of("a1.out a2.out", false);
    ck_assert_msg(count(whole) > 200, "the sample should raise alerts (%d)", count(whole));
    /* the second run resolves alerts the first one fired: its state came from Redis */
    ck_assert_int_eq(vgt_sh("cd '%s' && grep -o '\"alert_id\":\"[0-9a-f]*\"' a1.out | sort -u > ids1 && "
                            "grep '\"status\":\"resolved\"' a2.out | grep -o '\"alert_id\":\"[0-9a-f]*\"' "
                            "| sort -u | comm -12 - ids1 | grep -q .", vgt_dir()), 0);
    ck_assert_msg(!strcmp(whole, split), "alerts of two runs with a restart differ from one run");
    free(whole);
    free(split);
    vgt_redis_stop(&s);
}
END_TEST

START_TEST(kill_9_loses_no_alert)
{
    prepare();
    struct vgt_server s = {0};
    ck_assert_msg(vgt_redis_start(&s) == 0, "%s", s.error);
    /* the first two thirds, then a pause in which the engine is killed without warning,
     * once a checkpoint has covered them: the stored max_ts stays the same for 3 s */
    ck_assert_int_eq(vgt_sh("cd '%s' && ( (cat p1 p2; sleep 60) 2>/dev/null | '%s' run --rules '%s/rules' "
                            "--registry reg.yaml --alerts k1.out --dead-letter /dev/null --threads 2 "
                            "--state 'redis://127.0.0.1:%d?prefix=k9&timeout=500ms' 2>k1.err & echo $! > k1.pid ) ; "
                            "same=0; prev=none; for i in $(seq 1 240); do "
                            "  m=$(redis-cli -p %d hget k9:meta max_ts 2>/dev/null); "
                            "  if [ \"$m\" = \"$prev\" ]; then same=$((same+1)); else same=0; fi; prev=$m; "
                            "  [ -n \"$m\" ] && [ $same -ge 6 ] && break; sleep 0.5; done; "
                            "kill -9 $(cat k1.pid)",
                            vgt_dir(), vgt_bin(), vgt_src(), s.port, s.port), 0);
    ck_assert_int_eq(run_state(&s, "k9", "p3", "k2.out"), 0);
    char *whole = lines_of("whole.out", true), *both = lines_of("k1.out k2.out", true);
    /* nothing lost, nothing invented; alerts after the last checkpoint may repeat (same ids) */
    ck_assert_msg(!strcmp(whole, both), "after kill -9 and a restart the alerts differ from one run");
    free(whole);
    free(both);
    vgt_redis_stop(&s);
}
END_TEST

START_TEST(outage_then_recovery)
{
    prepare();
    struct vgt_server s = {0};
    ck_assert_msg(vgt_redis_start(&s) == 0, "%s", s.error);
    /* Redis hangs (SIGSTOP) for 3 s while the second third streams in, then returns */
    ck_assert_int_eq(vgt_sh("cd '%s' && (cat p1; sleep 1.5; kill -STOP %d; cat p2; sleep 3; kill -CONT %d; sleep 2) "
                            "| '%s' run --rules '%s/rules' --registry reg.yaml --alerts o1.out "
                            "--dead-letter /dev/null --threads 2 "
                            "--state 'redis://127.0.0.1:%d?prefix=out&timeout=300ms' 2>o1.err",
                            vgt_dir(), (int)s.pid, (int)s.pid, vgt_bin(), vgt_src(), s.port), 0);
    char *e = vgt_path("o1.err");
    char *err = vgt_read(e, NULL);
    ck_assert_msg(strstr(err, "state is not being saved") != NULL, "no outage reported:\n%s", err);
    ck_assert_msg(strstr(err, "state is saved again") != NULL, "no recovery reported:\n%s", err);
    free(err);
    free(e);
    /* what waited during the outage was written: the rest continues exactly */
    ck_assert_int_eq(run_state(&s, "out", "p3", "o2.out"), 0);
    char *whole = lines_of("whole.out", false), *split = lines_of("o1.out o2.out", false);
    ck_assert_msg(!strcmp(whole, split), "alerts around an outage differ from one run");
    free(whole);
    free(split);
    vgt_redis_stop(&s);
}
END_TEST

START_TEST(group_counts_survive_a_restart)
{
    /* scenario 0006: P1 (and P5) reach 3 days missing in the first run, P2 and P3 in the
     * second; the district cap needs all three, so the first run's count must come back */
    struct vgt_server s = {0};
    ck_assert_msg(vgt_redis_start(&s) == 0, "%s", s.error);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tests/scenarios/0006-district-cap", vgt_src());
    ck_assert_int_eq(vgt_sh("cd '%s' && head -n 6 '%s/input.ndjson' > g1 && tail -n +7 '%s/input.ndjson' > g2 && "
                            "'%s' run --rules '%s/rules.yaml' --registry '%s/registry.yaml' --input '%s/input.ndjson' "
                            "--until 1764230400000 --alerts gw.out --dead-letter /dev/null 2>/dev/null",
                            vgt_dir(), dir, dir, vgt_bin(), dir, dir, dir), 0);
    for (int part = 1; part <= 2; part++)
        ck_assert_int_eq(vgt_sh("cd '%s' && '%s' run --rules '%s/rules.yaml' --registry '%s/registry.yaml' "
                                "--input g%d %s --alerts g%d.out --dead-letter /dev/null --threads 2 "
                                "--state 'redis://127.0.0.1:%d?prefix=grp' 2>/dev/null",
                                vgt_dir(), vgt_bin(), dir, dir, part, part == 2 ? "--until 1764230400000" : "",
                                part, s.port), 0);
    char *whole = lines_of("gw.out", false), *split = lines_of("g1.out g2.out", false);
    ck_assert_msg(strstr(whole, "\"rule\":\"dust_missing_region_cap\"") != NULL, "no cap alert at all");
    ck_assert_msg(!strcmp(whole, split), "the district cap differs after a restart (%d alert lines in one "
                  "run, %d in two)", count(whole), count(split));
    free(whole);
    free(split);
    vgt_redis_stop(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("redis_state");
    TCase *tc = tcase_create("redis_state");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, two_runs_equal_one);
    tcase_add_test(tc, kill_9_loses_no_alert);
    tcase_add_test(tc, outage_then_recovery);
    tcase_add_test(tc, group_counts_survive_a_restart);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
