/*
 * shard.c: a worker's series tables and the per-event rule evaluation.
 * Owns: everything in struct vg_shard. Must never: be shared between threads.
 */
#include "engine/shard.h"
#include "engine/hash.h"

#include <stdlib.h>
#include <string.h>

#define KEY_INLINE 26

/* One device of one plant. 48 bytes: short keys live inline, on the same line. */
struct subject {
    uint64_t hash;
    uint32_t plant;        /* index into plants */
    uint32_t states;       /* first rule state (index + 1), 0 = none */
    uint32_t key;          /* offset of plant+device bytes in keys, if not inline */
    uint8_t plant_len, dev_len;
    char inline_key[KEY_INLINE];
};

static inline const char *subject_key(const struct vg_shard *sh, const struct subject *s);

struct plant_entry {
    uint64_t hash;
    uint32_t key;
    uint8_t len;
    const struct vg_plant *reg;
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

struct vg_shard {
    const struct vg_ruleset *rs;
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

static uint32_t plant_get(struct vg_shard *sh, const char *p, uint8_t n)
{
    uint64_t h = vg_hash64(p, n, 0);
    uint32_t k = (uint32_t)h & sh->plant_tab.mask;
    for (;; k = (k + 1) & sh->plant_tab.mask) {
        uint64_t e = sh->plant_tab.slots[k];
        if (!e)
            break;
        const struct plant_entry *pe = &sh->plants[(uint32_t)e - 1];
        if (pe->hash == h && pe->len == n && !memcmp(sh->keys + pe->key, p, n))
            return (uint32_t)e - 1;
    }
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
    uint64_t *bits = sh->rule_bits + (size_t)idx * sh->words;
    memset(bits, 0, sh->words * sizeof *bits);
    for (uint32_t r = 0; r < sh->rs->n_rules; r++)
        if (vg_rule_applies(&sh->rs->rules[r], pe->reg))
            bits[r / 64] |= UINT64_C(1) << (r % 64);
    sh->n_plants++;
    k = (uint32_t)h & sh->plant_tab.mask;
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

static struct vg_rstate *state_get(struct vg_shard *sh, struct subject *s, uint32_t rule)
{
    for (uint32_t i = s->states; i; i = sh->states[i - 1].next)
        if (sh->states[i - 1].rule == rule)
            return &sh->states[i - 1];
    uint32_t idx = sh->n_states;
    sh->states = grow(sh->states, &sh->cap_states, sizeof *sh->states, idx + 1);
    struct vg_rstate *st = &sh->states[idx];
    vg_rstate_init(st, (uint16_t)rule);
    st->next = s->states;
    s->states = idx + 1;
    sh->n_states++;
    return st;
}

static void emit_alert(struct vg_shard *sh, const struct subject *s, uint32_t rule,
                       const struct vg_transition *tr, vg_ts at, double value, vg_alert_fn emit,
                       void *ctx)
{
    struct vg_alert a;
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

/* Samples that rules will look at; everything else is only counted. */
static inline bool evaluable(const struct vg_wevent *e)
{
    return e->kind == VG_MSG_SAMPLE && e->metric != VG_METRIC_NONE && vg_quality_triggers(e->quality);
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
        if (VG_UNLIKELY(!evaluable(e))) {
            if (e->kind == VG_MSG_EVENT)
                sh->st.reports++;
            else if (e->kind != VG_MSG_SAMPLE)
                sh->st.controls++;
            else if (e->metric == VG_METRIC_NONE)
                sh->st.unmatched++;
            else
                sh->st.muted++;
            continue;
        }
        sh->st.samples++;
        struct subject *s = subject_get(sh, hs[i], b->bytes + e->off, e->plant_len, e->dev_len);
        const uint64_t *bits = sh->rule_bits + (size_t)s->plant * sh->words;
        uint32_t nr;
        const uint32_t *rules = vg_ruleset_rules_for(rs, e->metric, &nr);
        struct vg_eval_env env = {e->value, NULL};
        for (uint32_t k = 0; k < nr; k++) {
            uint32_t r = rules[k];
            if (!(bits[r / 64] >> (r % 64) & 1))
                continue;
            struct vg_rstate *st = state_get(sh, s, r);
            struct vg_transition tr;
            if (vg_rstate_step(st, &rs->rules[r], e->ts, &env, &tr))
                emit_alert(sh, s, r, &tr, e->ts, e->value, emit, ctx);
        }
    }
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
