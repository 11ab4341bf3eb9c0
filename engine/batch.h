/*
 * batch.h: fixed-capacity batches that carry events from the reader to a
 * worker, and alert records from a worker to the output thread.
 * Owns: the wire format between stages. Must never: allocate after creation;
 * batches are recycled to their producer through a return ring.
 */
#ifndef VG_BATCH_H
#define VG_BATCH_H

#include "engine/event.h"

#define VG_BATCH_EVENTS 1024
#define VG_BATCH_BYTES (64 * 1024)

enum vg_batch_flag {
    VG_BATCH_EOS = 1,   /* the producer is done: this is its last batch */
    VG_BATCH_BARRIER = 2, /* a checkpoint: after its events, hand the changed state to the store */
    VG_BATCH_PAUSE = 4,   /* before its events, park until the reader lets go (rebalance) */
};

/** An event as a worker sees it; its strings live in the batch's byte area. */
struct vg_wevent {
    vg_ts ts;
    double value;
    vg_ts from, until;      /* maintenance */
    uint32_t metric;        /* metric id, or VG_METRIC_NONE */
    uint32_t off;           /* plant, device, name, then alert_id follow at bytes + off */
    uint8_t plant_len, dev_len, name_len, aux_len;
    uint8_t kind, quality;
};

struct vg_batch {
    uint32_t n;             /* events used */
    uint32_t used;          /* bytes used */
    uint32_t flags;
    vg_ts start;            /* start of the clock (VG_TS_NONE until known) */
    vg_ts watermark;        /* the clock after this batch (VG_TS_NONE until known) */
    uint64_t checkpoint;    /* VG_BATCH_BARRIER: the checkpoint's number */
    struct vg_wevent ev[VG_BATCH_EVENTS];
    char bytes[VG_BATCH_BYTES];
};

static inline const char *vg_wevent_plant(const struct vg_batch *b, const struct vg_wevent *e)
{
    return b->bytes + e->off;
}
static inline const char *vg_wevent_device(const struct vg_batch *b, const struct vg_wevent *e)
{
    return b->bytes + e->off + e->plant_len;
}
static inline const char *vg_wevent_name(const struct vg_batch *b, const struct vg_wevent *e)
{
    return b->bytes + e->off + e->plant_len + e->dev_len;
}

/** @returns whether one more event with @p nbytes of strings fits. */
static inline bool vg_batch_fits(const struct vg_batch *b, size_t nbytes)
{
    return b->n < VG_BATCH_EVENTS && b->used + nbytes <= VG_BATCH_BYTES;
}

/** Bytes of strings @p s carries into a batch. */
static inline size_t vg_batch_need(const struct vg_sample *s)
{
    return (size_t)s->plant.n + s->device.n + s->name.n + s->alert_id.n;
}

/**
 * @brief Append @p s (its strings are copied) with its metric id. The caller
 * checked vg_batch_fits(b, vg_batch_need(s)). @thread the batch's producer.
 */
void vg_batch_append(struct vg_batch *b, const struct vg_sample *s, uint32_t metric);

/** @brief Empty the batch for reuse. */
static inline void vg_batch_reset(struct vg_batch *b)
{
    b->n = 0;
    b->used = 0;
    b->flags = 0;
    b->start = VG_TS_NONE;
    b->watermark = VG_TS_NONE;
}

#endif
