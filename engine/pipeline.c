/*
 * pipeline.c: the reader, worker and output threads and how they hand off.
 * Owns: threads, rings, batch pools, run statistics. Must never: lock or
 * allocate per event; block anywhere but on an empty ring or a full pool.
 */
#include "engine/pipeline.h"
#include "engine/deadletter.h"
#include "engine/group.h"
#include "engine/notify.h"
#include "engine/strmap.h"
#include "engine/hash.h"
#include "engine/json.h"
#include "engine/ring.h"
#include "engine/clock.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IN_BATCHES 16     /* input batches per worker */
#define OUT_BATCHES 8     /* alert batches per worker */
#define OUT_ALERTS 256
#define WAIT_MS 50
#define ACKS 1024         /* acks in flight from the reader to the output thread */

struct out_batch {
    uint32_t n, flags;
    vg_ts progress;        /* no later alert of this worker has an earlier `at` */
    uint64_t checkpoint;   /* VG_BATCH_BARRIER: the worker passed this checkpoint */
    struct vg_alert a[OUT_ALERTS];
};

struct worker {
    int id;
    pthread_t thread;
    struct vg_shard *shard;
    struct vg_ring in, in_free;          /* reader -> worker, worker -> reader */
    struct vg_ring out, out_free;        /* worker -> output, output -> worker */
    struct vg_bell bell;                 /* the worker sleeps here */
    struct vg_batch *in_pool;
    struct out_batch *out_pool;
    struct out_batch *cur;               /* alert batch being filled */
    struct vg_batch *fill;               /* reader side: input batch being filled */
    vg_ts sent;                          /* reader side: the clock last sent to this worker */
    vg_ts progress, reported;            /* worker side: watermark processed, and last told */
    struct vg_ring ckpt;                 /* worker -> store thread: struct ckpt_part */
    _Atomic int paused;                  /* 1: parked at a VG_BATCH_PAUSE; the reader owns the shard */
    struct run *run;
};

/* One worker's share of one checkpoint: the records of the plants it changed. */
struct ckpt_part {
    uint64_t number;              /* UINT64_MAX: the worker is done */
    struct rec { size_t plant, plant_len, data, len; } *recs;  /* offsets into bytes */
    size_t n, cap;
    char *bytes;
    size_t used, cap_bytes;
};

struct top_entry {
    uint32_t rule;
    uint8_t len;
    char plant[64];
    uint64_t count;
};

/*
 * A min-heap of records by `before`, with spent records kept for reuse: the
 * reorder buffer and the notify queue. A popped record stays valid until the
 * next pheap_new.
 */
struct pheap {
    void **heap;
    uint32_t n, cap;
    void **spare;
    uint32_t n_spare, cap_spare;
    size_t size;                                  /* bytes of one record */
    bool (*before)(const void *a, const void *b);
};

static void *grow_ptrs(void **v, uint32_t *cap)
{
    *cap = *cap ? *cap * 2 : 256;
    void *p = realloc(v, *cap * sizeof *v);
    if (!p)
        abort(); /* out of memory while holding messages */
    return p;
}

/* A record to fill, then pheap_push. */
static void *pheap_new(struct pheap *h)
{
    void *e = h->n_spare ? h->spare[--h->n_spare] : malloc(h->size);
    if (!e)
        abort();
    return e;
}

static void pheap_push(struct pheap *h, void *e)
{
    if (h->n == h->cap)
        h->heap = grow_ptrs(h->heap, &h->cap);
    uint32_t i = h->n++;
    while (i > 0 && h->before(e, h->heap[(i - 1) / 2])) {
        h->heap[i] = h->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->heap[i] = e;
}

static void *pheap_pop(struct pheap *h)
{
    void *top = h->heap[0], *last = h->heap[--h->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->before(h->heap[c + 1], h->heap[c]))
            c++;
        if (!h->before(h->heap[c], last))
            break;
        h->heap[i] = h->heap[c];
        i = c;
    }
    if (h->n)
        h->heap[i] = last;
    if (h->n_spare == h->cap_spare)
        h->spare = grow_ptrs(h->spare, &h->cap_spare);
    h->spare[h->n_spare++] = top;
    return top;
}

static void pheap_fini(struct pheap *h)
{
    for (uint32_t i = 0; i < h->n; i++)
        free(h->heap[i]);
    for (uint32_t i = 0; i < h->n_spare; i++)
        free(h->spare[i]);
    free(h->heap);
    free(h->spare);
    h->heap = h->spare = NULL;
    h->n = h->cap = h->n_spare = h->cap_spare = 0;
}

/* An ack on its way from the reader to the notifier. */
struct ack_msg {
    vg_ts ts;
    uint8_t id_len, by_len;
    char id[VG_ID_MAX], by[VG_ID_MAX];
};

/* An alert waiting for the notifier until every worker has passed its `at`. */
struct queued {
    struct vg_alert a;
    uint64_t seq;
    char region[VG_ID_MAX + 1];   /* a.region points here when it has one */
};

/* Alerts in (at, arrival) order: the notifier sees the same order whatever the thread count. */
struct notify_queue {
    struct pheap h;               /* of struct queued */
    uint64_t seq;
};

struct reader;

/* A stream's position: messages before `next` with event time at or before `clock` are applied. */
struct stream_pos {
    int32_t stream;
    uint64_t next;
    vg_ts clock;
};

#define STREAM_PREFIX "~kp:"

struct run {
    const struct vg_pipeline_config *cfg;
    struct reader *reader;
    struct vg_source_events events;     /* what the source calls on rebalances */
    pthread_mutex_t store_lock;         /* the store handle: store thread saves, reader loads on rebalance */
    vg_ts start;                  /* clock start once known */
    vg_ts max_ts;                 /* largest event time seen */
    vg_ts clock;                  /* watermark: max_ts - lateness, never going back */
    struct worker *w;
    int nw;
    struct vg_bell reader_bell, output_bell;
    /* output thread */
    pthread_t out_thread;
    char fmt[8192];
    struct vg_error out_err;
    int out_rc;
    uint64_t alerts[4];
    struct vg_rule_summary *rules;
    struct top_entry *top;
    uint32_t top_mask, n_top;
    struct vg_group_stage *group;       /* region rules, in the output thread; NULL if none */
    struct vg_notifier *notifier;       /* SMS requests, in the output thread; NULL without --sms */
    struct notify_queue nq;             /* alerts waiting for the notifier */
    struct vg_ring acks, acks_free;     /* reader -> output: struct ack_msg */
    struct ack_msg *ack_pool;
    uint64_t sms_count;                 /* SMS requests written */
    vg_ts *progress;                    /* per worker, as the output thread last heard */
    /* checkpoints (a store other than memory) */
    bool persist;                       /* a store other than memory: checkpoints save state */
    bool barriers;                      /* checkpoints run: persist, or a source that commits */
    _Atomic uint64_t durable;           /* last checkpoint whose state is saved and alerts delivered */
    uint64_t committed;                 /* reader side: last checkpoint committed to the source */
    uint64_t ckpt_next;                 /* number of the next checkpoint */
    struct vg_state_meta ckpt_meta[64]; /* meta of checkpoint k at [k % 64], set by the reader */
    vg_ts ckpt_due;                     /* wall time of the next checkpoint */
    vg_ts releasing;                    /* reader: event time being released from the reorder buffer */
    pthread_t store_thread;
    struct vg_bell store_bell;
    struct vg_ring group_ckpt;          /* output -> store thread: its part (the group stage's record) */
    uint64_t *barrier_seen;             /* per worker: the last checkpoint it passed (output side) */
    uint64_t group_next;                /* output side: the next checkpoint to hand over */
    uint64_t saved, restored, unsaved, records_saved, bytes_saved;
    int store_rc;
    struct vg_error store_err;
    /*
     * Streams (Kafka partitions): per stream, how far this instance has read
     * (reader), that at each checkpoint (reader -> store thread), and what the
     * stored state covers (from the store: replayed messages it covers are
     * skipped, not applied twice). Records "~kp:STREAM".
     */
    struct stream_pos *read_pos, *applied;
    uint32_t n_read_pos, n_applied, cap_read_pos, cap_applied;
    struct ckpt_part *ckpt_pos[64];     /* the records of checkpoint k's positions at [k % 64] */
    uint32_t last_pos;                  /* reader: the read_pos entry of the last message */
    uint64_t replayed;                  /* messages (or samples) skipped as already in the state */
    /* rebalances: the reader hands the output stages' records of gained subjects to the output thread */
    struct ckpt_part *claim_recs;       /* the records (reader fills, output takes) */
    _Atomic uint64_t claim_req, claim_done;
};

/* ---- worker ------------------------------------------------------------- */

static void ckpt_hand_over(struct worker *w, uint64_t number);
static int ckpt_add(void *ctx, const char *plant, size_t plant_len, const void *data, size_t len);
static void ckpt_free(struct ckpt_part *c);

static struct out_batch *out_acquire(struct worker *w)
{
    for (;;) {
        uint32_t seen = vg_bell_read(&w->bell);
        struct out_batch *ob = vg_ring_pop(&w->out_free);
        if (ob) {
            ob->n = 0;
            ob->flags = 0;
            return ob;
        }
        vg_bell_wait(&w->bell, seen, WAIT_MS);
    }
}

static void out_push(struct worker *w, uint32_t flags)
{
    w->cur->flags = flags;
    w->cur->progress = w->progress;
    w->reported = w->progress;
    while (!vg_ring_push(&w->out, w->cur))
        ; /* cannot happen: the ring holds every batch of the pool */
    w->cur = NULL;
}

static void worker_emit(void *ctx, const struct vg_alert *a)
{
    struct worker *w = ctx;
    if (!w->cur)
        w->cur = out_acquire(w);
    w->cur->a[w->cur->n++] = *a;
    if (w->cur->n == OUT_ALERTS)
        out_push(w, 0);
}

/* ---- checkpoints -------------------------------------------------------- */

static int ckpt_add(void *ctx, const char *plant, size_t plant_len, const void *data, size_t len)
{
    struct ckpt_part *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->recs = realloc(c->recs, c->cap * sizeof *c->recs);
    }
    if (c->used + plant_len + len > c->cap_bytes) {
        size_t cap = c->cap_bytes ? c->cap_bytes * 2 : 65536;
        while (cap < c->used + plant_len + len)
            cap *= 2;
        c->bytes = realloc(c->bytes, cap);
        c->cap_bytes = cap;
    }
    if (!c->recs || !c->bytes)
        return VG_ENOMEM;
    c->recs[c->n++] = (struct rec){c->used, plant_len, c->used + plant_len, len};
    memcpy(c->bytes + c->used, plant, plant_len);
    if (len) /* a deletion may come with no bytes at all */
        memcpy(c->bytes + c->used + plant_len, data, len);
    c->used += plant_len + len;
    return VG_OK;
}

static void ckpt_free(struct ckpt_part *c)
{
    if (c) {
        free(c->recs);
        free(c->bytes);
        free(c);
    }
}

/* At a barrier: the plants this worker changed go to the store thread (not a hot path). */
static void ckpt_hand_over(struct worker *w, uint64_t number)
{
    struct ckpt_part *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->number = number;
    if (number != UINT64_MAX && vg_shard_export_dirty(w->shard, ckpt_add, c) < 0)
        abort(); /* out of memory while checkpointing */
    while (!vg_ring_push(&w->ckpt, c)) {
        uint32_t seen = vg_bell_read(&w->bell);
        vg_bell_wait(&w->bell, seen, WAIT_MS); /* the store thread is behind: wait for room */
    }
}

/* Plant -> latest unsaved record: what the store has not taken yet. */
struct pending {
    struct vg_strmap index;   /* plant -> slot + 1 */
    char **data;
    size_t *len;
    uint32_t n, cap;
};

static void pending_put(struct pending *p, const char *plant, size_t plant_len, const char *data,
                        size_t len)
{
    uint32_t *slot = vg_strmap_get(&p->index, plant, plant_len, true);
    if (!slot)
        abort(); /* out of memory while checkpointing */
    if (!*slot) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 1024;
            p->data = realloc(p->data, p->cap * sizeof *p->data);
            p->len = realloc(p->len, p->cap * sizeof *p->len);
            if (!p->data || !p->len)
                abort();
        }
        p->data[p->n] = NULL;
        *slot = ++p->n;
    }
    uint32_t i = *slot - 1;
    free(p->data[i]); /* a newer record replaces the unsaved one */
    p->data[i] = malloc(len ? len : 1);
    if (!p->data[i])
        abort();
    memcpy(p->data[i], data, len);
    p->len[i] = len;
}

static void pending_clear(struct pending *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        free(p->data[i]);
    free(p->data);
    free(p->len);
    vg_strmap_fini(&p->index);
    memset(p, 0, sizeof *p);
}

/* Write every waiting record and the meta. On failure keep them for the next try. */
static void store_flush(struct run *r, struct pending *p, const struct vg_state_meta *meta,
                        bool *failing)
{
    const struct vg_store_handle *st = r->cfg->store;
    struct vg_state_record *recs = malloc(((size_t)p->n + 1) * sizeof *recs);
    size_t n = 0, bytes = 0;
    for (uint32_t i = 0; i < p->index.cap; i++)
        if (p->index.keys[i]) {
            uint32_t k = p->index.vals[i] - 1;
            recs[n++] = (struct vg_state_record){p->index.keys[i], p->index.lens[i], p->data[k], p->len[k]};
            bytes += p->len[k];
        }
    struct vg_error err = {0};
    pthread_mutex_lock(&r->store_lock);
    int rc = st->ops->save(st->store, recs, n, meta, &err);
    pthread_mutex_unlock(&r->store_lock);
    free(recs);
    if (rc < 0) {
        if (!*failing)
            fprintf(stderr, "vigil: state is not being saved: %s (%zu plants wait; retrying at "
                    "every checkpoint; nothing is dropped)\n", err.msg, n);
        *failing = true;
        r->store_rc = rc;
        r->store_err = err;
        return;
    }
    if (*failing)
        fprintf(stderr, "vigil: state is saved again (%zu plants written)\n", n);
    *failing = false;
    atomic_store_explicit(&r->durable, meta->checkpoint, memory_order_release);
    vg_bell_ring(&r->reader_bell); /* the reader commits the source up to it */
    r->store_rc = 0;
    r->saved++;
    r->records_saved += n;
    r->bytes_saved += bytes;
    pending_clear(p);
}

static void *store_main(void *arg)
{
    struct run *r = arg;
    struct pending pend = {0};
    bool failing = false;
    int done = 0;
    uint64_t number = 0;   /* the checkpoint being gathered */
    int parts = 0;         /* parts of it received */
    int need = r->nw + 1, sources = need; /* every worker, and the output thread */
    struct ckpt_part **held = calloc((size_t)r->nw + 1, sizeof *held);
    while (done < sources) {
        uint32_t seen = vg_bell_read(&r->store_bell);
        bool any = false;
        for (int i = 0; i < r->nw; i++) {
            if (held[i])
                continue; /* this worker is already ahead: wait for the others */
            struct ckpt_part *c = vg_ring_pop(&r->w[i].ckpt);
            if (!c)
                continue;
            vg_bell_ring(&r->w[i].bell); /* room in its ring */
            any = true;
            if (c->number == UINT64_MAX) {
                done++;
                ckpt_free(c);
                continue;
            }
            held[i] = c;
            number = c->number;
            parts++;
        }
        if (!held[r->nw]) {
            struct ckpt_part *c = vg_ring_pop(&r->group_ckpt);
            if (c) {
                any = true;
                if (c->number == UINT64_MAX) {
                    done++;
                    ckpt_free(c);
                } else {
                    held[r->nw] = c;
                    parts++;
                }
            }
        }
        if (parts && parts == need) {
            /* every worker (and the group stage) handed over checkpoint `number`: write */
            for (int i = 0; i < need; i++) {
                struct ckpt_part *c = held[i];
                for (size_t k = 0; k < c->n; k++)
                    pending_put(&pend, c->bytes + c->recs[k].plant, c->recs[k].plant_len,
                                c->bytes + c->recs[k].data, c->recs[k].len);
                ckpt_free(c);
                held[i] = NULL;
            }
            parts = 0;
            struct ckpt_part *pos = r->ckpt_pos[number % 64];
            for (size_t k = 0; pos && pos->number == number && k < pos->n; k++)
                pending_put(&pend, pos->bytes + pos->recs[k].plant, pos->recs[k].plant_len,
                            pos->bytes + pos->recs[k].data, pos->recs[k].len);
            store_flush(r, &pend, &r->ckpt_meta[number % 64], &failing);
            continue;
        }
        if (!any)
            vg_bell_wait(&r->store_bell, seen, WAIT_MS);
    }
    for (int i = 0; i < need; i++)
        ckpt_free(held[i]);
    free(held);
    r->unsaved = pend.n;
    pending_clear(&pend);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        uint32_t seen = vg_bell_read(&w->bell);
        struct vg_batch *b = vg_ring_pop(&w->in);
        if (!b) {
            if (w->cur && w->cur->n)
                out_push(w, 0); /* idle: let the alerts out */
            else if ((w->run->group || w->run->notifier) && w->progress != w->reported) {
                w->cur = out_acquire(w); /* tell the group stage how far this worker is */
                out_push(w, 0);
            }
            vg_bell_wait(&w->bell, seen, WAIT_MS);
            continue;
        }
        vg_shard_start(w->shard, b->start, (uint32_t)w->id, (uint32_t)w->run->nw);
        if (VG_UNLIKELY(b->flags & VG_BATCH_PAUSE)) {
            /* hand the shard to the reader until it says go (a consumer-group rebalance) */
            atomic_store_explicit(&w->paused, 1, memory_order_release);
            vg_bell_ring(&w->run->reader_bell);
            while (atomic_load_explicit(&w->paused, memory_order_acquire)) {
                uint32_t s2 = vg_bell_read(&w->bell);
                if (atomic_load_explicit(&w->paused, memory_order_acquire))
                    vg_bell_wait(&w->bell, s2, WAIT_MS);
            }
        }
        vg_shard_process(w->shard, b, worker_emit, w);
        if (b->watermark != VG_TS_NONE)
            w->progress = b->watermark;
        if (b->flags & VG_BATCH_BARRIER) {
            if (w->run->persist)
                ckpt_hand_over(w, b->checkpoint);
            /* the output thread delivers every alert before it, then the checkpoint completes */
            if (!w->cur)
                w->cur = out_acquire(w);
            w->cur->checkpoint = b->checkpoint;
            out_push(w, VG_BATCH_BARRIER);
        }
        bool eos = b->flags & VG_BATCH_EOS;
        vg_batch_reset(b);
        vg_ring_push(&w->in_free, b);
        if (eos) {
            if (!w->cur)
                w->cur = out_acquire(w);
            w->progress = VG_TS_MAX;
            out_push(w, VG_BATCH_EOS);
            if (w->run->persist)
                ckpt_hand_over(w, UINT64_MAX); /* tell the store thread this worker is done */
            return NULL;
        }
    }
}

/* ---- output ------------------------------------------------------------- */

static void count_top(struct run *r, uint32_t rule, const char *name, size_t len)
{
    if (len > 64)
        len = 64;
    if ((r->n_top + 1) * 2 > r->top_mask + 1) {
        uint32_t cap = (r->top_mask + 1) * 2;
        struct top_entry *t = calloc(cap, sizeof *t);
        for (uint32_t i = 0; i <= r->top_mask; i++) {
            if (!r->top[i].count)
                continue;
            uint32_t k = (uint32_t)vg_hash64(r->top[i].plant, r->top[i].len, r->top[i].rule) & (cap - 1);
            while (t[k].count)
                k = (k + 1) & (cap - 1);
            t[k] = r->top[i];
        }
        free(r->top);
        r->top = t;
        r->top_mask = cap - 1;
    }
    uint32_t k = (uint32_t)vg_hash64(name, len, rule) & r->top_mask;
    for (;; k = (k + 1) & r->top_mask) {
        struct top_entry *e = &r->top[k];
        if (!e->count) {
            e->rule = rule;
            e->len = (uint8_t)len;
            memcpy(e->plant, name, len);
            e->count = 1;
            r->n_top++;
            return;
        }
        if (e->rule == rule && e->len == len && !memcmp(e->plant, name, e->len)) {
            e->count++;
            return;
        }
    }
}

/* ---- the notify stage (SMS requests) ---------------------------------------- */

static int bytes_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

/* By time, then subject and rule (workers interleave differently run to run), then arrival. */
static bool queued_before(const void *xp, const void *yp)
{
    const struct queued *x = xp, *y = yp;
    if (x->a.at != y->a.at)
        return x->a.at < y->a.at;
    int c = bytes_cmp(x->a.plant, x->a.plant_len, y->a.plant, y->a.plant_len);
    if (!c)
        c = bytes_cmp(x->a.device, x->a.dev_len, y->a.device, y->a.dev_len);
    if (!c)
        c = x->a.rule < y->a.rule ? -1 : x->a.rule > y->a.rule;
    return c ? c < 0 : x->seq < y->seq;
}

static void nq_push(struct notify_queue *q, const struct vg_alert *a)
{
    struct queued *e = pheap_new(&q->h);
    e->a = *a;
    e->seq = q->seq++;
    e->a.group_plants = NULL; /* SMS never read it, and it is not ours to keep */
    e->region[0] = 0;
    if (a->region) {
        snprintf(e->region, sizeof e->region, "%s", a->region);
        e->a.region = e->region;
    }
    pheap_push(&q->h, e);
}

static void sms_emit(void *ctx, const char *key, size_t key_len, const char *json, size_t len)
{
    struct run *r = ctx;
    r->sms_count++;
    if (r->out_rc == 0)
        r->out_rc = r->cfg->sms->ops->put(r->cfg->sms->sink, key, key_len, json, len, &r->out_err);
}

/* Acks from the reader: the notifier cancels chains before the clock passes them. */
static void take_acks(struct run *r)
{
    struct ack_msg *m;
    while ((m = vg_ring_pop(&r->acks))) {
        vg_notifier_ack(r->notifier, m->id, m->id_len, m->by, m->by_len, m->ts);
        vg_ring_push(&r->acks_free, m);
    }
}

/* Alerts every worker has passed go to the notifier in `at` order, then its clock moves. */
static void notify_release(struct run *r, vg_ts safe)
{
    take_acks(r);
    while (r->nq.h.n && ((const struct queued *)r->nq.h.heap[0])->a.at <= safe)
        vg_notifier_alert(r->notifier, &((struct queued *)pheap_pop(&r->nq.h))->a, sms_emit, r);
    if (safe != VG_TS_NONE && safe != VG_TS_MAX)
        vg_notifier_advance(r->notifier, safe, sms_emit, r);
}

static bool owns_plant(void *ctx, const char *plant, size_t len)
{
    const struct vg_source_handle *in = ctx;
    return in->ops->owns(in->src, plant, len);
}

static void notify_requeue(void *ctx, const struct vg_alert *a)
{
    struct run *r = ctx;
    nq_push(&r->nq, a);
}

/* The notifier's records of what changed, with the alerts still queued for it. */
static int notify_export(struct run *r, struct ckpt_part *c)
{
    const struct vg_alert **q = malloc(((size_t)r->nq.h.n + 1) * sizeof *q);
    if (!q)
        return VG_ENOMEM;
    for (uint32_t i = 0; i < r->nq.h.n; i++)
        q[i] = &((const struct queued *)r->nq.h.heap[i])->a;
    int rc = vg_notifier_export_changed(r->notifier, q, r->nq.h.n, ckpt_add, c);
    free(q);
    return rc;
}

static bool is_prefixed(const char *name, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len > n && !memcmp(name, prefix, n);
}

/*
 * Load one record of the output stages (a group region, a notifier name).
 * Records of subjects another instance owns are left; "~group" and "~notify"
 * (one record per prefix, before format 2 of these) too: they start afresh.
 * @returns 0 or the stage's error (in @p err).
 */
static int output_import(struct run *r, const char *name, size_t len, const void *data, size_t dlen,
                         struct vg_error *err)
{
    const struct vg_source_handle *in = r->cfg->input;
    if (r->group && is_prefixed(name, len, VG_GROUP_PREFIX)) {
        char code[64], anchor[65];
        snprintf(code, sizeof code, "%.*s", (int)(len - strlen(VG_GROUP_PREFIX)), name + strlen(VG_GROUP_PREFIX));
        if (vg_group_record_anchor(r->group, data, dlen, anchor, sizeof anchor) < 0)
            return vg_error_set(err, VG_EINVAL, "%.*s: not a vigil group-stage record", (int)len, name);
        if (in->ops->owns && (!*anchor || !in->ops->owns(in->src, anchor, strlen(anchor))))
            return VG_OK; /* another instance's region */
        return vg_group_import_region(r->group, code, data, dlen, err);
    }
    if (r->notifier && is_prefixed(name, len, VG_NOTIFY_PREFIX) && len > 3 && name[3] == ':')
        return vg_notifier_import_record(r->notifier, name, len, data, dlen, notify_requeue, r, err);
    return VG_OK;
}

/* Alerts queued for the notifier whose subject another instance owns now: theirs to judge. */
static void notify_queue_claim(struct run *r)
{
    uint32_t n = r->nq.h.n, k = 0;
    struct queued *keep = malloc(((size_t)n + 1) * sizeof *keep);
    if (!keep)
        abort();
    while (r->nq.h.n) {
        struct queued *e = pheap_pop(&r->nq.h);
        if (vg_notifier_owns(r->notifier, &e->a))
            keep[k++] = *e;
    }
    for (uint32_t i = 0; i < k; i++) {
        keep[i].a.region = keep[i].region[0] ? keep[i].region : NULL;
        nq_push(&r->nq, &keep[i].a);
    }
    free(keep);
}

/*
 * A rebalance, in the output thread while the workers are parked: forget the
 * regions and notify state of subjects now elsewhere, then load the records
 * the reader found for those gained (group regions first: the notifier's
 * region records name their anchors themselves).
 */
static void output_claim(struct run *r)
{
    const struct vg_source_handle *in = r->cfg->input;
    if (r->group)
        vg_group_disown(r->group, owns_plant, (void *)in);
    if (r->notifier) {
        vg_notifier_claim(r->notifier);
        notify_queue_claim(r);
    }
    struct ckpt_part *c = r->claim_recs;
    for (int pass = 0; c && pass < 2; pass++)
        for (size_t i = 0; i < c->n; i++) {
            const char *name = c->bytes + c->recs[i].plant;
            size_t len = c->recs[i].plant_len;
            if (is_prefixed(name, len, VG_GROUP_PREFIX) != (pass == 0))
                continue;
            struct vg_error err = {0};
            if (output_import(r, name, len, c->bytes + c->recs[i].data, c->recs[i].len, &err) < 0)
                fprintf(stderr, "vigil: loading %.*s after a rebalance: %s (it starts afresh)\n", (int)len,
                        name, err.msg);
        }
    ckpt_free(c);
    r->claim_recs = NULL;
}

static void output_one(struct run *r, const struct vg_alert *a);

static void output_group(void *ctx, const struct vg_alert *a)
{
    output_one(ctx, a);
}

static void output_one(struct run *r, const struct vg_alert *a)
{
    const struct vg_pipeline_config *cfg = r->cfg;
    r->alerts[a->status]++;
    if (r->rules) {
        r->rules[a->rule].by_status[a->status]++;
        if (a->status != VG_ALERT_RESOLVED)
            r->rules[a->rule].by_level[a->level]++;
        if (a->status == VG_ALERT_FIRING) {
            if (a->flags & VG_ALERT_F_GROUP) /* a region rule: its busiest regions */
                count_top(r, a->rule, a->region, strlen(a->region));
            else
                count_top(r, a->rule, a->plant, a->plant_len);
        }
    }
    if (r->notifier && cfg->rs->rules[a->rule].n_notify)
        nq_push(&r->nq, a);
    if (r->out_rc < 0)
        return; /* the sink failed: keep counting, the run reports the error */
    int n = vg_alert_format(a, cfg->rs, r->fmt, sizeof r->fmt);
    if (n < 0)
        return;
    const char *key = a->flags & VG_ALERT_F_GROUP ? a->region : a->plant;
    size_t key_len = a->flags & VG_ALERT_F_GROUP ? (key ? strlen(key) : 0) : a->plant_len;
    r->out_rc = cfg->alerts->ops->put(cfg->alerts->sink, key ? key : "", key_len, r->fmt,
                                      (size_t)n - 1, &r->out_err);
}

/* Deliver what the sinks hold; a failure stops the output (the run reports it). */
static void output_flush(struct run *r)
{
    if (r->out_rc == 0)
        r->out_rc = r->cfg->alerts->ops->flush(r->cfg->alerts->sink, &r->out_err);
    if (r->out_rc == 0 && r->cfg->sms)
        r->out_rc = r->cfg->sms->ops->flush(r->cfg->sms->sink, &r->out_err);
}

/*
 * Every worker has passed checkpoint k: the alerts before it are all here.
 * Deliver them (the sinks flush and wait for acknowledgement), then hand the
 * output side's part to the store thread: the group stage's record. Without
 * a store, delivering them completes the checkpoint.
 */
static void output_checkpoints(struct run *r)
{
    for (;;) {
        uint64_t k = r->group_next;
        for (int i = 0; i < r->nw; i++)
            if (r->barrier_seen[i] < k)
                return;
        output_flush(r);
        if (r->out_rc < 0)
            return; /* undelivered alerts: this checkpoint never completes */
        r->group_next = k + 1;
        if (!r->persist) {
            atomic_store_explicit(&r->durable, k, memory_order_release);
            vg_bell_ring(&r->reader_bell);
            continue;
        }
        struct ckpt_part *c = calloc(1, sizeof *c);
        if (!c)
            abort();
        c->number = k;
        if ((r->group && vg_group_export_changed(r->group, ckpt_add, c) < 0) ||
            (r->notifier && notify_export(r, c) < 0))
            abort(); /* out of memory while checkpointing */
        while (!vg_ring_push(&r->group_ckpt, c))
            usleep(1000); /* the store thread is behind */
    }
}

static void *output_main(void *arg)
{
    struct run *r = arg;
    int done = 0;
    while (done < r->nw) {
        uint32_t seen = vg_bell_read(&r->output_bell);
        bool any = false;
        uint64_t claim = atomic_load_explicit(&r->claim_req, memory_order_acquire);
        if (claim != atomic_load_explicit(&r->claim_done, memory_order_relaxed)) {
            output_claim(r);
            atomic_store_explicit(&r->claim_done, claim, memory_order_release);
            vg_bell_ring(&r->reader_bell);
        }
        for (int i = 0; i < r->nw; i++) {
            struct worker *w = &r->w[i];
            struct out_batch *ob;
            while ((ob = vg_ring_pop(&w->out))) {
                for (uint32_t k = 0; k < ob->n; k++) {
                    output_one(r, &ob->a[k]);
                    if (r->group)
                        vg_group_offer(r->group, &ob->a[k]);
                }
                if (ob->progress != VG_TS_NONE)
                    r->progress[i] = ob->progress;
                if (ob->flags & VG_BATCH_BARRIER)
                    r->barrier_seen[i] = ob->checkpoint;
                if (ob->flags & VG_BATCH_EOS)
                    done++;
                vg_ring_push(&w->out_free, ob);
                any = true;
            }
        }
        if (any && (r->group || r->notifier)) {
            /* alerts earlier than every worker's progress are final: apply them */
            vg_ts safe = VG_TS_MAX;
            for (int i = 0; i < r->nw; i++)
                safe = r->progress[i] < safe ? r->progress[i] : safe;
            if (safe != VG_TS_NONE && r->group)
                vg_group_advance(r->group, safe, output_group, r);
            if (safe != VG_TS_NONE && r->notifier)
                notify_release(r, safe);
        }
        if (r->notifier && !any)
            take_acks(r);
        if (any && r->barriers)
            output_checkpoints(r);
        if (!any) {
            output_flush(r);
            vg_bell_wait(&r->output_bell, seen, WAIT_MS);
        }
    }
    if (r->barriers)
        output_checkpoints(r);
    if (r->persist) {
        struct ckpt_part *end = calloc(1, sizeof *end);
        if (!end)
            abort();
        end->number = UINT64_MAX;
        while (!vg_ring_push(&r->group_ckpt, end))
            usleep(1000);
    }
    vg_group_advance(r->group, VG_TS_MAX, output_group, r); /* every worker is done */
    if (r->notifier) {
        vg_ts end = r->clock; /* the reader's final clock: set before it sent the end of input */
        notify_release(r, VG_TS_MAX); /* every alert, in order */
        if (end != VG_TS_NONE)
            vg_notifier_advance(r->notifier, end, sms_emit, r); /* deadlines up to the final clock */
    }
    output_flush(r);
    return NULL;
}

/* ---- reader ------------------------------------------------------------- */

static struct vg_batch *in_acquire(struct run *r, struct worker *w)
{
    for (;;) {
        uint32_t seen = vg_bell_read(&r->reader_bell);
        struct vg_batch *b = vg_ring_pop(&w->in_free);
        if (b)
            return b;
        vg_bell_wait(&r->reader_bell, seen, WAIT_MS);
    }
}

static void in_send(struct run *r, struct worker *w, uint32_t flags)
{
    if (!w->fill)
        w->fill = in_acquire(r, w);
    w->fill->flags = flags;
    w->fill->start = r->start;
    /* while held messages are released, those at and after the one in hand are not sent yet */
    vg_ts wm = r->clock;
    if (r->releasing != VG_TS_NONE && r->releasing <= wm)
        wm = r->releasing - 1;
    w->fill->watermark = wm;
    w->sent = wm;
    vg_ring_push(&w->in, w->fill);
    w->fill = NULL;
}

static void count_reason(struct vg_pipeline_stats *st, const char *reason)
{
    st->dead++;
    for (int i = 0; i < VG_REASONS_MAX; i++) {
        if (st->reason[i] == reason || (st->reason[i] && !strcmp(st->reason[i], reason))) {
            st->reason_count[i]++;
            return;
        }
        if (!st->reason[i]) {
            st->reason[i] = reason;
            st->reason_count[i] = 1;
            return;
        }
    }
}

/*
 * The reorder buffer (lateness > 0): samples and reports wait until the clock
 * reaches their event time and leave in (ts, arrival) order, so every rule
 * sees each subject's messages in event-time order. Controls are not held.
 */
struct held {
    vg_ts ts;
    uint64_t seq;
    int32_t stream;               /* the source's stream and position, for checkpoints */
    uint64_t pos;
    struct vg_sample s;           /* strings point into buf */
    char buf[4 * VG_ID_MAX];
};

struct reorder {
    struct pheap h;               /* of struct held, by (ts, seq) */
    uint64_t seq;
};

static bool held_before(const void *ap, const void *bp)
{
    const struct held *a = ap, *b = bp;
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

static void reorder_push(struct reorder *q, const struct vg_sample *s, const struct vg_msg *m)
{
    struct held *h = pheap_new(&q->h);
    h->stream = m->stream;
    h->pos = m->pos;
    h->ts = s->ts;
    h->seq = q->seq++;
    h->s = *s;
    char *p = h->buf;
    struct vg_str *parts[4] = {&h->s.plant, &h->s.device, &h->s.name, &h->s.alert_id};
    for (int i = 0; i < 4; i++) {
        if (parts[i]->n)
            memcpy(p, parts[i]->p, parts[i]->n);
        parts[i]->p = p;
        p += parts[i]->n;
    }
    pheap_push(&q->h, h);
}

struct reader {
    struct run *run;
    struct reorder reorder;
    struct vg_json_parser *jp;
    struct vg_sample fresh[VG_POINTS_MAX + 1]; /* a replayed message's samples the state lacks */
    char *dl;            /* dead-letter formatting buffer */
    size_t dl_cap;
    int dl_rc;
    struct vg_error dl_err;
};

static void dead_letter(struct reader *rd, struct vg_pipeline_stats *st, const struct vg_msg *m,
                        const char *reason, const char *detail)
{
    const struct vg_pipeline_config *cfg = rd->run->cfg;
    count_reason(st, reason);
    if (rd->dl_rc < 0)
        return;
    const char *src = cfg->input->ops->name(cfg->input->src);
    uint64_t pos = m->pos;
    char where[600];
    if (m->stream >= 0) { /* a partitioned source: name the partition and the offset */
        snprintf(where, sizeof where, "%s[%d]@%llu", src, (int)(m->stream % 65536), (unsigned long long)m->pos);
        src = where;
        pos = 0;
    }
    int n = vg_deadletter_format(rd->dl, rd->dl_cap, reason, detail, src, pos, m->data, m->len,
                                 m->orig_len, vg_clock_wall_ms());
    if (n > 0)
        rd->dl_rc = cfg->dead->ops->put(cfg->dead->sink, m->plant ? m->plant : "", m->plant ? m->plant_len : 0,
                                        rd->dl, (size_t)n - 1, &rd->dl_err);
}

static void route(struct run *r, const struct vg_sample *s)
{
    const struct vg_ruleset *rs = r->cfg->rs;
    struct worker *w = &r->w[vg_shard_route(s->plant.p, s->plant.n, (uint32_t)r->nw)];
    size_t need = vg_batch_need(s);
    if (!w->fill)
        w->fill = in_acquire(r, w);
    if (!vg_batch_fits(w->fill, need)) {
        in_send(r, w, 0);
        w->fill = in_acquire(r, w);
    }
    /* samples carry a metric, reports an event name: one name table serves both */
    uint32_t metric = s->kind == VG_MSG_SAMPLE || s->kind == VG_MSG_EVENT
                          ? vg_ruleset_metric(rs, s->name.p, s->name.n) : VG_METRIC_NONE;
    vg_batch_append(w->fill, s, metric);
}

/*
 * Event time for one message: reject it whole if any of its samples is older
 * than the clock; otherwise start the clock (first event) and move it forward.
 * Controls (ack, maintenance) neither move nor are judged by the clock.
 */
static int clock_admit(struct run *r, const struct vg_sample *s, unsigned n, struct vg_reject *rej)
{
    vg_ts lo = INT64_MAX, hi = INT64_MIN;
    for (unsigned i = 0; i < n; i++) {
        if (s[i].kind != VG_MSG_SAMPLE && s[i].kind != VG_MSG_EVENT)
            continue;
        lo = s[i].ts < lo ? s[i].ts : lo;
        hi = s[i].ts > hi ? s[i].ts : hi;
    }
    if (hi == INT64_MIN)
        return 0;
    if (r->clock != VG_TS_NONE && lo < r->clock) {
        char late[32];
        vg_duration_format(r->clock - lo, late, sizeof late);
        rej->reason = "late";
        snprintf(rej->detail, sizeof rej->detail, "event time %lld is %s behind the clock %lld "
                 "(allowed lateness %lld ms)", (long long)lo, late, (long long)r->clock,
                 (long long)r->cfg->lateness);
        return VG_EINVAL;
    }
    if (r->start == VG_TS_NONE)
        r->start = lo;
    if (r->max_ts == VG_TS_NONE || hi > r->max_ts) {
        r->max_ts = hi;
        vg_ts c = hi - r->cfg->lateness;
        if (r->clock == VG_TS_NONE || c > r->clock)
            r->clock = c;
    }
    return 0;
}

/*
 * A checkpoint: ship what is buffered, note where the clock stands, and send
 * a barrier through every worker.
 */
static void checkpoint(struct run *r)
{
    uint64_t k = r->ckpt_next++;
    const struct vg_source_handle *in = r->cfg->input;
    if (in->ops->mark) {
        /* per stream, the oldest message still held: the source marks no further */
        const struct reorder *q = &r->reader->reorder;
        struct vg_held_floor *f = malloc(((size_t)q->h.n + 1) * sizeof *f);
        size_t nf = 0;
        for (uint32_t i = 0; f && i < q->h.n; i++) {
            const struct held *h = q->h.heap[i];
            if (h->stream < 0)
                continue;
            size_t j = 0;
            while (j < nf && f[j].stream != h->stream)
                j++;
            if (j == nf)
                f[nf++] = (struct vg_held_floor){h->stream, h->pos};
            else if (h->pos < f[j].pos)
                f[j].pos = h->pos;
        }
        struct vg_error e = {0};
        if (!f || in->ops->mark(in->src, k, f, nf, &e) < 0)
            fprintf(stderr, "vigil: %s\n", f ? e.msg : "out of memory marking a checkpoint");
        free(f);
    }
    for (int i = 0; i < r->nw; i++)
        if (r->w[i].fill && r->w[i].fill->n)
            in_send(r, &r->w[i], 0);
    r->ckpt_meta[k % 64] = (struct vg_state_meta){r->start, r->max_ts, r->clock, k};
    if (r->persist && r->n_read_pos) {
        /* where each stream stands: what this checkpoint's state covers */
        struct ckpt_part *pos = r->ckpt_pos[k % 64];
        if (!pos && !(pos = r->ckpt_pos[k % 64] = calloc(1, sizeof *pos)))
            abort();
        pos->n = pos->used = 0;
        pos->number = k;
        for (uint32_t i = 0; i < r->n_read_pos; i++) {
            char name[32];
            struct stream_pos sp = r->read_pos[i];
            sp.clock = r->clock;
            int nl = snprintf(name, sizeof name, STREAM_PREFIX "%d", (int)sp.stream);
            if (ckpt_add(pos, name, (size_t)nl, &sp, sizeof sp) < 0)
                abort();
        }
    }
    for (int i = 0; i < r->nw; i++) {
        struct worker *w = &r->w[i];
        if (!w->fill)
            w->fill = in_acquire(r, w);
        w->fill->checkpoint = k;
        in_send(r, w, VG_BATCH_BARRIER);
    }
    r->ckpt_due = vg_clock_wall_ms() + (r->cfg->checkpoint_ms > 0 ? r->cfg->checkpoint_ms : 1000);
}

/* Checkpoints whose state is saved and alerts delivered: acknowledge their input. */
static void commit_durable(struct run *r)
{
    const struct vg_source_handle *in = r->cfg->input;
    uint64_t k = atomic_load_explicit(&r->durable, memory_order_acquire);
    if (k <= r->committed || !in->ops->commit)
        return;
    struct vg_error e = {0};
    if (in->ops->commit(in->src, k, &e) < 0)
        fprintf(stderr, "vigil: %s (the input is acknowledged again at the next checkpoint)\n", e.msg);
    else
        r->committed = k;
}

static volatile sig_atomic_t stop_requested;

void vg_pipeline_request_stop(void)
{
    stop_requested = 1;
}

/* The entry of @p stream in @p v (@p n of them), added if @p create. */
static struct stream_pos *stream_find(struct stream_pos **v, uint32_t *n, uint32_t *cap, int32_t stream, bool create)
{
    for (uint32_t i = 0; i < *n; i++)
        if ((*v)[i].stream == stream)
            return &(*v)[i];
    if (!create)
        return NULL;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        if (!(*v = realloc(*v, *cap * sizeof **v)))
            abort();
    }
    (*v)[*n] = (struct stream_pos){stream, 0, VG_TS_NONE};
    return &(*v)[(*n)++];
}

/*
 * The stored position of @p m's stream if @p m comes before it: read again
 * after a restart or a rebalance whose commit did not reach the group. NULL:
 * a message the stored state has not seen.
 */
static const struct stream_pos *read_before(struct run *r, const struct vg_msg *m)
{
    const struct stream_pos *a = r->n_applied && m->stream >= 0
                                 ? stream_find(&r->applied, &r->n_applied, &r->cap_applied, m->stream, false)
                                 : NULL;
    return a && m->pos < a->next ? a : NULL;
}

/*
 * @returns the samples of @p m the stored state lacks (in @p *samples, @p *k
 * of them), or false if it has them all.
 */
static bool replay_filter(struct reader *rd, const struct vg_msg *m, const struct vg_sample **samples, unsigned *k)
{
    struct run *r = rd->run;
    const struct stream_pos *a = read_before(r, m);
    if (!a)
        return true;
    /* read before that checkpoint: applied, unless it was still held back (later than its clock) */
    unsigned n = 0;
    for (unsigned i = 0; i < *k; i++) {
        const struct vg_sample *s = &(*samples)[i];
        bool timed = s->kind == VG_MSG_SAMPLE || s->kind == VG_MSG_EVENT;
        if (timed && a->clock != VG_TS_NONE && s->ts > a->clock && n < VG_POINTS_MAX + 1)
            rd->fresh[n++] = *s;
    }
    if (n < *k)
        r->replayed++;
    *samples = rd->fresh;
    *k = n;
    return n > 0;
}

/* Move the clock to @p to (never back), e.g. --until at the end or wall time when idle. */
static void clock_advance(struct run *r, vg_ts to)
{
    if (to == VG_TS_NONE)
        return;
    if (r->start == VG_TS_NONE)
        r->start = to;
    if (r->clock == VG_TS_NONE || to > r->clock)
        r->clock = to;
}

/* An ack for the notifier (it still goes to a worker too, which counts controls). */
static void send_ack(struct run *r, const struct vg_sample *s)
{
    struct ack_msg *m;
    for (;;) {
        uint32_t seen = vg_bell_read(&r->reader_bell);
        if ((m = vg_ring_pop(&r->acks_free)))
            break;
        vg_bell_wait(&r->reader_bell, seen, WAIT_MS); /* the output thread is behind */
    }
    m->ts = s->ts;
    m->id_len = (uint8_t)(s->alert_id.n < VG_ID_MAX ? s->alert_id.n : VG_ID_MAX);
    m->by_len = (uint8_t)(s->by.n < VG_ID_MAX ? s->by.n : VG_ID_MAX);
    memcpy(m->id, s->alert_id.p, m->id_len);
    if (m->by_len)
        memcpy(m->by, s->by.p, m->by_len);
    vg_ring_push(&r->acks, m);
}

/* Route every held message the clock has reached (all of them with VG_TS_MAX). */
static void release(struct reader *rd, vg_ts clock)
{
    struct reorder *q = &rd->reorder;
    while (q->h.n && ((const struct held *)q->h.heap[0])->ts <= clock) {
        const struct held *h = pheap_pop(&q->h);
        rd->run->releasing = h->ts;
        route(rd->run, &h->s);
    }
    rd->run->releasing = VG_TS_NONE;
}

static int read_all(struct reader *rd, struct vg_pipeline_stats *st, struct vg_error *err)
{
    struct run *r = rd->run;
    const struct vg_pipeline_config *cfg = r->cfg;
    struct vg_msg msgs[256];
    for (;;) {
        bool eof = false;
        int n = cfg->input->ops->poll(cfg->input->src, msgs, 256, cfg->input->ops->live ? 100 : -1,
                                      &eof, err);
        if (n < 0)
            return n;
        for (int i = 0; i < n; i++) {
            const struct vg_msg *m = &msgs[i];
            st->messages++;
            if (m->orig_len > m->len) {
                char detail[96];
                snprintf(detail, sizeof detail, "message is %zu bytes or more; the limit is %d",
                         m->orig_len, VG_LINE_MAX);
                dead_letter(rd, st, m, "oversized", detail);
                continue;
            }
            const struct vg_sample *samples;
            unsigned k;
            struct vg_reject rej;
            if (m->stream >= 0 && r->persist) {
                struct stream_pos *p = r->n_read_pos && r->read_pos[r->last_pos].stream == m->stream
                                       ? &r->read_pos[r->last_pos]
                                       : stream_find(&r->read_pos, &r->n_read_pos, &r->cap_read_pos, m->stream, true);
                r->last_pos = (uint32_t)(p - r->read_pos);
                if (m->pos + 1 > p->next)
                    p->next = m->pos + 1;
            }
            vg_json_parser_plant(rd->jp, m->plant, m->plant_len);
            if (vg_json_parse(rd->jp, m->data, m->len, &samples, &k, &rej) < 0) {
                if (read_before(r, m)) {
                    r->replayed++; /* dead-lettered when it was first read */
                    continue;
                }
                dead_letter(rd, st, m, rej.reason, rej.detail);
                continue;
            }
            if (!replay_filter(rd, m, &samples, &k))
                continue; /* the state has it all */
            if (clock_admit(r, samples, k, &rej) < 0) {
                dead_letter(rd, st, m, rej.reason, rej.detail);
                continue;
            }
            for (unsigned j = 0; j < k; j++) {
                if (samples[j].kind == VG_MSG_ACK && r->notifier)
                    send_ack(r, &samples[j]);
                bool timed = samples[j].kind == VG_MSG_SAMPLE || samples[j].kind == VG_MSG_EVENT;
                if (cfg->lateness > 0 && timed)
                    reorder_push(&rd->reorder, &samples[j], m);
                else
                    route(r, &samples[j]);
            }
            release(rd, r->clock);
            st->samples += k;
        }
        if (n == 0 && cfg->input->ops->live) {
            clock_advance(r, vg_clock_wall_ms() - cfg->lateness); /* live and idle: wall time */
            release(rd, r->clock); /* held messages the wall clock has reached */
        }
        if (r->barriers && vg_clock_wall_ms() >= r->ckpt_due)
            checkpoint(r);
        commit_durable(r);
        if (n == 0 || eof) {
            /* idle or done: ship what is buffered so alerts are not held back */
            for (int i = 0; i < r->nw; i++)
                if ((r->w[i].fill && r->w[i].fill->n) || r->w[i].sent != r->clock)
                    in_send(r, &r->w[i], 0); /* events, or just the clock (timers, group stage) */
            if (rd->dl_rc == 0)
                rd->dl_rc = cfg->dead->ops->flush(cfg->dead->sink, &rd->dl_err);
        }
        if (eof || stop_requested)
            return VG_OK; /* the end of input, or SIGINT/SIGTERM: finish like it */
    }
}

/* ---- setup and teardown ------------------------------------------------- */

static int worker_init(struct run *r, struct worker *w, int id)
{
    w->id = id;
    w->sent = w->progress = w->reported = VG_TS_NONE;
    w->run = r;
    w->shard = vg_shard_create(r->cfg->rs, r->cfg->reg);
    w->in_pool = calloc(IN_BATCHES, sizeof *w->in_pool);
    w->out_pool = calloc(OUT_BATCHES, sizeof *w->out_pool);
    if (!w->shard || !w->in_pool || !w->out_pool ||
        vg_ring_init(&w->in, IN_BATCHES, &w->bell) < 0 ||
        vg_ring_init(&w->in_free, IN_BATCHES, &r->reader_bell) < 0 ||
        vg_ring_init(&w->out, OUT_BATCHES, &r->output_bell) < 0 ||
        vg_ring_init(&w->out_free, OUT_BATCHES, &w->bell) < 0 ||
        vg_ring_init(&w->ckpt, 4, &r->store_bell) < 0)
        return VG_ENOMEM;
    for (int i = 0; i < IN_BATCHES; i++)
        vg_ring_push(&w->in_free, &w->in_pool[i]);
    for (int i = 0; i < OUT_BATCHES; i++)
        vg_ring_push(&w->out_free, &w->out_pool[i]);
    return VG_OK;
}

static void worker_fini(struct worker *w)
{
    vg_shard_destroy(w->shard);
    free(w->in_pool);
    free(w->out_pool);
    vg_ring_fini(&w->in);
    vg_ring_fini(&w->in_free);
    vg_ring_fini(&w->out);
    vg_ring_fini(&w->out_free);
    struct ckpt_part *c;
    while (w->ckpt.slots && (c = vg_ring_pop(&w->ckpt)))
        ckpt_free(c);
    vg_ring_fini(&w->ckpt);
}

/* Load every stored plant into the shard that owns it, and the clock, before any input. */
struct restore_ctx {
    struct run *r;
    uint64_t n;
    struct vg_error *err;
    bool only_wanted;     /* a rebalance: import only plants gained since */
    struct ckpt_part *defer; /* a rebalance: the output stages' records, for the output thread */
};

static int restore_one(void *ctx, const char *plant, size_t plant_len, const void *data, size_t len)
{
    struct restore_ctx *rc = ctx;
    struct run *r = rc->r;
    if (is_prefixed(plant, plant_len, STREAM_PREFIX)) {
        char num[16];
        struct stream_pos sp;
        snprintf(num, sizeof num, "%.*s", (int)(plant_len - strlen(STREAM_PREFIX)), plant + strlen(STREAM_PREFIX));
        if (len != sizeof sp)
            return vg_error_set(rc->err, VG_EINVAL, "%.*s: not a stream position record", (int)plant_len, plant);
        memcpy(&sp, data, sizeof sp);
        if (sp.stream != atoi(num))
            return vg_error_set(rc->err, VG_EINVAL, "%.*s: names stream %d", (int)plant_len, plant, (int)sp.stream);
        *stream_find(&r->applied, &r->n_applied, &r->cap_applied, sp.stream, true) = sp;
        return 0;
    }
    if (plant_len && plant[0] == '~') {
        if (rc->defer) /* the output thread's to apply */
            return ckpt_add(rc->defer, plant, plant_len, data, len);
        return output_import(r, plant, plant_len, data, len, rc->err);
    }
    struct worker *w = &r->w[vg_shard_route(plant, plant_len, (uint32_t)r->nw)];
    const struct vg_source_handle *in = r->cfg->input;
    if (in->ops->owns && !in->ops->owns(in->src, plant, plant_len))
        return 0; /* another instance's plant (or none assigned yet) */
    if (rc->only_wanted && !vg_shard_wants(w->shard, plant, plant_len))
        return 0; /* held here all along: what we hold is newer */
    if (vg_shard_import(w->shard, data, len, rc->err) < 0)
        return rc->err->code;
    rc->n++;
    return 0;
}

static int restore(struct run *r, struct vg_pipeline_stats *st, struct vg_error *err)
{
    const struct vg_store_handle *h = r->cfg->store;
    struct vg_state_meta meta;
    struct restore_ctx ctx = {r, 0, err, false, NULL};
    int rc = h->ops->load(h->store, restore_one, &ctx, &meta, err);
    if (rc < 0)
        return rc;
    if (meta.checkpoint) {
        /* carry on where the last checkpoint left the clock */
        if (r->start == VG_TS_NONE)
            r->start = meta.start;
        r->max_ts = meta.max_ts;
        if (meta.clock != VG_TS_NONE && (r->clock == VG_TS_NONE || meta.clock > r->clock))
            r->clock = meta.clock;
        r->ckpt_next = meta.checkpoint + 1;
    }
    r->restored = st->restored = ctx.n;
    return 0;
}

/* ---- consumer-group rebalances (source events) ---------------------------- */

/*
 * The reader waits on its bell until @p done(r, arg) holds, or until wall
 * time @p until (VG_TS_MAX: no bound). @returns whether it holds.
 */
static bool reader_await(struct run *r, bool (*done)(struct run *r, uint64_t arg), uint64_t arg, vg_ts until)
{
    for (;;) {
        uint32_t seen = vg_bell_read(&r->reader_bell);
        if (done(r, arg))
            return true;
        if (vg_clock_wall_ms() >= until)
            return false;
        vg_bell_wait(&r->reader_bell, seen, WAIT_MS);
    }
}

static bool is_durable(struct run *r, uint64_t k)
{
    return atomic_load_explicit(&r->durable, memory_order_acquire) >= k;
}

static bool is_parked(struct run *r, uint64_t worker)
{
    return atomic_load_explicit(&r->w[worker].paused, memory_order_acquire);
}

static bool is_claimed(struct run *r, uint64_t k)
{
    return atomic_load_explicit(&r->claim_done, memory_order_acquire) == k;
}

/* Partitions are leaving: a checkpoint, and wait until it is durable and committed. */
static void on_revoking(void *ctx)
{
    struct run *r = ctx;
    if (!r->barriers)
        return;
    checkpoint(r); /* held messages are not in it: their offsets are not committed */
    uint64_t k = r->ckpt_next - 1;
    if (!reader_await(r, is_durable, k, vg_clock_wall_ms() + 30000))
        fprintf(stderr, "vigil: partitions revoked before checkpoint %llu was saved; the next owner "
                "replays from the last committed offsets\n", (unsigned long long)k);
    commit_durable(r);
    /*
     * Every partition is revoked (eager assignment, the default): what is held
     * is read again, from the committed offsets, by whoever owns it next.
     */
    struct reorder *q = &r->reader->reorder;
    while (q->h.n)
        pheap_pop(&q->h);
    r->n_read_pos = r->last_pos = 0; /* whoever reads them next starts from the committed offsets */
}

/* The plants this instance owns changed: park the workers, apply it, load what was gained. */
static void on_assigned(void *ctx)
{
    struct run *r = ctx;
    for (int i = 0; i < r->nw; i++) {
        struct worker *w = &r->w[i];
        if (w->fill && w->fill->n)
            in_send(r, w, 0);
        in_send(r, w, VG_BATCH_PAUSE);
    }
    for (int i = 0; i < r->nw; i++)
        reader_await(r, is_parked, (uint64_t)i, VG_TS_MAX);
    /* every worker is parked: the reader owns every shard until it lets them go */
    for (int i = 0; i < r->nw; i++)
        vg_shard_claim(r->w[i].shard);
    if (r->persist) {
        struct vg_state_meta meta;
        struct vg_error err = {0};
        struct restore_ctx rc = {r, 0, &err, true, calloc(1, sizeof(struct ckpt_part))};
        const struct vg_store_handle *h = r->cfg->store;
        if (!rc.defer)
            abort();
        pthread_mutex_lock(&r->store_lock);
        int lrc = h->ops->load(h->store, restore_one, &rc, &meta, &err);
        pthread_mutex_unlock(&r->store_lock);
        if (lrc < 0)
            fprintf(stderr, "vigil: loading the state of newly assigned plants: %s (they start "
                    "afresh)\n", err.msg);
        r->restored += rc.n;
        r->claim_recs = rc.defer;
    }
    if (r->group || r->notifier) {
        /* the output thread forgets what left and loads what came, before any worker goes on */
        uint64_t k = atomic_load_explicit(&r->claim_req, memory_order_relaxed) + 1;
        atomic_store_explicit(&r->claim_req, k, memory_order_release);
        vg_bell_ring(&r->output_bell);
        reader_await(r, is_claimed, k, VG_TS_MAX);
    }
    for (int i = 0; i < r->nw; i++) {
        atomic_store_explicit(&r->w[i].paused, 0, memory_order_release);
        vg_bell_ring(&r->w[i].bell);
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int top_cmp(const void *a, const void *b)
{
    const struct top_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    int c = memcmp(x->plant, y->plant, x->len < y->len ? x->len : y->len);
    return c ? c : (int)x->len - (int)y->len;
}

int vg_pipeline_run(const struct vg_pipeline_config *cfg, struct vg_pipeline_stats *st,
                    struct vg_error *err)
{
    memset(st, 0, sizeof *st);
    double t0 = now_s();
    struct run *r = calloc(1, sizeof *r);
    struct reader rd = {0};
    int rc = VG_OK;
    if (!r)
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    r->cfg = cfg;
    pthread_mutex_init(&r->store_lock, NULL);
    r->group = vg_group_create(cfg->rs);
    if (cfg->sms) {
        struct vg_notify_options no = {cfg->sms_daily_cap, cfg->sms_digest_minute};
        if (!(r->notifier = vg_notifier_create(cfg->rs, cfg->reg, &no))) {
            free(r);
            return vg_error_set(err, VG_EUSAGE, "cannot start SMS requests: the daily cap must be 0 or "
                                "more and the digest time a minute of the day");
        }
        r->ack_pool = calloc(ACKS, sizeof *r->ack_pool);
        if (!r->ack_pool || vg_ring_init(&r->acks, ACKS, &r->output_bell) < 0 ||
            vg_ring_init(&r->acks_free, ACKS, &r->reader_bell) < 0)
            abort();
        for (int i = 0; i < ACKS; i++)
            vg_ring_push(&r->acks_free, &r->ack_pool[i]);
    }
    r->start = cfg->start;
    r->releasing = VG_TS_NONE;
    r->max_ts = VG_TS_NONE;
    r->clock = cfg->start;
    r->nw = cfg->threads < 1 ? 1 : cfg->threads > VG_THREADS_MAX ? VG_THREADS_MAX : cfg->threads;
    r->w = calloc((size_t)r->nw, sizeof *r->w);
    r->progress = calloc((size_t)r->nw + 1, sizeof *r->progress);
    for (int i = 0; r->progress && i < r->nw; i++)
        r->progress[i] = VG_TS_NONE;
    rd.run = r;
    rd.reorder.h = (struct pheap){.size = sizeof(struct held), .before = held_before};
    r->nq.h = (struct pheap){.size = sizeof(struct queued), .before = queued_before};
    rd.jp = vg_json_parser_create();
    rd.dl_cap = VG_DEADLETTER_CAP((size_t)(1u << 20) + 1);
    rd.dl = malloc(rd.dl_cap);
    if (cfg->summary) {
        r->rules = calloc(cfg->rs->n_rules + 1, sizeof *r->rules);
        r->top = calloc(64, sizeof *r->top);
        r->top_mask = 63;
    }
    if (!r->w || !rd.jp || !rd.dl) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    int started = 0;
    for (int i = 0; i < r->nw; i++)
        if (worker_init(r, &r->w[i], i) < 0) {
            rc = vg_error_set(err, VG_ENOMEM, "out of memory for worker %d", i);
            goto out;
        }
    r->reader = &rd;
    if (cfg->input->ops->owns) {
        for (int i = 0; i < r->nw; i++)
            vg_shard_set_owner(r->w[i].shard, owns_plant, cfg->input);
        if (r->notifier)
            vg_notifier_set_owner(r->notifier, owns_plant, (void *)cfg->input);
    }
    if (cfg->input->ops->listen) {
        r->events = (struct vg_source_events){r, on_revoking, on_assigned};
        cfg->input->ops->listen(cfg->input->src, &r->events);
    }
    r->persist = cfg->store && cfg->store->ops && strcmp(cfg->store->ops->scheme, "memory");
    r->barriers = r->persist || cfg->input->ops->commit;
    for (int i = 0; r->persist && i < r->nw; i++)
        vg_shard_track_changes(r->w[i].shard, true);
    r->ckpt_next = 1; /* 0 in a stored meta means "nothing stored" */
    r->barrier_seen = calloc((size_t)r->nw + 1, sizeof *r->barrier_seen);
    if (!r->barrier_seen || vg_ring_init(&r->group_ckpt, 4, &r->store_bell) < 0) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    if (r->persist && restore(r, st, err) < 0) {
        rc = err->code;
        goto out;
    }
    r->group_next = r->ckpt_next;
    r->ckpt_due = vg_clock_wall_ms() + (cfg->checkpoint_ms > 0 ? cfg->checkpoint_ms : 1000);
    if (r->persist && pthread_create(&r->store_thread, NULL, store_main, r)) {
        rc = vg_error_set(err, VG_ENOMEM, "cannot start the store thread");
        r->persist = false;
        goto out;
    }
    if (pthread_create(&r->out_thread, NULL, output_main, r)) {
        rc = vg_error_set(err, VG_ENOMEM, "cannot start the output thread");
        goto out;
    }
    for (; started < r->nw; started++)
        if (pthread_create(&r->w[started].thread, NULL, worker_main, &r->w[started]))
            break;
    if (started < r->nw) {
        rc = vg_error_set(err, VG_ENOMEM, "cannot start worker threads");
        r->nw = started; /* the output thread waits only for these */
    } else {
        rc = read_all(&rd, st, err);
    }
    release(&rd, VG_TS_MAX); /* the end of input: nothing later can come before them */
    if (rc == VG_OK)
        clock_advance(r, cfg->until); /* --until: judge absences at the end of input */
    if (r->barriers && started == r->nw)
        checkpoint(r); /* the last one: everything up to the end of input */
    for (int i = 0; i < r->nw; i++)
        in_send(r, &r->w[i], VG_BATCH_EOS);
    for (int i = 0; i < r->nw; i++)
        pthread_join(r->w[i].thread, NULL);
    pthread_join(r->out_thread, NULL);
    if (r->persist)
        pthread_join(r->store_thread, NULL);
    commit_durable(r); /* the last checkpoint's input, once it is safe */
    if (rd.dl_rc == 0)
        rd.dl_rc = cfg->dead->ops->flush(cfg->dead->sink, &rd.dl_err);
    if (rc == VG_OK && r->out_rc < 0)
        rc = vg_error_set(err, r->out_rc, "%s", r->out_err.msg);
    if (rc == VG_OK && rd.dl_rc < 0)
        rc = vg_error_set(err, rd.dl_rc, "%s", rd.dl_err.msg);
    st->clock = r->clock;
    st->start = r->start;
    st->restored = r->restored;
    st->replayed = r->replayed;
    st->checkpoints = r->saved;
    st->records_saved = r->records_saved;
    st->bytes_saved = r->bytes_saved;
    st->unsaved = r->unsaved;
    if (rc == VG_OK && r->persist && r->unsaved)
        rc = vg_error_set(err, VG_EIO, "%llu plant records could not be saved: %s",
                          (unsigned long long)r->unsaved, r->store_err.msg);
    for (int i = 0; i < r->nw; i++) {
        struct vg_shard_stats s;
        vg_shard_stats(r->w[i].shard, &s);
        st->shards.samples += s.samples;
        st->shards.timers += s.timers;
        st->shards.muted += s.muted;
        st->shards.unmatched += s.unmatched;
        st->shards.reports += s.reports;
        st->shards.controls += s.controls;
        st->shards.subjects += s.subjects;
        st->shards.plants += s.plants;
        st->shards.states += s.states;
        st->shards.bytes += s.bytes;
    }
    memcpy(st->alerts, r->alerts, sizeof st->alerts);
    if (r->rules) {
        st->rules = r->rules;
        r->rules = NULL;
        struct top_entry *list = calloc(r->n_top + 1, sizeof *list);
        uint32_t n = 0;
        for (uint32_t i = 0; i <= r->top_mask; i++)
            if (r->top[i].count)
                list[n++] = r->top[i];
        qsort(list, n, sizeof *list, top_cmp);
        st->top = calloc(n + 1, sizeof *st->top);
        for (uint32_t i = 0; i < n; i++) {
            st->top[i].rule = list[i].rule;
            memcpy(st->top[i].plant, list[i].plant, list[i].len);
            st->top[i].count = list[i].count;
        }
        st->n_top = n;
        free(list);
    }
out:
    if (r->w)
        for (int i = 0; i < (r->nw > 0 ? r->nw : 0); i++)
            worker_fini(&r->w[i]);
    free(r->w);
    free(r->progress);
    free(r->barrier_seen);
    {
        struct ckpt_part *c;
        while (r->group_ckpt.slots && (c = vg_ring_pop(&r->group_ckpt)))
            ckpt_free(c);
        vg_ring_fini(&r->group_ckpt);
    }
    vg_group_destroy(r->group);
    if (r->notifier) {
        vg_notifier_stats(r->notifier, &st->notify);
        st->sms = r->sms_count;
        vg_notifier_destroy(r->notifier);
        vg_ring_fini(&r->acks);
        vg_ring_fini(&r->acks_free);
        free(r->ack_pool);
    }
    pheap_fini(&r->nq.h);
    free(r->read_pos);
    free(r->applied);
    for (int i = 0; i < 64; i++)
        ckpt_free(r->ckpt_pos[i]);
    pthread_mutex_destroy(&r->store_lock);
    free(r->rules);
    free(r->top);
    free(r);
    vg_json_parser_destroy(rd.jp);
    pheap_fini(&rd.reorder.h);
    free(rd.dl);
    st->seconds = now_s() - t0;
    stop_requested = 0; /* taken: a later run in the same process starts afresh */
    return rc;
}

void vg_pipeline_stats_fini(struct vg_pipeline_stats *st)
{
    free(st->rules);
    free(st->top);
    st->rules = NULL;
    st->top = NULL;
}

void vg_pipeline_print(const struct vg_pipeline_stats *st, const struct vg_ruleset *rs, FILE *out)
{
    fprintf(out, "vigil: %llu messages, %llu samples (%llu evaluated, %llu of metrics no rule reads, "
            "%llu muted by quality, %llu reports, %llu controls) in %.2f s\n",
            (unsigned long long)st->messages, (unsigned long long)st->samples,
            (unsigned long long)st->shards.samples, (unsigned long long)st->shards.unmatched,
            (unsigned long long)st->shards.muted, (unsigned long long)st->shards.reports,
            (unsigned long long)st->shards.controls, st->seconds);
    fprintf(out, "vigil: %llu dead letters", (unsigned long long)st->dead);
    for (int i = 0; i < VG_REASONS_MAX && st->reason[i]; i++)
        fprintf(out, "%s%s %llu", i ? ", " : " (", st->reason[i], (unsigned long long)st->reason_count[i]);
    fprintf(out, "%s\n", st->dead ? ")" : "");
    if (st->replayed)
        fprintf(out, "vigil: %llu messages read again were already in the restored state (skipped)\n",
                (unsigned long long)st->replayed);
    fprintf(out, "vigil: %llu alerts: %llu firing, %llu escalated, %llu resolved; %llu subjects in %llu plants\n",
            (unsigned long long)(st->alerts[1] + st->alerts[2] + st->alerts[3]),
            (unsigned long long)st->alerts[1], (unsigned long long)st->alerts[2],
            (unsigned long long)st->alerts[3], (unsigned long long)st->shards.subjects,
            (unsigned long long)st->shards.plants);
    if (st->sms || st->notify.throttled || st->notify.acks || st->notify.acks_unknown)
        fprintf(out, "vigil: %llu SMS requests (%llu digests, %llu unacknowledged escalations, %llu over "
                "a daily cap folded into digests, %llu throttled); %llu acks (%llu for unknown alerts)\n",
                (unsigned long long)st->sms, (unsigned long long)st->notify.digests,
                (unsigned long long)st->notify.escalations, (unsigned long long)st->notify.capped_to_digest,
                (unsigned long long)st->notify.throttled, (unsigned long long)st->notify.acks,
                (unsigned long long)st->notify.acks_unknown);
    if (!st->rules)
        return;
    fprintf(out, "\n%-36s %7s %9s %8s %6s %6s %6s %6s  %s\n", "rule", "firing", "escalated",
            "resolved", "blue", "yellow", "orange", "red", "busiest plants or regions (alerts)");
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        const struct vg_rule_summary *s = &st->rules[i];
        fprintf(out, "%-36s %7llu %9llu %8llu %6llu %6llu %6llu %6llu  ", rs->rules[i].id,
                (unsigned long long)s->by_status[1], (unsigned long long)s->by_status[2],
                (unsigned long long)s->by_status[3], (unsigned long long)s->by_level[1],
                (unsigned long long)s->by_level[2], (unsigned long long)s->by_level[3],
                (unsigned long long)s->by_level[4]);
        int shown = 0;
        for (uint32_t k = 0; k < st->n_top && shown < 3; k++)
            if (st->top[k].rule == i)
                fprintf(out, "%s%s (%llu)", shown++ ? ", " : "", st->top[k].plant,
                        (unsigned long long)st->top[k].count);
        fprintf(out, "%s\n", shown ? "" : "-");
    }
}
