/*
 * test_e2e.c: runs the vigil binary on every tests/scenarios/NNNN-name/
 * directory (rules.yaml, optional registry.yaml, input.ndjson, expected.txt)
 * with 1 and 3 worker threads and compares the alerts.
 * Owns: the scenario format. Must never: compare alert ids against literals;
 * ids are checked for what the contract says (stable per alert, new per breach,
 * identical across runs).
 *
 * expected.txt: one alert per line, "status level rule plant device started_at
 * at value" (value "-" when the alert has none; for a group alert, plant is the
 * region and device "-"); '#' lines are comments;
 * "!dead_letters N" gives the dead-letter count. Alerts are compared per
 * subject (rule, plant, device) in order. An optional `args` file holds extra
 * flags for `vigil run` (e.g. --until, --lateness).
 */
#include "vgtest.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXL 256

static char *field(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    out[0] = 0;
    if (!p)
        return out;
    p += strlen(pat);
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (*p && *p != '"' && n + 1 < cap)
            out[n++] = *p++;
    } else {
        while (*p && *p != ',' && *p != '}' && n + 1 < cap)
            out[n++] = *p++;
    }
    out[n] = 0;
    return out;
}

struct rec {
    char key[200];     /* rule plant device: the subject */
    char text[400];
    char id[40];
    char started[32];
    int seq;
};

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->seq - y->seq;
}

static int load_actual(const char *path, struct rec *out)
{
    size_t len;
    char *buf = vgt_read(path, &len);
    ck_assert_msg(buf != NULL, "no alerts file %s", path);
    int n = 0;
    for (char *save, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ck_assert_int_lt(n, MAXL);
        char st[32], lv[32], rule[80], plant[80], dev[80], at[32], val[40];
        struct rec *r = &out[n];
        field(line, "status", st, sizeof st);
        field(line, "level", lv, sizeof lv);
        field(line, "rule", rule, sizeof rule);
        field(line, "plant", plant, sizeof plant);
        field(line, "device", dev, sizeof dev);
        field(line, "started_at", r->started, sizeof r->started);
        field(line, "at", at, sizeof at);
        field(line, "value", val, sizeof val);
        if (!val[0])
            snprintf(val, sizeof val, "-"); /* absence and group alerts carry no value */
        if (!plant[0]) /* a group alert: its subject is a region */
            field(line, "region", plant, sizeof plant);
        if (!dev[0])
            snprintf(dev, sizeof dev, "-");
        field(line, "alert_id", r->id, sizeof r->id);
        snprintf(r->key, sizeof r->key, "%s %s %s", rule, plant, dev);
        snprintf(r->text, sizeof r->text, "%s %s %s %s %s %s %s %s", st, lv, rule, plant, dev,
                 r->started, at, val);
        r->seq = n++;
    }
    free(buf);
    qsort(out, (size_t)n, sizeof *out, rec_cmp);
    return n;
}

static int load_expected(const char *path, struct rec *out, int *dead)
{
    size_t len;
    char *buf = vgt_read(path, &len);
    ck_assert_msg(buf != NULL, "no %s", path);
    int n = 0;
    *dead = 0;
    for (char *save, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == 0)
            continue;
        if (sscanf(line, "!dead_letters %d", dead) == 1)
            continue;
        char st[32], lv[32], rule[80], plant[80], dev[80], started[32], at[32], val[40];
        ck_assert_int_eq(sscanf(line, "%31s %31s %79s %79s %79s %31s %31s %39s", st, lv, rule, plant,
                                dev, started, at, val), 8);
        struct rec *r = &out[n];
        snprintf(r->key, sizeof r->key, "%s %s %s", rule, plant, dev);
        snprintf(r->text, sizeof r->text, "%s %s %s %s %s %s %s %s", st, lv, rule, plant, dev,
                 started, at, val);
        r->seq = n++;
    }
    free(buf);
    qsort(out, (size_t)n, sizeof *out, rec_cmp);
    return n;
}

static int count_lines(const char *path)
{
    size_t len;
    char *buf = vgt_read(path, &len);
    int n = 0;
    for (size_t i = 0; buf && i < len; i++)
        n += buf[i] == '\n';
    free(buf);
    return n;
}

static char names[64][128];
static int n_names;

static void list_scenarios(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tests/scenarios", vgt_src());
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && n_names < 64)
        if (e->d_name[0] != '.')
            snprintf(names[n_names++], sizeof names[0], "%s", e->d_name);
    closedir(d);
}

static void run_scenario(const char *name, int threads, const char *tag, struct rec *got, int *n_got)
{
    char dir[512], alerts[600], dead[600];
    snprintf(dir, sizeof dir, "%s/tests/scenarios/%s", vgt_src(), name);
    char *a = vgt_path(tag), *dl;
    snprintf(alerts, sizeof alerts, "%s.alerts", a);
    snprintf(dead, sizeof dead, "%s.dead", a);
    dl = dead;
    free(a);
    char reg[600];
    snprintf(reg, sizeof reg, "%s/registry.yaml", dir);
    FILE *f = fopen(reg, "r");
    char regflag[700] = "";
    if (f) {
        fclose(f);
        snprintf(regflag, sizeof regflag, "--registry '%s'", reg);
    }
    char argp[600], args[400] = "";
    snprintf(argp, sizeof argp, "%s/args", dir);
    char *extra = vgt_read(argp, NULL);
    if (extra) {
        snprintf(args, sizeof args, "%s", extra);
        for (char *q = args; *q; q++)
            if (*q == '\n')
                *q = ' ';
        free(extra);
    }
    int rc = vgt_sh("'%s' run --rules '%s/rules.yaml' %s --input '%s/input.ndjson' --alerts '%s' "
                    "--dead-letter '%s' --threads %d %s 2>/dev/null",
                    vgt_bin(), dir, regflag, dir, alerts, dl, threads, args);
    ck_assert_msg(rc == 0, "scenario %s: vigil exited %d", name, rc);
    *n_got = load_actual(alerts, got);
    int dead_expected;
    struct rec exp[MAXL];
    char ep[600];
    snprintf(ep, sizeof ep, "%s/expected.txt", dir);
    int n_exp = load_expected(ep, exp, &dead_expected);
    for (int i = 0; i < n_exp && i < *n_got; i++)
        ck_assert_msg(!strcmp(exp[i].text, got[i].text), "scenario %s (threads %d), alert %d:\n"
                      "  expected: %s\n  actual:   %s", name, threads, i, exp[i].text, got[i].text);
    ck_assert_msg(n_exp == *n_got, "scenario %s: expected %d alerts, got %d", name, n_exp, *n_got);
    ck_assert_int_eq(count_lines(dl), dead_expected);
}

START_TEST(scenario)
{
    ck_assert_int_lt(_i, n_names);
    const char *name = names[_i];
    static struct rec one[MAXL], three[MAXL];
    int n1, n3;
    char tag[160];
    snprintf(tag, sizeof tag, "%s-t1", name);
    run_scenario(name, 1, tag, one, &n1);
    snprintf(tag, sizeof tag, "%s-t3", name);
    run_scenario(name, 3, tag, three, &n3);
    ck_assert_int_eq(n1, n3);
    for (int i = 0; i < n1; i++) {
        /* identical ids across runs and thread counts */
        ck_assert_str_eq(one[i].id, three[i].id);
        ck_assert_int_eq((int)strlen(one[i].id), 16);
        for (int j = 0; j < n1; j++) {
            bool same_alert = !strcmp(one[i].key, one[j].key) && !strcmp(one[i].started, one[j].started);
            /* one id per (rule, subject, start): shared by its firing, escalations and resolve */
            ck_assert_msg(same_alert == !strcmp(one[i].id, one[j].id),
                          "alert ids must be equal exactly when rule, subject and start are");
        }
    }
}
END_TEST

static Suite *suite(void)
{
    list_scenarios();
    Suite *s = suite_create("e2e");
    TCase *tc = tcase_create("scenarios");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, scenario, 0, n_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
