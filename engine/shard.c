/*
 * shard.c: a worker's series tables and the per-event rule evaluation.
 * Owns: everything in struct vg_shard. Must never: be shared between threads.
 */
#include "engine/shard.h"
#include "engine/hash.h"
#include "engine/json.h"
#include "engine/window.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KEY_INLINE 18

/* One device of one plant. 48 bytes: short keys live inline, on the same line. */
struct subject {
    uint64_t hash;
    uint32_t plant;        /* index into plants */
    uint32_t states;       /* first rule state (index + 1), 0 = none */
    uint32_t key;          /* offset of plant+device bytes in keys, if not inline */
    uint32_t series;       /* first latest-value record (index + 1), 0 = none */
    uint32_t qmute;        /* open quality mute window (index + 1): the last sample said M or C */
    uint8_t plant_len, dev_len;
    char inline_key[KEY_INLINE];
};

_Static_assert(sizeof(struct subject) == 48, "a subject is 48 bytes");
_Static_assert(sizeof(struct vg_rstate) == 64, "a rule state is one cache line");

/* The latest value of a metric that compound rules read, per subject. */
struct series {
    uint32_t metric;
    uint32_t next;         /* index + 1, 0 = end */
    vg_ts ts;
    double value;
};

static inline const char *subject_key(const struct vg_shard *sh, const struct subject *s);

struct plant_entry {
    uint64_t hash;
    uint32_t key;
    uint32_t maint;        /* first maintenance window (index + 1), 0 = none */
    uint8_t len;
    uint8_t dirty;         /* changed since the last checkpoint */
    uint8_t disowned;      /* another instance owns it now: its timers are skipped */
    uint8_t wants_load;    /* regained: reset, waiting for its stored record */
    const struct vg_plant *reg;
};

/* A mute window of a plant, or of one device of it: a maintenance message, or
 * a device's samples flagged M/C (from that sample to the next good one). */
struct maint {
    vg_ts from, until;     /* muted in [from, until); until = VG_TS_MAX while open */
    uint32_t next;
    uint8_t dev_len;       /* 0: the whole plant */
    uint8_t quality;       /* opened by a sample's quality, not a maintenance message */
    char device[VG_ID_MAX];
};

/* Open addressing; a slot is (hash tag << 32 | entry index + 1), 0 = empty,
 * so probes compare tags without touching the entries. */
struct table {
    uint64_t *slots;
    uint32_t mask;
};

static inline uint64_t slot_make(uint64_t h, uint32_t idx)
{
    return (h & 0xffffffff00000000ULL) | (uint64_t)(idx + 1);
}

/* An absence deadline; at most one per rule state (VG_RS_ARMED). */
struct timer {
    vg_ts deadline;
    uint32_t state;
};

struct vg_shard {
    const struct vg_ruleset *rs;
    struct timer *heap;    /* min-heap by deadline */
    uint32_t n_heap, cap_heap;
    vg_ts clock;           /* the watermark reached so far */
    vg_ts start;           /* the clock start (seeding of declared points) */
    bool track_changes;    /* mark plants changed by events, for vg_shard_export_dirty */
    double rule_value;     /* for the alert being emitted: `value` when another metric decided */
    vg_ts muted_from, muted_until;  /* for a resumed alert being emitted */
    bool started;
    vg_owns_fn owns;   /* NULL: every plant is this instance's */
    void *owns_ctx;
    uint32_t id, n;          /* this shard's number among n (routing of registry plants) */
    const struct vg_registry *reg;
    struct subject *subjects;
    uint32_t n_subjects, cap_subjects;
    struct table subject_tab;
    struct plant_entry *plants;
    uint32_t n_plants, cap_plants;
    struct table plant_tab;
    uint64_t *rule_bits;   /* n_plants x words: rules whose `where` selects the plant */
    uint32_t words;
    struct vg_rstate *states;
    uint32_t n_states, cap_states;
    struct series *series;
    uint32_t n_series, cap_series;
    struct maint *maint;
    uint32_t n_maint, cap_maint;
    char *ext;             /* rule-state extensions: limits, windows, firing counters */
    size_t ext_used, ext_cap;
    char *keys;
    size_t keys_used, keys_cap;
    struct vg_shard_stats st;
};

static void *grow(void *p, uint32_t *cap, size_t elem, uint32_t need)
{
    if (need <= *cap)
        return p;
    uint32_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(p, (size_t)c * elem);
    if (!q)
        abort(); /* out of memory while admitting a new series: nothing sane to do */
    *cap = c;
    return q;
}

static inline const char *subject_key(const struct vg_shard *sh, const struct subject *s)
{
    return (size_t)s->plant_len + s->dev_len <= KEY_INLINE ? s->inline_key : sh->keys + s->key;
}

static int table_init(struct table *t, uint32_t cap)
{
    t->slots = calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    return t->slots ? 0 : -1;
}

/* Double the table when half full; rehash from stored hashes. */
static void table_maybe_grow(struct table *t, uint32_t count, const void *entries, size_t stride)
{
    if ((count + 1) * 2 <= t->mask + 1)
        return;
    uint32_t cap = (t->mask + 1) * 2;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        abort();
    for (uint32_t i = 0; i < count; i++) {
        uint64_t h = *(const uint64_t *)((const char *)entries + (size_t)i * stride);
        uint32_t k = (uint32_t)h & (cap - 1);
        while (slots[k])
            k = (k + 1) & (cap - 1);
        slots[k] = slot_make(h, i);
    }
    free(t->slots);
    t->slots = slots;
    t->mask = cap - 1;
}

struct vg_shard *vg_shard_create(const struct vg_ruleset *rs, const struct vg_registry *reg)
{
    struct vg_shard *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->rs = rs;
    sh->reg = reg;
    sh->clock = VG_TS_NONE;
    sh->rule_value = NAN;
    sh->muted_from = sh->muted_until = VG_TS_NONE;
    sh->words = (rs->n_rules + 63) / 64;
    if (sh->words == 0)
        sh->words = 1;
    if (table_init(&sh->subject_tab, 1024) < 0 || table_init(&sh->plant_tab, 256) < 0) {
        vg_shard_destroy(sh);
        return NULL;
    }
    return sh;
}

void vg_shard_destroy(struct vg_shard *sh)
{
    if (!sh)
        return;
    free(sh->subjects);
    free(sh->subject_tab.slots);
    free(sh->plants);
    free(sh->plant_tab.slots);
    free(sh->rule_bits);
    free(sh->states);
    free(sh->keys);
    free(sh->heap);
    free(sh->series);
    free(sh->maint);
    free(sh->ext);
    free(sh);
}

static uint32_t keep_key(struct vg_shard *sh, const char *p, size_t n)
{
    if (sh->keys_used + n > sh->keys_cap) {
        size_t c = sh->keys_cap ? sh->keys_cap : 65536;
        while (c < sh->keys_used + n)
            c *= 2;
        char *k = realloc(sh->keys, c);
        if (!k)
            abort();
        sh->keys = k;
        sh->keys_cap = c;
    }
    memcpy(sh->keys + sh->keys_used, p, n);
    uint32_t off = (uint32_t)sh->keys_used;
    sh->keys_used += n;
    return off;
}

/* The plant's index, or UINT32_MAX when the shard has not seen it. */
static uint32_t plant_find(const struct vg_shard *sh, const char *p, uint8_t n, uint64_t h)
{
    for (uint32_t k = (uint32_t)h & sh->plant_tab.mask;; k = (k + 1) & sh->plant_tab.mask) {
        uint64_t e = sh->plant_tab.slots[k];
        if (!e)
            return UINT32_MAX;
        const struct plant_entry *pe = &sh->plants[(uint32_t)e - 1];
        if (pe->hash == h && pe->len == n && !memcmp(sh->keys + pe->key, p, n))
            return (uint32_t)e - 1;
    }
}

static uint32_t plant_get(struct vg_shard *sh, const char *p, uint8_t n)
{
    uint64_t h = vg_hash64(p, n, 0);
    uint32_t found = plant_find(sh, p, n, h);
    if (found != UINT32_MAX)
        return found;
    /* first sight of this plant: resolve registry entry and rule applicability once */
    uint32_t idx = sh->n_plants;
    uint32_t cap_before = sh->cap_plants;
    sh->plants = grow(sh->plants, &sh->cap_plants, sizeof *sh->plants, idx + 1);
    if (sh->cap_plants != cap_before) {
        uint64_t *bits = realloc(sh->rule_bits, (size_t)sh->cap_plants * sh->words * sizeof *bits);
        if (!bits)
            abort();
        sh->rule_bits = bits;
    }
    struct plant_entry *pe = &sh->plants[idx];
    pe->hash = h;
    pe->key = keep_key(sh, p, n);
    pe->len = n;
    pe->reg = vg_registry_plant(sh->reg, p, n);
    pe->maint = 0;
    pe->dirty = 1;
    pe->disowned = 0;
    pe->wants_load = 0;
    uint64_t *bits = sh->rule_bits + (size_t)idx * sh->words;
    memset(bits, 0, sh->words * sizeof *bits);
    for (uint32_t r = 0; r < sh->rs->n_rules; r++)
        if (vg_rule_applies(&sh->rs->rules[r], pe->reg))
            bits[r / 64] |= UINT64_C(1) << (r % 64);
    sh->n_plants++;
    uint32_t k = (uint32_t)h & sh->plant_tab.mask;
    while (sh->plant_tab.slots[k])
        k = (k + 1) & sh->plant_tab.mask;
    sh->plant_tab.slots[k] = slot_make(h, idx);
    table_maybe_grow(&sh->plant_tab, sh->n_plants, sh->plants, sizeof *sh->plants);
    return idx;
}

static inline uint64_t subject_hash(const char *key, uint8_t plant_len, uint8_t dev_len)
{
    return vg_hash64(key, (size_t)plant_len + dev_len, plant_len);
}

static struct subject *subject_get(struct vg_shard *sh, uint64_t h, const char *key,
                                   uint8_t plant_len, uint8_t dev_len)
{
    size_t n = (size_t)plant_len + dev_len;
    uint64_t tag = h & 0xffffffff00000000ULL;
    uint32_t k = (uint32_t)h & sh->subject_tab.mask;
    for (;; k = (k + 1) & sh->subject_tab.mask) {
        uint64_t e = sh->subject_tab.slots[k];
        if (!e)
            break;
        if ((e & 0xffffffff00000000ULL) != tag)
            continue;
        struct subject *s = &sh->subjects[(uint32_t)e - 1];
        if (s->hash == h && s->plant_len == plant_len && s->dev_len == dev_len &&
            !memcmp(subject_key(sh, s), key, n))
            return s;
    }
    uint32_t plant = plant_get(sh, key, plant_len);
    uint32_t idx = sh->n_subjects;
    sh->subjects = grow(sh->subjects, &sh->cap_subjects, sizeof *sh->subjects, idx + 1);
    struct subject *s = &sh->subjects[idx];
    memset(s, 0, sizeof *s);
    s->hash = h;
    s->plant = plant;
    s->plant_len = plant_len;
    s->dev_len = dev_len;
    if (n <= KEY_INLINE)
        memcpy(s->inline_key, key, n);
    else
        s->key = keep_key(sh, key, n);
    sh->n_subjects++;
    k = (uint32_t)h & sh->subject_tab.mask;
    while (sh->subject_tab.slots[k])
        k = (k + 1) & sh->subject_tab.mask;
    sh->subject_tab.slots[k] = slot_make(h, idx);
    table_maybe_grow(&sh->subject_tab, sh->n_subjects, sh->subjects, sizeof *sh->subjects);
    return &sh->subjects[idx];
}

static inline char *ext_of(const struct vg_shard *sh, const struct vg_rstate *st)
{
    return sh->ext + (st->ext - 1);
}

/*
 * A new rule state's extension: the point's set points (a missing one makes
 * the rule not apply to this point), empty windows, empty firing counters.
 */
static void ext_set_limits(struct vg_shard *sh, const struct subject *s, struct vg_rstate *st);

/* Empty windows and firing counters, set points from the registry: a new state's extension. */
static void ext_reset(struct vg_shard *sh, const struct subject *s, struct vg_rstate *st)
{
    const struct vg_rule *r = &sh->rs->rules[st->rule];
    char *x = ext_of(sh, st);
    for (uint32_t k = 0; k < r->n_slots; k++)
        if (r->slots[k].kind == VG_SLOT_WINDOW)
            vg_window_init((struct vg_window *)(void *)(x + r->slots[k].ext_off), r->slots[k].width, 0);
    for (uint32_t f = 0; f < r->n_fired; f++)
        vg_window_init((struct vg_window *)(void *)(x + r->fired_off[f]), r->fired_width[f], 0);
    ext_set_limits(sh, s, st);
}

static void ext_init(struct vg_shard *sh, const struct subject *s, struct vg_rstate *st)
{
    const struct vg_rule *r = &sh->rs->rules[st->rule];
    if (!r->ext_size)
        return;
    if (sh->ext_used + r->ext_size > sh->ext_cap) {
        size_t c = sh->ext_cap ? sh->ext_cap : 65536;
        while (c < sh->ext_used + r->ext_size)
            c *= 2;
        char *e = realloc(sh->ext, c);
        if (!e)
            abort();
        sh->ext = e;
        sh->ext_cap = c;
    }
    st->ext = (uint32_t)sh->ext_used + 1;
    sh->ext_used += r->ext_size;
    ext_reset(sh, s, st);
}

/* The point's own set points, from the registry (never from a stored record). */
static void ext_set_limits(struct vg_shard *sh, const struct subject *s, struct vg_rstate *st)
{
    const struct vg_rule *r = &sh->rs->rules[st->rule];
    char *x = ext_of(sh, st);
    st->flags &= (uint8_t)~VG_RS_NA;
    const struct vg_plant *pl = sh->plants[s->plant].reg;
    const char *key = subject_key(sh, s);
    const struct vg_point *pt = pl ? vg_plant_point(pl, key + s->plant_len, s->dev_len) : NULL;
    for (uint32_t k = 0; k < r->n_slots; k++) {
        const struct vg_slot *sl = &r->slots[k];
        if (sl->kind == VG_SLOT_LIMIT) {
            double v = NAN;
            for (uint32_t l = 0; pt && l < pt->n_limits; l++)
                if (!strcmp(pt->limits[l].name, sl->name))
                    v = pt->limits[l].value;
            if (v != v)
                st->flags |= VG_RS_NA;
            memcpy(x + sl->ext_off, &v, sizeof v);
        }
    }
}

static struct vg_rstate *state_find(struct vg_shard *sh, const struct subject *s, uint32_t rule)
{
    for (uint32_t i = s->states; i; i = sh->states[i - 1].next)
        if (sh->states[i - 1].rule == rule)
            return &sh->states[i - 1];
    return NULL;
}

/* Remember the latest value of a metric compound rules read. */
static void series_put(struct vg_shard *sh, struct subject *s, uint32_t metric, vg_ts ts, double v)
{
    for (uint32_t i = s->series; i; i = sh->series[i - 1].next) {
        struct series *se = &sh->series[i - 1];
        if (se->metric == metric) {
            if (ts >= se->ts) {
                se->ts = ts;
                se->value = v;
            }
            return;
        }
    }
    sh->series = grow(sh->series, &sh->cap_series, sizeof *sh->series, sh->n_series + 1);
    sh->series[sh->n_series] = (struct series){metric, s->series, ts, v};
    s->series = ++sh->n_series;
}

/* The latest value of @p metric, or NaN if none or older than @p stale at @p now. */
static double series_get(const struct vg_shard *sh, const struct subject *s, uint32_t metric,
                         vg_ts now, vg_ts stale)
{
    for (uint32_t i = s->series; i; i = sh->series[i - 1].next) {
        const struct series *se = &sh->series[i - 1];
        if (se->metric == metric)
            return now - se->ts > stale ? NAN : se->value;
    }
    return NAN;
}

static struct vg_rstate *state_get(struct vg_shard *sh, struct subject *s, uint32_t rule)
{
    struct vg_rstate *found = state_find(sh, s, rule);
    if (found)
        return found;
    uint32_t idx = sh->n_states;
    sh->states = grow(sh->states, &sh->cap_states, sizeof *sh->states, idx + 1);
    struct vg_rstate *st = &sh->states[idx];
    vg_rstate_init(st, (uint16_t)rule);
    st->subject = (uint32_t)(s - sh->subjects);
    st->next = s->states;
    s->states = idx + 1;
    sh->n_states++;
    ext_init(sh, s, st);
    return st;
}

/*
 * Is the subject muted at @p at? By a maintenance window of its plant or
 * device ([from, until)), or by its last sample's quality (M or C).
 */
static bool muted_at(const struct vg_shard *sh, const struct subject *s, vg_ts at, vg_ts *from,
                     vg_ts *until)
{
    const char *dev = subject_key(sh, s) + s->plant_len;
    for (uint32_t i = sh->plants[s->plant].maint; i; i = sh->maint[i - 1].next) {
        const struct maint *m = &sh->maint[i - 1];
        if (m->from <= at && at < m->until &&
            (!m->dev_len || (m->dev_len == s->dev_len && !memcmp(m->device, dev, s->dev_len)))) {
            *from = m->quality ? VG_TS_NONE : m->from;
            *until = m->quality ? VG_TS_NONE : m->until;
            return true;
        }
    }
    return false;
}

/* The maintenance window that ended last at or before @p now, for a resumed alert. */
static void last_mute(const struct vg_shard *sh, const struct subject *s, vg_ts now, vg_ts *from,
                      vg_ts *until)
{
    *from = *until = VG_TS_NONE;
    const char *dev = subject_key(sh, s) + s->plant_len;
    for (uint32_t i = sh->plants[s->plant].maint; i; i = sh->maint[i - 1].next) {
        const struct maint *m = &sh->maint[i - 1];
        if (!m->quality && m->until <= now && (*until == VG_TS_NONE || m->until > *until) &&
            (!m->dev_len || (m->dev_len == s->dev_len && !memcmp(m->device, dev, s->dev_len)))) {
            *from = m->from;
            *until = m->until;
        }
    }
}

static void emit_alert_now(struct vg_shard *sh, const struct subject *s, uint32_t rule,
                           const struct vg_transition *tr, vg_ts at, uint32_t metric, double value,
                           uint8_t flags, const double *slots, vg_alert_fn emit, void *ctx);
static void resume(struct vg_shard *sh, const struct subject *s, struct vg_rstate *st, vg_ts now,
                   uint32_t metric, double value, vg_alert_fn emit, void *ctx);

/*
 * Mute gate: a new alert while the subject is muted is held back (its state
 * lives on, VG_RS_MUTED); escalations and the resolution of a held-back alert
 * stay held back too; everything else goes out.
 */
static void emit_alert(struct vg_shard *sh, const struct subject *s, uint32_t rule,
                       const struct vg_transition *tr, vg_ts at, uint32_t metric, double value,
                       uint8_t flags, const double *slots, vg_alert_fn emit, void *ctx)
{
    struct vg_rstate *st = state_find(sh, s, rule);
    vg_ts from, until;
    if (st && tr->status == VG_ALERT_FIRING && muted_at(sh, s, at, &from, &until)) {
        st->flags |= VG_RS_MUTED;
        sh->st.muted_alerts++;
        return;
    }
    if (st && (st->flags & VG_RS_MUTED)) {
        /* a resolve at `at` ends a breach that lived until just before it */
        if (muted_at(sh, s, tr->status == VG_ALERT_RESOLVED ? at - 1 : at, &from, &until)) {
            /* still muted: held back; a resolve now means the whole breach fell inside */
            if (tr->status == VG_ALERT_RESOLVED || st->level == 0)
                st->flags &= (uint8_t)~VG_RS_MUTED;
            sh->st.muted_alerts++;
            return;
        }
        /* the alert outlived the mute: tell it first (a threshold alert at this
         * change, an absence alert at the end of the maintenance window) */
        const struct vg_rule *r = &sh->rs->rules[rule];
        last_mute(sh, s, at, &from, &until);
        vg_ts told = r->type == VG_RULE_ABSENCE && until != VG_TS_NONE && until > st->started_at &&
                             until <= at ? until : at;
        /* the state has already moved on (a resolve clears it): tell the alert as it was */
        struct vg_rstate saved = *st;
        st->level = tr->level;
        st->started_at = tr->started_at;
        if (r->type == VG_RULE_ABSENCE)
            st->pending[0] = tr->since; /* the last message before the silence */
        resume(sh, s, st, told, metric, value, emit, ctx);
        saved.flags = st->flags;
        *st = saved;
        if (tr->status == VG_ALERT_ESCALATED)
            return; /* the resumed firing already has this level */
    }
    emit_alert_now(sh, s, rule, tr, at, metric, value, flags, slots, emit, ctx);
}

/* A held-back alert whose subject is no longer muted at @p now: tell it now. */
static void resume(struct vg_shard *sh, const struct subject *s, struct vg_rstate *st, vg_ts now,
                   uint32_t metric, double value, vg_alert_fn emit, void *ctx)
{
    vg_ts from, until;
    if (!(st->flags & VG_RS_MUTED) || !st->level || muted_at(sh, s, now, &from, &until))
        return;
    st->flags &= (uint8_t)~VG_RS_MUTED;
    const struct vg_rule *r = &sh->rs->rules[st->rule];
    uint8_t grade = 0;
    for (uint32_t g = 0; g < r->n_grades; g++)
        if (r->grades[g].level == st->level)
            grade = (uint8_t)g;
    struct vg_transition tr = {VG_ALERT_FIRING, st->level, grade, st->started_at,
                               r->type == VG_RULE_ABSENCE ? st->pending[0] : st->started_at};
    last_mute(sh, s, now, &sh->muted_from, &sh->muted_until);
    uint8_t flags = VG_ALERT_F_RESUMED;
    if (r->type == VG_RULE_ABSENCE)
        flags |= VG_ALERT_F_NOVALUE | (!(st->flags & VG_RS_SEEN) ? VG_ALERT_F_NEVER_SEEN : 0);
    emit_alert_now(sh, s, st->rule, &tr, now, metric, value, flags, NULL, emit, ctx);
    sh->muted_from = sh->muted_until = VG_TS_NONE;
}

static void emit_alert_now(struct vg_shard *sh, const struct subject *s, uint32_t rule,
                           const struct vg_transition *tr, vg_ts at, uint32_t metric, double value,
                           uint8_t flags, const double *slots, vg_alert_fn emit, void *ctx)
{
    const struct vg_rule *r = &sh->rs->rules[rule];
    if (tr->status == VG_ALERT_FIRING && r->n_fired) {
        /* count the firing for the alerts() of rules that promote this one */
        struct vg_rstate *st = state_find(sh, s, rule);
        for (uint32_t f = 0; st && f < r->n_fired; f++)
            vg_window_push((struct vg_window *)(void *)(ext_of(sh, st) + r->fired_off[f]), at, 1.0);
    }
    struct vg_alert a;
    a.flags = flags;
    a.metric = metric;
    a.rule_value = sh->rule_value;
    a.muted_from = sh->muted_from;
    a.muted_until = sh->muted_until;
    a.n_slots = slots ? (uint8_t)r->n_slots : 0;
    for (uint32_t k = 0; k < a.n_slots; k++)
        a.slot[k] = slots[k];
    const struct plant_entry *pe = &sh->plants[s->plant];
    a.rule = rule;
    a.status = tr->status;
    a.level = tr->level;
    a.grade = tr->grade;
    a.plant_len = s->plant_len;
    a.dev_len = s->dev_len;
    a.value = value;
    a.started_at = tr->started_at;
    a.at = at;
    a.since = tr->since;
    a.region = pe->reg ? pe->reg->region : NULL;
    const char *key = subject_key(sh, s);
    memcpy(a.plant, key, s->plant_len);
    memcpy(a.device, key + s->plant_len, s->dev_len);
    sh->st.alerts[tr->status]++;
    emit(ctx, &a);
}

/* ---- absence: timers -------------------------------------------------- */

static void heap_push(struct vg_shard *sh, vg_ts deadline, uint32_t state)
{
    sh->heap = grow(sh->heap, &sh->cap_heap, sizeof *sh->heap, sh->n_heap + 1);
    uint32_t i = sh->n_heap++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (sh->heap[p].deadline <= deadline)
            break;
        sh->heap[i] = sh->heap[p];
        i = p;
    }
    sh->heap[i] = (struct timer){deadline, state};
}

static struct timer heap_pop(struct vg_shard *sh)
{
    struct timer top = sh->heap[0], last = sh->heap[--sh->n_heap];
    uint32_t i = 0, n = sh->n_heap;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && sh->heap[c + 1].deadline < sh->heap[c].deadline)
            c++;
        if (last.deadline <= sh->heap[c].deadline)
            break;
        sh->heap[i] = sh->heap[c];
        i = c;
    }
    if (n)
        sh->heap[i] = last;
    return top;
}

/* Make sure the state's next deadline is in the heap (one entry per state). */
static void arm(struct vg_shard *sh, struct vg_rstate *st)
{
    if (st->flags & VG_RS_ARMED)
        return;
    vg_ts next = vg_absence_next(st, &sh->rs->rules[st->rule]);
    if (next == VG_TS_NONE)
        return;
    st->flags |= VG_RS_ARMED;
    heap_push(sh, next, (uint32_t)(st - sh->states));
}

static void emit_absence(struct vg_shard *sh, uint32_t state_idx, const struct vg_transition *tr,
                         int n, vg_ts last, bool never, vg_alert_fn emit, void *ctx)
{
    const struct vg_rstate *st = &sh->states[state_idx];
    const struct subject *s = &sh->subjects[st->subject];
    for (int i = 0; i < n; i++) {
        struct vg_transition t = tr[i];
        vg_ts at = t.since;  /* the deadline, or the resolving message's time */
        t.since = last;
        emit_alert(sh, s, st->rule, &t, at, VG_METRIC_NONE, NAN,
                   VG_ALERT_F_NOVALUE | (never ? VG_ALERT_F_NEVER_SEEN : 0), NULL, emit, ctx);
    }
}

/*
 * An absence alert held back by a maintenance window: tell it when the window
 * ends (at its `until`, so the time does not depend on when the clock noticed).
 */
static void absence_resume(struct vg_shard *sh, const struct subject *s, struct vg_rstate *st,
                           vg_ts now, vg_alert_fn emit, void *ctx)
{
    vg_ts from, until;
    if (!st->level || muted_at(sh, s, now, &from, &until))
        return;
    last_mute(sh, s, now, &from, &until);
    resume(sh, s, st, until != VG_TS_NONE && until > st->started_at ? until : now,
           VG_METRIC_NONE, NAN, emit, ctx);
}

/* After an absence alert was held back: wake up when the mute ends. */
static void absence_wake_at_mute_end(struct vg_shard *sh, const struct subject *s,
                                     struct vg_rstate *st, vg_ts at)
{
    vg_ts from, until;
    if ((st->flags & VG_RS_MUTED) && muted_at(sh, s, at, &from, &until) && until != VG_TS_NONE)
        heap_push(sh, until, (uint32_t)(st - sh->states));
}

/* A message that an absence state watches arrived at @p ts. */
static void absence_seen(struct vg_shard *sh, struct subject *s, uint32_t r, vg_ts ts,
                         vg_alert_fn emit, void *ctx)
{
    struct vg_rstate *st = state_get(sh, s, r);
    if (VG_UNLIKELY(st->flags & VG_RS_MUTED))
        absence_resume(sh, s, st, ts, emit, ctx);
    vg_ts last = st->pending[0];
    bool never = !(st->flags & VG_RS_SEEN);
    struct vg_transition tr[VG_GRADES_MAX + 1];
    int n = vg_absence_seen(st, &sh->rs->rules[r], ts, tr);
    if (n)
        emit_absence(sh, (uint32_t)(st - sh->states), tr, n, last, never, emit, ctx);
    arm(sh, st);
}

void vg_shard_advance(struct vg_shard *sh, vg_ts now, vg_alert_fn emit, void *ctx)
{
    if (now == VG_TS_NONE || (sh->clock != VG_TS_NONE && now <= sh->clock))
        return;
    sh->clock = now;
    while (sh->n_heap && sh->heap[0].deadline <= now) {
        struct timer t = heap_pop(sh);
        struct vg_rstate *st = &sh->states[t.state];
        const struct subject *s = &sh->subjects[st->subject];
        st->flags &= (uint8_t)~VG_RS_ARMED;
        if (VG_UNLIKELY(sh->plants[s->plant].disowned))
            continue; /* another instance judges it now; re-armed if it comes back */
        sh->plants[s->plant].dirty = 1;
        sh->st.timers++;
        if (st->flags & VG_RS_MUTED)
            absence_resume(sh, s, st, t.deadline, emit, ctx);
        vg_ts last = st->pending[0];
        bool never = !(st->flags & VG_RS_SEEN);
        struct vg_transition tr[VG_GRADES_MAX];
        int n = vg_absence_due(st, &sh->rs->rules[st->rule], now, tr);
        if (n) {
            emit_absence(sh, t.state, tr, n, last, never, emit, ctx);
            absence_wake_at_mute_end(sh, s, st, tr[0].since);
        }
        arm(sh, st); /* the next grade, or a deadline moved by a newer message */
    }
}

/* Declared points of the registry plants this shard owns, counted from @p start. Idempotent. */
static void seed(struct vg_shard *sh, vg_ts start)
{
    const struct vg_ruleset *rs = sh->rs;
    if (!rs->n_absence || start == VG_TS_NONE)
        return;
    for (uint32_t p = 0; p < sh->reg->n_plants; p++) {
        const struct vg_plant *pl = &sh->reg->plants[p];
        size_t plen = strlen(pl->id);
        if (plen > VG_ID_MAX || vg_shard_route(pl->id, plen, sh->n) != sh->id)
            continue;
        if (sh->owns && !sh->owns(sh->owns_ctx, pl->id, plen))
            continue;
        for (uint32_t k = 0; k < pl->n_points; k++) {
            const struct vg_point *pt = &pl->points[k];
            size_t dlen = pt->id ? strlen(pt->id) : 0;
            if (!dlen || dlen > VG_ID_MAX)
                continue;
            for (uint32_t r = 0; r < rs->n_rules; r++) {
                if (!vg_rule_watches_point(&rs->rules[r], rs, pl, pt))
                    continue;
                char key[2 * VG_ID_MAX];
                memcpy(key, pl->id, plen);
                memcpy(key + plen, pt->id, dlen);
                struct subject *s = subject_get(sh, subject_hash(key, (uint8_t)plen, (uint8_t)dlen),
                                                key, (uint8_t)plen, (uint8_t)dlen);
                struct vg_rstate *st = state_get(sh, s, r);
                if (st->pending[0] == VG_TS_NONE)
                    st->pending[0] = start; /* never reported: counted from the clock start */
                arm(sh, st);
            }
        }
    }
}

void vg_shard_start(struct vg_shard *sh, vg_ts start, uint32_t id, uint32_t n)
{
    if (sh->started || start == VG_TS_NONE)
        return;
    sh->started = true;
    sh->start = start;
    sh->id = id;
    sh->n = n;
    seed(sh, start);
}

void vg_shard_set_owner(struct vg_shard *sh, vg_owns_fn owns, void *ctx)
{
    sh->owns = owns;
    sh->owns_ctx = ctx;
}

/* Forget what the shard knows of the plants marked in @p reset, as if never seen (memory is kept). */
static void plants_reset(struct vg_shard *sh, const bool *reset)
{
    for (uint32_t i = 0; i < sh->n_subjects; i++) {
        struct subject *s = &sh->subjects[i];
        if (!reset[s->plant])
            continue;
        s->qmute = 0;
        s->series = 0; /* the records stay allocated, unreachable */
        for (uint32_t k = s->states; k; k = sh->states[k - 1].next) {
            struct vg_rstate *st = &sh->states[k - 1];
            uint32_t next = st->next, subject = st->subject, ext = st->ext;
            uint16_t rule = st->rule;
            vg_rstate_init(st, rule);
            st->next = next;
            st->subject = subject;
            st->ext = ext;
            if (ext)
                ext_reset(sh, s, st);
        }
    }
}

void vg_shard_claim(struct vg_shard *sh)
{
    if (!sh->owns)
        return;
    bool *reset = calloc((size_t)sh->n_plants + 1, sizeof *reset);
    if (!reset)
        abort();
    bool any = false;
    for (uint32_t p = 0; p < sh->n_plants; p++) {
        struct plant_entry *pe = &sh->plants[p];
        bool own = sh->owns(sh->owns_ctx, sh->keys + pe->key, pe->len);
        if (!own && !pe->disowned) {
            pe->disowned = 1;
        } else if (own && pe->disowned) {
            /* back from another instance: what we held is stale; its record replaces it */
            pe->disowned = 0;
            pe->wants_load = 1;
            pe->maint = 0;
            reset[p] = any = true;
        }
    }
    if (any)
        plants_reset(sh, reset);
    free(reset);
    if (sh->started)
        seed(sh, sh->start);
}

bool vg_shard_wants(struct vg_shard *sh, const char *plant, size_t n)
{
    if (n > VG_ID_MAX)
        return false;
    uint32_t p = plant_find(sh, plant, (uint8_t)n, vg_hash64(plant, n, 0));
    if (p == UINT32_MAX)
        return true; /* never seen here */
    return sh->plants[p].wants_load || sh->plants[p].disowned;
}

/* `where.kind` selects declared points: a device must be declared with that kind. */
static bool kind_ok(const struct vg_shard *sh, const struct vg_rule *rule, const struct subject *s)
{
    if (!rule->where.kind)
        return true;
    const struct vg_plant *pl = sh->plants[s->plant].reg;
    const char *key = subject_key(sh, s);
    const struct vg_point *pt = pl ? vg_plant_point(pl, key + s->plant_len, s->dev_len) : NULL;
    for (char **k = rule->where.kind; pt && pt->kind && *k; k++)
        if (!strcmp(*k, pt->kind))
            return true;
    return false;
}

/*
 * A rule that reads more than its sample's value: feed its windows, read the
 * other metrics' latest values, set points and alert counts, then step.
 */
static void evaluate_slots(struct vg_shard *sh, struct subject *s, struct vg_rstate *st,
                           const struct vg_rule *rule, const struct vg_wevent *e, vg_alert_fn emit,
                           void *ctx)
{
    if (st->flags & VG_RS_NA)
        return;
    uint32_t r = st->rule;
    char *x = ext_of(sh, st);
    double slots[VG_SLOTS_MAX];
    bool own = rule->has_value && rule->metrics[0] == e->metric;
    /* `value` is the rule's metric; a sample of another metric of a compound
     * rule sees the rule metric's latest value */
    double value = own ? e->value
                       : rule->has_value ? series_get(sh, s, rule->metrics[0], e->ts, rule->stale_ms)
                                         : NAN;
    for (uint32_t k = 0; k < rule->n_slots; k++) {
        const struct vg_slot *sl = &rule->slots[k];
        switch (sl->kind) {
        case VG_SLOT_METRIC:
            slots[k] = sl->metric == e->metric ? e->value
                                               : series_get(sh, s, sl->metric, e->ts, rule->stale_ms);
            break;
        case VG_SLOT_LIMIT:
            memcpy(&slots[k], x + sl->ext_off, sizeof slots[k]);
            break;
        case VG_SLOT_ALERTS: {
            const struct vg_rule *t = &sh->rs->rules[sl->target];
            const struct vg_rstate *ts = state_find(sh, s, sl->target);
            double n = 0;
            for (uint32_t f = 0; ts && f < t->n_fired; f++)
                if (t->fired_width[f] == sl->width)
                    n = vg_window_eval((const struct vg_window *)(const void *)(ext_of(sh, ts) + t->fired_off[f]),
                                       VG_W_SUM, e->ts);
            slots[k] = n;
            break;
        }
        case VG_SLOT_WINDOW: {
            struct vg_window *w = (struct vg_window *)(void *)(x + sl->ext_off);
            if (sl->metric == e->metric) {
                double in = e->value;
                if (sl->has_pred) {
                    struct vg_eval_env penv = {e->value, slots};
                    in = vg_truthy(vg_expr_eval(&sl->pred, &penv)) ? 1.0 : 0.0;
                }
                vg_window_push(w, e->ts, in);
            }
            slots[k] = vg_window_eval(w, sl->func, e->ts);
            break;
        }
        }
    }
    struct vg_eval_env env = {value, slots};
    struct vg_transition tr;
    if (vg_rstate_step(st, rule, e->ts, &env, &tr)) {
        sh->rule_value = own ? NAN : value;
        emit_alert(sh, s, r, &tr, e->ts, e->metric, e->value, 0, slots, emit, ctx);
        sh->rule_value = NAN;
    }
}

static uint32_t mute_add(struct vg_shard *sh, uint32_t plant, const char *dev, uint8_t dev_len,
                         vg_ts from, vg_ts until, bool quality)
{
    sh->maint = grow(sh->maint, &sh->cap_maint, sizeof *sh->maint, sh->n_maint + 1);
    struct maint *m = &sh->maint[sh->n_maint];
    m->from = from;
    m->until = until;
    m->dev_len = dev_len;
    m->quality = quality;
    memcpy(m->device, dev, dev_len);
    m->next = sh->plants[plant].maint;
    sh->plants[plant].maint = ++sh->n_maint;
    return sh->n_maint;
}

/* A maintenance control message: mute the plant (or one device) in [from, until). */
static void maintenance_add(struct vg_shard *sh, const struct vg_batch *b, const struct vg_wevent *e)
{
    uint32_t p = plant_get(sh, b->bytes + e->off, e->plant_len);
    mute_add(sh, p, b->bytes + e->off + e->plant_len, e->dev_len, e->from, e->until, false);
    sh->plants[p].dirty = 1;
    sh->st.maintenance++;
}

/* M (maintenance) and C (calibration) samples mute the device until a good sample. */
static void quality_mute(struct vg_shard *sh, struct subject *s, const struct vg_wevent *e,
                         bool triggers)
{
    bool mutes = e->quality == VG_Q_MAINTENANCE || e->quality == VG_Q_CALIBRATION;
    if (mutes && !s->qmute)
        s->qmute = mute_add(sh, s->plant, subject_key(sh, s) + s->plant_len, s->dev_len, e->ts,
                            VG_TS_MAX, true);
    else if (triggers && s->qmute) {
        struct maint *m = &sh->maint[s->qmute - 1];
        m->until = e->ts > m->from ? e->ts : m->from;
        s->qmute = 0;
    }
}

/* Does the message need its subject looked up at all? */
static inline bool relevant(const struct vg_ruleset *rs, const struct vg_wevent *e)
{
    if (e->kind == VG_MSG_SAMPLE)
        return e->metric != VG_METRIC_NONE || rs->n_any;
    return e->kind == VG_MSG_EVENT && e->metric != VG_METRIC_NONE;
}

#define PREFETCH_AHEAD 8

void vg_shard_process(struct vg_shard *sh, const struct vg_batch *b, vg_alert_fn emit, void *ctx)
{
    const struct vg_ruleset *rs = sh->rs;
    /* First pass: hash every subject and prefetch its table slot, so the
     * cache misses of a large table overlap instead of queueing. */
    uint64_t hs[VG_BATCH_EVENTS];
    for (uint32_t i = 0; i < b->n; i++) {
        const struct vg_wevent *e = &b->ev[i];
        hs[i] = subject_hash(b->bytes + e->off, e->plant_len, e->dev_len);
        __builtin_prefetch(&sh->subject_tab.slots[(uint32_t)hs[i] & sh->subject_tab.mask]);
    }
    for (uint32_t i = 0; i < b->n; i++) {
        if (i + PREFETCH_AHEAD < b->n) {
            /* second stage: the entry the slot of a later event points at */
            uint64_t e = sh->subject_tab.slots[(uint32_t)hs[i + PREFETCH_AHEAD] & sh->subject_tab.mask];
            if (e)
                __builtin_prefetch(&sh->subjects[(uint32_t)e - 1]);
        }
        const struct vg_wevent *e = &b->ev[i];
        if (VG_UNLIKELY(e->kind == VG_MSG_MAINTENANCE)) {
            maintenance_add(sh, b, e);
            continue;
        }
        if (VG_UNLIKELY(!relevant(rs, e))) {
            if (e->kind == VG_MSG_EVENT)
                sh->st.reports++;
            else if (e->kind != VG_MSG_SAMPLE)
                sh->st.controls++;
            else
                sh->st.unmatched++;
            continue;
        }
        bool sample = e->kind == VG_MSG_SAMPLE;
        bool triggers = sample && vg_quality_triggers(e->quality);
        if (sample) {
            if (triggers)
                sh->st.samples++;
            else
                sh->st.muted++;
        } else {
            sh->st.reports++;
        }
        struct subject *s = subject_get(sh, hs[i], b->bytes + e->off, e->plant_len, e->dev_len);
        if (sh->track_changes) /* only checkpoints read it: no extra cache line otherwise */
            sh->plants[s->plant].dirty = 1;
        const uint64_t *bits = sh->rule_bits + (size_t)s->plant * sh->words;
        if (sample && (s->qmute || !triggers))
            quality_mute(sh, s, e, triggers);
        if (e->metric != VG_METRIC_NONE && sample && triggers && rs->keep_latest[e->metric])
            series_put(sh, s, e->metric, e->ts, e->value);
        if (e->metric != VG_METRIC_NONE) {
            uint32_t nr;
            const uint32_t *rules = vg_ruleset_rules_for(rs, e->metric, &nr);
            struct vg_eval_env env = {e->value, NULL};
            for (uint32_t k = 0; k < nr; k++) {
                uint32_t r = rules[k];
                const struct vg_rule *rule = &rs->rules[r];
                if (!(bits[r / 64] >> (r % 64) & 1))
                    continue;
                if (rule->type == VG_RULE_ABSENCE) {
                    /* any message of the watched kind counts, whatever its quality */
                    if (rule->on_event != sample && kind_ok(sh, rule, s))
                        absence_seen(sh, s, r, e->ts, emit, ctx);
                    continue;
                }
                if (!triggers)
                    continue;
                struct vg_rstate *st = state_get(sh, s, r);
                if (VG_UNLIKELY(st->flags & VG_RS_MUTED))
                    resume(sh, s, st, e->ts, e->metric, e->value, emit, ctx);
                struct vg_transition tr;
                if (VG_LIKELY(!rule->n_slots)) {
                    if (vg_rstate_step(st, rule, e->ts, &env, &tr))
                        emit_alert(sh, s, r, &tr, e->ts, e->metric, e->value, 0, NULL, emit, ctx);
                    continue;
                }
                evaluate_slots(sh, s, st, rule, e, emit, ctx);
            }
        }
        if (sample)
            for (uint32_t k = 0; k < rs->n_any; k++) {
                uint32_t r = rs->any_rules[k];
                if (bits[r / 64] >> (r % 64) & 1 && kind_ok(sh, &rs->rules[r], s))
                    absence_seen(sh, s, r, e->ts, emit, ctx);
            }
    }
    vg_shard_advance(sh, b->watermark, emit, ctx);
}

void vg_shard_stats(const struct vg_shard *sh, struct vg_shard_stats *out)
{
    *out = sh->st;
    out->subjects = sh->n_subjects;
    out->plants = sh->n_plants;
    out->states = sh->n_states;
    out->bytes = (size_t)sh->cap_subjects * sizeof *sh->subjects +
                 (size_t)(sh->subject_tab.mask + 1) * sizeof(uint64_t) +
                 (size_t)sh->cap_plants * (sizeof *sh->plants + sh->words * sizeof(uint64_t)) +
                 (size_t)(sh->plant_tab.mask + 1) * sizeof(uint64_t) +
                 (size_t)sh->cap_states * sizeof *sh->states + sh->keys_cap;
}

/* ---- snapshots --------------------------------------------------------- */

/* A growable byte buffer for records; fixed-width fields in host order (the
 * header says which machine wrote them). */
struct wbuf {
    char *p;
    size_t n, cap;
};

static void put_bytes(struct wbuf *w, const void *v, size_t n)
{
    if (w->n + n > w->cap) {
        size_t need = w->n + n, c = w->cap > 4096 ? w->cap : 4096;
        while (c < need && c < SIZE_MAX / 2)
            c *= 2;
        char *q = c >= need ? realloc(w->p, c) : NULL;
        if (!q)
            abort();
        w->p = q;
        w->cap = c;
    }
    memcpy(w->p + w->n, v, n);
    w->n += n;
}

#define PUT(w, x) put_bytes((w), &(x), sizeof(x))

static void put_str8(struct wbuf *w, const char *p, size_t n)
{
    uint8_t len = (uint8_t)n;
    PUT(w, len);
    put_bytes(w, p, len);
}

struct rbuf {
    const char *p;
    size_t n, at;
    bool bad;
};

static bool get_bytes(struct rbuf *r, void *v, size_t n)
{
    if (r->bad || r->at + n > r->n) {
        r->bad = true;
        return false;
    }
    memcpy(v, r->p + r->at, n);
    r->at += n;
    return true;
}

#define GET(r, x) get_bytes((r), &(x), sizeof(x))

static bool get_str8(struct rbuf *r, char *out, size_t cap, uint8_t *len)
{
    return GET(r, *len) && *len < cap && get_bytes(r, out, *len);
}

/* byte order, and the sizes the raw parts of a record depend on */
static uint32_t machine_tag(void)
{
    const uint16_t one = 1;
    uint8_t le;
    memcpy(&le, &one, 1);
    return (uint32_t)le << 24 | (uint32_t)sizeof(struct vg_rstate) << 16 |
           (uint32_t)sizeof(struct vg_window_bucket) << 8 | (uint32_t)sizeof(struct vg_window);
}

static const char snapshot_magic[4] = {'V', 'G', 'S', 'N'};

static int export_plants(struct vg_shard *sh, bool dirty_only, vg_snapshot_fn fn, void *ctx);

int vg_shard_export(const struct vg_shard *sh, vg_snapshot_fn fn, void *ctx)
{
    return export_plants((struct vg_shard *)sh, false, fn, ctx);
}

int vg_shard_export_dirty(struct vg_shard *sh, vg_snapshot_fn fn, void *ctx)
{
    return export_plants(sh, true, fn, ctx);
}

/*
 * Record layout, version 2 (fixed-width fields in host order; the tag says
 * which machine wrote them):
 *   "VGSN" u16 version u32 tag i64 clock str8 plant
 *   u32 n_mutes   { i64 from, i64 until, u8 quality, str8 device }
 *   u16 n_rules   { str8 rule id, 8 bytes rule_version }   the rules named below
 *   u32 n_devices { str8 device, u8 quality_mute_open, [i64 its from],
 *                   u16 n_series { str8 metric, i64 ts, f64 value },
 *                   u16 n_states { u16 rule (index into the table above),
 *                                  u8 level, u8 flags, u8 present,
 *                                  i64 for each bit of present: pending[0..3],
 *                                      started_at, clear_since,
 *                                  u32 bytes of what follows: the windows of the rule, in slot then firing
 *                                  order: { i64 newest, u16 n, n x { u16 slot,
 *                                  64-byte bucket } } } }
 * A state still as a new one would be (no streak, no alert, no clear timer,
 * empty windows) is left out, and so is a device with nothing else to say:
 * most of a quiet plant's states are idle. Set points are not stored: they
 * come from the registry at import. Version 1 (every state whole) still reads.
 */
enum { P_PENDING0 = 1, P_STARTED = 16, P_CLEAR = 32 };

/* Every window of rule @p r in its extension @p x, in a fixed order. */
static uint32_t rule_windows(const struct vg_rule *r, char *x, struct vg_window **out)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < r->n_slots; k++)
        if (r->slots[k].kind == VG_SLOT_WINDOW)
            out[n++] = (struct vg_window *)(void *)(x + r->slots[k].ext_off);
    for (uint32_t f = 0; f < r->n_fired; f++)
        out[n++] = (struct vg_window *)(void *)(x + r->fired_off[f]);
    return n;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The buckets that can still count: held, and not older than the window's span. */
static bool bucket_live(const struct vg_window *w, const struct vg_window_bucket *b)
{
    return b->k != INT64_MIN && w->newest != VG_TS_NONE &&
           b->k > floor_div(w->newest, w->res) - (int64_t)w->nb;
}

static bool state_idle(const struct vg_shard *sh, const struct vg_rstate *st)
{
    if (st->level || st->started_at != VG_TS_NONE || st->clear_since != VG_TS_NONE ||
        (st->flags & (uint8_t)~(VG_RS_NA | VG_RS_ARMED)))
        return false;
    for (int g = 0; g < VG_GRADES_MAX; g++)
        if (st->pending[g] != VG_TS_NONE)
            return false;
    if (st->ext) {
        struct vg_window *win[2 * VG_SLOTS_MAX];
        const struct vg_rule *r = &sh->rs->rules[st->rule];
        uint32_t n = rule_windows(r, ext_of(sh, st), win);
        for (uint32_t i = 0; i < n; i++)
            if (win[i]->newest != VG_TS_NONE)
                return false;
    }
    return true;
}

static void put_state(struct wbuf *w, const struct vg_shard *sh, const struct vg_rstate *st,
                      uint16_t rule_ref)
{
    uint8_t present = 0, flags = st->flags & (uint8_t)~(VG_RS_ARMED | VG_RS_NA);
    for (int g = 0; g < VG_GRADES_MAX; g++)
        if (st->pending[g] != VG_TS_NONE)
            present |= (uint8_t)(P_PENDING0 << g);
    if (st->started_at != VG_TS_NONE)
        present |= P_STARTED;
    if (st->clear_since != VG_TS_NONE)
        present |= P_CLEAR;
    PUT(w, rule_ref);
    PUT(w, st->level);
    PUT(w, flags);
    PUT(w, present);
    for (int g = 0; g < VG_GRADES_MAX; g++)
        if (present & (P_PENDING0 << g))
            PUT(w, st->pending[g]);
    if (present & P_STARTED)
        PUT(w, st->started_at);
    if (present & P_CLEAR)
        PUT(w, st->clear_since);
    uint32_t len_at = (uint32_t)w->n, wlen = 0;
    PUT(w, wlen); /* bytes of the windows below, so a reader without the rule can skip them */
    if (!st->ext)
        return;
    struct vg_window *win[2 * VG_SLOTS_MAX];
    uint32_t n = rule_windows(&sh->rs->rules[st->rule], ext_of(sh, st), win);
    for (uint32_t i = 0; i < n; i++) {
        PUT(w, win[i]->newest);
        uint16_t live = 0;
        for (uint32_t b = 0; b < win[i]->nb; b++)
            live += bucket_live(win[i], &win[i]->b[b]);
        PUT(w, live);
        for (uint16_t b = 0; b < win[i]->nb; b++)
            if (bucket_live(win[i], &win[i]->b[b])) {
                PUT(w, b);
                PUT(w, win[i]->b[b]);
            }
    }
    wlen = (uint32_t)(w->n - len_at - sizeof wlen);
    memcpy(w->p + len_at, &wlen, sizeof wlen);
}

static int export_plants(struct vg_shard *sh, bool dirty_only, vg_snapshot_fn fn, void *ctx)
{
    /* subjects by plant (counting sort) */
    uint32_t *start = calloc((size_t)sh->n_plants + 1, sizeof *start);
    uint32_t *order = malloc(((size_t)sh->n_subjects + 1) * sizeof *order);
    /* rule index -> position in this record's rule table + 1 (0: not yet named) */
    uint16_t *rule_ref = calloc((size_t)sh->rs->n_rules + 1, sizeof *rule_ref);
    uint32_t *rules_named = malloc(((size_t)sh->rs->n_rules + 1) * sizeof *rules_named);
    if (!start || !order || !rule_ref || !rules_named) {
        free(start);
        free(order);
        free(rule_ref);
        free(rules_named);
        return VG_ENOMEM;
    }
    for (uint32_t i = 0; i < sh->n_subjects; i++)
        start[sh->subjects[i].plant + 1]++;
    for (uint32_t p = 0; p < sh->n_plants; p++)
        start[p + 1] += start[p];
    uint32_t *fill = calloc((size_t)sh->n_plants + 1, sizeof *fill);
    for (uint32_t i = 0; i < sh->n_subjects; i++) {
        uint32_t p = sh->subjects[i].plant;
        order[start[p] + fill[p]++] = i;
    }
    free(fill);
    struct wbuf w = {0}, body = {0};
    int rc = VG_OK;
    const struct vg_ruleset *rs = sh->rs;
    for (uint32_t p = 0; p < sh->n_plants && rc == VG_OK; p++) {
        struct plant_entry *pe = &sh->plants[p];
        if (dirty_only && !pe->dirty)
            continue;
        pe->dirty = 0;
        /* the devices go to `body` first: the rule table in front names what they use */
        body.n = 0;
        uint16_t n_named = 0;
        uint32_t nd = 0;
        for (uint32_t k = start[p]; k < start[p + 1]; k++) {
            const struct subject *s = &sh->subjects[order[k]];
            uint16_t nser = 0, nst = 0;
            for (uint32_t i = s->series; i; i = sh->series[i - 1].next)
                nser++;
            for (uint32_t i = s->states; i; i = sh->states[i - 1].next)
                nst += !state_idle(sh, &sh->states[i - 1]);
            if (!nser && !nst && !s->qmute)
                continue; /* nothing a new device would not have */
            nd++;
            put_str8(&body, subject_key(sh, s) + s->plant_len, s->dev_len);
            uint8_t qmute_open = s->qmute != 0;
            PUT(&body, qmute_open);
            if (qmute_open)
                PUT(&body, sh->maint[s->qmute - 1].from);
            PUT(&body, nser);
            for (uint32_t i = s->series; i; i = sh->series[i - 1].next) {
                const struct series *se = &sh->series[i - 1];
                const char *m = rs->metric_names[se->metric];
                put_str8(&body, m, strlen(m));
                PUT(&body, se->ts);
                PUT(&body, se->value);
            }
            PUT(&body, nst);
            for (uint32_t i = s->states; i; i = sh->states[i - 1].next) {
                const struct vg_rstate *st = &sh->states[i - 1];
                if (state_idle(sh, st))
                    continue;
                if (!rule_ref[st->rule]) {
                    rules_named[n_named] = st->rule;
                    rule_ref[st->rule] = ++n_named;
                }
                put_state(&body, sh, st, (uint16_t)(rule_ref[st->rule] - 1));
            }
        }
        w.n = 0;
        put_bytes(&w, snapshot_magic, 4);
        uint16_t version = VG_SNAPSHOT_VERSION;
        uint32_t tag = machine_tag();
        PUT(&w, version);
        PUT(&w, tag);
        PUT(&w, sh->clock);
        put_str8(&w, sh->keys + pe->key, pe->len);
        uint32_t nm = 0;
        for (uint32_t i = pe->maint; i; i = sh->maint[i - 1].next)
            nm++;
        PUT(&w, nm);
        for (uint32_t i = pe->maint; i; i = sh->maint[i - 1].next) {
            const struct maint *m = &sh->maint[i - 1];
            PUT(&w, m->from);
            PUT(&w, m->until);
            PUT(&w, m->quality);
            put_str8(&w, m->device, m->dev_len);
        }
        PUT(&w, n_named);
        for (uint16_t i = 0; i < n_named; i++) {
            const struct vg_rule *r = &rs->rules[rules_named[i]];
            put_str8(&w, r->id, strlen(r->id));
            put_bytes(&w, r->version, 8);
            rule_ref[rules_named[i]] = 0; /* ready for the next plant */
        }
        PUT(&w, nd);
        if (body.n)
            put_bytes(&w, body.p, body.n);
        rc = fn(ctx, sh->keys + pe->key, pe->len, w.p, w.n);
    }
    free(w.p);
    free(body.p);
    free(start);
    free(order);
    free(rule_ref);
    free(rules_named);
    return rc;
}

/* A stored rule: its index here, or -1 when removed, changed, or no longer selecting the plant. */
static int32_t stored_rule(const struct vg_shard *sh, uint32_t plant, const char *name, size_t n,
                           const char ver[8])
{
    char id[VG_ID_MAX + 1];
    memcpy(id, name, n);
    id[n] = 0;
    const struct vg_rule *rule = vg_ruleset_find(sh->rs, id);
    if (!rule || memcmp(rule->version, ver, 8))
        return -1; /* removed or changed since: it starts afresh */
    uint32_t ri = (uint32_t)(rule - sh->rs->rules);
    if (!(sh->rule_bits[(size_t)plant * sh->words + ri / 64] >> (ri % 64) & 1))
        return -1; /* the registry no longer selects this plant for it */
    return (int32_t)ri;
}

/* Version 1: the whole struct vg_rstate and the whole extension. */
static void import_state_v1(struct vg_shard *sh, struct subject *s, struct rbuf *r)
{
    char name[VG_ID_MAX + 1], ver[8];
    uint8_t nlen;
    struct vg_rstate saved;
    uint32_t ext;
    if (!get_str8(r, name, sizeof name, &nlen) || !get_bytes(r, ver, 8) || !GET(r, saved) ||
        !GET(r, ext) || r->at + ext > r->n) {
        r->bad = true;
        return;
    }
    const char *ext_data = r->p + r->at;
    r->at += ext;
    int32_t ri = stored_rule(sh, s->plant, name, nlen, ver);
    if (ri < 0 || ext != sh->rs->rules[ri].ext_size)
        return;
    struct vg_rstate *st = state_get(sh, s, (uint32_t)ri);
    uint32_t next = st->next, subject = st->subject, ext_off = st->ext;
    *st = saved;
    st->next = next;
    st->subject = subject;
    st->ext = ext_off;
    st->rule = (uint16_t)ri;
    st->flags &= (uint8_t)~VG_RS_ARMED;
    if (ext && ext_off) {
        memcpy(ext_of(sh, st), ext_data, ext);
        ext_set_limits(sh, s, st);
    }
    if (sh->rs->rules[ri].type == VG_RULE_ABSENCE)
        arm(sh, st);
}

/* Version 2: see the layout above export_plants. @p table maps the record's rule refs. */
static void import_state_v2(struct vg_shard *sh, struct subject *s, struct rbuf *r,
                            const int32_t *table, uint16_t n_table)
{
    uint16_t ref;
    uint8_t level, flags, present;
    vg_ts t[VG_GRADES_MAX + 2];
    uint32_t wlen;
    if (!GET(r, ref) || !GET(r, level) || !GET(r, flags) || !GET(r, present) || ref >= n_table) {
        r->bad = true;
        return;
    }
    for (int i = 0; i < VG_GRADES_MAX + 2; i++) {
        t[i] = VG_TS_NONE;
        if (present & (1u << i))
            GET(r, t[i]);
    }
    if (!GET(r, wlen) || r->at + wlen > r->n) {
        r->bad = true;
        return;
    }
    struct rbuf wr = {r->p + r->at, wlen, 0, false};
    r->at += wlen;
    int32_t ri = table[ref];
    if (ri < 0)
        return;
    const struct vg_rule *rule = &sh->rs->rules[ri];
    struct vg_rstate *st = state_get(sh, s, (uint32_t)ri);
    for (int g = 0; g < VG_GRADES_MAX; g++)
        st->pending[g] = t[g];
    st->started_at = t[VG_GRADES_MAX];
    st->clear_since = t[VG_GRADES_MAX + 1];
    st->level = level;
    st->flags = (uint8_t)((flags & ~(VG_RS_ARMED | VG_RS_NA)) | (st->flags & VG_RS_NA));
    if (st->ext) {
        struct vg_window *win[2 * VG_SLOTS_MAX];
        uint32_t n = rule_windows(rule, ext_of(sh, st), win);
        for (uint32_t i = 0; i < n && !wr.bad; i++) {
            uint16_t live = 0;
            GET(&wr, win[i]->newest);
            GET(&wr, live);
            for (uint16_t k = 0; k < live && !wr.bad; k++) {
                uint16_t slot = 0;
                struct vg_window_bucket bk;
                if (GET(&wr, slot) && GET(&wr, bk) && slot < win[i]->nb)
                    win[i]->b[slot] = bk;
            }
        }
        if (wr.bad || wr.at != wr.n)
            r->bad = true;
    }
    if (rule->type == VG_RULE_ABSENCE)
        arm(sh, st);
}

int vg_shard_import(struct vg_shard *sh, const void *data, size_t len, struct vg_error *err)
{
    struct rbuf r = {data, len, 0, false};
    char magic[4], plant[VG_ID_MAX + 1], dev[VG_ID_MAX + 1], name[VG_ID_MAX + 1];
    uint16_t version;
    uint32_t tag;
    vg_ts clock;
    uint8_t plen, dlen, nlen;
    if (!get_bytes(&r, magic, 4) || memcmp(magic, snapshot_magic, 4) || !GET(&r, version) ||
        (version != 1 && version != VG_SNAPSHOT_VERSION) || !GET(&r, tag))
        return vg_error_set(err, VG_EINVAL, "not a vigil state record of version 1 to %d",
                            VG_SNAPSHOT_VERSION);
    if (tag != machine_tag())
        return vg_error_set(err, VG_EINVAL, "state record written by a machine of another byte "
                            "order or build (tag %08x, here %08x)", tag, machine_tag());
    if (!GET(&r, clock) || !get_str8(&r, plant, sizeof plant, &plen))
        return vg_error_set(err, VG_EINVAL, "truncated state record");
    if (clock != VG_TS_NONE && (sh->clock == VG_TS_NONE || clock > sh->clock))
        sh->clock = clock;
    uint32_t p = plant_get(sh, plant, plen);
    const struct vg_ruleset *rs = sh->rs;
    uint32_t nm = 0;
    if (!GET(&r, nm) || nm > len)
        return vg_error_set(err, VG_EINVAL, "corrupt state record for plant %.*s", (int)plen, plant);
    sh->plants[p].maint = 0; /* the record replaces the plant's windows */
    uint32_t *qwin = calloc((size_t)nm + 1, sizeof *qwin);
    for (uint32_t i = 0; i < nm && !r.bad; i++) {
        vg_ts from = 0, until = 0;
        uint8_t quality = 0;
        GET(&r, from);
        GET(&r, until);
        GET(&r, quality);
        if (!get_str8(&r, dev, sizeof dev, &dlen))
            break;
        qwin[i] = mute_add(sh, p, dev, dlen, from, until, quality != 0);
    }
    uint16_t n_table = 0;
    int32_t *table = NULL;
    if (version >= 2 && GET(&r, n_table)) {
        table = calloc((size_t)n_table + 1, sizeof *table);
        for (uint16_t i = 0; i < n_table && !r.bad; i++) {
            char ver[8];
            if (get_str8(&r, name, sizeof name, &nlen) && get_bytes(&r, ver, 8))
                table[i] = stored_rule(sh, p, name, nlen, ver);
        }
    }
    uint32_t ns = 0;
    GET(&r, ns);
    for (uint32_t k = 0; k < ns && !r.bad; k++) {
        if (!get_str8(&r, dev, sizeof dev, &dlen))
            break;
        char key[2 * VG_ID_MAX + 2];
        memcpy(key, plant, plen);
        memcpy(key + plen, dev, dlen);
        struct subject *s = subject_get(sh, subject_hash(key, plen, dlen), key, plen, dlen);
        uint8_t qmute_open = 0;
        vg_ts qmute_from = 0;
        GET(&r, qmute_open);
        if (version == 1 || qmute_open)
            GET(&r, qmute_from);
        s->qmute = 0;
        if (qmute_open) /* the open quality window: the one of this device from that time */
            for (uint32_t i = 0; i < nm && qwin[i]; i++) {
                const struct maint *m = &sh->maint[qwin[i] - 1];
                if (m->quality && m->until == VG_TS_MAX && m->from == qmute_from &&
                    m->dev_len == dlen && !memcmp(m->device, dev, dlen))
                    s->qmute = qwin[i];
            }
        uint16_t nser = 0, nst = 0;
        GET(&r, nser);
        for (uint16_t i = 0; i < nser && !r.bad; i++) {
            vg_ts ts;
            double v;
            if (!get_str8(&r, name, sizeof name, &nlen) || !GET(&r, ts) || !GET(&r, v))
                break;
            uint32_t m = vg_ruleset_metric(rs, name, nlen);
            if (m != VG_METRIC_NONE && rs->keep_latest[m])
                series_put(sh, s, m, ts, v);
        }
        GET(&r, nst);
        for (uint16_t i = 0; i < nst && !r.bad; i++) {
            if (version == 1)
                import_state_v1(sh, s, &r);
            else
                import_state_v2(sh, s, &r, table, n_table);
        }
    }
    free(qwin);
    free(table);
    if (r.bad || r.at != r.n)
        return vg_error_set(err, VG_EINVAL, "corrupt state record for plant %.*s", (int)plen, plant);
    sh->plants[p].dirty = 0; /* exactly what the store holds */
    sh->plants[p].wants_load = 0;
    sh->plants[p].disowned = 0;
    return VG_OK;
}

void vg_shard_track_changes(struct vg_shard *sh, bool on)
{
    sh->track_changes = on;
}

vg_ts vg_shard_clock(const struct vg_shard *sh)
{
    return sh->clock;
}
