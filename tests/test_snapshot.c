/*
 * test_snapshot.c: a shard's state survives export and import: half a replay,
 * a snapshot of every plant, a fresh shard restored from it, the other half
 * — the same alerts as one uninterrupted run. Also: records of removed or
 * changed rules are dropped, and damaged records are refused.
 * Owns: the round trip of engine/shard.c's snapshot format. Must never: touch
 * a server; the state store that keeps these records is tested on its own.
 */
#include "vgtest.h"

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/shard.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
    char *buf;
    size_t n, cap;
    const struct vg_ruleset *rs;
};

static void collect(void *ctx, const struct vg_alert *a)
{
    struct out *o = ctx;
    char line[8192];
    int n = vg_alert_format(a, o->rs, line, sizeof line);
    ck_assert_int_gt(n, 0);
    if (o->n + (size_t)n + 1 > o->cap) {
        o->cap = (o->cap + (size_t)n) * 2;
        o->buf = realloc(o->buf, o->cap);
    }
    memcpy(o->buf + o->n, line, (size_t)n);
    o->n += (size_t)n;
    o->buf[o->n] = 0;
}

struct feed {
    struct vg_json_parser *jp;
    struct vg_batch *b;
    vg_ts start, clock;
};

/* Parse lines [from, to) of @p text into batches for @p sh, flushing at @p to. */
static void feed(struct feed *f, struct vg_shard *sh, char **lines, size_t from, size_t to,
                 const struct vg_ruleset *rs, struct out *o)
{
    for (size_t i = from; i < to; i++) {
        const struct vg_sample *s;
        unsigned k;
        struct vg_reject rej;
        if (vg_json_parse(f->jp, lines[i], strlen(lines[i]), &s, &k, &rej) < 0)
            continue;
        for (unsigned j = 0; j < k; j++) {
            if (s[j].kind == VG_MSG_SAMPLE || s[j].kind == VG_MSG_EVENT) {
                if (f->start == VG_TS_NONE)
                    f->start = s[j].ts;
                if (s[j].ts > f->clock)
                    f->clock = s[j].ts;
            }
            if (!vg_batch_fits(f->b, vg_batch_need(&s[j]))) {
                f->b->start = f->start;
                f->b->watermark = f->clock;
                vg_shard_start(sh, f->start, 0, 1);
                vg_shard_process(sh, f->b, collect, o);
                vg_batch_reset(f->b);
            }
            uint32_t m = s[j].kind == VG_MSG_SAMPLE || s[j].kind == VG_MSG_EVENT
                             ? vg_ruleset_metric(rs, s[j].name.p, s[j].name.n) : VG_METRIC_NONE;
            vg_batch_append(f->b, &s[j], m);
        }
    }
    f->b->start = f->start;
    f->b->watermark = f->clock;
    vg_shard_start(sh, f->start, 0, 1);
    vg_shard_process(sh, f->b, collect, o);
    vg_batch_reset(f->b);
}

struct records {
    char **data;
    size_t *len;
    size_t n;
};

static int keep(void *ctx, const char *plant, size_t plant_len, const void *data, size_t len)
{
    struct records *r = ctx;
    (void)plant;
    ck_assert_int_gt((int)plant_len, 0);
    r->data = realloc(r->data, (r->n + 1) * sizeof *r->data);
    r->len = realloc(r->len, (r->n + 1) * sizeof *r->len);
    r->data[r->n] = malloc(len);
    memcpy(r->data[r->n], data, len);
    r->len[r->n++] = len;
    return 0;
}

static char **read_lines(const char *path, size_t *n, char **keep_buf)
{
    size_t len;
    char *buf = vgt_read(path, &len);
    ck_assert_ptr_nonnull(buf);
    size_t cap = 1024;
    char **lines = malloc(cap * sizeof *lines);
    *n = 0;
    for (char *save, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (*n == cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[(*n)++] = l;
    }
    *keep_buf = buf;
    return lines;
}

static void load(struct vg_ruleset **rs, struct vg_registry **reg)
{
    char rules[600], regp[600];
    snprintf(rules, sizeof rules, "%s/rules", vgt_src());
    snprintf(regp, sizeof regp, "%s/reg.yaml", vgt_dir());
    struct vg_diags d;
    vg_diags_init(&d);
    const char *paths[] = {rules};
    ck_assert_int_eq(vg_registry_load(reg, regp, &d), 0);
    ck_assert_int_eq(vg_ruleset_load(rs, paths, 1, *reg, &d), 0);
    vg_diags_fini(&d);
}

START_TEST(half_snapshot_half_equals_one_run)
{
    char bin[512], gen[600];
    snprintf(bin, sizeof bin, "%s", vgt_bin());
    snprintf(gen, sizeof gen, "%s/gen", dirname(bin));
    ck_assert_int_eq(vgt_sh("'%s' --plants 200 --days 2 --interval 120 --breach-rate 0.5 "
                            "--registry '%s/reg.yaml' --telemetry '%s/t.ndjson' 2>/dev/null",
                            gen, vgt_dir(), vgt_dir()), 0);
    struct vg_ruleset *rs;
    struct vg_registry *reg;
    load(&rs, &reg);
    char *p = vgt_path("t.ndjson"), *buf;
    size_t n;
    char **lines = read_lines(p, &n, &buf);
    size_t half = n / 2;

    struct feed f = {vg_json_parser_create(), calloc(1, sizeof(struct vg_batch)), VG_TS_NONE, VG_TS_NONE};
    vg_batch_reset(f.b);
    struct out whole = {NULL, 0, 0, rs};
    struct vg_shard *a = vg_shard_create(rs, reg);
    feed(&f, a, lines, 0, half, rs, &whole);
    size_t at_half = whole.n;
    feed(&f, a, lines, half, n, rs, &whole);

    struct feed g = {f.jp, f.b, VG_TS_NONE, VG_TS_NONE};
    struct out first = {NULL, 0, 0, rs}, second = {NULL, 0, 0, rs};
    struct vg_shard *b = vg_shard_create(rs, reg);
    feed(&g, b, lines, 0, half, rs, &first);
    struct records rec = {0};
    ck_assert_int_eq(vg_shard_export(b, keep, &rec), 0);
    ck_assert_msg(rec.n > 100, "one record per plant seen, got %zu", rec.n);
    vg_shard_destroy(b);
    struct vg_shard *c = vg_shard_create(rs, reg);
    for (size_t i = 0; i < rec.n; i++) {
        struct vg_error err;
        ck_assert_msg(vg_shard_import(c, rec.data[i], rec.len[i], &err) == 0, "%s", err.msg);
    }
    feed(&g, c, lines, half, n, rs, &second);

    /* the first half is the same, and so is everything after the restore */
    ck_assert_int_eq((int)first.n, (int)at_half);
    ck_assert_msg(second.n > 1000, "the second half should raise alerts (%zu bytes)", second.n);
    ck_assert_msg(strstr(second.buf, "\"status\":\"resolved\"") != NULL, "no resolve after restore");
    ck_assert_int_eq((int)(first.n + second.n), (int)whole.n);
    ck_assert(memcmp(whole.buf, first.buf, first.n) == 0);
    ck_assert_msg(memcmp(whole.buf + first.n, second.buf, second.n) == 0,
                  "alerts after the restore differ from the uninterrupted run");

    for (size_t i = 0; i < rec.n; i++)
        free(rec.data[i]);
    free(rec.data);
    free(rec.len);
    vg_shard_destroy(a);
    vg_shard_destroy(c);
    free(whole.buf);
    free(first.buf);
    free(second.buf);
    vg_json_parser_destroy(f.jp);
    free(f.b);
    free(lines);
    free(buf);
    free(p);
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
}
END_TEST

static const char *const rules_v1 =
    "version: 1\nrules:\n  - id: hot\n    metric: t\n    for: 1m\n    grades: [ { level: red, when: value > 50 } ]\n";
static const char *const rules_v2 = /* same id, another threshold: another rule_version */
    "version: 1\nrules:\n  - id: hot\n    metric: t\n    for: 1m\n    grades: [ { level: red, when: value > 60 } ]\n";

static struct vg_ruleset *rules_from(const char *name, const char *text)
{
    const char *path = vgt_write(name, text);
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_ruleset *rs;
    ck_assert_int_eq(vg_ruleset_load(&rs, &path, 1, NULL, &d), 0);
    vg_diags_fini(&d);
    return rs;
}

static void one_sample(struct vg_shard *sh, const struct vg_ruleset *rs, vg_ts ts, double v, struct out *o)
{
    struct vg_batch *b = calloc(1, sizeof *b);
    vg_batch_reset(b);
    struct vg_sample s = {0};
    s.kind = VG_MSG_SAMPLE;
    s.plant = (struct vg_str){"P", 1};
    s.device = (struct vg_str){"D", 1};
    s.name = (struct vg_str){"t", 1};
    s.value = v;
    s.ts = ts;
    vg_batch_append(b, &s, vg_ruleset_metric(rs, "t", 1));
    b->start = 0;
    b->watermark = ts;
    vg_shard_process(sh, b, collect, o);
    free(b);
}

START_TEST(changed_rule_starts_afresh)
{
    struct vg_ruleset *v1 = rules_from("v1.yaml", rules_v1), *v2 = rules_from("v2.yaml", rules_v2);
    struct vg_registry *reg = vg_registry_empty();
    struct out o = {NULL, 0, 0, v1};
    struct vg_shard *a = vg_shard_create(v1, reg);
    one_sample(a, v1, 0, 70, &o); /* pending since 0 */
    struct records rec = {0};
    ck_assert_int_eq(vg_shard_export(a, keep, &rec), 0);
    ck_assert_int_eq((int)rec.n, 1);
    /* same rules: the pending grade survives and fires at 60 s */
    struct vg_shard *same = vg_shard_create(v1, reg);
    struct vg_error err;
    ck_assert_int_eq(vg_shard_import(same, rec.data[0], rec.len[0], &err), 0);
    one_sample(same, v1, 60000, 70, &o);
    ck_assert_msg(strstr(o.buf ? o.buf : "", "\"status\":\"firing\"") != NULL, "restored pending did not fire");
    /* changed rule: its state is dropped, so 70 at 60 s only starts a new pending */
    struct out o2 = {NULL, 0, 0, v2};
    struct vg_shard *changed = vg_shard_create(v2, reg);
    ck_assert_int_eq(vg_shard_import(changed, rec.data[0], rec.len[0], &err), 0);
    one_sample(changed, v2, 60000, 70, &o2);
    ck_assert_msg(o2.n == 0, "a changed rule must start afresh: %s", o2.buf);
    /* damaged records are refused */
    ck_assert_int_eq(vg_shard_import(changed, rec.data[0], rec.len[0] - 1, &err), VG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "corrupt state record"));
    ck_assert_int_eq(vg_shard_import(changed, "XXXX", 4, &err), VG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a vigil state record"));
    free(rec.data[0]);
    free(rec.data);
    free(rec.len);
    free(o.buf);
    free(o2.buf);
    vg_shard_destroy(a);
    vg_shard_destroy(same);
    vg_shard_destroy(changed);
    vg_ruleset_destroy(v1);
    vg_ruleset_destroy(v2);
    vg_registry_destroy(reg);
}
END_TEST

/* ---- ownership (consumer groups) ------------------------------------------ */

static bool own_p;

static bool owns(void *ctx, const char *plant, size_t len)
{
    (void)ctx;
    return !(len == 1 && plant[0] == 'P') || own_p;
}

static const char *const absence_rules =
    "version: 1\nrules:\n  - id: quiet\n    metric: t\n"
    "    absent: { grades: [ { level: yellow, after: 1m } ] }\n";

START_TEST(disowned_plants_stay_quiet_and_regained_ones_load)
{
    struct vg_ruleset *rs = rules_from("abs.yaml", absence_rules);
    struct vg_registry *reg = vg_registry_empty();
    struct out o = {NULL, 0, 0, rs};
    struct vg_shard *a = vg_shard_create(rs, reg), *b = vg_shard_create(rs, reg);
    vg_shard_set_owner(a, owns, NULL);
    own_p = true;
    vg_shard_start(a, 0, 0, 1);
    one_sample(a, rs, 0, 1, &o); /* P/D seen at 0: silent from 60 s */
    ck_assert(!vg_shard_wants(a, "P", 1)); /* held here and owned */
    /* another instance takes P: this one must not judge it */
    own_p = false;
    vg_shard_claim(a);
    vg_shard_advance(a, 120000, collect, &o);
    ck_assert_msg(o.n == 0, "a disowned plant raised: %s", o.buf);
    ck_assert(vg_shard_wants(a, "P", 1));
    /* meanwhile the other instance saw P/D at 100 s and saved it */
    vg_shard_start(b, 0, 0, 1);
    one_sample(b, rs, 100000, 1, &o);
    struct records rec = {0};
    ck_assert_int_eq(vg_shard_export(b, keep, &rec), 0);
    ck_assert_uint_eq(rec.n, 1);
    /* P comes back: reset, waiting for its record; the record decides the deadline */
    own_p = true;
    vg_shard_claim(a);
    ck_assert(vg_shard_wants(a, "P", 1));
    struct vg_error err = {0};
    ck_assert_int_eq(vg_shard_import(a, rec.data[0], rec.len[0], &err), 0);
    ck_assert(!vg_shard_wants(a, "P", 1));
    vg_shard_advance(a, 150000, collect, &o);
    ck_assert_msg(o.n == 0, "fired before the stored deadline: %s", o.buf);
    vg_shard_advance(a, 170000, collect, &o);
    ck_assert_msg(o.buf && strstr(o.buf, "\"rule\":\"quiet\"") && strstr(o.buf, "\"at\":160000"),
                  "want the absence at 100 s + 1 m = 160000: %s", o.buf ? o.buf : "(nothing)");
    for (size_t i = 0; i < rec.n; i++)
        free(rec.data[i]);
    free(rec.data);
    free(rec.len);
    free(o.buf);
    vg_shard_destroy(a);
    vg_shard_destroy(b);
    vg_ruleset_destroy(rs);
    vg_registry_destroy(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, half_snapshot_half_equals_one_run);
    tcase_add_test(tc, changed_rule_starts_afresh);
    tcase_add_test(tc, disowned_plants_stay_quiet_and_regained_ones_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
