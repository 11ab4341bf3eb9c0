/*
 * group.c: region counts of member alerts and the group rules over them.
 * Owns: everything in struct vg_group_stage. Must never: be called from a
 * worker. Not a hot path: it sees alerts, not events.
 */
#include "engine/group.h"
#include "engine/hash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small string-keyed map: key -> index into a side array. */
struct map {
    char **keys;
    uint32_t *vals;
    uint32_t cap, n;
};

static uint32_t *map_get(struct map *m, const char *key, bool create)
{
    if (create && (m->n + 1) * 2 > m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 64;
        char **keys = calloc(cap, sizeof *keys);
        uint32_t *vals = calloc(cap, sizeof *vals);
        for (uint32_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            uint32_t k = (uint32_t)vg_hash64(m->keys[i], strlen(m->keys[i]), 7) & (cap - 1);
            while (keys[k])
                k = (k + 1) & (cap - 1);
            keys[k] = m->keys[i];
            vals[k] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = keys;
        m->vals = vals;
        m->cap = cap;
    }
    if (!m->cap)
        return NULL;
    uint32_t k = (uint32_t)vg_hash64(key, strlen(key), 7) & (m->cap - 1);
    for (;; k = (k + 1) & (m->cap - 1)) {
        if (!m->keys[k]) {
            if (!create)
                return NULL;
            m->keys[k] = strdup(key);
            m->vals[k] = 0;
            m->n++;
            return &m->vals[k];
        }
        if (!strcmp(m->keys[k], key))
            return &m->vals[k];
    }
}

static void map_free(struct map *m)
{
    for (uint32_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
}

/* One region of one group rule. */
struct region {
    uint32_t rule;
    char code[32];
    uint32_t n_plants;           /* plants with at least one qualifying member alert */
    struct vg_rstate st;
};

struct pending {
    vg_ts at;
    uint32_t rule;
    uint8_t status, level;
    char plant[65], device[65], region[32];
};

struct vg_group_stage {
    const struct vg_ruleset *rs;
    struct map regions;          /* "rule|code" -> index into region[] */
    struct region *region;
    uint32_t n_region, cap_region;
    struct map qualifies;        /* "group|plant|device" -> 1 while the member alert counts */
    struct map plant_count;      /* "group|code|plant" -> qualifying member alerts of the plant */
    struct pending *pend;
    uint32_t n_pend, cap_pend;
    char plants_json[4096];
};

struct vg_group_stage *vg_group_create(const struct vg_ruleset *rs)
{
    if (!rs->n_group)
        return NULL;
    struct vg_group_stage *gs = calloc(1, sizeof *gs);
    if (gs)
        gs->rs = rs;
    return gs;
}

void vg_group_destroy(struct vg_group_stage *gs)
{
    if (!gs)
        return;
    map_free(&gs->regions);
    map_free(&gs->qualifies);
    map_free(&gs->plant_count);
    free(gs->region);
    free(gs->pend);
    free(gs);
}

void vg_group_offer(struct vg_group_stage *gs, const struct vg_alert *a)
{
    bool member = false;
    for (uint32_t g = 0; g < gs->rs->n_rules && !member; g++)
        member = gs->rs->rules[g].type == VG_RULE_GROUP && gs->rs->rules[g].group_member == a->rule;
    if (!member || !a->region || !a->plant_len)
        return;
    if (gs->n_pend == gs->cap_pend) {
        gs->cap_pend = gs->cap_pend ? gs->cap_pend * 2 : 256;
        gs->pend = realloc(gs->pend, gs->cap_pend * sizeof *gs->pend);
    }
    struct pending *p = &gs->pend[gs->n_pend++];
    memset(p, 0, sizeof *p);
    p->at = a->at;
    p->rule = a->rule;
    p->status = a->status;
    p->level = a->level;
    memcpy(p->plant, a->plant, a->plant_len);
    memcpy(p->device, a->device, a->dev_len);
    snprintf(p->region, sizeof p->region, "%s", a->region);
}

static int pending_cmp(const void *x, const void *y)
{
    const struct pending *a = x, *b = y;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    int c = strcmp(a->plant, b->plant);
    if (c)
        return c;
    c = strcmp(a->device, b->device);
    if (c)
        return c;
    return (int)a->status - (int)b->status;
}

static struct region *region_of(struct vg_group_stage *gs, uint32_t g, const char *code)
{
    char key[64];
    snprintf(key, sizeof key, "%u|%s", g, code);
    uint32_t *v = map_get(&gs->regions, key, true);
    if (!*v) {
        if (gs->n_region == gs->cap_region) {
            gs->cap_region = gs->cap_region ? gs->cap_region * 2 : 64;
            gs->region = realloc(gs->region, gs->cap_region * sizeof *gs->region);
        }
        struct region *r = &gs->region[gs->n_region++];
        memset(r, 0, sizeof *r);
        r->rule = g;
        snprintf(r->code, sizeof r->code, "%s", code);
        vg_rstate_init(&r->st, (uint16_t)g);
        *v = gs->n_region;
    }
    return &gs->region[*v - 1];
}

/* The plants counted in a region, as a JSON array (sorted), for `because`. */
static const char *plants_json(struct vg_group_stage *gs, uint32_t g, const char *code)
{
    char prefix[64];
    int pn = snprintf(prefix, sizeof prefix, "%u|%s|", g, code);
    const char *names[64];
    uint32_t n = 0;
    for (uint32_t i = 0; i < gs->plant_count.cap && n < 64; i++)
        if (gs->plant_count.keys[i] && gs->plant_count.vals[i] &&
            !strncmp(gs->plant_count.keys[i], prefix, (size_t)pn))
            names[n++] = gs->plant_count.keys[i] + pn;
    for (uint32_t a = 1; a < n; a++)
        for (uint32_t b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
            const char *t = names[b];
            names[b] = names[b - 1];
            names[b - 1] = t;
        }
    size_t o = 0;
    o += (size_t)snprintf(gs->plants_json + o, sizeof gs->plants_json - o, "[");
    for (uint32_t i = 0; i < n && o + 80 < sizeof gs->plants_json; i++)
        o += (size_t)snprintf(gs->plants_json + o, sizeof gs->plants_json - o, "%s\"%s\"",
                              i ? "," : "", names[i]);
    snprintf(gs->plants_json + o, sizeof gs->plants_json - o, "]");
    return gs->plants_json;
}

static void apply(struct vg_group_stage *gs, const struct pending *p,
                  void (*emit)(void *ctx, const struct vg_alert *a), void *ctx)
{
    const struct vg_ruleset *rs = gs->rs;
    for (uint32_t g = 0; g < rs->n_rules; g++) {
        const struct vg_rule *gr = &rs->rules[g];
        if (gr->type != VG_RULE_GROUP || gr->group_member != p->rule)
            continue;
        char code[32];
        snprintf(code, sizeof code, "%.*s", gr->group_by == VG_GROUP_COUNTY ? 6 : 31, p->region);
        char key[200];
        snprintf(key, sizeof key, "%u|%s|%s", g, p->plant, p->device);
        uint32_t *q = map_get(&gs->qualifies, key, true);
        bool before = *q, after = p->status != VG_ALERT_RESOLVED && p->level >= gr->group_min_level;
        if (before == after)
            continue;
        *q = after;
        snprintf(key, sizeof key, "%u|%s|%s", g, code, p->plant);
        uint32_t *pc = map_get(&gs->plant_count, key, true);
        struct region *rg = region_of(gs, g, code);
        uint32_t was = rg->n_plants;
        if (after && (*pc)++ == 0)
            rg->n_plants++;
        if (!after && --(*pc) == 0)
            rg->n_plants--;
        if (rg->n_plants == was)
            continue;
        struct vg_eval_env env = {(double)rg->n_plants, NULL};
        struct vg_transition tr;
        if (!vg_rstate_step(&rg->st, gr, p->at, &env, &tr))
            continue;
        struct vg_alert a;
        memset(&a, 0, sizeof a);
        a.rule = g;
        a.status = tr.status;
        a.level = tr.level;
        a.grade = tr.grade;
        a.flags = VG_ALERT_F_NOVALUE | VG_ALERT_F_GROUP;
        a.metric = VG_METRIC_NONE;
        a.value = (double)rg->n_plants;
        a.rule_value = NAN;
        a.started_at = tr.started_at;
        a.at = p->at;
        a.since = tr.since;
        a.region = rg->code;
        a.group_plants = plants_json(gs, g, code);
        emit(ctx, &a);
    }
}

void vg_group_advance(struct vg_group_stage *gs, vg_ts safe,
                      void (*emit)(void *ctx, const struct vg_alert *a), void *ctx)
{
    if (!gs || !gs->n_pend)
        return;
    qsort(gs->pend, gs->n_pend, sizeof *gs->pend, pending_cmp);
    uint32_t done = 0;
    while (done < gs->n_pend && (safe == VG_TS_MAX || gs->pend[done].at < safe))
        apply(gs, &gs->pend[done++], emit, ctx);
    memmove(gs->pend, gs->pend + done, (gs->n_pend - done) * sizeof *gs->pend);
    gs->n_pend -= done;
}
