/*
 * alert.c: the alert lifecycle state machine, alert ids and alert JSON.
 * Owns: everything alert.h declares. Must never: allocate; the step runs once
 * per sample per applicable rule.
 */
#include "engine/alert.h"
#include "engine/hash.h"
#include "engine/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vg_rstate_init(struct vg_rstate *st, uint16_t rule)
{
    for (int g = 0; g < VG_GRADES_MAX; g++)
        st->pending[g] = VG_TS_NONE;
    st->started_at = VG_TS_NONE;
    st->clear_since = VG_TS_NONE;
    st->next = 0;
    st->subject = 0;
    st->rule = rule;
    st->level = 0;
    st->flags = 0;
    st->ext = 0;
}

bool vg_rstate_step(struct vg_rstate *st, const struct vg_rule *rule, vg_ts ts,
                    const struct vg_eval_env *env, struct vg_transition *out)
{
    int fired = -1;
    bool lowest_holds = false;
    for (uint32_t g = 0; g < rule->n_grades; g++) {
        bool holds = vg_truthy(vg_expr_eval(&rule->grades[g].when, env));
        if (!holds) {
            st->pending[g] = VG_TS_NONE;
            continue;
        }
        if (g == 0)
            lowest_holds = true;
        if (st->pending[g] == VG_TS_NONE)
            st->pending[g] = ts;
        if (ts - st->pending[g] >= rule->grades[g].for_ms)
            fired = (int)g;
    }
    if (!st->level) {
        if (fired < 0)
            return false;
        vg_ts started = st->pending[fired];
        for (uint32_t g = 0; g < rule->n_grades; g++)
            if (st->pending[g] != VG_TS_NONE && st->pending[g] < started)
                started = st->pending[g];
        st->level = rule->grades[fired].level;
        st->started_at = started;
        st->clear_since = VG_TS_NONE;
        *out = (struct vg_transition){VG_ALERT_FIRING, st->level, (uint8_t)fired, started,
                                      st->pending[fired]};
        return true;
    }
    if (fired >= 0 && rule->grades[fired].level > st->level) {
        st->level = rule->grades[fired].level;
        st->clear_since = VG_TS_NONE;
        *out = (struct vg_transition){VG_ALERT_ESCALATED, st->level, (uint8_t)fired, st->started_at,
                                      st->pending[fired]};
        return true;
    }
    bool clear = rule->has_clear ? vg_truthy(vg_expr_eval(&rule->clear, env)) : !lowest_holds;
    if (!clear) {
        st->clear_since = VG_TS_NONE;
        return false;
    }
    if (st->clear_since == VG_TS_NONE)
        st->clear_since = ts;
    if (ts - st->clear_since < rule->clear_for_ms)
        return false;
    *out = (struct vg_transition){VG_ALERT_RESOLVED, st->level, 0, st->started_at, st->clear_since};
    /* a fresh start for the next breach; links, extension and flags stay */
    for (int g = 0; g < VG_GRADES_MAX; g++)
        st->pending[g] = VG_TS_NONE;
    st->started_at = VG_TS_NONE;
    st->clear_since = VG_TS_NONE;
    st->level = 0;
    return true;
}

/* The first grade above the live level: the next one to fire. */
static uint32_t absence_next_grade(const struct vg_rstate *st, const struct vg_rule *rule)
{
    uint32_t g = 0;
    while (g < rule->n_grades && rule->grades[g].level <= st->level)
        g++;
    return g;
}

vg_ts vg_absence_next(const struct vg_rstate *st, const struct vg_rule *rule)
{
    if (st->pending[0] == VG_TS_NONE)
        return VG_TS_NONE;
    uint32_t g = absence_next_grade(st, rule);
    return g < rule->n_grades ? st->pending[0] + rule->grades[g].after_ms : VG_TS_NONE;
}

int vg_absence_due(struct vg_rstate *st, const struct vg_rule *rule, vg_ts now,
                   struct vg_transition out[VG_GRADES_MAX])
{
    int n = 0;
    if (st->pending[0] == VG_TS_NONE)
        return 0;
    for (uint32_t g = absence_next_grade(st, rule); g < rule->n_grades; g++) {
        vg_ts deadline = st->pending[0] + rule->grades[g].after_ms;
        if (deadline > now)
            break;
        uint8_t status = st->level ? VG_ALERT_ESCALATED : VG_ALERT_FIRING;
        if (!st->level)
            st->started_at = deadline;
        st->level = rule->grades[g].level;
        out[n++] = (struct vg_transition){status, st->level, (uint8_t)g, st->started_at, deadline};
    }
    return n;
}

int vg_absence_seen(struct vg_rstate *st, const struct vg_rule *rule, vg_ts ts,
                    struct vg_transition out[VG_GRADES_MAX + 1])
{
    if (st->pending[0] == VG_TS_NONE) { /* first sight of a subject nobody declared */
        st->pending[0] = ts;
        st->flags |= VG_RS_SEEN;
        return 0;
    }
    int n = vg_absence_due(st, rule, ts, out);
    if (st->level) {
        out[n++] = (struct vg_transition){VG_ALERT_RESOLVED, st->level, 0, st->started_at, ts};
        st->level = 0;
        st->started_at = VG_TS_NONE;
    }
    if (ts > st->pending[0] || !(st->flags & VG_RS_SEEN))
        st->pending[0] = ts;
    st->flags |= VG_RS_SEEN;
    return n;
}

void vg_alert_id(const char *rule, const char *plant, size_t plant_len, const char *device,
                 size_t dev_len, vg_ts started_at, char out[17])
{
    char buf[256];
    size_t rl = strlen(rule);
    size_t o = 0;
    if (rl > 64) rl = 64;
    if (plant_len > 64) plant_len = 64;
    if (dev_len > 64) dev_len = 64;
    memcpy(buf + o, rule, rl), o += rl, buf[o++] = 0;
    memcpy(buf + o, plant, plant_len), o += plant_len, buf[o++] = 0;
    memcpy(buf + o, device, dev_len), o += dev_len, buf[o++] = 0;
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%lld", (long long)started_at);
    uint64_t h = vg_hash64(buf, o, 0x616c657274ULL);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

const char *vg_alert_status_name(int status)
{
    switch (status) {
    case VG_ALERT_FIRING: return "firing";
    case VG_ALERT_ESCALATED: return "escalated";
    case VG_ALERT_RESOLVED: return "resolved";
    }
    return "unknown";
}

/* Shortest decimal that reads back as the same double. */
static int fmt_double(char *buf, size_t cap, double v)
{
    for (int prec = 6; prec <= 17; prec += (prec < 15 ? 9 : 1)) {
        int n = snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return n;
    }
    return snprintf(buf, cap, "%.17g", v);
}

struct out {
    char *buf;
    size_t cap, o;
    bool overflow;
};

static void put(struct out *w, const char *s, size_t n)
{
    if (w->o + n > w->cap) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->o, s, n);
    w->o += n;
}

static void puts_lit(struct out *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_str(struct out *w, const char *key, const char *s, size_t n)
{
    puts_lit(w, key);
    put(w, "\"", 1);
    int e = vg_json_escape(w->buf + w->o, w->cap > w->o ? w->cap - w->o : 0, s, n);
    if (e < 0)
        w->overflow = true;
    else
        w->o += (size_t)e;
    put(w, "\"", 1);
}

static void put_num(struct out *w, const char *key, double v)
{
    char tmp[40];
    puts_lit(w, key);
    if (v != v) {
        puts_lit(w, "null"); /* a missing value */
        return;
    }
    put(w, tmp, (size_t)fmt_double(tmp, sizeof tmp, v));
}

static void put_int(struct out *w, const char *key, long long v)
{
    char tmp[40];
    puts_lit(w, key);
    put(w, tmp, (size_t)snprintf(tmp, sizeof tmp, "%lld", v));
}

int vg_alert_format(const struct vg_alert *a, const struct vg_ruleset *rs, char *buf, size_t cap)
{
    const struct vg_rule *r = &rs->rules[a->rule];
    char id[17];
    bool group = a->flags & VG_ALERT_F_GROUP;
    if (group) /* the subject is the region */
        vg_alert_id(r->id, a->region, strlen(a->region), "", 0, a->started_at, id);
    else
        vg_alert_id(r->id, a->plant, a->plant_len, a->device, a->dev_len, a->started_at, id);
    struct out w = {buf, cap, 0, false};
    const char *metric = a->metric != VG_METRIC_NONE ? rs->metric_names[a->metric]
                         : r->n_metrics ? rs->metric_names[r->metrics[0]] : "";
    put_str(&w, "{\"alert_id\":", id, 16);
    put_str(&w, ",\"rule\":", r->id, strlen(r->id));
    /* title is required by schemas/alert.schema.json; a rule without one is named by its id */
    const char *title = r->title && *r->title ? r->title : r->id;
    put_str(&w, ",\"title\":", title, strlen(title));
    const char *status = vg_alert_status_name(a->status);
    put_str(&w, ",\"status\":", status, strlen(status));
    const char *level = vg_level_name(a->level);
    put_str(&w, ",\"level\":", level, strlen(level));
    const char *kind = r->kind == VG_KIND_WARNING ? "warning" : "alarm";
    put_str(&w, ",\"kind\":", kind, strlen(kind));
    if (!group) {
        put_str(&w, ",\"plant\":", a->plant, a->plant_len);
        put_str(&w, ",\"device\":", a->device, a->dev_len);
    }
    if (a->region)
        put_str(&w, ",\"region\":", a->region, strlen(a->region));
    if (group) {
        /* no metric or value: the subject is a region */
    } else if (r->type == VG_RULE_ABSENCE) {
        const char *m = r->any_metric ? "*" : metric;
        put_str(&w, r->on_event ? ",\"event\":" : ",\"metric\":", m, strlen(m));
    } else {
        put_str(&w, ",\"metric\":", metric, strlen(metric));
        put_num(&w, ",\"value\":", a->value);
    }
    put_int(&w, ",\"started_at\":", (long long)a->started_at);
    put_int(&w, ",\"at\":", (long long)a->at);
    put_str(&w, ",\"rule_version\":", r->version, strlen(r->version));
    if (a->flags & VG_ALERT_F_RESUMED) {
        /* it began while the subject was muted, and is told now that the mute is over */
        if (a->muted_until != VG_TS_NONE) {
            put_int(&w, ",\"after_mute\":{\"reason\":\"maintenance\",\"from\":", (long long)a->muted_from);
            put_int(&w, ",\"until\":", (long long)a->muted_until);
            puts_lit(&w, "}");
        } else {
            puts_lit(&w, ",\"after_mute\":{\"reason\":\"quality\"}");
        }
    }
    /* because: the values that decided this change */
    puts_lit(&w, ",\"because\":{");
    if (group) {
        const char *member = rs->rules[r->group_member].id;
        put_num(&w, "\"count\":", a->value);
        put_str(&w, ",\"rule\":", member, strlen(member));
        put_str(&w, ",\"min_level\":", vg_level_name(r->group_min_level),
                strlen(vg_level_name(r->group_min_level)));
        puts_lit(&w, ",\"plants\":");
        puts_lit(&w, a->group_plants ? a->group_plants : "[]");
        if (a->status == VG_ALERT_RESOLVED) {
            const char *cond = r->has_clear ? r->clear.src : r->grades[0].when.src;
            put_str(&w, r->has_clear ? ",\"clear\":" : ",\"no_longer\":", cond, strlen(cond));
        } else {
            const char *cond = r->grades[a->grade].when.src;
            put_str(&w, ",\"when\":", cond, strlen(cond));
        }
    } else if (r->type == VG_RULE_ABSENCE) {
        /* since = the last matching message (or the clock start for a point that never reported) */
        if (a->flags & VG_ALERT_F_NEVER_SEEN) {
            puts_lit(&w, "\"last_seen\":null");
            put_int(&w, ",\"watched_since\":", (long long)a->since);
        } else {
            put_int(&w, "\"last_seen\":", (long long)a->since);
        }
        if (a->status == VG_ALERT_RESOLVED) {
            put_int(&w, ",\"silent_ms\":", (long long)(a->at - a->since));
        } else {
            put_int(&w, ",\"after_ms\":", (long long)r->grades[a->grade].after_ms);
        }
    } else {
        put_str(&w, "", metric, strlen(metric));
        put_num(&w, ":", a->value);
        if (r->has_value && a->metric != VG_METRIC_NONE && a->metric != r->metrics[0]) {
            /* `value` is the rule's metric: give the latest value the conditions saw */
            const char *vm = rs->metric_names[r->metrics[0]];
            put_str(&w, ",", vm, strlen(vm));
            put_num(&w, ":", a->rule_value);
        }
        for (uint32_t k = 0; k < a->n_slots; k++) {
            /* each metric, set point, window and count the conditions read */
            if (r->slots[k].kind == VG_SLOT_METRIC && r->slots[k].metric == a->metric)
                continue; /* already there as the sample's own value */
            put_str(&w, ",", r->slots[k].src, strlen(r->slots[k].src));
            put_num(&w, ":", a->slot[k]);
        }
        if (a->status == VG_ALERT_RESOLVED) {
            if (r->has_clear) {
                put_str(&w, ",\"clear\":", r->clear.src, strlen(r->clear.src));
            } else {
                char cond[300];
                int n = snprintf(cond, sizeof cond, "not (%s)", r->grades[0].when.src);
                put_str(&w, ",\"clear\":", cond, (size_t)(n < (int)sizeof cond ? n : (int)sizeof cond - 1));
            }
            put_int(&w, ",\"clear_since\":", (long long)a->since);
            put_int(&w, ",\"clear_for_ms\":", (long long)r->clear_for_ms);
        } else {
            const struct vg_grade *g = &r->grades[a->grade];
            put_str(&w, ",\"when\":", g->when.src, strlen(g->when.src));
            put_int(&w, ",\"held_since\":", (long long)a->since);
            put_int(&w, ",\"for_ms\":", (long long)g->for_ms);
        }
    }
    puts_lit(&w, "}}\n");
    return w.overflow ? -1 : (int)w.o;
}
