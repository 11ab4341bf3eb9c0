/*
 * rule.c: compiles rule files (YAML) into a rule set indexed by metric.
 * Owns: every allocation of a rule set. Must never: keep YAML nodes after
 * load, or accept a rule it cannot evaluate exactly as written.
 * DESIGN: each file is loaded with libyaml's document API so every node keeps
 * its position; every problem in every file is reported before giving up.
 */
#include "engine/rule.h"
#include "engine/yamldoc.h"
#include "engine/hash.h"
#include "engine/clock.h"
#include "engine/window.h"
#include "engine/notify.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- metric table -------------------------------------------------------- */

static uint32_t metric_intern(struct vg_ruleset *rs, const char *name)
{
    uint32_t id = vg_ruleset_metric(rs, name, strlen(name));
    if (id != VG_METRIC_NONE)
        return id;
    if ((rs->n_metrics + 1) * 2 > rs->metric_mask + 1 || !rs->metric_index) {
        uint32_t cap = rs->metric_index ? (rs->metric_mask + 1) * 2 : 64;
        uint32_t *idx = calloc(cap, sizeof *idx);
        for (uint32_t i = 0; i < rs->n_metrics; i++) {
            uint32_t h = (uint32_t)vg_hash64(rs->metric_names[i], strlen(rs->metric_names[i]), 1) & (cap - 1);
            while (idx[h])
                h = (h + 1) & (cap - 1);
            idx[h] = i + 1;
        }
        free(rs->metric_index);
        rs->metric_index = idx;
        rs->metric_mask = cap - 1;
    }
    rs->metric_names = realloc(rs->metric_names, (rs->n_metrics + 1) * sizeof *rs->metric_names);
    rs->metric_names[rs->n_metrics] = strdup(name);
    uint32_t h = (uint32_t)vg_hash64(name, strlen(name), 1) & rs->metric_mask;
    while (rs->metric_index[h])
        h = (h + 1) & rs->metric_mask;
    rs->metric_index[h] = rs->n_metrics + 1;
    return rs->n_metrics++;
}

uint32_t vg_ruleset_metric(const struct vg_ruleset *rs, const char *name, size_t n)
{
    if (!rs->metric_index)
        return VG_METRIC_NONE;
    uint32_t h = (uint32_t)vg_hash64(name, n, 1) & rs->metric_mask;
    for (;; h = (h + 1) & rs->metric_mask) {
        uint32_t e = rs->metric_index[h];
        if (!e)
            return VG_METRIC_NONE;
        const char *m = rs->metric_names[e - 1];
        if (strlen(m) == n && memcmp(m, name, n) == 0)
            return e - 1;
    }
}

/* ---- where --------------------------------------------------------------- */

static bool region_matches(const char *pattern, const char *code)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return code && strncmp(pattern, code, n - 1) == 0;
    return code && strcmp(pattern, code) == 0;
}

bool vg_rule_applies(const struct vg_rule *rule, const struct vg_plant *plant)
{
    const struct vg_where *w = &rule->where;
    if (!w->industry && !w->region && !w->plant)
        return true; /* `kind` selects declared points, not plants */
    if (!plant)
        return false;
    if (w->industry) {
        bool any = false;
        for (char **p = w->industry; *p && !any; p++)
            any = vg_plant_has_industry(plant, *p);
        if (!any)
            return false;
    }
    if (w->region) {
        bool any = false;
        for (char **p = w->region; *p && !any; p++)
            any = region_matches(*p, plant->region);
        if (!any)
            return false;
    }
    if (w->plant) {
        bool any = false;
        for (char **p = w->plant; *p && !any; p++)
            any = strcmp(*p, plant->id) == 0;
        if (!any)
            return false;
    }
    return true;
}

bool vg_rule_watches_point(const struct vg_rule *rule, const struct vg_ruleset *rs,
                           const struct vg_plant *plant, const struct vg_point *pt)
{
    if (rule->type != VG_RULE_ABSENCE || !pt->id || !vg_rule_applies(rule, plant))
        return false;
    if (rule->where.kind) {
        bool any = false;
        for (char **k = rule->where.kind; *k && !any; k++)
            any = pt->kind && !strcmp(*k, pt->kind);
        if (!any)
            return false;
    }
    if (rule->any_metric || !pt->metrics || !pt->metrics[0])
        return true;
    const char *name = rs->metric_names[rule->metrics[0]];
    for (char **m = pt->metrics; *m; m++)
        if (!strcmp(*m, name))
            return true;
    return false;
}

/* ---- destroy ------------------------------------------------------------- */

static void rule_fini(struct vg_rule *r)
{
    free(r->id);
    free(r->title);
    vg_strv_free(r->where.industry);
    vg_strv_free(r->where.region);
    vg_strv_free(r->where.plant);
    vg_strv_free(r->where.kind);
    free(r->metrics);
    for (uint32_t i = 0; i < r->n_grades; i++)
        vg_expr_fini(&r->grades[i].when);
    if (r->has_clear)
        vg_expr_fini(&r->clear);
    for (uint32_t i = 0; i < r->n_slots; i++) {
        free(r->slots[i].name);
        free(r->slots[i].src);
        if (r->slots[i].has_pred)
            vg_expr_fini(&r->slots[i].pred);
    }
    for (uint32_t i = 0; i < r->n_notify; i++) {
        vg_strv_free(r->notify[i].to);
        free(r->notify[i].template_text);
    }
    free(r->notify);
    free(r->group_rule);
    free(r->file);
}

void vg_ruleset_destroy(struct vg_ruleset *rs)
{
    if (!rs)
        return;
    for (uint32_t i = 0; i < rs->n_rules; i++)
        rule_fini(&rs->rules[i]);
    free(rs->rules);
    for (uint32_t i = 0; i < rs->n_metrics; i++)
        free(rs->metric_names[i]);
    free(rs->metric_names);
    free(rs->metric_index);
    free(rs->by_metric_start);
    free(rs->by_metric);
    free(rs->any_rules);
    free(rs->keep_latest);
    free(rs);
}

/* ---- compile one rule ---------------------------------------------------- */

struct names_ctx {
    struct vg_ruleset *rs;
    struct vg_rule *r;
    const char *metric;     /* `value`'s metric, or NULL when the rule lists none */
    char **declared;        /* the rule's `metric:` list, or NULL (then any metric may be named) */
    bool in_pred;           /* compiling the condition of count(condition, width) */
    uint32_t pred_metric;   /* the one metric that condition reads */
};

static bool id_ok(const char *s);

/* A slot for @p src, reusing an identical one. Returns its index or -1 (full). */
static int slot_add(struct vg_rule *r, const struct vg_slot *proto, const char *src, size_t n,
                    char *msg, size_t cap)
{
    for (uint32_t i = 0; i < r->n_slots; i++)
        if (strlen(r->slots[i].src) == n && !memcmp(r->slots[i].src, src, n))
            return (int)i;
    if (r->n_slots == VG_SLOTS_MAX) {
        snprintf(msg, cap, "a rule may read at most %d metrics, limits and windows", VG_SLOTS_MAX);
        return -1;
    }
    struct vg_slot *sl = &r->slots[r->n_slots];
    *sl = *proto;
    sl->src = strndup(src, n);
    return (int)r->n_slots++;
}

static bool declared_has(char **declared, const char *name, size_t n)
{
    for (char **d = declared; d && *d; d++)
        if (strlen(*d) == n && !memcmp(*d, name, n))
            return true;
    return !declared;
}

/* The metric a name means inside a rule: `value`, the rule's metric, or another one. */
static int metric_of(struct names_ctx *ctx, const char *name, size_t n, uint32_t *id, bool *is_value,
                     char *msg, size_t cap)
{
    *is_value = (n == 5 && !memcmp(name, "value", 5)) ||
                (ctx->metric && strlen(ctx->metric) == n && !memcmp(name, ctx->metric, n));
    if (*is_value) {
        if (!ctx->metric) {
            snprintf(msg, cap, "'value' needs the rule's 'metric:' (or name the metric)");
            return -1;
        }
        *id = metric_intern(ctx->rs, ctx->metric);
        return 0;
    }
    char buf[80];
    if (n >= sizeof buf || (snprintf(buf, sizeof buf, "%.*s", (int)n, name), !id_ok(buf)) ||
        memchr(name, '.', n)) {
        snprintf(msg, cap, "unknown name '%.*s' (use value, a metric, or limit.NAME)", (int)n, name);
        return -1;
    }
    if (!declared_has(ctx->declared, name, n)) {
        snprintf(msg, cap, "unknown name '%.*s' (use value, a metric listed in 'metric:', or "
                 "limit.NAME)", (int)n, name);
        return -1;
    }
    *id = metric_intern(ctx->rs, buf);
    return 0;
}

static int resolve_name(void *vctx, const char *name, size_t n, struct vg_insn *insn, char *msg,
                        size_t cap)
{
    struct names_ctx *ctx = vctx;
    if (n > 6 && !memcmp(name, "limit.", 6)) {
        struct vg_slot proto = {.kind = VG_SLOT_LIMIT, .name = NULL};
        int k = slot_add(ctx->r, &proto, name, n, msg, cap);
        if (k < 0)
            return -1;
        if (!ctx->r->slots[k].name)
            ctx->r->slots[k].name = strndup(name + 6, n - 6);
        insn->op = VG_OP_SLOT;
        insn->arg = (uint32_t)k;
        return 0;
    }
    uint32_t id;
    bool is_value;
    if (metric_of(ctx, name, n, &id, &is_value, msg, cap) < 0)
        return -1;
    if (ctx->in_pred) {
        if (ctx->pred_metric != VG_METRIC_NONE && ctx->pred_metric != id) {
            snprintf(msg, cap, "the condition of count() reads one metric, not several");
            return -1;
        }
        ctx->pred_metric = id;
        insn->op = VG_OP_VALUE; /* evaluated on that metric's own samples */
        return 0;
    }
    if (is_value) {
        insn->op = VG_OP_VALUE;
        return 0;
    }
    struct vg_slot proto = {.kind = VG_SLOT_METRIC, .metric = id};
    int k = slot_add(ctx->r, &proto, name, n, msg, cap);
    if (k < 0)
        return -1;
    insn->op = VG_OP_SLOT;
    insn->arg = (uint32_t)k;
    return 0;
}

static int resolve_call(void *vctx, const struct vg_expr_call *call, struct vg_insn *insn, char *msg,
                        size_t cap, int *err_off)
{
    struct names_ctx *ctx = vctx;
    bool is_alerts = call->n == 6 && !memcmp(call->name, "alerts", 6);
    int f = vg_wfunc_parse(call->name, call->n);
    if (!is_alerts && f < 0) {
        snprintf(msg, cap, "unknown function '%.*s' (window functions: avg min max sum count last "
                 "delta rate; and alerts(RULE, DURATION))", (int)call->n, call->name);
        return -1;
    }
    if (ctx->in_pred) {
        snprintf(msg, cap, "functions cannot be used inside the condition of count()");
        return -1;
    }
    if (call->nargs != 2) {
        snprintf(msg, cap, "%.*s() takes two arguments: %s and a duration such as 10m",
                 (int)call->n, call->name, is_alerts ? "a rule id" : f == VG_W_COUNT ? "a condition" : "a metric");
        return -1;
    }
    vg_ts width;
    const char *why;
    if (vg_duration_parse(call->arg[1], call->arg_n[1], &width, &why) < 0 || width <= 0) {
        *err_off = call->arg_off[1];
        snprintf(msg, cap, "bad window '%.*s': %s", (int)call->arg_n[1], call->arg[1],
                 width <= 0 && !why ? "must be longer than 0s" : why ? why : "must be longer than 0s");
        return -1;
    }
    size_t src_n = (size_t)(call->arg[1] + call->arg_n[1] - call->name) + 1;
    struct vg_slot proto = {.width = width};
    if (is_alerts) {
        char id[80];
        snprintf(id, sizeof id, "%.*s", (int)(call->arg_n[0] < 79 ? call->arg_n[0] : 79), call->arg[0]);
        if (!id_ok(id)) {
            *err_off = call->arg_off[0];
            snprintf(msg, cap, "alerts() needs a rule id, not '%.*s'", (int)call->arg_n[0], call->arg[0]);
            return -1;
        }
        proto.kind = VG_SLOT_ALERTS;
        int k = slot_add(ctx->r, &proto, call->name, src_n, msg, cap);
        if (k < 0)
            return -1;
        if (!ctx->r->slots[k].name)
            ctx->r->slots[k].name = strdup(id);
        insn->arg = (uint32_t)k;
        return 0;
    }
    proto.kind = VG_SLOT_WINDOW;
    proto.func = (uint8_t)f;
    struct vg_expr pred = {0};
    if (f == VG_W_COUNT && !(call->arg_n[0] && (memchr(call->arg[0], '<', call->arg_n[0]) ||
                                               memchr(call->arg[0], '>', call->arg_n[0]) ||
                                               memchr(call->arg[0], '=', call->arg_n[0])))) {
        /* count(metric, w): the number of samples */
        bool is_value;
        if (metric_of(ctx, call->arg[0], call->arg_n[0], &proto.metric, &is_value, msg, cap) < 0) {
            *err_off = call->arg_off[0];
            return -1;
        }
    } else if (f == VG_W_COUNT) {
        struct names_ctx pc = *ctx;
        pc.in_pred = true;
        pc.pred_metric = VG_METRIC_NONE;
        struct vg_expr_names names = {resolve_name, resolve_call, &pc};
        struct vg_expr_error e;
        if (vg_expr_compile(call->arg[0], call->arg_n[0], &names, true, &pred, &e) < 0) {
            *err_off = call->arg_off[0] + e.offset;
            snprintf(msg, cap, "%s", e.msg);
            return -1;
        }
        if (pc.pred_metric == VG_METRIC_NONE) {
            vg_expr_fini(&pred);
            *err_off = call->arg_off[0];
            snprintf(msg, cap, "the condition of count() must read a metric (e.g. value > 50)");
            return -1;
        }
        proto.metric = pc.pred_metric;
        proto.has_pred = true;
    } else {
        bool is_value;
        if (metric_of(ctx, call->arg[0], call->arg_n[0], &proto.metric, &is_value, msg, cap) < 0) {
            *err_off = call->arg_off[0];
            return -1;
        }
    }
    size_t before = ctx->r->n_slots;
    int k = slot_add(ctx->r, &proto, call->name, src_n, msg, cap);
    if (k < 0 || (size_t)k < before) {
        if (proto.has_pred)
            vg_expr_fini(&pred);
        if (k < 0)
            return -1;
    } else {
        ctx->r->slots[k].pred = pred;
    }
    insn->op = VG_OP_SLOT;
    insn->arg = (uint32_t)k;
    return 0;
}

static int compile_expr(struct vg_yaml *y, yaml_node_t *n, struct names_ctx *nc, const char *what,
                        struct vg_expr *out)
{
    if (!vg_yaml_is_scalar(n))
        return vg_yaml_error(y, n, "%s must be an expression such as value > 25", what);
    struct vg_expr_names names = {resolve_name, resolve_call, nc};
    struct vg_expr_error err;
    if (vg_expr_compile(vg_yaml_str(n), vg_yaml_len(n), &names, true, out, &err) < 0)
        return vg_yaml_error_at(y, n, err.offset, "%s: %s", what, err.msg);
    return 0;
}

static const char *const rule_keys[] = {"id", "title", "description", "kind", "where", "metric",
                                        "for", "stale", "grades", "clear", "clear_for", "notify",
                                        "event", "absent", "group", NULL};
static const char *const grade_keys[] = {"level", "when", "for", NULL};
static const char *const where_keys[] = {"industry", "region", "plant", "kind", NULL};
static const char *const absent_keys[] = {"grades", NULL};
static const char *const absent_grade_keys[] = {"level", "after", NULL};
static const char *const notify_keys[] = {"to", "min_level", "throttle", "template", "template_id",
                                          "unacked_for", "mode", "on_resolve", NULL};

static bool id_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

static int level_of(struct vg_yaml *y, yaml_node_t *n, uint8_t *out)
{
    if (!vg_yaml_is_scalar(n))
        return vg_yaml_error(y, n, "level must be one of blue, yellow, orange, red");
    int l = vg_level_parse(vg_yaml_str(n), vg_yaml_len(n));
    if (!l)
        return vg_yaml_error(y, n, "unknown level '%s' (use blue, yellow, orange or red)", vg_yaml_str(n));
    *out = (uint8_t)l;
    return 0;
}

/* notify: entries as engine/notify.h sends them. Templates are checked here,
 * so an unknown {placeholder} is an error at file:line:col of the placeholder. */
static bool template_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

static int load_notify(struct vg_yaml *y, yaml_node_t *list, struct vg_rule *r)
{
    if (!vg_yaml_is_seq(list))
        return vg_yaml_error(y, list, "notify must be a list of { to: [roles], … }");
    size_t cnt = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (cnt > VG_NOTIFY_ENTRIES_MAX)
        return vg_yaml_error(y, list, "at most %d notify entries per rule", VG_NOTIFY_ENTRIES_MAX);
    r->notify = calloc(cnt + 1, sizeof *r->notify);
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *n = vg_yaml_node(y, list->data.sequence.items.start[i]), *v;
        struct vg_notify *nt = &r->notify[r->n_notify];
        if (!vg_yaml_is_map(n)) {
            rc = vg_yaml_error(y, n, "a notify entry must be a mapping with 'to'");
            continue;
        }
        r->n_notify++;
        if (vg_yaml_check_keys(y, n, "notify entry", notify_keys) < 0)
            rc = VG_EINVAL;
        if (!(v = vg_yaml_get(y, n, "to")))
            rc = vg_yaml_error(y, n, "a notify entry needs 'to' (roles such as safety_officer)");
        else if (vg_yaml_strings(y, v, "to", &nt->to) < 0)
            rc = VG_EINVAL;
        if ((v = vg_yaml_get(y, n, "min_level")) && level_of(y, v, &nt->min_level) < 0)
            rc = VG_EINVAL;
        if ((v = vg_yaml_get(y, n, "throttle")) && vg_yaml_duration(y, v, "throttle", &nt->throttle_ms) < 0)
            rc = VG_EINVAL;
        if ((v = vg_yaml_get(y, n, "unacked_for")) &&
            vg_yaml_duration(y, v, "unacked_for", &nt->unacked_for_ms) < 0)
            rc = VG_EINVAL;
        const char *s;
        if ((v = vg_yaml_get(y, n, "template"))) {
            size_t bad = 0;
            char why[200];
            if (vg_yaml_string(y, v, "template", &s) < 0)
                rc = VG_EINVAL;
            else if (vg_notify_template_check(s, &bad, why, sizeof why) < 0)
                rc = vg_yaml_error_at(y, v, (int)bad, "template: %s", why);
            else
                nt->template_text = strdup(s);
        }
        if ((v = vg_yaml_get(y, n, "template_id"))) {
            if (vg_yaml_string(y, v, "template_id", &s) < 0)
                rc = VG_EINVAL;
            else if (!template_id_ok(s))
                rc = vg_yaml_error(y, v, "template_id '%s' must be 1-64 characters of A-Z a-z 0-9 _ . - "
                                   "(the carrier's template code, e.g. WARN_NH3)", s);
            else
                snprintf(nt->template_id, sizeof nt->template_id, "%s", s);
        }
        if ((v = vg_yaml_get(y, n, "mode"))) {
            if (vg_yaml_string(y, v, "mode", &s) < 0)
                rc = VG_EINVAL;
            else if (!strcmp(s, "digest"))
                nt->digest = true;
            else if (strcmp(s, "immediate"))
                rc = vg_yaml_error(y, v, "mode must be immediate or digest");
        }
        if ((v = vg_yaml_get(y, n, "on_resolve")) && vg_yaml_bool(y, v, "on_resolve", &nt->on_resolve) < 0)
            rc = VG_EINVAL;
    }
    return rc;
}

/* Sort a rule's grades by ascending level (grades are few: insertion sort). */
static void sort_grades(struct vg_rule *r)
{
    for (uint32_t a = 1; a < r->n_grades; a++)
        for (uint32_t b = a; b > 0 && r->grades[b - 1].level > r->grades[b].level; b--) {
            struct vg_grade t = r->grades[b];
            r->grades[b] = r->grades[b - 1];
            r->grades[b - 1] = t;
        }
}

/* A grade's `level`: present, known, and not already used by the rule. */
static int grade_level(struct vg_yaml *y, yaml_node_t *g, const struct vg_rule *r, const char *what,
                       uint8_t *out)
{
    yaml_node_t *v = vg_yaml_get(y, g, "level");
    if (!v)
        return vg_yaml_error(y, g, "%s needs a 'level'", what);
    if (level_of(y, v, out) < 0)
        return VG_EINVAL;
    for (uint32_t k = 0; k < r->n_grades; k++)
        if (r->grades[k].level == *out)
            return vg_yaml_error(y, v, "level %s appears twice in this rule", vg_level_name(*out));
    return 0;
}

/* A grades list: a non-empty sequence of at most VG_GRADES_MAX items. @returns how many to read. */
static size_t grade_list(struct vg_yaml *y, yaml_node_t *grades, const char *not_a_list, int *rc)
{
    if (!vg_yaml_is_seq(grades) || grades->data.sequence.items.top == grades->data.sequence.items.start) {
        *rc = vg_yaml_error(y, grades, "%s", not_a_list);
        return 0;
    }
    size_t cnt = (size_t)(grades->data.sequence.items.top - grades->data.sequence.items.start);
    if (cnt > VG_GRADES_MAX) {
        *rc = vg_yaml_error(y, grades, "at most %d grades (one per level)", VG_GRADES_MAX);
        cnt = VG_GRADES_MAX;
    }
    return cnt;
}

/* Item @p i of a grades list, if it is a mapping (its unknown keys are reported); else NULL. */
static yaml_node_t *grade_item(struct vg_yaml *y, yaml_node_t *grades, size_t i, const char *what,
                               const char *not_a_map, const char *const *keys, int *rc)
{
    yaml_node_t *g = vg_yaml_node(y, grades->data.sequence.items.start[i]);
    if (!vg_yaml_is_map(g)) {
        *rc = vg_yaml_error(y, g, "%s", not_a_map);
        return NULL;
    }
    if (vg_yaml_check_keys(y, g, what, keys) < 0)
        *rc = VG_EINVAL;
    return g;
}

/* `grades: [ { level, when, for } ]` of a threshold or group rule. */
static int load_grades(struct vg_yaml *y, yaml_node_t *n, struct names_ctx *ncp, struct vg_rule *r)
{
    int rc = 0;
    struct names_ctx nc = *ncp;
    yaml_node_t *grades = vg_yaml_get(y, n, "grades");
    if (!grades) {
        if (!vg_yaml_get(y, n, "absent"))
            rc = vg_yaml_error(y, n, "a rule needs 'grades', e.g. [ { level: yellow, when: value > 25 } ]");
    } else {
        size_t cnt = grade_list(y, grades, "grades must be a non-empty list of { level, when }", &rc);
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_t *g = grade_item(y, grades, i, "grade", "a grade must be a mapping { level, when }",
                                        grade_keys, &rc), *gv;
            if (!g)
                continue;
            struct vg_grade gr = {0};
            gr.for_ms = VG_TS_NONE;
            bool ok = grade_level(y, g, r, "a grade", &gr.level) == 0;
            if ((gv = vg_yaml_get(y, g, "for")) && vg_yaml_duration(y, gv, "for", &gr.for_ms) < 0)
                ok = false;
            if (!(gv = vg_yaml_get(y, g, "when")))
                ok = !vg_yaml_error(y, g, "a grade needs 'when', e.g. when: value > 25");
            else if (compile_expr(y, gv, &nc, "when", &gr.when) < 0)
                ok = false;
            if (!ok) {
                if (gr.when.code)
                    vg_expr_fini(&gr.when);
                rc = VG_EINVAL;
                continue;
            }
            r->grades[r->n_grades++] = gr;
        }
        sort_grades(r);
        for (uint32_t i = 0; i < r->n_grades; i++)
            if (r->grades[i].for_ms == VG_TS_NONE)
                r->grades[i].for_ms = r->for_ms;
    }
    return rc;
}

static const char *const group_keys[] = {"by", "rule", "min_level", "count", NULL};

/* `group: { by: region, rule: ID, min_level: yellow, count: plants }` */
static int load_group(struct vg_yaml *y, yaml_node_t *rule_node, yaml_node_t *g, struct vg_rule *r)
{
    int rc = 0;
    r->type = VG_RULE_GROUP;
    if (!vg_yaml_is_map(g))
        return vg_yaml_error(y, g, "group must be a mapping { by: region, rule: RULE_ID, "
                             "min_level: yellow, count: plants }");
    if (vg_yaml_check_keys(y, g, "group", group_keys) < 0)
        rc = VG_EINVAL;
    static const char *const not_with_group[] = {"metric", "event", "absent", "stale", "where", NULL};
    for (const char *const *k = not_with_group; *k; k++) {
        yaml_node_t *v = vg_yaml_get(y, rule_node, *k);
        if (v)
            rc = vg_yaml_error(y, v, "'%s' does not apply to a group rule (it counts the plants "
                               "of a region with a live alert of its member rule)", *k);
    }
    yaml_node_t *v;
    const char *s;
    if (!(v = vg_yaml_get(y, g, "rule")))
        rc = vg_yaml_error(y, g, "group needs 'rule': the rule whose alerts it counts");
    else if (vg_yaml_string(y, v, "group rule", &s) < 0)
        rc = VG_EINVAL;
    else
        r->group_rule = strdup(s);
    r->group_by = VG_GROUP_REGION;
    if ((v = vg_yaml_get(y, g, "by"))) {
        if (vg_yaml_string(y, v, "group by", &s) < 0)
            rc = VG_EINVAL;
        else if (!strcmp(s, "county"))
            r->group_by = VG_GROUP_COUNTY;
        else if (strcmp(s, "region"))
            rc = vg_yaml_error(y, v, "group 'by' must be region or county, not '%s'", s);
    }
    r->group_min_level = VG_LEVEL_BLUE;
    if ((v = vg_yaml_get(y, g, "min_level")) && level_of(y, v, &r->group_min_level) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, g, "count")) &&
        (!vg_yaml_is_scalar(v) || strcmp(vg_yaml_str(v), "plants")))
        rc = vg_yaml_error(y, v, "group 'count' must be plants (distinct plants with a live alert)");
    return rc;
}

static int load_absent(struct vg_yaml *y, yaml_node_t *absent, struct vg_rule *r)
{
    if (!vg_yaml_is_map(absent))
        return vg_yaml_error(y, absent, "absent must be a mapping { grades: [ { level, after } ] }");
    int rc = vg_yaml_check_keys(y, absent, "absent", absent_keys);
    yaml_node_t *grades = vg_yaml_get(y, absent, "grades");
    if (!grades)
        return vg_yaml_error(y, absent, "absent needs 'grades', e.g. [ { level: yellow, after: 3d } ]");
    size_t cnt = grade_list(y, grades, "absent.grades must be a non-empty list of { level, after }", &rc);
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *g = grade_item(y, grades, i, "absence grade",
                                    "an absence grade must be a mapping { level, after }",
                                    absent_grade_keys, &rc), *gv;
        if (!g)
            continue;
        struct vg_grade gr = {0};
        bool ok = grade_level(y, g, r, "an absence grade", &gr.level) == 0;
        if (!(gv = vg_yaml_get(y, g, "after")))
            ok = !vg_yaml_error(y, g, "an absence grade needs 'after', e.g. after: 3d");
        else if (vg_yaml_duration(y, gv, "after", &gr.after_ms) < 0)
            ok = false;
        else if (gr.after_ms <= 0)
            ok = !vg_yaml_error(y, gv, "'after' must be longer than 0s");
        if (!ok) {
            rc = VG_EINVAL;
            continue;
        }
        r->grades[r->n_grades++] = gr;
    }
    sort_grades(r); /* a higher level must need a longer silence: */
    for (uint32_t a = 1; a < r->n_grades; a++)
        if (r->grades[a].after_ms <= r->grades[a - 1].after_ms)
            rc = vg_yaml_error(y, grades, "level %s must need a longer silence than %s",
                               vg_level_name(r->grades[a].level), vg_level_name(r->grades[a - 1].level));
    return rc;
}

static void rule_version(struct vg_rule *r, const struct vg_ruleset *rs)
{
    char buf[4096];
    size_t o = 0;
#define PUT(...) o += (size_t)snprintf(buf + o, o < sizeof buf ? sizeof buf - o : 0, __VA_ARGS__)
    PUT("v1|%s|%d|%d|%d|%d|", r->id, r->kind, r->type, r->any_metric, r->on_event);
    for (uint32_t i = 0; i < r->n_metrics; i++)
        PUT("m:%s|", rs->metric_names[r->metrics[i]]);
    char **lists[4] = {r->where.industry, r->where.region, r->where.plant, r->where.kind};
    for (int l = 0; l < 4; l++)
        for (char **p = lists[l]; p && *p; p++)
            PUT("w%d:%s|", l, *p);
    PUT("f:%lld|cf:%lld|st:%lld|", (long long)r->for_ms, (long long)r->clear_for_ms,
        (long long)r->stale_ms);
    if (r->type == VG_RULE_GROUP)
        PUT("grp:%s:%d:%d|", r->group_rule, r->group_min_level, r->group_by);
    for (uint32_t i = 0; i < r->n_grades; i++)
        PUT("g:%d:%lld:%lld:%s|", r->grades[i].level, (long long)r->grades[i].for_ms,
            (long long)r->grades[i].after_ms, r->grades[i].when.src ? r->grades[i].when.src : "");
    if (r->has_clear)
        PUT("c:%s|", r->clear.src);
#undef PUT
    uint64_t h = vg_hash64(buf, o < sizeof buf ? o : sizeof buf, 0x5eed);
    snprintf(r->version, sizeof r->version, "%08x", (unsigned)(h >> 32));
}

static int load_rule(struct vg_yaml *y, yaml_node_t *n, struct vg_ruleset *rs, struct vg_rule *r)
{
    int rc = 0;
    yaml_node_t *v;
    const char *s;
    if (!vg_yaml_is_map(n))
        return vg_yaml_error(y, n, "a rule must be a mapping with id, metric and grades");
    r->file = strdup(y->file);
    r->line = (int)n->start_mark.line + 1;
    r->stale_ms = 5 * 60000;
    if (vg_yaml_check_keys(y, n, "rule", rule_keys) < 0)
        rc = VG_EINVAL;
    if (!(v = vg_yaml_get(y, n, "id"))) {
        rc = vg_yaml_error(y, n, "a rule needs an 'id'");
    } else if (vg_yaml_string(y, v, "id", &s) == 0) {
        if (!id_ok(s))
            rc = vg_yaml_error(y, v, "rule id '%s' must be 1-64 characters of a-z 0-9 _ . -", s);
        r->id = strdup(s);
    } else {
        rc = VG_EINVAL;
    }
    if ((v = vg_yaml_get(y, n, "title")) && vg_yaml_string(y, v, "title", &s) == 0)
        r->title = strdup(s);
    if ((v = vg_yaml_get(y, n, "kind"))) {
        if (vg_yaml_string(y, v, "kind", &s) < 0)
            rc = VG_EINVAL;
        else if (!strcmp(s, "warning"))
            r->kind = VG_KIND_WARNING;
        else if (strcmp(s, "alarm"))
            rc = vg_yaml_error(y, v, "kind must be alarm or warning, not '%s'", s);
    }
    if ((v = vg_yaml_get(y, n, "group"))) {
        if (load_group(y, n, v, r) < 0)
            rc = VG_EINVAL;
        struct names_ctx gc = {rs, r, "count", NULL, false, VG_METRIC_NONE};
        if (load_grades(y, n, &gc, r) < 0)
            rc = VG_EINVAL;
        if ((v = vg_yaml_get(y, n, "clear"))) {
            if (compile_expr(y, v, &gc, "clear", &r->clear) < 0)
                rc = VG_EINVAL;
            else
                r->has_clear = true;
        }
        if ((v = vg_yaml_get(y, n, "notify")) && load_notify(y, v, r) < 0)
            rc = VG_EINVAL;
        return rc;
    }
    if ((v = vg_yaml_get(y, n, "where"))) {
        if (!vg_yaml_is_map(v)) {
            rc = vg_yaml_error(y, v, "where must be a mapping, e.g. { industry: ammonia_refrigeration }");
        } else {
            if (vg_yaml_check_keys(y, v, "where", where_keys) < 0)
                rc = VG_EINVAL;
            yaml_node_t *w;
            if ((w = vg_yaml_get(y, v, "industry")) && vg_yaml_strings(y, w, "industry", &r->where.industry) < 0)
                rc = VG_EINVAL;
            if ((w = vg_yaml_get(y, v, "region")) && vg_yaml_strings(y, w, "region", &r->where.region) < 0)
                rc = VG_EINVAL;
            if ((w = vg_yaml_get(y, v, "plant")) && vg_yaml_strings(y, w, "plant", &r->where.plant) < 0)
                rc = VG_EINVAL;
            if ((w = vg_yaml_get(y, v, "kind")) && vg_yaml_strings(y, w, "kind", &r->where.kind) < 0)
                rc = VG_EINVAL;
        }
    }
    struct names_ctx nc = {rs, r, NULL, NULL, false, VG_METRIC_NONE};
    char **metrics = NULL;
    yaml_node_t *absent = vg_yaml_get(y, n, "absent"), *event = vg_yaml_get(y, n, "event");
    r->type = absent ? VG_RULE_ABSENCE : VG_RULE_THRESHOLD;
    v = vg_yaml_get(y, n, "metric");
    if (event && v) {
        rc = vg_yaml_error(y, event, "a rule watches either an 'event' or a 'metric', not both");
    } else if (event) {
        const char *ev;
        if (vg_yaml_string(y, event, "event", &ev) < 0) {
            rc = VG_EINVAL;
        } else if (!id_ok(ev)) {
            rc = vg_yaml_error(y, event, "event '%s' must be a name of a-z 0-9 _ . -", ev);
        } else {
            if (!absent)
                rc = vg_yaml_error(y, event, "an 'event' rule needs 'absent' (events carry no value "
                                   "to compare)");
            r->on_event = true;
            r->metrics = malloc(sizeof *r->metrics);
            r->metrics[0] = metric_intern(rs, ev);
            r->n_metrics = 1;
        }
    } else if (!v) {
        if (absent)
            rc = vg_yaml_error(y, n, "an absence rule needs an 'event' or a 'metric'");
        /* else the expressions name their metrics */
    } else {
        int cnt = vg_yaml_strings(y, v, "metric", &metrics);
        if (cnt < 0) {
            rc = VG_EINVAL;
        } else if (cnt > 1) {
            if (absent)
                rc = vg_yaml_error(y, v, "an absence rule watches one metric");
            for (int i = 0; i < cnt; i++)
                if (!id_ok(metrics[i]))
                    rc = vg_yaml_error(y, v, "metric '%s' must be a name of a-z 0-9 _ . -", metrics[i]);
            nc.metric = metrics[0];
            nc.declared = metrics;
            r->metrics = malloc(sizeof *r->metrics);
            r->metrics[0] = metric_intern(rs, metrics[0]);
            r->n_metrics = 1;
            r->has_value = true;
        } else if (!strcmp(metrics[0], "*")) {
            if (!absent)
                rc = vg_yaml_error(y, v, "metric \"*\" (any telemetry) only makes sense with 'absent'");
            r->any_metric = true;
        } else if (!id_ok(metrics[0])) {
            rc = vg_yaml_error(y, v, "metric '%s' must be a name of a-z 0-9 _ . -", metrics[0]);
        } else {
            nc.metric = metrics[0];
            nc.declared = metrics; /* a rule that lists its metrics may read only those */
            r->metrics = malloc(sizeof *r->metrics);
            r->metrics[0] = metric_intern(rs, metrics[0]);
            r->n_metrics = 1;
            r->has_value = true;
        }
    }
    if (absent) {
        static const char *const not_with_absent[] = {"grades", "for", "clear", "clear_for", NULL};
        for (const char *const *k = not_with_absent; *k; k++)
            if ((v = vg_yaml_get(y, n, *k)))
                rc = vg_yaml_error(y, v, "'%s' does not apply to an absence rule (it resolves on the "
                                   "next matching message)", *k);
        if (load_absent(y, absent, r) < 0)
            rc = VG_EINVAL;
        vg_strv_free(metrics);
        if ((v = vg_yaml_get(y, n, "notify")) && load_notify(y, v, r) < 0)
            rc = VG_EINVAL;
        return rc;
    }
    if ((v = vg_yaml_get(y, n, "for")) && vg_yaml_duration(y, v, "for", &r->for_ms) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, n, "stale")) && vg_yaml_duration(y, v, "stale", &r->stale_ms) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, n, "clear_for")) && vg_yaml_duration(y, v, "clear_for", &r->clear_for_ms) < 0)
        rc = VG_EINVAL;
    if (load_grades(y, n, &nc, r) < 0)
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, n, "clear"))) {
        if (compile_expr(y, v, &nc, "clear", &r->clear) < 0)
            rc = VG_EINVAL;
        else
            r->has_clear = true;
    }
    if ((v = vg_yaml_get(y, n, "notify")) && load_notify(y, v, r) < 0)
        rc = VG_EINVAL;
    vg_strv_free(metrics);
    return rc;
}

static int load_file(struct vg_ruleset *rs, const char *file, struct vg_diags *diags,
                     const struct vg_registry *reg)
{
    struct vg_yaml y;
    if (vg_yaml_load(&y, file, diags) < 0) {
        vg_yaml_fini(&y);
        return VG_EINVAL;
    }
    int rc = 0;
    yaml_node_t *root = vg_yaml_root(&y), *v;
    static const char *const top_keys[] = {"version", "rules", NULL};
    if (!vg_yaml_is_map(root)) {
        rc = vg_yaml_error(&y, root, "a rule file is a mapping with 'version: 1' and 'rules'");
        goto done;
    }
    if (vg_yaml_check_keys(&y, root, "rule file", top_keys) < 0)
        rc = VG_EINVAL;
    if (!(v = vg_yaml_get(&y, root, "version")) || !vg_yaml_is_scalar(v) || strcmp(vg_yaml_str(v), "1"))
        rc = vg_yaml_error(&y, v ? v : root, "a rule file needs 'version: 1'");
    v = vg_yaml_get(&y, root, "rules");
    if (!v) {
        rc = vg_yaml_error(&y, root, "a rule file needs a 'rules' list");
        goto done;
    }
    if (!vg_yaml_is_seq(v)) {
        rc = vg_yaml_error(&y, v, "'rules' must be a list");
        goto done;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *rn = vg_yaml_node(&y, *it);
        struct vg_rule r = {0};
        r.index = rs->n_rules;
        if (load_rule(&y, rn, rs, &r) < 0) {
            rc = VG_EINVAL;
            rule_fini(&r);
            continue;
        }
        for (uint32_t i = 0; i < rs->n_rules; i++) {
            if (!strcmp(rs->rules[i].id, r.id)) {
                rc = vg_yaml_error(&y, vg_yaml_get(&y, rn, "id"),
                                   "duplicate rule id '%s' (first defined at %s:%d)", r.id,
                                   rs->rules[i].file, rs->rules[i].line);
                break;
            }
        }
        if (reg && reg->n_plants && (r.where.industry || r.where.region || r.where.plant)) {
            bool any = false;
            for (uint32_t i = 0; i < reg->n_plants && !any; i++)
                any = vg_rule_applies(&r, &reg->plants[i]);
            if (!any)
                rc = vg_yaml_error(&y, vg_yaml_get(&y, rn, "where"),
                                   "rule '%s' selects no plant in the registry", r.id);
        }
        rs->rules = realloc(rs->rules, (rs->n_rules + 1) * sizeof *rs->rules);
        rs->rules[rs->n_rules++] = r;
    }
done:
    vg_yaml_fini(&y);
    return rc;
}

const struct vg_rule *vg_ruleset_find(const struct vg_ruleset *rs, const char *id)
{
    for (uint32_t i = 0; i < rs->n_rules; i++)
        if (!strcmp(rs->rules[i].id, id))
            return &rs->rules[i];
    return NULL;
}

static void add_metric(struct vg_rule *r, uint32_t m)
{
    for (uint32_t i = 0; i < r->n_metrics; i++)
        if (r->metrics[i] == m)
            return;
    r->metrics = realloc(r->metrics, (r->n_metrics + 1) * sizeof *r->metrics);
    r->metrics[r->n_metrics++] = m;
}

static uint32_t align8(uint32_t x)
{
    return (x + 7u) & ~7u;
}

/*
 * After every file is loaded: resolve alerts() targets, give each rule the set
 * of metrics it reads, order promotions after what they count, and lay out
 * the per-(rule, subject) extension (limits, windows, firing counters).
 */
static int finalize(struct vg_ruleset *rs, struct vg_diags *diags)
{
    int rc = 0;
    rs->keep_latest = calloc(rs->n_metrics + 1, sizeof *rs->keep_latest);
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        struct vg_rule *r = &rs->rules[i];
        for (uint32_t k = 0; k < r->n_slots; k++) {
            struct vg_slot *sl = &r->slots[k];
            if (sl->kind == VG_SLOT_METRIC || sl->kind == VG_SLOT_WINDOW)
                add_metric(r, sl->metric);
            if (sl->kind == VG_SLOT_METRIC)
                rs->keep_latest[sl->metric] = true;
            if (sl->kind == VG_SLOT_ALERTS) {
                const struct vg_rule *t = vg_ruleset_find(rs, sl->name);
                if (!t) {
                    rc = vg_diags_add(diags, r->file, r->line, 1,
                                      "rule '%s': alerts(%s, …) names no rule", r->id, sl->name);
                    continue;
                }
                sl->target = (uint32_t)(t - rs->rules);
                if (t == r)
                    rc = vg_diags_add(diags, r->file, r->line, 1,
                                      "rule '%s': alerts() cannot count the rule's own alerts", r->id);
            }
        }
        if (r->type == VG_RULE_GROUP) {
            const struct vg_rule *m = r->group_rule ? vg_ruleset_find(rs, r->group_rule) : NULL;
            if (!m) {
                rc = vg_diags_add(diags, r->file, r->line, 1, "group rule '%s' counts rule '%s', "
                                  "which does not exist", r->id, r->group_rule ? r->group_rule : "");
                continue;
            }
            if (m->type == VG_RULE_GROUP)
                rc = vg_diags_add(diags, r->file, r->line, 1, "group rule '%s' cannot count another "
                                  "group rule ('%s')", r->id, m->id);
            r->group_member = (uint32_t)(m - rs->rules);
            rs->n_group++;
            continue;
        }
        r->compound = r->n_metrics > 1;
        if (r->compound && r->has_value)
            rs->keep_latest[r->metrics[0]] = true; /* `value` when another metric updates */
        if (r->type == VG_RULE_THRESHOLD && !r->n_metrics)
            rc = vg_diags_add(diags, r->file, r->line, 1,
                              "rule '%s' reads no metric: give 'metric:' or name one in 'when'", r->id);
    }
    if (rc < 0)
        return rc;
    /* ranks: a rule counting another's alerts is evaluated after it */
    for (int pass = 0; pass <= VG_SLOTS_MAX; pass++) {
        bool changed = false;
        for (uint32_t i = 0; i < rs->n_rules; i++) {
            struct vg_rule *r = &rs->rules[i];
            for (uint32_t k = 0; k < r->n_slots; k++)
                if (r->slots[k].kind == VG_SLOT_ALERTS && r->rank <= rs->rules[r->slots[k].target].rank) {
                    r->rank = (uint8_t)(rs->rules[r->slots[k].target].rank + 1);
                    changed = true;
                }
        }
        if (!changed)
            break;
        if (pass == VG_SLOTS_MAX) {
            struct vg_rule *r = &rs->rules[0];
            return vg_diags_add(diags, r->file, r->line, 1, "alerts() references form a cycle");
        }
    }
    /* firing counters a rule keeps for the alerts() of others */
    for (uint32_t i = 0; i < rs->n_rules; i++)
        for (uint32_t k = 0; k < rs->rules[i].n_slots; k++) {
            const struct vg_slot *sl = &rs->rules[i].slots[k];
            if (sl->kind != VG_SLOT_ALERTS)
                continue;
            struct vg_rule *t = &rs->rules[sl->target];
            bool have = false;
            for (uint32_t f = 0; f < t->n_fired; f++)
                have |= t->fired_width[f] == sl->width;
            if (!have && t->n_fired < VG_SLOTS_MAX)
                t->fired_width[t->n_fired++] = sl->width;
        }
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        struct vg_rule *r = &rs->rules[i];
        uint32_t off = 0;
        for (uint32_t k = 0; k < r->n_slots; k++)
            if (r->slots[k].kind == VG_SLOT_LIMIT) {
                r->slots[k].ext_off = off;
                off += sizeof(double);
            }
        for (uint32_t k = 0; k < r->n_slots; k++)
            if (r->slots[k].kind == VG_SLOT_WINDOW) {
                r->slots[k].ext_off = off = align8(off);
                off += (uint32_t)vg_window_bytes(r->slots[k].width, 0);
            }
        for (uint32_t f = 0; f < r->n_fired; f++) {
            r->fired_off[f] = off = align8(off);
            off += (uint32_t)vg_window_bytes(r->fired_width[f], 0);
        }
        r->ext_size = align8(off);
    }
    return 0;
}

void vg_ruleset_limit_gaps(const struct vg_ruleset *rs, const struct vg_registry *reg,
                           struct vg_diags *notes)
{
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        const struct vg_rule *r = &rs->rules[i];
        for (uint32_t k = 0; k < r->n_slots; k++) {
            if (r->slots[k].kind != VG_SLOT_LIMIT)
                continue;
            char examples[200] = "";
            size_t eo = 0;
            uint32_t gaps = 0;
            for (uint32_t p = 0; p < reg->n_plants; p++) {
                const struct vg_plant *pl = &reg->plants[p];
                if (!vg_rule_applies(r, pl))
                    continue;
                for (uint32_t d = 0; d < pl->n_points; d++) {
                    const struct vg_point *pt = &pl->points[d];
                    /* a point that lists its metrics is checked for the rule's; one that
                     * does not, only if it declares set points at all */
                    bool reads = false;
                    if (pt->metrics) {
                        for (char **m = pt->metrics; *m && !reads; m++)
                            for (uint32_t j = 0; j < r->n_metrics && !reads; j++)
                                reads = !strcmp(*m, rs->metric_names[r->metrics[j]]);
                    } else {
                        reads = pt->n_limits > 0;
                    }
                    bool has = false;
                    for (uint32_t l = 0; l < pt->n_limits && !has; l++)
                        has = !strcmp(pt->limits[l].name, r->slots[k].name);
                    if (!reads || has)
                        continue;
                    if (gaps < 3 && eo < sizeof examples)
                        eo += (size_t)snprintf(examples + eo, sizeof examples - eo, "%s%s/%s",
                                               gaps ? ", " : "", pl->id, pt->id);
                    gaps++;
                }
            }
            if (gaps)
                vg_diags_add(notes, r->file, r->line, 1,
                             "note: rule '%s' reads limit.%s, which %u point%s not declare (%s%s): "
                             "the rule skips %s", r->id, r->slots[k].name, gaps,
                             gaps == 1 ? " does" : "s do", examples, gaps > 3 ? ", …" : "",
                             gaps == 1 ? "it" : "them");
        }
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

static int load_path(struct vg_ruleset *rs, const char *path, struct vg_diags *diags,
                     const struct vg_registry *reg)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return vg_diags_add(diags, path, 0, 0, "no such file or directory");
    if (!S_ISDIR(st.st_mode))
        return load_file(rs, path, diags, reg);
    DIR *d = opendir(path);
    if (!d)
        return vg_diags_add(diags, path, 0, 0, "cannot open directory");
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (nm[0] == '.' || !(ends_with(nm, ".yaml") || ends_with(nm, ".yml")) ||
            ends_with(nm, ".test.yaml") || ends_with(nm, ".test.yml") || !strncmp(nm, "registry", 8))
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        size_t len = strlen(path) + strlen(nm) + 2;
        names[n] = malloc(len);
        snprintf(names[n], len, "%s/%s", path, nm);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, str_cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (load_file(rs, names[i], diags, reg) < 0)
            rc = VG_EINVAL;
        free(names[i]);
    }
    free(names);
    return rc;
}

int vg_ruleset_load(struct vg_ruleset **out, const char *const *paths, size_t n_paths,
                    const struct vg_registry *reg, struct vg_diags *diags)
{
    *out = NULL;
    struct vg_ruleset *rs = calloc(1, sizeof *rs);
    int rc = 0;
    for (size_t i = 0; i < n_paths; i++)
        if (load_path(rs, paths[i], diags, reg) < 0)
            rc = VG_EINVAL;
    if (rc < 0 || diags->n) {
        vg_ruleset_destroy(rs);
        return VG_EINVAL;
    }
    if (finalize(rs, diags) < 0) {
        vg_ruleset_destroy(rs);
        return VG_EINVAL;
    }
    for (uint32_t i = 0; i < rs->n_rules; i++)
        rule_version(&rs->rules[i], rs);
    /* metric -> rules index (counting sort), each list in (rank, file order) */
    rs->by_metric_start = calloc(rs->n_metrics + 2, sizeof *rs->by_metric_start);
    uint32_t total = 0;
    for (uint32_t i = 0; i < rs->n_rules; i++)
        for (uint32_t k = 0; k < rs->rules[i].n_metrics; k++, total++)
            rs->by_metric_start[rs->rules[i].metrics[k] + 1]++;
    for (uint32_t m = 0; m < rs->n_metrics; m++)
        rs->by_metric_start[m + 1] += rs->by_metric_start[m];
    rs->by_metric = malloc((total + 1) * sizeof *rs->by_metric);
    uint32_t *fill = calloc(rs->n_metrics + 1, sizeof *fill);
    for (uint8_t rank = 0; rank <= VG_SLOTS_MAX; rank++)
        for (uint32_t i = 0; i < rs->n_rules; i++) {
            if (rs->rules[i].rank != rank)
                continue;
            for (uint32_t k = 0; k < rs->rules[i].n_metrics; k++) {
                uint32_t m = rs->rules[i].metrics[k];
                rs->by_metric[rs->by_metric_start[m] + fill[m]++] = i;
            }
        }
    free(fill);
    rs->any_rules = malloc((rs->n_rules + 1) * sizeof *rs->any_rules);
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        if (rs->rules[i].type == VG_RULE_ABSENCE)
            rs->n_absence++;
        if (rs->rules[i].any_metric)
            rs->any_rules[rs->n_any++] = i;
    }
    *out = rs;
    return VG_OK;
}
