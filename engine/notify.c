/*
 * notify.c: SMS requests from alert state changes. See notify.h and
 * docs/semantics.md "SMS requests" for the contract.
 * Owns: everything in struct vg_notifier: live alerts of rules with notify
 * entries (for chains, acks and resolve messages), throttle, daily-count and
 * remembered-ack tables, digest queues, the chain deadline heap, and the
 * scratch buffers requests are rendered into.
 * Must never: read the wall clock; keep a pointer into the registry or rule
 * set past their lifetime (it borrows both); let a table grow without a bound
 * (each one expires its entries in event time); depend on table or pool order
 * for what it emits (deadlines pop in (at, alert id, entry) order, digests go
 * out in phone-number order).
 * DESIGN: every decision is a function of event time and the calls made, so
 * a replay repeats the same requests with the same request ids. Tables are
 * open addressing on 64-bit keys (hashes of names; alert ids are their own
 * 64-bit hash) with backward-shift deletion, so slots are reused without
 * tombstones. Live alerts and digest queues sit in pools with free lists.
 */
#include "engine/notify.h"
#include "engine/hash.h"
#include "engine/json.h"
#include "engine/strmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS (86400 * 1000LL)
#define SWEEP_MS (3600 * 1000LL)     /* how often expired table entries are removed */
#define SENT_MAX 32                  /* (entry, number) pairs remembered per alert for on_resolve */
#define EVENT_NUMBERS_MAX 64         /* numbers deduplicated within one event */
#define TEXT_CP_MAX 2000             /* schema: text maxLength */
#define PARAM_CP_MAX 256             /* schema: params items maxLength */
#define DIGEST_CP_TARGET 70          /* one SMS */
#define RECORD_VERSION 2             /* 2: one record per subject, number and the acks */

const char vg_notify_default_template[] =
    "【安全预警】{plant_name}{device}{title}，等级{level_cn}，数值{value}，时间{time}。";
const char vg_notify_resolve_template[] = "【安全预警】{plant_name}{device}{title}已解除，时间{time}。";

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort(); /* out of memory in the output thread: nothing sensible to degrade to */
    return q;
}

/* ---- placeholders -------------------------------------------------------- */

enum {
    PH_PLANT_NAME, PH_PLANT, PH_DEVICE, PH_METRIC, PH_VALUE, PH_LEVEL, PH_LEVEL_CN, PH_TITLE,
    PH_REGION_NAME, PH_TIME, PH_COUNT
};
static const char *const ph_names[PH_COUNT] = {"plant_name", "plant", "device", "metric", "value",
                                               "level", "level_cn", "title", "region_name", "time"};
static const char *const level_cn[VG_LEVEL_COUNT] = {"", "蓝色", "黄色", "橙色", "红色"};

/* @p s points at '{'. @returns the placeholder and its length through @p len, -1 if unknown,
 * -2 if the brace is not closed before the end or another '{'. */
static int placeholder_at(const char *s, size_t *len)
{
    size_t j = 1;
    while (s[j] && s[j] != '}' && s[j] != '{')
        j++;
    if (s[j] != '}')
        return -2;
    *len = j + 1;
    for (int p = 0; p < PH_COUNT; p++)
        if (strlen(ph_names[p]) == j - 1 && !memcmp(ph_names[p], s + 1, j - 1))
            return p;
    return -1;
}

int vg_notify_template_check(const char *tpl, size_t *bad_offset, char *why, size_t cap)
{
    if (!*tpl) {
        *bad_offset = 0;
        snprintf(why, cap, "is empty (leave 'template' out for the built-in one)");
        return VG_EINVAL;
    }
    int count = 0;
    for (size_t i = 0; tpl[i]; i++) {
        if (tpl[i] != '{')
            continue;
        size_t len = 0;
        int p = placeholder_at(tpl + i, &len);
        *bad_offset = i;
        if (p == -2) {
            snprintf(why, cap, "'{' is not closed by '}' (placeholders look like {plant_name}; "
                               "a literal brace cannot be written)");
            return VG_EINVAL;
        }
        if (p < 0) {
            int shown = len - 2 > 40 ? 40 : (int)(len - 2);
            snprintf(why, cap, "unknown placeholder {%.*s} (known: plant_name, plant, device, metric, "
                               "value, level, level_cn, title, region_name, time)", shown, tpl + i + 1);
            return VG_EINVAL;
        }
        if (++count > VG_NOTIFY_PARAMS_MAX) {
            snprintf(why, cap, "more than %d placeholders (carriers allow %d variables per template)",
                     VG_NOTIFY_PARAMS_MAX, VG_NOTIFY_PARAMS_MAX);
            return VG_EINVAL;
        }
        i += len - 1;
    }
    return VG_OK;
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* Bytes of the first @p max code points of @p s (stops before an incomplete
 * sequence); the count goes to @p cps. */
static size_t utf8_clip(const char *s, size_t n, size_t max, size_t *cps)
{
    size_t i = 0, c = 0;
    while (i < n && c < max) {
        unsigned char b = (unsigned char)s[i];
        size_t k = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
        if (i + k > n)
            break;
        i += k;
        c++;
    }
    if (cps)
        *cps = c;
    return i;
}

static size_t utf8_count(const char *s, size_t n)
{
    size_t c;
    utf8_clip(s, n, SIZE_MAX, &c);
    return c;
}

/* ---- a hash table of 64-bit keys ----------------------------------------- */

struct slot {
    uint64_t key;
    vg_ts t1, t2;   /* meaning per table (see struct vg_notifier) */
    uint32_t n;
    uint32_t used;
    uint32_t owner; /* throttle, daily, acks: the name whose record holds it (index + 1) */
};

struct table {
    struct slot *s;
    uint32_t cap, n;   /* cap: 0 or a power of two */
};

static uint32_t home(const struct table *t, uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9e3779b97f4a7c15ULL;
    return (uint32_t)(key >> 32) & (t->cap - 1);
}

static struct slot *tab_get(struct table *t, uint64_t key, bool create)
{
    if (t->cap) {
        for (uint32_t i = home(t, key);; i = (i + 1) & (t->cap - 1)) {
            if (!t->s[i].used)
                break;
            if (t->s[i].key == key)
                return &t->s[i];
        }
    }
    if (!create)
        return NULL;
    if ((t->n + 1) * 2 > t->cap) {
        struct table g = {calloc(t->cap ? t->cap * 2 : 64, sizeof(struct slot)), t->cap ? t->cap * 2 : 64, 0};
        if (!g.s)
            abort();
        for (uint32_t i = 0; i < t->cap; i++) {
            if (!t->s[i].used)
                continue;
            uint32_t h = home(&g, t->s[i].key);
            while (g.s[h].used)
                h = (h + 1) & (g.cap - 1);
            g.s[h] = t->s[i];
            g.n++;
        }
        free(t->s);
        *t = g;
    }
    uint32_t i = home(t, key);
    while (t->s[i].used)
        i = (i + 1) & (t->cap - 1);
    memset(&t->s[i], 0, sizeof t->s[i]);
    t->s[i].key = key;
    t->s[i].used = 1;
    t->n++;
    return &t->s[i];
}

/* Remove the slot at @p i; later members of its cluster shift back. */
static void tab_del_at(struct table *t, uint32_t i)
{
    uint32_t mask = t->cap - 1;
    t->s[i].used = 0;
    t->n--;
    for (uint32_t j = (i + 1) & mask; t->s[j].used; j = (j + 1) & mask) {
        uint32_t h = home(t, t->s[j].key);
        /* move j into the hole at i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays)
            continue;
        t->s[i] = t->s[j];
        t->s[j].used = 0;
        i = j;
    }
}

static void tab_del(struct table *t, struct slot *sl)
{
    tab_del_at(t, (uint32_t)(sl - t->s));
}

/* Remove every slot for which @p gone(slot, @p ctx) holds. */
static void tab_sweep(struct table *t, bool (*gone)(const struct slot *, const void *ctx), const void *ctx)
{
    for (uint32_t i = 0; i < t->cap;) {
        if (t->s[i].used && gone(&t->s[i], ctx))
            tab_del_at(t, i); /* re-check i: a later entry may have moved into it */
        else
            i++;
    }
}

/* ---- the notifier -------------------------------------------------------- */

/* A live alert of a rule with notify entries. */
struct live {
    uint64_t id;
    uint32_t rule;
    uint32_t metric;          /* as vg_alert.metric */
    double value;
    vg_ts first_at;           /* first firing seen: chain deadlines count from it */
    vg_ts acked_at;           /* earliest ack, or VG_TS_NONE */
    uint32_t esc_sent;        /* chain entries that went out (or were judged before a rule change) */
    uint8_t level, flags, group, n_sent;
    bool overflow;            /* more than SENT_MAX pairs: every pair counts as sent */
    bool in_use;
    uint32_t next_free;       /* free list: index + 1 */
    uint64_t sent[SENT_MAX];  /* hashes of (entry, number) of immediate requests */
    char plant[65], device[65], region[33];
};

struct item {
    uint64_t id;
    uint8_t level, resolved;
};

/* One number's digest: what it gathers until the next digest minute. */
struct queue {
    char to[24], role[65], key[65];
    char first[512];          /* the first alert's subject name and title */
    uint32_t count;           /* items, including those beyond items[] */
    uint32_t by_level[VG_LEVEL_COUNT], resolved;
    uint8_t max_level;
    bool in_use;
    uint32_t n_items, next_free;
    struct item items[VG_NOTIFY_DIGEST_IDS_MAX];
};

/* A chain entry's deadline. */
struct esc {
    vg_ts at;
    uint64_t id;
    uint32_t entry;
};

/*
 * A name under which state is stored: "p:PLANT" (a plant's alerts and
 * throttles), "r:REGION" (a region's group alerts), "n:NUMBER" (a phone
 * number's daily count and digest), "a:" (acks of alerts not seen yet). The
 * record of name X is "~nX".
 */
struct name {
    char *s;
    char anchor[65];   /* r: a plant of the region: its owner owns the region */
    uint64_t written;  /* hash of the record last handed out, 0: none */
    bool held;         /* claim: state of it is here */
};

/* The subject of one request, as rendered. */
struct subj {
    const struct vg_rule *r;
    const struct live *L;
    const struct vg_plant *plant;  /* NULL: a group alert, or a plant not in the registry */
    const char *region;            /* region code, or "" */
    char idhex[17];
};

struct vg_notifier {
    const struct vg_ruleset *rs;   /* borrowed */
    const struct vg_registry *reg; /* borrowed */
    struct vg_notify_options opt;
    struct vg_strmap regions;      /* region code -> index + 1 */
    vg_ts *max_throttle;           /* per rule: the longest throttle of its entries */
    uint64_t *notify_fp;           /* per rule: fingerprint of its notify entries */
    vg_ts now, next_digest, next_sweep;  /* now: VG_TS_NONE before the first time seen */

    struct table alerts;           /* alert id -> n = live index + 1 */
    struct live *live;
    uint32_t n_live, cap_live, free_live;
    struct table throttle;         /* (rule, subject, number) -> t1 last sent, t2 expiry, n level */
    struct table daily;            /* number -> t1 local day, n requests that day */
    struct table acks;             /* alert id -> t1 earliest ack ts (alerts not known yet) */
    struct table digests;          /* number -> n = queue index + 1 */
    struct queue *q;
    uint32_t n_q, cap_q, free_q, used_q;
    struct esc *heap;
    uint32_t n_heap, cap_heap;

    struct vg_notify_stats stats;

    struct vg_strmap name_ix;      /* name -> index + 1 into names[] */
    struct name *names;
    uint32_t n_names, cap_names;
    vg_owns_fn owns;               /* NULL: every subject is this instance's */
    void *owns_ctx;
    struct vg_strmap served;       /* numbers reachable from owned plants (after a claim) */
    bool running;                  /* an alert or a clock move has been seen */

    /* scratch, reused by every request */
    const char *ev_num[EVENT_NUMBERS_MAX];
    uint32_t n_ev;
    uint32_t *order;               /* digest queue indexes, sorted by number */
    uint32_t cap_order;
    char text[8192];
    size_t text_len;
    char pbuf[8192];
    uint32_t poff[VG_NOTIFY_PARAMS_MAX], plen[VG_NOTIFY_PARAMS_MAX], n_params;
    char val[1024];
    char out[98304];               /* bounds every request: escaped text + params + ids */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t local_day(vg_ts t)
{
    return floor_div(t + VG_NOTIFY_TZ_OFFSET_MS, DAY_MS);
}

static vg_ts digest_time(const struct vg_notifier *n, int64_t day)
{
    return day * DAY_MS - VG_NOTIFY_TZ_OFFSET_MS + (vg_ts)n->opt.digest_minute * 60000;
}

static uint64_t entry_fp(const struct vg_rule *r)
{
    uint64_t h = r->n_notify;
    for (uint32_t e = 0; e < r->n_notify; e++) {
        const struct vg_notify *nt = &r->notify[e];
        for (char **t = nt->to; t && *t; t++)
            h = vg_hash64(*t, strlen(*t), h);
        vg_ts nums[3] = {nt->min_level, nt->throttle_ms, nt->unacked_for_ms};
        h = vg_hash64(nums, sizeof nums, h ^ (uint64_t)(nt->digest | nt->on_resolve << 1));
        const char *tpl = nt->template_text ? nt->template_text : "";
        h = vg_hash64(tpl, strlen(tpl), h);
        h = vg_hash64(nt->template_id, strlen(nt->template_id), h);
    }
    return h;
}

struct vg_notifier *vg_notifier_create(const struct vg_ruleset *rs, const struct vg_registry *reg,
                                       const struct vg_notify_options *o)
{
    struct vg_notify_options opt = {0, VG_NOTIFY_DIGEST_MINUTE_DEFAULT};
    if (o)
        opt = *o;
    if (opt.daily_cap < 0 || opt.digest_minute < 0 || opt.digest_minute >= 24 * 60)
        return NULL;
    struct vg_notifier *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->rs = rs;
    n->reg = reg;
    n->opt = opt;
    n->now = n->next_digest = n->next_sweep = VG_TS_NONE;
    n->max_throttle = calloc(rs->n_rules + 1, sizeof *n->max_throttle);
    n->notify_fp = calloc(rs->n_rules + 1, sizeof *n->notify_fp);
    if (!n->max_throttle || !n->notify_fp) {
        vg_notifier_destroy(n);
        return NULL;
    }
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        const struct vg_rule *r = &rs->rules[i];
        for (uint32_t e = 0; e < r->n_notify; e++)
            if (r->notify[e].throttle_ms > n->max_throttle[i])
                n->max_throttle[i] = r->notify[e].throttle_ms;
        n->notify_fp[i] = entry_fp(r);
    }
    for (uint32_t i = 0; reg && i < reg->n_regions; i++) {
        const char *c = reg->regions[i].code;
        uint32_t *v = vg_strmap_get(&n->regions, c, strlen(c), true);
        if (!v) {
            vg_notifier_destroy(n);
            return NULL;
        }
        if (!*v)
            *v = i + 1;
    }
    return n;
}

void vg_notifier_destroy(struct vg_notifier *n)
{
    if (!n)
        return;
    vg_strmap_fini(&n->regions);
    vg_strmap_fini(&n->name_ix);
    vg_strmap_fini(&n->served);
    for (uint32_t i = 0; i < n->n_names; i++)
        free(n->names[i].s);
    free(n->names);
    free(n->max_throttle);
    free(n->notify_fp);
    free(n->alerts.s);
    free(n->live);
    free(n->throttle.s);
    free(n->daily.s);
    free(n->acks.s);
    free(n->digests.s);
    free(n->q);
    free(n->heap);
    free(n->order);
    free(n);
}

void vg_notifier_stats(const struct vg_notifier *n, struct vg_notify_stats *out)
{
    *out = n->stats;
}

/* ---- names ---------------------------------------------------------------- */

/* The index + 1 of name @p kind ':' @p s (@p len bytes), added if new. */
static uint32_t name_id(struct vg_notifier *n, char kind, const char *s, size_t len)
{
    char key[80];
    int k = snprintf(key, sizeof key, "%c:%.*s", kind, (int)(len < 70 ? len : 70), s);
    uint32_t *v = vg_strmap_get(&n->name_ix, key, (size_t)k, true);
    if (!v)
        abort();
    if (!*v) {
        if (n->n_names == n->cap_names) {
            n->cap_names = n->cap_names ? n->cap_names * 2 : 64;
            n->names = xrealloc(n->names, n->cap_names * sizeof *n->names);
        }
        struct name *nm = &n->names[n->n_names];
        memset(nm, 0, sizeof *nm);
        nm->s = malloc((size_t)k + 1);
        if (!nm->s)
            abort();
        memcpy(nm->s, key, (size_t)k + 1);
        *v = ++n->n_names;
    }
    return *v;
}

/* ---- live alerts --------------------------------------------------------- */

static struct live *live_find(struct vg_notifier *n, uint64_t id)
{
    struct slot *s = tab_get(&n->alerts, id, false);
    return s ? &n->live[s->n - 1] : NULL;
}

static struct live *live_new(struct vg_notifier *n, uint64_t id)
{
    uint32_t i;
    if (n->free_live) {
        i = n->free_live - 1;
        n->free_live = n->live[i].next_free;
    } else {
        if (n->n_live == n->cap_live) {
            n->cap_live = n->cap_live ? n->cap_live * 2 : 64;
            n->live = xrealloc(n->live, n->cap_live * sizeof *n->live);
        }
        i = n->n_live++;
    }
    struct live *L = &n->live[i];
    memset(L, 0, sizeof *L);
    L->id = id;
    L->in_use = true;
    L->acked_at = VG_TS_NONE;
    tab_get(&n->alerts, id, true)->n = i + 1;
    return L;
}

static void live_free(struct vg_notifier *n, struct live *L)
{
    uint32_t i = (uint32_t)(L - n->live);
    tab_del(&n->alerts, tab_get(&n->alerts, L->id, false));
    L->in_use = false;
    L->next_free = n->free_live;
    n->free_live = i + 1;
}

static uint64_t sent_key(uint32_t entry, const char *num)
{
    return vg_hash64(num, strlen(num), 0x5e47 + entry);
}

static void sent_add(struct live *L, uint32_t entry, const char *num)
{
    uint64_t k = sent_key(entry, num);
    for (uint32_t i = 0; i < L->n_sent; i++)
        if (L->sent[i] == k)
            return;
    if (L->n_sent < SENT_MAX)
        L->sent[L->n_sent++] = k;
    else
        L->overflow = true;
}

static bool sent_has(const struct live *L, uint32_t entry, const char *num)
{
    if (L->overflow)
        return true;
    uint64_t k = sent_key(entry, num);
    for (uint32_t i = 0; i < L->n_sent; i++)
        if (L->sent[i] == k)
            return true;
    return false;
}

/* Not acknowledged at @p t: no ack, or an ack at or after t (an ack exactly at
 * a deadline comes too late, as a report exactly at an absence deadline does). */
static bool unacked(const struct live *L, vg_ts t)
{
    return L->acked_at == VG_TS_NONE || L->acked_at >= t;
}

static bool parse_id(const char *s, size_t len, uint64_t *out)
{
    if (len != 16)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* ---- the chain heap ------------------------------------------------------ */

static bool esc_less(const struct esc *a, const struct esc *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    if (a->id != b->id)
        return a->id < b->id;
    return a->entry < b->entry;
}

static void heap_push(struct vg_notifier *n, vg_ts at, uint64_t id, uint32_t entry)
{
    if (n->n_heap == n->cap_heap) {
        n->cap_heap = n->cap_heap ? n->cap_heap * 2 : 64;
        n->heap = xrealloc(n->heap, n->cap_heap * sizeof *n->heap);
    }
    uint32_t i = n->n_heap++;
    struct esc e = {at, id, entry};
    while (i > 0 && esc_less(&e, &n->heap[(i - 1) / 2])) {
        n->heap[i] = n->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    n->heap[i] = e;
}

static struct esc heap_pop(struct vg_notifier *n)
{
    struct esc top = n->heap[0], last = n->heap[--n->n_heap];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n->n_heap)
            break;
        if (c + 1 < n->n_heap && esc_less(&n->heap[c + 1], &n->heap[c]))
            c++;
        if (!esc_less(&n->heap[c], &last))
            break;
        n->heap[i] = n->heap[c];
        i = c;
    }
    if (n->n_heap)
        n->heap[i] = last;
    return top;
}

/* Push the chain deadlines of @p L that are after @p after and not sent. */
static void push_chain(struct vg_notifier *n, const struct live *L, vg_ts after)
{
    const struct vg_rule *r = &n->rs->rules[L->rule];
    for (uint32_t e = 0; e < r->n_notify; e++) {
        vg_ts d = L->first_at + r->notify[e].unacked_for_ms;
        if (r->notify[e].unacked_for_ms > 0 && !(L->esc_sent & (1u << e)) && d > after)
            heap_push(n, d, L->id, e);
    }
}

/* ---- recipients ---------------------------------------------------------- */

static char *const *contacts_find(const struct vg_contacts *c, const char *role)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (!strcmp(c->roles[i], role))
            return c->phones[i] && c->phones[i][0] ? c->phones[i] : NULL;
    return NULL;
}

static const struct vg_region *region_find(struct vg_notifier *n, const char *code, size_t len)
{
    uint32_t *v = vg_strmap_get(&n->regions, code, len, false);
    return v && *v ? &n->reg->regions[*v - 1] : NULL;
}

/* The numbers under @p role: the plant's contacts, else the region's, else
 * each declared prefix of the region code (county, city, …), longest first. */
static char *const *role_numbers(struct vg_notifier *n, const struct subj *s, const char *role)
{
    char *const *nums;
    if (s->plant && (nums = contacts_find(&s->plant->contacts, role)))
        return nums;
    for (size_t len = strlen(s->region); len > 0; len--) {
        const struct vg_region *rg = region_find(n, s->region, len);
        if (rg && (nums = contacts_find(&rg->contacts, role)))
            return nums;
    }
    return NULL;
}

/* ---- rendering ----------------------------------------------------------- */

static int fmt_double(char *buf, size_t cap, double v)
{
    /* the shortest of %.6g .. %.17g that reads back exactly, as alert JSON writes values */
    for (int prec = 6; prec < 17; prec++) {
        int k = snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return k;
    }
    return snprintf(buf, cap, "%.17g", v);
}

static const char *region_name(struct vg_notifier *n, const struct subj *s)
{
    const struct vg_region *rg = *s->region ? region_find(n, s->region, strlen(s->region)) : NULL;
    return rg && rg->name && *rg->name ? rg->name : s->region;
}

static const char *subject_name(struct vg_notifier *n, const struct subj *s)
{
    if (s->L->group)
        return region_name(n, s);
    return s->plant && s->plant->name && *s->plant->name ? s->plant->name : s->L->plant;
}

static const char *rule_title(const struct vg_rule *r)
{
    return r->title && *r->title ? r->title : r->id;
}

/* The value of placeholder @p ph into n->val. @returns its length. */
static size_t ph_value(struct vg_notifier *n, int ph, const struct subj *s, vg_ts at)
{
    const struct live *L = s->L;
    const struct vg_rule *r = s->r;
    const char *v = "";
    char *b = n->val;
    size_t cap = sizeof n->val;
    switch (ph) {
    case PH_PLANT_NAME: v = subject_name(n, s); break;
    case PH_PLANT: v = L->plant; break;
    case PH_DEVICE: v = L->device; break;
    case PH_METRIC:
        v = L->metric != VG_METRIC_NONE ? n->rs->metric_names[L->metric]
            : r->n_metrics && !r->any_metric ? n->rs->metric_names[r->metrics[0]] : "";
        break;
    case PH_VALUE:
        /* group alerts: the count of plants their grades compared; absence: none */
        if ((L->group || !(L->flags & VG_ALERT_F_NOVALUE)) && isfinite(L->value))
            return (size_t)fmt_double(b, cap, L->value);
        break;
    case PH_LEVEL: v = vg_level_name(L->level); break;
    case PH_LEVEL_CN: v = level_cn[L->level < VG_LEVEL_COUNT ? L->level : 0]; break;
    case PH_TITLE: v = rule_title(r); break;
    case PH_REGION_NAME: v = region_name(n, s); break;
    case PH_TIME: {
        vg_ts local = at + VG_NOTIFY_TZ_OFFSET_MS;
        time_t secs = (time_t)floor_div(local, 1000);
        struct tm tm;
        if (!gmtime_r(&secs, &tm))
            break;
        return (size_t)snprintf(b, cap, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    }
    size_t len = strlen(v);
    if (len >= cap)
        len = utf8_clip(v, cap - 1, SIZE_MAX, NULL);
    memcpy(b, v, len);
    b[len] = 0;
    return len;
}

static void text_put(struct vg_notifier *n, const char *s, size_t len)
{
    size_t room = sizeof n->text - n->text_len;
    if (len > room)
        len = room;
    memcpy(n->text + n->text_len, s, len);
    n->text_len += len;
}

/* Render @p tpl into n->text (at most TEXT_CP_MAX characters) and, with
 * @p params, each placeholder's value into n->pbuf (PARAM_CP_MAX each). */
static void render(struct vg_notifier *n, const char *tpl, const struct subj *s, vg_ts at, bool params)
{
    n->text_len = 0;
    n->n_params = 0;
    size_t po = 0;
    for (const char *p = tpl; *p;) {
        size_t len;
        int ph = *p == '{' ? placeholder_at(p, &len) : -1;
        if (ph < 0) {
            const char *q = p + 1;
            while (*q && *q != '{')
                q++;
            text_put(n, p, (size_t)(q - p));
            p = q;
            continue;
        }
        size_t vl = ph_value(n, ph, s, at);
        text_put(n, n->val, vl);
        if (params && n->n_params < VG_NOTIFY_PARAMS_MAX) {
            size_t pl = utf8_clip(n->val, vl, PARAM_CP_MAX, NULL);
            if (pl > sizeof n->pbuf - po)
                pl = utf8_clip(n->val, sizeof n->pbuf - po, SIZE_MAX, NULL);
            memcpy(n->pbuf + po, n->val, pl);
            n->poff[n->n_params] = (uint32_t)po;
            n->plen[n->n_params++] = (uint32_t)pl;
            po += pl;
        }
        p += len;
    }
    n->text_len = utf8_clip(n->text, n->text_len, TEXT_CP_MAX, NULL);
}

/* ---- JSON ---------------------------------------------------------------- */

struct w {
    char *b;
    size_t cap, o;
};

static void w_raw(struct w *w, const char *s, size_t len)
{
    if (len > w->cap - w->o)
        len = w->cap - w->o; /* cannot happen: out[] bounds every request */
    memcpy(w->b + w->o, s, len);
    w->o += len;
}

static void w_lit(struct w *w, const char *s)
{
    w_raw(w, s, strlen(s));
}

static void w_str(struct w *w, const char *key, const char *s, size_t len)
{
    w_lit(w, key);
    w_raw(w, "\"", 1);
    int e = vg_json_escape(w->b + w->o, w->cap - w->o, s, len);
    if (e > 0)
        w->o += (size_t)e;
    w_raw(w, "\"", 1);
}

static void w_int(struct w *w, const char *key, long long v)
{
    char t[32];
    w_lit(w, key);
    w_raw(w, t, (size_t)snprintf(t, sizeof t, "%lld", v));
}

struct req {
    const char *alert_id;   /* 16 hex */
    const char *to, *role;
    int entry;              /* -1: a digest */
    const char *status;     /* firing escalated unacked resolved digest */
    int level;
    const char *template_id;   /* NULL or "": no template/params */
    bool digest;
    vg_ts at;
    const struct queue *q;  /* digests: alert_ids and count */
};

static size_t write_request(struct vg_notifier *n, const struct req *rq)
{
    char rid_src[256], rid[17];
    int k = snprintf(rid_src, sizeof rid_src, "%s|%d|%s|%s|%s|%s|%lld", rq->alert_id, rq->entry, rq->to,
                     rq->status, vg_level_name(rq->level), rq->digest ? "digest" : "immediate",
                     (long long)rq->at);
    snprintf(rid, sizeof rid, "%016llx",
             (unsigned long long)vg_hash64(rid_src, (size_t)k < sizeof rid_src ? (size_t)k : sizeof rid_src - 1,
                                           0x736d73));
    struct w w = {n->out, sizeof n->out, 0};
    w_str(&w, "{\"request_id\":", rid, 16);
    w_str(&w, ",\"alert_id\":", rq->alert_id, strlen(rq->alert_id));
    w_str(&w, ",\"to\":", rq->to, strlen(rq->to));
    w_str(&w, ",\"role\":", rq->role, strlen(rq->role));
    w_str(&w, ",\"level\":", vg_level_name(rq->level), strlen(vg_level_name(rq->level)));
    if (rq->template_id && *rq->template_id) {
        w_str(&w, ",\"template\":", rq->template_id, strlen(rq->template_id));
        w_lit(&w, ",\"params\":[");
        for (uint32_t i = 0; i < n->n_params; i++)
            w_str(&w, i ? "," : "", n->pbuf + n->poff[i], n->plen[i]);
        w_lit(&w, "]");
    }
    w_str(&w, ",\"text\":", n->text, n->text_len);
    size_t cps = utf8_count(n->text, n->text_len);
    w_int(&w, ",\"segments\":", cps <= 70 ? 1 : (long long)((cps + 66) / 67));
    w_str(&w, ",\"mode\":", rq->digest ? "digest" : "immediate", rq->digest ? 6 : 9);
    w_int(&w, ",\"at\":", (long long)rq->at);
    if (rq->q) {
        w_int(&w, ",\"count\":", rq->q->count);
        w_lit(&w, ",\"alert_ids\":[");
        for (uint32_t i = 0; i < rq->q->n_items; i++) {
            char id[17];
            snprintf(id, sizeof id, "%016llx", (unsigned long long)rq->q->items[i].id);
            w_str(&w, i ? "," : "", id, 16);
        }
        w_lit(&w, "]");
    }
    w_lit(&w, "}");
    return w.o;
}

/* ---- digests ------------------------------------------------------------- */

static struct queue *queue_get(struct vg_notifier *n, const char *num, bool create)
{
    struct slot *s = tab_get(&n->digests, vg_hash64(num, strlen(num), 0xd16e57), create);
    if (!s)
        return NULL;
    if (s->n)
        return &n->q[s->n - 1];
    uint32_t i;
    if (n->free_q) {
        i = n->free_q - 1;
        n->free_q = n->q[i].next_free;
    } else {
        if (n->n_q == n->cap_q) {
            n->cap_q = n->cap_q ? n->cap_q * 2 : 16;
            n->q = xrealloc(n->q, n->cap_q * sizeof *n->q);
        }
        i = n->n_q++;
    }
    s->n = i + 1;
    n->used_q++;
    struct queue *q = &n->q[i];
    memset(q, 0, offsetof(struct queue, items));
    q->in_use = true;
    snprintf(q->to, sizeof q->to, "%s", num);
    return q;
}

static void queue_free(struct vg_notifier *n, struct queue *q)
{
    tab_del(&n->digests, tab_get(&n->digests, vg_hash64(q->to, strlen(q->to), 0xd16e57), false));
    q->in_use = false;
    q->next_free = n->free_q;
    n->free_q = (uint32_t)(q - n->q) + 1;
    n->used_q--;
}

static void digest_add(struct vg_notifier *n, const char *num, const char *role, const struct subj *s,
                       bool resolved)
{
    struct queue *q = queue_get(n, num, true);
    uint8_t level = s->L->level;
    if (!q->count) {
        snprintf(q->role, sizeof q->role, "%s", role);
        snprintf(q->key, sizeof q->key, "%s", s->L->group ? s->L->region : s->L->plant);
        snprintf(q->first, sizeof q->first, "%s%s", subject_name(n, s), rule_title(s->r));
    }
    if (level > q->max_level)
        q->max_level = level;
    for (uint32_t i = 0; i < q->n_items; i++) {
        struct item *it = &q->items[i];
        if (it->id != s->L->id)
            continue;
        if (level > it->level) {
            q->by_level[it->level]--;
            q->by_level[level]++;
            it->level = level;
        }
        if (resolved && !it->resolved) {
            it->resolved = 1;
            q->resolved++;
        }
        return;
    }
    if (q->n_items < VG_NOTIFY_DIGEST_IDS_MAX)
        q->items[q->n_items++] = (struct item){s->L->id, level, resolved};
    q->count++;
    q->by_level[level]++;
    q->resolved += resolved;
}

/* Count one request towards @p num's day. @returns false if it is over the cap. */
static bool daily_take(struct vg_notifier *n, const char *num, vg_ts at, bool force)
{
    if (n->opt.daily_cap <= 0)
        return true;
    struct slot *d = tab_get(&n->daily, vg_hash64(num, strlen(num), 0xca9), true);
    if (!d->owner)
        d->owner = name_id(n, 'n', num, strlen(num));
    int64_t day = local_day(at);
    if (d->t1 != day || !d->n) {
        d->t1 = day;
        d->n = 0;
    }
    if (!force && d->n >= (uint32_t)n->opt.daily_cap)
        return false;
    d->n++;
    return true;
}

static int queue_cmp(const struct vg_notifier *n, uint32_t a, uint32_t b)
{
    return strcmp(n->q[a].to, n->q[b].to);
}

static void digest_emit(struct vg_notifier *n, vg_ts at, vg_sms_fn emit, void *ctx)
{
    if (n->cap_order < n->used_q) {
        n->cap_order = n->used_q;
        n->order = xrealloc(n->order, n->cap_order * sizeof *n->order);
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n->n_q; i++)
        if (n->q[i].in_use)
            n->order[k++] = i;
    for (uint32_t a = 1; a < k; a++) /* a few numbers a day: insertion sort by number */
        for (uint32_t b = a; b > 0 && queue_cmp(n, n->order[b - 1], n->order[b]) > 0; b--) {
            uint32_t t = n->order[b];
            n->order[b] = n->order[b - 1];
            n->order[b - 1] = t;
        }
    for (uint32_t i = 0; i < k; i++) {
        struct queue *q = &n->q[n->order[i]];
        char head[200], tail[64];
        int hl = snprintf(head, sizeof head, "【安全预警】日报：%u条预警（红%u 橙%u 黄%u 蓝%u", q->count,
                          q->by_level[VG_LEVEL_RED], q->by_level[VG_LEVEL_ORANGE],
                          q->by_level[VG_LEVEL_YELLOW], q->by_level[VG_LEVEL_BLUE]);
        if (q->resolved)
            hl += snprintf(head + hl, sizeof head - (size_t)hl, "，已解除%u", q->resolved);
        snprintf(head + hl, sizeof head - (size_t)hl, "），");
        snprintf(tail, sizeof tail, "%s，请登录平台查看。", q->count > 1 ? "等" : "");
        size_t fixed = utf8_count(head, strlen(head)) + utf8_count(tail, strlen(tail));
        size_t avail = fixed < DIGEST_CP_TARGET ? DIGEST_CP_TARGET - fixed : 0;
        size_t flen = strlen(q->first), fcp = utf8_count(q->first, flen);
        n->text_len = 0;
        text_put(n, head, strlen(head));
        if (fcp <= avail) {
            text_put(n, q->first, flen);
        } else if (avail >= 2) {
            text_put(n, q->first, utf8_clip(q->first, flen, avail - 1, NULL));
            text_put(n, "…", strlen("…"));
        }
        text_put(n, tail, strlen(tail));
        n->n_params = 0;
        char first_id[17];
        snprintf(first_id, sizeof first_id, "%016llx", (unsigned long long)q->items[0].id);
        struct req rq = {first_id, q->to, q->role, -1, "digest", q->max_level, NULL, true, at, q};
        size_t len = write_request(n, &rq);
        daily_take(n, q->to, at, true); /* a digest is an SMS too, and always goes */
        n->stats.digests++;
        emit(ctx, q->key, strlen(q->key), n->out, len);
        queue_free(n, q);
    }
}

/* ---- events -------------------------------------------------------------- */

struct event {
    const struct subj *s;
    const char *status;
    vg_ts at;
    uint32_t entries;     /* bit e: entry e takes part */
    uint32_t chain;       /* bit e: entry e is a chain step (counts as an escalation) */
    bool resolve;
};

static void subject_of(struct vg_notifier *n, const struct live *L, struct subj *s)
{
    s->r = &n->rs->rules[L->rule];
    s->L = L;
    s->plant = L->group || !n->reg ? NULL : vg_registry_plant(n->reg, L->plant, strlen(L->plant));
    s->region = s->plant && s->plant->region ? s->plant->region : L->region;
    snprintf(s->idhex, sizeof s->idhex, "%016llx", (unsigned long long)L->id);
}

static uint64_t throttle_key(const struct subj *s, const char *num)
{
    const struct live *L = s->L;
    uint64_t h = vg_hash64(s->r->id, strlen(s->r->id), 0x7407);
    if (L->group) {
        h = vg_hash64(L->region, strlen(L->region), h ^ 1);
    } else {
        h = vg_hash64(L->plant, strlen(L->plant), h);
        h = vg_hash64(L->device, strlen(L->device), h);
    }
    return vg_hash64(num, strlen(num), h);
}

static void deliver(struct vg_notifier *n, const struct event *ev, uint32_t e, const char *role,
                    const char *num, vg_sms_fn emit, void *ctx)
{
    const struct subj *s = ev->s;
    struct live *L = (struct live *)s->L;
    const struct vg_notify *nt = &s->r->notify[e];
    if (nt->digest) {
        digest_add(n, num, role, s, false);
        return;
    }
    if (!ev->resolve && n->max_throttle[L->rule] > 0) {
        uint64_t tk = throttle_key(s, num);
        struct slot *t = tab_get(&n->throttle, tk, false);
        if (t && nt->throttle_ms > 0 && ev->at - t->t1 < nt->throttle_ms && L->level <= t->n) {
            n->stats.throttled++;
            return;
        }
        if (!t) {
            t = tab_get(&n->throttle, tk, true);
            t->owner = L->group ? name_id(n, 'r', L->region, strlen(L->region))
                                : name_id(n, 'p', L->plant, strlen(L->plant));
        }
        t->t1 = ev->at;
        t->t2 = ev->at + n->max_throttle[L->rule];
        t->n = L->level;
    }
    if (!ev->resolve)
        sent_add(L, e, num);
    if (!daily_take(n, num, ev->at, false)) {
        n->stats.capped_to_digest++;
        digest_add(n, num, role, s, ev->resolve);
        return;
    }
    const char *tpl = ev->resolve ? vg_notify_resolve_template
                      : nt->template_text ? nt->template_text : vg_notify_default_template;
    bool with_template = !ev->resolve && nt->template_id[0];
    render(n, tpl, s, ev->at, with_template);
    struct req rq = {s->idhex, num, role, (int)e, ev->status, L->level,
                     with_template ? nt->template_id : NULL, false, ev->at, NULL};
    size_t len = write_request(n, &rq);
    n->stats.requests++;
    if (ev->chain & (1u << e))
        n->stats.escalations++;
    const char *key = L->group ? L->region : L->plant;
    emit(ctx, key, strlen(key), n->out, len);
}

static bool event_claim(struct vg_notifier *n, const char *num)
{
    for (uint32_t i = 0; i < n->n_ev; i++)
        if (!strcmp(n->ev_num[i], num))
            return false;
    if (n->n_ev < EVENT_NUMBERS_MAX)
        n->ev_num[n->n_ev++] = num;
    return true;
}

/* Send the entries of one event. Entries go in order of min_level, highest
 * first (ties: file order); a number already served by an immediate entry of
 * this event is not sent another. */
static void run_event(struct vg_notifier *n, const struct event *ev, vg_sms_fn emit, void *ctx)
{
    const struct vg_rule *r = ev->s->r;
    uint32_t order[VG_NOTIFY_ENTRIES_MAX], k = 0;
    for (uint32_t e = 0; e < r->n_notify; e++)
        if (ev->entries & (1u << e))
            order[k++] = e;
    for (uint32_t a = 1; a < k; a++)
        for (uint32_t b = a; b > 0 && r->notify[order[b - 1]].min_level < r->notify[order[b]].min_level; b--) {
            uint32_t t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    n->n_ev = 0;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t e = order[i];
        const struct vg_notify *nt = &r->notify[e];
        for (char **role = nt->to; role && *role; role++) {
            char *const *nums = role_numbers(n, ev->s, *role);
            if (!nums) {
                n->stats.no_recipient += !ev->resolve;
                continue;
            }
            for (char *const *num = nums; *num; num++) {
                if (ev->resolve && !sent_has(ev->s->L, e, *num))
                    continue;
                if (!nt->digest && !event_claim(n, *num))
                    continue;
                deliver(n, ev, e, *role, *num, emit, ctx);
            }
        }
    }
}

/* Chain entries due at @p at for alert @p id (already popped: @p mask). */
static void chain_due(struct vg_notifier *n, vg_ts at, uint64_t id, uint32_t mask, vg_sms_fn emit,
                      void *ctx)
{
    struct live *L = live_find(n, id);
    if (!L)
        return; /* resolved since */
    mask &= ~L->esc_sent;
    if (!mask || !unacked(L, at))
        return;
    const struct vg_rule *r = &n->rs->rules[L->rule];
    for (uint32_t e = 0; e < r->n_notify; e++)
        if ((mask & (1u << e)) && L->level < r->notify[e].min_level)
            mask &= ~(1u << e); /* too low now; a later escalation may still send it */
    if (!mask)
        return;
    L->esc_sent |= mask;
    struct subj s;
    subject_of(n, L, &s);
    struct event ev = {&s, "unacked", at, mask, mask, false};
    run_event(n, &ev, emit, ctx);
}

/* Sweep predicates: ctx is the clock (a vg_ts). */
static bool throttle_expired(const struct slot *s, const void *now) { return s->t2 <= *(const vg_ts *)now; }
static bool daily_expired(const struct slot *s, const void *now)
{
    return (int64_t)s->t1 < local_day(*(const vg_ts *)now);
}
static bool ack_expired(const struct slot *s, const void *now)
{
    return s->t1 + VG_NOTIFY_ACK_MEMORY_MS < *(const vg_ts *)now;
}

static void clock_start(struct vg_notifier *n, vg_ts t)
{
    n->now = t;
    n->next_digest = digest_time(n, local_day(t));
    if (n->next_digest < t)
        n->next_digest += DAY_MS;
    n->next_sweep = t + SWEEP_MS;
}

void vg_notifier_advance(struct vg_notifier *n, vg_ts now, vg_sms_fn emit, void *ctx)
{
    if (now == VG_TS_NONE)
        return;
    n->running = true;
    if (n->now == VG_TS_NONE)
        clock_start(n, now);
    if (now < n->now)
        now = n->now;
    for (;;) {
        vg_ts te = n->n_heap ? n->heap[0].at : VG_TS_MAX;
        if (!n->used_q) {
            /* nothing gathered: skip the digest minutes no event can reach */
            vg_ts lim = te < now ? te : now;
            if (n->next_digest < lim)
                n->next_digest += (lim - n->next_digest + DAY_MS - 1) / DAY_MS * DAY_MS;
        }
        vg_ts td = n->next_digest;
        if ((te <= td ? te : td) > now)
            break;
        if (te <= td) {
            /* chain steps first on a tie with the digest: a capped one joins it */
            struct esc top = heap_pop(n);
            uint32_t mask = 1u << top.entry;
            while (n->n_heap && n->heap[0].at == top.at && n->heap[0].id == top.id)
                mask |= 1u << heap_pop(n).entry;
            chain_due(n, top.at, top.id, mask, emit, ctx);
        } else {
            digest_emit(n, td, emit, ctx);
            n->next_digest += DAY_MS;
        }
    }
    n->now = now;
    if (now >= n->next_sweep) {
        tab_sweep(&n->throttle, throttle_expired, &now);
        tab_sweep(&n->daily, daily_expired, &now);
        tab_sweep(&n->acks, ack_expired, &now);
        n->next_sweep = now + SWEEP_MS;
    }
}

void vg_notifier_alert(struct vg_notifier *n, const struct vg_alert *a, vg_sms_fn emit, void *ctx)
{
    vg_notifier_advance(n, a->at, emit, ctx);
    const struct vg_rule *r = &n->rs->rules[a->rule];
    if (!r->n_notify)
        return;
    bool group = a->flags & VG_ALERT_F_GROUP;
    const char *region = a->region ? a->region : "";
    char idhex[17];
    if (group)
        vg_alert_id(r->id, region, strlen(region), "", 0, a->started_at, idhex);
    else
        vg_alert_id(r->id, a->plant, a->plant_len, a->device, a->dev_len, a->started_at, idhex);
    uint64_t id = 0; /* our own hex: parse_id cannot fail here */
    parse_id(idhex, 16, &id);
    struct live *L = live_find(n, id);
    if (!L && a->status == VG_ALERT_RESOLVED)
        return; /* never seen live: nobody was told */
    bool fresh = !L;
    if (fresh) {
        L = live_new(n, id);
        L->rule = a->rule;
        L->group = group;
        L->first_at = a->at;
        snprintf(L->plant, sizeof L->plant, "%.*s", group ? 0 : (int)a->plant_len, a->plant);
        snprintf(L->device, sizeof L->device, "%.*s", group ? 0 : (int)a->dev_len, a->device);
        snprintf(L->region, sizeof L->region, "%s", region);
        struct slot *ack = tab_get(&n->acks, id, false);
        if (ack) {
            if (a->at <= ack->t1 + VG_NOTIFY_ACK_MEMORY_MS) {
                L->acked_at = ack->t1;
                n->stats.acks++;
            }
            tab_del(&n->acks, ack);
        }
    }
    if (group && a->group_plants) {
        /* a plant counted in the region: the region's state goes where that plant goes */
        const char *q = strchr(a->group_plants, '"'), *e = q ? strchr(q + 1, '"') : NULL;
        if (e && e - q - 1 < 65 && e > q + 1)
            snprintf(n->names[name_id(n, 'r', region, strlen(region)) - 1].anchor, 65, "%.*s", (int)(e - q - 1),
                     q + 1);
    }
    L->metric = a->metric;
    L->value = a->value;
    L->flags = a->flags;
    if (a->level > L->level || a->status == VG_ALERT_RESOLVED)
        L->level = a->level;
    struct subj s;
    subject_of(n, L, &s);
    struct event ev = {&s, vg_alert_status_name(a->status), a->at, 0, 0, a->status == VG_ALERT_RESOLVED};
    if (ev.resolve) {
        for (uint32_t e = 0; e < r->n_notify; e++)
            if (r->notify[e].on_resolve && !r->notify[e].digest)
                ev.entries |= 1u << e;
        run_event(n, &ev, emit, ctx);
        live_free(n, L); /* also cancels its chain: the heap's entries find nothing */
        return;
    }
    if (fresh)
        push_chain(n, L, a->at);
    for (uint32_t e = 0; e < r->n_notify; e++) {
        const struct vg_notify *nt = &r->notify[e];
        if (L->level < nt->min_level)
            continue;
        if (!nt->unacked_for_ms) {
            ev.entries |= 1u << e;
        } else if (L->first_at + nt->unacked_for_ms <= a->at && !(L->esc_sent & (1u << e)) &&
                   unacked(L, a->at)) {
            /* its deadline passed while the level was below min_level: the rise sends it */
            ev.entries |= 1u << e;
            ev.chain |= 1u << e;
            L->esc_sent |= 1u << e;
        }
    }
    run_event(n, &ev, emit, ctx);
}

int vg_notifier_ack(struct vg_notifier *n, const char *alert_id, size_t len, const char *by,
                    size_t by_len, vg_ts ts)
{
    (void)by;
    (void)by_len;
    uint64_t id;
    if (!parse_id(alert_id, len, &id)) {
        n->stats.acks_unknown++; /* not an id vigil makes: it can never match */
        return 0;
    }
    struct live *L = live_find(n, id);
    if (L) {
        if (L->acked_at == VG_TS_NONE || ts < L->acked_at)
            L->acked_at = ts;
        n->stats.acks++;
        return 1;
    }
    n->stats.acks_unknown++;
    if (n->now != VG_TS_NONE && ts + VG_NOTIFY_ACK_MEMORY_MS < n->now)
        return 0; /* already older than the memory */
    struct slot *s = tab_get(&n->acks, id, false);
    if (!s) {
        s = tab_get(&n->acks, id, true);
        s->t1 = ts;
        s->owner = name_id(n, 'a', "", 0);
    } else if (ts < s->t1) {
        s->t1 = ts;
    }
    return 0;
}

/* ---- checkpoint record --------------------------------------------------- */

struct buf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void b_put(struct buf *b, const void *v, size_t len)
{
    if (b->oom || !len)
        return;
    if (b->n + len > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + len)
            c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, v, len);
    b->n += len;
}

static void b_u64(struct buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    b_put(b, x, 8);
}

static void b_u32(struct buf *b, uint32_t v) { b_u64(b, v); }
static void b_i64(struct buf *b, int64_t v) { b_u64(b, (uint64_t)v); }

static void b_str(struct buf *b, const char *s)
{
    size_t len = strlen(s);
    b_u32(b, (uint32_t)len);
    b_put(b, s, len);
}

/* ---- ownership ------------------------------------------------------------ */

void vg_notifier_set_owner(struct vg_notifier *n, vg_owns_fn owns, void *ctx)
{
    n->owns = owns;
    n->owns_ctx = ctx;
}

static void serve(struct vg_notifier *n, const struct vg_contacts *c)
{
    for (uint32_t i = 0; i < c->n; i++)
        for (char **p = c->phones[i]; p && *p; p++)
            if (!vg_strmap_get(&n->served, *p, strlen(*p), true))
                abort();
}

/* Is name @p i this instance's (by the owner's current answer)? */
static bool name_owned(struct vg_notifier *n, uint32_t i)
{
    const struct name *nm = &n->names[i];
    const char *v = nm->s + 2;
    switch (nm->s[0]) {
    case 'p':
        return n->owns(n->owns_ctx, v, strlen(v));
    case 'r':
        return !nm->anchor[0] || n->owns(n->owns_ctx, nm->anchor, strlen(nm->anchor));
    case 'n':
        return vg_strmap_get(&n->served, v, strlen(v), false) != NULL;
    default:
        return true; /* acks: kept until they match or expire */
    }
}

static uint32_t live_owner(struct vg_notifier *n, const struct live *L)
{
    return L->group ? name_id(n, 'r', L->region, strlen(L->region)) : name_id(n, 'p', L->plant, strlen(L->plant));
}

/* Sweep predicate: ctx is the claim's keep[] (per name index). */
static bool not_kept(const struct slot *s, const void *keep)
{
    return s->owner && !((const bool *)keep)[s->owner - 1];
}

/* One piece of state and the name whose record holds it, for sorting. */
struct piece {
    uint32_t owner;   /* name index + 1 */
    uint32_t sec;     /* SEC_* */
    uint64_t key;
    const void *p;
};

enum { SEC_LIVE, SEC_THROTTLE, SEC_DAILY, SEC_QUEUE, SEC_ACK, SEC_QUEUED, SEC_COUNT };

static int piece_cmp(const void *x, const void *y)
{
    const struct piece *a = x, *b = y;
    if (a->owner != b->owner)
        return a->owner < b->owner ? -1 : 1;
    if (a->sec != b->sec)
        return a->sec < b->sec ? -1 : 1;
    return a->key < b->key ? -1 : a->key > b->key;
}

static void add_piece(struct piece **v, uint32_t *np, uint32_t *cap, struct piece pc)
{
    if (*np == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*np)++] = pc;
}

static uint32_t alert_owner(struct vg_notifier *n, const struct vg_alert *a)
{
    const char *r = a->region ? a->region : "";
    return a->flags & VG_ALERT_F_GROUP ? name_id(n, 'r', r, strlen(r)) : name_id(n, 'p', a->plant, a->plant_len);
}

/*
 * Every piece of state, and the @p queued alerts, with the name whose record
 * holds it (names are made as needed, so every name of what is here exists
 * afterwards). @returns the pieces (malloc'd, caller frees), @p *np of them.
 */
static struct piece *gather(struct vg_notifier *n, const struct vg_alert *const *queued, uint32_t n_queued,
                            uint32_t *np)
{
    struct piece *v = NULL;
    uint32_t cap = 0;
    *np = 0;
    for (uint32_t i = 0; i < n->n_live; i++)
        if (n->live[i].in_use)
            add_piece(&v, np, &cap, (struct piece){live_owner(n, &n->live[i]), SEC_LIVE, n->live[i].id, &n->live[i]});
    const struct table *tabs[3] = {&n->throttle, &n->daily, &n->acks};
    static const uint32_t secs[3] = {SEC_THROTTLE, SEC_DAILY, SEC_ACK};
    for (int t = 0; t < 3; t++)
        for (uint32_t i = 0; i < tabs[t]->cap; i++)
            if (tabs[t]->s[i].used && tabs[t]->s[i].owner)
                add_piece(&v, np, &cap, (struct piece){tabs[t]->s[i].owner, secs[t], tabs[t]->s[i].key,
                                                       &tabs[t]->s[i]});
    for (uint32_t i = 0; i < n->n_q; i++)
        if (n->q[i].in_use)
            add_piece(&v, np, &cap, (struct piece){name_id(n, 'n', n->q[i].to, strlen(n->q[i].to)), SEC_QUEUE,
                                                   0, &n->q[i]});
    for (uint32_t i = 0; i < n_queued; i++)
        add_piece(&v, np, &cap, (struct piece){alert_owner(n, queued[i]), SEC_QUEUED,
                                               (uint64_t)queued[i]->at << 20 | i, queued[i]});
    return v;
}

void vg_notifier_claim(struct vg_notifier *n)
{
    if (!n->owns)
        return;
    vg_strmap_fini(&n->served);
    for (uint32_t i = 0; n->reg && i < n->reg->n_plants; i++) {
        const struct vg_plant *p = &n->reg->plants[i];
        if (!n->owns(n->owns_ctx, p->id, strlen(p->id)))
            continue;
        serve(n, &p->contacts);
        for (size_t len = p->region ? strlen(p->region) : 0; len > 0; len--) {
            const struct vg_region *rg = region_find(n, p->region, len);
            if (rg)
                serve(n, &rg->contacts);
        }
    }
    uint32_t np;
    struct piece *v = gather(n, NULL, 0, &np); /* first: names for all that is here */
    bool *keep = calloc(n->n_names + 1, sizeof *keep);
    if (!keep)
        abort();
    for (uint32_t i = 0; i < n->n_names; i++)
        keep[i] = name_owned(n, i);
    for (uint32_t i = 0; i < np; i++) {
        if (keep[v[i].owner - 1])
            continue;
        if (v[i].sec == SEC_LIVE)
            live_free(n, (struct live *)v[i].p); /* its chain entries find nothing */
        else if (v[i].sec == SEC_QUEUE)
            queue_free(n, (struct queue *)v[i].p);
    }
    tab_sweep(&n->throttle, not_kept, keep);
    tab_sweep(&n->daily, not_kept, keep);
    for (uint32_t i = 0; i < n->n_names; i++) {
        if (!keep[i])
            n->names[i].written = 0; /* the next owner writes it */
        n->names[i].held = false;
    }
    /* what is left here is newer than any stored record of it (remembered acks merge) */
    for (uint32_t i = 0; i < np; i++)
        if (keep[v[i].owner - 1] && v[i].sec != SEC_ACK)
            n->names[v[i].owner - 1].held = true;
    free(keep);
    free(v);
}

bool vg_notifier_owns(struct vg_notifier *n, const struct vg_alert *a)
{
    if (!n->owns)
        return true;
    return name_owned(n, alert_owner(n, a) - 1);
}

/* ---- checkpoint records --------------------------------------------------- */

static void b_slot(struct buf *b, const struct slot *s)
{
    b_u64(b, s->key);
    b_i64(b, s->t1);
    b_i64(b, s->t2);
    b_u32(b, s->n);
}

static void b_live(struct buf *b, const struct vg_notifier *n, const struct live *L)
{
    b_u64(b, L->id);
    b_str(b, n->rs->rules[L->rule].id);
    b_u64(b, n->notify_fp[L->rule]);
    b_str(b, L->metric != VG_METRIC_NONE ? n->rs->metric_names[L->metric] : "");
    double v = L->value;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    b_u64(b, bits);
    b_i64(b, L->first_at);
    b_i64(b, L->acked_at);
    b_u32(b, L->esc_sent);
    b_u32(b, (uint32_t)L->level | (uint32_t)L->flags << 8 | (uint32_t)L->group << 16 | (uint32_t)L->overflow << 24);
    b_u32(b, L->n_sent);
    for (uint32_t k = 0; k < L->n_sent; k++)
        b_u64(b, L->sent[k]);
    b_str(b, L->plant);
    b_str(b, L->device);
    b_str(b, L->region);
}

static void b_queue(struct buf *b, const struct queue *q)
{
    b_str(b, q->to);
    b_str(b, q->role);
    b_str(b, q->key);
    b_str(b, q->first);
    b_u32(b, q->count);
    for (int l = 0; l < VG_LEVEL_COUNT; l++)
        b_u32(b, q->by_level[l]);
    b_u32(b, q->resolved);
    b_u32(b, q->max_level);
    b_u32(b, q->n_items);
    for (uint32_t k = 0; k < q->n_items; k++) {
        b_u64(b, q->items[k].id);
        b_u32(b, (uint32_t)q->items[k].level | (uint32_t)q->items[k].resolved << 8);
    }
}

/* An alert waiting for the notifier: str rule id, str region, struct vg_alert with pointers cleared. */
static void b_alert(struct buf *b, const struct vg_notifier *n, const struct vg_alert *a)
{
    b_str(b, n->rs->rules[a->rule].id);
    b_str(b, a->region ? a->region : "");
    struct vg_alert c = *a;
    c.region = NULL;
    c.group_plants = NULL;
    b_put(b, &c, sizeof c);
}

int vg_notifier_export_changed(struct vg_notifier *n, const struct vg_alert *const *queued, uint32_t n_queued,
                               vg_snapshot_fn fn, void *ctx)
{
    uint32_t np;
    struct piece *v = gather(n, queued, n_queued, &np);
    if (np)
        qsort(v, np, sizeof *v, piece_cmp);
    bool *has = calloc(n->n_names + 1, sizeof *has);
    if (!has && n->n_names) {
        free(v);
        return VG_ENOMEM;
    }
    struct buf b = {0};
    int rc = VG_OK;
    char rname[96];
    for (uint32_t i = 0; i < np && rc == VG_OK;) {
        uint32_t owner = v[i].owner, j = i;
        struct name *nm = &n->names[owner - 1];
        has[owner - 1] = true;
        b.n = 0;
        b_put(&b, "VGNS", 4);
        b_u32(&b, RECORD_VERSION);
        b_i64(&b, n->now);
        b_i64(&b, n->next_digest);
        b_str(&b, nm->anchor);
        for (uint32_t sec = 0; sec < SEC_COUNT; sec++) {
            uint32_t k = j;
            while (k < np && v[k].owner == owner && v[k].sec == sec)
                k++;
            b_u32(&b, k - j);
            for (; j < k; j++) {
                if (sec == SEC_LIVE)
                    b_live(&b, n, v[j].p);
                else if (sec == SEC_QUEUE)
                    b_queue(&b, v[j].p);
                else if (sec == SEC_QUEUED)
                    b_alert(&b, n, v[j].p);
                else
                    b_slot(&b, v[j].p);
            }
        }
        i = j;
        if (b.oom) {
            rc = VG_ENOMEM;
            break;
        }
        /* the clock alone changing is no reason to write a record again */
        uint64_t h = vg_hash64(b.p + 4 + 8 + 16, b.n - 4 - 8 - 16, 0x6e73) | 1;
        if (h == nm->written)
            continue;
        int nl = snprintf(rname, sizeof rname, "~n%s", nm->s);
        if ((rc = fn(ctx, rname, (size_t)nl, b.p, b.n)) == VG_OK)
            nm->written = h;
    }
    /* names whose state is all gone: delete their records */
    for (uint32_t i = 0; i < n->n_names && rc == VG_OK; i++) {
        if (has[i] || !n->names[i].written)
            continue;
        int nl = snprintf(rname, sizeof rname, "~n%s", n->names[i].s);
        if ((rc = fn(ctx, rname, (size_t)nl, "", 0)) == VG_OK)
            n->names[i].written = 0;
    }
    free(has);
    free(b.p);
    free(v);
    return rc;
}

struct rd {
    const unsigned char *p;
    size_t n, at;
    bool bad;
};

static uint64_t r_u64(struct rd *r)
{
    if (r->bad || r->n - r->at < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[r->at + (size_t)i] << (8 * i);
    r->at += 8;
    return v;
}

static uint32_t r_u32(struct rd *r, uint32_t max)
{
    uint64_t v = r_u64(r);
    if (v > max)
        r->bad = true;
    return r->bad ? 0 : (uint32_t)v;
}

static int64_t r_i64(struct rd *r) { return (int64_t)r_u64(r); }

/* A string into @p out (@p cap bytes with its NUL); longer is damage. */
static void r_str(struct rd *r, char *out, size_t cap)
{
    uint32_t len = r_u32(r, (uint32_t)cap - 1);
    if (r->bad || r->n - r->at < len) {
        r->bad = true;
        out[0] = 0;
        return;
    }
    memcpy(out, r->p + r->at, len);
    out[len] = 0;
    r->at += len;
    if (memchr(out, 0, len))
        r->bad = true;
}

static void r_slot(struct rd *r, struct slot *s)
{
    s->key = r_u64(r);
    s->t1 = r_i64(r);
    s->t2 = r_i64(r);
    s->n = r_u32(r, UINT32_MAX);
}

static void r_live(struct rd *r, char *rule, char *metric, uint64_t *fp, struct live *tmp)
{
    memset(tmp, 0, sizeof *tmp);
    tmp->id = r_u64(r);
    r_str(r, rule, 80);
    *fp = r_u64(r);
    r_str(r, metric, 80);
    uint64_t bits = r_u64(r);
    memcpy(&tmp->value, &bits, sizeof bits);
    tmp->first_at = r_i64(r);
    tmp->acked_at = r_i64(r);
    tmp->esc_sent = r_u32(r, UINT32_MAX);
    uint32_t packed = r_u32(r, 0x01ffffff);
    tmp->level = (uint8_t)(packed & 0xff);
    tmp->flags = (uint8_t)(packed >> 8);
    tmp->group = (uint8_t)(packed >> 16 & 1);
    tmp->overflow = packed >> 24 & 1;
    if (tmp->level < VG_LEVEL_BLUE || tmp->level > VG_LEVEL_RED || (packed >> 16 & 0xfe))
        r->bad = true;
    tmp->n_sent = (uint8_t)r_u32(r, SENT_MAX);
    for (uint32_t k = 0; k < tmp->n_sent; k++)
        tmp->sent[k] = r_u64(r);
    r_str(r, tmp->plant, sizeof tmp->plant);
    r_str(r, tmp->device, sizeof tmp->device);
    r_str(r, tmp->region, sizeof tmp->region);
}

static void r_queue(struct rd *r, struct queue *q)
{
    memset(q, 0, sizeof *q);
    r_str(r, q->to, sizeof q->to);
    r_str(r, q->role, sizeof q->role);
    r_str(r, q->key, sizeof q->key);
    r_str(r, q->first, sizeof q->first);
    q->count = r_u32(r, UINT32_MAX);
    for (int l = 0; l < VG_LEVEL_COUNT; l++)
        q->by_level[l] = r_u32(r, UINT32_MAX);
    q->resolved = r_u32(r, UINT32_MAX);
    q->max_level = (uint8_t)r_u32(r, VG_LEVEL_RED);
    q->n_items = r_u32(r, VG_NOTIFY_DIGEST_IDS_MAX);
    if (!*q->to || !q->n_items || q->count < q->n_items)
        r->bad = true;
    for (uint32_t k = 0; k < q->n_items && !r->bad; k++) {
        q->items[k].id = r_u64(r);
        uint32_t p = r_u32(r, 0x1ff);
        q->items[k].level = (uint8_t)(p & 0xff);
        q->items[k].resolved = (uint8_t)(p >> 8);
        if (q->items[k].level > VG_LEVEL_RED)
            r->bad = true;
    }
}

/*
 * Read (@p apply false: check only) one record. Nothing is applied from a
 * record that fails the check, so a damaged record leaves the notifier as it was.
 */
static void read_record(struct vg_notifier *n, struct rd *r, uint32_t owner, vg_ts now,
                        vg_notify_requeue_fn requeue, void *ctx)
{
    const struct vg_ruleset *rs = n->rs;
    bool apply = owner != 0;
    for (uint32_t sec = 0; sec < SEC_COUNT && !r->bad; sec++) {
        uint32_t cnt = r_u32(r, (uint32_t)((r->n - r->at) / 8));
        for (uint32_t i = 0; i < cnt && !r->bad; i++) {
            if (sec == SEC_LIVE) {
                struct live tmp;
                char rule[80], metric[80];
                uint64_t fp;
                r_live(r, rule, metric, &fp, &tmp);
                const struct vg_rule *rule_p = vg_ruleset_find(rs, rule);
                if (r->bad || !apply || live_find(n, tmp.id) || !rule_p || !rule_p->n_notify)
                    continue; /* held here (newer), or that rule is gone or no longer notifies */
                tmp.rule = rule_p->index;
                tmp.metric = *metric ? vg_ruleset_metric(rs, metric, strlen(metric)) : VG_METRIC_NONE;
                if (fp != n->notify_fp[tmp.rule]) {
                    /* its entries changed: chain steps already due stay judged; later ones count afresh */
                    tmp.esc_sent = 0;
                    for (uint32_t e = 0; e < rule_p->n_notify; e++)
                        if (rule_p->notify[e].unacked_for_ms > 0 && tmp.first_at + rule_p->notify[e].unacked_for_ms <= now)
                            tmp.esc_sent |= 1u << e;
                }
                struct live *L = live_new(n, tmp.id);
                tmp.in_use = true;
                *L = tmp;
                push_chain(n, L, now); /* deadlines after the record's clock; earlier ones went out there */
            } else if (sec == SEC_QUEUE) {
                struct queue tmp;
                r_queue(r, &tmp);
                if (r->bad || !apply || queue_get(n, tmp.to, false))
                    continue; /* a number served here too keeps what it has */
                struct queue *q = queue_get(n, tmp.to, true);
                uint32_t next_free = q->next_free;
                *q = tmp;
                q->in_use = true;
                q->next_free = next_free;
            } else if (sec == SEC_QUEUED) {
                char rule[80], region[VG_ID_MAX + 1];
                struct vg_alert a;
                r_str(r, rule, sizeof rule);
                r_str(r, region, sizeof region);
                if (r->bad || r->n - r->at < sizeof a) {
                    r->bad = true;
                    continue;
                }
                memcpy(&a, r->p + r->at, sizeof a);
                r->at += sizeof a;
                const struct vg_rule *rule_p = vg_ruleset_find(rs, rule);
                if (!apply || !rule_p)
                    continue; /* a removed rule: nothing to notify */
                a.rule = rule_p->index;
                a.region = *region ? region : NULL;
                a.group_plants = NULL;
                if (requeue)
                    requeue(ctx, &a);
            } else {
                struct slot tmp;
                r_slot(r, &tmp);
                struct table *t = sec == SEC_THROTTLE ? &n->throttle : sec == SEC_DAILY ? &n->daily : &n->acks;
                if (r->bad || !apply)
                    continue;
                struct slot *s = tab_get(t, tmp.key, false);
                if (!s) {
                    s = tab_get(t, tmp.key, true);
                    s->t1 = tmp.t1, s->t2 = tmp.t2, s->n = tmp.n;
                    s->owner = owner;
                } else if (sec == SEC_ACK && tmp.t1 < s->t1) {
                    s->t1 = tmp.t1; /* the earliest ack */
                } else if (sec == SEC_DAILY && s->t1 == tmp.t1 && tmp.n > s->n) {
                    s->n = tmp.n;   /* a number served from two places: the larger count */
                }
            }
        }
    }
}

int vg_notifier_import_record(struct vg_notifier *n, const char *name, size_t name_len, const void *data,
                              size_t len, vg_notify_requeue_fn requeue, void *ctx, struct vg_error *err)
{
    if (name_len < 4 || memcmp(name, "~n", 2) || !strchr("prna", name[2]) || name[3] != ':')
        return vg_error_set(err, VG_EINVAL, "%.*s: not the name of a notifier record", (int)name_len, name);
    struct rd r = {data, len, 0, false};
    if (len < 8 || memcmp(data, "VGNS", 4))
        return vg_error_set(err, VG_EINVAL, "%.*s: not a vigil notifier record", (int)name_len, name);
    r.at = 4;
    uint32_t version = r_u32(&r, UINT32_MAX);
    if (version != RECORD_VERSION)
        return vg_error_set(err, VG_EINVAL, "%.*s: notifier record of version %u (this build reads %d)",
                            (int)name_len, name, version, RECORD_VERSION);
    vg_ts now = r_i64(&r), next_digest = r_i64(&r);
    char anchor[65];
    r_str(&r, anchor, sizeof anchor);
    if (!r.bad && (now == VG_TS_NONE) != (next_digest == VG_TS_NONE))
        r.bad = true;
    size_t body = r.at;
    read_record(n, &r, 0, now, NULL, NULL);
    if (r.bad || r.at != r.n)
        return vg_error_set(err, VG_EINVAL, "%.*s: corrupt notifier record (at byte %zu of %zu)", (int)name_len,
                            name, r.at, len);
    uint32_t id = name_id(n, name[2], name + 4, name_len - 4);
    struct name *nm = &n->names[id - 1];
    if (name[2] == 'r' && anchor[0] && !nm->anchor[0])
        snprintf(nm->anchor, sizeof nm->anchor, "%s", anchor);
    if (n->owns && (nm->held || !name_owned(n, id - 1)))
        return VG_OK; /* another instance's, or held here and newer */
    if (!n->running && now != VG_TS_NONE && (n->now == VG_TS_NONE || now > n->now)) {
        /* a restart: carry on from the latest clock a record saw */
        n->now = now;
        n->next_digest = next_digest;
        n->next_sweep = now + SWEEP_MS;
    }
    r.at = body;
    read_record(n, &r, id, now, requeue, ctx);
    nm->held = true;
    return VG_OK;
}
