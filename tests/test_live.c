/*
 * test_live.c: a live source moves the clock with the wall clock when idle
 * (DESIGN "Time": "no report for N" fires without any message arriving), and
 * a live run ends cleanly on SIGTERM.
 * Owns: the vigil binary against a real mosquitto, end to end. Must never:
 * use port 1883, or wait without a bound.
 */
#include "vgtest.h"
#include "servers.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(idle_live_input_judges_absence_on_wall_time)
{
    struct vgt_server mq = {0};
    ck_assert_msg(vgt_mosquitto_start(&mq) == 0, "%s", mq.error);
    const char *rules = vgt_write("live.yaml",
                                  "version: 1\nrules:\n  - id: silent\n    metric: t\n"
                                  "    absent: { grades: [ { level: yellow, after: 2s } ] }\n");
    char *alerts = vgt_path("live.alerts"), *err = vgt_path("live.err");
    char input[256];
    snprintf(input, sizeof input, "mqtt://127.0.0.1:%d/plants/+/telemetry?plant_level=2&qos=1", mq.port);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen(err, "w", stderr))
            _exit(127);
        execl(vgt_bin(), "vigil", "run", "--rules", rules, "--input", input, "--alerts", alerts,
              "--dead-letter", "/dev/null", "--threads", "2", "--lateness", "5s", (char *)NULL);
        _exit(127);
    }
    /*
     * Retained, so it reaches vigil whenever its subscription lands (no sleep
     * to wait for it). Live, the idle clock is wall time less the lateness:
     * 5 s covers vigil's connect time, or the sample would arrive late.
     */
    long long ts = wall_ms();
    ck_assert_int_eq(vgt_sh("mosquitto_pub -h 127.0.0.1 -p %d -q 1 -r -t plants/PL/telemetry -m "
                            "'{\"device\":\"D\",\"metric\":\"t\",\"value\":1,\"ts\":%lld}'",
                            mq.port, ts), 0);
    /* no further message: the absence must fire at ts + 2 s, judged when wall time - 5 s passes it */
    char *got = NULL;
    for (int i = 0; i < 200; i++) {
        free(got);
        got = vgt_read(alerts, NULL);
        if (got && strstr(got, "\"status\":\"firing\""))
            break;
        sleep_ms(100);
    }
    long long noticed = wall_ms();
    kill(pid, SIGTERM);
    int status = -1;
    for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
        sleep_ms(100);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char *stderr_text = vgt_read(err, NULL);
    ck_assert_msg(got && strstr(got, "\"status\":\"firing\""), "no absence alert from wall time; "
                  "alerts: '%s'; stderr: %s", got ? got : "", stderr_text ? stderr_text : "");
    char want[64];
    snprintf(want, sizeof want, "\"at\":%lld", ts + 2000);
    ck_assert_msg(strstr(got, want) && strstr(got, "\"plant\":\"PL\""), "the deadline is ts + 2 s "
                  "(%s), plant from the topic: %s", want, got);
    ck_assert_msg(noticed - ts >= 7000 && noticed - ts < 15000, "noticed %lld ms after the sample "
                  "(the clock reaches ts + 2 s when the wall is 5 s past that)", noticed - ts);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM: status %d; stderr: %s",
                  status, stderr_text ? stderr_text : "");
    free(stderr_text);
    free(got);
    free(alerts);
    free(err);
    vgt_mosquitto_stop(&mq);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("live");
    TCase *tc = tcase_create("live");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, idle_live_input_judges_absence_on_wall_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
