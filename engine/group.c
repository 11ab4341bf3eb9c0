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
    char anchor[65];             /* the plant of the latest member alert: who owns the region */
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
    struct vg_strmap qualifies;        /* "group|code|plant|device" -> 1 while the member alert counts */
    struct vg_strmap plant_count;      /* "group|code|plant" -> qualifying member alerts of the plant */
    struct pending *pend;
    uint32_t n_pend, cap_pend;
    char plants_json[4096];
    struct vg_strmap written;          /* region code -> index + 1 into hash[] */
    uint64_t *hash;                    /* per code: hash of the record last written, 0 = none */
    uint32_t n_hash;
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
    vg_strmap_fini(&gs->written);
    free(gs->hash);
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
        snprintf(key, sizeof key, "%u|%s|%s|%s", g, code, p->plant, p->device);
        uint32_t *q = map_get(&gs->qualifies, key, true);
        bool before = *q, after = p->status != VG_ALERT_RESOLVED && p->level >= gr->group_min_level;
        if (before == after)
            continue;
        *q = after;
        snprintf(key, sizeof key, "%u|%s|%s", g, code, p->plant);
        uint32_t *pc = map_get(&gs->plant_count, key, true);
        struct region *rg = region_of(gs, g, code);
        snprintf(rg->anchor, sizeof rg->anchor, "%s", p->plant);
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

/* The code of a "g|code|…" map key (into @p out), or false. */
static bool key_code(const char *key, char *out, size_t cap)
{
    const char *a = strchr(key, '|'), *b = a ? strchr(a + 1, '|') : NULL;
    if (!b || (size_t)(b - a - 1) >= cap)
        return false;
    memcpy(out, a + 1, (size_t)(b - a - 1));
    out[b - a - 1] = 0;
    return true;
}

/* The map entries of region @p code with a non-zero value. */
static void gput_map(struct gbuf *b, const struct vg_strmap *m, const char *code)
{
    uint32_t n = 0;
    size_t at = b->n;
    gput(b, &n, sizeof n);
    char c[32];
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->keys[i] || !m->vals[i] || !key_code(m->keys[i], c, sizeof c) || strcmp(c, code))
            continue;
        uint16_t len = (uint16_t)strlen(m->keys[i]);
        gput(b, &len, sizeof len);
        gput(b, m->keys[i], len);
        gput(b, &m->vals[i], sizeof m->vals[i]);
        n++;
    }
    if (!b->oom)
        memcpy(b->p + at, &n, sizeof n);
}

/* The code of the first group rule counting @p p's rule (its pending entry goes in that record). */
static bool pending_code(const struct vg_group_stage *gs, const struct pending *p, char *out, size_t cap)
{
    for (uint32_t g = 0; g < gs->rs->n_rules; g++) {
        const struct vg_rule *gr = &gs->rs->rules[g];
        if (gr->type == VG_RULE_GROUP && gr->group_member == p->rule) {
            snprintf(out, cap, "%.*s", gr->group_by == VG_GROUP_COUNTY ? 6 : 31, p->region);
            return true;
        }
    }
    return false;
}

static bool region_idle(const struct region *r)
{
    if (r->n_plants || r->st.level || r->st.started_at != VG_TS_NONE || r->st.clear_since != VG_TS_NONE)
        return false;
    for (int g = 0; g < VG_GRADES_MAX; g++)
        if (r->st.pending[g] != VG_TS_NONE)
            return false;
    return true;
}

/*
 * Record of region code @p code into @p b: "VGGR", u32 version 2, u64 rule
 * set fingerprint, u16 + anchor, u32 n + n struct region, the qualifies and
 * plant_count entries of the code (u32 n, n x {u16 len, key, u32 value}), u32
 * n + n struct pending. @returns false if the region holds nothing (no record).
 */
static bool region_record(const struct vg_group_stage *gs, const char *code, struct gbuf *b)
{
    if (!vg_group_holds(gs, code))
        return false;
    uint32_t version = 2, n = 0;
    uint64_t fp = ruleset_fingerprint(gs->rs);
    const char *anchor = "";
    for (uint32_t i = 0; i < gs->n_region; i++)
        if (!strcmp(gs->region[i].code, code)) {
            n++;
            anchor = gs->region[i].anchor;
        }
    char c[32];
    uint32_t np = 0;
    for (uint32_t i = 0; i < gs->n_pend; i++)
        np += pending_code(gs, &gs->pend[i], c, sizeof c) && !strcmp(c, code);
    uint16_t al = (uint16_t)strlen(anchor);
    gput(b, "VGGR", 4);
    gput(b, &version, sizeof version);
    gput(b, &fp, sizeof fp);
    gput(b, &al, sizeof al);
    gput(b, anchor, al);
    gput(b, &n, sizeof n);
    for (uint32_t i = 0; i < gs->n_region; i++)
        if (!strcmp(gs->region[i].code, code))
            gput(b, &gs->region[i], sizeof gs->region[i]);
    gput_map(b, &gs->qualifies, code);
    gput_map(b, &gs->plant_count, code);
    gput(b, &np, sizeof np);
    for (uint32_t i = 0; i < gs->n_pend; i++)
        if (pending_code(gs, &gs->pend[i], c, sizeof c) && !strcmp(c, code))
            gput(b, &gs->pend[i], sizeof gs->pend[i]);
    return true;
}

/* The index of @p code in hash[], added if new. */
static uint32_t written_slot(struct vg_group_stage *gs, const char *code)
{
    uint32_t *v = map_get(&gs->written, code, true);
    if (!*v) {
        uint64_t *h = realloc(gs->hash, ((size_t)gs->n_hash + 1) * sizeof *h);
        if (!h)
            abort();
        gs->hash = h;
        gs->hash[gs->n_hash] = 0;
        *v = ++gs->n_hash;
    }
    return *v - 1;
}

int vg_group_export_changed(struct vg_group_stage *gs, vg_snapshot_fn fn, void *ctx)
{
    struct gbuf b = {0};
    char name[64];
    int rc = VG_OK;
    /* every code with a region or a pending entry, and every code written before */
    for (uint32_t i = 0; i < gs->n_region; i++)
        written_slot(gs, gs->region[i].code);
    for (uint32_t i = 0; i < gs->n_pend; i++)
        if (pending_code(gs, &gs->pend[i], name, sizeof name))
            written_slot(gs, name);
    for (uint32_t i = 0; i < gs->written.cap && rc == VG_OK; i++) {
        const char *code = gs->written.keys[i];
        if (!code)
            continue;
        uint64_t *h = &gs->hash[gs->written.vals[i] - 1];
        b.n = 0;
        bool any = region_record(gs, code, &b);
        if (b.oom) {
            rc = VG_ENOMEM;
            break;
        }
        uint64_t now = any ? vg_hash64(b.p, b.n, 0x6e) | 1 : 0;
        if (now == *h)
            continue;
        int nl = snprintf(name, sizeof name, "%s%s", VG_GROUP_PREFIX, code);
        rc = fn(ctx, name, (size_t)nl, any ? b.p : "", any ? b.n : 0);
        if (rc == VG_OK)
            *h = now;
    }
    free(b.p);
    return rc;
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

/* Header of a region record: @returns 1 (anchor in @p anchor), 0 for another rule set, or -1. */
static int read_head(struct grd *r, const struct vg_group_stage *gs, char *anchor, size_t cap)
{
    char magic[4];
    uint32_t version;
    uint64_t fp;
    uint16_t al;
    if (!gget(r, magic, 4) || memcmp(magic, "VGGR", 4) || !gget(r, &version, sizeof version) ||
        version != 2 || !gget(r, &fp, sizeof fp) || !gget(r, &al, sizeof al) || al >= cap ||
        !gget(r, anchor, al))
        return -1;
    anchor[al] = 0;
    return fp == ruleset_fingerprint(gs->rs) ? 1 : 0;
}

int vg_group_record_anchor(const struct vg_group_stage *gs, const void *data, size_t len, char *out,
                           size_t cap)
{
    struct grd r = {data, len, 0, false};
    return read_head(&r, gs, out, cap) < 0 ? VG_EINVAL : VG_OK;
}

/* The entries of one map section; @p code: the record's code, which every key must name. */
static void gget_map(struct grd *r, struct vg_strmap *m, const char *code)
{
    uint32_t n = 0;
    if (!gget(r, &n, sizeof n))
        return;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint16_t len;
        char key[512], c[32];
        uint32_t val;
        if (!gget(r, &len, sizeof len) || len >= sizeof key || !gget(r, key, len) ||
            !gget(r, &val, sizeof val))
            return;
        key[len] = 0;
        if (!key_code(key, c, sizeof c) || strcmp(c, code)) {
            r->bad = true;
            return;
        }
        *map_get(m, key, true) = val;
    }
}

bool vg_group_holds(const struct vg_group_stage *gs, const char *code)
{
    for (uint32_t i = 0; i < gs->n_region; i++)
        if (!strcmp(gs->region[i].code, code) && !region_idle(&gs->region[i]))
            return true;
    char c[32];
    for (uint32_t i = 0; i < gs->n_pend; i++)
        if (pending_code(gs, &gs->pend[i], c, sizeof c) && !strcmp(c, code))
            return true;
    return false;
}

int vg_group_import_region(struct vg_group_stage *gs, const char *code, const void *data, size_t len,
                           struct vg_error *err)
{
    struct grd r = {data, len, 0, false};
    char anchor[65];
    int head = read_head(&r, gs, anchor, sizeof anchor);
    if (head < 0)
        return vg_error_set(err, VG_EINVAL, "region %s: not a vigil group-stage record of version 2", code);
    if (!head || vg_group_holds(gs, code))
        return VG_OK; /* rules changed since (counts start afresh), or what this stage holds is newer */
    uint32_t n;
    if (!gget(&r, &n, sizeof n) || n > gs->rs->n_rules)
        return vg_error_set(err, VG_EINVAL, "region %s: corrupt group-stage record", code);
    /* check the whole record before applying any of it */
    struct grd check = r;
    check.at += (size_t)n * sizeof(struct region);
    struct vg_strmap scratch = {0};
    gget_map(&check, &scratch, code);
    gget_map(&check, &scratch, code);
    vg_strmap_fini(&scratch);
    uint32_t np = 0;
    if (!gget(&check, &np, sizeof np) || check.at + (size_t)np * sizeof(struct pending) != len)
        return vg_error_set(err, VG_EINVAL, "region %s: corrupt group-stage record", code);
    for (uint32_t i = 0; i < n; i++) {
        struct region in;
        gget(&r, &in, sizeof in);
        in.code[sizeof in.code - 1] = 0;
        in.anchor[sizeof in.anchor - 1] = 0;
        if (in.rule >= gs->rs->n_rules || gs->rs->rules[in.rule].type != VG_RULE_GROUP || strcmp(in.code, code))
            return vg_error_set(err, VG_EINVAL, "region %s: corrupt group-stage record", code);
        *region_of(gs, in.rule, code) = in;
    }
    gget_map(&r, &gs->qualifies, code);
    gget_map(&r, &gs->plant_count, code);
    gget(&r, &np, sizeof np);
    for (uint32_t i = 0; i < np; i++) {
        if (gs->n_pend == gs->cap_pend) {
            gs->cap_pend = gs->cap_pend ? gs->cap_pend * 2 : 256;
            gs->pend = realloc(gs->pend, gs->cap_pend * sizeof *gs->pend);
            if (!gs->pend)
                abort();
        }
        gget(&r, &gs->pend[gs->n_pend], sizeof *gs->pend);
        struct pending *p = &gs->pend[gs->n_pend];
        p->plant[sizeof p->plant - 1] = p->device[sizeof p->device - 1] = p->region[sizeof p->region - 1] = 0;
        gs->n_pend++;
    }
    return VG_OK;
}

const char *vg_group_anchor(const struct vg_group_stage *gs, const char *code)
{
    for (uint32_t i = 0; gs && i < gs->n_region; i++)
        if (!strcmp(gs->region[i].code, code) && gs->region[i].anchor[0])
            return gs->region[i].anchor;
    return NULL;
}

void vg_group_disown(struct vg_group_stage *gs, vg_owns_fn owns, void *ctx)
{
    char c[32];
    for (uint32_t i = 0; i < gs->n_region; i++) {
        struct region *rg = &gs->region[i];
        if (!rg->anchor[0] || owns(ctx, rg->anchor, strlen(rg->anchor)))
            continue;
        /* another instance's region now: forget it (its record is the next owner's) */
        snprintf(c, sizeof c, "%s", rg->code);
        uint16_t rule = (uint16_t)rg->rule;
        rg->n_plants = 0;
        rg->anchor[0] = 0;
        vg_rstate_init(&rg->st, rule);
        struct vg_strmap *maps[2] = {&gs->qualifies, &gs->plant_count};
        char kc[32];
        for (int m = 0; m < 2; m++)
            for (uint32_t k = 0; k < maps[m]->cap; k++)
                if (maps[m]->keys[k] && key_code(maps[m]->keys[k], kc, sizeof kc) && !strcmp(kc, c))
                    maps[m]->vals[k] = 0;
        uint32_t o = 0;
        for (uint32_t k = 0; k < gs->n_pend; k++)
            if (!pending_code(gs, &gs->pend[k], kc, sizeof kc) || strcmp(kc, c))
                gs->pend[o++] = gs->pend[k];
        gs->n_pend = o;
        uint32_t *v = vg_strmap_get(&gs->written, c, strlen(c), false);
        if (v && *v)
            gs->hash[*v - 1] = 0; /* the next owner writes it */
    }
}
