/*
 * group.c: region counts of member alerts and the group rules over them.
 * Owns: everything in struct vg_group_stage. Must never: be called from a
 * worker. Not a hot path: it sees alerts, not events.
 */
#include "engine/group.h"
#include "engine/hash.h"
#include "engine/strmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t *map_get(struct vg_strmap *m, const char *key, bool create)
{
    uint32_t *v = vg_strmap_get(m, key, strlen(key), create);
    if (!v && create)
        abort(); /* out of memory in the group stage */
    return v;
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
    struct vg_strmap regions;          /* "rule|code" -> index into region[] */
    struct region *region;
    uint32_t n_region, cap_region;
    struct vg_strmap qualifies;        /* "group|plant|device" -> 1 while the member alert counts */
    struct vg_strmap plant_count;      /* "group|code|plant" -> qualifying member alerts of the plant */
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
    vg_strmap_fini(&gs->regions);
    vg_strmap_fini(&gs->qualifies);
    vg_strmap_fini(&gs->plant_count);
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

/* ---- checkpoint record --------------------------------------------------- */

static uint64_t ruleset_fingerprint(const struct vg_ruleset *rs)
{
    uint64_t h = rs->n_rules;
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        h = vg_hash64(rs->rules[i].id, strlen(rs->rules[i].id), h);
        h = vg_hash64(rs->rules[i].version, strlen(rs->rules[i].version), h);
    }
    return h;
}

struct gbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void gput(struct gbuf *b, const void *v, size_t n)
{
    if (b->oom || n == 0) /* nothing to copy (v may be NULL) */
        return;
    if (b->n + n > b->cap) {
        size_t c = b->cap > 4096 ? b->cap : 4096;
        while (c < b->n + n && c < SIZE_MAX / 2)
            c *= 2;
        char *q = c >= b->n + n ? realloc(b->p, c) : NULL;
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

static void gput_map(struct gbuf *b, const struct vg_strmap *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->cap; i++)
        n += m->keys[i] != NULL;
    gput(b, &n, sizeof n);
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        uint16_t len = (uint16_t)strlen(m->keys[i]);
        gput(b, &len, sizeof len);
        gput(b, m->keys[i], len);
        gput(b, &m->vals[i], sizeof m->vals[i]);
    }
}

int vg_group_export(const struct vg_group_stage *gs, char **out, size_t *len)
{
    struct gbuf b = {0};
    uint32_t version = 1;
    uint64_t fp = ruleset_fingerprint(gs->rs);
    gput(&b, "VGGR", 4);
    gput(&b, &version, sizeof version);
    gput(&b, &fp, sizeof fp);
    gput(&b, &gs->n_region, sizeof gs->n_region);
    for (uint32_t i = 0; i < gs->n_region; i++)
        gput(&b, &gs->region[i], sizeof gs->region[i]);
    gput_map(&b, &gs->regions);
    gput_map(&b, &gs->qualifies);
    gput_map(&b, &gs->plant_count);
    gput(&b, &gs->n_pend, sizeof gs->n_pend);
    gput(&b, gs->pend, (size_t)gs->n_pend * sizeof *gs->pend);
    if (b.oom) {
        free(b.p);
        return VG_ENOMEM;
    }
    *out = b.p;
    *len = b.n;
    return VG_OK;
}

struct grd {
    const char *p;
    size_t n, at;
    bool bad;
};

static bool gget(struct grd *r, void *v, size_t n)
{
    if (n == 0)
        return !r->bad;
    if (r->bad || r->at + n > r->n) {
        r->bad = true;
        return false;
    }
    memcpy(v, r->p + r->at, n);
    r->at += n;
    return true;
}

static void gget_map(struct grd *r, struct vg_strmap *m)
{
    uint32_t n = 0;
    if (!gget(r, &n, sizeof n))
        return;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint16_t len;
        char key[512];
        uint32_t val;
        if (!gget(r, &len, sizeof len) || len >= sizeof key || !gget(r, key, len) ||
            !gget(r, &val, sizeof val))
            return;
        key[len] = 0;
        *map_get(m, key, true) = val;
    }
}

int vg_group_import(struct vg_group_stage *gs, const void *data, size_t len, struct vg_error *err)
{
    struct grd r = {data, len, 0, false};
    char magic[4];
    uint32_t version, n_region, n_pend;
    uint64_t fp;
    if (!gget(&r, magic, 4) || memcmp(magic, "VGGR", 4) || !gget(&r, &version, sizeof version) ||
        version != 1 || !gget(&r, &fp, sizeof fp))
        return vg_error_set(err, VG_EINVAL, "not a vigil group-stage record of version 1");
    if (fp != ruleset_fingerprint(gs->rs))
        return VG_OK; /* rules changed since: group counts start afresh */
    if (!gget(&r, &n_region, sizeof n_region) || n_region > len / sizeof(struct region))
        return vg_error_set(err, VG_EINVAL, "corrupt group-stage record");
    gs->region = realloc(gs->region, ((size_t)n_region + 1) * sizeof *gs->region);
    gs->cap_region = n_region + 1;
    for (uint32_t i = 0; i < n_region; i++)
        gget(&r, &gs->region[i], sizeof gs->region[i]);
    gs->n_region = n_region;
    gget_map(&r, &gs->regions);
    gget_map(&r, &gs->qualifies);
    gget_map(&r, &gs->plant_count);
    if (!gget(&r, &n_pend, sizeof n_pend) || n_pend > len / sizeof(struct pending))
        return vg_error_set(err, VG_EINVAL, "corrupt group-stage record");
    gs->pend = realloc(gs->pend, ((size_t)n_pend + 1) * sizeof *gs->pend);
    gs->cap_pend = n_pend + 1;
    gget(&r, gs->pend, (size_t)n_pend * sizeof *gs->pend);
    gs->n_pend = n_pend;
    if (r.bad || r.at != r.n)
        return vg_error_set(err, VG_EINVAL, "corrupt group-stage record");
    return VG_OK;
}
